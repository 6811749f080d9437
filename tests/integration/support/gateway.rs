//! Starts the real gateway (library `run` on a 127.0.0.1:0 listener) with a generated config in a
//! temporary directory, and speaks HTTP to it.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wif_gateway::AppState;

/// The service account, federation, subject and audience of the usual test scenario.
pub const SA: &str = "ajesa0000000000001";
pub const FED: &str = "ajefed000000000001";
pub const SUBJECT: &str = "project_path:demo/app:ref_type:branch:ref:main";
pub const AUD: &str = "https://gitlab.example.com";

/// Config sections other than the directory, as TOML lines.
#[derive(Clone, Debug)]
pub struct Options {
    /// Lines of `[jwks]`.
    pub jwks: String,
    /// Lines of `[exchange]`.
    pub exchange: String,
    /// Algorithm of the generated signing key.
    pub signing_alg: &'static str,
    /// Lines of `[server]` besides `public_url`.
    pub server: String,
    /// Lines of `[limits]`. By default rate limits are off so that suites can send many requests.
    pub limits: String,
    /// Lines of `[tokens]` (the minted tokens: `lifetime_seconds`, `audience`).
    pub tokens: String,
    /// Lines of `[audit]`. Off by default.
    pub audit: String,
    /// Lines of `[signing]` replacing the generated key (e.g. several key files).
    pub signing: Option<String>,
    /// Lines of `[store]`; `None`: no store (the IAM API is off).
    pub store: Option<String>,
    /// Lines of `[iam]`, written only with a store.
    pub iam: String,
    /// Lines of `[server.tls]` but `listen`; `None`: no TLS listener. With them the gateway
    /// also listens for TLS on a free port ([`Gateway::tls_addr`]).
    pub tls: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jwks: String::new(),
            exchange: String::new(),
            signing_alg: "ES256",
            server: String::new(),
            limits: "per_client_ip_per_second = 0\nper_subject_per_minute = 0".into(),
            tokens: String::new(),
            audit: "output = \"off\"".into(),
            signing: None,
            store: None,
            iam: String::new(),
            tls: None,
        }
    }
}

pub struct Gateway {
    pub url: String,
    /// The TLS listener's address, with [`Options::tls`].
    pub tls_addr: Option<std::net::SocketAddr>,
    pub state: AppState,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// TOML of one federation. `extra` holds more lines (key source, enabled, ...).
pub fn federation(id: &str, issuer: &str, audiences: &[&str], extra: &str) -> String {
    let audiences: Vec<String> = audiences.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "[[federations]]\nid = {id:?}\nissuer = {issuer:?}\naudiences = [{}]\n{extra}\n",
        audiences.join(", ")
    )
}

pub fn account(id: &str) -> String {
    format!("[[service_accounts]]\nid = {id:?}\n")
}

pub fn binding(federation: &str, account: &str, subject: &str) -> String {
    format!(
        "[[federated_credentials]]\nfederation_id = {federation:?}\nservice_account_id = {account:?}\nexternal_subject_id = {subject:?}\n"
    )
}

/// The usual scenario against `issuer`: federation [`FED`] (jwks_url, http allowed), service
/// account [`SA`], and a binding of [`SUBJECT`].
pub fn scenario(issuer: &crate::support::TestIssuer) -> String {
    format!(
        "{}{}{}",
        federation(
            FED,
            &issuer.issuer(),
            &[AUD],
            &format!(
                "jwks_url = {:?}\nallow_insecure_http = true",
                issuer.jwks_url()
            )
        ),
        account(SA),
        binding(FED, SA, SUBJECT)
    )
}

/// A parsed HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
    pub fn code(&self) -> &str {
        self.body["error_code"].as_str().unwrap_or("")
    }
    pub fn description(&self) -> &str {
        self.body["error_description"].as_str().unwrap_or("")
    }
    pub fn access_token(&self) -> &str {
        self.body["access_token"].as_str().unwrap_or("")
    }
    pub async fn from(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }
}

/// The Yandex tutorial's form body.
pub fn form(audience: &str, token: &str) -> String {
    format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&requested_token_type=urn:ietf:params:oauth:token-type:access_token&audience={audience}&subject_token={token}&subject_token_type=urn:ietf:params:oauth:token-type:id_token"
    )
}

/// The gateway's config file for `directory` and `options`.
pub fn render(url: &str, directory: &str, options: &Options) -> String {
    let signing = options.signing.clone().unwrap_or_else(|| {
        format!(
            "key_file = \"signing.pem\"\ngenerate_if_missing = true\ngenerate_algorithm = {:?}",
            options.signing_alg
        )
    });
    let store = options.store.as_ref().map_or_else(String::new, |lines| {
        format!("[store]\n{lines}\n\n[iam]\n{}\n\n", options.iam)
    });
    let tls = options
        .tls
        .as_ref()
        .map_or_else(String::new, |lines| format!("\n[server.tls]\n{lines}\n"));
    format!(
        "[server]\npublic_url = {url:?}\nreload_debounce_ms = 100\n{}\n{tls}\n[tokens]\n{}\n\n[signing]\n{signing}\n\n[jwks]\n{}\n\n[exchange]\n{}\n\n[limits]\n{}\n\n[audit]\n{}\n\n{store}{directory}",
        options.server,
        options.tokens,
        options.jwks,
        options.exchange,
        options.limits,
        options.audit
    )
}

/// `options` with the TLS listener's address written into its `[server.tls]` lines.
fn with_tls_listen(mut options: Options, addr: Option<std::net::SocketAddr>) -> Options {
    if let (Some(addr), Some(lines)) = (addr, &options.tls) {
        options.tls = Some(format!("listen = \"{addr}\"\n{lines}"));
    }
    options
}

impl Gateway {
    /// The config file's path.
    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("gateway.toml")
    }

    /// Rewrites the config file (atomically, as a ConfigMap update would); the watcher reloads.
    pub fn write_config(&self, directory: &str, options: &Options) {
        let options = with_tls_listen(options.clone(), self.tls_addr);
        self.write_raw_config(&render(&self.url, directory, &options));
    }

    /// `https://127.0.0.1:PORT` of the TLS listener.
    pub fn tls_url(&self) -> String {
        format!("https://{}", self.tls_addr.expect("a TLS listener"))
    }

    pub fn write_raw_config(&self, text: &str) {
        let tmp = self.dir.path().join(".gateway.toml.tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, self.config_path()).expect("swap config");
    }

    pub async fn start(directory: &str) -> Gateway {
        Self::start_with(directory, Options::default()).await
    }

    pub async fn start_with(directory: &str, options: Options) -> Gateway {
        Self::start_in(tempfile::tempdir().expect("temp dir"), directory, options).await
    }

    /// Starts the gateway with its config in `dir` (written afresh: the public URL follows the
    /// new port), e.g. the directory of a gateway stopped with [`Gateway::stop_keeping_dir`].
    pub async fn start_in(dir: tempfile::TempDir, directory: &str, options: Options) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let tls_listener = match options.tls {
            Some(_) => Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind TLS"),
            ),
            None => None,
        };
        let tls_addr = tls_listener
            .as_ref()
            .map(|l| l.local_addr().expect("TLS addr"));
        let options = with_tls_listen(options, tls_addr);
        let toml = render(&url, directory, &options);
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, toml).expect("write config");
        let config = wif_gateway::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let state = AppState::start(config)
            .await
            .unwrap_or_else(|e| panic!("state: {}", wif_gateway::report::error_chain(&e)));
        let (tx, rx) = oneshot::channel::<()>();
        let listeners = wif_gateway::Listeners {
            plain: listener,
            tls: tls_listener,
        };
        let task = tokio::spawn(wif_gateway::run(listeners, state.clone(), async {
            let _ = rx.await;
        }));
        Gateway {
            url,
            tls_addr,
            state,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            dir,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// POSTs a raw form body to `/oauth/token`.
    pub async fn post_form(&self, body: &str) -> Reply {
        self.post_raw("application/x-www-form-urlencoded", body.to_owned())
            .await
    }

    pub async fn post_raw(&self, content_type: &str, body: String) -> Reply {
        let response = self
            .client
            .post(format!("{}/oauth/token", self.url))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("gateway answers");
        Reply::from(response).await
    }

    /// An exchange that owns everything it needs, to be spawned while the test does other
    /// things. Resolves to the HTTP status (0 if there was no answer).
    pub fn exchange_later(
        &self,
        audience: &str,
        token: &str,
    ) -> impl std::future::Future<Output = u16> + Send + 'static {
        let request = self
            .client
            .post(format!("{}/oauth/token", self.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(audience, token));
        async move { request.send().await.map_or(0, |r| r.status().as_u16()) }
    }

    /// Exchanges `token` for service account `audience`, as the tutorial curl does.
    pub async fn exchange(&self, audience: &str, token: &str) -> Reply {
        self.post_form(&form(audience, token)).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("gateway answers");
        Reply::from(response).await
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text
    }

    /// Stops the server and hands back its directory (config, keys, SQLite store), for a
    /// restart with [`Gateway::start_in`].
    pub async fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        let store = self.state.store().cloned();
        self.stop().await;
        if let Some(store) = store {
            store.close().await;
        }
        dir
    }

    /// Stops accepting, drains and waits for the server to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
