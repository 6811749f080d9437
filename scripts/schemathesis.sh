#!/usr/bin/env bash
# Property-based test of the IAM API against its own OpenAPI document (GET /openapi.json), with
# schemathesis: no answer may be a 5xx, and every answer must match the document (status code,
# content type, body schema).
#
#   bash scripts/schemathesis.sh
#
# It installs a pinned schemathesis from PyPI into a venv under target/ (reused on later runs),
# builds the debug gateway and examples/iam_jwt.rs, starts the gateway with a copy of
# config/dev.toml on a free loopback port and a fresh data directory (so a new IAM store, with
# its bootstrap administrator and key file), gets the administrator's IAM token from the
# bootstrap key file (the PS256 JWT flow of POST /iam/v1/tokens), and runs schemathesis with it.
# The gateway is stopped on exit; its log is printed when the run fails.
#
# Environment overrides: SCHEMATHESIS_MAX_EXAMPLES (per operation; 100), SCHEMATHESIS_SEED,
# SCHEMATHESIS_PHASES (examples,coverage,fuzzing), SCHEMATHESIS_VENV (target/schemathesis-venv).

set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
VENV=${SCHEMATHESIS_VENV:-$TARGET/schemathesis-venv}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-100}
PHASES=${SCHEMATHESIS_PHASES:-examples,coverage,fuzzing}

echo "== schemathesis $SCHEMATHESIS_VERSION in $VENV"
if [ ! -x "$VENV/bin/schemathesis" ] ||
    [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== cargo build (the gateway and examples/iam_jwt.rs)"
cargo build --quiet --bin wif-gateway --example iam_jwt
BIN=$TARGET/debug/wif-gateway
JWT_TOOL=$TARGET/debug/examples/iam_jwt

RUN=$(mktemp -d "$TARGET/schemathesis-run.XXXXXX")
GATEWAY_PID=
cleanup() {
    if [ -n "$GATEWAY_PID" ]; then
        kill "$GATEWAY_PID" 2>/dev/null || true
        wait "$GATEWAY_PID" 2>/dev/null || true
    fi
    [ -n "${SCHEMATHESIS_KEEP:-}" ] || rm -rf "$RUN"
}
trap cleanup EXIT

# config/dev.toml keeps its keys and store in ../.wif-dev: here, $RUN/.wif-dev, new each run.
mkdir -p "$RUN/config"
cp config/dev.toml "$RUN/config/dev.toml"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT

echo "== the gateway on $URL (log: $RUN/gateway.log)"
"$BIN" serve --config "$RUN/config/dev.toml" --listen "127.0.0.1:$PORT" >"$RUN/gateway.log" 2>&1 &
GATEWAY_PID=$!
for _ in $(seq 1 300); do
    if curl -sf "$URL/readyz" >/dev/null 2>&1 && [ -s "$RUN/.wif-dev/admin-key.json" ]; then
        break
    fi
    if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
        echo "FAIL: the gateway exited" >&2
        cat "$RUN/gateway.log" >&2
        exit 1
    fi
    sleep 0.2
done
curl -sf "$URL/readyz" >/dev/null || { echo "FAIL: the gateway is not ready" >&2; cat "$RUN/gateway.log" >&2; exit 1; }

JWT=$("$JWT_TOOL" "$RUN/.wif-dev/admin-key.json" "$URL/iam/v1/tokens")
TOKEN=$(curl -sf -H 'Content-Type: application/json' -d "{\"jwt\": \"$JWT\"}" "$URL/iam/v1/tokens" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["iamToken"])')

# Real ids half the time, so the generated calls also reach the methods' rules rather than stop
# at NOT_FOUND: the bootstrap cloud as a parent (never in a path, so it is not deleted), and a
# folder and a service account made for this run, which the run may change or delete.
api() {
    curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"
}
field() {
    python3 -c 'import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[int(k)] if k.isdigit() else v[k]
print(v)' "$1"
}
CLOUD=$(api "$URL/resource-manager/v1/clouds" | field clouds.0.id)
FOLDER=$(api -d '{"cloudId": "'"$CLOUD"'", "name": "schemathesis"}' "$URL/resource-manager/v1/folders" | field response.id)
ACCOUNT=$(api -d '{"folderId": "'"$FOLDER"'", "name": "schemathesis"}' "$URL/iam/v1/serviceAccounts" | field response.id)
cat >"$RUN/schemathesis.toml" <<TOML
[dictionaries.cloud]
values = ["$CLOUD"]
[dictionaries.folder]
values = ["$FOLDER"]
[dictionaries.account]
values = ["$ACCOUNT"]

[parameters]
"query.cloudId" = { dictionary = "cloud", probability = 0.5 }
"body.cloudId" = { dictionary = "cloud", probability = 0.5 }
"path.folderId" = { dictionary = "folder", probability = 0.5 }
"query.folderId" = { dictionary = "folder", probability = 0.5 }
"body.folderId" = { dictionary = "folder", probability = 0.5 }
"path.serviceAccountId" = { dictionary = "account", probability = 0.5 }
"query.serviceAccountId" = { dictionary = "account", probability = 0.5 }
"body.serviceAccountId" = { dictionary = "account", probability = 0.5 }
TOML

# Schemathesis reuses the ids it reads in answers, so it finds the bootstrap cloud, folder and
# administrator and, in time, deletes them, after which every call is 401. So the deletes of the
# hierarchy run last, in a pass of their own.
HIERARCHY_DELETES='^(CloudService|FolderService|ServiceAccountService)\.Delete$'
# Run from $RUN: schemathesis keeps a cache in .schemathesis/ of its working directory.
# One worker: with two, schemathesis's coverage phase parses its own source (`ast`) in two
# threads at once, which CPython 3.11 sometimes answers with `SystemError: AST constructor
# recursion depth mismatch`, a crash of the tool, not a finding about the gateway.
schemathesis_run() {
    (cd "$RUN" && "$VENV/bin/schemathesis" --config-file "$RUN/schemathesis.toml" run "$URL/openapi.json" \
        --header "Authorization: Bearer $TOKEN" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --phases "$PHASES" \
        --max-examples "$MAX_EXAMPLES" \
        ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
        --workers 1 \
        --request-timeout 30 \
        --generation-database none \
        --generation-with-security-parameters false \
        --no-color \
        "$@")
}
status=0
echo "== schemathesis run $URL/openapi.json: every method but the hierarchy's deletes (phases $PHASES, at most $MAX_EXAMPLES examples per operation)"
schemathesis_run --exclude-operation-id-regex "$HIERARCHY_DELETES" || status=$?
echo "== schemathesis run $URL/openapi.json: the hierarchy's deletes"
schemathesis_run --include-operation-id-regex "$HIERARCHY_DELETES" || status=$?
if [ "$status" -ne 0 ]; then
    echo "FAIL: schemathesis found problems (exit $status); the gateway's log:" >&2
    tail -n 200 "$RUN/gateway.log" >&2
    exit "$status"
fi
echo "schemathesis: no 5xx, no answer outside the document"
