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
//! | `/resource-manager/v1/clouds…`, `/resource-manager/v1/folders…`, `/iam/v1/serviceAccounts…`, `GET /operations/{id}` | the resource hierarchy and operations ([`iam_hierarchy`]); only with `[store]` |
//! | `/iam/v1/workload/…` | OIDC federations and federated credentials ([`iam_federations`]); only with `[store]` |
//! | `…:listAccessBindings`, `…:setAccessBindings`, `…:updateAccessBindings` | access bindings of clouds, folders, service accounts and federations ([`iam_bindings`]); only with `[store]` |
//!
//! The IAM routes share [`yandex`]: the Yandex error body, authentication, metrics and audit.
//!
//! [`run`] owns the accept loop (hyper-util) instead of `axum::serve`, because only that way do
//! connections get a header-read timeout (slowloris guard); every request also has a total timeout
//! and in-flight requests get a bounded drain on shutdown.

pub mod dev;
pub mod error;
pub mod health;
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
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::ServiceExt as _;
use tower_http::trace::TraceLayer;

use crate::app::{AppState, Tasks};

pub use error::WebError;

/// The IAM API's paths whose calls change no resource, so take no idempotency key.
const NOT_GUARDED: [&str; 3] = [
    "/iam/v1/tokens",
    "/iam/v1/tokens:revoke",
    "/iam/v1/authorize",
];

/// The application's routes and layers.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings().request_timeout_seconds);
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
        // once; IamTokenService and Authorize change no resource.
        let (plain, guarded): (Vec<_>, Vec<_>) = openapi::iam_endpoints()
            .into_iter()
            .partition(|endpoint| NOT_GUARDED.contains(&endpoint.path()));
        let guarded = guarded
            .into_iter()
            .fold(Router::new(), |router, endpoint| endpoint.route(router))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                idempotency::guard,
            ));
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
    app.fallback(health::not_found)
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

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting and gives
/// in-flight requests `shutdown_timeout_seconds` to finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let settings = state.settings().clone();
    let app = router(state.clone());
    let grpc = crate::grpc::Grpc::new(&state);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout_seconds));
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(tokio::sync::Semaphore::new(settings.limits.max_connections));
    let tasks = Tasks::start(&state);
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
        let grpc = grpc.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let (app, grpc) = (app.clone(), grpc.clone());
            async move {
                // gRPC (HTTP/2, `content-type: application/grpc…`) shares the listener.
                if crate::grpc::is_grpc(&req) {
                    return Ok(grpc.serve(req).await.map(axum::body::Body::new));
                }
                app.oneshot(req.map(axum::body::Body::new)).await
            }
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
    drop(tasks);
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
    let audit = state.audit().clone();
    let _ = tokio::task::spawn_blocking(move || audit.flush(Duration::from_secs(5))).await;
    tracing::info!("shutdown complete");
    Ok(())
}
