//! Rate limits of the token endpoint: who the client is (peer address, or `X-Forwarded-For` only
//! from configured proxies), and budgets per client IP and per verified (issuer, subject). The
//! per-subject budget is the exchange's [`Gate`]; the HTTP layer answers load shedding and
//! timeouts ([`crate::http::error`]).
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

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

use crate::exchange::{ExchangeError, Gate, Grant, Reason, quote};

/// `[limits]`: overload protection (see [`crate::limits`]). A rate of 0 turns a limit off.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Token requests in flight at once; more are answered 503 at once (load shedding).
    #[serde(default = "LimitsConfig::d_concurrent")]
    pub max_concurrent_requests: usize,
    /// Open connections at once; more wait in the kernel's accept backlog.
    #[serde(default = "LimitsConfig::d_connections")]
    pub max_connections: usize,
    /// Sustained token requests per second from one client IP, and the burst allowed above it.
    #[serde(default = "LimitsConfig::d_ip_rate")]
    pub per_client_ip_per_second: u32,
    #[serde(default = "LimitsConfig::d_ip_burst")]
    pub per_client_ip_burst: u32,
    /// Sustained exchanges per minute for one verified (issuer, subject), and its burst.
    #[serde(default = "LimitsConfig::d_subject_rate")]
    pub per_subject_per_minute: u32,
    #[serde(default = "LimitsConfig::d_subject_burst")]
    pub per_subject_burst: u32,
    /// Proxies (CIDRs) whose `X-Forwarded-For` names the client. Others' is ignored.
    #[serde(default, deserialize_with = "proxy_networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Reads `trusted_proxies`, telling a bare address (a common slip) from a malformed network.
fn proxy_networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let written = Vec::<String>::deserialize(d)?;
    written
        .iter()
        .map(|w| {
            w.parse::<ipnet::IpNet>().map_err(|_| {
                let message = match w.parse::<IpAddr>() {
                    Ok(IpAddr::V4(ip)) => format!(
                        "trusted_proxies: {w:?} is an address, not a network; write \"{ip}/32\" for that one host"
                    ),
                    Ok(IpAddr::V6(ip)) => format!(
                        "trusted_proxies: {w:?} is an address, not a network; write \"{ip}/128\" for that one host"
                    ),
                    Err(_) => format!(
                        "trusted_proxies: {w:?} is not a network in CIDR notation (e.g. \"10.0.0.0/8\")"
                    ),
                };
                serde::de::Error::custom(message)
            })
        })
        .collect()
}

impl LimitsConfig {
    const fn d_concurrent() -> usize {
        256
    }
    const fn d_connections() -> usize {
        4096
    }
    const fn d_ip_rate() -> u32 {
        50
    }
    const fn d_ip_burst() -> u32 {
        100
    }
    const fn d_subject_rate() -> u32 {
        60
    }
    const fn d_subject_burst() -> u32 {
        20
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_concurrent_requests: Self::d_concurrent(),
            max_connections: Self::d_connections(),
            per_client_ip_per_second: Self::d_ip_rate(),
            per_client_ip_burst: Self::d_ip_burst(),
            per_subject_per_minute: Self::d_subject_rate(),
            per_subject_burst: Self::d_subject_burst(),
            trusted_proxies: Vec::new(),
        }
    }
}

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
    /// `forwarded_for` are the request's `X-Forwarded-For` header values, in order.
    pub fn client_ip<'h>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'h str>,
    ) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let forwarded = forwarded_for
            .into_iter()
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    }

    /// Spends one request of the client's budget; checked before anything is parsed.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ExchangeError> {
        match &self.per_ip {
            Some(l) => l.check_key(&ip).map_err(|not_until| {
                metrics::counter!(crate::telemetry::RATE_LIMITED, "limit" => "client_ip")
                    .increment(1);
                slow_down(
                    Reason::ClientRateLimited,
                    not_until.wait_time_from(DefaultClock::default().now()),
                    format!("too many requests from {ip}"),
                )
            }),
            None => Ok(()),
        }
    }

    /// Spends one exchange of a verified subject's budget.
    pub fn check_subject(&self, issuer: &str, subject: &str) -> Result<(), ExchangeError> {
        match &self.per_subject {
            Some(l) => l
                .check_key(&format!("{issuer}\u{1f}{subject}"))
                .map_err(|not_until| {
                    metrics::counter!(crate::telemetry::RATE_LIMITED, "limit" => "subject")
                        .increment(1);
                    slow_down(
                        Reason::SubjectRateLimited,
                        not_until.wait_time_from(DefaultClock::default().now()),
                        format!(
                            "too many exchanges for subject {} of issuer {}",
                            quote(subject),
                            quote(issuer)
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

impl Gate for Limits {
    fn admit(&self, grant: &Grant) -> Result<(), ExchangeError> {
        self.check_subject(&grant.issuer, &grant.subject)
    }
}

/// A rate-limit refusal that says when to come back (`Retry-After`, whole seconds, at least 1).
fn slow_down(reason: Reason, wait: Duration, description: String) -> ExchangeError {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    ExchangeError::new(reason, format!("{description}; retry in {seconds}s")).retry_after(seconds)
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
        let headers = ["203.0.113.9, 10.0.0.7"];
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
            assert_eq!(l.client_ip(peer, headers), expected, "{name}");
        }
        let spoofed = limits(&["10.0.0.0/8"]).client_ip("198.51.100.1".parse().unwrap(), headers);
        assert_eq!(
            spoofed,
            "198.51.100.1".parse::<IpAddr>().unwrap(),
            "a direct client cannot claim another address"
        );
    }

    #[test]
    fn a_bare_proxy_address_gets_a_cidr_hint() {
        let cases = [
            ("10.0.0.5", "write \"10.0.0.5/32\""),
            ("fd00::1", "write \"fd00::1/128\""),
            ("ten", "not a network in CIDR notation"),
        ];
        for (written, hint) in cases {
            let text = format!("trusted_proxies = [{written:?}]");
            let err = toml::from_str::<LimitsConfig>(&text).expect_err(written);
            assert!(err.to_string().contains(hint), "{written}: {err}");
        }
        let ok: LimitsConfig = toml::from_str(r#"trusted_proxies = ["10.0.0.0/8"]"#).unwrap();
        assert_eq!(ok.trusted_proxies.len(), 1);
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
        assert_eq!(e.reason, Reason::SubjectRateLimited);
        assert!(e.retry_after.is_some_and(|s| s >= 1), "{e:?}");
        assert!(
            l.check_subject("i", "other").is_ok(),
            "budgets are per subject"
        );
    }
}
