//! The exchange path: a token-exchange request in, an access token or a refusal out. No HTTP
//! here ([`crate::http::token`] reads the body and writes the answer), and no network: issuer
//! keys come through [`KeyProvider`].
//!
//! | step | module |
//! |---|---|
//! | parse the form body (RFC 8693 §2.1) | [`request`] |
//! | read the caller JWT without trusting it | [`jwt`] |
//! | find the federations, verify the signature, check claims, find the credential | [`authorize`] (keys from [`key_provider`]: [`jwks`] in the server, [`issuer_keys`] parses them) |
//! | gates on a verified grant (the per-subject rate limit) | [`Gate`], implemented by [`crate::limits`] |
//! | mint the access token and its RFC 8693 §2.2.1 response | [`crate::signing`], [`response_body`] |
//!
//! [`Exchange::run`] composes these steps; the token endpoint, the tests and the benchmark all
//! call it, so what is measured is what runs. Every refusal is an [`ExchangeError`] with a
//! [`Reason`] ([`refusal`]).

pub mod authorize;
pub mod directory;
pub mod issuer_keys;
pub mod jwks;
pub mod jwt;
pub mod key_provider;
pub mod refusal;
pub mod request;

pub use authorize::{Grant, Policy};
pub use key_provider::{KeyError, KeyLookup, KeyProvider};
pub use refusal::{ExchangeError, Reason, quote};

use directory::Directory;
use issuer_keys::Algorithm;
use jwt::UnverifiedJwt;
use request::{TOKEN_TYPE_ACCESS_TOKEN, TokenRequest};

use crate::signing::{IssuedToken, MintRequest, Minter};

/// A check on a verified [`Grant`] between the trust decision and minting, such as the
/// per-subject rate limit. It sees only authentic claims, so a forged token cannot spend another
/// workload's budget.
pub trait Gate: Sync {
    fn admit(&self, grant: &Grant) -> Result<(), ExchangeError>;
}

/// No gate: every verified grant is minted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Open;

impl Gate for Open {
    fn admit(&self, _: &Grant) -> Result<(), ExchangeError> {
        Ok(())
    }
}

/// A successful exchange: the grant, the minted token and the response body that carries it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub grant: Grant,
    pub token: IssuedToken,
    /// The RFC 8693 §2.2.1 JSON body.
    pub body: String,
}

/// What the caller presented, as read and not necessarily authentic: kept for the audit line of
/// a refusal. Authentic only when the refusal's reason comes after the signature check
/// ([`Reason::after_verification`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    /// The form's `audience`: the service account asked for.
    pub service_account_id: Option<String>,
    /// The form's `resource`: the target asked for (well-formed, not necessarily allowed).
    pub resource: Option<String>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub jti: Option<String>,
    pub kid: Option<String>,
    pub alg: Option<Algorithm>,
}

impl Presented {
    fn of(request: &TokenRequest, jwt: Option<&UnverifiedJwt<'_>>) -> Presented {
        let claims = jwt.map(|j| &j.claims);
        Presented {
            service_account_id: Some(request.audience.clone()),
            resource: request.resource.clone(),
            iss: claims.and_then(|c| c.iss.clone()),
            sub: claims.and_then(|c| c.sub.clone()),
            jti: claims.and_then(|c| c.jti.clone()),
            kid: jwt.and_then(|j| j.kid.clone()),
            alg: jwt.map(|j| j.alg),
        }
    }
}

/// A refused exchange: the error and what the caller presented.
#[derive(Debug, Clone)]
pub struct Refused {
    pub error: ExchangeError,
    pub presented: Presented,
}

impl Refused {
    /// Whether the presented claims are authentic (the refusal came after the signature check).
    pub fn verified(&self) -> bool {
        self.error.reason.after_verification()
    }
}

impl From<ExchangeError> for Refused {
    fn from(error: ExchangeError) -> Self {
        Refused {
            error,
            presented: Presented::default(),
        }
    }
}

/// Everything one exchange reads: a directory snapshot, the minter, the issuer keys, the claim
/// policy and the gates.
pub struct Exchange<'a, K, G> {
    pub directory: &'a Directory,
    pub minter: &'a Minter,
    pub keys: &'a K,
    pub policy: &'a Policy,
    pub gate: &'a G,
}

impl<K: KeyProvider, G: Gate> Exchange<'_, K, G> {
    /// Runs one exchange on a form body: parse → read the JWT → [`authorize::authorize`] (which
    /// also decides the target) → [`Gate::admit`] → mint. `now` is Unix seconds.
    pub async fn run(&self, form: &[u8], now: i64) -> Result<Issued, Refused> {
        let request = request::parse_form(form)?;
        let jwt = match jwt::read(&request.subject_token) {
            Ok(jwt) => jwt,
            Err(error) => {
                return Err(Refused {
                    error,
                    presented: Presented::of(&request, None),
                });
            }
        };
        let refused = |error| Refused {
            error,
            presented: Presented::of(&request, Some(&jwt)),
        };
        let grant =
            authorize::authorize(&request, &jwt, self.directory, self.keys, self.policy, now)
                .await
                .map_err(refused)?;
        self.gate
            .admit(&grant)
            .map_err(|e| refused(e.in_federation(&grant.federation_id)))?;
        let token = mint(self.minter, &grant, now)
            .map_err(|e| refused(e.in_federation(&grant.federation_id)))?;
        let body = response_body(&token, grant.resource.as_deref());
        Ok(Issued { grant, token, body })
    }
}

/// Mints the access token a [`Grant`] allows. A failure is the gateway's own fault: it is logged
/// here with its cause and answered [`Reason::SigningFailed`] without the cause.
fn mint(minter: &Minter, grant: &Grant, now: i64) -> Result<IssuedToken, ExchangeError> {
    minter
        .mint(
            &MintRequest {
                service_account_id: &grant.service_account_id,
                federation_id: &grant.federation_id,
                external_issuer: &grant.issuer,
                external_subject: &grant.subject,
                audience: grant.resource.as_deref(),
            },
            now,
        )
        .map_err(|e| {
            tracing::error!(error = %e, signing_kid = minter.active_key().kid(), "signing an access token failed");
            ExchangeError::new(
                Reason::SigningFailed,
                "the gateway could not sign the access token; this is a server fault, not the caller's".into(),
            )
        })
}

/// The RFC 8693 §2.2.1 response body. Written by hand: the token is base64url and dots only
/// (minted here), so it needs no JSON escaping, and a general serializer would scan it byte by
/// byte on every exchange. A token minted for a `resource` adds a `resource` member naming it
/// (RFC 6749 §5.1 lets a response carry more members); without one, the body is the one Yandex
/// clients know, byte for byte.
pub fn response_body(token: &IssuedToken, resource: Option<&str>) -> String {
    debug_assert!(
        token
            .access_token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    );
    let resource = match resource {
        Some(r) => format!(r#","resource":{}"#, serde_json::Value::from(r)),
        None => String::new(),
    };
    format!(
        r#"{{"access_token":"{}","issued_token_type":"{TOKEN_TYPE_ACCESS_TOKEN}","token_type":"Bearer","expires_in":{}{resource}}}"#,
        token.access_token, token.expires_in
    )
}

#[cfg(test)]
mod tests;
