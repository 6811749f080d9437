//! The composed exchange against a fixed key set: one table of accepted tokens, tables of refused
//! ones, each refusal with its reason and the presented values its description must name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, LazyLock};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::directory::{
    Directory, FederatedCredential, Federation, KeySource, KeySourceKind, ServiceAccount,
};
use super::issuer_keys::{Algorithm, KeySet};
use super::request::TOKEN_TYPE_JWT;
use super::*;
use crate::signing::{SigningAlgorithm, SigningKey};

/// The fixed instant every case runs at (2027-01-15): time is a parameter, never read.
const NOW: i64 = 1_800_000_000;
const LEEWAY: i64 = 60;
/// The federations' default longest caller-token lifetime.
const MAX_LIFETIME: i64 = 86_400;
const ISSUER: &str = "https://issuer.example";
const SUBJECT: &str = "project_path:group/app:ref_type:branch:ref:main";
const OTHER_SUBJECT: &str = "project_path:group/other:ref_type:branch:ref:main";
const FED: &str = "fed-main";
/// A second federation with the same issuer, for the several-federations cases.
const FED2: &str = "fed-second";
const SA: &str = "sa-main";
const SA_OTHER: &str = "sa-other";
/// Exists, but no credential names it.
const SA_UNBOUND: &str = "sa-unbound";
/// `[tokens] resources` of every case.
const RESOURCES: [&str; 2] = ["https://lockbox.example", "https://registry.example/v2"];
const LOCKBOX: &str = "https://lockbox.example";
const REGISTRY: &str = "https://registry.example/v2";

/// The caller side: the issuer's private keys, generated once (RSA generation is slow).
struct CallerKeys {
    ec: EcdsaKeyPair,
    /// Publishes under the same `kid` as `ec` in the impostor key set.
    impostor: EcdsaKeyPair,
    ed: Ed25519KeyPair,
    rsa: RsaKeyPair,
}

static KEYS: LazyLock<CallerKeys> = LazyLock::new(|| CallerKeys {
    ec: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec"),
    impostor: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec"),
    ed: Ed25519KeyPair::generate().expect("ed25519"),
    rsa: RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa"),
});

/// How a test token is signed.
enum Signer<'a> {
    Ec(&'a EcdsaKeyPair),
    Ed(&'a Ed25519KeyPair),
    Rsa(&'a RsaKeyPair),
    /// HMAC-SHA256 with these bytes as the secret (the classic key-confusion attack).
    Hmac(&'a [u8]),
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS of `claims` with `header`, signed by `key` over the exact encoded bytes.
fn token(key: Signer<'_>, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig: Vec<u8> = match key {
        Signer::Ec(pair) => pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("ecdsa")
            .as_ref()
            .to_vec(),
        Signer::Ed(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        Signer::Rsa(pair) => {
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("rsa");
            sig
        }
        Signer::Hmac(secret) => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
            hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
        }
    };
    format!("{input}.{}", b64(sig))
}

/// The claims of a valid caller token; cases change one thing.
fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": "aud-1",
        "iat": NOW - 10,
        "exp": NOW + 600,
        "jti": "caller-jti-1",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    if let Some(map) = claims.as_object_mut() {
        map.remove(name);
    }
    claims
}

fn es256(claims: &Value) -> String {
    token(
        Signer::Ec(&KEYS.ec),
        &json!({"alg": "ES256", "kid": "ec-1", "typ": "JWT"}),
        claims,
    )
}

/// The decoded payload of a compact JWS, read independently of [`super::jwt`].
fn payload(token: &str) -> Value {
    let segment = token.split('.').nth(1).expect("payload segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("json")
}

fn ec_jwk(pair: &EcdsaKeyPair, kid: &str) -> Value {
    let point = pair.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-256", "kid": kid,
           "x": b64(&point[1..33]), "y": b64(&point[33..])})
}

fn ed_jwk(pair: &Ed25519KeyPair, kid: &str) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key())})
}

fn rsa_jwk(pair: &RsaKeyPair, kid: &str) -> Value {
    let public = pair.public_key();
    json!({"kty": "RSA", "kid": kid,
           "n": b64(public.modulus().big_endian_without_leading_zero()),
           "e": b64(public.exponent().big_endian_without_leading_zero())})
}

/// An inline key source; `name` stands in for the document digest.
fn source(name: &str, jwks: Vec<Value>) -> Arc<KeySource> {
    let keys =
        KeySet::from_jwks_json(json!({ "keys": jwks }).to_string().as_bytes()).expect("jwks");
    Arc::new(KeySource::new(
        KeySourceKind::Inline {
            keys: Arc::new(keys),
            digest: name.into(),
        },
        false,
        None,
    ))
}

/// The issuer's real keys: `ec-1`, `ed-1`, `rsa-1` (the RSA JWK names no `alg`).
fn issuer_keys() -> Arc<KeySource> {
    source(
        "issuer",
        vec![
            ec_jwk(&KEYS.ec, "ec-1"),
            ed_jwk(&KEYS.ed, "ed-1"),
            rsa_jwk(&KEYS.rsa, "rsa-1"),
        ],
    )
}

/// A key set that publishes another key under the real `kid` `ec-1`.
fn impostor_keys() -> Arc<KeySource> {
    source("impostor", vec![ec_jwk(&KEYS.impostor, "ec-1")])
}

fn federation(
    id: &str,
    issuer: &str,
    audiences: &[&str],
    enabled: bool,
    keys: Arc<KeySource>,
) -> Federation {
    Federation {
        id: id.into(),
        name: id.into(),
        folder_id: "folder-1".into(),
        issuer: issuer.into(),
        audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        enabled,
        key_source: keys,
        max_token_lifetime: MAX_LIFETIME,
        resources: None,
    }
}

fn main_federation() -> Federation {
    federation(FED, ISSUER, &["aud-1", "aud-2"], true, issuer_keys())
}

/// `federations` with the fixed service accounts and credentials. Credentials naming a
/// federation that is not in `federations` are dropped by [`Directory::build`].
fn directory(federations: Vec<Federation>) -> Directory {
    let accounts = [SA, SA_OTHER, SA_UNBOUND]
        .into_iter()
        .map(|id| ServiceAccount {
            id: id.into(),
            name: id.into(),
            folder_id: "folder-2".into(),
            suspended: false,
        })
        .collect();
    let credential =
        |id: &str, federation: &str, account: &str, subject: &str| FederatedCredential {
            id: id.into(),
            federation_id: federation.into(),
            service_account_id: account.into(),
            external_subject_id: subject.into(),
        };
    let credentials = vec![
        credential("cred-main", FED, SA, SUBJECT),
        credential("cred-other", FED, SA_OTHER, OTHER_SUBJECT),
        credential("cred-second", FED2, SA, SUBJECT),
    ];
    Directory::build(federations, accounts, credentials)
}

/// A test key provider: the keys it serves and the outcome of its last refresh.
enum Keys {
    /// The source's inline keys, fresh.
    Inline,
    /// The source's inline keys, served stale because the last refresh failed.
    Stale(KeyError),
    /// The same answer for every source.
    Fixed(KeyLookup),
}

impl KeyProvider for Keys {
    fn keys(
        &self,
        source: &Arc<KeySource>,
        _kid: Option<&str>,
    ) -> impl Future<Output = KeyLookup> + Send {
        let inline = match &source.kind {
            KeySourceKind::Inline { keys, .. } => Some(keys.clone()),
            _ => None,
        };
        let lookup = match self {
            Keys::Inline => KeyLookup {
                keys: inline,
                error: None,
            },
            Keys::Stale(error) => KeyLookup {
                keys: inline,
                error: Some(error.clone()),
            },
            Keys::Fixed(lookup) => lookup.clone(),
        };
        std::future::ready(lookup)
    }
}

/// One exchange to run: the caller's token, the requested service account, the directory
/// and the key provider. Defaults: the main federation, fresh inline keys, [`SA`].
struct Case {
    token: String,
    audience: &'static str,
    /// The form's `resource` values.
    resources: Vec<&'static str>,
    directory: Directory,
    keys: Keys,
}

fn case(token: String) -> Case {
    Case {
        token,
        audience: SA,
        resources: Vec::new(),
        directory: directory(vec![main_federation()]),
        keys: Keys::Inline,
    }
}

impl Case {
    fn audience(self, audience: &'static str) -> Case {
        Case { audience, ..self }
    }
    fn resource(mut self, resource: &'static str) -> Case {
        self.resources.push(resource);
        self
    }
    fn federations(self, federations: Vec<Federation>) -> Case {
        Case {
            directory: directory(federations),
            ..self
        }
    }
    fn keys(self, keys: Keys) -> Case {
        Case { keys, ..self }
    }
}

fn minter() -> Minter {
    let (key, _) = SigningKey::generate(SigningAlgorithm::ES256).expect("signing key");
    Minter::new(
        "https://gateway.example".into(),
        "https://gateway.example".into(),
        3600,
        key,
        vec![],
    )
}

/// Runs the composed exchange on the form a client would send.
async fn run(case: &Case, minter: &Minter) -> Result<Issued, ExchangeError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", request::GRANT_TYPE_TOKEN_EXCHANGE)
        .append_pair("requested_token_type", TOKEN_TYPE_ACCESS_TOKEN)
        .append_pair("audience", case.audience)
        .append_pair("subject_token", &case.token)
        .append_pair("subject_token_type", TOKEN_TYPE_JWT);
    for resource in &case.resources {
        form.append_pair("resource", resource);
    }
    let form = form.finish();
    let exchange = Exchange {
        directory: &case.directory,
        minter,
        keys: &case.keys,
        policy: &Policy {
            leeway: LEEWAY,
            resources: RESOURCES.iter().map(|r| (*r).to_owned()).collect(),
        },
        gate: &Open,
    };
    exchange
        .run(form.as_bytes(), NOW)
        .await
        .map_err(|refused| refused.error)
}

/// What a successful exchange must have granted.
#[derive(Clone, Copy)]
struct Granted {
    federation: &'static str,
    credential: &'static str,
    alg: Algorithm,
}

async fn expect_grants(cases: Vec<(&str, Case, Granted)>) {
    let minter = minter();
    let verifier =
        KeySet::from_jwks_json(minter.jwks().to_string().as_bytes()).expect("gateway jwks");
    let mut failures = Vec::new();
    for (name, case, want) in cases {
        let done = match run(&case, &minter).await {
            Ok(done) => done,
            Err(e) => {
                failures.push(format!("{name}: refused: {e}"));
                continue;
            }
        };
        let caller = payload(&case.token);
        let grant = &done.grant;
        let got = (
            grant.federation_id.as_str(),
            grant.service_account_id.as_str(),
            grant.credential_id.as_str(),
            grant.issuer.as_str(),
            grant.subject.as_str(),
            grant.alg,
        );
        let expected = (
            want.federation,
            case.audience,
            want.credential,
            caller["iss"].as_str().unwrap_or_default(),
            caller["sub"].as_str().unwrap_or_default(),
            want.alg,
        );
        if got != expected {
            failures.push(format!("{name}: grant {got:?}, expected {expected:?}"));
        }
        if grant.external_jti.as_deref() != caller["jti"].as_str() {
            failures.push(format!("{name}: external_jti {:?}", grant.external_jti));
        }

        let minted = &done.token.access_token;
        match jwt::read(minted) {
            Ok(jwt) => {
                if let Err(e) = verifier.verify(
                    jwt.kid.as_deref(),
                    jwt.alg,
                    jwt.signing_input,
                    &jwt.signature,
                ) {
                    failures.push(format!("{name}: minted token does not verify: {e}"));
                }
            }
            Err(e) => failures.push(format!("{name}: minted token unreadable: {e}")),
        }
        let resource = case.resources.first().copied();
        if grant.resource.as_deref() != resource {
            failures.push(format!("{name}: grant resource {:?}", grant.resource));
        }
        let body: Value = serde_json::from_str(&done.body).unwrap_or_default();
        if body.get("resource").and_then(Value::as_str) != resource {
            failures.push(format!("{name}: response {body}"));
        }
        let claims = payload(minted);
        let expected = json!({
            "iss": "https://gateway.example",
            "sub": case.audience,
            "aud": resource.unwrap_or("https://gateway.example"),
            "iat": NOW,
            "nbf": NOW,
            "exp": NOW + 3600,
            "jti": done.token.jti,
            "client_id": want.federation,
            "act": {"iss": caller["iss"], "sub": caller["sub"]},
        });
        if claims != expected {
            failures.push(format!(
                "{name}: minted claims {claims}, expected {expected}"
            ));
        }
        if done.token.expires_in != 3600 || done.token.kid != minter.active_key().kid() {
            failures.push(format!("{name}: issued token {:?}", done.token));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The expected failure: reason and strings the description must contain
/// (the presented values it names).
type Refusal<'a> = (Reason, &'a [&'a str]);

async fn expect_refusals(cases: Vec<(&str, Case, Refusal<'_>)>) {
    let minter = minter();
    let mut failures = Vec::new();
    for (name, case, (reason, mentions)) in cases {
        let err = match run(&case, &minter).await {
            Ok(done) => {
                failures.push(format!(
                    "{name}: accepted via federation {}",
                    done.grant.federation_id
                ));
                continue;
            }
            Err(err) => err,
        };
        if err.reason != reason {
            failures.push(format!(
                "{name}: reason {:?}, expected {reason:?}: {}",
                err.reason, err.description
            ));
        }
        for m in mentions {
            if !err.description.contains(m) {
                failures.push(format!(
                    "{name}: description lacks {m}: {}",
                    err.description
                ));
            }
        }
        // Never echo a token, nor any of its segments.
        let echoed = err.description.contains(&case.token)
            || case
                .token
                .split('.')
                .any(|s| s.len() >= 16 && err.description.contains(s));
        if echoed {
            failures.push(format!(
                "{name}: description echoes the token: {}",
                err.description
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn grants_a_valid_token_of_each_algorithm_and_mints_a_verifiable_token() {
    let main = |alg| Granted {
        federation: FED,
        credential: "cred-main",
        alg,
    };
    expect_grants(vec![
        ("ES256", case(es256(&claims())), main(Algorithm::ES256)),
        (
            "EdDSA",
            case(token(
                Signer::Ed(&KEYS.ed),
                &json!({"alg": "EdDSA", "kid": "ed-1"}),
                &claims(),
            )),
            main(Algorithm::EdDSA),
        ),
        (
            "RS256",
            case(token(
                Signer::Rsa(&KEYS.rsa),
                &json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}),
                &claims(),
            )),
            main(Algorithm::RS256),
        ),
        (
            "RS256 without kid: every RS256 key is tried",
            case(token(
                Signer::Rsa(&KEYS.rsa),
                &json!({"alg": "RS256"}),
                &claims(),
            )),
            main(Algorithm::RS256),
        ),
        (
            "other subject for the other service account",
            case(es256(&with(claims(), "sub", OTHER_SUBJECT.into()))).audience(SA_OTHER),
            Granted {
                federation: FED,
                credential: "cred-other",
                alg: Algorithm::ES256,
            },
        ),
        (
            "stale keys are used while the refresh fails",
            case(es256(&claims())).keys(Keys::Stale(KeyError::Unreachable(
                "connection refused".into(),
            ))),
            main(Algorithm::ES256),
        ),
    ])
    .await;
}

#[tokio::test]
async fn audience_and_time_claims_within_the_rules_are_accepted() {
    let main = Granted {
        federation: FED,
        credential: "cred-main",
        alg: Algorithm::ES256,
    };
    let ok = |c: Value| case(es256(&c));
    expect_grants(vec![
        (
            "aud array intersecting",
            ok(with(claims(), "aud", json!(["other-aud", "aud-2"]))),
            main,
        ),
        (
            "aud one-element array",
            ok(with(claims(), "aud", json!(["aud-1"]))),
            main,
        ),
        (
            "expired 59 s ago, within the leeway",
            ok(with(
                with(claims(), "exp", (NOW - 59).into()),
                "iat",
                (NOW - 359).into(),
            )),
            main,
        ),
        (
            "nbf 60 s ahead, within the leeway",
            ok(with(claims(), "nbf", (NOW + LEEWAY).into())),
            main,
        ),
        (
            "iat 60 s ahead, within the leeway",
            ok(with(
                with(claims(), "iat", (NOW + LEEWAY).into()),
                "exp",
                (NOW + LEEWAY + 600).into(),
            )),
            main,
        ),
        (
            "lifetime exactly the maximum",
            ok(with(
                with(claims(), "iat", (NOW - 100).into()),
                "exp",
                (NOW - 100 + MAX_LIFETIME).into(),
            )),
            main,
        ),
        (
            "no iat, exp exactly the maximum ahead",
            ok(with(
                without(claims(), "iat"),
                "exp",
                (NOW + MAX_LIFETIME).into(),
            )),
            main,
        ),
        (
            "fractional NumericDates",
            ok(with(
                with(claims(), "exp", json!(NOW as f64 + 600.5)),
                "iat",
                json!(NOW as f64 - 0.5),
            )),
            main,
        ),
    ])
    .await;
}

#[tokio::test]
async fn several_federations_of_one_issuer_grant_through_the_one_that_fits() {
    let second = Granted {
        federation: FED2,
        credential: "cred-second",
        alg: Algorithm::ES256,
    };
    let token = || es256(&claims());
    let fed2 = || federation(FED2, ISSUER, &["aud-1"], true, issuer_keys());
    expect_grants(vec![
        (
            "first disabled",
            case(token()).federations(vec![
                federation(FED, ISSUER, &["aud-1"], false, issuer_keys()),
                fed2(),
            ]),
            second,
        ),
        (
            "first trusts other audiences",
            case(token()).federations(vec![
                federation(FED, ISSUER, &["other-aud"], true, issuer_keys()),
                fed2(),
            ]),
            second,
        ),
        (
            "first accepts shorter lifetimes",
            case(token()).federations(vec![
                Federation {
                    max_token_lifetime: 300,
                    ..main_federation()
                },
                fed2(),
            ]),
            second,
        ),
        (
            "first's keys do not verify (same kid, other key)",
            case(token()).federations(vec![
                federation(FED, ISSUER, &["aud-1"], true, impostor_keys()),
                fed2(),
            ]),
            second,
        ),
        (
            "both fit: the first in configuration order",
            case(token()).federations(vec![main_federation(), fed2()]),
            Granted {
                federation: FED,
                credential: "cred-main",
                alg: Algorithm::ES256,
            },
        ),
    ])
    .await;
}

#[tokio::test]
async fn missing_and_unusable_claims_are_refused() {
    let refused = |c: Value| case(es256(&c));
    let missing =
        |claim: &'static [&'static str]| -> Refusal<'static> { (Reason::MissingClaim, claim) };
    expect_refusals(vec![
        (
            "no iss",
            refused(without(claims(), "iss")),
            missing(&["iss"]),
        ),
        (
            "empty iss",
            refused(with(claims(), "iss", "".into())),
            missing(&["iss"]),
        ),
        (
            "no sub",
            refused(without(claims(), "sub")),
            missing(&["sub"]),
        ),
        (
            "empty sub",
            refused(with(claims(), "sub", "".into())),
            missing(&["sub"]),
        ),
        (
            "no aud",
            refused(without(claims(), "aud")),
            missing(&["aud"]),
        ),
        (
            "aud empty array",
            refused(with(claims(), "aud", json!([]))),
            missing(&["aud", "empty"]),
        ),
        (
            "no exp",
            refused(without(claims(), "exp")),
            missing(&["exp"]),
        ),
        (
            "aud array not intersecting",
            refused(with(claims(), "aud", json!(["x-aud", "y-aud"]))),
            (
                Reason::AudienceMismatch,
                &["\"x-aud\"", "\"y-aud\"", "\"aud-1\"", "\"fed-main\""],
            ),
        ),
        (
            "aud string not trusted",
            refused(with(claims(), "aud", "https://gitlab.example".into())),
            (Reason::AudienceMismatch, &["\"https://gitlab.example\""]),
        ),
        (
            "aud differs by case",
            refused(with(claims(), "aud", "AUD-1".into())),
            (Reason::AudienceMismatch, &["\"AUD-1\""]),
        ),
    ])
    .await;
}

#[tokio::test]
async fn times_outside_the_leeway_and_long_lifetimes_are_refused() {
    let refused = |c: Value| case(es256(&c));
    let expired_at = crate::time::rfc3339(NOW - 61);
    let not_before = crate::time::rfc3339(NOW + 61);
    expect_refusals(vec![
        (
            "expired 61 s ago",
            refused(with(claims(), "exp", (NOW - 61).into())),
            (Reason::Expired, &[expired_at.as_str()]),
        ),
        (
            "expired exactly the leeway ago",
            refused(with(claims(), "exp", (NOW - LEEWAY).into())),
            (Reason::Expired, &[]),
        ),
        (
            "nbf 61 s ahead",
            refused(with(claims(), "nbf", (NOW + 61).into())),
            (Reason::NotYetValid, &[not_before.as_str()]),
        ),
        (
            "iat 61 s ahead",
            refused(with(
                with(claims(), "iat", (NOW + 61).into()),
                "exp",
                (NOW + 3600).into(),
            )),
            (Reason::IssuedInFuture, &[not_before.as_str()]),
        ),
        (
            "lifetime one second over the maximum",
            refused(with(
                with(claims(), "iat", (NOW - 100).into()),
                "exp",
                (NOW - 100 + MAX_LIFETIME + 1).into(),
            )),
            (Reason::LifetimeTooLong, &["86401s", "86400s"]),
        ),
        (
            "no iat and exp one second over the maximum ahead",
            refused(with(
                without(claims(), "iat"),
                "exp",
                (NOW + MAX_LIFETIME + 1).into(),
            )),
            (Reason::LifetimeTooLong, &["86401s"]),
        ),
        (
            "lifetime over a federation's own maximum",
            refused(claims()).federations(vec![Federation {
                max_token_lifetime: 300,
                ..main_federation()
            }]),
            (Reason::LifetimeTooLong, &["610s", "300s"]),
        ),
    ])
    .await;
}

#[tokio::test]
async fn issuers_and_federations_that_do_not_fit_are_refused() {
    let with_iss = |iss: &str| case(es256(&with(claims(), "iss", iss.into())));
    let configured = quote(ISSUER);
    let slash = quote("https://issuer.example/");
    let upper = quote("https://Issuer.Example");
    let unknown = quote("https://unknown.example");
    expect_refusals(vec![
        (
            "unknown issuer",
            with_iss("https://unknown.example"),
            (Reason::UnknownIssuer, &[unknown.as_str()]),
        ),
        (
            "issuer with a trailing slash",
            with_iss("https://issuer.example/"),
            (
                Reason::UnknownIssuer,
                &[slash.as_str(), configured.as_str(), "trailing slash"],
            ),
        ),
        (
            "issuer without the configured trailing slash",
            with_iss(ISSUER).federations(vec![federation(
                FED,
                "https://issuer.example/",
                &["aud-1"],
                true,
                issuer_keys(),
            )]),
            (
                Reason::UnknownIssuer,
                &[configured.as_str(), slash.as_str()],
            ),
        ),
        (
            "issuer differing by case",
            with_iss("https://Issuer.Example"),
            (
                Reason::UnknownIssuer,
                &[upper.as_str(), configured.as_str()],
            ),
        ),
        (
            "disabled federation",
            case(es256(&claims())).federations(vec![federation(
                FED,
                ISSUER,
                &["aud-1"],
                false,
                issuer_keys(),
            )]),
            (Reason::FederationDisabled, &["\"fed-main\"", "disabled"]),
        ),
        (
            "a disabled federation is skipped; the enabled one's failure is reported",
            case(es256(&claims())).federations(vec![
                federation(FED, ISSUER, &["aud-1"], false, issuer_keys()),
                federation(FED2, ISSUER, &["other-aud"], true, issuer_keys()),
            ]),
            (Reason::AudienceMismatch, &["\"fed-second\"", "\"aud-1\""]),
        ),
        (
            "no enabled federation fits: the first one's failure is reported",
            case(es256(&claims())).federations(vec![
                federation(FED, ISSUER, &["other-aud"], true, issuer_keys()),
                federation(FED2, ISSUER, &["other-aud-2"], true, issuer_keys()),
            ]),
            (Reason::AudienceMismatch, &["\"fed-main\""]),
        ),
    ])
    .await;
}

#[tokio::test]
async fn subjects_and_service_accounts_without_a_credential_are_refused() {
    let with_sub = |sub: &str| case(es256(&with(claims(), "sub", sub.into())));
    let subject = quote(SUBJECT);
    let upper = SUBJECT.to_uppercase();
    let upper_quoted = quote(&upper);
    let spaced = format!("{SUBJECT} ");
    let spaced_quoted = quote(&spaced);
    let no_binding = Reason::NoBinding;
    expect_refusals(vec![
        (
            "unknown service account",
            case(es256(&claims())).audience("sa-missing"),
            (Reason::UnknownServiceAccount, &["\"sa-missing\""]),
        ),
        (
            "service account without any credential",
            case(es256(&claims())).audience(SA_UNBOUND),
            (
                no_binding,
                &[subject.as_str(), "\"sa-unbound\"", "\"fed-main\""],
            ),
        ),
        (
            "subject bound to another service account",
            with_sub(OTHER_SUBJECT),
            (no_binding, &["\"sa-main\""]),
        ),
        (
            "subject differing by case",
            with_sub(&upper),
            (no_binding, &[upper_quoted.as_str()]),
        ),
        (
            "subject with trailing white space",
            with_sub(&spaced),
            (no_binding, &[spaced_quoted.as_str()]),
        ),
        (
            "subject bound only in a federation that did not verify",
            case(es256(&claims()))
                .federations(vec![
                    federation(FED, ISSUER, &["aud-1"], true, issuer_keys()),
                    federation(FED2, ISSUER, &["aud-1"], true, impostor_keys()),
                ])
                .audience(SA_UNBOUND),
            (no_binding, &["\"fed-main\""]),
        ),
    ])
    .await;
}

#[tokio::test]
async fn bad_signatures_unknown_keys_and_unavailable_issuers_are_refused() {
    let good = es256(&claims());
    let (signed, _) = good.rsplit_once('.').expect("three segments");
    let (header, _) = signed.split_once('.').expect("three segments");
    let signature = good.rsplit('.').next().expect("signature");
    let tampered = format!(
        "{header}.{}.{signature}",
        b64(with(claims(), "sub", OTHER_SUBJECT.into()).to_string())
    );
    let unknown_kid = token(
        Signer::Ec(&KEYS.ec),
        &json!({"alg": "ES256", "kid": "kid-unknown"}),
        &claims(),
    );
    let unreachable = || KeyError::Unreachable("connect timeout".into());
    let invalid = || KeyError::Invalid("JWKS has no usable signing key".into());
    let no_keys = |error| {
        Keys::Fixed(KeyLookup {
            keys: None,
            error: Some(error),
        })
    };
    let issuer = quote(ISSUER);
    expect_refusals(vec![
        (
            "signed by another key under the same kid",
            case(token(
                Signer::Ec(&KEYS.impostor),
                &json!({"alg": "ES256", "kid": "ec-1"}),
                &claims(),
            )),
            (Reason::BadSignature, &["\"ec-1\""]),
        ),
        (
            "signed by another key, no kid",
            case(token(
                Signer::Ec(&KEYS.impostor),
                &json!({"alg": "ES256"}),
                &claims(),
            )),
            (Reason::BadSignature, &[]),
        ),
        (
            "payload tampered after signing",
            case(tampered).audience(SA_OTHER),
            (Reason::BadSignature, &[]),
        ),
        (
            "bad signature while the refresh fails is still a bad signature",
            case(token(
                Signer::Ec(&KEYS.impostor),
                &json!({"alg": "ES256", "kid": "ec-1"}),
                &claims(),
            ))
            .keys(Keys::Stale(unreachable())),
            (Reason::BadSignature, &[]),
        ),
        (
            "unknown kid",
            case(unknown_kid.clone()),
            (Reason::UnknownKey, &["\"kid-unknown\""]),
        ),
        (
            "unknown kid and the refresh failed",
            case(unknown_kid.clone()).keys(Keys::Stale(unreachable())),
            (
                Reason::IssuerUnavailable,
                &["\"kid-unknown\"", issuer.as_str()],
            ),
        ),
        (
            "unknown kid and the refreshed document was unusable",
            case(unknown_kid).keys(Keys::Stale(invalid())),
            (Reason::IssuerKeysInvalid, &["\"kid-unknown\""]),
        ),
        (
            "no keys, issuer unreachable",
            case(es256(&claims())).keys(no_keys(unreachable())),
            (
                Reason::IssuerUnavailable,
                &[issuer.as_str(), "connect timeout"],
            ),
        ),
        (
            "no keys, issuer's document invalid",
            case(es256(&claims())).keys(no_keys(invalid())),
            (
                Reason::IssuerKeysInvalid,
                &[issuer.as_str(), "no usable signing key"],
            ),
        ),
    ])
    .await;
}

#[tokio::test]
async fn the_key_not_the_header_decides_the_algorithm() {
    let rsa_public = KEYS.rsa.public_key().as_ref().to_vec();
    let rsa_n = KEYS
        .rsa
        .public_key()
        .modulus()
        .big_endian_without_leading_zero()
        .to_vec();
    let unsupported = Reason::UnsupportedAlgorithm;
    expect_refusals(vec![
        (
            "RS256 header naming an EC key",
            case(token(
                Signer::Ec(&KEYS.ec),
                &json!({"alg": "RS256", "kid": "ec-1"}),
                &claims(),
            )),
            (unsupported, &["RS256", "\"ec-1\""]),
        ),
        (
            "RS256 header naming an EC key, signed with RSA",
            case(token(
                Signer::Rsa(&KEYS.rsa),
                &json!({"alg": "RS256", "kid": "ec-1"}),
                &claims(),
            )),
            (unsupported, &["RS256"]),
        ),
        (
            "ES256 header naming an RSA key",
            case(token(
                Signer::Ec(&KEYS.ec),
                &json!({"alg": "ES256", "kid": "rsa-1"}),
                &claims(),
            )),
            (unsupported, &["ES256", "\"rsa-1\""]),
        ),
        (
            "EdDSA header naming an EC key",
            case(token(
                Signer::Ed(&KEYS.ed),
                &json!({"alg": "EdDSA", "kid": "ec-1"}),
                &claims(),
            )),
            (unsupported, &["EdDSA"]),
        ),
        (
            "HS256 keyed with the RSA public key (DER)",
            case(token(
                Signer::Hmac(&rsa_public),
                &json!({"alg": "HS256", "kid": "rsa-1"}),
                &claims(),
            )),
            (unsupported, &["\"HS256\""]),
        ),
        (
            "HS256 keyed with the RSA modulus",
            case(token(
                Signer::Hmac(&rsa_n),
                &json!({"alg": "HS256"}),
                &claims(),
            )),
            (unsupported, &["\"HS256\""]),
        ),
        (
            "alg none with a signature",
            case(token(
                Signer::Ec(&KEYS.ec),
                &json!({"alg": "none", "kid": "ec-1"}),
                &claims(),
            )),
            (unsupported, &["\"none\""]),
        ),
    ])
    .await;
}

/// RFC 7519 §6.1: an unsecured JWT is `header.payload.` with an empty signature.
#[tokio::test]
async fn unsecured_jwt_is_refused_for_its_algorithm() {
    let unsecured = format!(
        "{}.{}.",
        b64(json!({"alg": "none"}).to_string()),
        b64(claims().to_string())
    );
    expect_refusals(vec![(
        "alg none, empty signature",
        case(unsecured),
        (Reason::UnsupportedAlgorithm, &["\"none\""]),
    )])
    .await;
}

#[tokio::test]
async fn an_allowed_resource_becomes_the_minted_audience() {
    let main = Granted {
        federation: FED,
        credential: "cred-main",
        alg: Algorithm::ES256,
    };
    let narrowed = |id: &str, resources: &[&str]| Federation {
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        ..federation(id, ISSUER, &["aud-1"], true, issuer_keys())
    };
    expect_grants(vec![
        (
            "no resource: the default audience",
            case(es256(&claims())),
            main,
        ),
        (
            "a resource of the gateway's list",
            case(es256(&claims())).resource(LOCKBOX),
            main,
        ),
        (
            "another one, with a path",
            case(es256(&claims())).resource(REGISTRY),
            main,
        ),
        (
            "a resource the federation's narrower list keeps",
            case(es256(&claims()))
                .federations(vec![narrowed(FED, &[REGISTRY])])
                .resource(REGISTRY),
            Granted {
                federation: FED,
                ..main
            },
        ),
        (
            "a narrowed federation still mints the default audience",
            case(es256(&claims())).federations(vec![narrowed(FED, &[])]),
            main,
        ),
        (
            "the first binding federation does not allow it, the second does",
            case(es256(&claims()))
                .federations(vec![narrowed(FED, &[REGISTRY]), narrowed(FED2, &[LOCKBOX])])
                .resource(LOCKBOX),
            Granted {
                federation: FED2,
                credential: "cred-second",
                alg: Algorithm::ES256,
            },
        ),
    ])
    .await;
}

#[tokio::test]
async fn resources_outside_the_allowed_lists_are_refused_after_the_signature() {
    let narrowed = |resources: &[&str]| Federation {
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        ..main_federation()
    };
    let not_allowed = Reason::ResourceNotAllowed;
    expect_refusals(vec![
        (
            "not in the gateway's list",
            case(es256(&claims())).resource("https://other.example"),
            (
                not_allowed,
                &[
                    "\"https://other.example\"",
                    "the gateway allows",
                    "\"https://lockbox.example\"",
                ],
            ),
        ),
        (
            "matching is exact: a trailing slash is another target",
            case(es256(&claims())).resource("https://lockbox.example/"),
            (not_allowed, &["\"https://lockbox.example/\""]),
        ),
        (
            "in the gateway's list, not in the federation's",
            case(es256(&claims()))
                .federations(vec![narrowed(&[REGISTRY])])
                .resource(LOCKBOX),
            (
                not_allowed,
                &["federation \"fed-main\" allows [\"https://registry.example/v2\"]"],
            ),
        ),
        (
            "a federation that allows none",
            case(es256(&claims()))
                .federations(vec![narrowed(&[])])
                .resource(LOCKBOX),
            (not_allowed, &["allows no resource", "omit"]),
        ),
        (
            "a forged token learns nothing of the lists",
            case(es256(&claims()))
                .federations(vec![federation(
                    FED,
                    ISSUER,
                    &["aud-1"],
                    true,
                    impostor_keys(),
                )])
                .resource("https://other.example"),
            (Reason::BadSignature, &[]),
        ),
        (
            "no binding comes before the target",
            case(es256(&claims()))
                .audience(SA_UNBOUND)
                .resource("https://other.example"),
            (Reason::NoBinding, &[]),
        ),
        (
            "several, even if each is allowed",
            case(es256(&claims())).resource(LOCKBOX).resource(REGISTRY),
            (Reason::SeveralResources, &["2 times", "exactly one"]),
        ),
        (
            "malformed",
            case(es256(&claims())).resource("lockbox"),
            (Reason::MalformedResource, &["\"lockbox\"", "absolute URI"]),
        ),
    ])
    .await;
}

#[tokio::test]
async fn a_target_refusal_is_audited_with_the_authentic_claims() {
    let minter = minter();
    let c = case(es256(&claims())).resource("https://other.example");
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", request::GRANT_TYPE_TOKEN_EXCHANGE)
        .append_pair("audience", SA)
        .append_pair("subject_token", &c.token)
        .append_pair("subject_token_type", TOKEN_TYPE_JWT)
        .append_pair("resource", "https://other.example");
    let exchange = Exchange {
        directory: &c.directory,
        minter: &minter,
        keys: &c.keys,
        policy: &Policy::default(),
        gate: &Open,
    };
    let refused = exchange
        .run(form.finish().as_bytes(), NOW)
        .await
        .expect_err("no resource is allowed by the default policy");
    assert_eq!(refused.error.reason, Reason::ResourceNotAllowed);
    assert_eq!(refused.error.federation_id.as_deref(), Some(FED));
    assert!(refused.verified());
    assert_eq!(
        refused.presented.resource.as_deref(),
        Some("https://other.example")
    );
    assert_eq!(refused.presented.sub.as_deref(), Some(SUBJECT));
}
