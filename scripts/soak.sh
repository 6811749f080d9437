#!/usr/bin/env bash
# RSS soak: the gateway under sustained load for SECONDS (default 300), its RSS sampled every
# 10 s, to show memory does not grow.
#
#   bash scripts/soak.sh [SECONDS]
#
# Run scripts/load.sh first: this reuses its generated issuer, small config and max-run token file
# (target/loadtest). Tokens are sent round-robin from that file, so over a long soak each token is
# replayed many times; that is fine here (the gateway keeps no per-token state, and throughput is
# measured by load.sh with distinct tokens), and it keeps the soak from spending minutes signing.
# Gateway on core 0, wrk on core 1, loopback only; every process it starts is stopped on exit.
set -euo pipefail

SECONDS_TOTAL=${1:-300}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${LOADTEST_DIR:-$ROOT/target/loadtest}
GATEWAY_PORT=${GATEWAY_PORT:-18080}
ISSUER_PORT=${ISSUER_PORT:-18081}
# shellcheck disable=SC1091
source "$OUT/load.env"
[[ -f $OUT/tokens-max-small.txt ]] || { echo "run scripts/load.sh first" >&2; exit 2; }
[[ -e $OUT/tokens-max-small.00 ]] || ln -sf tokens-max-small.txt "$OUT/tokens-max-small.00"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

python3 -m http.server "$ISSUER_PORT" --bind 127.0.0.1 --directory "$OUT/issuer" >"$OUT/soak-issuer.log" 2>&1 &
pids+=($!)
RUST_LOG=warn taskset -c 0 "$ROOT/target/release/wif-gateway" serve --config "$OUT/config/gateway-small.toml" \
    >"$OUT/soak.audit.jsonl" 2>"$OUT/soak-gateway.log" &
gateway=$!
pids+=("$gateway")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null && break; sleep 0.1; done

rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$gateway/status"; }
taskset -c 1 wrk -t1 -c64 -d"${SECONDS_TOTAL}s" --timeout 10s -s "$ROOT/scripts/load/token.lua" \
    "http://127.0.0.1:$GATEWAY_PORT" -- "$OUT/tokens-max-small" "$SERVICE_ACCOUNT" >"$OUT/soak-wrk.txt" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")
samples=()
elapsed=0
while kill -0 "$wrk_pid" 2>/dev/null && ((elapsed < SECONDS_TOTAL + 30)); do
    sleep 10
    elapsed=$((elapsed + 10))
    samples+=("$(rss)")
done
wait "$wrk_pid" || true
grep -E "Requests/sec|Non-2xx|Status counts" "$OUT/soak-wrk.txt" || true
echo "RSS every 10 s (MiB): ${samples[*]}"
printf '%s\n' "${samples[@]}" | awk 'NR == 1 {first = $1} {last = $1; if ($1 > max) max = $1}
    END {printf "RSS first %.1f MiB, last %.1f MiB, max %.1f MiB, growth first->last %+.1f MiB\n", first, last, max, last - first}'
awk '/VmHWM/ {printf "peak RSS (VmHWM): %.1f MiB\n", $2 / 1024}' "/proc/$gateway/status"
