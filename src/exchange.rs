//! The exchange itself, as a pure function of (request, directory snapshot, key provider, clock):
//! read the caller's JWT, find the federations for its `iss`, check them, verify the signature
//! with the federation's key, find the federated credential, mint the access token.
//!
//! No HTTP here: [`crate::http`] turns an [`ExchangeError`] into an RFC 6749 §5.2 response, and the
//! keys come through the [`KeyProvider`] trait ([`crate::jwks`] in the server, a fixed set in
//! tests and benchmarks).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::directory::{Directory, FederationIndex, KeySource};
use crate::jwt::{self, UnverifiedJwt};
use crate::keys::{Algorithm, KeySet};
use crate::request::TokenRequest;
use crate::signing::{IssuedToken, MintRequest, Minter};
use crate::time::rfc3339;

/// The `error` codes of RFC 6749 §5.2 and RFC 8693 §2.2.2 that the token endpoint returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    /// "The request is missing a required parameter, includes an unsupported parameter value
    /// (other than grant type), repeats a parameter, […] or is otherwise malformed." (RFC 6749 §5.2)
    InvalidRequest,
    /// "The provided authorization grant […] is invalid, expired, revoked, does not match the
    /// redirection URI used in the authorization request, or was issued to another client."
    /// (RFC 6749 §5.2) — here: the subject token, or what it is allowed to do.
    InvalidGrant,
    /// "The authorization server is unwilling or unable to issue a token for all the target
    /// services indicated by the `resource` or `audience` parameters." (RFC 8693 §2.2.2)
    InvalidTarget,
    /// "The authorization grant type is not supported by the authorization server." (RFC 6749 §5.2)
    UnsupportedGrantType,
    /// "The authorization server is currently unable to handle the request due to a temporary
    /// overloading or maintenance of the server." (RFC 6749 §4.1.2.1) — here: the issuer's keys
    /// cannot be fetched; the client should retry later.
    TemporarilyUnavailable,
}

impl OAuthError {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::InvalidTarget => "invalid_target",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// Why an exchange failed: a stable, machine-readable reason (sent as `error_code`, used in logs
/// and metrics), finer than the RFC's `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    MalformedRequest,
    MissingParameter,
    RepeatedParameter,
    UnsupportedTokenType,
    UnsupportedGrantType,
    MalformedToken,
    TokenTooLarge,
    ForbiddenHeader,
    UnsupportedAlgorithm,
    MissingClaim,
    InvalidClaim,
    Expired,
    NotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    UnknownIssuer,
    FederationDisabled,
    AudienceMismatch,
    UnknownKey,
    BadSignature,
    UnknownServiceAccount,
    NoBinding,
    IssuerUnavailable,
    IssuerKeysInvalid,
}

impl Reason {
    pub fn oauth_error(self) -> OAuthError {
        use Reason::*;
        match self {
            MalformedRequest | MissingParameter | RepeatedParameter | UnsupportedTokenType => {
                OAuthError::InvalidRequest
            }
            UnsupportedGrantType => OAuthError::UnsupportedGrantType,
            UnknownServiceAccount => OAuthError::InvalidTarget,
            IssuerUnavailable | IssuerKeysInvalid => OAuthError::TemporarilyUnavailable,
            MalformedToken | TokenTooLarge | ForbiddenHeader | UnsupportedAlgorithm
            | MissingClaim | InvalidClaim | Expired | NotYetValid | IssuedInFuture
            | LifetimeTooLong | UnknownIssuer | FederationDisabled | AudienceMismatch
            | UnknownKey | BadSignature | NoBinding => OAuthError::InvalidGrant,
        }
    }

    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            MalformedRequest => "malformed_request",
            MissingParameter => "missing_parameter",
            RepeatedParameter => "repeated_parameter",
            UnsupportedTokenType => "unsupported_token_type",
            UnsupportedGrantType => "unsupported_grant_type",
            MalformedToken => "malformed_token",
            TokenTooLarge => "token_too_large",
            ForbiddenHeader => "forbidden_header",
            UnsupportedAlgorithm => "unsupported_algorithm",
            MissingClaim => "missing_claim",
            InvalidClaim => "invalid_claim",
            Expired => "token_expired",
            NotYetValid => "token_not_yet_valid",
            IssuedInFuture => "token_issued_in_future",
            LifetimeTooLong => "token_lifetime_too_long",
            UnknownIssuer => "unknown_issuer",
            FederationDisabled => "federation_disabled",
            AudienceMismatch => "audience_mismatch",
            UnknownKey => "unknown_key",
            BadSignature => "bad_signature",
            UnknownServiceAccount => "unknown_service_account",
            NoBinding => "no_federated_credential",
            IssuerUnavailable => "issuer_unavailable",
            IssuerKeysInvalid => "issuer_keys_invalid",
        }
    }
}

/// A failed exchange: the reason and a description naming the failing rule and the presented
/// values. Descriptions never contain a token, key or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", reason.as_str())]
pub struct ExchangeError {
    pub reason: Reason,
    pub description: String,
}

impl ExchangeError {
    pub fn new(reason: Reason, description: String) -> Self {
        ExchangeError {
            reason,
            description,
        }
    }
}

/// Quotes an attacker-supplied value for an error message: JSON-style escaping, at most 200
/// characters, so a message can neither be forged with control characters nor grow unbounded.
pub fn shown(value: &str) -> String {
    const MAX: usize = 200;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let cut: String = value.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

/// Why keys could not be had from a key source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Network failure, timeout, HTTP 5xx: worth retrying.
    #[error("{0}")]
    Unreachable(String),
    /// The issuer answered with something unusable: a bad document, a refused redirect, a body
    /// over the cap, no usable key.
    #[error("{0}")]
    Invalid(String),
}

/// What a key provider has for a source: the keys it could get (fresh or stale) and, if its last
/// attempt to refresh them failed, why.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    pub keys: Option<Arc<KeySet>>,
    pub error: Option<KeyError>,
}

/// The key source the exchange logic sees. `kid` lets the provider refetch when a token names a
/// key it does not have yet (rotation), within its own rate limits.
pub trait KeyProvider: Sync {
    fn keys(
        &self,
        source: &Arc<KeySource>,
        kid: Option<&str>,
    ) -> impl Future<Output = KeyLookup> + Send;
}

/// Settings of the claim checks that apply to every federation.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds.
    pub leeway: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { leeway: 60 }
    }
}

/// Who got what: everything worth logging about a successful exchange.
#[derive(Debug, Clone)]
pub struct Grant {
    pub federation_id: String,
    pub service_account_id: String,
    pub credential_id: String,
    pub issuer: String,
    pub subject: String,
    pub external_jti: Option<String>,
    pub kid: Option<String>,
    pub alg: Algorithm,
}

/// A successful exchange.
#[derive(Debug, Clone)]
pub struct Exchanged {
    pub grant: Grant,
    pub token: IssuedToken,
}

fn missing(claim: &str) -> ExchangeError {
    ExchangeError::new(
        Reason::MissingClaim,
        format!("subject_token has no {claim} claim (required)"),
    )
}

fn present<'a>(value: Option<&'a str>, claim: &str) -> Result<&'a str, ExchangeError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing(claim))
}

struct Times {
    /// `exp − iat` (or `exp − now` without `iat`): the lifetime the issuer gave the token.
    lifetime: i64,
}

fn check_times(jwt: &UnverifiedJwt<'_>, policy: &Policy, now: i64) -> Result<Times, ExchangeError> {
    let exp = jwt.claims.exp.ok_or_else(|| missing("exp"))?.0;
    let leeway = policy.leeway;
    let server = format!("server time {}, leeway {leeway}s", rfc3339(now));
    if now >= exp.saturating_add(leeway) {
        return Err(ExchangeError::new(
            Reason::Expired,
            format!("subject_token expired at {} ({server})", rfc3339(exp)),
        ));
    }
    if let Some(nbf) = jwt.claims.nbf
        && nbf.0 > now.saturating_add(leeway)
    {
        return Err(ExchangeError::new(
            Reason::NotYetValid,
            format!(
                "subject_token is not valid before {} ({server})",
                rfc3339(nbf.0)
            ),
        ));
    }
    let iat = match jwt.claims.iat {
        Some(iat) if iat.0 > now.saturating_add(leeway) => {
            return Err(ExchangeError::new(
                Reason::IssuedInFuture,
                format!(
                    "subject_token is issued in the future, at {} ({server})",
                    rfc3339(iat.0)
                ),
            ));
        }
        Some(iat) => iat.0,
        None => now,
    };
    Ok(Times {
        lifetime: exp.saturating_sub(iat),
    })
}

/// Runs one exchange. `now` is Unix seconds.
pub async fn exchange<K: KeyProvider>(
    request: &TokenRequest,
    directory: &Directory,
    minter: &Minter,
    keys: &K,
    policy: &Policy,
    now: i64,
) -> Result<Exchanged, ExchangeError> {
    let jwt = jwt::read(&request.subject_token)?;
    let iss = present(jwt.claims.iss.as_deref(), "iss")?;
    let sub = present(jwt.claims.sub.as_deref(), "sub")?;
    let aud: Vec<&str> = jwt
        .claims
        .aud
        .as_ref()
        .ok_or_else(|| missing("aud"))?
        .values()
        .collect();
    if aud.is_empty() {
        return Err(ExchangeError::new(
            Reason::MissingClaim,
            "subject_token aud claim is an empty array".into(),
        ));
    }
    let times = check_times(&jwt, policy, now)?;

    let indices = directory.federations_for_issuer(iss);
    if indices.is_empty() {
        let near = directory.near_issuers(iss);
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(
                "; a federation has the issuer {} — issuers must match exactly, including trailing slashes and case",
                near.iter().map(|n| shown(n)).collect::<Vec<_>>().join(", ")
            )
        };
        return Err(ExchangeError::new(
            Reason::UnknownIssuer,
            format!("no federation has the issuer {}{hint}", shown(iss)),
        ));
    }

    let candidates = check_federations(directory, indices, &aud, times.lifetime)?;
    let verified = verify_signature(directory, &candidates, &jwt, keys).await?;

    let Some(account) = directory.service_account(&request.audience) else {
        return Err(ExchangeError::new(
            Reason::UnknownServiceAccount,
            format!(
                "service account {} named by the audience parameter does not exist",
                shown(&request.audience)
            ),
        ));
    };
    for &index in &verified {
        let Some(federation) = directory.federation(index) else {
            continue;
        };
        if let Some(credential) = directory.credential(index, &account.id, sub) {
            let grant = Grant {
                federation_id: federation.id.clone(),
                service_account_id: account.id.clone(),
                credential_id: credential.to_owned(),
                issuer: iss.to_owned(),
                subject: sub.to_owned(),
                external_jti: jwt.claims.jti.clone(),
                kid: jwt.kid.clone(),
                alg: jwt.alg,
            };
            let token = minter
                .mint(
                    &MintRequest {
                        service_account_id: &account.id,
                        federation_id: &federation.id,
                        external_issuer: iss,
                        external_subject: sub,
                    },
                    now,
                )
                .map_err(|e| {
                    ExchangeError::new(Reason::IssuerKeysInvalid, format!("minting failed: {e}"))
                })?;
            return Ok(Exchanged { grant, token });
        }
    }
    let federations: Vec<String> = verified
        .iter()
        .filter_map(|i| directory.federation(*i))
        .map(|f| shown(&f.id))
        .collect();
    Err(ExchangeError::new(
        Reason::NoBinding,
        format!(
            "no federated credential of federation {} binds subject {} to service account {}",
            federations.join(", "),
            shown(sub),
            shown(&account.id)
        ),
    ))
}

/// Keeps the federations of the issuer that are enabled, trust one of the token's audiences and
/// accept its lifetime. If none is left, the first federation's failure is the error.
fn check_federations(
    directory: &Directory,
    indices: &[FederationIndex],
    aud: &[&str],
    lifetime: i64,
) -> Result<Vec<FederationIndex>, ExchangeError> {
    let mut first_error = None;
    let mut candidates = Vec::with_capacity(indices.len());
    for &index in indices {
        let Some(f) = directory.federation(index) else {
            continue;
        };
        let failure = if !f.enabled {
            Some(ExchangeError::new(
                Reason::FederationDisabled,
                format!(
                    "federation {} for issuer {} is disabled",
                    shown(&f.id),
                    shown(&f.issuer)
                ),
            ))
        } else if !aud.iter().any(|a| f.audiences.iter().any(|t| t == a)) {
            Some(ExchangeError::new(
                Reason::AudienceMismatch,
                format!(
                    "subject_token aud [{}] is not trusted by federation {} (trusted: [{}])",
                    aud.iter().map(|a| shown(a)).collect::<Vec<_>>().join(", "),
                    shown(&f.id),
                    f.audiences
                        .iter()
                        .map(|a| shown(a))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        } else if lifetime > f.max_token_lifetime {
            Some(ExchangeError::new(
                Reason::LifetimeTooLong,
                format!(
                    "subject_token lifetime of {lifetime}s exceeds the {}s that federation {} accepts",
                    f.max_token_lifetime,
                    shown(&f.id)
                ),
            ))
        } else {
            None
        };
        match failure {
            Some(e) => {
                first_error.get_or_insert(e);
            }
            None => candidates.push(index),
        }
    }
    match (candidates.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(candidates),
    }
}

/// Verifies the signature once per distinct key source among the candidates and returns the
/// candidates whose source verified it.
async fn verify_signature<K: KeyProvider>(
    directory: &Directory,
    candidates: &[FederationIndex],
    jwt: &UnverifiedJwt<'_>,
    keys: &K,
) -> Result<Vec<FederationIndex>, ExchangeError> {
    let mut outcomes: Vec<(&Arc<KeySource>, bool)> = Vec::new();
    let mut first_error = None;
    let mut verified = Vec::with_capacity(candidates.len());
    for &index in candidates {
        let Some(f) = directory.federation(index) else {
            continue;
        };
        let source = &f.key_source;
        let ok = match outcomes.iter().find(|(s, _)| Arc::ptr_eq(s, source)) {
            Some((_, ok)) => *ok,
            None => {
                let lookup = keys.keys(source, jwt.kid.as_deref()).await;
                let result = verify_with(&lookup, jwt, &f.issuer);
                let ok = result.is_ok();
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
                outcomes.push((source, ok));
                ok
            }
        };
        if ok {
            verified.push(index);
        }
    }
    match (verified.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(verified),
    }
}

fn verify_with(
    lookup: &KeyLookup,
    jwt: &UnverifiedJwt<'_>,
    issuer: &str,
) -> Result<(), ExchangeError> {
    let unavailable = |e: &KeyError, what: &str| {
        let reason = match e {
            KeyError::Unreachable(_) => Reason::IssuerUnavailable,
            KeyError::Invalid(_) => Reason::IssuerKeysInvalid,
        };
        ExchangeError::new(
            reason,
            format!("{what} of issuer {}: {e}; retry later", shown(issuer)),
        )
    };
    let Some(keys) = &lookup.keys else {
        let e = lookup
            .error
            .clone()
            .unwrap_or_else(|| KeyError::Unreachable("no keys".into()));
        return Err(unavailable(&e, "cannot get the signing keys"));
    };
    match keys.verify(
        jwt.kid.as_deref(),
        jwt.alg,
        jwt.signing_input,
        &jwt.signature,
    ) {
        Ok(_) => Ok(()),
        Err(e) if e.reason == Reason::UnknownKey => match &lookup.error {
            Some(fetch) => Err(unavailable(
                fetch,
                &format!(
                    "kid {} is not among the cached keys and refreshing the keys failed",
                    shown(jwt.kid.as_deref().unwrap_or(""))
                ),
            )),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
