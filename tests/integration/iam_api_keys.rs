//! API keys (`ApiKeyService`) through the real server, over REST and gRPC: the secret answered
//! once and never again (not by Get or List, not in the audit log, the logs or the store), the
//! methods' rules (expiry, scopes, update masks), who may manage and read keys (the minimum
//! role succeeding, the role below refused), the quota, the scopes the configuration declares
//! (listed, reloaded), and the Authorize API checking presented keys from memory: unknown,
//! expired, suspended, out of scope, deleted, of a deleted account, and used by the resource
//! service for itself.

use prost::Message as _;
use serde_json::{Value, json};
use tonic::Code;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::api_key_service_client::ApiKeyServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::{
    ApiKey, CreateApiKeyRequest, DeleteApiKeyMetadata, DeleteApiKeyRequest, GetApiKeyRequest,
    ListApiKeyScopesRequest, ListApiKeysRequest, UpdateApiKeyMetadata, UpdateApiKeyRequest,
};
use wif_gateway::iam::ResourceKind;
use wif_gateway::iam::store::{
    ApiKeyUpdate, NewAccessBinding, ResourceRef, ServiceAccountStatus, ServiceAccountUpdate,
    Subject, SubjectType,
};

use crate::grpc::{authed, channel, counter, parts};
use crate::operate::{audit_lines, wait_for};
use crate::support::gateway::{Gateway, Options, Reply};
use crate::support::iam::{KeyFile, LoggedDevGateway, add_account, sqlite_store};
use crate::support::now;

const GET_PAYLOAD: &str = "lockbox.secrets.getPayload";
const UPDATE: &str = "lockbox.secrets.update";
const READ_SCOPE: &str = "yc.lockbox.payload.read";
const MANAGE_SCOPE: &str = "yc.lockbox.manage";
const AUTHORIZE_SCOPE: &str = "yc.iam.authorize";

/// A downstream service's permissions and role, and three API-key scopes.
const SCOPES: &str = r#"
[[permissions]]
id = "lockbox.secrets.getPayload"
class = "read"

[[permissions]]
id = "lockbox.secrets.update"
class = "manage"

[[roles]]
id = "lockbox.payloadViewer"
permissions = ["lockbox.secrets.getPayload"]

[[api_key_scopes]]
id = "yc.lockbox.payload.read"
permissions = ["lockbox.secrets.getPayload"]

[[api_key_scopes]]
id = "yc.lockbox.manage"
permissions = ["lockbox.secrets.update"]

[[api_key_scopes]]
id = "yc.iam.authorize"
permissions = ["iam.accessService.authorize"]
"#;

fn options() -> Options {
    Options {
        audit: "output = \"audit.log\"".into(),
        ..sqlite_store()
    }
}

/// An IAM token of `account`, minted by the gateway's own key.
fn token(gw: &Gateway, account: &str) -> String {
    gw.state
        .snapshot()
        .minter
        .mint_for_key(account, "test-key", now())
        .expect("mint")
        .access_token
}

/// Grants `role` on `kind` `on` to service account `to`, in the store, applied before this
/// returns.
async fn grant(gw: &Gateway, kind: ResourceKind, on: &str, role: &str, to: &str) {
    let written = gw
        .state
        .store()
        .unwrap()
        .create_access_binding(
            &NewAccessBinding {
                resource: ResourceRef::new(kind, on),
                role_id: role.into(),
                subject: Subject {
                    subject_type: SubjectType::ServiceAccount,
                    id: to.into(),
                },
            },
            now(),
        )
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;
}

async fn create(gw: &Gateway, token: &str, body: Value) -> Reply {
    gw.iam(
        "POST",
        "/iam/v1/apiKeys",
        Some(token),
        Some(body.to_string()),
    )
    .await
}

/// A new key of `account` made by `token`'s caller: (id, secret).
async fn new_key(gw: &Gateway, token: &str, account: &str, scopes: &[&str]) -> (String, String) {
    let reply = create(
        gw,
        token,
        json!({"serviceAccountId": account, "scopes": scopes}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    (
        reply.body["apiKey"]["id"].as_str().unwrap().to_owned(),
        reply.body["secret"].as_str().unwrap().to_owned(),
    )
}

fn rfc3339(unix: i64) -> String {
    wif_gateway::time::rfc3339(unix)
}

#[tokio::test]
async fn an_api_key_lives_over_rest_and_its_secret_is_shown_once() {
    let gw = Gateway::start_with(SCOPES, options()).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    let account = admin.service_account_id();
    let expires = now() + 3600;
    let created = create(
        &gw,
        &token,
        json!({"description": "lockbox reader", "scopes": [READ_SCOPE],
               "expiresAt": rfc3339(expires)}),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.headers["cache-control"], "no-store");
    let key = created.body["apiKey"].clone();
    let id = key["id"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 40, "{secret}");
    assert!(secret.starts_with("AQVN"), "{secret}");
    assert!(secret[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        key,
        json!({"id": id, "serviceAccountId": account, "createdAt": key["createdAt"],
               "description": "lockbox reader", "scopes": [READ_SCOPE],
               "expiresAt": rfc3339(expires), "maskedSecret": format!("****{}", &secret[34..])}),
        "the caller's own account by default; no lastUsedAt before any use"
    );

    // Never again: not by Get, not by List.
    let got = gw
        .iam("GET", &format!("/iam/v1/apiKeys/{id}"), Some(&token), None)
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body, key);
    let (_, second_secret) = new_key(&gw, &token, account, &[]).await;
    let listed = gw.iam("GET", "/iam/v1/apiKeys", Some(&token), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["apiKeys"].as_array().unwrap().len(), 2);
    for reply in [&got, &listed] {
        for s in [&secret, &second_secret] {
            assert!(!reply.text.contains(&s[4..]), "{}", reply.text);
        }
    }
    // Pages.
    let first = gw
        .iam(
            "GET",
            &format!("/iam/v1/apiKeys?serviceAccountId={account}&pageSize=1"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(first.body["apiKeys"].as_array().unwrap().len(), 1);
    let next = first.body["nextPageToken"].as_str().unwrap();
    let second = gw
        .iam(
            "GET",
            &format!("/iam/v1/apiKeys?pageSize=1&pageToken={next}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(second.body["apiKeys"].as_array().unwrap().len(), 1);
    assert!(second.body.get("nextPageToken").is_none());
    assert_ne!(
        first.body["apiKeys"][0]["id"],
        second.body["apiKeys"][0]["id"]
    );

    // Update: the fields the mask names; without a mask, the fields sent.
    let path = format!("/iam/v1/apiKeys/{id}");
    let patch = async |body: Value| {
        gw.iam("PATCH", &path, Some(&token), Some(body.to_string()))
            .await
    };
    let updated = patch(json!({"updateMask": "description,scopes",
        "description": "lockbox manager", "scopes": [READ_SCOPE, MANAGE_SCOPE]}))
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["done"], true);
    assert_eq!(
        updated.body["metadata"],
        json!({"@type": "type.googleapis.com/yandex.cloud.iam.v1.UpdateApiKeyMetadata", "apiKeyId": id})
    );
    let response = &updated.body["response"];
    assert_eq!(
        response["@type"],
        "type.googleapis.com/yandex.cloud.iam.v1.ApiKey"
    );
    assert_eq!(response["description"], "lockbox manager");
    assert_eq!(response["scopes"], json!([READ_SCOPE, MANAGE_SCOPE]));
    assert_eq!(response["expiresAt"], rfc3339(expires), "not in the mask");
    assert_eq!(response["maskedSecret"], key["maskedSecret"]);
    let cleared = patch(json!({"updateMask": "expiresAt"})).await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert!(
        cleared.body["response"].get("expiresAt").is_none(),
        "named and not sent: never expires: {}",
        cleared.text
    );
    let later = now() + 7200;
    let sent = patch(json!({"expiresAt": rfc3339(later)})).await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert_eq!(sent.body["response"]["expiresAt"], rfc3339(later));
    assert_eq!(
        sent.body["response"]["description"], "lockbox manager",
        "not sent, not changed"
    );
    for (name, body) in [
        ("immutable field", json!({"updateMask": "maskedSecret"})),
        ("no scopes", json!({"updateMask": "scopes", "scopes": []})),
        ("unknown scope", json!({"scopes": ["yc.nothing"]})),
        ("past expiry", json!({"expiresAt": rfc3339(now() - 60)})),
        (
            "another key's id",
            json!({"apiKeyId": "ajeanotherkey0000000"}),
        ),
    ] {
        let refused = patch(body).await;
        assert_eq!(
            (refused.status, refused.grpc_code()),
            (400, 3),
            "{name}: {}",
            refused.text
        );
    }

    // Delete: gone.
    let deleted = gw.iam("DELETE", &path, Some(&token), None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(
        deleted.body["metadata"],
        json!({"@type": "type.googleapis.com/yandex.cloud.iam.v1.DeleteApiKeyMetadata", "apiKeyId": id})
    );
    assert_eq!(
        deleted.body["response"]["@type"],
        "type.googleapis.com/google.protobuf.Empty"
    );
    let gone = gw.iam("GET", &path, Some(&token), None).await;
    assert_eq!((gone.status, gone.grpc_code()), (404, 5), "{}", gone.text);

    // Bad creates.
    let too_many: Vec<String> = (0..101).map(|i| format!("yc.s{i}")).collect();
    let bad: Vec<(&str, Value)> = vec![
        ("past expiry", json!({"expiresAt": rfc3339(now() - 1)})),
        ("expiry now", json!({"expiresAt": rfc3339(now())})),
        ("after 2105", json!({"expiresAt": "2106-01-01T00:00:00Z"})),
        ("not a time", json!({"expiresAt": "tomorrow"})),
        ("no time zone", json!({"expiresAt": "2030-01-01T00:00:00"})),
        ("unknown scope", json!({"scopes": ["yc.nothing"]})),
        ("deprecated unknown scope", json!({"scope": "yc.nothing"})),
        ("scope twice", json!({"scopes": [READ_SCOPE, READ_SCOPE]})),
        ("101 scopes", json!({ "scopes": too_many })),
        ("long scope", json!({"scopes": ["s".repeat(257)]})),
        ("long description", json!({"description": "d".repeat(257)})),
        ("unknown field", json!({"serviceAcountId": account})),
    ];
    for (name, body) in bad {
        let reply = create(&gw, &token, body).await;
        assert_eq!(
            (reply.status, reply.grpc_code()),
            (400, 3),
            "{name}: {}",
            reply.text
        );
    }
    let unknown = create(&gw, &token, json!({"scopes": ["yc.nothing"]})).await;
    assert!(
        unknown.message().contains(READ_SCOPE),
        "names the scopes there are: {}",
        unknown.text
    );
    let deprecated = create(&gw, &token, json!({"scope": READ_SCOPE})).await;
    assert_eq!(deprecated.status, 200, "{}", deprecated.text);
    assert_eq!(
        deprecated.body["apiKey"]["scopes"],
        json!([READ_SCOPE]),
        "the deprecated scope is one more scope"
    );
    let missing = create(
        &gw,
        &token,
        json!({"serviceAccountId": "ajenosuchaccount0000"}),
    )
    .await;
    assert_eq!(
        (missing.status, missing.grpc_code()),
        (404, 5),
        "{}",
        missing.text
    );

    // A retried create with its idempotency key makes no second key and shows no secret again.
    let with_key = async || {
        let reply = gw
            .client
            .post(format!("{}/iam/v1/apiKeys", gw.url))
            .bearer_auth(&token)
            .header("Idempotency-Key", "3f1c0e6a-api-key-create")
            .header("Content-Type", "application/json")
            .body(json!({"description": "once"}).to_string())
            .send()
            .await
            .unwrap();
        Reply::from(reply).await
    };
    let first = with_key().await;
    assert_eq!(first.status, 200, "{}", first.text);
    let retried = with_key().await;
    assert_eq!(
        (retried.status, retried.grpc_code()),
        (409, 6),
        "{}",
        retried.text
    );
    assert!(!retried.text.contains("AQVN"), "{}", retried.text);
    let listed = gw.iam("GET", "/iam/v1/apiKeys", Some(&token), None).await;
    let once = listed.body["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["description"] == "once")
        .count();
    assert_eq!(once, 1, "{}", listed.text);

    // One audit line per mutation, reads not audited, no secret in any of them.
    let audit = gw.dir.path().join("audit.log");
    wait_for("the mutations audited", async || {
        audit_lines(&audit)
            .iter()
            .any(|l| l["method"] == "yandex.cloud.iam.v1.ApiKeyService/Delete")
    })
    .await;
    let lines: Vec<Value> = audit_lines(&audit)
        .into_iter()
        .filter(|l| l["event"] == "management")
        .collect();
    let create_line = lines
        .iter()
        .find(|l| {
            l["method"] == "yandex.cloud.iam.v1.ApiKeyService/Create" && l["decision"] == "allow"
        })
        .expect("create audited");
    assert_eq!(create_line["resource"], format!("api_key:{id}"));
    assert!(
        !lines.iter().any(
            |l| l["method"].as_str().unwrap().contains("ApiKeyService/Get")
                || l["method"].as_str().unwrap().contains("ApiKeyService/List")
        ),
        "reads are not audited"
    );
    let raw = std::fs::read_to_string(&audit).unwrap();
    for s in [&secret, &second_secret] {
        assert!(!raw.contains(&s[4..]), "the audit log holds a secret");
    }
    // Nor does the store: its file and write-ahead log hold the hashes only.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(gw.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("iam.db"))
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    let hash = wif_gateway::iam::api_key_table::hex(
        &wif_gateway::iam::api_key_table::secret_digest(&second_secret),
    );
    assert!(
        stored.windows(64).any(|w| w == hash.as_bytes()),
        "the search works: the hash is there"
    );
    for s in [&secret, &second_secret] {
        assert!(
            !stored.windows(36).any(|w| w == &s.as_bytes()[4..]),
            "the store holds a secret"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn keys_are_managed_by_api_key_admins_and_read_by_viewers_over_rest_and_grpc() {
    let gw = Gateway::start_with(SCOPES, sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let alice = add_account(&gw, &admin, "alice").await;
    let carol = add_account(&gw, &admin, "carol").await;
    let bob = add_account(&gw, &admin, "bob").await;
    let (alice_token, carol_token) = (token(&gw, &alice), token(&gw, &carol));
    let (key, _) = new_key(&gw, &admin_token, &bob, &[]).await;
    let mut client = ApiKeyServiceClient::new(channel(&gw).await);
    let key_path = format!("/iam/v1/apiKeys/{key}");
    let list_path = format!("/iam/v1/apiKeys?serviceAccountId={bob}");
    let create_body = json!({"serviceAccountId": bob}).to_string();

    // The reads need iam.apiKeys.get/list: `viewer` (auditor and above) has them,
    // `iam.serviceAccounts.user` does not.
    grant(&gw, ResourceKind::ServiceAccount, &bob, "viewer", &alice).await;
    grant(
        &gw,
        ResourceKind::ServiceAccount,
        &bob,
        "iam.serviceAccounts.user",
        &carol,
    )
    .await;
    for (who, caller, status) in [("viewer", &alice_token, 200), ("user", &carol_token, 403)] {
        for (path, permission) in [
            (&key_path, "iam.apiKeys.get"),
            (&list_path, "iam.apiKeys.list"),
        ] {
            let reply = gw.iam("GET", path, Some(caller), None).await;
            assert_eq!(reply.status, status, "{who} GET {path}: {}", reply.text);
            if status == 403 {
                assert!(reply.message().contains(permission), "{}", reply.text);
            }
        }
        let get = client
            .get(authed(
                caller,
                GetApiKeyRequest {
                    api_key_id: key.clone(),
                },
            ))
            .await;
        let list = client
            .list(authed(
                caller,
                ListApiKeysRequest {
                    service_account_id: bob.clone(),
                    ..Default::default()
                },
            ))
            .await;
        if status == 200 {
            assert_eq!(get.expect("gRPC Get").into_inner().id, key);
            assert_eq!(list.expect("gRPC List").into_inner().api_keys.len(), 1);
        } else {
            for refused in [get.map(drop).unwrap_err(), list.map(drop).unwrap_err()] {
                assert_eq!(refused.code(), Code::PermissionDenied, "{who}: {refused:?}");
            }
        }
    }

    // The changes need iam.serviceAccounts.apiKeyAdmin (or above): `viewer` is refused them.
    let rest_changes = |caller: String| {
        let gw = &gw;
        let (key_path, create_body) = (key_path.clone(), create_body.clone());
        async move {
            let created = gw
                .iam("POST", "/iam/v1/apiKeys", Some(&caller), Some(create_body))
                .await;
            let updated = gw
                .iam(
                    "PATCH",
                    &key_path,
                    Some(&caller),
                    Some(json!({"description": "x"}).to_string()),
                )
                .await;
            let deleted = gw.iam("DELETE", &key_path, Some(&caller), None).await;
            [created, updated, deleted]
        }
    };
    for (reply, permission) in rest_changes(alice_token.clone()).await.iter().zip([
        "iam.apiKeys.create",
        "iam.apiKeys.update",
        "iam.apiKeys.delete",
    ]) {
        assert_eq!(
            (reply.status, reply.grpc_code()),
            (403, 7),
            "{}",
            reply.text
        );
        assert!(reply.message().contains(permission), "{}", reply.text);
    }
    let refused = [
        client
            .create(authed(
                &alice_token,
                CreateApiKeyRequest {
                    service_account_id: bob.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        client
            .update(authed(
                &alice_token,
                UpdateApiKeyRequest {
                    api_key_id: key.clone(),
                    description: "x".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        client
            .delete(authed(
                &alice_token,
                DeleteApiKeyRequest {
                    api_key_id: key.clone(),
                },
            ))
            .await
            .map(drop),
    ];
    for (refused, permission) in refused.into_iter().zip([
        "iam.apiKeys.create",
        "iam.apiKeys.update",
        "iam.apiKeys.delete",
    ]) {
        let status = refused.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(status.message().contains(permission), "{status:?}");
    }

    // With iam.serviceAccounts.apiKeyAdmin on bob: over gRPC, then over REST.
    grant(
        &gw,
        ResourceKind::ServiceAccount,
        &bob,
        "iam.serviceAccounts.apiKeyAdmin",
        &alice,
    )
    .await;
    let created = client
        .create(authed(
            &alice_token,
            CreateApiKeyRequest {
                service_account_id: bob.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("gRPC Create")
        .into_inner();
    let other = created.api_key.expect("the key").id;
    client
        .update(authed(
            &alice_token,
            UpdateApiKeyRequest {
                api_key_id: other.clone(),
                description: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("gRPC Update");
    client
        .delete(authed(
            &alice_token,
            DeleteApiKeyRequest { api_key_id: other },
        ))
        .await
        .expect("gRPC Delete");
    for reply in rest_changes(alice_token.clone()).await {
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    // Nothing on another account.
    let admins = create(
        &gw,
        &alice_token,
        json!({"serviceAccountId": admin.service_account_id()}),
    )
    .await;
    assert_eq!(
        (admins.status, admins.grpc_code()),
        (403, 7),
        "{}",
        admins.text
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_cloud_holds_at_most_its_quota_of_api_keys() {
    let mut options = sqlite_store();
    options.iam.push_str("\nquotas = { api_keys = 2 }");
    let gw = Gateway::start_with("", options).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    let account = admin.service_account_id();
    let other = add_account(&gw, &admin, "other").await;
    new_key(&gw, &token, account, &[]).await;
    new_key(&gw, &token, &other, &[]).await;
    let refused = create(&gw, &token, json!({})).await;
    assert_eq!(
        (refused.status, refused.grpc_code()),
        (429, 8),
        "{}",
        refused.text
    );
    assert!(
        refused.message().contains("iam.apiKeys.count") && refused.message().contains("is 2"),
        "{}",
        refused.text
    );
    let mut client = ApiKeyServiceClient::new(channel(&gw).await);
    let status = client
        .create(authed(&token, CreateApiKeyRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    gw.stop().await;
}

#[tokio::test]
async fn every_method_over_grpc() {
    let gw = Gateway::start_with(SCOPES, sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    let account = admin.service_account_id().to_owned();
    let mut client = ApiKeyServiceClient::new(channel(&gw).await);
    let expires = now() + 3600;
    let created = client
        .create(authed(
            &token,
            CreateApiKeyRequest {
                description: "reader".into(),
                scopes: vec![READ_SCOPE.into()],
                expires_at: Some(prost_types::Timestamp {
                    seconds: expires,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("Create")
        .into_inner();
    let key = created.api_key.expect("the key");
    assert!(created.secret.starts_with("AQVN") && created.secret.len() == 40);
    assert_eq!(key.service_account_id, account, "the caller's own");
    assert_eq!(key.scopes, [READ_SCOPE]);
    assert_eq!(key.expires_at.map(|t| t.seconds), Some(expires));
    assert_eq!(key.masked_secret, format!("****{}", &created.secret[34..]));
    assert_eq!(key.last_used_at, None);

    let got = client
        .get(authed(
            &token,
            GetApiKeyRequest {
                api_key_id: key.id.clone(),
            },
        ))
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(got, key);
    let listed = client
        .list(authed(
            &token,
            ListApiKeysRequest {
                service_account_id: account.clone(),
                page_size: 10,
                ..Default::default()
            },
        ))
        .await
        .expect("List")
        .into_inner();
    assert_eq!(listed.api_keys, std::slice::from_ref(&key));
    assert!(listed.next_page_token.is_empty());
    for message in [got.encode_to_vec(), listed.encode_to_vec()] {
        let text = String::from_utf8_lossy(&message);
        assert!(
            !text.contains(&created.secret[4..]),
            "the secret shown again"
        );
    }

    let op = client
        .update(authed(
            &token,
            UpdateApiKeyRequest {
                api_key_id: key.id.clone(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["scopes".into(), "expires_at".into()],
                }),
                scopes: vec![MANAGE_SCOPE.into()],
                description: "ignored: not in the mask".into(),
                expires_at: None,
            },
        ))
        .await
        .expect("Update")
        .into_inner();
    let (meta, updated): (UpdateApiKeyMetadata, ApiKey) = parts(
        &op,
        "type.googleapis.com/yandex.cloud.iam.v1.UpdateApiKeyMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.ApiKey",
    );
    assert_eq!(meta.api_key_id, key.id);
    assert_eq!(updated.scopes, [MANAGE_SCOPE]);
    assert_eq!(updated.description, "reader");
    assert_eq!(updated.expires_at, None, "named, not sent: never expires");

    let scopes = client
        .list_scopes(authed(
            &token,
            ListApiKeyScopesRequest {
                page_size: 2,
                ..Default::default()
            },
        ))
        .await
        .expect("ListScopes")
        .into_inner();
    assert_eq!(scopes.scopes, [AUTHORIZE_SCOPE, MANAGE_SCOPE]);
    let rest = client
        .list_scopes(authed(
            &token,
            ListApiKeyScopesRequest {
                page_size: 2,
                page_token: scopes.next_page_token,
            },
        ))
        .await
        .expect("ListScopes")
        .into_inner();
    assert_eq!(rest.scopes, [READ_SCOPE]);
    assert!(rest.next_page_token.is_empty());

    // Refusals carry the Yandex codes.
    let refusals = [
        (
            "past expiry",
            CreateApiKeyRequest {
                expires_at: Some(prost_types::Timestamp {
                    seconds: now() - 10,
                    nanos: 0,
                }),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            "bad nanos",
            CreateApiKeyRequest {
                expires_at: Some(prost_types::Timestamp {
                    seconds: now() + 10,
                    nanos: -1,
                }),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            "unknown scope",
            CreateApiKeyRequest {
                scopes: vec!["yc.nothing".into()],
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            "unknown account",
            CreateApiKeyRequest {
                service_account_id: "ajenosuchaccount0000".into(),
                ..Default::default()
            },
            Code::NotFound,
        ),
    ];
    for (name, request, code) in refusals {
        let status = client.create(authed(&token, request)).await.unwrap_err();
        assert_eq!(status.code(), code, "{name}: {status:?}");
    }
    let status = client
        .update(authed(
            &token,
            UpdateApiKeyRequest {
                api_key_id: key.id.clone(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["scopes".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "no scopes: {status:?}"
    );

    let op = client
        .delete(authed(
            &token,
            DeleteApiKeyRequest {
                api_key_id: key.id.clone(),
            },
        ))
        .await
        .expect("Delete")
        .into_inner();
    let (meta, ()): (DeleteApiKeyMetadata, ()) = parts(
        &op,
        "type.googleapis.com/yandex.cloud.iam.v1.DeleteApiKeyMetadata",
        "type.googleapis.com/google.protobuf.Empty",
    );
    assert_eq!(meta.api_key_id, key.id);
    let gone = client
        .get(authed(&token, GetApiKeyRequest { api_key_id: key.id }))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let unauthenticated = client
        .list_scopes(tonic::Request::new(ListApiKeyScopesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    gw.stop().await;
}

#[tokio::test]
async fn scopes_are_listed_in_pages_and_follow_a_reload() {
    let gw = Gateway::start_with(SCOPES, sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    // Any authenticated caller: an account with no role at all.
    let nobody = add_account(&gw, &admin, "nobody").await;
    let caller = token(&gw, &nobody);
    let first = gw
        .iam(
            "GET",
            "/iam/v1/apiKeyScopes?pageSize=2",
            Some(&caller),
            None,
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["scopes"], json!([AUTHORIZE_SCOPE, MANAGE_SCOPE]));
    let next = first.body["nextPageToken"].as_str().unwrap();
    let second = gw
        .iam(
            "GET",
            &format!("/iam/v1/apiKeyScopes?pageSize=2&pageToken={next}"),
            Some(&caller),
            None,
        )
        .await;
    assert_eq!(second.body, json!({"scopes": [READ_SCOPE]}));
    let anonymous = gw.iam("GET", "/iam/v1/apiKeyScopes", None, None).await;
    assert_eq!((anonymous.status, anonymous.grpc_code()), (401, 16));
    let bad = gw
        .iam(
            "GET",
            "/iam/v1/apiKeyScopes?pageSize=1001",
            Some(&caller),
            None,
        )
        .await;
    assert_eq!((bad.status, bad.grpc_code()), (400, 3), "{}", bad.text);

    // A reload that declares another scope and drops one: listed, and usable at once.
    let reloaded = SCOPES.replace(MANAGE_SCOPE, "yc.lockbox.admin");
    gw.write_config(&reloaded, &sqlite_store());
    wait_for("the reload", async || {
        gw.iam("GET", "/iam/v1/apiKeyScopes", Some(&caller), None)
            .await
            .text
            .contains("yc.lockbox.admin")
    })
    .await;
    let all = gw
        .iam("GET", "/iam/v1/apiKeyScopes", Some(&caller), None)
        .await;
    assert_eq!(
        all.body["scopes"],
        json!([AUTHORIZE_SCOPE, "yc.lockbox.admin", READ_SCOPE])
    );
    let admin_token = gw.iam_token(&admin).await;
    let gone = create(&gw, &admin_token, json!({"scopes": [MANAGE_SCOPE]})).await;
    assert_eq!((gone.status, gone.grpc_code()), (400, 3), "{}", gone.text);
    let new = create(&gw, &admin_token, json!({"scopes": ["yc.lockbox.admin"]})).await;
    assert_eq!(new.status, 200, "{}", new.text);
    gw.stop().await;
}

/// One check of the Authorize API on a secret in `folder`, with `credential` (`iamToken` or
/// `apiKey` and its value).
fn check(permission: &str, folder: &str, credential: (&str, &str)) -> Value {
    let mut check = json!({
        "permission": permission,
        "resourcePath": [
            {"id": "e6qsecret0000000001", "type": "lockbox.secret"},
            {"id": folder, "type": "resource-manager.folder"},
        ],
    });
    check[credential.0] = json!(credential.1);
    check
}

/// `POST /iam/v1/authorize` with `authorization` as the whole header value.
async fn authorize(gw: &Gateway, authorization: &str, checks: Vec<Value>) -> Reply {
    let reply = gw
        .client
        .post(format!("{}/iam/v1/authorize", gw.url))
        .header("Authorization", authorization)
        .header("Content-Type", "application/json")
        .body(json!({ "checks": checks }).to_string())
        .send()
        .await
        .expect("gateway answers");
    Reply::from(reply).await
}

/// The value of `wif_gateway_api_key_checks_total{result}`.
async fn key_checks(gw: &Gateway, result: &str) -> f64 {
    counter(
        &gw.metrics().await,
        &format!("wif_gateway_api_key_checks_total{{result=\"{result}\"}}"),
    )
}

#[tokio::test]
async fn authorize_checks_presented_keys_from_memory() {
    let gw = Gateway::start_with(SCOPES, options()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let store = gw.state.store().unwrap().clone();
    let folder = store
        .get_service_account(admin.service_account_id())
        .await
        .unwrap()
        .folder_id;
    // The resource service, allowed to ask; the subjects, allowed to read payloads.
    let lockbox = add_account(&gw, &admin, "lockbox").await;
    grant(
        &gw,
        ResourceKind::Folder,
        &folder,
        "iam.accessService.authorizer",
        &lockbox,
    )
    .await;
    let service = format!("Bearer {}", token(&gw, &lockbox));
    let mut subjects = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let account = add_account(&gw, &admin, name).await;
        grant(
            &gw,
            ResourceKind::Folder,
            &folder,
            "lockbox.payloadViewer",
            &account,
        )
        .await;
        subjects.push(account);
    }
    let (alice, bob, carol) = (&subjects[0], &subjects[1], &subjects[2]);
    let (_, open) = new_key(&gw, &admin_token, alice, &[]).await;
    let (_, read) = new_key(&gw, &admin_token, alice, &[READ_SCOPE]).await;
    let (manage_id, manage) = new_key(&gw, &admin_token, alice, &[MANAGE_SCOPE]).await;
    let (expired_id, expired) = new_key(&gw, &admin_token, alice, &[]).await;
    let (_, bobs) = new_key(&gw, &admin_token, bob, &[]).await;
    let (_, carols) = new_key(&gw, &admin_token, carol, &[]).await;
    let (doomed_id, doomed) = new_key(&gw, &admin_token, alice, &[]).await;
    let unknown = format!("AQVN{}", "x".repeat(36));

    // Expired a second ago (the API only sets future times: the store does it).
    let current = store.get_api_key(&expired_id).await.unwrap();
    let expired_at = now() - 1;
    let written = store
        .update_api_key(
            &expired_id,
            current.version,
            &ApiKeyUpdate {
                description: current.description,
                scopes: current.scopes,
                expires_at: Some(expired_at),
            },
            now(),
        )
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;
    // Bob's account suspended.
    let current = store.get_service_account(bob).await.unwrap();
    let written = store
        .update_service_account(
            bob,
            current.version,
            &ServiceAccountUpdate {
                name: current.name,
                description: current.description,
                labels: current.labels,
                status: ServiceAccountStatus::Suspended,
                suspended_until: None,
            },
            now(),
        )
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;

    let counted = [
        "allowed",
        "unknown",
        "expired",
        "suspended",
        "out_of_scope",
        "denied",
    ];
    let mut before = Vec::new();
    for result in counted {
        before.push(key_checks(&gw, result).await);
    }
    let cases: Vec<(&str, Value, i64, Vec<&str>)> = vec![
        (
            "open key",
            check(GET_PAYLOAD, &folder, ("apiKey", &open)),
            0,
            vec![],
        ),
        (
            "in scope",
            check(GET_PAYLOAD, &folder, ("apiKey", &read)),
            0,
            vec![],
        ),
        (
            "out of scope",
            check(GET_PAYLOAD, &folder, ("apiKey", &manage)),
            7,
            vec![&manage_id, MANAGE_SCOPE, GET_PAYLOAD],
        ),
        (
            "in scope, no role",
            check(UPDATE, &folder, ("apiKey", &manage)),
            7,
            vec![UPDATE, "is required on"],
        ),
        (
            "the scope checked before the role",
            check(UPDATE, &folder, ("apiKey", &read)),
            7,
            vec![READ_SCOPE, "none of which allows"],
        ),
        (
            "expired",
            check(GET_PAYLOAD, &folder, ("apiKey", &expired)),
            16,
            vec!["expired at", &expired_id],
        ),
        (
            "unknown",
            check(GET_PAYLOAD, &folder, ("apiKey", &unknown)),
            16,
            vec!["the API key is not valid"],
        ),
        (
            "suspended account",
            check(GET_PAYLOAD, &folder, ("apiKey", &bobs)),
            16,
            vec!["suspended", bob],
        ),
    ];
    let reply = authorize(
        &gw,
        &service,
        cases.iter().map(|(_, c, _, _)| c.clone()).collect(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let results = reply.body["results"].as_array().unwrap();
    for ((name, _, code, words), result) in cases.iter().zip(results) {
        if *code == 0 {
            assert_eq!(
                result,
                &json!({"subject": {"id": alice, "type": "serviceAccount"}, "allowed": true}),
                "{name}"
            );
            continue;
        }
        assert_eq!(result["code"], *code, "{name}: {result}");
        let message = result["message"].as_str().unwrap();
        for word in words {
            assert!(message.contains(word), "{name}: {message}");
        }
    }
    for secret in [&open, &read, &manage, &expired, &unknown, &bobs] {
        assert!(!reply.text.contains(&secret[4..]), "{}", reply.text);
    }
    let expected_delta = [2.0, 1.0, 1.0, 1.0, 2.0, 1.0];
    for ((result, was), delta) in counted.iter().zip(&before).zip(expected_delta) {
        let now = key_checks(&gw, result).await;
        assert!(
            now - was >= delta,
            "wif_gateway_api_key_checks_total{{result={result:?}}}: {was} → {now}"
        );
    }

    // Deleted: refused from the Delete's answer on (this replica applies it before answering);
    // a deleted account's keys go with it.
    for (secret, doomed) in [
        (&doomed, format!("/iam/v1/apiKeys/{doomed_id}")),
        (&carols, format!("/iam/v1/serviceAccounts/{carol}")),
    ] {
        let ask = async || {
            let checks = vec![check(GET_PAYLOAD, &folder, ("apiKey", secret))];
            authorize(&gw, &service, checks).await.body["results"][0].clone()
        };
        assert_eq!(ask().await["allowed"], true, "{doomed}");
        let deleted = gw.iam("DELETE", &doomed, Some(&admin_token), None).await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
        assert_eq!(ask().await["code"], 16, "{doomed}");
    }

    // Exactly one credential per check.
    let both = {
        let mut c = check(GET_PAYLOAD, &folder, ("apiKey", &open));
        c["iamToken"] = json!(token(&gw, alice));
        c
    };
    let neither = {
        let mut c = check(GET_PAYLOAD, &folder, ("apiKey", ""));
        c.as_object_mut().unwrap().remove("apiKey");
        c
    };
    for (name, c) in [("both", both), ("neither", neither)] {
        let reply = authorize(&gw, &service, vec![c]).await;
        assert_eq!(
            (reply.status, reply.grpc_code()),
            (400, 3),
            "{name}: {}",
            reply.text
        );
        assert!(
            reply.message().contains("exactly one of iamToken, apiKey"),
            "{}",
            reply.text
        );
    }
    // A key sent in the wrong place is not repeated by the refusal of the body.
    let misplaced = authorize(
        &gw,
        &service,
        vec![json!({"permission": GET_PAYLOAD, "resourcePath": open, "apiKey": open})],
    )
    .await;
    assert_eq!(
        (misplaced.status, misplaced.grpc_code()),
        (400, 3),
        "{}",
        misplaced.text
    );
    assert!(
        misplaced.message().contains("invalid type: string")
            && !misplaced.text.contains(&open[4..]),
        "{}",
        misplaced.text
    );
    // An IAM token and an API key side by side.
    let mixed = authorize(
        &gw,
        &service,
        vec![
            check(GET_PAYLOAD, &folder, ("iamToken", &token(&gw, alice))),
            check(GET_PAYLOAD, &folder, ("apiKey", &open)),
        ],
    )
    .await;
    assert_eq!(mixed.body["results"][0]["allowed"], true, "{}", mixed.text);
    assert_eq!(mixed.body["results"][1]["allowed"], true, "{}", mixed.text);

    // The resource service presents its own API key: unlimited, or limited to a scope that
    // allows iam.accessService.authorize; a key limited otherwise, or unknown, is refused.
    let (_, own) = new_key(&gw, &admin_token, &lockbox, &[]).await;
    let (_, own_scoped) = new_key(&gw, &admin_token, &lockbox, &[AUTHORIZE_SCOPE]).await;
    let (own_narrow_id, own_narrow) = new_key(&gw, &admin_token, &lockbox, &[READ_SCOPE]).await;
    for caller in [&own, &own_scoped] {
        let reply = authorize(
            &gw,
            &format!("Api-Key {caller}"),
            vec![check(GET_PAYLOAD, &folder, ("apiKey", &open))],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.body["results"][0]["allowed"], true, "{}", reply.text);
    }
    let narrow = authorize(
        &gw,
        &format!("Api-Key {own_narrow}"),
        vec![check(GET_PAYLOAD, &folder, ("apiKey", &open))],
    )
    .await;
    assert_eq!(
        (narrow.status, narrow.grpc_code()),
        (403, 7),
        "{}",
        narrow.text
    );
    assert!(
        narrow.message().contains(&own_narrow_id)
            && narrow.message().contains("iam.accessService.authorize"),
        "{}",
        narrow.text
    );
    let stranger = authorize(
        &gw,
        &format!("Api-Key {unknown}"),
        vec![check(GET_PAYLOAD, &folder, ("apiKey", &open))],
    )
    .await;
    assert_eq!(
        (stranger.status, stranger.grpc_code()),
        (401, 16),
        "{}",
        stranger.text
    );
    // Alice's key is hers: it does not make her a resource service.
    let not_a_service = authorize(
        &gw,
        &format!("Api-Key {open}"),
        vec![check(GET_PAYLOAD, &folder, ("apiKey", &open))],
    )
    .await;
    assert_eq!(
        not_a_service.body["results"][0]["code"], 7,
        "{}",
        not_a_service.text
    );
    // API keys are for resource services: the management API takes IAM tokens only.
    let management = gw
        .client
        .get(format!("{}/iam/v1/apiKeys", gw.url))
        .header("Authorization", format!("Api-Key {open}"))
        .send()
        .await
        .unwrap();
    let management = Reply::from(management).await;
    assert_eq!(
        (management.status, management.grpc_code()),
        (401, 16),
        "{}",
        management.text
    );
    assert!(!management.text.contains(&open[4..]));

    // The audit log names the refused checks' subjects, never a key.
    let audit = gw.dir.path().join("audit.log");
    wait_for("the refusals audited", async || {
        audit_lines(&audit)
            .iter()
            .any(|l| l["event"] == "authorize_denied" && l["subject"] == bob.as_str())
    })
    .await;
    let lines = audit_lines(&audit);
    let expired_line = lines
        .iter()
        .find(|l| l["event"] == "authorize_denied" && l["api_key_id"] == expired_id.as_str())
        .expect("the expired key's refusal audited");
    assert_eq!(expired_line["subject"], alice.as_str());
    assert_eq!(expired_line["code"], "UNAUTHENTICATED");
    let raw = std::fs::read_to_string(&audit).unwrap();
    for secret in [
        &open,
        &read,
        &manage,
        &expired,
        &unknown,
        &bobs,
        &doomed,
        &own_narrow,
    ] {
        assert!(
            !raw.contains(&secret[4..]),
            "the audit log holds an API key"
        );
    }

    // A database outage does not stop the checks: they read memory.
    store.close().await;
    let reply = authorize(
        &gw,
        &format!("Api-Key {own}"),
        vec![
            check(GET_PAYLOAD, &folder, ("apiKey", &open)),
            check(GET_PAYLOAD, &folder, ("apiKey", &manage)),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["results"][0]["allowed"], true, "{}", reply.text);
    assert_eq!(reply.body["results"][1]["code"], 7, "{}", reply.text);
    gw.stop().await;
}

/// Each run of 20 characters of a secret's random part: what a leak would contain.
fn pieces(secret: &str) -> Vec<String> {
    secret.as_bytes()[4..]
        .windows(20)
        .step_by(8)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

#[tokio::test]
async fn api_key_secrets_never_reach_the_audit_log_the_logs_or_the_store() {
    let dir = tempfile::tempdir().expect("dir");
    let mut gw = LoggedDevGateway::start(dir.path()).await;
    let (client, base) = (gw.client.clone(), gw.base.clone());
    let post = |path: &str, authorization: Option<String>, body: Value| {
        let mut request = client
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send()
    };
    let bearer = format!("Bearer {}", gw.token);
    // The dev configuration's scope, a key limited to it, and one that is not.
    let mut secrets = Vec::new();
    for scopes in [json!(["yc.lockbox.payload.read"]), json!([])] {
        let created: Value = post(
            "/iam/v1/apiKeys",
            Some(bearer.clone()),
            json!({"description": "leak test", "scopes": scopes}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        secrets.push(created["secret"].as_str().expect("secret").to_owned());
    }
    let folder = "b1gdevfolder0000001";
    // Refusals that are logged at debug level and audited: out of scope, not allowed, a bad
    // header, and keys as the caller.
    for (authorization, checks) in [
        (
            bearer.clone(),
            vec![
                check("lockbox.secrets.update", folder, ("apiKey", &secrets[0])),
                check(GET_PAYLOAD, folder, ("apiKey", &secrets[1])),
                check(GET_PAYLOAD, folder, ("apiKey", &format!("{}x", secrets[1]))),
            ],
        ),
        (
            format!("Api-Key {}", secrets[0]),
            vec![check(GET_PAYLOAD, folder, ("apiKey", &secrets[1]))],
        ),
        (
            format!("Api-Key {}", secrets[1]),
            vec![check(GET_PAYLOAD, folder, ("apiKey", &secrets[0]))],
        ),
        (
            format!("Basic {}", secrets[1]),
            vec![check(GET_PAYLOAD, folder, ("apiKey", &secrets[0]))],
        ),
    ] {
        let reply = post(
            "/iam/v1/authorize",
            Some(authorization),
            json!({ "checks": checks }),
        )
        .await
        .unwrap();
        let text = reply.text().await.unwrap();
        for secret in &secrets {
            assert!(
                !text.contains(&secret[4..]),
                "an answer holds a key: {text}"
            );
        }
    }
    // A management call refused with a key as its credential.
    let refused = client
        .get(format!("{base}/iam/v1/apiKeys"))
        .header("Authorization", format!("Api-Key {}", secrets[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(gw.process.terminate().await.code(), Some(0));

    let needles: Vec<String> = secrets.iter().flat_map(|s| pieces(s)).collect();
    let find = |haystack: &[u8]| {
        let text = String::from_utf8_lossy(haystack);
        needles.iter().find(|n| text.contains(n.as_str())).cloned()
    };
    let (audit, logs) = (gw.audit(), gw.logs());
    assert!(
        String::from_utf8_lossy(&audit).contains("\"event\":\"authorize_denied\""),
        "the audit log was written"
    );
    assert!(
        String::from_utf8_lossy(&logs).contains("IAM call refused"),
        "debug logs were written"
    );
    assert_eq!(find(&audit), None, "the audit log holds an API key");
    assert_eq!(find(&logs), None, "the logs hold an API key");
    let store = gw.store();
    let hash = wif_gateway::iam::api_key_table::hex(
        &wif_gateway::iam::api_key_table::secret_digest(&secrets[0]),
    );
    assert!(
        String::from_utf8_lossy(&store).contains(&hash),
        "the search works: the store holds the hash"
    );
    assert_eq!(find(&store), None, "the store holds an API key");
}
