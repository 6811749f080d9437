//! Prepares an HTTP load test of the gateway (used by `scripts/load.sh`).
//!
//! ```sh
//! cargo run --release --example loadgen_setup -- --out target/loadtest --tokens 100000 \
//!     --subjects 1000 --port 18081 --gateway-port 18080 [--scale]
//! # later, more tokens for the same issuer key (the configs and the issuer tree are kept):
//! cargo run --release --example loadgen_setup -- --out target/loadtest --tokens-only \
//!     --tokens 50000 --tokens-file tokens-rate.txt
//! ```
//!
//! Writes into `--out`:
//!
//! | file | what |
//! |---|---|
//! | `caller-key.pem` | the caller issuer's RSA-2048 key (PKCS#8); reused when present |
//! | `issuer/.well-known/openid-configuration`, `issuer/keys` | a static OIDC issuer tree, for `python3 -m http.server PORT --bind 127.0.0.1 --directory OUT/issuer` |
//! | `config/gateway-small.toml` | a gateway config: one federation (keys from `http://127.0.0.1:PORT/keys`), one service account, a federated credential per subject; limits off; the signing key `config/signing-key.pem` is created by the gateway on its first start |
//! | `config/gateway-scale.toml`, `config/scale.d/*.toml` | with `--scale`: the same plus, in an included directory split across several files, 9 999 other federations (issuers and key URLs that are never contacted), 1 000 service accounts and 1 000 000 federated credentials in all, the load's among them |
//! | `tokens.txt` (or `--tokens-file`) | T distinct valid caller tokens, one a line: RS256, subjects taken in turn from S, unique `jti`, `exp` 2 h ahead |
//! | `load.env` | shell variables for the driver: ports, the service account id to request, counts |
//!
//! The configs sit alone in `config/` because the gateway reloads its configuration when a file
//! changes in the directories it watches (the config's own, included ones, the key's): token
//! files, logs and samples written during a run must not land there.
//!
//! Tokens are signed with the test kit's RS256 key (`wif_gateway::testkit`) on `--threads`
//! threads (default: every core).

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use serde_json::json;
use wif_gateway::signing::thumbprint;
use wif_gateway::testkit::{KeyKind, TestKey, b64url};

/// The `aud` of caller tokens, trusted by the load federation.
const CALLER_AUDIENCE: &str = "wif-loadtest";
/// The federation whose issuer signs the load's tokens.
const LOAD_FEDERATION: &str = "aje0loadfed000000001";
/// The service account every load subject is bound to (the `audience` form parameter).
const LOAD_SERVICE_ACCOUNT: &str = "aje0loadsa0000000001";
/// Caller tokens live this long (`exp − iat`).
const TOKEN_LIFETIME: u64 = 7200;

struct Args {
    out: PathBuf,
    tokens: usize,
    subjects: usize,
    port: u16,
    gateway_port: u16,
    scale: bool,
    tokens_only: bool,
    tokens_file: String,
    threads: usize,
    scale_federations: usize,
    scale_credentials: usize,
    scale_service_accounts: usize,
    scale_files: usize,
}

const USAGE: &str = "usage: loadgen_setup [--out DIR] [--tokens T] [--subjects S] [--port P] \
[--gateway-port G] [--scale] [--tokens-only] [--tokens-file NAME] [--threads N] \
[--scale-federations N] [--scale-credentials N] [--scale-service-accounts N] [--scale-files N]";

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        out: PathBuf::from("target/loadtest"),
        tokens: 10_000,
        subjects: 1_000,
        port: 18081,
        gateway_port: 18080,
        scale: false,
        tokens_only: false,
        tokens_file: "tokens.txt".into(),
        threads: std::thread::available_parallelism().map_or(2, usize::from),
        scale_federations: 10_000,
        scale_credentials: 1_000_000,
        scale_service_accounts: 1_000,
        scale_files: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => a.out = PathBuf::from(value()?),
            "--tokens" => a.tokens = value()?.parse().context("--tokens")?,
            "--subjects" => a.subjects = value()?.parse().context("--subjects")?,
            "--port" => a.port = value()?.parse().context("--port")?,
            "--gateway-port" => a.gateway_port = value()?.parse().context("--gateway-port")?,
            "--scale" => a.scale = true,
            "--tokens-only" => a.tokens_only = true,
            "--tokens-file" => a.tokens_file = value()?,
            "--threads" => a.threads = value()?.parse().context("--threads")?,
            "--scale-federations" => {
                a.scale_federations = value()?.parse().context("--scale-federations")?;
            }
            "--scale-credentials" => {
                a.scale_credentials = value()?.parse().context("--scale-credentials")?;
            }
            "--scale-service-accounts" => {
                a.scale_service_accounts = value()?.parse().context("--scale-service-accounts")?;
            }
            "--scale-files" => a.scale_files = value()?.parse().context("--scale-files")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if a.subjects == 0 || a.threads == 0 || a.scale_files == 0 {
        bail!("--subjects, --threads and --scale-files must be at least 1");
    }
    if a.tokens_file.contains('/') {
        bail!("--tokens-file is a file name inside --out");
    }
    if a.scale {
        if a.scale_federations < 2 || a.scale_service_accounts < 1 {
            bail!("--scale needs at least 2 federations and 1 service account");
        }
        if a.scale_credentials < a.subjects {
            bail!(
                "--scale-credentials must cover the {} load subjects",
                a.subjects
            );
        }
    }
    Ok(a)
}

fn issuer_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn subject(j: usize) -> String {
    format!("repo:loadtest/app-{j:06}:ref:refs/heads/main")
}

/// Writes `text` to `path` through a temporary file and a rename.
fn write_file(path: &Path, text: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp~");
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// The caller key, RS256 under its RFC 7638 thumbprint as `kid`: loaded from `caller-key.pem`,
/// or generated and written there. Also says whether it was generated.
fn caller_key(out: &Path) -> anyhow::Result<(TestKey, bool)> {
    let path = out.join("caller-key.pem");
    let (key, generated) = if path.exists() {
        let text = fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let p = pem::parse(text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let key = TestKey::from_pkcs8(KeyKind::Rs256, p.contents(), "")
            .map_err(|e| anyhow!("{}: not an RSA PKCS#8 key: {e}", path.display()))?;
        (key, false)
    } else {
        let key = TestKey::generate(KeyKind::Rs256, "");
        let text = pem::encode(&pem::Pem::new("PRIVATE KEY", key.pkcs8_der()));
        write_file(&path, text.as_bytes())?;
        (key, true)
    };
    let kid = thumbprint(&key.public_jwk()).context("the caller key's thumbprint")?;
    Ok((key.with_kid(&kid), generated))
}

fn write_issuer(out: &Path, port: u16, jwk: &serde_json::Value) -> anyhow::Result<()> {
    let iss = issuer_url(port);
    let discovery = json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/keys"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    write_file(
        &out.join("issuer/.well-known/openid-configuration"),
        serde_json::to_string_pretty(&discovery)?.as_bytes(),
    )?;
    write_file(
        &out.join("issuer/keys"),
        serde_json::to_string_pretty(&json!({"keys": [jwk]}))?.as_bytes(),
    )?;
    Ok(())
}

/// `[server]`, `[signing]`, `[jwks]`, `[limits]` shared by both configs.
fn settings(gateway_port: u16) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:{gateway_port}"
public_url = "http://127.0.0.1:{gateway_port}"

[signing]
# ES256, created on the first start.
key_file = "signing-key.pem"
generate_if_missing = true

[jwks]
# python's http.server sends no Cache-Control: keep the key set fresh for an hour, so that no
# refetch is due during a run (a run is far shorter).
default_ttl_seconds = 3600

[limits]
# Off for load runs: one client address and a few subjects would otherwise get 429.
per_client_ip_per_second = 0
per_subject_per_minute = 0
"#
    )
}

fn load_federation(port: u16) -> String {
    let iss = issuer_url(port);
    format!(
        r#"
[[federations]]
id = "{LOAD_FEDERATION}"
name = "loadtest-issuer"
issuer = "{iss}"
audiences = ["{CALLER_AUDIENCE}"]
jwks_url = "{iss}/keys"
allow_insecure_http = true

[[service_accounts]]
id = "{LOAD_SERVICE_ACCOUNT}"
name = "loadtest-deployer"
"#
    )
}

fn load_credentials(subjects: usize, text: &mut String) {
    for j in 0..subjects {
        let _ = write!(
            text,
            "\n[[federated_credentials]]\nfederation_id = \"{LOAD_FEDERATION}\"\nservice_account_id = \"{LOAD_SERVICE_ACCOUNT}\"\nexternal_subject_id = \"{}\"\n",
            subject(j)
        );
    }
}

fn write_small_config(a: &Args) -> anyhow::Result<()> {
    let mut text = format!(
        "# Generated by `cargo run --example loadgen_setup`: load test only, NOT for production.\n\n{}{}",
        settings(a.gateway_port),
        load_federation(a.port)
    );
    load_credentials(a.subjects, &mut text);
    write_file(&a.out.join("config/gateway-small.toml"), text.as_bytes())
}

fn scale_federation_id(i: usize) -> String {
    format!("aje0scalefed{i:08}")
}

fn scale_sa_id(i: usize) -> String {
    format!("aje0scalesa{i:08}")
}

/// The large config: the load's federation, service account and credentials in `00-load.toml`,
/// the other service accounts in `01-service-accounts.toml`, and federations 1.. with their
/// credentials split evenly over `fed-NN.toml`.
fn write_scale_config(a: &Args) -> anyhow::Result<(usize, usize, usize)> {
    let dir = a.out.join("config/scale.d");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir)?;
    let main = format!(
        "# Generated by `cargo run --example loadgen_setup -- --scale`: load test only.\ninclude = [\"scale.d\"]\n\n{}",
        settings(a.gateway_port)
    );
    write_file(&a.out.join("config/gateway-scale.toml"), main.as_bytes())?;

    let mut load = load_federation(a.port);
    load_credentials(a.subjects, &mut load);
    write_file(&dir.join("00-load.toml"), load.as_bytes())?;

    let mut accounts = String::new();
    for i in 1..a.scale_service_accounts {
        let _ = write!(
            accounts,
            "[[service_accounts]]\nid = \"{}\"\nfolder_id = \"b1gscalefolder{:06}\"\n\n",
            scale_sa_id(i),
            i % 100
        );
    }
    write_file(&dir.join("01-service-accounts.toml"), accounts.as_bytes())?;

    // Federations 1..F-1: an issuer and a key URL each on the static issuer's port under /f/,
    // which nothing serves and the gateway has no reason to fetch (the script counts such
    // requests). Their credentials: credential k belongs to federation 1 + k % (F-1).
    let others = a.scale_federations - 1;
    let creds = a.scale_credentials - a.subjects;
    let files = a.scale_files.min(others);
    let mut written = 0usize;
    for file in 0..files {
        let first = 1 + file * others / files;
        let last = 1 + (file + 1) * others / files;
        let path = dir.join(format!("fed-{file:03}.toml"));
        let mut w = BufWriter::new(
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        for f in first..last {
            let iss = format!("http://127.0.0.1:{}/f/{f}", a.port);
            writeln!(
                w,
                "[[federations]]\nid = \"{}\"\nissuer = \"{iss}\"\naudiences = [\"https://org-{f}.example/wif\"]\njwks_url = \"{iss}/keys\"\nallow_insecure_http = true\n",
                scale_federation_id(f)
            )?;
            let mut k = f - 1;
            while k < creds {
                writeln!(
                    w,
                    "[[federated_credentials]]\nfederation_id = \"{}\"\nservice_account_id = \"{}\"\nexternal_subject_id = \"repo:org-{f:05}/project-{k:07}:ref_type:branch:ref:main\"\n",
                    scale_federation_id(f),
                    if k % a.scale_service_accounts == 0 {
                        LOAD_SERVICE_ACCOUNT.to_owned()
                    } else {
                        scale_sa_id(k % a.scale_service_accounts)
                    },
                )?;
                written += 1;
                k += others;
            }
        }
        w.flush()?;
    }
    Ok((
        a.scale_federations,
        a.scale_service_accounts,
        written + a.subjects,
    ))
}

/// Signs `count` tokens on `threads` threads and writes them, one a line, in order.
fn write_tokens(a: &Args, key: &TestKey, path: &Path) -> anyhow::Result<(usize, f64, f64)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| anyhow!("clock: {e}"))?
        .as_secs();
    let iss = issuer_url(a.port);
    // A random prefix keeps `jti`s unique across files and runs.
    let mut nonce = [0u8; 6];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| anyhow!("random"))?;
    let nonce = b64url(nonce);
    let threads = a.threads.min(a.tokens.max(1));
    let started = Instant::now();
    let chunks: Vec<anyhow::Result<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (first, last) = (t * a.tokens / threads, (t + 1) * a.tokens / threads);
                let (iss, nonce) = (&iss, &nonce);
                scope.spawn(move || {
                    let mut text = String::with_capacity((last - first) * 700);
                    for i in first..last {
                        let claims = json!({
                            "iss": iss,
                            "sub": subject(i % a.subjects),
                            "aud": CALLER_AUDIENCE,
                            "iat": now,
                            "nbf": now,
                            "exp": now + TOKEN_LIFETIME,
                            "jti": format!("{nonce}-{i:09}"),
                        });
                        text.push_str(&key.sign(&claims));
                        text.push('\n');
                    }
                    text
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a signing thread died")))
            .collect()
    });
    let signing = started.elapsed().as_secs_f64();
    let tmp = path.with_extension("tmp~");
    let mut w = BufWriter::new(
        fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    for chunk in chunks {
        w.write_all(chunk?.as_bytes())?;
    }
    w.flush()?;
    drop(w);
    fs::rename(&tmp, path)?;
    Ok((threads, signing, a.tokens as f64 / signing.max(1e-9)))
}

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let (key, generated) = caller_key(&a.out)?;
    println!(
        "caller key: {} ({}, kid {})",
        a.out.join("caller-key.pem").display(),
        if generated { "generated" } else { "reused" },
        key.kid()
    );
    if a.tokens_only {
        if generated {
            bail!(
                "--tokens-only found no caller key in {}; run without it first",
                a.out.display()
            );
        }
    } else {
        write_issuer(&a.out, a.port, &key.public_jwk())?;
        println!(
            "issuer tree: {} (issuer {}, jwks_uri {}/keys)",
            a.out.join("issuer").display(),
            issuer_url(a.port),
            issuer_url(a.port)
        );
        write_small_config(&a)?;
        println!(
            "config: {} (1 federation, 1 service account, {} federated credentials)",
            a.out.join("config/gateway-small.toml").display(),
            a.subjects
        );
        if a.scale {
            let started = Instant::now();
            let (f, s, c) = write_scale_config(&a)?;
            println!(
                "config: {} + {}/*.toml ({f} federations, {s} service accounts, {c} federated credentials; written in {:.1} s)",
                a.out.join("config/gateway-scale.toml").display(),
                a.out.join("config/scale.d").display(),
                started.elapsed().as_secs_f64()
            );
        }
        let env = format!(
            "# Generated by loadgen_setup.\nISSUER_PORT={}\nGATEWAY_PORT={}\nSERVICE_ACCOUNT={LOAD_SERVICE_ACCOUNT}\nFEDERATION={LOAD_FEDERATION}\nCALLER_AUDIENCE={CALLER_AUDIENCE}\nSUBJECTS={}\n",
            a.port, a.gateway_port, a.subjects
        );
        write_file(&a.out.join("load.env"), env.as_bytes())?;
    }
    if a.tokens > 0 {
        let path = a.out.join(&a.tokens_file);
        let (threads, secs, rate) = write_tokens(&a, &key, &path)?;
        println!(
            "tokens: {} ({} tokens for {} subjects, signed on {threads} threads in {secs:.1} s = {rate:.0}/s)",
            path.display(),
            a.tokens,
            a.subjects.min(a.tokens)
        );
    }
    Ok(())
}
