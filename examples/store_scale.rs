//! The IAM store at scale: how fast it takes writes, how long a replica takes to load a million
//! federated credentials and how much memory they take, how soon a write is visible on the
//! replica that made it and on another one, and what a directory lookup costs with the store's
//! layer holding 10 or 1 000 000 credentials.
//!
//! ```text
//! cargo run --release --example store_scale -- [--url postgres://root@127.0.0.1:5432/test]
//!     [--credentials 1000000] [--creates 2000] [--visible 200]
//! ```
//!
//! Without `--url` it uses a SQLite file in a temporary directory; with a PostgreSQL URL it
//! works in a schema of its own (`wif_scale_<random>`), dropped at the end. Steps, each printed
//! with its figure:
//!
//! 1. `--creates` federated credentials created one by one through the store (a transaction
//!    and a change-log entry each, as the API makes them): creates per second.
//! 2. The rest up to `--credentials`, inserted in bulk with plain SQL (a seeding shortcut, not
//!    measured).
//! 3. A replica loading the store (`Live::load`): seconds, and the process's RSS before and
//!    after (VmRSS, VmHWM from `/proc/self/status`).
//! 4. `--visible` writes on this replica, each awaited until applied (`Live::caught_up_to`, what
//!    a mutation does before answering): create-to-visible latency, median and p99.
//! 5. The same writes seen from a second replica that follows the log (`Live::follow`):
//!    commit-to-visible latency there, median and p99.
//! 6. Credential lookups in a directory whose store layer holds the full set vs 10: ns per
//!    lookup, median of 5 rounds.

#[path = "common/bulk.rs"]
mod bulk;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use wif_gateway::exchange::directory::{Directory, Entries, FederatedCredential};
use wif_gateway::iam::ResourceKind;
use wif_gateway::iam::ids;
use wif_gateway::iam::live::{FederationDefaults, Live};
use wif_gateway::iam::store::{
    NewCloud, NewFederatedCredential, NewFederation, NewFolder, NewServiceAccount, OpenOptions,
    Store,
};

const NOW: i64 = 1_780_000_000;
const ISSUER: &str = "https://issuer.scale.example";

struct Args {
    url: Option<String>,
    credentials: usize,
    creates: usize,
    visible: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        url: None,
        credentials: 1_000_000,
        creates: 2000,
        visible: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => args.url = Some(value()?),
            "--credentials" => args.credentials = value()?.parse().context("--credentials")?,
            "--creates" => args.creates = value()?.parse().context("--creates")?,
            "--visible" => args.visible = value()?.parse().context("--visible")?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(args)
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "median {:.2} ms, p99 {:.2} ms, max {:.2} ms (n = {})",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        samples.len()
    )
}

/// Inserts credentials `from..to` of account `account` in federation `federation`, 1000 rows
/// per statement, in one transaction.
async fn seed(
    url: &str,
    schema: Option<&str>,
    account: &str,
    federation: &str,
    from: usize,
    to: usize,
) -> anyhow::Result<()> {
    let (account, federation) = (account.to_owned(), federation.to_owned());
    let values = (from..to).map(move |i| {
        let id = ids::generate(ResourceKind::FederatedCredential)?;
        Ok(format!(
            "('{id}', '{account}', '{federation}', 'system:serviceaccount:scale:sa-{i}', {NOW}, 1)"
        ))
    });
    bulk::insert(
        url,
        schema,
        vec![bulk::Rows::new(
            "federated_credentials",
            "id, service_account_id, federation_id, external_subject_id, created_at, version",
            values,
        )],
    )
    .await?;
    Ok(())
}

fn lookups_ns(directory: &Directory, account: &str, subjects: usize) -> f64 {
    let federation = directory.federations_for_issuer(ISSUER)[0];
    let names: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "system:serviceaccount:scale:sa-{}",
                i * 7919 % subjects.max(1)
            )
        })
        .collect();
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut found = 0usize;
        for _ in 0..200 {
            for name in &names {
                found += usize::from(directory.credential(federation, account, name).is_some());
            }
        }
        let per = started.elapsed().as_nanos() as f64 / (200.0 * names.len() as f64);
        std::hint::black_box(found);
        rounds.push(per);
    }
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let dir = tempfile::tempdir()?;
    let (url, schema) = match &args.url {
        Some(url) => (
            url.clone(),
            Some(format!(
                "wif_scale_{}",
                ids::generate(ResourceKind::Operation)?
            )),
        ),
        None => (
            format!("sqlite://{}?mode=rwc", dir.path().join("iam.db").display()),
            None,
        ),
    };
    let options = OpenOptions {
        pg_schema: schema.clone(),
        ..OpenOptions::default()
    };
    let store = Store::open_with(&url, &options).await?;
    println!("backend: {:?}", store.backend());
    let result = run(&args, &url, schema.as_deref(), &store, &options).await;
    store.close().await;
    if let Some(schema) = &schema {
        let pool = sqlx::PgPool::connect(&url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&pool)
        .await?;
        pool.close().await;
    }
    result
}

async fn run(
    args: &Args,
    url: &str,
    schema: Option<&str>,
    store: &Store,
    options: &OpenOptions,
) -> anyhow::Result<()> {
    let cloud = store
        .create_cloud(
            &NewCloud {
                organization_id: "org".into(),
                name: "scale".into(),
                ..NewCloud::default()
            },
            NOW,
        )
        .await?
        .item;
    let folder = store
        .create_folder(
            &NewFolder {
                cloud_id: cloud.id,
                name: "scale".into(),
                ..NewFolder::default()
            },
            NOW,
        )
        .await?
        .item;
    let account = store
        .create_service_account(
            &NewServiceAccount {
                folder_id: folder.id.clone(),
                name: "scale".into(),
                ..NewServiceAccount::default()
            },
            NOW,
        )
        .await?
        .item;
    let federation = store
        .create_federation(
            &NewFederation {
                folder_id: folder.id.clone(),
                name: "scale".into(),
                enabled: true,
                audiences: vec!["scale".into()],
                issuer: ISSUER.into(),
                jwks_url: format!("{ISSUER}/jwks"),
                ..NewFederation::default()
            },
            NOW,
        )
        .await?
        .item;

    // 1. Creates through the store, one transaction each.
    let creates = args.creates.min(args.credentials);
    let started = Instant::now();
    for i in 0..creates {
        store
            .create_federated_credential(
                &NewFederatedCredential {
                    service_account_id: account.id.clone(),
                    federation_id: federation.id.clone(),
                    external_subject_id: format!("system:serviceaccount:scale:sa-{i}"),
                },
                NOW,
            )
            .await?;
    }
    let elapsed = started.elapsed();
    println!(
        "creates through the store, one transaction each: {creates} in {:.2} s = {:.0} creates/s",
        elapsed.as_secs_f64(),
        creates as f64 / elapsed.as_secs_f64()
    );

    // 2. The rest in bulk.
    let started = Instant::now();
    seed(
        url,
        schema,
        &account.id,
        &federation.id,
        creates,
        args.credentials,
    )
    .await?;
    println!(
        "seeded {} more credentials in bulk in {:.1} s (not a figure: plain INSERTs)",
        args.credentials - creates,
        started.elapsed().as_secs_f64()
    );

    // 3. A replica loads it.
    let defaults = FederationDefaults {
        max_token_lifetime: 3600,
        allow_http_to_loopback: false,
    };
    let (rss_before, _) = memory();
    let replica = Store::open_with(url, options).await?;
    let started = Instant::now();
    let live = Live::load(replica, defaults).await?;
    let load = started.elapsed();
    let (rss_after, hwm) = memory();
    println!(
        "load of {} credentials: {:.2} s; RSS {:.0} MiB before, {:.0} MiB after (+{:.0} MiB), peak {:.0} MiB",
        live.entries().credential_count(),
        load.as_secs_f64(),
        rss_before,
        rss_after,
        rss_after - rss_before,
        hwm
    );

    // 4. Same replica: a write, then waiting until applied.
    let mut same = Vec::with_capacity(args.visible);
    for i in 0..args.visible {
        let started = Instant::now();
        let written = live
            .store()
            .create_federated_credential(
                &NewFederatedCredential {
                    service_account_id: account.id.clone(),
                    federation_id: federation.id.clone(),
                    external_subject_id: format!("system:serviceaccount:same:sa-{i}"),
                },
                NOW,
            )
            .await?;
        live.caught_up_to(written.seq).await;
        same.push(started.elapsed());
    }
    println!("same replica, create to visible: {}", summary(same));

    // 5. Another replica following the log.
    let follower = Live::load(Store::open_with(url, options).await?, defaults).await?;
    let task = tokio::spawn(follower.clone().follow());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut other = Vec::with_capacity(args.visible);
    for i in 0..args.visible {
        let subject = format!("system:serviceaccount:other:sa-{i}");
        let written = live
            .store()
            .create_federated_credential(
                &NewFederatedCredential {
                    service_account_id: account.id.clone(),
                    federation_id: federation.id.clone(),
                    external_subject_id: subject.clone(),
                },
                NOW,
            )
            .await?;
        let committed = Instant::now();
        while follower.applied() < written.seq {
            if committed.elapsed() > Duration::from_secs(10) {
                bail!(
                    "the other replica did not apply change {} in 10 s",
                    written.seq.0
                );
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        other.push(committed.elapsed());
    }
    task.abort();
    println!("other replica, commit to visible: {}", summary(other));

    // 6. Lookups with the full layer vs 10 credentials.
    let full = Directory::default().with_store(live.entries());
    let mut small = Entries::default();
    small.put_federation(wif_gateway::iam::live::directory_federation(
        federation.clone(),
        &defaults,
    ));
    for i in 0..10 {
        small.put_credential(&FederatedCredential {
            id: format!("c{i}"),
            federation_id: federation.id.clone(),
            service_account_id: account.id.clone(),
            external_subject_id: format!("system:serviceaccount:scale:sa-{i}"),
        });
    }
    let small = Directory::default().with_store(std::sync::Arc::new(small));
    println!(
        "credential lookup, store layer of {} vs 10: {:.0} ns vs {:.0} ns (median of 5 rounds of 200 000)",
        full.credential_count(),
        lookups_ns(&full, &account.id, args.credentials),
        lookups_ns(&small, &account.id, 10)
    );
    Ok(())
}
