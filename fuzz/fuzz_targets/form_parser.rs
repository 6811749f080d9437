//! `request::parse_form` on arbitrary bytes: the body of `POST /oauth/token` as any client, or
//! anyone, may send it (the HTTP layer caps it at 64 KiB).
//!
//! Invariants of an accepted request: the subject token and the audience are non-empty and carry
//! no surrounding whitespace. Of a refused one: the description stays short, since each
//! attacker-supplied value in it is quoted through `exchange::shown` (at most 200 characters).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wif_gateway::exchange::request::parse_form;

/// `shown` keeps 200 characters, each escaped to at most 10 bytes (`\u{10ffff}`), plus prose.
const MAX_DESCRIPTION_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    match parse_form(data) {
        Ok(req) => {
            assert!(
                !req.subject_token.is_empty(),
                "empty subject_token accepted"
            );
            assert_eq!(
                req.subject_token.trim(),
                req.subject_token,
                "subject_token not trimmed"
            );
            assert!(!req.audience.is_empty(), "empty audience accepted");
            assert_eq!(req.audience.trim(), req.audience, "audience not trimmed");
            if let Some(resource) = &req.resource {
                assert!(
                    wif_gateway::exchange::request::check_resource(resource).is_ok(),
                    "malformed resource accepted"
                );
            }
        }
        Err(e) => {
            assert!(
                e.description.len() <= MAX_DESCRIPTION_BYTES,
                "error description of {} bytes echoes too much input",
                e.description.len()
            );
        }
    }
});
