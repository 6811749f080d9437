//! Successful exchanges: one per caller key type, each key source (jwks_url, discovery, inline),
//! the request variants real clients send, and offline verification of the minted token by an
//! independent JWT implementation, as a downstream service would do it.

use jsonwebtoken::jwk::{JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::support::gateway::{AUD, FED, SA, SUBJECT, form, scenario};
use crate::support::*;

/// Verifies a minted token as a downstream service would: discovery → jwks_uri → key by kid.
pub(crate) async fn verify_offline(gateway: &Gateway, token: &str) -> Value {
    let discovery = gateway.get("/.well-known/openid-configuration").await;
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.body["issuer"], gateway.url.as_str());
    let jwks_uri = discovery.body["jwks_uri"].as_str().expect("jwks_uri");
    assert_eq!(jwks_uri, format!("{}/.well-known/jwks.json", gateway.url));
    let jwks: JwkSet = gateway
        .client
        .get(jwks_uri)
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 typ");
    let kid = header.kid.clone().expect("kid");
    let jwk = jwks.find(&kid).expect("kid published");
    assert_eq!(
        jwk.thumbprint(ThumbprintHash::SHA256).expect("thumbprint"),
        kid,
        "kid is the RFC 7638 thumbprint"
    );
    let key = DecodingKey::from_jwk(jwk).expect("key");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[gateway.url.as_str()]);
    validation.set_issuer(&[gateway.url.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf", "iat"]);
    validation.validate_nbf = true;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("minted token verifies offline")
        .claims
}

#[tokio::test]
async fn each_caller_key_type_is_exchanged_and_the_result_verifies_offline() {
    let issuer = TestIssuer::start().await;
    let gateway = Gateway::start(&scenario(&issuer)).await;
    // All keys are published before the first exchange: one fetch serves them all.
    let keys: Vec<(KeyKind, TestKey)> = KeyKind::ALL
        .into_iter()
        .map(|kind| (kind, TestKey::generate(kind, &format!("k-{kind:?}"))))
        .collect();
    for (_, key) in &keys {
        issuer.add_key(key);
    }
    for (kind, key) in &keys {
        let token = issuer.token(key, SUBJECT, AUD);
        let reply = gateway.exchange(SA, &token).await;
        assert_eq!(reply.status, 200, "{kind:?}: {}", reply.text);
        assert_eq!(reply.body["token_type"], "Bearer");
        assert_eq!(
            reply.body["issued_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        assert_eq!(reply.body["expires_in"], 3600);
        assert_eq!(reply.headers["cache-control"], "no-store");
        let claims = verify_offline(&gateway, reply.access_token()).await;
        assert_eq!(claims["sub"], SA);
        assert_eq!(claims["client_id"], FED);
        assert_eq!(claims["act"]["sub"], SUBJECT);
        assert_eq!(claims["act"]["iss"], issuer.issuer().as_str());
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            3600
        );
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    }
    assert_eq!(issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn minted_tokens_can_be_eddsa_or_rs256() {
    for alg in ["EdDSA", "RS256"] {
        let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
        let gateway = Gateway::start_with(
            &scenario(&issuer),
            Options {
                signing_alg: alg,
                ..Options::default()
            },
        )
        .await;
        let reply = gateway
            .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let header = jsonwebtoken::decode_header(reply.access_token()).expect("header");
        let expected = if alg == "EdDSA" {
            Algorithm::EdDSA
        } else {
            Algorithm::RS256
        };
        assert_eq!(header.alg, expected);
        verify_offline(&gateway, reply.access_token()).await;
    }
}

#[tokio::test]
async fn keys_come_from_discovery_or_inline_jwks() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Rs256, "rsa-1").await;
    let inline_jwks = serde_json::json!({ "keys": [key.public_jwk()] }).to_string();
    let directory = format!(
        "{}{}{}{}{}",
        // Discovery: no jwks_url, the issuer's document names a non-standard jwks path.
        federation(
            "fed-discovery",
            &issuer.issuer(),
            &["aud-discovery"],
            "allow_insecure_http = true"
        ),
        // Inline: a private cluster whose issuer nobody can reach.
        federation(
            "fed-inline",
            "https://kubernetes.default.svc.cluster.local",
            &["aud-inline"],
            &format!("jwks = {inline_jwks:?}")
        ),
        account(SA),
        binding("fed-discovery", SA, SUBJECT),
        binding("fed-inline", SA, "system:serviceaccount:default:app"),
    );
    let gateway = Gateway::start(&directory).await;
    let reply = gateway
        .exchange(SA, &issuer.token(&key, SUBJECT, "aud-discovery"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(issuer.discovery_fetches(), 1);
    assert_eq!(issuer.jwks_fetches(), 1);

    let mut claims = claims(
        "https://kubernetes.default.svc.cluster.local",
        "system:serviceaccount:default:app",
        "aud-inline",
    );
    claims["kubernetes.io"] = serde_json::json!({"namespace": "default"});
    let reply = gateway.exchange(SA, &key.sign(&claims)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(issuer.jwks_fetches(), 1, "inline keys are never fetched");
}

#[tokio::test]
async fn request_variants_real_clients_send_are_accepted() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let gateway = Gateway::start(&scenario(&issuer)).await;
    let token = issuer.token(&key, SUBJECT, AUD);
    let base = form(SA, &token);
    let cases = [
        (
            "charset parameter",
            "application/x-www-form-urlencoded; charset=utf-8",
            base.clone(),
        ),
        (
            "upper-case media type",
            "Application/X-WWW-Form-Urlencoded",
            base.clone(),
        ),
        (
            "token file with newline",
            "application/x-www-form-urlencoded",
            form(SA, &format!("{token}%0A")),
        ),
        (
            "jwt token type",
            "application/x-www-form-urlencoded",
            base.replace("token-type:id_token", "token-type:jwt"),
        ),
        (
            "unknown fields",
            "application/x-www-form-urlencoded",
            format!("{base}&client_id=ci&scope=openid"),
        ),
        (
            "no requested_token_type",
            "application/x-www-form-urlencoded",
            base.replace(
                "&requested_token_type=urn:ietf:params:oauth:token-type:access_token",
                "",
            ),
        ),
    ];
    for (name, content_type, body) in cases {
        let reply = gateway.post_raw(content_type, body).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text);
    }
}

#[tokio::test]
async fn any_of_several_federations_with_one_issuer_grants() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Rs256, "k1").await;
    let source = format!(
        "jwks_url = {:?}\nallow_insecure_http = true",
        issuer.jwks_url()
    );
    let directory = format!(
        "{}{}{}{}{}{}",
        federation("fed-folder-a", &issuer.issuer(), &["aud-a"], &source),
        federation("fed-folder-b", &issuer.issuer(), &["aud-b"], &source),
        federation(
            "fed-disabled",
            &issuer.issuer(),
            &["aud-b"],
            &format!("{source}\nenabled = false")
        ),
        account("sa-a"),
        account("sa-b"),
        binding("fed-folder-b", "sa-b", SUBJECT),
    );
    let gateway = Gateway::start(&directory).await;
    let reply = gateway
        .exchange("sa-b", &issuer.token(&key, SUBJECT, "aud-b"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let claims = verify_offline(&gateway, reply.access_token()).await;
    assert_eq!(claims["client_id"], "fed-folder-b");
    // Trusted by federation a, but only b binds the subject, and only to sa-b.
    let reply = gateway
        .exchange("sa-a", &issuer.token(&key, SUBJECT, "aud-a"))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (400, "no_federated_credential"),
        "{}",
        reply.text
    );
    assert_eq!(
        issuer.jwks_fetches(),
        1,
        "federations sharing a key source share one cache entry"
    );
}

#[tokio::test]
async fn health_readiness_and_unknown_paths() {
    let gateway = Gateway::start("").await;
    let health = gateway.get("/healthz").await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = gateway.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["status"], "ready");
    let missing = gateway.get("/nope").await;
    assert_eq!((missing.status, missing.error()), (404, "not_found"));
    // The dev issuer does not exist unless the config enables it.
    let dev = gateway
        .get("/dev/issuer/.well-known/openid-configuration")
        .await;
    assert_eq!(dev.status, 404);
    let gateway_jwks = gateway.get("/.well-known/jwks.json").await;
    assert_eq!(gateway_jwks.body["keys"].as_array().map(Vec::len), Some(1));
    gateway.stop().await;
}

#[tokio::test]
async fn discovery_publishes_only_what_the_gateway_does() {
    let gateway = Gateway::start("").await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let reply = gateway.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        let doc = &reply.body;
        assert_eq!(doc["issuer"], gateway.url.as_str(), "{path}: {doc}");
        assert_eq!(
            doc["jwks_uri"],
            format!("{}/.well-known/jwks.json", gateway.url),
            "{path}: {doc}"
        );
        assert_eq!(
            doc["token_endpoint"],
            format!("{}/oauth/token", gateway.url),
            "{path}: {doc}"
        );
        assert_eq!(
            doc["grant_types_supported"],
            serde_json::json!(["urn:ietf:params:oauth:grant-type:token-exchange"]),
            "{path}: {doc}"
        );
        // No authorization endpoint and no ID tokens: nothing to advertise about either.
        for absent in [
            "response_types_supported",
            "id_token_signing_alg_values_supported",
        ] {
            assert!(
                doc.get(absent).is_none(),
                "{path} advertises {absent}: {doc}"
            );
        }
    }
}
