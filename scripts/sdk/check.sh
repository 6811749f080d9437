#!/usr/bin/env bash
# Yandex Cloud's own SDKs manage the gateway over gRPC and TLS, unchanged:
#
#   - the Python SDK (PyPI yandexcloud==0.413.0) with the bootstrap administrator's key file:
#     discovery, IamTokenService, every resource's create/get/list/update/delete, access
#     bindings, Operations, then an exchange over TLS (scripts/sdk/check.py);
#   - the Node.js SDK (npm @yandex-cloud/nodejs-sdk 3.2.0) with an IAM token and each client's
#     endpoint (scripts/sdk/node/check.js);
#   - botocore (PyPI botocore==1.44.5), the AWS SDK's signer, with a static access key the
#     Python SDK creates: the gateway verifies its AWS Signature Version 4 signatures through
#     POST /iam/v1/authorize and refuses a tampered header, a wrong secret and a wrong date
#     (scripts/sdk/sigv4.py).
#
# It starts the debug build of the gateway (building it if needed) on two free loopback ports,
# plain and TLS, with a SQLite store, the dev issuer and a development CA in a temporary
# directory, and stops it at the end. The SDKs are installed under target/sdk/ (a Python venv
# and node_modules), once. Needs python3 with venv, node and npm; reaches PyPI and the npm
# registry only to install them.
#
#   bash scripts/sdk/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin=${WIF_BIN:-$root/target/debug/wif-gateway}
sdk=$root/target/sdk
[ -x "$bin" ] || cargo build --quiet

mkdir -p "$sdk"
if ! "$sdk/venv/bin/python" -c 'import importlib.metadata as m; assert m.version("yandexcloud") == "0.413.0"; assert m.version("botocore") == "1.44.5"' 2>/dev/null; then
    echo "installing yandexcloud 0.413.0 and botocore 1.44.5 into $sdk/venv"
    python3 -m venv "$sdk/venv"
    "$sdk/venv/bin/pip" install --quiet --disable-pip-version-check yandexcloud==0.413.0 botocore==1.44.5
fi
if [ ! -d "$sdk/node/node_modules/@yandex-cloud/nodejs-sdk" ] \
    || ! cmp -s scripts/sdk/node/package.json "$sdk/node/package.json"; then
    echo "installing @yandex-cloud/nodejs-sdk into $sdk/node"
    mkdir -p "$sdk/node"
    cp scripts/sdk/node/package.json "$sdk/node/package.json"
    (cd "$sdk/node" && npm install --silent --no-audit --no-fund --ignore-scripts)
fi

work=$(mktemp -d)
gateway=
cleanup() {
    [ -n "$gateway" ] && kill "$gateway" 2>/dev/null && wait "$gateway" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

read -r plain tls < <(python3 -c '
import socket
ports = []
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
    ports.append(s.getsockname()[1])
print(*ports)')

cat > "$work/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$plain"
grpc_endpoint = "127.0.0.1:$tls"
watch_config = false

[server.tls]
listen = "127.0.0.1:$tls"
cert_file = "tls/server.pem"
key_file = "tls/server-key.pem"
generate_dev_ca = true

[signing]
key_file = "signing.pem"
generate_if_missing = true

[dev_issuer]
enabled = true
key_file = "dev-issuer.pem"

[audit]
output = "audit.log"

[store]
url = "sqlite://iam.db"

[iam]
bootstrap_key_file = "admin-key.json"
allow_http_to_loopback = true
secret_keys = [{ id = "sdk", file = "secret-key-sdk", generate_if_missing = true }]
TOML

"$bin" serve --config "$work/gateway.toml" > "$work/gateway.log" 2>&1 &
gateway=$!
for _ in $(seq 1 100); do
    if curl -sf --cacert "$work/tls/ca.pem" "https://127.0.0.1:$tls/readyz" > /dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$gateway" 2>/dev/null; then
        cat "$work/gateway.log" >&2
        echo "the gateway exited" >&2
        exit 1
    fi
    sleep 0.2
done
echo "gateway: http://127.0.0.1:$plain, TLS and gRPC on 127.0.0.1:$tls"

fail() {
    echo "--- gateway log" >&2
    tail -50 "$work/gateway.log" >&2
    exit 1
}

echo "--- Python SDK (yandexcloud 0.413.0)"
WIF_SDK_ENDPOINT="127.0.0.1:$tls" WIF_SDK_CA="$work/tls/ca.pem" \
    WIF_SDK_KEY_FILE="$work/admin-key.json" WIF_SDK_DEV_URL="http://127.0.0.1:$plain" \
    "$sdk/venv/bin/python" scripts/sdk/check.py || fail

token=$("$bin" iam create-token --key-file "$work/admin-key.json" --endpoint "http://127.0.0.1:$plain")

echo "--- botocore (1.44.5) signatures verified by the gateway"
WIF_SDK_ENDPOINT="127.0.0.1:$tls" WIF_SDK_CA="$work/tls/ca.pem" \
    WIF_SDK_KEY_FILE="$work/admin-key.json" WIF_SDK_DEV_URL="http://127.0.0.1:$plain" \
    WIF_SDK_IAM_TOKEN="$token" WIF_SDK_SECRET_OUT="$work/access-key-secret" \
    "$sdk/venv/bin/python" scripts/sdk/sigv4.py || fail

echo "--- Node.js SDK (@yandex-cloud/nodejs-sdk 3.2.0)"
WIF_SDK_ENDPOINT="127.0.0.1:$tls" WIF_SDK_CA="$work/tls/ca.pem" WIF_SDK_IAM_TOKEN="$token" \
    WIF_SDK_DEV_URL="http://127.0.0.1:$plain" NODE_PATH="$sdk/node/node_modules" \
    node scripts/sdk/node/check.js || fail

if grep -q "PRIVATE KEY" "$work/gateway.log" "$work/audit.log"; then
    echo "a private key reached the gateway's log or audit log" >&2
    exit 1
fi
if [ -s "$work/access-key-secret" ] && grep -qF -f "$work/access-key-secret" "$work/gateway.log" "$work/audit.log"; then
    echo "an access key's secret reached the gateway's log or audit log" >&2
    exit 1
fi
echo "--- both SDKs managed the gateway; botocore's signatures verified"
