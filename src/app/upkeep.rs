//! Periodic upkeep: drains metric histograms into their buckets (or they grow without bound),
//! forgets issuer key sources the directory no longer names, forgets rate-limit keys whose
//! budget is full again, drops the revocations of tokens that have expired (from memory and
//! from the IAM store), and the idempotency keys older than a day; writes when service accounts
//! and keys were last used ([`crate::iam::usage`]) and lifts the suspensions whose end has come;
//! after a rotation of `[iam] secret_keys`, it seals access keys' secrets again under the first
//! key, a batch a minute.

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
                reseal_access_keys(&state).await;
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

/// Access keys whose secrets are sealed again per round.
const RESEAL_BATCH: u32 = 100;

/// Seals again, under the first of `[iam] secret_keys`, a batch of the access keys' secrets
/// sealed under another (every replica may; a key changed meanwhile is left to the next round).
async fn reseal_access_keys(state: &AppState) {
    let Some(live) = state.live() else {
        return;
    };
    let keys = crate::iam::access_keys::AccessKeys {
        ctx: crate::iam::service::Context {
            live,
            authorizer: state.authorizer(),
            quotas: &state.settings().iam.quotas,
            now: crate::time::now_unix(),
        },
        secret_keys: state.secret_keys(),
    };
    match keys.reseal(RESEAL_BATCH).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            access_keys = n,
            sealing_key = keys.secret_keys.map_or("", |k| k.sealing_key_id()),
            "IAM store: access keys' secrets sealed again under the first of [iam] secret_keys"
        ),
        Err(e) => {
            tracing::warn!(error = %e.message, "IAM store: cannot seal access keys' secrets again; retrying in a minute");
        }
    }
}
