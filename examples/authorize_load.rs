//! HTTP load of the Authorize API on loopback: starts the gateway in-process with a SQLite
//! store in a temporary directory and the Lockbox roles, grants `lockbox.payloadViewer` on the
//! bootstrap folder to a service account and `iam.accessService.authorizer` on the cloud to a
//! resource service, then sends single-check `POST /iam/v1/authorize` requests from
//! `CONNECTIONS` (default 32) concurrent clients for `SECONDS` (default 10) and prints checks
//! per second and latency percentiles.
//!
//!   cargo run --release --example authorize_load
//!
//! The gateway and the clients share the process (and the machine's cores): the figure is a
//! lower bound of what a dedicated gateway answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::json;

const ROLES: &str = r#"
[[permissions]]
id = "lockbox.secrets.getPayload"
class = "read"

[[roles]]
id = "lockbox.payloadViewer"
permissions = ["lockbox.secrets.getPayload"]
"#;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let connections = env("CONNECTIONS", 32);
    let seconds = env("SECONDS", 10);
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = format!(
        "[server]\npublic_url = {url:?}\nwatch_config = false\n\n[signing]\nkey_file = \"signing.pem\"\ngenerate_if_missing = true\n\n[audit]\noutput = \"off\"\n\n[store]\nurl = \"sqlite://iam.db\"\n\n[iam]\nbootstrap_key_file = \"admin-key.json\"\n{ROLES}"
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let config = wif_gateway::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let state = wif_gateway::AppState::start(config).await.unwrap();
    tokio::spawn(wif_gateway::run(
        listener,
        state.clone(),
        std::future::pending(),
    ));

    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("admin-key.json")).unwrap())
            .unwrap();
    let admin_id = key["service_account_id"].as_str().unwrap().to_owned();
    let store = state.store().unwrap();
    let admin = store.get_service_account(&admin_id).await.unwrap();
    let now = wif_gateway::time::now_unix();
    let mint = |sub: &str| {
        state
            .snapshot()
            .minter
            .mint_for_key(sub, "load", now)
            .unwrap()
            .access_token
    };
    let mut accounts = Vec::new();
    for name in ["lockbox", "alice"] {
        let written = store
            .create_service_account(
                &wif_gateway::iam::store::NewServiceAccount {
                    folder_id: admin.folder_id.clone(),
                    name: name.into(),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap();
        state.live().unwrap().caught_up_to(written.seq).await;
        accounts.push(written.item.id);
    }
    let client = reqwest::Client::new();
    let admin_token = mint(&admin_id);
    for (path, role, who) in [
        (
            format!("/resource-manager/v1/clouds/{}", admin.cloud_id),
            "iam.accessService.authorizer",
            &accounts[0],
        ),
        (
            format!("/resource-manager/v1/folders/{}", admin.folder_id),
            "lockbox.payloadViewer",
            &accounts[1],
        ),
    ] {
        let reply = client
            .post(format!("{url}{path}:updateAccessBindings"))
            .bearer_auth(&admin_token)
            .json(
                &json!({"accessBindingDeltas": [{"action": "ADD", "accessBinding": {
                "roleId": role, "subject": {"id": who, "type": "serviceAccount"}}}]}),
            )
            .send()
            .await
            .unwrap();
        assert!(
            reply.status().is_success(),
            "{}",
            reply.text().await.unwrap()
        );
    }
    let service = mint(&accounts[0]);
    let body = json!({"checks": [{
        "permission": "lockbox.secrets.getPayload",
        "resourcePath": [
            {"id": "e6qsecret", "type": "lockbox.secret"},
            {"id": admin.folder_id, "type": "resource-manager.folder"},
            {"id": admin.cloud_id, "type": "resource-manager.cloud"},
        ],
        "iamToken": mint(&accounts[1]),
    }]})
    .to_string();
    let first: serde_json::Value = client
        .post(format!("{url}/iam/v1/authorize"))
        .bearer_auth(&service)
        .body(body.clone())
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["results"][0]["allowed"], true, "{first}");

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, service, body) =
            (client.clone(), url.clone(), service.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let reply = client
                    .post(format!("{url}/iam/v1/authorize"))
                    .bearer_auth(&service)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(reply.status().is_success());
                let _ = reply.bytes().await.unwrap();
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "authorize over HTTP: {connections} connections, {seconds} s: {:.0} checks/s; p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        all.len() as f64 / seconds as f64,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        all.last().unwrap()
    );
}
