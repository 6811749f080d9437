//! `IamTokenService.Create` with a JWT: a service account proves itself with a JWT signed by
//! the private half of one of its authorized keys, and gets an IAM token.
//!
//! The Yandex rules, each refused as UNAUTHENTICATED with a message naming it: the JWT is a
//! compact JWS read with the exchange's hardened reader ([`crate::exchange::jwt`]: size, shape,
//! forbidden headers); `alg` is PS256 only; header `kid` is an authorized key of the store; `iss`
//! is the service account that key belongs to; the PS256 signature verifies with the stored
//! public key; then, for an authentic JWT only, `aud` is one of the accepted audiences, `exp`
//! and `iat` are present, `exp` is not past, `iat` (and `nbf`) not in the future beyond the
//! leeway, `exp − iat ≤ 3600`, and the account is active. A `jwt` over 8000 characters is
//! INVALID_ARGUMENT, as the API's own validation says.

use crate::exchange::issuer_keys::Algorithm;
use crate::exchange::jwt;
use crate::exchange::quote;
use crate::time::rfc3339;

use super::keys::ps256_verifier;
use super::status::Status;
use super::store::{AuthorizedKey, ServiceAccount, ServiceAccountStatus, Store, StoreError};

/// Longest `jwt` accepted (`CreateIamTokenRequest.jwt`: length ≤ 8000).
pub const MAX_JWT_CHARS: usize = 8000;

/// Longest lifetime (`exp − iat`) of a service-account JWT, in seconds.
pub const MAX_JWT_LIFETIME: i64 = 3600;

/// What the JWT's claims are checked against.
#[derive(Debug, Clone, Copy)]
pub struct JwtRules<'a> {
    /// Accepted `aud` values (`[iam] token_audiences`).
    pub audiences: &'a [String],
    /// Clock skew allowed on `exp`, `iat` and `nbf`, in seconds.
    pub leeway: i64,
}

/// An accepted JWT: the account it speaks for and the key that signed it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub service_account: ServiceAccount,
    pub key: AuthorizedKey,
}

/// A refused JWT, with what it presented (for the audit log; as presented, unless
/// `verified`).
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: Status,
    pub kid: Option<String>,
    pub iss: Option<String>,
    /// Whether the signature had verified when the JWT was refused.
    pub verified: bool,
}

fn refused(reason: &'static str, message: impl Into<String>) -> Status {
    Status::unauthenticated(reason, message)
}

/// Checks a service-account JWT at `now` against the store's authorized keys.
pub async fn verify(
    store: &Store,
    token: &str,
    rules: &JwtRules<'_>,
    now: i64,
) -> Result<Verified, Refused> {
    let unread = |status: Status| Refused {
        status,
        kid: None,
        iss: None,
        verified: false,
    };
    if token.chars().count() > MAX_JWT_CHARS {
        return Err(unread(Status::invalid_argument(
            "jwt_too_long",
            format!("jwt is longer than {MAX_JWT_CHARS} characters"),
        )));
    }
    let jwt = match jwt::read(token) {
        Ok(jwt) => jwt,
        Err(e) => {
            let message = e.description.replacen("subject_token", "jwt", 1);
            return Err(unread(refused(e.reason.as_str(), message)));
        }
    };
    let iss = jwt.claims.iss.clone().unwrap_or_default();
    let kid = jwt.kid.clone().unwrap_or_default();
    let refuse = |status: Status, verified: bool| Refused {
        status,
        kid: jwt.kid.clone(),
        iss: jwt.claims.iss.clone(),
        verified,
    };
    if jwt.alg != Algorithm::PS256 {
        return Err(refuse(
            refused(
                "unsupported_algorithm",
                format!(
                    "jwt alg {} is not accepted: a service account's JWT must be signed with PS256 (RSASSA-PSS with SHA-256)",
                    jwt.alg
                ),
            ),
            false,
        ));
    }
    if kid.is_empty() {
        return Err(refuse(
            refused(
                "missing_kid",
                "jwt header has no kid: it must be the id of the service account's authorized key",
            ),
            false,
        ));
    }
    if iss.is_empty() {
        return Err(refuse(
            refused(
                "missing_claim",
                "jwt has no iss claim: it must be the id of the service account",
            ),
            false,
        ));
    }
    let key = match store.get_authorized_key(&kid).await {
        Ok(key) => key,
        Err(StoreError::NotFound { .. }) => {
            return Err(refuse(
                refused(
                    "unknown_key",
                    format!(
                        "jwt kid {} names no authorized key (it was deleted, or never existed)",
                        quote(&kid)
                    ),
                ),
                false,
            ));
        }
        Err(other) => return Err(refuse(other.into(), false)),
    };
    if key.service_account_id != iss {
        return Err(refuse(
            refused(
                "key_of_another_account",
                format!(
                    "jwt kid {} is an authorized key of service account {}, not of iss {}",
                    quote(&kid),
                    quote(&key.service_account_id),
                    quote(&iss)
                ),
            ),
            false,
        ));
    }
    let verifier = match ps256_verifier(&key.public_key) {
        Ok(verifier) => verifier,
        Err(e) => return Err(refuse(Status::internal(&e), false)),
    };
    if verifier
        .verify_sig(jwt.signing_input, &jwt.signature)
        .is_err()
    {
        return Err(refuse(
            refused(
                "bad_signature",
                format!(
                    "jwt signature does not verify with authorized key {} (PS256)",
                    quote(&kid)
                ),
            ),
            false,
        ));
    }
    // From here on the JWT is authentic: its claims are what the key's owner wrote.
    let claims = &jwt.claims;
    let accepted = || {
        rules
            .audiences
            .iter()
            .map(|a| quote(a))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(aud) = &claims.aud else {
        return Err(refuse(
            refused(
                "missing_claim",
                format!("jwt has no aud claim (accepted: {})", accepted()),
            ),
            true,
        ));
    };
    if !aud.values().any(|a| rules.audiences.iter().any(|r| r == a)) {
        let shown: Vec<String> = aud.values().map(quote).collect();
        return Err(refuse(
            refused(
                "audience_mismatch",
                format!(
                    "jwt aud [{}] is not accepted here (accepted: {})",
                    shown.join(", "),
                    accepted()
                ),
            ),
            true,
        ));
    }
    let (Some(exp), Some(iat)) = (claims.exp, claims.iat) else {
        let name = if claims.exp.is_none() { "exp" } else { "iat" };
        return Err(refuse(
            refused(
                "missing_claim",
                format!("jwt has no {name} claim (exp and iat are required)"),
            ),
            true,
        ));
    };
    let (exp, iat, leeway) = (exp.0, iat.0, rules.leeway);
    let server = || format!("server time {}, leeway {leeway}s", rfc3339(now));
    if now >= exp.saturating_add(leeway) {
        return Err(refuse(
            refused(
                "token_expired",
                format!("jwt expired at {} ({})", rfc3339(exp), server()),
            ),
            true,
        ));
    }
    if iat > now.saturating_add(leeway) {
        return Err(refuse(
            refused(
                "token_issued_in_future",
                format!(
                    "jwt is issued in the future, at {} ({})",
                    rfc3339(iat),
                    server()
                ),
            ),
            true,
        ));
    }
    if let Some(nbf) = claims.nbf
        && nbf.0 > now.saturating_add(leeway)
    {
        return Err(refuse(
            refused(
                "token_not_yet_valid",
                format!("jwt is not valid before {} ({})", rfc3339(nbf.0), server()),
            ),
            true,
        ));
    }
    if exp < iat {
        return Err(refuse(
            refused(
                "invalid_claim",
                format!(
                    "jwt expires ({}) before it is issued ({})",
                    rfc3339(exp),
                    rfc3339(iat)
                ),
            ),
            true,
        ));
    }
    if exp - iat > MAX_JWT_LIFETIME {
        return Err(refuse(
            refused(
                "token_lifetime_too_long",
                format!(
                    "jwt lifetime exp − iat is {} s; at most {MAX_JWT_LIFETIME} s is accepted",
                    exp - iat
                ),
            ),
            true,
        ));
    }
    let account = match store.get_service_account(&iss).await {
        Ok(account) => account,
        Err(StoreError::NotFound { .. }) => {
            return Err(refuse(
                refused(
                    "unknown_service_account",
                    format!("service account {} no longer exists", quote(&iss)),
                ),
                true,
            ));
        }
        Err(other) => return Err(refuse(other.into(), true)),
    };
    if account.status != ServiceAccountStatus::Active {
        return Err(refuse(
            refused(
                "service_account_suspended",
                format!("service account {} is suspended", quote(&iss)),
            ),
            true,
        ));
    }
    Ok(Verified {
        service_account: account,
        key,
    })
}
