//! The binary as users run it: `serve` with the dev config (the README's round trip, then
//! SIGTERM), `check-config` and `keygen`.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::binary::{BIN, KillOnDrop, dev_config, dev_token, free_port, wait_ready};

/// Whether a process of this id exists (`kill -0`).
fn process_exists(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn serve_runs_the_readme_round_trip_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let config = dev_config(dir.path());
    let log_path = dir.path().join("stderr.log");
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--config",
            ])
            .arg(&config)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).expect("log file")),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;

    // 1. A caller token from the dev issuer.
    let jwt = dev_token(
        &client,
        &base,
        "project_path:demo/app:ref_type:branch:ref:main",
    )
    .await;
    // 2. The Yandex tutorial request, byte for byte as curl -d sends it.
    let body = format!(
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&requested_token_type=urn:ietf:params:oauth:token-type:access_token&audience=aje0devserviceacc001&subject_token={jwt}&subject_token_type=urn:ietf:params:oauth:token-type:id_token"
    );
    let response = client
        .post(format!("{base}/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("exchange");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer: serde_json::Value = response.json().await.expect("json");
    let access_token = answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    // 3. The discovery document a verifier starts from.
    let discovery: serde_json::Value = client
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(
        discovery["jwks_uri"],
        format!("{base}/.well-known/jwks.json")
    );

    let status = child.terminate().await;
    assert!(status.success(), "exit status {status}");
    let mut logs = String::new();
    std::fs::File::open(&log_path)
        .and_then(|mut f| f.read_to_string(&mut logs))
        .expect("logs");
    assert!(logs.contains("token issued"), "the exchange is logged");
    assert!(!logs.contains(&jwt), "the caller token is never logged");
    assert!(
        !logs.contains(&access_token),
        "the minted token is never logged"
    );
    let signature = jwt.rsplit('.').next().unwrap_or_default();
    assert!(
        !logs.contains(signature),
        "no part of the caller token's signature is logged"
    );
}

#[test]
fn check_config_accepts_the_shipped_configs_and_lists_every_problem() {
    let ok = Command::new(BIN)
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.toml"),
        ])
        .output()
        .expect("run");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 federation,"));

    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[signing]
key_file = "k.pem"

[[federations]]
id = "fed"
issuer = "https://gitlab.com"
audiences = []
jwks_url = "http://gitlab.com/oauth/discovery/keys"

[[federated_credentials]]
federation_id = "nope"
service_account_id = "missing"
external_subject_id = "x"
"#,
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "audiences",
        "plain http",
        "\"nope\" names no federation",
        "\"missing\" names no service account",
        "bad.toml",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }

    std::fs::write(&bad, "[signing]\nkey_file = \"k.pem\"\nlisten = 1\n").expect("write");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field"),
        "unknown keys are errors"
    );
}

#[test]
fn keygen_writes_private_keys_for_each_algorithm() {
    let dir = tempfile::tempdir().expect("dir");
    for alg in ["ES256", "EdDSA", "RS256"] {
        let path = dir.path().join(format!("{alg}.pem"));
        let out = Command::new(BIN)
            .args(["keygen", "--alg", alg, "--out"])
            .arg(&path)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(
            kid.len(),
            43,
            "{alg}: kid is a base64url SHA-256 thumbprint"
        );
        let key = wif_gateway::signing::SigningKey::from_file(&path).expect("loads");
        assert_eq!(key.kid(), kid);
        assert_eq!(key.alg().as_str(), alg);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{alg}: private key readable by its owner only");
        }
        let again = Command::new(BIN)
            .args(["keygen", "--alg", alg, "--out"])
            .arg(&path)
            .output()
            .expect("run");
        assert!(
            !again.status.success(),
            "{alg}: an existing key is not overwritten"
        );
    }
}

#[test]
fn keygen_refuses_a_missing_directory_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("missing");
    let out = Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(missing.join("sub/k.pem"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("does not exist; create it first"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no key id is printed");
    assert!(!missing.exists(), "no directory is created");

    let file = dir.path().join("file");
    std::fs::write(&file, "").expect("write");
    let out = Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(file.join("k.pem"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("list").count(),
        1,
        "nothing else is created"
    );
}

#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    // Nothing listens on the port: two attempts, one "retrying" warning between them.
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WIF_") {
            command.env_remove(name);
        }
    }
    let out = command
        .args(["exchange", "--url", &url, "--service-account", "sa"])
        .args(["--token-env", "WIF_CLI_TEST_TOKEN", "--max-attempts", "2"])
        .env("WIF_CLI_TEST_TOKEN", "a.b.c")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("WARN"), "a log line is written: {stderr}");
    assert!(
        !out.stderr.contains(&0x1b),
        "no escape (ANSI colour) codes in piped logs: {stderr:?}"
    );
}

/// The description of each `--flag` in a `--help` text's options: the text after the flag (on its
/// line and on continuation lines), without the `[env: ..]`, `[default: ..]` and
/// `[possible values: ..]` notes clap adds.
fn flag_descriptions(help: &str) -> Vec<(String, String)> {
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut in_options = false;
    for line in help.lines() {
        if !line.starts_with(' ') {
            in_options = line.trim_end().ends_with("Options:");
            continue;
        }
        if !in_options {
            continue;
        }
        let text = line.trim();
        if text.starts_with('-') {
            let (flag, rest) = text.split_once("  ").unwrap_or((text, ""));
            flags.push((flag.to_owned(), rest.trim().to_owned()));
        } else if let Some((_, description)) = flags.last_mut() {
            description.push(' ');
            description.push_str(text);
        }
    }
    for (_, description) in &mut flags {
        let mut shown = String::new();
        let mut depth = 0usize;
        for c in description.chars() {
            match c {
                '[' => depth += 1,
                ']' if depth > 0 => depth -= 1,
                _ if depth == 0 => shown.push(c),
                _ => {}
            }
        }
        *description = shown.trim().to_owned();
    }
    flags
}

#[test]
fn every_flag_of_every_subcommand_has_a_help_description() {
    for subcommand in ["", "serve", "check-config", "keygen", "exchange"] {
        let out = Command::new(BIN)
            .args([subcommand, "--help"].into_iter().filter(|a| !a.is_empty()))
            .output()
            .expect("run");
        assert!(out.status.success(), "{subcommand} --help");
        let help = String::from_utf8_lossy(&out.stdout);
        let flags = flag_descriptions(&help);
        assert!(
            flags.iter().any(|(flag, _)| flag.starts_with("-h, --help")),
            "{subcommand}: no options found in {help}"
        );
        for (flag, description) in flags {
            assert!(
                description.chars().any(char::is_alphabetic),
                "{subcommand} --help: {flag} has no description"
            );
        }
    }
}

#[test]
fn a_failing_test_stops_the_gateway_it_started() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "[signing]\nkey_file = \"signing.pem\"\ngenerate_if_missing = true\n",
    )
    .expect("write");
    let mut pid = None;
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let gateway = KillOnDrop::spawn(
            Command::new(BIN)
                .args(["serve", "--listen", "127.0.0.1:0", "--config"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        pid = Some(gateway.0.id());
        assert!(process_exists(gateway.0.id()), "the gateway runs");
        // A failed assertion, without the panic message on the test's output.
        std::panic::resume_unwind(Box::new("a failed assertion"));
    }));
    assert!(failed.is_err());
    let pid = pid.expect("spawned");
    assert!(
        !process_exists(pid),
        "the gateway (pid {pid}) still runs after the test that started it failed"
    );
}

/// Runs `check-config --config PATH` with `extra` arguments: (exit code, stdout, stderr).
fn check_config(path: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(path)
        .args(extra)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A valid set: 2 federations (one issuer with a trailing slash: a warning), 1 service account, 1
/// federated credential; the signing key is generated on first start, so none need exist.
const VALID_WITH_A_WARNING: &str = r#"
[signing]
key_file = "k.pem"
generate_if_missing = true

[audit]
output = "off"

[[federations]]
id = "gitlab"
issuer = "https://gitlab.example/"
audiences = ["a"]
jwks_url = "https://gitlab.example/oauth/discovery/keys"

[[federations]]
id = "other"
issuer = "https://other.example"
audiences = ["a"]
jwks_url = "https://other.example/keys"

[[service_accounts]]
id = "sa-1"

[[federated_credentials]]
federation_id = "gitlab"
service_account_id = "sa-1"
external_subject_id = "project_path:group/app:ref_type:branch:ref:main"
"#;

/// An invalid set: its credential (written without an id, on line 11) names no federation.
const INVALID: &str = r#"
[signing]
key_file = "k.pem"
generate_if_missing = true

[[federations]]
id = "gitlab"
issuer = "https://gitlab.example/"
audiences = ["a"]

[[federated_credentials]]
federation_id = "nope"
service_account_id = "sa-1"
external_subject_id = "project_path:group/app:ref_type:branch:ref:main"

[[service_accounts]]
id = "sa-1"
"#;

#[test]
fn check_config_counts_in_words_and_places_items_by_line() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, VALID_WITH_A_WARNING).expect("write");
    let (code, stdout, stderr) = check_config(&path, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}: directory ok (2 federations, 1 service account, 1 federated credential)\n",
            path.display()
        )
    );
    assert_eq!(
        stderr,
        format!(
            "warning: {}:9: federations[0] (id \"gitlab\"): issuer \"https://gitlab.example/\" ends with a slash; matching is exact: tokens must carry exactly this iss\n",
            path.display()
        )
    );

    std::fs::write(
        &path,
        "[signing]\nkey_file = \"k.pem\"\ngenerate_if_missing = true\n\n[[federations]]\nid = \"f\"\nissuer = \"https://i.example\"\naudiences = [\"a\"]\n\n[[service_accounts]]\nid = \"sa-1\"\n",
    )
    .expect("write");
    let (code, stdout, _) = check_config(&path, &[]);
    assert_eq!(code, Some(0));
    assert!(
        stdout
            .ends_with("directory ok (1 federation, 1 service account, 0 federated credentials)\n"),
        "{stdout}"
    );

    std::fs::write(&path, INVALID).expect("write");
    let (code, stdout, stderr) = check_config(&path, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "", "no summary for a set that did not load");
    let expected = format!(
        "{}:11: federated_credentials[0] (external_subject_id \"project_path:group/app:ref_type:branch:ref:main\"): federation_id \"nope\" names no federation",
        path.display()
    );
    assert!(stderr.contains(&expected), "{expected}\nnot in:\n{stderr}");
    assert!(
        stderr.starts_with("warning: ") && stderr.contains("ends with a slash"),
        "an invalid set's warnings are shown too: {stderr}"
    );
    assert!(
        !stderr.contains("(id \"fc"),
        "a credential without an id is not named by its derived id: {stderr}"
    );
}

#[test]
fn check_config_reports_in_json() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("gateway.toml");
    let file = path.display().to_string();
    std::fs::write(&path, VALID_WITH_A_WARNING).expect("write");
    let (code, stdout, stderr) = check_config(&path, &["--format", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "", "json goes to stdout only");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        report,
        serde_json::json!({
            "valid": true,
            "file": file,
            "federations": 2,
            "service_accounts": 1,
            "federated_credentials": 1,
            "warnings": [format!("{file}:9: federations[0] (id \"gitlab\"): issuer \"https://gitlab.example/\" ends with a slash; matching is exact: tokens must carry exactly this iss")],
            "problems": [],
        })
    );
    // Stable keys, in a stable order.
    let keys = [
        "valid",
        "file",
        "federations",
        "service_accounts",
        "federated_credentials",
        "warnings",
        "problems",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| stdout.find(&format!("\"{k}\":")).expect(k))
        .collect();
    assert!(positions.is_sorted(), "{stdout}");

    std::fs::write(&path, INVALID).expect("write");
    let (code, stdout, stderr) = check_config(&path, &["--format", "json"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["valid"], false);
    assert_eq!(report["file"], file.as_str());
    for key in ["federations", "service_accounts", "federated_credentials"] {
        assert!(report[key].is_null(), "{key}: {report}");
    }
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        report["problems"],
        serde_json::json!([format!(
            "{file}:11: federated_credentials[0] (external_subject_id \"project_path:group/app:ref_type:branch:ref:main\"): federation_id \"nope\" names no federation"
        )])
    );

    // A valid directory whose signing key is missing: counts, and the key as a problem.
    std::fs::write(
        &path,
        VALID_WITH_A_WARNING.replace("generate_if_missing = true", ""),
    )
    .expect("write");
    let (code, stdout, _) = check_config(&path, &["--format", "json"]);
    assert_eq!(code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        (report["valid"].clone(), report["federations"].clone()),
        (false.into(), 2.into())
    );
    let problems = report["problems"].to_string();
    assert!(problems.contains("k.pem does not exist"), "{problems}");

    std::fs::write(&path, "[signing]\nkey_file = \"k.pem\"\nlisten = 1\n").expect("write");
    let (code, stdout, _) = check_config(&path, &["--format", "json"]);
    assert_eq!(code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert!(
        report["problems"].to_string().contains("unknown field"),
        "{report}"
    );
}

#[test]
fn check_config_documents_every_flag() {
    let out = Command::new(BIN)
        .args(["check-config", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    // Every flag has a description (every_flag_of_every_subcommand_has_a_help_description);
    // here: the output formats are documented where a script writer looks.
    for needle in [
        "The configuration file",
        "\"valid\"",
        "federated_credentials",
        "warnings",
        "problems",
    ] {
        assert!(help.contains(needle), "{needle:?} not in:\n{help}");
    }
}

#[tokio::test]
async fn serve_logs_configuration_warnings() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{VALID_WITH_A_WARNING}"),
    )
    .expect("write");
    let log_path = dir.path().join("stderr.log");
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).expect("log file")),
    );
    wait_ready(&reqwest::Client::new(), &format!("http://127.0.0.1:{port}")).await;
    let status = child.terminate().await;
    assert!(status.success(), "exit status {status}");
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    let warning = logs
        .lines()
        .find(|l| l.contains("configuration warning"))
        .unwrap_or_else(|| panic!("no configuration warning in:\n{logs}"));
    assert!(
        warning.contains("WARN") && warning.contains("ends with a slash"),
        "{warning}"
    );
}
