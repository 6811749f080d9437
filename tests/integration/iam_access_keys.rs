//! Static access keys through the real server: `AccessKeyService` over REST and gRPC (every
//! method, the secret answered once and never again, who may manage whose keys, the quota,
//! FAILED_PRECONDITION without `[iam] secret_keys`), and their AWS Signature Version 4
//! signatures verified at `POST /iam/v1/authorize`, each rule refusing with its reason; the
//! sealed secrets bound to their row and to the configured keys, and their rotation.

use serde_json::{Value, json};
use tonic::Code;

use wif_gateway::grpc::proto::yandex::cloud::iam::v1::awscompatibility::access_key_service_client::AccessKeyServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::awscompatibility::{
    AccessKey, CreateAccessKeyRequest, DeleteAccessKeyMetadata, DeleteAccessKeyRequest,
    GetAccessKeyRequest, ListAccessKeysRequest, UpdateAccessKeyMetadata, UpdateAccessKeyRequest,
};
use wif_gateway::iam::sigv4::{self, HttpRequest};
use wif_gateway::iam::store::{ServiceAccountStatus, ServiceAccountUpdate};

use crate::grpc::{admin, authed, counter, parts};
use crate::support::gateway::{Gateway, Options, Reply};
use crate::support::iam::{KeyFile, SECRET_KEYS, add_account, sqlite_store};

const KEYS: &str = "/iam/aws-compatibility/v1/accessKeys";
const UPDATE_METADATA: &str =
    "type.googleapis.com/yandex.cloud.iam.v1.awscompatibility.UpdateAccessKeyMetadata";
const ACCESS_KEY: &str = "type.googleapis.com/yandex.cloud.iam.v1.awscompatibility.AccessKey";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A downstream object store's permission and role.
const STORAGE_ROLES: &str = r#"
[[permissions]]
id = "storage.objects.get"
class = "read"

[[roles]]
id = "storage.viewer"
permissions = ["storage.objects.get"]
"#;

fn now() -> i64 {
    wif_gateway::time::now_unix()
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

/// Grants `role` on service account `on` to `to`, through the API as the administrator.
async fn grant(gw: &Gateway, admin: &str, role: &str, on: &str, to: &str) {
    let reply = gw
        .iam(
            "POST",
            &format!("/iam/v1/serviceAccounts/{on}:updateAccessBindings"),
            Some(admin),
            Some(
                json!({"accessBindingDeltas": [{"action": "ADD", "accessBinding":
                    {"roleId": role, "subject": {"id": to, "type": "serviceAccount"}}}]})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// `reply` is the Yandex error of HTTP `status` and `code` whose message holds `needle`.
fn assert_refused(reply: &Reply, status: u16, code: i64, needle: &str) {
    assert_eq!(
        (reply.status, reply.grpc_code()),
        (status, code),
        "{}",
        reply.text
    );
    assert!(reply.message().contains(needle), "{}", reply.text);
}

async fn create(gw: &Gateway, token: &str, body: Value) -> Reply {
    gw.iam("POST", KEYS, Some(token), Some(body.to_string()))
        .await
}

#[tokio::test]
async fn access_keys_live_and_die_over_rest_and_the_secret_is_answered_once() {
    let options = Options {
        audit: "output = \"audit.log\"".into(),
        ..sqlite_store()
    };
    let gw = Gateway::start_with("", options).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let account = admin.service_account_id();
    let created = create(
        &gw,
        &admin_token,
        json!({"serviceAccountId": account, "description": "s3 uploads"}),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.headers["cache-control"], "no-store");
    let key = created.body["accessKey"].clone();
    let id = key["id"].as_str().unwrap().to_owned();
    let key_id = key["keyId"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(key["serviceAccountId"], account);
    assert_eq!(key["description"], "s3 uploads");
    assert!(key.get("lastUsedAt").is_none(), "{key}");
    assert!(key["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!((key_id.len(), &key_id[..2]), (25, "YC"), "{key_id}");
    assert_eq!((secret.len(), &secret[..2]), (40, "YC"), "{secret}");
    assert!(
        secret[2..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );

    // Get and List show the key, never the secret.
    let got = gw
        .iam("GET", &format!("{KEYS}/{id}"), Some(&admin_token), None)
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body, key);
    let listed = gw
        .iam(
            "GET",
            &format!("{KEYS}?serviceAccountId={account}&pageSize=10"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["accessKeys"], json!([key]));
    let own = gw.iam("GET", KEYS, Some(&admin_token), None).await;
    assert_eq!(
        own.body["accessKeys"][0]["id"],
        id.as_str(),
        "the caller's own by default"
    );
    for reply in [&got, &listed, &own] {
        assert!(!reply.text.contains(&secret));
        assert!(reply.body.get("secret").is_none());
    }

    // Update: the description, through the finished operation.
    let updated = gw
        .iam(
            "PATCH",
            &format!("{KEYS}/{id}"),
            Some(&admin_token),
            Some(json!({"updateMask": "description", "description": "renamed"}).to_string()),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["done"], true);
    assert_eq!(updated.body["metadata"]["@type"], UPDATE_METADATA);
    assert_eq!(updated.body["metadata"]["accessKeyId"], id.as_str());
    assert_eq!(updated.body["response"]["@type"], ACCESS_KEY);
    assert_eq!(updated.body["response"]["description"], "renamed");
    assert!(!updated.text.contains(&secret));
    let op = gw
        .iam(
            "GET",
            &format!("/operations/{}", updated.body["id"].as_str().unwrap()),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(op.body["response"]["keyId"], key_id.as_str());
    let masked = gw
        .iam(
            "PATCH",
            &format!("{KEYS}/{id}"),
            Some(&admin_token),
            Some(json!({"updateMask": "keyId", "description": "x"}).to_string()),
        )
        .await;
    assert_eq!(
        (masked.status, masked.grpc_code()),
        (400, 3),
        "{}",
        masked.text
    );

    // Bad input: a long description, an unknown field, an id too long.
    for (body, expected) in [
        (
            json!({"description": "d".repeat(257)}),
            "description must be at most 256 characters",
        ),
        (json!({"keyId": "YCmine"}), "unknown field"),
        (
            json!({"serviceAccountId": "a".repeat(51)}),
            "serviceAccountId must be 1 to 50 characters",
        ),
    ] {
        let refused = create(&gw, &admin_token, body).await;
        assert_refused(&refused, 400, 3, expected);
    }
    let missing = gw
        .iam(
            "GET",
            &format!("{KEYS}/ajenosuchkey00000000"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(
        (missing.status, missing.grpc_code()),
        (404, 5),
        "{}",
        missing.text
    );

    // Delete, then it is gone.
    let deleted = gw
        .iam("DELETE", &format!("{KEYS}/{id}"), Some(&admin_token), None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(
        deleted.body["metadata"]["@type"],
        "type.googleapis.com/yandex.cloud.iam.v1.awscompatibility.DeleteAccessKeyMetadata"
    );
    assert_eq!(
        deleted.body["response"]["@type"],
        "type.googleapis.com/google.protobuf.Empty"
    );
    let gone = gw
        .iam("GET", &format!("{KEYS}/{id}"), Some(&admin_token), None)
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);

    // The secret reached no audit line and no stored operation.
    let path = gw.dir.path().join("audit.log");
    let deleted_line = format!("\"resource\":\"access_key:{id}\"");
    crate::operate::wait_for("the deletion audited", async || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&deleted_line))
            .count()
            >= 3
    })
    .await;
    let audit = std::fs::read_to_string(&path).unwrap();
    assert!(!audit.contains(&secret));
    gw.stop().await;
}

#[tokio::test]
async fn access_keys_need_access_key_admin_and_the_roles_just_below_are_refused() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let alice = add_account(&gw, &admin, "alice").await;
    let target = add_account(&gw, &admin, "target").await;
    let alice_token = token(&gw, &alice);
    let existing = create(&gw, &admin_token, json!({"serviceAccountId": target})).await;
    assert_eq!(existing.status, 200, "{}", existing.text);
    let existing_id = existing.body["accessKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // (method, path, body, the permission it needs)
    let calls = |key: &str| {
        vec![
            (
                "GET",
                format!("{KEYS}?serviceAccountId={target}"),
                None,
                "iam.accessKeys.list",
            ),
            ("GET", format!("{KEYS}/{key}"), None, "iam.accessKeys.get"),
            (
                "POST",
                KEYS.to_owned(),
                Some(json!({"serviceAccountId": target}).to_string()),
                "iam.accessKeys.create",
            ),
            (
                "PATCH",
                format!("{KEYS}/{key}"),
                Some(json!({"description": "x"}).to_string()),
                "iam.accessKeys.update",
            ),
            (
                "DELETE",
                format!("{KEYS}/{key}"),
                None,
                "iam.accessKeys.delete",
            ),
        ]
    };
    // Nothing, then the neighbouring key roles: every method refused, naming its permission.
    for role in [
        None,
        Some("iam.serviceAccounts.apiKeyAdmin"),
        Some("iam.serviceAccounts.authorizedKeyAdmin"),
        Some("iam.serviceAccounts.user"),
    ] {
        if let Some(role) = role {
            grant(&gw, &admin_token, role, &target, &alice).await;
        }
        for (method, path, body, permission) in calls(&existing_id) {
            let reply = gw.iam(method, &path, Some(&alice_token), body).await;
            assert_eq!(
                (reply.status, reply.grpc_code()),
                (403, 7),
                "{role:?} {method} {path}: {}",
                reply.text
            );
            assert!(
                reply
                    .message()
                    .contains(&format!("{permission} is required on")),
                "{}",
                reply.text
            );
        }
    }
    // A viewer reads, and changes nothing.
    grant(&gw, &admin_token, "viewer", &target, &alice).await;
    for (method, path, body, _) in calls(&existing_id) {
        let reply = gw.iam(method, &path, Some(&alice_token), body).await;
        let expected = if method == "GET" { 200 } else { 403 };
        assert_eq!(
            reply.status, expected,
            "viewer {method} {path}: {}",
            reply.text
        );
    }
    // accessKeyAdmin: every method.
    grant(
        &gw,
        &admin_token,
        "iam.serviceAccounts.accessKeyAdmin",
        &target,
        &alice,
    )
    .await;
    let created = create(&gw, &alice_token, json!({"serviceAccountId": target})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let own = created.body["accessKey"]["id"].as_str().unwrap().to_owned();
    for (method, path, body, _) in calls(&own) {
        let reply = gw.iam(method, &path, Some(&alice_token), body).await;
        assert_eq!(
            reply.status, 200,
            "accessKeyAdmin {method} {path}: {}",
            reply.text
        );
    }
    // ...on that account only.
    let elsewhere = create(
        &gw,
        &alice_token,
        json!({"serviceAccountId": admin.service_account_id()}),
    )
    .await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.text);
    gw.stop().await;
}

#[tokio::test]
async fn the_quota_and_the_missing_sealing_key_are_refused() {
    let options = Options {
        iam: format!(
            "bootstrap_key_file = \"admin-key.json\"\n{SECRET_KEYS}\nquotas = {{ access_keys = 2 }}"
        ),
        ..sqlite_store()
    };
    let gw = Gateway::start_with("", options).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let other = add_account(&gw, &admin, "other").await;
    for account in [admin.service_account_id(), other.as_str()] {
        let reply = create(&gw, &admin_token, json!({"serviceAccountId": account})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let refused = create(&gw, &admin_token, json!({})).await;
    assert_eq!(
        (refused.status, refused.grpc_code()),
        (429, 8),
        "{}",
        refused.text
    );
    assert!(
        refused
            .message()
            .contains("quota iam.accessKeys.count of cloud")
            && refused.message().contains("is 2 and 2 are in use"),
        "{}",
        refused.text
    );
    gw.stop().await;

    // Without [iam] secret_keys: FAILED_PRECONDITION naming the setting, over REST and gRPC.
    let bare = Options {
        iam: "bootstrap_key_file = \"admin-key.json\"".into(),
        ..sqlite_store()
    };
    let gw = Gateway::start_with("", bare).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let refused = create(&gw, &admin_token, json!({})).await;
    assert_refused(&refused, 400, 9, "[iam] secret_keys");
    let (channel, grpc_token, _) = crate::grpc::admin(&gw).await;
    let refused = AccessKeyServiceClient::new(channel)
        .create(authed(&grpc_token, CreateAccessKeyRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("[iam] secret_keys"),
        "{refused:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn access_keys_live_and_die_over_grpc_and_the_roles_decide() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let (channel, admin_token, _) = admin(&gw).await;
    let file = KeyFile::bootstrap(&gw);
    let account = file.service_account_id().to_owned();
    let mut client = AccessKeyServiceClient::new(channel.clone());
    let created = client
        .create(authed(
            &admin_token,
            CreateAccessKeyRequest {
                service_account_id: account.clone(),
                description: "grpc".into(),
            },
        ))
        .await
        .expect("Create")
        .into_inner();
    let key = created.access_key.expect("the key");
    assert_eq!(
        (key.service_account_id.as_str(), key.description.as_str()),
        (account.as_str(), "grpc")
    );
    assert!(
        key.key_id.starts_with("YC") && key.key_id.len() == 25,
        "{key:?}"
    );
    assert!(created.secret.starts_with("YC") && created.secret.len() == 40);
    assert!(key.last_used_at.is_none() && key.created_at.is_some());
    let got: AccessKey = client
        .get(authed(
            &admin_token,
            GetAccessKeyRequest {
                access_key_id: key.id.clone(),
            },
        ))
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(got, key);
    let listed = client
        .list(authed(
            &admin_token,
            ListAccessKeysRequest {
                service_account_id: account.clone(),
                page_size: 1,
                page_token: String::new(),
            },
        ))
        .await
        .expect("List")
        .into_inner();
    assert_eq!(listed.access_keys, vec![key.clone()]);
    let rest = gw
        .iam(
            "GET",
            &format!("{KEYS}/{}", key.id),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(
        rest.body["keyId"],
        key.key_id.as_str(),
        "REST sees the same key"
    );
    assert!(!rest.text.contains(&created.secret));
    let op = client
        .update(authed(
            &admin_token,
            UpdateAccessKeyRequest {
                access_key_id: key.id.clone(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
                description: "renamed".into(),
            },
        ))
        .await
        .expect("Update")
        .into_inner();
    let (meta, updated): (UpdateAccessKeyMetadata, AccessKey) =
        parts(&op, UPDATE_METADATA, ACCESS_KEY);
    assert_eq!(
        (meta.access_key_id.as_str(), updated.description.as_str()),
        (key.id.as_str(), "renamed")
    );

    // Someone holding viewer on the account reads but cannot create, update or delete.
    let alice = add_account(&gw, &file, "alice").await;
    let alice_token = token(&gw, &alice);
    let denied = client
        .get(authed(
            &alice_token,
            GetAccessKeyRequest {
                access_key_id: key.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(
        denied
            .message()
            .contains("iam.accessKeys.get is required on"),
        "{denied:?}"
    );
    grant(&gw, &admin_token, "viewer", &account, &alice).await;
    client
        .get(authed(
            &alice_token,
            GetAccessKeyRequest {
                access_key_id: key.id.clone(),
            },
        ))
        .await
        .expect("a viewer reads");
    let denied = client
        .create(authed(
            &alice_token,
            CreateAccessKeyRequest {
                service_account_id: account.clone(),
                description: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let denied = client
        .delete(authed(
            &alice_token,
            DeleteAccessKeyRequest {
                access_key_id: key.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    grant(
        &gw,
        &admin_token,
        "iam.serviceAccounts.accessKeyAdmin",
        &account,
        &alice,
    )
    .await;
    let own = client
        .create(authed(
            &alice_token,
            CreateAccessKeyRequest {
                service_account_id: account.clone(),
                description: String::new(),
            },
        ))
        .await
        .expect("accessKeyAdmin creates")
        .into_inner();
    assert!(own.secret.starts_with("YC"));

    let op = client
        .delete(authed(
            &alice_token,
            DeleteAccessKeyRequest {
                access_key_id: key.id.clone(),
            },
        ))
        .await
        .expect("accessKeyAdmin deletes")
        .into_inner();
    let (meta, ()): (DeleteAccessKeyMetadata, ()) = {
        assert!(op.done);
        let meta = crate::grpc::unpack::<DeleteAccessKeyMetadata>(
            op.metadata.as_ref(),
            "type.googleapis.com/yandex.cloud.iam.v1.awscompatibility.DeleteAccessKeyMetadata",
        );
        (meta, ())
    };
    assert_eq!(meta.access_key_id, key.id);
    let gone = client
        .get(authed(
            &admin_token,
            GetAccessKeyRequest {
                access_key_id: key.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    let bad = client
        .update(authed(
            &admin_token,
            UpdateAccessKeyRequest {
                access_key_id: own.access_key.unwrap().id,
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["key_id".into()],
                }),
                description: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    gw.stop().await;
}

/// Headers as a service received them.
type Headers = Vec<(String, String)>;

/// A client of an S3-compatible service: signs requests with an access key.
struct Client {
    key_id: String,
    secret: String,
}

/// A request the service received, signed by `client` at `signed_at` (Unix seconds), with
/// `extra` headers signed too; the signed header names are `signed` (host and x-amz-date
/// unless told otherwise).
fn signed_request(
    client: &Client,
    signed_at: i64,
    extra: &[(&str, &str)],
    signed: &str,
    payload_hash: &str,
) -> Vec<(String, String)> {
    let date = amz_date(signed_at);
    let mut headers = vec![
        ("Host".to_owned(), "storage.example.test".to_owned()),
        ("X-Amz-Date".to_owned(), date.clone()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let names: Vec<&str> = signed.split(';').collect();
    let request = HttpRequest {
        method: "GET",
        path: "/bucket/photo%201.jpg",
        query: "versionId=3&acl",
        headers: &headers,
        payload_hash,
    };
    let canonical = sigv4::canonical_request(&request, &names, "s3", false).unwrap();
    let scope = format!("{}/ru-central1/s3/aws4_request", &date[..8]);
    let sts = sigv4::string_to_sign(&date, &scope, &canonical);
    let signature = sigv4::signature(
        client.secret.as_bytes(),
        &date[..8],
        "ru-central1",
        "s3",
        &sts,
    );
    headers.push((
        "Authorization".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            client.key_id
        ),
    ));
    headers
}

fn amz_date(unix: i64) -> String {
    let text = wif_gateway::time::rfc3339(unix);
    text.replace(['-', ':'], "")
}

fn signature_check(
    headers: &[(String, String)],
    payload_hash: &str,
    folder: &str,
    cloud: &str,
) -> Value {
    json!({
        "permission": "storage.objects.get",
        "resourcePath": [
            {"id": "bucket", "type": "storage.bucket"},
            {"id": folder, "type": "resource-manager.folder"},
            {"id": cloud, "type": "resource-manager.cloud"},
        ],
        "signature": {"request": {
            "method": "GET",
            "path": "/bucket/photo%201.jpg",
            "query": "versionId=3&acl",
            "headers": headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "payloadHash": payload_hash,
        }},
    })
}

#[tokio::test]
async fn signatures_are_verified_at_authorize_and_each_rule_refuses_with_its_reason() {
    let gw = Gateway::start_with(STORAGE_ROLES, sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let store = gw.state.store().unwrap();
    let me = store
        .get_service_account(admin.service_account_id())
        .await
        .unwrap();
    let (folder, cloud) = (me.folder_id.clone(), me.cloud_id.clone());
    let uploader = add_account(&gw, &admin, "uploader").await;
    let granted = gw
        .iam(
            "POST",
            &format!("/resource-manager/v1/folders/{folder}:updateAccessBindings"),
            Some(&admin_token),
            Some(json!({"accessBindingDeltas": [{"action": "ADD", "accessBinding":
                {"roleId": "storage.viewer", "subject": {"id": uploader, "type": "serviceAccount"}}}]}).to_string()),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    let created = create(&gw, &admin_token, json!({"serviceAccountId": uploader})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let client = Client {
        key_id: created.body["accessKey"]["keyId"]
            .as_str()
            .unwrap()
            .to_owned(),
        secret: created.body["secret"].as_str().unwrap().to_owned(),
    };
    let key_resource = created.body["accessKey"]["id"].as_str().unwrap().to_owned();
    let ask = async |check: Value| -> Value {
        let reply = gw
            .iam(
                "POST",
                "/iam/v1/authorize",
                Some(&admin_token),
                Some(json!({"checks": [check]}).to_string()),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(
            !reply.text.contains(&client.secret),
            "the secret is never answered"
        );
        reply.body["results"][0].clone()
    };
    let t = now();
    let good = signed_request(&client, t, &[], "host;x-amz-date", EMPTY_SHA256);
    let allowed = ask(signature_check(&good, EMPTY_SHA256, &folder, &cloud)).await;
    assert_eq!(
        allowed,
        json!({"subject": {"id": uploader, "type": "serviceAccount"}, "allowed": true})
    );

    // Yandex's AccessKeySignature: the service canonicalized the request itself.
    let date = amz_date(t);
    let sts = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}/ru-central1/s3/aws4_request\n{}",
        &date[..8],
        "a".repeat(64)
    );
    let sig = sigv4::signature(
        client.secret.as_bytes(),
        &date[..8],
        "ru-central1",
        "s3",
        &sts,
    );
    let yandex = |sts: &str, sig: &str, signed_at: i64| {
        json!({
            "permission": "storage.objects.get",
            "resourcePath": [{"id": folder, "type": "resource-manager.folder"}],
            "signature": {"accessKeyId": client.key_id, "stringToSign": sts, "signature": sig,
                "v4Parameters": {"signedAt": wif_gateway::time::rfc3339(signed_at), "service": "s3", "region": "ru-central1"}},
        })
    };
    assert_eq!(ask(yandex(&sts, &sig, t)).await["allowed"], true);
    let refused = ask(yandex(
        &sts.replace(&"a".repeat(64), &"b".repeat(64)),
        &sig,
        t,
    ))
    .await;
    assert_eq!(refused["code"], 16, "{refused}");

    // Each rule, refused with 16 and its reason; never the signature or the secret.
    let other_secret = Client {
        key_id: client.key_id.clone(),
        secret: format!("YC{}", "x".repeat(38)),
    };
    let stranger = Client {
        key_id: format!("YC{}", "Q".repeat(23)),
        secret: client.secret.clone(),
    };
    let mut tampered = good.clone();
    tampered[0].1 = "evil.example.test".into();
    let other_body = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
    let hashed = signed_request(
        &client,
        t,
        &[("X-Amz-Content-Sha256", EMPTY_SHA256)],
        "host;x-amz-content-sha256;x-amz-date",
        EMPTY_SHA256,
    );
    let cases: Vec<(&str, Headers, &str, &str)> = vec![
        (
            "wrong secret",
            signed_request(&other_secret, t, &[], "host;x-amz-date", EMPTY_SHA256),
            EMPTY_SHA256,
            "the signature does not match",
        ),
        (
            "stale date",
            signed_request(&client, t - 16 * 60, &[], "host;x-amz-date", EMPTY_SHA256),
            EMPTY_SHA256,
            "more than 15 minutes from the server's clock",
        ),
        (
            "future date",
            signed_request(&client, t + 16 * 60, &[], "host;x-amz-date", EMPTY_SHA256),
            EMPTY_SHA256,
            "more than 15 minutes from the server's clock",
        ),
        (
            "tampered header",
            tampered,
            EMPTY_SHA256,
            "the signature does not match",
        ),
        (
            "tampered body",
            good.clone(),
            other_body,
            "the signature does not match",
        ),
        (
            "tampered body, signed hash",
            hashed.clone(),
            other_body,
            "is not the x-amz-content-sha256 the request signed",
        ),
        (
            "unsigned host",
            signed_request(&client, t, &[], "x-amz-date", EMPTY_SHA256),
            EMPTY_SHA256,
            "the host header is not among the signed headers",
        ),
        (
            "unknown key",
            signed_request(&stranger, t, &[], "host;x-amz-date", EMPTY_SHA256),
            EMPTY_SHA256,
            "is not a static access key of this gateway",
        ),
        (
            "no signature at all",
            vec![("Host".into(), "storage.example.test".into())],
            EMPTY_SHA256,
            "neither an Authorization header nor X-Amz-Signature",
        ),
    ];
    let mut failures = Vec::new();
    for (name, headers, payload, expected) in &cases {
        let result = ask(signature_check(headers, payload, &folder, &cloud)).await;
        let signature = headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .and_then(|(_, v)| v.rsplit('=').next());
        let message = result["message"].as_str().unwrap_or("");
        if result["code"] != 16
            || !message.contains(expected)
            || signature.is_some_and(|s| message.contains(s))
        {
            failures.push(format!("{name}: {result}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(
        ask(signature_check(&hashed, EMPTY_SHA256, &folder, &cloud)).await["allowed"],
        true
    );

    // A permission the key's account lacks: 7, naming the permission.
    let mut denied_check = signature_check(&good, EMPTY_SHA256, &folder, &cloud);
    denied_check["permission"] = json!("iam.serviceAccounts.get");
    denied_check["resourcePath"] =
        json!([{"id": admin.service_account_id(), "type": "iam.serviceAccount"}]);
    let denied = ask(denied_check).await;
    assert_eq!(denied["code"], 7, "{denied}");
    assert!(
        denied["message"]
            .as_str()
            .unwrap()
            .contains("iam.serviceAccounts.get is required"),
        "{denied}"
    );

    // Exactly one credential per check.
    let mut both = signature_check(&good, EMPTY_SHA256, &folder, &cloud);
    both["iamToken"] = json!(admin_token);
    let mut neither = signature_check(&good, EMPTY_SHA256, &folder, &cloud);
    neither.as_object_mut().unwrap().remove("signature");
    for check in [both, neither] {
        let reply = gw
            .iam(
                "POST",
                "/iam/v1/authorize",
                Some(&admin_token),
                Some(json!({"checks": [check]}).to_string()),
            )
            .await;
        assert_refused(&reply, 400, 3, "exactly one of iamToken, apiKey, signature");
    }

    // A suspended account's signatures are refused; active again, accepted.
    let account = store.get_service_account(&uploader).await.unwrap();
    let suspend = |status| ServiceAccountUpdate {
        name: account.name.clone(),
        description: account.description.clone(),
        labels: account.labels.clone(),
        status,
        suspended_until: None,
    };
    let written = store
        .update_service_account(
            &uploader,
            account.version,
            &suspend(ServiceAccountStatus::Suspended),
            now(),
        )
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;
    let suspended = ask(signature_check(&good, EMPTY_SHA256, &folder, &cloud)).await;
    assert_eq!(suspended["code"], 16, "{suspended}");
    assert!(
        suspended["message"]
            .as_str()
            .unwrap()
            .contains("is suspended"),
        "{suspended}"
    );
    let written = store
        .update_service_account(
            &uploader,
            written.item.version,
            &suspend(ServiceAccountStatus::Active),
            now(),
        )
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;
    assert_eq!(
        ask(signature_check(&good, EMPTY_SHA256, &folder, &cloud)).await["allowed"],
        true
    );

    // A deleted key signs nothing from the moment Delete answers.
    let deleted = gw
        .iam(
            "DELETE",
            &format!("{KEYS}/{key_resource}"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let gone = ask(signature_check(&good, EMPTY_SHA256, &folder, &cloud)).await;
    assert_eq!(gone["code"], 16, "{gone}");
    assert!(
        gone["message"]
            .as_str()
            .unwrap()
            .contains("is not a static access key of this gateway"),
        "{gone}"
    );

    let metrics = gw.metrics().await;
    assert!(
        counter(&metrics, "wif_gateway_sigv4_checks_total{result=\"valid\"}") >= 5.0,
        "{metrics}"
    );
    assert!(
        counter(
            &metrics,
            "wif_gateway_sigv4_checks_total{result=\"signature_mismatch\"}"
        ) >= 3.0
    );
    gw.stop().await;
}

#[tokio::test]
async fn presigned_urls_verify_until_they_expire() {
    let gw = Gateway::start_with(STORAGE_ROLES, sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let me = gw
        .state
        .store()
        .unwrap()
        .get_service_account(admin.service_account_id())
        .await
        .unwrap();
    let created = create(&gw, &admin_token, json!({})).await;
    let key_id = created.body["accessKey"]["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let presigned = |signed_at: i64, expires: i64| {
        let date = amz_date(signed_at);
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={key_id}%2F{}%2Fru-central1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host",
            &date[..8]
        );
        let headers = vec![("Host".to_owned(), "storage.example.test".to_owned())];
        let request = HttpRequest {
            method: "GET",
            path: "/bucket/a.txt",
            query: &query,
            headers: &headers,
            payload_hash: sigv4::UNSIGNED_PAYLOAD,
        };
        let canonical = sigv4::canonical_request(&request, &["host"], "s3", true).unwrap();
        let sts = sigv4::string_to_sign(
            &date,
            &format!("{}/ru-central1/s3/aws4_request", &date[..8]),
            &canonical,
        );
        let sig = sigv4::signature(secret.as_bytes(), &date[..8], "ru-central1", "s3", &sts);
        json!({
            "permission": "iam.serviceAccounts.get",
            "resourcePath": [{"id": admin.service_account_id(), "type": "iam.serviceAccount"}, {"id": me.folder_id, "type": "resource-manager.folder"}],
            "signature": {"request": {"method": "GET", "path": "/bucket/a.txt", "query": format!("{query}&X-Amz-Signature={sig}"),
                "headers": [{"name": "Host", "value": "storage.example.test"}], "payloadHash": "UNSIGNED-PAYLOAD"}},
        })
    };
    let t = now();
    let reply = gw
        .iam(
            "POST",
            "/iam/v1/authorize",
            Some(&admin_token),
            Some(
                json!({"checks": [
                    presigned(t - 3000, 3600),
                    presigned(t - 3700, 3600),
                    presigned(t, 604_801),
                ]})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let results = &reply.body["results"];
    assert_eq!(results[0]["allowed"], true, "{}", reply.text);
    assert_eq!(results[1]["code"], 16, "{}", reply.text);
    assert!(
        results[1]["message"]
            .as_str()
            .unwrap()
            .contains("the presigned URL expired at"),
        "{}",
        reply.text
    );
    assert_eq!(results[2]["code"], 16);
    assert!(
        results[2]["message"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Expires"),
        "{}",
        reply.text
    );
    gw.stop().await;
}

#[tokio::test]
async fn sealed_secrets_open_in_their_own_row_under_a_listed_key_and_rotate() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let account = admin.service_account_id().to_owned();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let created = create(&gw, &admin_token, json!({})).await;
        assert_eq!(created.status, 200, "{}", created.text);
        keys.push(Client {
            key_id: created.body["accessKey"]["keyId"]
                .as_str()
                .unwrap()
                .to_owned(),
            secret: created.body["secret"].as_str().unwrap().to_owned(),
        });
    }
    let folder = gw
        .state
        .store()
        .unwrap()
        .get_service_account(&account)
        .await
        .unwrap()
        .folder_id;
    let check = |client: &Client| {
        let headers = signed_request(client, now(), &[], "host;x-amz-date", EMPTY_SHA256);
        let mut check = signature_check(&headers, EMPTY_SHA256, &folder, "unused");
        check["permission"] = json!("iam.serviceAccounts.get");
        check["resourcePath"] = json!([{"id": account, "type": "iam.serviceAccount"}]);
        check
    };
    let ask = async |gw: &Gateway, token: &str, client: &Client| -> Value {
        let reply = gw
            .iam(
                "POST",
                "/iam/v1/authorize",
                Some(token),
                Some(json!({"checks": [check(client)]}).to_string()),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body["results"][0].clone()
    };
    assert_eq!(ask(&gw, &admin_token, &keys[0]).await["allowed"], true);

    // The first key's sealed value copied into the second key's row does not open there.
    let store = gw.state.store().unwrap().clone();
    let rows = store
        .list_access_keys(&account, &Default::default())
        .await
        .unwrap()
        .items;
    let (first, second) = if rows[0].key_id == keys[0].key_id {
        (&rows[0], &rows[1])
    } else {
        (&rows[1], &rows[0])
    };
    let written = store
        .reseal_access_key(&second.id, second.version, &first.secret, now())
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;
    let moved = ask(&gw, &admin_token, &keys[1]).await;
    assert_eq!(moved["code"], 13, "{moved}");
    assert!(
        moved["message"]
            .as_str()
            .unwrap()
            .contains("does not open with sealing key \"test\""),
        "{moved}"
    );
    assert!(
        !moved.to_string().contains(&keys[0].secret)
            && !moved.to_string().contains(&keys[1].secret)
    );
    let written = store
        .reseal_access_key(&second.id, written.item.version, &second.secret, now())
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;
    assert_eq!(ask(&gw, &admin_token, &keys[1]).await["allowed"], true);

    // A restart with another key only: the old secrets do not open, naming the missing key.
    let dir = gw.stop_keeping_dir().await;
    let rotated = |keys: &str| Options {
        iam: format!("bootstrap_key_file = \"admin-key.json\"\nsecret_keys = [{keys}]"),
        ..sqlite_store()
    };
    std::fs::write(dir.path().join("secret-key-new"), [42u8; 32]).unwrap();
    let gw = Gateway::start_in(
        dir,
        "",
        rotated("{ id = \"new\", file = \"secret-key-new\" }"),
    )
    .await;
    let admin_token = gw.iam_token(&admin_for(&gw)).await;
    let unknown = ask(&gw, &admin_token, &keys[0]).await;
    assert_eq!(unknown["code"], 13, "{unknown}");
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("names sealing key \"test\", which [iam] secret_keys does not list"),
        "{unknown}"
    );
    let dir = gw.stop_keeping_dir().await;

    // The new key first, the old one still listed: old secrets open, and are sealed again under
    // the new key; then the old key can go.
    let gw = Gateway::start_in(dir, "", rotated("{ id = \"new\", file = \"secret-key-new\" }, { id = \"test\", file = \"secret-key-test\" }")).await;
    let admin_token = gw.iam_token(&admin_for(&gw)).await;
    assert_eq!(ask(&gw, &admin_token, &keys[0]).await["allowed"], true);
    let resealed = wif_gateway::app::call::access_keys(&gw.state)
        .unwrap()
        .reseal(100)
        .await
        .unwrap();
    assert_eq!(resealed, 2);
    let store = gw.state.store().unwrap().clone();
    gw.state.live().unwrap().catch_up().await.unwrap();
    for row in store
        .list_access_keys(&account, &Default::default())
        .await
        .unwrap()
        .items
    {
        assert!(
            row.secret.as_stored().starts_with("new:"),
            "{:?}",
            row.secret
        );
    }
    assert_eq!(
        wif_gateway::app::call::access_keys(&gw.state)
            .unwrap()
            .reseal(100)
            .await
            .unwrap(),
        0
    );
    let dir = gw.stop_keeping_dir().await;
    let gw = Gateway::start_in(
        dir,
        "",
        rotated("{ id = \"new\", file = \"secret-key-new\" }"),
    )
    .await;
    let admin_token = gw.iam_token(&admin_for(&gw)).await;
    for client in &keys {
        assert_eq!(ask(&gw, &admin_token, client).await["allowed"], true);
    }
    gw.stop().await;
}

fn admin_for(gw: &Gateway) -> KeyFile {
    KeyFile::bootstrap(gw)
}

#[test]
fn check_config_reads_the_sealing_key_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "[signing]\nkey_file = \"s.pem\"\ngenerate_if_missing = true\n\n[store]\nurl = \"sqlite://iam.db\"\n\n[iam]\nsecret_keys = [{ id = \"k1\", file = \"k1\" }, { id = \"k2\", file = \"k2\" }]\n",
    )
    .unwrap();
    let check = || {
        let out = std::process::Command::new(crate::support::binary::BIN)
            .args(["check-config", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Missing, then too short, then one readable by others: refused, refused, a warning.
    let (code, stderr) = check();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("[iam] secret_keys \"k1\"") && stderr.contains("cannot be read"),
        "{stderr}"
    );
    std::fs::write(dir.path().join("k1"), "c2hvcnQ=\n").unwrap();
    std::fs::write(dir.path().join("k2"), [9u8; 32]).unwrap();
    std::fs::set_permissions(
        dir.path().join("k1"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(
        dir.path().join("k2"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, stderr) = check();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("base64 text of 5 bytes"), "{stderr}");
    std::fs::write(
        dir.path().join("k1"),
        format!("{}\n", "QUFB".repeat(10) + "QUE="),
    )
    .unwrap();
    let (code, stderr) = check();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("\"k2\"") && stderr.contains("may be read by others than its owner"),
        "{stderr}"
    );
    assert!(!stderr.contains("\"k1\": "), "k1 is private: {stderr}");
}
