//! The dev issuer: a minimal OIDC issuer served by the gateway itself at `/dev/issuer`, so that a
//! whole exchange can be tried locally with curl and nothing else. It exists only when the config
//! enables it (`[dev_issuer] enabled = true`, as in `config/dev.toml` only): anyone who can reach
//! it can mint caller tokens for any subject.
//!
//! It signs RS256 ID tokens with an RSA key kept in a file (generated on first start), publishes a
//! discovery document and a JWKS, and issues tokens for a form-supplied `sub` and `aud`.

use serde_json::{Value, json};

use crate::config::DevIssuerSettings;
use crate::files::{FileError, write_private};
use crate::signing::{SigningAlgorithm, SigningError, SigningKey};

/// Why the dev issuer cannot start or issue a token.
#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    #[error("dev issuer key: {0}")]
    Key(#[from] SigningError),
    #[error("writing the dev issuer key: {0}")]
    Write(#[from] FileError),
    #[error("{}: the dev issuer key must be an RSA key", .0.display())]
    NotRsa(std::path::PathBuf),
    /// The token request asks for something the dev issuer does not issue.
    #[error("{0}")]
    Request(String),
}

/// Default lifetime of dev tokens, and the longest one may ask for.
pub const DEFAULT_TTL: i64 = 300;
pub const MAX_TTL: i64 = 86_400;

#[derive(Debug)]
pub struct DevIssuer {
    issuer: String,
    key: SigningKey,
    header: String,
}

impl DevIssuer {
    /// Loads (or creates) the dev issuer's key. Its issuer URL is `{public_url}/dev/issuer`.
    pub fn load(
        settings: &DevIssuerSettings,
        public_url: &str,
    ) -> Result<DevIssuer, DevIssuerError> {
        let path = &settings.key_file;
        if !path.exists() {
            let (_, pem_text) = SigningKey::generate(SigningAlgorithm::RS256)?;
            write_private(path, &pem_text)?;
            tracing::info!(path = %path.display(), "generated the dev issuer's RSA key");
        }
        let key = SigningKey::from_file(path)?;
        if key.alg() != SigningAlgorithm::RS256 {
            return Err(DevIssuerError::NotRsa(path.clone()));
        }
        Ok(DevIssuer {
            issuer: format!("{public_url}/dev/issuer"),
            header: key.jwt_header(),
            key,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/jwks", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.key.public_jwk()] })
    }

    /// Issues an ID token for `sub` and `aud`, valid from `now` for `ttl` seconds.
    pub fn issue(
        &self,
        sub: &str,
        aud: &str,
        ttl: i64,
        now: i64,
    ) -> Result<String, DevIssuerError> {
        if sub.is_empty() || aud.is_empty() {
            return Err(DevIssuerError::Request(
                "sub and aud must not be empty".into(),
            ));
        }
        if !(1..=MAX_TTL).contains(&ttl) {
            return Err(DevIssuerError::Request(format!(
                "ttl must be 1 to {MAX_TTL} seconds"
            )));
        }
        let mut jti = [0u8; 12];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| SigningError::Sign)?;
        let claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": aud,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        Ok(self.key.sign_compact(&self.header, &claims)?)
    }
}
