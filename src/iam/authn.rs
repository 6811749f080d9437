//! Who is calling the IAM API: `Authorization: Bearer <IAM token>` → a [`Principal`].
//!
//! IAM tokens are the gateway's own access tokens (minted by the exchange or by
//! `POST /iam/v1/tokens`, [`crate::signing`]): accepted when their signature verifies with one
//! of the gateway's published keys, `iss` is its public URL, `aud` its token audience, they have
//! not expired, it is not on the revocation list, and `sub` is a service account that still
//! exists in the IAM store and is active (a suspended account's tokens are refused like a
//! deleted one's). Every refusal is UNAUTHENTICATED with a message naming the rule; the token itself
//! is never repeated. [`authenticate`] is the one function every management call goes through;
//! [`verify`] is the same check of a token given by value (revocation, introspection).

use crate::exchange::jwt;
use crate::exchange::{Reason, quote};
use crate::time::rfc3339;

use super::live::{Live, Revoked};
use super::own_keys::OwnKeys;
use super::status::Status;
use super::store::{ServiceAccountStatus, Store, StoreError};

/// An authenticated caller: a service account of the store, as it was when its token was
/// checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub service_account_id: String,
    pub folder_id: String,
    pub cloud_id: String,
    /// `jti` of the IAM token that authenticated the call, for the audit log.
    pub token_jti: Option<String>,
    /// `exp` of that token: a token impersonation issues never outlives it.
    pub token_expires_at: Option<i64>,
    /// `act` of that token (RFC 8693 §4.1) when someone acts for the account (an exchanged
    /// token's external subject, an impersonation's caller): the chain an impersonation
    /// extends.
    pub actor: Option<serde_json::Value>,
}

impl Principal {
    /// The principal as the authorization index knows it: a service account.
    pub fn as_subject(&self) -> super::authz::Principal<'_> {
        super::authz::Principal::service_account(&self.service_account_id)
    }
}

/// How the gateway's own tokens are recognised: its current keys (active and published, with
/// the tokens they already verified), its issuer and audience, the clock skew allowed, and the
/// revocation list.
#[derive(Debug, Clone, Copy)]
pub struct OwnTokens<'a> {
    pub keys: &'a OwnKeys,
    pub issuer: &'a str,
    pub audience: &'a str,
    pub leeway: i64,
    pub revoked: &'a Revoked,
    /// Other `aud` values accepted besides `audience`: the RFC 8707 targets tokens may be
    /// minted for, when the caller is a resource service's check of a token it received
    /// (`/iam/v1/authorize`). Empty for management calls: a token minted for a service is
    /// not a credential for the IAM API.
    pub resources: &'a [String],
}

/// How far [`verify`] goes: a token that is authentic (the gateway's key, issuer and
/// audience) may still be refused for its times, its revocation or its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Every rule: what authentication and introspection need.
    All,
    /// Authenticity only, and a `sub` and `exp`: what revocation needs of the token it ends.
    Authentic,
}

/// A token of the gateway that passed [`verify`]: its claims as introspection answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub sub: String,
    pub exp: i64,
    pub iat: Option<i64>,
    pub iss: String,
    pub aud: Vec<String>,
    pub jti: Option<String>,
    /// `client_id`: the federation of an exchanged token, the authorized key of an IAM token,
    /// the caller of an impersonation.
    pub client_id: Option<String>,
    /// `act`: who acts for the subject (RFC 8693 §4.1), nested for a chain.
    pub act: Option<serde_json::Value>,
    /// Whether `exp` (with the leeway) has passed; only [`Checks::Authentic`] lets such a
    /// token through.
    pub expired: bool,
}

fn refused(reason: &'static str, message: impl Into<String>) -> Status {
    Status::unauthenticated(reason, message)
}

/// The refusal of a token whose service account is suspended: it speaks for nobody until the
/// account is active again. (An API key's is [`crate::iam::api_keys::identify`]'s, with the
/// same reason.)
pub fn suspended(service_account_id: &str) -> Status {
    refused(
        "service_account_suspended",
        format!(
            "the IAM token's service account {} is suspended",
            quote(service_account_id)
        ),
    )
}

/// The token of an `Authorization: Bearer …` header value (the scheme in any case, RFC 9110
/// §11.1), or the refusal that says what is wrong with the header.
pub fn bearer(authorization: Option<&[u8]>) -> Result<&str, Status> {
    const SEND: &str = "Bearer <IAM token>";
    let (scheme, token) = scheme(authorization, SEND)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed(
            &format!("uses the scheme {}, not Bearer", shown_scheme(scheme)),
            SEND,
        ));
    }
    if token.is_empty() {
        return Err(malformed("has no token after Bearer", SEND));
    }
    Ok(token)
}

/// A credential a resource service presents for itself to the Authorize API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// `Authorization: Bearer <IAM token>`.
    IamToken(&'a str),
    /// `Authorization: Api-Key <API key>` (the secret; never shown).
    ApiKey(&'a str),
}

/// The credential of an `Authorization: Bearer …` or `Authorization: Api-Key …` header value
/// (the schemes in any case), or the refusal that says what is wrong with the header. The
/// refusal never repeats the credential.
pub fn presented(authorization: Option<&[u8]>) -> Result<Presented<'_>, Status> {
    const SEND: &str = "Bearer <IAM token> or Api-Key <API key>";
    let (scheme, credential) = scheme(authorization, SEND)?;
    let presented = if scheme.eq_ignore_ascii_case("bearer") {
        Presented::IamToken(credential)
    } else if scheme.eq_ignore_ascii_case("api-key") {
        Presented::ApiKey(credential)
    } else {
        return Err(malformed(
            &format!(
                "uses the scheme {}, not Bearer or Api-Key",
                shown_scheme(scheme)
            ),
            SEND,
        ));
    };
    if credential.is_empty() {
        return Err(malformed(&format!("has nothing after {scheme}"), SEND));
    }
    Ok(presented)
}

fn malformed(what: &str, send: &str) -> Status {
    refused(
        "malformed_credentials",
        format!("the Authorization header {what}: send Authorization: {send}"),
    )
}

/// A scheme as a refusal quotes it: at most 20 characters.
fn shown_scheme(scheme: &str) -> String {
    quote(&scheme.chars().take(20).collect::<String>())
}

/// The scheme and the credential after it (trimmed, maybe empty) of an `Authorization` value.
fn scheme<'a>(authorization: Option<&'a [u8]>, send: &str) -> Result<(&'a str, &'a str), Status> {
    let Some(value) = authorization else {
        return Err(refused(
            "missing_credentials",
            format!("the request has no Authorization header: send Authorization: {send}"),
        ));
    };
    let text = std::str::from_utf8(value).map_err(|_| malformed("is not text", send))?;
    let (scheme, credential) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    Ok((scheme, credential.trim()))
}

/// Authenticates a management call from its `Authorization` header value at `now`.
pub async fn authenticate(
    authorization: Option<&[u8]>,
    own: &OwnTokens<'_>,
    store: &Store,
    now: i64,
) -> Result<Principal, Status> {
    let token = bearer(authorization)?;
    let (_, principal) = verify(token, own, store, now, Checks::All).await?;
    principal.ok_or_else(|| Status::internal(&"a fully checked token has no account"))
}

/// `client_id` and `act` of a token's payload, which the typed claims do not hold. Only called
/// on a token whose signature verified.
fn client_and_actor(token: &str) -> (Option<String>, Option<serde_json::Value>) {
    use base64::Engine as _;
    let Some(bytes) = token.split('.').nth(1).and_then(|payload| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
    }) else {
        return (None, None);
    };
    let Ok(serde_json::Value::Object(mut claims)) = serde_json::from_slice(&bytes) else {
        return (None, None);
    };
    let client_id = claims
        .get("client_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    (client_id, claims.remove("act").filter(|a| a.is_object()))
}

/// Checks `token` as a token of this gateway at `now`, as far as `checks` says. With
/// [`Checks::All`] the answer includes the principal the token speaks for (its account as the
/// store has it).
pub async fn verify(
    token: &str,
    own: &OwnTokens<'_>,
    store: &Store,
    now: i64,
    checks: Checks,
) -> Result<(Verified, Option<Principal>), Status> {
    let verified = check(token, own, now, checks)?;
    if checks == Checks::Authentic {
        return Ok((verified, None));
    }
    let sub = verified.sub.as_str();
    let account = match store.get_service_account(sub).await {
        Ok(account) => account,
        Err(StoreError::NotFound { .. }) => {
            return Err(unknown_account(sub));
        }
        Err(other) => return Err(other.into()),
    };
    if account.status != ServiceAccountStatus::Active {
        return Err(suspended(sub));
    }
    let principal = Principal {
        service_account_id: account.id,
        folder_id: account.folder_id,
        cloud_id: account.cloud_id,
        token_jti: verified.jti.clone(),
        token_expires_at: Some(verified.exp),
        actor: verified.act.clone(),
    };
    Ok((verified, Some(principal)))
}

/// The refusal of a token whose subject is not a service account of the store.
fn unknown_account(sub: &str) -> Status {
    refused(
        "unknown_service_account",
        format!(
            "the IAM token's subject {} is not a service account of the IAM store: it was deleted, or exists only in the configuration files",
            quote(sub)
        ),
    )
}

/// The service account a token of this gateway speaks for, from memory (the Authorize API's
/// check of a token): the token passes [`check_claims`] with every rule, and its subject is a
/// service account of the store as last applied. Whether the account is suspended is the
/// authorization index's to say.
pub fn account_of(
    token: &str,
    own: &OwnTokens<'_>,
    live: &Live,
    now: i64,
) -> Result<String, Status> {
    let verified = check_claims(token, own, now, Checks::All)?;
    if live.entries().service_account(&verified.sub).is_none() {
        return Err(unknown_account(&verified.sub));
    }
    Ok(verified.sub)
}

/// The part of [`verify`] that needs no store: the token is the gateway's (key, issuer,
/// audience), has a `sub` and an `exp`, and — with [`Checks::All`] — is within its times and
/// not revoked. Whether its subject still exists is the caller's to check.
pub fn check(
    token: &str,
    own: &OwnTokens<'_>,
    now: i64,
    checks: Checks,
) -> Result<Verified, Status> {
    let mut verified = check_claims(token, own, now, checks)?;
    (verified.client_id, verified.act) = client_and_actor(token);
    Ok(verified)
}

/// [`check`] without reading `client_id` and `act` (left `None`), for a caller that needs
/// only the subject: the same rules, one decoding of the payload fewer.
pub fn check_claims(
    token: &str,
    own: &OwnTokens<'_>,
    now: i64,
    checks: Checks,
) -> Result<Verified, Status> {
    let jwt = jwt::read(token).map_err(|e| {
        refused(
            e.reason.as_str(),
            e.description.replacen("subject_token", "the IAM token", 1),
        )
    })?;
    let kid = jwt.kid.as_deref().unwrap_or("(none)");
    // A token string verified before with these keys skips the signature math, nothing else
    // ([`OwnKeys::verify`]): every rule below is checked on every call.
    own.keys
        .verify(
            token,
            jwt.kid.as_deref(),
            jwt.alg,
            jwt.signing_input,
            &jwt.signature,
        )
        .map_err(|e| match e.reason {
            Reason::UnknownKey => refused(
                "foreign_signer",
                format!(
                    "the IAM token is signed by key {} ({}), which is not a key of this gateway: only IAM tokens this gateway issued are accepted",
                    quote(kid),
                    jwt.alg
                ),
            ),
            Reason::UnsupportedAlgorithm => refused(
                "foreign_signer",
                format!(
                    "the IAM token's alg {} does not fit this gateway's key {}: only IAM tokens this gateway issued are accepted",
                    jwt.alg,
                    quote(kid)
                ),
            ),
            _ => refused(
                "bad_signature",
                format!(
                    "the IAM token's signature does not verify with this gateway's key {}",
                    quote(kid)
                ),
            ),
        })?;
    let claims = &jwt.claims;
    let iss = claims.iss.as_deref().unwrap_or("");
    if iss != own.issuer {
        return Err(refused(
            "wrong_issuer",
            format!(
                "the IAM token's iss {} is not this gateway ({})",
                quote(iss),
                quote(own.issuer)
            ),
        ));
    }
    if !claims.aud.as_ref().is_some_and(|aud| {
        aud.values()
            .any(|a| a == own.audience || own.resources.iter().any(|r| r == a))
    }) {
        return Err(refused(
            "audience_mismatch",
            format!(
                "the IAM token's aud does not include this gateway's token audience {}",
                quote(own.audience)
            ),
        ));
    }
    let Some(exp) = claims.exp else {
        return Err(refused("missing_claim", "the IAM token has no exp claim"));
    };
    let sub = claims.sub.as_deref().unwrap_or("");
    if sub.is_empty() {
        return Err(refused("missing_claim", "the IAM token has no sub claim"));
    }
    let expired = now >= exp.0.saturating_add(own.leeway);
    if checks == Checks::All {
        let server = || format!("server time {}, leeway {}s", rfc3339(now), own.leeway);
        if expired {
            return Err(refused(
                "token_expired",
                format!(
                    "the IAM token expired at {} ({}): get a new one",
                    rfc3339(exp.0),
                    server()
                ),
            ));
        }
        if let Some(nbf) = claims.nbf
            && nbf.0 > now.saturating_add(own.leeway)
        {
            return Err(refused(
                "token_not_yet_valid",
                format!(
                    "the IAM token is not valid before {} ({})",
                    rfc3339(nbf.0),
                    server()
                ),
            ));
        }
        if let Some(jti) = claims.jti.as_deref()
            && own.revoked.contains(jti)
        {
            return Err(refused(
                "token_revoked",
                format!(
                    "the IAM token (jti {}) was revoked: get a new one",
                    quote(jti)
                ),
            ));
        }
    }
    // The claims are the answer's: moved, not copied.
    let jwt::Claims {
        iss,
        sub,
        aud,
        iat,
        jti,
        ..
    } = jwt.claims;
    Ok(Verified {
        sub: sub.unwrap_or_default(),
        exp: exp.0,
        iat: iat.map(|iat| iat.0),
        iss: iss.unwrap_or_default(),
        aud: match aud {
            Some(jwt::Audience::One(one)) => vec![one],
            Some(jwt::Audience::Many(many)) => many,
            None => Vec::new(),
        },
        jti,
        client_id: None,
        act: None,
        expired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, header value, the token or the refusal's reason)
    type Case<'a> = (&'a str, Option<&'a [u8]>, Result<&'a str, &'a str>);

    #[test]
    fn the_bearer_header_is_read_or_refused_with_its_reason() {
        let cases: Vec<Case<'_>> = vec![
            ("missing", None, Err("missing_credentials")),
            ("empty", Some(b""), Err("malformed_credentials")),
            (
                "basic",
                Some(b"Basic dXNlcjpwdw=="),
                Err("malformed_credentials"),
            ),
            ("no token", Some(b"Bearer"), Err("malformed_credentials")),
            (
                "blank token",
                Some(b"Bearer   "),
                Err("malformed_credentials"),
            ),
            (
                "not text",
                Some(b"Bearer \xff\xfe"),
                Err("malformed_credentials"),
            ),
            ("bearer", Some(b"Bearer a.b.c"), Ok("a.b.c")),
            ("lowercase scheme", Some(b"bearer a.b.c"), Ok("a.b.c")),
            ("padded", Some(b"  Bearer   a.b.c  "), Ok("a.b.c")),
        ];
        for (name, header, want) in cases {
            let got = bearer(header).map_err(|s| s.reason);
            assert_eq!(got, want, "{name}");
        }
        let basic = bearer(Some(b"Basic secret-material")).unwrap_err();
        assert!(!basic.message.contains("secret"), "{}", basic.message);
        let api_key = bearer(Some(b"Api-Key AQVNsecret")).unwrap_err();
        assert!(
            api_key.message.contains("\"Api-Key\", not Bearer")
                && !api_key.message.contains("AQVN"),
            "management calls take IAM tokens only: {}",
            api_key.message
        );
    }

    #[test]
    fn the_authorize_api_takes_an_iam_token_or_an_api_key() {
        type Case<'a> = (&'a str, Option<&'a [u8]>, Result<Presented<'a>, &'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                "bearer",
                Some(b"Bearer a.b.c"),
                Ok(Presented::IamToken("a.b.c")),
            ),
            (
                "api key",
                Some(b"Api-Key AQVNx"),
                Ok(Presented::ApiKey("AQVNx")),
            ),
            (
                "api key, any case",
                Some(b" api-key   AQVNx "),
                Ok(Presented::ApiKey("AQVNx")),
            ),
            ("missing", None, Err("missing_credentials")),
            ("basic", Some(b"Basic AQVNx"), Err("malformed_credentials")),
            (
                "nothing after",
                Some(b"Api-Key "),
                Err("malformed_credentials"),
            ),
            (
                "not text",
                Some(b"Api-Key \xff"),
                Err("malformed_credentials"),
            ),
        ];
        for (name, header, want) in cases {
            let got = presented(header).map_err(|s| s.reason);
            assert_eq!(got, want, "{name}");
        }
        let refused = presented(Some(b"Basic AQVNsecret")).unwrap_err();
        assert!(!refused.message.contains("AQVN"), "{}", refused.message);
        assert!(
            refused.message.contains("Api-Key <API key>"),
            "{}",
            refused.message
        );
    }

    mod remembered_signatures {
        use super::super::*;
        use crate::exchange::issuer_keys::KeySet;
        use crate::iam::own_keys::Verification;
        use crate::signing::{Minter, SigningAlgorithm, SigningKey};
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;

        const GW: &str = "https://gw.example";
        const NOW: i64 = 1_000_000;
        const LEEWAY: i64 = 60;

        fn key() -> SigningKey {
            SigningKey::generate(SigningAlgorithm::ES256)
                .expect("generate")
                .0
        }

        /// A key and a copy of it.
        fn key_twice() -> (SigningKey, SigningKey) {
            let (key, pem) = SigningKey::generate(SigningAlgorithm::ES256).expect("generate");
            (key, SigningKey::from_pem(&pem).expect("reload"))
        }

        fn minter(active: SigningKey, published: Vec<SigningKey>) -> Minter {
            Minter::new(GW.into(), GW.into(), 3600, active, published)
        }

        fn own_keys(minter: &Minter) -> OwnKeys {
            OwnKeys::from(
                KeySet::from_jwks_json(minter.jwks().to_string().as_bytes()).expect("jwks"),
            )
        }

        fn own<'a>(keys: &'a OwnKeys, revoked: &'a Revoked) -> OwnTokens<'a> {
            OwnTokens {
                keys,
                issuer: GW,
                audience: GW,
                leeway: LEEWAY,
                revoked,
                resources: &[],
            }
        }

        fn reason(result: Result<Verified, Status>) -> &'static str {
            match result {
                Ok(_) => "accepted",
                Err(status) => status.reason,
            }
        }

        /// `token` with its payload's `sub` replaced, the header and signature kept.
        fn with_payload_sub(token: &str, sub: &str) -> String {
            let parts: Vec<&str> = token.split('.').collect();
            let mut claims: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64"))
                    .expect("json");
            claims["sub"] = sub.into();
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            format!("{}.{payload}.{}", parts[0], parts[2])
        }

        /// `token` with one character in the middle of its signature changed.
        fn with_other_signature(token: &str) -> String {
            let (signed, signature) = token.rsplit_once('.').expect("three parts");
            let mut chars: Vec<char> = signature.chars().collect();
            let middle = chars.len() / 2;
            chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
            format!("{signed}.{}", chars.into_iter().collect::<String>())
        }

        #[test]
        fn a_token_verified_once_is_remembered_and_verified_again_otherwise() {
            let minter = minter(key(), vec![]);
            let keys = own_keys(&minter);
            let token = minter
                .mint_for_key("sa1", "key", NOW)
                .expect("mint")
                .access_token;
            let jwt = crate::exchange::jwt::read(&token).expect("read");
            let verify = |token: &str| {
                keys.verify(
                    token,
                    jwt.kid.as_deref(),
                    jwt.alg,
                    jwt.signing_input,
                    &jwt.signature,
                )
                .map_err(|e| e.reason)
            };
            assert_eq!(verify(&token), Ok(Verification::Verified));
            assert_eq!(verify(&token), Ok(Verification::Remembered));
            assert_eq!(keys.remembered(), 1);
            // The same parts under another token string (a byte added) are verified anew: the
            // memory is of whole token strings.
            let other = format!("{token} ");
            assert_eq!(verify(&other), Ok(Verification::Verified));
            // A signature that does not verify is never remembered.
            let mut bad = jwt.signature.clone();
            bad[10] ^= 1;
            let refused = keys.verify(
                "another.token.string",
                jwt.kid.as_deref(),
                jwt.alg,
                jwt.signing_input,
                &bad,
            );
            assert_eq!(
                refused.map_err(|e| e.reason),
                Err(crate::exchange::Reason::BadSignature)
            );
            assert_eq!(keys.remembered(), 2);
        }

        #[test]
        fn every_claim_rule_still_refuses_a_remembered_token() {
            let minter = minter(key(), vec![]);
            let keys = own_keys(&minter);
            let revoked = Revoked::default();
            let own = own(&keys, &revoked);
            let issued = minter.mint_for_key("sa1", "key", NOW).expect("mint");
            let token = issued.access_token.as_str();
            assert_eq!(reason(check(token, &own, NOW, Checks::All)), "accepted");
            assert_eq!(
                reason(check_claims(token, &own, NOW, Checks::All)),
                "accepted"
            );
            assert_eq!(keys.remembered(), 1);

            let expires = NOW + 3600;
            let cases: Vec<(&str, OwnTokens<'_>, i64, &str)> = vec![
                ("within the leeway", own, expires + LEEWAY - 1, "accepted"),
                ("expired", own, expires + LEEWAY, "token_expired"),
                ("long expired", own, expires + 86_400, "token_expired"),
                ("before nbf", own, NOW - LEEWAY - 1, "token_not_yet_valid"),
                (
                    "another issuer",
                    OwnTokens {
                        issuer: "https://other.example",
                        ..own
                    },
                    NOW,
                    "wrong_issuer",
                ),
                (
                    "another audience",
                    OwnTokens {
                        audience: "https://other.example",
                        ..own
                    },
                    NOW,
                    "audience_mismatch",
                ),
            ];
            for (name, own, now, want) in cases {
                assert_eq!(reason(check(token, &own, now, Checks::All)), want, "{name}");
                assert_eq!(
                    reason(check_claims(token, &own, now, Checks::All)),
                    want,
                    "{name}"
                );
            }

            revoked.insert(&issued.jti, expires);
            for result in [
                check(token, &own, NOW, Checks::All),
                check_claims(token, &own, NOW, Checks::All),
            ] {
                let refusal = result.expect_err("revoked");
                assert_eq!(refusal.reason, "token_revoked");
                assert!(!refusal.message.contains(token), "{}", refusal.message);
            }
            // Revocation ends a token for the checks that need it only: revoking it is still
            // possible.
            assert_eq!(
                reason(check(token, &own, NOW, Checks::Authentic)),
                "accepted"
            );
            assert_eq!(keys.remembered(), 1, "refusals by claims change nothing");
        }

        #[test]
        fn a_tampered_token_is_not_remembered_but_refused_for_its_signature() {
            let minter = minter(key(), vec![]);
            let keys = own_keys(&minter);
            let revoked = Revoked::default();
            let own = own(&keys, &revoked);
            let token = minter
                .mint_for_key("sa1", "key", NOW)
                .expect("mint")
                .access_token;
            assert_eq!(reason(check(&token, &own, NOW, Checks::All)), "accepted");

            let other_signature = with_other_signature(&token);
            let other_payload = with_payload_sub(&token, "sa2");
            let same_payload = with_payload_sub(&token, "sa1");
            assert_ne!(other_payload, token);
            assert_ne!(same_payload, token);
            for (name, tampered) in [
                ("another signature", &other_signature),
                ("another sub", &other_payload),
                ("the same claims encoded anew", &same_payload),
            ] {
                for _ in 0..2 {
                    assert_eq!(
                        reason(check(tampered, &own, NOW, Checks::All)),
                        "bad_signature",
                        "{name}"
                    );
                    assert_eq!(
                        reason(check_claims(tampered, &own, NOW, Checks::Authentic)),
                        "bad_signature",
                        "{name}"
                    );
                }
            }
            assert_eq!(keys.remembered(), 1);
            assert_eq!(reason(check(&token, &own, NOW, Checks::All)), "accepted");
        }

        #[test]
        fn a_new_key_set_does_not_use_what_the_old_one_remembered() {
            let (old, new) = (key(), key());
            let before = minter(old, vec![]);
            let keys = own_keys(&before);
            let revoked = Revoked::default();
            let token = before
                .mint_for_key("sa1", "key", NOW)
                .expect("mint")
                .access_token;
            assert_eq!(
                reason(check(&token, &own(&keys, &revoked), NOW, Checks::All)),
                "accepted"
            );

            // The old key retired and no longer published: its tokens are foreign now.
            let after = minter(new, vec![]);
            let rotated = own_keys(&after);
            assert_eq!(rotated.remembered(), 0);
            let refusal = check(&token, &own(&rotated, &revoked), NOW, Checks::All)
                .expect_err("the old key is gone");
            assert_eq!(refusal.reason, "foreign_signer");
            assert_eq!(rotated.remembered(), 0);
        }

        #[test]
        fn a_rotated_key_set_verifies_the_tokens_of_a_published_key_anew() {
            let ((old, old_again), new) = (key_twice(), key());
            let before = minter(old, vec![]);
            let keys = own_keys(&before);
            let token = before
                .mint_for_key("sa1", "key", NOW)
                .expect("mint")
                .access_token;
            let jwt = crate::exchange::jwt::read(&token).expect("read");
            let verify = |keys: &OwnKeys| {
                keys.verify(
                    &token,
                    jwt.kid.as_deref(),
                    jwt.alg,
                    jwt.signing_input,
                    &jwt.signature,
                )
                .map_err(|e| e.reason)
            };
            assert_eq!(verify(&keys), Ok(Verification::Verified));
            assert_eq!(verify(&keys), Ok(Verification::Remembered));
            // The new key active, the old one still published while its tokens live.
            let rotated = own_keys(&minter(new, vec![old_again]));
            assert_eq!(verify(&rotated), Ok(Verification::Verified));
            assert_eq!(verify(&rotated), Ok(Verification::Remembered));
        }
    }
}
