//! Overload protection for the token endpoint: who the client is (peer address, or
//! `X-Forwarded-For` only from configured proxies), rate limits per client IP and per
//! (issuer, subject), and the answers for limits, load shedding and timeouts.
//!
//! | limit | keyed by | checked | answer |
//! |---|---|---|---|
//! | `per_client_ip_*` | client IP | before any parsing | 429 `slow_down`, `Retry-After` |
//! | `per_subject_*` | verified (`iss`, `sub`) | after the signature verified, before minting | 429 `slow_down`, `Retry-After` |
//! | `max_concurrent_requests` | — | token endpoint, in flight | 503 `overloaded` at once (load shed) |
//! | `max_connections` | — | accept loop | connections wait in the kernel backlog |
//!
//! The subject limit counts only tokens whose signature verified, so nobody can exhaust another
//! workload's budget with forged tokens naming its subject.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::WebError;
use crate::config::LimitsConfig;

/// The compiled limits.
pub struct Limits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_subject: Option<DefaultKeyedRateLimiter<String>>,
    trusted_proxies: Vec<ipnet::IpNet>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_period: u32,
    period: Duration,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_period)?;
    let quota = Quota::with_period(period / rate.get())?
        .allow_burst(NonZeroU32::new(burst).unwrap_or(rate));
    Some(RateLimiter::keyed(quota))
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
        Limits {
            per_ip: limiter(
                config.per_client_ip_per_second,
                Duration::from_secs(1),
                config.per_client_ip_burst,
            ),
            per_subject: limiter(
                config.per_subject_per_minute,
                Duration::from_secs(60),
                config.per_subject_burst,
            ),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }

    /// The client's address: the peer, unless the peer is a trusted proxy, in which case the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), WebError> {
        match &self.per_ip {
            Some(l) => l.check_key(&ip).map_err(|not_until| {
                metrics::counter!(crate::telemetry::RATE_LIMITED, "limit" => "client_ip")
                    .increment(1);
                slow_down(
                    not_until.wait_time_from(DefaultClock::default().now()),
                    format!("too many requests from {ip}"),
                )
            }),
            None => Ok(()),
        }
    }

    pub fn check_subject(&self, issuer: &str, subject: &str) -> Result<(), WebError> {
        match &self.per_subject {
            Some(l) => l
                .check_key(&format!("{issuer}\u{1f}{subject}"))
                .map_err(|not_until| {
                    metrics::counter!(crate::telemetry::RATE_LIMITED, "limit" => "subject")
                        .increment(1);
                    slow_down(
                        not_until.wait_time_from(DefaultClock::default().now()),
                        format!(
                            "too many exchanges for subject {} of issuer {}",
                            crate::exchange::shown(subject),
                            crate::exchange::shown(issuer)
                        ),
                    )
                }),
            None => Ok(()),
        }
    }

    /// Forgets keys whose budget is full again, so that the maps do not grow without bound.
    pub fn retain_recent(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_subject {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

fn slow_down(wait: Duration, description: String) -> WebError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    WebError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "slow_down",
        "rate_limited",
        format!("{description}; retry in {seconds}s"),
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)))
}

/// Turns errors of the tower middleware (timeout, load shedding) into JSON answers.
pub async fn middleware_error(error: tower::BoxError) -> WebError {
    if error.is::<tower::timeout::error::Elapsed>() {
        metrics::counter!(crate::telemetry::SHED, "reason" => "timeout").increment(1);
        WebError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "request_timeout",
            "the request took too long",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        metrics::counter!(crate::telemetry::SHED, "reason" => "overloaded").increment(1);
        WebError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "overloaded",
            "the gateway is at its concurrency limit; retry shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    } else {
        tracing::error!(%error, "middleware failed");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal",
            "internal error",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(proxies: &[&str]) -> Limits {
        Limits::new(&LimitsConfig {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            ..LimitsConfig::default()
        })
    }

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.0.0.7"),
        );
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let cases = [
            ("no trusted proxy", limits(&[]), peer),
            (
                "trusted proxy chain",
                limits(&["10.0.0.0/8"]),
                "203.0.113.9".parse().unwrap(),
            ),
            ("other proxies untrusted", limits(&["192.168.0.0/16"]), peer),
        ];
        for (name, l, expected) in cases {
            assert_eq!(l.client_ip(peer, &headers), expected, "{name}");
        }
        let spoofed = limits(&["10.0.0.0/8"]).client_ip("198.51.100.1".parse().unwrap(), &headers);
        assert_eq!(
            spoofed,
            "198.51.100.1".parse::<IpAddr>().unwrap(),
            "a direct client cannot claim another address"
        );
    }

    #[test]
    fn budgets_run_out_and_report_a_wait() {
        let l = Limits::new(&LimitsConfig {
            per_subject_per_minute: 1,
            per_subject_burst: 2,
            ..LimitsConfig::default()
        });
        assert!(l.check_subject("i", "s").is_ok());
        assert!(l.check_subject("i", "s").is_ok());
        let e = l.check_subject("i", "s").expect_err("limited");
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            e.headers.iter().any(|(n, v)| n == header::RETRY_AFTER
                && v.to_str().unwrap().parse::<u64>().unwrap() >= 1)
        );
        assert!(
            l.check_subject("i", "other").is_ok(),
            "budgets are per subject"
        );
    }
}
