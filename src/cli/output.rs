//! How the `iam` and `resource-manager` commands print what the API answered, as `yc` does:
//! lists as `+----+------+` tables ([`Table`]), a single resource as `key: value` lines with
//! snake_case keys ([`resource`]), and with `--format json` the API's JSON as it came
//! ([`json`]). Pure functions over `serde_json::Value`; [`super::session`] does the calls.

use std::fmt::Write as _;

use serde_json::Value;

/// The output format of a command (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables for lists, `key: value` lines for one resource.
    Text,
    /// The API's JSON, pretty-printed: the resource, or an array of the listed resources.
    Json,
}

/// A table drawn as `yc` draws one: `+`/`-`/`|` borders, headers centred, cells left-aligned,
/// one space of padding on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped, line breaks become spaces.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells
            .into_iter()
            .map(|c| c.replace(['\r', '\n'], " "))
            .collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table's text, each line ending with `\n`.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .chain(std::iter::once(h.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut rule = String::from("+");
        for w in &widths {
            rule.push_str(&"-".repeat(w + 2));
            rule.push('+');
        }
        rule.push('\n');
        let mut out = rule.clone();
        out.push('|');
        for (h, w) in self.headers.iter().zip(&widths) {
            let pad = w - h.chars().count();
            let left = pad / 2;
            let _ = write!(out, " {}{h}{} |", " ".repeat(left), " ".repeat(pad - left));
        }
        out.push('\n');
        out.push_str(&rule);
        for row in &self.rows {
            out.push('|');
            for (c, w) in row.iter().zip(&widths) {
                let pad = w - c.chars().count();
                let _ = write!(out, " {c}{} |", " ".repeat(pad));
            }
            out.push('\n');
        }
        out.push_str(&rule);
        out
    }
}

/// The API's JSON, pretty-printed, with a final line break.
pub fn json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// A string field of a resource, `""` when absent; other scalars as JSON; arrays joined by `,`.
pub fn field(resource: &Value, name: &str) -> String {
    match resource.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// One resource as `yc` prints it: `key: value` lines, keys in snake_case (except label keys,
/// which are the user's), `id` first and the others in alphabetical order, nested objects indented, arrays as `- item` lines, multi-line strings
/// (PEM keys) as `|` blocks. The `@type` of an operation's response is left out.
pub fn resource(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) => write_map(&mut out, 0, map, true),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(
    out: &mut String,
    indent: usize,
    map: &serde_json::Map<String, Value>,
    snake_keys: bool,
) {
    let mut first = true;
    let ordered = map
        .iter()
        .filter(|(k, _)| *k == "id")
        .chain(map.iter().filter(|(k, _)| *k != "id" && *k != "@type"));
    for (key, value) in ordered {
        let name = if snake_keys {
            snake_case(key)
        } else {
            key.clone()
        };
        // Under an array's `- `, the first key follows the dash.
        let pad = if first && indent > 0 && out.ends_with("- ") {
            String::new()
        } else {
            " ".repeat(indent)
        };
        first = false;
        let _ = write!(out, "{pad}{}:", quoted_key(&name));
        write_value(out, indent, value, key != "labels");
    }
    if first {
        out.push_str("{}\n");
    }
}

/// Writes what follows `key:`.
fn write_value(out: &mut String, indent: usize, value: &Value, snake_keys: bool) {
    match value {
        Value::Object(map) if map.keys().all(|k| k == "@type") => out.push_str(" {}\n"),
        Value::Object(map) => {
            out.push('\n');
            write_map(out, indent + 2, map, snake_keys);
        }
        Value::Array(items) if items.is_empty() => out.push_str(" []\n"),
        Value::Array(items) => {
            out.push('\n');
            for item in items {
                let _ = write!(out, "{}- ", " ".repeat(indent + 2));
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        write_map(out, indent + 4, map, snake_keys);
                    }
                    other => {
                        out.push_str(&scalar(other));
                        out.push('\n');
                    }
                }
            }
        }
        Value::String(s) if s.contains('\n') => {
            out.push_str(if s.ends_with('\n') { " |\n" } else { " |-\n" });
            for line in s.lines() {
                let _ = writeln!(out, "{}{line}", " ".repeat(indent + 2));
            }
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) if needs_quotes(s) => Value::String(s.clone()).to_string(),
        Value::String(s) => s.clone(),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        other => other.to_string(),
    }
}

fn quoted_key(key: &str) -> String {
    if needs_quotes(key) {
        Value::String(key.to_owned()).to_string()
    } else {
        key.to_owned()
    }
}

/// Whether a YAML reader would take `s` for something other than this plain string: empty, a
/// number, boolean or null, a timestamp, leading YAML indicators, or `: `/` #` inside.
fn needs_quotes(s: &str) -> bool {
    let starts_special = s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c));
    let timestamp_like = s.len() >= 10
        && s.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && s.as_bytes()[4] == b'-';
    s.is_empty()
        || starts_special
        || s.ends_with(' ')
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || timestamp_like
        || s.parse::<f64>().is_ok()
        || matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
}

/// `serviceAccountId` → `service_account_id`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_are_drawn_as_yc_draws_them() {
        let mut table = Table::new(&["ID", "NAME"]);
        table.row(vec!["ajeq0000000000000001".into(), "deployer".into()]);
        table.row(vec!["aje2".into(), "a\nb".into()]);
        assert_eq!(
            table.render(),
            "\
+----------------------+----------+
|          ID          |   NAME   |
+----------------------+----------+
| ajeq0000000000000001 | deployer |
| aje2                 | a b      |
+----------------------+----------+
"
        );
    }

    #[test]
    fn table_cells_are_padded_by_characters_and_rows_to_the_headers() {
        let cases: &[(&str, Vec<String>, &str)] = &[
            (
                "missing cells are empty",
                vec!["x".into()],
                "+---+---+\n| A | B |\n+---+---+\n| x |   |\n+---+---+\n",
            ),
            (
                "extra cells are dropped",
                vec!["x".into(), "y".into(), "z".into()],
                "+---+---+\n| A | B |\n+---+---+\n| x | y |\n+---+---+\n",
            ),
            (
                "non-ASCII is measured in characters",
                vec!["é".into(), "ü".into()],
                "+---+---+\n| A | B |\n+---+---+\n| é | ü |\n+---+---+\n",
            ),
        ];
        for (name, row, expected) in cases {
            let mut table = Table::new(&["A", "B"]);
            table.row(row.clone());
            assert_eq!(table.render(), *expected, "{name}");
        }
    }

    #[test]
    fn an_empty_table_has_its_headers() {
        assert_eq!(
            Table::new(&["ROLE ID", "SUBJECT TYPE"]).render(),
            "+---------+--------------+\n| ROLE ID | SUBJECT TYPE |\n+---------+--------------+\n+---------+--------------+\n"
        );
    }

    #[test]
    fn a_resource_prints_as_snake_case_key_value_lines() {
        let federation = json!({
            "@type": "type.googleapis.com/yandex.cloud.iam.v1.workload.oidc.Federation",
            "id": "ajef",
            "folderId": "b1g",
            "description": "",
            "enabled": true,
            "audiences": ["a", "b"],
            "labels": {"teamName": "ci"},
            "createdAt": "2026-01-02T03:04:05Z",
        });
        assert_eq!(
            resource(&federation),
            "\
id: ajef
audiences:
  - a
  - b
created_at: \"2026-01-02T03:04:05Z\"
description: \"\"
enabled: true
folder_id: b1g
labels:
  teamName: ci
"
        );
    }

    #[test]
    fn nested_arrays_of_objects_and_pem_blocks_are_indented() {
        let value = json!({
            "effectiveDeltas": [
                {"action": "ADD", "accessBinding": {"roleId": "viewer", "subject": {"id": "aje", "type": "serviceAccount"}}}
            ],
            "publicKey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "empty": {},
            "none": [],
        });
        assert_eq!(
            resource(&value),
            "\
effective_deltas:
  - access_binding:
      role_id: viewer
      subject:
        id: aje
        type: serviceAccount
    action: ADD
empty: {}
none: []
public_key: |
  -----BEGIN PUBLIC KEY-----
  AAAA
  -----END PUBLIC KEY-----
"
        );
        assert_eq!(resource(&json!({"@type": "Empty"})), "{}\n");
    }

    #[test]
    fn strings_a_yaml_reader_would_misread_are_quoted() {
        let cases = [
            ("plain", "deployer", "deployer"),
            ("empty", "", "\"\""),
            ("number", "42", "\"42\""),
            ("boolean", "true", "\"true\""),
            (
                "url",
                "http://127.0.0.1:8080/dev/issuer",
                "http://127.0.0.1:8080/dev/issuer",
            ),
            ("colon space", "a: b", "\"a: b\""),
            (
                "subject",
                "project_path:demo/app:ref_type:branch",
                "project_path:demo/app:ref_type:branch",
            ),
            ("leading star", "*", "\"*\""),
            ("quote inside", "\"x", "\"\\\"x\""),
        ];
        for (name, input, expected) in cases {
            assert_eq!(scalar(&json!(input)), expected, "{name}");
        }
    }

    #[test]
    fn fields_and_snake_case() {
        let r = json!({"audiences": ["a", "b"], "enabled": false, "name": "n"});
        assert_eq!(field(&r, "audiences"), "a,b");
        assert_eq!(field(&r, "enabled"), "false");
        assert_eq!(field(&r, "name"), "n");
        assert_eq!(field(&r, "missing"), "");
        assert_eq!(snake_case("serviceAccountId"), "service_account_id");
        assert_eq!(snake_case("id"), "id");
    }
}
