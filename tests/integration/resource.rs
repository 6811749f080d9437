//! Audience-restricted tokens through the real server: an RFC 8707 `resource` within
//! `[tokens] resources` (and a federation's narrower list) becomes the minted token's `aud`;
//! a verifier expecting another service refuses it; anything else answers `invalid_target`;
//! without `resource` the tutorial curl gets today's token.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::exchange::verify_offline;
use crate::operate::{audit_lines, wait_for};
use crate::support::gateway::{AUD, FED, SA, SUBJECT, account, binding, form, scenario};
use crate::support::*;

const LOCKBOX: &str = "https://lockbox.example.com";
const REGISTRY: &str = "https://registry.example.com/v2";
/// Another federation of the same issuer, narrowed to [`REGISTRY`], and its account.
const NARROW_FED: &str = "ajefed000000000002";
const NARROW_SA: &str = "ajesa0000000000002";

fn options(audit: &std::path::Path) -> Options {
    Options {
        tokens: format!("resources = [{LOCKBOX:?}, {REGISTRY:?}]"),
        audit: format!("output = {:?}", audit.display().to_string()),
        ..Options::default()
    }
}

/// [`scenario`] plus [`NARROW_FED`], which allows only [`REGISTRY`] and binds [`SUBJECT`] to
/// [`NARROW_SA`].
fn directory(issuer: &TestIssuer) -> String {
    format!(
        "{}{}{}{}",
        scenario(issuer),
        federation(
            NARROW_FED,
            &issuer.issuer(),
            &[AUD],
            &format!(
                "jwks_url = {:?}\nallow_insecure_http = true\nresources = [{REGISTRY:?}]",
                issuer.jwks_url()
            )
        ),
        account(NARROW_SA),
        binding(NARROW_FED, NARROW_SA, SUBJECT)
    )
}

fn with_resource(audience: &str, token: &str, resource: &str) -> String {
    let resource: String = form_urlencoded::byte_serialize(resource.as_bytes()).collect();
    format!("{}&resource={resource}", form(audience, token))
}

/// Verifies `token` offline as the service `expected` would: signature, issuer and `aud`.
async fn verify_as(gateway: &Gateway, token: &str, expected: &str) -> Result<Value, String> {
    let jwks: JwkSet = gateway
        .client
        .get(format!("{}/.well-known/jwks.json", gateway.url))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    let header = jsonwebtoken::decode_header(token).expect("header");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid published");
    let key = DecodingKey::from_jwk(jwk).expect("key");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[expected]);
    validation.set_issuer(&[gateway.url.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| format!("{:?}", e.kind()))
}

#[tokio::test]
async fn a_token_for_one_service_is_refused_by_another_and_the_default_is_unchanged() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let gateway = Gateway::start_with(&directory(&issuer), options(&audit)).await;
    let token = issuer.token(&key, SUBJECT, AUD);

    // The tutorial curl: no resource, today's token and today's body.
    let default = gateway.exchange(SA, &token).await;
    assert_eq!(default.status, 200, "{}", default.text);
    assert!(default.body.get("resource").is_none(), "{}", default.text);
    let claims = verify_offline(&gateway, default.access_token()).await;
    assert_eq!(claims["aud"], gateway.url.as_str(), "the default audience");
    assert!(
        verify_as(&gateway, default.access_token(), LOCKBOX)
            .await
            .is_err()
    );

    let lockbox = gateway.post_form(&with_resource(SA, &token, LOCKBOX)).await;
    assert_eq!(lockbox.status, 200, "{}", lockbox.text);
    assert_eq!(lockbox.body["resource"], LOCKBOX);
    assert_eq!(lockbox.headers["cache-control"], "no-store");
    let claims = verify_as(&gateway, lockbox.access_token(), LOCKBOX)
        .await
        .expect("the target service accepts it");
    assert_eq!(claims["aud"], LOCKBOX, "one string, the resource");
    assert_eq!(claims["sub"], SA);
    assert_eq!(claims["client_id"], FED);
    for other in [REGISTRY, gateway.url.as_str()] {
        let refused = verify_as(&gateway, lockbox.access_token(), other).await;
        assert_eq!(
            refused.err().as_deref(),
            Some("InvalidAudience"),
            "a verifier expecting {other} refuses a token for {LOCKBOX}"
        );
    }

    wait_for("two allow lines", async || {
        audit_lines(&audit)
            .iter()
            .filter(|l| l["event"] == "exchange")
            .count()
            == 2
    })
    .await;
    let lines = audit_lines(&audit);
    let exchanges: Vec<&Value> = lines.iter().filter(|l| l["event"] == "exchange").collect();
    assert!(exchanges[0].get("resource").is_none(), "{}", exchanges[0]);
    assert_eq!(exchanges[1]["decision"], "allow");
    assert_eq!(exchanges[1]["resource"], LOCKBOX);

    let metrics = gateway.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("wif_gateway_exchanges_total")
                && l.contains("outcome=\"issued\"")
                && l.contains(&format!("resource=\"{LOCKBOX}\""))),
        "{metrics}"
    );
}

#[tokio::test]
async fn targets_outside_the_lists_answer_invalid_target() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let gateway = Gateway::start_with(&directory(&issuer), options(&audit)).await;
    let token = issuer.token(&key, SUBJECT, AUD);
    let cases = [
        (
            "not in [tokens] resources",
            with_resource(SA, &token, "https://other.example.com"),
            "resource_not_allowed",
            vec!["\"https://other.example.com\"", LOCKBOX, REGISTRY],
        ),
        (
            "in [tokens] resources, not in the federation's",
            with_resource(NARROW_SA, &token, LOCKBOX),
            "resource_not_allowed",
            vec![
                LOCKBOX,
                "federation \"ajefed000000000002\" allows [\"https://registry.example.com/v2\"]",
            ],
        ),
        (
            "several",
            format!(
                "{}&resource={}",
                with_resource(SA, &token, LOCKBOX),
                form_urlencoded::byte_serialize(REGISTRY.as_bytes()).collect::<String>()
            ),
            "several_resources",
            vec!["2 times"],
        ),
        (
            "relative",
            with_resource(SA, &token, "/secrets"),
            "malformed_resource",
            vec!["\"/secrets\"", "absolute URI"],
        ),
        (
            "fragment",
            with_resource(SA, &token, "https://lockbox.example.com#x"),
            "malformed_resource",
            vec!["fragment"],
        ),
    ];
    for (name, body, code, mentions) in cases {
        let reply = gateway.post_form(&body).await;
        assert_eq!(reply.status, 400, "{name}: {}", reply.text);
        assert_eq!(reply.error(), "invalid_target", "{name}");
        assert_eq!(reply.code(), code, "{name}");
        assert_eq!(reply.headers["cache-control"], "no-store", "{name}");
        for m in mentions {
            assert!(
                reply.description().contains(m),
                "{name}: {}",
                reply.description()
            );
        }
        assert!(!reply.text.contains(&token), "{name} echoes the token");
        assert!(reply.body.get("access_token").is_none(), "{name}");
    }

    // Narrowed: the federation's own target works, and so does its default token.
    let registry = gateway
        .post_form(&with_resource(NARROW_SA, &token, REGISTRY))
        .await;
    assert_eq!(registry.status, 200, "{}", registry.text);
    let claims = verify_as(&gateway, registry.access_token(), REGISTRY)
        .await
        .expect("registry accepts it");
    assert_eq!(claims["client_id"], NARROW_FED);
    let default = gateway.exchange(NARROW_SA, &token).await;
    assert_eq!(default.status, 200, "{}", default.text);

    wait_for("the refusal lines", async || {
        audit_lines(&audit)
            .iter()
            .filter(|l| l["event"] == "exchange")
            .count()
            == 7
    })
    .await;
    let lines = audit_lines(&audit);
    let refused = lines
        .iter()
        .find(|l| l["error_code"] == "resource_not_allowed")
        .expect("a refusal line");
    assert_eq!(refused["error"], "invalid_target");
    assert_eq!(refused["resource"], "https://other.example.com");
    assert_eq!(refused["verified"], true);
    assert_eq!(refused["federation_id"], FED);
}
