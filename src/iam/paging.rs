//! What list and update calls share: opaque page tokens over a stable order, and update masks.
//!
//! Lists return resources in id order; a page token is the last id of the previous page,
//! base64url-encoded behind a version tag, so a client can only pass it back, and a token from
//! another list or a forged one fails to decode or merely starts the walk elsewhere (never past
//! what the caller may see: authorization applies to the list, not the token).
//!
//! An update's `updateMask` (REST: comma-separated field paths, camelCase or snake_case)
//! names the fields the update changes; a path the resource does not have is
//! `INVALID_ARGUMENT`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::status::Status;

/// The version tag of the page tokens this gateway issues.
const TOKEN_TAG: &str = "p1.";

/// The token that continues a list after the resource with id `last`.
pub fn page_token(last: &str) -> String {
    format!("{TOKEN_TAG}{}", URL_SAFE_NO_PAD.encode(last))
}

/// The id a page token continues after; `None` for the first page (an empty token).
pub fn after(token: &str) -> Result<Option<String>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Status::invalid_argument(
            "invalid_page_token",
            "page_token is not a token this list returned",
        )
    };
    let encoded = token.strip_prefix(TOKEN_TAG).ok_or_else(bad)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| bad())?;
    let id = String::from_utf8(bytes).map_err(|_| bad())?;
    // Resource ids are at most 50 characters, role ids 64, API-key scope ids 256.
    if id.is_empty() || id.len() > 256 {
        return Err(bad());
    }
    Ok(Some(id))
}

/// The fields an update may change, each by its proto name (`snake_case`); the REST name is
/// its camelCase form.
pub type Updatable = &'static [&'static str];

/// The proto names of the fields `mask` names, each once, in the order of `updatable`.
pub fn update_mask(mask: &str, updatable: Updatable) -> Result<Vec<&'static str>, Status> {
    let mut named = Vec::new();
    for path in mask.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let field = updatable
            .iter()
            .find(|f| **f == path || camel(f) == path)
            .ok_or_else(|| {
                Status::invalid_argument(
                    "invalid_update_mask",
                    format!(
                        "updateMask names {}, which cannot be updated; updatable: {}",
                        crate::exchange::quote(path),
                        updatable
                            .iter()
                            .map(|f| camel(f))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        named.push(*field);
    }
    Ok(updatable
        .iter()
        .copied()
        .filter(|f| named.contains(f))
        .collect())
}

/// `snake_case` → `camelCase`, as proto3 JSON names fields.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::status::Code;

    #[test]
    fn page_tokens_round_trip_and_refuse_what_was_not_issued() {
        let token = page_token("aje0abcdefghijklmnop");
        assert!(!token.contains("aje0"), "opaque: {token}");
        assert_eq!(
            after(&token).unwrap().as_deref(),
            Some("aje0abcdefghijklmnop")
        );
        assert_eq!(after("").unwrap(), None);
        for bad in [
            "aje0abcdefghijklmnop",
            "p1.!!!",
            "p2.YWJj",
            "p1.",
            &page_token(&"x".repeat(257)),
        ] {
            let e = after(bad).expect_err(bad);
            assert_eq!(e.code, Code::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn masks_take_rest_and_proto_names() {
        const FIELDS: Updatable = &["name", "description", "labels", "jwks_url", "audiences"];
        assert_eq!(
            update_mask("jwksUrl,name", FIELDS).unwrap(),
            ["name", "jwks_url"]
        );
        assert_eq!(
            update_mask(" description , description,jwks_url ", FIELDS).unwrap(),
            ["description", "jwks_url"]
        );
        assert!(update_mask("", FIELDS).unwrap().is_empty());
        let e = update_mask("name,issuer", FIELDS).expect_err("issuer is immutable");
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.message.contains("\"issuer\""), "{}", e.message);
        assert!(
            e.message.contains("jwksUrl"),
            "lists the REST names: {}",
            e.message
        );
    }

    #[test]
    fn camel_case_is_proto3_json() {
        assert_eq!(camel("service_account_id"), "serviceAccountId");
        assert_eq!(camel("name"), "name");
    }
}
