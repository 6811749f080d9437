//! The trust decision: may this caller token act as the requested service account? Finds the
//! federations of the token's `iss`, verifies the signature with their keys, checks times,
//! audiences and lifetime, finds the federated credential that binds the subject, and checks
//! that the binding federation allows the requested `resource` (RFC 8707), if one was asked for.
//!
//! Order matters: only what is needed to find the keys (shape, `iss`, enabled federations) is
//! looked at before the signature is verified, so every later message (times, audiences,
//! bindings) describes an authentic token, and the issuers of disabled federations are never
//! contacted (`docs/design.md#signature-before-claims`).

use std::sync::Arc;

use super::directory::{Directory, Federation, FederationIndex, KeySource};
use super::issuer_keys::Algorithm;
use super::jwt::UnverifiedJwt;
use super::key_provider::{KeyError, KeyLookup, KeyProvider};
use super::refusal::{ExchangeError, Reason, quote};
use super::request::TokenRequest;
use crate::time::rfc3339;

/// Settings of the checks that apply to every federation.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds.
    pub leeway: i64,
    /// The RFC 8707 `resource` values any exchange may ask for (`[tokens] resources`), compared
    /// as exact strings; a federation may narrow them ([`super::directory::Federation::resources`]).
    /// Empty: only the default audience is minted.
    pub resources: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            leeway: 60,
            resources: Vec::new(),
        }
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
    /// The allowed RFC 8707 `resource` the token is minted for (its `aud`); `None`: the default
    /// audience.
    pub resource: Option<String>,
}

/// `Retry-After` when an issuer's keys cannot be had: the JWKS cache retries in the background.
const ISSUER_RETRY_SECONDS: u64 = 5;

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
    // Rendered only on the error paths: this runs on every exchange.
    let server = || format!("server time {}, leeway {leeway}s", rfc3339(now));
    if now >= exp.saturating_add(leeway) {
        return Err(ExchangeError::new(
            Reason::Expired,
            format!("subject_token expired at {} ({})", rfc3339(exp), server()),
        ));
    }
    if let Some(nbf) = jwt.claims.nbf
        && nbf.0 > now.saturating_add(leeway)
    {
        return Err(ExchangeError::new(
            Reason::NotYetValid,
            format!(
                "subject_token is not valid before {} ({})",
                rfc3339(nbf.0),
                server()
            ),
        ));
    }
    let iat = match jwt.claims.iat {
        Some(iat) if iat.0 > now.saturating_add(leeway) => {
            return Err(ExchangeError::new(
                Reason::IssuedInFuture,
                format!(
                    "subject_token is issued in the future, at {} ({})",
                    rfc3339(iat.0),
                    server()
                ),
            ));
        }
        Some(iat) => iat.0,
        None => now,
    };
    if exp < iat {
        return Err(ExchangeError::new(
            Reason::InvalidClaim,
            format!(
                "subject_token expires ({}) before it is issued ({})",
                rfc3339(exp),
                rfc3339(iat)
            ),
        ));
    }
    Ok(Times {
        lifetime: exp.saturating_sub(iat),
    })
}

/// Decides whether the request's subject token may act as the requested service account (see
/// the module documentation for the order of the checks).
pub async fn authorize<K: KeyProvider>(
    request: &TokenRequest,
    jwt: &UnverifiedJwt<'_>,
    directory: &Directory,
    keys: &K,
    policy: &Policy,
    now: i64,
) -> Result<Grant, ExchangeError> {
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
    if jwt.claims.exp.is_none() {
        return Err(missing("exp"));
    }

    let indices = directory.federations_for_issuer(iss);
    if indices.is_empty() {
        let near = directory.near_issuers(iss);
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(
                "; a federation has the issuer {} — issuers must match exactly, including trailing slashes and case",
                near.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", ")
            )
        };
        return Err(ExchangeError::new(
            Reason::UnknownIssuer,
            format!("no federation has the issuer {}{hint}", quote(iss)),
        ));
    }
    let enabled: Vec<FederationIndex> = indices
        .iter()
        .copied()
        .filter(|i| directory.federation(*i).is_some_and(|f| f.enabled))
        .collect();
    if enabled.is_empty() {
        let disabled: Vec<&str> = indices
            .iter()
            .filter_map(|i| directory.federation(*i))
            .map(|f| f.id.as_str())
            .collect();
        let refusal = ExchangeError::new(
            Reason::FederationDisabled,
            format!(
                "federation {} for issuer {} is disabled",
                disabled
                    .iter()
                    .map(|id| quote(id))
                    .collect::<Vec<_>>()
                    .join(", "),
                quote(iss)
            ),
        );
        return Err(match disabled.first() {
            Some(id) => refusal.in_federation(id),
            None => refusal,
        });
    }
    // From here on a refusal concerns a known federation: the first one still in the running.
    let first_of = |indices: &[FederationIndex], e: ExchangeError| match indices
        .first()
        .and_then(|i| directory.federation(*i))
    {
        Some(f) => e.in_federation(&f.id),
        None => e,
    };

    let verified = verify_signature(directory, &enabled, jwt, keys).await?;
    let times = check_times(jwt, policy, now).map_err(|e| first_of(&verified, e))?;
    let candidates = check_federations(directory, &verified, &aud, times.lifetime)?;

    let Some(account) = directory.service_account(&request.audience) else {
        return Err(first_of(
            &candidates,
            ExchangeError::new(
                Reason::UnknownServiceAccount,
                format!(
                    "service account {} named by the audience parameter does not exist",
                    quote(&request.audience)
                ),
            ),
        ));
    };
    // The first federation that binds the subject and allows the target grants; if the subject
    // is bound but no binding federation allows the target, the first one's refusal is the error.
    let mut target_refusal = None;
    for &index in &candidates {
        let Some(federation) = directory.federation(index) else {
            continue;
        };
        let Some(credential) = directory.credential(index, &account.id, sub) else {
            continue;
        };
        if let Some(resource) = &request.resource
            && let Err(e) = check_target(resource, policy, federation)
        {
            target_refusal.get_or_insert(e.in_federation(&federation.id));
            continue;
        }
        // Told only to a subject the account trusts: to anyone else, a suspended account looks
        // like any account they are not bound to.
        if account.suspended {
            return Err(ExchangeError::new(
                Reason::ServiceAccountSuspended,
                format!(
                    "service account {} is suspended: it gets no token until an administrator reactivates it",
                    quote(&account.id)
                ),
            )
            .in_federation(&federation.id));
        }
        return Ok(Grant {
            federation_id: federation.id.clone(),
            service_account_id: account.id.clone(),
            credential_id: credential.to_owned(),
            issuer: iss.to_owned(),
            subject: sub.to_owned(),
            external_jti: jwt.claims.jti.clone(),
            kid: jwt.kid.clone(),
            alg: jwt.alg,
            resource: request.resource.clone(),
        });
    }
    if let Some(refusal) = target_refusal {
        return Err(refusal);
    }
    let federations: Vec<String> = candidates
        .iter()
        .filter_map(|i| directory.federation(*i))
        .map(|f| quote(&f.id))
        .collect();
    Err(first_of(
        &candidates,
        ExchangeError::new(
            Reason::NoBinding,
            format!(
                "no federated credential of federation {} binds subject {} to service account {}",
                federations.join(", "),
                quote(sub),
                quote(&account.id)
            ),
        ),
    ))
}

/// Whether `federation` may mint a token for `resource`: the federation's own list if it has
/// one, else the policy's (RFC 8707 §2: "unwilling … to issue a token for … the target
/// services" is `invalid_target`). The description names the allowed values: the caller's token
/// verified, so it may know what its federation allows.
fn check_target(
    resource: &str,
    policy: &Policy,
    federation: &Federation,
) -> Result<(), ExchangeError> {
    let (allowed, whose) = match &federation.resources {
        Some(own) => (
            own.as_slice(),
            format!("federation {}", quote(&federation.id)),
        ),
        None => (policy.resources.as_slice(), "the gateway".to_owned()),
    };
    if allowed.iter().any(|a| a == resource) {
        return Ok(());
    }
    let listed = if allowed.is_empty() {
        format!(
            "{whose} allows no resource; omit the parameter to get a token for the default audience"
        )
    } else {
        format!(
            "{whose} allows [{}]",
            allowed
                .iter()
                .map(|a| quote(a))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(ExchangeError::new(
        Reason::ResourceNotAllowed,
        format!("resource {} is not allowed: {listed}", quote(resource)),
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
                    quote(&f.id),
                    quote(&f.issuer)
                ),
            ))
        } else if !aud.iter().any(|a| f.audiences.iter().any(|t| t == a)) {
            Some(ExchangeError::new(
                Reason::AudienceMismatch,
                format!(
                    "subject_token aud [{}] is not trusted by federation {} (trusted: [{}])",
                    aud.iter().map(|a| quote(a)).collect::<Vec<_>>().join(", "),
                    quote(&f.id),
                    f.audiences
                        .iter()
                        .map(|a| quote(a))
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
                    quote(&f.id)
                ),
            ))
        } else {
            None
        };
        match failure {
            Some(e) => {
                first_error.get_or_insert(e.in_federation(&f.id));
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
                    first_error.get_or_insert(e.in_federation(&f.id));
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
            format!("{what} of issuer {}: {e}; retry later", quote(issuer)),
        )
        .retry_after(ISSUER_RETRY_SECONDS)
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
                &match jwt.kid.as_deref() {
                    Some(kid) => format!(
                        "kid {} is not among the cached keys and refreshing the keys failed",
                        quote(kid)
                    ),
                    None => {
                        "no cached key fits the token and refreshing the keys failed".to_owned()
                    }
                },
            )),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}
