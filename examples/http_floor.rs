//! The HTTP stack's own cost: the gateway's server (the same accept loop, hyper builder,
//! connection limits and timeouts, request-id, trace and timeout layers, and the token route's
//! load shedding and concurrency limit) serving `POST /oauth/token` with a handler that does no
//! work: it checks the content type, reads the form body under the same 64 KiB cap, lets the
//! other ready requests run first as the token endpoint does, and answers a fixed token response
//! of the usual size with the usual headers. Loaded exactly as the gateway
//! is (`scripts/load.sh` sends it the same requests), its requests per second are the ceiling
//! the HTTP stack alone puts on the exchange, and what the exchange costs beyond it and the
//! crypto is the gateway's own code.
//!
//! ```sh
//! taskset -c 0 cargo run --release --example http_floor -- --config target/loadtest/config/gateway-small.toml
//! ```
//!
//! With `--crypto` the handler also does the exchange's crypto, one RS256 verification and one
//! ES256 signature (`examples/common/crypto_floor.rs`, as `examples/floor.rs` measures them, keys
//! made once), and nothing else: its requests per
//! second are the most any exchange over this stack could make on this machine, its kernel time
//! included. The kernel's part grows as requests slow down: a load generator that waits longer
//! between answers sleeps between them, and on loopback waking it is the answering core's work.
//!
//! It serves on the configuration's `[server] listen` until SIGINT or SIGTERM.

use std::path::PathBuf;

use std::sync::OnceLock;

use anyhow::{Context as _, bail};
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};
use wif_gateway::http::token::{
    after_the_others, check_form_content_type, read_body, routes_to, token_response,
};
use wif_gateway::http::{WebError, serve, stack};

#[path = "common/crypto_floor.rs"]
mod crypto_floor;
use crypto_floor::CryptoFloor;

/// The crypto each request does, with `--crypto`.
static CRYPTO: OnceLock<CryptoFloor> = OnceLock::new();

/// The size of the load test's token responses (an ES256 access token with an `act` claim).
const RESPONSE_BYTES: usize = 760;

/// Reads the body and answers a fixed token response: the same I/O as an exchange, no work (or
/// the crypto alone), and the same wait for the other ready requests before answering.
async fn nothing(headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = check_form_content_type(&headers) {
        return WebError::from(e).into_response();
    }
    let answer = match read_body(body).await {
        Ok(_) => match CRYPTO.get().map(CryptoFloor::once) {
            Some(Err(e)) => WebError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "crypto_floor",
                e.to_string(),
            )
            .into_response(),
            None | Some(Ok(_)) => token_response(fixed_body()),
        },
        Err(e) => WebError::from(e).into_response(),
    };
    after_the_others().await;
    answer
}

fn fixed_body() -> String {
    let head = r#"{"access_token":""#;
    let tail = r#"","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}"#;
    let token = "a".repeat(RESPONSE_BYTES.saturating_sub(head.len() + tail.len()));
    format!("{head}{token}{tail}")
}

fn main() -> anyhow::Result<()> {
    let mut config_path: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config_path = Some(args.next().context("--config needs a path")?.into()),
            "--crypto" => {
                let _ = CRYPTO.set(CryptoFloor::new()?);
            }
            "-h" | "--help" => {
                println!("usage: http_floor --config GATEWAY.toml [--crypto]");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    let path = config_path.context("--config is required")?;
    wif_gateway::tls::install_default_provider();
    let config = wif_gateway::config::load(&path)?;
    let listen = config.settings.listen;
    let max_concurrent = config.settings.limits.max_concurrent_requests;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = wif_gateway::AppState::start(config).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let app = stack(routes_to(nothing, max_concurrent), state.clone());
        let work = if CRYPTO.get().is_some() {
            "RS256 verify + ES256 sign"
        } else {
            "no work"
        };
        println!("http_floor: serving POST /oauth/token ({work}) on {listen}");
        serve(listener, state, app, async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        })
        .await?;
        anyhow::Ok(())
    })
}
