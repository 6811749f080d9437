//! The IAM plane under load (used by `scripts/load.sh --scale`, through `scripts/load/iam-scale.sh`):
//! seeds a store, makes management writes through the REST API while the exchange is loaded,
//! and times creates.
//!
//! ```text
//! loadgen_store seed --dir DIR --store sqlite:PATH|postgres://… [--schema S] \
//!     [--gateway-port 18080] [--replica-port 18082] [--issuer-port 18081] \
//!     [--subjects 1000] [--credentials 1000000] [--bindings 1000000]
//! loadgen_store writes --env DIR/store.env --tokens FILE --first N [--other URL] \
//!     [--rate 100] [--duration 10] [--lead-ms 1000]
//! loadgen_store creates --env DIR/store.env --count N [--clients C]
//! ```
//!
//! `seed` opens the store (a PostgreSQL `--schema` is created afresh, dropped first if it
//! exists), bootstraps it as a gateway's first start does (the administrator's key file:
//! `DIR/admin-key.json`), creates through the store API the load's federation (issuer
//! `http://127.0.0.1:ISSUER_PORT`, keys at `/keys`, audience `wif-loadtest`) and service
//! account, then writes with plain SQL, in one transaction: a federated credential for each of
//! the `--subjects` load subjects (`repo:loadtest/app-NNNNNN:ref:refs/heads/main`, the subjects
//! of `loadgen_setup`'s tokens), and filler up to `--credentials` credentials and `--bindings`
//! access bindings: clouds of 10 folders, a folder holding 100 bindings (4 built-in roles × 25
//! service accounts), up to 1 000 service accounts and 100 federations (never-contacted
//! `https://` issuers) owning the filler credentials. It writes `DIR/gateway.toml` (and with
//! `--replica-port`, `DIR/gateway-b.toml`: a second replica on the same store), with the store,
//! `[iam] allow_http_to_loopback` for the load's issuer, quotas high enough for the filler and
//! the writes, limits off and `watch_config = false`; and `DIR/store.env`: the ids the other
//! commands and the driver need, and the seeding time.
//!
//! `writes` gets an IAM token for the administrator (`POST /iam/v1/tokens`), prints
//! `WRITER_READY`, waits `--lead-ms`, then makes `--rate` writes per second for `--duration`
//! seconds, open loop (a write is sent on time whatever earlier ones are doing): four in five
//! create a federated credential for the load federation and service account whose subject is
//! that of line `--first + k` of the token file (a subject with no credential yet), one in five
//! changes the folder's access bindings (`viewer` for a filler service account, added, then
//! removed by the next). After each credential created it sends the token of that line to
//! `POST /oauth/token` of the same gateway until one succeeds (write-visible-to-exchange: from
//! the create's answer to the first `200`), and with `--other`, polls that replica every 5 ms
//! the same way. Prints `WRITES_RESULT key=value …` (microseconds).
//!
//! `creates` creates `--count` federated credentials (fresh subjects) through
//! `POST /iam/v1/workload/federatedCredentials` from `--clients` concurrent clients, each
//! waiting for its answer before the next; prints `CREATES_RESULT key=value …`.

#[path = "common/admin_jwt.rs"]
mod admin_jwt;
#[path = "common/bulk.rs"]
mod bulk;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use wif_gateway::iam::store::{NewFederation, NewServiceAccount, Store};
use wif_gateway::iam::{ResourceKind, bootstrap, ids};

/// The `aud` of the load's caller tokens (as `loadgen_setup` signs them).
const CALLER_AUDIENCE: &str = "wif-loadtest";
/// Built-in roles the filler bindings grant on folders.
const ROLES: [&str; 4] = ["viewer", "editor", "auditor", "iam.serviceAccounts.user"];
/// Filler access bindings per folder, and folders per cloud.
const BINDINGS_PER_FOLDER: usize = 100;
const FOLDERS_PER_CLOUD: usize = 10;

/// `--flag value` pairs after the command.
struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<Flags> {
        let mut map = HashMap::new();
        let mut it = args;
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .with_context(|| format!("unexpected argument {flag:?}"))?;
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            map.insert(name.to_owned(), value);
        }
        Ok(Flags(map))
    }

    fn text(&self, name: &str) -> anyhow::Result<String> {
        self.0
            .get(name)
            .cloned()
            .with_context(|| format!("--{name} is required"))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T> {
        match self.0.get(name) {
            Some(v) => v
                .parse()
                .map_err(|_| anyhow!("--{name}: not a number: {v}")),
            None => Ok(default),
        }
    }
}

fn id(kind: ResourceKind) -> anyhow::Result<String> {
    Ok(ids::generate(kind)?)
}

fn load_subject(j: usize) -> String {
    format!("repo:loadtest/app-{j:06}:ref:refs/heads/main")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let flags = Flags::parse(args)?;
    match command.as_str() {
        "seed" => seed(&flags).await,
        "writes" => writes(&flags).await,
        "creates" => creates(&flags).await,
        _ => bail!("usage: loadgen_store seed|writes|creates --flag value … (see the source)"),
    }
}

// ------------------------------------------------------------------------------------------
// seed

/// The filler's shape for `credentials` credentials and `bindings` bindings beyond the load's.
struct Filler {
    folders: usize,
    accounts: usize,
    federations: usize,
    credentials: usize,
    bindings: usize,
}

impl Filler {
    fn new(credentials: usize, bindings: usize) -> Filler {
        Filler {
            folders: bindings.div_ceil(BINDINGS_PER_FOLDER).max(1),
            // At least as many as a folder's bindings per role, so that (role, subject) pairs
            // are unique in a folder.
            accounts: (bindings / 1000).clamp(BINDINGS_PER_FOLDER / ROLES.len(), 1000),
            federations: if credentials > 0 { 100 } else { 0 },
            credentials,
            bindings,
        }
    }

    fn clouds(&self) -> usize {
        self.folders.div_ceil(FOLDERS_PER_CLOUD)
    }
}

/// The filler rows, in an order the references allow.
fn filler_rows(
    f: &Filler,
    load_federation: &str,
    load_account: &str,
    subjects: usize,
    now: i64,
) -> anyhow::Result<(Vec<bulk::Rows>, Vec<String>)> {
    let clouds: Arc<Vec<String>> = Arc::new(
        (0..f.clouds())
            .map(|_| id(ResourceKind::Cloud))
            .collect::<anyhow::Result<_>>()?,
    );
    let folders: Arc<Vec<String>> = Arc::new(
        (0..f.folders)
            .map(|_| id(ResourceKind::Folder))
            .collect::<anyhow::Result<_>>()?,
    );
    let accounts: Arc<Vec<String>> = Arc::new(
        (0..f.accounts)
            .map(|_| id(ResourceKind::ServiceAccount))
            .collect::<anyhow::Result<_>>()?,
    );
    let federations: Arc<Vec<String>> = Arc::new(
        (0..f.federations)
            .map(|_| id(ResourceKind::Federation))
            .collect::<anyhow::Result<_>>()?,
    );
    let folder_cloud = |i: usize| i / FOLDERS_PER_CLOUD;
    let mut rows = Vec::new();
    let c = clouds.clone();
    rows.push(bulk::Rows::new(
        "clouds",
        "id, organization_id, name, description, labels, created_at, version",
        (0..c.len()).map(move |i| {
            Ok(format!(
                "('{}', 'loadorg', 'load-{i}', '', '{{}}', {now}, 1)",
                c[i]
            ))
        }),
    ));
    let (c, fo) = (clouds.clone(), folders.clone());
    rows.push(bulk::Rows::new(
        "folders",
        "id, cloud_id, name, description, labels, created_at, version",
        (0..fo.len()).map(move |i| {
            Ok(format!(
                "('{}', '{}', 'load-{i}', '', '{{}}', {now}, 1)",
                fo[i],
                c[folder_cloud(i)]
            ))
        }),
    ));
    let (c, fo, a) = (clouds.clone(), folders.clone(), accounts.clone());
    rows.push(bulk::Rows::new(
        "service_accounts",
        "id, folder_id, cloud_id, name, description, labels, status, created_at, version",
        (0..a.len()).map(move |i| {
            let folder = i % fo.len();
            Ok(format!(
                "('{}', '{}', '{}', 'load-sa-{i}', '', '{{}}', 'ACTIVE', {now}, 1)",
                a[i],
                fo[folder],
                c[folder_cloud(folder)]
            ))
        }),
    ));
    let (fo, fe) = (folders.clone(), federations.clone());
    rows.push(bulk::Rows::new(
        "federations",
        "id, folder_id, name, description, enabled, audiences, issuer, jwks_url, labels, created_at, version",
        (0..fe.len()).map(move |i| {
            let iss = format!("https://issuer-{i}.load.example");
            Ok(format!(
                "('{}', '{}', 'load-fed-{i}', '', TRUE, '[\"https://load.example/{i}\"]', '{iss}', '{iss}/keys', '{{}}', {now}, 1)",
                fe[i],
                fo[i % fo.len()]
            ))
        }),
    ));
    let (load_federation, load_account) = (load_federation.to_owned(), load_account.to_owned());
    let (a, fe) = (accounts.clone(), federations.clone());
    let filler_credentials = f.credentials;
    rows.push(bulk::Rows::new(
        "federated_credentials",
        "id, service_account_id, federation_id, external_subject_id, created_at, version",
        (0..subjects + filler_credentials).map(move |k| {
            let cid = id(ResourceKind::FederatedCredential)?;
            Ok(if k < subjects {
                format!(
                    "('{cid}', '{load_account}', '{load_federation}', '{}', {now}, 1)",
                    load_subject(k)
                )
            } else {
                let k = k - subjects;
                format!(
                    "('{cid}', '{}', '{}', 'repo:org-{:03}/project-{k:07}:ref:refs/heads/main', {now}, 1)",
                    a[k % a.len()],
                    fe[k % fe.len()],
                    k % fe.len()
                )
            })
        }),
    ));
    let (fo, a) = (folders.clone(), accounts.clone());
    rows.push(bulk::Rows::new(
        "access_bindings",
        "id, resource_type, resource_id, folder_id, role_id, subject_type, subject_id, created_at, version",
        (0..f.bindings).map(move |j| {
            // Binding j: folder j % F, round r = j / F; (role, subject) = (r % 4, r / 4 + j % F)
            // is unique in the folder while r / 4 < the number of accounts.
            let folder = j % fo.len();
            let round = j / fo.len();
            Ok(format!(
                "('{}', 'folder', '{f}', '{f}', '{}', 'serviceAccount', '{}', {now}, 1)",
                id(ResourceKind::AccessBinding)?,
                ROLES[round % ROLES.len()],
                a[(round / ROLES.len() + folder) % a.len()],
                f = fo[folder],
            ))
        }),
    ));
    Ok((rows, accounts.iter().take(20).cloned().collect()))
}

fn gateway_config(port: u16, store_url: &str) -> String {
    format!(
        "# Written by `loadgen_store seed`: load test only.\n\
         [server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nwatch_config = false\n\n\
         [signing]\nkey_file = \"signing-key.pem\"\ngenerate_if_missing = true\n\n\
         [jwks]\ndefault_ttl_seconds = 3600\n\n\
         [limits]\nper_client_ip_per_second = 0\nper_subject_per_minute = 0\n\n\
         [store]\nurl = \"{store_url}\"\n\n\
         [iam]\nbootstrap_key_file = \"admin-key.json\"\nallow_http_to_loopback = true\n\
         quotas = {{ federated_credentials = 100000000, access_bindings = 100000000, service_accounts = 1000000 }}\n"
    )
}

async fn seed(flags: &Flags) -> anyhow::Result<()> {
    let dir = PathBuf::from(flags.text("dir")?);
    let store = flags.text("store")?;
    let schema = flags.0.get("schema").cloned();
    let gateway_port: u16 = flags.number("gateway-port", 18080)?;
    let issuer_port: u16 = flags.number("issuer-port", 18081)?;
    let subjects: usize = flags.number("subjects", 1000)?;
    let credentials: usize = flags.number("credentials", 1_000_000)?;
    let bindings: usize = flags.number("bindings", 1_000_000)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;

    let store_url = if let Some(path) = store.strip_prefix("sqlite:") {
        let path = Path::new(path.trim_start_matches("//"));
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        format!("sqlite://{}?mode=rwc", path.display())
    } else {
        let schema = schema
            .as_deref()
            .context("a PostgreSQL store needs --schema")?;
        let pool = sqlx::PgPool::connect(&store).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        )))
        .execute(&pool)
        .await?;
        pool.close().await;
        let sep = if store.contains('?') { '&' } else { '?' };
        format!("{store}{sep}options[search_path]={schema}")
    };

    let now = wif_gateway::time::now_unix();
    let key_file = dir.join("admin-key.json");
    let _ = std::fs::remove_file(&key_file);
    let opened = Store::open(&store_url).await?;
    let started = bootstrap::ensure(&opened, &key_file, now).await?;
    let admin = started
        .administrator()
        .context("the store was not empty: no administrator")?
        .clone();
    let issuer = format!("http://127.0.0.1:{issuer_port}");
    let federation = opened
        .create_federation(
            &NewFederation {
                folder_id: admin.folder_id.clone(),
                name: "loadtest-issuer".into(),
                enabled: true,
                audiences: vec![CALLER_AUDIENCE.into()],
                issuer: issuer.clone(),
                jwks_url: format!("{issuer}/keys"),
                ..NewFederation::default()
            },
            now,
        )
        .await?
        .item;
    let account = opened
        .create_service_account(
            &NewServiceAccount {
                folder_id: admin.folder_id.clone(),
                name: "loadtest-deployer".into(),
                ..NewServiceAccount::default()
            },
            now,
        )
        .await?
        .item;
    opened.close().await;

    let filler = Filler::new(
        credentials.saturating_sub(subjects),
        bindings.saturating_sub(1),
    );
    let seeding = Instant::now();
    let (rows, binding_subjects) =
        filler_rows(&filler, &federation.id, &account.id, subjects, now)?;
    let statements = bulk::insert(&store_url, None, rows).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    println!(
        "seeded {} with plain SQL in {seed_seconds:.1} s ({statements} INSERTs, one transaction): \
         {} federated credentials ({subjects} for the load subjects), {} access bindings (and the \
         bootstrap's), {} clouds, {} folders, {} service accounts, {} federations of filler",
        store_url,
        subjects + filler.credentials,
        filler.bindings,
        filler.clouds(),
        filler.folders,
        filler.accounts,
        filler.federations,
    );

    std::fs::write(
        dir.join("gateway.toml"),
        gateway_config(gateway_port, &store_url),
    )?;
    if let Some(port) = flags.0.get("replica-port") {
        std::fs::write(
            dir.join("gateway-b.toml"),
            gateway_config(port.parse().context("--replica-port")?, &store_url),
        )?;
    }
    let mut env = String::from("# Written by loadgen_store seed.\n");
    for (k, v) in [
        ("STORE_URL", store_url.as_str()),
        ("GATEWAY_URL_A", &format!("http://127.0.0.1:{gateway_port}")),
        ("ADMIN_KEY", &key_file.display().to_string()),
        ("CLOUD", &admin.cloud_id),
        ("FOLDER", &admin.folder_id),
        ("FEDERATION", &federation.id),
        ("SERVICE_ACCOUNT", &account.id),
        ("BINDING_SUBJECTS", &binding_subjects.join(",")),
        ("CREDENTIALS", &(subjects + filler.credentials).to_string()),
        ("BINDINGS", &(filler.bindings + 1).to_string()),
        ("SEED_SECONDS", &format!("{seed_seconds:.1}")),
    ] {
        let _ = writeln!(env, "{k}='{v}'");
    }
    std::fs::write(dir.join("store.env"), env)?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// writes and creates

/// `KEY='value'` lines of a `store.env`.
fn read_env(path: &str) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| path.to_owned())?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect())
}

/// What the load's management calls need.
struct Admin {
    http: reqwest::Client,
    url: String,
    token: String,
    env: HashMap<String, String>,
}

impl Admin {
    async fn new(flags: &Flags) -> anyhow::Result<Admin> {
        let env = read_env(&flags.text("env")?)?;
        let get = |k: &str| {
            env.get(k)
                .cloned()
                .with_context(|| format!("store.env: no {k}"))
        };
        let url = match flags.0.get("url") {
            Some(url) => url.clone(),
            None => get("GATEWAY_URL_A")?,
        };
        let jwt = admin_jwt::sign(&get("ADMIN_KEY")?, &format!("{url}/iam/v1/tokens"))
            .map_err(|e| anyhow!(e))?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let reply = http
            .post(format!("{url}/iam/v1/tokens"))
            .json(&json!({ "jwt": jwt }))
            .send()
            .await?;
        let status = reply.status();
        let body: Value = reply.json().await?;
        let token = body["iamToken"]
            .as_str()
            .with_context(|| format!("POST /iam/v1/tokens: {status} {body}"))?
            .to_owned();
        Ok(Admin {
            http,
            url,
            token,
            env,
        })
    }

    fn get(&self, key: &str) -> &str {
        self.env.get(key).map_or("", String::as_str)
    }

    /// `POST path` with `body`; the status and the body's first 200 characters when not 200.
    async fn post(&self, path: &str, body: &Value) -> Result<(), String> {
        let reply = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        if status.is_success() && !text.contains("\"error\"") {
            Ok(())
        } else {
            Err(format!(
                "{status} {}",
                text.chars().take(200).collect::<String>()
            ))
        }
    }

    async fn create_credential(&self, subject: &str) -> Result<(), String> {
        let body = json!({
            "serviceAccountId": self.get("SERVICE_ACCOUNT"),
            "federationId": self.get("FEDERATION"),
            "externalSubjectId": subject,
        });
        self.post("/iam/v1/workload/federatedCredentials", &body)
            .await
    }

    async fn update_binding(&self, add: bool, subject: &str) -> Result<(), String> {
        let body = json!({"accessBindingDeltas": [{
            "action": if add { "ADD" } else { "REMOVE" },
            "accessBinding": {"roleId": "viewer", "subject": {"id": subject, "type": "serviceAccount"}},
        }]});
        let path = format!(
            "/resource-manager/v1/folders/{}:updateAccessBindings",
            self.get("FOLDER")
        );
        self.post(&path, &body).await
    }
}

fn exchange_form(account: &str, token: &str) -> String {
    format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange\
         &requested_token_type=urn:ietf:params:oauth:token-type:access_token\
         &audience={account}&subject_token={token}\
         &subject_token_type=urn:ietf:params:oauth:token-type:id_token"
    )
}

/// Sends the exchange `form` to `url` until it answers 200, `pause` apart; the time from
/// `since` to that answer, or `None` after 10 s.
async fn until_exchanged(
    http: &reqwest::Client,
    url: &str,
    form: &str,
    since: Instant,
    pause: Duration,
) -> Option<Duration> {
    while since.elapsed() < Duration::from_secs(10) {
        let reply = http
            .post(format!("{url}/oauth/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await;
        if let Ok(reply) = reply {
            let ok = reply.status().is_success();
            let _ = reply.bytes().await;
            if ok {
                return Some(since.elapsed());
            }
        }
        tokio::time::sleep(pause).await;
    }
    None
}

/// `PREFIX_n=… PREFIX_p50_us=… PREFIX_p99_us=… PREFIX_max_us=…`.
fn percentiles(prefix: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0, |d| d.as_micros())
    };
    format!(
        "{prefix}_n={} {prefix}_p50_us={} {prefix}_p99_us={} {prefix}_max_us={}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples.last().map_or(0, Duration::as_micros)
    )
}

/// When the last write was answered.
fn t_last_answer(tally: &std::sync::Mutex<Tally>) -> Option<Instant> {
    tally.lock().unwrap_or_else(|e| e.into_inner()).last_answer
}

#[derive(Default)]
struct Tally {
    last_answer: Option<Instant>,
    writes: Vec<Duration>,
    failed: usize,
    first_error: Option<String>,
    creates: usize,
    binding_updates: usize,
    same: Vec<Duration>,
    same_lost: usize,
    other: Vec<Duration>,
    other_lost: usize,
}

async fn writes(flags: &Flags) -> anyhow::Result<()> {
    let admin = Arc::new(Admin::new(flags).await?);
    let other = flags.0.get("other").cloned();
    let rate: f64 = flags.number("rate", 100.0)?;
    let duration: f64 = flags.number("duration", 10.0)?;
    let lead = Duration::from_millis(flags.number("lead-ms", 1000)?);
    let first: usize = flags.number("first", 0)?;
    let tokens: Vec<String> = std::fs::read_to_string(flags.text("tokens")?)?
        .lines()
        .skip(first)
        .map(str::to_owned)
        .collect();
    let total = (rate * duration).round() as usize;
    let creates_needed = total - total / 5;
    if tokens.len() < creates_needed {
        bail!(
            "{} tokens after line {first}; {creates_needed} needed",
            tokens.len()
        );
    }
    let subjects: Vec<String> = tokens
        .iter()
        .map(|t| {
            wif_gateway::testkit::decode_payload(t)["sub"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let binding_subjects: Vec<String> = admin
        .get("BINDING_SUBJECTS")
        .split(',')
        .map(str::to_owned)
        .collect();
    println!("WRITER_READY");
    tokio::time::sleep(lead).await;

    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    let mut next_create = 0usize;
    for i in 0..total {
        tokio::time::sleep_until(start + period * i as u32).await;
        let (admin, tally, other) = (admin.clone(), tally.clone(), other.clone());
        if i % 5 == 4 {
            let n = i / 5;
            let subject = binding_subjects[(n / 2) % binding_subjects.len()].clone();
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let result = admin.update_binding(n % 2 == 0, &subject).await;
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                t.binding_updates += 1;
                t.record(sent.elapsed(), result);
            }));
            continue;
        }
        let k = next_create;
        next_create += 1;
        let (subject, token) = (subjects[k].clone(), tokens[k].clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let result = admin.create_credential(&subject).await;
            let answered = Instant::now();
            let ok = result.is_ok();
            {
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                t.creates += 1;
                t.record(answered - sent, result);
            }
            if !ok {
                return;
            }
            let form = exchange_form(admin.get("SERVICE_ACCOUNT"), &token);
            let same = until_exchanged(&admin.http, &admin.url, &form, answered, Duration::ZERO);
            let far = async {
                match &other {
                    Some(url) => Some(
                        until_exchanged(
                            &admin.http,
                            url,
                            &form,
                            answered,
                            Duration::from_millis(5),
                        )
                        .await,
                    ),
                    None => None,
                }
            };
            let (same, far) = tokio::join!(same, far);
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            match same {
                Some(d) => t.same.push(d),
                None => t.same_lost += 1,
            }
            match far {
                Some(Some(d)) => t.other.push(d),
                Some(None) => t.other_lost += 1,
                None => {}
            }
        }));
    }
    let sending = start.elapsed().as_secs_f64();
    for task in tasks {
        task.await?;
    }
    let answered =
        t_last_answer(&tally).map_or(sending, |at| (at - start.into_std()).as_secs_f64());
    let t = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(e) = &t.first_error {
        println!("first failed write: {e}");
    }
    println!(
        "WRITES_RESULT writes={} failed={} per_sec={:.1} done_per_sec={:.1} creates={} binding_updates={} {} {} \
         same_lost={} {} other_lost={}",
        t.writes.len() + t.failed,
        t.failed,
        (t.writes.len() + t.failed) as f64 / sending.max(1e-9),
        t.writes.len() as f64 / answered.max(1e-9),
        t.creates,
        t.binding_updates,
        percentiles("write", t.writes),
        percentiles("same", t.same),
        t.same_lost,
        percentiles("other", t.other),
        t.other_lost,
    );
    Ok(())
}

impl Tally {
    fn record(&mut self, took: Duration, result: Result<(), String>) {
        self.last_answer = Some(Instant::now());
        match result {
            Ok(()) => self.writes.push(took),
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

async fn creates(flags: &Flags) -> anyhow::Result<()> {
    let admin = Arc::new(Admin::new(flags).await?);
    let count: usize = flags.number("count", 500)?;
    let clients: usize = flags.number("clients", 1)?;
    let nonce = id(ResourceKind::Operation)?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (admin, next, nonce) = (admin.clone(), next.clone(), nonce.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break tally;
                    }
                    let subject =
                        format!("repo:loadtest/create-{nonce}-{i:07}:ref:refs/heads/main");
                    let sent = Instant::now();
                    let result = admin.create_credential(&subject).await;
                    tally.record(sent.elapsed(), result);
                }
            })
        })
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await?;
        all.writes.extend(t.writes);
        all.failed += t.failed;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(e) = &all.first_error {
        println!("first failed create: {e}");
    }
    println!(
        "CREATES_RESULT clients={clients} count={count} ok={} failed={} seconds={seconds:.2} per_sec={:.1} {}",
        all.writes.len(),
        all.failed,
        all.writes.len() as f64 / seconds.max(1e-9),
        percentiles("latency", all.writes),
    );
    Ok(())
}
