//! Issuers over real HTTPS ([`TlsFront`] with a test CA in front of a [`TestIssuer`]): a
//! federation's `ca_bundle` is trusted and nothing else is, redirects and discovery never lead
//! from https to plain http, and plain-http key sources need `allow_insecure_http`.

use crate::support::gateway::{AUD, FED, SA, SUBJECT};
use crate::support::issuer::JWKS_PATH;
use crate::support::tls::TlsFront;
use crate::support::*;

/// Federation [`FED`] for the issuer `front.url()` with these key-source lines (no
/// `allow_insecure_http`), service account [`SA`] and a binding of [`SUBJECT`].
fn https_scenario(front: &TlsFront, extra: &str) -> String {
    format!(
        "{}{}{}",
        federation(FED, &front.url(), &[AUD], extra),
        account(SA),
        binding(FED, SA, SUBJECT)
    )
}

/// `jwks_url` through the front, and `ca_bundle` when given.
fn jwks_url_lines(front: &TlsFront, ca_bundle: Option<&std::path::Path>) -> String {
    let mut lines = format!("jwks_url = {:?}", format!("{}{JWKS_PATH}", front.url()));
    if let Some(ca) = ca_bundle {
        lines.push_str(&format!("\nca_bundle = {:?}", ca.display().to_string()));
    }
    lines
}

/// A valid token from the https issuer `front.url()`.
fn https_token(front: &TlsFront, key: &TestKey) -> String {
    key.sign(&claims(&front.url(), SUBJECT, AUD))
}

/// An issuer with one ES256 key behind a fresh TLS front, and a directory holding its CA.
async fn https_issuer() -> (TestIssuer, TlsFront, TestKey, tempfile::TempDir) {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let front = TlsFront::start(&issuer).await;
    let dir = tempfile::tempdir().expect("temp dir");
    (issuer, front, key, dir)
}

#[tokio::test]
async fn an_https_issuer_signed_by_the_federations_ca_bundle_is_trusted() {
    let (issuer, front, key, dir) = https_issuer().await;
    let ca = front.write_ca(dir.path());
    let gateway = Gateway::start(&https_scenario(&front, &jwks_url_lines(&front, Some(&ca)))).await;
    let reply = gateway.exchange(SA, &https_token(&front, &key)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!reply.access_token().is_empty(), "{}", reply.text);
    assert_eq!(issuer.jwks_fetches(), 1);
    assert!(front.handshakes() >= 1, "the keys came through TLS");
    assert_eq!(front.failed_handshakes(), 0);
}

#[tokio::test]
async fn an_https_issuer_with_an_unknown_ca_is_refused() {
    let (issuer, front, key, _dir) = https_issuer().await;
    let gateway = Gateway::start(&https_scenario(&front, &jwks_url_lines(&front, None))).await;
    let reply = gateway.exchange(SA, &https_token(&front, &key)).await;
    assert_ne!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        (reply.status, reply.error(), reply.code()),
        (503, "temporarily_unavailable", "issuer_unavailable"),
        "{}",
        reply.text
    );
    let description = reply.description().to_lowercase();
    assert!(
        description.contains("certificate"),
        "the description names the certificate problem: {}",
        reply.text
    );
    assert_eq!(
        issuer.jwks_fetches(),
        0,
        "no request got through the TLS front"
    );
    assert_eq!(front.handshakes(), 0);
    assert!(front.failed_handshakes() >= 1, "the gateway did try TLS");
}

#[tokio::test]
async fn a_redirect_from_https_to_plain_http_is_not_followed() {
    let (issuer, front, key, dir) = https_issuer().await;
    let ca = front.write_ca(dir.path());
    // The redirect target is a second, plain-HTTP issuer publishing the same key: following the
    // redirect would succeed, and would show in its counter.
    let plain = TestIssuer::start().await;
    plain.add_key(&key);
    let targets = [
        // Same host name, plain http on the other server's port.
        format!("http://localhost:{}{JWKS_PATH}", plain.port()),
        // The plain server exactly as it is reachable.
        plain.jwks_url(),
        // Same host and port as the https URL: only the scheme differs.
        format!("http://localhost:{}{JWKS_PATH}", front.port()),
    ];
    for target in targets {
        issuer.set_jwks_behavior(Behavior::Redirect(target.clone()));
        let fetches_before = issuer.jwks_fetches();
        let gateway =
            Gateway::start(&https_scenario(&front, &jwks_url_lines(&front, Some(&ca)))).await;
        let reply = gateway.exchange(SA, &https_token(&front, &key)).await;
        assert_eq!(
            (reply.status, reply.error(), reply.code()),
            (503, "temporarily_unavailable", "issuer_keys_invalid"),
            "redirect to {target}: {}",
            reply.text
        );
        assert!(
            reply.description().contains("redirect"),
            "redirect to {target}: {}",
            reply.text
        );
        assert_eq!(
            issuer.jwks_fetches(),
            fetches_before + 1,
            "the https JWKS URL was asked once"
        );
        assert_eq!(
            plain.jwks_fetches(),
            0,
            "redirect to {target}: the plain-http target was never fetched"
        );
        assert_eq!(
            front.failed_handshakes(),
            0,
            "redirect to {target}: no plain-http request reached the TLS port"
        );
        gateway.stop().await;
    }
}

#[tokio::test]
async fn discovery_naming_a_plain_http_jwks_uri_is_refused() {
    let (issuer, front, key, dir) = https_issuer().await;
    let ca = front.write_ca(dir.path());
    issuer.set_discovery_issuer(Some(front.url()));
    // On the issuer's host name, and reachable: only the scheme is wrong.
    let jwks_uri = format!("http://localhost:{}{JWKS_PATH}", issuer.port());
    issuer.set_discovery_jwks_uri(Some(jwks_uri.clone()));
    let extra = format!("ca_bundle = {:?}", ca.display().to_string());
    let gateway = Gateway::start(&https_scenario(&front, &extra)).await;
    let reply = gateway.exchange(SA, &https_token(&front, &key)).await;
    assert_eq!(
        (reply.status, reply.error(), reply.code()),
        (503, "temporarily_unavailable", "issuer_keys_invalid"),
        "{}",
        reply.text
    );
    assert!(reply.description().contains("not https"), "{}", reply.text);
    assert!(reply.description().contains(&jwks_uri), "{}", reply.text);
    assert_eq!(issuer.discovery_fetches(), 1, "discovery went through TLS");
    assert_eq!(
        issuer.jwks_fetches(),
        0,
        "the plain-http jwks_uri was never fetched"
    );
}

#[tokio::test]
async fn discovery_naming_an_https_jwks_uri_on_the_issuers_host_works() {
    let (issuer, front, key, dir) = https_issuer().await;
    let ca = front.write_ca(dir.path());
    issuer.set_discovery_issuer(Some(front.url()));
    issuer.set_discovery_jwks_uri(Some(format!("{}{JWKS_PATH}", front.url())));
    let extra = format!("ca_bundle = {:?}", ca.display().to_string());
    let gateway = Gateway::start(&https_scenario(&front, &extra)).await;
    let reply = gateway.exchange(SA, &https_token(&front, &key)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(issuer.discovery_fetches(), 1);
    assert_eq!(issuer.jwks_fetches(), 1);
    assert_eq!(front.failed_handshakes(), 0);
}

#[test]
fn a_plain_http_key_source_needs_allow_insecure_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.toml");
    let config = |extra: &str| {
        format!(
            "[signing]\nkey_file = \"signing.pem\"\n\n{}{}{}",
            federation(FED, "http://127.0.0.1:9", &[AUD], extra),
            account(SA),
            binding(FED, SA, SUBJECT)
        )
    };
    let cases = [
        (
            "jwks_url",
            "jwks_url = \"http://127.0.0.1:9/oauth/discovery/keys\"",
        ),
        ("discovery", ""),
    ];
    for (name, extra) in cases {
        std::fs::write(&path, config(extra)).expect("write config");
        let problems = match wif_gateway::config::load(&path) {
            Ok(_) => panic!("{name}: a plain-http key source loaded without allow_insecure_http"),
            Err(e) => e.to_string(),
        };
        assert!(problems.contains("plain http"), "{name}: {problems}");
        assert!(problems.contains(FED), "{name}: {problems}");
        if name == "jwks_url" {
            assert!(problems.contains("jwks_url"), "{name}: {problems}");
        }

        // The same file with the explicit opt-in loads.
        std::fs::write(
            &path,
            config(&format!("{extra}\nallow_insecure_http = true")),
        )
        .expect("write config");
        if let Err(e) = wif_gateway::config::load(&path) {
            panic!("{name}: with allow_insecure_http = true: {e}");
        }
    }
}
