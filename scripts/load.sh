#!/usr/bin/env bash
# HTTP load test of wif-gateway's POST /oauth/token, on loopback only.
#
#   bash scripts/load.sh [--scale [--scale-pg POSTGRES_URL]] [--duration SECONDS]
#
# On a fresh machine it: builds the release binaries and examples; installs wrk from Debian if
# missing; measures the single-core crypto floor (examples/floor.rs: one RS256 verification +
# one ES256 signature); generates a caller key, a static OIDC issuer tree, gateway configs and
# caller tokens (examples/loadgen_setup.rs); serves the issuer with python's http.server; and for
# each config (the small one; with --scale and SCALE_CONFIG=1 also the one with 10 000 federations
# and 1 000 000 federated credentials in configuration files) starts the gateway pinned to core 0, waits for /readyz, warms up with
# one exchange (which fetches the issuer's JWKS), then runs on core 1:
#
#   1. max throughput: wrk, 1 thread, 64 connections, scripts/load/token.lua (every request carries a
#      different token; the token file is split among wrk threads), for --duration seconds;
#   2. latency at half that rate: examples/loadgen_rate.rs, an open-loop fixed-rate generator
#      (Debian packages wrk but not wrk2), for --duration seconds.
#
# Token files are sized from a short calibration run (CALIBRATION_SECONDS) so that no token is
# sent twice. It prints exchanges/s, p50/p90/p99/max latency, non-2xx counts, the gateway's peak
# RSS and its RSS sampled every second, the JWKS fetches the issuer served after warm-up (must be
# 0), the configuration reloads the gateway did during the run (its audit log, on stdout; must
# be 0), exchanges/s ÷ floor, the gateway's CPU time per exchange split into the crypto (the
# floor), the HTTP stack (the no-work POST) and the rest, and that rest split again against the
# same stack doing the crypto and nothing else (examples/http_floor --crypto: the most an exchange
# over this stack can make here) into what the slower pace adds to the stack and the gateway's own
# work, and with --scale the config load time (process start to /readyz
# 200) and RSS of both configs side by side. Everything listens on 127.0.0.1; every process it
# starts is stopped on exit. Generated files stay in target/loadtest/ (git-ignored); the configs
# sit alone in target/loadtest/config/, because the gateway reloads when a file changes in the
# directories it watches, and token files, logs and samples are written during the run.
#
# --scale then measures the IAM plane with 1 000 000 federated credentials and 1 000 000 access
# bindings in the IAM store (scripts/load/iam-scale.sh, which documents the steps and its own
# overrides): start to /readyz, RSS and max exchanges/s against a store of ~10 bindings, exchange
# throughput with and without 100 management writes per second, write-visible-to-exchange on the
# same replica (SQLite) and on another replica (PostgreSQL, with --scale-pg URL such as
# postgres://root@127.0.0.1:5432/test), and REST creates per second, with the targets beside them.
#
# Environment overrides: GATEWAY_PORT (18080), ISSUER_PORT (18081), CONNECTIONS (64),
# WRK_THREADS (1), SUBJECTS (1000), CALIBRATION_SECONDS (2), FLOOR_SECONDS (3),
# LOADTEST_DIR (target/loadtest), READY_TIMEOUT (900 seconds); with --scale: SCALE_CONFIG (0; 1
# adds the configuration-file scale run), SCALE_PG_URL (as --scale-pg).

set -euo pipefail

usage() {
    sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
}

SCALE=0
DURATION=20
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE=1 ;;
        --scale-pg)
            [ $# -ge 2 ] || { usage >&2; exit 2; }
            SCALE=1
            SCALE_PG_URL=$2
            shift
            ;;
        --duration)
            [ $# -ge 2 ] || { usage >&2; exit 2; }
            DURATION=$2
            shift
            ;;
        --duration=*) DURATION=${1#--duration=} ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case "$DURATION" in
    '' | *[!0-9]*) echo "--duration must be a whole number of seconds" >&2; exit 2 ;;
esac
[ "$DURATION" -ge 1 ] || { echo "--duration must be at least 1" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${LOADTEST_DIR:-$ROOT/target/loadtest}
GATEWAY_PORT=${GATEWAY_PORT:-18080}
ISSUER_PORT=${ISSUER_PORT:-18081}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
SUBJECTS=${SUBJECTS:-1000}
CALIBRATION_SECONDS=${CALIBRATION_SECONDS:-2}
FLOOR_SECONDS=${FLOOR_SECONDS:-3}
READY_TIMEOUT=${READY_TIMEOUT:-900}
GATEWAY_CORE=0
LOAD_CORE=1
BIN=$ROOT/target/release
GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
ISSUER_URL=http://127.0.0.1:$ISSUER_PORT

ISSUER_PID=
GATEWAY_PID=
SAMPLER_PID=

stop_pid() { # PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS
    local pid=$1 wait_s=${2:-5} i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    stop_pid "$SAMPLER_PID" 2
    stop_pid "$GATEWAY_PID" 25
    stop_pid "$ISSUER_PID" 5
    SAMPLER_PID='' GATEWAY_PID='' ISSUER_PID=''
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'load.sh: error: %s\n' "$*" >&2; exit 1; }
# kv LINE KEY: the value of KEY=VALUE in a RESULT line
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
calc() { awk "BEGIN { printf \"%s\", $1 }"; }
mib() { calc "sprintf(\"%.1f\", $1 / 1024)"; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime + stime
CLK_TCK=$(getconf CLK_TCK)
cpu_us_per() { # TICKS REQUESTS: CPU microseconds per request
    calc "sprintf(\"%.1f\", $1 * 1000000 / $CLK_TCK / ($2 > 0 ? $2 : 1))"
}
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
count_lines() { # FILE PATTERN: lines matching (0 when none)
    local n
    n=$(grep -c -- "$2" "$1" 2>/dev/null) || true
    echo "${n:-0}"
}

# ---------------------------------------------------------------------------------------------
say "tools"
for tool in cargo taskset curl awk split; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
[ "$(nproc --all)" -ge 2 ] || die "two cores are needed (gateway on core 0, load on core 1)"
if ! command -v wrk >/dev/null; then
    echo "wrk missing: installing it from Debian"
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq wrk >/dev/null
fi
command -v wrk >/dev/null || die "wrk could not be installed"
PYTHON=$(python3 -c 'import sys; print(sys.executable)') || die "python3 is required"
echo "wrk: $(command -v wrk) ($(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}'))"
if command -v apt-cache >/dev/null && apt-cache policy wrk2 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    echo "wrk2 is packaged here, but the fixed-rate run uses examples/loadgen_rate (same open-loop method)"
else
    echo "wrk2: not packaged; fixed-rate run: examples/loadgen_rate (open loop, latency from due time)"
fi
echo "python: $PYTHON"
for port in "$GATEWAY_PORT" "$ISSUER_PORT"; do
    if port_busy "$port"; then die "127.0.0.1:$port is in use"; fi
done

say "build (cargo build --release --examples --bins)"
cargo build --release --examples --bins 2>&1 | tail -n 3

say "single-core floor (taskset -c $GATEWAY_CORE target/release/examples/floor)"
FLOOR_OUT=$(taskset -c "$GATEWAY_CORE" "$BIN/examples/floor" --seconds "$FLOOR_SECONDS")
echo "$FLOOR_OUT"
FLOOR=$(kv "$(grep '^FLOOR' <<<"$FLOOR_OUT")" ops_per_sec)
[ -n "$FLOOR" ] || die "no floor measured"

say "setup (examples/loadgen_setup) in $OUT"
rm -rf "$OUT"
mkdir -p "$OUT"
SETUP_ARGS=(--out "$OUT" --subjects "$SUBJECTS" --port "$ISSUER_PORT" --gateway-port "$GATEWAY_PORT")
SCALE_FLAG=()
[ "$SCALE" -eq 1 ] && [ "${SCALE_CONFIG:-0}" = 1 ] && SCALE_FLAG=(--scale)
"$BIN/examples/loadgen_setup" "${SETUP_ARGS[@]}" "${SCALE_FLAG[@]}" --tokens 20 --tokens-file tokens-warm.txt
# shellcheck source=/dev/null
. "$OUT/load.env"
[ -n "${SERVICE_ACCOUNT:-}" ] || die "load.env names no service account"

tokens() { # NAME COUNT: sign COUNT more tokens into $OUT/NAME
    "$BIN/examples/loadgen_setup" "${SETUP_ARGS[@]}" --tokens-only --tokens "$2" --tokens-file "$1" |
        grep '^tokens:'
}
split_tokens() { # FILE PREFIX: split FILE into WRK_THREADS slices PREFIX.00, PREFIX.01, ...
    rm -f "$2".[0-9][0-9]
    if [ "$WRK_THREADS" -eq 1 ]; then
        ln -s "$1" "$2.00"
    else
        split -n "l/$WRK_THREADS" -d -a 2 "$1" "$2."
    fi
}

say "static issuer: python -m http.server $ISSUER_PORT --bind 127.0.0.1 --directory $OUT/issuer"
"$PYTHON" -u -m http.server "$ISSUER_PORT" --bind 127.0.0.1 --directory "$OUT/issuer" \
    >"$OUT/issuer.log" 2>&1 &
ISSUER_PID=$!
for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "$ISSUER_URL/.well-known/openid-configuration" 2>/dev/null && break
    kill -0 "$ISSUER_PID" 2>/dev/null || die "the issuer exited: $(cat "$OUT/issuer.log")"
    sleep 0.1
done
keys_fetches() { count_lines "$OUT/issuer.log" '"GET /keys '; }
other_fetches() { count_lines "$OUT/issuer.log" '"GET /f/'; }

WARM_LINE=0
exchange_status() { # TOKEN: HTTP status of one exchange
    curl -s -o "$OUT/last-exchange.json" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --data "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&requested_token_type=urn:ietf:params:oauth:token-type:access_token&audience=$SERVICE_ACCOUNT&subject_token=$1&subject_token_type=urn:ietf:params:oauth:token-type:id_token" \
        "$GATEWAY_URL/oauth/token"
}

run_wrk() { # NAME SECONDS TOKEN_PREFIX: wrk on core 1; prints wrk's output; RESULT in $OUT/wrk-NAME.txt
    timeout $(($2 + 60)) taskset -c "$LOAD_CORE" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2"s \
        --timeout 10s --latency -s "$ROOT/scripts/load/token.lua" "$GATEWAY_URL" -- "$3" "$SERVICE_ACCOUNT" \
        | tee "$OUT/wrk-$1.txt"
}

declare -A R

run_config() { # NAME CONFIG_FILE
    local name=$1 config=$2 start_ns ready_ns pid status i line
    say "[$name] gateway: RUST_LOG=warn taskset -c $GATEWAY_CORE wif-gateway serve --config $config"
    port_busy "$GATEWAY_PORT" && die "127.0.0.1:$GATEWAY_PORT is in use"
    start_ns=$(date +%s%N)
    RUST_LOG=warn taskset -c "$GATEWAY_CORE" "$BIN/wif-gateway" serve --config "$config" \
        >"$OUT/gateway-$name.audit.jsonl" 2>"$OUT/gateway-$name.log" &
    GATEWAY_PID=$!
    pid=$GATEWAY_PID
    # RSS every second from the start (config load included) until the gateway stops.
    (
        while kill -0 "$pid" 2>/dev/null; do
            echo "$(date +%s) $(rss_kb "$pid" VmRSS)"
            sleep 1
        done
    ) >"$OUT/rss-$name.txt" &
    SAMPLER_PID=$!
    ready_ns=
    while [ $(($(date +%s%N) - start_ns)) -lt $((READY_TIMEOUT * 1000000000)) ]; do
        if curl -fsS -o "$OUT/readyz-$name.json" "$GATEWAY_URL/readyz" 2>/dev/null; then
            ready_ns=$(date +%s%N)
            break
        fi
        kill -0 "$pid" 2>/dev/null || die "[$name] the gateway exited: $(tail -n 20 "$OUT/gateway-$name.log")"
        sleep 0.02
    done
    [ -n "$ready_ns" ] || die "[$name] not ready after $READY_TIMEOUT s"
    R[$name.ready_s]=$(calc "sprintf(\"%.2f\", ($ready_ns - $start_ns) / 1e9)")
    R[$name.ready_rss]=$(rss_kb "$pid" VmRSS)
    R[$name.ready_hwm]=$(rss_kb "$pid" VmHWM)
    R[$name.readyz]=$(cat "$OUT/readyz-$name.json")
    echo "ready after ${R[$name.ready_s]} s: ${R[$name.readyz]}"
    echo "RSS at ready: $(mib "${R[$name.ready_rss]}") MiB (peak so far, VmHWM: $(mib "${R[$name.ready_hwm]}") MiB)"

    say "[$name] warm-up: one exchange (fetches the issuer's JWKS)"
    WARM_LINE=$((WARM_LINE + 1))
    line=$(sed -n "${WARM_LINE}p" "$OUT/tokens-warm.txt")
    status=$(exchange_status "$line")
    echo "HTTP $status: $(head -c 160 "$OUT/last-exchange.json")…"
    [ "$status" = 200 ] || die "[$name] warm-up exchange failed"
    R[$name.keys_base]=$(keys_fetches)
    R[$name.other_base]=$(other_fetches)
    echo "JWKS fetches served by the issuer so far: ${R[$name.keys_base]}"

    say "[$name] calibration: ${CALIBRATION_SECONDS} s of wrk to size the token files"
    tokens "tokens-cal-$name.txt" "$(calc "int($FLOOR * $CALIBRATION_SECONDS * 1.2) + 2000")"
    split_tokens "$OUT/tokens-cal-$name.txt" "$OUT/tokens-cal-$name"
    run_wrk "cal-$name" "$CALIBRATION_SECONDS" "$OUT/tokens-cal-$name" >/dev/null
    line=$(grep '^WRK_RESULT' "$OUT/wrk-cal-$name.txt") || die "[$name] calibration printed no result"
    R[$name.cal_rate]=$(kv "$line" exchanges_per_sec)
    echo "calibration: $(kv "$line" requests) requests, ${R[$name.cal_rate]} exchanges/s, statuses $(kv "$line" statuses)"
    [ "$(kv "$line" ok)" -gt 0 ] || die "[$name] calibration: no exchange succeeded"

    local max_tokens
    max_tokens=$(calc "int(${R[$name.cal_rate]} * $DURATION * 1.3) + 1000 * $WRK_THREADS + $CONNECTIONS")
    say "[$name] max throughput: wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s on core $LOAD_CORE ($max_tokens tokens)"
    tokens "tokens-max-$name.txt" "$max_tokens"
    split_tokens "$OUT/tokens-max-$name.txt" "$OUT/tokens-max-$name"
    R[$name.measure_start]=$(date +%s)
    local ticks
    ticks=$(cpu_ticks "$pid")
    run_wrk "max-$name" "$DURATION" "$OUT/tokens-max-$name"
    ticks=$(($(cpu_ticks "$pid") - ticks))
    line=$(grep '^WRK_RESULT' "$OUT/wrk-max-$name.txt") || die "[$name] wrk printed no result"
    R[$name.max]=$line
    R[$name.cpu_us]=$(cpu_us_per "$ticks" "$(kv "$line" requests)")
    echo "gateway CPU (utime + stime) per exchange: ${R[$name.cpu_us]} us"
    [ "$(kv "$line" reused)" = 0 ] || echo "WARNING: wrk ran out of tokens and reused some ($(kv "$line" reused) slice restarts)"

    local rate rate_tokens
    rate=$(calc "int($(kv "$line" exchanges_per_sec) / 2)")
    [ "$rate" -ge 1 ] || rate=1
    rate_tokens=$((rate * DURATION + 100))
    say "[$name] latency at half the max: $rate req/s for $DURATION s, open loop (examples/loadgen_rate on core $LOAD_CORE)"
    tokens "tokens-rate-$name.txt" "$rate_tokens"
    R[$name.rate_start]=$(date +%s)
    timeout $((DURATION + 90)) taskset -c "$LOAD_CORE" "$BIN/examples/loadgen_rate" --url "$GATEWAY_URL" \
        --tokens "$OUT/tokens-rate-$name.txt" --audience "$SERVICE_ACCOUNT" --rate "$rate" \
        --duration "$DURATION" --connections "$CONNECTIONS" | tee "$OUT/rate-$name.txt"
    line=$(grep '^RATE_RESULT' "$OUT/rate-$name.txt") || die "[$name] loadgen_rate printed no result"
    R[$name.rate]=$line
    R[$name.measure_end]=$(date +%s)
    sleep 1.2 # one more RSS sample after the load

    R[$name.keys]=$(($(keys_fetches) - ${R[$name.keys_base]}))
    R[$name.other]=$(($(other_fetches) - ${R[$name.other_base]}))
    R[$name.end_rss]=$(rss_kb "$pid" VmRSS)
    R[$name.hwm]=$(rss_kb "$pid" VmHWM)
    stop_pid "$SAMPLER_PID" 2
    SAMPLER_PID=
    # RSS over the measured window: first, last, min, max (MiB) and every sample.
    R[$name.rss_series]=$(awk -v a="${R[$name.measure_start]}" '$1 >= a && $2 > 0 { printf "%s%.1f", sep, $2 / 1024; sep = " " }' "$OUT/rss-$name.txt")
    R[$name.rss_stats]=$(awk -v a="${R[$name.measure_start]}" '
        $1 >= a && $2 > 0 { if (n == 0) { first = $2; min = $2; max = $2 } last = $2; n++
                            if ($2 < min) min = $2; if ($2 > max) max = $2 }
        END { if (n) printf "%d samples: first %.1f, last %.1f, min %.1f, max %.1f MiB (last - first %+.1f MiB)", n, first/1024, last/1024, min/1024, max/1024, (last-first)/1024; else print "no samples" }' "$OUT/rss-$name.txt")
    R[$name.reloads]=$(count_lines "$OUT/gateway-$name.audit.jsonl" '"config_reload"')
    R[$name.log_warn]=$(count_lines "$OUT/gateway-$name.log" 'WARN')
    R[$name.log_error]=$(count_lines "$OUT/gateway-$name.log" 'ERROR')
    say "[$name] stopping the gateway (SIGTERM)"
    stop_pid "$GATEWAY_PID" 25
    GATEWAY_PID=
    R[$name.ratio]=$(calc "sprintf(\"%.3f\", $(kv "${R[$name.max]}" exchanges_per_sec) / $FLOOR)")
}

# The HTTP stack alone: the same server and layers answering POST /oauth/token with no work
# (examples/http_floor.rs), sent the same requests, in this run; then the same with the
# exchange's crypto and nothing else (`--crypto`): the most an exchange over this stack can make.
http_floor() { # KEY [ARGS...]: R[KEY.*]
    local key=$1 config=$OUT/config/gateway-small.toml pid i ticks line
    shift
    say "[http floor $key] taskset -c $GATEWAY_CORE examples/http_floor --config $config $*"
    port_busy "$GATEWAY_PORT" && die "127.0.0.1:$GATEWAY_PORT is in use"
    taskset -c "$GATEWAY_CORE" "$BIN/examples/http_floor" --config "$config" "$@" >"$OUT/$key-floor.log" 2>&1 &
    GATEWAY_PID=$!
    pid=$GATEWAY_PID
    for ((i = 0; i < 200; i++)); do
        port_busy "$GATEWAY_PORT" && break
        kill -0 "$pid" 2>/dev/null || die "http_floor exited: $(cat "$OUT/$key-floor.log")"
        sleep 0.05
    done
    ticks=$(cpu_ticks "$pid")
    run_wrk "$key-floor" "$DURATION" "$OUT/tokens-floor" >/dev/null
    ticks=$(($(cpu_ticks "$pid") - ticks))
    line=$(grep '^WRK_RESULT' "$OUT/wrk-$key-floor.txt") || die "[http floor $key] wrk printed no result"
    R[$key.max]=$line
    R[$key.cpu_us]=$(cpu_us_per "$ticks" "$(kv "$line" requests)")
    R[$key.busy]=$(calc "sprintf(\"%.0f\", 100 * $ticks / $CLK_TCK / $DURATION)")
    R[$key.ratio]=$(calc "sprintf(\"%.3f\", $(kv "$line" exchanges_per_sec) / $FLOOR)")
    echo "POSTs: $(kv "$line" exchanges_per_sec)/s, statuses $(kv "$line" statuses); CPU per request ${R[$key.cpu_us]} us (core busy ${R[$key.busy]} %)"
    stop_pid "$GATEWAY_PID" 10
    GATEWAY_PID=
}
tokens "tokens-floor.txt" 20000 # nothing is verified: tokens may repeat, and both runs share them
split_tokens "$OUT/tokens-floor.txt" "$OUT/tokens-floor"
http_floor http
http_floor crypto --crypto

CONFIGS=(small)
[ "${#SCALE_FLAG[@]}" -eq 1 ] && CONFIGS+=(scale)
for name in "${CONFIGS[@]}"; do
    run_config "$name" "$OUT/config/gateway-$name.toml"
done
if [ "$SCALE" -eq 1 ]; then
    # shellcheck source=scripts/load/iam-scale.sh
    . "$ROOT/scripts/load/iam-scale.sh"
    iam_scale_run
fi

# ---------------------------------------------------------------------------------------------
ms() { calc "sprintf(\"%.2f\", $1 / 1000)"; }
report() { # NAME
    local n=$1 m=${R[$1.max]} r=${R[$1.rate]}
    echo "--- config: $n  ($(sed 's/[{}"]//g; s/,/, /g' <<<"${R[$n.readyz]}"))"
    echo "config load, start -> /readyz 200:  ${R[$n.ready_s]} s; RSS at ready $(mib "${R[$n.ready_rss]}") MiB (VmHWM then $(mib "${R[$n.ready_hwm]}") MiB)"
    echo "max throughput (wrk, $CONNECTIONS conns, ${DURATION} s):  $(kv "$m" exchanges_per_sec) exchanges/s"
    echo "    latency p50 $(ms "$(kv "$m" p50_us)") ms, p90 $(ms "$(kv "$m" p90_us)") ms, p99 $(ms "$(kv "$m" p99_us)") ms, max $(ms "$(kv "$m" max_us)") ms"
    echo "    responses: $(kv "$m" statuses); non-2xx $(kv "$m" non2xx); socket errors $(kv "$m" errors); tokens sent $(kv "$m" issued), reused $(kv "$m" reused)"
    echo "fixed rate $(kv "$r" target_rps) req/s (half the max, open loop, $CONNECTIONS conns, ${DURATION} s):  achieved $(kv "$r" achieved_rps) exchanges/s"
    echo "    latency from due time p50 $(ms "$(kv "$r" p50_us)") ms, p90 $(ms "$(kv "$r" p90_us)") ms, p99 $(ms "$(kv "$r" p99_us)") ms, max $(ms "$(kv "$r" max_us)") ms"
    echo "    latency from getting a connection p50 $(ms "$(kv "$r" sent_p50_us)") ms, p99 $(ms "$(kv "$r" sent_p99_us)") ms, max $(ms "$(kv "$r" sent_max_us)") ms"
    echo "    responses: $(kv "$r" statuses); non-2xx $(kv "$r" non2xx); failed $(kv "$r" failed); not sent $(kv "$r" dropped); scheduled >5 ms late $(kv "$r" late); peak outstanding $(kv "$r" peak_outstanding) on $CONNECTIONS connections"
    echo "ratio max exchanges/s / floor ops/s:  ${R[$n.ratio]}"
    local crypto ours
    crypto=$(calc "sprintf(\"%.1f\", 1000000 / $FLOOR)")
    ours=$(calc "sprintf(\"%.1f\", ${R[$n.cpu_us]} - $crypto - ${R[http.cpu_us]})")
    echo "gateway CPU per exchange ${R[$n.cpu_us]} us = crypto ${crypto} us (floor) + HTTP stack ${R[http.cpu_us]} us (no-work POST) + the rest ${ours} us"
    echo "    against the stack with the crypto alone (${R[crypto.cpu_us]} us a POST): the gateway's own work $(calc "sprintf(\"%.1f\", ${R[$n.cpu_us]} - ${R[crypto.cpu_us]})") us; what the slower pace adds to the stack $(calc "sprintf(\"%.1f\", ${R[crypto.cpu_us]} - $crypto - ${R[http.cpu_us]})") us"
    echo "gateway RSS: peak (VmHWM) $(mib "${R[$n.hwm]}") MiB; after load $(mib "${R[$n.end_rss]}") MiB"
    echo "    every second during the measured runs: ${R[$n.rss_stats]}"
    echo "    samples (MiB): ${R[$n.rss_series]}"
    echo "JWKS fetches served by the issuer after warm-up:  ${R[$n.keys]} (must be 0)"
    [ "$n" = scale ] && echo "requests for the 9 999 never-used federations' keys (GET /f/...):  ${R[$n.other]} (must be 0)"
    echo "configuration reloads during the run (audit log):  ${R[$n.reloads]} (must be 0)"
    echo "gateway log (RUST_LOG=warn): ${R[$n.log_warn]} WARN, ${R[$n.log_error]} ERROR lines ($OUT/gateway-$n.log; stdout, the audit log: $OUT/gateway-$n.audit.jsonl)"
}

say "summary"
echo "machine: $(nproc --all) cores; gateway pinned to core $GATEWAY_CORE, load generators to core $LOAD_CORE; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "every request carries a distinct caller token (RS256, $SUBJECTS subjects); phases of $DURATION s"
echo "single-core floor (RS256 verify + ES256 sign, core $GATEWAY_CORE): $FLOOR ops/s"
echo "HTTP stack alone (examples/http_floor, same requests): $(kv "${R[http.max]}" exchanges_per_sec) POSTs/s at ${R[http.busy]} % of core $GATEWAY_CORE, ${R[http.cpu_us]} us CPU each"
echo "HTTP stack + the crypto alone (examples/http_floor --crypto): $(kv "${R[crypto.max]}" exchanges_per_sec) POSTs/s at ${R[crypto.busy]} % of core $GATEWAY_CORE, ${R[crypto.cpu_us]} us CPU each; ratio to the floor ${R[crypto.ratio]} (the most an exchange over this stack makes here)"
for name in "${CONFIGS[@]}"; do
    report "$name"
done
if [ "${#SCALE_FLAG[@]}" -eq 1 ]; then
    echo "--- small vs scale"
    printf '%-40s %14s %14s\n' "" small scale
    printf '%-40s %14s %14s\n' "federations / credentials" \
        "$(sed -n 's/.*"federations":\([0-9]*\).*/\1/p' <<<"${R[small.readyz]}")/$(sed -n 's/.*"federated_credentials":\([0-9]*\).*/\1/p' <<<"${R[small.readyz]}")" \
        "$(sed -n 's/.*"federations":\([0-9]*\).*/\1/p' <<<"${R[scale.readyz]}")/$(sed -n 's/.*"federated_credentials":\([0-9]*\).*/\1/p' <<<"${R[scale.readyz]}")"
    printf '%-40s %14s %14s\n' "config load to /readyz (s)" "${R[small.ready_s]}" "${R[scale.ready_s]}"
    printf '%-40s %14s %14s\n' "max exchanges/s" "$(kv "${R[small.max]}" exchanges_per_sec)" "$(kv "${R[scale.max]}" exchanges_per_sec)"
    printf '%-40s %14s %14s\n' "max-run p99 (ms)" "$(ms "$(kv "${R[small.max]}" p99_us)")" "$(ms "$(kv "${R[scale.max]}" p99_us)")"
    printf '%-40s %14s %14s\n' "half-rate p99 from due time (ms)" "$(ms "$(kv "${R[small.rate]}" p99_us)")" "$(ms "$(kv "${R[scale.rate]}" p99_us)")"
    printf '%-40s %14s %14s\n' "ratio to floor" "${R[small.ratio]}" "${R[scale.ratio]}"
    printf '%-40s %14s %14s\n' "RSS at ready (MiB)" "$(mib "${R[small.ready_rss]}")" "$(mib "${R[scale.ready_rss]}")"
    printf '%-40s %14s %14s\n' "RSS after load (MiB)" "$(mib "${R[small.end_rss]}")" "$(mib "${R[scale.end_rss]}")"
    printf '%-40s %14s %14s\n' "peak RSS, VmHWM (MiB)" "$(mib "${R[small.hwm]}")" "$(mib "${R[scale.hwm]}")"
fi
FAIL=0
for name in "${CONFIGS[@]}"; do
    [ "${R[$name.keys]}" = 0 ] || { echo "CHECK FAILED [$name]: ${R[$name.keys]} JWKS fetches during the measured runs"; FAIL=1; }
    [ "${R[$name.other]}" = 0 ] || { echo "CHECK FAILED [$name]: ${R[$name.other]} fetches of never-used federations' keys"; FAIL=1; }
    if [ "$(kv "${R[$name.max]}" non2xx)" != 0 ] || [ "$(kv "${R[$name.rate]}" non2xx)" != 0 ]; then
        echo "CHECK FAILED [$name]: non-2xx responses"
        FAIL=1
    fi
    if [ "$(kv "${R[$name.max]}" errors)" != 0 ] || [ "$(kv "${R[$name.rate]}" failed)" != 0 ]; then
        echo "CHECK FAILED [$name]: socket errors or failed requests"
        FAIL=1
    fi
    [ "${R[$name.reloads]}" = 0 ] || { echo "CHECK FAILED [$name]: ${R[$name.reloads]} configuration reloads during the run"; FAIL=1; }
    [ "$(kv "${R[$name.max]}" reused)" = 0 ] || { echo "CHECK FAILED [$name]: tokens reused"; FAIL=1; }
done
if [ "$SCALE" -eq 1 ]; then
    iam_scale_report
    [ "$IAM_FAIL" = 0 ] || FAIL=1
fi
if [ "$FAIL" = 0 ]; then
    echo "checks: no non-2xx, no socket error, no token reused, no JWKS fetch after warm-up, no reload"
fi
echo "files: $OUT (configs, token files, wrk/loadgen outputs, RSS samples, logs)"
exit "$FAIL"
