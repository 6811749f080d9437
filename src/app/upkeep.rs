//! Periodic upkeep: drains metric histograms into their buckets (or they grow without bound),
//! forgets issuer key sources the directory no longer names, forgets rate-limit keys whose
//! budget is full again, drops the revocations of tokens that have expired (from memory and
//! from the IAM store), and the idempotency keys older than a day; writes when service accounts
//! and keys were last used ([`crate::iam::usage`]) and lifts the suspensions whose end has come.

use std::time::Duration;

use super::state::AppState;

/// How often histograms are drained.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Rate-limit keys are pruned every this many upkeep rounds (once a minute).
const LIMITS_EVERY: u64 = 12;

/// Runs upkeep until the task is aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            n += 1;
            state.metrics_upkeep();
            state.forget_unnamed_key_sources();
            state.flush_usage().await;
            if let Some(live) = state.live() {
                crate::iam::hierarchy_api::lift_ended_suspensions(live, crate::time::now_unix())
                    .await;
            }
            if n.is_multiple_of(LIMITS_EVERY) {
                state.limits().retain_recent();
                if let Some(live) = state.live()
                    && let Err(e) = live.prune_revoked(crate::time::now_unix()).await
                {
                    tracing::warn!(error = %e, "IAM store: cannot delete expired revocations; retrying in a minute");
                }
                if let Some(store) = state.store() {
                    let before = crate::time::now_unix() - crate::iam::idempotency::RETENTION;
                    if let Err(e) = store.prune_idempotency_keys(before).await {
                        tracing::warn!(error = %e, "IAM store: cannot delete old idempotency keys; retrying in a minute");
                    }
                }
            }
        }
    })
}
