//! `POST /iam/v1/authorize` (`AccessService.Authorize`): resource services (a Lockbox-like
//! secret store, an S3-compatible object store) ask whether the subject of a credential holds a
//! permission on a resource, in batches. Each check names a permission (configured,
//! `lockbox.secrets.getPayload`, or built in), a resource path from the resource up, and
//! exactly one credential the resource service received, as Yandex's `AccessService` has one
//! `identity` per check:
//!
//! - `iamToken`: an IAM token of this gateway;
//! - `apiKey`: an API key's secret ([`crate::iam::api_keys::check`]);
//! - `signature`: an AWS Signature Version 4 signature made with a static access key, either
//!   as the signed request itself (`{"request": {"method","path","query","headers",
//!   "payloadHash"}}`, which the gateway canonicalizes) or as Yandex's `AccessKeySignature`
//!   (`{"accessKeyId","stringToSign","signature","v4Parameters":{"signedAt","service",
//!   "region"}}`, for a service that canonicalizes itself). The service never sees the secret:
//!   the gateway opens it from its sealed form and verifies ([`crate::iam::sigv4`],
//!   [`crate::iam::access_keys::verify`]); the subject is the key's service account.
//!
//! The answer holds one result per check, in order: the subject and `"allowed": true`, or a
//! Yandex error `{"code","message"}` — 16 UNAUTHENTICATED for a refused token, key or
//! signature (the message names the rule), 7 PERMISSION_DENIED (an API key used outside its
//! scopes included), 3 INVALID_ARGUMENT for an unknown permission or a path that cannot be
//! walked.
//!
//! The resource service itself authenticates with its own IAM token (`Authorization:
//! Bearer`) or API key (`Authorization: Api-Key`, which its scopes must allow
//! `iam.accessService.authorize`), and its service account must hold
//! `iam.accessService.authorize` (role `iam.accessService.authorizer`) where each check's walk
//! starts, or above it ([`crate::iam::authz::AuthzIndex::check_path`]). Everything is answered
//! from memory — the gateway's keys, the store's service accounts and API keys as followed, the
//! authorization index — so a database outage never stops it; one batch is answered under one
//! read lock of the index. An API key is never repeated in an answer, a log or the audit log.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::yandex::{Call, Endpoint, Refusals, finish, json_body, ok, start};
use crate::app::AppState;
use crate::audit::AuthorizeDeniedEvent;
use crate::iam::access_keys;
use crate::iam::api_keys;
use crate::iam::authn::{self, OwnTokens, Presented};
use crate::iam::authz::{PathElement, Principal};
use crate::iam::live::Live;
use crate::iam::roles::Permission;
use crate::iam::service::Method;
use crate::iam::sigv4::{self, HttpRequest, Signed};
use crate::iam::status::{Code, Status};
use crate::iam::store::UsedBy;
use crate::telemetry;
use crate::time::now_unix;

/// Most checks one request may hold (the 64 KiB body cap holds about 60 with real tokens).
pub const MAX_CHECKS: usize = 100;
/// Most elements of one resource path.
pub const MAX_PATH: usize = 16;
/// Longest permission name and path element id or type.
pub const MAX_NAME_CHARS: usize = 128;
/// Most headers of a signed request.
pub const MAX_HEADERS: usize = 100;
/// Longest text field of a signature (a path, a query, a header value, a string to sign).
pub const MAX_SIGNED_TEXT: usize = 8192;

pub fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::at("/iam/v1/authorize").post(authorize)]
}

/// `AuthorizeRequest`: 1 to 100 checks.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AuthorizeRequest {
    checks: Vec<AuthorizeCheck>,
}

/// One check: may the subject of the credential (`iamToken`, `apiKey` or `signature`, exactly
/// one) use
/// `permission` on the resource of `resourcePath`?
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AuthorizeCheck {
    /// A permission name: configured (`lockbox.secrets.getPayload`) or built in.
    permission: String,
    /// The resource and its parents, from the resource up: the resource itself may be
    /// unknown to the gateway (a secret); its folder, cloud or organization are looked up.
    resource_path: Vec<PathEntry>,
    /// The IAM token the resource service was called with (`Authorization: Bearer`).
    #[serde(default)]
    iam_token: Option<String>,
    /// The API key the resource service was called with (`Authorization: Api-Key`).
    #[serde(default)]
    api_key: Option<String>,
    /// The AWS Signature Version 4 signature the resource service was called with.
    #[serde(default)]
    signature: Option<SignatureCredential>,
}

/// An AWS Signature Version 4 signature made with a static access key: `request` alone (the
/// gateway canonicalizes it), or `accessKeyId`, `stringToSign`, `signature` and `v4Parameters`
/// (Yandex's `AccessKeySignature`: the service canonicalized it).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SignatureCredential {
    request: Option<SignedRequest>,
    /// The access key id (`YC…`) the signature names.
    access_key_id: Option<String>,
    /// The string to sign, four lines joined by `\n`.
    string_to_sign: Option<String>,
    /// The signature, 64 hex digits.
    signature: Option<String>,
    v4_parameters: Option<V4Parameters>,
}

/// The request a resource service received, as it received it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SignedRequest {
    /// `GET`, `PUT`, …
    method: String,
    /// The path as received, percent-encoding and all (`/bucket/my%20key`).
    path: String,
    /// The query string as received, without `?`.
    #[serde(default)]
    query: String,
    /// Every header as received, in order (a name may repeat): `Authorization`, `Host`,
    /// `X-Amz-Date`, … A presigned URL's signature is in `query` instead.
    headers: Vec<HeaderEntry>,
    /// SHA-256 of the body as received, lowercase hex, or `UNSIGNED-PAYLOAD` when the request
    /// says its body is not signed.
    payload_hash: String,
}

/// One header of a signed request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct HeaderEntry {
    name: String,
    value: String,
}

/// `AccessKeySignature.Version4Parameters`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct V4Parameters {
    /// When the request was signed (RFC 3339): the string to sign's date.
    signed_at: String,
    service: String,
    region: String,
}

/// The credential forms a check may carry, as the refusal of a check with none or several
/// names them.
const IDENTITIES: &str = "iamToken, apiKey, signature";

/// The credential of one check (Yandex's `oneof identity`).
#[derive(Clone, Copy)]
enum Identity<'a> {
    IamToken(&'a str),
    ApiKey(&'a str),
    Signature(&'a SignatureCredential),
}

impl AuthorizeCheck {
    /// The one credential the check carries (an empty value counts as none); `None` when it
    /// carries none or several.
    fn identity(&self) -> Option<Identity<'_>> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let mut forms = [
            given(&self.iam_token).map(Identity::IamToken),
            given(&self.api_key).map(Identity::ApiKey),
            self.signature.as_ref().map(Identity::Signature),
        ]
        .into_iter()
        .flatten();
        match (forms.next(), forms.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }
}

/// Whether the signature of check `i` has one of its two shapes, within the size limits.
fn check_signature(i: usize, signature: &SignatureCredential) -> Result<(), Status> {
    let bad =
        |what: &str| Status::invalid_argument("invalid_argument", format!("checks[{i}]: {what}"));
    let too_long = |s: &str| s.chars().count() > MAX_SIGNED_TEXT;
    let yandex = [
        signature.access_key_id.is_some(),
        signature.string_to_sign.is_some(),
        signature.signature.is_some(),
        signature.v4_parameters.is_some(),
    ];
    match &signature.request {
        Some(request) if yandex.iter().all(|set| !set) => {
            if request.headers.len() > MAX_HEADERS
                || [
                    &request.method,
                    &request.path,
                    &request.query,
                    &request.payload_hash,
                ]
                .iter()
                .any(|s| too_long(s))
                || request
                    .headers
                    .iter()
                    .any(|h| h.name.chars().count() > MAX_NAME_CHARS || too_long(&h.value))
            {
                return Err(bad(&format!(
                    "signature.request holds at most {MAX_HEADERS} headers, names of at most {MAX_NAME_CHARS} characters and texts of at most {MAX_SIGNED_TEXT}"
                )));
            }
            Ok(())
        }
        None if yandex.iter().all(|set| *set) => {
            let texts = [
                signature.access_key_id.as_deref().unwrap_or(""),
                signature.string_to_sign.as_deref().unwrap_or(""),
                signature.signature.as_deref().unwrap_or(""),
            ];
            if texts.iter().any(|s| too_long(s)) {
                return Err(bad(&format!(
                    "signature texts hold at most {MAX_SIGNED_TEXT} characters"
                )));
            }
            Ok(())
        }
        _ => Err(bad(
            "signature is either {\"request\"} or {\"accessKeyId\", \"stringToSign\", \"signature\", \"v4Parameters\"}",
        )),
    }
}

/// The signature of a check, read: from the signed request, or from Yandex's fields.
fn read_signature(signature: &SignatureCredential) -> Result<Signed, Status> {
    let refused = |r: sigv4::Refusal| access_keys::refused(&r);
    if let Some(request) = &signature.request {
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return Signed::from_request(&HttpRequest {
            method: &request.method,
            path: &request.path,
            query: &request.query,
            headers: &headers,
            payload_hash: &request.payload_hash,
        })
        .map_err(refused);
    }
    let v4 = signature.v4_parameters.as_ref();
    let signed_at = v4
        .and_then(|v4| crate::time::parse_rfc3339(&v4.signed_at))
        .ok_or_else(|| {
            refused(sigv4::Refusal::Malformed(
                "v4Parameters.signedAt is not an RFC 3339 time".into(),
            ))
        })?;
    Signed::from_string_to_sign(
        signature.access_key_id.as_deref().unwrap_or(""),
        signature.string_to_sign.as_deref().unwrap_or(""),
        signature.signature.as_deref().unwrap_or(""),
        signed_at,
        v4.map_or("", |v4| v4.region.as_str()),
        v4.map_or("", |v4| v4.service.as_str()),
    )
    .map_err(refused)
}

/// One element of a resource path.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PathEntry {
    id: String,
    /// `lockbox.secret`, `resource-manager.folder`, `resource-manager.cloud`,
    /// `organization-manager.organization`, `iam.serviceAccount`, …
    #[serde(rename = "type")]
    resource_type: String,
}

/// `AuthorizeResponse`: one result per check, in the order of the checks.
#[derive(Serialize, ToSchema)]
struct AuthorizeResponse {
    results: Vec<CheckResult>,
}

/// The subject of an allowed check, or the check's Yandex error.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum CheckResult {
    Allowed {
        subject: SubjectMessage,
        /// Always `true`.
        allowed: bool,
    },
    Refused {
        /// 16 UNAUTHENTICATED, 7 PERMISSION_DENIED or 3 INVALID_ARGUMENT.
        code: i32,
        message: String,
    },
}

/// `access.Subject`.
#[derive(Serialize, ToSchema)]
struct SubjectMessage {
    id: String,
    /// `serviceAccount`.
    #[serde(rename = "type")]
    subject_type: &'static str,
}

/// AccessService.Authorize: whether subjects hold permissions on resources.
#[utoipa::path(
    post,
    path = "/iam/v1/authorize",
    operation_id = "AccessService.Authorize",
    tag = "AccessService",
    request_body = AuthorizeRequest,
    responses((status = 200, body = AuthorizeResponse), Refusals)
)]
async fn authorize(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::AccessServiceAuthorize);
    let result = answer(&state, &mut call, request).await;
    let mut response = finish(call, result);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn answer(state: &AppState, call: &mut Call, request: Request) -> Result<Response, Status> {
    let Some(live) = state.live() else {
        return Err(Status::new(
            Code::Unimplemented,
            "no_store",
            "the IAM API is off: this gateway has no [store] in its configuration",
        ));
    };
    let snapshot = state.snapshot();
    let keys = state.own_keys(&snapshot.minter);
    let own = OwnTokens {
        resources: &snapshot.policy.resources,
        ..snapshot.management_tokens(&keys, live)
    };
    let now = now_unix();
    let presented = authn::presented(
        request
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    )?;
    let caller = match presented {
        Presented::IamToken(token) => {
            let caller = authn::account_of(token, &own, live, now)?;
            if state.authorizer().index().is_suspended(&caller) {
                return Err(authn::suspended(&caller));
            }
            caller
        }
        Presented::ApiKey(secret) => caller_by_key(state, live, secret, now)?,
    };
    call.principal = Some(caller.clone());
    let body: AuthorizeRequest = json_body(request, "AuthorizeRequest").await?;
    if body.checks.is_empty() || body.checks.len() > MAX_CHECKS {
        return Err(Status::invalid_argument(
            "invalid_argument",
            format!(
                "checks: Number of elements must be in the range of 1 to {MAX_CHECKS} ({} given)",
                body.checks.len()
            ),
        ));
    }
    for (i, check) in body.checks.iter().enumerate() {
        match check.identity() {
            None => {
                return Err(Status::invalid_argument(
                    "invalid_argument",
                    format!("checks[{i}]: exactly one of {IDENTITIES} must be given"),
                ));
            }
            Some(Identity::Signature(signature)) => check_signature(i, signature)?,
            Some(_) => {}
        }
        let too_long = |s: &str| s.is_empty() || s.chars().count() > MAX_NAME_CHARS;
        if too_long(&check.permission)
            || check.resource_path.is_empty()
            || check.resource_path.len() > MAX_PATH
            || check
                .resource_path
                .iter()
                .any(|e| too_long(&e.id) || too_long(&e.resource_type))
        {
            return Err(Status::invalid_argument(
                "invalid_argument",
                format!(
                    "checks[{i}]: permission, and every resourcePath id and type, must be 1 to {MAX_NAME_CHARS} characters; resourcePath holds 1 to {MAX_PATH} elements"
                ),
            ));
        }
    }
    // IAM tokens are verified (a signature each) before the index is locked; API keys (a hash
    // and a lookup) and AWS signatures (a few HMACs) under the lock, since their checks read
    // the index.
    let subjects: Vec<Option<Result<String, Status>>> = body
        .checks
        .iter()
        .map(|check| match check.identity() {
            Some(Identity::IamToken(token)) => Some(authn::account_of(token, &own, live, now)),
            _ => None,
        })
        .collect();
    let caller_principal = Principal::service_account(&caller);
    let mut results = Vec::with_capacity(body.checks.len());
    // (check, subject, API key, refusal)
    let mut refusals: Vec<(usize, Option<String>, Option<String>, Status)> = Vec::new();
    let mut key_checks: Vec<&'static str> = Vec::new();
    {
        let index = state.authorizer().index();
        for (i, (check, subject)) in body.checks.iter().zip(&subjects).enumerate() {
            let path: Vec<PathElement<'_>> = check
                .resource_path
                .iter()
                .map(|e| PathElement {
                    resource_type: &e.resource_type,
                    id: &e.id,
                })
                .collect();
            let outcome = match (check.identity(), subject) {
                (Some(Identity::ApiKey(secret)), _) => {
                    let outcome = api_keys::check(
                        secret,
                        live.api_keys(),
                        &index,
                        &caller_principal,
                        &check.permission,
                        &path,
                        now,
                    )
                    .map(|key| used_key(state, &key, now))
                    .map_err(|(key, refused)| {
                        let subject = key.as_ref().map(|k| k.service_account_id.to_string());
                        (subject, key.map(|k| k.id.to_string()), refused)
                    });
                    key_checks.push(api_keys::check_result(
                        &outcome.as_ref().map_err(|(_, _, refused)| refused.clone()),
                    ));
                    outcome
                }
                (Some(Identity::Signature(signature)), _) => {
                    let verified = read_signature(signature).and_then(|signed| {
                        access_keys::verify(
                            &signed,
                            live.access_keys(),
                            state.secret_keys(),
                            &index,
                            now,
                        )
                    });
                    let result = verified.as_ref().map_or_else(|s| s.reason, |_| "valid");
                    metrics::counter!(telemetry::SIGV4_CHECKS, "result" => result).increment(1);
                    match verified {
                        Err(refused) => Err((None, None, refused)),
                        Ok(verified) => {
                            let subject = verified.service_account_id;
                            let outcome = index
                                .check_path(
                                    &caller_principal,
                                    &Principal::service_account(&subject),
                                    &check.permission,
                                    &path,
                                )
                                .map_err(api_keys::named_refusal);
                            state.record_use(UsedBy::AccessKey, &verified.id, now);
                            state.record_use(UsedBy::ServiceAccount, &subject, now);
                            outcome
                                .map(|()| subject.clone())
                                .map_err(|refused| (Some(subject), None, refused))
                        }
                    }
                }
                (_, Some(Err(refused))) => Err((None, None, refused.clone())),
                (_, Some(Ok(subject))) if index.is_suspended(subject) => {
                    Err((Some(subject.clone()), None, authn::suspended(subject)))
                }
                (_, Some(Ok(subject))) => index
                    .check_path(
                        &caller_principal,
                        &Principal::service_account(subject),
                        &check.permission,
                        &path,
                    )
                    .map(|()| subject.clone())
                    .map_err(|refused| {
                        (
                            Some(subject.clone()),
                            None,
                            api_keys::named_refusal(refused),
                        )
                    }),
                (_, None) => Err((
                    None,
                    None,
                    Status::invalid_argument(
                        "invalid_argument",
                        format!("exactly one of {IDENTITIES} must be given"),
                    ),
                )),
            };
            match outcome {
                Ok(subject) => {
                    metrics::counter!(telemetry::AUTHORIZE_CHECKS, "result" => "allowed")
                        .increment(1);
                    results.push(CheckResult::Allowed {
                        subject: SubjectMessage {
                            id: subject,
                            subject_type: "serviceAccount",
                        },
                        allowed: true,
                    });
                }
                Err((subject, key, status)) => {
                    results.push(CheckResult::Refused {
                        code: status.code.number(),
                        message: status.message.clone(),
                    });
                    refusals.push((i, subject, key, status));
                }
            }
        }
    }
    for result in key_checks {
        metrics::counter!(telemetry::API_KEY_CHECKS, "result" => result).increment(1);
    }
    for (i, subject, key, status) in refusals {
        let result = match status.code {
            Code::Unauthenticated => "unauthenticated",
            Code::PermissionDenied => "denied",
            Code::Internal => "error",
            _ => "invalid",
        };
        metrics::counter!(telemetry::AUTHORIZE_CHECKS, "result" => result).increment(1);
        let Some(check) = body.checks.get(i) else {
            continue;
        };
        let resource = check
            .resource_path
            .first()
            .map(|e| format!("{}:{}", e.resource_type, e.id))
            .unwrap_or_default();
        state.audit().record(
            "authorize_denied",
            AuthorizeDeniedEvent {
                request_id: call.request_id(),
                client: call.client(),
                caller: &caller,
                subject: subject.as_deref(),
                api_key_id: key.as_deref(),
                permission: &check.permission,
                resource: &resource,
                code: status.code.as_str(),
                description: &status.message,
            },
        );
    }
    Ok(ok(AuthorizeResponse { results }))
}

/// Notes the use of an API key that passed its check, and of its account; the account's id.
fn used_key(state: &AppState, key: &crate::iam::api_key_table::LiveApiKey, now: i64) -> String {
    state.record_use(UsedBy::ApiKey, &key.id, now);
    state.record_use(UsedBy::ServiceAccount, &key.service_account_id, now);
    key.service_account_id.to_string()
}

/// The service account of a resource service that presents its own API key: the key is
/// identified ([`api_keys::identify`]) and its scopes allow `iam.accessService.authorize`;
/// whether its account holds that permission where a check's walk starts is each check's to
/// say. Counted in `wif_gateway_api_key_checks_total` like the checks' keys.
fn caller_by_key(state: &AppState, live: &Live, secret: &str, now: i64) -> Result<String, Status> {
    let index = state.authorizer().index();
    let outcome = api_keys::identify(secret, live.api_keys(), &index, now)
        .map_err(|(_, refused)| refused)
        .and_then(|key| {
            api_keys::within_scopes(
                &key,
                Permission::AccessServiceAuthorize.as_str(),
                index.catalog(),
            )
            .map(|()| used_key(state, &key, now))
        });
    metrics::counter!(telemetry::API_KEY_CHECKS, "result" => api_keys::check_result(&outcome))
        .increment(1);
    outcome
}
