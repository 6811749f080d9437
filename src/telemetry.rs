//! Prometheus metrics: the metric names, and the process-wide recorder behind `GET /metrics`.
//!
//! The recorder is global (the `metrics` facade allows one per process), installed once however
//! many servers a process starts; its histogram upkeep runs on a timer ([`crate::app::upkeep`])
//! so that histograms never grow without bound. The age of each issuer key set is not kept in
//! the recorder: it is rendered from the live cache at scrape time, so a key source that leaves
//! the directory leaves `/metrics` too.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Exchanges by `outcome` (`issued`, `refused`), `error_code` and `federation`.
pub const EXCHANGES: &str = "wif_gateway_exchanges_total";
/// Exchange latency by `outcome`, in seconds, from request start to response.
pub const EXCHANGE_SECONDS: &str = "wif_gateway_exchange_duration_seconds";
/// Outbound key fetches by `source` and `result` (`ok`, `unreachable`, `invalid`).
pub const JWKS_FETCHES: &str = "wif_gateway_jwks_fetches_total";
/// Key lookups by `result`: `hit` (fresh), `stale` (served while refreshing or while the issuer
/// is down), `miss` (had to wait for a fetch).
pub const JWKS_LOOKUPS: &str = "wif_gateway_jwks_cache_lookups_total";
/// Age of each source's key set, by `source`, in seconds (rendered at scrape time).
pub const JWKS_AGE: &str = "wif_gateway_jwks_key_set_age_seconds";
/// Configuration reloads by `result` (`ok`, `error`).
pub const RELOADS: &str = "wif_gateway_config_reloads_total";
/// 1 for each signing key in use, by `kid`, `alg` and `state` (`active`, `published`).
pub const SIGNING_KEYS: &str = "wif_gateway_signing_key_info";
/// Requests refused by a rate limit, by `limit` (`client_ip`, `subject`).
pub const RATE_LIMITED: &str = "wif_gateway_rate_limited_total";
/// Requests shed at the concurrency limit or timed out, by `reason`.
pub const SHED: &str = "wif_gateway_requests_shed_total";
/// Audit events dropped because the audit writer could not keep up.
pub const AUDIT_DROPPED: &str = "wif_gateway_audit_events_dropped_total";
/// IAM API calls by `method` (full gRPC name) and `code` (gRPC code name, `OK` on success).
pub const IAM_REQUESTS: &str = "wif_gateway_iam_requests_total";
/// Mutations retried with an idempotency key and answered with the first call's operation.
pub const IAM_IDEMPOTENT_REPLAYS: &str = "wif_gateway_iam_idempotent_replays_total";
/// Resources of the IAM store held in memory, by `kind` (`federation`, `service_account`,
/// `federated_credential`, `access_binding`, `api_key`).
pub const IAM_DIRECTORY_SIZE: &str = "wif_gateway_iam_directory_size";
/// Seconds between the commit of the newest change applied from the IAM store's change log
/// and its application on this replica (whole seconds: the log records commit times so).
pub const IAM_PROPAGATION_LAG: &str = "wif_gateway_iam_propagation_lag_seconds";
/// Entries of the revocation list held in memory: revoked tokens that have not expired yet.
pub const IAM_REVOKED_TOKENS: &str = "wif_gateway_iam_revoked_tokens";

/// Checks answered by the Authorize API (`POST /iam/v1/authorize`), by `result`: `allowed`,
/// `denied` (PERMISSION_DENIED), `unauthenticated` (the check's IAM token is refused) or
/// `invalid` (unknown permission, a resource path that cannot be walked).
pub const AUTHORIZE_CHECKS: &str = "wif_gateway_iam_authorize_checks_total";
/// AWS Signature Version 4 signatures checked by the Authorize API, by `result`: `valid`, or
/// the rule that refused it (`signature_mismatch`, `unknown_access_key`, …).
pub const SIGV4_CHECKS: &str = "wif_gateway_sigv4_checks_total";
/// API keys checked by the Authorize API (each check's `apiKey`, and a resource service's own
/// `Authorization: Api-Key`), by `result`: `allowed`, `unknown`, `expired`, `suspended` (the
/// key's service account), `out_of_scope`, `denied` (the account's roles) or `invalid`.
pub const API_KEY_CHECKS: &str = "wif_gateway_api_key_checks_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle; `None` if another recorder
/// was installed first by the embedding program.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0, 2.5, 5.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .map(PrometheusBuilder::build_recorder)
                .ok()?;
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

/// The handles one exchange's outcome is counted with, registered once per label set: the
/// exchange path looks them up instead of building a labelled key (and allocating its labels)
/// on every request. Every label value comes from the configuration or the directory (a
/// federation id, a configured target, a fixed error code), so the sets are few.
pub mod exchange_metrics {
    use std::collections::HashMap;
    use std::sync::{OnceLock, RwLock};

    use metrics::{Counter, Histogram};

    use super::{EXCHANGE_SECONDS, EXCHANGES};

    /// error code → federation → resource → counter.
    type Counters = HashMap<&'static str, HashMap<Box<str>, HashMap<Box<str>, Counter>>>;
    static COUNTERS: OnceLock<RwLock<Counters>> = OnceLock::new();

    /// `wif_gateway_exchanges_total{outcome, error_code, federation, resource}`: `issued` with an
    /// empty `error_code`, or `refused` with the refusal's code and an empty `resource`.
    pub fn exchanges(
        error_code: Option<&'static str>,
        federation: &str,
        resource: &str,
    ) -> Counter {
        let counters = COUNTERS.get_or_init(RwLock::default);
        let code = error_code.unwrap_or("");
        let found = counters.read().ok().and_then(|map| {
            map.get(code)
                .and_then(|by_federation| by_federation.get(federation))
                .and_then(|by_resource| by_resource.get(resource))
                .cloned()
        });
        if let Some(counter) = found {
            return counter;
        }
        let outcome = if error_code.is_some() {
            "refused"
        } else {
            "issued"
        };
        let counter = metrics::counter!(EXCHANGES, "outcome" => outcome, "error_code" => code, "federation" => federation.to_owned(), "resource" => resource.to_owned());
        if let Ok(mut map) = counters.write() {
            map.entry(code)
                .or_default()
                .entry(federation.into())
                .or_default()
                .insert(resource.into(), counter.clone());
        }
        counter
    }

    /// `wif_gateway_jwks_cache_lookups_total{result="hit"}`: an issuer's keys found fresh in the cache,
    /// once per exchange.
    pub fn jwks_hits() -> &'static Counter {
        static HITS: OnceLock<Counter> = OnceLock::new();
        HITS.get_or_init(|| metrics::counter!(super::JWKS_LOOKUPS, "result" => "hit"))
    }

    /// `wif_gateway_exchange_duration_seconds{outcome}`.
    pub fn seconds(issued: bool) -> &'static Histogram {
        static ISSUED: OnceLock<Histogram> = OnceLock::new();
        static REFUSED: OnceLock<Histogram> = OnceLock::new();
        if issued {
            ISSUED.get_or_init(|| metrics::histogram!(EXCHANGE_SECONDS, "outcome" => "issued"))
        } else {
            REFUSED.get_or_init(|| metrics::histogram!(EXCHANGE_SECONDS, "outcome" => "refused"))
        }
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        EXCHANGES,
        "Token exchanges by outcome, error code and federation."
    );
    describe_histogram!(
        EXCHANGE_SECONDS,
        metrics::Unit::Seconds,
        "Token exchange latency."
    );
    describe_counter!(
        JWKS_FETCHES,
        "Outbound issuer key fetches by source and result."
    );
    describe_counter!(
        JWKS_LOOKUPS,
        "Issuer key lookups by result (hit, stale, miss)."
    );
    describe_counter!(RELOADS, "Configuration reloads by result.");
    describe_counter!(
        SIGV4_CHECKS,
        "AWS Signature Version 4 signatures checked by the Authorize API, by result (valid, or the rule that refused it)."
    );
    describe_gauge!(
        SIGNING_KEYS,
        "Signing keys in use, by kid, algorithm and state."
    );
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit.");
    describe_counter!(SHED, "Requests shed at the concurrency limit or timed out.");
    describe_counter!(
        AUDIT_DROPPED,
        "Audit events dropped because the writer fell behind."
    );
    describe_counter!(IAM_REQUESTS, "IAM API calls by method and gRPC code.");
    describe_counter!(
        IAM_IDEMPOTENT_REPLAYS,
        "IAM mutations retried with an idempotency key, answered with the first call's operation."
    );
    describe_counter!(
        AUTHORIZE_CHECKS,
        "Authorize API checks by result (allowed, denied, unauthenticated, invalid)."
    );
    describe_counter!(
        API_KEY_CHECKS,
        "API keys checked by the Authorize API, by result."
    );
    describe_gauge!(
        IAM_DIRECTORY_SIZE,
        "IAM store resources held in memory, by kind."
    );
    describe_gauge!(
        IAM_PROPAGATION_LAG,
        "Seconds from the commit of the newest applied IAM change to its application here."
    );
    describe_gauge!(
        IAM_REVOKED_TOKENS,
        "Revoked gateway tokens not yet expired, held in memory."
    );
}

/// Every metric name this crate exports.
pub const ALL: [&str; 18] = [
    EXCHANGES,
    EXCHANGE_SECONDS,
    JWKS_FETCHES,
    JWKS_LOOKUPS,
    JWKS_AGE,
    RELOADS,
    SIGNING_KEYS,
    RATE_LIMITED,
    SHED,
    AUDIT_DROPPED,
    IAM_REQUESTS,
    IAM_IDEMPOTENT_REPLAYS,
    IAM_DIRECTORY_SIZE,
    IAM_PROPAGATION_LAG,
    IAM_REVOKED_TOKENS,
    AUTHORIZE_CHECKS,
    SIGV4_CHECKS,
    API_KEY_CHECKS,
];

/// Appends the key set age gauge, one sample per cached key source, to a text exposition.
pub fn render_key_set_ages(text: &mut String, ages: &[(String, Duration)]) {
    if ages.is_empty() {
        return;
    }
    let _ = writeln!(text, "# HELP {JWKS_AGE} Age of each issuer key set.");
    let _ = writeln!(text, "# TYPE {JWKS_AGE} gauge");
    for (source, age) in ages {
        let _ = writeln!(
            text,
            "{JWKS_AGE}{{source=\"{}\"}} {}",
            label_value(source),
            age.as_secs_f64()
        );
    }
}

/// Escapes a Prometheus label value (text format: backslash, double quote, newline).
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_value(
                r#"a"b\c
d"#
            ),
            r#"a\"b\\c\nd"#
        );
    }
}
