//! The dev setup as a newcomer runs it: `config/dev.toml`, unedited, on any address. Nothing in
//! it names a port but `listen`, so `--listen` (port 0 included) moves the public URL and the
//! dev federation with it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wif-gateway");

/// Stops the gateway whatever happens to the test.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The address in the `listening` log line, with colour codes (if any) removed.
fn listening_addr(line: &str) -> Option<String> {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let rest = plain.split("listening").nth(1)?;
    let addr = rest.split("addr=").nth(1)?;
    Some(addr.split_whitespace().next()?.to_owned())
}

#[tokio::test]
async fn the_unedited_dev_config_works_on_any_port() {
    let dir = tempfile::tempdir().expect("dir");
    // The tracked file, byte for byte, one level down so that its `../.wif-dev/` lands here.
    std::fs::create_dir(dir.path().join("config")).expect("mkdir");
    let config = dir.path().join("config/dev.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml"),
        &config,
    )
    .expect("copy");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let _running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = listening_addr(&line) {
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a listening line");
    assert!(!addr.ends_with(":0"), "the bound port is logged: {addr}");
    assert!(
        !addr.ends_with(":8080"),
        "not the tracked file's port: {addr}"
    );
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while !client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(started.elapsed() < Duration::from_secs(30), "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let discovery: serde_json::Value = client
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(
        discovery["issuer"], base,
        "the public URL follows the bound address"
    );
    let issued: serde_json::Value = client
        .post(format!("{base}/dev/issuer/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("sub=project_path:demo/app:ref_type:branch:ref:main&aud=wif-gateway-dev")
        .send()
        .await
        .expect("dev token")
        .json()
        .await
        .expect("json");
    let jwt = issued["id_token"].as_str().expect("id_token");
    let response = client
        .post(format!("{base}/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&requested_token_type=urn:ietf:params:oauth:token-type:access_token&audience=aje0devserviceacc001&subject_token={jwt}&subject_token_type=urn:ietf:params:oauth:token-type:id_token"
        ))
        .send()
        .await
        .expect("exchange");
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn listening_lines_are_read_with_or_without_colour() {
    let plain = "2026-12-01T00:00:00Z  INFO wif_gateway::http: listening addr=127.0.0.1:4242 public_url=http://127.0.0.1:4242";
    assert_eq!(listening_addr(plain).as_deref(), Some("127.0.0.1:4242"));
    let coloured = "\u{1b}[32m INFO\u{1b}[0m \u{1b}[2mwif_gateway::http\u{1b}[0m\u{1b}[2m:\u{1b}[0m listening \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:4242";
    assert_eq!(listening_addr(coloured).as_deref(), Some("127.0.0.1:4242"));
    assert_eq!(listening_addr("shutting down"), None);
}
