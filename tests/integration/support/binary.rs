//! The real `wif-gateway` binary as users run it: spawned on a free loopback port with the
//! repository's dev config, waited for, stopped with SIGTERM, and killed if the test fails first.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wif-gateway");

/// How long a started gateway may take to become ready, or to stop after SIGTERM.
const PATIENCE: Duration = Duration::from_secs(30);

/// A spawned process, killed and reaped when dropped: a test that fails (panics) while it runs
/// does not leave it behind.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Spawns `command`. The dev config's TLS listener names a fixed port (8443), so unless the
    /// command says otherwise, a gateway spawned here listens for TLS on a free port
    /// (`WIF_TLS_LISTEN`): tests run side by side, and beside a developer's own dev server.
    pub fn spawn(command: &mut Command) -> KillOnDrop {
        if !command.get_envs().any(|(name, _)| name == "WIF_TLS_LISTEN") {
            command.env("WIF_TLS_LISTEN", "127.0.0.1:0");
        }
        KillOnDrop(command.spawn().expect("spawn"))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` (`TERM`, `HUP`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not stop on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The repository's dev config, unedited, one level below `dir` so that its keys (`../.wif-dev/`)
/// are generated in `dir`. Tests move it with `--listen`, as a user would.
pub fn dev_config(dir: &Path) -> PathBuf {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).expect("mkdir");
    let path = config.join("dev.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml"),
        &path,
    )
    .expect("copy config/dev.toml");
    path
}

/// [`dev_config`] with `extra` (whole TOML sections the dev config does not have, such as
/// `[limits]`) appended.
pub fn dev_config_with(dir: &Path, extra: &str) -> PathBuf {
    let path = dev_config(dir);
    let mut text = std::fs::read_to_string(&path).expect("read the dev config");
    text.push('\n');
    text.push_str(extra);
    std::fs::write(&path, text).expect("write the dev config");
    path
}

/// Waits until `GET {base}/readyz` answers 200.
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while !client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(started.elapsed() < PATIENCE, "gateway did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A caller token for `sub` from the dev issuer of the gateway at `base` (audience
/// `wif-gateway-dev`, as the dev federation trusts).
pub async fn dev_token(client: &reqwest::Client, base: &str, sub: &str) -> String {
    dev_token_for(client, base, sub, "wif-gateway-dev").await
}

/// A caller token for `sub` with audience `aud` from the dev issuer of the gateway at `base`.
pub async fn dev_token_for(client: &reqwest::Client, base: &str, sub: &str, aud: &str) -> String {
    let issued: serde_json::Value = client
        .post(format!("{base}/dev/issuer/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("sub={sub}&aud={aud}"))
        .send()
        .await
        .expect("dev token")
        .json()
        .await
        .expect("json");
    issued["id_token"].as_str().expect("id_token").to_owned()
}
