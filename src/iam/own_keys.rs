//! The gateway's own keys as a verifier of its IAM tokens, with a bounded memory of the tokens
//! whose signatures they already verified.
//!
//! Resource services present the same IAM tokens again and again (their own on every
//! Authorize call, their callers' for as long as those live), and an ES256 verification costs
//! tens of microseconds. [`OwnKeys::verify`] remembers the SHA-256 of every whole token string
//! (header, payload and signature) whose signature verified, and answers the same string again
//! without the signature math. Only the signature is remembered: every claim rule (issuer,
//! audience, expiry with leeway, not-before, revocation, the subject's account) is checked by
//! the callers on every call ([`crate::iam::authn::check`]). A token that differs in any byte
//! has another digest, so it is verified in full. The memory belongs to one set of keys: the set
//! is rebuilt when the signing keys change ([`crate::AppState::own_keys`]), and its memory with
//! it. It holds at most [`CAPACITY`] digests.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Mutex;

use aws_lc_rs::digest;

use crate::exchange::issuer_keys::{Algorithm, KeySet};
use crate::exchange::refusal::ExchangeError;

/// Most token digests one key set remembers (32 bytes each, about 4 MiB with the tables).
pub const CAPACITY: usize = 65_536;
/// Independent parts of the memory, chosen by the digest's first byte, so concurrent checks
/// seldom wait for one another.
const SHARDS: usize = 16;
/// Digests one shard's generation holds before it becomes the old one: a shard holds two
/// generations, so the whole memory at most [`CAPACITY`].
const GENERATION: usize = CAPACITY / SHARDS / 2;

/// The SHA-256 of a whole token string.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Digest([u8; 32]);

impl Digest {
    fn of(token: &str) -> Digest {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        Digest(bytes)
    }

    fn shard(&self) -> usize {
        usize::from(self.0[0]) % SHARDS
    }
}

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // A SHA-256 is uniform already: eight of its bytes are a hash for the table.
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[8..16]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

/// The hasher of [`Digest`] tables: the one word [`Digest::hash`] gives.
#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }
}

type Digests = HashSet<Digest, BuildHasherDefault<WordHasher>>;

/// One shard: the current generation and the one before. A full current generation replaces
/// the old one, so the digests used least recently go first; a digest found in the old one
/// moves to the current one.
#[derive(Default)]
struct Shard {
    current: Digests,
    old: Digests,
}

impl Shard {
    fn contains(&mut self, digest: &Digest) -> bool {
        if self.current.contains(digest) {
            return true;
        }
        if self.old.remove(digest) {
            self.insert(*digest);
            return true;
        }
        false
    }

    fn insert(&mut self, digest: Digest) {
        if self.current.len() >= GENERATION {
            self.old = std::mem::take(&mut self.current);
        }
        self.current.insert(digest);
    }

    fn len(&self) -> usize {
        self.current.len() + self.old.len()
    }
}

/// The tokens whose signatures a key set verified, by digest; at most [`CAPACITY`].
struct Verified {
    shards: [Mutex<Shard>; SHARDS],
}

impl Default for Verified {
    fn default() -> Self {
        Verified {
            shards: std::array::from_fn(|_| Mutex::default()),
        }
    }
}

impl Verified {
    fn shard(&self, digest: &Digest) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while a shard was held leaves it consistent (a set of digests, each of a
        // verified token), so a poisoned lock is used as it is.
        self.shards[digest.shard()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn contains(&self, digest: &Digest) -> bool {
        self.shard(digest).contains(digest)
    }

    fn insert(&self, digest: Digest) {
        self.shard(&digest).insert(digest);
    }

    fn len(&self) -> usize {
        (0..SHARDS)
            .map(|i| {
                self.shards[i]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }
}

/// Whether [`OwnKeys::verify`] did the signature math or found the token verified before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The signature was verified now (and the token remembered).
    Verified,
    /// The same token string was verified before with these keys.
    Remembered,
}

/// The gateway's own keys (active and published) as a [`KeySet`], with the tokens they
/// verified.
#[derive(Default)]
pub struct OwnKeys {
    keys: KeySet,
    verified: Verified,
}

impl std::fmt::Debug for OwnKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnKeys")
            .field("keys", &self.keys)
            .field("remembered", &self.verified.len())
            .finish()
    }
}

impl From<KeySet> for OwnKeys {
    fn from(keys: KeySet) -> Self {
        OwnKeys {
            keys,
            verified: Verified::default(),
        }
    }
}

impl OwnKeys {
    /// The key set itself.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies the signature of `token`, read as `kid`, `alg`, `signing_input` and
    /// `signature`, unless this very token string verified before. Refusals are
    /// [`KeySet::verify`]'s; a refused token is never remembered.
    pub fn verify(
        &self,
        token: &str,
        kid: Option<&str>,
        alg: Algorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<Verification, ExchangeError> {
        let digest = Digest::of(token);
        if self.verified.contains(&digest) {
            return Ok(Verification::Remembered);
        }
        self.keys.verify(kid, alg, signing_input, signature)?;
        self.verified.insert(digest);
        Ok(Verification::Verified)
    }

    /// How many tokens are remembered as verified.
    pub fn remembered(&self) -> usize {
        self.verified.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: usize) -> Digest {
        Digest::of(&format!("token-{i}"))
    }

    #[test]
    fn the_memory_is_bounded_and_keeps_what_is_used() {
        let verified = Verified::default();
        for i in 0..3 * CAPACITY {
            verified.insert(digest(i));
            if i % 1000 == 0 {
                // One token in constant use never leaves.
                assert!(verified.contains(&digest(0)), "after {i}");
            }
        }
        let held = verified.len();
        assert!(
            (CAPACITY / 2..=CAPACITY).contains(&held),
            "{held} held of {CAPACITY}"
        );
        assert!(verified.contains(&digest(0)));
        assert!(verified.contains(&digest(3 * CAPACITY - 1)));
        assert!(
            !verified.contains(&digest(1)),
            "the oldest unused went first"
        );
    }

    #[test]
    fn a_shard_moves_an_old_digest_to_the_current_generation() {
        let mut shard = Shard::default();
        shard.insert(digest(0));
        for i in 1..=GENERATION {
            shard.insert(digest(i));
        }
        assert!(shard.old.contains(&digest(0)) && !shard.current.contains(&digest(0)));
        assert!(shard.contains(&digest(0)));
        assert!(shard.current.contains(&digest(0)) && !shard.old.contains(&digest(0)));
        assert!(!shard.contains(&digest(GENERATION + 1)));
        assert!(shard.len() <= 2 * GENERATION);
    }

    #[test]
    fn digests_differ_in_any_byte() {
        assert!(Digest::of("a.b.c") == Digest::of("a.b.c"));
        assert!(Digest::of("a.b.c") != Digest::of("a.b.d"));
        assert!(Digest::of("a.b.c") != Digest::of("a.c.c"));
    }
}
