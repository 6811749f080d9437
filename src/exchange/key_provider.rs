//! What the trust decision needs from the outside world: the keys of a key source. The decision
//! ([`super::authorize`]) sees only the [`KeyProvider`] trait; [`super::jwks::JwksCache`] fetches
//! and caches in the server, and tests and benchmarks pass a fixed set.

use std::future::Future;
use std::sync::Arc;

use super::directory::KeySource;
use super::issuer_keys::KeySet;

/// Why keys could not be had from a key source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Network failure, timeout, HTTP 5xx: worth retrying.
    #[error("{0}")]
    Unreachable(String),
    /// The issuer answered with something unusable: a bad document, a refused redirect, a body
    /// over the cap, no usable key.
    #[error("{0}")]
    Invalid(String),
}

/// What a key provider has for a source: the keys it could get (fresh or stale) and, if its last
/// attempt to refresh them failed, why.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    pub keys: Option<Arc<KeySet>>,
    pub error: Option<KeyError>,
}

/// The key source the exchange logic sees. `kid` lets the provider refetch when a token names a
/// key it does not have yet (rotation), within its own rate limits.
pub trait KeyProvider: Sync {
    fn keys(
        &self,
        source: &Arc<KeySource>,
        kid: Option<&str>,
    ) -> impl Future<Output = KeyLookup> + Send;
}
