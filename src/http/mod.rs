//! Everything HTTP: the shared state, the router, and the accept loop.
//!
//! | route | what |
//! |---|---|
//! | `POST /oauth/token` | the token exchange ([`token`]) |
//! | `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json` | how downstream services verify minted tokens ([`meta`]) |
//! | `GET /healthz`, `GET /readyz` | liveness and readiness ([`meta`]) |
//! | `/dev/issuer/…` | the dev issuer, only when enabled ([`dev`]) |
//!
//! [`run`] owns the accept loop (hyper-util) instead of `axum::serve`, because only that way do
//! connections get a header-read timeout (slowloris guard); every request also has a total timeout
//! and in-flight requests get a bounded drain on shutdown.

pub mod dev;
pub mod error;
pub mod limits;
pub mod meta;
pub mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::ServiceExt as _;
use tower_http::trace::TraceLayer;

use crate::config::{Config, Settings};
use crate::dev_issuer::DevIssuer;
use crate::directory::Directory;
use crate::exchange::Policy;
use crate::jwks::JwksCache;
use crate::signing::Minter;

pub use error::WebError;

/// What one exchange reads: swapped whole on reload.
#[derive(Debug)]
pub struct Snapshot {
    pub directory: Directory,
    pub minter: Minter,
    pub policy: Policy,
}

/// Shared server state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    snapshot: ArcSwap<Snapshot>,
    keys: JwksCache,
    dev_issuer: Option<DevIssuer>,
    limits: limits::Limits,
    settings: Settings,
}

impl AppState {
    /// Builds the state from a compiled config: loads (or, if allowed, generates) the signing
    /// keys and the dev issuer's key.
    pub fn from_config(config: Config) -> Result<AppState, String> {
        let settings = config.settings;
        let minter = settings.load_minter()?;
        let dev_issuer = match &settings.dev_issuer {
            Some(dev) => Some(DevIssuer::load(dev, &settings.public_url)?),
            None => None,
        };
        Ok(AppState {
            inner: Arc::new(StateInner {
                snapshot: ArcSwap::from_pointee(Snapshot {
                    directory: config.directory,
                    minter,
                    policy: settings.policy,
                }),
                keys: JwksCache::new(settings.jwks),
                dev_issuer,
                limits: limits::Limits::new(&settings.limits),
                settings,
            }),
        })
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    pub fn keys(&self) -> &JwksCache {
        &self.inner.keys
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn dev_issuer(&self) -> Option<&DevIssuer> {
        self.inner.dev_issuer.as_ref()
    }

    pub fn limits(&self) -> &limits::Limits {
        &self.inner.limits
    }
}

/// The application's routes and layers.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings().request_timeout_seconds);
    let mut app = Router::new()
        .merge(token::routes(
            state.settings().limits.max_concurrent_requests,
        ))
        .merge(meta::routes());
    if state.dev_issuer().is_some() {
        app = app.merge(dev::routes());
    }
    app.fallback(meta::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(limits::middleware_error))
                .timeout(timeout),
        )
        .layer(
            // Only method and path: a query string could carry a token.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting and gives
/// in-flight requests `shutdown_timeout_seconds` to finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let settings = state.settings().clone();
    let app = router(state.clone());
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout_seconds));
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(tokio::sync::Semaphore::new(settings.limits.max_connections));
    let upkeep = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                state.limits().retain_recent();
            }
        })
    };
    let mut shutdown = std::pin::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, public_url = %settings.public_url, "listening");
    }
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    upkeep.abort();
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    let drain = Duration::from_secs(settings.shutdown_timeout_seconds);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = drain.as_secs(),
            "in-flight requests did not finish in time"
        );
    }
    Ok(())
}
