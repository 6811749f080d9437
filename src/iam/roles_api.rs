//! `RoleService` (`List`, `Get`) over the role graph, independent of the transport (the REST
//! routes are [`crate::http::iam_roles`]): the built-in roles of [`Role::ALL`] and the roles
//! of downstream services the configuration declares ([`Catalog::roles`]), in id order.
//!
//! | rule | refusal |
//! |---|---|
//! | the caller is authenticated (the methods need no role: [`Method::RoleList`], [`Method::RoleGet`]) | UNAUTHENTICATED (before this module) |
//! | `page_size` 0–1000 (0: 100), `page_token` one this list returned, `filter` empty | INVALID_ARGUMENT |
//! | `role_id` 1–64 characters | INVALID_ARGUMENT |
//! | the role exists | NOT_FOUND |
//!
//! Roles are not stored: they change with the gateway's version and its configuration (on
//! reload), so a page token names the last role id of its page and the next page starts after
//! it, whatever the catalog is then.

use serde::Serialize;
use utoipa::ToSchema;

use crate::exchange::quote;

use super::authn::Principal;
use super::catalog::Catalog;
use super::hierarchy_api::ListRequest;
use super::paging;
use super::roles::Role;
use super::service::{Context, Method};
use super::status::Status;
use super::store::Page;
use super::validate;

/// `yandex.cloud.iam.v1.Role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleMessage {
    #[schema(examples("lockbox.payloadViewer"))]
    pub id: String,
    pub description: String,
}

/// The role service of one call: the request's context and the catalog in force.
pub struct Roles<'a> {
    pub ctx: Context<'a>,
    pub catalog: &'a Catalog,
}

impl Roles<'_> {
    /// Every role, built-in and configured, sorted by id.
    fn all(&self) -> Vec<RoleMessage> {
        let mut roles: Vec<RoleMessage> = Role::ALL
            .iter()
            .map(|r| RoleMessage {
                id: r.id().to_owned(),
                description: r.description().to_owned(),
            })
            .chain(self.catalog.roles().iter().map(|r| RoleMessage {
                id: r.id.clone(),
                description: r.description.clone(),
            }))
            .collect();
        roles.sort_by(|a, b| a.id.cmp(&b.id));
        roles
    }

    /// `RoleService.List`: a page of roles after the page token's.
    pub fn list(
        &self,
        principal: &Principal,
        request: &ListRequest,
    ) -> Result<Page<RoleMessage>, Status> {
        self.ctx.authorize(principal, Method::RoleList, &[])?;
        let size = validate::page(request.page_size, &request.page_token)?;
        let after = paging::after(&request.page_token)?;
        if !request.filter.trim().is_empty() {
            return Err(Status::invalid_argument(
                validate::REASON,
                format!(
                    "filter {}: roles cannot be filtered; list them all",
                    quote(&request.filter)
                ),
            ));
        }
        let mut rest = self
            .all()
            .into_iter()
            .filter(|r| after.as_deref().is_none_or(|after| r.id.as_str() > after))
            .peekable();
        let items: Vec<RoleMessage> = rest.by_ref().take(size).collect();
        let next_page_token = match (rest.peek(), items.last()) {
            (Some(_), Some(last)) => Some(paging::page_token(&last.id)),
            _ => None,
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }

    /// `RoleService.Get`.
    pub fn get(&self, principal: &Principal, role_id: &str) -> Result<RoleMessage, Status> {
        self.ctx.authorize(principal, Method::RoleGet, &[])?;
        let length = role_id.chars().count();
        if length == 0 || length > 64 {
            return Err(Status::invalid_argument(
                validate::REASON,
                format!("role_id {}: must be 1 to 64 characters", quote(role_id)),
            ));
        }
        self.all()
            .into_iter()
            .find(|r| r.id == role_id)
            .ok_or_else(|| Status::not_found(format!("role {} not found", quote(role_id))))
    }
}
