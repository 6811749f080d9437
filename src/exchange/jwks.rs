//! Fetching and caching issuers' key sets: the [`KeyProvider`] the server uses.
//!
//! | situation | behaviour |
//! |---|---|
//! | keys fresh (`Cache-Control: max-age` clamped to [min, max] ttl, default ttl otherwise) | served from memory, already parsed |
//! | keys past their freshness | served at once; one background refresh (stale-while-revalidate) |
//! | no keys yet | the request waits for the one fetch in flight for that source (single flight) |
//! | token names an unknown `kid` | one forced refetch per source per `refetch_cooldown` (rotation), then "unknown kid" |
//! | fetch fails | last good keys served up to `max_stale`; retries back off exponentially; readiness unaffected |
//!
//! Fetches are HTTPS only unless the federation allows plain HTTP, with connect and total
//! timeouts, a 256 KiB body cap, redirects only within the same scheme and host, no proxy
//! unless the environment names one, and never a URL taken from a token. With OIDC discovery, the
//! discovery document must name the configured issuer, and its `jwks_uri` must be on the issuer's
//! host (name another host in `jwks_url` explicitly to trust it).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::directory::{Directory, KeySource, KeySourceKind};
use super::issuer_keys::KeySet;
use super::key_provider::{KeyError, KeyLookup, KeyProvider};
use crate::report::error_chain;
use crate::telemetry;
use serde::Deserialize;

/// The most bytes read from a discovery or JWKS response (`docs/design.md#jwks-cache`).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
const MAX_REDIRECTS: usize = 3;

/// `[jwks]`: fetching and caching issuers' keys.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    /// Freshness when the response has no `Cache-Control: max-age`.
    #[serde(default = "JwksConfig::d_default_ttl")]
    pub default_ttl_seconds: u64,
    /// `max-age` is clamped to [min, max].
    #[serde(default = "JwksConfig::d_min_ttl")]
    pub min_ttl_seconds: u64,
    #[serde(default = "JwksConfig::d_max_ttl")]
    pub max_ttl_seconds: u64,
    /// A token with an unknown `kid` triggers a refetch at most once per this many seconds per
    /// source, so that forged `kid`s cannot turn the gateway into a fetch amplifier.
    #[serde(default = "JwksConfig::d_cooldown")]
    pub refetch_cooldown_seconds: u64,
    /// How long the last good keys are still used while the issuer cannot be reached.
    #[serde(default = "JwksConfig::d_max_stale")]
    pub max_stale_seconds: u64,
    /// TCP connect timeout for key fetches.
    #[serde(default = "JwksConfig::d_connect")]
    pub connect_timeout_seconds: u64,
    /// Whole-fetch timeout (connect, headers, body).
    #[serde(default = "JwksConfig::d_timeout")]
    pub timeout_seconds: u64,
    /// After a failed fetch, the first retry waits this long; each further failure doubles it up
    /// to `max_failure_backoff_seconds`.
    #[serde(default = "JwksConfig::d_backoff")]
    pub failure_backoff_seconds: u64,
    #[serde(default = "JwksConfig::d_max_backoff")]
    pub max_failure_backoff_seconds: u64,
}

impl JwksConfig {
    const fn d_default_ttl() -> u64 {
        600
    }
    const fn d_min_ttl() -> u64 {
        60
    }
    const fn d_max_ttl() -> u64 {
        3600
    }
    const fn d_cooldown() -> u64 {
        30
    }
    const fn d_max_stale() -> u64 {
        86_400
    }
    const fn d_connect() -> u64 {
        2
    }
    const fn d_timeout() -> u64 {
        5
    }
    const fn d_backoff() -> u64 {
        1
    }
    const fn d_max_backoff() -> u64 {
        60
    }
}

impl Default for JwksConfig {
    fn default() -> Self {
        JwksConfig {
            default_ttl_seconds: Self::d_default_ttl(),
            min_ttl_seconds: Self::d_min_ttl(),
            max_ttl_seconds: Self::d_max_ttl(),
            refetch_cooldown_seconds: Self::d_cooldown(),
            max_stale_seconds: Self::d_max_stale(),
            connect_timeout_seconds: Self::d_connect(),
            timeout_seconds: Self::d_timeout(),
            failure_backoff_seconds: Self::d_backoff(),
            max_failure_backoff_seconds: Self::d_max_backoff(),
        }
    }
}

/// Keys of one source, as fetched.
struct Cached {
    keys: Arc<KeySet>,
    fetched_at: Instant,
    fresh_until: Instant,
}

/// Bookkeeping guarded by the single-flight lock.
#[derive(Default)]
struct Book {
    last_forced: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<KeyError>,
}

/// One source's state. `current` is read lock-free; `book` is held across a fetch, which makes
/// the fetch single-flight.
struct SourceState {
    source: Arc<KeySource>,
    client: Result<reqwest::Client, KeyError>,
    current: ArcSwapOption<Cached>,
    book: Mutex<Book>,
    /// A background (stale-while-revalidate) refresh is running: start no second one.
    refreshing: std::sync::atomic::AtomicBool,
}

/// The server's key provider. Cheap to clone; states survive config reloads (keyed by
/// [`KeySource::cache_key`]).
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    config: JwksConfig,
    states: RwLock<HashMap<String, Arc<SourceState>>>,
}

impl JwksCache {
    pub fn new(config: JwksConfig) -> Self {
        JwksCache {
            inner: Arc::new(Inner {
                config,
                states: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The age of each fetched source's key set, by cache key.
    pub fn ages(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        let states = match self.inner.states.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        states
            .iter()
            .filter_map(|(key, s)| {
                s.current
                    .load()
                    .as_ref()
                    .map(|c| (key.clone(), now.saturating_duration_since(c.fetched_at)))
            })
            .collect()
    }

    /// Forgets the key sources that `directory` no longer names, so that federations removed at
    /// run time leave neither cached keys nor metrics behind.
    pub fn retain_sources(&self, directory: &Directory) {
        let named: HashSet<&str> = directory
            .federations()
            .map(|f| f.key_source.cache_key.as_str())
            .collect();
        let mut states = match self.inner.states.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        states.retain(|key, _| named.contains(key.as_str()));
    }

    /// How many key sources the cache holds state for.
    pub fn source_count(&self) -> usize {
        match self.inner.states.read() {
            Ok(g) => g.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    fn state(&self, source: &Arc<KeySource>) -> Arc<SourceState> {
        if let Ok(states) = self.inner.states.read()
            && let Some(s) = states.get(&source.cache_key)
        {
            return s.clone();
        }
        let mut states = match self.inner.states.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        states
            .entry(source.cache_key.clone())
            .or_insert_with(|| {
                Arc::new(SourceState {
                    client: build_client(source, &self.inner.config),
                    source: source.clone(),
                    current: ArcSwapOption::empty(),
                    book: Mutex::new(Book::default()),
                    refreshing: std::sync::atomic::AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Refreshes `state` if it is still needed once the single-flight lock is held.
    async fn refresh(&self, state: &Arc<SourceState>, kid: Option<&str>) -> KeyLookup {
        let config = &self.inner.config;
        let mut book = state.book.lock().await;
        let now = Instant::now();
        let current = state.current.load_full();
        if let Some(c) = &current {
            let fresh = now < c.fresh_until;
            let has_kid = kid.is_none_or(|k| c.keys.knows(k));
            if fresh && has_kid {
                // Someone else refreshed while this request waited for the lock.
                return KeyLookup {
                    keys: Some(c.keys.clone()),
                    error: None,
                };
            }
            if fresh {
                let cooldown = Duration::from_secs(config.refetch_cooldown_seconds);
                if book.last_forced.is_some_and(|t| now < t + cooldown) {
                    return KeyLookup {
                        keys: Some(c.keys.clone()),
                        error: book.last_error.clone(),
                    };
                }
                book.last_forced = Some(now);
            }
        }
        if let Some(retry_at) = book.retry_at
            && now < retry_at
        {
            return self.stale_or_error(current.as_deref(), book.last_error.clone(), now);
        }
        let source = state.source.cache_key.clone();
        match fetch(state, config).await {
            Ok((keys, ttl)) => {
                metrics::counter!(telemetry::JWKS_FETCHES, "source" => source, "result" => "ok")
                    .increment(1);
                let now = Instant::now();
                if !keys.skipped.is_empty() {
                    tracing::warn!(source = %state.source.cache_key, skipped = ?keys.skipped, "issuer JWKS has unusable keys");
                }
                tracing::info!(source = %state.source.cache_key, keys = keys.len(), ttl_seconds = ttl.as_secs(), "fetched issuer keys");
                let keys = Arc::new(keys);
                state.current.store(Some(Arc::new(Cached {
                    keys: keys.clone(),
                    fetched_at: now,
                    fresh_until: now + ttl,
                })));
                *book = Book {
                    last_forced: book.last_forced,
                    ..Book::default()
                };
                KeyLookup {
                    keys: Some(keys),
                    error: None,
                }
            }
            Err(e) => {
                let result = match &e {
                    KeyError::Unreachable(_) => "unreachable",
                    KeyError::Invalid(_) => "invalid",
                };
                metrics::counter!(telemetry::JWKS_FETCHES, "source" => source, "result" => result)
                    .increment(1);
                book.failures = book.failures.saturating_add(1);
                let backoff = config
                    .failure_backoff_seconds
                    .saturating_mul(1u64 << book.failures.saturating_sub(1).min(16))
                    .min(config.max_failure_backoff_seconds);
                book.retry_at = Some(Instant::now() + Duration::from_secs(backoff));
                book.last_error = Some(e.clone());
                tracing::warn!(source = %state.source.cache_key, error = %e, retry_in_seconds = backoff, "fetching issuer keys failed");
                self.stale_or_error(current.as_deref(), Some(e), now)
            }
        }
    }

    fn stale_or_error(
        &self,
        current: Option<&Cached>,
        error: Option<KeyError>,
        now: Instant,
    ) -> KeyLookup {
        let max_stale = Duration::from_secs(self.inner.config.max_stale_seconds);
        match current {
            Some(c) if now < c.fetched_at + max_stale => {
                metrics::counter!(telemetry::JWKS_LOOKUPS, "result" => "stale").increment(1);
                KeyLookup {
                    keys: Some(c.keys.clone()),
                    error,
                }
            }
            _ => KeyLookup {
                keys: None,
                error: Some(
                    error.unwrap_or_else(|| KeyError::Unreachable("keys have expired".into())),
                ),
            },
        }
    }
}

impl KeyProvider for JwksCache {
    async fn keys(&self, source: &Arc<KeySource>, kid: Option<&str>) -> KeyLookup {
        if let KeySourceKind::Inline { keys, .. } = &source.kind {
            return KeyLookup {
                keys: Some(keys.clone()),
                error: None,
            };
        }
        let state = self.state(source);
        if let Some(c) = state.current.load_full() {
            let has_kid = kid.is_none_or(|k| c.keys.knows(k));
            let now = Instant::now();
            if has_kid && now < c.fresh_until {
                telemetry::exchange_metrics::jwks_hits().increment(1);
                return KeyLookup {
                    keys: Some(c.keys.clone()),
                    error: None,
                };
            }
            if has_kid
                && now < c.fetched_at + Duration::from_secs(self.inner.config.max_stale_seconds)
            {
                // Stale but usable: answer now, refresh in the background (one at a time).
                metrics::counter!(telemetry::JWKS_LOOKUPS, "result" => "stale").increment(1);
                if !state
                    .refreshing
                    .swap(true, std::sync::atomic::Ordering::AcqRel)
                {
                    let this = self.clone();
                    let state = state.clone();
                    tokio::spawn(async move {
                        this.refresh(&state, None).await;
                        state
                            .refreshing
                            .store(false, std::sync::atomic::Ordering::Release);
                    });
                }
                return KeyLookup {
                    keys: Some(c.keys.clone()),
                    error: None,
                };
            }
        }
        metrics::counter!(telemetry::JWKS_LOOKUPS, "result" => "miss").increment(1);
        self.refresh(&state, kid).await
    }
}

fn build_client(source: &KeySource, config: &JwksConfig) -> Result<reqwest::Client, KeyError> {
    let allow_http = source.allow_http;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.stop();
        };
        let same_origin = attempt.url().scheme() == first.scheme()
            && attempt.url().host_str() == first.host_str()
            && attempt.url().port_or_known_default() == first.port_or_known_default();
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if !same_origin {
            let to = attempt.url().to_string();
            attempt.error(format!("redirect to another scheme or host refused ({to})"))
        } else {
            attempt.follow()
        }
    });
    let mut builder = reqwest::Client::builder()
        .redirect(policy)
        .https_only(!allow_http)
        .connect_timeout(Duration::from_secs(config.connect_timeout_seconds))
        .timeout(Duration::from_secs(config.timeout_seconds))
        .user_agent(concat!("wif-gateway/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30));
    if let Some(path) = &source.ca_bundle {
        let pem = std::fs::read(path)
            .map_err(|e| KeyError::Invalid(format!("ca_bundle {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| KeyError::Invalid(format!("ca_bundle {}: {e}", path.display())))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| KeyError::Invalid(format!("cannot build an HTTP client: {e}")))
}

/// Fetches a source's keys and how long they stay fresh.
async fn fetch(state: &SourceState, config: &JwksConfig) -> Result<(KeySet, Duration), KeyError> {
    let client = state.client.as_ref().map_err(Clone::clone)?;
    let jwks_url = match &state.source.kind {
        KeySourceKind::JwksUrl(url) => url.clone(),
        KeySourceKind::Discovery { issuer } => {
            discover(client, issuer, state.source.allow_http).await?
        }
        KeySourceKind::Inline { .. } => {
            return Err(KeyError::Invalid(
                "inline key sets are never fetched".into(),
            ));
        }
    };
    let (body, headers) = get_capped(client, jwks_url.as_str()).await?;
    let keys =
        KeySet::from_jwks_json(&body).map_err(|e| KeyError::Invalid(format!("{jwks_url}: {e}")))?;
    Ok((keys, freshness(&headers, config)))
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

async fn discover(
    client: &reqwest::Client,
    issuer: &str,
    allow_http: bool,
) -> Result<url::Url, KeyError> {
    let doc_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let (body, _) = get_capped(client, &doc_url).await?;
    let doc: Discovery = serde_json::from_slice(&body).map_err(|e| {
        KeyError::Invalid(format!("{doc_url}: not an OIDC discovery document: {e}"))
    })?;
    if doc.issuer != issuer {
        return Err(KeyError::Invalid(format!(
            "{doc_url} names the issuer {:?}, not {issuer:?} (OIDC Discovery §4.3)",
            doc.issuer
        )));
    }
    let jwks = url::Url::parse(&doc.jwks_uri).map_err(|e| {
        KeyError::Invalid(format!(
            "{doc_url}: jwks_uri {:?} is not a URL: {e}",
            doc.jwks_uri
        ))
    })?;
    let issuer_url = url::Url::parse(issuer)
        .map_err(|e| KeyError::Invalid(format!("issuer {issuer:?} is not a URL: {e}")))?;
    if jwks.host_str() != issuer_url.host_str() {
        return Err(KeyError::Invalid(format!(
            "{doc_url}: jwks_uri {:?} is not on the issuer's host; name it in the federation's jwks_url to trust it",
            doc.jwks_uri
        )));
    }
    if jwks.scheme() != "https" && !(allow_http && jwks.scheme() == "http") {
        return Err(KeyError::Invalid(format!(
            "{doc_url}: jwks_uri {:?} is not https",
            doc.jwks_uri
        )));
    }
    Ok(jwks)
}

/// GETs `url`, reading at most [`MAX_BODY_BYTES`].
async fn get_capped(client: &reqwest::Client, url: &str) -> Result<(Vec<u8>, HeaderMap), KeyError> {
    let unreachable = |e: reqwest::Error| {
        if e.is_redirect() || e.is_builder() {
            KeyError::Invalid(format!("{url}: {}", error_chain(&e)))
        } else {
            KeyError::Unreachable(format!("{url}: {}", error_chain(&e)))
        }
    };
    let mut response = client
        .get(url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if !status.is_success() {
        let message = format!("{url}: HTTP {status}");
        return Err(if status.is_server_error() || status.as_u16() == 429 {
            KeyError::Unreachable(message)
        } else {
            KeyError::Invalid(message)
        });
    }
    let too_large = || {
        KeyError::Invalid(format!(
            "{url}: response is larger than {MAX_BODY_BYTES} bytes"
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, headers))
}

/// Freshness from `Cache-Control: max-age`, clamped to the configured bounds.
fn freshness(headers: &HeaderMap, config: &JwksConfig) -> Duration {
    let max_age = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|d| {
            d.trim()
                .strip_prefix("max-age=")
                .and_then(|n| n.trim().parse::<u64>().ok())
        });
    let no_cache = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("no-cache") || v.contains("no-store"));
    let seconds = match (max_age, no_cache) {
        (_, true) => config.min_ttl_seconds,
        (Some(age), false) => age.clamp(config.min_ttl_seconds, config.max_ttl_seconds),
        (None, false) => config.default_ttl_seconds,
    };
    Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn freshness_follows_cache_control_within_bounds() {
        let config = JwksConfig::default();
        let cases = [
            ("none", None, 600),
            ("max-age", Some("public, max-age=1200"), 1200),
            ("too short", Some("max-age=5"), 60),
            ("too long", Some("max-age=999999"), 3600),
            ("no-cache", Some("no-cache"), 60),
            ("garbage", Some("max-age=abc"), 600),
        ];
        for (name, header, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(h) = header {
                headers.insert(CACHE_CONTROL, HeaderValue::from_static(h));
            }
            assert_eq!(freshness(&headers, &config).as_secs(), expected, "{name}");
        }
    }
}
