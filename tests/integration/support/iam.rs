//! Speaking to the gateway's IAM API as a Yandex client does: reading a Yandex key file,
//! signing the service-account JWT (PS256, `kid` = key id, `iss` = service account), getting an
//! IAM token, and calling management methods with `Authorization: Bearer`.

#![allow(dead_code)]

use std::path::Path;

use serde_json::{Value, json};
use wif_gateway::testkit::{Jwt, KeyKind, TestKey};

use super::gateway::{Gateway, Options, Reply};

/// The `[iam]` line of a secret sealing key generated beside the config on first start.
pub const SECRET_KEYS: &str =
    "secret_keys = [{ id = \"test\", file = \"secret-key-test\", generate_if_missing = true }]";

/// Options of a gateway with a SQLite store beside its config (`iam.db`), the bootstrap key
/// file at `admin-key.json` there and a generated secret sealing key ([`SECRET_KEYS`]).
pub fn sqlite_store() -> Options {
    Options {
        store: Some("url = \"sqlite://iam.db\"".into()),
        iam: format!("bootstrap_key_file = \"admin-key.json\"\n{SECRET_KEYS}"),
        ..Options::default()
    }
}

/// A Yandex authorized key file, as written.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub json: Value,
    pub text: String,
}

impl KeyFile {
    pub fn read(path: &Path) -> KeyFile {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        KeyFile {
            json: serde_json::from_str(&text).expect("key file JSON"),
            text,
        }
    }

    /// The gateway's bootstrap key file.
    pub fn bootstrap(gw: &Gateway) -> KeyFile {
        KeyFile::read(&gw.dir.path().join("admin-key.json"))
    }

    pub fn id(&self) -> &str {
        self.json["id"].as_str().expect("id")
    }

    pub fn service_account_id(&self) -> &str {
        self.json["service_account_id"]
            .as_str()
            .expect("service_account_id")
    }

    /// `private_key` as written: the Yandex line, then the PKCS#8 PEM.
    pub fn private_key(&self) -> &str {
        self.json["private_key"].as_str().expect("private_key")
    }

    /// The signing key, read from `private_key` as it is (PEM readers skip the line before it).
    pub fn signer(&self) -> TestKey {
        signer(self.private_key(), self.id())
    }
}

/// A PS256 signer from a PKCS#8 PEM (with or without text before it) under `kid`.
pub fn signer(private_key_pem: &str, kid: &str) -> TestKey {
    let block = pem::parse(private_key_pem).expect("PEM");
    TestKey::from_pkcs8(KeyKind::Ps256, block.contents(), kid).expect("PKCS#8 RSA key")
}

/// The JWT header of a service-account JWT.
pub fn header(alg: &str, kid: &str) -> Value {
    json!({"typ": "JWT", "alg": alg, "kid": kid})
}

/// The claims of a service-account JWT issued at `iat` that expires at `exp`.
pub fn claims(iss: &str, aud: &str, iat: i64, exp: i64) -> Value {
    json!({"iss": iss, "aud": aud, "iat": iat, "exp": exp})
}

/// The audience the gateway accepts by default: its own `/iam/v1/tokens`.
pub fn audience(gw: &Gateway) -> String {
    format!("{}/iam/v1/tokens", gw.url)
}

/// The other audience the gateway accepts by default: the one a Yandex SDK signs for when it
/// dials the gateway's gRPC endpoint (`https://iam.{host:port}/iam/v1/tokens`).
pub fn sdk_audience(gw: &Gateway) -> String {
    format!(
        "https://iam.{}/iam/v1/tokens",
        gw.url.trim_start_matches("http://")
    )
}

/// A valid service-account JWT of `key` for `account`, issued now, living 360 s.
pub fn jwt(gw: &Gateway, key: &TestKey, account: &str) -> String {
    let now = wif_gateway::time::now_unix();
    Jwt::new(
        &header("PS256", key.kid()),
        &claims(account, &audience(gw), now, now + 360),
    )
    .sign(key)
}

impl Gateway {
    /// Any IAM API call: `method` on `path`, with a Bearer token and a JSON body if given.
    pub async fn iam(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut request = self.client.request(
            method.parse().expect("method"),
            format!("{}{path}", self.url),
        );
        if let Some(token) = bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        Reply::from(request.send().await.expect("gateway answers")).await
    }

    /// `POST /iam/v1/tokens {"jwt": …}`.
    pub async fn iam_token_for(&self, jwt: &str) -> Reply {
        self.iam(
            "POST",
            "/iam/v1/tokens",
            None,
            Some(json!({ "jwt": jwt }).to_string()),
        )
        .await
    }

    /// An IAM token of the key file's service account.
    pub async fn iam_token(&self, file: &KeyFile) -> String {
        let reply = self
            .iam_token_for(&jwt(self, &file.signer(), file.service_account_id()))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body["iamToken"]
            .as_str()
            .expect("iamToken")
            .to_owned()
    }
}

impl Reply {
    /// The Yandex error body's `code`.
    pub fn grpc_code(&self) -> i64 {
        self.body["code"].as_i64().unwrap_or(-1)
    }

    /// The Yandex error body's `message`.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

/// A service account in the administrator's folder, made directly in the store and applied
/// before this returns.
pub async fn add_account(gw: &Gateway, admin: &KeyFile, name: &str) -> String {
    let store = gw.state.store().expect("store");
    let folder = store
        .get_service_account(admin.service_account_id())
        .await
        .unwrap()
        .folder_id;
    let written = store
        .create_service_account(
            &wif_gateway::iam::store::NewServiceAccount {
                folder_id: folder,
                name: name.into(),
                ..Default::default()
            },
            wif_gateway::time::now_unix(),
        )
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;
    written.item.id
}

/// Grants `role` on `resource` to service account `to` in the store; applied on return.
pub async fn grant(
    gw: &Gateway,
    role: &str,
    resource: wif_gateway::iam::store::ResourceRef,
    to: &str,
) {
    let written = gw
        .state
        .store()
        .unwrap()
        .create_access_binding(
            &wif_gateway::iam::store::NewAccessBinding {
                resource,
                role_id: role.into(),
                subject: wif_gateway::iam::store::Subject {
                    subject_type: wif_gateway::iam::store::SubjectType::ServiceAccount,
                    id: to.into(),
                },
            },
            wif_gateway::time::now_unix(),
        )
        .await
        .unwrap();
    gw.state.live().unwrap().caught_up_to(written.seq).await;
}

/// The real binary serving the repository's dev config from a directory, at debug log level,
/// as the leak tests run it: its audit output (standard output) and its logs (standard error)
/// kept in files there, and its bootstrap administrator's IAM token.
pub struct LoggedDevGateway {
    pub process: super::binary::KillOnDrop,
    pub base: String,
    pub client: reqwest::Client,
    pub admin: KeyFile,
    /// The administrator's service-account JWT the token was issued for.
    pub jwt: String,
    pub token: String,
    dir: std::path::PathBuf,
}

impl LoggedDevGateway {
    pub async fn start(dir: &Path) -> LoggedDevGateway {
        use super::binary::{BIN, KillOnDrop, dev_config, free_port, wait_ready};
        use std::process::{Command, Stdio};
        let config = dev_config(dir);
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let stdout = std::fs::File::create(dir.join("stdout.log")).expect("stdout.log");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr.log");
        let process = KillOnDrop::spawn(
            Command::new(BIN)
                .args([
                    "serve",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--config",
                ])
                .arg(&config)
                .env("RUST_LOG", "debug")
                .env_remove("WIF_STORE_URL")
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr)),
        );
        let client = reqwest::Client::new();
        wait_ready(&client, &base).await;
        let admin = KeyFile::read(&dir.join(".wif-dev").join("admin-key.json"));
        let t = wif_gateway::time::now_unix();
        let jwt = Jwt::new(
            &header("PS256", admin.id()),
            &claims(
                admin.service_account_id(),
                &format!("{base}/iam/v1/tokens"),
                t,
                t + 360,
            ),
        )
        .sign(&admin.signer());
        let issued: Value = client
            .post(format!("{base}/iam/v1/tokens"))
            .json(&json!({ "jwt": jwt }))
            .send()
            .await
            .expect("gateway answers")
            .json()
            .await
            .expect("JSON");
        let token = issued["iamToken"]
            .as_str()
            .expect("an IAM token")
            .to_owned();
        LoggedDevGateway {
            process,
            base,
            client,
            admin,
            jwt,
            token,
            dir: dir.to_path_buf(),
        }
    }

    /// The audit output so far.
    pub fn audit(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("stdout.log")).expect("stdout.log")
    }

    /// The logs so far.
    pub fn logs(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("stderr.log")).expect("stderr.log")
    }

    /// The IAM store's bytes: the SQLite file and its write-ahead log.
    pub fn store(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.dir.join(".wif-dev")).expect(".wif-dev") {
            let path = entry.expect("entry").path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("iam.db"))
            {
                bytes.extend(std::fs::read(&path).expect("store file"));
            }
        }
        bytes
    }
}
