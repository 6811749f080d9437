//! What the routes of the Yandex-compatible IAM API ([`super::iam_tokens`],
//! [`super::iam_keys`]) share: the Yandex error body (`google.rpc.Status` as JSON:
//! `{"code","message","details":[]}`, with the HTTP status of its code), reading a JSON body,
//! and the REST side of the call record ([`start`], [`finish`]): a [`Call`]
//! ([`crate::app::call`]) is the one authentication of management calls and the one place a
//! call becomes a metric, an audit line (for mutations) and a debug log line, whatever the
//! transport.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::handler::Handler;
use axum::http::{self, HeaderValue, StatusCode, header};
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
pub use crate::app::call::{Call, context, live, store};
use crate::iam::federations_api::ListPage;
use crate::iam::service::Method;
use crate::iam::status::{Code, Status, StatusBody};

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
    /// Other `{id}:{verb}` operations served at this path ([`Endpoint::verb`]).
    verbs: Vec<(http::Method, &'static str)>,
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
            verbs: Vec::new(),
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

    /// Documents `{id}:{verb}` with `method` as one more operation of this path: the handler
    /// that serves it is the one [`Endpoint::access_bindings`] (POST) or the `GET` handler
    /// routes `{id}:…` segments to.
    pub fn verb(mut self, method: http::Method, verb: &'static str) -> Endpoint {
        self.verbs.push((method, verb));
        self
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
        for (method, verb) in &self.verbs {
            operations.push((method.clone(), format!("{}:{verb}", self.path)));
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

/// Starts the record of a REST call to `method` from `request`'s id and client address.
pub fn start(state: &AppState, request: &Request, method: Method) -> Call {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    Call::new(
        state,
        method,
        peer,
        request.headers(),
        request.extensions().get::<RequestId>(),
    )
}

/// Ends a REST call ([`Call::finish`]: metrics, audit) and answers `result`, or its error as
/// a Yandex error body.
pub fn finish(call: Call, result: Result<Response, Status>) -> Response {
    match call.finish(result) {
        Ok(response) => response,
        Err(status) => error_response(&status),
    }
}

/// INVALID_ARGUMENT when a body names, in its field `field`, another resource than the path's
/// `id` (an absent or empty field names none).
pub fn same_id(named: Option<&str>, id: &str, field: &str) -> Result<(), Status> {
    match named {
        Some(named) if !named.is_empty() && named != id => Err(Status::invalid_argument(
            "invalid_argument",
            format!("{field} in the body differs from the one in the path"),
        )),
        _ => Ok(()),
    }
}

/// Reads a JSON object body of at most 64 KiB into `T`; anything else is INVALID_ARGUMENT.
pub async fn json_body<T: DeserializeOwned>(request: Request, what: &str) -> Result<T, Status> {
    let bytes = read_body(request.into_body())
        .await
        .map_err(|e| Status::invalid_argument("malformed_request", e.description))?;
    parse_json(&bytes, what)
}

/// [`json_body`] of a request whose body may also be absent or blank: then `T::default()`.
pub async fn optional_json_body<T: DeserializeOwned + Default>(
    request: Request,
    what: &str,
) -> Result<T, Status> {
    let bytes = read_body(request.into_body())
        .await
        .map_err(|e| Status::invalid_argument("malformed_request", e.description))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(&bytes, what)
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Status> {
    serde_json::from_slice(bytes).map_err(|e| {
        let detail: String = without_strings(&e.to_string()).chars().take(300).collect();
        Status::invalid_argument(
            "malformed_request",
            format!("the body is not a valid {what} JSON object: {detail}"),
        )
    })
}

/// serde's error text without the string values it quotes (`invalid type: string "…"`), so
/// that a token or an API key sent in the wrong place is not repeated; field names, which it
/// quotes with backticks, stay.
fn without_strings(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len());
    let (mut inside, mut escaped) = (false, false);
    for c in detail.chars() {
        if inside {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    inside = false;
                    out.push_str("…\"");
                }
                _ => {}
            }
        } else {
            inside = c == '"';
            out.push(c);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors_keep_field_names_and_drop_string_values() {
        let cases = [
            (
                r#"invalid type: string "AQVNsecret", expected a sequence at line 1 column 30"#,
                r#"invalid type: string "…", expected a sequence at line 1 column 30"#,
            ),
            (
                r#"invalid type: string "a\"b\\", expected u32"#,
                r#"invalid type: string "…", expected u32"#,
            ),
            (
                "unknown field `apiKeys`, expected one of `permission`, `apiKey`",
                "unknown field `apiKeys`, expected one of `permission`, `apiKey`",
            ),
            ("EOF while parsing a string", "EOF while parsing a string"),
        ];
        for (detail, shown) in cases {
            assert_eq!(without_strings(detail), shown);
        }
    }
}
