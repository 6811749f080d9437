//! One IAM API call in progress, whatever its transport: the REST routes
//! ([`crate::http::yandex`]) and the gRPC services ([`crate::grpc`]) both start a [`Call`] from
//! the request's id, client address and headers, authenticate it the one way
//! ([`Call::authenticate`]), hand it to the transport-neutral methods of [`crate::iam`], and end
//! it with [`Call::finish`]: the one place a call becomes a metric
//! (`wif_gateway_iam_requests_total{method, code}`), an audit line (for mutations) and a debug
//! log line. The transports only translate the request and the answer.
//!
//! Also here: the request id both transports tag requests with ([`RequestId`]), and what a
//! management method runs with ([`context`], [`live`], [`store`], [`keys`], [`access_keys`],
//! [`api_keys`],
//! [`federations`]).

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderValue, header};

use super::AppState;
use crate::audit::{Audit, ManagementEvent};
use crate::iam::authn::{self, Principal};
use crate::iam::service::Method;
use crate::iam::status::{Code, Status};
use crate::iam::store::Store;
use crate::telemetry;

/// The request's id: the caller's `X-Request-Id` when it is a sane token (1–128 visible ASCII
/// characters), otherwise a new one ([`new_request_id`]). Returned in `X-Request-Id`, put in logs and audit.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The header (and gRPC metadata key) that carries the request id.
pub const REQUEST_ID: &str = "x-request-id";

impl RequestId {
    /// The id of a request with `headers`: the caller's when sane, else a new one.
    pub fn of(headers: &HeaderMap) -> RequestId {
        let given = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        RequestId(given.unwrap_or_else(new_request_id))
    }
}

/// A new request id: 32 lowercase hex digits, a random half drawn once per process and a
/// counter, so ids are unique across replicas and restarts without a random draw per request
/// (they name requests; they are not secrets).
fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<[u8; 8]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut raw = [0u8; 8];
        let _ = aws_lc_rs::rand::fill(&mut raw);
        raw
    });
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(prefix);
    raw[8..].copy_from_slice(&count.to_be_bytes());
    crate::signing::hex(&raw)
}

/// One IAM API call in progress: who asked, what for, and what it turned out to concern.
pub struct Call {
    pub method: Method,
    audit: Audit,
    request_id: String,
    client: String,
    /// The authenticated caller, once known.
    pub principal: Option<String>,
    /// What the call acts on (`kind:id`), once known.
    pub resource: Option<String>,
    /// `IamTokenService/Create`: whether the JWT's signature verified.
    pub verified: Option<bool>,
    /// `IamTokenService/Create`: the issued token's SHA-256 and `jti`.
    pub token: Option<(String, String)>,
}

impl Call {
    /// Starts the record of a call to `method` from the connection's `peer`, the request's
    /// `headers` (`X-Forwarded-For` through trusted proxies) and its `request_id`.
    pub fn new(
        state: &AppState,
        method: Method,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        request_id: Option<&RequestId>,
    ) -> Call {
        let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |addr| addr.ip());
        let forwarded_for = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let client = state.limits().client_ip(peer, forwarded_for);
        Call {
            method,
            audit: state.audit().clone(),
            request_id: request_id.map_or_else(String::new, |r| r.0.clone()),
            client: client.to_string(),
            principal: None,
            resource: None,
            verified: None,
            token: None,
        }
    }

    /// The request id the call is logged and audited under.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The client's address as audited.
    pub fn client(&self) -> &str {
        &self.client
    }

    /// The client's address (the peer, or from `X-Forwarded-For` through trusted proxies).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client.parse().ok()
    }

    /// The one authentication of management calls: the `Authorization: Bearer` IAM token of
    /// `headers` (over gRPC, the `authorization` metadata), verified with the gateway's own
    /// keys and checked against the store ([`crate::iam::authn`]).
    pub async fn authenticate(
        &mut self,
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Principal, Status> {
        let live = live(state)?;
        let snapshot = state.snapshot();
        let keys = state.own_keys(&snapshot.minter);
        let own = snapshot.management_tokens(&keys, live);
        let authorization = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        let principal =
            authn::authenticate(authorization, &own, live.store(), crate::time::now_unix()).await?;
        self.principal = Some(principal.service_account_id.clone());
        Ok(principal)
    }

    /// Checks a token given by value (not the caller's) as a token of this gateway, as far as
    /// `checks` says ([`authn::verify`]).
    pub async fn verify_token(
        &self,
        state: &AppState,
        token: &str,
        checks: authn::Checks,
    ) -> Result<(authn::Verified, Option<Principal>), Status> {
        let live = live(state)?;
        let snapshot = state.snapshot();
        let keys = state.own_keys(&snapshot.minter);
        let own = snapshot.management_tokens(&keys, live);
        authn::verify(token, &own, live.store(), crate::time::now_unix(), checks).await
    }

    /// Ends the call: counts it, audits it if it is a mutation, and hands `result` back for
    /// the transport to answer.
    pub fn finish<T>(self, result: Result<T, Status>) -> Result<T, Status> {
        let status = result.as_ref().err();
        let code = status.map_or(Code::Ok, |s| s.code);
        metrics::counter!(telemetry::IAM_REQUESTS, "method" => self.method.name(), "code" => code.as_str()).increment(1);
        if let Some(s) = status {
            tracing::debug!(method = self.method.name(), code = code.as_str(), error_code = s.reason, description = %s.message, "IAM call refused");
        }
        if self.method.is_mutation() {
            self.audit(status, code);
        }
        result
    }

    /// The audit line of a finished mutation.
    fn audit(&self, status: Option<&Status>, code: Code) {
        self.audit.record(
            "management",
            ManagementEvent {
                request_id: &self.request_id,
                client: &self.client,
                method: self.method.name(),
                principal: self.principal.as_deref(),
                resource: self.resource.as_deref(),
                decision: if status.is_none() { "allow" } else { "deny" },
                code: code.as_str(),
                error_code: status.map(|s| s.reason),
                description: status.map(|s| s.message.as_str()),
                verified: self.verified,
                token_sha256: self.token.as_ref().map(|(hash, _)| hash.as_str()),
                token_jti: self.token.as_ref().map(|(_, jti)| jti.as_str()),
            },
        );
    }
}

/// The store, which every IAM method needs (the API is served only with one).
pub fn store(state: &AppState) -> Result<&Store, Status> {
    state.store().ok_or_else(|| {
        Status::new(
            Code::Unimplemented,
            "no_store",
            "the IAM API is off: this gateway has no [store] in its configuration",
        )
    })
}

/// The followed IAM store, or UNIMPLEMENTED when the gateway has none.
pub fn live(state: &AppState) -> Result<&crate::iam::live::Live, Status> {
    store(state)?;
    state
        .live()
        .ok_or_else(|| Status::internal(&"the IAM store is not followed"))
}

/// What a management call runs with: the followed store, the authorizer, the time now.
pub fn context(state: &AppState) -> Result<crate::iam::service::Context<'_>, Status> {
    Ok(crate::iam::service::Context {
        live: live(state)?,
        authorizer: state.authorizer(),
        quotas: &state.settings().iam.quotas,
        now: crate::time::now_unix(),
    })
}

/// `KeyService` as a call runs it.
pub fn keys(state: &AppState) -> Result<crate::iam::service::Keys<'_>, Status> {
    Ok(crate::iam::service::Keys {
        store: store(state)?,
        authorizer: state.authorizer(),
        quotas: &state.settings().iam.quotas,
        now: crate::time::now_unix(),
    })
}

/// `AccessKeyService` as a call runs it.
pub fn access_keys(state: &AppState) -> Result<crate::iam::access_keys::AccessKeys<'_>, Status> {
    Ok(crate::iam::access_keys::AccessKeys {
        ctx: context(state)?,
        secret_keys: state.secret_keys(),
    })
}

/// `ApiKeyService` as a call runs it, with the API-key scopes in force.
pub fn api_keys(state: &AppState) -> Result<crate::iam::api_keys::ApiKeys<'_>, Status> {
    Ok(crate::iam::api_keys::ApiKeys {
        ctx: context(state)?,
        catalog: state.snapshot().catalog.clone(),
    })
}

/// `FederationService` and `FederatedCredentialService` as a call runs them.
pub fn federations(
    state: &AppState,
) -> Result<crate::iam::federations_api::Federations<'_>, Status> {
    Ok(crate::iam::federations_api::Federations {
        ctx: context(state)?,
        allow_http_to_loopback: state.settings().iam.allow_http_to_loopback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_the_callers_when_sane_and_new_otherwise() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(RequestId::of(&headers).0, "abc-123");
        for bad in ["", "has space", &"x".repeat(129)] {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            let id = RequestId::of(&headers).0;
            assert_eq!(id.len(), 32, "{bad:?} → {id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        assert_ne!(
            RequestId::of(&HeaderMap::new()).0,
            RequestId::of(&HeaderMap::new()).0
        );
    }
}
