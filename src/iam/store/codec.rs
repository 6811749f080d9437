//! Stored text forms: labels, audiences and operation payloads are JSON text in the database
//! (one schema for SQLite and PostgreSQL, so no JSON column types). Writing cannot fail;
//! reading answers [`StoreError::Corrupt`] for text the store did not write.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StoreError;

/// The JSON text of `value`.
pub(crate) fn to_text<T: Serialize + ?Sized>(value: &T) -> String {
    // Maps with string keys, lists of strings and `serde_json::Value`s always serialize.
    serde_json::to_string(value).unwrap_or_default()
}

/// Reads back what [`to_text`] wrote; `what` names the field in the error.
pub(crate) fn from_text<T: DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

/// An enum stored by name; `what` names the field in the error.
pub(crate) fn from_name<T>(
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
    what: &'static str,
) -> Result<T, StoreError> {
    parse(name).ok_or_else(|| StoreError::Corrupt {
        what,
        reason: format!("unknown value {name:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn labels_round_trip_and_bad_text_is_corrupt() {
        let labels = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
        let text = to_text(&labels);
        assert_eq!(text, r#"{"env":"prod"}"#);
        let back: BTreeMap<String, String> = from_text(&text, "labels").unwrap();
        assert_eq!(back, labels);
        let bad = from_text::<BTreeMap<String, String>>("[1]", "labels");
        assert!(matches!(
            bad,
            Err(StoreError::Corrupt { what: "labels", .. })
        ));
    }
}
