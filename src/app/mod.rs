//! The running gateway: its shared state ([`state`]), served by [`crate::http`], and the
//! background tasks that keep it current ([`reload`], [`upkeep`], and the IAM store's follower,
//! [`crate::iam::live::Live::follow`]).
//!
//! Also the transport-neutral half of an IAM API call ([`call`]), which REST
//! ([`crate::http`]) and gRPC ([`crate::grpc`]) share, and `IamTokenService` over the running
//! gateway ([`iam_tokens`]).

pub mod call;
pub mod iam_tokens;
pub mod reload;
pub mod state;
pub mod upkeep;

pub use state::{AppState, Snapshot, StartError};

/// The background tasks of a running gateway: metrics upkeep, live reload and, with a store,
/// following its change log. Dropping this
/// stops them.
pub struct Tasks {
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Tasks {
    /// Starts the background tasks for `state` on the current runtime.
    pub fn start(state: &AppState) -> Tasks {
        let mut handles = vec![upkeep::spawn(state.clone()), reload::spawn(state.clone())];
        if let Some(live) = state.live() {
            handles.push(tokio::spawn(live.clone().follow()));
        }
        Tasks { handles }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}
