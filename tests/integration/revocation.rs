//! Revocation and introspection of the gateway's own tokens, through the real server on SQLite:
//! `POST /iam/v1/tokens:revoke` (the owner, an administrator of the account, a caller without
//! rights; idempotence; expired and foreign tokens; the audit line and the list's size metric)
//! and `POST /oauth/introspect` (active, exchanged, revoked, expired, garbage, suspended, and a
//! caller that may not read the account). The two-replica case on PostgreSQL is in
//! `replicas.rs`; the table itself in `store.rs`.

use serde_json::{Value, json};
use wif_gateway::signing::MintRequest;
use wif_gateway::testkit::decode_payload;

use crate::operate::{audit_lines, wait_for};
use crate::support::gateway::{Options, Reply};
use crate::support::iam::{KeyFile, add_account, signer, sqlite_store};
use crate::support::*;

const REVOKE: &str = "/iam/v1/tokens:revoke";

fn with_audit() -> Options {
    Options {
        audit: "output = \"audit.log\"".into(),
        ..sqlite_store()
    }
}

async fn revoke(gw: &Gateway, bearer: &str, token: &str) -> Reply {
    gw.iam(
        "POST",
        REVOKE,
        Some(bearer),
        Some(json!({ "iamToken": token }).to_string()),
    )
    .await
}

/// A management call any authenticated account may make: its own keys' list is authorized on
/// itself, so only authentication decides between 401 and the rest.
async fn call_with(gw: &Gateway, token: &str) -> Reply {
    gw.iam("GET", "/resource-manager/v1/clouds", Some(token), None)
        .await
}

/// A service account with a key made through the API, and an IAM token of it.
async fn account_with_token(
    gw: &Gateway,
    admin: &KeyFile,
    admin_token: &str,
    name: &str,
) -> (String, String) {
    let id = add_account(gw, admin, name).await;
    let created = gw
        .iam(
            "POST",
            "/iam/v1/keys",
            Some(admin_token),
            Some(json!({"serviceAccountId": id}).to_string()),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let key = signer(
        created.body["privateKey"].as_str().unwrap(),
        created.body["key"]["id"].as_str().unwrap(),
    );
    let issued = gw
        .iam_token_for(&crate::support::iam::jwt(gw, &key, &id))
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    (id, issued.body["iamToken"].as_str().unwrap().to_owned())
}

async fn introspect(gw: &Gateway, bearer: Option<&str>, form: &str) -> Reply {
    let mut request = gw
        .client
        .post(format!("{}/oauth/introspect", gw.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some(token) = bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    Reply::from(request.send().await.expect("gateway answers")).await
}

fn token_form(token: &str) -> String {
    format!("token={token}&token_type_hint=access_token")
}

fn revoked_gauge(metrics: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("wif_gateway_iam_revoked_tokens "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn an_account_revokes_its_own_token_and_the_next_call_is_refused() {
    let gw = Gateway::start_with("", with_audit()).await;
    let admin = KeyFile::bootstrap(&gw);
    let account = admin.service_account_id().to_owned();
    let keeper = gw.iam_token(&admin).await;
    let doomed = gw.iam_token(&admin).await;
    assert_eq!(call_with(&gw, &doomed).await.status, 200);

    let revoked = revoke(&gw, &keeper, &doomed).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body, json!({ "subjectId": account }));
    assert_eq!(revoked.headers["cache-control"], "no-store");
    // Refused at once on this replica, with a message that says why.
    let refused = call_with(&gw, &doomed).await;
    assert_eq!(
        (refused.status, refused.grpc_code()),
        (401, 16),
        "{}",
        refused.text
    );
    let jti = decode_payload(&doomed)["jti"].as_str().unwrap().to_owned();
    assert!(
        refused.message().contains("was revoked") && refused.message().contains(&jti),
        "{}",
        refused.message()
    );
    assert!(!refused.text.contains(&doomed));
    // Idempotent: again, with the same answer; the other token still works.
    let again = revoke(&gw, &keeper, &doomed).await;
    assert_eq!(
        (again.status, &again.body),
        (200, &json!({ "subjectId": account }))
    );
    assert_eq!(call_with(&gw, &keeper).await.status, 200);
    // A token revokes itself; the call that did it is the last it makes.
    let own = revoke(&gw, &keeper, &keeper).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(call_with(&gw, &keeper).await.status, 401);
    assert_eq!(revoke(&gw, &keeper, &doomed).await.status, 401);

    let store = gw.state.store().unwrap();
    let entry = store
        .get_revoked_token(&jti)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        (entry.subject_id.as_str(), entry.revoked_by.as_str()),
        (account.as_str(), account.as_str())
    );
    assert_eq!(
        entry.expires_at,
        decode_payload(&doomed)["exp"].as_i64().unwrap()
    );
    let logged = store
        .changes_since(wif_gateway::iam::store::Seq(0), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.kind == wif_gateway::iam::ResourceKind::RevokedToken)
        .count();
    assert_eq!(logged, 2, "one change per revocation, none for the repeat");
    // The gauge is process-wide and every gateway of this test process sets it from its own
    // list once a second; this gateway's value shows at the latest on its next tick.
    wait_for("the revoked-tokens gauge at 2", async || {
        revoked_gauge(&gw.metrics().await) == Some(2.0)
    })
    .await;

    let path = gw.dir.path().join("audit.log");
    wait_for("the revocations audited", async || {
        audit_lines(&path)
            .iter()
            .filter(|l| l["method"] == "yandex.cloud.iam.v1.IamTokenService/Revoke")
            .count()
            >= 4
    })
    .await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(&doomed) && !text.contains(&keeper),
        "no token in the audit log"
    );
    let lines: Vec<Value> = audit_lines(&path)
        .into_iter()
        .filter(|l| l["method"] == "yandex.cloud.iam.v1.IamTokenService/Revoke")
        .collect();
    let first = &lines[0];
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["principal"], account.as_str());
    assert_eq!(first["resource"], format!("service_account:{account}"));
    assert_eq!(first["token_jti"], jti.as_str());
    assert_eq!(lines.last().unwrap()["code"], "UNAUTHENTICATED");
    gw.stop().await;
}

#[tokio::test]
async fn an_administrator_revokes_another_accounts_token_and_a_stranger_cannot() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let (worker, worker_token) = account_with_token(&gw, &admin, &admin_token, "worker").await;
    let (_, stranger_token) = account_with_token(&gw, &admin, &admin_token, "stranger").await;

    let denied = revoke(&gw, &stranger_token, &worker_token).await;
    assert_eq!(
        (denied.status, denied.grpc_code()),
        (403, 7),
        "{}",
        denied.text
    );
    assert!(
        denied
            .message()
            .contains("iam.serviceAccounts.createIamToken"),
        "{}",
        denied.message()
    );
    assert_eq!(
        call_with(&gw, &worker_token).await.status,
        200,
        "a refused revocation changes nothing"
    );

    let done = revoke(&gw, &admin_token, &worker_token).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body, json!({ "subjectId": worker }));
    assert_eq!(call_with(&gw, &worker_token).await.status, 401);

    // What is not a live token of this gateway.
    let now = now();
    let snapshot = gw.state.snapshot();
    let expired = snapshot
        .minter
        .mint_for_key(&worker, "ajekey", now - 7200)
        .unwrap()
        .access_token;
    let answered = revoke(&gw, &admin_token, &expired).await;
    assert_eq!(
        answered.status, 200,
        "an expired token needs no revocation: {}",
        answered.text
    );
    let jti = decode_payload(&expired)["jti"].as_str().unwrap().to_owned();
    assert!(
        gw.state
            .store()
            .unwrap()
            .get_revoked_token(&jti)
            .await
            .unwrap()
            .is_none()
    );
    for (name, token) in [
        ("garbage", "not-a-token".to_owned()),
        (
            "foreign",
            wif_gateway::testkit::Jwt::new(
                &json!({"alg": "ES256", "kid": "elsewhere"}),
                &json!({"sub": worker, "exp": now + 60}),
            )
            .sign(&wif_gateway::testkit::TestKey::generate(
                wif_gateway::testkit::KeyKind::Es256,
                "elsewhere",
            )),
        ),
        ("empty", String::new()),
    ] {
        let refused = revoke(&gw, &admin_token, &token).await;
        assert_eq!(
            (refused.status, refused.grpc_code()),
            (400, 3),
            "{name}: {}",
            refused.text
        );
    }
    let long = revoke(&gw, &admin_token, &"a".repeat(4097)).await;
    assert_eq!(long.status, 400);
    let unauthenticated = gw
        .iam(
            "POST",
            REVOKE,
            None,
            Some(json!({"iamToken": worker_token}).to_string()),
        )
        .await;
    assert_eq!(unauthenticated.status, 401);
    gw.stop().await;
}

#[tokio::test]
async fn introspection_answers_active_only_for_live_tokens_the_caller_may_read() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let (worker, worker_token) = account_with_token(&gw, &admin, &admin_token, "worker").await;
    let (_, stranger_token) = account_with_token(&gw, &admin, &admin_token, "stranger").await;

    let active = introspect(&gw, Some(&admin_token), &token_form(&worker_token)).await;
    assert_eq!(active.status, 200, "{}", active.text);
    assert_eq!(active.headers["cache-control"], "no-store");
    let claims = decode_payload(&worker_token);
    assert_eq!(
        active.body,
        json!({
            "active": true, "sub": worker, "client_id": claims["client_id"], "exp": claims["exp"],
            "iat": claims["iat"], "iss": gw.url.as_str(), "aud": claims["aud"],
            "jti": claims["jti"], "token_type": "Bearer"
        })
    );
    assert!(!active.text.contains(&worker_token), "never echoed");

    // A token of the exchange: client_id is the federation.
    let exchanged = gw
        .state
        .snapshot()
        .minter
        .mint(
            &MintRequest {
                service_account_id: &worker,
                federation_id: "ajefederation",
                external_issuer: "https://ci.example",
                external_subject: "repo:demo",
                audience: None,
            },
            now(),
        )
        .unwrap()
        .access_token;
    let seen = introspect(&gw, Some(&admin_token), &token_form(&exchanged)).await;
    assert_eq!(
        (
            seen.body["active"].as_bool(),
            seen.body["client_id"].as_str()
        ),
        (Some(true), Some("ajefederation")),
        "{}",
        seen.text
    );

    let inactive = json!({ "active": false });
    // A caller that cannot read the account learns nothing.
    let hidden = introspect(&gw, Some(&stranger_token), &token_form(&worker_token)).await;
    assert_eq!((hidden.status, &hidden.body), (200, &inactive));
    // The account reads itself only with a role on itself: none here.
    let own = introspect(&gw, Some(&worker_token), &token_form(&worker_token)).await;
    assert_eq!(own.body, inactive);

    let expired = gw
        .state
        .snapshot()
        .minter
        .mint_for_key(&worker, "ajekey", now() - 7200)
        .unwrap()
        .access_token;
    for (name, form) in [
        ("expired", token_form(&expired)),
        ("garbage", token_form("a.b.c")),
        ("not a jwt", "token=hello".to_owned()),
    ] {
        let reply = introspect(&gw, Some(&admin_token), &form).await;
        assert_eq!((reply.status, &reply.body), (200, &inactive), "{name}");
    }
    assert_eq!(revoke(&gw, &admin_token, &exchanged).await.status, 200);
    let revoked = introspect(&gw, Some(&admin_token), &token_form(&exchanged)).await;
    assert_eq!(revoked.body, inactive, "revoked");

    // A suspended account's tokens are refused like a deleted one's.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        gw.dir.path().join("iam.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE service_accounts SET status = 'SUSPENDED' WHERE id = $1")
        .bind(&worker)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let suspended = introspect(&gw, Some(&admin_token), &token_form(&worker_token)).await;
    assert_eq!(suspended.body, inactive, "suspended");
    let refused = call_with(&gw, &worker_token).await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.message().contains("suspended"),
        "{}",
        refused.message()
    );

    // The caller must authenticate; the form must name a token.
    let anonymous = introspect(&gw, None, &token_form(&admin_token)).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
    let missing = introspect(&gw, Some(&admin_token), "token_type_hint=access_token").await;
    assert_eq!((missing.status, missing.grpc_code()), (400, 3));
    let json_body = gw
        .iam(
            "POST",
            "/oauth/introspect",
            Some(&admin_token),
            Some("{}".into()),
        )
        .await;
    assert_eq!(json_body.status, 400);
    gw.stop().await;
}
