//! The access-binding methods of clouds, folders, service accounts and federations
//! (`ListAccessBindings`, `SetAccessBindings`, `UpdateAccessBindings`) over the followed
//! store, independent of the transport (the REST routes are [`crate::http::iam_bindings`]).
//!
//! | rule | refusal |
//! |---|---|
//! | the resource exists | NOT_FOUND |
//! | the caller may list / set the resource's bindings ([`Method::targets`]: the resource) | PERMISSION_DENIED |
//! | `role_id` 1–64 characters and a known role grantable there; subject id and type 1–100 characters | INVALID_ARGUMENT |
//! | subjects are service accounts (`serviceAccount`) or the system groups `allAuthenticatedUsers` and `allUsers` (`system`) | INVALID_ARGUMENT |
//! | set: at most 1000 bindings; update: 1 to 1000 deltas, each `ADD` or `REMOVE` | INVALID_ARGUMENT |
//! | every binding added **and** every binding removed passes [`Authorize::may_grant`] (an `admin` neither grants nor revokes an owner role) | PERMISSION_DENIED |
//!
//! `SetAccessBindings` replaces the resource's bindings: the bindings to remove and to add are
//! computed against the current ones, checked, and applied in one transaction
//! ([`crate::iam::store::Store::change_access_bindings`]). Both mutations answer a finished
//! operation whose response lists the effective deltas; a delta that changes nothing (adding
//! a binding that exists, removing one that does not) is not among them.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::exchange::quote;

use super::ResourceKind;
use super::authn::Principal;
use super::authz::{ALL_AUTHENTICATED_USERS, ALL_USERS, Resource};
use super::federations_api::ListPage;
use super::operation::{self, types};
use super::quota::Quota;
use super::service::{Authorize, Context, Finished, Method};
use super::status::Status;
use super::store::{
    AccessBinding, BindingAction, BindingDelta, MAX_PAGE_SIZE, Operation, Page, PageRequest,
    ResourceRef, StoreError, Subject, SubjectType,
};
use super::validate;

/// Most bindings a `SetAccessBindings` call may hold, and deltas an `UpdateAccessBindings`
/// call may hold (`size=<=1000`, `size=1-1000`).
pub const MAX_BINDINGS_PER_CALL: usize = 1000;
/// Longest role id (`AccessBinding.role_id`: length ≤ 64).
pub const MAX_ROLE_ID_CHARS: usize = 64;
/// Longest subject id and type (`Subject.id`, `Subject.type`: length ≤ 100).
pub const MAX_SUBJECT_CHARS: usize = 100;

/// The three binding methods of a resource kind; `None` for kinds without bindings.
pub const fn methods(kind: ResourceKind) -> Option<[Method; 3]> {
    match kind {
        ResourceKind::Cloud => Some([
            Method::CloudListAccessBindings,
            Method::CloudSetAccessBindings,
            Method::CloudUpdateAccessBindings,
        ]),
        ResourceKind::Folder => Some([
            Method::FolderListAccessBindings,
            Method::FolderSetAccessBindings,
            Method::FolderUpdateAccessBindings,
        ]),
        ResourceKind::ServiceAccount => Some([
            Method::ServiceAccountListAccessBindings,
            Method::ServiceAccountSetAccessBindings,
            Method::ServiceAccountUpdateAccessBindings,
        ]),
        ResourceKind::Federation => Some([
            Method::FederationListAccessBindings,
            Method::FederationSetAccessBindings,
            Method::FederationUpdateAccessBindings,
        ]),
        _ => None,
    }
}

/// A binding as a request names it (`access.AccessBinding`), before it is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedBinding {
    pub role_id: String,
    pub subject_id: String,
    pub subject_type: String,
}

/// A delta as a request names it (`access.AccessBindingDelta`); `action` as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedDelta {
    pub action: String,
    pub binding: RequestedBinding,
}

/// The binding methods in `ctx`.
pub struct Bindings<'a> {
    pub ctx: Context<'a>,
}

fn invalid(message: String) -> Status {
    Status::invalid_argument(validate::REASON, message)
}

/// A requested binding, checked: lengths, and a subject this gateway can match.
pub fn check_binding(binding: &RequestedBinding) -> Result<(String, Subject), Status> {
    let role = &binding.role_id;
    if role.is_empty() || role.chars().count() > MAX_ROLE_ID_CHARS {
        return Err(invalid(format!(
            "role_id {}: must be 1 to {MAX_ROLE_ID_CHARS} characters",
            quote(role)
        )));
    }
    for (field, value) in [
        ("subject.id", &binding.subject_id),
        ("subject.type", &binding.subject_type),
    ] {
        if value.is_empty() || value.chars().count() > MAX_SUBJECT_CHARS {
            return Err(invalid(format!(
                "{field} {}: must be 1 to {MAX_SUBJECT_CHARS} characters",
                quote(value)
            )));
        }
    }
    let subject_type = match SubjectType::parse(&binding.subject_type) {
        Some(t @ SubjectType::ServiceAccount) => t,
        Some(t @ SubjectType::System)
            if [ALL_AUTHENTICATED_USERS, ALL_USERS].contains(&binding.subject_id.as_str()) =>
        {
            t
        }
        Some(SubjectType::System) => {
            return Err(invalid(format!(
                "subject.id {}: the system subjects are {ALL_AUTHENTICATED_USERS} and {ALL_USERS}",
                quote(&binding.subject_id)
            )));
        }
        _ => {
            return Err(invalid(format!(
                "subject.type {}: this gateway grants roles to serviceAccount and system subjects",
                quote(&binding.subject_type)
            )));
        }
    };
    Ok((
        role.clone(),
        Subject {
            subject_type,
            id: binding.subject_id.clone(),
        },
    ))
}

/// A requested delta, checked: `ADD` or `REMOVE`, and its binding.
pub fn check_delta(delta: &RequestedDelta) -> Result<BindingDelta, Status> {
    let action = match delta.action.as_str() {
        "ADD" => BindingAction::Add,
        "REMOVE" => BindingAction::Remove,
        other => {
            return Err(invalid(format!(
                "action {}: must be ADD or REMOVE",
                quote(other)
            )));
        }
    };
    let (role_id, subject) = check_binding(&delta.binding)?;
    Ok(BindingDelta {
        action,
        role_id,
        subject,
    })
}

impl Bindings<'_> {
    /// The resource, once it exists; its binding methods.
    async fn resource(&self, kind: ResourceKind, id: &str) -> Result<[Method; 3], Status> {
        let methods = methods(kind)
            .ok_or_else(|| Status::internal(&format!("{kind} has no access bindings")))?;
        if id.is_empty() || id.chars().count() > 64 {
            return Err(invalid(format!(
                "resource_id {}: must be 1 to 64 characters",
                quote(id)
            )));
        }
        let store = self.ctx.store();
        let found = match kind {
            ResourceKind::Cloud => store.get_cloud(id).await.map(drop),
            ResourceKind::Folder => store.get_folder(id).await.map(drop),
            ResourceKind::ServiceAccount => store.get_service_account(id).await.map(drop),
            _ => store.get_federation(id).await.map(drop),
        };
        match found {
            Ok(()) => Ok(methods),
            // A configuration file's service account or federation: its bindings can be listed
            // (there are none), not changed.
            Err(StoreError::NotFound { .. })
                if matches!(
                    kind,
                    ResourceKind::ServiceAccount | ResourceKind::Federation
                ) && self.ctx.live.configured().managed_by(id).is_some() =>
            {
                Ok(methods)
            }
            Err(StoreError::NotFound { .. }) => Err(Status::not_found(format!(
                "{} {} not found",
                noun(kind),
                quote(id)
            ))),
            Err(other) => Err(other.into()),
        }
    }

    /// The cloud a bindable resource is in.
    async fn cloud_of(&self, resource: &ResourceRef) -> Result<String, Status> {
        let store = self.ctx.store();
        let folder = match resource.kind {
            ResourceKind::Cloud => return Ok(resource.id.clone()),
            ResourceKind::ServiceAccount => {
                return Ok(store.get_service_account(&resource.id).await?.cloud_id);
            }
            ResourceKind::Federation => store.get_federation(&resource.id).await?.folder_id,
            _ => resource.id.clone(),
        };
        Ok(store.get_folder(&folder).await?.cloud_id)
    }

    /// `ListAccessBindings` of a cloud, folder, service account or federation.
    pub async fn list(
        &self,
        principal: &Principal,
        resource: &ResourceRef,
        page: &ListPage,
    ) -> Result<Page<AccessBinding>, Status> {
        let [list, _, _] = self.resource(resource.kind, &resource.id).await?;
        let page = page.request()?;
        self.ctx.authorize(principal, list, &[target(resource)?])?;
        Ok(super::federations_api::opaque(
            self.ctx
                .store()
                .list_access_bindings(resource, &page)
                .await?,
        ))
    }

    /// `SetAccessBindings`: the resource's bindings become exactly `bindings`.
    pub async fn set(
        &self,
        principal: &Principal,
        resource: &ResourceRef,
        bindings: &[RequestedBinding],
    ) -> Result<Operation, Status> {
        let [_, set, _] = self.resource(resource.kind, &resource.id).await?;
        if bindings.len() > MAX_BINDINGS_PER_CALL {
            return Err(invalid(format!(
                "access_bindings: {} given, at most {MAX_BINDINGS_PER_CALL} allowed",
                bindings.len()
            )));
        }
        let mut wanted = Vec::new();
        let mut seen = HashSet::new();
        for binding in bindings {
            let checked = check_binding(binding)?;
            if seen.insert(checked.clone()) {
                wanted.push(checked);
            }
        }
        self.ctx.authorize(principal, set, &[target(resource)?])?;
        self.ctx.writable(noun(resource.kind), &resource.id)?;
        let current = self.all(resource).await?;
        let held: HashSet<(String, Subject)> = current
            .iter()
            .map(|b| (b.role_id.clone(), b.subject.clone()))
            .collect();
        let mut deltas: Vec<BindingDelta> = current
            .into_iter()
            .filter(|b| !seen.contains(&(b.role_id.clone(), b.subject.clone())))
            .map(|b| BindingDelta {
                action: BindingAction::Remove,
                role_id: b.role_id,
                subject: b.subject,
            })
            .collect();
        deltas.extend(wanted.into_iter().filter(|pair| !held.contains(pair)).map(
            |(role_id, subject)| BindingDelta {
                action: BindingAction::Add,
                role_id,
                subject,
            },
        ));
        self.apply(principal, resource, &deltas, "Set access bindings", true)
            .await
    }

    /// `UpdateAccessBindings`: adds and removes bindings, delta by delta.
    pub async fn update(
        &self,
        principal: &Principal,
        resource: &ResourceRef,
        deltas: &[RequestedDelta],
    ) -> Result<Operation, Status> {
        let [_, _, update] = self.resource(resource.kind, &resource.id).await?;
        if deltas.is_empty() || deltas.len() > MAX_BINDINGS_PER_CALL {
            return Err(invalid(format!(
                "access_binding_deltas: Number of elements must be in the range of 1 to {MAX_BINDINGS_PER_CALL} ({} given)",
                deltas.len()
            )));
        }
        let deltas = deltas
            .iter()
            .map(check_delta)
            .collect::<Result<Vec<_>, _>>()?;
        self.ctx
            .authorize(principal, update, &[target(resource)?])?;
        self.ctx.writable(noun(resource.kind), &resource.id)?;
        self.apply(
            principal,
            resource,
            &deltas,
            "Update access bindings",
            false,
        )
        .await
    }

    /// Every binding of `resource`.
    async fn all(&self, resource: &ResourceRef) -> Result<Vec<AccessBinding>, Status> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(MAX_PAGE_SIZE);
        loop {
            let listed = self
                .ctx
                .store()
                .list_access_bindings(resource, &page)
                .await?;
            all.extend(listed.items);
            match listed.next_page_token {
                Some(token) => page = PageRequest::after(MAX_PAGE_SIZE, token),
                None => return Ok(all),
            }
        }
    }

    /// Checks every delta with the grant rules, applies them in one transaction and answers
    /// the finished operation with the effective deltas.
    async fn apply(
        &self,
        principal: &Principal,
        resource: &ResourceRef,
        deltas: &[BindingDelta],
        description: &str,
        replace: bool,
    ) -> Result<Operation, Status> {
        let on = target(resource)?;
        for delta in deltas {
            Authorize::may_grant(self.ctx.authorizer, principal, &delta.role_id, on).map_err(
                |refused| {
                    Status::new(
                        refused.code,
                        refused.reason,
                        format!(
                            "{} {} to {}:{}: {}",
                            match delta.action {
                                BindingAction::Add => "granting",
                                BindingAction::Remove => "revoking",
                            },
                            quote(&delta.role_id),
                            delta.subject.subject_type.as_str(),
                            delta.subject.id,
                            refused.message
                        ),
                    )
                },
            )?;
        }
        let adds = deltas
            .iter()
            .filter(|d| d.action == BindingAction::Add)
            .count();
        let removes = deltas.len() - adds;
        if adds > removes {
            let cloud = self.cloud_of(resource).await?;
            self.ctx
                .quota(Quota::AccessBindings, &cloud, (adds - removes) as u64)
                .await?;
        }
        let written = self
            .ctx
            .store()
            .change_access_bindings(resource, deltas, self.ctx.now)
            .await?;
        let effective = self.ctx.applied(written).await;
        self.ctx
            .finished(
                principal,
                Finished {
                    resource_id: &resource.id,
                    description,
                    types: if replace {
                        types::SET_ACCESS_BINDINGS
                    } else {
                        types::UPDATE_ACCESS_BINDINGS
                    },
                    metadata: &json!({"resourceId": resource.id}),
                    response: &operation::message(&BindingsResultMessage {
                        effective_deltas: effective.iter().map(delta_message).collect(),
                    }),
                },
            )
            .await
    }
}

/// The authorization target of a bindable resource.
fn target(resource: &ResourceRef) -> Result<Resource<'_>, Status> {
    Resource::of(resource)
        .ok_or_else(|| Status::internal(&format!("{} has no access bindings", resource.kind)))
}

fn noun(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Cloud => "cloud",
        ResourceKind::Folder => "folder",
        ResourceKind::ServiceAccount => "service account",
        ResourceKind::Federation => "federation",
        _ => "resource",
    }
}

/// `yandex.cloud.access.AccessBinding` in proto3 JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AccessBinding)]
pub struct BindingMessage {
    pub role_id: String,
    pub subject: SubjectMessage,
}

/// `yandex.cloud.access.Subject` in proto3 JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Subject)]
pub struct SubjectMessage {
    /// A service account id, or `allAuthenticatedUsers`, `allUsers` for `system`.
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = String, examples("serviceAccount", "system"))]
    pub subject_type: &'static str,
}

/// `yandex.cloud.access.AccessBindingDelta` in proto3 JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AccessBindingDelta)]
pub struct DeltaMessage {
    #[schema(value_type = String, examples("ADD", "REMOVE"))]
    pub action: &'static str,
    pub access_binding: BindingMessage,
}

/// `yandex.cloud.access.AccessBindingsOperationResult` in proto3 JSON: the response of the
/// set and update operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AccessBindingsOperationResult)]
pub struct BindingsResultMessage {
    pub effective_deltas: Vec<DeltaMessage>,
}

pub fn binding_message(role_id: &str, subject: &Subject) -> BindingMessage {
    BindingMessage {
        role_id: role_id.to_owned(),
        subject: SubjectMessage {
            id: subject.id.clone(),
            subject_type: subject.subject_type.as_str(),
        },
    }
}

pub fn delta_message(delta: &BindingDelta) -> DeltaMessage {
    DeltaMessage {
        action: delta.action.as_str(),
        access_binding: binding_message(&delta.role_id, &delta.subject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::status::Code;

    fn binding(role: &str, subject_type: &str, id: &str) -> RequestedBinding {
        RequestedBinding {
            role_id: role.into(),
            subject_id: id.into(),
            subject_type: subject_type.into(),
        }
    }

    #[test]
    fn bindings_name_a_role_and_a_subject_this_gateway_can_match() {
        let accepted = [
            binding("viewer", "serviceAccount", "aje1"),
            binding("viewer", "system", "allUsers"),
            binding("viewer", "system", "allAuthenticatedUsers"),
        ];
        for b in &accepted {
            assert!(check_binding(b).is_ok(), "{b:?}");
        }
        let refused = [
            ("no role", binding("", "serviceAccount", "aje1")),
            (
                "long role",
                binding(&"r".repeat(65), "serviceAccount", "aje1"),
            ),
            ("no subject", binding("viewer", "serviceAccount", "")),
            (
                "long subject",
                binding("viewer", "serviceAccount", &"a".repeat(101)),
            ),
            ("no type", binding("viewer", "", "aje1")),
            ("user accounts", binding("viewer", "userAccount", "aje1")),
            ("groups", binding("viewer", "group", "g")),
            ("unknown type", binding("viewer", "robot", "aje1")),
            ("unknown system", binding("viewer", "system", "everyone")),
        ];
        for (name, b) in &refused {
            let status = check_binding(b).expect_err(name);
            assert_eq!(status.code, Code::InvalidArgument, "{name}");
        }
    }

    #[test]
    fn deltas_are_add_or_remove() {
        let b = binding("viewer", "serviceAccount", "aje1");
        for (action, expected) in [
            ("ADD", BindingAction::Add),
            ("REMOVE", BindingAction::Remove),
        ] {
            let delta = check_delta(&RequestedDelta {
                action: action.into(),
                binding: b.clone(),
            })
            .unwrap();
            assert_eq!(delta.action, expected);
        }
        for action in ["", "ACCESS_BINDING_ACTION_UNSPECIFIED", "add", "DELETE"] {
            assert!(
                check_delta(&RequestedDelta {
                    action: action.into(),
                    binding: b.clone(),
                })
                .is_err(),
                "{action}"
            );
        }
    }

    #[test]
    fn every_bindable_kind_has_its_three_methods() {
        for kind in ResourceKind::ALL {
            assert_eq!(methods(kind).is_some(), kind.is_bindable(), "{kind}");
        }
        let delta = BindingDelta {
            action: BindingAction::Remove,
            role_id: "viewer".into(),
            subject: Subject {
                subject_type: SubjectType::System,
                id: "allUsers".into(),
            },
        };
        assert_eq!(
            operation::message(&delta_message(&delta)),
            json!({"action": "REMOVE", "accessBinding": {"roleId": "viewer",
                   "subject": {"id": "allUsers", "type": "system"}}})
        );
    }
}
