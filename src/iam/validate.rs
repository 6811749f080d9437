//! The field rules of the Yandex IAM and resource-manager messages, checked before anything
//! else touches a request: names, descriptions, labels, ids, page sizes and tokens, a
//! federation's issuer and audiences, a federated credential's subject. Each rule refuses with
//! `INVALID_ARGUMENT` ([`Status`]) naming the field and the value sent (quoted and cut, never a
//! secret: none of these fields holds one).
//!
//! The rules are the `validation` annotations of the Yandex protos:
//!
//! | field | rule |
//! |---|---|
//! | resource `name` | `[a-z]([-a-z0-9]{0,61}[a-z0-9])?` (3–63 characters in practice: a letter first, no trailing hyphen) |
//! | `description` | at most 256 characters |
//! | `labels` | at most 64; keys `[a-z][-_0-9a-z]*`, 1–63; values `[-_0-9a-z]*`, at most 63 |
//! | ids (`folder_id`, `service_account_id`, …) | required, at most 50 characters |
//! | `page_size` | 0–1000 (0 means the default, 100) |
//! | `page_token` | at most 2000 characters |
//! | federation `audiences` | 1–100 values of 1–255 characters |
//! | federation `issuer`, `jwks_url` | at most 8000 characters; an absolute `https` URL |
//! | credential `external_subject_id` | 1–1000 characters |

use std::collections::BTreeMap;

use super::status::Status;
use crate::exchange::quote;

/// A page size of 0 (or none) means this many.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest page a list call returns.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The reason every field rule refuses with (the audit log's `error_code`).
pub const REASON: &str = "invalid_field";

fn invalid(field: &str, value: &str, rule: &str) -> Status {
    Status::invalid_argument(REASON, format!("{field} {}: {rule}", quote(value)))
}

/// A resource name: a lowercase letter, then lowercase letters, digits or hyphens, not ending
/// with a hyphen, at most 63 characters. `optional` allows the empty name of an update that
/// does not change it.
pub fn name(field: &str, value: &str, optional: bool) -> Result<(), Status> {
    if value.is_empty() && optional {
        return Ok(());
    }
    let bytes = value.as_bytes();
    let ok = (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last().is_some_and(|b| *b != b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            "must match [a-z]([-a-z0-9]{0,61}[a-z0-9])?: a lowercase letter, then up to 62 lowercase letters, digits or hyphens, not ending with a hyphen",
        ))
    }
}

/// The schema of [`labels`]' rules, for the API's schema.
pub fn labels_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(64))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-z][-_0-9a-z]{0,62}$")),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[-_0-9a-z]{0,63}$")),
        ))
        .build()
}

/// A description: at most 256 characters.
pub fn description(value: &str) -> Result<(), Status> {
    if value.chars().count() <= 256 {
        Ok(())
    } else {
        Err(invalid(
            "description",
            value,
            "must be at most 256 characters",
        ))
    }
}

/// Labels: at most 64; keys `[a-z][-_0-9a-z]*` of 1–63 characters, values `[-_0-9a-z]*` of at
/// most 63.
pub fn labels(labels: &BTreeMap<String, String>) -> Result<(), Status> {
    if labels.len() > 64 {
        return Err(Status::invalid_argument(
            REASON,
            format!("labels: {} given, at most 64 allowed", labels.len()),
        ));
    }
    let tail = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_';
    for (key, value) in labels {
        let k = key.as_bytes();
        if !((1..=63).contains(&k.len()) && k[0].is_ascii_lowercase() && k.iter().all(tail)) {
            return Err(invalid(
                "label key",
                key,
                "must match [a-z][-_0-9a-z]* and be 1 to 63 characters",
            ));
        }
        if !(value.len() <= 63 && value.as_bytes().iter().all(tail)) {
            return Err(invalid(
                &format!("label {}", quote(key)),
                value,
                "value must match [-_0-9a-z]* and be at most 63 characters",
            ));
        }
    }
    Ok(())
}

/// A required id: 1 to 50 characters.
pub fn id(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(
            REASON,
            format!("{field} is required"),
        ));
    }
    if value.chars().count() > 50 {
        return Err(invalid(field, value, "must be at most 50 characters"));
    }
    Ok(())
}

/// A list call's page: the size to return (0 → [`DEFAULT_PAGE_SIZE`]) and the token, checked.
pub fn page(size: i64, token: &str) -> Result<usize, Status> {
    if !(0..=MAX_PAGE_SIZE as i64).contains(&size) {
        return Err(Status::invalid_argument(
            REASON,
            format!("page_size {size}: must be 0 to {MAX_PAGE_SIZE}"),
        ));
    }
    if token.chars().count() > 2000 {
        return Err(invalid(
            "page_token",
            token,
            "must be at most 2000 characters",
        ));
    }
    Ok(match usize::try_from(size) {
        Ok(0) | Err(_) => DEFAULT_PAGE_SIZE,
        Ok(n) => n,
    })
}

/// A federation's audiences: 1 to 100 values of 1 to 255 characters.
pub fn audiences(values: &[String]) -> Result<(), Status> {
    if values.is_empty() || values.len() > 100 {
        return Err(Status::invalid_argument(
            REASON,
            format!(
                "audiences: {} given; a federation trusts 1 to 100 audiences",
                values.len()
            ),
        ));
    }
    for a in values {
        if a.is_empty() || a.chars().count() > 255 {
            return Err(invalid("audience", a, "must be 1 to 255 characters"));
        }
    }
    Ok(())
}

/// A federation's `issuer` or `jwks_url`: at most 8000 characters, an absolute URL with a host
/// and no credentials, `https` unless `allow_http` (a server setting for loopback issuers).
pub fn issuer_url(field: &str, value: &str, allow_http: bool) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(
            REASON,
            format!("{field} is required"),
        ));
    }
    if value.chars().count() > 8000 {
        return Err(invalid(field, value, "must be at most 8000 characters"));
    }
    let url =
        url::Url::parse(value).map_err(|e| invalid(field, value, &format!("is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_http && loopback => {}
        "http" => {
            return Err(invalid(
                field,
                value,
                "must be https (keys are fetched from it and trusted)",
            ));
        }
        other => {
            return Err(invalid(
                field,
                value,
                &format!("scheme {other:?} is not https"),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(field, value, "has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            field,
            value,
            "must not carry a user name or password",
        ));
    }
    Ok(())
}

/// A federated credential's external subject: 1 to 1000 characters, no surrounding white
/// space (subjects are compared exactly).
pub fn external_subject(value: &str) -> Result<(), Status> {
    if value.is_empty() || value.chars().count() > 1000 {
        return Err(invalid(
            "external_subject_id",
            value,
            "must be 1 to 1000 characters",
        ));
    }
    if value.trim() != value {
        return Err(invalid(
            "external_subject_id",
            value,
            "has surrounding white space; subjects are compared exactly",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::status::Code;

    fn refused(r: Result<(), Status>) -> String {
        let status = r.expect_err("refused");
        assert_eq!(status.code, Code::InvalidArgument);
        status.message
    }

    #[test]
    fn names_follow_the_yandex_pattern() {
        for ok in ["a", "ab", "dev-deployer", "a1", &"a".repeat(63)] {
            assert!(name("name", ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "1a",
            "a-",
            "a_b",
            "a.b",
            "ab ",
            &"a".repeat(64),
            "ф",
        ] {
            let message = refused(name("name", bad, false));
            assert!(message.starts_with("name "), "{message}");
        }
        assert!(
            name("name", "", true).is_ok(),
            "an update may leave the name alone"
        );
    }

    #[test]
    fn descriptions_labels_and_ids_have_their_limits() {
        assert!(description(&"d".repeat(256)).is_ok());
        refused(description(&"d".repeat(257)));
        let mut l = BTreeMap::new();
        l.insert("env".to_owned(), "prod_1-a".to_owned());
        l.insert("k".to_owned(), String::new());
        assert!(labels(&l).is_ok());
        for (k, v) in [
            ("Env", "x"),
            ("1k", "x"),
            ("", "x"),
            ("k", "X"),
            ("k", "a b"),
        ] {
            let mut bad = BTreeMap::new();
            bad.insert(k.to_owned(), v.to_owned());
            refused(labels(&bad));
        }
        let many: BTreeMap<String, String> =
            (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(refused(labels(&many)).contains("at most 64"));
        assert!(refused(id("folder_id", "")).contains("folder_id is required"));
        assert!(id("folder_id", &"b".repeat(50)).is_ok());
        refused(id("folder_id", &"b".repeat(51)));
    }

    #[test]
    fn pages_default_and_cap() {
        assert_eq!(page(0, "").unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page(7, "t").unwrap(), 7);
        assert_eq!(page(1000, "").unwrap(), 1000);
        let Err(e) = page(1001, "") else {
            panic!("1001 accepted")
        };
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(page(-1, "").is_err());
        assert!(page(1, &"t".repeat(2001)).is_err());
    }

    #[test]
    fn federation_fields() {
        assert!(audiences(&["a".into()]).is_ok());
        refused(audiences(&[]));
        refused(audiences(&vec!["a".to_owned(); 101]));
        refused(audiences(&["".into()]));
        refused(audiences(&["a".repeat(256)]));
        assert!(issuer_url("issuer", "https://gitlab.com", false).is_ok());
        assert!(issuer_url("issuer", "http://127.0.0.1:8080/dev/issuer", true).is_ok());
        for (value, allow_http) in [
            ("http://127.0.0.1:8080/dev/issuer", false),
            ("http://issuer.example", true),
            ("ftp://issuer.example", false),
            ("https://user:pw@issuer.example", false),
            ("not a url", false),
            ("", false),
        ] {
            refused(issuer_url("issuer", value, allow_http));
        }
        let long = format!("https://i.example/{}", "a".repeat(8000));
        refused(issuer_url("jwks_url", &long, false));
    }

    #[test]
    fn subjects_are_exact_and_bounded() {
        assert!(external_subject("system:serviceaccount:default:wlif").is_ok());
        refused(external_subject(""));
        refused(external_subject(&"s".repeat(1001)));
        refused(external_subject(" padded"));
    }

    #[test]
    fn messages_quote_and_cut_what_was_sent() {
        let message = refused(name("name", &format!("A{}", "x".repeat(500)), false));
        assert!(message.contains('…'), "cut: {message}");
        assert!(message.len() < 500, "{message}");
        let message = refused(external_subject("\u{1b}[31m "));
        assert!(
            !message.contains('\u{1b}'),
            "control characters escaped: {message}"
        );
    }
}
