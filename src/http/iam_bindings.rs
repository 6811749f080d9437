//! The access-binding methods at their Yandex REST paths: a custom verb after the resource id.
//!
//! | route | method |
//! |---|---|
//! | `GET {resource}:listAccessBindings?pageSize=&pageToken=` | List → `{"accessBindings","nextPageToken"}` |
//! | `POST {resource}:setAccessBindings` | Set: `{"accessBindings":[…]}` → the finished operation |
//! | `POST {resource}:updateAccessBindings` | Update: `{"accessBindingDeltas":[{"action","accessBinding"}]}` → the finished operation |
//!
//! `{resource}` is `/resource-manager/v1/clouds/{id}`, `/resource-manager/v1/folders/{id}`,
//! `/iam/v1/serviceAccounts/{id}` (routed by [`super::iam_hierarchy`]) or
//! `/iam/v1/workload/oidc/federations/{id}` (routed by [`super::iam_federations`]). A path
//! segment `{id}:verb` is one segment for the router: the handlers of `/{id}` split it
//! ([`split_verb`]) and hand verbs to [`dispatch_verb`]. The methods themselves are
//! [`crate::iam::bindings_api`]. The OpenAPI document names the verbs at the cloud's path here
//! and repeats them at the other resources' paths ([`super::openapi`]).

use axum::extract::Request;
use axum::http;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::yandex::{
    Call, Refusals, context, finish, json_body, list_query, method_not_allowed, ok, start,
    unknown_method,
};
use crate::app::AppState;
use crate::iam::ResourceKind;
use crate::iam::bindings_api::{
    BindingMessage, Bindings, RequestedBinding, RequestedDelta, binding_message, methods,
};
use crate::iam::operation::{self, OperationMessage};
use crate::iam::status::Status;
use crate::iam::store::ResourceRef;

/// The bindings routes of clouds, folders and service accounts, at their `/{id}` paths:
/// `GET` with `:listAccessBindings`, `POST` with `:setAccessBindings` or
/// `:updateAccessBindings`.
/// `GET {resource}/{segment}`: with a verb (`{id}:listAccessBindings`), the bindings; a plain
/// id is the resource's own `Get`, `get`.
pub async fn read_or<F, Fut>(
    state: AppState,
    kind: ResourceKind,
    segment: String,
    request: Request,
    get: F,
) -> Response
where
    F: FnOnce(AppState, String, Request) -> Fut,
    Fut: Future<Output = Response>,
{
    if split_verb(&segment).is_some() {
        return verb_only(state, kind, segment, request).await;
    }
    get(state, segment, request).await
}

/// `{resource}/{id}:{verb}`; a segment without a verb is NOT_FOUND.
pub async fn verb_only(
    state: AppState,
    kind: ResourceKind,
    segment: String,
    request: Request,
) -> Response {
    match split_verb(&segment) {
        Some((id, verb)) => dispatch_verb(&state, request, kind, id, verb).await,
        None => unknown_method().await,
    }
}

/// `{id}:{verb}` → (`id`, `verb`); `None` without a colon.
pub fn split_verb(segment: &str) -> Option<(&str, &str)> {
    segment.split_once(':')
}

/// Serves `verb` (`listAccessBindings`, `setAccessBindings`, `updateAccessBindings`) on the
/// resource `kind`/`id`. Another verb is NOT_FOUND; a known verb with the wrong HTTP method
/// is 405.
pub async fn dispatch_verb(
    state: &AppState,
    request: Request,
    kind: ResourceKind,
    id: &str,
    verb: &str,
) -> Response {
    let Some([list, set, update]) = methods(kind) else {
        return unknown_method().await;
    };
    let post = request.method() == http::Method::POST;
    let get = request.method() == http::Method::GET;
    let resource = ResourceRef::new(kind, id);
    match verb {
        "listAccessBindings" if get => {
            let mut call = start(state, &request, list);
            call.resource = Some(format!("{kind}:{id}"));
            let result = list_bindings(state, &mut call, request, &resource).await;
            finish(call, result)
        }
        "setAccessBindings" if post => {
            let mut call = start(state, &request, set);
            call.resource = Some(format!("{kind}:{id}"));
            let result = set_bindings(state, &mut call, request, &resource).await;
            finish(call, result)
        }
        "updateAccessBindings" if post => {
            let mut call = start(state, &request, update);
            call.resource = Some(format!("{kind}:{id}"));
            let result = update_bindings(state, &mut call, request, &resource).await;
            finish(call, result)
        }
        "listAccessBindings" => method_not_allowed("GET"),
        "setAccessBindings" | "updateAccessBindings" => method_not_allowed("POST"),
        _ => unknown_method().await,
    }
}

/// ListAccessBindings of a cloud; the same method at every bindable resource's path
/// ([`super::openapi`] repeats it there).
#[utoipa::path(
    get,
    path = "/resource-manager/v1/clouds/{cloudId}:listAccessBindings",
    operation_id = "CloudService.ListAccessBindings",
    tag = "CloudService",
    params(
        ("cloudId" = String, Path),
        ("pageSize" = Option<i64>, Query, description = "0 to 1000; default 100"),
        ("pageToken" = Option<String>, Query),
    ),
    responses((status = 200, body = ListAccessBindingsResponse), Refusals)
)]
async fn list_bindings(
    state: &AppState,
    call: &mut Call,
    request: Request,
    resource: &ResourceRef,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let (_, page) = list_query(&request, ["resourceId", "resource_id"])?;
    let listed = Bindings {
        ctx: context(state)?,
    }
    .list(&principal, resource, &page)
    .await?;
    Ok(ok(ListAccessBindingsResponse {
        access_bindings: listed
            .items
            .iter()
            .map(|b| binding_message(&b.role_id, &b.subject))
            .collect(),
        next_page_token: listed.next_page_token,
    }))
}

/// `access.Subject` in proto3 JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SubjectInput)]
struct SubjectJson {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "type")]
    subject_type: String,
}

/// `access.AccessBinding` in proto3 JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = AccessBindingInput)]
struct BindingJson {
    #[serde(default, alias = "role_id")]
    role_id: String,
    subject: Option<SubjectJson>,
}

impl From<BindingJson> for RequestedBinding {
    fn from(binding: BindingJson) -> RequestedBinding {
        let (subject_id, subject_type) = binding
            .subject
            .map_or_else(Default::default, |s| (s.id, s.subject_type));
        RequestedBinding {
            role_id: binding.role_id,
            subject_id,
            subject_type,
        }
    }
}

/// `access.SetAccessBindingsRequest`; the resource is the path's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = SetAccessBindingsRequest)]
struct SetRequest {
    #[serde(default, alias = "resource_id")]
    resource_id: Option<String>,
    /// At most 1000.
    #[serde(default, alias = "access_bindings")]
    #[schema(max_items = 1000)]
    access_bindings: Vec<BindingJson>,
}

/// `access.AccessBindingDelta`: `action` by name (`ADD`, `REMOVE`) or number (1, 2).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = AccessBindingDeltaInput)]
struct DeltaJson {
    #[serde(default)]
    #[schema(schema_with = action_schema)]
    action: Value,
    #[serde(alias = "access_binding")]
    access_binding: Option<BindingJson>,
}

/// `access.UpdateAccessBindingsRequest`; the resource is the path's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = UpdateAccessBindingsRequest)]
struct UpdateRequest {
    #[serde(default, alias = "resource_id")]
    resource_id: Option<String>,
    /// 1 to 1000.
    #[serde(default, alias = "access_binding_deltas")]
    #[schema(required = true, min_items = 1, max_items = 1000)]
    access_binding_deltas: Vec<DeltaJson>,
}

/// `action`: `ADD` or `REMOVE`, or their numbers 1 and 2.
fn action_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["ADD", "REMOVE"])),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some([1, 2])),
        )
        .build()
        .into()
}

/// `ListAccessBindingsResponse`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ListAccessBindingsResponse {
    access_bindings: Vec<BindingMessage>,
    /// Present when another page follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

fn same_resource(named: Option<&str>, resource: &ResourceRef) -> Result<(), Status> {
    super::yandex::same_id(named, &resource.id, "resourceId")
}

fn action_name(action: &Value) -> String {
    match action {
        Value::String(name) => name.clone(),
        Value::Number(n) if n.as_u64() == Some(1) => "ADD".to_owned(),
        Value::Number(n) if n.as_u64() == Some(2) => "REMOVE".to_owned(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// SetAccessBindings: replaces all the resource's bindings.
#[utoipa::path(
    post,
    path = "/resource-manager/v1/clouds/{cloudId}:setAccessBindings",
    operation_id = "CloudService.SetAccessBindings",
    tag = "CloudService",
    params(("cloudId" = String, Path)),
    request_body = SetRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn set_bindings(
    state: &AppState,
    call: &mut Call,
    request: Request,
    resource: &ResourceRef,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let body: SetRequest = json_body(request, "SetAccessBindingsRequest").await?;
    same_resource(body.resource_id.as_deref(), resource)?;
    let bindings: Vec<RequestedBinding> =
        body.access_bindings.into_iter().map(Into::into).collect();
    let operation = Bindings {
        ctx: context(state)?,
    }
    .set(&principal, resource, &bindings)
    .await?;
    Ok(ok(operation::to_message(&operation)))
}

/// UpdateAccessBindings: adds and removes bindings.
#[utoipa::path(
    post,
    path = "/resource-manager/v1/clouds/{cloudId}:updateAccessBindings",
    operation_id = "CloudService.UpdateAccessBindings",
    tag = "CloudService",
    params(("cloudId" = String, Path)),
    request_body = UpdateRequest,
    responses((status = 200, body = OperationMessage), Refusals)
)]
async fn update_bindings(
    state: &AppState,
    call: &mut Call,
    request: Request,
    resource: &ResourceRef,
) -> Result<Response, Status> {
    let principal = call.authenticate(state, request.headers()).await?;
    let body: UpdateRequest = json_body(request, "UpdateAccessBindingsRequest").await?;
    same_resource(body.resource_id.as_deref(), resource)?;
    let deltas: Vec<RequestedDelta> = body
        .access_binding_deltas
        .into_iter()
        .map(|d| RequestedDelta {
            action: action_name(&d.action),
            binding: d.access_binding.map(Into::into).unwrap_or_default(),
        })
        .collect();
    let operation = Bindings {
        ctx: context(state)?,
    }
    .update(&principal, resource, &deltas)
    .await?;
    Ok(ok(operation::to_message(&operation)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verb_follows_the_first_colon() {
        assert_eq!(
            split_verb("b1g123:listAccessBindings"),
            Some(("b1g123", "listAccessBindings"))
        );
        assert_eq!(split_verb("b1g123"), None);
        assert_eq!(split_verb(":x"), Some(("", "x")));
    }

    #[test]
    fn actions_are_read_by_name_or_number() {
        for (value, expected) in [
            (serde_json::json!("ADD"), "ADD"),
            (serde_json::json!(1), "ADD"),
            (serde_json::json!(2), "REMOVE"),
            (Value::Null, ""),
            (serde_json::json!(0), "0"),
        ] {
            assert_eq!(action_name(&value), expected);
        }
    }
}
