//! `wif-gateway iam …` and `wif-gateway resource-manager …` as an operator runs them: the real
//! gateway with the dev config on a fresh directory, the CLI as a subprocess with the bootstrap
//! key file, every resource created, listed (table and JSON), used and deleted; refusals printed
//! as `yc` prints them; key material never printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::binary::{BIN, KillOnDrop, dev_config, free_port, wait_ready};

/// A gateway started from the dev config, and the bootstrap administrator's key file.
struct DevGateway {
    _process: KillOnDrop,
    base: String,
    admin_key: PathBuf,
    dir: tempfile::TempDir,
}

async fn start() -> DevGateway {
    let dir = tempfile::tempdir().expect("dir");
    let config = dev_config(dir.path());
    let port = free_port();
    let process = KillOnDrop::spawn(
        Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--config",
            ])
            .arg(&config)
            .env_remove("WIF_STORE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&reqwest::Client::new(), &base).await;
    let admin_key = dir.path().join(".wif-dev/admin-key.json");
    assert!(
        admin_key.exists(),
        "the first start writes the bootstrap key file"
    );
    DevGateway {
        _process: process,
        base,
        admin_key,
        dir,
    }
}

/// What one CLI run did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The stdout of a run that succeeded.
    fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// The stdout of a successful `--format json` run, parsed.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

impl DevGateway {
    /// Runs the CLI with `key_file` (WIF_KEY_FILE) against this gateway (WIF_ENDPOINT).
    fn cli_as(&self, key_file: &Path, args: &[&str]) -> Run {
        let output = Command::new(BIN)
            .args(args)
            .env("WIF_KEY_FILE", key_file)
            .env("WIF_ENDPOINT", &self.base)
            .env_remove("RUST_LOG")
            .output()
            .expect("run the CLI");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        for text in [&run.stdout, &run.stderr] {
            assert!(
                !text.contains("PRIVATE KEY") && !text.contains("eyJ"),
                "{args:?} printed key material or a token: {text}"
            );
        }
        run
    }

    /// Runs the CLI as the bootstrap administrator.
    fn cli(&self, args: &[&str]) -> Run {
        self.cli_as(&self.admin_key, args)
    }
}

/// Whether a table has a row with these cells, in this order.
fn has_row(table: &str, cells: &[&str]) -> bool {
    table.lines().any(|line| {
        let row: Vec<&str> = line.split('|').map(str::trim).collect();
        row.windows(cells.len()).any(|w| w == cells)
    })
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn the_cli_creates_lists_uses_and_deletes_every_resource() {
    let gw = start().await;

    // Service accounts; the folder defaults to the administrator's.
    let created = gw.cli(&[
        "iam",
        "service-account",
        "create",
        "--name",
        "cli-deployer",
        "--description",
        "deploys from CI",
    ]);
    assert!(
        created.ok().contains("name: cli-deployer\n"),
        "{}",
        created.stdout
    );
    assert!(
        created.stdout.contains("status: ACTIVE\n"),
        "{}",
        created.stdout
    );
    let account = gw
        .cli(&[
            "iam",
            "service-account",
            "get",
            "--name",
            "cli-deployer",
            "--format",
            "json",
        ])
        .json();
    let sa = id_of(&account);
    let folder = account["folderId"].as_str().expect("folderId").to_owned();
    let table = gw.cli(&["iam", "service-account", "list"]);
    assert!(table.ok().starts_with("+-"), "{}", table.stdout);
    assert!(
        table.stdout.contains("|          ID          |"),
        "{}",
        table.stdout
    );
    assert!(
        has_row(&table.stdout, &[&sa, "cli-deployer", "deploys from CI"]),
        "{}",
        table.stdout
    );
    let listed = gw
        .cli(&[
            "iam",
            "service-account",
            "list",
            "--folder-id",
            &folder,
            "--format",
            "json",
        ])
        .json();
    let names: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        names.contains(&"cli-deployer") && names.contains(&"admin"),
        "{listed}"
    );
    let renamed = gw.cli(&[
        "iam",
        "service-account",
        "update",
        &sa,
        "--description",
        "deploys",
    ]);
    assert!(
        renamed.ok().contains("description: deploys\n"),
        "{}",
        renamed.stdout
    );

    // An authorized key, written as a Yandex key file of mode 0600; only metadata is printed.
    let key_path = gw.dir.path().join("keys/deployer.json");
    let key_path_arg = key_path.to_str().expect("path");
    let created = gw.cli(&[
        "iam",
        "key",
        "create",
        "--service-account-id",
        &sa,
        "--algorithm",
        "rsa-2048",
        "-o",
        key_path_arg,
    ]);
    assert!(
        created.ok().contains("key_algorithm: RSA_2048\n"),
        "{}",
        created.stdout
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_path)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&key_path).expect("read")).expect("json");
    assert_eq!(file["service_account_id"], sa.as_str());
    let key_id = file["id"].as_str().expect("id").to_owned();
    assert!(created.stdout.contains(&format!("id: {key_id}\n")));
    assert!(
        file["private_key"]
            .as_str()
            .expect("private_key")
            .starts_with(&format!(
                "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <{key_id}>\n-----BEGIN PRIVATE KEY-----\n"
            ))
    );
    let again = gw.cli(&[
        "iam",
        "key",
        "create",
        "--service-account-id",
        &sa,
        "-o",
        key_path_arg,
    ]);
    assert_eq!(
        again.code, 1,
        "an existing key file is not overwritten without --force"
    );
    let keys = gw.cli(&["iam", "key", "list", "--service-account-id", &sa]);
    assert!(
        has_row(keys.ok(), &[&key_id, "RSA_2048", ""]),
        "{}",
        keys.stdout
    );
    let keys = gw
        .cli(&[
            "iam",
            "key",
            "list",
            "--service-account-id",
            &sa,
            "--format",
            "json",
        ])
        .json();
    assert_eq!(keys[0]["id"], key_id.as_str());
    // The new key file signs in: the CLI gets an IAM token with it (the account may read nothing
    // yet, so the call after that is refused).
    let refused = gw.cli_as(&key_path, &["iam", "service-account", "get", &sa]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .starts_with("ERROR: rpc error: code = PERMISSION_DENIED desc = "),
        "{}",
        refused.stderr
    );

    // A federation trusting the dev issuer, and a federated credential for the deployer.
    let issuer = format!("{}/dev/issuer", gw.base);
    let jwks = format!("{issuer}/jwks");
    let federation = gw
        .cli(&[
            "iam",
            "workload-identity",
            "oidc",
            "federation",
            "create",
            "--name",
            "cli-ci",
            "--folder-id",
            &folder,
            "--issuer",
            &issuer,
            "--jwks-url",
            &jwks,
            "--audiences",
            "cli-aud,other-aud",
            "--format",
            "json",
        ])
        .json();
    let fed = id_of(&federation);
    assert_eq!(
        federation["audiences"],
        serde_json::json!(["cli-aud", "other-aud"])
    );
    let table = gw.cli(&["iam", "workload-identity", "oidc", "federation", "list"]);
    assert!(
        has_row(
            table.ok(),
            &[&fed, "cli-ci", &issuer, "cli-aud,other-aud", "true"]
        ),
        "{}",
        table.stdout
    );
    let got = gw.cli(&[
        "iam",
        "workload-identity",
        "oidc",
        "federation",
        "get",
        &fed,
    ]);
    assert!(
        got.ok().contains(&format!("issuer: {issuer}\n")),
        "{}",
        got.stdout
    );
    let subject = "project_path:cli/app:ref_type:branch:ref:main";
    let credential = gw
        .cli(&[
            "iam",
            "workload-identity",
            "federated-credential",
            "create",
            "--service-account-id",
            &sa,
            "--federation-id",
            &fed,
            "--external-subject-id",
            subject,
            "--format",
            "json",
        ])
        .json();
    let cred = id_of(&credential);
    let table = gw.cli(&[
        "iam",
        "workload-identity",
        "federated-credential",
        "list",
        "--service-account-id",
        &sa,
    ]);
    assert!(
        has_row(table.ok(), &[&cred, &fed, subject]),
        "{}",
        table.stdout
    );
    let listed = gw
        .cli(&[
            "iam",
            "workload-identity",
            "federated-credential",
            "list",
            "--service-account-id",
            &sa,
            "--format",
            "json",
        ])
        .json();
    assert_eq!(listed[0]["externalSubjectId"], subject);

    // The credential works: a dev issuer token for the subject exchanges for the deployer.
    let client = reqwest::Client::new();
    let issued: Value = client
        .post(format!("{issuer}/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("sub={subject}&aud=cli-aud"))
        .send()
        .await
        .expect("dev token")
        .json()
        .await
        .expect("json");
    let exchanged = client
        .post(format!("{}/oauth/token", gw.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&audience={sa}&subject_token={}&subject_token_type=urn:ietf:params:oauth:token-type:id_token",
            issued["id_token"].as_str().expect("id_token")
        ))
        .send()
        .await
        .expect("exchange");
    assert_eq!(exchanged.status(), 200);

    // Access bindings on the folder and on the federation.
    let added = gw.cli(&[
        "resource-manager",
        "folder",
        "add-access-binding",
        &folder,
        "--role",
        "viewer",
        "--service-account-id",
        &sa,
    ]);
    assert!(added.ok().contains("action: ADD\n"), "{}", added.stdout);
    let table = gw.cli(&[
        "resource-manager",
        "folder",
        "list-access-bindings",
        &folder,
    ]);
    assert!(
        has_row(table.ok(), &["viewer", "serviceAccount", &sa]),
        "{}",
        table.stdout
    );
    let bindings = gw
        .cli(&[
            "resource-manager",
            "folder",
            "list-access-bindings",
            &folder,
            "--format",
            "json",
        ])
        .json();
    assert!(
        bindings
            .as_array()
            .expect("array")
            .iter()
            .any(|b| b["roleId"] == "viewer"
                && b["subject"]["id"] == sa.as_str()
                && b["subject"]["type"] == "serviceAccount"),
        "{bindings}"
    );
    // Now the deployer may read its folder.
    let visible = gw.cli_as(&key_path, &["iam", "service-account", "get", &sa]);
    assert!(
        visible.ok().contains("name: cli-deployer\n"),
        "{}",
        visible.stdout
    );
    gw.cli(&[
        "iam",
        "workload-identity",
        "oidc",
        "federation",
        "add-access-binding",
        &fed,
        "--role",
        "iam.workloadIdentityFederations.user",
        "--subject",
        "system:allAuthenticatedUsers",
    ])
    .ok();
    let table = gw.cli(&[
        "iam",
        "workload-identity",
        "oidc",
        "federation",
        "list-access-bindings",
        &fed,
    ]);
    assert!(
        has_row(
            table.ok(),
            &[
                "iam.workloadIdentityFederations.user",
                "system",
                "allAuthenticatedUsers"
            ]
        ),
        "{}",
        table.stdout
    );
    gw.cli(&[
        "resource-manager",
        "folder",
        "remove-access-binding",
        &folder,
        "--role",
        "viewer",
        "--subject",
        &format!("serviceAccount:{sa}"),
    ])
    .ok();
    let bindings = gw
        .cli(&[
            "resource-manager",
            "folder",
            "list-access-bindings",
            &folder,
            "--format",
            "json",
        ])
        .json();
    assert!(
        !bindings
            .as_array()
            .expect("array")
            .iter()
            .any(|b| b["subject"]["id"] == sa.as_str()),
        "{bindings}"
    );

    // Deletes print nothing and leave nothing.
    let deleted = gw.cli(&[
        "iam",
        "workload-identity",
        "federated-credential",
        "delete",
        &cred,
    ]);
    assert_eq!(deleted.ok(), "");
    let listed = gw
        .cli(&[
            "iam",
            "workload-identity",
            "federated-credential",
            "list",
            "--service-account-id",
            &sa,
            "--format",
            "json",
        ])
        .json();
    assert_eq!(listed, serde_json::json!([]));
    gw.cli(&[
        "iam",
        "workload-identity",
        "oidc",
        "federation",
        "delete",
        &fed,
    ])
    .ok();
    gw.cli(&["iam", "key", "delete", &key_id]).ok();
    gw.cli(&["iam", "service-account", "delete", &sa]).ok();
    let gone = gw.cli(&["iam", "service-account", "get", &sa]);
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr
            .starts_with("ERROR: rpc error: code = NOT_FOUND desc = "),
        "{}",
        gone.stderr
    );
    let gone = gw.cli(&[
        "iam",
        "workload-identity",
        "oidc",
        "federation",
        "get",
        &fed,
    ]);
    assert_eq!(gone.code, 1);
}

#[tokio::test]
async fn cli_errors_are_yc_style_and_never_show_key_material() {
    let gw = start().await;

    let invalid = gw.cli(&["iam", "service-account", "create", "--name", "Not_Valid"]);
    assert_eq!(invalid.code, 1);
    assert_eq!(invalid.stdout, "");
    assert!(
        invalid
            .stderr
            .starts_with("ERROR: rpc error: code = INVALID_ARGUMENT desc = name \"Not_Valid\""),
        "{}",
        invalid.stderr
    );

    // A missing key file, files that are not key files, and a key the gateway does not know.
    let missing = gw.dir.path().join("no-such-key.json");
    let run = gw.cli_as(&missing, &["iam", "service-account", "list"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with(&format!("ERROR: key file {}: ", missing.display())),
        "{}",
        run.stderr
    );
    let admin = std::fs::read_to_string(&gw.admin_key).expect("admin key");
    let admin_json: Value = serde_json::from_str(&admin).expect("json");
    let secret_line = admin_json["private_key"]
        .as_str()
        .expect("private_key")
        .lines()
        .nth(3)
        .expect("a base64 line of the key")
        .to_owned();
    let garbled = [
        ("cut short", admin[..admin.len() / 2].to_owned()),
        (
            "wrong type",
            admin.replacen("\"private_key\"", "\"private_key\": 1, \"x\"", 1),
        ),
        (
            "bad PEM",
            admin.replace(&secret_line, &secret_line[..secret_line.len() / 2]),
        ),
    ];
    for (name, text) in garbled {
        let path = gw.dir.path().join("garbled.json");
        std::fs::write(&path, &text).expect("write");
        let run = gw.cli_as(&path, &["iam", "service-account", "list"]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stderr.starts_with("ERROR: "), "{name}: {}", run.stderr);
        assert!(
            !run.stderr.contains(&secret_line[..20]) && !run.stdout.contains(&secret_line[..20]),
            "{name}: the key is not shown: {}",
            run.stderr
        );
    }

    let stranger = wif_gateway::iam::keys::generate(wif_gateway::iam::store::KeyAlgorithm::Rsa2048)
        .expect("key");
    let unknown = gw.dir.path().join("unknown-key.json");
    let text = wif_gateway::iam::keys::KeyFile {
        id: "ajeunknownkey0000001",
        service_account_id: admin_json["service_account_id"].as_str().expect("sa"),
        created_at: "2026-01-01T00:00:00Z",
        key_algorithm: "RSA_2048",
        public_key: &stranger.public_key,
    }
    .text(stranger.private_key_pem());
    std::fs::write(&unknown, text).expect("write");
    let run = gw.cli_as(&unknown, &["iam", "service-account", "list"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("ERROR: rpc error: code = UNAUTHENTICATED desc = "),
        "{}",
        run.stderr
    );

    let unreachable = Command::new(BIN)
        .args([
            "iam",
            "service-account",
            "list",
            "--endpoint",
            "http://127.0.0.1:9",
        ])
        .env("WIF_KEY_FILE", &gw.admin_key)
        .output()
        .expect("run");
    assert_eq!(unreachable.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        stderr.starts_with("ERROR: cannot reach the gateway at http://127.0.0.1:9"),
        "{stderr}"
    );
}

#[tokio::test]
async fn create_token_prints_an_iam_token_that_authenticates_management_calls() {
    let gw = start().await;
    let output = Command::new(BIN)
        .args(["iam", "create-token"])
        .env("WIF_KEY_FILE", &gw.admin_key)
        .env("WIF_ENDPOINT", &gw.base)
        .output()
        .expect("run the CLI");
    assert!(output.status.success(), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap();
    let token = token.trim_end();
    assert_eq!(token.split('.').count(), 3, "a JWT on one line");
    let key: Value =
        serde_json::from_str(&std::fs::read_to_string(&gw.admin_key).unwrap()).unwrap();
    let account = key["service_account_id"].as_str().unwrap();
    let client = reqwest::Client::new();
    let reply = client
        .get(format!("{}/iam/v1/serviceAccounts/{account}", gw.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let without = client
        .get(format!("{}/iam/v1/serviceAccounts/{account}", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 401);
}
