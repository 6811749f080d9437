//! Benchmarks of the token exchange against the cost of its unavoidable cryptography.
//!
//! * `pipeline/{RS256,ES256,EdDSA}`: what `POST /oauth/token` does per request minus the HTTP
//!   plumbing, through the same `Exchange::run` the token endpoint calls: form parsing, JWT read,
//!   key lookup in the server's `JwksCache`, signature check, claim rules, directory lookups, the
//!   `Limits` gate (its per-subject limit off: one subject runs the whole benchmark), ES256
//!   minting and the RFC 8693 response body. Each iteration takes the next body of a pool of
//!   distinct, valid caller tokens.
//! * `floor/{RS256,ES256,EdDSA}`: the two crypto operations no implementation can avoid, on keys
//!   parsed once: one verification of a caller signature and one ES256 signature over a message of
//!   the minted token's signing-input size.
//!
//! After criterion, an interleaved timing pass prints `pipeline`, `floor` and their ratio.
//!
//! Environment knobs (all optional):
//! * `WIF_BENCH_SUMMARY_ONLY=1`: skip criterion, run only the interleaved pass.
//! * `WIF_BENCH_ROUNDS` / `WIF_BENCH_ITERS`: rounds and iterations per round of that pass (5 × 2000).
//! * `WIF_BENCH_POOL`: distinct tokens per algorithm (4096).
//! * `WIF_BENCH_PROFILE=ALG` (with `WIF_BENCH_ITERS`, `WIF_BENCH_POOL` = 64): set up only `ALG`
//!   and run its pipeline, then its floor, `WIF_BENCH_ITERS` times each, for profilers. The work
//!   is inside `pipeline_once` and `floor_once` (each also runs once per pooled token during
//!   setup), e.g. `valgrind --tool=callgrind --collect-atstart=no
//!   --toggle-collect='*pipeline_once*' --toggle-collect='*floor_once*'`.
//!
//! `cargo test --benches` (criterion's test mode) runs each benchmark once on a small pool and
//! skips the summary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, ParsedPublicKey};
use criterion::Criterion;
use serde_json::json;
use tokio::runtime::Runtime;

use wif_gateway::exchange::directory::{
    Directory, Entries, FederatedCredential, Federation, KeySource, KeySourceKind, ServiceAccount,
};
use wif_gateway::exchange::issuer_keys::KeySet;
use wif_gateway::exchange::jwks::{JwksCache, JwksConfig};
use wif_gateway::exchange::{Exchange, Policy};
use wif_gateway::limits::{Limits, LimitsConfig};
use wif_gateway::signing::{MintRequest, Minter, SigningAlgorithm, SigningKey};
use wif_gateway::testkit::{self, Jwt, KeyKind, TestKey};

/// Unix seconds the whole run pretends it is; every caller token is valid at this instant.
const NOW: i64 = 1_750_000_000;
const ISSUER: &str = "https://gitlab.example.com";
const CALLER_AUDIENCE: &str = "https://wif.example.com";
const SUBJECT: &str = "project_path:platform/deploy:ref_type:branch:ref:main";
const FEDERATION: &str = "aje-fed-bench";
const SERVICE_ACCOUNT: &str = "ajeb3nchs3rv1ceacc0u";
const DEFAULT_POOL: usize = 4096;

/// The caller algorithms benchmarked, with the `kid` each key is published under.
const ALGS: [(KeyKind, &str); 3] = [
    (KeyKind::Rs256, "rsa-1"),
    (KeyKind::Es256, "ec-1"),
    (KeyKind::EdDsa, "ed-1"),
];

/// A caller token: the form body that carries it, and the parts the floor verifies.
struct Caller {
    body: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

fn caller_token(key: &TestKey, i: usize) -> Caller {
    let header = json!({"alg": key.alg(), "kid": key.kid(), "typ": "JWT"});
    let claims = json!({
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": CALLER_AUDIENCE,
        "iat": NOW - 30,
        "nbf": NOW - 30,
        "exp": NOW - 30 + 3600,
        "jti": format!("{}-{i:08}", key.alg().to_lowercase()),
    });
    let jwt = Jwt::new(&header, &claims);
    let signing_input = jwt.signing_input();
    let signature = key.signature(signing_input.as_bytes());
    let token = jwt.with_signature(&signature);
    // The body of the Yandex Cloud tutorial's request (a JWT needs no percent-encoding).
    let body = format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange\
         &requested_token_type=urn:ietf:params:oauth:token-type:access_token\
         &audience={SERVICE_ACCOUNT}\
         &subject_token={token}\
         &subject_token_type=urn:ietf:params:oauth:token-type:id_token"
    );
    Caller {
        body: body.into_bytes(),
        signing_input: signing_input.as_bytes().to_vec(),
        signature,
    }
}

struct PerAlg {
    /// The JWS `alg` of the caller tokens.
    alg: &'static str,
    pool: Vec<Caller>,
    /// The caller key, parsed once, for the floor.
    parsed: ParsedPublicKey,
}

struct Fixture {
    directory: Directory,
    /// With `WIF_BENCH_STORE_CREDENTIALS=N`: the same federation, account and credential in the
    /// IAM store's layer of the directory, beside N other credentials, and nothing in the
    /// configuration's.
    store_directory: Option<Directory>,
    minter: Minter,
    /// The server's key provider; for inline key sets it answers without fetching.
    provider: JwksCache,
    /// The server's gate, its per-subject limit off (one subject runs the whole benchmark).
    limits: Limits,
    policy: Policy,
    runtime: Runtime,
    algs: Vec<PerAlg>,
    /// The floor's ES256 key, standing in for the minter's (same algorithm and curve).
    floor_signer: EcdsaKeyPair,
    /// A message as long as a minted token's signing input.
    floor_message: Vec<u8>,
    rng: SystemRandom,
}

impl Fixture {
    fn new(pool_size: usize, only: Option<KeyKind>) -> Fixture {
        let rng = SystemRandom::new();
        // The issuer's keys, used only to sign the caller tokens; their JWKS is pasted inline
        // into the config, as an operator would.
        let callers: Vec<TestKey> = ALGS
            .iter()
            .map(|&(kind, kid)| TestKey::generate(kind, kid))
            .collect();
        let jwks = testkit::jwks(&callers).to_string();
        let keys = Arc::new(KeySet::from_jwks_json(jwks.as_bytes()).expect("JWKS"));
        assert_eq!(keys.len(), 3, "skipped: {:?}", keys.skipped);
        let source = Arc::new(KeySource::new(
            KeySourceKind::Inline {
                keys,
                digest: "bench".into(),
            },
            false,
            None,
        ));
        let directory = Directory::build(
            vec![Federation {
                id: FEDERATION.into(),
                name: "gitlab-ci".into(),
                folder_id: "b1gbenchfolder".into(),
                issuer: ISSUER.into(),
                audiences: vec![CALLER_AUDIENCE.into()],
                enabled: true,
                key_source: source,
                max_token_lifetime: 3600,
                resources: None,
            }],
            vec![ServiceAccount {
                id: SERVICE_ACCOUNT.into(),
                name: "deployer".into(),
                folder_id: "b1gbenchfolder".into(),
                suspended: false,
            }],
            vec![FederatedCredential {
                id: "aje-cred-bench".into(),
                federation_id: FEDERATION.into(),
                service_account_id: SERVICE_ACCOUNT.into(),
                external_subject_id: SUBJECT.into(),
            }],
        );
        let store_directory = env_usize("WIF_BENCH_STORE_CREDENTIALS").map(|n| {
            let (federations, accounts) = directory.configured();
            let mut entries = Entries::default();
            for f in federations {
                entries.put_federation(f.clone());
            }
            for a in accounts {
                entries.put_service_account(a.clone());
            }
            entries.put_credential(&FederatedCredential {
                id: "aje-cred-bench".into(),
                federation_id: FEDERATION.into(),
                service_account_id: SERVICE_ACCOUNT.into(),
                external_subject_id: SUBJECT.into(),
            });
            for i in 0..n {
                entries.put_credential(&FederatedCredential {
                    id: format!("aje-cred-{i}"),
                    federation_id: FEDERATION.into(),
                    service_account_id: format!("aje-account-{}", i % 1000),
                    external_subject_id: format!("system:serviceaccount:ns-{i}:sa"),
                });
            }
            Directory::default().with_store(Arc::new(entries))
        });
        let (signing_key, _pem) = SigningKey::generate(SigningAlgorithm::ES256).expect("key");
        let minter = Minter::new(
            "https://wif.example.com".into(),
            "https://iam.example.com".into(),
            3600,
            signing_key,
            vec![],
        );
        let minted = minter
            .mint(
                &MintRequest {
                    service_account_id: SERVICE_ACCOUNT,
                    federation_id: FEDERATION,
                    external_issuer: ISSUER,
                    external_subject: SUBJECT,
                    audience: None,
                },
                NOW,
            )
            .expect("mint");
        let signed_len = minted
            .access_token
            .rfind('.')
            .expect("compact JWS has a signature");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let algs = callers
            .iter()
            .filter(|key| only.is_none_or(|kind| kind == key.kind()))
            .map(|key| PerAlg {
                alg: key.alg(),
                pool: (0..pool_size).map(|i| caller_token(key, i)).collect(),
                parsed: key.verifier(),
            })
            .collect();
        let fixture = Fixture {
            directory,
            store_directory,
            minter,
            provider: JwksCache::new(JwksConfig::default()),
            limits: Limits::new(&LimitsConfig {
                per_subject_per_minute: 0,
                ..LimitsConfig::default()
            }),
            policy: Policy::default(),
            runtime,
            algs,
            floor_signer: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .expect("floor key"),
            floor_message: vec![b'e'; signed_len],
            rng,
        };
        fixture.check();
        fixture
    }

    /// Every pooled token goes through the pipeline and the floor once: a benchmark of refusals
    /// would measure the wrong thing.
    fn check(&self) {
        for per in &self.algs {
            for caller in &per.pool {
                let out = pipeline_once(self, &caller.body);
                if let Some(store) = &self.store_directory {
                    pipeline_in(self, store, &caller.body);
                }
                let response: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
                assert_eq!(response["token_type"], "Bearer");
                floor_once(self, per, caller);
            }
        }
    }
}

/// One request as the token endpoint runs it: form → exchange → response body.
#[inline(never)]
fn pipeline_once(f: &Fixture, body: &[u8]) -> Vec<u8> {
    pipeline_in(f, &f.directory, body)
}

/// [`pipeline_once`] against `directory`.
#[inline(never)]
fn pipeline_in(f: &Fixture, directory: &Directory, body: &[u8]) -> Vec<u8> {
    let exchange = Exchange {
        directory,
        minter: &f.minter,
        keys: &f.provider,
        policy: &f.policy,
        gate: &f.limits,
    };
    let issued = f
        .runtime
        .block_on(exchange.run(body, NOW))
        .unwrap_or_else(|refused| panic!("exchange refused: {:?}", refused.error));
    issued.body.into_bytes()
}

/// The unavoidable crypto of one request: verify the caller, sign the access token.
#[inline(never)]
fn floor_once(f: &Fixture, per: &PerAlg, caller: &Caller) -> usize {
    per.parsed
        .verify_sig(&caller.signing_input, &caller.signature)
        .expect("caller signature verifies");
    let sig = f
        .floor_signer
        .sign(&f.rng, &f.floor_message)
        .expect("ES256 sign");
    sig.as_ref().len()
}

fn criterion_groups(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("pipeline");
    for per in &f.algs {
        let mut i = 0usize;
        group.bench_function(per.alg, |b| {
            b.iter(|| {
                let caller = &per.pool[i % per.pool.len()];
                i = i.wrapping_add(1);
                black_box(pipeline_once(f, black_box(&caller.body)))
            });
        });
    }
    group.finish();
    let mut group = c.benchmark_group("floor");
    for per in &f.algs {
        let mut i = 0usize;
        group.bench_function(per.alg, |b| {
            b.iter(|| {
                let caller = &per.pool[i % per.pool.len()];
                i = i.wrapping_add(1);
                black_box(floor_once(f, per, black_box(caller)))
            });
        });
    }
    group.finish();
}

/// Nanoseconds per call of `op` over `iters` calls cycling through the pool from `start`.
fn time_per_op(per: &PerAlg, iters: usize, start: usize, mut op: impl FnMut(&Caller)) -> f64 {
    let began = Instant::now();
    for k in 0..iters {
        op(&per.pool[(start + k) % per.pool.len()]);
    }
    began.elapsed().as_nanos() as f64 / iters.max(1) as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn micros(ns: f64) -> String {
    format!("{:.1} µs", ns / 1000.0)
}

/// Pipeline and floor timed in alternation, so that the noise of a shared machine hits both.
fn summary(f: &Fixture, rounds: usize, iters: usize) {
    let mut pipeline = vec![Vec::new(); f.algs.len()];
    let mut floor = vec![Vec::new(); f.algs.len()];
    let mut store = vec![Vec::new(); f.algs.len()];
    for round in 0..rounds {
        for (a, per) in f.algs.iter().enumerate() {
            let start = round * iters;
            pipeline[a].push(time_per_op(per, iters, start, |c| {
                black_box(pipeline_once(f, black_box(&c.body)));
            }));
            if let Some(directory) = &f.store_directory {
                store[a].push(time_per_op(per, iters, start, |c| {
                    black_box(pipeline_in(f, directory, black_box(&c.body)));
                }));
            }
            floor[a].push(time_per_op(per, iters, start, |c| {
                black_box(floor_once(f, per, black_box(c)));
            }));
        }
    }
    println!();
    println!(
        "summary: medians of {rounds} interleaved rounds × {iters} iterations; pool {} tokens/alg; \
         minted token signing input {} bytes",
        f.algs.first().map_or(0, |p| p.pool.len()),
        f.floor_message.len()
    );
    for (a, per) in f.algs.iter().enumerate() {
        let p = median(pipeline[a].clone());
        let fl = median(floor[a].clone());
        println!(
            "{:<6} pipeline {:>9}  floor {:>9}  ratio {:.2}  overhead {:>8}",
            per.alg,
            micros(p),
            micros(fl),
            p / fl,
            micros(p - fl)
        );
        if let Some(directory) = &f.store_directory {
            let st = median(store[a].clone());
            println!(
                "{:<6} pipeline from the store's layer ({} credentials) {:>9}  vs configuration's {:>9}: {:+.1} %",
                per.alg,
                directory.credential_count(),
                micros(st),
                micros(p),
                (st / p - 1.0) * 100.0
            );
        }
    }
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    // Mirrors criterion: without `--bench` (e.g. `cargo test --benches`) it runs in test mode.
    let benchmarking = has("--bench") && !has("--test") && !has("--list");
    let iters = env_usize("WIF_BENCH_ITERS").unwrap_or(2000);

    if let Ok(name) = std::env::var("WIF_BENCH_PROFILE") {
        let (kind, _) = ALGS
            .into_iter()
            .find(|(kind, _)| kind.alg().eq_ignore_ascii_case(&name))
            .unwrap_or_else(|| panic!("WIF_BENCH_PROFILE={name}: use RS256, ES256 or EdDSA"));
        let f = Fixture::new(env_usize("WIF_BENCH_POOL").unwrap_or(64), Some(kind));
        let per = &f.algs[0];
        let pipeline = time_per_op(per, iters, 0, |c| {
            black_box(pipeline_once(&f, black_box(&c.body)));
        });
        let floor = time_per_op(per, iters, 0, |c| {
            black_box(floor_once(&f, per, black_box(c)));
        });
        println!(
            "profile {}: {iters} iterations (+{} in setup) each: pipeline {}, floor {}",
            kind.alg(),
            per.pool.len(),
            micros(pipeline),
            micros(floor)
        );
        return;
    }

    let pool = if benchmarking {
        env_usize("WIF_BENCH_POOL").unwrap_or(DEFAULT_POOL)
    } else {
        8
    };
    let setup = Instant::now();
    let fixture = Fixture::new(pool, None);
    if benchmarking {
        eprintln!(
            "setup: {pool} tokens × {} algorithms signed and checked in {:.1?}",
            fixture.algs.len(),
            setup.elapsed()
        );
    }

    if std::env::var_os("WIF_BENCH_SUMMARY_ONLY").is_none() {
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4))
            .sample_size(40)
            .nresamples(20_000)
            .configure_from_args();
        criterion_groups(&mut c, &fixture);
        c.final_summary();
    }

    if benchmarking {
        summary(&fixture, env_usize("WIF_BENCH_ROUNDS").unwrap_or(5), iters);
    }
}
