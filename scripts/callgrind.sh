#!/usr/bin/env bash
# Instructions per exchange, counted by callgrind: a figure that does not move with the
# machine's load (valgrind counts instructions, not seconds), for comparing builds.
#
#   bash scripts/callgrind.sh [--exchanges N]
#
# It builds the release binaries and examples, prepares a load-test tree in target/callgrind/
# (examples/loadgen_setup: a static OIDC issuer, a gateway config, distinct caller tokens),
# serves the issuer with python's http.server, and then, for the gateway
# (`wif-gateway serve`) and for the HTTP stack alone (examples/http_floor: the same server and
# layers answering POST /oauth/token with no work), runs the server under
# `valgrind --tool=callgrind` twice: once answering 100 requests and once 100 + N (default 1000),
# all sent one after another on one keep-alive connection by a small Python client, each with a
# different caller token. The difference of the two runs' totals divided by N is the cost of one
# request with start-up, warm-up (the JWKS fetch) and shutdown cancelled out. Two start-up costs
# vary from run to run by millions of instructions and would not cancel: the seeding of aws-lc's
# entropy source (its jitter sampling) and the one-time initializations of lazy statics (a clock
# calibration among them); their inclusive counts are taken out of each run's total. The crypto floor
# (examples/floor --iterations: one RS256 verification + one ES256 signature) is counted by
# callgrind's toggle on its loop alone (its key generation takes a random time). It prints
# instructions per exchange, per no-work POST, per crypto operation, and what is left (the
# gateway's own work), and keeps the callgrind outputs (callgrind_annotate reads them) in
# target/callgrind/. Callgrind counts user-space instructions only: time in the kernel (the
# sockets' system calls) is not in these figures; scripts/load.sh measures it.
#
# Environment overrides: GATEWAY_PORT (18090), ISSUER_PORT (18091).

set -euo pipefail
shopt -s inherit_errexit

N=1000
while [ $# -gt 0 ]; do
    case "$1" in
        --exchanges) N=$2; shift ;;
        --exchanges=*) N=${1#--exchanges=} ;;
        -h | --help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
case "$N" in '' | *[!0-9]*) echo "--exchanges must be a whole number" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/target/callgrind
BIN=$ROOT/target/release
GATEWAY_PORT=${GATEWAY_PORT:-18090}
ISSUER_PORT=${ISSUER_PORT:-18091}
BASE=100
ISSUER_PID=
SERVER_PID=

cleanup() {
    for pid in $SERVER_PID $ISSUER_PID; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { printf 'callgrind.sh: error: %s\n' "$*" >&2; exit 1; }

command -v valgrind >/dev/null || die "valgrind is required (Debian package valgrind)"
cargo build --release --examples --bins 2>&1 | tail -n 1
rm -rf "$OUT"
mkdir -p "$OUT"
"$BIN/examples/loadgen_setup" --out "$OUT" --subjects 1000 --port "$ISSUER_PORT" \
    --gateway-port "$GATEWAY_PORT" --tokens $((2 * (BASE + N) + 2)) >/dev/null
# shellcheck source=/dev/null
. "$OUT/load.env"
python3 -u -m http.server "$ISSUER_PORT" --bind 127.0.0.1 --directory "$OUT/issuer" \
    >"$OUT/issuer.log" 2>&1 &
ISSUER_PID=$!

# send FIRST COUNT: exchanges of tokens FIRST.. of tokens.txt on one connection; all must be 200
send() {
    python3 - "$GATEWAY_PORT" "$SERVICE_ACCOUNT" "$OUT/tokens.txt" "$1" "$2" <<'EOF'
import http.client, sys, time
port, audience, path, first, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
tokens = [t for t in open(path).read().split("\n") if t][first:first + count]
assert len(tokens) == count, "not enough tokens"
for _ in range(600):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
        conn.connect()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the server did not listen")
head = ("grant_type=urn:ietf:params:oauth:grant-type:token-exchange"
        "&requested_token_type=urn:ietf:params:oauth:token-type:access_token"
        f"&audience={audience}&subject_token=")
tail = "&subject_token_type=urn:ietf:params:oauth:token-type:id_token"
for token in tokens:
    conn.request("POST", "/oauth/token", head + token + tail,
                 {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"HTTP {response.status}: {body[:200]!r}")
EOF
}

# run NAME COUNT FIRST PROGRAM ARGS...: the server under callgrind answering COUNT requests
run() {
    local name=$1 count=$2 first=$3
    shift 3
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$name.out" "$@" \
        >"$OUT/$name.stdout" 2>"$OUT/$name.log" &
    SERVER_PID=$!
    send "$first" "$count" || die "$name: $(tail -n 5 "$OUT/$name.log")"
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
    local total once
    total=$(sed -n 's/^summary: \([0-9]*\)$/\1/p; s/^totals: \([0-9]*\)$/\1/p' "$OUT/callgrind.$name.out" | tail -n 1)
    [ -n "$total" ] || die "$name: no callgrind total"
    # The start-up's variable part: inclusive counts of the entropy source and of lazy statics'
    # initializers. In these programs neither runs inside the other (callgrind_annotate's caller
    # tree shows the clock calibration under the metrics recorder's build, the entropy source under
    # aws-lc's first random draw); a sum over the total would mean that changed.
    once=$(callgrind_annotate --inclusive=yes --threshold=100 "$OUT/callgrind.$name.out" 2>/dev/null |
        awk '/get_entropy_source|OnceCell<T>::initialize::\{\{closure\}\}/ { gsub(",", "", $1); n += $1 } END { printf "%d", n }')
    [ "$once" -lt "$total" ] || die "$name: start-up counts $once exceed the total $total"
    echo $((total - once))
}

CONFIG=$OUT/config/gateway-small.toml
measure() { # LABEL PROGRAM ARGS...: prints instructions per request
    local label=$1 a b
    shift
    a=$(run "$label-$BASE" "$BASE" 0 "$@")
    b=$(run "$label-$((BASE + N))" $((BASE + N)) "$BASE" "$@")
    awk -v a="$a" -v b="$b" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / n }'
}

echo "==> the gateway under callgrind: $BASE, then $((BASE + N)) exchanges"
export RUST_LOG=warn
EXCHANGE=$(measure gateway "$BIN/wif-gateway" serve --config "$CONFIG")
echo "==> the HTTP stack alone (examples/http_floor) under callgrind: $BASE, then $((BASE + N)) POSTs"
STACK=$(measure http-floor "$BIN/examples/http_floor" --config "$CONFIG")
echo "==> the crypto floor (examples/floor: RS256 verify + ES256 sign) under callgrind: $N operations"
floor_run() { # COUNT: instructions of the floor's COUNT operations (its key generation not counted)
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.floor-$1.out" \
        --collect-atstart=no --toggle-collect='*counted_iterations*' \
        "$BIN/examples/floor" --iterations "$1" >"$OUT/floor-$1.log" 2>&1 || die "floor: $(tail -n 5 "$OUT/floor-$1.log")"
    sed -n 's/^summary: \([0-9]*\)$/\1/p; s/^totals: \([0-9]*\)$/\1/p' "$OUT/callgrind.floor-$1.out" | tail -n 1
}
CRYPTO=$(awk -v t="$(floor_run "$N")" -v n="$N" 'BEGIN { printf "%.0f", t / n }')
[ "$CRYPTO" -gt 0 ] && [ "$EXCHANGE" -gt 0 ] && [ "$STACK" -gt 0 ] || die "a measurement failed (logs in $OUT)"
echo "instructions per exchange:            $EXCHANGE"
echo "instructions per no-work POST:        $STACK"
echo "instructions per crypto floor op:     $CRYPTO"
echo "the rest (exchange - stack - crypto): $((EXCHANGE - STACK - CRYPTO))"
echo "CALLGRIND exchange=$EXCHANGE stack=$STACK crypto=$CRYPTO rest=$((EXCHANGE - STACK - CRYPTO)) n=$N"
echo "files: $OUT (callgrind_annotate $OUT/callgrind.gateway-$((BASE + N)).out)"
