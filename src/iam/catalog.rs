//! The roles and permissions of downstream services, declared in the configuration
//! (`[[permissions]]`, `[[roles]]`), beside the built-in IAM roles of [`super::roles`].
//!
//! - A configured permission (`lockbox.secrets.getPayload`) has a [`Class`]: the primitive
//!   roles cover it by class exactly as they cover the built-in ones (`auditor` the
//!   `read_metadata` ones, `viewer` also `read`, `editor` also `manage`, `admin` also
//!   `manage_access`; the owner roles include `admin`).
//! - A configured role (`lockbox.payloadViewer`) grants its own permissions and those of the
//!   configured roles it includes, transitively. Configured roles get one bit each of a
//!   [`ConfiguredRoles`] set (at most [`MAX_CONFIGURED_ROLES`]), which the authorization index
//!   keeps beside the built-in [`RoleSet`] of every (resource, subject) pair.
//! - [`Catalog::grantors`] answers, for any permission name — configured or built-in — the
//!   built-in roles and the configured roles that grant it: one hash lookup, so a check of a
//!   named permission costs what a check of a built-in one does.
//!
//! - An API-key scope (`[[api_key_scopes]]`, `yc.lockbox.payload.read`) names permissions,
//!   built-in or configured: an API key limited to scopes may be used only for the permissions
//!   they name ([`Catalog::scope_permits`]); `ApiKeyService.ListScopes` lists them.
//!
//! A catalog is built from a validated configuration ([`crate::config::validate`] refuses bad
//! ids, clashes with the built-in names, unknown references, cycles and too many roles, with
//! the file and line) and swapped whole on reload
//! ([`super::authz::AuthzIndex::set_catalog`]).

use std::collections::{BTreeMap, HashMap};

use super::roles::{Class, Permission, Role, RoleSet};

/// Most roles a configuration may declare: one bit each of [`ConfiguredRoles`].
pub const MAX_CONFIGURED_ROLES: usize = 64;

/// A set of configured roles, one bit each (bit `i`: the catalog's `i`-th role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConfiguredRoles(u64);

impl ConfiguredRoles {
    pub const EMPTY: ConfiguredRoles = ConfiguredRoles(0);

    /// The set of the one role of bit `bit` (below [`MAX_CONFIGURED_ROLES`]).
    pub const fn bit(bit: u8) -> ConfiguredRoles {
        ConfiguredRoles(1 << (bit as u32 % 64))
    }

    pub const fn union(self, other: ConfiguredRoles) -> ConfiguredRoles {
        ConfiguredRoles(self.0 | other.0)
    }

    pub const fn without(self, other: ConfiguredRoles) -> ConfiguredRoles {
        ConfiguredRoles(self.0 & !other.0)
    }

    pub const fn contains(self, other: ConfiguredRoles) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersects(self, other: ConfiguredRoles) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Who grants a permission: the built-in roles and the configured roles whose closure holds
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grantors {
    pub roles: RoleSet,
    pub configured: ConfiguredRoles,
}

/// A permission as the configuration declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionDecl {
    pub id: String,
    pub class: Class,
}

/// A role as the configuration declares it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleDecl {
    pub id: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub includes: Vec<String>,
}

/// An API-key scope as the configuration declares it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiKeyScopeDecl {
    pub id: String,
    /// Permission names, built-in or configured.
    pub permissions: Vec<String>,
}

/// A configured role with everything it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredRole {
    pub id: String,
    pub description: String,
    /// Its own permissions and those of every role it includes, transitively, sorted.
    pub permissions: Vec<String>,
}

/// The configured roles and permissions, and who grants every permission. Cheap to share
/// (kept in an `Arc`); a reload builds a new one.
#[derive(Debug, Clone)]
pub struct Catalog {
    grantors: HashMap<Box<str>, Grantors>,
    roles: Vec<ConfiguredRole>,
    bits: HashMap<Box<str>, u8>,
    /// API-key scope id → the permissions it names, sorted and without repeats; in id order.
    scopes: BTreeMap<Box<str>, Box<[Box<str>]>>,
}

/// The built-in permissions only: no configured role or permission.
impl Default for Catalog {
    fn default() -> Catalog {
        Catalog::new(&[], &[])
    }
}

impl Catalog {
    /// The catalog of `permissions` and `roles`, which [`crate::config::validate`] has
    /// checked. Should they hold what it refuses anyway: references to unknown names are
    /// ignored, roles beyond [`MAX_CONFIGURED_ROLES`] are dropped, and a cycle of inclusions
    /// gives every role of the cycle the union of their permissions.
    pub fn new(permissions: &[PermissionDecl], roles: &[RoleDecl]) -> Catalog {
        let roles = &roles[..roles.len().min(MAX_CONFIGURED_ROLES)];
        let bits: HashMap<Box<str>, u8> = roles
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str().into(), i as u8))
            .collect();
        // Per role, the roles it reaches (itself included), until nothing changes.
        let mut reach: Vec<ConfiguredRoles> = (0..roles.len())
            .map(|i| ConfiguredRoles::bit(i as u8))
            .collect();
        let mut changed = true;
        while changed {
            changed = false;
            for (i, role) in roles.iter().enumerate() {
                let mut grown = reach[i];
                for included in &role.includes {
                    if let Some(&b) = bits.get(included.as_str()) {
                        grown = grown.union(reach[usize::from(b)]);
                    }
                }
                if grown != reach[i] {
                    reach[i] = grown;
                    changed = true;
                }
            }
        }
        let mut grantors: HashMap<Box<str>, Grantors> = Permission::ALL
            .iter()
            .map(|p| {
                (
                    p.as_str().into(),
                    Grantors {
                        roles: Role::granting(*p),
                        configured: ConfiguredRoles::EMPTY,
                    },
                )
            })
            .collect();
        for p in permissions {
            grantors.entry(p.id.as_str().into()).or_insert(Grantors {
                roles: p.class.covering(),
                configured: ConfiguredRoles::EMPTY,
            });
        }
        let mut closures: Vec<Vec<String>> = vec![Vec::new(); roles.len()];
        for (holder, reached) in reach.iter().enumerate() {
            let holder_bit = ConfiguredRoles::bit(holder as u8);
            for (i, role) in roles.iter().enumerate() {
                if !reached.contains(ConfiguredRoles::bit(i as u8)) {
                    continue;
                }
                for p in &role.permissions {
                    if let Some(g) = grantors.get_mut(p.as_str())
                        && permissions.iter().any(|d| &d.id == p)
                    {
                        g.configured = g.configured.union(holder_bit);
                        closures[holder].push(p.clone());
                    }
                }
            }
        }
        let roles = roles
            .iter()
            .zip(closures)
            .map(|(r, mut permissions)| {
                permissions.sort();
                permissions.dedup();
                ConfiguredRole {
                    id: r.id.clone(),
                    description: r.description.clone(),
                    permissions,
                }
            })
            .collect();
        Catalog {
            grantors,
            roles,
            bits,
            scopes: BTreeMap::new(),
        }
    }

    /// This catalog with the API-key scopes `scopes`, which [`crate::config::validate`] has
    /// checked (a later declaration of an id replaces an earlier one).
    pub fn with_api_key_scopes(mut self, scopes: &[ApiKeyScopeDecl]) -> Catalog {
        self.scopes = scopes
            .iter()
            .map(|s| {
                let mut permissions: Vec<Box<str>> =
                    s.permissions.iter().map(|p| p.as_str().into()).collect();
                permissions.sort();
                permissions.dedup();
                (s.id.as_str().into(), permissions.into_boxed_slice())
            })
            .collect();
        self
    }

    /// The API-key scopes, in id order, each with the permissions it names.
    pub fn api_key_scopes(&self) -> impl Iterator<Item = (&str, &[Box<str>])> {
        self.scopes.iter().map(|(id, p)| (&**id, &**p))
    }

    /// Whether `id` is a declared API-key scope.
    pub fn is_api_key_scope(&self, id: &str) -> bool {
        self.scopes.contains_key(id)
    }

    /// Whether the API-key scope `scope` names `permission`. A scope the catalog does not
    /// declare (any more) names nothing.
    pub fn scope_permits(&self, scope: &str, permission: &str) -> bool {
        self.scopes.get(scope).is_some_and(|permissions| {
            permissions
                .binary_search_by(|p| (**p).cmp(permission))
                .is_ok()
        })
    }

    /// Who grants the permission named `name` (configured or built-in); `None` when no
    /// permission has that name.
    pub fn grantors(&self, name: &str) -> Option<Grantors> {
        self.grantors.get(name).copied()
    }

    /// The bit of the configured role `id`; `None` for any other id (built-in roles
    /// included).
    pub fn role(&self, id: &str) -> Option<ConfiguredRoles> {
        self.bits.get(id).map(|&b| ConfiguredRoles::bit(b))
    }

    /// The configured roles, in the order they were declared.
    pub fn roles(&self) -> &[ConfiguredRole] {
        &self.roles
    }

    /// Whether `name` is a configured permission (not a built-in one).
    pub fn is_configured_permission(&self, name: &str) -> bool {
        Permission::parse(name).is_none() && self.grantors.contains_key(name)
    }
}

/// Why a configured id is refused: the rules [`crate::config::validate`] applies.
pub mod rules {
    use super::super::roles::{Permission, Role};

    /// The services whose roles and permissions are the gateway's own: nothing configured
    /// may be named in them.
    pub const RESERVED_SERVICES: [&str; 3] = ["iam", "resource-manager", "organization-manager"];

    /// Longest configured role id (a binding's `role_id` is at most 64 characters).
    pub const MAX_ROLE_ID_CHARS: usize = 64;
    /// Longest configured permission id.
    pub const MAX_PERMISSION_ID_CHARS: usize = 128;
    /// Longest API-key scope id (`CreateApiKeyRequest.scopes`: length ≤ 256).
    pub const MAX_SCOPE_ID_CHARS: usize = 256;

    /// An API-key scope id: 1 to 256 letters, digits, dots, hyphens and underscores, starting
    /// with a letter or digit (Yandex's look like `yc.ydb.topics.manage`).
    pub fn api_key_scope_id(id: &str) -> Result<(), String> {
        let shaped = (1..=MAX_SCOPE_ID_CHARS).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if shaped {
            Ok(())
        } else {
            Err(format!(
                "API-key scope id {id:?} must be 1 to {MAX_SCOPE_ID_CHARS} letters, digits, dots, hyphens and underscores, starting with a letter or digit (e.g. \"yc.lockbox.payload.read\")"
            ))
        }
    }

    /// A service name: lowercase letters, digits and inner hyphens, starting with a letter.
    fn service(segment: &str) -> bool {
        segment.starts_with(|c: char| c.is_ascii_lowercase())
            && !segment.ends_with('-')
            && segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    /// A noun, verb or role name: letters and digits, starting with a lowercase letter
    /// (`secrets`, `getPayload`, `payloadViewer`).
    fn word(segment: &str) -> bool {
        segment.starts_with(|c: char| c.is_ascii_lowercase())
            && segment.chars().all(|c| c.is_ascii_alphanumeric())
    }

    fn reserved(service: &str) -> Option<String> {
        RESERVED_SERVICES.contains(&service).then(|| {
            format!(
                "the service {service:?} is the gateway's own ({}): configured roles and permissions belong to other services",
                RESERVED_SERVICES.join(", ")
            )
        })
    }

    /// `service.noun.verb` (`lockbox.secrets.getPayload`), outside the built-in services.
    pub fn permission_id(id: &str) -> Result<(), String> {
        let parts: Vec<&str> = id.split('.').collect();
        let shaped = id.len() <= MAX_PERMISSION_ID_CHARS
            && parts.len() == 3
            && service(parts[0])
            && parts[1..].iter().all(|s| word(s));
        if !shaped {
            return Err(format!(
                "permission id {id:?} must be service.noun.verb (e.g. \"lockbox.secrets.getPayload\"), at most {MAX_PERMISSION_ID_CHARS} characters: a lowercase service name, then letters and digits"
            ));
        }
        if Permission::parse(id).is_some() {
            return Err(format!("permission id {id:?} is a built-in IAM permission"));
        }
        reserved(parts[0]).map_or(Ok(()), Err)
    }

    /// `service.roleName` or `service.noun.roleName` (`lockbox.payloadViewer`), outside the
    /// built-in services.
    pub fn role_id(id: &str) -> Result<(), String> {
        let parts: Vec<&str> = id.split('.').collect();
        let shaped = id.len() <= MAX_ROLE_ID_CHARS
            && (2..=3).contains(&parts.len())
            && service(parts[0])
            && parts[1..].iter().all(|s| word(s));
        if !shaped {
            return Err(format!(
                "role id {id:?} must be service.roleName or service.noun.roleName (e.g. \"lockbox.payloadViewer\"), at most {MAX_ROLE_ID_CHARS} characters: a lowercase service name, then letters and digits"
            ));
        }
        if Role::parse(id).is_some() {
            return Err(format!("role id {id:?} is a built-in IAM role"));
        }
        reserved(parts[0]).map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(id: &str, class: Class) -> PermissionDecl {
        PermissionDecl {
            id: id.into(),
            class,
        }
    }

    fn role(id: &str, permissions: &[&str], includes: &[&str]) -> RoleDecl {
        RoleDecl {
            id: id.into(),
            description: String::new(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            includes: includes.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn lockbox() -> Catalog {
        Catalog::new(
            &[
                perm("lockbox.secrets.get", Class::ReadMetadata),
                perm("lockbox.secrets.getPayload", Class::Read),
                perm("lockbox.secrets.update", Class::Manage),
                perm("lockbox.secrets.setAccessBindings", Class::ManageAccess),
            ],
            &[
                role("lockbox.auditor", &["lockbox.secrets.get"], &[]),
                role(
                    "lockbox.payloadViewer",
                    &["lockbox.secrets.getPayload"],
                    &[],
                ),
                role(
                    "lockbox.viewer",
                    &[],
                    &["lockbox.auditor", "lockbox.payloadViewer"],
                ),
                role(
                    "lockbox.editor",
                    &["lockbox.secrets.update"],
                    &["lockbox.viewer"],
                ),
            ],
        )
    }

    #[test]
    fn primitive_roles_cover_configured_permissions_by_class() {
        let c = lockbox();
        let covers = |p: &str, r: Role| c.grantors(p).unwrap().roles.contains(r);
        assert!(covers("lockbox.secrets.get", Role::Auditor));
        assert!(covers("lockbox.secrets.get", Role::Viewer));
        assert!(!covers("lockbox.secrets.getPayload", Role::Auditor));
        assert!(covers("lockbox.secrets.getPayload", Role::Viewer));
        assert!(covers("lockbox.secrets.getPayload", Role::Editor));
        assert!(covers("lockbox.secrets.getPayload", Role::Admin));
        assert!(!covers("lockbox.secrets.update", Role::Viewer));
        assert!(covers("lockbox.secrets.update", Role::Editor));
        assert!(!covers("lockbox.secrets.setAccessBindings", Role::Editor));
        assert!(covers("lockbox.secrets.setAccessBindings", Role::Admin));
        assert!(covers(
            "lockbox.secrets.setAccessBindings",
            Role::ResourceManagerCloudsOwner
        ));
        assert!(covers(
            "lockbox.secrets.getPayload",
            Role::OrganizationManagerOrganizationsOwner
        ));
        // Service roles of the IAM never cover another service's permissions.
        assert!(!covers("lockbox.secrets.get", Role::IamAdmin));
        assert!(!covers("lockbox.secrets.get", Role::ResourceManagerAdmin));
    }

    #[test]
    fn configured_roles_grant_their_permissions_and_those_they_include() {
        let c = lockbox();
        let grants = |p: &str, r: &str| {
            c.grantors(p)
                .unwrap()
                .configured
                .contains(c.role(r).unwrap())
        };
        assert!(grants(
            "lockbox.secrets.getPayload",
            "lockbox.payloadViewer"
        ));
        assert!(!grants("lockbox.secrets.get", "lockbox.payloadViewer"));
        assert!(grants("lockbox.secrets.get", "lockbox.viewer"));
        assert!(grants("lockbox.secrets.getPayload", "lockbox.viewer"));
        assert!(grants("lockbox.secrets.getPayload", "lockbox.editor"));
        assert!(grants("lockbox.secrets.update", "lockbox.editor"));
        assert!(!grants("lockbox.secrets.update", "lockbox.viewer"));
        let editor = c.roles().iter().find(|r| r.id == "lockbox.editor").unwrap();
        assert_eq!(
            editor.permissions,
            [
                "lockbox.secrets.get",
                "lockbox.secrets.getPayload",
                "lockbox.secrets.update"
            ]
        );
    }

    #[test]
    fn built_in_permissions_are_answered_too_and_unknown_names_are_not() {
        let c = lockbox();
        let g = c.grantors("iam.serviceAccounts.get").unwrap();
        assert_eq!(g.roles, Role::granting(Permission::ServiceAccountsGet));
        assert!(g.configured.is_empty());
        assert!(c.grantors("lockbox.secrets.delete").is_none());
        assert!(c.role("viewer").is_none());
        assert!(c.is_configured_permission("lockbox.secrets.get"));
        assert!(!c.is_configured_permission("iam.serviceAccounts.get"));
    }

    #[test]
    fn api_key_scopes_permit_the_permissions_they_name_and_nothing_else() {
        let c = lockbox().with_api_key_scopes(&[
            ApiKeyScopeDecl {
                id: "yc.lockbox.payload.read".into(),
                permissions: vec![
                    "lockbox.secrets.getPayload".into(),
                    "lockbox.secrets.get".into(),
                ],
            },
            ApiKeyScopeDecl {
                id: "yc.iam.authorize".into(),
                permissions: vec!["iam.accessService.authorize".into()],
            },
        ]);
        assert!(c.scope_permits("yc.lockbox.payload.read", "lockbox.secrets.getPayload"));
        assert!(c.scope_permits("yc.lockbox.payload.read", "lockbox.secrets.get"));
        assert!(!c.scope_permits("yc.lockbox.payload.read", "lockbox.secrets.update"));
        assert!(c.scope_permits("yc.iam.authorize", "iam.accessService.authorize"));
        assert!(!c.scope_permits("yc.unknown", "lockbox.secrets.get"));
        assert!(c.is_api_key_scope("yc.iam.authorize"));
        assert!(!c.is_api_key_scope("yc.iam"));
        let ids: Vec<&str> = c.api_key_scopes().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            ["yc.iam.authorize", "yc.lockbox.payload.read"],
            "id order"
        );
        assert_eq!(Catalog::default().api_key_scopes().count(), 0);
    }

    #[test]
    fn api_key_scope_ids_are_checked() {
        for good in [
            "yc.lockbox.payload.read",
            "yc.ai.foundationModels.execute",
            "a",
            "x_1-2",
        ] {
            assert!(rules::api_key_scope_id(good).is_ok(), "{good}");
        }
        let long = "s".repeat(257);
        for bad in [
            "",
            ".yc",
            "yc lockbox",
            "yc/lockbox",
            "ус.lockbox",
            long.as_str(),
        ] {
            assert!(rules::api_key_scope_id(bad).is_err(), "{bad}");
        }
        assert!(rules::api_key_scope_id(&"s".repeat(256)).is_ok());
    }

    #[test]
    fn a_cycle_of_inclusions_still_ends() {
        let c = Catalog::new(
            &[perm("svc.things.read", Class::Read)],
            &[
                role("svc.a", &["svc.things.read"], &["svc.b"]),
                role("svc.b", &[], &["svc.a"]),
            ],
        );
        let g = c.grantors("svc.things.read").unwrap();
        assert!(g.configured.contains(c.role("svc.a").unwrap()));
        assert!(g.configured.contains(c.role("svc.b").unwrap()));
    }

    #[test]
    fn ids_follow_the_service_syntax_and_stay_out_of_the_built_in_names() {
        assert!(rules::permission_id("lockbox.secrets.getPayload").is_ok());
        assert!(rules::permission_id("my-svc.things2.list").is_ok());
        for bad in [
            "lockbox.getPayload",
            "lockbox.secrets.get.payload",
            "Lockbox.secrets.get",
            "lockbox.secrets.get-payload",
            "lockbox..get",
            "",
        ] {
            assert!(rules::permission_id(bad).is_err(), "{bad}");
        }
        assert!(
            rules::permission_id("iam.serviceAccounts.get")
                .unwrap_err()
                .contains("built-in")
        );
        assert!(
            rules::permission_id("iam.things.read")
                .unwrap_err()
                .contains("gateway's own")
        );
        assert!(rules::role_id("lockbox.payloadViewer").is_ok());
        assert!(rules::role_id("lockbox.secrets.viewer").is_ok());
        for bad in [
            "viewer",
            "lockbox",
            "lockbox.a.b.c",
            "lockbox.payload_viewer",
        ] {
            assert!(rules::role_id(bad).is_err(), "{bad}");
        }
        assert!(
            rules::role_id("iam.admin")
                .unwrap_err()
                .contains("built-in")
        );
        assert!(
            rules::role_id("resource-manager.reader")
                .unwrap_err()
                .contains("gateway's own")
        );
        let long = format!("svc.{}", "a".repeat(70));
        assert!(rules::role_id(&long).is_err());
    }
}
