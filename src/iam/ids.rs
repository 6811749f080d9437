//! Yandex-style resource identifiers: 20 characters, a 3-character prefix that hints at the
//! kind, then 17 random characters of lowercase base32hex (`0-9a-v`, RFC 4648 §7), the
//! alphabet of the ids Yandex shows (`aje2c4qv19lf…`, `b1gfq9pe6rd2…`).
//!
//! Prefixes: `b1g` for clouds and folders (the resource manager's ids), `aje` for everything
//! IAM owns (service accounts, federations, federated credentials, authorized keys, API keys,
//! static access keys, access bindings, operations). Clients treat ids as opaque; the prefix
//! only helps people reading logs. The 85 random bits come from the operating system's
//! generator through
//! `aws_lc_rs::rand`, so ids are unguessable and never collide in practice (the store's
//! primary keys would refuse a collision anyway).
//!
//! Because the alphabet is digits and lowercase letters only, byte order and every common
//! collation order ids the same way, which keeps the store's id-ordered pagination identical
//! on SQLite and PostgreSQL.

use super::ResourceKind;

/// Length of every generated id.
pub const ID_LEN: usize = 20;

/// Length of the kind prefix.
pub const PREFIX_LEN: usize = 3;

/// Lowercase base32hex: `0-9`, then `a-v`.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// The operating system's random generator failed; no id can be made safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomUnavailable;

/// The prefix of ids of `kind`.
pub const fn prefix(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Cloud | ResourceKind::Folder => "b1g",
        ResourceKind::ServiceAccount
        | ResourceKind::Federation
        | ResourceKind::FederatedCredential
        | ResourceKind::AuthorizedKey
        | ResourceKind::AccessKey
        | ResourceKind::ApiKey
        | ResourceKind::AccessBinding
        | ResourceKind::Operation
        | ResourceKind::RevokedToken => "aje",
    }
}

/// A new random id for a resource of `kind`.
pub fn generate(kind: ResourceKind) -> Result<String, RandomUnavailable> {
    let mut random = [0u8; ID_LEN - PREFIX_LEN];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| RandomUnavailable)?;
    let mut id = String::with_capacity(ID_LEN);
    id.push_str(prefix(kind));
    // 256 is a multiple of 32, so the low five bits of a uniform byte are uniform.
    id.extend(
        random
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 0x1f)])),
    );
    Ok(id)
}

/// Whether `id` has the shape of a generated id (any prefix of the alphabet's characters).
pub fn is_well_formed(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_have_the_yandex_shape_and_their_kind_prefix() {
        let cases = [
            ("cloud", ResourceKind::Cloud, "b1g"),
            ("folder", ResourceKind::Folder, "b1g"),
            ("service account", ResourceKind::ServiceAccount, "aje"),
            ("federation", ResourceKind::Federation, "aje"),
            ("credential", ResourceKind::FederatedCredential, "aje"),
            ("key", ResourceKind::AuthorizedKey, "aje"),
            ("API key", ResourceKind::ApiKey, "aje"),
            ("binding", ResourceKind::AccessBinding, "aje"),
            ("operation", ResourceKind::Operation, "aje"),
        ];
        for (name, kind, want) in cases {
            let id = generate(kind).unwrap();
            assert_eq!(id.len(), 20, "{name}: {id}");
            assert!(id.starts_with(want), "{name}: {id}");
            assert!(is_well_formed(&id), "{name}: {id}");
        }
    }

    #[test]
    fn ids_do_not_repeat_and_use_the_whole_alphabet() {
        let ids: HashSet<String> = (0..2000)
            .map(|_| generate(ResourceKind::ServiceAccount).unwrap())
            .collect();
        assert_eq!(ids.len(), 2000);
        let used: HashSet<u8> = ids.iter().flat_map(|id| id.bytes().skip(3)).collect();
        assert_eq!(used.len(), 32, "every base32hex character appears");
    }

    #[test]
    fn malformed_ids_are_recognised() {
        let cases = [
            ("short", "aje123"),
            ("uppercase", "AJE2C4QV19LF00000000"),
            ("outside base32hex", "ajezzzzzzzzzzzzzzzzz"),
            ("separator", "aje2c4qv19lf-0000000"),
        ];
        for (name, id) in cases {
            assert!(!is_well_formed(id), "{name}");
        }
    }
}
