//! What the routes of the Yandex-compatible IAM API ([`super::iam_tokens`],
//! [`super::iam_keys`]) share: the Yandex error body (`google.rpc.Status` as JSON:
//! `{"code","message","details":[]}`, with the HTTP status of its code), reading a JSON body,
//! the one authentication of management calls ([`Call::authenticate`]), and the one place a
//! call becomes a metric, an audit line (for mutations) and a debug log line
//! ([`Call::finish`]).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::handler::Handler;
use axum::http::{self, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::IntoResponses;

use super::error::no_store;
use super::request_id::RequestId;
use super::token::read_body;
use crate::app::AppState;
use crate::audit::{Audit, ManagementEvent};

use crate::iam::authn::{self, OwnTokens, Principal};
use crate::iam::federations_api::ListPage;
use crate::iam::service::Method;
use crate::iam::status::{Code, Status, StatusBody};
use crate::iam::store::Store;
use crate::telemetry;

/// The HTTP status of a gRPC code (the Yandex API gateway's mapping).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// The Yandex error answer of `status`, with `Cache-Control: no-store`.
pub fn error_response(status: &Status) -> Response {
    let mut response = (http_status(status.code), Json(status.to_body())).into_response();
    no_store(&mut response);
    if status.code == Code::Unavailable {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A 200 JSON answer with `Cache-Control: no-store` (answers may hold a token or a key).
pub fn ok(body: impl Serialize) -> Response {
    let mut response = Json(body).into_response();
    no_store(&mut response);
    response
}

/// `405` for a known path with another method; `Allow` lists the methods it has.
pub fn method_not_allowed(allow: &str) -> Response {
    let mut response = error_response(&Status::new(
        Code::Unimplemented,
        "method_not_allowed",
        format!("this path accepts only {allow}"),
    ));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    if let Ok(allow) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// The refusals every IAM method may answer with: the Yandex error body, its HTTP status
/// following its gRPC code.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Refusals {
    /// INVALID_ARGUMENT (3) or FAILED_PRECONDITION (9): the body or a field breaks a rule.
    #[response(status = 400)]
    BadRequest(StatusBody),
    /// UNAUTHENTICATED (16): no valid IAM token (or, at `/iam/v1/tokens`, the JWT is refused).
    #[response(status = 401)]
    Unauthenticated(StatusBody),
    /// PERMISSION_DENIED (7): the caller lacks a permission on the resource.
    #[response(status = 403)]
    PermissionDenied(StatusBody),
    /// NOT_FOUND (5): no such resource, or no such method.
    #[response(status = 404)]
    NotFound(StatusBody),
    /// ALREADY_EXISTS (6) or ABORTED (10): a name is taken, or the resource changed meanwhile.
    #[response(status = 409)]
    Conflict(StatusBody),
    /// RESOURCE_EXHAUSTED (8): a quota or the client's rate limit; `Retry-After` says when.
    #[response(status = 429)]
    ResourceExhausted(StatusBody),
    /// UNAVAILABLE (14): the IAM database is down; retry after `Retry-After`.
    #[response(status = 503)]
    Unavailable(StatusBody),
}

/// One path of the IAM API and the HTTP methods it serves. The IAM routes are built from
/// these alone ([`Endpoint::route`]), and [`Endpoint::operations`] lists what each serves:
/// the OpenAPI document ([`super::openapi`]) is tested against that list, so a route cannot
/// be served without being documented. Another method on the path is 405 with `Allow`.
pub struct Endpoint {
    path: &'static str,
    methods: Vec<(http::Method, MethodRouter<AppState>)>,
    /// The resource at this `/{id}` path has access bindings: `{id}:listAccessBindings` is
    /// served by its `GET` handler ([`super::iam_bindings::read_or`]), the two other verbs by
    /// the `POST` [`Endpoint::access_bindings`] adds.
    access_bindings: bool,
}

impl Endpoint {
    /// The path, as routed.
    pub fn path(&self) -> &'static str {
        self.path
    }

    pub fn at(path: &'static str) -> Endpoint {
        Endpoint {
            path,
            methods: Vec::new(),
            access_bindings: false,
        }
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, handler: H) -> Endpoint {
        self.on(http::Method::GET, routing::get(handler))
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, handler: H) -> Endpoint {
        self.on(http::Method::POST, routing::post(handler))
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, handler: H) -> Endpoint {
        self.on(http::Method::PATCH, routing::patch(handler))
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, handler: H) -> Endpoint {
        self.on(http::Method::DELETE, routing::delete(handler))
    }

    /// `POST {id}:setAccessBindings` and `POST {id}:updateAccessBindings` of the resource at
    /// this path, served by `handler` ([`super::iam_bindings::verb_only`]).
    pub fn access_bindings<H: Handler<T, AppState>, T: 'static>(mut self, handler: H) -> Endpoint {
        self.access_bindings = true;
        self.on(http::Method::POST, routing::post(handler))
    }

    fn on(mut self, method: http::Method, router: MethodRouter<AppState>) -> Endpoint {
        self.methods.push((method, router));
        self
    }

    /// The (method, path) pairs this endpoint serves, access-binding verbs included, with the
    /// path in its OpenAPI form (`/iam/v1/keys/{keyId}`).
    pub fn operations(&self) -> Vec<(http::Method, String)> {
        let mut operations: Vec<(http::Method, String)> = self
            .methods
            .iter()
            .filter(|(method, _)| !(self.access_bindings && method == http::Method::POST))
            .map(|(method, _)| (method.clone(), self.path.to_owned()))
            .collect();
        if self.access_bindings {
            for (method, verb) in ACCESS_BINDING_VERBS {
                operations.push((method, format!("{}:{verb}", self.path)));
            }
        }
        operations
    }

    /// Adds this endpoint's route to `router`.
    pub fn route(self, router: Router<AppState>) -> Router<AppState> {
        let allow = self
            .methods
            .iter()
            .map(|(method, _)| method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let methods = self
            .methods
            .into_iter()
            .fold(MethodRouter::new(), |all, (_, one)| all.merge(one))
            .fallback(move || {
                let allow = allow.clone();
                async move { method_not_allowed(&allow) }
            });
        router.route(self.path, methods)
    }
}

/// The access-binding verbs a bindable resource's `/{id}` path serves, with their methods.
pub const ACCESS_BINDING_VERBS: [(http::Method, &str); 3] = [
    (http::Method::GET, "listAccessBindings"),
    (http::Method::POST, "setAccessBindings"),
    (http::Method::POST, "updateAccessBindings"),
];

/// Any other path under `/iam/`: no such method.
pub async fn unknown_method() -> Response {
    error_response(&Status::not_found("no such IAM API method"))
}

/// Every path under `/iam/` when the gateway has no store.
pub async fn no_store_configured() -> Response {
    error_response(&Status::new(
        Code::Unimplemented,
        "no_store",
        "the IAM API is off: this gateway has no [store] in its configuration",
    ))
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
    /// Starts the record of a call to `method` from `request`'s id and client address.
    pub fn new(state: &AppState, request: &Request, method: Method) -> Call {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
        let forwarded_for = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let client = state.limits().client_ip(peer, forwarded_for);
        Call {
            method,
            audit: state.audit().clone(),
            request_id: request
                .extensions()
                .get::<RequestId>()
                .map_or_else(String::new, |r| r.0.clone()),
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
    /// `headers`, verified with the gateway's own keys and checked against the store
    /// ([`crate::iam::authn`]).
    pub async fn authenticate(
        &mut self,
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<Principal, Status> {
        let live = live(state)?;
        let snapshot = state.snapshot();
        let keys = state.own_keys(&snapshot.minter);
        let own = OwnTokens::management(&snapshot, &keys, live);
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
        let own = OwnTokens::management(&snapshot, &keys, live);
        authn::verify(token, &own, live.store(), crate::time::now_unix(), checks).await
    }

    /// Ends the call: counts it, audits it if it is a mutation, and answers `result` (or its
    /// error as a Yandex error body).
    pub fn finish(self, result: Result<Response, Status>) -> Response {
        let status = result.as_ref().err();
        let code = status.map_or(Code::Ok, |s| s.code);
        metrics::counter!(telemetry::IAM_REQUESTS, "method" => self.method.name(), "code" => code.as_str()).increment(1);
        if let Some(s) = status {
            tracing::debug!(method = self.method.name(), code = code.as_str(), error_code = s.reason, description = %s.message, "IAM call refused");
        }
        if self.method.is_mutation() {
            self.audit(status, code);
        }
        match result {
            Ok(response) => response,
            Err(status) => error_response(&status),
        }
    }
}

impl Call {
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

/// The store, which every IAM route needs (they are mounted only with one).
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

/// Reads a JSON object body of at most 64 KiB into `T`; anything else is INVALID_ARGUMENT.
pub async fn json_body<T: DeserializeOwned>(request: Request, what: &str) -> Result<T, Status> {
    let bytes = read_body(request.into_body())
        .await
        .map_err(|e| Status::invalid_argument("malformed_request", e.description))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let detail: String = e.to_string().chars().take(300).collect();
        Status::invalid_argument(
            "malformed_request",
            format!("the body is not a valid {what} JSON object: {detail}"),
        )
    })
}

/// The query of a list call: the id named by one of `id_names` (camelCase, snake_case) and
/// the page.
pub fn list_query(request: &Request, id_names: [&str; 2]) -> Result<(String, ListPage), Status> {
    let mut id = String::new();
    let mut page = ListPage::default();
    for (name, value) in form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            n if id_names.contains(&n) => id = value.into_owned(),
            "pageSize" | "page_size" => {
                page.size = value.parse::<i64>().map_err(|_| {
                    Status::invalid_argument(
                        "invalid_argument",
                        "pageSize must be a number from 0 to 1000",
                    )
                })?;
            }
            "pageToken" | "page_token" => page.token = value.into_owned(),
            _ => {}
        }
    }
    Ok((id, page))
}
