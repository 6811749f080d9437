"""botocore, the AWS SDK's own signer, signing with a static access key of the gateway.

Yandex's Python SDK creates the access key over gRPC (AccessKeyService.Create: the secret is in
that answer only); botocore then signs requests to an S3-compatible service with it — SigV4Auth
(service s3, region ru-central1, the Authorization header), S3SigV4Auth (S3's own path rules and
X-Amz-Content-SHA256) and S3SigV4QueryAuth (a presigned URL). Playing that service, the script
hands each request as it would receive it to POST /iam/v1/authorize, and the gateway must answer
with the key's service account; a tampered header, a wrong secret and a wrong date (botocore
signing with its clock shifted by 20 minutes) must be refused with code 16.

Run by scripts/sdk/check.sh, which starts the gateway and sets:
  WIF_SDK_ENDPOINT   host:port of the gateway's TLS listener (what the SDK dials)
  WIF_SDK_CA         the CA certificate (PEM) the listener's certificate chains to
  WIF_SDK_KEY_FILE   a Yandex key file of a service account holding admin on its cloud
  WIF_SDK_DEV_URL    the gateway's plain base URL (where /iam/v1/authorize is called)
  WIF_SDK_IAM_TOKEN  an IAM token of that account: the resource service's own credential
  WIF_SDK_SECRET_OUT a file to write the access key's secret to, so that check.sh can make sure
                     no log line holds it
"""

import datetime
import hashlib
import json
import os
import sys
import urllib.parse
import urllib.request
from unittest import mock

import botocore
import botocore.auth
import yandexcloud
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yandex.cloud.iam.v1.awscompatibility.access_key_service_pb2 import (
    CreateAccessKeyRequest,
    DeleteAccessKeyMetadata,
    DeleteAccessKeyRequest,
    GetAccessKeyRequest,
    ListAccessKeysRequest,
)
from yandex.cloud.iam.v1.awscompatibility.access_key_service_pb2_grpc import AccessKeyServiceStub

ENDPOINT = os.environ["WIF_SDK_ENDPOINT"]
CA = open(os.environ["WIF_SDK_CA"], "rb").read()
KEY = json.load(open(os.environ["WIF_SDK_KEY_FILE"]))
DEV_URL = os.environ["WIF_SDK_DEV_URL"].rstrip("/")
IAM_TOKEN = os.environ["WIF_SDK_IAM_TOKEN"]
SECRET_OUT = os.environ.get("WIF_SDK_SECRET_OUT")

SERVICE, REGION = "s3", "ru-central1"
HOST = "storage.example.test"


def say(what, value=""):
    print(f"{what}: {value}" if value != "" else what, flush=True)


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr, flush=True)
        sys.exit(1)


def sign(signer, method, path, body=b"", shift=None):
    """A request signed by `signer`, as the S3-compatible service receives it: method, path,
    query and headers (Host included, as the HTTP client sends it) and the body's SHA-256."""
    request = AWSRequest(method=method, url=f"https://{HOST}{path}", data=body)
    if shift is None:
        signer.add_auth(request)
    else:
        shifted = lambda *args, **kwargs: datetime.datetime.utcnow() + shift  # noqa: E731
        with mock.patch.object(botocore.auth, "get_current_datetime", shifted):
            signer.add_auth(request)
    prepared = request.prepare()
    url = urllib.parse.urlsplit(prepared.url)
    headers = [{"name": "Host", "value": url.netloc}]
    headers += [{"name": name, "value": value} for name, value in prepared.headers.items()]
    declared = prepared.headers.get("X-Amz-Content-SHA256")
    unsigned = declared == "UNSIGNED-PAYLOAD" or "X-Amz-Signature=" in url.query
    payload = "UNSIGNED-PAYLOAD" if unsigned else hashlib.sha256(body or b"").hexdigest()
    return {"method": method, "path": url.path, "query": url.query, "headers": headers, "payloadHash": payload}


def authorize(requests, account):
    """One Authorize call with a check per signed request: may its signer read `account`?"""
    checks = [{
        "permission": "iam.serviceAccounts.get",
        "resourcePath": [{"id": account, "type": "iam.serviceAccount"}],
        "signature": {"request": request},
    } for request in requests]
    call = urllib.request.Request(
        f"{DEV_URL}/iam/v1/authorize", data=json.dumps({"checks": checks}).encode(),
        headers={"Authorization": f"Bearer {IAM_TOKEN}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(call))["results"]


def main():
    say("botocore", botocore.__version__)
    sdk = yandexcloud.SDK(endpoint=ENDPOINT, root_certificates=CA, service_account_key=KEY)
    access_keys = sdk.client(AccessKeyServiceStub)
    account = KEY["service_account_id"]

    created = access_keys.Create(CreateAccessKeyRequest(service_account_id=account, description="botocore"))
    key, secret = created.access_key, created.secret
    check(key.key_id.startswith("YC") and len(key.key_id) == 25, f"access key id {key.key_id}")
    check(secret.startswith("YC") and len(secret) == 40, "a 40-character secret starting YC")
    if SECRET_OUT:
        with open(SECRET_OUT, "w") as out:
            out.write(secret)
    check(access_keys.Get(GetAccessKeyRequest(access_key_id=key.id)).key_id == key.key_id, "access key get")
    listed = access_keys.List(ListAccessKeysRequest(service_account_id=account)).access_keys
    check(key.id in [k.id for k in listed], "access key list")
    say("access key", f"{key.id} ({key.key_id}) of {account}")

    good = Credentials(key.key_id, secret)
    signed = [
        ("SigV4Auth GET", sign(SigV4Auth(good, SERVICE, REGION), "GET", "/bucket/report.csv?versionId=3")),
        ("S3SigV4Auth PUT", sign(S3SigV4Auth(good, SERVICE, REGION), "PUT", "/bucket/photo%201.jpg",
                                 body=b"not really a photo")),
        ("S3SigV4QueryAuth presigned GET", sign(S3SigV4QueryAuth(good, SERVICE, REGION, expires=300),
                                                "GET", "/bucket/photo%201.jpg")),
    ]
    results = authorize([request for _, request in signed], account)
    for (name, _), result in zip(signed, results):
        check(result.get("allowed") is True and result["subject"] == {"id": account, "type": "serviceAccount"},
              f"{name}: {result}")
        say(f"{name} verified", f"subject {result['subject']['id']}")

    tampered = sign(SigV4Auth(good, SERVICE, REGION), "GET", "/bucket/report.csv")
    for header in tampered["headers"]:
        if header["name"] == "Host":
            header["value"] = "evil.example.test"
    wrong_secret = sign(SigV4Auth(Credentials(key.key_id, "YC" + "x" * 38), SERVICE, REGION), "GET", "/bucket/a")
    wrong_date = sign(SigV4Auth(good, SERVICE, REGION), "GET", "/bucket/a", shift=datetime.timedelta(minutes=-20))
    tampered_body = sign(S3SigV4Auth(good, SERVICE, REGION), "PUT", "/bucket/a", body=b"original")
    tampered_body["payloadHash"] = hashlib.sha256(b"changed").hexdigest()
    refusals = [
        ("a tampered header", tampered, "the signature does not match"),
        ("a wrong secret", wrong_secret, "the signature does not match"),
        ("a wrong date", wrong_date, "more than 15 minutes from the server's clock"),
        ("a tampered body", tampered_body, "x-amz-content-sha256"),
    ]
    results = authorize([request for _, request, _ in refusals], account)
    for (name, _, expected), result in zip(refusals, results):
        check(result.get("code") == 16 and expected in result.get("message", ""), f"{name}: {result}")
        check(secret not in json.dumps(result), f"{name}: the secret is not repeated")
        say(f"{name} refused", f"{result['code']}: {result['message']}")

    operation = access_keys.Delete(DeleteAccessKeyRequest(access_key_id=key.id))
    sdk.wait_operation_and_get_result(operation, meta_type=DeleteAccessKeyMetadata, timeout=30)
    gone = authorize([sign(SigV4Auth(good, SERVICE, REGION), "GET", "/bucket/a")], account)[0]
    check(gone.get("code") == 16, f"a deleted key's signature: {gone}")
    say("a deleted key refused", f"{gone['code']}: {gone['message']}")
    say("the botocore check passed")


if __name__ == "__main__":
    main()
