//! The REST API's writes run on a runtime of their own (`docs/performance.md#writes-under-exchange-load`).
//!
//! A write waits on the database several times while it holds the store's change counter
//! (`crate::iam::store::log`): begin, lock the counter, change the resource, record the change,
//! commit. On the runtime that serves exchanges, each of those waits ends at the back of a queue
//! that, under full exchange load, holds every in-flight exchange, so the counter stays locked
//! for many queue rounds and writes go one at a time at a few dozen a second. On a runtime
//! whose threads run only writes, each wait ends as soon as the operating system schedules
//! that thread, and the write costs about its own CPU time.
//!
//! The call keeps its request span, and dropping the call (the client went away, the request
//! timed out) cancels it as before: the write's transaction rolls back.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::yandex::error_response;
use crate::iam::status::Status;

/// The writes' runtime: one worker thread, started with the first write. `None` if it could
/// not be started; writes then run where they are called.
fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("wif-writes")
                .enable_all()
                .build()
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "cannot start the writes' runtime; writes run beside the exchanges");
                })
                .ok()
        })
        .as_ref()
}

/// The layer: runs a POST, PATCH, PUT or DELETE on the writes' runtime; other methods, and
/// every call when that runtime could not start, run here.
pub async fn on_own_runtime(request: Request, next: Next) -> Response {
    if !is_write(request.method()) {
        return next.run(request).await;
    }
    let Some(runtime) = runtime() else {
        return next.run(request).await;
    };
    let call = next.run(request).instrument(tracing::Span::current());
    match (AbortOnDrop(runtime.spawn(call))).await {
        Ok(response) => response,
        Err(e) => error_response(&Status::internal(&e)),
    }
}

/// Whether a call of `method` is one of the REST API's writes (creates, changes, deletes).
pub(super) fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PATCH | Method::DELETE | Method::PUT
    )
}

/// A task that is cancelled when its handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
