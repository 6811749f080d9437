//! Measured reasons for two crates the gateway's production code does not use (see
//! `docs/dependencies.md`):
//!
//! * `verify/jsonwebtoken` vs `verify/gateway`: one RS256 caller token, decoded and verified by
//!   jsonwebtoken 11 (`decode`, key built once, `exp`/`nbf`/`iss`/`aud`/`sub` validated) and by
//!   the gateway's own path (`jwt::read` + `KeySet::verify`, key parsed once).
//! * `lookup/moka` vs `lookup/jwks_cache`: a fresh key set looked up in a `moka::sync::Cache` and
//!   through the JWKS cache's hit path (`JwksCache::keys` for a fetched source), among 8 sources.
//!
//! Before measuring, it checks which of the gateway's rules jsonwebtoken enforces on its own and
//! asserts the outcome, so the table printed at the end (and the one in the docs) stays true.
//! After criterion, an interleaved pass times each pair in alternation (medians of 9 rounds), so
//! that the noise of a shared machine hits both sides alike.
//!
//! ```sh
//! cargo bench --bench alternatives
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use wif_gateway::exchange::KeyProvider as _;
use wif_gateway::exchange::directory::{KeySource, KeySourceKind};
use wif_gateway::exchange::issuer_keys::KeySet;
use wif_gateway::exchange::jwks::{JwksCache, JwksConfig};

const ISSUER: &str = "https://gitlab.example.com";
const AUDIENCE: &str = "https://wif.example.com";
const SUBJECT: &str = "project_path:platform/deploy:ref_type:branch:ref:main";
const KID: &str = "rsa-1";
/// Key sources held by each cache in the lookup benchmark.
const SOURCES: usize = 8;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The caller issuer's RSA key and what it publishes.
struct Issuer {
    key: RsaKeyPair,
    n: String,
    e: String,
}

impl Issuer {
    fn new() -> Issuer {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key");
        let public = key.public_key();
        let n = b64(public.modulus().big_endian_without_leading_zero());
        let e = b64(public.exponent().big_endian_without_leading_zero());
        Issuer { key, n, e }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "RSA", "kid": KID, "alg": "RS256", "use": "sig", "n": self.n, "e": self.e})
    }

    fn jwks(&self) -> String {
        json!({ "keys": [self.jwk()] }).to_string()
    }

    /// A compact JWS of the raw `payload` JSON text under `header`, signed RS256 or PS256.
    fn sign(&self, header: &Value, payload: &str) -> String {
        let pss = header["alg"] == "PS256";
        let input = format!("{}.{}", b64(header.to_string()), b64(payload));
        let mut sig = vec![0; self.key.public_modulus_len()];
        let padding: &'static dyn signature::RsaEncoding = if pss {
            &signature::RSA_PSS_SHA256
        } else {
            &signature::RSA_PKCS1_SHA256
        };
        self.key
            .sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .expect("RSA sign");
        format!("{input}.{}", b64(sig))
    }
}

fn now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// Valid claims as JSON text; `extra` is spliced in before the closing brace.
fn claims(extra: &str) -> String {
    let now = now();
    format!(
        r#"{{"iss":"{ISSUER}","sub":"{SUBJECT}","aud":"{AUDIENCE}","iat":{},"nbf":{},"exp":{},"jti":"bench-1"{extra}}}"#,
        now - 10,
        now - 10,
        now + 3600
    )
}

/// What jsonwebtoken's `decode` is asked to produce: the claims the gateway reads.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct CallerClaims {
    iss: String,
    sub: String,
    jti: Option<String>,
}

/// jsonwebtoken, configured as strictly as it allows for an RS256 issuer.
fn jsonwebtoken_validation(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Validation {
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.validate_nbf = true;
    v
}

fn jsonwebtoken_accepts(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    alg: jsonwebtoken::Algorithm,
) -> bool {
    jsonwebtoken::decode::<CallerClaims>(token, key, &jsonwebtoken_validation(alg)).is_ok()
}

/// The gateway's answer: `Ok` or the `error_code` it refuses with.
fn gateway_verdict(token: &str, keys: &KeySet) -> Result<(), &'static str> {
    let jwt = wif_gateway::exchange::jwt::read(token).map_err(|e| e.reason.as_str())?;
    keys.verify(
        jwt.kid.as_deref(),
        jwt.alg,
        jwt.signing_input,
        &jwt.signature,
    )
    .map(|_| ())
    .map_err(|e| e.reason.as_str())
}

/// One row of the behaviour table.
struct Rule {
    name: &'static str,
    jsonwebtoken_accepts: bool,
    gateway: Result<(), &'static str>,
}

/// Runs the cases, asserts the outcomes the docs state, and returns the rows to print.
fn behaviour(issuer: &Issuer, keys: &KeySet) -> Vec<Rule> {
    use jsonwebtoken::{Algorithm, DecodingKey};
    let rsa = DecodingKey::from_rsa_components(&issuer.n, &issuer.e).expect("RSA components");
    let from_jwk = DecodingKey::from_jwk(&serde_json::from_value(issuer.jwk()).unwrap()).unwrap();
    let header = |extra: Value| {
        let mut h = json!({"alg": "RS256", "kid": KID, "typ": "JWT"});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    let signed = |extra: Value| issuer.sign(&header(extra), &claims(""));
    let mut rows = Vec::new();
    let mut row = |name, token: String, key: &DecodingKey, alg| {
        rows.push(Rule {
            name,
            jsonwebtoken_accepts: jsonwebtoken_accepts(&token, key, alg),
            gateway: gateway_verdict(&token, keys),
        });
    };
    row(
        "valid RS256 token",
        signed(json!({})),
        &rsa,
        Algorithm::RS256,
    );
    row(
        "`crit` header (`[\"exp\"]`)",
        signed(json!({"crit": ["exp"]})),
        &rsa,
        Algorithm::RS256,
    );
    row(
        "`jku` header naming another key set",
        signed(json!({"jku": "https://attacker.example/jwks"})),
        &rsa,
        Algorithm::RS256,
    );
    row(
        "`x5u` header naming a certificate",
        signed(json!({"x5u": "https://attacker.example/cert.pem"})),
        &rsa,
        Algorithm::RS256,
    );
    row(
        "`sub` given twice in the claims",
        issuer.sign(
            &header(json!({})),
            &claims(r#","sub":"project_path:evil/app:ref_type:branch:ref:main""#),
        ),
        &rsa,
        Algorithm::RS256,
    );
    row(
        "PS256 token, JWK says `alg: RS256`",
        issuer.sign(&header(json!({"alg": "PS256"})), &claims("")),
        &from_jwk,
        Algorithm::PS256,
    );

    // A symmetric key in an issuer's JWKS: jsonwebtoken makes an HMAC key of it; the gateway
    // never uses it (a key set holding only that key is refused whole).
    let secret = b"shared-secret-shared-secret-32by";
    let oct = json!({"kty": "oct", "kid": "hmac", "alg": "HS256", "k": b64(secret)});
    let hmac = DecodingKey::from_jwk(&serde_json::from_value(oct.clone()).unwrap()).unwrap();
    let hs_input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "kid": "hmac"}).to_string()),
        b64(claims(""))
    );
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
        hs_input.as_bytes(),
    );
    let hs_token = format!("{hs_input}.{}", b64(tag.as_ref()));
    let oct_only = KeySet::from_jwks_json(json!({ "keys": [oct] }).to_string().as_bytes());
    rows.push(Rule {
        name: "HS256 token, `oct` key in the JWKS",
        jsonwebtoken_accepts: jsonwebtoken_accepts(&hs_token, &hmac, Algorithm::HS256),
        gateway: match oct_only {
            Ok(set) => gateway_verdict(&hs_token, &set),
            Err(_) => Err("issuer_keys_invalid"),
        },
    });

    let expected: [(bool, Result<(), &str>); 7] = [
        (true, Ok(())),
        (true, Err("forbidden_header")),
        (true, Err("forbidden_header")),
        (true, Err("forbidden_header")),
        (false, Err("invalid_claim")),
        (true, Err("unsupported_algorithm")),
        (true, Err("issuer_keys_invalid")),
    ];
    for (rule, (jwt_ok, gateway)) in rows.iter().zip(expected) {
        assert_eq!(
            (rule.jsonwebtoken_accepts, rule.gateway),
            (jwt_ok, gateway),
            "{}",
            rule.name
        );
    }
    rows
}

/// A loopback HTTP server answering every request with `body` (`Cache-Control: max-age=3600`).
async fn serve_jwks(listener: tokio::net::TcpListener, body: Arc<String>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let body = body.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=3600\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        });
    }
}

/// Polls a future once; the JWKS cache's hit path completes without awaiting anything.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the lookup waited: not a cache hit"),
    }
}

/// Nanoseconds per call of `a` and of `b`: medians of 9 rounds of `iters` calls each, the two
/// timed in alternation.
fn interleaved<A, B>(iters: u32, mut a: impl FnMut() -> A, mut b: impl FnMut() -> B) -> (f64, f64) {
    let per_call = |f: &mut dyn FnMut()| {
        let started = std::time::Instant::now();
        for _ in 0..iters {
            f();
        }
        started.elapsed().as_nanos() as f64 / f64::from(iters)
    };
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        xs.push(per_call(&mut || {
            black_box(a());
        }));
        ys.push(per_call(&mut || {
            black_box(b());
        }));
    }
    xs.sort_by(f64::total_cmp);
    ys.sort_by(f64::total_cmp);
    (xs[4], ys[4])
}

fn main() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let issuer = Issuer::new();
    let keys = KeySet::from_jwks_json(issuer.jwks().as_bytes()).expect("JWKS");
    let rules = behaviour(&issuer, &keys);

    // (a) decode + verify of one valid RS256 token.
    let token = issuer.sign(
        &json!({"alg": "RS256", "kid": KID, "typ": "JWT"}),
        &claims(""),
    );
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&issuer.n, &issuer.e).unwrap();
    let validation = jsonwebtoken_validation(jsonwebtoken::Algorithm::RS256);

    // (b) the same key sets behind a moka cache and behind the JWKS cache (fetched once each
    // from a loopback server, then fresh for an hour).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(serve_jwks(listener, Arc::new(issuer.jwks())));
    let jwks_cache = JwksCache::new(JwksConfig::default());
    let moka: moka::sync::Cache<String, Arc<KeySet>> = moka::sync::Cache::builder()
        .max_capacity(64)
        .time_to_live(Duration::from_secs(3600))
        .build();
    let sources: Vec<Arc<KeySource>> = (0..SOURCES)
        .map(|i| {
            let url = format!("http://127.0.0.1:{port}/issuer-{i}/jwks")
                .parse()
                .unwrap();
            Arc::new(KeySource::new(KeySourceKind::JwksUrl(url), true, None))
        })
        .collect();
    for source in &sources {
        let fetched = runtime.block_on(jwks_cache.keys(source, Some(KID)));
        let set = fetched
            .keys
            .unwrap_or_else(|| panic!("fetch: {:?}", fetched.error));
        moka.insert(source.cache_key.clone(), set);
    }
    let wanted = &sources[SOURCES / 2];

    let verify_jsonwebtoken = || {
        jsonwebtoken::decode::<CallerClaims>(black_box(&token), &decoding, &validation)
            .expect("jsonwebtoken accepts the token")
    };
    let verify_gateway = || {
        let jwt = wif_gateway::exchange::jwt::read(black_box(&token)).expect("read");
        keys.verify(
            jwt.kid.as_deref(),
            jwt.alg,
            jwt.signing_input,
            &jwt.signature,
        )
        .map(|_| ())
        .expect("verifies")
    };
    let lookup_moka = || moka.get(black_box(&wanted.cache_key)).expect("cached");
    let lookup_jwks_cache = || {
        ready(jwks_cache.keys(black_box(wanted), Some(KID)))
            .keys
            .expect("fresh keys")
    };

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(40)
        .configure_from_args();
    let mut group = c.benchmark_group("verify");
    group.bench_function("jsonwebtoken", |b| b.iter(verify_jsonwebtoken));
    group.bench_function("gateway", |b| b.iter(verify_gateway));
    group.finish();
    let mut group = c.benchmark_group("lookup");
    group.bench_function("moka", |b| b.iter(lookup_moka));
    group.bench_function("jwks_cache", |b| b.iter(lookup_jwks_cache));
    group.finish();
    c.final_summary();

    if benchmarking {
        println!();
        println!("interleaved: medians of 9 rounds");
        let (a, b) = interleaved(2_000, verify_jsonwebtoken, verify_gateway);
        println!(
            "verify  jsonwebtoken {:>8.2} µs  gateway    {:>8.2} µs  ratio {:.2}",
            a / 1e3,
            b / 1e3,
            a / b
        );
        let (a, b) = interleaved(1_000_000, lookup_moka, lookup_jwks_cache);
        println!(
            "lookup  moka         {a:>8.1} ns  jwks_cache {b:>8.1} ns  ratio {:.2}",
            a / b
        );
        println!();
        println!("| case | jsonwebtoken 11 | gateway |");
        println!("|---|---|---|");
        for rule in &rules {
            println!(
                "| {} | {} | {} |",
                rule.name,
                if rule.jsonwebtoken_accepts {
                    "accepted"
                } else {
                    "refused"
                },
                match rule.gateway {
                    Ok(()) => "accepted".to_owned(),
                    Err(code) => format!("refused: `{code}`"),
                }
            );
        }
    }
}
