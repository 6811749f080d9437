//! Everything HTTP: the router and the accept loop. The state it serves is [`crate::app`]'s.
//!
//! | route | what |
//! |---|---|
//! | `POST /oauth/token` | the token exchange ([`token`]) |
//! | `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json` | how downstream services verify minted tokens ([`wellknown`]) |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | liveness, readiness and metrics ([`health`]) |
//! | `GET /openapi.json` | the OpenAPI document of the IAM API ([`openapi`]) |
//! | `/dev/issuer/…` | the dev issuer, only when enabled ([`dev`]) |
//! | `POST /iam/v1/tokens`, `POST /iam/v1/tokens:revoke` | a service account's PS256 JWT for an IAM token, and revocation of the gateway's tokens ([`iam_tokens`]); only with `[store]` |
//! | `POST /oauth/introspect` | RFC 7662 introspection of the gateway's tokens for resource servers ([`introspect`]); only with `[store]` |
//! | `POST /iam/v1/authorize` | `AccessService.Authorize`: resource services ask whether tokens' subjects hold permissions on resources ([`iam_authorize`]); only with `[store]` |
//! | `/iam/v1/keys…` | authorized keys, Yandex `KeyService` ([`iam_keys`]); only with `[store]` |
//! | `/iam/aws-compatibility/v1/accessKeys…` | static access keys, Yandex `AccessKeyService` ([`iam_access_keys`]); only with `[store]` |
//! | `/iam/v1/apiKeys…`, `GET /iam/v1/apiKeyScopes` | API keys, Yandex `ApiKeyService` ([`iam_api_keys`]); only with `[store]` |
//! | `/resource-manager/v1/clouds…`, `/resource-manager/v1/folders…`, `/iam/v1/serviceAccounts…`, `GET /operations/{id}` | the resource hierarchy and operations ([`iam_hierarchy`]); only with `[store]` |
//! | `/iam/v1/workload/…` | OIDC federations and federated credentials ([`iam_federations`]); only with `[store]` |
//! | `…:listAccessBindings`, `…:setAccessBindings`, `…:updateAccessBindings` | access bindings of clouds, folders, service accounts and federations ([`iam_bindings`]); only with `[store]` |
//!
//! The IAM routes share [`yandex`]: the Yandex error body, authentication, metrics and audit.
//!
//! [`run`] owns the accept loop (hyper-util) instead of `axum::serve`, because only that way do
//! connections get a header-read timeout (slowloris guard); every request also has a total timeout
//! and in-flight requests get a bounded drain on shutdown. It accepts on the plain listener and,
//! with `[server.tls]`, on a TLS listener ([`Listeners`]; the certificate is [`crate::tls`]'s):
//! both kinds of connection get the same per-connection service, limits and timeouts.

pub mod dev;
pub mod error;
pub mod health;
pub mod iam_access_keys;
pub mod iam_api_keys;
pub mod iam_authorize;
mod iam_bindings;
pub mod iam_federations;
pub mod iam_hierarchy;
pub mod iam_keys;
pub mod iam_roles;
pub mod iam_tokens;
pub mod idempotency;
pub mod introspect;
pub mod openapi;
pub mod request_id;
pub mod token;
pub mod wellknown;
mod writes;
pub mod yandex;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::any;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;
use tower::ServiceExt as _;
use tower_http::trace::TraceLayer;

use crate::app::{AppState, Tasks};
use crate::config::Settings;

pub use error::WebError;

/// The IAM API's paths whose calls change no resource, so take no idempotency key.
const NOT_GUARDED: [&str; 4] = [
    "/iam/v1/tokens",
    "/iam/v1/tokens:createForServiceAccount",
    "/iam/v1/tokens:revoke",
    "/iam/v1/authorize",
];

/// The application's routes and layers.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .merge(token::routes(
            state.settings().limits.max_concurrent_requests,
        ))
        .merge(wellknown::routes())
        .merge(health::routes())
        .merge(openapi::routes());
    if state.dev_issuer().is_some() {
        app = app.merge(dev::routes());
    }
    app = if state.store().is_some() {
        // Calls that create, change or delete resources answer retries with an idempotency key
        // once, and run on the writes' runtime; IamTokenService and Authorize change no
        // resource.
        let (plain, guarded): (Vec<_>, Vec<_>) = openapi::iam_endpoints()
            .into_iter()
            .partition(|endpoint| NOT_GUARDED.contains(&endpoint.path()));
        let guarded = guarded
            .into_iter()
            .fold(Router::new(), |router, endpoint| endpoint.route(router))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                idempotency::guard,
            ))
            .route_layer(axum::middleware::from_fn(writes::on_own_runtime));
        plain
            .into_iter()
            .fold(app, |app, endpoint| endpoint.route(app))
            .merge(guarded)
            .merge(introspect::routes())
            .route("/iam/{*rest}", any(yandex::unknown_method))
    } else {
        app.route("/iam/{*rest}", any(yandex::no_store_configured))
            .route(
                "/resource-manager/{*rest}",
                any(yandex::no_store_configured),
            )
            .route("/operations/{*rest}", any(yandex::no_store_configured))
    };
    stack(app.fallback(health::not_found), state)
}

/// The layers every route sits behind, outermost last: the request id, the request span, the
/// whole-request timeout. [`router`] puts the application's routes behind them; the HTTP-stack
/// benchmark (`examples/http_floor.rs`) puts a route that does nothing behind the same ones.
pub fn stack(routes: Router<AppState>, state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings().request_timeout_seconds);
    routes
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(error::middleware_error))
                .timeout(timeout),
        )
        .layer(
            // Only method, path and request id: a query string could carry a token.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.extensions().get::<request_id::RequestId>().map_or("", |r| r.0.as_str());
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// The sockets the gateway serves on: the plain-HTTP listener and, with `[server.tls]`, the TLS
/// listener. Both serve the same router with the same limits, timeouts and shutdown.
#[derive(Debug)]
pub struct Listeners {
    pub plain: TcpListener,
    /// Needs the state's [`crate::tls::ServerTls`] (`[server.tls]`).
    pub tls: Option<TcpListener>,
}

/// A plain-HTTP listener alone.
impl From<TcpListener> for Listeners {
    fn from(plain: TcpListener) -> Listeners {
        Listeners { plain, tls: None }
    }
}

/// Serves `state` on `listeners` until `shutdown` completes, then stops accepting and gives
/// in-flight requests `shutdown_timeout_seconds` to finish. Connections of either listener count
/// against the same `max_connections`; a TLS handshake must finish within
/// `header_read_timeout_seconds`.
pub async fn run(
    listeners: impl Into<Listeners>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let app = router(state.clone());
    serve(listeners, state, app, shutdown).await
}

/// [`run`] with `app` in place of the gateway's [`router`]: the same accept loop, connection
/// limits, timeouts, gRPC services, background tasks and shutdown.
pub async fn serve(
    listeners: impl Into<Listeners>,
    state: AppState,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let Listeners { plain, tls } = listeners.into();
    let tls = match (tls, state.tls()) {
        (Some(listener), Some(server)) => Some((listener, server.acceptor())),
        (Some(_), None) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a TLS listener needs [server.tls]",
            ));
        }
        (None, _) => None,
    };
    let settings = state.settings().clone();
    let connections = Connections::new(app, crate::grpc::Grpc::new(&state), &settings);
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.limits.max_connections));
    let tasks = Tasks::start(&state);
    let mut shutdown = std::pin::pin!(shutdown);
    if let Ok(addr) = plain.local_addr() {
        let tls_addr = tls.as_ref().and_then(|(l, _)| l.local_addr().ok());
        tracing::info!(%addr, tls_addr = tls_addr.map(tracing::field::display), public_url = %settings.public_url, "listening");
    }
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (accepted, acceptor) = tokio::select! {
            accepted = plain.accept() => (accepted, None),
            accepted = accept_on(tls.as_ref().map(|(l, _)| l)) => {
                (accepted, tls.as_ref().map(|(_, acceptor)| acceptor.clone()))
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(stream, peer, acceptor, permit);
    }
    drop(tasks);
    drop(plain);
    drop(tls);
    tracing::info!("shutting down: draining in-flight requests");
    let drain = Duration::from_secs(settings.shutdown_timeout_seconds);
    if tokio::time::timeout(drain, connections.graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = drain.as_secs(),
            "in-flight requests did not finish in time"
        );
    }
    state.flush_usage().await;
    let audit = state.audit().clone();
    let _ = tokio::task::spawn_blocking(move || audit.flush(Duration::from_secs(5))).await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Accepts on `listener`; with none, never completes.
async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// What every connection is served with, plain or TLS: one router and the gRPC services, one
/// hyper builder (HTTP/1.1 and HTTP/2, with their timers and the header-read timeout) and one
/// graceful-shutdown watch.
struct Connections {
    app: Router,
    grpc: crate::grpc::Grpc,
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    graceful: GracefulShutdown,
    /// The longest a TLS handshake may take (the header-read timeout: a slowloris guard too).
    handshake_timeout: Duration,
}

impl Connections {
    fn new(app: Router, grpc: crate::grpc::Grpc, settings: &Settings) -> Connections {
        let header_read_timeout = Duration::from_secs(settings.header_read_timeout_seconds);
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        Connections {
            app,
            grpc,
            builder,
            graceful: GracefulShutdown::new(),
            handshake_timeout: header_read_timeout,
        }
    }

    /// Serves one accepted connection on a task of its own, after the TLS handshake when
    /// `tls` is given; `permit` (of `max_connections`) is held until the connection closes.
    fn spawn(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<TlsAcceptor>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        // The per-connection service, the same for plain and TLS connections: every request
        // carries the peer's address and goes to the router, or, when it is gRPC
        // (`content-type: application/grpc…`, HTTP/2), to the gRPC services.
        let (app, grpc) = (self.app.clone(), self.grpc.clone());
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let (app, grpc) = (app.clone(), grpc.clone());
            async move {
                if crate::grpc::is_grpc(&req) {
                    return Ok(grpc.serve(req).await.map(axum::body::Body::new));
                }
                app.oneshot(req.map(axum::body::Body::new)).await
            }
        });
        let builder = self.builder.clone();
        // Taken now, so that a shutdown waits for a handshake in progress too.
        let watcher = self.graceful.watcher();
        let handshake_timeout = self.handshake_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let connection = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service);
                            watcher.watch(connection.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
}
