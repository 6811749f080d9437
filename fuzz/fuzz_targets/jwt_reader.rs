//! `jwt::read` on arbitrary text: the `subject_token` of a token-exchange request, before anything
//! about it is trusted.
//!
//! Invariants of an accepted token: at most `MAX_TOKEN_BYTES`; exactly three segments; the signing
//! input is the token up to (not including) its last '.'; the `kid` fits `MAX_KID_BYTES`; the
//! signature is non-empty and its base64url is canonical (re-encoding gives the segment back, so a
//! signature has one spelling). Of a refused one: the description never contains the token itself
//! (tokens are credentials and must not be echoed into responses or logs) and stays short.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use wif_gateway::exchange::jwt::{self, MAX_KID_BYTES, MAX_TOKEN_BYTES};

/// Shorter inputs may legitimately appear inside prose ("has 1 segments") by accident.
const ECHO_MIN_BYTES: usize = 40;
/// `shown` keeps 200 characters, each escaped to at most 10 bytes (`\u{10ffff}`), plus prose.
const MAX_DESCRIPTION_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(text) => check(text),
        // Not UTF-8 cannot reach `read` through the form parser as is, but its lossy form can.
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});

fn check(token: &str) {
    match jwt::read(token) {
        Ok(jwt) => {
            assert!(token.len() <= MAX_TOKEN_BYTES, "oversized token accepted");
            assert_eq!(token.matches('.').count(), 2, "accepted a non-JWS shape");
            assert!(
                token.as_bytes().starts_with(jwt.signing_input),
                "signing input is not a prefix of the token"
            );
            let last_dot = token.rfind('.');
            assert_eq!(
                Some(jwt.signing_input.len()),
                last_dot,
                "signing input does not end right before the last '.'"
            );
            if let Some(kid) = &jwt.kid {
                assert!(kid.len() <= MAX_KID_BYTES, "kid of {} bytes", kid.len());
            }
            assert!(!jwt.signature.is_empty(), "empty signature accepted");
            let sig_segment = last_dot.map_or("", |i| &token[i + 1..]);
            assert_eq!(
                URL_SAFE_NO_PAD.encode(&jwt.signature),
                sig_segment,
                "non-canonical base64url signature accepted"
            );
        }
        Err(e) => {
            if token.len() > ECHO_MIN_BYTES {
                assert!(
                    !e.description.contains(token),
                    "error description echoes the token"
                );
            }
            assert!(
                e.description.len() <= MAX_DESCRIPTION_BYTES,
                "error description of {} bytes echoes too much input: {:.300}",
                e.description.len(),
                e.description
            );
        }
    }
}
