//! `POST /oauth/introspect`: RFC 7662 token introspection of the gateway's own tokens, for
//! resource servers that would rather ask than verify offline, or that must see revocations.
//!
//! The caller authenticates as a management call does (`Authorization: Bearer <IAM token>`,
//! [`Call::authenticate`]); a refusal is the Yandex error body with `WWW-Authenticate: Bearer`.
//! The form's `token` is answered `{"active": true, …}` only when it passes every rule a
//! management call's token must pass (the gateway's key, issuer, audience, times, not revoked,
//! its service account existing and active) and the caller may read that service account
//! (`iam.serviceAccounts.get` on it, [`Method::IamTokenIntrospect`]); anything else is
//! `{"active": false}`, the same for a forged, expired, revoked or unreadable token, so the
//! answer tells a caller nothing about tokens of accounts it cannot see. The token is never
//! echoed, logged or audited.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::post;
use serde::Serialize;
use serde_json::Value;

use super::token::{check_form_content_type, read_body};
use super::yandex::{Call, context, finish, ok, start};
use crate::app::AppState;
use crate::iam::authn::{Checks, Verified};
use crate::iam::authz::Resource as AuthzResource;
use crate::iam::service::Method;
use crate::iam::status::{Code, Status};

/// The route; mounted only with `[store]`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/oauth/introspect", post(introspect))
}

/// The RFC 7662 §2.2 answer.
#[derive(Debug, Serialize, PartialEq)]
struct Introspection {
    active: bool,
    #[serde(flatten)]
    claims: Option<ActiveClaims>,
}

#[derive(Debug, Serialize, PartialEq)]
struct ActiveClaims {
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    iss: String,
    aud: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// Who acts for the subject (RFC 8693 §4.1: an exchanged token's external subject, an
    /// impersonation's caller, nested for a chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<Value>,
    token_type: &'static str,
}

impl Introspection {
    const INACTIVE: Introspection = Introspection {
        active: false,
        claims: None,
    };

    fn active(verified: Verified) -> Introspection {
        let aud = match verified.aud.as_slice() {
            [one] => Value::String(one.clone()),
            many => Value::from(many.to_vec()),
        };
        Introspection {
            active: true,
            claims: Some(ActiveClaims {
                sub: verified.sub,
                client_id: verified.client_id,
                exp: verified.exp,
                iat: verified.iat,
                iss: verified.iss,
                aud,
                jti: verified.jti,
                act: verified.act,
                token_type: "Bearer",
            }),
        }
    }
}

async fn introspect(State(state): State<AppState>, request: Request) -> Response {
    let mut call = start(&state, &request, Method::IamTokenIntrospect);
    let result = answer(&state, &mut call, request).await;
    let unauthenticated = matches!(&result, Err(s) if s.code == Code::Unauthenticated);
    let mut response = finish(call, result);
    if unauthenticated {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The `token` parameter of an introspection form: exactly once, not empty.
fn token_parameter(form: &[u8]) -> Result<String, Status> {
    let mut token = None;
    for (name, value) in url::form_urlencoded::parse(form) {
        if name == "token" {
            if token.is_some() {
                return Err(Status::invalid_argument(
                    "repeated_parameter",
                    "the form gives token more than once",
                ));
            }
            token = Some(value.trim().to_owned());
        }
    }
    match token {
        Some(token) if !token.is_empty() => Ok(token),
        _ => Err(Status::invalid_argument(
            "missing_parameter",
            "the form has no token: send token=<the token to introspect>",
        )),
    }
}

async fn answer(state: &AppState, call: &mut Call, request: Request) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    check_form_content_type(request.headers())
        .map_err(|e| Status::invalid_argument(e.reason.as_str(), e.description))?;
    let form = read_body(request.into_body())
        .await
        .map_err(|e| Status::invalid_argument(e.reason.as_str(), e.description))?;
    let token = token_parameter(&form)?;
    let verified = match call.verify_token(state, &token, Checks::All).await {
        Ok((verified, _)) => verified,
        Err(refused) if refused.code == Code::Unauthenticated => {
            return Ok(ok(Introspection::INACTIVE));
        }
        Err(other) => return Err(other),
    };
    let ctx = context(state)?;
    let readable = ctx
        .authorize(
            &principal,
            Method::IamTokenIntrospect,
            &[AuthzResource::service_account(&verified.sub)],
        )
        .is_ok();
    if !readable {
        return Ok(ok(Introspection::INACTIVE));
    }
    call.resource = Some(format!("service_account:{}", verified.sub));
    Ok(ok(Introspection::active(verified)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_parameter_is_read_once_or_refused() {
        let cases: [(&str, Result<&str, &str>); 6] = [
            ("token=a.b.c", Ok("a.b.c")),
            ("token_type_hint=access_token&token=a.b.c", Ok("a.b.c")),
            ("token=a.b.c%0A", Ok("a.b.c")),
            ("token=", Err("missing_parameter")),
            ("hint=x", Err("missing_parameter")),
            ("token=a&token=b", Err("repeated_parameter")),
        ];
        for (form, want) in cases {
            let got = token_parameter(form.as_bytes());
            assert_eq!(got.as_deref().map_err(|s| s.reason), want, "{form}");
        }
    }

    #[test]
    fn an_inactive_answer_says_nothing_else() {
        let text = serde_json::to_string(&Introspection::INACTIVE).unwrap();
        assert_eq!(text, r#"{"active":false}"#);
    }

    #[test]
    fn an_active_answer_has_the_rfc_7662_members() {
        let verified = Verified {
            sub: "ajeSA".into(),
            exp: 200,
            iat: Some(100),
            iss: "https://gw".into(),
            aud: vec!["https://gw".into()],
            jti: Some("j1".into()),
            client_id: Some("fed".into()),
            act: None,
            expired: false,
        };
        let value = serde_json::to_value(Introspection::active(verified)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "active": true, "sub": "ajeSA", "client_id": "fed", "exp": 200, "iat": 100,
                "iss": "https://gw", "aud": "https://gw", "jti": "j1", "token_type": "Bearer"
            })
        );
    }
}
