#!/usr/bin/env bash
# Fuzz the parsers of attacker input with cargo-fuzz (libFuzzer) on stable Rust.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 600; TARGETs default to all of form_parser, jwt_reader and
# jwks_parser. Installs cargo-fuzz if it is missing, builds the targets once (without a sanitizer:
# `-s none` is what works on stable; debug assertions and overflow checks stay on), runs each
# target in turn, and prints one summary line per target. Exits 1 if any target crashed (or
# timed out, or ran out of memory), 2 if the targets do not build.
#
# Corpora: the committed seeds in fuzz/corpus/<target>/ are read, never written; what libFuzzer
# finds goes to fuzz/target/corpus/<target>/ (git-ignored, kept between runs so later runs start
# from it). Crash reproducers land in fuzz/artifacts/<target>/ (git-ignored); the summary counts
# them, including ones left from earlier runs, so delete one once it has become a test.
# Full libFuzzer logs: fuzz/target/logs/<target>.log.
set -euo pipefail

cd "$(dirname "$0")/.."
root="$(pwd)"

seconds="${1:-600}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
shift $(($# > 0 ? 1 : 0))
all_targets=(form_parser jwt_reader jwks_parser)
if (($# > 0)); then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

max_len_for() {
    case "$1" in
        form_parser) echo 70000 ;;  # the HTTP layer caps the body at 64 KiB
        jwt_reader) echo 20000 ;;   # jwt::MAX_TOKEN_BYTES is 16 KiB
        jwks_parser) echo 300000 ;; # JWKS bodies are capped at 256 KiB
        *) echo 65536 ;;
    esac
}

for t in "${targets[@]}"; do
    if [[ ! -f "fuzz/fuzz_targets/$t.rs" ]]; then
        echo "unknown fuzz target $t (have: ${all_targets[*]})" >&2
        exit 2
    fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The same flags for build and run, so that `run` finds the build up to date.
fuzz_flags=(--sanitizer none --release --debug-assertions)

echo "== building fuzz targets (the first build compiles aws-lc-sys: a few minutes)"
if ! cargo fuzz build "${fuzz_flags[@]}"; then
    echo "fuzz targets do not build" >&2
    exit 2
fi

mkdir -p fuzz/target/logs
summary=()
failed=0
for t in "${targets[@]}"; do
    corpus="$root/fuzz/target/corpus/$t"
    seeds="$root/fuzz/corpus/$t"
    artifacts="$root/fuzz/artifacts/$t"
    log="$root/fuzz/target/logs/$t.log"
    mkdir -p "$corpus" "$seeds" "$artifacts"
    before="$(find "$artifacts" -maxdepth 1 -type f ! -name 'slow-unit-*' | wc -l)"

    echo "== $t: ${seconds}s, -max_len=$(max_len_for "$t") (log: ${log#"$root"/})"
    status=0
    # The first corpus directory is the one libFuzzer writes to; the seeds are only read.
    cargo fuzz run "${fuzz_flags[@]}" "$t" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" \
        -max_len="$(max_len_for "$t")" \
        -timeout=20 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        >"$log" 2>&1 || status=$?

    execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
    if [[ -z "$execs" ]]; then
        execs="$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')"
    fi
    crashes="$(find "$artifacts" -maxdepth 1 -type f ! -name 'slow-unit-*' | wc -l)"
    new=$((crashes - before))

    if ((status != 0)); then
        # Show why: the panic message, the artifact libFuzzer wrote, and how to reproduce it.
        grep -E -A3 "panicked at|^==[0-9]+== ERROR|SUMMARY: libFuzzer|Test unit written|ERROR: libFuzzer|^error" "$log" |
            cut -c1-400 | head -n 40 >&2 || true
        grep -E -A2 "^Reproduce with:|^Minimize test case with:" "$log" >&2 || true
        if ((new == 0)); then
            echo "$t: cargo fuzz exited with $status without writing an artifact; see $log" >&2
            failed=1
        fi
    fi
    if ((crashes > 0)); then
        failed=1
    fi
    summary+=("$(printf '%-12s executions=%-10s crashes=%s (new: %s) artifacts=%s' \
        "$t" "${execs:-0}" "$crashes" "$new" "fuzz/artifacts/$t/")")
done

echo "== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
