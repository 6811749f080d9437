//! The JWKS cache against a real issuer: rotation, outages, single flight, and issuers that fail
//! in every way while a healthy issuer keeps working.

use std::time::Duration;

use crate::support::gateway::{AUD, SA, SUBJECT, scenario};
use crate::support::*;

#[tokio::test]
async fn a_rotated_key_is_accepted_after_one_refetch() {
    let issuer = TestIssuer::start().await;
    let old = TestKey::generate(KeyKind::Rs256, "2026-01");
    issuer.add_key(&old);
    let gateway = Gateway::start(&scenario(&issuer)).await;
    assert_eq!(
        gateway
            .exchange(SA, &issuer.token(&old, SUBJECT, AUD))
            .await
            .status,
        200
    );
    assert_eq!(issuer.jwks_fetches(), 1);

    // The issuer rotates: a new kid appears and tokens are signed with it.
    let new = TestKey::generate(KeyKind::Rs256, "2026-02");
    issuer.add_key(&new);
    issuer.remove_key("2026-01");
    let reply = gateway
        .exchange(SA, &issuer.token(&new, SUBJECT, AUD))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "exactly one refetch for the new kid"
    );

    // Within the cooldown, forged kids cannot make the gateway fetch again.
    for i in 0..5 {
        let forged = TestKey::generate(KeyKind::Es256, &format!("forged-{i}"));
        let reply = gateway
            .exchange(SA, &issuer.token(&forged, SUBJECT, AUD))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "unknown_key"),
            "{}",
            reply.text
        );
    }
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "unknown kids refetch at most once per cooldown"
    );
    assert_eq!(
        gateway
            .exchange(SA, &issuer.token(&new, SUBJECT, AUD))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_issuer_is_down() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let options = Options {
        // Keys go stale after 1 s and are unusable 3 s after the last good fetch.
        jwks: "default_ttl_seconds = 1\nmin_ttl_seconds = 1\nmax_ttl_seconds = 2\nmax_stale_seconds = 3\nrefetch_cooldown_seconds = 0\nfailure_backoff_seconds = 0".into(),
        ..Options::default()
    };
    let gateway = Gateway::start_with(&scenario(&issuer), options).await;
    assert_eq!(
        gateway
            .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
            .await
            .status,
        200
    );
    issuer.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Stale keys still verify while the issuer cannot be reached.
    let reply = gateway
        .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // A kid the gateway has never seen cannot be checked: a retryable error, not "invalid token".
    let unseen = TestKey::generate(KeyKind::Es256, "k2");
    let reply = gateway
        .exchange(SA, &issuer.token(&unseen, SUBJECT, AUD))
        .await;
    assert_eq!(
        (reply.status, reply.error(), reply.code()),
        (503, "temporarily_unavailable", "issuer_unavailable"),
        "{}",
        reply.text
    );
    assert!(reply.headers.contains_key("retry-after"));

    // Past max_stale the keys are no longer trusted.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let reply = gateway
        .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (503, "issuer_unavailable"),
        "{}",
        reply.text
    );

    // The issuer comes back: the next exchange fetches and succeeds.
    issuer.restart().await;
    let reply = gateway
        .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn a_hundred_concurrent_first_requests_fetch_once() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Rs256, "k1").await;
    // Slow responses make sure the requests really overlap the fetch.
    issuer.set_jwks_behavior(Behavior::Slow(Duration::from_millis(300)));
    issuer.set_discovery_behavior(Behavior::Slow(Duration::from_millis(100)));
    let directory = format!(
        "{}{}{}",
        federation(
            "fed-discovery",
            &issuer.issuer(),
            &[AUD],
            "allow_insecure_http = true"
        ),
        account(SA),
        binding("fed-discovery", SA, SUBJECT),
    );
    let gateway = Gateway::start(&directory).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        tasks.spawn(gateway.exchange_later(SA, &issuer.token(&key, SUBJECT, AUD)));
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        if result.expect("task") == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 100);
    assert_eq!(issuer.discovery_fetches(), 1);
    assert_eq!(issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_failing_issuer_harms_only_its_own_federations() {
    let healthy = TestIssuer::start().await;
    let key = TestKey::generate(KeyKind::Rs256, "k1");
    healthy.add_key(&key);
    let other_host = TestIssuer::start().await;
    let cases = [
        ("server error", Behavior::Status(500), "issuer_unavailable"),
        ("invalid json", Behavior::InvalidJson, "issuer_keys_invalid"),
        ("empty key set", Behavior::EmptyKeys, "issuer_keys_invalid"),
        ("10 MiB body", Behavior::Huge, "issuer_keys_invalid"),
        (
            "slow",
            Behavior::Slow(Duration::from_secs(30)),
            "issuer_unavailable",
        ),
        ("trickle", Behavior::Trickle, "issuer_unavailable"),
        (
            "redirect to another host",
            Behavior::Redirect(other_host.jwks_url()),
            "issuer_keys_invalid",
        ),
        ("not found", Behavior::Status(404), "issuer_keys_invalid"),
    ];
    let mut issuers = Vec::new();
    let mut directory = format!(
        "{}{}",
        federation(
            "fed-healthy",
            &healthy.issuer(),
            &[AUD],
            &format!(
                "jwks_url = {:?}\nallow_insecure_http = true",
                healthy.jwks_url()
            )
        ),
        account(SA)
    ) + &binding("fed-healthy", SA, SUBJECT);
    for (i, (_, behavior, _)) in cases.iter().enumerate() {
        let issuer = TestIssuer::start().await;
        issuer.add_key(&key);
        issuer.set_jwks_behavior(behavior.clone());
        let id = format!("fed-broken-{i}");
        directory += &federation(
            &id,
            &issuer.issuer(),
            &[AUD],
            &format!(
                "jwks_url = {:?}\nallow_insecure_http = true",
                issuer.jwks_url()
            ),
        );
        directory += &binding(&id, SA, SUBJECT);
        issuers.push(issuer);
    }
    let options = Options {
        jwks: "timeout_seconds = 1\nconnect_timeout_seconds = 1".into(),
        ..Options::default()
    };
    let gateway = Gateway::start_with(&directory, options).await;
    for ((name, _, code), issuer) in cases.iter().zip(&issuers) {
        let started = std::time::Instant::now();
        let reply = gateway
            .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
            .await;
        assert_eq!(
            (reply.status, reply.error(), reply.code()),
            (503, "temporarily_unavailable", *code),
            "{name}: {}",
            reply.text
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: took {:?}",
            started.elapsed()
        );
        // The healthy issuer is unaffected, in the same moment.
        let reply = gateway
            .exchange(SA, &healthy.token(&key, SUBJECT, AUD))
            .await;
        assert_eq!(reply.status, 200, "{name}: healthy issuer: {}", reply.text);
    }
    assert_eq!(
        other_host.jwks_fetches(),
        0,
        "a redirect to another host is never followed"
    );
}

#[tokio::test]
async fn discovery_must_name_the_issuer_and_keep_keys_on_its_host() {
    let key = TestKey::generate(KeyKind::Rs256, "k1");
    let elsewhere = TestIssuer::start().await;
    elsewhere.add_key(&key);
    let foreign_jwks = TestIssuer::start().await;
    foreign_jwks.add_key(&key);
    // The discovery document points at another host's JWKS. (Two loopback servers differ only by
    // port, so the check is exercised through the issuer's name: the document claims another one.)
    let lying = TestIssuer::start().await;
    lying.add_key(&key);
    lying.set_discovery_issuer(Some("https://accounts.example".into()));
    let directory = format!(
        "{}{}{}{}",
        federation(
            "fed-lying",
            &lying.issuer(),
            &[AUD],
            "allow_insecure_http = true"
        ),
        federation(
            "fed-elsewhere",
            &elsewhere.issuer(),
            &[AUD],
            "allow_insecure_http = true"
        ),
        account(SA),
        binding("fed-lying", SA, SUBJECT) + &binding("fed-elsewhere", SA, SUBJECT),
    );
    elsewhere.set_discovery_jwks_uri(Some(format!(
        "http://localhost:{}/oauth/discovery/keys",
        foreign_jwks.issuer().rsplit(':').next().unwrap()
    )));
    let gateway = Gateway::start(&directory).await;
    let reply = gateway.exchange(SA, &lying.token(&key, SUBJECT, AUD)).await;
    assert_eq!(
        (reply.status, reply.code()),
        (503, "issuer_keys_invalid"),
        "{}",
        reply.text
    );
    assert!(
        reply.description().contains("names the issuer"),
        "{}",
        reply.description()
    );
    let reply = gateway
        .exchange(SA, &elsewhere.token(&key, SUBJECT, AUD))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (503, "issuer_keys_invalid"),
        "{}",
        reply.text
    );
    assert!(
        reply.description().contains("not on the issuer's host"),
        "{}",
        reply.description()
    );
    assert_eq!(foreign_jwks.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_healthy_issuer_is_served_while_a_slow_issuer_hangs() {
    let healthy = TestIssuer::start().await;
    let slow = TestIssuer::start().await;
    let key = TestKey::generate(KeyKind::Es256, "k1");
    healthy.add_key(&key);
    slow.add_key(&key);
    slow.set_jwks_behavior(Behavior::Trickle);
    let source =
        |i: &TestIssuer| format!("jwks_url = {:?}\nallow_insecure_http = true", i.jwks_url());
    let directory = federation("fed-healthy", &healthy.issuer(), &[AUD], &source(&healthy))
        + &federation("fed-slow", &slow.issuer(), &[AUD], &source(&slow))
        + &account(SA)
        + &binding("fed-healthy", SA, SUBJECT)
        + &binding("fed-slow", SA, SUBJECT);
    let gateway = Gateway::start_with(
        &directory,
        Options {
            jwks: "timeout_seconds = 4".into(),
            ..Options::default()
        },
    )
    .await;
    // Ten callers of the slow issuer wait on its one fetch...
    let mut waiting = tokio::task::JoinSet::new();
    for _ in 0..10 {
        waiting.spawn(gateway.exchange_later(SA, &slow.token(&key, SUBJECT, AUD)));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...while the healthy issuer's callers are served at once.
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let reply = gateway
            .exchange(SA, &healthy.token(&key, SUBJECT, AUD))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "healthy exchange took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        waiting.len(),
        10,
        "the slow issuer's callers are still waiting"
    );
    while let Some(status) = waiting.join_next().await {
        assert_eq!(status.expect("task"), 503);
    }
    assert_eq!(slow.jwks_fetches(), 1, "one fetch for all waiting callers");
}
