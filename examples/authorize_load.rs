//! HTTP load of the Authorize API on loopback, and the cost of one check in-process: starts
//! the gateway in-process with a SQLite store in a temporary directory and the Lockbox roles,
//! grants `iam.accessService.authorizer` on the cloud to a resource service and
//! `lockbox.payloadViewer` on the bootstrap folder to `SUBJECTS` (default 1 000) service
//! accounts, then measures:
//!
//! 1. In-process, on the measured gateway's state: the index's decision alone
//!    (`AuthzIndex::check_path`) and the whole check the Authorize API makes of an `iamToken`
//!    (`authn::account_of`: the token, its signature remembered from an earlier check, every
//!    claim rule, the account; suspension; `check_path`), for subjects holding the role and
//!    for one holding nothing; then the same whole check of tokens never seen (the signature
//!    verified). Percentiles of single checks, each timed on its own.
//! 2. Over HTTP, single-check `POST /iam/v1/authorize` requests from `CONNECTIONS` (default
//!    32) concurrent clients for `SECONDS` (default 10): the resource service's one token in
//!    `Authorization` and the subjects' tokens in turn (`SUBJECTS` distinct tokens, each
//!    reused), then every request with a subject token never seen before (`DISTINCT`, default
//!    200 000, minted ahead; the run ends early if they run out). Checks per second, latency
//!    percentiles and the gateway's CPU time per check (its runtime's threads, from
//!    `/proc/self/task/*/stat`). The requests are sent by `wrk` (one thread) when it is
//!    installed, else by the example's own reqwest clients (which cost more CPU per request
//!    than the gateway does, so on one core of their own they are the bottleneck).
//!
//!   BINDINGS=1000000 CREDENTIALS=1000000 GATEWAY_CPU=0 CLIENT_CPU=1 \
//!     taskset -c 0,1 cargo run --release --example authorize_load
//!
//! `BINDINGS` (default 10) is the number of access bindings in the store: beyond those the
//! load needs, the rest are written in bulk with plain SQL (lockbox and primitive roles for
//! made-up service accounts, spread over up to 10 000 folders of the bootstrap cloud), and a
//! second gateway started on the same store loads them all; the load is sent to that one.
//! `CREDENTIALS` (default 0) federated credentials of one federation are written beside them
//! the same way.
//!
//! The measured gateway runs on its own runtime of `GATEWAY_THREADS` workers (default 1: the
//! figure is checks per second on one core); the clients run on the example's own runtime of
//! `CLIENT_THREADS` workers (default 1). `GATEWAY_CPU` and `CLIENT_CPU` (CPU numbers) pin the
//! two runtimes' threads apart with `taskset`, so that they never share a core.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Writes `count` federated credentials of `account` in `federation`, 1 000 rows per
/// statement, in one transaction.
async fn seed_credentials(url: &str, account: &str, federation: &str, count: usize) {
    use sqlx::Executor as _;
    use wif_gateway::iam::{ResourceKind, ids};
    if count == 0 {
        return;
    }
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let now = wif_gateway::time::now_unix();
    let mut tx = pool.begin().await.unwrap();
    for start in (0..count).step_by(1000) {
        let values: Vec<String> = (start..(start + 1000).min(count))
            .map(|i| {
                let id = ids::generate(ResourceKind::FederatedCredential).unwrap();
                format!("('{id}', '{account}', '{federation}', 'system:serviceaccount:load:sa-{i}', {now}, 1)")
            })
            .collect();
        tx.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO federated_credentials (id, service_account_id, federation_id, \
             external_subject_id, created_at, version) VALUES {}",
            values.join(", ")
        )))
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
}

/// Writes `count` service accounts in `folder_id` and a `lockbox.payloadViewer` binding on the
/// folder for each, in one transaction; their ids.
async fn seed_subjects(url: &str, folder_id: &str, cloud_id: &str, count: usize) -> Vec<String> {
    use sqlx::Executor as _;
    use wif_gateway::iam::{ResourceKind, ids};
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let now = wif_gateway::time::now_unix();
    let ids: Vec<String> = (0..count)
        .map(|_| ids::generate(ResourceKind::ServiceAccount).unwrap())
        .collect();
    let mut tx = pool.begin().await.unwrap();
    for (round, chunk) in ids.chunks(500).enumerate() {
        let accounts: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                format!(
                    "('{id}', '{folder_id}', '{cloud_id}', 'subject-{round}-{i}', '', '{{}}', \
                     'ACTIVE', {now}, 1)"
                )
            })
            .collect();
        tx.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO service_accounts (id, folder_id, cloud_id, name, description, labels, \
             status, created_at, version) VALUES {}",
            accounts.join(", ")
        )))
        .await
        .unwrap();
        let bindings: Vec<String> = chunk
            .iter()
            .map(|subject| {
                let id = ids::generate(ResourceKind::AccessBinding).unwrap();
                format!(
                    "('{id}', 'folder', '{folder_id}', '{folder_id}', 'lockbox.payloadViewer', \
                     'serviceAccount', '{subject}', {now}, 1)"
                )
            })
            .collect();
        tx.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO access_bindings (id, resource_type, resource_id, folder_id, role_id, \
             subject_type, subject_id, created_at, version) VALUES {}",
            bindings.join(", ")
        )))
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
    ids
}

/// The calling thread's id (`/proc/thread-self` is `<pid>/task/<tid>`).
fn thread_id() -> Option<String> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// Pins the calling thread to `cpu` (the variable's value), if it is set.
fn pin(variable: &str) {
    let (Ok(cpu), Some(tid)) = (std::env::var(variable), thread_id()) else {
        return;
    };
    let pinned = std::process::Command::new("taskset")
        .args(["-pc", &cpu, &tid])
        .stdout(std::process::Stdio::null())
        .status();
    assert!(
        pinned.is_ok_and(|s| s.success()),
        "taskset -pc {cpu} {tid} failed"
    );
}

/// CPU time (user and system) of the threads `tids`, in seconds.
fn cpu_seconds(tids: &[String]) -> f64 {
    let ticks: u64 = tids
        .iter()
        .filter_map(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok())
        .map(|stat| {
            // Fields after the command's closing parenthesis: state is the 3rd field, utime the
            // 14th and stime the 15th.
            let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
        })
        .sum();
    ticks as f64 / 100.0
}

fn main() {
    let clients = env("CLIENT_THREADS", 1) as usize;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(clients)
        .on_thread_start(|| pin("CLIENT_CPU"))
        .enable_all()
        .build()
        .unwrap()
        .block_on(load());
}

/// Percentiles of `samples` (sorted here) as one line.
fn percentiles(samples: &mut [Duration]) -> String {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    format!(
        "p50 {:?}, p99 {:?}, p999 {:?}, max {:?} ({} checks)",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        samples[samples.len() - 1],
        samples.len()
    )
}

/// What the measured gateway hands the example: its URL, how long it took to load, its state
/// and the ids of its runtime's threads.
type Started = (
    String,
    Duration,
    wif_gateway::AppState,
    Arc<std::sync::Mutex<Vec<String>>>,
);

async fn load() {
    let connections = env("CONNECTIONS", 32);
    let seconds = env("SECONDS", 10);
    let bindings = env("BINDINGS", 10) as usize;
    let credentials = env("CREDENTIALS", 0) as usize;
    let subjects = env("SUBJECTS", 1000).max(1) as usize;
    let distinct = env("DISTINCT", 200_000) as usize;
    let iterations = env("ITERATIONS", 200_000) as usize;
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
    for name in ["lockbox", "nobody"] {
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
    let (lockbox, nobody) = (accounts[0].clone(), accounts[1].clone());
    let client = reqwest::Client::new();
    let admin_token = mint(&admin_id);
    let reply = client
        .post(format!(
            "{url}/resource-manager/v1/clouds/{}:updateAccessBindings",
            admin.cloud_id
        ))
        .bearer_auth(&admin_token)
        .json(
            &json!({"accessBindingDeltas": [{"action": "ADD", "accessBinding": {
            "roleId": "iam.accessService.authorizer",
            "subject": {"id": lockbox, "type": "serviceAccount"}}}]}),
        )
        .send()
        .await
        .unwrap();
    assert!(
        reply.status().is_success(),
        "{}",
        reply.text().await.unwrap()
    );
    // The measured gateway: a second one on the same store, started once every binding is
    // written, on a runtime of its own.
    let db = format!("sqlite://{}", dir.path().join("iam.db").display());
    let started = Instant::now();
    let subject_ids = seed_subjects(&db, &admin.folder_id, &admin.cloud_id, subjects).await;
    seed(&db, &admin.cloud_id, bindings).await;
    if credentials > 0 {
        let federation = store
            .create_federation(
                &wif_gateway::iam::store::NewFederation {
                    folder_id: admin.folder_id.clone(),
                    name: "load".into(),
                    enabled: true,
                    audiences: vec!["load".into()],
                    issuer: "https://issuer.load.example".into(),
                    jwks_url: "https://issuer.load.example/jwks".into(),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap()
            .item;
        seed_credentials(&db, &nobody, &federation.id, credentials).await;
    }
    let seeded = started.elapsed();
    let (sender, receiver) = std::sync::mpsc::channel::<Started>();
    let config = wif_gateway::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let tids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let gateway_tids = tids.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(gateway_threads)
            .on_thread_start(move || {
                pin("GATEWAY_CPU");
                if let Some(tid) = thread_id() {
                    gateway_tids.lock().unwrap().push(tid);
                }
            })
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let started = Instant::now();
                let state = wif_gateway::AppState::start(config).await.unwrap();
                let loaded = started.elapsed();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}", listener.local_addr().unwrap());
                sender.send((url, loaded, state.clone(), tids)).unwrap();
                wif_gateway::run(listener, state, std::future::pending()).await
            })
    });
    let (url, loaded, measured, tids) = receiver.recv().unwrap();
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM access_bindings")
        .fetch_one(&pool)
        .await
        .unwrap();
    let credential_count: i64 = sqlx::query_scalar("SELECT count(*) FROM federated_credentials")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    println!(
        "access bindings in the store: {count}, federated credentials: {credential_count} \
         (bulk seeding {:.1} s, not a figure); \
         gateway on {gateway_threads} worker thread(s) loaded them in {:.2} s",
        seeded.as_secs_f64(),
        loaded.as_secs_f64()
    );

    let service = mint(&lockbox);
    let subject_tokens: Vec<String> = subject_ids.iter().map(|id| mint(id)).collect();
    in_process(
        &measured,
        &admin,
        &lockbox,
        &subject_tokens,
        &mint(&nobody),
        &mint,
        iterations,
    );

    let body = |token: &str| {
        json!({"checks": [{
            "permission": "lockbox.secrets.getPayload",
            "resourcePath": [
                {"id": "e6qsecret", "type": "lockbox.secret"},
                {"id": admin.folder_id, "type": "resource-manager.folder"},
                {"id": admin.cloud_id, "type": "resource-manager.cloud"},
            ],
            "iamToken": token,
        }]})
        .to_string()
    };
    let first: serde_json::Value = client
        .post(format!("{url}/iam/v1/authorize"))
        .bearer_auth(&service)
        .body(body(&subject_tokens[0]))
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["results"][0]["allowed"], true, "{first}");

    let pooled: Vec<String> = subject_tokens.iter().map(|t| body(t)).collect();
    let load = Load {
        client: &client,
        url: &url,
        service: &service,
        connections,
        seconds,
        tids: &tids,
    };
    let label = format!("the service's token and {subjects} subjects' tokens, each reused");
    let wrk = std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok();
    if wrk {
        load.wrk(&label, &pooled, true, dir.path());
    } else {
        load.run(&label, pooled, true).await;
    }
    if distinct > 0 {
        let started = Instant::now();
        let fresh: Vec<String> = (0..distinct)
            .map(|i| body(&mint(&subject_ids[i % subject_ids.len()])))
            .collect();
        println!(
            "({distinct} subject tokens minted in {:.1} s, not a figure)",
            started.elapsed().as_secs_f64()
        );
        let label = "the service's token and a subject token never seen before in every request";
        if wrk {
            load.wrk(label, &fresh, false, dir.path());
        } else {
            load.run(label, fresh, false).await;
        }
    }
}

/// The in-process figures, on the measured gateway's state.
fn in_process(
    state: &wif_gateway::AppState,
    admin: &wif_gateway::iam::store::ServiceAccount,
    caller: &str,
    subject_tokens: &[String],
    nobody_token: &str,
    mint: &dyn Fn(&str) -> String,
    iterations: usize,
) {
    use wif_gateway::iam::authn::{self, OwnTokens};
    use wif_gateway::iam::authz::{PathElement, Principal};
    let live = state.live().unwrap();
    let snapshot = state.snapshot();
    let keys = state.own_keys(&snapshot.minter);
    let own = OwnTokens {
        resources: &snapshot.policy.resources,
        ..snapshot.management_tokens(&keys, live)
    };
    let path = [
        PathElement {
            resource_type: "lockbox.secret",
            id: "e6qsecret",
        },
        PathElement {
            resource_type: "resource-manager.folder",
            id: &admin.folder_id,
        },
        PathElement {
            resource_type: "resource-manager.cloud",
            id: &admin.cloud_id,
        },
    ];
    let caller = Principal::service_account(caller);
    const PERMISSION: &str = "lockbox.secrets.getPayload";
    // What the Authorize API does for one check with an `iamToken`.
    let whole = |token: &str| -> bool {
        let now = wif_gateway::time::now_unix();
        let Ok(subject) = authn::account_of(token, &own, live, now) else {
            return false;
        };
        let index = state.authorizer().index();
        !index.is_suspended(&subject)
            && index
                .check_path(
                    &caller,
                    &Principal::service_account(&subject),
                    PERMISSION,
                    &path,
                )
                .is_ok()
    };
    let now = wif_gateway::time::now_unix();
    let subjects: Vec<String> = subject_tokens
        .iter()
        .map(|t| authn::account_of(t, &own, live, now).unwrap())
        .collect();
    let nobody = authn::account_of(nobody_token, &own, live, now).unwrap();
    // Every token seen once: their signatures are remembered from here on.
    assert!(subject_tokens.iter().all(|t| whole(t)));
    assert!(!whole(nobody_token));
    let bindings = state.authorizer().index().binding_count();
    let decision = |allowed: bool| {
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let subject = if allowed {
                &subjects[i % subjects.len()]
            } else {
                &nobody
            };
            let started = Instant::now();
            let index = state.authorizer().index();
            let outcome = index.check_path(
                &caller,
                &Principal::service_account(subject),
                PERMISSION,
                &path,
            );
            drop(index);
            samples.push(started.elapsed());
            assert_eq!(outcome.is_ok(), allowed);
        }
        percentiles(&mut samples)
    };
    println!(
        "in-process, {bindings} access bindings in the index: the index's decision, a subject with a binding: {}",
        decision(true)
    );
    println!(
        "in-process, {bindings} access bindings in the index: the index's decision, a subject with none: {}",
        decision(false)
    );
    let check = |allowed: bool| {
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let token = if allowed {
                &subject_tokens[i % subject_tokens.len()]
            } else {
                nobody_token
            };
            let started = Instant::now();
            let outcome = whole(token);
            samples.push(started.elapsed());
            assert_eq!(outcome, allowed);
        }
        percentiles(&mut samples)
    };
    println!(
        "in-process, {bindings} access bindings in the index: the whole check of a remembered iamToken, a subject with a binding: {}",
        check(true)
    );
    println!(
        "in-process, {bindings} access bindings in the index: the whole check of a remembered iamToken, a subject with none: {}",
        check(false)
    );
    let fresh: Vec<String> = (0..2000)
        .map(|i| mint(&subjects[i % subjects.len()]))
        .collect();
    let mut samples = Vec::with_capacity(fresh.len());
    for token in &fresh {
        let started = Instant::now();
        let outcome = whole(token);
        samples.push(started.elapsed());
        assert!(outcome);
    }
    println!(
        "in-process, {bindings} access bindings in the index: the whole check of an iamToken never seen (its signature verified), a subject with a binding: {}",
        percentiles(&mut samples)
    );
}

/// One HTTP load: the clients, the target and the gateway's threads.
struct Load<'a> {
    client: &'a reqwest::Client,
    url: &'a str,
    service: &'a str,
    connections: u64,
    seconds: u64,
    tids: &'a std::sync::Mutex<Vec<String>>,
}

/// The wrk script of [`Load::wrk`]: sends the bodies of a file (one a line) in turn, with the
/// resource service's token; counts the times it ran out of bodies and started again.
const WRK_SCRIPT: &str = r#"
local bodies = {}
local n = 0
local i = 0
wrapped = 0
function init(args)
   for line in io.lines(args[1]) do
      if #line > 0 then
         n = n + 1
         bodies[n] = line
      end
   end
   wrk.method = "POST"
   wrk.path = "/iam/v1/authorize"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. args[2]
end
function request()
   i = i + 1
   if i > n then
      i = 1
      wrapped = wrapped + 1
   end
   return wrk.format(nil, nil, nil, bodies[i])
end
function done(summary, latency, requests)
   io.write(string.format("WRK_WRAPPED %d\n", wrapped))
end
"#;

impl Load<'_> {
    /// Sends `bodies` in turn with wrk (one thread, pinned to `CLIENT_CPU` if set) for the
    /// load's seconds; prints wrk's figures and the gateway's CPU per check. With `reuse`
    /// false, a run that used a body twice says so.
    fn wrk(&self, label: &str, bodies: &[String], reuse: bool, dir: &std::path::Path) {
        let file = dir.join("bodies.txt");
        std::fs::write(&file, bodies.join("\n")).unwrap();
        let script = dir.join("authorize.lua");
        std::fs::write(&script, WRK_SCRIPT).unwrap();
        let mut command = match std::env::var("CLIENT_CPU") {
            Ok(cpu) => {
                let mut c = std::process::Command::new("taskset");
                c.args(["-c", &cpu, "wrk"]);
                c
            }
            Err(_) => std::process::Command::new("wrk"),
        };
        command.args([
            "-t1",
            &format!("-c{}", self.connections),
            &format!("-d{}s", self.seconds),
            "--latency",
            "-s",
            &script.display().to_string(),
            self.url,
            "--",
            &file.display().to_string(),
            self.service,
        ]);
        let tids = self.tids.lock().unwrap().clone();
        let cpu_before = cpu_seconds(&tids);
        let output = command.output().expect("wrk runs");
        let cpu = cpu_seconds(&tids) - cpu_before;
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "wrk: {text} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let requests: f64 = text
            .lines()
            .find_map(|l| l.trim().split_once(" requests in "))
            .map(|(n, _)| n.trim().parse().unwrap())
            .unwrap();
        let per_second = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
            .unwrap()
            .trim();
        let latency = |p: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(p))
                .map_or("?", str::trim)
                .to_owned()
        };
        let wrapped: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("WRK_WRAPPED "))
            .map_or(0, |n| n.trim().parse().unwrap());
        let errors = text
            .lines()
            .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
            .collect::<Vec<_>>()
            .join("; ");
        println!(
            "authorize over HTTP (wrk), {label}: {} connections, {} s: {per_second} checks/s; gateway CPU {:.1} µs per check ({:.0}% of a core); p50 {}, p99 {}{}{}",
            self.connections,
            self.seconds,
            cpu * 1e6 / requests,
            cpu * 100.0 / self.seconds as f64,
            latency("50%"),
            latency("99%"),
            if errors.is_empty() {
                String::new()
            } else {
                format!("; {errors}")
            },
            if !reuse && wrapped > 0 {
                format!("; RAN OUT of distinct tokens ({wrapped} times): raise DISTINCT")
            } else {
                String::new()
            }
        );
    }

    /// Sends `bodies` in turn (again and again when `reuse`, else each once) for the load's
    /// seconds; prints the figures.
    async fn run(&self, label: &str, bodies: Vec<String>, reuse: bool) {
        let bodies = Arc::new(bodies);
        let next = Arc::new(AtomicUsize::new(0));
        let tids = self.tids.lock().unwrap().clone();
        let cpu_before = cpu_seconds(&tids);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.seconds);
        let mut tasks = Vec::new();
        for _ in 0..self.connections {
            let (client, url, service) = (
                self.client.clone(),
                self.url.to_owned(),
                self.service.to_owned(),
            );
            let (bodies, next) = (bodies.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if !reuse && i >= bodies.len() {
                        break;
                    }
                    let body = bodies[i % bodies.len()].clone();
                    let started = Instant::now();
                    let reply = client
                        .post(format!("{url}/iam/v1/authorize"))
                        .bearer_auth(&service)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(reply.status().is_success());
                    let answer = reply.bytes().await.unwrap();
                    assert!(
                        answer.windows(14).any(|w| w == b"\"allowed\":true"),
                        "{}",
                        String::from_utf8_lossy(&answer)
                    );
                    latencies.push(started.elapsed());
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(&tids) - cpu_before;
        let checks = all.len() as f64;
        println!(
            "authorize over HTTP, {label}: {} connections, {elapsed:.1} s: {:.0} checks/s; gateway CPU {:.1} µs per check ({:.0}% of a core); {}",
            self.connections,
            checks / elapsed,
            cpu * 1e6 / checks,
            cpu * 100.0 / elapsed,
            percentiles(&mut all)
        );
    }
}
