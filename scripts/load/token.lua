-- wrk script for POST /oauth/token where EVERY request carries a different caller token.
--
--   wrk -t N -c C -d 20s --latency -s scripts/load/token.lua http://127.0.0.1:18080 -- PREFIX SA_ID
--
-- Thread k (0-based) reads its own slice of the token file, PREFIX.NN (NN = k, two digits;
-- scripts/load.sh makes the slices with `split -n l/N -d -a 2`), so no token is sent twice. If a
-- thread runs out, it starts its slice again and counts the reuse: the run then needs more
-- tokens (scripts/load.sh reports it as a failure).
--
-- done() prints the status counts (non-2xx included), the tokens used and one machine-readable
-- line, `WRK_RESULT key=value ...`, with latencies in microseconds.

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("id", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua environment).
local tokens = {}
local n = 0
local next_index = 0
issued = 0
reused = 0
statuses = {}
first_error = nil
local prefix, suffix

function init(args)
   local base, audience = args[1], args[2]
   if base == nil or audience == nil then
      error("usage: -- TOKEN_FILE_PREFIX SERVICE_ACCOUNT_ID")
   end
   local path = string.format("%s.%02d", base, id)
   for line in io.lines(path) do
      if #line > 0 then
         n = n + 1
         tokens[n] = line
      end
   end
   if n == 0 then
      error("no tokens in " .. path)
   end
   prefix = "grant_type=urn:ietf:params:oauth:grant-type:token-exchange"
      .. "&requested_token_type=urn:ietf:params:oauth:token-type:access_token"
      .. "&audience=" .. audience .. "&subject_token="
   suffix = "&subject_token_type=urn:ietf:params:oauth:token-type:id_token"
   wrk.method = "POST"
   wrk.path = "/oauth/token"
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
   next_index = next_index + 1
   if next_index > n then
      next_index = 1
      reused = reused + 1
   end
   issued = issued + 1
   return wrk.format(nil, nil, nil, prefix .. tokens[next_index] .. suffix)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status ~= 200 and first_error == nil then
      first_error = string.sub(body or "", 1, 300)
   end
end

function done(summary, latency, requests)
   local by_status = {}
   local total_issued, total_reused, total_tokens = 0, 0, 0
   local sample = nil
   for _, t in ipairs(threads) do
      for status, count in pairs(t:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + count
      end
      total_issued = total_issued + t:get("issued")
      total_reused = total_reused + t:get("reused")
      sample = sample or t:get("first_error")
   end
   local ok, non2xx, parts = 0, 0, {}
   local codes = {}
   for status, _ in pairs(by_status) do
      table.insert(codes, status)
   end
   table.sort(codes)
   for _, status in ipairs(codes) do
      local count = by_status[status]
      if status >= 200 and status < 300 then
         ok = ok + count
      else
         non2xx = non2xx + count
      end
      table.insert(parts, string.format("%d:%d", status, count))
   end
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format("Status counts: %s\n", table.concat(parts, " ")))
   io.write(string.format("Non-2xx responses: %d; socket errors: connect %d, read %d, write %d, timeout %d\n",
      non2xx, e.connect, e.read, e.write, e.timeout))
   io.write(string.format("Tokens sent: %d (reused after running out: %d slice restarts)\n",
      total_issued, total_reused))
   if sample ~= nil then
      io.write("First non-200 body: " .. sample .. "\n")
   end
   io.write(string.format(
      "WRK_RESULT seconds=%.3f requests=%d ok=%d non2xx=%d errors=%d exchanges_per_sec=%.1f "
         .. "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f issued=%d reused=%d statuses=%s\n",
      seconds, summary.requests, ok, non2xx,
      e.connect + e.read + e.write + e.timeout,
      ok / seconds,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, total_issued, total_reused, table.concat(parts, ",")))
end
