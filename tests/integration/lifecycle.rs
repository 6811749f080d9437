//! The life of a service account beyond create and delete: suspension (no token by any route,
//! its tokens refused everywhere, until reactivated or the suspension's end), impersonation
//! (`IamTokenService.CreateForServiceAccount`: who may, the `act` chain, its bound, the token's
//! lifetime), deletion taking everything the account holds, and when accounts and keys were last
//! used — over REST and over gRPC.

use std::time::Duration;

use serde_json::{Value, json};
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::iam_token_service_client::IamTokenServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::service_account_service_client::ServiceAccountServiceClient;
use wif_gateway::grpc::proto::yandex::cloud::iam::v1::{
    CreateIamTokenForServiceAccountRequest, GetServiceAccountRequest,
    ReactivateServiceAccountMetadata, ReactivateServiceAccountRequest,
    ReactivateServiceAccountResponse, SuspendServiceAccountMetadata, SuspendServiceAccountRequest,
    SuspendServiceAccountResponse, service_account,
};
use wif_gateway::iam::ResourceKind;
use wif_gateway::iam::store::{NewFederatedCredential, NewFederation, ResourceRef};
use wif_gateway::testkit::{KeyKind, TestKey, decode_payload};

use crate::grpc::{authed, channel, parts};
use crate::support::gateway::{Gateway, Reply};
use crate::support::iam::{KeyFile, add_account, grant, jwt, signer, sqlite_store};
use crate::support::*;

const SUBJECT: &str = "project_path:team/app:ref_type:branch:ref:main";
const AUDIENCE: &str = "https://gateway.example/lifecycle";

/// A gateway with a SQLite store whose federations may fetch keys from a loopback issuer.
async fn gateway() -> Gateway {
    let mut options = sqlite_store();
    options.iam = format!("{}\nallow_http_to_loopback = true", options.iam);
    Gateway::start_with("", options).await
}

async fn folder_of(gw: &Gateway, account: &str) -> String {
    gw.state
        .store()
        .unwrap()
        .get_service_account(account)
        .await
        .unwrap()
        .folder_id
}

fn on_account(id: &str) -> ResourceRef {
    ResourceRef::new(ResourceKind::ServiceAccount, id)
}

/// A new authorized key of `account`, made through the API, and the key id.
async fn key_of(gw: &Gateway, admin_token: &str, account: &str) -> (TestKey, String) {
    let created = gw
        .iam(
            "POST",
            "/iam/v1/keys",
            Some(admin_token),
            Some(json!({"serviceAccountId": account}).to_string()),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.body["key"]["id"].as_str().unwrap().to_owned();
    (
        signer(created.body["privateKey"].as_str().unwrap(), &id),
        id,
    )
}

async fn token_of(gw: &Gateway, key: &TestKey, account: &str) -> Reply {
    gw.iam_token_for(&jwt(gw, key, account)).await
}

fn token(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["iamToken"].as_str().unwrap().to_owned()
}

async fn impersonate(gw: &Gateway, caller_token: &str, account: &str) -> Reply {
    gw.iam(
        "POST",
        "/iam/v1/tokens:createForServiceAccount",
        Some(caller_token),
        Some(json!({"serviceAccountId": account}).to_string()),
    )
    .await
}

async fn suspend(gw: &Gateway, token: &str, account: &str, body: Value) -> Reply {
    gw.iam(
        "POST",
        &format!("/iam/v1/serviceAccounts/{account}:suspend"),
        Some(token),
        Some(body.to_string()),
    )
    .await
}

async fn reactivate(gw: &Gateway, token: &str, account: &str) -> Reply {
    gw.iam(
        "POST",
        &format!("/iam/v1/serviceAccounts/{account}:reactivate"),
        Some(token),
        None,
    )
    .await
}

fn refused(reply: &Reply, status: u16, code: i64, needle: &str) {
    assert_eq!(
        (reply.status, reply.grpc_code()),
        (status, code),
        "{needle}: {}",
        reply.text
    );
    assert!(reply.message().contains(needle), "{needle}: {}", reply.text);
}

/// A store federation trusting `issuer`, and a credential binding [`SUBJECT`] to `account`.
async fn federate(gw: &Gateway, issuer: &TestIssuer, folder: &str, account: &str) {
    let store = gw.state.store().unwrap();
    let federation = store
        .create_federation(
            &NewFederation {
                folder_id: folder.into(),
                name: "ci".into(),
                enabled: true,
                audiences: vec![AUDIENCE.into()],
                issuer: issuer.issuer(),
                jwks_url: issuer.jwks_url(),
                ..NewFederation::default()
            },
            now(),
        )
        .await
        .unwrap()
        .item;
    let written = store
        .create_federated_credential(
            &NewFederatedCredential {
                service_account_id: account.into(),
                federation_id: federation.id,
                external_subject_id: SUBJECT.into(),
            },
            now(),
        )
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;
}

/// Whether `token` may read folder `folder` by Authorize, asked by `caller`: the check's
/// `code` (0 when allowed).
async fn authorize(gw: &Gateway, caller: &str, token: &str, folder: &str) -> i64 {
    let reply = gw
        .iam(
            "POST",
            "/iam/v1/authorize",
            Some(caller),
            Some(
                json!({"checks": [{
                    "permission": "resource-manager.folders.get",
                    "resourcePath": [{"id": folder, "type": "resource-manager.folder"}],
                    "iamToken": token,
                }]})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let result = &reply.body["results"][0];
    if result["allowed"] == true {
        0
    } else {
        result["code"].as_i64().unwrap_or(-1)
    }
}

#[tokio::test]
async fn a_suspended_account_gets_no_token_by_any_route_and_its_tokens_stop_until_reactivated() {
    let (issuer, issuer_key) = TestIssuer::with_key(KeyKind::Es256, "ci").await;
    let gw = gateway().await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let folder = folder_of(&gw, admin.service_account_id()).await;
    let worker = add_account(&gw, &admin, "worker").await;
    let impersonator = add_account(&gw, &admin, "impersonator").await;
    let operator = add_account(&gw, &admin, "operator").await;
    let folder_ref = ResourceRef::new(ResourceKind::Folder, folder.as_str());
    grant(&gw, "viewer", folder_ref.clone(), &worker).await;
    grant(
        &gw,
        "iam.accessService.authorizer",
        folder_ref,
        admin.service_account_id(),
    )
    .await;
    grant(
        &gw,
        "iam.serviceAccounts.tokenCreator",
        on_account(&worker),
        &impersonator,
    )
    .await;
    grant(
        &gw,
        "iam.serviceAccounts.user",
        on_account(&worker),
        &operator,
    )
    .await;
    federate(&gw, &issuer, &folder, &worker).await;
    let (worker_key, _) = key_of(&gw, &admin_token, &worker).await;
    let (impersonator_key, _) = key_of(&gw, &admin_token, &impersonator).await;
    let (operator_key, _) = key_of(&gw, &admin_token, &operator).await;
    let impersonator_token = token(&token_of(&gw, &impersonator_key, &impersonator).await);
    let operator_token = token(&token_of(&gw, &operator_key, &operator).await);
    let subject_token = issuer.token(&issuer_key, SUBJECT, AUDIENCE);

    // Active: every route gives a token, and the worker's token works.
    assert_eq!(gw.exchange(&worker, &subject_token).await.status, 200);
    let worker_token = token(&token_of(&gw, &worker_key, &worker).await);
    let impersonated = token(&impersonate(&gw, &impersonator_token, &worker).await);
    let own = format!("/iam/v1/serviceAccounts/{worker}");
    assert_eq!(
        gw.iam("GET", &own, Some(&worker_token), None).await.status,
        200
    );
    assert_eq!(
        authorize(&gw, &admin_token, &worker_token, &folder).await,
        0
    );

    // The role just below the one that may suspend is refused, and so are bad requests.
    refused(
        &suspend(&gw, &operator_token, &worker, json!({"reason": "audit"})).await,
        403,
        7,
        "iam.serviceAccounts.update",
    );
    refused(
        &suspend(&gw, &admin_token, &worker, json!({"reason": " "})).await,
        400,
        3,
        "reason: required",
    );
    refused(
        &suspend(
            &gw,
            &admin_token,
            &worker,
            json!({"reason": "x".repeat(257)}),
        )
        .await,
        400,
        3,
        "at most 256",
    );
    refused(
        &suspend(
            &gw,
            &admin_token,
            &worker,
            json!({"reason": "audit", "expiresAt": "2001-01-01T00:00:00Z"}),
        )
        .await,
        400,
        3,
        "is not in the future",
    );
    refused(
        &suspend(
            &gw,
            &admin_token,
            &worker,
            json!({"reason": "audit", "expiresAt": "soon"}),
        )
        .await,
        400,
        3,
        "RFC 3339",
    );
    refused(
        &suspend(
            &gw,
            &admin_token,
            admin.service_account_id(),
            json!({"reason": "oops"}),
        )
        .await,
        400,
        9,
        "cannot suspend itself",
    );
    refused(
        &suspend(
            &gw,
            &admin_token,
            "ajenosuchaccount0000",
            json!({"reason": "x"}),
        )
        .await,
        404,
        5,
        "not found",
    );
    refused(
        &reactivate(&gw, &admin_token, &worker).await,
        400,
        9,
        "is not suspended",
    );

    let suspended = suspend(&gw, &admin_token, &worker, json!({"reason": "key leaked"})).await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    assert_eq!(suspended.body["done"], true);
    assert_eq!(
        suspended.body["metadata"],
        json!({"@type": "type.googleapis.com/yandex.cloud.iam.v1.SuspendServiceAccountMetadata",
               "serviceAccountId": worker})
    );
    assert_eq!(
        suspended.body["response"]["@type"],
        "type.googleapis.com/yandex.cloud.iam.v1.SuspendServiceAccountResponse"
    );
    let read = gw.iam("GET", &own, Some(&admin_token), None).await;
    assert_eq!(read.body["status"], "SUSPENDED", "{}", read.text);
    refused(
        &suspend(&gw, &admin_token, &worker, json!({"reason": "again"})).await,
        400,
        9,
        "already suspended",
    );

    // No token by any route.
    let exchanged = gw.exchange(&worker, &subject_token).await;
    assert_eq!(exchanged.status, 400, "{}", exchanged.text);
    assert_eq!(exchanged.body["error"], "invalid_grant");
    assert_eq!(exchanged.body["error_code"], "service_account_suspended");
    let by_key = token_of(&gw, &worker_key, &worker).await;
    refused(&by_key, 401, 16, "suspended");
    refused(
        &impersonate(&gw, &impersonator_token, &worker).await,
        400,
        9,
        "is suspended",
    );
    // Its tokens, however obtained, are refused by the management API and by Authorize.
    for live in [&worker_token, &impersonated] {
        refused(
            &gw.iam("GET", &own, Some(live), None).await,
            401,
            16,
            "is suspended",
        );
        assert_eq!(authorize(&gw, &admin_token, live, &folder).await, 16);
    }

    refused(
        &reactivate(&gw, &operator_token, &worker).await,
        403,
        7,
        "iam.serviceAccounts.update",
    );
    let reactivated = reactivate(&gw, &admin_token, &worker).await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.text);
    assert_eq!(
        reactivated.body["response"]["@type"],
        "type.googleapis.com/yandex.cloud.iam.v1.ReactivateServiceAccountResponse"
    );
    assert_eq!(gw.exchange(&worker, &subject_token).await.status, 200);
    assert_eq!(token_of(&gw, &worker_key, &worker).await.status, 200);
    assert_eq!(
        impersonate(&gw, &impersonator_token, &worker).await.status,
        200
    );
    assert_eq!(
        gw.iam("GET", &own, Some(&worker_token), None).await.status,
        200
    );
    assert_eq!(
        authorize(&gw, &admin_token, &worker_token, &folder).await,
        0
    );
}

#[tokio::test]
async fn a_suspension_with_an_end_lifts_by_itself() {
    let gw = gateway().await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let worker = add_account(&gw, &admin, "worker").await;
    let (worker_key, _) = key_of(&gw, &admin_token, &worker).await;
    let until = wif_gateway::time::rfc3339(now() + 2);
    let suspended = suspend(
        &gw,
        &admin_token,
        &worker,
        json!({"reason": "cooling off", "expiresAt": until}),
    )
    .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    refused(
        &token_of(&gw, &worker_key, &worker).await,
        401,
        16,
        "suspended",
    );
    // The upkeep (every 5 s) reactivates the account once the end has passed.
    let path = format!("/iam/v1/serviceAccounts/{worker}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let read = gw.iam("GET", &path, Some(&admin_token), None).await;
        if read.body["status"] == "ACTIVE" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {}", read.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(token_of(&gw, &worker_key, &worker).await.status, 200);
}

#[tokio::test]
async fn impersonation_needs_the_token_creator_role_names_the_caller_and_is_bounded() {
    let gw = gateway().await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    // A chain of accounts, each a token creator on the next one.
    let mut chain = Vec::new();
    for name in ["hop-0", "hop-1", "hop-2", "hop-3", "hop-4"] {
        chain.push(add_account(&gw, &admin, name).await);
    }
    for pair in chain.windows(2) {
        grant(
            &gw,
            "iam.serviceAccounts.tokenCreator",
            on_account(&pair[1]),
            &pair[0],
        )
        .await;
    }
    let user = add_account(&gw, &admin, "user").await;
    grant(
        &gw,
        "iam.serviceAccounts.user",
        on_account(&chain[1]),
        &user,
    )
    .await;
    let (first_key, _) = key_of(&gw, &admin_token, &chain[0]).await;
    let (user_key, _) = key_of(&gw, &admin_token, &user).await;
    let first = token(&token_of(&gw, &first_key, &chain[0]).await);
    let user_token = token(&token_of(&gw, &user_key, &user).await);

    // The role just below the token creator's, and none at all, are refused.
    refused(
        &impersonate(&gw, &user_token, &chain[1]).await,
        403,
        7,
        "iam.serviceAccounts.createIamToken",
    );
    refused(
        &impersonate(&gw, &first, &chain[2]).await,
        403,
        7,
        "iam.serviceAccounts.createIamToken",
    );
    refused(
        &impersonate(&gw, &first, "ajenosuchaccount0000").await,
        404,
        5,
        "not found",
    );
    refused(&impersonate(&gw, &first, "").await, 400, 3, "required");
    let missing_body = gw
        .iam(
            "POST",
            "/iam/v1/tokens:createForServiceAccount",
            Some(&first),
            Some("{}".into()),
        )
        .await;
    refused(&missing_body, 400, 3, "serviceAccountId");
    let anonymous = gw
        .iam(
            "POST",
            "/iam/v1/tokens:createForServiceAccount",
            None,
            Some(json!({"serviceAccountId": chain[1]}).to_string()),
        )
        .await;
    refused(&anonymous, 401, 16, "no Authorization header");

    // Each hop's token speaks for the next account, names the whole chain, and never outlives
    // the caller's token.
    let first_claims = decode_payload(&first);
    let mut caller = first.clone();
    let mut expected_act: Option<Value> = None;
    for hop in 1..=3 {
        let issued = impersonate(&gw, &caller, &chain[hop]).await;
        assert_eq!(issued.status, 200, "hop {hop}: {}", issued.text);
        assert!(
            !issued.text.contains(&caller),
            "the caller's token is not echoed"
        );
        let next = token(&issued);
        let claims = decode_payload(&next);
        let mut act = json!({"iss": gw.url, "sub": chain[hop - 1]});
        if let Some(inner) = expected_act.take() {
            act["act"] = inner;
        }
        assert_eq!(claims["sub"], chain[hop].as_str());
        assert_eq!(claims["client_id"], chain[hop - 1].as_str());
        assert_eq!(claims["act"], act, "hop {hop}");
        assert!(claims["exp"].as_i64() <= first_claims["exp"].as_i64());
        // The token works as the account it speaks for.
        let own = gw
            .iam(
                "GET",
                &format!("/iam/v1/serviceAccounts/{}", chain[hop]),
                Some(&next),
                None,
            )
            .await;
        assert_eq!(
            own.status, 403,
            "hop {hop} holds no role on itself: {}",
            own.text
        );
        assert!(
            own.message().contains(&chain[hop])
                || own.message().contains("iam.serviceAccounts.get")
        );
        expected_act = Some(act);
        caller = next;
    }
    // A fourth impersonation in one chain is refused.
    refused(
        &impersonate(&gw, &caller, &chain[4]).await,
        403,
        7,
        "a chain holds at most 3",
    );
    // The chain starts afresh from the account's own credentials.
    let (fourth_key, _) = key_of(&gw, &admin_token, &chain[3]).await;
    let fresh = token(&token_of(&gw, &fourth_key, &chain[3]).await);
    assert_eq!(impersonate(&gw, &fresh, &chain[4]).await.status, 200);

    // Introspection shows the chain to a resource service.
    let introspected = gw
        .client
        .post(format!("{}/oauth/introspect", gw.url))
        .header("Authorization", format!("Bearer {admin_token}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={caller}"))
        .send()
        .await
        .unwrap();
    let introspected = Reply::from(introspected).await;
    assert_eq!(introspected.status, 200, "{}", introspected.text);
    assert_eq!(introspected.body["active"], true);
    assert_eq!(introspected.body["act"]["sub"], chain[2].as_str());
    assert_eq!(
        introspected.body["act"]["act"]["act"]["sub"],
        chain[0].as_str()
    );
}

#[tokio::test]
async fn suspension_and_impersonation_over_grpc() {
    let gw = gateway().await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let worker = add_account(&gw, &admin, "worker").await;
    let caller = add_account(&gw, &admin, "caller").await;
    grant(
        &gw,
        "iam.serviceAccounts.tokenCreator",
        on_account(&worker),
        &caller,
    )
    .await;
    let (caller_key, _) = key_of(&gw, &admin_token, &caller).await;
    let caller_token = token(&token_of(&gw, &caller_key, &caller).await);
    let channel = channel(&gw).await;
    let mut accounts = ServiceAccountServiceClient::new(channel.clone());
    let mut tokens = IamTokenServiceClient::new(channel.clone());

    let issued = tokens
        .create_for_service_account(authed(
            &caller_token,
            CreateIamTokenForServiceAccountRequest {
                service_account_id: worker.clone(),
            },
        ))
        .await
        .expect("CreateForServiceAccount")
        .into_inner();
    assert_eq!(decode_payload(&issued.iam_token)["sub"], worker.as_str());
    assert_eq!(
        decode_payload(&issued.iam_token)["act"]["sub"],
        caller.as_str()
    );
    assert!(issued.expires_at.is_some_and(|t| t.seconds > now()));
    // The token creator may not suspend: the role just below.
    let denied = accounts
        .suspend(authed(
            &caller_token,
            SuspendServiceAccountRequest {
                service_account_id: worker.clone(),
                reason: "audit".into(),
                expires_at: None,
            },
        ))
        .await
        .expect_err("a token creator may not suspend");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let missing_reason = accounts
        .suspend(authed(
            &admin_token,
            SuspendServiceAccountRequest {
                service_account_id: worker.clone(),
                reason: String::new(),
                expires_at: None,
            },
        ))
        .await
        .expect_err("no reason");
    assert_eq!(missing_reason.code(), tonic::Code::InvalidArgument);

    let op = accounts
        .suspend(authed(
            &admin_token,
            SuspendServiceAccountRequest {
                service_account_id: worker.clone(),
                reason: "incident".into(),
                expires_at: None,
            },
        ))
        .await
        .expect("Suspend")
        .into_inner();
    let (meta, _): (SuspendServiceAccountMetadata, SuspendServiceAccountResponse) = parts(
        &op,
        "type.googleapis.com/yandex.cloud.iam.v1.SuspendServiceAccountMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.SuspendServiceAccountResponse",
    );
    assert_eq!(meta.service_account_id, worker);
    let read = accounts
        .get(authed(
            &admin_token,
            GetServiceAccountRequest {
                service_account_id: worker.clone(),
            },
        ))
        .await
        .expect("Get")
        .into_inner();
    assert_eq!(read.status, i32::from(service_account::Status::Suspended));
    let refused = tokens
        .create_for_service_account(authed(
            &caller_token,
            CreateIamTokenForServiceAccountRequest {
                service_account_id: worker.clone(),
            },
        ))
        .await
        .expect_err("a suspended account gets no token");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let stale = accounts
        .get(authed(
            &issued.iam_token,
            GetServiceAccountRequest {
                service_account_id: worker.clone(),
            },
        ))
        .await
        .expect_err("the suspended account's token");
    assert_eq!(stale.code(), tonic::Code::Unauthenticated, "{stale:?}");

    let op = accounts
        .reactivate(authed(
            &admin_token,
            ReactivateServiceAccountRequest {
                service_account_id: worker.clone(),
            },
        ))
        .await
        .expect("Reactivate")
        .into_inner();
    let (meta, _): (
        ReactivateServiceAccountMetadata,
        ReactivateServiceAccountResponse,
    ) = parts(
        &op,
        "type.googleapis.com/yandex.cloud.iam.v1.ReactivateServiceAccountMetadata",
        "type.googleapis.com/yandex.cloud.iam.v1.ReactivateServiceAccountResponse",
    );
    assert_eq!(meta.service_account_id, worker);
    assert!(
        tokens
            .create_for_service_account(authed(
                &caller_token,
                CreateIamTokenForServiceAccountRequest {
                    service_account_id: worker.clone(),
                },
            ))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn accounts_and_keys_show_when_they_were_last_used() {
    let gw = gateway().await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let folder = folder_of(&gw, admin.service_account_id()).await;
    let folder_ref = ResourceRef::new(ResourceKind::Folder, folder.as_str());
    let worker = add_account(&gw, &admin, "worker").await;
    grant(&gw, "viewer", folder_ref.clone(), &worker).await;
    grant(
        &gw,
        "iam.accessService.authorizer",
        folder_ref,
        admin.service_account_id(),
    )
    .await;
    let (worker_key, key_id) = key_of(&gw, &admin_token, &worker).await;
    let api_key = gw
        .iam(
            "POST",
            "/iam/v1/apiKeys",
            Some(&admin_token),
            Some(json!({"serviceAccountId": worker}).to_string()),
        )
        .await;
    assert_eq!(api_key.status, 200, "{}", api_key.text);
    let access_key = gw
        .iam(
            "POST",
            "/iam/aws-compatibility/v1/accessKeys",
            Some(&admin_token),
            Some(json!({"serviceAccountId": worker}).to_string()),
        )
        .await;
    assert_eq!(access_key.status, 200, "{}", access_key.text);
    let paths = [
        (
            "lastAuthenticatedAt",
            format!("/iam/v1/serviceAccounts/{worker}"),
        ),
        ("lastUsedAt", format!("/iam/v1/keys/{key_id}")),
        (
            "lastUsedAt",
            format!(
                "/iam/v1/apiKeys/{}",
                api_key.body["apiKey"]["id"].as_str().unwrap()
            ),
        ),
        (
            "lastUsedAt",
            format!(
                "/iam/aws-compatibility/v1/accessKeys/{}",
                access_key.body["accessKey"]["id"].as_str().unwrap()
            ),
        ),
    ];
    for (field, path) in &paths {
        let before = gw.iam("GET", path, Some(&admin_token), None).await;
        assert_eq!(before.status, 200, "{}", before.text);
        assert!(before.body.get(*field).is_none(), "{}", before.text);
    }
    let started = now();
    // A token by the authorized key, a check by the API key, a check by an AWS signature.
    token(&token_of(&gw, &worker_key, &worker).await);
    let date = wif_gateway::time::rfc3339(started).replace(['-', ':'], "");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}/ru-central1/s3/aws4_request\n{}",
        &date[..8],
        "a".repeat(64)
    );
    let signature = wif_gateway::iam::sigv4::signature(
        access_key.body["secret"].as_str().unwrap().as_bytes(),
        &date[..8],
        "ru-central1",
        "s3",
        &string_to_sign,
    );
    let path = json!([{"id": folder, "type": "resource-manager.folder"}]);
    let checks = json!({"checks": [
        {"permission": "resource-manager.folders.get", "resourcePath": path,
         "apiKey": api_key.body["secret"]},
        {"permission": "resource-manager.folders.get", "resourcePath": path,
         "signature": {"accessKeyId": access_key.body["accessKey"]["keyId"],
                       "stringToSign": string_to_sign, "signature": signature,
                       "v4Parameters": {"signedAt": wif_gateway::time::rfc3339(started),
                                        "service": "s3", "region": "ru-central1"}}},
    ]});
    let checked = gw
        .iam(
            "POST",
            "/iam/v1/authorize",
            Some(&admin_token),
            Some(checks.to_string()),
        )
        .await;
    assert_eq!(checked.status, 200, "{}", checked.text);
    for result in checked.body["results"].as_array().unwrap() {
        assert_eq!(result["subject"]["id"], worker.as_str(), "{}", checked.text);
    }
    // Written by the upkeep's next round (every 5 s), not by the calls.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for (field, path) in &paths {
        let read = loop {
            let read = gw.iam("GET", path, Some(&admin_token), None).await;
            if read.body.get(*field).is_some() {
                break read;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path}: {}",
                read.text
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let at = wif_gateway::time::parse_rfc3339(read.body[*field].as_str().unwrap()).unwrap();
        assert!((started..=now()).contains(&at), "{path}: {}", read.text);
    }
}

#[tokio::test]
async fn deleting_an_account_takes_its_keys_credentials_and_bindings_and_stops_its_tokens() {
    let (issuer, issuer_key) = TestIssuer::with_key(KeyKind::Es256, "ci").await;
    let gw = gateway().await;
    let admin = KeyFile::bootstrap(&gw);
    let admin_token = gw.iam_token(&admin).await;
    let folder = folder_of(&gw, admin.service_account_id()).await;
    let worker = add_account(&gw, &admin, "worker").await;
    let other = add_account(&gw, &admin, "other").await;
    grant(&gw, "viewer", on_account(&other), &worker).await;
    grant(&gw, "viewer", on_account(&worker), &other).await;
    federate(&gw, &issuer, &folder, &worker).await;
    let (worker_key, key_id) = key_of(&gw, &admin_token, &worker).await;
    let mut other_keys = Vec::new();
    for path in ["/iam/v1/apiKeys", "/iam/aws-compatibility/v1/accessKeys"] {
        let created = gw
            .iam(
                "POST",
                path,
                Some(&admin_token),
                Some(json!({"serviceAccountId": worker}).to_string()),
            )
            .await;
        assert_eq!(created.status, 200, "{path}: {}", created.text);
        let key = created.body.get("apiKey").or(created.body.get("accessKey"));
        other_keys.push(format!("{path}/{}", key.unwrap()["id"].as_str().unwrap()));
    }
    let worker_token = token(&token_of(&gw, &worker_key, &worker).await);
    let subject_token = issuer.token(&issuer_key, SUBJECT, AUDIENCE);
    let exchanged = gw.exchange(&worker, &subject_token).await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    let exchanged = exchanged.access_token().to_owned();
    let store = gw.state.store().unwrap();
    let credentials = store
        .list_federated_credentials(&worker, &Default::default())
        .await
        .unwrap()
        .items;
    assert_eq!(credentials.len(), 1);

    let deleted = gw
        .iam(
            "DELETE",
            &format!("/iam/v1/serviceAccounts/{worker}"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    // Everything it held went in the same transaction: nothing is left to find.
    assert!(store.get_authorized_key(&key_id).await.is_err());
    for path in &other_keys {
        let gone = gw.iam("GET", path, Some(&admin_token), None).await;
        assert_eq!(gone.status, 404, "{path}: {}", gone.text);
    }
    assert!(
        store
            .get_federated_credential(&credentials[0].id)
            .await
            .is_err()
    );
    let bindings_on_other = gw
        .iam(
            "GET",
            &format!("/iam/v1/serviceAccounts/{other}:listAccessBindings"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(bindings_on_other.status, 200, "{}", bindings_on_other.text);
    assert!(
        !bindings_on_other.text.contains(&worker),
        "a binding to the deleted account is left: {}",
        bindings_on_other.text
    );
    // Its tokens, by either route, stop at once.
    for live in [&worker_token, &exchanged] {
        refused(
            &gw.iam(
                "GET",
                &format!("/iam/v1/serviceAccounts/{other}"),
                Some(live),
                None,
            )
            .await,
            401,
            16,
            "is not a service account of the IAM store",
        );
    }
    assert_eq!(gw.exchange(&worker, &subject_token).await.status, 400);
}
