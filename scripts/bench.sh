#!/usr/bin/env bash
# Runs the exchange benchmarks (criterion groups, then the pipeline/floor summary) and keeps a
# copy of the output in target/bench-exchange.txt. Extra arguments go to the bench binary,
# e.g. `scripts/bench.sh --quick` or `scripts/bench.sh pipeline/ES256`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
cargo bench --bench exchange -- "$@" 2>&1 | tee target/bench-exchange.txt
