# shellcheck shell=bash
# The IAM plane at scale, for `scripts/load.sh --scale` (sourced by it: it uses load.sh's
# variables and functions: OUT, BIN, R, run_config, run_wrk, tokens, split_tokens, say, kv, …).
#
# iam_scale_run, after load.sh's own runs:
#
#   1. seeds two SQLite stores with examples/loadgen_store (bootstrap, then the load's
#      federation and service account through the store API, then plain SQL in one transaction):
#      "store-small", a credential per load subject and ~10 access bindings, and "store-scale",
#      SCALE_CREDENTIALS federated credentials and SCALE_BINDINGS access bindings (the load's
#      among them); the seeding time is printed, not a figure;
#   2. runs each like load.sh's configs (run_config: start pinned to core 0 → /readyz, RSS,
#      max exchanges/s with wrk, latency at half the max), the tokens' subjects having their
#      credentials in the store;
#   3. writes under load (SQLite): starts store-scale again and, WRITE_ROUNDS times (the
#      machine's run-to-run noise is as large as the effect, so the median round's change is
#      the figure), runs wrk at max throughput for
#      DURATION s without writes, then again while examples/loadgen_store writes (core 1, beside
#      wrk) makes WRITE_RATE management writes per second through the REST API with the
#      administrator's IAM token (4 in 5 create a federated credential for a fresh subject, 1 in
#      5 changes access bindings) and times write-visible-to-exchange on the same gateway for
#      every credential created (from the create's answer to the first 200 of an exchange of a
#      token for that subject);
#   4. creates per second through REST (POST /iam/v1/workload/federatedCredentials), one client
#      (CREATES_SEQUENTIAL creates) and CREATE_CLIENTS concurrent clients (CREATES_CONCURRENT);
#   5. with a PostgreSQL URL (--scale-pg URL, or SCALE_PG_URL): the same store in a schema of
#      its own (wif_load_<pid>, dropped at exit), two replicas on it, A on GATEWAY_PORT and B on
#      REPLICA_PORT, both pinned to core 0 (started one after the other); wrk on A without and
#      with the writes on A, visibility measured on A and on B (B polled every 5 ms); then the
#      creates on A.
#
# iam_scale_report prints the figures beside their targets; iam_scale_cleanup stops what
# iam_scale_run started and drops the PostgreSQL schema.
#
# Environment overrides: SCALE_CREDENTIALS (1000000), SCALE_BINDINGS (1000000), WRITE_RATE
# (100), WRITE_ROUNDS (3), CREATES_SEQUENTIAL (300), CREATES_CONCURRENT (800), CREATE_CLIENTS (8), REPLICA_PORT
# (GATEWAY_PORT + 2), SCALE_PG_URL (none: the PostgreSQL part is skipped).

SCALE_CREDENTIALS=${SCALE_CREDENTIALS:-1000000}
SCALE_BINDINGS=${SCALE_BINDINGS:-1000000}
WRITE_RATE=${WRITE_RATE:-100}
WRITE_ROUNDS=${WRITE_ROUNDS:-3}
CREATES_SEQUENTIAL=${CREATES_SEQUENTIAL:-300}
CREATES_CONCURRENT=${CREATES_CONCURRENT:-800}
CREATE_CLIENTS=${CREATE_CLIENTS:-8}
REPLICA_PORT=${REPLICA_PORT:-$((GATEWAY_PORT + 2))}
SCALE_PG_URL=${SCALE_PG_URL:-}
IAM_OUT=$OUT/iam
IAM_PG_SCHEMA=
IAM_B_PID=
IAM_WRITER_PID=
IAM_FAIL=0

# shellcheck disable=SC2317 # invoked by the trap
iam_scale_cleanup() {
    stop_pid "$IAM_WRITER_PID" 2
    stop_pid "$IAM_B_PID" 25
    stop_pid "$GATEWAY_PID" 25
    IAM_WRITER_PID='' IAM_B_PID='' GATEWAY_PID=''
    if [ -n "$IAM_PG_SCHEMA" ] && command -v psql >/dev/null; then
        psql -q "$SCALE_PG_URL" -c "DROP SCHEMA IF EXISTS $IAM_PG_SCHEMA CASCADE" >/dev/null 2>&1 || true
    fi
    IAM_PG_SCHEMA=
}

iam_seed() { # NAME STORE [ARGS…]: seeds $IAM_OUT/NAME; prints loadgen_store's line
    local name=$1 store=$2
    shift 2
    "$BIN/examples/loadgen_store" seed --dir "$IAM_OUT/$name" --store "$store" \
        --gateway-port "$GATEWAY_PORT" --issuer-port "$ISSUER_PORT" --subjects "$SUBJECTS" "$@"
    R[iam.$name.seed_s]=$(sed -n "s/^SEED_SECONDS='\(.*\)'/\1/p" "$IAM_OUT/$name/store.env")
}

iam_env() { # NAME KEY: a value of $IAM_OUT/NAME/store.env
    sed -n "s/^$2='\(.*\)'/\1/p" "$IAM_OUT/$1/store.env"
}

# iam_start LABEL CONFIG PORT: starts a gateway pinned to core 0 (its pid in STARTED_PID) and
# waits for /readyz; R[iam.LABEL.ready_s], R[iam.LABEL.ready_rss] (kB).
STARTED_PID=
iam_start() {
    local label=$1 config=$2 port=$3 t0 pid
    port_busy "$port" && die "127.0.0.1:$port is in use"
    t0=$(date +%s%N)
    RUST_LOG=warn taskset -c "$GATEWAY_CORE" "$BIN/wif-gateway" serve --config "$config" \
        >"$OUT/gateway-iam-$label.audit.jsonl" 2>"$OUT/gateway-iam-$label.log" &
    pid=$!
    STARTED_PID=$pid
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || die "[$label] the gateway exited: $(tail -n 20 "$OUT/gateway-iam-$label.log")"
        [ $(($(date +%s%N) - t0)) -lt $((READY_TIMEOUT * 1000000000)) ] || die "[$label] not ready after $READY_TIMEOUT s"
        sleep 0.02
    done
    R[iam.$label.ready_s]=$(calc "sprintf(\"%.2f\", ($(date +%s%N) - $t0) / 1e9)")
    R[iam.$label.ready_rss]=$(rss_kb "$pid" VmRSS)
    echo "[$label] ready after ${R[iam.$label.ready_s]} s, RSS $(mib "${R[iam.$label.ready_rss]}") MiB"
}

iam_warm() { # URL: one exchange of a warm-up token (fetches the issuer's JWKS)
    local saved=$GATEWAY_URL status
    GATEWAY_URL=$1
    WARM_LINE=$((WARM_LINE + 1))
    status=$(exchange_status "$(sed -n "${WARM_LINE}p" "$OUT/tokens-warm.txt")")
    GATEWAY_URL=$saved
    [ "$status" = 200 ] || die "warm-up exchange on $1: HTTP $status $(head -c 300 "$OUT/last-exchange.json")"
}

# iam_writes LABEL [OTHER_URL] ENV_NAME: on the running gateway, WRITE_ROUNDS rounds of wrk
# DURATION s without writes, then with the writer (each round with tokens of its own, the
# writer's creates for subjects no round used before). Per round r: R[iam.LABEL.nowrites.r],
# R[iam.LABEL.writes.r] (WRK_RESULT), R[iam.LABEL.writer.r] (WRITES_RESULT),
# R[iam.LABEL.delta.r] (%); R[iam.LABEL.round] is the round with the median change, whose
# results are also R[iam.LABEL.nowrites], R[iam.LABEL.writes] and R[iam.LABEL.writer].
iam_writes() {
    local label=$1 other=${2:-} env=$IAM_OUT/$3/store.env rate n seconds line r first a b w
    rate=$(kv "${R[store-scale.max]}" exchanges_per_sec)
    n=$(calc "int($rate * $DURATION * 1.4) + 2000")
    say "[$label] exchange load without and with $WRITE_RATE writes/s, $WRITE_ROUNDS rounds: $n tokens per wrk run"
    for ((r = 1; r <= WRITE_ROUNDS; r++)); do
        tokens "tokens-iam-$label-a$r.txt" "$n"
        tokens "tokens-iam-$label-b$r.txt" "$n"
        split_tokens "$OUT/tokens-iam-$label-a$r.txt" "$OUT/tokens-iam-$label-a$r"
        split_tokens "$OUT/tokens-iam-$label-b$r.txt" "$OUT/tokens-iam-$label-b$r"
    done
    seconds=$((DURATION > 3 ? DURATION - 2 : 1))
    # Token k of this file has subject k: those past SUBJECTS have no credential yet.
    "$BIN/examples/loadgen_setup" --out "$OUT" --port "$ISSUER_PORT" --gateway-port "$GATEWAY_PORT" \
        --tokens-only --subjects $((SUBJECTS + WRITE_RATE * seconds * WRITE_ROUNDS + 10)) \
        --tokens $((SUBJECTS + WRITE_RATE * seconds * WRITE_ROUNDS + 10)) --tokens-file "tokens-iam-$label-new.txt" | grep '^tokens:'

    first=$SUBJECTS
    for ((r = 1; r <= WRITE_ROUNDS; r++)); do
        say "[$label] round $r: wrk without writes"
        run_wrk "iam-$label-nowrites-$r" "$DURATION" "$OUT/tokens-iam-$label-a$r" >/dev/null
        a=$(grep '^WRK_RESULT' "$OUT/wrk-iam-$label-nowrites-$r.txt") || die "[$label] wrk printed no result"
        echo "without writes: $(kv "$a" exchanges_per_sec) exchanges/s, statuses $(kv "$a" statuses)"

        say "[$label] round $r: wrk with $WRITE_RATE writes/s for $seconds s (examples/loadgen_store writes on core $LOAD_CORE)"
        local args=(writes --env "$env" --tokens "$OUT/tokens-iam-$label-new.txt" --first "$first"
            --rate "$WRITE_RATE" --duration "$seconds" --lead-ms 1000)
        [ -n "$other" ] && args+=(--other "$other")
        taskset -c "$LOAD_CORE" "$BIN/examples/loadgen_store" "${args[@]}" >"$OUT/writes-$label-$r.txt" 2>&1 &
        IAM_WRITER_PID=$!
        for ((i = 0; i < 600; i++)); do
            grep -q '^WRITER_READY' "$OUT/writes-$label-$r.txt" && break
            kill -0 "$IAM_WRITER_PID" 2>/dev/null || die "[$label] the writer exited: $(cat "$OUT/writes-$label-$r.txt")"
            sleep 0.1
        done
        run_wrk "iam-$label-writes-$r" "$DURATION" "$OUT/tokens-iam-$label-b$r" >/dev/null
        wait "$IAM_WRITER_PID" || die "[$label] the writer failed: $(cat "$OUT/writes-$label-$r.txt")"
        IAM_WRITER_PID=
        grep -v '^WRITER_READY' "$OUT/writes-$label-$r.txt"
        w=$(grep '^WRITES_RESULT' "$OUT/writes-$label-$r.txt") || die "[$label] the writer printed no result"
        b=$(grep '^WRK_RESULT' "$OUT/wrk-iam-$label-writes-$r.txt") || die "[$label] wrk printed no result"
        echo "with writes: $(kv "$b" exchanges_per_sec) exchanges/s, statuses $(kv "$b" statuses)"
        R[iam.$label.nowrites.$r]=$a
        R[iam.$label.writes.$r]=$b
        R[iam.$label.writer.$r]=$w
        R[iam.$label.delta.$r]=$(iam_pct "$(kv "$b" exchanges_per_sec)" "$(kv "$a" exchanges_per_sec)")
        first=$((first + $(kv "$w" creates)))
    done
    r=$(for ((i = 1; i <= WRITE_ROUNDS; i++)); do echo "${R[iam.$label.delta.$i]} $i"; done |
        sort -g | sed -n "$(((WRITE_ROUNDS + 1) / 2))p" | cut -d' ' -f2)
    R[iam.$label.round]=$r
    R[iam.$label.nowrites]=${R[iam.$label.nowrites.$r]}
    R[iam.$label.writes]=${R[iam.$label.writes.$r]}
    R[iam.$label.writer]=${R[iam.$label.writer.$r]}
}

iam_creates() { # LABEL ENV_NAME: REST creates, one client then CREATE_CLIENTS
    local label=$1 env=$IAM_OUT/$2/store.env
    say "[$label] creates through REST: $CREATES_SEQUENTIAL by one client, $CREATES_CONCURRENT by $CREATE_CLIENTS"
    taskset -c "$LOAD_CORE" "$BIN/examples/loadgen_store" creates --env "$env" \
        --count "$CREATES_SEQUENTIAL" --clients 1 | tee "$OUT/creates-$label-1.txt"
    taskset -c "$LOAD_CORE" "$BIN/examples/loadgen_store" creates --env "$env" \
        --count "$CREATES_CONCURRENT" --clients "$CREATE_CLIENTS" | tee "$OUT/creates-$label-$CREATE_CLIENTS.txt"
    R[iam.$label.creates1]=$(grep '^CREATES_RESULT' "$OUT/creates-$label-1.txt") || die "[$label] no creates result"
    R[iam.$label.createsN]=$(grep '^CREATES_RESULT' "$OUT/creates-$label-$CREATE_CLIENTS.txt") || die "[$label] no creates result"
}

iam_scale_run() {
    trap 'iam_scale_cleanup; cleanup' EXIT
    rm -rf "$IAM_OUT"
    mkdir -p "$IAM_OUT"
    say "[iam] seeding SQLite stores (examples/loadgen_store seed)"
    iam_seed small "sqlite:$IAM_OUT/small.db" --credentials "$SUBJECTS" --bindings 10
    iam_seed scale "sqlite:$IAM_OUT/scale.db" --credentials "$SCALE_CREDENTIALS" --bindings "$SCALE_BINDINGS"

    local name saved_sa=$SERVICE_ACCOUNT
    for name in small scale; do
        SERVICE_ACCOUNT=$(iam_env "$name" SERVICE_ACCOUNT)
        run_config "store-$name" "$IAM_OUT/$name/gateway.toml"
    done

    say "[iam] SQLite: store-scale again, for writes under load"
    SERVICE_ACCOUNT=$(iam_env scale SERVICE_ACCOUNT)
    iam_start sqlite "$IAM_OUT/scale/gateway.toml" "$GATEWAY_PORT"
    GATEWAY_PID=$STARTED_PID
    iam_warm "$GATEWAY_URL"
    iam_writes sqlite "" scale
    iam_creates sqlite scale
    R[iam.sqlite.hwm]=$(rss_kb "$GATEWAY_PID" VmHWM)
    stop_pid "$GATEWAY_PID" 25
    GATEWAY_PID=

    if [ -n "$SCALE_PG_URL" ]; then
        IAM_PG_SCHEMA=wif_load_$$
        say "[iam] PostgreSQL: seeding schema $IAM_PG_SCHEMA of $SCALE_PG_URL"
        iam_seed pg "$SCALE_PG_URL" --schema "$IAM_PG_SCHEMA" --replica-port "$REPLICA_PORT" \
            --credentials "$SCALE_CREDENTIALS" --bindings "$SCALE_BINDINGS"
        SERVICE_ACCOUNT=$(iam_env pg SERVICE_ACCOUNT)
        iam_start pg-a "$IAM_OUT/pg/gateway.toml" "$GATEWAY_PORT"
        GATEWAY_PID=$STARTED_PID
        iam_start pg-b "$IAM_OUT/pg/gateway-b.toml" "$REPLICA_PORT"
        IAM_B_PID=$STARTED_PID
        iam_warm "$GATEWAY_URL"
        iam_warm "http://127.0.0.1:$REPLICA_PORT"
        iam_writes pg "http://127.0.0.1:$REPLICA_PORT" pg
        iam_creates pg pg
        R[iam.pg-a.hwm]=$(rss_kb "$GATEWAY_PID" VmHWM)
        R[iam.pg-b.hwm]=$(rss_kb "$IAM_B_PID" VmHWM)
        stop_pid "$IAM_B_PID" 25
        stop_pid "$GATEWAY_PID" 25
        IAM_B_PID='' GATEWAY_PID=''
        iam_scale_cleanup
    fi
    SERVICE_ACCOUNT=$saved_sa
}

# ---------------------------------------------------------------------------------------------
iam_ms() { [ -n "$1" ] && calc "sprintf(\"%.1f\", $1 / 1000)" || echo "-"; }
iam_pct() { calc "sprintf(\"%+.1f\", 100 * ($1 - $2) / ($2 > 0 ? $2 : 1))"; } # A B: A vs B, %
iam_check() { # OK TEXT
    if [ "$1" = 1 ]; then echo "    [ok]   $2"; else echo "    [MISS] $2"; fi
}
iam_le() { calc "($1 <= $2) ? 1 : 0"; }

iam_visibility() { # LABEL PREFIX: "p50 … ms, p99 … ms, max … ms (n = …, not seen in 10 s: …)"
    local w=${R[iam.$1.writer]}
    echo "p50 $(iam_ms "$(kv "$w" "$2_p50_us")") ms, p99 $(iam_ms "$(kv "$w" "$2_p99_us")") ms, max $(iam_ms "$(kv "$w" "$2_max_us")") ms (n = $(kv "$w" "$2_n"), not seen within 10 s: $(kv "$w" "$2_lost"))"
}

iam_writes_report() { # LABEL
    local l=$1 a=${R[iam.$1.nowrites]} b=${R[iam.$1.writes]} w=${R[iam.$1.writer]} delta r ra rb rw
    for ((r = 1; r <= WRITE_ROUNDS; r++)); do
        ra=${R[iam.$l.nowrites.$r]} rb=${R[iam.$l.writes.$r]} rw=${R[iam.$l.writer.$r]}
        echo "  round $r: exchanges/s without writes $(kv "$ra" exchanges_per_sec), with $(kv "$rw" per_sec) writes/s $(kv "$rb" exchanges_per_sec): ${R[iam.$l.delta.$r]} %; writes answered at $(kv "$rw" done_per_sec)/s, p99 $(iam_ms "$(kv "$rw" write_p99_us)") ms; visible p99 $(iam_ms "$(kv "$rw" same_p99_us)") ms"
        if [ "$(kv "$rw" failed)" != 0 ] || [ "$(kv "$rw" same_lost)" != 0 ] || [ "$(kv "$rw" other_lost)" != 0 ] || [ "$(kv "$ra" non2xx)" != 0 ] || [ "$(kv "$rb" non2xx)" != 0 ]; then
            echo "CHECK FAILED [iam $l round $r]: failed writes, unseen credentials or non-2xx exchanges"
            IAM_FAIL=1
        fi
    done
    delta=${R[iam.$l.delta.${R[iam.$l.round]}]}
    echo "  the median round (${R[iam.$l.round]}): exchanges/s without writes $(kv "$a" exchanges_per_sec), with $(kv "$w" per_sec) writes/s $(kv "$b" exchanges_per_sec): $delta %   (target: within 10 %)"
    echo "    wrk p50/p99 without writes $(iam_ms "$(kv "$a" p50_us)")/$(iam_ms "$(kv "$a" p99_us)") ms, with $(iam_ms "$(kv "$b" p50_us)")/$(iam_ms "$(kv "$b" p99_us)") ms; non-2xx $(kv "$a" non2xx)/$(kv "$b" non2xx)"
    echo "  writes: $(kv "$w" writes) ($(kv "$w" creates) credential creates, $(kv "$w" binding_updates) access-binding updates) sent at $(kv "$w" per_sec)/s, answered at $(kv "$w" done_per_sec)/s (first sent to last answered), failed $(kv "$w" failed); answer p50 $(iam_ms "$(kv "$w" write_p50_us)") ms, p99 $(iam_ms "$(kv "$w" write_p99_us)") ms, max $(iam_ms "$(kv "$w" write_max_us)") ms"
    echo "  write-visible-to-exchange, same replica: $(iam_visibility "$l" same)   (target p99 <= 50 ms)"
    iam_check "$(calc "(${delta#+} >= -10) ? 1 : 0")" "exchange throughput with writes within 10 %"
    iam_check "$(calc "($(kv "$w" done_per_sec) >= 0.95 * $WRITE_RATE) ? 1 : 0")" "$WRITE_RATE writes/s sustained (answered at >= 95 % of the rate sent)"
    iam_check "$(iam_le "$(kv "$w" same_p99_us)" 50000)" "same-replica visibility p99 <= 50 ms (an exchange's own latency under full load is part of it)"
}

iam_creates_report() { # LABEL BACKEND
    local one=${R[iam.$1.creates1]} many=${R[iam.$1.createsN]}
    echo "  REST creates/s ($2): one client $(kv "$one" per_sec) (p50 $(iam_ms "$(kv "$one" latency_p50_us)") ms, p99 $(iam_ms "$(kv "$one" latency_p99_us)") ms), $CREATE_CLIENTS clients $(kv "$many" per_sec) (p50 $(iam_ms "$(kv "$many" latency_p50_us)") ms, p99 $(iam_ms "$(kv "$many" latency_p99_us)") ms); failed $(kv "$one" failed)/$(kv "$many" failed)   (reported, no target)"
    if [ "$(kv "$one" failed)" != 0 ] || [ "$(kv "$many" failed)" != 0 ]; then
        echo "CHECK FAILED [iam $1]: failed creates"
        IAM_FAIL=1
    fi
}

iam_scale_report() {
    local s=store-small b=store-scale ms mb ratio
    echo
    echo "=== IAM plane at scale (stores seeded by examples/loadgen_store; SQLite unless said)"
    report "$s"
    report "$b"
    echo "--- store-small vs store-scale (SQLite)"
    printf '%-40s %14s %14s   %s\n' "" store-small store-scale target
    printf '%-40s %14s %14s\n' "federated credentials / access bindings" \
        "$(iam_env small CREDENTIALS)/$(iam_env small BINDINGS)" "$(iam_env scale CREDENTIALS)/$(iam_env scale BINDINGS)"
    printf '%-40s %14s %14s\n' "bulk seeding (s, not a figure)" "${R[iam.small.seed_s]}" "${R[iam.scale.seed_s]}"
    printf '%-40s %14s %14s   %s\n' "start -> /readyz (s)" "${R[$s.ready_s]}" "${R[$b.ready_s]}" "<= 10"
    printf '%-40s %14s %14s   %s\n' "RSS at ready (MiB)" "$(mib "${R[$s.ready_rss]}")" "$(mib "${R[$b.ready_rss]}")" "<= 1024"
    printf '%-40s %14s %14s   %s\n' "peak RSS, VmHWM (MiB)" "$(mib "${R[$s.hwm]}")" "$(mib "${R[$b.hwm]}")" "<= 1024"
    ms=$(kv "${R[$s.max]}" exchanges_per_sec)
    mb=$(kv "${R[$b.max]}" exchanges_per_sec)
    ratio=$(calc "sprintf(\"%.3f\", $mb / ($ms > 0 ? $ms : 1))")
    printf '%-40s %14s %14s   %s\n' "max exchanges/s" "$ms" "$mb" "scale/small $ratio (>= 0.90)"
    printf '%-40s %14s %14s\n' "max-run p99 (ms)" "$(iam_ms "$(kv "${R[$s.max]}" p99_us)")" "$(iam_ms "$(kv "${R[$b.max]}" p99_us)")"
    iam_check "$(iam_le "${R[$b.ready_s]}" 10)" "store-scale start -> /readyz <= 10 s"
    iam_check "$(iam_le "${R[$b.hwm]}" 1048576)" "store-scale peak RSS <= 1 GiB"
    iam_check "$(calc "($ratio >= 0.9) ? 1 : 0")" "store-scale exchanges/s within 10 % of store-small"
    for n in "$s" "$b"; do
        if [ "$(kv "${R[$n.max]}" non2xx)" != 0 ] || [ "$(kv "${R[$n.rate]}" non2xx)" != 0 ] || [ "$(kv "${R[$n.max]}" reused)" != 0 ]; then
            echo "CHECK FAILED [$n]: non-2xx responses or tokens reused"
            IAM_FAIL=1
        fi
    done
    echo "--- writes under load, SQLite (store-scale started again: ready ${R[iam.sqlite.ready_s]} s; peak RSS after writes and creates $(mib "${R[iam.sqlite.hwm]}") MiB)"
    iam_writes_report sqlite
    iam_creates_report sqlite SQLite
    if [ -z "$SCALE_PG_URL" ]; then
        echo "--- PostgreSQL: skipped (no --scale-pg URL / SCALE_PG_URL)"
        return
    fi
    echo "--- PostgreSQL, two replicas on one schema ($(iam_env pg CREDENTIALS) credentials, $(iam_env pg BINDINGS) bindings; seeding ${R[iam.pg.seed_s]} s, not a figure)"
    echo "  replica A: start -> /readyz ${R[iam.pg-a.ready_s]} s, RSS at ready $(mib "${R[iam.pg-a.ready_rss]}") MiB, peak $(mib "${R[iam.pg-a.hwm]}") MiB; replica B: ${R[iam.pg-b.ready_s]} s, $(mib "${R[iam.pg-b.ready_rss]}") MiB, peak $(mib "${R[iam.pg-b.hwm]}") MiB   (B started once A was ready; both on core $GATEWAY_CORE)"
    iam_writes_report pg
    echo "  write-visible-to-exchange, other replica (B): $(iam_visibility pg other)   (target p99 <= 1 s)"
    iam_check "$(iam_le "$(kv "${R[iam.pg.writer]}" other_p99_us)" 1000000)" "other-replica visibility p99 <= 1 s"
    [ "$(kv "${R[iam.pg.writer]}" other_lost)" = 0 ] || { echo "CHECK FAILED [iam pg]: credentials not seen on B"; IAM_FAIL=1; }
    iam_creates_report pg PostgreSQL
}
