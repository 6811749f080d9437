//! Configuration: one TOML file (plus the files and directories it `include`s) parsed with
//! unknown keys rejected, then *compiled*: every item validated, every reference resolved, the
//! whole set checked together, and only then turned into a [`Directory`] and settings. A broken
//! set is reported in full and never half-applied: every problem, with its file and, for an item,
//! its line and the item as written (`dir/ci.toml:42: federated_credentials[3]
//! (external_subject_id "…"): …`). What is valid but probably not meant is a warning
//! ([`Config::warnings`]). `wif-gateway check-config` runs exactly this code.
//!
//! Relative paths in a file are resolved against that file's directory, so a config means the
//! same thing whatever the working directory.

pub mod schema;
pub mod settings;
mod source;
pub mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::exchange::directory::Directory;
use schema::{ConfigFile, DirectoryFile};
pub use settings::{DevIssuerSettings, IamSettings, Settings, StoreSettings, TlsSettings};
pub use source::ParseError;
use source::{Items, Problems, parse_all, parse_toml, resolve};

/// Every problem found in a configuration set, and the warnings found beside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
    /// What would have been [`Config::warnings`] (not shown by `Display`).
    pub warnings: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem", self.problems.len())?;
        if self.problems.len() != 1 {
            f.write_str("s")?;
        }
        f.write_str("):")?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A compiled configuration set.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub settings: Settings,
    pub directory: Directory,
    /// The roles and permissions of downstream services (`[[permissions]]`, `[[roles]]`), and
    /// the scopes of API keys (`[[api_key_scopes]]`).
    pub catalog: std::sync::Arc<crate::iam::catalog::Catalog>,
    /// What is valid but probably not what was meant, each with its place like a problem
    /// (`serve` logs them at warn level, `check-config` prints them).
    pub warnings: Vec<String>,
}

/// Loads and compiles the configuration set rooted at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, None)
}

/// Like [`load`], with `[server] listen` replaced (the `--listen` flag). The default public URL
/// follows the replaced address.
pub fn load_with(path: &Path, listen: Option<SocketAddr>) -> Result<Config, ConfigError> {
    let started = std::time::Instant::now();
    let fail = |m: String| ConfigError {
        problems: vec![m],
        warnings: Vec::new(),
    };
    let mut file: ConfigFile = parse_toml(path).map_err(|e| fail(e.to_string()))?;
    if let Some(listen) = listen {
        file.server.listen = listen;
    }
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut items = Items::default();
    let mut problems = Problems::new();
    items.add(
        path,
        DirectoryFile {
            federations: std::mem::take(&mut file.federations),
            service_accounts: std::mem::take(&mut file.service_accounts),
            federated_credentials: std::mem::take(&mut file.federated_credentials),
            permissions: std::mem::take(&mut file.permissions),
            roles: std::mem::take(&mut file.roles),
            api_key_scopes: std::mem::take(&mut file.api_key_scopes),
        },
    );
    let mut included = Vec::new();
    for include in &file.include {
        let target = resolve(&base, include);
        if !target.is_dir() {
            included.push(target);
            continue;
        }
        match std::fs::read_dir(&target) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                    .collect();
                files.sort();
                included.extend(files);
            }
            Err(e) => problems.add(
                &format!("{}: include", path.display()),
                format!("{}: {e}", target.display()),
            ),
        }
    }
    for (f, parsed) in included.iter().zip(parse_all(&included)) {
        match parsed {
            Ok(d) => items.add(f, d),
            Err(e) => problems.errors.push(e.to_string()),
        }
    }
    let parsed = started.elapsed();
    let catalog = validate::compile_catalog(&mut items, path, &mut problems);
    let settings = validate::compile_settings(&file, path, &base, &mut problems);
    let dev_issuer_url = settings
        .dev_issuer
        .as_ref()
        .map(|_| format!("{}/dev/issuer", settings.public_url));
    let directory = validate::compile_directory(
        items,
        &file.exchange,
        &settings.policy.resources,
        dev_issuer_url.as_deref(),
        &mut problems,
    );
    tracing::debug!(
        files = included.len() + 1,
        parse_ms = parsed.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "configuration loaded"
    );
    if problems.is_empty() {
        Ok(Config {
            path: path.to_path_buf(),
            settings,
            directory,
            catalog: std::sync::Arc::new(catalog),
            warnings: problems.warnings,
        })
    } else {
        Err(ConfigError {
            problems: problems.errors,
            warnings: problems.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use std::sync::Arc;

    use super::source::{ItemPlace, LineIndex, Place as _};
    use super::*;
    use crate::exchange::directory::KeySourceKind;

    /// A scratch directory under the system temp dir, unique per process and call, removed on
    /// drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "wif-gateway-config-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }

        fn write(&self, name: &str, text: &str) {
            let path = self.0.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&path, text).expect("write");
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The main config file's name; included files are named in each case.
    const MAIN: &str = "gateway.toml";
    /// The smallest valid config: the key file need not exist for `load`.
    const SIGNING: &str = "[signing]\nkey_file = \"k.pem\"\n";
    const FED: &str = r#"
[[federations]]
id = "fed-1"
issuer = "https://issuer.example"
audiences = ["aud-1"]
jwks_url = "https://issuer.example/jwks"
"#;
    const SA: &str = r#"
[[service_accounts]]
id = "sa-1"
"#;
    const CRED: &str = r#"
[[federated_credentials]]
id = "cred-1"
federation_id = "fed-1"
service_account_id = "sa-1"
external_subject_id = "subject-1"
"#;

    /// Files to write, by path relative to the scratch directory, and their text.
    type Files = Vec<(&'static str, String)>;

    /// An expected problem: the file it names, and strings that same problem contains.
    type Problem = (&'static str, Vec<&'static str>);

    /// Writes `files` (the first is [`MAIN`]) into a fresh directory and loads [`MAIN`].
    fn load_files(files: &Files) -> Result<Config, ConfigError> {
        let dir = Scratch::new();
        for (name, text) in files {
            dir.write(name, text);
        }
        load(&dir.0.join(MAIN))
    }

    fn main_only(text: String) -> Files {
        vec![(MAIN, text)]
    }

    /// A federation of `id` with extra TOML lines (which override nothing: TOML refuses a key
    /// set twice, so the base lines are given in full).
    fn federation(id: &str, lines: &str) -> String {
        format!("\n[[federations]]\nid = \"{id}\"\n{lines}\n")
    }

    /// A JWKS with one fresh P-256 key, as JSON.
    fn ec_jwks() -> String {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec");
        let point = pair.public_key().as_ref();
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        }]})
        .to_string()
    }

    #[test]
    fn dev_issuer_federations_follow_the_public_url() {
        let dev = "[dev_issuer]\nenabled = true\n";
        let fed = federation("fed-dev", "dev_issuer = true\naudiences = [\"a\"]");
        let config = load_files(&main_only(format!(
            "[server]\nlisten = \"127.0.0.1:4567\"\n{SIGNING}{dev}{fed}"
        )))
        .expect("valid");
        let f = config.directory.federations().next().unwrap();
        assert_eq!(f.issuer, "http://127.0.0.1:4567/dev/issuer");
        assert!(
            matches!(&f.key_source.kind, KeySourceKind::Discovery { issuer } if *issuer == f.issuer),
            "{:?}",
            f.key_source.kind
        );
        let refused = [
            (
                format!("{SIGNING}{fed}"),
                "needs the dev issuer: [dev_issuer] enabled = true",
            ),
            (
                format!(
                    "{SIGNING}{dev}{}",
                    federation(
                        "fed-dev",
                        "dev_issuer = true\nissuer = \"https://i.example\"\naudiences = [\"a\"]"
                    )
                ),
                "set either issuer or dev_issuer = true, not both",
            ),
        ];
        for (text, expected) in refused {
            let err = load_files(&main_only(text)).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn loads_valid_configurations() {
        let jwks = ec_jwks();
        let jwk: serde_json::Value = serde_json::from_str(&jwks).expect("json");
        let k = &jwk["keys"][0];
        let table = format!(
            r#"jwks = {{ keys = [ {{ kty = "EC", crv = "P-256", kid = "k1", x = {}, y = {} }} ] }}"#,
            k["x"], k["y"]
        );
        let inline = |lines: &str| {
            format!(
                "{SIGNING}{}",
                federation(
                    "fed-1",
                    &format!("issuer = \"https://issuer.example\"\naudiences = [\"a\"]\n{lines}"),
                )
            )
        };
        let cases: Vec<(&str, Files, (usize, usize, usize))> = vec![
            ("minimal", main_only(SIGNING.into()), (0, 0, 0)),
            (
                "one of each",
                main_only(format!("{SIGNING}{FED}{SA}{CRED}")),
                (1, 1, 1),
            ),
            (
                "inline jwks as a TOML table",
                main_only(inline(&table)),
                (1, 0, 0),
            ),
            (
                "inline jwks as a JSON string",
                main_only(inline(&format!("jwks = '''{jwks}'''"))),
                (1, 0, 0),
            ),
            (
                "jwks_file beside the config",
                vec![
                    (MAIN, inline("jwks_file = \"keys/jwks.json\"")),
                    ("keys/jwks.json", jwks.clone()),
                ],
                (1, 0, 0),
            ),
            (
                "discovery from an https issuer",
                main_only(format!(
                    "{SIGNING}{}",
                    federation(
                        "fed-1",
                        "issuer = \"https://issuer.example\"\naudiences = [\"a\"]"
                    )
                )),
                (1, 0, 0),
            ),
            (
                "plain http allowed explicitly",
                main_only(format!(
                    "{SIGNING}{}",
                    federation(
                        "fed-1",
                        "issuer = \"http://127.0.0.1:9000\"\naudiences = [\"a\"]\njwks_url = \"http://127.0.0.1:9000/jwks\"\nallow_insecure_http = true"
                    )
                )),
                (1, 0, 0),
            ),
            (
                "federations in an included directory",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}{SA}")),
                    ("dir/a.toml", format!("{FED}{CRED}")),
                    (
                        "dir/b.toml",
                        format!(
                            "{}\n[[federated_credentials]]\nfederation_id = \"fed-2\"\nservice_account_id = \"sa-1\"\nexternal_subject_id = \"subject-2\"\n",
                            federation(
                                "fed-2",
                                "issuer = \"https://other.example\"\naudiences = [\"a\"]"
                            )
                        ),
                    ),
                    ("dir/notes.txt", "not toml, not read".into()),
                ],
                (2, 1, 2),
            ),
            (
                "jwks_file resolved against the including file's directory",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}")),
                    (
                        "dir/a.toml",
                        federation(
                            "fed-1",
                            "issuer = \"https://issuer.example\"\naudiences = [\"a\"]\njwks_file = \"jwks.json\"",
                        ),
                    ),
                    ("dir/jwks.json", jwks.clone()),
                ],
                (1, 0, 0),
            ),
            (
                "an included single file",
                vec![
                    (MAIN, format!("include = [\"more.toml\"]\n{SIGNING}")),
                    ("more.toml", format!("{FED}{SA}{CRED}")),
                ],
                (1, 1, 1),
            ),
        ];
        for (name, files, (federations, accounts, credentials)) in cases {
            let config = match load_files(&files) {
                Ok(config) => config,
                Err(e) => panic!("{name}: {e}"),
            };
            let d = &config.directory;
            assert_eq!(
                (
                    d.federation_count(),
                    d.service_account_count(),
                    d.credential_count()
                ),
                (federations, accounts, credentials),
                "{name}"
            );
        }
    }

    #[test]
    fn inline_jwks_become_an_inline_key_source() {
        let jwks = ec_jwks();
        let text = format!(
            "{SIGNING}{}",
            federation(
                "fed-1",
                &format!(
                    "issuer = \"https://issuer.example\"\naudiences = [\"a\"]\njwks = '''{jwks}'''"
                )
            )
        );
        let config = load_files(&main_only(text)).expect("valid");
        let federation = config.directory.federations().next().unwrap();
        match &federation.key_source.kind {
            KeySourceKind::Inline { keys, .. } => {
                assert_eq!(keys.kids().collect::<Vec<_>>(), ["k1"]);
            }
            other => panic!("expected an inline source, got {other:?}"),
        }
    }

    #[test]
    fn reports_each_invalid_item_with_its_file_and_id() {
        let fed_with = |lines: &str| {
            format!(
                "{SIGNING}{}",
                federation(
                    "fed-1",
                    &format!("issuer = \"https://issuer.example\"\n{lines}")
                )
            )
        };
        let cred = |id: &str, federation: &str, account: &str, subject: &str| {
            format!(
                "\n[[federated_credentials]]\nid = \"{id}\"\nfederation_id = \"{federation}\"\nservice_account_id = \"{account}\"\nexternal_subject_id = \"{subject}\"\n"
            )
        };
        let long_audience = "a".repeat(256);
        let oct = r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#;
        // (name, files, expected problem)
        let cases: Vec<(&str, Files, Problem)> = vec![
            (
                "unknown top-level key",
                main_only(format!("federation_count = 1\n{SIGNING}")),
                (MAIN, vec!["federation_count"]),
            ),
            (
                "unknown key in a federation",
                main_only(format!(
                    "{SIGNING}{FED}jwks_uri = \"https://issuer.example/jwks\"\n"
                )),
                (MAIN, vec!["jwks_uri"]),
            ),
            (
                "no [signing]",
                main_only(FED.into()),
                (MAIN, vec!["signing"]),
            ),
            (
                "binding naming an unknown federation",
                main_only(format!(
                    "{SIGNING}{SA}{}",
                    cred("cred-1", "fed-missing", "sa-1", "s")
                )),
                (
                    MAIN,
                    vec!["\"cred-1\"", "\"fed-missing\"", "names no federation"],
                ),
            ),
            (
                "binding naming an unknown service account",
                main_only(format!(
                    "{SIGNING}{FED}{}",
                    cred("cred-1", "fed-1", "sa-missing", "s")
                )),
                (
                    MAIN,
                    vec!["\"cred-1\"", "\"sa-missing\"", "names no service account"],
                ),
            ),
            (
                "duplicate federation id",
                main_only(format!("{SIGNING}{FED}{FED}")),
                (
                    MAIN,
                    vec!["federations[1]", "\"fed-1\"", "duplicate federation id"],
                ),
            ),
            (
                "duplicate service account id",
                main_only(format!("{SIGNING}{SA}{SA}")),
                (
                    MAIN,
                    vec![
                        "service_accounts[1]",
                        "\"sa-1\"",
                        "duplicate service account id",
                    ],
                ),
            ),
            (
                "same binding twice under two ids",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{CRED}{}",
                    cred("cred-2", "fed-1", "sa-1", "subject-1")
                )),
                (MAIN, vec!["\"cred-2\"", "bound twice"]),
            ),
            (
                "same binding twice without ids",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{0}{0}",
                    "\n[[federated_credentials]]\nfederation_id = \"fed-1\"\nservice_account_id = \"sa-1\"\nexternal_subject_id = \"s\"\n"
                )),
                (MAIN, vec!["federated_credentials[1]", "bound twice"]),
            ),
            (
                "duplicate credential id",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{CRED}{}",
                    cred("cred-1", "fed-1", "sa-1", "subject-2")
                )),
                (
                    MAIN,
                    vec!["\"cred-1\"", "duplicate federated credential id"],
                ),
            ),
            (
                "jwks_url not a URL",
                main_only(fed_with("audiences = [\"a\"]\njwks_url = \"not a url\"")),
                (
                    MAIN,
                    vec!["\"fed-1\"", "jwks_url", "\"not a url\"", "not a URL"],
                ),
            ),
            (
                "jwks_url over plain http",
                main_only(fed_with(
                    "audiences = [\"a\"]\njwks_url = \"http://issuer.example/jwks\"",
                )),
                (MAIN, vec!["\"fed-1\"", "jwks_url", "plain http"]),
            ),
            (
                "jwks_url with another scheme",
                main_only(fed_with(
                    "audiences = [\"a\"]\njwks_url = \"file:///etc/jwks.json\"",
                )),
                (MAIN, vec!["\"fed-1\"", "jwks_url", "\"file\""]),
            ),
            (
                "issuer not a URL, keys from discovery",
                main_only(format!(
                    "{SIGNING}{}",
                    federation("fed-1", "issuer = \"issuer.example\"\naudiences = [\"a\"]")
                )),
                (MAIN, vec!["\"fed-1\"", "discovery", "\"issuer.example\""]),
            ),
            (
                "empty audiences",
                main_only(fed_with(
                    "audiences = []\njwks_url = \"https://issuer.example/jwks\"",
                )),
                (MAIN, vec!["\"fed-1\"", "audiences must list"]),
            ),
            (
                "audience over 255 characters",
                main_only(fed_with(&format!(
                    "audiences = [\"{long_audience}\"]\njwks_url = \"https://issuer.example/jwks\""
                ))),
                (MAIN, vec!["\"fed-1\"", "1 to 255 characters"]),
            ),
            (
                "empty audience",
                main_only(fed_with(
                    "audiences = [\"\"]\njwks_url = \"https://issuer.example/jwks\"",
                )),
                (MAIN, vec!["\"fed-1\"", "1 to 255 characters"]),
            ),
            (
                "two key sources",
                main_only(fed_with(&format!(
                    "audiences = [\"a\"]\njwks_url = \"https://issuer.example/jwks\"\njwks = '''{}'''",
                    ec_jwks()
                ))),
                (MAIN, vec!["\"fed-1\"", "at most one of"]),
            ),
            (
                "inline jwks with only an oct key",
                main_only(fed_with(&format!("audiences = [\"a\"]\njwks = '{oct}'"))),
                (MAIN, vec!["\"fed-1\"", "no usable signing key", "oct"]),
            ),
            (
                "inline jwks not JSON",
                main_only(fed_with("audiences = [\"a\"]\njwks = '{keys'")),
                (MAIN, vec!["\"fed-1\"", "not valid JSON"]),
            ),
            (
                "jwks_file missing",
                main_only(fed_with("audiences = [\"a\"]\njwks_file = \"absent.json\"")),
                (MAIN, vec!["\"fed-1\"", "absent.json"]),
            ),
            (
                "tokens.lifetime_seconds over 12 h",
                main_only(format!("{SIGNING}[tokens]\nlifetime_seconds = 50000\n")),
                (MAIN, vec!["[tokens]", "lifetime_seconds = 50000"]),
            ),
            (
                "tokens.lifetime_seconds under a minute",
                main_only(format!("{SIGNING}[tokens]\nlifetime_seconds = 59\n")),
                (MAIN, vec!["[tokens]", "lifetime_seconds = 59"]),
            ),
            (
                "leeway over 300 s",
                main_only(format!("{SIGNING}[exchange]\nleeway_seconds = 301\n")),
                (MAIN, vec!["[exchange]", "leeway_seconds = 301"]),
            ),
            (
                "negative leeway",
                main_only(format!("{SIGNING}[exchange]\nleeway_seconds = -1\n")),
                (MAIN, vec!["[exchange]", "leeway_seconds = -1"]),
            ),
            (
                "federation max lifetime over a year",
                main_only(format!(
                    "{SIGNING}{FED}max_token_lifetime_seconds = 40000000\n"
                )),
                (
                    MAIN,
                    vec!["\"fed-1\"", "max_token_lifetime_seconds = 40000000"],
                ),
            ),
            (
                "federation id with a space",
                main_only(format!(
                    "{SIGNING}{}",
                    federation(
                        "fed 1",
                        "issuer = \"https://issuer.example\"\naudiences = [\"a\"]"
                    )
                )),
                (MAIN, vec!["\"fed 1\"", "only letters, digits"]),
            ),
            (
                "service account id with a slash",
                main_only(format!("{SIGNING}[[service_accounts]]\nid = \"sa/1\"\n")),
                (MAIN, vec!["\"sa/1\"", "only letters, digits"]),
            ),
            (
                "service account id with the unit separator",
                main_only(format!(
                    "{SIGNING}[[service_accounts]]\nid = \"sa\\u001F1\"\n"
                )),
                (MAIN, vec!["service_accounts[0]", "only letters, digits"]),
            ),
            (
                "empty service account id",
                main_only(format!("{SIGNING}[[service_accounts]]\nid = \"\"\n")),
                (MAIN, vec!["service_accounts[0]", "1 to 50 characters"]),
            ),
            (
                "credential id with a dot",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{}",
                    cred("cred.1", "fed-1", "sa-1", "s")
                )),
                (MAIN, vec!["\"cred.1\"", "only letters, digits"]),
            ),
            (
                "external_subject_id empty",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{}",
                    cred("cred-1", "fed-1", "sa-1", "")
                )),
                (MAIN, vec!["\"cred-1\"", "external_subject_id must be"]),
            ),
            (
                "external_subject_id with surrounding white space",
                main_only(format!(
                    "{SIGNING}{FED}{SA}{}",
                    cred("cred-1", "fed-1", "sa-1", "subject-1 ")
                )),
                (MAIN, vec!["\"cred-1\"", "white space"]),
            ),
            (
                "invalid federation in an included directory",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}")),
                    (
                        "dir/a.toml",
                        federation(
                            "fed-inc",
                            "issuer = \"https://issuer.example\"\naudiences = []",
                        ),
                    ),
                ],
                ("dir/a.toml", vec!["\"fed-inc\"", "audiences must list"]),
            ),
            (
                "unknown key in an included file",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}")),
                    ("dir/a.toml", format!("{FED}enabled_for = \"all\"\n")),
                ],
                ("dir/a.toml", vec!["enabled_for"]),
            ),
            (
                "settings in an included file",
                vec![
                    (MAIN, format!("include = [\"more.toml\"]\n{SIGNING}")),
                    ("more.toml", SIGNING.into()),
                ],
                ("more.toml", vec!["signing"]),
            ),
            (
                "binding in an included file naming an unknown federation",
                vec![
                    (MAIN, format!("include = [\"dir\"]\n{SIGNING}{SA}")),
                    ("dir/b.toml", cred("cred-9", "fed-missing", "sa-1", "s")),
                ],
                ("dir/b.toml", vec!["\"cred-9\"", "\"fed-missing\""]),
            ),
            (
                "missing included file",
                main_only(format!("include = [\"absent.toml\"]\n{SIGNING}")),
                ("absent.toml", vec![]),
            ),
        ];
        let mut failures = Vec::new();
        for (name, files, (file, needles)) in cases {
            match load_files(&files) {
                Ok(_) => failures.push(format!("{name}: loaded")),
                Err(e) => {
                    let found = e
                        .problems
                        .iter()
                        .any(|p| p.contains(file) && needles.iter().all(|n| p.contains(n)));
                    if !found {
                        failures.push(format!(
                            "{name}: no problem names {file} and {needles:?}: {:?}",
                            e.problems
                        ));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn reports_every_problem_of_a_file_at_once() {
        let text = format!(
            "{SIGNING}[exchange]\nleeway_seconds = 301\n{}{SA}{}",
            federation(
                "fed 1",
                "issuer = \"https://issuer.example\"\naudiences = []"
            ),
            "\n[[federated_credentials]]\nid = \"cred-1\"\nfederation_id = \"fed-missing\"\nservice_account_id = \"sa-missing\"\nexternal_subject_id = \"\"\n"
        );
        let err = load_files(&main_only(text)).expect_err("invalid");
        let expected = [
            "leeway_seconds = 301",
            "\"fed 1\" may contain only",
            "audiences must list",
            "\"fed-missing\" names no federation",
            "\"sa-missing\" names no service account",
            "external_subject_id must be",
        ];
        assert!(err.problems.len() >= 3, "{:?}", err.problems);
        for needle in expected {
            assert!(
                err.problems
                    .iter()
                    .any(|p| p.contains(needle) && p.contains(MAIN)),
                "{needle} not reported: {:?}",
                err.problems
            );
        }
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!(
                "invalid configuration ({} problems)",
                err.problems.len()
            )),
            "{shown}"
        );
    }

    /// Whether `text` holds an id derived for a credential written without one (`fc` and 18 hex
    /// digits).
    fn has_derived_id(text: &str) -> bool {
        text.match_indices("fc").any(|(i, _)| {
            text.get(i + 2..i + 20)
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
        })
    }

    #[test]
    fn items_are_placed_by_file_line_and_what_was_written() {
        // Line numbers matter below: dir/b.toml's second credential starts on line 8.
        let included = "# bindings of the app\n\n[[federated_credentials]]\nfederation_id = \"fed-1\"\nservice_account_id = \"sa-1\"\nexternal_subject_id = \"project_path:group/app:ref_type:branch:ref:main\"\n\n[[federated_credentials]]\nfederation_id = \"nope\"\nservice_account_id = \"sa-1\"\nexternal_subject_id = \"project_path:group/app:ref_type:branch:ref:dev\"\n";
        // Main file: an inline credential array whose second element (line 4) names an unknown
        // service account, a federation on line 8 and its duplicate on line 14.
        let main = format!(
            "include = [\"dir\"]\nfederated_credentials = [\n  {{ id = \"cred-ok\", federation_id = \"fed-1\", service_account_id = \"sa-1\", external_subject_id = \"s\" }},\n  {{ federation_id = \"fed-1\", service_account_id = \"sa-x\", external_subject_id = \"s\" }},\n]\n{SIGNING}[[federations]]\nid = \"fed-1\"\nissuer = \"https://issuer.example\"\naudiences = [\"a\"]\njwks_url = \"https://issuer.example/jwks\"\n\n[[federations]]\nid = \"fed-1\"\nissuer = \"https://other.example\"\naudiences = [\"a\"]\n{SA}"
        );
        let lines: Vec<&str> = main.lines().collect();
        assert_eq!(
            (lines[3], lines[7], lines[13]),
            (
                "  { federation_id = \"fed-1\", service_account_id = \"sa-x\", external_subject_id = \"s\" },",
                "[[federations]]",
                "[[federations]]",
            ),
            "the test's own line numbers"
        );
        let err =
            load_files(&vec![(MAIN, main), ("dir/b.toml", included.into())]).expect_err("invalid");
        let find = |needle: &str| {
            err.problems
                .iter()
                .find(|p| p.contains(needle))
                .unwrap_or_else(|| panic!("no problem has {needle:?}: {:#?}", err.problems))
                .clone()
        };
        let unknown_federation = find("names no federation");
        assert!(
            unknown_federation.ends_with(
                "/dir/b.toml:8: federated_credentials[1] (external_subject_id \"project_path:group/app:ref_type:branch:ref:dev\"): federation_id \"nope\" names no federation"
            ),
            "{unknown_federation}"
        );
        let duplicate = find("duplicate federation id");
        assert!(
            duplicate.contains(&format!("/{MAIN}:14: federations[1] (id \"fed-1\"): "))
                && duplicate.ends_with(&format!("/{MAIN}:8)")),
            "{duplicate}"
        );
        let unknown_account = find("names no service account");
        assert!(
            unknown_account.contains(&format!(
                "/{MAIN}:4: federated_credentials[1] (external_subject_id \"s\"): "
            )),
            "{unknown_account}"
        );
        for p in &err.problems {
            assert!(!has_derived_id(p), "a derived id in {p}");
        }
        assert_eq!(err.problems.len(), 3, "{:#?}", err.problems);
    }

    #[test]
    fn duplicates_point_at_the_first_of_them() {
        let binding = "\n[[federated_credentials]]\nfederation_id = \"fed-1\"\nservice_account_id = \"sa-1\"\nexternal_subject_id = \"subject-1\"\n";
        let err = load_files(&vec![
            (MAIN, format!("include = [\"dir\"]\n{SIGNING}{FED}{SA}")),
            ("dir/a.toml", format!("\n{binding}")),
            ("dir/b.toml", format!("{SA}{binding}")),
        ])
        .expect_err("invalid");
        let problems = err.problems.join("\n");
        assert!(
            problems.contains(
                "/dir/b.toml:5: federated_credentials[0] (external_subject_id \"subject-1\"): the same federation, service account and subject are bound twice (first at "
            ) && problems.contains("/dir/a.toml:3)"),
            "{problems}"
        );
        assert!(
            problems.contains("/dir/b.toml:2: service_accounts[0] (id \"sa-1\"): duplicate service account id (first at ")
                && problems.contains(&format!("/{MAIN}:"))
        );
        assert!(!has_derived_id(&problems), "{problems}");

        // The same id written twice.
        let err = load_files(&main_only(format!(
            "{SIGNING}{FED}{SA}{CRED}{}",
            CRED.replace("subject-1", "subject-2")
        )))
        .expect_err("invalid");
        assert_eq!(err.problems.len(), 1, "{:?}", err.problems);
        assert!(
            err.problems[0].contains(&format!(
                "/{MAIN}:19: federated_credentials[1] (id \"cred-1\"): duplicate federated credential id (first at "
            )) && err.problems[0].ends_with(&format!("/{MAIN}:13)")),
            "{:?}",
            err.problems
        );

        // An id written by hand that another credential derives from its binding.
        let unnamed = binding.replace("subject-1", "subject-9");
        let config = load_files(&main_only(format!("{SIGNING}{FED}{SA}{unnamed}"))).expect("valid");
        let d = &config.directory;
        let derived = d
            .federations_for_issuer("https://issuer.example")
            .first()
            .and_then(|&f| d.credential(f, "sa-1", "subject-9"))
            .expect("derived id")
            .to_owned();
        let named = CRED.replace("\"cred-1\"", &format!("{derived:?}"));
        let err = load_files(&main_only(format!("{SIGNING}{FED}{SA}{named}{unnamed}")))
            .expect_err("invalid");
        assert_eq!(err.problems.len(), 1, "{:?}", err.problems);
        assert!(
            err.problems[0].contains(&format!(
                "federated_credentials[1] (external_subject_id \"subject-9\"): the id derived from its binding, {derived:?}, is the id of the credential at "
            )),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn long_values_are_cut_in_places() {
        let subject = "s".repeat(1001);
        let err = load_files(&main_only(format!(
            "{SIGNING}{FED}{SA}\n[[federated_credentials]]\nfederation_id = \"fed-1\"\nservice_account_id = \"sa-1\"\nexternal_subject_id = \"{subject}\"\n"
        )))
        .expect_err("invalid");
        let shown = format!("(external_subject_id \"{}\"…)", "s".repeat(100));
        assert!(
            err.problems
                .iter()
                .any(|p| p.contains(&shown) && p.contains("1 to 1000 characters")),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn line_numbers_are_read_once_per_file() {
        let dir = Scratch::new();
        dir.write("a.toml", "one\ntwo\n\nfour");
        let file = Arc::new(dir.0.join("a.toml"));
        let mut lines = LineIndex::default();
        let found: Vec<Option<usize>> = [0, 3, 4, 8, 9, 13, 100]
            .iter()
            .map(|&offset| lines.line(&file, offset))
            .collect();
        assert_eq!(
            found,
            [
                Some(1),
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(4),
                Some(4)
            ]
        );
        std::fs::remove_file(&*file).expect("rm");
        assert_eq!(lines.line(&file, 9), Some(4), "the line starts are kept");
        let gone = Arc::new(dir.0.join("gone.toml"));
        assert_eq!(lines.line(&gone, 0), None);
        // A place whose file is gone still names the file.
        let place = ItemPlace {
            file: &gone,
            list: "federations",
            index: 0,
            offset: 0,
            key: "id",
            value: "f",
        };
        assert!(
            place
                .describe(&mut lines)
                .ends_with("/gone.toml: federations[0] (id \"f\")")
        );
    }

    #[test]
    fn warns_about_what_is_valid_but_probably_not_meant() {
        let fed = |id: &str, lines: &str| federation(id, &format!("audiences = [\"a\"]\n{lines}"));
        // (name, text, warning a valid config has: strings it contains; none: no warning)
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            (
                "nothing to say",
                format!("{SIGNING}{FED}{SA}{CRED}"),
                vec![],
            ),
            (
                "issuer with a trailing slash",
                format!(
                    "{SIGNING}{}",
                    fed(
                        "fed-1",
                        "issuer = \"https://gitlab.example/\"\njwks_url = \"https://gitlab.example/jwks\""
                    )
                ),
                vec![
                    ":4: federations[0] (id \"fed-1\"): ",
                    "issuer \"https://gitlab.example/\" ends with a slash; matching is exact: tokens must carry exactly this iss",
                ],
            ),
            (
                "plain http to a loopback issuer",
                format!(
                    "{SIGNING}{}",
                    fed(
                        "fed-1",
                        "issuer = \"http://127.0.0.1:9000\"\nallow_insecure_http = true"
                    )
                ),
                vec![],
            ),
            (
                "plain http to localhost",
                format!(
                    "{SIGNING}{}",
                    fed(
                        "fed-1",
                        "issuer = \"https://i.example\"\njwks_url = \"http://localhost:9000/k\"\nallow_insecure_http = true"
                    )
                ),
                vec![],
            ),
            (
                "plain http to another host",
                format!(
                    "{SIGNING}{}",
                    fed(
                        "fed-1",
                        "issuer = \"https://i.example\"\njwks_url = \"http://keys.example/jwks\"\nallow_insecure_http = true"
                    )
                ),
                vec!["(id \"fed-1\")", "plain http from \"keys.example\""],
            ),
            (
                "plain http to another host by discovery",
                format!(
                    "{SIGNING}{}",
                    fed(
                        "fed-1",
                        "issuer = \"http://10.0.0.1\"\nallow_insecure_http = true"
                    )
                ),
                vec!["(id \"fed-1\")", "plain http from \"10.0.0.1\""],
            ),
            (
                "a wildcard in a subject",
                format!(
                    "{SIGNING}{FED}{SA}\n[[federated_credentials]]\nfederation_id = \"fed-1\"\nservice_account_id = \"sa-1\"\nexternal_subject_id = \"project_path:group/*\"\n"
                ),
                vec![
                    "federated_credentials[0] (external_subject_id \"project_path:group/*\")",
                    "'*' is not a wildcard: subjects are compared exactly",
                ],
            ),
            (
                "the dev issuer",
                format!("{SIGNING}[dev_issuer]\nenabled = true\n"),
                vec!["[dev_issuer]", "for local round trips only"],
            ),
        ];
        let mut failures = Vec::new();
        for (name, text, needles) in cases {
            match load_files(&main_only(text)) {
                Err(e) => failures.push(format!("{name}: {e}")),
                Ok(config) => {
                    let ok = if needles.is_empty() {
                        config.warnings.is_empty()
                    } else {
                        config.warnings.len() == 1
                            && needles.iter().all(|n| config.warnings[0].contains(n))
                    };
                    if !ok {
                        failures.push(format!("{name}: {:?}", config.warnings));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn the_store_and_the_iam_api_are_configured_with_defaults_beside_the_file() {
        let dir = Scratch::new();
        let server = "[server]\npublic_url = \"https://wif.example\"\n";
        dir.write(
            MAIN,
            &format!("{server}{SIGNING}[store]\nurl = \"sqlite://data/iam.db\"\n"),
        );
        let config = load(&dir.0.join(MAIN)).expect("valid");
        let store = config.settings.store.expect("store");
        let file = dir.0.join("data/iam.db");
        assert_eq!(store.url, format!("sqlite://{}?mode=rwc", file.display()));
        assert_eq!(store.sqlite_file, Some(file));
        assert_eq!(config.settings.grpc_endpoint, "wif.example:443");
        assert_eq!(
            config.settings.iam.token_audiences,
            [
                "https://wif.example/iam/v1/tokens",
                "https://iam.wif.example:443/iam/v1/tokens",
                "https://iam.wif.example/iam/v1/tokens"
            ]
        );
        assert_eq!(
            config.settings.iam.bootstrap_key_file,
            dir.0.join("admin-key.json")
        );
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);

        let none = load_files(&main_only(SIGNING.into())).expect("valid");
        assert!(none.settings.store.is_none(), "no [store], no store");
    }

    #[test]
    fn the_grpc_endpoint_defaults_to_the_public_urls_host_and_port_and_is_checked() {
        let cases: Vec<(&str, &str, Result<&str, &str>)> = vec![
            (
                "https default port",
                "public_url = \"https://wif.example/\"",
                Ok("wif.example:443"),
            ),
            (
                "http with port",
                "public_url = \"http://127.0.0.1:8080\"",
                Ok("127.0.0.1:8080"),
            ),
            (
                "no public_url",
                "listen = \"127.0.0.1:9000\"",
                Ok("127.0.0.1:9000"),
            ),
            (
                "ipv6",
                "public_url = \"https://[::1]:8443\"",
                Ok("[::1]:8443"),
            ),
            (
                "set",
                "grpc_endpoint = \"grpc.wif.example:8443\"",
                Ok("grpc.wif.example:8443"),
            ),
            (
                "no port",
                "grpc_endpoint = \"wif.example\"",
                Err("grpc_endpoint \"wif.example\" must be host:port"),
            ),
            (
                "a URL",
                "grpc_endpoint = \"https://wif.example:443\"",
                Err("must be host:port"),
            ),
            (
                "port 0",
                "grpc_endpoint = \"wif.example:0\"",
                Err("must be host:port"),
            ),
        ];
        for (name, server, expected) in cases {
            let text = format!("[server]\n{server}\n{SIGNING}[store]\nurl = \"sqlite://iam.db\"\n");
            match (load_files(&main_only(text)), expected) {
                (Ok(config), Ok(endpoint)) => {
                    assert_eq!(config.settings.grpc_endpoint, endpoint, "{name}");
                    assert!(
                        config
                            .settings
                            .iam
                            .token_audiences
                            .contains(&format!("https://iam.{endpoint}/iam/v1/tokens")),
                        "{name}: {:?}",
                        config.settings.iam.token_audiences
                    );
                }
                (Err(e), Err(message)) => assert!(e.to_string().contains(message), "{name}: {e}"),
                (other, _) => panic!("{name}: {:?}", other.map(|c| c.settings.grpc_endpoint)),
            }
        }
        let configured = format!(
            "[server]\ngrpc_endpoint = \"g.example:8443\"\n{SIGNING}[store]\nurl = \"sqlite://iam.db\"\n[iam]\ntoken_audiences = [\"https://iam.g.example:8443/iam/v1/tokens\"]\n"
        );
        let config = load_files(&main_only(configured)).expect("valid");
        assert_eq!(
            config.settings.iam.token_audiences,
            ["https://iam.g.example:8443/iam/v1/tokens"],
            "a configured list replaces the defaults"
        );
    }

    #[test]
    fn store_urls_are_resolved_kept_or_refused_without_showing_a_password() {
        let base = Path::new("/etc/wif");
        let cases: Vec<(&str, &str, Result<&str, &str>)> = vec![
            (
                "relative",
                "sqlite://iam.db",
                Ok("sqlite:///etc/wif/iam.db?mode=rwc"),
            ),
            (
                "parent",
                "sqlite:../state/iam.db",
                Ok("sqlite:///etc/state/iam.db?mode=rwc"),
            ),
            (
                "absolute",
                "sqlite:///var/lib/wif/iam.db",
                Ok("sqlite:///var/lib/wif/iam.db?mode=rwc"),
            ),
            (
                "own mode",
                "sqlite://iam.db?mode=rw",
                Ok("sqlite:///etc/wif/iam.db?mode=rw"),
            ),
            (
                "other parameter",
                "sqlite://iam.db?cache=shared",
                Ok("sqlite:///etc/wif/iam.db?cache=shared&mode=rwc"),
            ),
            (
                "a ? in the name",
                "sqlite://a%3Fb.db",
                Ok("sqlite:///etc/wif/a%3Fb.db?mode=rwc"),
            ),
            (
                "a % in the name",
                "sqlite://100%25.db",
                Ok("sqlite:///etc/wif/100%25.db?mode=rwc"),
            ),
            ("in memory", "sqlite::memory:", Ok("sqlite::memory:")),
            (
                "postgres",
                "postgres://u:secret@db:5432/iam",
                Ok("postgres://u:secret@db:5432/iam"),
            ),
            (
                "postgresql",
                "postgresql://db/iam?sslmode=require",
                Ok("postgresql://db/iam?sslmode=require"),
            ),
            ("no file", "sqlite://", Err("names no database file")),
            (
                "mysql",
                "mysql://u:secret@db/iam",
                Err("must be a sqlite:// or postgres:// URL"),
            ),
            (
                "not a URL",
                "secret",
                Err("must be a sqlite:// or postgres:// URL"),
            ),
        ];
        for (name, url, want) in cases {
            let got = validate::store_settings(base, url).map(|s| s.url);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{name}"),
                (Err(got), Err(want)) => {
                    assert!(got.contains(want), "{name}: {got}");
                    assert!(!got.contains("secret"), "{name}: {got}");
                }
                (got, want) => panic!("{name}: {got:?}, expected {want:?}"),
            }
        }
        let store = validate::store_settings(base, "postgres://u:secret@db/iam").expect("valid");
        assert_eq!(store.redacted(), "postgres://u:***@db/iam");
        assert!(!format!("{store:?}").contains("secret"));
        let store = validate::store_settings(base, "postgres://db/iam?user=u&password=secret")
            .expect("valid");
        assert_eq!(store.redacted(), "postgres://db/iam?user=u&password=***");
    }

    /// `[[permissions]]` and `[[roles]]` of a downstream service.
    fn service_roles(permissions: &[(&str, &str)], roles: &[(&str, &str, &str)]) -> String {
        let mut text = String::from(SIGNING);
        for (id, class) in permissions {
            text.push_str(&format!(
                "\n[[permissions]]\nid = \"{id}\"\nclass = \"{class}\"\n"
            ));
        }
        for (id, permissions, includes) in roles {
            text.push_str(&format!(
                "\n[[roles]]\nid = \"{id}\"\npermissions = [{permissions}]\nincludes = [{includes}]\n"
            ));
        }
        text
    }

    #[test]
    fn service_roles_are_loaded_into_the_catalog() {
        let config = load_files(&main_only(service_roles(
            &[
                ("lockbox.secrets.get", "read_metadata"),
                ("lockbox.secrets.getPayload", "read"),
            ],
            &[
                (
                    "lockbox.payloadViewer",
                    "\"lockbox.secrets.getPayload\"",
                    "",
                ),
                (
                    "lockbox.viewer",
                    "\"lockbox.secrets.get\"",
                    "\"lockbox.payloadViewer\"",
                ),
            ],
        )))
        .expect("valid");
        let catalog = &config.catalog;
        assert_eq!(catalog.roles().len(), 2);
        let viewer = catalog.role("lockbox.viewer").unwrap();
        assert!(
            catalog
                .grantors("lockbox.secrets.getPayload")
                .unwrap()
                .configured
                .contains(viewer)
        );
        let none = load_files(&main_only(SIGNING.into())).expect("valid");
        assert!(none.catalog.roles().is_empty());
        let empty =
            load_files(&main_only(service_roles(&[], &[("svc.nothing", "", "")]))).expect("valid");
        assert!(
            empty.warnings.iter().any(|w| w.contains("grants nothing")),
            "{:?}",
            empty.warnings
        );
    }

    #[test]
    fn service_roles_are_refused_with_their_file_and_line() {
        let p = |id: &'static str, class: &'static str| (id, class);
        let too_many: Vec<(String, &str, &str)> =
            (0..65).map(|i| (format!("svc.role{i}"), "", "")).collect();
        let too_many: Vec<(&str, &str, &str)> = too_many
            .iter()
            .map(|(id, a, b)| (id.as_str(), *a, *b))
            .collect();
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            (
                "permission id syntax",
                service_roles(&[p("lockbox.getPayload", "read")], &[]),
                vec!["gateway.toml:4: permissions[0]", "service.noun.verb"],
            ),
            (
                "built-in permission",
                service_roles(&[p("iam.serviceAccounts.get", "read")], &[]),
                vec!["permissions[0]", "built-in IAM permission"],
            ),
            (
                "reserved service",
                service_roles(&[p("iam.secrets.get", "read")], &[]),
                vec!["permissions[0]", "the gateway's own"],
            ),
            (
                "unknown class",
                service_roles(&[p("lockbox.secrets.get", "owner")], &[]),
                vec![
                    "permissions[0]",
                    "class \"owner\" must be one of read_metadata, read, manage, manage_access",
                ],
            ),
            (
                "duplicate permission",
                service_roles(
                    &[
                        p("lockbox.secrets.get", "read"),
                        p("lockbox.secrets.get", "read"),
                    ],
                    &[],
                ),
                vec![
                    "gateway.toml:8: permissions[1]",
                    "duplicate permission id (first at",
                    "gateway.toml:4)",
                ],
            ),
            (
                "role id syntax",
                service_roles(&[], &[("payloadViewer", "", "")]),
                vec!["gateway.toml:4: roles[0]", "service.roleName"],
            ),
            (
                "built-in role",
                service_roles(&[], &[("iam.admin", "", "")]),
                vec!["roles[0]", "built-in IAM role"],
            ),
            (
                "duplicate role",
                service_roles(&[], &[("svc.a", "", ""), ("svc.a", "", "")]),
                vec!["roles[1]", "duplicate role id (first at", "gateway.toml:4)"],
            ),
            (
                "unknown permission",
                service_roles(&[], &[("svc.a", "\"svc.things.read\"", "")]),
                vec!["roles[0]", "\"svc.things.read\" names no permission"],
            ),
            (
                "built-in permission in a role",
                service_roles(&[], &[("svc.a", "\"iam.serviceAccounts.get\"", "")]),
                vec![
                    "roles[0]",
                    "built-in IAM permission: configured roles grant",
                ],
            ),
            (
                "unknown include",
                service_roles(&[], &[("svc.a", "", "\"svc.b\"")]),
                vec!["roles[0]", "includes: \"svc.b\" names no role"],
            ),
            (
                "built-in include",
                service_roles(&[], &[("svc.a", "", "\"viewer\"")]),
                vec!["roles[0]", "built-in IAM role: configured roles include"],
            ),
            (
                "cycle",
                service_roles(
                    &[],
                    &[
                        ("svc.a", "", "\"svc.b\""),
                        ("svc.b", "", "\"svc.c\""),
                        ("svc.c", "", "\"svc.a\""),
                    ],
                ),
                vec!["roles[0]", "includes itself: svc.a → svc.b → svc.c → svc.a"],
            ),
            (
                "self-inclusion",
                service_roles(&[], &[("svc.a", "", "\"svc.a\"")]),
                vec!["roles[0]", "includes itself: svc.a → svc.a"],
            ),
            (
                "too many roles",
                service_roles(&[], &too_many),
                vec!["[[roles]]", "65 roles are declared; at most 64"],
            ),
            (
                "unknown key",
                format!("{SIGNING}\n[[roles]]\nid = \"svc.a\"\ngrants = []\n"),
                vec!["unknown field `grants`"],
            ),
        ];
        for (name, text, expected) in cases {
            let err = load_files(&main_only(text)).expect_err(name);
            let text = err.to_string();
            assert!(
                err.problems
                    .iter()
                    .any(|p| expected.iter().all(|e| p.contains(e))),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn service_roles_may_live_in_included_files_and_refer_across_them() {
        // An included file holds no settings: the same declarations without [signing].
        let lockbox = service_roles(
            &[("lockbox.secrets.getPayload", "read")],
            &[(
                "lockbox.payloadViewer",
                "\"lockbox.secrets.getPayload\"",
                "",
            )],
        )
        .replacen(SIGNING, "", 1);
        // The main file's role includes one declared in an included file.
        let main = format!(
            "include = [\"services\"]\n{}",
            service_roles(&[], &[("ops.reader", "", "\"lockbox.payloadViewer\"")])
        );
        let config = load_files(&vec![
            (MAIN, main),
            ("services/lockbox.toml", lockbox.clone()),
        ])
        .expect("valid");
        let catalog = &config.catalog;
        assert_eq!(catalog.roles().len(), 2);
        let reader = catalog.role("ops.reader").expect("the main file's role");
        assert!(
            catalog
                .grantors("lockbox.secrets.getPayload")
                .expect("the included file's permission")
                .configured
                .contains(reader),
            "ops.reader grants what the included role does"
        );

        // The same declarations in two files are refused where they repeat, naming the first.
        let main = format!("include = [\"services\"]\n{SIGNING}{lockbox}");
        let err = load_files(&vec![(MAIN, main), ("services/lockbox.toml", lockbox)])
            .expect_err("duplicate across files");
        for expected in [
            [
                "lockbox.toml:2: permissions[0]",
                "duplicate permission id (first at",
            ],
            ["lockbox.toml:6: roles[0]", "duplicate role id (first at"],
        ] {
            assert!(
                err.problems
                    .iter()
                    .any(|p| expected.iter().all(|e| p.contains(e)) && p.contains("gateway.toml:")),
                "{expected:?}: {err}"
            );
        }
    }

    /// An `[[api_key_scopes]]` entry.
    fn scope(id: &str, permissions: &str) -> String {
        format!("\n[[api_key_scopes]]\nid = \"{id}\"\npermissions = [{permissions}]\n")
    }

    #[test]
    fn api_key_scopes_are_loaded_checked_and_may_live_in_included_files() {
        let lockbox =
            service_roles(&[("lockbox.secrets.getPayload", "read")], &[]).replacen(SIGNING, "", 1);
        let main = format!(
            "include = [\"services\"]\n{SIGNING}{}{}",
            scope("yc.lockbox.payload.read", "\"lockbox.secrets.getPayload\""),
            scope("yc.iam.authorize", "\"iam.accessService.authorize\"")
        );
        let included = format!(
            "{lockbox}{}",
            scope("yc.lockbox.everything", "\"lockbox.secrets.getPayload\"")
        );
        let config =
            load_files(&vec![(MAIN, main), ("services/lockbox.toml", included)]).expect("valid");
        let catalog = &config.catalog;
        let ids: Vec<&str> = catalog.api_key_scopes().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            [
                "yc.iam.authorize",
                "yc.lockbox.everything",
                "yc.lockbox.payload.read"
            ]
        );
        assert!(catalog.scope_permits("yc.lockbox.payload.read", "lockbox.secrets.getPayload"));
        assert!(catalog.scope_permits("yc.iam.authorize", "iam.accessService.authorize"));

        let with = |scopes: String| {
            format!(
                "{}{scopes}",
                service_roles(&[("lockbox.secrets.getPayload", "read")], &[])
            )
        };
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            (
                "id syntax",
                with(scope("yc lockbox", "\"lockbox.secrets.getPayload\"")),
                vec!["api_key_scopes[0]", "letters, digits, dots"],
            ),
            (
                "too long",
                with(scope(&"s".repeat(257), "\"lockbox.secrets.getPayload\"")),
                vec!["api_key_scopes[0]", "1 to 256"],
            ),
            (
                "duplicate",
                with(format!(
                    "{}{}",
                    scope("yc.a", "\"lockbox.secrets.getPayload\""),
                    scope("yc.a", "\"lockbox.secrets.getPayload\"")
                )),
                vec![
                    "api_key_scopes[1]",
                    "duplicate API-key scope id (first at",
                    "gateway.toml:",
                ],
            ),
            (
                "no permissions",
                with(scope("yc.a", "")),
                vec!["api_key_scopes[0]", "names at least one permission"],
            ),
            (
                "unknown permission",
                with(scope("yc.a", "\"lockbox.secrets.delete\"")),
                vec![
                    "api_key_scopes[0] (id \"yc.a\")",
                    "\"lockbox.secrets.delete\" names no permission",
                ],
            ),
            (
                "unknown key",
                format!("{SIGNING}\n[[api_key_scopes]]\nid = \"yc.a\"\nroles = []\n"),
                vec!["unknown field `roles`"],
            ),
        ];
        for (name, text, expected) in cases {
            let err = load_files(&main_only(text)).expect_err(name);
            assert!(
                err.problems
                    .iter()
                    .any(|p| expected.iter().all(|e| p.contains(e))),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn resources_are_absolute_uris_and_federations_only_narrow_them() {
        let tokens =
            "[tokens]\nresources = [\"https://lockbox.example\", \"urn:example:registry\"]\n";
        let fed = |lines: &str| {
            federation(
                "fed-1",
                &format!(
                    "issuer = \"https://i.example\"\naudiences = [\"a\"]\njwks_url = \"https://i.example/k\"\n{lines}"
                ),
            )
        };
        let config = load_files(&main_only(format!(
            "{SIGNING}{tokens}{}{}",
            fed("resources = [\"urn:example:registry\"]"),
            federation(
                "fed-2",
                "issuer = \"https://i.example\"\naudiences = [\"a\"]\njwks_url = \"https://i.example/k\""
            )
        )))
        .expect("valid");
        assert_eq!(
            config.settings.policy.resources,
            ["https://lockbox.example", "urn:example:registry"]
        );
        let narrowed = |id: &str| {
            config
                .directory
                .configured_federation(id)
                .map(|f| f.resources.clone())
        };
        assert_eq!(
            narrowed("fed-1"),
            Some(Some(vec!["urn:example:registry".to_owned()]))
        );
        assert_eq!(narrowed("fed-2"), Some(None), "no list: the gateway's");
        let defaults = load_files(&main_only(SIGNING.to_owned())).expect("valid");
        assert!(defaults.settings.policy.resources.is_empty());

        let refused = [
            (
                format!("{SIGNING}[tokens]\nresources = [\"lockbox\"]\n"),
                "[tokens]: resources value \"lockbox\" is not an absolute URI",
            ),
            (
                format!("{SIGNING}[tokens]\nresources = [\"https://a.example#x\"]\n"),
                "it has a fragment",
            ),
            (
                format!(
                    "{SIGNING}[tokens]\nresources = [\"https://a.example/{}\"]\n",
                    "a".repeat(250)
                ),
                "longer than 255",
            ),
            (
                format!(
                    "{SIGNING}[tokens]\nresources = [\"https://a.example\", \"https://a.example\"]\n"
                ),
                "resources lists \"https://a.example\" twice",
            ),
            (
                format!(
                    "{SIGNING}{tokens}{}",
                    fed("resources = [\"https://other.example\"]")
                ),
                "resources value \"https://other.example\" is not in [tokens] resources",
            ),
            (
                format!(
                    "{SIGNING}{}",
                    fed("resources = [\"https://lockbox.example\"]")
                ),
                "is not in [tokens] resources",
            ),
            (
                format!("{SIGNING}{tokens}{}", fed("resources = [\"/relative\"]")),
                "not an absolute URI",
            ),
        ];
        for (text, expected) in refused {
            let err = load_files(&main_only(text)).expect_err(expected);
            assert!(err.to_string().contains(expected), "{expected}: {err}");
        }
        let none = load_files(&main_only(format!(
            "{SIGNING}{tokens}{}",
            fed("resources = []")
        )))
        .expect("an empty list: the federation mints the default audience only");
        assert_eq!(
            none.directory
                .configured_federation("fed-1")
                .map(|f| f.resources.clone()),
            Some(Some(vec![]))
        );
    }

    #[test]
    fn iam_settings_are_checked() {
        let store = "[store]\nurl = \"sqlite://iam.db\"\n";
        let refused = [
            (
                format!("{SIGNING}{store}[iam]\ntoken_audiences = []\n"),
                "token_audiences must list 1 to 100 values",
            ),
            (
                format!("{SIGNING}{store}[iam]\ntoken_audiences = [\" x\"]\n"),
                "without surrounding white space",
            ),
            (
                format!("{SIGNING}[store]\nurl = \"mysql://u:secret@db/iam\"\n"),
                "[store]: url must be a sqlite:// or postgres:// URL",
            ),
            (
                format!("{SIGNING}[store]\nurl = \"sqlite://iam.db\"\npath = \"x\"\n"),
                "unknown field `path`",
            ),
        ];
        for (text, expected) in refused {
            let err = load_files(&main_only(text)).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let lonely = load_files(&main_only(format!(
            "{SIGNING}[iam]\nbootstrap_key_file = \"k.json\"\n"
        )))
        .expect("valid");
        assert!(
            lonely.warnings.len() == 1
                && lonely.warnings[0].contains("[iam] has no effect without [store]"),
            "{:?}",
            lonely.warnings
        );
    }

    #[test]
    fn tls_settings_are_compiled_with_their_paths() {
        let files = "cert_file = \"tls/server.pem\"\nkey_file = \"tls/server-key.pem\"\n";
        let dir = Scratch::new();
        dir.write(MAIN, &format!("{SIGNING}[server.tls]\n{files}"));
        let config = load(&dir.0.join(MAIN)).expect("valid");
        let tls = config.settings.tls.expect("[server.tls]");
        assert_eq!(tls.listen, SocketAddr::from(([127, 0, 0, 1], 8443)));
        assert_eq!(tls.cert_file, dir.0.join("tls/server.pem"));
        assert_eq!(tls.key_file, dir.0.join("tls/server-key.pem"));
        assert_eq!(tls.dev_ca_dir, None);
        assert!(
            config.settings.watch.contains(&dir.0.join("tls")),
            "a new certificate is seen: {:?}",
            config.settings.watch
        );
        dir.write(
            MAIN,
            &format!(
                "{SIGNING}[server.tls]\nlisten = \"127.0.0.1:0\"\n{files}generate_dev_ca = true\n"
            ),
        );
        let dev = load(&dir.0.join(MAIN))
            .expect("valid")
            .settings
            .tls
            .unwrap();
        assert_eq!(dev.dev_ca_dir, Some(dir.0.join("tls")), "beside cert_file");
        dir.write(
            MAIN,
            &format!("{SIGNING}[server.tls]\n{files}generate_dev_ca = true\ndev_ca_dir = \"ca\"\n"),
        );
        let dev = load(&dir.0.join(MAIN))
            .expect("valid")
            .settings
            .tls
            .unwrap();
        assert_eq!(dev.dev_ca_dir, Some(dir.0.join("ca")));
        let none = load_files(&main_only(SIGNING.into())).expect("valid");
        assert_eq!(none.settings.tls, None);
        // Port 0 twice: each listener gets a free port of its own.
        let free = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{SIGNING}[server.tls]\nlisten = \"127.0.0.1:0\"\n{files}"
        );
        load_files(&main_only(free)).expect("valid");
    }

    #[test]
    fn tls_settings_are_refused_by_each_rule() {
        let files = "cert_file = \"tls/server.pem\"\nkey_file = \"tls/server-key.pem\"\n";
        let tls = |server: &str, lines: &str| {
            format!("[server]\nlisten = \"127.0.0.1:9443\"\n{server}{SIGNING}[server.tls]\n{lines}")
        };
        let cases = [
            (
                "the plain listener's address",
                tls("", &format!("listen = \"127.0.0.1:9443\"\n{files}")),
                vec![
                    "[server.tls]: listen 127.0.0.1:9443 overlaps the plain listener's 127.0.0.1:9443",
                ],
            ),
            (
                "all interfaces on the plain listener's port",
                tls("", &format!("listen = \"0.0.0.0:9443\"\n{files}")),
                vec!["[server.tls]: listen 0.0.0.0:9443 overlaps"],
            ),
            (
                "one file for both",
                tls("", "cert_file = \"tls.pem\"\nkey_file = \"./tls.pem\"\n"),
                vec![
                    "[server.tls]: cert_file and key_file are the same file",
                    "tls.pem",
                ],
            ),
            (
                "dev_ca_dir without generate_dev_ca",
                tls("", &format!("{files}dev_ca_dir = \"ca\"\n")),
                vec!["[server.tls]: dev_ca_dir is set but generate_dev_ca is not"],
            ),
            (
                "cert_file is the CA's certificate",
                tls(
                    "",
                    "cert_file = \"tls/ca.pem\"\nkey_file = \"tls/server-key.pem\"\ngenerate_dev_ca = true\n",
                ),
                vec![
                    "[server.tls]: cert_file",
                    "ca.pem is a file of the development CA",
                ],
            ),
            (
                "key_file is the CA's key",
                tls(
                    "",
                    "cert_file = \"tls/server.pem\"\nkey_file = \"ca/ca-key.pem\"\ngenerate_dev_ca = true\ndev_ca_dir = \"ca\"\n",
                ),
                vec![
                    "[server.tls]: key_file",
                    "ca-key.pem is a file of the development CA",
                ],
            ),
            (
                "no cert_file",
                tls("", "key_file = \"k.pem\"\n"),
                vec!["missing field `cert_file`"],
            ),
            (
                "an unknown key",
                tls("", &format!("{files}certificate = \"c.pem\"\n")),
                vec!["unknown field `certificate`"],
            ),
        ];
        for (name, text, expected) in cases {
            let err = load_files(&main_only(text)).expect_err(name);
            assert!(
                err.problems
                    .iter()
                    .any(|p| p.contains(MAIN) && expected.iter().all(|e| p.contains(e))),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn an_invalid_set_keeps_its_warnings() {
        let err = load_files(&main_only(format!(
            "{SIGNING}{}",
            federation("fed-1", "issuer = \"https://i.example/\"\naudiences = []")
        )))
        .expect_err("invalid");
        assert!(
            err.warnings.len() == 1 && err.warnings[0].contains("ends with a slash"),
            "{:?}",
            err.warnings
        );
        assert!(
            !err.to_string().contains("slash"),
            "Display shows problems only"
        );
    }
}
