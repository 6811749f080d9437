//! Retried mutations with an idempotency key (`Idempotency-Key`), through the real server and
//! its SQLite store: a retry is answered with the first call's operation and creates nothing;
//! a key reused for another request, an invalid key, a retried key pair and a refused first
//! call are each answered as `docs/api.md#idempotent-retries` says.

use serde_json::{Value, json};

use crate::support::gateway::{Gateway, Reply};
use crate::support::iam::{KeyFile, sqlite_store};

/// `POST path` with `body` and, if given, an idempotency key.
async fn post(gw: &Gateway, token: &str, path: &str, key: Option<&str>, body: &Value) -> Reply {
    let mut request = gw
        .client
        .post(format!("{}{path}", gw.url))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    Reply::from(request.send().await.expect("gateway answers")).await
}

/// `wif_gateway_iam_idempotent_replays_total` as the gateway exports it (0 before any).
async fn replays(gw: &Gateway) -> u64 {
    gw.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("wif_gateway_iam_idempotent_replays_total "))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

async fn accounts_named(gw: &Gateway, token: &str, folder: &str, name: &str) -> usize {
    let list = gw
        .iam(
            "GET",
            &format!("/iam/v1/serviceAccounts?folderId={folder}&pageSize=1000"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.body["serviceAccounts"]
        .as_array()
        .map_or(0, |all| all.iter().filter(|a| a["name"] == name).count())
}

#[tokio::test]
async fn a_retried_create_is_answered_with_the_first_operation_and_creates_once() {
    let gw = Gateway::start_with("", sqlite_store()).await;
    let admin = KeyFile::bootstrap(&gw);
    let token = gw.iam_token(&admin).await;
    let me = gw
        .iam(
            "GET",
            &format!("/iam/v1/serviceAccounts/{}", admin.service_account_id()),
            Some(&token),
            None,
        )
        .await;
    let folder = me.body["folderId"].as_str().unwrap().to_owned();
    let create = json!({"folderId": folder, "name": "deployer"});
    const SA: &str = "/iam/v1/serviceAccounts";

    // The process's metrics are shared by every test running in it: counted as a difference.
    let replays_before = replays(&gw).await;
    let first = post(&gw, &token, SA, Some("retry-1"), &create).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = post(&gw, &token, SA, Some("retry-1"), &create).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["id"], first.body["id"], "the same operation");
    assert_eq!(
        again.body["response"]["id"], first.body["response"]["id"],
        "the same service account"
    );
    assert_eq!(
        again
            .headers
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap()),
        Some("replayed")
    );
    assert!(first.headers.get("idempotency-key").is_none());
    assert_eq!(accounts_named(&gw, &token, &folder, "deployer").await, 1);
    assert!(replays(&gw).await > replays_before, "the replay is counted");

    // The same key for another request is refused; without a key, the same request runs
    // (and here conflicts with the account the first call created).
    let other = json!({"folderId": folder, "name": "deployer-2"});
    let reused = post(&gw, &token, SA, Some("retry-1"), &other).await;
    assert_eq!(
        (reused.status, reused.grpc_code()),
        (400, 3),
        "{}",
        reused.text
    );
    assert!(reused.text.contains("idempotency key"), "{}", reused.text);
    let unkeyed = post(&gw, &token, SA, None, &create).await;
    assert_eq!(unkeyed.grpc_code(), 6, "{}", unkeyed.text);

    // A refused first call frees its key: once the conflict is gone, the retry runs.
    let refused = post(&gw, &token, SA, Some("retry-2"), &create).await;
    assert_eq!(refused.grpc_code(), 6, "{}", refused.text);
    let id = first.body["response"]["id"].as_str().unwrap();
    let deleted = gw
        .iam("DELETE", &format!("{SA}/{id}"), Some(&token), None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let retried = post(&gw, &token, SA, Some("retry-2"), &create).await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_ne!(retried.body["response"]["id"], first.body["response"]["id"]);
    let account = retried.body["response"]["id"].as_str().unwrap().to_owned();

    // A key pair is answered once: its private key is not kept, so a retry is told so, and
    // no second key is made.
    let key = json!({"serviceAccountId": account});
    let created = post(&gw, &token, "/iam/v1/keys", Some("key-1"), &key).await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert!(created.body["privateKey"].is_string());
    let repeat = post(&gw, &token, "/iam/v1/keys", Some("key-1"), &key).await;
    assert_eq!(
        (repeat.status, repeat.grpc_code()),
        (409, 6),
        "{}",
        repeat.text
    );
    assert!(!repeat.text.contains("PRIVATE KEY"), "{}", repeat.text);
    let keys = gw
        .iam(
            "GET",
            &format!("/iam/v1/keys?serviceAccountId={account}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        keys.body["keys"].as_array().map(Vec::len),
        Some(1),
        "{}",
        keys.text
    );

    // Invalid keys are refused before anything runs.
    for bad in [" ", "two words", &"k".repeat(257)] {
        let refused = post(&gw, &token, SA, Some(bad), &other).await;
        assert_eq!(
            (refused.status, refused.grpc_code()),
            (400, 3),
            "{bad:?}: {}",
            refused.text
        );
    }
    assert_eq!(accounts_named(&gw, &token, &folder, "deployer-2").await, 0);

    // Keys are the caller's own: another caller's same key runs its own call.
    let other_admin = crate::support::iam::add_account(&gw, &admin, "second").await;
    let granted = gw
        .iam(
            "POST",
            &format!("/resource-manager/v1/folders/{folder}:updateAccessBindings"),
            Some(&token),
            Some(
                json!({"accessBindingDeltas": [{"action": "ADD", "accessBinding": {
                    "roleId": "editor", "subject": {"id": other_admin, "type": "serviceAccount"}}}]})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    let second = gw
        .state
        .snapshot()
        .minter
        .mint_for_key(&other_admin, "test", wif_gateway::time::now_unix())
        .unwrap()
        .access_token;
    let theirs = post(&gw, &second, SA, Some("retry-1"), &other).await;
    assert_eq!(theirs.status, 200, "{}", theirs.text);
    assert_ne!(theirs.body["id"], first.body["id"]);
    gw.stop().await;
}
