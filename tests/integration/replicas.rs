//! Gateway processes as operators run them: several replicas of the real binary on one IAM store,
//! and a gateway killed with SIGKILL in the middle of its work.
//!
//! - Two replicas on one PostgreSQL schema: a credential created on one is exchangeable on the
//!   other within the design's second (the measured times are printed), a deletion stops it as
//!   fast, and it works in both directions.
//! - A gateway killed during a burst of creates (SQLite and PostgreSQL): after a restart on the
//!   same data every acknowledged create is there, the change log has no gap and every logged
//!   change matches the record it names, nothing exists that was never asked for, and a
//!   credential made before the kill still exchanges.
//! - A replica that was down while another wrote catches up as it starts: its exchange honours
//!   the writes as soon as `/readyz` answers.
//! - A token revoked, or an API key deleted, on one replica is refused by the other within the
//!   design's second.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wif_gateway::iam::ResourceKind;
use wif_gateway::iam::store::{Change, ChangeOp, PageRequest, Seq, Store, StoreError};
use wif_gateway::testkit::Jwt;

use crate::store::TestDb;
use crate::support::binary::{BIN, KillOnDrop, dev_config_with, dev_token_for, free_port};
use crate::support::gateway::{Reply, form};
use crate::support::iam::KeyFile;
use crate::support::now;

const FEDERATIONS: &str = "/iam/v1/workload/oidc/federations";
const CREDENTIALS: &str = "/iam/v1/workload/federatedCredentials";
/// The `aud` of the caller tokens, and the audience of the federations made here.
const AUDIENCE: &str = "replica-audience";
/// The longest a change may take to reach another replica here (the design's target is 1 s).
const PROPAGATION_LIMIT: Duration = Duration::from_secs(3);
/// How long a gateway may take to start.
const START_PATIENCE: Duration = Duration::from_secs(20);
/// Polling and bursting from one loopback address is the point of these tests: no rate limits.
const NO_LIMITS: &str = "[limits]\nper_client_ip_per_second = 0\nper_subject_per_minute = 0\n";

/// One gateway process: the dev config (dev issuer on) in a directory of its own, on a port of
/// its own, on the store at `store_url` (`None`: the dev config's SQLite file in that
/// directory). It keeps its port and data across restarts, as a restarted replica does.
struct Replica {
    name: &'static str,
    dir: tempfile::TempDir,
    port: u16,
    base: String,
    store_url: Option<String>,
    process: Option<KillOnDrop>,
}

impl Replica {
    async fn start(name: &'static str, store_url: Option<String>) -> Replica {
        let dir = tempfile::tempdir().expect("dir");
        dev_config_with(dir.path(), NO_LIMITS);
        let port = free_port();
        let mut replica = Replica {
            name,
            dir,
            port,
            base: format!("http://127.0.0.1:{port}"),
            store_url,
            process: None,
        };
        replica.restart().await;
        replica
    }

    /// A replica deployed as one service with `peer`: the same public URL (so the same issuer
    /// and token audience) and the same signing key, so each accepts the other's IAM tokens.
    async fn start_beside(
        name: &'static str,
        store_url: Option<String>,
        peer: &Replica,
    ) -> Replica {
        let dir = tempfile::tempdir().expect("dir");
        let config = dev_config_with(dir.path(), NO_LIMITS);
        let text = std::fs::read_to_string(&config).expect("read the config");
        let text = text.replacen(
            "[server]\n",
            &format!("[server]\npublic_url = \"{}\"\n", peer.base),
            1,
        );
        std::fs::write(&config, text).expect("write the config");
        std::fs::create_dir_all(dir.path().join(".wif-dev")).expect("key directory");
        std::fs::copy(
            peer.dir.path().join(".wif-dev/signing-key.pem"),
            dir.path().join(".wif-dev/signing-key.pem"),
        )
        .expect("share the signing key");
        let port = free_port();
        let mut replica = Replica {
            name,
            dir,
            port,
            base: format!("http://127.0.0.1:{port}"),
            store_url,
            process: None,
        };
        replica.restart().await;
        replica
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the process on this replica's port and data, and waits until `/readyz` answers 200.
    async fn restart(&mut self) {
        assert!(self.process.is_none(), "{} is running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the gateway log");
        let mut command = Command::new(BIN);
        command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--config",
            ])
            .arg(self.dir.path().join("config/dev.toml"))
            .env_remove("WIF_STORE_URL")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(url) = &self.store_url {
            command.arg("--store-url").arg(url);
        }
        let mut process = KillOnDrop::spawn(&mut command);
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = process.0.try_wait().expect("wait") {
                panic!("{} exited at start ({status}):\n{}", self.name, self.log());
            }
            if client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break;
            }
            assert!(
                started.elapsed() < START_PATIENCE,
                "{} did not become ready:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.process = Some(process);
    }

    /// SIGKILL: no shutdown of any kind.
    fn kill(&mut self) {
        let mut process = self.process.take().expect("running");
        process.0.kill().expect("SIGKILL");
        process.0.wait().expect("reap");
    }

    /// SIGTERM, and the exit it causes.
    async fn stop(&mut self) {
        let mut process = self.process.take().expect("running");
        let status = process.terminate().await;
        assert!(status.success(), "{} stopped with {status}", self.name);
    }

    /// The bootstrap key file: written by the replica that bootstrapped the store.
    fn admin_key(&self) -> KeyFile {
        KeyFile::read(&self.dir.path().join(".wif-dev/admin-key.json"))
    }

    /// The dev config's SQLite store of this replica.
    fn sqlite_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.path().join(".wif-dev/iam.db").display()
        )
    }

    /// Its dev issuer's issuer URL.
    fn issuer(&self) -> String {
        format!("{}/dev/issuer", self.base)
    }

    /// An IAM token of this replica for the administrator of `key`: authorized keys live in
    /// the store, so any replica accepts the one key file.
    async fn iam_token(&self, client: &reqwest::Client, key: &KeyFile) -> String {
        let t = now();
        let assertion = Jwt::new(
            &json!({"typ": "JWT", "alg": "PS256", "kid": key.id()}),
            &json!({"iss": key.service_account_id(), "aud": format!("{}/iam/v1/tokens", self.base),
                    "iat": t, "exp": t + 360}),
        )
        .sign(&key.signer());
        let issued = self
            .call(
                client,
                "POST",
                "/iam/v1/tokens",
                None,
                Some(json!({"jwt": assertion})),
            )
            .await;
        assert_eq!(issued.status, 200, "{}: {}", self.name, issued.text);
        issued.body["iamToken"].as_str().unwrap().to_owned()
    }

    /// A management call; `None` when the gateway does not answer.
    async fn try_call(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Option<Reply> {
        let mut request = client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        match request.send().await {
            Ok(response) => Some(Reply::from(response).await),
            Err(_) => None,
        }
    }

    async fn call(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.try_call(client, method, path, bearer, body)
            .await
            .unwrap_or_else(|| panic!("{} answers {method} {path}", self.name))
    }

    /// A caller token for `subject` from this replica's dev issuer.
    async fn caller_token(&self, client: &reqwest::Client, subject: &str) -> String {
        dev_token_for(client, &self.base, subject, AUDIENCE).await
    }

    /// The token exchange of `jwt` for `account`.
    async fn exchange(&self, client: &reqwest::Client, account: &str, jwt: &str) -> Reply {
        let reply = client
            .post(format!("{}/oauth/token", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(account, jwt))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} exchanges: {e}", self.name));
        Reply::from(reply).await
    }

    /// The folder of service account `account`.
    async fn folder_of(&self, client: &reqwest::Client, token: &str, account: &str) -> String {
        let got = self
            .call(
                client,
                "GET",
                &format!("/iam/v1/serviceAccounts/{account}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(got.status, 200, "{}", got.text);
        got.body["folderId"].as_str().unwrap().to_owned()
    }

    /// Creates, here, a federation in `folder` trusting the dev issuer of `trusted`.
    async fn create_federation(
        &self,
        client: &reqwest::Client,
        token: &str,
        folder: &str,
        name: &str,
        trusted: &Replica,
    ) -> String {
        let created = self
            .call(
                client,
                "POST",
                FEDERATIONS,
                Some(token),
                Some(json!({
                    "folderId": folder,
                    "name": name,
                    "audiences": [AUDIENCE],
                    "issuer": trusted.issuer(),
                    "jwksUrl": format!("{}/jwks", trusted.issuer()),
                })),
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.text);
        created.body["response"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates, here, a credential binding `subject` of `federation` to `account`; its id.
    async fn create_credential(
        &self,
        client: &reqwest::Client,
        token: &str,
        account: &str,
        federation: &str,
        subject: &str,
    ) -> String {
        let created = self
            .call(
                client,
                "POST",
                CREDENTIALS,
                Some(token),
                Some(credential_body(account, federation, subject)),
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.text);
        created.body["response"]["id"].as_str().unwrap().to_owned()
    }

    async fn delete_credential(&self, client: &reqwest::Client, token: &str, id: &str) {
        let deleted = self
            .call(
                client,
                "DELETE",
                &format!("{CREDENTIALS}/{id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
    }

    /// Exchanges `jwt` for `account` here until `wanted` holds of the answer; the time from
    /// `since` until it did. Fails after [`PROPAGATION_LIMIT`].
    async fn time_until(
        &self,
        client: &reqwest::Client,
        account: &str,
        jwt: &str,
        since: Instant,
        wanted: fn(&Reply) -> bool,
    ) -> Duration {
        loop {
            let reply = self.exchange(client, account, jwt).await;
            let elapsed = since.elapsed();
            if wanted(&reply) {
                return elapsed;
            }
            assert!(
                elapsed < PROPAGATION_LIMIT,
                "{} did not follow within {PROPAGATION_LIMIT:?}; it answers {} {}",
                self.name,
                reply.status,
                reply.text
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn credential_body(account: &str, federation: &str, subject: &str) -> Value {
    json!({"serviceAccountId": account, "federationId": federation, "externalSubjectId": subject})
}

fn exchanged(reply: &Reply) -> bool {
    reply.status == 200 && !reply.access_token().is_empty()
}

fn no_credential(reply: &Reply) -> bool {
    reply.status == 400 && reply.code() == "no_federated_credential"
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Whether `id` of `kind` exists in `store`.
async fn exists(store: &Store, kind: ResourceKind, id: &str) -> bool {
    let found = match kind {
        ResourceKind::AuthorizedKey => store.get_authorized_key(id).await.map(drop),
        ResourceKind::Operation => store.get_operation(id).await.map(drop),
        _ => match store.record(kind, id).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => return false,
            Err(e) => Err(e),
        },
    };
    match found {
        Ok(()) => true,
        Err(StoreError::NotFound { .. }) => false,
        Err(e) => panic!("reading {kind} {id}: {e}"),
    }
}

/// Checks the change log of `store`: numbered 1, 2, … up to the store's last number with no
/// gap, and every resource it names present exactly when its last change is not a deletion.
/// Answers the log.
async fn sound_change_log(store: &Store) -> Vec<Change> {
    let max = store.max_seq().await.expect("max_seq");
    let mut log: Vec<Change> = Vec::new();
    loop {
        let after = log.last().map_or(Seq(0), |c| c.seq);
        let page = store.changes_since(after, 1000).await.expect("changes");
        if page.is_empty() {
            break;
        }
        log.extend(page);
    }
    for (i, change) in log.iter().enumerate() {
        assert_eq!(
            change.seq.0,
            i64::try_from(i).unwrap() + 1,
            "the change log has a gap before {}",
            change.seq
        );
    }
    assert_eq!(
        log.last().map_or(Seq(0), |c| c.seq),
        max,
        "the log ends at the counter"
    );
    let mut last: HashMap<(ResourceKind, &str), ChangeOp> = HashMap::new();
    for change in &log {
        last.insert((change.kind, change.resource_id.as_str()), change.op);
    }
    for ((kind, id), op) in last {
        assert_eq!(
            exists(store, kind, id).await,
            op != ChangeOp::Delete,
            "{kind} {id}, whose last logged change is a {op:?}"
        );
    }
    log
}

/// Every federated credential of `account`, through the REST list: id → subject.
async fn listed_credentials(
    replica: &Replica,
    client: &reqwest::Client,
    token: &str,
    account: &str,
) -> BTreeMap<String, String> {
    let mut listed = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = replica
            .call(
                client,
                "GET",
                &format!(
                    "{CREDENTIALS}?serviceAccountId={account}&pageSize=1000&pageToken={page_token}"
                ),
                Some(token),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        for credential in page.body["federatedCredentials"].as_array().unwrap() {
            listed.insert(
                credential["id"].as_str().unwrap().to_owned(),
                credential["externalSubjectId"].as_str().unwrap().to_owned(),
            );
        }
        match page.body["nextPageToken"].as_str() {
            Some(next) if !next.is_empty() => page_token = next.to_owned(),
            _ => return listed,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_store_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let client = reqwest::Client::new();
    let mut a = Replica::start("gateway A", Some(db.gateway_url())).await;
    let mut b = Replica::start("gateway B", Some(db.gateway_url())).await;
    let admin = a.admin_key();
    let account = admin.service_account_id().to_owned();
    let token_a = a.iam_token(&client, &admin).await;
    let token_b = b.iam_token(&client, &admin).await;
    let folder = a.folder_of(&client, &token_a, &account).await;

    // Written on A, exchanged on B with a token of B's dev issuer.
    let federation = a
        .create_federation(&client, &token_a, &folder, "trusts-b", &b)
        .await;
    let federation_created = Instant::now();
    let subject = "repo:demo/replicas:ref:refs/heads/main";
    let jwt = b.caller_token(&client, subject).await;
    // B knows the federation once it verifies the token (its keys now cached) and finds no
    // credential, rather than not knowing the issuer.
    let to_federation = b
        .time_until(&client, &account, &jwt, federation_created, no_credential)
        .await;
    let credential = a
        .create_credential(&client, &token_a, &account, &federation, subject)
        .await;
    let created = Instant::now();
    let to_exchange = b
        .time_until(&client, &account, &jwt, created, exchanged)
        .await;
    a.delete_credential(&client, &token_a, &credential).await;
    let deleted = Instant::now();
    let to_refusal = b
        .time_until(&client, &account, &jwt, deleted, no_credential)
        .await;

    // And the other way: written on B, exchanged on A.
    let federation_b = b
        .create_federation(&client, &token_b, &folder, "trusts-a", &a)
        .await;
    let jwt_a = a.caller_token(&client, subject).await;
    b.create_credential(&client, &token_b, &account, &federation_b, subject)
        .await;
    let created_on_b = Instant::now();
    let to_exchange_on_a = a
        .time_until(&client, &account, &jwt_a, created_on_b, exchanged)
        .await;
    let on_a = a
        .call(
            &client,
            "GET",
            &format!("{FEDERATIONS}/{federation_b}"),
            Some(&token_a),
            None,
        )
        .await;
    assert_eq!(on_a.status, 200, "B's federation read on A: {}", on_a.text);
    assert_eq!(on_a.body["issuer"], a.issuer());

    eprintln!(
        "replication A -> B: federation created on A known on B after {:.1} ms (its first \
         key fetch included), credential created on A exchangeable on B after {:.1} ms, \
         deleted on A refused on B after {:.1} ms; B -> A: federation and credential created \
         on B exchangeable on A after {:.1} ms, key fetch included (limit \
         {PROPAGATION_LIMIT:?}, design target 1 s)",
        ms(to_federation),
        ms(to_exchange),
        ms(to_refusal),
        ms(to_exchange_on_a),
    );
    a.stop().await;
    b.stop().await;
    db.finish("two_gateways_share_one_store_on_postgresql")
        .await;
}

/// What the writers of a burst saw.
#[derive(Default)]
struct Burst {
    /// Every subject a create was sent for.
    attempted: BTreeSet<String>,
    /// Credential id → subject, for every create answered 200.
    acknowledged: BTreeMap<String, String>,
    /// Answers other than 200.
    refused: Vec<String>,
}

const WRITERS: usize = 8;
/// The burst's writers run until the gateway dies; it is killed once this many creates were
/// acknowledged.
const KILL_AFTER: usize = 60;

async fn killed_during_a_burst(db: Option<&TestDb>) {
    let client = reqwest::Client::new();
    let mut gateway = Replica::start("the gateway", db.map(TestDb::gateway_url)).await;
    let admin = gateway.admin_key();
    let account = admin.service_account_id().to_owned();
    let token = gateway.iam_token(&client, &admin).await;
    let folder = gateway.folder_of(&client, &token, &account).await;
    let federation = gateway
        .create_federation(&client, &token, &folder, "own-dev-issuer", &gateway)
        .await;
    let early = "before-the-kill";
    gateway
        .create_credential(&client, &token, &account, &federation, early)
        .await;
    let jwt = gateway.caller_token(&client, early).await;
    let reply = gateway.exchange(&client, &account, &jwt).await;
    assert!(exchanged(&reply), "before the kill: {}", reply.text);

    let burst = Arc::new(Mutex::new(Burst::default()));
    let base = gateway.base.clone();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let burst = burst.clone();
        let client = client.clone();
        let token = token.clone();
        let account = account.clone();
        let federation = federation.clone();
        let base = base.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let subject = format!("burst-{w}-{i}");
                burst.lock().unwrap().attempted.insert(subject.clone());
                let sent = client
                    .post(format!("{base}{CREDENTIALS}"))
                    .header("Authorization", format!("Bearer {token}"))
                    .header("Content-Type", "application/json")
                    .body(credential_body(&account, &federation, &subject).to_string())
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                let status = response.status().as_u16();
                let Ok(text) = response.text().await else {
                    return;
                };
                let mut seen = burst.lock().unwrap();
                if status == 200 {
                    let body: Value = serde_json::from_str(&text).expect("JSON");
                    let id = body["response"]["id"].as_str().expect("id").to_owned();
                    seen.acknowledged.insert(id, subject);
                } else {
                    seen.refused.push(format!("{subject}: {status} {text}"));
                }
            }
        }));
    }
    let started = Instant::now();
    while burst.lock().unwrap().acknowledged.len() < KILL_AFTER {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the burst is too slow: {} acknowledged",
            burst.lock().unwrap().acknowledged.len()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    gateway.kill();
    let killed_after = started.elapsed();
    for writer in writers {
        writer.await.expect("writer");
    }
    let burst = std::mem::take(&mut *burst.lock().unwrap());
    assert!(burst.refused.is_empty(), "refused: {:?}", burst.refused);

    gateway.restart().await;
    // A new client: the old one's connections died with the gateway.
    let client = reqwest::Client::new();
    let token = gateway.iam_token(&client, &admin).await;
    for id in burst.acknowledged.keys() {
        let got = gateway
            .call(
                &client,
                "GET",
                &format!("{CREDENTIALS}/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            got.status, 200,
            "acknowledged credential {id}: {}",
            got.text
        );
    }
    let listed = listed_credentials(&gateway, &client, &token, &account).await;
    for (id, subject) in &burst.acknowledged {
        assert_eq!(listed.get(id), Some(subject), "acknowledged {id} is listed");
    }
    let extra: Vec<(&String, &String)> = listed
        .iter()
        .filter(|(id, subject)| {
            subject.as_str() != early && !burst.acknowledged.contains_key(id.as_str())
        })
        .collect();
    for (id, subject) in &extra {
        assert!(
            burst.attempted.contains(subject.as_str()),
            "credential {id} for {subject} was never asked for"
        );
    }
    let subjects: BTreeSet<&String> = listed.values().collect();
    assert_eq!(subjects.len(), listed.len(), "one credential per subject");

    let store = match db {
        Some(db) => db.reopen().await,
        None => Store::open(&gateway.sqlite_url()).await.expect("open"),
    };
    let log = sound_change_log(&store).await;
    let logged: BTreeSet<&str> = log
        .iter()
        .filter(|c| c.kind == ResourceKind::FederatedCredential && c.op == ChangeOp::Create)
        .map(|c| c.resource_id.as_str())
        .collect();
    for id in listed.keys() {
        assert!(
            logged.contains(id.as_str()),
            "credential {id} has its create logged"
        );
    }
    let stored = store
        .list_federated_credentials(&account, &PageRequest::first(1000))
        .await
        .expect("list");
    assert_eq!(
        stored.items.len(),
        listed.len(),
        "the store holds what the API lists"
    );
    store.close().await;

    let jwt = gateway.caller_token(&client, early).await;
    let reply = gateway.exchange(&client, &account, &jwt).await;
    assert!(exchanged(&reply), "after the restart: {}", reply.text);
    eprintln!(
        "killed after {:.0} ms of a burst from {WRITERS} writers: {} creates sent, {} \
         acknowledged (all present after the restart), {} committed but unanswered, {} lost \
         in flight; change log of {} entries without a gap",
        ms(killed_after),
        burst.attempted.len(),
        burst.acknowledged.len(),
        extra.len(),
        burst.attempted.len() - burst.acknowledged.len() - extra.len(),
        log.len(),
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_during_a_burst_of_writes_loses_no_acknowledged_write() {
    killed_during_a_burst(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_during_a_burst_of_writes_loses_no_acknowledged_write_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    killed_during_a_burst(Some(&db)).await;
    db.finish(
        "a_gateway_killed_during_a_burst_of_writes_loses_no_acknowledged_write_on_postgresql",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_was_down_catches_up_on_start_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let client = reqwest::Client::new();
    let mut a = Replica::start("gateway A", Some(db.gateway_url())).await;
    let mut b = Replica::start("gateway B", Some(db.gateway_url())).await;
    let admin = a.admin_key();
    let account = admin.service_account_id().to_owned();
    let token = a.iam_token(&client, &admin).await;
    let folder = a.folder_of(&client, &token, &account).await;
    let federation = a
        .create_federation(&client, &token, &folder, "trusts-b", &b)
        .await;
    let kept = "repo:demo/replicas:ref:refs/heads/kept";
    let dropped = "repo:demo/replicas:ref:refs/heads/dropped";
    let added = "repo:demo/replicas:ref:refs/heads/added";
    a.create_credential(&client, &token, &account, &federation, kept)
        .await;
    let doomed = a
        .create_credential(&client, &token, &account, &federation, dropped)
        .await;
    let jwt = b.caller_token(&client, dropped).await;
    b.time_until(&client, &account, &jwt, Instant::now(), exchanged)
        .await;

    b.stop().await;
    a.create_credential(&client, &token, &account, &federation, added)
        .await;
    a.delete_credential(&client, &token, &doomed).await;

    let restarted = Instant::now();
    b.restart().await;
    let ready_after = restarted.elapsed();
    // Straight after /readyz: no waiting, no retry.
    for (subject, wanted) in [(added, true), (kept, true), (dropped, false)] {
        let jwt = b.caller_token(&client, subject).await;
        let reply = b.exchange(&client, &account, &jwt).await;
        if wanted {
            assert!(exchanged(&reply), "{subject} on B: {}", reply.text);
        } else {
            assert!(no_credential(&reply), "{subject} on B: {}", reply.text);
        }
    }
    eprintln!(
        "replica B, down during a create and a delete on A, was ready {:.0} ms after its \
         start and honoured both at once",
        ms(ready_after)
    );
    a.stop().await;
    b.stop().await;
    db.finish("a_replica_that_was_down_catches_up_on_start_on_postgresql")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_replica_is_refused_by_the_other_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let client = reqwest::Client::new();
    let mut a = Replica::start("gateway A", Some(db.gateway_url())).await;
    let mut b = Replica::start_beside("gateway B", Some(db.gateway_url()), &a).await;
    let admin = a.admin_key();
    let account = admin.service_account_id().to_owned();
    let keeper = a.iam_token(&client, &admin).await;
    let doomed = a.iam_token(&client, &admin).await;
    let path = format!("/iam/v1/serviceAccounts/{account}");
    let on_b = b.call(&client, "GET", &path, Some(&doomed), None).await;
    assert_eq!(on_b.status, 200, "{}", on_b.text);

    let revoked = a
        .call(
            &client,
            "POST",
            "/iam/v1/tokens:revoke",
            Some(&keeper),
            Some(json!({ "iamToken": doomed })),
        )
        .await;
    let answered = Instant::now();
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let on_a = a.call(&client, "GET", &path, Some(&doomed), None).await;
    assert_eq!(on_a.status, 401, "A refuses its own revocation at once");
    let to_refusal = loop {
        let reply = b.call(&client, "GET", &path, Some(&doomed), None).await;
        let elapsed = answered.elapsed();
        if reply.status == 401 {
            assert!(reply.text.contains("was revoked"), "{}", reply.text);
            break elapsed;
        }
        assert!(
            elapsed < PROPAGATION_LIMIT,
            "B did not refuse the revoked token within {PROPAGATION_LIMIT:?}: {} {}",
            reply.status,
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(
        to_refusal < Duration::from_secs(1),
        "B refused it after {to_refusal:?}, over the design's second"
    );
    // A replica that starts afterwards loads the list.
    let mut c = Replica::start_beside("gateway C", Some(db.gateway_url()), &a).await;
    let on_c = c.call(&client, "GET", &path, Some(&doomed), None).await;
    assert_eq!(on_c.status, 401, "{}", on_c.text);
    let keeper_on_b = b.call(&client, "GET", &path, Some(&keeper), None).await;
    assert_eq!(keeper_on_b.status, 200, "{}", keeper_on_b.text);

    eprintln!(
        "revocation A -> B: a token revoked on A refused on B after {:.1} ms (limit \
         {PROPAGATION_LIMIT:?}, design target 1 s)",
        ms(to_refusal)
    );
    a.stop().await;
    b.stop().await;
    c.stop().await;
    db.finish("a_token_revoked_on_one_replica_is_refused_by_the_other_on_postgresql")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_deleted_on_one_replica_is_refused_by_the_other_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let client = reqwest::Client::new();
    let mut a = Replica::start("gateway A", Some(db.gateway_url())).await;
    let mut b = Replica::start_beside("gateway B", Some(db.gateway_url()), &a).await;
    let admin = a.admin_key();
    let token = a.iam_token(&client, &admin).await;
    let me = a
        .call(
            &client,
            "GET",
            &format!("/iam/v1/serviceAccounts/{}", admin.service_account_id()),
            Some(&token),
            None,
        )
        .await;
    let folder = me.body["folderId"].as_str().unwrap().to_owned();
    let created = a
        .call(
            &client,
            "POST",
            "/iam/v1/apiKeys",
            Some(&token),
            Some(json!({"scopes": ["yc.lockbox.payload.read"]})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.body["apiKey"]["id"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    // The administrator (an owner of the cloud) asks about its own key: it may ask, and its
    // roles grant the dev configuration's lockbox.secrets.getPayload.
    let checks = json!({"checks": [{
        "permission": "lockbox.secrets.getPayload",
        "resourcePath": [
            {"id": "e6qsecret0000000001", "type": "lockbox.secret"},
            {"id": folder, "type": "resource-manager.folder"},
        ],
        "apiKey": secret,
    }]});
    let ask = async |replica: &Replica| {
        let reply = replica
            .call(
                &client,
                "POST",
                "/iam/v1/authorize",
                Some(&token),
                Some(checks.clone()),
            )
            .await;
        assert_eq!(reply.status, 200, "{}: {}", replica.name, reply.text);
        reply.body["results"][0].clone()
    };
    // Created on A: B accepts it once it has followed the change.
    let created_at = Instant::now();
    while ask(&b).await["allowed"] != true {
        assert!(
            created_at.elapsed() < PROPAGATION_LIMIT,
            "B does not know the key"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let deleted = a
        .call(
            &client,
            "DELETE",
            &format!("/iam/v1/apiKeys/{id}"),
            Some(&token),
            None,
        )
        .await;
    let answered = Instant::now();
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(
        ask(&a).await["code"],
        16,
        "A refuses its own deletion at once"
    );
    let to_refusal = loop {
        let result = ask(&b).await;
        let elapsed = answered.elapsed();
        if result["code"] == 16 {
            assert!(
                !result.to_string().contains(&secret[4..]),
                "the refusal repeats the key: {result}"
            );
            break elapsed;
        }
        assert!(
            elapsed < PROPAGATION_LIMIT,
            "B did not refuse the deleted key within {PROPAGATION_LIMIT:?}: {result}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(
        to_refusal < Duration::from_secs(1),
        "B refused it after {to_refusal:?}, over the design's second"
    );
    eprintln!(
        "API key A -> B: a key deleted on A refused on B after {:.1} ms (limit \
         {PROPAGATION_LIMIT:?}, design target 1 s)",
        ms(to_refusal)
    );
    a.stop().await;
    b.stop().await;
    db.finish("an_api_key_deleted_on_one_replica_is_refused_by_the_other_on_postgresql")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_on_one_replica_stops_the_accounts_tokens_on_the_other_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let client = reqwest::Client::new();
    let mut a = Replica::start("gateway A", Some(db.gateway_url())).await;
    let mut b = Replica::start_beside("gateway B", Some(db.gateway_url()), &a).await;
    let admin = a.admin_key();
    let token = a.iam_token(&client, &admin).await;
    let folder = a
        .folder_of(&client, &token, admin.service_account_id())
        .await;
    let created = a
        .call(
            &client,
            "POST",
            "/iam/v1/serviceAccounts",
            Some(&token),
            Some(json!({"folderId": folder, "name": "worker"})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let worker = created.body["response"]["id"].as_str().unwrap().to_owned();
    let granted = a
        .call(
            &client,
            "POST",
            &format!("/resource-manager/v1/folders/{folder}:updateAccessBindings"),
            Some(&token),
            Some(
                json!({"accessBindingDeltas": [{"action": "ADD", "accessBinding":
                {"roleId": "viewer", "subject": {"id": worker, "type": "serviceAccount"}}}]}),
            ),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    // The worker's token, by impersonation on A.
    let issued = a
        .call(
            &client,
            "POST",
            "/iam/v1/tokens:createForServiceAccount",
            Some(&token),
            Some(json!({"serviceAccountId": worker})),
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let worker_token = issued.body["iamToken"].as_str().unwrap().to_owned();
    let own = format!("/iam/v1/serviceAccounts/{worker}");
    let checks = json!({"checks": [{
        "permission": "resource-manager.folders.get",
        "resourcePath": [{"id": folder, "type": "resource-manager.folder"}],
        "iamToken": worker_token,
    }]});
    // (Authorize's code for the worker's token, 0 if allowed; the management API's status)
    let ask = async |replica: &Replica| {
        let reply = replica
            .call(
                &client,
                "POST",
                "/iam/v1/authorize",
                Some(&token),
                Some(checks.clone()),
            )
            .await;
        assert_eq!(reply.status, 200, "{}: {}", replica.name, reply.text);
        let result = &reply.body["results"][0];
        let code = if result["allowed"] == true {
            0
        } else {
            result["code"].as_i64().unwrap_or(-1)
        };
        let managed = replica
            .try_call(&client, "GET", &own, Some(&worker_token), None)
            .await
            .map_or(0, |reply| reply.status);
        (code, managed)
    };
    let created_at = Instant::now();
    while ask(&b).await != (0, 200) {
        assert!(
            created_at.elapsed() < PROPAGATION_LIMIT,
            "B does not know the worker"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let suspended = a
        .call(
            &client,
            "POST",
            &format!("/iam/v1/serviceAccounts/{worker}:suspend"),
            Some(&token),
            Some(json!({"reason": "incident"})),
        )
        .await;
    let answered = Instant::now();
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    assert_eq!(ask(&a).await, (16, 401), "A refuses at once");
    let to_refusal = loop {
        let seen = ask(&b).await;
        let elapsed = answered.elapsed();
        if seen == (16, 401) {
            break elapsed;
        }
        assert!(
            elapsed < PROPAGATION_LIMIT,
            "B still accepts the suspended account's token after {PROPAGATION_LIMIT:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert!(
        to_refusal < Duration::from_secs(1),
        "B refused it after {to_refusal:?}, over the design's second"
    );
    eprintln!(
        "suspension A -> B: the account's token refused by Authorize and the management API on B \
         after {:.1} ms (limit {PROPAGATION_LIMIT:?}, design target 1 s)",
        ms(to_refusal)
    );
    a.stop().await;
    b.stop().await;
    db.finish("a_suspension_on_one_replica_stops_the_accounts_tokens_on_the_other_on_postgresql")
        .await;
}
