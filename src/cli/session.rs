//! The command line's connection to the gateway's IAM API, as a Yandex client makes one: read a
//! Yandex key file, sign a service-account JWT with it (PS256, `kid` the key id, `iss` the
//! service account, `aud` `{endpoint}/iam/v1/tokens`), exchange it at `POST /iam/v1/tokens` for
//! an IAM token, and send every management call with `Authorization: Bearer`.
//!
//! Mutations answer an `Operation`; [`Session::mutate`] waits for it to be `done` (polling
//! `GET /operations/{id}` once a second) and hands back its `response`. Failures are
//! [`CliError`]s; an API refusal prints as `yc` prints one
//! (`rpc error: code = INVALID_ARGUMENT desc = …`). Neither the IAM token nor the key file's
//! private key ever appears in an error: the key file's parse errors name only the position,
//! and text from the network passes [`crate::client::redact_tokens`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::redact_tokens;
use crate::iam::keys::{KeyFileCredentials, ps256_sign};
use crate::report::error_chain;

/// The endpoint when neither `--endpoint` nor `WIF_ENDPOINT` is given.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";
/// How long the service-account JWT is valid (the gateway accepts at most an hour).
const JWT_LIFETIME_SECS: i64 = 3600;
/// How long one HTTP call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an operation that is not yet done is polled.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The page size asked for when listing; every page is read.
const PAGE_SIZE: &str = "1000";
/// Longest piece of a non-API answer shown in an error.
const MAX_SHOWN_CHARS: usize = 300;

/// Why a command failed. Every kind exits with status 1, as `yc` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// The API refused the call, or the operation ended with an error (`google.rpc.Status`).
    Rpc { code: i64, message: String },
    /// Options, the key file, or the output file.
    Local(String),
    /// The gateway could not be reached, or answered something that is not the API's.
    Transport(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Rpc { code, message } => {
                write!(f, "rpc error: code = {} desc = {message}", code_name(*code))
            }
            CliError::Local(message) | CliError::Transport(message) => f.write_str(message),
        }
    }
}

/// The gRPC name of a `google.rpc.Code` number.
pub fn code_name(code: i64) -> String {
    let name = match code {
        0 => "OK",
        1 => "CANCELED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        other => return format!("Code({other})"),
    };
    name.to_owned()
}

/// Reads a Yandex key file. The errors name the file and what is wrong with it, never its text.
pub fn read_key_file(path: &Path) -> Result<KeyFileCredentials, CliError> {
    let fail = |what: String| CliError::Local(format!("key file {}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| {
        let what = match e.classify() {
            // serde's "missing field `id`" quotes nothing of the file; "invalid type" would.
            serde_json::error::Category::Data if e.to_string().starts_with("missing field") => {
                e.to_string()
            }
            serde_json::error::Category::Data => {
                format!("a field has the wrong type at line {}", e.line())
            }
            _ => format!(
                "not JSON (line {}, column {}); a Yandex key file has id, service_account_id and private_key",
                e.line(),
                e.column()
            ),
        };
        fail(what)
    })
}

/// A service-account JWT of `key` for `audience`, issued at `now` (PS256, RFC 7515 compact).
pub fn service_account_jwt(
    key: &KeyFileCredentials,
    audience: &str,
    now: i64,
) -> Result<String, String> {
    let header = json!({"typ": "JWT", "alg": "PS256", "kid": key.id});
    let claims = json!({
        "iss": key.service_account_id,
        "aud": audience,
        "iat": now,
        "exp": now + JWT_LIFETIME_SECS,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature =
        ps256_sign(&key.private_key, signing_input.as_bytes()).map_err(|e| e.to_string())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// The endpoint without a trailing `/`, if it is an `http` or `https` URL.
pub fn parse_endpoint(endpoint: &str) -> Result<String, CliError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let url = url::Url::parse(trimmed)
        .map_err(|e| CliError::Local(format!("--endpoint {trimmed:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(CliError::Local(format!(
            "--endpoint {trimmed:?}: not an http:// or https:// URL"
        )));
    }
    Ok(trimmed.to_owned())
}

/// A path segment with everything but letters, digits, `-`, `_` and `~` percent-encoded, so
/// that an id (`..`, `a/b`, `a?b`) cannot change the path it is put in.
pub fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An authenticated connection to the gateway.
pub struct Session {
    http: reqwest::Client,
    endpoint: String,
    /// The IAM token every call carries. Never shown.
    token: String,
    /// The key file's service account: whose folder is the default one.
    service_account_id: String,
}

impl Session {
    /// The IAM token, for `iam create-token`: the one command whose output is a credential.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Reads the key file and gets an IAM token for it.
    pub async fn open(key_file: Option<&PathBuf>, endpoint: &str) -> Result<Session, CliError> {
        let endpoint = parse_endpoint(endpoint)?;
        let path = key_file.ok_or_else(|| {
            CliError::Local(
                "no key file: give --key-file PATH or set WIF_KEY_FILE (a Yandex key file, e.g. the bootstrap administrator's)"
                    .into(),
            )
        })?;
        let key = read_key_file(path)?;
        let audience = format!("{endpoint}/iam/v1/tokens");
        let jwt = service_account_jwt(&key, &audience, crate::time::now_unix())
            .map_err(|e| CliError::Local(format!("key file {}: {e}", path.display())))?;
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CliError::Local(format!("HTTP client: {}", error_chain(&e))))?;
        let mut session = Session {
            http,
            endpoint,
            token: String::new(),
            service_account_id: key.service_account_id.clone(),
        };
        let answer = session
            .send(
                Method::POST,
                "/iam/v1/tokens",
                &[],
                Some(json!({ "jwt": jwt })),
            )
            .await?;
        session.token = answer["iamToken"]
            .as_str()
            .ok_or_else(|| {
                CliError::Transport(format!(
                    "{}/iam/v1/tokens answered without an iamToken",
                    session.endpoint
                ))
            })?
            .to_owned();
        Ok(session)
    }

    /// `GET path?query`.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, CliError> {
        self.send(Method::GET, path, query, None).await
    }

    /// Every item of a list method's `field`, page after page.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, &str)],
        field: &str,
    ) -> Result<Vec<Value>, CliError> {
        let mut items = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut q = query.to_vec();
            q.push(("pageSize", PAGE_SIZE));
            if !page_token.is_empty() {
                q.push(("pageToken", &page_token));
            }
            let page = self.get(path, &q).await?;
            if let Some(found) = page.get(field).and_then(Value::as_array) {
                items.extend(found.iter().cloned());
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => page_token = next.to_owned(),
                _ => return Ok(items),
            }
        }
    }

    /// A call that answers an `Operation`: waits until it is done and returns its `response`
    /// (`{}` for `google.protobuf.Empty`), or its `error`.
    pub async fn mutate(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let mut operation = self.send(method, path, &[], body).await?;
        while !operation["done"].as_bool().unwrap_or(false) {
            let id = operation["id"]
                .as_str()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    CliError::Transport(format!(
                        "{path} answered an operation that is not done and has no id"
                    ))
                })?
                .to_owned();
            tokio::time::sleep(POLL_INTERVAL).await;
            operation = self
                .get(&format!("/operations/{}", segment(&id)), &[])
                .await?;
        }
        if let Some(error) = operation.get("error").filter(|e| e.is_object()) {
            return Err(rpc_error(error));
        }
        Ok(operation
            .get("response")
            .cloned()
            .unwrap_or_else(|| json!({})))
    }

    /// The folder of the key file's service account: the default `--folder-id`.
    pub async fn default_folder(&self) -> Result<String, CliError> {
        let account = self
            .get(
                &format!(
                    "/iam/v1/serviceAccounts/{}",
                    segment(&self.service_account_id)
                ),
                &[],
            )
            .await?;
        account["folderId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CliError::Local("give --folder-id".into()))
    }

    /// Any call: the answer's JSON on 2xx, the API's error otherwise.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let mut url = url::Url::parse(&format!("{}{path}", self.endpoint))
            .map_err(|e| CliError::Local(format!("{}{path}: {e}", self.endpoint)))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.http.request(method, url);
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |e: reqwest::Error| {
            CliError::Transport(redact_tokens(&format!(
                "cannot reach the gateway at {}: {}",
                self.endpoint,
                error_chain(&e)
            )))
        };
        let answer = request.send().await.map_err(unreachable)?;
        let status = answer.status();
        let text = answer.text().await.map_err(unreachable)?;
        let parsed: Option<Value> = if text.trim().is_empty() {
            Some(json!({}))
        } else {
            serde_json::from_str(&text).ok()
        };
        match parsed {
            Some(value) if status.is_success() => Ok(value),
            Some(value) if value.get("code").is_some_and(Value::is_i64) => Err(rpc_error(&value)),
            _ => {
                let shown: String = text.chars().take(MAX_SHOWN_CHARS).collect();
                Err(CliError::Transport(redact_tokens(&format!(
                    "{}{path} answered HTTP {status}, not the IAM API's JSON: {}",
                    self.endpoint,
                    shown.trim()
                ))))
            }
        }
    }
}

/// A `google.rpc.Status` JSON as an error.
fn rpc_error(status: &Value) -> CliError {
    CliError::Rpc {
        code: status["code"].as_i64().unwrap_or(2),
        message: redact_tokens(status["message"].as_str().unwrap_or("")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::keys::{generate, key_id_line, ps256_verifier};
    use crate::iam::store::KeyAlgorithm;

    #[test]
    fn rpc_errors_print_as_yc_prints_them() {
        let e = rpc_error(&json!({"code": 3, "message": "name \"Bad\" is invalid", "details": []}));
        assert_eq!(
            e.to_string(),
            "rpc error: code = INVALID_ARGUMENT desc = name \"Bad\" is invalid"
        );
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "Code(99)");
    }

    #[test]
    fn the_service_account_jwt_is_ps256_with_the_key_id_and_account() {
        let generated = generate(KeyAlgorithm::Rsa2048).unwrap();
        let key = KeyFileCredentials {
            id: "ajekey".into(),
            service_account_id: "ajesa".into(),
            private_key: format!("{}\n{}", key_id_line("ajekey"), generated.private_key_pem()),
        };
        let jwt = service_account_jwt(&key, "http://gw/iam/v1/tokens", 1000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            header,
            json!({"typ": "JWT", "alg": "PS256", "kid": "ajekey"})
        );
        assert_eq!(
            claims,
            json!({"iss": "ajesa", "aud": "http://gw/iam/v1/tokens", "iat": 1000, "exp": 4600})
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(
            ps256_verifier(&generated.public_key)
                .unwrap()
                .verify_sig(input.as_bytes(), &signature)
                .is_ok()
        );
    }

    #[test]
    fn key_file_errors_never_quote_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("not json", "SECRETSECRET"),
            (
                "wrong type",
                "{\"id\": 1, \"service_account_id\": \"SECRETSECRET\", \"private_key\": \"x\"}",
            ),
            ("a string", "\"SECRETSECRET\""),
            ("missing field", "{\"id\": \"SECRETSECRET\"}"),
        ];
        for (name, text) in cases {
            let path = dir.path().join("key.json");
            std::fs::write(&path, text).unwrap();
            let e = read_key_file(&path).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{name}: {e}");
            assert!(e.starts_with("key file "), "{name}: {e}");
        }
    }

    #[test]
    fn endpoints_and_path_segments() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(parse_endpoint("ftp://x").is_err());
        assert!(parse_endpoint("127.0.0.1:8080").is_err());
        assert_eq!(segment("aje0-x_y"), "aje0-x_y");
        assert_eq!(segment("../a?b"), "%2E%2E%2Fa%3Fb");
    }
}
