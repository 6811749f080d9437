//! An API key's secret and the keys the gateway holds in memory by it: what the API hands out
//! once, what the store keeps instead, and what a presented secret is found by. The service
//! ([`super::api_keys`]) makes secrets and checks presented ones; the store's followed state
//! ([`super::live`]) fills the [`ApiKeyTable`].
//!
//! The secret is `AQVN` and 36 characters of `[A-Za-z0-9]` drawn from the operating system's
//! generator (`aws_lc_rs::rand`, rejection sampling, so each character is uniform): 36 × log2 62
//! ≈ 214 bits. The store keeps its SHA-256 ([`ApiKeySecret::hash`]) and its mask, `****` and
//! its last 6 characters, never the secret. A plain, unsalted SHA-256 is the right hash here:
//! salts and slow hashes (bcrypt, Argon2) make guessing low-entropy passwords from a stolen
//! hash expensive, and nobody guesses a 214-bit random value, hashed or not; a fast,
//! deterministic hash is also what lets a presented key be found by one lookup of its hash
//! ([`ApiKeyTable::get`]), so that hashes are compared, never secrets. [`ApiKeySecret`] shows
//! nothing of itself in `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use aws_lc_rs::digest;

use super::ids::RandomUnavailable;
use super::store::ApiKey;

/// What every secret starts with (Yandex's API keys do).
pub const SECRET_PREFIX: &str = "AQVN";
/// Random characters after the prefix.
pub const SECRET_RANDOM_CHARS: usize = 36;
/// How many of the secret's last characters `masked_secret` shows.
pub const MASK_VISIBLE_CHARS: usize = 6;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// An API key's secret, as handed out once. Its `Debug` is redacted, so it cannot reach a log
/// by accident; the text is read only with [`ApiKeySecret::expose`].
pub struct ApiKeySecret(String);

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

impl ApiKeySecret {
    /// A new random secret.
    pub fn generate() -> Result<ApiKeySecret, RandomUnavailable> {
        let mut secret = String::with_capacity(SECRET_PREFIX.len() + SECRET_RANDOM_CHARS);
        secret.push_str(SECRET_PREFIX);
        let mut random = [0u8; 64];
        while secret.len() < SECRET_PREFIX.len() + SECRET_RANDOM_CHARS {
            aws_lc_rs::rand::fill(&mut random).map_err(|_| RandomUnavailable)?;
            // 248 = 4 × 62: bytes below it map uniformly onto the alphabet; the rest are
            // thrown away rather than bias the first characters.
            for b in random.iter().filter(|b| **b < 248) {
                if secret.len() == SECRET_PREFIX.len() + SECRET_RANDOM_CHARS {
                    break;
                }
                secret.push(char::from(ALPHABET[usize::from(*b % 62)]));
            }
        }
        Ok(ApiKeySecret(secret))
    }

    /// The secret's text: for the one answer that hands it out.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps: the SHA-256 of the secret, lowercase hex.
    pub fn hash(&self) -> String {
        hex(&secret_digest(&self.0))
    }

    /// `****` and the last 6 characters (`ApiKey.masked_secret`).
    pub fn masked(&self) -> String {
        let tail = self.0.len().saturating_sub(MASK_VISIBLE_CHARS);
        format!("****{}", self.0.get(tail..).unwrap_or_default())
    }
}

/// The SHA-256 of a presented secret: what the keys in memory are found by.
pub fn secret_digest(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref());
    out
}

pub use crate::signing::hex;

/// A SHA-256 back from its lowercase hex ([`ApiKeySecret::hash`]); `None` for other text.
pub fn digest_from_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// An API key as the check of a presented secret needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveApiKey {
    pub id: Box<str>,
    pub service_account_id: Box<str>,
    /// Empty: the key is not limited.
    pub scopes: Box<[Box<str>]>,
    /// Unix seconds; `None`: never.
    pub expires_at: Option<i64>,
}

/// The API keys of the store as followed, by the SHA-256 of their secrets. Cheap to clone;
/// clones share the table.
#[derive(Clone, Default)]
pub struct ApiKeyTable {
    maps: Arc<RwLock<ApiKeyMaps>>,
}

#[derive(Default)]
struct ApiKeyMaps {
    by_hash: HashMap<[u8; 32], Arc<LiveApiKey>>,
    /// Key id → the hash it is held under, for updates and deletions (the log names ids).
    hash_of: HashMap<Box<str>, [u8; 32]>,
}

impl std::fmt::Debug for ApiKeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyTable")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl ApiKeyTable {
    /// The key whose secret has the SHA-256 `digest`.
    pub fn get(&self, digest: &[u8; 32]) -> Option<Arc<LiveApiKey>> {
        self.read().by_hash.get(digest).cloned()
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.read().by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts a stored key in, or replaces it. A hash the store did not write (not 64 hex
    /// characters) is left out: no secret could match it.
    pub fn insert(&self, key: &ApiKey) {
        let Some(digest) = digest_from_hex(&key.secret_hash) else {
            tracing::warn!(api_key = %key.id, "IAM store: an API key's hash is malformed; the key is ignored");
            return;
        };
        let live = Arc::new(LiveApiKey {
            id: key.id.as_str().into(),
            service_account_id: key.service_account_id.as_str().into(),
            scopes: key.scopes.iter().map(|s| s.as_str().into()).collect(),
            expires_at: key.expires_at,
        });
        let mut maps = self.write();
        if let Some(old) = maps.hash_of.insert(key.id.as_str().into(), digest)
            && old != digest
        {
            maps.by_hash.remove(&old);
        }
        maps.by_hash.insert(digest, live);
    }

    /// Takes the key `id` out.
    pub fn remove(&self, id: &str) {
        let mut maps = self.write();
        if let Some(digest) = maps.hash_of.remove(id) {
            maps.by_hash.remove(&digest);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ApiKeyMaps> {
        self.maps.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ApiKeyMaps> {
        self.maps.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_yandex_shape_and_never_repeat() {
        let mut seen = std::collections::HashSet::new();
        let mut used = std::collections::HashSet::new();
        for _ in 0..500 {
            let secret = ApiKeySecret::generate().unwrap();
            let text = secret.expose();
            assert_eq!(text.len(), 40, "{text}");
            assert!(text.starts_with("AQVN"), "{text}");
            assert!(
                text[4..].bytes().all(|b| b.is_ascii_alphanumeric()),
                "{text}"
            );
            used.extend(text[4..].bytes());
            assert!(seen.insert(text.to_owned()));
            let masked = secret.masked();
            assert_eq!(masked, format!("****{}", &text[34..]));
            assert_eq!(secret.hash().len(), 64);
            assert_eq!(digest_from_hex(&secret.hash()), Some(secret_digest(text)));
        }
        assert_eq!(used.len(), 62, "every character of [A-Za-z0-9] appears");
    }

    #[test]
    fn hex_round_trips_and_refuses_other_text() {
        let digest = secret_digest("AQVNx");
        assert_eq!(digest_from_hex(&hex(&digest)), Some(digest));
        assert_eq!(
            hex(&secret_digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "SHA-256 of \"abc\" (FIPS 180-2)"
        );
        for bad in ["", "ab", &"g".repeat(64), &"A".repeat(64), &"a".repeat(63)] {
            assert_eq!(digest_from_hex(bad), None, "{bad}");
        }
    }
}
