//! `ListAccessBindings`, `SetAccessBindings` and `UpdateAccessBindings`, which
//! `CloudService`, `FolderService`, `ServiceAccountService` and `FederationService` each serve
//! for their resources, through [`crate::iam::bindings_api`] as the REST verbs
//! (`{resource}:listAccessBindings`, …) do.

use tonic::{Request, Response};

use crate::app::AppState;
use crate::app::call::context;
use crate::iam::ResourceKind;
use crate::iam::bindings_api::{
    Bindings, RequestedBinding, RequestedDelta, binding_message, methods,
};
use crate::iam::federations_api::ListPage;
use crate::iam::service::Method;
use crate::iam::status::Status;
use crate::iam::store::ResourceRef;

use super::convert::{messages, operation};
use super::method::authenticated;
use super::proto::yandex::cloud::access::{
    AccessBinding, AccessBindingAction, ListAccessBindingsRequest, ListAccessBindingsResponse,
    SetAccessBindingsRequest, UpdateAccessBindingsRequest,
};
use super::proto::yandex::cloud::operation::Operation;

/// The binding method of `kind` at `index` (0 list, 1 set, 2 update).
fn method(kind: ResourceKind, index: usize) -> Result<Method, tonic::Status> {
    methods(kind).map(|m| m[index]).ok_or_else(|| {
        super::method::status(&Status::internal(&format!("{kind} has no access bindings")))
    })
}

fn requested(binding: AccessBinding) -> RequestedBinding {
    let (subject_id, subject_type) = binding
        .subject
        .map_or_else(Default::default, |s| (s.id, s.r#type));
    RequestedBinding {
        role_id: binding.role_id,
        subject_id,
        subject_type,
    }
}

pub async fn list(
    state: &AppState,
    kind: ResourceKind,
    request: Request<ListAccessBindingsRequest>,
) -> Result<Response<ListAccessBindingsResponse>, tonic::Status> {
    let resource = ResourceRef::new(kind, &request.get_ref().resource_id);
    let audited = Some(format!("{kind}:{}", resource.id));
    authenticated(
        state,
        request,
        method(kind, 0)?,
        audited,
        async |_, principal, request| {
            let page = ListPage {
                size: request.page_size,
                token: request.page_token,
            };
            let listed = Bindings {
                ctx: context(state)?,
            }
            .list(principal, &resource, &page)
            .await?;
            let (access_bindings, next_page_token) =
                messages::<AccessBinding, _, _>(&listed, |b| {
                    binding_message(&b.role_id, &b.subject)
                });
            Ok(ListAccessBindingsResponse {
                access_bindings,
                next_page_token,
            })
        },
    )
    .await
}

pub async fn set(
    state: &AppState,
    kind: ResourceKind,
    request: Request<SetAccessBindingsRequest>,
) -> Result<Response<Operation>, tonic::Status> {
    let resource = ResourceRef::new(kind, &request.get_ref().resource_id);
    let audited = Some(format!("{kind}:{}", resource.id));
    authenticated(
        state,
        request,
        method(kind, 1)?,
        audited,
        async |_, principal, request| {
            let bindings: Vec<RequestedBinding> =
                request.access_bindings.into_iter().map(requested).collect();
            let op = Bindings {
                ctx: context(state)?,
            }
            .set(principal, &resource, &bindings)
            .await?;
            operation(&op)
        },
    )
    .await
}

pub async fn update(
    state: &AppState,
    kind: ResourceKind,
    request: Request<UpdateAccessBindingsRequest>,
) -> Result<Response<Operation>, tonic::Status> {
    let resource = ResourceRef::new(kind, &request.get_ref().resource_id);
    let audited = Some(format!("{kind}:{}", resource.id));
    authenticated(
        state,
        request,
        method(kind, 2)?,
        audited,
        async |_, principal, request| {
            let deltas: Vec<RequestedDelta> = request
                .access_binding_deltas
                .into_iter()
                .map(|d| RequestedDelta {
                    action: AccessBindingAction::try_from(d.action)
                        .map_or_else(|_| d.action.to_string(), |a| a.as_str_name().to_owned()),
                    binding: d.access_binding.map(requested).unwrap_or_default(),
                })
                .collect();
            let op = Bindings {
                ctx: context(state)?,
            }
            .update(principal, &resource, &deltas)
            .await?;
            operation(&op)
        },
    )
    .await
}

/// The three binding methods of a service's trait, delegated to this module for the resource
/// kind `$kind`. The trait is `#[tonic::async_trait]`, whose methods return a boxed future:
/// the signatures here are the ones it expands `async fn` to.
macro_rules! access_binding_methods {
    ($kind:expr) => {
        fn list_access_bindings<'life0, 'async_trait>(
            &'life0 self,
            request: tonic::Request<
                $crate::grpc::proto::yandex::cloud::access::ListAccessBindingsRequest,
            >,
        ) -> $crate::grpc::bindings::Boxed<
            'async_trait,
            $crate::grpc::proto::yandex::cloud::access::ListAccessBindingsResponse,
        >
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin($crate::grpc::bindings::list(&self.0, $kind, request))
        }

        fn set_access_bindings<'life0, 'async_trait>(
            &'life0 self,
            request: tonic::Request<
                $crate::grpc::proto::yandex::cloud::access::SetAccessBindingsRequest,
            >,
        ) -> $crate::grpc::bindings::Boxed<
            'async_trait,
            $crate::grpc::proto::yandex::cloud::operation::Operation,
        >
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin($crate::grpc::bindings::set(&self.0, $kind, request))
        }

        fn update_access_bindings<'life0, 'async_trait>(
            &'life0 self,
            request: tonic::Request<
                $crate::grpc::proto::yandex::cloud::access::UpdateAccessBindingsRequest,
            >,
        ) -> $crate::grpc::bindings::Boxed<
            'async_trait,
            $crate::grpc::proto::yandex::cloud::operation::Operation,
        >
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin($crate::grpc::bindings::update(&self.0, $kind, request))
        }
    };
}
pub(crate) use access_binding_methods;

/// The future of a method of a `#[tonic::async_trait]` service trait.
pub type Boxed<'a, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'a>>;
