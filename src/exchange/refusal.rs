//! The refusal vocabulary of the exchange: why a token request was refused ([`Reason`], a stable
//! code), in words ([`ExchangeError`]), and how untrusted values are quoted in those words
//! ([`quote`]).
//!
//! A leaf module: every step of the exchange path returns these, and the HTTP layer
//! ([`crate::http::error`]) maps each reason to its RFC 6749 §5.2 `error` and status.

/// Declares [`Reason`] and [`Reason::ALL`] from one list, so that `ALL` is complete by
/// construction.
macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// Why an exchange failed: a stable, machine-readable reason (sent as `error_code`, used in
        /// logs, metrics and audit lines), finer than the RFC's `error`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$doc])* $variant,)*
        }

        impl Reason {
            /// Every reason, in declaration order, for documentation and tests.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];
        }
    };
}

reasons! {
    MalformedRequest,
    MissingParameter,
    RepeatedParameter,
    UnsupportedTokenType,
    UnsupportedGrantType,
    /// The `resource` parameter (RFC 8707 §2) is not an absolute URI without a fragment of at
    /// most 255 characters.
    MalformedResource,
    /// The `resource` parameter is sent more than once: one token names one target.
    SeveralResources,
    /// The `resource` parameter names a target that the configuration does not allow for the
    /// federation that granted the exchange.
    ResourceNotAllowed,
    /// The body is not `application/x-www-form-urlencoded` (RFC 6749 §3.2).
    UnsupportedMediaType,
    /// The body exceeds the token endpoint's cap.
    BodyTooLarge,
    /// Too many requests from the client's address; checked before anything is parsed.
    ClientRateLimited,
    /// Too many exchanges for one (issuer, subject); checked only once the signature verified.
    SubjectRateLimited,
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
    /// The subject is bound to the account, but the account is suspended: no token for it by
    /// any route until it is reactivated.
    ServiceAccountSuspended,
    IssuerUnavailable,
    IssuerKeysInvalid,
    /// The gateway could not sign the access token with its own key: a server fault, never the
    /// caller's or the issuer's.
    SigningFailed,
}

impl Reason {
    /// Whether a refusal for this reason comes after the caller's signature verified (see the
    /// order in [`super::authorize::authorize`]): then the token's claims in the audit log are
    /// authentic.
    pub fn after_verification(self) -> bool {
        use Reason::*;
        matches!(
            self,
            Expired
                | NotYetValid
                | IssuedInFuture
                | AudienceMismatch
                | LifetimeTooLong
                | UnknownServiceAccount
                | NoBinding
                | ServiceAccountSuspended
                | ResourceNotAllowed
                | SubjectRateLimited
                | SigningFailed
        )
    }

    /// The `error_code` sent to the caller. Both rate limits answer `rate_limited`.
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            MalformedRequest => "malformed_request",
            MissingParameter => "missing_parameter",
            RepeatedParameter => "repeated_parameter",
            UnsupportedTokenType => "unsupported_token_type",
            UnsupportedGrantType => "unsupported_grant_type",
            MalformedResource => "malformed_resource",
            SeveralResources => "several_resources",
            ResourceNotAllowed => "resource_not_allowed",
            UnsupportedMediaType => "unsupported_media_type",
            BodyTooLarge => "body_too_large",
            ClientRateLimited | SubjectRateLimited => "rate_limited",
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
            ServiceAccountSuspended => "service_account_suspended",
            IssuerUnavailable => "issuer_unavailable",
            IssuerKeysInvalid => "issuer_keys_invalid",
            SigningFailed => "signing_failed",
        }
    }
}

/// A refused exchange: the reason, a description naming the failing rule and the presented
/// values, the federation the refusal concerns when one is known, and how long to wait before a
/// retry can succeed. Descriptions never contain a token, key or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", reason.as_str())]
pub struct ExchangeError {
    pub reason: Reason,
    pub description: String,
    /// The federation whose rule refused the token (the first, if several were tried).
    pub federation_id: Option<String>,
    /// Seconds after which the same request may succeed (rate limits, issuer outages).
    pub retry_after: Option<u64>,
}

impl ExchangeError {
    pub fn new(reason: Reason, description: String) -> Self {
        ExchangeError {
            reason,
            description,
            federation_id: None,
            retry_after: None,
        }
    }

    /// Names the federation the refusal concerns, unless one is named already.
    #[must_use]
    pub fn in_federation(mut self, federation_id: &str) -> Self {
        if self.federation_id.is_none() {
            self.federation_id = Some(federation_id.to_owned());
        }
        self
    }

    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// Quotes an untrusted value (from a token, a form or a header) for an error message: JSON-style
/// escaping, at most 200 characters, so a message can neither be forged with control characters
/// nor grow unbounded.
pub fn quote(value: &str) -> String {
    const MAX: usize = 200;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let cut: String = value.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_distinct_but_for_the_rate_limits() {
        for (i, a) in Reason::ALL.iter().enumerate() {
            for b in &Reason::ALL[..i] {
                let shared = [a, b]
                    .iter()
                    .all(|r| matches!(r, Reason::ClientRateLimited | Reason::SubjectRateLimited));
                assert!(
                    a.as_str() != b.as_str() || shared,
                    "{a:?} and {b:?} both answer {}",
                    a.as_str()
                );
            }
        }
    }

    #[test]
    fn quoting_escapes_and_caps() {
        assert_eq!(quote("a\nb\u{1b}"), r#""a\nb\u{1b}""#);
        let long = "x".repeat(500);
        let q = quote(&long);
        assert_eq!(
            q.chars().count(),
            203,
            "200 characters, two quotes and an ellipsis"
        );
        assert!(q.ends_with('…'));
    }
}
