//! `keys::KeySet::from_jwks_json` on arbitrary bytes: an issuer's JWKS as fetched over the
//! network, then `KeySet::verify` of made-up signatures with every key the set accepted.
//!
//! Invariants: an accepted set holds 1 to `MAX_KEYS` keys and knows each of its kids; no
//! signature that was not made with the private key verifies, here a message derived from the
//! input with all-zero, all-ones, small-integer, identity-point and pseudo-random signatures of
//! every length an algorithm uses (the CVE-2022-21449 family of "psychic signatures").

#![no_main]

use libfuzzer_sys::fuzz_target;
use wif_gateway::exchange::issuer_keys::{Algorithm, KeySet, MAX_KEYS};

fuzz_target!(|data: &[u8]| {
    let Ok(set) = KeySet::from_jwks_json(data) else {
        return;
    };
    assert!(!set.is_empty(), "an empty key set was accepted");
    assert!(
        (1..=MAX_KEYS).contains(&set.len()),
        "{} keys accepted",
        set.len()
    );
    for kid in set.kids() {
        assert!(set.knows(kid), "kid {kid:?} not known to its own set");
    }

    let seed = fnv1a(data);
    let message = format!("eyJhbGciOiJSUzI1NiJ9.{seed:016x}");
    let mut kids: Vec<Option<&str>> = set.kids().take(2).map(Some).collect();
    kids.push(None);
    kids.push(Some("kid-that-is-not-there"));
    for alg in Algorithm::ALL {
        let sigs = garbage_signatures(alg, seed);
        for kid in &kids {
            for sig in &sigs {
                let verdict = set.verify(*kid, alg, message.as_bytes(), sig);
                assert!(
                    verdict.is_err(),
                    "a made-up {alg} signature of {} bytes verified with kid {kid:?}: {sig:02x?}",
                    sig.len()
                );
            }
        }
    }
});

/// Signatures nobody signed: the shapes that broke real verifiers, at each length `alg` uses.
fn garbage_signatures(alg: Algorithm, seed: u64) -> Vec<Vec<u8>> {
    let lengths: &[usize] = match alg {
        Algorithm::ES256 | Algorithm::EdDSA => &[64],
        Algorithm::ES384 => &[96],
        _ => &[256, 384, 512],
    };
    let mut sigs = vec![Vec::new(), vec![1]];
    for &len in lengths {
        sigs.push(vec![0; len]);
        sigs.push(vec![0xff; len]);
        // r = s = 1 for ECDSA; the integer 1 (1^e = 1) for RSA.
        let mut ones = vec![0; len];
        ones[len / 2 - 1] = 1;
        ones[len - 1] = 1;
        sigs.push(ones);
        // Ed25519: R = the identity point, S = 0.
        let mut identity = vec![0; len];
        identity[0] = 1;
        sigs.push(identity);
        sigs.push(pseudo_random(seed, len));
    }
    sigs
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}
