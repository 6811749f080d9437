//! Running it: metrics, the audit log, request ids, live reload under traffic, signing-key
//! rotation, SIGHUP and draining on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use wif_gateway::signing::{SigningAlgorithm, SigningKey};

use crate::exchange::verify_offline;
use crate::support::binary::{BIN, KillOnDrop, dev_config, dev_token, free_port, wait_ready};
use crate::support::gateway::{AUD, FED, SA, SUBJECT, form, scenario};
use crate::support::*;

const NEW_SUBJECT: &str = "project_path:demo/new:ref_type:branch:ref:main";

pub(crate) async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
        .collect()
}

#[tokio::test]
async fn metrics_name_outcomes_latency_keys_and_fetches() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let gateway = Gateway::start(&scenario(&issuer)).await;
    assert_eq!(
        gateway
            .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
            .await
            .status,
        200
    );
    assert_eq!(
        gateway
            .exchange("nobody", &issuer.token(&key, SUBJECT, AUD))
            .await
            .status,
        400
    );
    let response = gateway
        .client
        .get(format!("{}/metrics", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for needle in [
        &format!(
            "wif_gateway_exchanges_total{{outcome=\"issued\",error_code=\"\",federation=\"{FED}\",resource=\"\"}}"
        ),
        "wif_gateway_exchanges_total{outcome=\"refused\",error_code=\"unknown_service_account\"",
        "wif_gateway_exchange_duration_seconds_bucket{outcome=\"issued\",le=\"0.005\"}",
        "wif_gateway_jwks_fetches_total{source=\"jwks:",
        "wif_gateway_jwks_cache_lookups_total{result=\"miss\"}",
        "wif_gateway_jwks_key_set_age_seconds{source=\"jwks:",
        "wif_gateway_signing_key_info{kid=",
        "# TYPE wif_gateway_exchange_duration_seconds histogram",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[tokio::test]
async fn the_audit_log_records_every_decision_and_never_a_token() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Rs256, "k1").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let gateway = Gateway::start_with(
        &scenario(&issuer),
        Options {
            audit: format!("output = {:?}", path.display().to_string()),
            ..Options::default()
        },
    )
    .await;
    let token = issuer.token(&key, SUBJECT, AUD);
    let allowed = gateway
        .client
        .post(format!("{}/oauth/token", gateway.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Request-Id", "ci-job-42")
        .body(form(SA, &token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["x-request-id"],
        "ci-job-42",
        "the caller's request id is returned"
    );
    let access_token = allowed.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let denied = gateway
        .exchange(SA, &issuer.token(&key, "project_path:evil/app", AUD))
        .await;
    let generated = denied.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        generated.len(),
        32,
        "a request id is generated when none is given"
    );

    wait_for("two exchange lines", async || {
        audit_lines(&path)
            .iter()
            .filter(|l| l["event"] == "exchange")
            .count()
            == 2
    })
    .await;
    let lines = audit_lines(&path);
    let exchanges: Vec<&Value> = lines.iter().filter(|l| l["event"] == "exchange").collect();
    let allow = exchanges[0];
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["request_id"], "ci-job-42");
    assert_eq!(allow["client"], "127.0.0.1");
    assert_eq!(allow["federation_id"], FED);
    assert_eq!(allow["service_account_id"], SA);
    assert_eq!(
        (allow["iss"].as_str(), allow["sub"].as_str()),
        (Some(issuer.issuer().as_str()), Some(SUBJECT))
    );
    assert_eq!(
        (allow["kid"].as_str(), allow["alg"].as_str()),
        (Some("k1"), Some("RS256"))
    );
    assert!(
        allow["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "the caller token's jti"
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(allow["token_sha256"], hex.as_str());
    assert!(allow["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let deny = exchanges[1];
    assert_eq!(deny["decision"], "deny");
    assert_eq!(deny["request_id"], generated.as_str());
    assert_eq!(
        (deny["error"].as_str(), deny["error_code"].as_str()),
        (Some("invalid_grant"), Some("no_federated_credential"))
    );
    assert_eq!(deny["sub"], "project_path:evil/app");
    assert_eq!(
        deny["verified"], true,
        "the signature verified; only the binding is missing"
    );
    assert!(
        lines.iter().any(|l| l["event"] == "signing_keys"),
        "the signing keys in use at start are recorded"
    );

    let raw = std::fs::read_to_string(&path).unwrap();
    for secret in [token.as_str(), access_token.as_str()] {
        for part in secret.split('.') {
            assert!(!raw.contains(part), "the audit log holds part of a token");
        }
    }
}

#[tokio::test]
async fn reloads_valid_or_not_never_fail_an_exchange() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let directory = scenario(&issuer);
    let gateway = Gateway::start(&directory).await;
    assert_eq!(
        gateway
            .exchange(SA, &issuer.token(&key, NEW_SUBJECT, AUD))
            .await
            .code(),
        "no_federated_credential"
    );

    // Exchanges run continuously through every reload below.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let traffic = {
        let (client, url) = (
            gateway.client.clone(),
            format!("{}/oauth/token", gateway.url),
        );
        let tokens: Vec<String> = (0..4000)
            .map(|_| issuer.token(&key, SUBJECT, AUD))
            .collect();
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        tokio::spawn(async move {
            for token in tokens.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let status = client
                    .post(&url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form(SA, token))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                done.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    // A valid reload: a new binding appears.
    let extended = directory.clone() + &binding(FED, SA, NEW_SUBJECT);
    gateway.write_config(&extended, &Options::default());
    wait_for("the new binding", async || {
        gateway
            .exchange(SA, &issuer.token(&key, NEW_SUBJECT, AUD))
            .await
            .status
            == 200
    })
    .await;

    // An invalid reload: refused whole, the previous set keeps serving, still ready.
    gateway.write_raw_config("[server\nthis is not TOML");
    tokio::time::sleep(Duration::from_millis(600)).await;
    gateway.write_config(&(extended.clone() + "[[federated_credentials]]\nfederation_id = \"missing\"\nservice_account_id = \"x\"\nexternal_subject_id = \"y\"\n"), &Options::default());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        gateway
            .exchange(SA, &issuer.token(&key, NEW_SUBJECT, AUD))
            .await
            .status,
        200
    );
    assert_eq!(gateway.get("/readyz").await.status, 200);
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("wif_gateway_config_reloads_total{result=\"error\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wif_gateway_config_reloads_total{result=\"ok\"}"),
        "{metrics}"
    );

    // Back to the original set: the binding is gone again.
    gateway.write_config(&directory, &Options::default());
    wait_for("the binding to be removed", async || {
        gateway
            .exchange(SA, &issuer.token(&key, NEW_SUBJECT, AUD))
            .await
            .status
            == 400
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(done > 50, "only {done} exchanges ran");
    assert_eq!(
        failed, 0,
        "{failed} of {done} exchanges failed during reloads"
    );
}

/// Writes a new signing key of `alg` to `dir/name`; returns its kid and path.
fn write_signing_key(dir: &std::path::Path, name: &str, alg: SigningAlgorithm) -> (String, String) {
    let (key, pem) = SigningKey::generate(alg).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    (key.kid().to_owned(), path.display().to_string())
}

/// Options whose `[signing]` has the key file `active` and the `published` key files.
fn signing(active: &str, published: &[&str]) -> Options {
    Options {
        signing: Some(format!(
            "key_file = {active:?}\npublished_key_files = {published:?}"
        )),
        ..Options::default()
    }
}

/// The kids of a JWKS document, in order.
fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn rotating_the_signing_key_never_breaks_issued_tokens() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let dir = tempfile::tempdir().unwrap();
    let (kid_a, path_a) = write_signing_key(dir.path(), "a.pem", SigningAlgorithm::ES256);
    let (kid_b, path_b) = write_signing_key(dir.path(), "b.pem", SigningAlgorithm::EdDSA);
    let directory = scenario(&issuer);
    // Before: A signs, B is published ahead of its turn.
    let gateway = Gateway::start_with(&directory, signing(&path_a, &[&path_b])).await;
    assert_eq!(
        kids(&gateway.get("/.well-known/jwks.json").await.body),
        [kid_a.clone(), kid_b.clone()]
    );
    let before = gateway
        .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
        .await
        .access_token()
        .to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&before).unwrap().kid.as_deref(),
        Some(kid_a.as_str())
    );

    // Rotate: B signs, A stays published until tokens it signed have expired.
    gateway.write_config(&directory, &signing(&path_b, &[&path_a]));
    wait_for("B to sign", async || {
        let token = gateway
            .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
            .await
            .access_token()
            .to_owned();
        jsonwebtoken::decode_header(&token).is_ok_and(|h| h.kid.as_deref() == Some(kid_b.as_str()))
    })
    .await;
    assert_eq!(
        kids(&gateway.get("/.well-known/jwks.json").await.body),
        [kid_b.clone(), kid_a.clone()]
    );
    verify_offline(&gateway, &before).await;
    let after = gateway
        .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
        .await
        .access_token()
        .to_owned();
    verify_offline(&gateway, &after).await;

    // Retire A.
    gateway.write_config(&directory, &signing(&path_b, &[]));
    wait_for("A to be retired", async || {
        kids(&gateway.get("/.well-known/jwks.json").await.body) == [kid_b.clone()]
    })
    .await;
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains(&format!(
            "wif_gateway_signing_key_info{{kid=\"{kid_b}\",alg=\"EdDSA\",state=\"active\"}} 1"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    issuer.set_jwks_behavior(Behavior::Slow(Duration::from_millis(800)));
    let gateway = Gateway::start(&scenario(&issuer)).await;
    let url = gateway.url.clone();
    let in_flight = tokio::spawn(gateway.exchange_later(SA, &issuer.token(&key, SUBJECT, AUD)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    gateway.stop().await;
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the request in flight was answered"
    );
    let refused = reqwest::Client::new()
        .get(format!("{url}/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "no new connections after shutdown");
}

/// The dev binary on `port`, with `config`; killed if the test fails.
fn spawn_dev(config: &std::path::Path, port: u16, stderr: std::process::Stdio) -> KillOnDrop {
    KillOnDrop::spawn(
        std::process::Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--config",
            ])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(stderr),
    )
}

#[tokio::test]
async fn sighup_reloads_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dev_config(dir.path());
    let dev = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[server]\n", "[server]\nwatch_config = false\n");
    std::fs::write(&config, &dev).unwrap();
    let mut child = spawn_dev(&config, port, std::process::Stdio::null());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let exchange = async |sub: &str| {
        let jwt = dev_token(&client, &base, sub).await;
        client
            .post(format!("{base}/oauth/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form("aje0devserviceacc001", &jwt))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(exchange("ci:new").await, 400);
    std::fs::write(&config, dev + "\n[[federated_credentials]]\nfederation_id = \"aje0devfederation001\"\nservice_account_id = \"aje0devserviceacc001\"\nexternal_subject_id = \"ci:new\"\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        exchange("ci:new").await,
        400,
        "file changes are not watched in this config"
    );
    child.signal("HUP");
    wait_for("the reload", async || exchange("ci:new").await == 200).await;
    assert!(child.terminate().await.success());
}

#[tokio::test]
async fn only_the_configuration_files_trigger_a_reload() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let directory = scenario(&issuer);
    // The audit file lives in the config's own directory and is written on every exchange.
    let options = Options {
        audit: "output = \"audit.log\"".into(),
        ..Options::default()
    };
    let gateway = Gateway::start_with(&directory, options.clone()).await;
    let audit = gateway.dir.path().join("audit.log");
    let reloads = || {
        audit_lines(&audit)
            .iter()
            .filter(|l| l["event"] == "config_reload")
            .count()
    };
    for i in 0..20 {
        assert_eq!(
            gateway
                .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
                .await
                .status,
            200
        );
        std::fs::write(
            gateway.dir.path().join("gateway.log"),
            format!("line {i}\n"),
        )
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        reloads(),
        0,
        "logs and the audit file beside the config caused a reload"
    );
    gateway.write_config(&directory, &options);
    wait_for("one reload", async || reloads() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reloads(), 1, "one change, one reload");
}

#[tokio::test]
async fn refusals_carry_their_federation_in_metrics_and_audit() {
    // A federation id no other test uses: the metrics recorder is shared by the whole process.
    const FED_ID: &str = "fed-refusal-labels";
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let directory = format!(
        "{}{}{}",
        federation(
            FED_ID,
            &issuer.issuer(),
            &[AUD],
            &format!(
                "jwks_url = {:?}\nallow_insecure_http = true",
                issuer.jwks_url()
            )
        ),
        account(SA),
        binding(FED_ID, SA, SUBJECT)
    );
    let gateway = Gateway::start_with(
        &directory,
        Options {
            audit: "output = \"audit.log\"".into(),
            ..Options::default()
        },
    )
    .await;
    let audit = gateway.dir.path().join("audit.log");

    // Signed by a key the issuer never published, under the kid of one it did.
    let forger = TestKey::generate(KeyKind::Es256, "k1");
    let forged = forger.sign(&claims(&issuer.issuer(), SUBJECT, AUD));
    // A genuine token whose signature was altered.
    let genuine = issuer.token(&key, SUBJECT, AUD);
    let (signed, signature) = genuine.rsplit_once('.').unwrap();
    let altered = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{signed}.{altered}{}", &signature[1..]);
    let cases = [
        (
            issuer.token(&key, SUBJECT, "https://other.example.com"),
            "audience_mismatch",
        ),
        (forged, "bad_signature"),
        (tampered, "bad_signature"),
        (
            issuer.token(&key, "project_path:evil/app", AUD),
            "no_federated_credential",
        ),
    ];
    for (token, code) in &cases {
        let reply = gateway.exchange(SA, token).await;
        assert_eq!((reply.status, reply.code()), (400, *code), "{}", reply.text);
    }

    let metrics = gateway.metrics().await;
    for (code, count) in [
        ("audience_mismatch", 1),
        ("bad_signature", 2),
        ("no_federated_credential", 1),
    ] {
        let series = format!(
            "wif_gateway_exchanges_total{{outcome=\"refused\",error_code=\"{code}\",federation=\"{FED_ID}\",resource=\"\"}} {count}"
        );
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} missing from:\n{metrics}"
        );
    }

    wait_for("four refusals audited", async || {
        audit_lines(&audit)
            .iter()
            .filter(|l| l["event"] == "exchange")
            .count()
            == cases.len()
    })
    .await;
    let lines = audit_lines(&audit);
    let denials: Vec<&Value> = lines.iter().filter(|l| l["event"] == "exchange").collect();
    for (line, (_, code)) in denials.iter().zip(&cases) {
        assert_eq!(
            (line["decision"].as_str(), line["error_code"].as_str()),
            (Some("deny"), Some(*code))
        );
        assert_eq!(
            line["federation_id"], FED_ID,
            "the audit line of a {code} refusal names its federation: {line}"
        );
    }
}

#[tokio::test]
async fn refusals_and_refused_reloads_are_audited_with_a_description() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let gateway = Gateway::start_with(
        &scenario(&issuer),
        Options {
            audit: "output = \"audit.log\"".into(),
            ..Options::default()
        },
    )
    .await;
    let audit = gateway.dir.path().join("audit.log");
    let reply = gateway
        .exchange(SA, &issuer.token(&key, "project_path:evil/app", AUD))
        .await;
    assert_eq!(reply.code(), "no_federated_credential");
    gateway.write_raw_config("[server\nthis is not TOML");

    let denial = |lines: &[Value]| {
        lines
            .iter()
            .find(|l| l["event"] == "exchange" && l["decision"] == "deny")
            .cloned()
    };
    let refused_reload = |lines: &[Value]| {
        lines
            .iter()
            .find(|l| l["event"] == "config_reload" && l["result"] == "error")
            .cloned()
    };
    wait_for("the refusal and the refused reload audited", async || {
        let lines = audit_lines(&audit);
        denial(&lines).is_some() && refused_reload(&lines).is_some()
    })
    .await;
    let lines = audit_lines(&audit);
    for line in [denial(&lines).unwrap(), refused_reload(&lines).unwrap()] {
        assert!(
            line["description"].as_str().is_some_and(|d| !d.is_empty()),
            "no description in {line}"
        );
        assert!(line.get("reason").is_none(), "a reason field in {line}");
    }
    assert!(
        denial(&lines).unwrap()["description"]
            .as_str()
            .unwrap()
            .contains("project_path:evil/app"),
        "the description names the subject"
    );
}

#[tokio::test]
async fn a_key_source_that_leaves_the_directory_leaves_the_metrics() {
    let (leaving, leaving_key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let (staying, staying_key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let source = |issuer: &TestIssuer| {
        format!(
            "jwks_url = {:?}\nallow_insecure_http = true",
            issuer.jwks_url()
        )
    };
    let kept = format!(
        "{}{}{}",
        federation("fed-staying", &staying.issuer(), &[AUD], &source(&staying)),
        account(SA),
        binding("fed-staying", SA, SUBJECT)
    );
    let both = format!(
        "{kept}{}{}",
        federation("fed-leaving", &leaving.issuer(), &[AUD], &source(&leaving)),
        binding("fed-leaving", SA, SUBJECT)
    );
    let gateway = Gateway::start(&both).await;
    for (issuer, key) in [(&leaving, &leaving_key), (&staying, &staying_key)] {
        let reply = gateway.exchange(SA, &issuer.token(key, SUBJECT, AUD)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    // The series of a source: its label names the source's JWKS URL.
    let age_series = |metrics: &str, issuer: &TestIssuer| -> Option<String> {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("wif_gateway_jwks_key_set_age_seconds{")
                    && l.contains(&issuer.jwks_url())
            })
            .map(str::to_owned)
    };
    let metrics = gateway.metrics().await;
    assert!(
        age_series(&metrics, &leaving).is_some(),
        "no key set age for {}:\n{metrics}",
        leaving.jwks_url()
    );
    assert!(age_series(&metrics, &staying).is_some(), "{metrics}");

    gateway.write_config(&kept, &Options::default());
    wait_for("the federation to leave", async || {
        gateway
            .exchange(SA, &leaving.token(&leaving_key, SUBJECT, AUD))
            .await
            .code()
            == "unknown_issuer"
    })
    .await;
    let metrics = gateway.metrics().await;
    assert_eq!(
        age_series(&metrics, &leaving),
        None,
        "the key set age of a source no federation names is still exported"
    );
    assert!(
        age_series(&metrics, &staying).is_some(),
        "the remaining source lost its series:\n{metrics}"
    );
}

#[tokio::test]
async fn signing_key_info_lists_only_states_a_key_has_had() {
    let (issuer, _) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let dir = tempfile::tempdir().unwrap();
    let (kid_a, path_a) = write_signing_key(dir.path(), "a.pem", SigningAlgorithm::ES256);
    let (kid_b, path_b) = write_signing_key(dir.path(), "b.pem", SigningAlgorithm::EdDSA);
    let directory = scenario(&issuer);
    let info = |kid: &str, alg: &str, state: &str, value: u8| {
        format!(
            "wif_gateway_signing_key_info{{kid=\"{kid}\",alg=\"{alg}\",state=\"{state}\"}} {value}"
        )
    };
    let has = async |gateway: &Gateway, series: &str| {
        gateway.metrics().await.lines().any(|l| l == series)
    };
    // A signs alone.
    let gateway = Gateway::start_with(&directory, signing(&path_a, &[])).await;
    assert!(has(&gateway, &info(&kid_a, "ES256", "active", 1)).await);
    // B signs, A stays published.
    gateway.write_config(&directory, &signing(&path_b, &[&path_a]));
    wait_for("A to be published only", async || {
        has(&gateway, &info(&kid_a, "ES256", "published", 1)).await
    })
    .await;
    // A is retired: B signs alone.
    gateway.write_config(&directory, &signing(&path_b, &[]));
    wait_for("A to be retired", async || {
        has(&gateway, &info(&kid_a, "ES256", "published", 0)).await
    })
    .await;
    let metrics = gateway.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == info(&kid_b, "EdDSA", "active", 1)),
        "{metrics}"
    );
    let never = format!("kid=\"{kid_b}\",alg=\"EdDSA\",state=\"published\"");
    assert!(
        !metrics.contains(&never),
        "B was never published alone, yet {never} is exported:\n{metrics}"
    );
}

#[tokio::test]
async fn sigterm_stops_the_binary_with_a_last_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dev_config(dir.path());
    let log_path = dir.path().join("stderr.log");
    let mut child = spawn_dev(
        &config,
        port,
        std::fs::File::create(&log_path).unwrap().into(),
    );
    wait_ready(&reqwest::Client::new(), &format!("http://127.0.0.1:{port}")).await;
    let status = child.terminate().await;
    assert!(status.success(), "exit status {status}");
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let last = logs.lines().rev().find(|l| !l.trim().is_empty());
    assert!(
        last.is_some_and(|l| l.contains("shutdown complete")),
        "the last log line is not `shutdown complete`:\n{logs}"
    );
}
