//! HTTP load of the Authorize API on loopback: starts the gateway in-process with a SQLite
//! store in a temporary directory and the Lockbox roles, grants `lockbox.payloadViewer` on the
//! bootstrap folder to a service account and `iam.accessService.authorizer` on the cloud to a
//! resource service, then sends single-check `POST /iam/v1/authorize` requests from
//! `CONNECTIONS` (default 32) concurrent clients for `SECONDS` (default 10) and prints checks
//! per second and latency percentiles.
//!
//!   BINDINGS=1000000 cargo run --release --example authorize_load
//!
//! `BINDINGS` (default 10) is the number of access bindings in the store: beyond the two the
//! load needs, the rest are written in bulk with plain SQL (lockbox and primitive roles for
//! made-up service accounts, spread over up to 10 000 folders of the bootstrap cloud), and a
//! second gateway started on the same store loads them all; the load is sent to that one.
//!
//! The measured gateway runs on its own runtime of `GATEWAY_THREADS` workers (default 1: the
//! figure is checks per second on one core); the clients run on the example's own runtime of
//! `CLIENT_THREADS` workers (default 1), so on a two-core machine they do not share a core.

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

/// Writes access bindings up to `total` in the store at `url` (SQLite), in one transaction:
/// 1 000 rows per statement, on folders created for them in `cloud_id`.
async fn seed(url: &str, cloud_id: &str, total: usize) {
    use sqlx::Executor as _;
    use wif_gateway::iam::{ResourceKind, ids};
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM access_bindings")
        .fetch_one(&pool)
        .await
        .unwrap();
    let wanted = total.saturating_sub(existing as usize);
    if wanted == 0 {
        return;
    }
    let now = wif_gateway::time::now_unix();
    let folders: Vec<String> = (0..wanted.div_ceil(100).min(10_000))
        .map(|_| ids::generate(ResourceKind::Folder).unwrap())
        .collect();
    // Row i goes to folder i % F in round i / F; within a folder a round's role and subject
    // pair is unique as long as there are more subjects than rounds per role.
    let rounds = wanted.div_ceil(folders.len());
    let subjects: Vec<String> = (0..(wanted / 5).min(200_000).max(rounds / 4 + 1))
        .map(|_| ids::generate(ResourceKind::ServiceAccount).unwrap())
        .collect();
    let roles = [
        "lockbox.payloadViewer",
        "viewer",
        "editor",
        "iam.serviceAccounts.user",
    ];
    let mut tx = pool.begin().await.unwrap();
    for chunk in folders.chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| format!("('{id}', '{cloud_id}', 'load-{id}-{i}', '', '{{}}', {now}, 1)"))
            .collect();
        tx.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO folders (id, cloud_id, name, description, labels, created_at, version) \
             VALUES {}",
            values.join(", ")
        )))
        .await
        .unwrap();
    }
    let rows: Vec<usize> = (0..wanted).collect();
    for chunk in rows.chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|&i| {
                let id = ids::generate(ResourceKind::AccessBinding).unwrap();
                let folder = &folders[i % folders.len()];
                // Distinct (folder, role, subject) for every row.
                let round = i / folders.len();
                let role = roles[round % roles.len()];
                let subject = &subjects[(round / roles.len() + i % folders.len()) % subjects.len()];
                format!(
                    "('{id}', 'folder', '{folder}', '{folder}', '{role}', 'serviceAccount', \
                     '{subject}', {now}, 1)"
                )
            })
            .collect();
        tx.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO access_bindings (id, resource_type, resource_id, folder_id, role_id, \
             subject_type, subject_id, created_at, version) VALUES {}",
            values.join(", ")
        )))
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
}

fn main() {
    let clients = env("CLIENT_THREADS", 1) as usize;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(clients)
        .enable_all()
        .build()
        .unwrap()
        .block_on(load());
}

async fn load() {
    let connections = env("CONNECTIONS", 32);
    let seconds = env("SECONDS", 10);
    let bindings = env("BINDINGS", 10) as usize;
    let gateway_threads = env("GATEWAY_THREADS", 1) as usize;
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
    // The measured gateway: a second one on the same store, started once every binding is
    // written, on a runtime of its own.
    let db = format!("sqlite://{}", dir.path().join("iam.db").display());
    let started = Instant::now();
    seed(&db, &admin.cloud_id, bindings).await;
    let seeded = started.elapsed();
    let (sender, receiver) = std::sync::mpsc::channel();
    let config = wif_gateway::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(gateway_threads)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let started = Instant::now();
                let state = wif_gateway::AppState::start(config).await.unwrap();
                let loaded = started.elapsed();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}", listener.local_addr().unwrap());
                sender.send((url, loaded)).unwrap();
                wif_gateway::run(listener, state, std::future::pending()).await
            })
    });
    let (url, loaded) = receiver.recv().unwrap();
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM access_bindings")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    println!(
        "access bindings in the store: {count} (bulk seeding {:.1} s, not a figure); \
         gateway on {gateway_threads} worker thread(s) loaded them in {:.2} s",
        seeded.as_secs_f64(),
        loaded.as_secs_f64()
    );

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
