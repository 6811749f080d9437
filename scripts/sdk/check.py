"""Yandex Cloud's own Python SDK (yandexcloud) managing the gateway over gRPC and TLS.

Only the SDK's public API is used, with the gateway's bootstrap key file, as one would against
Yandex Cloud: discovery, an IAM token, then create/get/list/update/delete of a folder, a
service account, a federation, a federated credential, a key and an API key, access bindings
set, updated and listed, every Operation waited on; then an exchange over TLS for the
credential created, an IAM token of the account by impersonation, and the account suspended
(its exchange refused) and reactivated.

Run by scripts/sdk/check.sh, which starts the gateway and sets:
  WIF_SDK_ENDPOINT  host:port of the gateway's TLS listener (what the SDK dials)
  WIF_SDK_CA        the CA certificate (PEM) the listener's certificate chains to
  WIF_SDK_KEY_FILE  a Yandex key file of a service account holding admin on its cloud
  WIF_SDK_DEV_URL   the gateway's plain base URL, whose dev issuer mints the workload's token
"""

import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

import grpc
import yandexcloud
import yandexcloud.auth
from google.protobuf.field_mask_pb2 import FieldMask
from yandex.cloud.access.access_pb2 import (
    AccessBinding,
    AccessBindingDelta,
    AccessBindingAction,
    ListAccessBindingsRequest,
    SetAccessBindingsRequest,
    Subject,
    UpdateAccessBindingsMetadata,
    UpdateAccessBindingsRequest,
    SetAccessBindingsMetadata,
)
from yandex.cloud.endpoint.api_endpoint_service_pb2 import ListApiEndpointsRequest
from yandex.cloud.endpoint.api_endpoint_service_pb2_grpc import ApiEndpointServiceStub
from yandex.cloud.iam.v1.key_pb2 import Key
from yandex.cloud.iam.v1.key_service_pb2 import (
    CreateKeyRequest,
    DeleteKeyMetadata,
    DeleteKeyRequest,
    GetKeyRequest,
    ListKeysRequest,
    UpdateKeyMetadata,
    UpdateKeyRequest,
)
from yandex.cloud.iam.v1.key_service_pb2_grpc import KeyServiceStub
from yandex.cloud.iam.v1.role_service_pb2 import ListRolesRequest
from yandex.cloud.iam.v1.role_service_pb2_grpc import RoleServiceStub
from yandex.cloud.iam.v1.api_key_service_pb2 import (
    CreateApiKeyRequest,
    DeleteApiKeyMetadata,
    DeleteApiKeyRequest,
    GetApiKeyRequest,
)
from yandex.cloud.iam.v1.api_key_service_pb2_grpc import ApiKeyServiceStub
from yandex.cloud.iam.v1.iam_token_service_pb2 import CreateIamTokenForServiceAccountRequest
from yandex.cloud.iam.v1.iam_token_service_pb2_grpc import IamTokenServiceStub
from yandex.cloud.iam.v1.service_account_pb2 import ServiceAccount
from yandex.cloud.iam.v1.service_account_service_pb2 import (
    CreateServiceAccountMetadata,
    CreateServiceAccountRequest,
    DeleteServiceAccountMetadata,
    DeleteServiceAccountRequest,
    GetServiceAccountRequest,
    ListServiceAccountsRequest,
    ReactivateServiceAccountMetadata,
    ReactivateServiceAccountRequest,
    SuspendServiceAccountMetadata,
    SuspendServiceAccountRequest,
    UpdateServiceAccountMetadata,
    UpdateServiceAccountRequest,
)
from yandex.cloud.iam.v1.service_account_service_pb2_grpc import ServiceAccountServiceStub
from yandex.cloud.iam.v1.workload.federated_credential_pb2 import FederatedCredential
from yandex.cloud.iam.v1.workload.federated_credential_service_pb2 import (
    CreateFederatedCredentialMetadata,
    CreateFederatedCredentialRequest,
    DeleteFederatedCredentialMetadata,
    DeleteFederatedCredentialRequest,
    GetFederatedCredentialRequest,
    ListFederatedCredentialsRequest,
)
from yandex.cloud.iam.v1.workload.federated_credential_service_pb2_grpc import (
    FederatedCredentialServiceStub,
)
from yandex.cloud.iam.v1.workload.oidc.federation_pb2 import Federation
from yandex.cloud.iam.v1.workload.oidc.federation_service_pb2 import (
    CreateFederationMetadata,
    CreateFederationRequest,
    DeleteFederationMetadata,
    DeleteFederationRequest,
    GetFederationRequest,
    ListFederationsRequest,
    UpdateFederationMetadata,
    UpdateFederationRequest,
)
from yandex.cloud.iam.v1.workload.oidc.federation_service_pb2_grpc import FederationServiceStub
from yandex.cloud.resourcemanager.v1.folder_pb2 import Folder
from yandex.cloud.resourcemanager.v1.folder_service_pb2 import (
    CreateFolderMetadata,
    CreateFolderRequest,
    DeleteFolderMetadata,
    DeleteFolderRequest,
    GetFolderRequest,
    ListFoldersRequest,
    UpdateFolderMetadata,
    UpdateFolderRequest,
)
from yandex.cloud.resourcemanager.v1.folder_service_pb2_grpc import FolderServiceStub

ENDPOINT = os.environ["WIF_SDK_ENDPOINT"]
CA = open(os.environ["WIF_SDK_CA"], "rb").read()
KEY = json.load(open(os.environ["WIF_SDK_KEY_FILE"]))
DEV_URL = os.environ["WIF_SDK_DEV_URL"].rstrip("/")

SUBJECT = "system:serviceaccount:sdk:app"
AUDIENCE = "sdk-check"


def say(what, value=""):
    print(f"{what}: {value}" if value != "" else what, flush=True)


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr, flush=True)
        sys.exit(1)


def done(sdk, operation, response_type, meta_type, what):
    """Waits on an Operation; the metadata and response must unpack by their type URLs."""
    check(operation.metadata.Is(meta_type.DESCRIPTOR),
          f"{what}: metadata type URL {operation.metadata.type_url}")
    result = sdk.wait_operation_and_get_result(
        operation, response_type=response_type, meta_type=meta_type, timeout=30)
    if response_type is not None:
        check(result.response is not None and result.response.ByteSize() > 0,
              f"{what}: empty response")
    say(f"{what} operation {operation.id} done")
    return result


def main():
    sdk = yandexcloud.SDK(endpoint=ENDPOINT, root_certificates=CA, service_account_key=KEY)

    endpoints = sdk.client(ApiEndpointServiceStub).List(ListApiEndpointsRequest()).endpoints
    ids = {e.id: e.address for e in endpoints}
    say("discovery", ", ".join(f"{k}={v}" for k, v in sorted(ids.items())))
    for needed in ("iam", "operation", "resource-manager"):
        check(needed in ids, f"discovery lists {needed}")

    accounts = sdk.client(ServiceAccountServiceStub)
    folders = sdk.client(FolderServiceStub)
    federations = sdk.client(FederationServiceStub)
    credentials = sdk.client(FederatedCredentialServiceStub)
    keys = sdk.client(KeyServiceStub)

    me = accounts.Get(GetServiceAccountRequest(service_account_id=KEY["service_account_id"]))
    home = folders.Get(GetFolderRequest(folder_id=me.folder_id))
    say("signed in as", f"{me.name} ({me.id}) in folder {home.id} of cloud {home.cloud_id}")

    roles = sdk.client(RoleServiceStub).List(ListRolesRequest(page_size=1000)).roles
    check(any(r.id == "admin" for r in roles), "RoleService lists admin")
    say("roles", len(roles))

    # A folder.
    folder = done(sdk, folders.Create(CreateFolderRequest(cloud_id=home.cloud_id, name="sdk-folder")),
                  Folder, CreateFolderMetadata, "folder create").response
    check(folders.Get(GetFolderRequest(folder_id=folder.id)).name == "sdk-folder", "folder get")
    listed = folders.List(ListFoldersRequest(cloud_id=home.cloud_id, page_size=1000)).folders
    check(any(f.id == folder.id for f in listed), "folder list")
    done(sdk, folders.Update(UpdateFolderRequest(
        folder_id=folder.id, update_mask=FieldMask(paths=["description"]), description="made by the SDK")),
        Folder, UpdateFolderMetadata, "folder update")
    check(folders.Get(GetFolderRequest(folder_id=folder.id)).description == "made by the SDK", "folder updated")

    # A service account.
    account = done(sdk, accounts.Create(CreateServiceAccountRequest(folder_id=folder.id, name="sdk-account")),
                   ServiceAccount, CreateServiceAccountMetadata, "service account create").response
    check(accounts.Get(GetServiceAccountRequest(service_account_id=account.id)).name == "sdk-account",
          "service account get")
    listed = accounts.List(ListServiceAccountsRequest(folder_id=folder.id)).service_accounts
    check([a.id for a in listed] == [account.id], "service account list")
    done(sdk, accounts.Update(UpdateServiceAccountRequest(
        service_account_id=account.id, update_mask=FieldMask(paths=["description"]), description="deploys")),
        ServiceAccount, UpdateServiceAccountMetadata, "service account update")

    # A federation trusting the gateway's dev issuer, and a credential for one subject.
    issuer = f"{DEV_URL}/dev/issuer"
    federation = done(sdk, federations.Create(CreateFederationRequest(
        folder_id=folder.id, name="sdk-federation", issuer=issuer, audiences=[AUDIENCE],
        jwks_url=f"{issuer}/jwks")), Federation, CreateFederationMetadata, "federation create").response
    check(federations.Get(GetFederationRequest(federation_id=federation.id)).issuer == issuer, "federation get")
    listed = federations.List(ListFederationsRequest(folder_id=folder.id)).federations
    check([f.id for f in listed] == [federation.id], "federation list")
    done(sdk, federations.Update(UpdateFederationRequest(
        federation_id=federation.id, update_mask=FieldMask(paths=["description"]), description="dev issuer")),
        Federation, UpdateFederationMetadata, "federation update")
    credential = done(sdk, credentials.Create(CreateFederatedCredentialRequest(
        service_account_id=account.id, federation_id=federation.id, external_subject_id=SUBJECT)),
        FederatedCredential, CreateFederatedCredentialMetadata, "federated credential create").response
    check(credentials.Get(GetFederatedCredentialRequest(federated_credential_id=credential.id))
          .external_subject_id == SUBJECT, "federated credential get")
    listed = credentials.List(ListFederatedCredentialsRequest(service_account_id=account.id)).federated_credentials
    check([c.id for c in listed] == [credential.id], "federated credential list")

    # A key pair: its private key is in the answer, once.
    created = keys.Create(CreateKeyRequest(service_account_id=account.id))
    check("PRIVATE KEY" in created.private_key, "key create returns the private key")
    key = created.key
    check(keys.Get(GetKeyRequest(key_id=key.id)).service_account_id == account.id, "key get")
    check([k.id for k in keys.List(ListKeysRequest(service_account_id=account.id)).keys] == [key.id], "key list")
    done(sdk, keys.Update(UpdateKeyRequest(
        key_id=key.id, update_mask=FieldMask(paths=["description"]), description="rotated monthly")),
        Key, UpdateKeyMetadata, "key update")
    say("key", f"{key.id} ({Key.Algorithm.Name(key.key_algorithm)})")

    # Access bindings: updated on the folder, set on the service account, listed on both.
    viewer = AccessBinding(role_id="viewer", subject=Subject(id=account.id, type="serviceAccount"))
    done(sdk, folders.UpdateAccessBindings(UpdateAccessBindingsRequest(
        resource_id=folder.id,
        access_binding_deltas=[AccessBindingDelta(action=AccessBindingAction.ADD, access_binding=viewer)])),
        None, UpdateAccessBindingsMetadata, "folder access bindings update")
    bindings = folders.ListAccessBindings(ListAccessBindingsRequest(resource_id=folder.id)).access_bindings
    check(any(b.role_id == "viewer" and b.subject.id == account.id for b in bindings), "folder bindings listed")
    user = AccessBinding(role_id="iam.serviceAccounts.user", subject=Subject(id=me.id, type="serviceAccount"))
    done(sdk, accounts.SetAccessBindings(SetAccessBindingsRequest(resource_id=account.id, access_bindings=[user])),
         None, SetAccessBindingsMetadata, "service account access bindings set")
    bindings = accounts.ListAccessBindings(ListAccessBindingsRequest(resource_id=account.id)).access_bindings
    check([(b.role_id, b.subject.id) for b in bindings] == [("iam.serviceAccounts.user", me.id)],
          "service account bindings listed")

    # The workload exchanges its token over TLS for the account the credential names.
    request = urllib.request.Request(
        f"{DEV_URL}/dev/issuer/token",
        data=urllib.parse.urlencode({"sub": SUBJECT, "aud": AUDIENCE}).encode())
    subject_token = json.load(urllib.request.urlopen(request))["id_token"]
    form = urllib.parse.urlencode({
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": account.id,
        "subject_token": subject_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
    }).encode()
    tls = ssl.create_default_context(cadata=CA.decode())
    answer = json.load(urllib.request.urlopen(
        urllib.request.Request(f"https://{ENDPOINT}/oauth/token", data=form), context=tls))
    check(answer.get("token_type") == "Bearer" and answer.get("access_token"), "exchange over TLS")
    say("exchange over TLS", f"token_type {answer['token_type']}, expires_in {answer['expires_in']}")

    # Impersonation: the administrator gets an IAM token of the account. The SDK signs no
    # IamTokenService call (Create needs no token), so the caller's token goes in by hand, from
    # the SDK's own service-account JWT exchanged with Create.
    tokens = sdk.client(IamTokenServiceStub)
    requester = yandexcloud.auth.get_auth_token_requester(service_account_key=KEY, endpoint=ENDPOINT)
    admin_token = tokens.Create(requester.get_token_request()).iam_token
    issued = tokens.CreateForServiceAccount(
        CreateIamTokenForServiceAccountRequest(service_account_id=account.id),
        metadata=(("authorization", f"Bearer {admin_token}"),))
    check(issued.iam_token and issued.expires_at.seconds > 0, "CreateForServiceAccount answers a token")
    as_account = yandexcloud.SDK(endpoint=ENDPOINT, root_certificates=CA, iam_token=issued.iam_token)
    check(as_account.client(FolderServiceStub).Get(GetFolderRequest(folder_id=folder.id)).id == folder.id,
          "the impersonated token reads the folder its account may view")
    say("impersonation", f"an IAM token of {account.id}, expiring at {issued.expires_at.seconds}")

    # An API key: its secret once, never again.
    api_keys = sdk.client(ApiKeyServiceStub)
    created_api_key = api_keys.Create(CreateApiKeyRequest(service_account_id=account.id, description="sdk"))
    check(created_api_key.secret.startswith("AQVN"), "API key create returns the secret")
    shown = api_keys.Get(GetApiKeyRequest(api_key_id=created_api_key.api_key.id))
    check(created_api_key.secret not in str(shown) and shown.masked_secret.startswith("****"),
          "API key get shows the mask only")
    done(sdk, api_keys.Delete(DeleteApiKeyRequest(api_key_id=created_api_key.api_key.id)), None,
         DeleteApiKeyMetadata, "API key delete")

    # Suspended, the account gets no token; reactivated, it does again.
    done(sdk, accounts.Suspend(SuspendServiceAccountRequest(service_account_id=account.id, reason="sdk check")),
         None, SuspendServiceAccountMetadata, "service account suspend")
    check(accounts.Get(GetServiceAccountRequest(service_account_id=account.id)).status
          == ServiceAccount.Status.SUSPENDED, "the account shows SUSPENDED")
    try:
        urllib.request.urlopen(urllib.request.Request(f"https://{ENDPOINT}/oauth/token", data=form), context=tls)
        check(False, "a suspended account's exchange is refused")
    except urllib.error.HTTPError as refused:
        body = json.load(refused)
        check(refused.code == 400 and body.get("error_code") == "service_account_suspended",
              f"suspended exchange refused: {refused.code} {body}")
        say("exchange while suspended", f"{refused.code} {body.get('error')} {body.get('error_code')}")
    done(sdk, accounts.Reactivate(ReactivateServiceAccountRequest(service_account_id=account.id)),
         None, ReactivateServiceAccountMetadata, "service account reactivate")
    again = json.load(urllib.request.urlopen(
        urllib.request.Request(f"https://{ENDPOINT}/oauth/token", data=form), context=tls))
    check(again.get("access_token"), "the reactivated account's exchange works")

    # A call without the rights is refused with the gRPC code REST would answer.
    try:
        sdk2 = yandexcloud.SDK(endpoint=ENDPOINT, root_certificates=CA, iam_token=answer["access_token"])
        sdk2.client(FolderServiceStub).Delete(DeleteFolderRequest(folder_id=home.id))
        check(False, "a viewer deleting a folder is refused")
    except grpc.RpcError as refused:
        check(refused.code() == grpc.StatusCode.PERMISSION_DENIED, f"refused with {refused.code()}")
        say("viewer deleting a folder", f"{refused.code().name}: {refused.details()}")

    # Everything deleted again, each through its Operation.
    done(sdk, keys.Delete(DeleteKeyRequest(key_id=key.id)), None, DeleteKeyMetadata, "key delete")
    done(sdk, credentials.Delete(DeleteFederatedCredentialRequest(federated_credential_id=credential.id)),
         None, DeleteFederatedCredentialMetadata, "federated credential delete")
    done(sdk, federations.Delete(DeleteFederationRequest(federation_id=federation.id)),
         None, DeleteFederationMetadata, "federation delete")
    done(sdk, accounts.Delete(DeleteServiceAccountRequest(service_account_id=account.id)),
         None, DeleteServiceAccountMetadata, "service account delete")
    done(sdk, folders.Delete(DeleteFolderRequest(folder_id=folder.id)), None, DeleteFolderMetadata,
         "folder delete")
    try:
        folders.Get(GetFolderRequest(folder_id=folder.id))
        check(False, "the deleted folder is gone")
    except grpc.RpcError as gone:
        check(gone.code() == grpc.StatusCode.NOT_FOUND, f"deleted folder: {gone.code()}")
    say("the SDK check passed")


if __name__ == "__main__":
    main()
