//! The OpenAPI 3.1 document of the IAM API, served at `GET /openapi.json` (no
//! authentication). It is generated from the handlers' own types: the request bodies they
//! parse, the messages they answer with ([`crate::iam::operation::OperationMessage`],
//! [`crate::iam::status::StatusBody`], …) and the `#[utoipa::path]` of each handler in
//! [`super::iam_tokens`], [`super::iam_keys`], [`super::iam_access_keys`],
//! [`super::iam_api_keys`], [`super::iam_hierarchy`], [`super::iam_federations`] and
//! [`super::iam_bindings`].
//!
//! The IAM routes are built from [`iam_endpoints`] alone, and a test compares that list's
//! (method, path) pairs with the document's: a route added without its `#[utoipa::path]` here,
//! or documented without being served, fails it.

use axum::Json;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::path::PathItem;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::iam_access_keys;
use super::iam_api_keys;
use super::iam_authorize;
use super::iam_bindings;
use super::iam_federations;
use super::iam_hierarchy;
use super::iam_keys;
use super::iam_roles;
use super::iam_tokens;
use super::yandex::{ACCESS_BINDING_VERBS, Endpoint};
use crate::app::AppState;
use crate::iam::operation::AnyMessage;
use crate::iam::status::StatusBody;

/// Every route of the IAM API. The router serves these and nothing else under the IAM paths
/// (besides the catch-all answers), and a test below holds the document to this list.
pub fn iam_endpoints() -> Vec<Endpoint> {
    [
        iam_tokens::endpoints(),
        iam_authorize::endpoints(),
        iam_keys::endpoints(),
        iam_access_keys::endpoints(),
        iam_api_keys::endpoints(),
        iam_roles::endpoints(),
        iam_hierarchy::endpoints(),
        iam_federations::endpoints(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The IAM API's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "wif-gateway IAM API",
        description = "The part of the Yandex Cloud IAM and resource-manager REST API the gateway serves, at the Yandex paths, in proto3 JSON. Every method but IamTokenService.Create needs `Authorization: Bearer <IAM token>`."
    ),
    paths(
        iam_tokens::create,
        iam_tokens::create_for_service_account,
        iam_tokens::revoke,
        iam_authorize::authorize,
        iam_keys::create,
        iam_keys::list,
        iam_keys::read,
        iam_keys::update,
        iam_keys::delete,
        iam_access_keys::create,
        iam_access_keys::list,
        iam_access_keys::read,
        iam_access_keys::update,
        iam_access_keys::delete,
        iam_api_keys::create,
        iam_api_keys::list,
        iam_api_keys::read,
        iam_api_keys::update,
        iam_api_keys::delete,
        iam_api_keys::list_scopes,
        iam_roles::list,
        iam_roles::get,
        iam_hierarchy::list_clouds,
        iam_hierarchy::create_cloud,
        iam_hierarchy::get_cloud,
        iam_hierarchy::update_cloud,
        iam_hierarchy::delete_cloud,
        iam_hierarchy::list_folders,
        iam_hierarchy::create_folder,
        iam_hierarchy::get_folder,
        iam_hierarchy::update_folder,
        iam_hierarchy::delete_folder,
        iam_hierarchy::list_service_accounts,
        iam_hierarchy::create_service_account,
        iam_hierarchy::get_service_account,
        iam_hierarchy::update_service_account,
        iam_hierarchy::delete_service_account,
        iam_hierarchy::suspend_service_account,
        iam_hierarchy::reactivate_service_account,
        iam_hierarchy::get_operation,
        iam_federations::list,
        iam_federations::create,
        iam_federations::read_or_verb,
        iam_federations::update,
        iam_federations::delete,
        iam_federations::list_credentials,
        iam_federations::create_credential,
        iam_federations::read_credential,
        iam_federations::delete_credential,
        iam_bindings::list_bindings,
        iam_bindings::set_bindings,
        iam_bindings::update_bindings,
    ),
    components(schemas(StatusBody, AnyMessage)),
    modifiers(&BearerToken, &AccessBindingPaths),
    security(("iamToken" = []))
)]
pub struct ApiDoc;

/// The `iamToken` security scheme: `Authorization: Bearer <IAM token>`.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "iamToken",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The access-binding methods of the cloud's path ([`iam_bindings`]), repeated at every other
/// bindable resource's path: (path prefix, its id parameter, the service).
const BINDABLE: [(&str, &str, &str); 3] = [
    (
        "/resource-manager/v1/folders/{folderId}",
        "folderId",
        "FolderService",
    ),
    (
        "/iam/v1/serviceAccounts/{serviceAccountId}",
        "serviceAccountId",
        "ServiceAccountService",
    ),
    (
        "/iam/v1/workload/oidc/federations/{federationId}",
        "federationId",
        "FederationService",
    ),
];

const CLOUD: (&str, &str, &str) = (
    "/resource-manager/v1/clouds/{cloudId}",
    "cloudId",
    "CloudService",
);

struct AccessBindingPaths;

impl Modify for AccessBindingPaths {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let (cloud_prefix, cloud_param, cloud_service) = CLOUD;
        for (_, verb) in ACCESS_BINDING_VERBS {
            let Some(template) = openapi
                .paths
                .get_path_item(format!("{cloud_prefix}:{verb}"))
                .cloned()
            else {
                continue;
            };
            for (prefix, param, service) in BINDABLE {
                let mut item: PathItem = template.clone();
                for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                    operation.operation_id = operation
                        .operation_id
                        .as_ref()
                        .map(|id| id.replacen(cloud_service, service, 1));
                    operation.tags = Some(vec![service.to_owned()]);
                    for parameter in operation.parameters.iter_mut().flatten() {
                        if let utoipa::openapi::RefOr::T(parameter) = parameter
                            && parameter.name == cloud_param
                        {
                            parameter.name = param.to_owned();
                        }
                    }
                }
                openapi.paths.paths.insert(format!("{prefix}:{verb}"), item);
            }
        }
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /openapi.json`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(serve))
}

async fn serve() -> Response {
    let mut response = Json(document()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    type Pairs = BTreeSet<(String, String)>;

    /// The (method, path) pairs of the document.
    fn documented(doc: &utoipa::openapi::OpenApi) -> Pairs {
        let mut pairs = Pairs::new();
        for (path, item) in &doc.paths.paths {
            for (method, operation) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
                ("TRACE", &item.trace),
            ] {
                if operation.is_some() {
                    pairs.insert((method.to_owned(), path.clone()));
                }
            }
        }
        pairs
    }

    /// The (method, path) pairs the IAM routes serve.
    fn served() -> Pairs {
        iam_endpoints()
            .iter()
            .flat_map(|endpoint| endpoint.operations())
            .map(|(method, path)| (method.to_string(), path))
            .collect()
    }

    /// What differs between `served` and `documented`, in words; empty when they agree.
    fn drift(served: &Pairs, documented: &Pairs) -> Vec<String> {
        let undocumented = served
            .difference(documented)
            .map(|(m, p)| format!("{m} {p} is served but not in the OpenAPI document"));
        let unserved = documented
            .difference(served)
            .map(|(m, p)| format!("{m} {p} is in the OpenAPI document but not served"));
        undocumented.chain(unserved).collect()
    }

    #[test]
    fn the_document_lists_exactly_the_served_routes() {
        let problems = drift(&served(), &documented(&document()));
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn a_route_missing_from_the_document_is_caught() {
        let doc = document();
        let mut documented = documented(&doc);
        let removed = ("PATCH".to_owned(), "/iam/v1/keys/{keyId}".to_owned());
        assert!(documented.remove(&removed));
        assert_eq!(
            drift(&served(), &documented),
            ["PATCH /iam/v1/keys/{keyId} is served but not in the OpenAPI document"]
        );
        let mut served = served();
        let added = ("PUT".to_owned(), "/iam/v1/keys".to_owned());
        served.insert(added);
        assert_eq!(
            drift(&served, &self::documented(&doc)),
            ["PUT /iam/v1/keys is served but not in the OpenAPI document"]
        );
    }

    #[test]
    fn every_bindable_resource_has_its_three_verbs() {
        let doc = document();
        for (prefix, param, service) in BINDABLE.into_iter().chain([CLOUD]) {
            for (method, verb) in ACCESS_BINDING_VERBS {
                let path = format!("{prefix}:{verb}");
                let item = doc.paths.get_path_item(&path).expect(&path);
                let operation = if method == axum::http::Method::GET {
                    item.get.as_ref()
                } else {
                    item.post.as_ref()
                }
                .expect(&path);
                let id = operation.operation_id.as_deref().unwrap_or_default();
                assert!(id.starts_with(&format!("{service}.")), "{path}: {id}");
                let names: Vec<&str> = operation
                    .parameters
                    .iter()
                    .flatten()
                    .filter_map(|p| match p {
                        utoipa::openapi::RefOr::T(p) => Some(p.name.as_str()),
                        utoipa::openapi::RefOr::Ref(_) => None,
                    })
                    .collect();
                assert!(names.contains(&param), "{path}: {names:?}");
            }
        }
    }

    #[test]
    fn operation_ids_are_unique_and_every_operation_documents_its_refusals() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for operation in [&item.get, &item.post, &item.patch, &item.delete]
                .into_iter()
                .flatten()
            {
                let id = operation.operation_id.clone().expect(path);
                assert!(ids.insert(id.clone()), "{id} twice");
                for status in ["200", "400", "401", "403", "404", "409", "429", "503"] {
                    assert!(
                        operation.responses.responses.contains_key(status),
                        "{id}: no {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_error_body_and_the_operation_are_typed() {
        let json = serde_json::to_value(document()).unwrap();
        let schemas = &json["components"]["schemas"];
        assert_eq!(
            schemas["Status"]["required"],
            serde_json::json!(["code", "message", "details"])
        );
        for name in [
            "Operation",
            "Key",
            "ApiKey",
            "Cloud",
            "Folder",
            "ServiceAccount",
            "Federation",
        ] {
            assert_eq!(schemas[name]["type"], "object", "{name}");
        }
        assert_eq!(
            json["components"]["securitySchemes"]["iamToken"]["scheme"],
            "bearer"
        );
    }
}
