//! The dev setup as a newcomer runs it: `config/dev.toml`, unedited, on any address. Nothing in
//! it names a port but `listen`, so `--listen` (port 0 included) moves the public URL and the
//! dev federation with it.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::binary::{BIN, KillOnDrop, dev_config, dev_token, wait_ready};

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
    let config = dev_config(dir.path());
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = child.0.stderr.take().expect("stderr");
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
    wait_ready(&client, &base).await;
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
    let jwt = dev_token(
        &client,
        &base,
        "project_path:demo/app:ref_type:branch:ref:main",
    )
    .await;
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
