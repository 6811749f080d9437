//! Every rule of the exchange, shown rejecting through real HTTP, each with its error code. The
//! first row of each table is a positive control: a server that refuses everything fails it.

use serde_json::{Value, json};
use wif_gateway::testkit::{Jwt, b64url, edited};

use crate::support::gateway::{AUD, FED, SA, SUBJECT, form};
use crate::support::*;

/// Federation [`FED`] accepts tokens living at most this long.
const MAX_LIFETIME: i64 = 3600;

struct World {
    issuer: TestIssuer,
    rsa: TestKey,
    ec: TestKey,
    gateway: Gateway,
}

async fn world() -> World {
    let issuer = TestIssuer::start().await;
    let rsa = TestKey::generate(KeyKind::Rs256, "rsa-1");
    let ec = TestKey::generate(KeyKind::Es256, "ec-1");
    issuer.add_key(&rsa);
    issuer.add_key(&ec);
    let source = format!(
        "jwks_url = {:?}\nallow_insecure_http = true",
        issuer.jwks_url()
    );
    let directory = format!(
        "{}{}{}{}{}{}{}{}",
        federation(
            FED,
            &issuer.issuer(),
            &[AUD],
            &format!("{source}\nmax_token_lifetime_seconds = {MAX_LIFETIME}")
        ),
        federation(
            "fed-disabled",
            &format!("{}/disabled", issuer.issuer()),
            &[AUD],
            &format!("{source}\nenabled = false")
        ),
        account(SA),
        account("ajesaother00000001"),
        account("ajesaunbound000001"),
        binding(FED, SA, SUBJECT),
        binding(
            FED,
            "ajesaother00000001",
            "project_path:other/app:ref_type:branch:ref:main"
        ),
        binding("fed-disabled", SA, SUBJECT),
    );
    let gateway = Gateway::start(&directory).await;
    World {
        issuer,
        rsa,
        ec,
        gateway,
    }
}

#[tokio::test]
async fn every_claim_and_binding_rule_rejects_with_its_error() {
    let w = world().await;
    let iss = w.issuer.issuer();
    let now = now();
    let good = claims(&iss, SUBJECT, AUD);
    let sign = |c: &Value| w.rsa.sign(c);
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("positive control", SA, sign(&good), 200, ""),
        (
            "aud array containing a trusted value",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("aud".into(), json!(["x", AUD]));
            })),
            200,
            "",
        ),
        (
            "exp within leeway",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("iat".into(), json!(now - 300));
                c.insert("exp".into(), json!(now - 30));
            })),
            200,
            "",
        ),
        (
            "exp before iat",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("iat".into(), json!(now));
                c.insert("exp".into(), json!(now - 10));
            })),
            400,
            "invalid_claim",
        ),
        (
            "exp missing",
            SA,
            sign(&edited(good.clone(), |c| {
                c.remove("exp");
            })),
            400,
            "missing_claim",
        ),
        (
            "exp past",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("exp".into(), json!(now - 120));
            })),
            400,
            "token_expired",
        ),
        (
            "exp a string",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("exp".into(), json!("tomorrow"));
            })),
            400,
            "invalid_claim",
        ),
        (
            "nbf in the future",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("nbf".into(), json!(now + 120));
            })),
            400,
            "token_not_yet_valid",
        ),
        (
            "iat in the future",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("iat".into(), json!(now + 120));
            })),
            400,
            "token_issued_in_future",
        ),
        (
            "lifetime over the federation maximum",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("exp".into(), json!(now + MAX_LIFETIME + 60));
            })),
            400,
            "token_lifetime_too_long",
        ),
        (
            "iss missing",
            SA,
            sign(&edited(good.clone(), |c| {
                c.remove("iss");
            })),
            400,
            "missing_claim",
        ),
        (
            "iss unknown",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("iss".into(), json!("https://evil.example"));
            })),
            400,
            "unknown_issuer",
        ),
        (
            "iss with trailing slash",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("iss".into(), json!(format!("{iss}/")));
            })),
            400,
            "unknown_issuer",
        ),
        (
            "aud missing",
            SA,
            sign(&edited(good.clone(), |c| {
                c.remove("aud");
            })),
            400,
            "missing_claim",
        ),
        (
            "aud untrusted",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("aud".into(), json!("https://vault.example"));
            })),
            400,
            "audience_mismatch",
        ),
        (
            "aud empty array",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("aud".into(), json!([]));
            })),
            400,
            "missing_claim",
        ),
        (
            "sub missing",
            SA,
            sign(&edited(good.clone(), |c| {
                c.remove("sub");
            })),
            400,
            "missing_claim",
        ),
        (
            "sub unbound",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert(
                    "sub".into(),
                    json!("project_path:demo/app:ref_type:branch:ref:dev"),
                );
            })),
            400,
            "no_federated_credential",
        ),
        (
            "sub differing by case",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("sub".into(), json!(SUBJECT.to_uppercase()));
            })),
            400,
            "no_federated_credential",
        ),
        (
            "binding is for another service account",
            "ajesaother00000001",
            sign(&good),
            400,
            "no_federated_credential",
        ),
        (
            "service account without any binding",
            "ajesaunbound000001",
            sign(&good),
            400,
            "no_federated_credential",
        ),
        (
            "unknown service account",
            "ajesanonexistent01",
            sign(&good),
            400,
            "unknown_service_account",
        ),
        (
            "disabled federation",
            SA,
            sign(&edited(good.clone(), |c| {
                c.insert("iss".into(), json!(format!("{iss}/disabled")));
            })),
            400,
            "federation_disabled",
        ),
    ];
    run_table(&w.gateway, cases).await;
    let trailing = w
        .gateway
        .exchange(
            SA,
            &sign(&edited(good, |c| {
                c.insert("iss".into(), json!(format!("{iss}/")));
            })),
        )
        .await;
    assert!(
        trailing.description().contains("trailing slash"),
        "{}",
        trailing.description()
    );
    let expired = w
        .gateway
        .exchange(
            SA,
            &sign(&edited(claims(&iss, SUBJECT, AUD), |c| {
                c.insert("exp".into(), json!(now - 120));
            })),
        )
        .await;
    assert!(
        expired.description().contains("server time"),
        "times are named: {}",
        expired.description()
    );
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_rejected() {
    let w = world().await;
    let iss = w.issuer.issuer();
    let good = claims(&iss, SUBJECT, AUD);
    let header = |alg: &str, kid: &str| json!({"alg": alg, "typ": "JWT", "kid": kid});
    let valid = w.rsa.sign(&good);
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let other_rsa = TestKey::generate(KeyKind::Rs256, "rsa-1");
    let rsa_public = w.rsa.rsa_public_der_pkcs1().expect("rsa key");
    let tampered_payload = b64url(
        edited(good.clone(), |c| {
            c.insert("sub".into(), json!("project_path:evil/app"));
        })
        .to_string(),
    );
    let big = edited(good.clone(), |c| {
        c.insert("pad".into(), json!("x".repeat(17 * 1024)));
    });
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("positive control", SA, valid.clone(), 200, ""),
        (
            "alg none",
            SA,
            Jwt::new(&json!({"alg":"none"}), &good).unsigned(),
            400,
            "unsupported_algorithm",
        ),
        (
            "HS256 keyed with the RSA public key",
            SA,
            Jwt::new(&header("HS256", "rsa-1"), &good).sign_hmac("HS256", &rsa_public),
            400,
            "unsupported_algorithm",
        ),
        (
            "RS256 header on an EC key",
            SA,
            w.ec.sign_raw(&header("RS256", "ec-1"), good.to_string().as_bytes()),
            400,
            "unsupported_algorithm",
        ),
        (
            "signed by another key under the same kid",
            SA,
            other_rsa.sign(&good),
            400,
            "bad_signature",
        ),
        (
            "payload changed after signing",
            SA,
            format!("{head}.{tampered_payload}.{signature}"),
            400,
            "bad_signature",
        ),
        (
            "crit header",
            SA,
            w.rsa.sign_raw(
                &json!({"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1}),
                good.to_string().as_bytes(),
            ),
            400,
            "forbidden_header",
        ),
        (
            "jwe",
            SA,
            format!("{valid}.e30.e30"),
            400,
            "malformed_token",
        ),
        ("over 16 KiB", SA, w.rsa.sign(&big), 400, "token_too_large"),
        (
            "unknown kid",
            SA,
            TestKey::generate(KeyKind::Rs256, "rsa-unknown").sign(&good),
            400,
            "unknown_key",
        ),
        ("not a JWT", SA, "hello".to_owned(), 400, "malformed_token"),
    ];
    run_table(&w.gateway, cases).await;
}

#[tokio::test]
async fn symmetric_keys_in_a_jwks_are_never_used() {
    let issuer = TestIssuer::start().await;
    let rsa = TestKey::generate(KeyKind::Rs256, "rsa-1");
    let secret = b"shared-secret-shared-secret-32by";
    issuer.set_raw_jwks(Some(json!({"keys": [
        {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": b64url(secret)},
        rsa.public_jwk(),
    ]})));
    let gateway = Gateway::start(&crate::support::gateway::scenario(&issuer)).await;
    let good = claims(&issuer.issuer(), SUBJECT, AUD);
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("positive control", SA, rsa.sign(&good), 200, ""),
        (
            "HS256 with the oct key",
            SA,
            Jwt::new(&json!({"alg":"HS256","kid":"hmac"}), &good).sign_hmac("HS256", secret),
            400,
            "unsupported_algorithm",
        ),
        (
            "RS256 naming the oct key",
            SA,
            rsa.sign_raw(
                &json!({"alg":"RS256","kid":"hmac"}),
                good.to_string().as_bytes(),
            ),
            400,
            "unknown_key",
        ),
    ];
    run_table(&gateway, cases).await;
}

#[tokio::test]
async fn malformed_requests_get_their_own_errors() {
    let w = world().await;
    let token = w.rsa.sign(&claims(&w.issuer.issuer(), SUBJECT, AUD));
    let base = form(SA, &token);
    let urlencoded = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, &str, String, u16, &str, &str)> = vec![
        ("positive control", urlencoded, base.clone(), 200, "", ""),
        (
            "repeated parameter",
            urlencoded,
            format!("{base}&audience={SA}"),
            400,
            "invalid_request",
            "repeated_parameter",
        ),
        (
            "missing subject_token",
            urlencoded,
            base.replace(&format!("&subject_token={token}"), ""),
            400,
            "invalid_request",
            "missing_parameter",
        ),
        (
            "missing audience",
            urlencoded,
            base.replace(&format!("&audience={SA}"), ""),
            400,
            "invalid_request",
            "missing_parameter",
        ),
        (
            "unsupported grant_type",
            urlencoded,
            base.replace("grant-type:token-exchange", "grant-type:jwt-bearer"),
            400,
            "unsupported_grant_type",
            "unsupported_grant_type",
        ),
        (
            "unsupported requested_token_type",
            urlencoded,
            base.replace("token-type:access_token", "token-type:refresh_token"),
            400,
            "invalid_request",
            "unsupported_token_type",
        ),
        (
            "unsupported subject_token_type",
            urlencoded,
            base.replace("token-type:id_token", "token-type:saml2"),
            400,
            "invalid_request",
            "unsupported_token_type",
        ),
        (
            "json body",
            "application/json",
            json!({"grant_type": "x"}).to_string(),
            415,
            "invalid_request",
            "unsupported_media_type",
        ),
        (
            "no content type",
            "",
            base.clone(),
            415,
            "invalid_request",
            "unsupported_media_type",
        ),
        (
            "body over 64 KiB",
            urlencoded,
            format!("{base}&pad={}", "x".repeat(65 * 1024)),
            413,
            "invalid_request",
            "body_too_large",
        ),
    ];
    for (name, content_type, body, status, error, code) in cases {
        let reply = w.gateway.post_raw(content_type, body).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text);
        if status != 200 {
            assert_eq!(
                (reply.error(), reply.code()),
                (error, code),
                "{name}: {}",
                reply.text
            );
            assert!(!reply.text.contains(&token), "{name}: the token is echoed");
            assert_eq!(reply.headers["cache-control"], "no-store", "{name}");
        }
    }
    let get = w.gateway.get("/oauth/token").await;
    assert_eq!((get.status, get.error()), (405, "invalid_request"));
    assert_eq!(get.headers["allow"], "POST");
}

/// Runs `(name, service account, token, status, error_code)` rows against `gateway`.
async fn run_table(gateway: &Gateway, cases: Vec<(&str, &str, String, u16, &str)>) {
    for (name, account, token, status, code) in cases {
        let reply = gateway.exchange(account, &token).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text);
        if status == 200 {
            assert!(!reply.access_token().is_empty(), "{name}");
            continue;
        }
        assert_eq!(reply.code(), code, "{name}: {}", reply.text);
        let expected_error = match code {
            "unknown_service_account" => "invalid_target",
            _ => "invalid_grant",
        };
        assert_eq!(reply.error(), expected_error, "{name}");
        assert!(
            !reply.description().is_empty(),
            "{name}: a description names the rule"
        );
        assert!(!reply.text.contains(&token), "{name}: the token is echoed");
        assert!(reply.body.get("access_token").is_none(), "{name}");
    }
}
