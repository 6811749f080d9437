//! The gateway's own TLS listener (`[server.tls]`): the same routes as the plain listener over
//! HTTP/1.1 and HTTP/2 (ALPN), TLS 1.2 and 1.3, a certificate that verifies for `127.0.0.1` and
//! `localhost` only against the CA it came from, a new pair served to new connections after a
//! reload while open connections keep theirs, a broken pair refused (by `check-config`, at start
//! and on reload, the old one serving on), and the development CA of `config/dev.toml` made once
//! and reused. No key material ever shows in an error, an audit line or a log line.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Version;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use wif_gateway::tls::fingerprint;

use crate::operate::{audit_lines, wait_for};
use crate::support::binary::{BIN, KillOnDrop, dev_config, dev_token};
use crate::support::gateway::{AUD, Reply, SA, SUBJECT, form, scenario};
use crate::support::tls::{TestCa, replace_file};
use crate::support::*;

/// `[server.tls]` lines of a gateway making its development CA in `tls/` beside its config.
const DEV_CA: &str =
    "cert_file = \"tls/server.pem\"\nkey_file = \"tls/server-key.pem\"\ngenerate_dev_ca = true";

/// A gateway serving `directory` with a TLS listener whose development CA it made, and that CA's
/// certificate (PEM).
async fn with_dev_ca(directory: &str) -> (Gateway, String) {
    let options = Options {
        tls: Some(DEV_CA.into()),
        ..Options::default()
    };
    let gateway = Gateway::start_with(directory, options).await;
    let ca = std::fs::read_to_string(gateway.dir.path().join("tls/ca.pem")).expect("the dev CA");
    (gateway, ca)
}

/// A client that trusts `ca_pem` and nothing else, and records the peer's certificate.
fn trusting(ca_pem: &str) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .tls_info(true)
        .timeout(Duration::from_secs(10))
}

/// `GET {base}/healthz`: the HTTP version and the fingerprint of the certificate served.
async fn healthz(client: &reqwest::Client, base: &str) -> (Version, String) {
    let response = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{base}/healthz: {e:?}"));
    assert_eq!(response.status(), 200);
    let certificate = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the served certificate")
        .to_vec();
    (response.version(), fingerprint(&certificate))
}

/// The base64 lines of every private key PEM file in `dir`: what must never be shown.
fn key_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list keys") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default();
        if text.contains("PRIVATE KEY-----") {
            lines.extend(
                text.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                    .map(str::to_owned),
            );
        }
    }
    assert!(!lines.is_empty(), "no key in {}", dir.display());
    lines
}

/// Asserts that `text` shows no line of the keys in `keys`.
fn assert_no_key_material(what: &str, text: &str, keys: &[String]) {
    assert!(
        !text.contains("-----BEGIN"),
        "{what} shows a PEM block: {text}"
    );
    for line in keys {
        assert!(
            !text.contains(line.as_str()),
            "{what} shows key material: {text}"
        );
    }
}

#[tokio::test]
async fn both_listeners_serve_every_route_over_http1_and_http2() {
    let (issuer, key) = TestIssuer::with_key(KeyKind::Es256, "k1").await;
    let (gateway, ca) = with_dev_ca(&scenario(&issuer)).await;
    let https = gateway.tls_url();
    assert!(https.starts_with("https://127.0.0.1:"), "{https}");
    let cases = [
        ("HTTP/1.1", trusting(&ca).http1_only(), Version::HTTP_11),
        ("HTTP/2 through ALPN", trusting(&ca), Version::HTTP_2),
    ];
    for (name, builder, version) in cases {
        let client = builder.build().expect("client");
        let (served, _) = healthz(&client, &https).await;
        assert_eq!(served, version, "{name}");
        let discovery = client
            .get(format!("{https}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery");
        assert_eq!(discovery.version(), version, "{name}");
        let discovery: Value = discovery.json().await.expect("JSON");
        assert_eq!(
            discovery["issuer"], gateway.url,
            "{name}: the public URL is the plain listener's unless set"
        );
        let exchanged = client
            .post(format!("{https}/oauth/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(SA, &issuer.token(&key, SUBJECT, AUD)))
            .send()
            .await
            .expect("exchange");
        assert_eq!(exchanged.version(), version, "{name}");
        let exchanged = Reply::from(exchanged).await;
        assert_eq!(exchanged.status, 200, "{name}: {}", exchanged.text);
        assert!(!exchanged.access_token().is_empty(), "{name}");
        let metrics = client
            .get(format!("{https}/metrics"))
            .send()
            .await
            .expect("metrics");
        assert_eq!(metrics.status(), 200, "{name}");
        let unknown = client
            .get(format!("{https}/nope"))
            .send()
            .await
            .expect("404");
        assert_eq!(unknown.status(), 404, "{name}: the same fallback");
    }
    // The plain listener serves as before.
    assert_eq!(gateway.get("/healthz").await.status, 200);
    let plain = gateway
        .exchange(SA, &issuer.token(&key, SUBJECT, AUD))
        .await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    // Each listener speaks its own protocol only.
    let cleartext = reqwest::Client::new()
        .get(format!("http://{}/healthz", gateway.tls_addr.unwrap()))
        .send()
        .await;
    assert!(
        cleartext.is_err(),
        "plain HTTP on the TLS listener: {cleartext:?}"
    );
    let tls_to_plain = trusting(&ca)
        .build()
        .unwrap()
        .get(gateway.url.replace("http://", "https://") + "/healthz")
        .send()
        .await;
    assert!(
        tls_to_plain.is_err(),
        "TLS on the plain listener: {tls_to_plain:?}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn the_certificate_verifies_for_loopback_against_its_ca_only() {
    let (gateway, ca) = with_dev_ca("").await;
    let addr = gateway.tls_addr.unwrap();
    let port = addr.port();
    // Dialled as 127.0.0.1 and as localhost, as the gRPC SDKs dial `host:port`.
    for name in ["127.0.0.1", "localhost"] {
        let client = trusting(&ca).resolve("localhost", addr).build().unwrap();
        healthz(&client, &format!("https://{name}:{port}")).await;
    }
    let stranger = TestCa::new("another CA");
    let plain_client = reqwest::Client::builder().timeout(Duration::from_secs(10));
    let cases = [
        (
            "another name that reaches the same socket: the certificate does not name it",
            trusting(&ca).resolve("gateway.example", addr),
            format!("https://gateway.example:{port}/healthz"),
            "NotValidForName",
        ),
        (
            "a client with the system's roots only",
            plain_client,
            format!("https://127.0.0.1:{port}/healthz"),
            "UnknownIssuer",
        ),
        (
            "a client trusting another CA",
            trusting(stranger.pem()),
            format!("https://127.0.0.1:{port}/healthz"),
            "UnknownIssuer",
        ),
    ];
    for (name, builder, url, why) in cases {
        let refused = builder
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .expect_err(name);
        assert!(format!("{refused:?}").contains(why), "{name}: {refused:?}");
    }
}

/// A TLS handshake with `127.0.0.1` at `addr` by a client trusting `ca_pem` that offers
/// `versions` and the application protocols `alpn`: the version and protocol agreed.
async fn handshake(
    addr: SocketAddr,
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> std::io::Result<(rustls::ProtocolVersion, Option<Vec<u8>>)> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA"))
        .expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let tls = connector.connect(name, tcp).await?;
    let (_, connection) = tls.get_ref();
    Ok((
        connection.protocol_version().expect("a version"),
        connection.alpn_protocol().map(<[u8]>::to_vec),
    ))
}

/// (what, versions the client offers, protocols it offers, (version, protocol) agreed).
type HandshakeCase<'a> = (
    &'a str,
    &'a [&'static rustls::SupportedProtocolVersion],
    &'a [&'a [u8]],
    (rustls::ProtocolVersion, Option<&'a [u8]>),
);

#[tokio::test]
async fn tls_1_3_and_1_2_with_alpn_h2_and_http_1_1() {
    use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
    use rustls::version::{TLS12, TLS13};
    let (gateway, ca) = with_dev_ca("").await;
    let addr = gateway.tls_addr.unwrap();
    let h2: &[u8] = b"h2";
    let http1: &[u8] = b"http/1.1";
    let cases: [HandshakeCase<'_>; 5] = [
        ("a gRPC client", &[&TLS13], &[h2], (TLSv1_3, Some(h2))),
        ("TLS 1.2", &[&TLS12], &[h2, http1], (TLSv1_2, Some(h2))),
        (
            "HTTP/1.1 only",
            &[&TLS13, &TLS12],
            &[http1],
            (TLSv1_3, Some(http1)),
        ),
        (
            "h2 preferred",
            &[&TLS13, &TLS12],
            &[http1, h2],
            (TLSv1_3, Some(h2)),
        ),
        ("no ALPN", &[&TLS13], &[], (TLSv1_3, None)),
    ];
    for (name, versions, alpn, (version, protocol)) in cases {
        let agreed = handshake(addr, &ca, versions, alpn)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(agreed, (version, protocol.map(<[u8]>::to_vec)), "{name}");
    }
    let refused = handshake(addr, &ca, &[&TLS13], &[b"spdy/3"]).await;
    assert!(refused.is_err(), "no protocol in common: {refused:?}");
}

#[tokio::test]
async fn a_replaced_pair_is_served_to_new_connections_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new("wif-gateway reload test CA");
    let (cert_file, key_file) = (
        dir.path().join("tls/server.pem"),
        dir.path().join("tls/server-key.pem"),
    );
    std::fs::create_dir_all(dir.path().join("tls")).expect("tls dir");
    let first = fingerprint(&ca.write_leaf(&cert_file, &key_file));
    let audit = dir.path().join("audit.jsonl");
    let options = Options {
        tls: Some("cert_file = \"tls/server.pem\"\nkey_file = \"tls/server-key.pem\"".into()),
        audit: "output = \"audit.jsonl\"".into(),
        ..Options::default()
    };
    let gateway = Gateway::start_in(dir, "", options).await;
    let https = gateway.tls_url();
    let fresh = || trusting(ca.pem()).build().expect("client");
    // One connection opened before the change and kept (HTTP/2: every request on it).
    let kept = fresh();
    assert_eq!(
        healthz(&kept, &https).await,
        (Version::HTTP_2, first.clone())
    );

    let second = fingerprint(&ca.write_leaf(&cert_file, &key_file));
    wait_for("the new certificate", async || {
        healthz(&fresh(), &https).await.1 == second
    })
    .await;
    assert_eq!(
        healthz(&kept, &https).await,
        (Version::HTTP_2, first.clone()),
        "the open connection keeps the certificate it was made with"
    );
    assert_eq!(gateway.state.tls().unwrap().fingerprint(), second);

    // Let any reload of the two renames settle and its audit line be written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refusals = || {
        audit_lines(&audit)
            .into_iter()
            .filter(|l| l["event"] == "config_reload" && l["result"] == "error")
            .collect::<Vec<Value>>()
    };
    let before = refusals().len();
    // A key that is not the certificate's.
    let (_, stranger) = ca.leaf();
    replace_file(&key_file, &stranger.serialize_pem());
    wait_for("the refused reload", async || refusals().len() > before).await;
    let refusal = refusals().pop().expect("a refusal");
    let description = refusal["description"].as_str().expect("description");
    assert!(
        description.contains(&format!(
            "[server.tls]: {}: the private key does not belong to the certificate in {}",
            key_file.display(),
            cert_file.display()
        )),
        "{description}"
    );
    let keys = key_lines(cert_file.parent().expect("tls dir"));
    assert_no_key_material("the audit line", description, &keys);
    assert_eq!(
        healthz(&fresh(), &https).await.1,
        second,
        "the old pair serves on"
    );
    assert_eq!(gateway.state.tls().unwrap().fingerprint(), second);

    // Fixed: the next pair is taken.
    let third = fingerprint(&ca.write_leaf(&cert_file, &key_file));
    wait_for("the fixed pair", async || {
        healthz(&fresh(), &https).await.1 == third
    })
    .await;
    assert_eq!(gateway.get("/healthz").await.status, 200);
}

/// Runs `command` to its end (at most 60 s): its exit code and stderr.
fn run_to_end(command: &mut Command) -> (Option<i32>, String) {
    let mut child = KillOnDrop::spawn(command.stdout(Stdio::null()).stderr(Stdio::piped()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "{command:?} did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.0.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
    }
    (status.code(), stderr)
}

/// (what, how the pair is broken, the file a problem must name, what it must say).
type Breakage<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a Path, &'a str);

#[test]
fn a_broken_pair_is_refused_by_check_config_and_at_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "[signing]\nkey_file = \"signing.pem\"\ngenerate_if_missing = true\n\n[audit]\noutput = \"off\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[server.tls]\nlisten = \"127.0.0.1:0\"\ncert_file = \"tls/server.pem\"\nkey_file = \"tls/server-key.pem\"\n",
    )
    .expect("config");
    let (cert_file, key_file) = (
        dir.path().join("tls/server.pem"),
        dir.path().join("tls/server-key.pem"),
    );
    std::fs::create_dir_all(dir.path().join("tls")).expect("tls dir");
    let ca = TestCa::new("check-config test CA");
    let check = |format: &str| {
        run_to_end(
            Command::new(BIN)
                .args(["check-config", "--format", format, "--config"])
                .arg(&config),
        )
    };
    ca.write_leaf(&cert_file, &key_file);
    let (code, stderr) = check("text");
    assert_eq!(code, Some(0), "a valid pair: {stderr}");

    let (_, stranger) = ca.leaf();
    let cases: [Breakage<'_>; 4] = [
        (
            "a key of another certificate",
            Box::new(|| replace_file(&key_file, &stranger.serialize_pem())),
            &key_file,
            "the private key does not belong to the certificate in",
        ),
        (
            "no certificate in the certificate file",
            Box::new(|| replace_file(&cert_file, "a certificate, honestly\n")),
            &cert_file,
            "holds no PEM certificate",
        ),
        (
            "a certificate in the key file",
            Box::new(|| replace_file(&key_file, &ca.leaf().0.pem())),
            &key_file,
            "holds no PEM private key",
        ),
        (
            "a missing key file",
            Box::new(|| std::fs::remove_file(&key_file).expect("rm")),
            &key_file,
            "No such file",
        ),
    ];
    for (name, break_it, file, expected) in cases {
        ca.write_leaf(&cert_file, &key_file);
        let keys = key_lines(&dir.path().join("tls"));
        break_it();
        let wanted = format!("[server.tls]: {}: {expected}", file.display());
        let (code, stderr) = check("text");
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(stderr.contains(&wanted), "{name}: {stderr}");
        assert_no_key_material(name, &stderr, &keys);
        let (code, stdout_json) = {
            let out = Command::new(BIN)
                .args(["check-config", "--format", "json", "--config"])
                .arg(&config)
                .output()
                .expect("run");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        assert_eq!(code, Some(1), "{name}");
        let report: Value = serde_json::from_str(&stdout_json).expect("JSON");
        assert!(
            report["problems"].as_array().is_some_and(|p| p
                .iter()
                .any(|p| p.as_str().is_some_and(|p| p.contains(&wanted)))),
            "{name}: {report}"
        );
        let (code, stderr) = run_to_end(Command::new(BIN).args(["serve", "--config"]).arg(&config));
        assert_eq!(code, Some(2), "{name}: serve refuses to start: {stderr}");
        assert!(stderr.contains(&wanted), "{name}: {stderr}");
        assert_no_key_material(name, &stderr, &keys);
    }
}

/// A `serve` of the binary: its addresses from the `listening` line, and every line it logs.
struct Serving {
    process: KillOnDrop,
    addr: String,
    tls_addr: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Serving {
    fn start(config: &Path) -> Serving {
        let mut process = KillOnDrop::spawn(
            Command::new(BIN)
                .args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--tls-listen",
                    "127.0.0.1:0",
                    "--config",
                ])
                .arg(config)
                .env("RUST_LOG", "info,wif_gateway=debug")
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        let stderr = process.0.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(" listening ") {
                    let _ = tx.send(line.clone());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no listening line: {:?}", logs.lock().unwrap()));
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {line}"))
                .to_owned()
        };
        Serving {
            process,
            addr: field("addr="),
            tls_addr: field("tls_addr="),
            logs,
        }
    }

    /// Stops the gateway; everything it logged.
    async fn stop(mut self) -> String {
        assert!(self.process.terminate().await.success());
        // The reader thread sees the pipe close.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.logs.lock().unwrap().join("\n")
    }
}

#[tokio::test]
async fn the_dev_config_makes_its_ca_once_and_serves_everything_over_tls() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dev_config(dir.path());
    let tls_dir = dir.path().join(".wif-dev/tls");
    let mut seen = Vec::new();
    for start in ["first", "second"] {
        let serving = Serving::start(&config);
        assert!(
            !serving.tls_addr.ends_with(":0") && !serving.tls_addr.ends_with(":8443"),
            "{}",
            serving.tls_addr
        );
        let plain = format!("http://{}", serving.addr);
        let https = format!("https://{}", serving.tls_addr);
        let ca = std::fs::read_to_string(tls_dir.join("ca.pem")).expect("the dev CA");
        let client = trusting(&ca).build().expect("client");
        crate::support::binary::wait_ready(&client, &https).await;
        assert_eq!(healthz(&client, &https).await.0, Version::HTTP_2, "{start}");
        let discovery: Value = client
            .get(format!("{https}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("JSON");
        assert_eq!(
            discovery["issuer"], plain,
            "{start}: public_url stays http://{{listen}}"
        );
        // The dev round trip (the dev config binds the usual subject), its exchange over TLS.
        let jwt = dev_token(&client, &https, SUBJECT).await;
        let exchanged = client
            .post(format!("{https}/oauth/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form("aje0devserviceacc001", &jwt))
            .send()
            .await
            .expect("exchange");
        let exchanged = Reply::from(exchanged).await;
        assert_eq!(exchanged.status, 200, "{start}: {}", exchanged.text);
        // And the IAM API: unauthenticated, it answers as Yandex does (401), over TLS too.
        let iam = client
            .get(format!(
                "{https}/iam/v1/serviceAccounts?folderId=b1gdevfolder0000001"
            ))
            .send()
            .await
            .expect("IAM");
        assert_eq!(iam.status(), 401, "{start}");
        assert_eq!(
            reqwest::get(format!("{plain}/healthz"))
                .await
                .expect("plain")
                .status(),
            200
        );
        #[cfg(unix)]
        for key in ["ca-key.pem", "server-key.pem"] {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(tls_dir.join(key))
                .expect(key)
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{start}: {key}");
        }
        let files: Vec<String> = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"]
            .iter()
            .map(|f| std::fs::read_to_string(tls_dir.join(f)).expect(f))
            .collect();
        let logs = serving.stop().await;
        assert_no_key_material(
            &format!("{start} start's logs"),
            &logs,
            &key_lines(&tls_dir),
        );
        seen.push((files, logs));
    }
    let (first, second) = (&seen[0], &seen[1]);
    assert_eq!(
        first.0, second.0,
        "the second start reuses the CA and the server certificate"
    );
    assert!(
        first.1.contains("generated a development CA")
            && !second.1.contains("generated a development"),
        "made once:\n{}\n---\n{}",
        first.1,
        second.1
    );
}
