//! Compiled settings: what the server runs with besides the directory.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::schema::{JwksConfig, LimitsConfig};
use crate::exchange::Policy;
use crate::files::{FileError, write_private};
use crate::signing::{Minter, SigningAlgorithm, SigningError, SigningKey};
use crate::tls::{Identity, TlsError, dev_ca};

/// The signing keys named by the settings could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    #[error("signing key: {0}")]
    Key(#[from] SigningError),
    #[error("writing the generated signing key: {0}")]
    Write(#[from] FileError),
}

/// Compiled settings of the server and the signing keys: what is not the directory.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The TLS listener, when `[server.tls]` is configured.
    pub tls: Option<TlsSettings>,
    /// Without trailing slash.
    pub public_url: String,
    /// The `host:port` gRPC clients dial (`[server] grpc_endpoint`, default `public_url`'s).
    pub grpc_endpoint: String,
    pub request_timeout_seconds: u64,
    pub header_read_timeout_seconds: u64,
    pub shutdown_timeout_seconds: u64,
    pub token_lifetime: i64,
    pub token_audience: String,
    pub signing_key_file: PathBuf,
    pub published_key_files: Vec<PathBuf>,
    pub generate_signing_key: Option<SigningAlgorithm>,
    pub policy: Policy,
    pub jwks: JwksConfig,
    pub limits: LimitsConfig,
    pub audit: crate::audit::AuditTarget,
    /// Reload on changes below these directories (see `[server] watch_config`).
    pub watch: Vec<PathBuf>,
    pub reload_debounce_ms: u64,
    pub dev_issuer: Option<DevIssuerSettings>,
    /// The IAM store, when `[store]` is configured (fixed at start).
    pub store: Option<StoreSettings>,
    /// The IAM API's settings (fixed at start; used only with a store).
    pub iam: IamSettings,
}

/// Where the IAM store lives.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// A `sqlite://` URL with its path resolved (and `mode=rwc` unless a mode is given), or a
    /// `postgres://` URL as written. May hold a password: show [`StoreSettings::redacted`].
    pub url: String,
    /// SQLite: the database file (its directory is created at start if missing).
    pub sqlite_file: Option<PathBuf>,
}

impl StoreSettings {
    /// The URL without its password, for logs and messages.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("url", &self.redacted())
            .finish()
    }
}

/// `url` with any password (in the authority or a `password` parameter) replaced by `***`; text
/// that is not a URL is shown as `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query_pairs().any(|(k, _)| k == "password") {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" { "***".into() } else { v };
                        (k.into_owned(), v.into_owned())
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) if url.starts_with("sqlite:") => url.to_owned(),
        Err(_) => "***".to_owned(),
    }
}

/// The IAM API's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamSettings {
    /// Accepted `aud` values of service-account JWTs at `POST /iam/v1/tokens`.
    pub token_audiences: Vec<String>,
    /// Where the first start writes the administrator's key file.
    pub bootstrap_key_file: PathBuf,
    /// Whether federations created through the API may fetch keys over plain `http://` from a
    /// loopback host (the dev issuer); otherwise only `https://`.
    pub allow_http_to_loopback: bool,
    /// The longest subject-token lifetime the API's federations accept
    /// (`[exchange] max_token_lifetime_seconds`).
    pub federation_max_token_lifetime: i64,
    /// Quotas per cloud.
    pub quotas: crate::iam::quota::Quotas,
    /// `[iam] secret_keys`, files resolved: what static access keys' secrets are sealed with.
    pub secret_keys: Vec<crate::iam::sealing::SecretKeyFile>,
}

/// The TLS listener: where it listens and its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// With `generate_dev_ca = true`: the development CA's directory. The CA and the files above
    /// are made when missing ([`crate::tls::dev_ca`]).
    pub dev_ca_dir: Option<PathBuf>,
}

impl TlsSettings {
    /// Loads the certificate and key, making the development CA's first if configured (`now`:
    /// Unix seconds, for the certificates' validity).
    pub fn load(&self, now: i64) -> Result<Identity, TlsError> {
        if let Some(dir) = &self.dev_ca_dir {
            dev_ca::ensure(dir, &self.cert_file, &self.key_file, now)?;
        }
        Identity::load(&self.cert_file, &self.key_file)
    }

    /// What `check-config` asks: the files load, or are missing and will be made at start.
    /// Writes nothing.
    pub fn check(&self) -> Result<(), TlsError> {
        let missing = !self.cert_file.exists() || !self.key_file.exists();
        if self.dev_ca_dir.is_some() && missing {
            return Ok(());
        }
        Identity::load(&self.cert_file, &self.key_file).map(|_| ())
    }
}

/// The dev issuer, when enabled.
#[derive(Debug, Clone)]
pub struct DevIssuerSettings {
    pub key_file: PathBuf,
}

impl Settings {
    /// Loads the signing keys into a [`Minter`]; generates the active key first if allowed and
    /// missing (writing it with mode 0600).
    pub fn load_minter(&self) -> Result<Minter, KeyLoadError> {
        if !self.signing_key_file.exists()
            && let Some(alg) = self.generate_signing_key
        {
            let (_, pem_text) = SigningKey::generate(alg)?;
            write_private(&self.signing_key_file, &pem_text)?;
            tracing::info!(path = %self.signing_key_file.display(), %alg, "generated a signing key");
        }
        let active = SigningKey::from_file(&self.signing_key_file)?;
        let published = self
            .published_key_files
            .iter()
            .map(|p| SigningKey::from_file(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Minter::new(
            self.public_url.clone(),
            self.token_audience.clone(),
            self.token_lifetime,
            active,
            published,
        ))
    }
}
