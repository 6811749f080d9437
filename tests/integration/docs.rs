//! The reference docs stay true to the code: every metric name, error code, audit field and
//! configuration key of the shipped files appears in its page under `docs/`, and every relative
//! link in `README.md` and `docs/*.md` leads to an existing file (and, into a Markdown file, to
//! an existing heading).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use wif_gateway::audit::{AuthorizeDeniedEvent, BootstrapEvent, ExchangeEvent, ManagementEvent};
use wif_gateway::exchange::Reason;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts that each of `names`, written as `` `name` `` (or as given when it starts with `[`),
/// appears in the page.
fn assert_listed(page: &str, what: &str, names: impl IntoIterator<Item = String>) {
    let text = read(&repo().join(page));
    let missing: Vec<String> = names
        .into_iter()
        .filter(|n| {
            let written = if n.starts_with('[') {
                n.clone()
            } else {
                format!("`{n}`")
            };
            !text.contains(&written)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{page} does not list these {what}: {missing:?}"
    );
}

#[test]
fn every_metric_is_in_metrics_md() {
    let source = read(&repo().join("src/telemetry.rs"));
    let defined = source.matches("\"wif_gateway_").count();
    assert_eq!(
        wif_gateway::telemetry::ALL.len(),
        defined,
        "telemetry::ALL lists every metric name src/telemetry.rs defines"
    );
    let names: Vec<String> = wif_gateway::telemetry::ALL
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    assert_listed("docs/metrics.md", "metrics", names);
}

#[test]
fn every_error_code_is_in_errors_md() {
    let exchange = Reason::ALL.iter().map(|r| r.as_str().to_owned());
    // Answered by the HTTP layer and the rate limits rather than by the exchange.
    let http = [
        "rate_limited",
        "overloaded",
        "request_timeout",
        "unsupported_media_type",
        "body_too_large",
        "method_not_allowed",
        "not_found",
        "internal",
    ]
    .map(str::to_owned);
    assert_listed("docs/errors.md", "error codes", exchange.chain(http));
}

#[test]
fn every_audit_field_is_in_audit_md() {
    // Every field set, none defaulted: a new field must be added here, and so to the page.
    let event = ExchangeEvent {
        request_id: "r",
        client: "c",
        decision: "deny",
        error: Some("e"),
        error_code: Some("e"),
        description: Some("d"),
        federation_id: Some("f"),
        credential_id: Some("c"),
        service_account_id: Some("s"),
        resource: Some("r"),
        iss: Some("i"),
        sub: Some("s"),
        jti: Some("j"),
        kid: Some("k"),
        alg: Some("a"),
        verified: false,
        token_sha256: Some("h"),
        token_jti: Some("j"),
        expires_in: Some(1),
        signing_kid: Some("k"),
    };
    let value = serde_json::to_value(&event).unwrap();
    let exchange_fields = value.as_object().unwrap().keys().cloned();
    let management = ManagementEvent {
        request_id: "r",
        client: "c",
        method: "m",
        principal: Some("p"),
        resource: Some("r"),
        decision: "deny",
        code: "c",
        error_code: Some("e"),
        description: Some("d"),
        verified: Some(true),
        token_sha256: Some("h"),
        token_jti: Some("j"),
    };
    let bootstrap = BootstrapEvent {
        cloud_id: "c",
        folder_id: "f",
        service_account_id: "s",
        key_id: "k",
        key_file: "p",
    };
    let denied = AuthorizeDeniedEvent {
        request_id: "r",
        client: "c",
        caller: "c",
        subject: Some("s"),
        api_key_id: Some("k"),
        permission: "p",
        resource: "r",
        code: "c",
        description: "d",
    };
    let iam_fields: Vec<String> = [
        serde_json::to_value(&management).unwrap(),
        serde_json::to_value(&bootstrap).unwrap(),
        serde_json::to_value(&denied).unwrap(),
    ]
    .iter()
    .flat_map(|v| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>())
    .collect();
    // The envelope, the event kinds, and the fields of `config_reload` and `signing_keys`.
    let others = [
        "time",
        "event",
        "exchange",
        "management",
        "iam_bootstrap",
        "authorize_denied",
        "config_reload",
        "signing_keys",
        "result",
        "trigger",
        "federations",
        "service_accounts",
        "federated_credentials",
        "description",
        "active",
        "published",
        "previous_active",
    ]
    .map(str::to_owned);
    assert_listed(
        "docs/audit.md",
        "audit fields",
        exchange_fields.chain(iam_fields).chain(others),
    );
}

/// Section names (as `[name]` or `[[name]]`) and key names of a TOML file.
fn toml_names(table: &toml::Table, depth: usize, out: &mut Vec<String>) {
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) if depth == 0 => {
                out.push(format!("[{key}]"));
                toml_names(inner, depth + 1, out);
            }
            toml::Value::Array(items)
                if depth == 0 && items.iter().all(toml::Value::is_table) && !items.is_empty() =>
            {
                out.push(format!("[[{key}]]"));
                for item in items.iter().filter_map(toml::Value::as_table) {
                    toml_names(item, depth + 1, out);
                }
            }
            _ => out.push(key.clone()),
        }
    }
}

#[test]
fn every_configuration_key_is_in_configuration_md() {
    let mut names = Vec::new();
    for file in [
        "config/dev.toml",
        "deploy/gateway.example.toml",
        "deploy/federations/example.toml",
    ] {
        let table: toml::Table =
            toml::from_str(&read(&repo().join(file))).unwrap_or_else(|e| panic!("{file}: {e}"));
        toml_names(&table, 0, &mut names);
    }
    names.sort();
    names.dedup();
    assert_listed("docs/configuration.md", "configuration keys", names);
}

/// The lines of a Markdown file outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The anchors GitHub gives the headings of a Markdown file.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for line in prose(text) {
        if !line.starts_with('#') {
            continue;
        }
        let slug: String = line
            .trim_start_matches('#')
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

#[test]
fn relative_links_lead_to_existing_files_and_headings() {
    let mut pages = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let mut broken = Vec::new();
    for page in &pages {
        let text = read(page);
        for line in prose(&text) {
            for (_, rest) in line.match_indices("](").map(|(i, _)| line.split_at(i + 2)) {
                let Some(target) = rest.split(')').next() else {
                    continue;
                };
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let file = if path.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(path)
                };
                let shown = format!(
                    "{}: {target}",
                    page.strip_prefix(repo()).unwrap_or(page).display()
                );
                if !file.exists() {
                    broken.push(format!("{shown} (no such file)"));
                } else if !anchor.is_empty()
                    && file.extension().is_some_and(|x| x == "md")
                    && !anchors(&read(&file)).contains(anchor)
                {
                    broken.push(format!("{shown} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
