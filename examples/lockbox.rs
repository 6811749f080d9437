//! A small Lockbox-compatible secret service: how a downstream service relies on the gateway.
//!
//! ```text
//! cargo run --release --example lockbox -- --gateway http://127.0.0.1:8080 \
//!     --listen 127.0.0.1:8090 --secrets secrets.toml --key-file lockbox-key.json \
//!     [--audience URI]
//! ```
//!
//! It serves `GET /lockbox/v1/secrets/{secretId}/payload[?versionId=…]` with Yandex's response
//! shape, `{"entries": [{"key", "textValue" | "binaryValue"}], "versionId"}`, from a TOML file:
//!
//! ```toml
//! [[secrets]]
//! id = "e6q0demosecret000001"
//! folder_id = "b1g…"
//! version_id = "e6q8demoversion00001"
//! [[secrets.entries]]
//! key = "secret"
//! text_value = "…"
//! ```
//!
//! Clients authenticate as at Yandex: `Authorization: Bearer <IAM token>`, or `Authorization:
//! Api-Key <API key>` with an API key of their service account. Each request, in order:
//!
//! 1. **A bearer token is verified offline** against the gateway's published keys (found
//!    through its discovery document, cached for 5 minutes): signature with the algorithm the
//!    key publishes, `iss` the gateway, `aud` this service (`--audience`; default: the
//!    gateway's default audience), `exp`/`nbf`. A token minted for another service is refused
//!    here, without a call. An API key cannot be checked offline: it goes to step 3 as it is.
//! 2. **The secret is looked up**: unknown → 404.
//! 3. **The gateway authorizes** `lockbox.secrets.getPayload` on the secret's path (the secret,
//!    its folder) with `POST /iam/v1/authorize`, passing the caller's credential on
//!    (`iamToken` or `apiKey`), and answers whether its service account holds the permission —
//!    by a role on the folder or above — and whether the credential is still good (a token not
//!    revoked, a key not deleted or expired, and limited to scopes that allow the permission;
//!    the account not deleted or suspended). The service authenticates to the gateway with its
//!    own service account's key file (`--key-file`), which needs the role
//!    `iam.accessService.authorizer`.
//!
//! Errors are Yandex bodies `{"code", "message", "details"}`: 401 (code 16) for a missing,
//! invalid, foreign, expired or revoked token or an unknown, expired key; 403 (code 7) without
//! the role, or for an API key whose scopes do not allow reading payloads; 404 (code 5) for an
//! unknown secret or version; 503 (code 14) when the gateway cannot be asked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use wif_gateway::cli::session::{read_key_file, service_account_jwt};
use wif_gateway::iam::keys::KeyFileCredentials;

const PERMISSION: &str = "lockbox.secrets.getPayload";
/// How long the gateway's key set and this service's own IAM token are reused.
const JWKS_TTL: Duration = Duration::from_secs(300);
const OWN_TOKEN_TTL: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
struct SecretsFile {
    secrets: Vec<Secret>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Secret {
    id: String,
    folder_id: String,
    version_id: String,
    entries: Vec<Entry>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Entry {
    key: String,
    text_value: Option<String>,
    /// Base64, as the Yandex API carries bytes.
    binary_value: Option<String>,
}

struct Service {
    gateway: String,
    /// The `iss` of the gateway's tokens (from its discovery document).
    issuer: String,
    jwks_uri: String,
    audience: String,
    secrets: HashMap<String, Secret>,
    key: KeyFileCredentials,
    http: reqwest::Client,
    jwks: Mutex<Option<(Instant, JwkSet)>>,
    own_token: Mutex<Option<(Instant, String)>>,
}

/// A Yandex error answer.
fn error(status: StatusCode, code: i32, message: impl Into<String>) -> Response {
    let body = json!({"code": code, "message": message.into(), "details": []});
    (status, Json(body)).into_response()
}

fn unauthenticated(message: impl Into<String>) -> Response {
    error(StatusCode::UNAUTHORIZED, 16, message)
}

/// What a client authenticates with.
#[derive(Clone, Copy)]
enum Credential<'a> {
    /// `Authorization: Bearer <IAM token>`: verified offline, then passed on.
    IamToken(&'a str),
    /// `Authorization: Api-Key <API key>`: passed on to the gateway, which alone can check it.
    ApiKey(&'a str),
}

impl<'a> Credential<'a> {
    /// The credential of an `Authorization` header value (the schemes in any case).
    fn of(header: &'a str) -> Option<Credential<'a>> {
        let (scheme, value) = header.trim().split_once(' ')?;
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(Credential::IamToken(value))
        } else if scheme.eq_ignore_ascii_case("api-key") {
            Some(Credential::ApiKey(value))
        } else {
            None
        }
    }

    /// The Authorize API's field for it, and its value.
    fn field(self) -> (&'static str, &'a str) {
        match self {
            Credential::IamToken(token) => ("iamToken", token),
            Credential::ApiKey(key) => ("apiKey", key),
        }
    }
}

impl Service {
    async fn jwks(&self) -> anyhow::Result<JwkSet> {
        let mut cached = self.jwks.lock().await;
        if let Some((at, set)) = cached.as_ref()
            && at.elapsed() < JWKS_TTL
        {
            return Ok(set.clone());
        }
        let set: JwkSet = self.http.get(&self.jwks_uri).send().await?.json().await?;
        *cached = Some((Instant::now(), set.clone()));
        Ok(set)
    }

    /// Verifies `token` offline: the gateway's key, issuer, this service's audience, times.
    async fn verify(&self, token: &str) -> Result<(), Response> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("the bearer token is not a JWT"))?;
        let jwks = self.jwks().await.map_err(|e| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                14,
                format!("the gateway's keys cannot be read: {e}"),
            )
        })?;
        let kid = header.kid.unwrap_or_default();
        let jwk = jwks
            .find(&kid)
            .ok_or_else(|| unauthenticated("the token is not signed by a key of the gateway"))?;
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|_| unauthenticated("the gateway's key cannot be used"))?;
        // The key's own algorithm, never the token's.
        let algorithm = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse().ok())
            .ok_or_else(|| unauthenticated("the gateway's key names no algorithm"))?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(drop)
            .map_err(|e| unauthenticated(format!("the token is refused: {e}")))
    }

    /// This service's own IAM token, for calling the gateway.
    async fn own_token(&self) -> anyhow::Result<String> {
        let mut cached = self.own_token.lock().await;
        if let Some((at, token)) = cached.as_ref()
            && at.elapsed() < OWN_TOKEN_TTL
        {
            return Ok(token.clone());
        }
        let url = format!("{}/iam/v1/tokens", self.gateway);
        let jwt = service_account_jwt(&self.key, &url, wif_gateway::time::now_unix())
            .map_err(anyhow::Error::msg)?;
        let reply: Value = self
            .http
            .post(&url)
            .json(&json!({"jwt": jwt}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = reply["iamToken"]
            .as_str()
            .context("no iamToken in the gateway's answer")?
            .to_owned();
        *cached = Some((Instant::now(), token.clone()));
        Ok(token)
    }

    /// Asks the gateway whether the credential's subject may read the secret's payload.
    async fn authorize(&self, credential: Credential<'_>, secret: &Secret) -> Result<(), Response> {
        let unavailable = |e: anyhow::Error| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                14,
                format!("the gateway cannot be asked: {e:#}"),
            )
        };
        let own = self.own_token().await.map_err(unavailable)?;
        let (field, value) = credential.field();
        let mut check = json!({
            "permission": PERMISSION,
            "resourcePath": [
                {"id": secret.id, "type": "lockbox.secret"},
                {"id": secret.folder_id, "type": "resource-manager.folder"},
            ],
        });
        check[field] = json!(value);
        let body = json!({ "checks": [check] });
        let answer: Value = async {
            let reply = self
                .http
                .post(format!("{}/iam/v1/authorize", self.gateway))
                .bearer_auth(own)
                .json(&body)
                .send()
                .await?;
            if !reply.status().is_success() {
                bail!(
                    "{} {}",
                    reply.status(),
                    reply.text().await.unwrap_or_default()
                );
            }
            Ok(reply.json().await?)
        }
        .await
        .map_err(unavailable)?;
        let result = &answer["results"][0];
        if result["allowed"] == true {
            return Ok(());
        }
        let message = result["message"].as_str().unwrap_or("refused").to_owned();
        Err(match result["code"].as_i64() {
            Some(16) => unauthenticated(message),
            Some(7) => error(StatusCode::FORBIDDEN, 7, message),
            _ => unavailable(anyhow::anyhow!("unexpected answer {result}")),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadQuery {
    version_id: Option<String>,
}

async fn payload(
    State(service): State<Arc<Service>>,
    Path(secret_id): Path<String>,
    Query(query): Query<PayloadQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(credential) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(Credential::of)
    else {
        return unauthenticated("send Authorization: Bearer <IAM token> or Api-Key <API key>");
    };
    if let Credential::IamToken(token) = credential
        && let Err(refused) = service.verify(token).await
    {
        return refused;
    }
    let Some(secret) = service.secrets.get(&secret_id) else {
        return error(
            StatusCode::NOT_FOUND,
            5,
            format!("secret {secret_id:?} not found"),
        );
    };
    if let Err(refused) = service.authorize(credential, secret).await {
        return refused;
    }
    if query
        .version_id
        .as_deref()
        .is_some_and(|v| v != secret.version_id)
    {
        return error(StatusCode::NOT_FOUND, 5, "no such version of the secret");
    }
    let entries: Vec<Value> = secret
        .entries
        .iter()
        .map(|e| match (&e.text_value, &e.binary_value) {
            (Some(text), _) => json!({"key": e.key, "textValue": text}),
            (None, Some(bytes)) => json!({"key": e.key, "binaryValue": bytes}),
            (None, None) => json!({"key": e.key, "textValue": ""}),
        })
        .collect();
    Json(json!({"entries": entries, "versionId": secret.version_id})).into_response()
}

struct Args {
    gateway: String,
    listen: SocketAddr,
    secrets: PathBuf,
    key_file: PathBuf,
    audience: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut gateway = None;
    let mut listen = None;
    let mut secrets = None;
    let mut key_file = None;
    let mut audience = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--gateway" => gateway = Some(value()?.trim_end_matches('/').to_owned()),
            "--listen" => listen = Some(value()?.parse().context("--listen")?),
            "--secrets" => secrets = Some(PathBuf::from(value()?)),
            "--key-file" => key_file = Some(PathBuf::from(value()?)),
            "--audience" => audience = Some(value()?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(Args {
        gateway: gateway.context("--gateway URL is required")?,
        listen: listen.context("--listen ADDR is required")?,
        secrets: secrets.context("--secrets FILE is required")?,
        key_file: key_file.context("--key-file PATH is required")?,
        audience,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let text = std::fs::read_to_string(&args.secrets)
        .with_context(|| format!("reading {}", args.secrets.display()))?;
    let file: SecretsFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", args.secrets.display()))?;
    let key = read_key_file(&args.key_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let discovery: Value = http
        .get(format!("{}/.well-known/openid-configuration", args.gateway))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let issuer = discovery["issuer"].as_str().context("issuer")?.to_owned();
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .context("jwks_uri")?
        .to_owned();
    // The gateway's default audience is its issuer unless configured otherwise; a service
    // that asks for its own tokens (RFC 8707 `resource`) names itself with --audience.
    let audience = args.audience.unwrap_or_else(|| issuer.clone());
    let service = Arc::new(Service {
        gateway: args.gateway,
        issuer,
        jwks_uri,
        audience,
        secrets: file
            .secrets
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect(),
        key,
        http,
        jwks: Mutex::new(None),
        own_token: Mutex::new(None),
    });
    let app = axum::Router::new()
        .route("/lockbox/v1/secrets/{secret_id}/payload", get(payload))
        .with_state(service);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("lockbox listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
