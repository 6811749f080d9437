//! The Authorize API and the roles of downstream services through the real server: a role the
//! configuration declares (`lockbox.payloadViewer`) granted on a folder by
//! `:updateAccessBindings` lets its subject read a secret in that folder, at once, and no
//! longer once revoked or once a reload stops declaring the role; refused tokens are 16, missing
//! permissions 7; the resource service must hold `iam.accessService.authorizer`; unknown roles
//! are refused in bindings.

use std::time::Duration;

use serde_json::{Value, json};

use wif_gateway::iam::store::{ServiceAccountStatus, ServiceAccountUpdate};

use crate::support::gateway::{Gateway, Options, Reply};
use crate::support::iam::{KeyFile, add_account, sqlite_store};

const AUTHORIZE: &str = "/iam/v1/authorize";
const GET_PAYLOAD: &str = "lockbox.secrets.getPayload";

const LOCKBOX_ROLES: &str = r#"
[[permissions]]
id = "lockbox.secrets.get"
class = "read_metadata"

[[permissions]]
id = "lockbox.secrets.getPayload"
class = "read"

[[permissions]]
id = "lockbox.secrets.update"
class = "manage"

[[roles]]
id = "lockbox.payloadViewer"
permissions = ["lockbox.secrets.getPayload"]

[[roles]]
id = "lockbox.editor"
permissions = ["lockbox.secrets.get", "lockbox.secrets.update"]
includes = ["lockbox.payloadViewer"]
"#;

/// An IAM token of `account` minted by the gateway's own key at `now`.
fn token_at(gw: &Gateway, account: &str, now: i64) -> String {
    gw.state
        .snapshot()
        .minter
        .mint_for_key(account, "test-key", now)
        .expect("mint")
        .access_token
}

fn token(gw: &Gateway, account: &str) -> String {
    token_at(gw, account, wif_gateway::time::now_unix())
}

fn sa(id: &str) -> Value {
    json!({"id": id, "type": "serviceAccount"})
}

async fn grant(gw: &Gateway, admin: &str, path: &str, action: &str, role: &str, to: &str) -> Reply {
    gw.iam(
        "POST",
        &format!("{path}:updateAccessBindings"),
        Some(admin),
        Some(
            json!({"accessBindingDeltas": [
                {"action": action, "accessBinding": {"roleId": role, "subject": sa(to)}}
            ]})
            .to_string(),
        ),
    )
    .await
}

fn check(permission: &str, folder: &str, cloud: &str, token: &str) -> Value {
    json!({
        "permission": permission,
        "resourcePath": [
            {"id": "e6qsecret0000000001", "type": "lockbox.secret"},
            {"id": folder, "type": "resource-manager.folder"},
            {"id": cloud, "type": "resource-manager.cloud"},
        ],
        "iamToken": token,
    })
}

async fn authorize(gw: &Gateway, caller: &str, checks: Vec<Value>) -> Reply {
    gw.iam(
        "POST",
        AUTHORIZE,
        Some(caller),
        Some(json!({ "checks": checks }).to_string()),
    )
    .await
}

/// The one result of a single-check request.
async fn one(gw: &Gateway, caller: &str, check: Value) -> Value {
    let reply = authorize(gw, caller, vec![check]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["results"][0].clone()
}

fn options() -> Options {
    Options {
        audit: "output = \"audit.log\"".into(),
        ..sqlite_store()
    }
}

#[tokio::test]
async fn configured_roles_are_granted_checked_and_revoked() {
    let gw = Gateway::start_with(LOCKBOX_ROLES, options()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let store = gw.state.store().expect("store");
    let me = store
        .get_service_account(admin.service_account_id())
        .await
        .unwrap();
    let (folder, cloud) = (me.folder_id.clone(), me.cloud_id.clone());
    let folder_path = format!("/resource-manager/v1/folders/{folder}");
    let cloud_path = format!("/resource-manager/v1/clouds/{cloud}");
    let lockbox = add_account(&gw, &admin, "lockbox").await;
    let alice = add_account(&gw, &admin, "alice").await;
    let service = token(&gw, &lockbox);
    let alice_token = token(&gw, &alice);

    // The resource service may not ask before it holds iam.accessService.authorizer.
    let refused = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &alice_token),
    )
    .await;
    assert_eq!(refused["code"], 7, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("iam.accessService.authorize"),
        "{refused}"
    );
    let granted = grant(
        &gw,
        &admin_token,
        &cloud_path,
        "ADD",
        "iam.accessService.authorizer",
        &lockbox,
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.text);

    // Without the role: 7.
    let denied = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &alice_token),
    )
    .await;
    assert_eq!(denied["code"], 7, "{denied}");
    assert!(
        denied["message"].as_str().unwrap().contains(GET_PAYLOAD),
        "{denied}"
    );

    // Granted on the folder: allowed at once, for a secret the gateway has never heard of.
    let granted = grant(
        &gw,
        &admin_token,
        &folder_path,
        "ADD",
        "lockbox.payloadViewer",
        &alice,
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    let allowed = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &alice_token),
    )
    .await;
    assert_eq!(allowed, json!({"subject": sa(&alice), "allowed": true}));
    let listed = gw
        .iam(
            "GET",
            &format!("{folder_path}:listAccessBindings"),
            Some(&admin_token),
            None,
        )
        .await;
    assert!(
        listed.text.contains("lockbox.payloadViewer"),
        "{}",
        listed.text
    );

    // A batch: one result per check, in order.
    let garbage = "not.a.token";
    let expired = token_at(&gw, &alice, wif_gateway::time::now_unix() - 10 * 3600);
    let reply = authorize(
        &gw,
        &service,
        vec![
            check(GET_PAYLOAD, &folder, &cloud, &alice_token),
            check("lockbox.secrets.update", &folder, &cloud, &alice_token),
            check(GET_PAYLOAD, &folder, &cloud, garbage),
            check(GET_PAYLOAD, &folder, &cloud, &expired),
            check("lockbox.secrets.destroy", &folder, &cloud, &alice_token),
            check(GET_PAYLOAD, &folder, "b1gnotthecloud00001", &alice_token),
            check(GET_PAYLOAD, &folder, &cloud, &admin_token),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let codes: Vec<Value> = reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("code").cloned().unwrap_or(json!(0)))
        .collect();
    assert_eq!(codes, [0, 7, 16, 16, 3, 3, 0], "{}", reply.text);
    assert!(
        reply.body["results"][3]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{}",
        reply.text
    );

    // Revoked: 7 at the next check.
    let revoked = grant(
        &gw,
        &admin_token,
        &folder_path,
        "REMOVE",
        "lockbox.payloadViewer",
        &alice,
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let denied = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &alice_token),
    )
    .await;
    assert_eq!(denied["code"], 7, "{denied}");

    // Roles neither built in nor configured are refused in bindings.
    let unknown = grant(
        &gw,
        &admin_token,
        &folder_path,
        "ADD",
        "lockbox.noSuchRole",
        &alice,
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.grpc_code()),
        (400, 3),
        "{}",
        unknown.text
    );

    // A suspended service account's token is unauthenticated, as a check's subject and as the
    // caller; active again, it is answered as before.
    let suspend = async |account: &str, status: ServiceAccountStatus| {
        let current = store.get_service_account(account).await.unwrap();
        let written = store
            .update_service_account(
                account,
                current.version,
                &ServiceAccountUpdate {
                    name: current.name,
                    description: current.description,
                    labels: current.labels,
                    status,
                    suspended_until: None,
                },
                wif_gateway::time::now_unix(),
            )
            .await
            .unwrap();
        gw.state.live().unwrap().caught_up_to(written.seq).await;
    };
    let bob = add_account(&gw, &admin, "bob").await;
    let bob_token = token(&gw, &bob);
    let granted = grant(
        &gw,
        &admin_token,
        &folder_path,
        "ADD",
        "lockbox.payloadViewer",
        &bob,
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    let allowed = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &bob_token),
    )
    .await;
    assert_eq!(allowed["allowed"], true, "{allowed}");
    suspend(&bob, ServiceAccountStatus::Suspended).await;
    let refused = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &bob_token),
    )
    .await;
    assert_eq!(refused["code"], 16, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("suspended"),
        "{refused}"
    );
    suspend(&lockbox, ServiceAccountStatus::Suspended).await;
    let caller = authorize(
        &gw,
        &service,
        vec![check(GET_PAYLOAD, &folder, &cloud, &alice_token)],
    )
    .await;
    assert_eq!(
        (caller.status, caller.grpc_code()),
        (401, 16),
        "{}",
        caller.text
    );
    assert!(caller.text.contains("suspended"), "{}", caller.text);
    suspend(&lockbox, ServiceAccountStatus::Active).await;
    suspend(&bob, ServiceAccountStatus::Active).await;
    let again = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &bob_token),
    )
    .await;
    assert_eq!(again["allowed"], true, "{again}");

    // A deleted service account's token is unauthenticated.
    let deleted = gw
        .iam(
            "DELETE",
            &format!("/iam/v1/serviceAccounts/{alice}"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let gone = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &alice_token),
    )
    .await;
    assert_eq!(gone["code"], 16, "{gone}");

    // The caller's own credentials: none, or garbage, is 401.
    let anonymous = gw
        .iam(
            "POST",
            AUTHORIZE,
            None,
            Some(json!({"checks": [check(GET_PAYLOAD, &folder, &cloud, &service)]}).to_string()),
        )
        .await;
    assert_eq!(
        (anonymous.status, anonymous.grpc_code()),
        (401, 16),
        "{}",
        anonymous.text
    );
    let empty = authorize(&gw, &service, vec![]).await;
    assert_eq!(
        (empty.status, empty.grpc_code()),
        (400, 3),
        "{}",
        empty.text
    );

    let metrics = gw.metrics().await;
    for result in ["allowed", "denied", "unauthenticated", "invalid"] {
        assert!(
            metrics.contains(&format!(
                "wif_gateway_iam_authorize_checks_total{{result=\"{result}\"}}"
            )),
            "{result}"
        );
    }
    let path = gw.dir.path().join("audit.log");
    crate::operate::wait_for("the denial audited", async || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .contains("\"event\":\"authorize_denied\"")
    })
    .await;
    let audit = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        !audit.contains(&alice_token),
        "the audit log never holds a token"
    );
    gw.stop().await;
}

#[tokio::test]
async fn role_changes_apply_on_reload() {
    let gw = Gateway::start_with(LOCKBOX_ROLES, options()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let me = gw
        .state
        .store()
        .expect("store")
        .get_service_account(admin.service_account_id())
        .await
        .unwrap();
    let (folder, cloud) = (me.folder_id.clone(), me.cloud_id.clone());
    let alice = add_account(&gw, &admin, "alice").await;
    let alice_token = token(&gw, &alice);
    // The administrator (an owner of the cloud) holds iam.accessService.authorize through admin.
    let granted = grant(
        &gw,
        &admin_token,
        &format!("/resource-manager/v1/folders/{folder}"),
        "ADD",
        "lockbox.editor",
        &alice,
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    let allowed = one(
        &gw,
        &admin_token,
        check(GET_PAYLOAD, &folder, &cloud, &alice_token),
    )
    .await;
    assert_eq!(allowed["allowed"], true, "{allowed}");

    // The editor role no longer includes payloadViewer: the next checks are denied.
    gw.write_config(
        &LOCKBOX_ROLES.replace("includes = [\"lockbox.payloadViewer\"]", "includes = []"),
        &options(),
    );
    let mut answer = Value::Null;
    for _ in 0..100 {
        answer = one(
            &gw,
            &admin_token,
            check(GET_PAYLOAD, &folder, &cloud, &alice_token),
        )
        .await;
        if answer["code"] == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer["code"], 7, "{answer}");
    let update = one(
        &gw,
        &admin_token,
        check("lockbox.secrets.update", &folder, &cloud, &alice_token),
    )
    .await;
    assert_eq!(update["allowed"], true, "{update}");
    gw.stop().await;
}

#[tokio::test]
async fn roles_are_listed_built_in_and_configured_to_any_authenticated_caller() {
    let gw = Gateway::start_with(LOCKBOX_ROLES, options()).await;
    let admin = KeyFile::bootstrap(&gw);
    let nobody = add_account(&gw, &admin, "nobody").await;
    let caller = token(&gw, &nobody);

    let anonymous = gw.iam("GET", "/iam/v1/roles", None, None).await;
    assert_eq!(
        (anonymous.status, anonymous.grpc_code()),
        (401, 16),
        "{}",
        anonymous.text
    );

    // Pages of 7 walk every role once, in id order; a caller without any role may list them.
    let mut ids: Vec<String> = Vec::new();
    let mut next = String::new();
    loop {
        let page = gw
            .iam(
                "GET",
                &format!("/iam/v1/roles?pageSize=7&pageToken={next}"),
                Some(&caller),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let roles = page.body["roles"].as_array().expect("roles");
        assert!(roles.len() <= 7, "{}", page.text);
        ids.extend(roles.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page.body["nextPageToken"].as_str() {
            Some(token) => next = token.to_owned(),
            None => break,
        }
    }
    let mut expected: Vec<String> = wif_gateway::iam::roles::Role::ALL
        .iter()
        .map(|r| r.id().to_owned())
        .chain(["lockbox.payloadViewer".into(), "lockbox.editor".into()])
        .collect();
    expected.sort();
    assert_eq!(ids, expected);

    let role = gw
        .iam(
            "GET",
            "/iam/v1/roles/lockbox.payloadViewer",
            Some(&caller),
            None,
        )
        .await;
    assert_eq!(role.status, 200, "{}", role.text);
    assert_eq!(role.body["id"], "lockbox.payloadViewer");
    let viewer = gw
        .iam("GET", "/iam/v1/roles/viewer", Some(&caller), None)
        .await;
    assert_eq!(viewer.body["id"], "viewer", "{}", viewer.text);
    assert!(
        viewer.body["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        viewer.text
    );

    let long = "a".repeat(65);
    for (path, status, code) in [
        ("/iam/v1/roles/lockbox.noSuchRole".to_owned(), 404, 5),
        (format!("/iam/v1/roles/{long}"), 400, 3),
        ("/iam/v1/roles?pageSize=1001".to_owned(), 400, 3),
        ("/iam/v1/roles?pageToken=forged".to_owned(), 400, 3),
        ("/iam/v1/roles?filter=id%3D%22viewer%22".to_owned(), 400, 3),
    ] {
        let refused = gw.iam("GET", &path, Some(&caller), None).await;
        assert_eq!(
            (refused.status, refused.grpc_code()),
            (status, code),
            "{path}: {}",
            refused.text
        );
    }
    gw.stop().await;
}

/// A token Authorize accepted once is remembered as verified, and that changes no rule: the
/// subject's token revoked, then the resource service's own, each is refused on the next
/// request; a token that differs in one byte of its signature is refused for its signature.
#[tokio::test]
async fn a_remembered_token_is_still_refused_once_revoked() {
    let gw = Gateway::start_with(LOCKBOX_ROLES, options()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let store = gw.state.store().expect("store");
    let me = store
        .get_service_account(admin.service_account_id())
        .await
        .unwrap();
    let (folder, cloud) = (me.folder_id.clone(), me.cloud_id.clone());
    let lockbox = add_account(&gw, &admin, "lockbox").await;
    let alice = add_account(&gw, &admin, "alice").await;
    for (path, role, to) in [
        (
            format!("/resource-manager/v1/clouds/{cloud}"),
            "iam.accessService.authorizer",
            &lockbox,
        ),
        (
            format!("/resource-manager/v1/folders/{folder}"),
            "lockbox.payloadViewer",
            &alice,
        ),
    ] {
        let granted = grant(&gw, &admin_token, &path, "ADD", role, to).await;
        assert_eq!(granted.status, 200, "{}", granted.text);
    }
    let service = token(&gw, &lockbox);
    let alice_token = token(&gw, &alice);
    let keys = gw.state.own_keys(&gw.state.snapshot().minter);
    let remembered = keys.remembered();
    for _ in 0..3 {
        let allowed = one(
            &gw,
            &service,
            check(GET_PAYLOAD, &folder, &cloud, &alice_token),
        )
        .await;
        assert_eq!(allowed, json!({"subject": sa(&alice), "allowed": true}));
    }
    assert_eq!(
        keys.remembered(),
        remembered + 2,
        "the service's and alice's tokens are remembered, once each"
    );

    // One character of the signature changed: not the remembered token.
    let (signed, signature) = alice_token.rsplit_once('.').unwrap();
    let mut chars: Vec<char> = signature.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{signed}.{}", chars.into_iter().collect::<String>());
    let refused = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &tampered),
    )
    .await;
    assert_eq!(refused["code"], 16, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{refused}"
    );

    // Alice's token revoked: the next check of it is refused, though its signature is
    // remembered.
    revoke(&gw, &admin_token, &alice_token).await;
    let refused = one(
        &gw,
        &service,
        check(GET_PAYLOAD, &folder, &cloud, &alice_token),
    )
    .await;
    assert_eq!(refused["code"], 16, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("was revoked"),
        "{refused}"
    );
    assert!(!refused.to_string().contains(&alice_token));
    let fresh = token(&gw, &alice);
    let allowed = one(&gw, &service, check(GET_PAYLOAD, &folder, &cloud, &fresh)).await;
    assert_eq!(allowed, json!({"subject": sa(&alice), "allowed": true}));

    // The resource service's own token revoked: the whole request is refused.
    revoke(&gw, &admin_token, &service).await;
    let refused = authorize(
        &gw,
        &service,
        vec![check(GET_PAYLOAD, &folder, &cloud, &fresh)],
    )
    .await;
    assert_eq!(
        (refused.status, refused.grpc_code()),
        (401, 16),
        "{}",
        refused.text
    );
    assert!(
        refused.message().contains("was revoked"),
        "{}",
        refused.text
    );
    gw.stop().await;
}

/// Revokes `token` with the administrator's `admin_token`.
async fn revoke(gw: &Gateway, admin_token: &str, token: &str) {
    let revoked = gw
        .iam(
            "POST",
            "/iam/v1/tokens:revoke",
            Some(admin_token),
            Some(json!({ "iamToken": token }).to_string()),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
}
