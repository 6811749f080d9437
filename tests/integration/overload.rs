//! Overload: rate limits per client IP and per verified subject, load shedding, request and
//! header timeouts. Each limit is shown refusing while others keep being served.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::operate::{audit_lines, wait_for};
use crate::support::gateway::{AUD, SA, SUBJECT, scenario};
use crate::support::*;

const OTHER_SUBJECT: &str = "project_path:demo/other:ref_type:branch:ref:main";

#[tokio::test]
async fn a_flooding_subject_is_limited_while_others_are_served() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let directory = scenario(&issuer) + &binding(crate::support::gateway::FED, SA, OTHER_SUBJECT);
    let gateway = Gateway::start_with(
        &directory,
        Options {
            limits:
                "per_client_ip_per_second = 0\nper_subject_per_minute = 1\nper_subject_burst = 3"
                    .into(),
            ..Options::default()
        },
    )
    .await;
    // Forged tokens naming the other subject do not spend its budget.
    let forger = TestKey::generate(KeyKind::Es256, "k1");
    for _ in 0..5 {
        let reply = gateway
            .exchange(
                SA,
                &forger.sign(&claims(&issuer.issuer(), OTHER_SUBJECT, AUD)),
            )
            .await;
        assert_eq!(reply.code(), "bad_signature");
    }
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            gateway
                .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
                .await,
        );
    }
    assert_eq!(
        statuses.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 200, 429, 429, 429]
    );
    let limited = &statuses[3];
    assert_eq!(
        (limited.error(), limited.code()),
        ("slow_down", "rate_limited")
    );
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    for _ in 0..3 {
        let reply = gateway
            .exchange(SA, &issuer.token(&key, OTHER_SUBJECT, AUD))
            .await;
        assert_eq!(
            reply.status, 200,
            "the other subject is served: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn a_flooding_client_address_is_limited() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let gateway = Gateway::start_with(
        &scenario(&issuer),
        Options {
            limits:
                "per_client_ip_per_second = 1\nper_client_ip_burst = 2\nper_subject_per_minute = 0"
                    .into(),
            ..Options::default()
        },
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            gateway
                .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    // Health checks are never rate limited.
    assert_eq!(gateway.get("/healthz").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        gateway
            .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
            .await
            .status,
        200,
        "the budget refills"
    );
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_are_shed_at_once() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    issuer.set_jwks_behavior(Behavior::Slow(Duration::from_millis(1500)));
    let gateway = Gateway::start_with(
        &scenario(&issuer),
        Options {
            limits: "per_client_ip_per_second = 0\nper_subject_per_minute = 0\nmax_concurrent_requests = 1".into(),
            ..Options::default()
        },
    )
    .await;
    let first = tokio::spawn(gateway.exchange_later(SA, &issuer.token(&key, SUBJECT, AUD)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let shed = gateway
        .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
        .await;
    assert_eq!(
        (shed.status, shed.error(), shed.code()),
        (503, "temporarily_unavailable", "overloaded"),
        "{}",
        shed.text
    );
    assert!(shed.headers.contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "shed at once, not queued"
    );
    assert_eq!(
        gateway.get("/readyz").await.status,
        200,
        "probes are not shed"
    );
    assert_eq!(first.await.unwrap(), 200, "the request in flight completes");
}

#[tokio::test]
async fn slow_requests_time_out_with_a_json_error() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    issuer.set_jwks_behavior(Behavior::Slow(Duration::from_secs(10)));
    let gateway = Gateway::start_with(
        &scenario(&issuer),
        Options {
            server: "request_timeout_seconds = 1".into(),
            jwks: "timeout_seconds = 8".into(),
            ..Options::default()
        },
    )
    .await;
    let started = Instant::now();
    let reply = gateway
        .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (503, "request_timeout"),
        "{}",
        reply.text
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let gateway = Gateway::start_with(
        "",
        Options {
            server: "header_read_timeout_seconds = 1".into(),
            ..Options::default()
        },
    )
    .await;
    let addr = gateway.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /oauth/token HTTP/1.1\r\nHost: gateway\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was not closed within 5 s");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        started.elapsed()
    );
    // A well-behaved client on another connection is served meanwhile and after.
    assert_eq!(gateway.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_client_that_trickles_its_body_is_cut_off() {
    let gateway = Gateway::start_with(
        "",
        Options {
            server: "request_timeout_seconds = 1".into(),
            ..Options::default()
        },
    )
    .await;
    let addr = gateway.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /oauth/token HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered in time")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("request_timeout"), "{head}");
}

#[tokio::test]
async fn rate_limited_refusals_are_audited_verified_only_per_subject() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    // The audit line of the first rate-limited refusal by a gateway with `limits`. The first
    // exchange is allowed; the budget of one then runs out at once (a per-second budget could
    // refill between two slow exchanges, so a few more are sent until one is refused).
    let rate_limited = async |limits: &str| -> serde_json::Value {
        let gateway = Gateway::start_with(
            &scenario(&issuer),
            Options {
                limits: limits.into(),
                audit: "output = \"audit.log\"".into(),
                ..Options::default()
            },
        )
        .await;
        let audit = gateway.dir.path().join("audit.log");
        let first = gateway
            .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
            .await;
        assert_eq!(first.status, 200, "{}", first.text);
        let mut refused = None;
        for _ in 0..5 {
            let reply = gateway
                .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
                .await;
            if reply.status == 429 {
                refused = Some(reply);
                break;
            }
        }
        let refused = refused.expect("a rate-limited refusal");
        assert_eq!(refused.code(), "rate_limited", "{}", refused.text);
        let is_limited = |l: &serde_json::Value| {
            l["event"] == "exchange" && l["decision"] == "deny" && l["error_code"] == "rate_limited"
        };
        wait_for("the refusal audited", async || {
            audit_lines(&audit).iter().any(is_limited)
        })
        .await;
        audit_lines(&audit).into_iter().find(is_limited).unwrap()
    };

    let per_subject = rate_limited(
        "per_client_ip_per_second = 0\nper_subject_per_minute = 1\nper_subject_burst = 1",
    )
    .await;
    assert_eq!(per_subject["error_code"], "rate_limited");
    assert_eq!(
        per_subject["verified"], true,
        "the subject limit counts only verified tokens: {per_subject}"
    );
    assert_eq!(
        (per_subject["iss"].as_str(), per_subject["sub"].as_str()),
        (Some(issuer.issuer().as_str()), Some(SUBJECT)),
        "{per_subject}"
    );

    let per_client = rate_limited(
        "per_client_ip_per_second = 1\nper_client_ip_burst = 1\nper_subject_per_minute = 0",
    )
    .await;
    assert_eq!(per_client["error_code"], "rate_limited");
    assert_eq!(
        per_client["verified"], false,
        "the client limit refuses before anything is verified: {per_client}"
    );
}
