//! The role graph as data: the permissions the IAM plane checks, the roles that grant them, the
//! resource types roles are granted on, and every management method with the permissions it
//! needs and on which resource.
//!
//! - A [`Permission`] is one action on one resource type (`iam.serviceAccounts.create`,
//!   `iam.workloadIdentityFederations.use`, `resource-manager.folders.setAccessBindings`). Each
//!   belongs to a [`Class`]; the primitive roles are defined by classes (`auditor` reads
//!   metadata, `viewer` reads, `editor` manages, `admin` manages access), the service roles by
//!   lists.
//! - A [`Role`] has its own permissions and the roles it includes. What a role grants in all is
//!   the union of its own permissions and those of every role it includes, transitively:
//!   [`Role::permissions`] reads that closure, computed once when the crate is compiled (a
//!   `const` fixed point over the inclusions), never listed by hand. "A broader role also
//!   satisfies" follows from it. The tests refuse a cycle of inclusions.
//! - A [`Method`] is an RPC of the REST/gRPC API; [`Method::requirements`] says which
//!   permission it needs on which of the resources it names ([`Method::targets`]).
//! - Role ids from requests are checked with [`Role::parse`] / [`check_role_id`]: unknown ids
//!   are refused. [`Role::ALL`], [`Role::id`] and [`Role::description`] serve the RoleService.
//!
//! This module is pure data and computation; [`super::authz`] applies it to access bindings.
//! The decisions taken where the Yandex documentation is silent are listed in
//! `docs/design.md#roles-and-authorization`.

use std::fmt;

use crate::iam::ResourceKind;

/// The resource types roles are granted on and permissions are checked on, from the top of the
/// hierarchy down: organization → cloud → folder → service account or federation. Roles granted
/// on one apply to everything below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Not kept by the store (a cloud only names its organization); bindings on an
    /// organization come from elsewhere (the bootstrap configuration).
    Organization,
    Cloud,
    Folder,
    ServiceAccount,
    Federation,
}

impl Scope {
    /// Every scope, parents before children.
    pub const ALL: [Scope; 5] = [
        Scope::Organization,
        Scope::Cloud,
        Scope::Folder,
        Scope::ServiceAccount,
        Scope::Federation,
    ];

    /// The Yandex resource type (`resource-manager.folder`, `iam.serviceAccount`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Organization => "organization-manager.organization",
            Scope::Cloud => "resource-manager.cloud",
            Scope::Folder => "resource-manager.folder",
            Scope::ServiceAccount => "iam.serviceAccount",
            Scope::Federation => "iam.workloadIdentityFederation",
        }
    }

    /// The scope whose Yandex resource type is `resource_type`.
    pub fn parse(resource_type: &str) -> Option<Scope> {
        Scope::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == resource_type)
    }

    /// The scope a resource of this scope lives in: the only parent link the hierarchy
    /// accepts. Because each link goes one step up, a walk to the top takes at most four
    /// steps and can never loop.
    pub const fn parent(self) -> Option<Scope> {
        match self {
            Scope::Organization => None,
            Scope::Cloud => Some(Scope::Organization),
            Scope::Folder => Some(Scope::Cloud),
            Scope::ServiceAccount | Scope::Federation => Some(Scope::Folder),
        }
    }

    /// The scope of a store resource kind; `None` for kinds nothing is granted on (keys,
    /// credentials, bindings and operations are authorized on the resource they belong to).
    pub const fn of_kind(kind: ResourceKind) -> Option<Scope> {
        match kind {
            ResourceKind::Cloud => Some(Scope::Cloud),
            ResourceKind::Folder => Some(Scope::Folder),
            ResourceKind::ServiceAccount => Some(Scope::ServiceAccount),
            ResourceKind::Federation => Some(Scope::Federation),
            ResourceKind::FederatedCredential
            | ResourceKind::AuthorizedKey
            | ResourceKind::AccessKey
            | ResourceKind::ApiKey
            | ResourceKind::AccessBinding
            | ResourceKind::Operation
            | ResourceKind::RevokedToken => None,
        }
    }

    /// The permission to read a resource of this scope (what `get` needs).
    pub const fn read_permission(self) -> Permission {
        match self {
            Scope::Organization => Permission::OrganizationsGet,
            Scope::Cloud => Permission::CloudsGet,
            Scope::Folder => Permission::FoldersGet,
            Scope::ServiceAccount => Permission::ServiceAccountsGet,
            Scope::Federation => Permission::FederationsGet,
        }
    }

    /// The permission to list the access bindings of a resource of this scope.
    pub const fn list_bindings_permission(self) -> Permission {
        match self {
            Scope::Organization => Permission::OrganizationsListAccessBindings,
            Scope::Cloud => Permission::CloudsListAccessBindings,
            Scope::Folder => Permission::FoldersListAccessBindings,
            Scope::ServiceAccount => Permission::ServiceAccountsListAccessBindings,
            Scope::Federation => Permission::FederationsListAccessBindings,
        }
    }

    /// The permission to change the access bindings of a resource of this scope, by
    /// `setAccessBindings` or `updateAccessBindings` alike.
    pub const fn set_bindings_permission(self) -> Permission {
        match self {
            Scope::Organization => Permission::OrganizationsSetAccessBindings,
            Scope::Cloud => Permission::CloudsSetAccessBindings,
            Scope::Folder => Permission::FoldersSetAccessBindings,
            Scope::ServiceAccount => Permission::ServiceAccountsSetAccessBindings,
            Scope::Federation => Permission::FederationsSetAccessBindings,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of access a permission gives; the primitive roles are defined by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Configuration and metadata (`auditor`).
    ReadMetadata,
    /// Reading beyond metadata (`viewer`).
    Read,
    /// Creating, changing, deleting and using resources (`editor`).
    Manage,
    /// Reading and changing access bindings (`admin`).
    ManageAccess,
    /// Granting and revoking the owner roles: held only by the owners, never by `admin`.
    Owner,
}

impl Class {
    /// The classes a configured permission may name, as written in the configuration
    /// (`class = "read"`): every class but [`Class::Owner`].
    pub const CONFIGURABLE: [(&'static str, Class); 4] = [
        ("read_metadata", Class::ReadMetadata),
        ("read", Class::Read),
        ("manage", Class::Manage),
        ("manage_access", Class::ManageAccess),
    ];

    /// The class named `name` in the configuration; `None` for any other name.
    pub fn parse(name: &str) -> Option<Class> {
        Class::CONFIGURABLE
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    }

    /// The primitive role defined by this class (`None` for [`Class::Owner`]).
    pub const fn primitive(self) -> Option<Role> {
        match self {
            Class::ReadMetadata => Some(Role::Auditor),
            Class::Read => Some(Role::Viewer),
            Class::Manage => Some(Role::Editor),
            Class::ManageAccess => Some(Role::Admin),
            Class::Owner => None,
        }
    }

    /// The roles that cover every permission of this class, configured ones included: its
    /// primitive role and every role that includes it, transitively (`viewer` covers `read`
    /// and `read_metadata`; `admin` and the owner roles cover all four).
    pub fn covering(self) -> RoleSet {
        let Some(primitive) = self.primitive() else {
            return RoleSet::EMPTY;
        };
        Role::ALL
            .iter()
            .copied()
            .filter(|r| r.includes_transitively(primitive))
            .fold(RoleSet::EMPTY, RoleSet::with)
    }
}

macro_rules! permissions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $class:ident;)*) => {
        /// One action on one resource type. The string forms are stable: they name
        /// permissions in refusals and, later, in the downstream authorization API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $($(#[$doc])* $variant,)*
        }

        impl Permission {
            /// Every permission, in declaration order (the order of [`PermissionSet`] bits).
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The permission's name, e.g. `iam.serviceAccounts.create`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }

            /// The class the primitive roles grant it by.
            pub const fn class(self) -> Class {
                match self {
                    $(Permission::$variant => Class::$class,)*
                }
            }
        }
    };
}

permissions! {
    OrganizationsGet = "organization-manager.organizations.get", ReadMetadata;
    OrganizationsListAccessBindings = "organization-manager.organizations.listAccessBindings", ManageAccess;
    OrganizationsSetAccessBindings = "organization-manager.organizations.setAccessBindings", ManageAccess;
    /// Grant or revoke `organization-manager.organizations.owner`.
    OrganizationsManageOwners = "organization-manager.organizations.manageOwners", Owner;

    CloudsGet = "resource-manager.clouds.get", ReadMetadata;
    /// Checked on the organization the cloud is created in.
    CloudsCreate = "resource-manager.clouds.create", Manage;
    CloudsUpdate = "resource-manager.clouds.update", Manage;
    CloudsDelete = "resource-manager.clouds.delete", Manage;
    CloudsListAccessBindings = "resource-manager.clouds.listAccessBindings", ManageAccess;
    CloudsSetAccessBindings = "resource-manager.clouds.setAccessBindings", ManageAccess;
    /// Grant or revoke `resource-manager.clouds.owner`.
    CloudsManageOwners = "resource-manager.clouds.manageOwners", Owner;

    FoldersGet = "resource-manager.folders.get", ReadMetadata;
    /// Checked on the cloud whose folders are listed.
    FoldersList = "resource-manager.folders.list", ReadMetadata;
    /// Checked on the cloud the folder is created in.
    FoldersCreate = "resource-manager.folders.create", Manage;
    FoldersUpdate = "resource-manager.folders.update", Manage;
    FoldersDelete = "resource-manager.folders.delete", Manage;
    FoldersListAccessBindings = "resource-manager.folders.listAccessBindings", ManageAccess;
    FoldersSetAccessBindings = "resource-manager.folders.setAccessBindings", ManageAccess;

    ServiceAccountsGet = "iam.serviceAccounts.get", ReadMetadata;
    /// Checked on the folder whose service accounts are listed.
    ServiceAccountsList = "iam.serviceAccounts.list", ReadMetadata;
    /// Checked on the folder the service account is created in.
    ServiceAccountsCreate = "iam.serviceAccounts.create", Manage;
    ServiceAccountsUpdate = "iam.serviceAccounts.update", Manage;
    ServiceAccountsDelete = "iam.serviceAccounts.delete", Manage;
    /// Name the service account in a request to another service (it acts on the caller's
    /// behalf).
    ServiceAccountsUse = "iam.serviceAccounts.use", Manage;
    /// Get an IAM token of the service account: impersonation.
    ServiceAccountsCreateIamToken = "iam.serviceAccounts.createIamToken", Manage;
    /// A service account's bindings are readable beyond `admin` (`iam.auditor`, `viewer`).
    ServiceAccountsListAccessBindings = "iam.serviceAccounts.listAccessBindings", Read;
    ServiceAccountsSetAccessBindings = "iam.serviceAccounts.setAccessBindings", ManageAccess;

    AuthorizedKeysGet = "iam.authorizedKeys.get", ReadMetadata;
    AuthorizedKeysList = "iam.authorizedKeys.list", ReadMetadata;
    AuthorizedKeysCreate = "iam.authorizedKeys.create", Manage;
    AuthorizedKeysUpdate = "iam.authorizedKeys.update", Manage;
    AuthorizedKeysDelete = "iam.authorizedKeys.delete", Manage;

    ApiKeysGet = "iam.apiKeys.get", ReadMetadata;
    ApiKeysList = "iam.apiKeys.list", ReadMetadata;
    ApiKeysCreate = "iam.apiKeys.create", Manage;
    ApiKeysUpdate = "iam.apiKeys.update", Manage;
    ApiKeysDelete = "iam.apiKeys.delete", Manage;

    AccessKeysGet = "iam.accessKeys.get", ReadMetadata;
    AccessKeysList = "iam.accessKeys.list", ReadMetadata;
    AccessKeysCreate = "iam.accessKeys.create", Manage;
    AccessKeysUpdate = "iam.accessKeys.update", Manage;
    AccessKeysDelete = "iam.accessKeys.delete", Manage;

    FederationsGet = "iam.workloadIdentityFederations.get", ReadMetadata;
    /// Checked on the folder whose federations are listed.
    FederationsList = "iam.workloadIdentityFederations.list", ReadMetadata;
    /// Checked on the folder the federation is created in.
    FederationsCreate = "iam.workloadIdentityFederations.create", Manage;
    FederationsUpdate = "iam.workloadIdentityFederations.update", Manage;
    FederationsDelete = "iam.workloadIdentityFederations.delete", Manage;
    /// Link service accounts to the federation (create federated credentials naming it).
    FederationsUse = "iam.workloadIdentityFederations.use", Manage;
    FederationsListAccessBindings = "iam.workloadIdentityFederations.listAccessBindings", ManageAccess;
    FederationsSetAccessBindings = "iam.workloadIdentityFederations.setAccessBindings", ManageAccess;

    /// Checked on the service account the credential lets act.
    FederatedCredentialsGet = "iam.federatedCredentials.get", ReadMetadata;
    FederatedCredentialsList = "iam.federatedCredentials.list", ReadMetadata;
    FederatedCredentialsCreate = "iam.federatedCredentials.create", Manage;
    FederatedCredentialsDelete = "iam.federatedCredentials.delete", Manage;

    UserAccountsListRefreshTokens = "iam.userAccounts.listRefreshTokens", Read;
    UserAccountsRevokeRefreshTokens = "iam.userAccounts.revokeRefreshTokens", Manage;

    /// Ask the Authorize API whether other subjects hold permissions on the resource and below
    /// it: what resource services call with (it reveals who may do what, so it is of the
    /// access class).
    AccessServiceAuthorize = "iam.accessService.authorize", ManageAccess;
}

const _: () = assert!(Permission::ALL.len() <= 128, "PermissionSet holds 128 bits");

impl Permission {
    /// The permission named `name`.
    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL.iter().copied().find(|p| p.as_str() == name)
    }

    const fn bit(self) -> u128 {
        1 << (self as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PermissionSet(u128);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    /// The permissions of `list`.
    pub const fn of(list: &[Permission]) -> PermissionSet {
        let mut bits = 0;
        let mut i = 0;
        while i < list.len() {
            bits |= list[i].bit();
            i += 1;
        }
        PermissionSet(bits)
    }

    /// Every permission of `class`.
    pub const fn of_class(class: Class) -> PermissionSet {
        let mut bits = 0;
        let mut i = 0;
        while i < Permission::ALL.len() {
            let p = Permission::ALL[i];
            if p.class() as u8 == class as u8 {
                bits |= p.bit();
            }
            i += 1;
        }
        PermissionSet(bits)
    }

    pub const fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub const fn union(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 | other.0)
    }

    pub const fn intersection(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 & other.0)
    }

    /// Whether every permission of `self` is in `other`.
    pub const fn is_subset(self, other: PermissionSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions in the set, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }
}

/// A set of roles, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoleSet(u64);

impl RoleSet {
    pub const EMPTY: RoleSet = RoleSet(0);

    pub const fn with(self, role: Role) -> RoleSet {
        RoleSet(self.0 | role.bit())
    }

    pub const fn without(self, role: Role) -> RoleSet {
        RoleSet(self.0 & !role.bit())
    }

    pub const fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    pub const fn intersects(self, other: RoleSet) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles in the set, in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.iter().copied().filter(move |r| self.contains(*r))
    }
}

/// Where a role's own permissions come from.
enum Own {
    /// Every permission of these classes (the primitive roles).
    Classes(&'static [Class]),
    /// These permissions (the service roles).
    List(&'static [Permission]),
}

/// One role as written down: its own permissions, the roles it includes, where it may be
/// granted.
struct RoleDef {
    id: &'static str,
    description: &'static str,
    own: Own,
    includes: &'static [Role],
    /// The scopes it may be granted on.
    on: &'static [Scope],
}

macro_rules! roles {
    ($($variant:ident,)*) => {
        /// A role. [`Role::ALL`] lists them; their data is in `Role::def`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Role {
            $($variant,)*
        }

        impl Role {
            /// Every role, in declaration order (the order of [`RoleSet`] bits).
            pub const ALL: &'static [Role] = &[$(Role::$variant,)*];
        }
    };
}

roles! {
    Auditor,
    Viewer,
    Editor,
    Admin,
    ResourceManagerAdmin,
    ResourceManagerCloudsOwner,
    OrganizationManagerAdmin,
    OrganizationManagerOrganizationsOwner,
    IamAuditor,
    IamViewer,
    IamEditor,
    IamAdmin,
    ServiceAccountsUser,
    ServiceAccountsAdmin,
    ServiceAccountsAccessKeyAdmin,
    ServiceAccountsApiKeyAdmin,
    ServiceAccountsAuthorizedKeyAdmin,
    ServiceAccountsKeyAdmin,
    ServiceAccountsTokenCreator,
    ServiceAccountsFederatedCredentialViewer,
    ServiceAccountsFederatedCredentialEditor,
    FederationsAuditor,
    FederationsViewer,
    FederationsUser,
    FederationsEditor,
    FederationsAdmin,
    RefreshTokenViewer,
    RefreshTokenRevoker,
    AccessServiceAuthorizer,
}

const _: () = assert!(Role::ALL.len() <= 64, "RoleSet holds 64 bits");

/// Every scope: where most roles may be granted.
const ANYWHERE: &[Scope] = &Scope::ALL;
/// Only on an organization.
const ORGANIZATION: &[Scope] = &[Scope::Organization];

impl Role {
    /// The role's data. Inclusions name only what the role adds to; the closure is computed.
    const fn def(self) -> RoleDef {
        use Permission as P;
        match self {
            Role::Auditor => RoleDef {
                id: "auditor",
                description: "Read the configuration and metadata of any resource, without \
                              access to data.",
                own: Own::Classes(&[Class::ReadMetadata]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::Viewer => RoleDef {
                id: "viewer",
                description: "Read any resource, data included.",
                own: Own::Classes(&[Class::Read]),
                includes: &[Role::Auditor],
                on: ANYWHERE,
            },
            Role::Editor => RoleDef {
                id: "editor",
                description: "Manage any resource, except assigning roles.",
                own: Own::Classes(&[Class::Manage]),
                includes: &[Role::Viewer],
                on: ANYWHERE,
            },
            Role::Admin => RoleDef {
                id: "admin",
                description: "Assign any role except resource-manager.clouds.owner and \
                              organization-manager.organizations.owner; manage any resource.",
                own: Own::Classes(&[Class::ManageAccess]),
                includes: &[Role::Editor],
                on: ANYWHERE,
            },
            Role::ResourceManagerAdmin => RoleDef {
                id: "resource-manager.admin",
                description: "Manage clouds and folders and access to them.",
                own: Own::List(&[
                    P::CloudsGet,
                    P::CloudsCreate,
                    P::CloudsUpdate,
                    P::CloudsDelete,
                    P::CloudsListAccessBindings,
                    P::CloudsSetAccessBindings,
                    P::FoldersGet,
                    P::FoldersList,
                    P::FoldersCreate,
                    P::FoldersUpdate,
                    P::FoldersDelete,
                    P::FoldersListAccessBindings,
                    P::FoldersSetAccessBindings,
                ]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::ResourceManagerCloudsOwner => RoleDef {
                id: "resource-manager.clouds.owner",
                description: "Own a cloud: everything admin may, and assign the owner role.",
                own: Own::List(&[P::CloudsManageOwners]),
                includes: &[Role::Admin, Role::ResourceManagerAdmin],
                on: &[Scope::Organization, Scope::Cloud],
            },
            Role::OrganizationManagerAdmin => RoleDef {
                id: "organization-manager.admin",
                description: "Manage an organization and assign roles on it and in it.",
                own: Own::List(&[
                    P::OrganizationsGet,
                    P::OrganizationsListAccessBindings,
                    P::OrganizationsSetAccessBindings,
                    P::CloudsListAccessBindings,
                    P::CloudsSetAccessBindings,
                    P::FoldersListAccessBindings,
                    P::FoldersSetAccessBindings,
                    P::ServiceAccountsListAccessBindings,
                    P::ServiceAccountsSetAccessBindings,
                    P::FederationsListAccessBindings,
                    P::FederationsSetAccessBindings,
                ]),
                includes: &[],
                on: ORGANIZATION,
            },
            Role::OrganizationManagerOrganizationsOwner => RoleDef {
                id: "organization-manager.organizations.owner",
                description: "Own an organization: everything its admins and cloud owners \
                              may, and assign the organization owner role.",
                own: Own::List(&[P::OrganizationsManageOwners]),
                includes: &[
                    Role::OrganizationManagerAdmin,
                    Role::ResourceManagerCloudsOwner,
                ],
                on: ORGANIZATION,
            },
            Role::IamAuditor => RoleDef {
                id: "iam.auditor",
                description: "View service accounts, their access bindings and keys, IAM \
                              operations, and the cloud and folder.",
                own: Own::List(&[
                    P::ServiceAccountsGet,
                    P::ServiceAccountsList,
                    P::ServiceAccountsListAccessBindings,
                    P::AuthorizedKeysGet,
                    P::AuthorizedKeysList,
                    P::ApiKeysGet,
                    P::ApiKeysList,
                    P::AccessKeysGet,
                    P::AccessKeysList,
                    P::CloudsGet,
                    P::FoldersGet,
                    P::FoldersList,
                ]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::IamViewer => RoleDef {
                id: "iam.viewer",
                description: "The same as iam.auditor.",
                own: Own::List(&[]),
                includes: &[Role::IamAuditor],
                on: ANYWHERE,
            },
            Role::IamEditor => RoleDef {
                id: "iam.editor",
                description: "Manage service accounts and their keys; create, modify and \
                              delete folders.",
                own: Own::List(&[
                    P::ServiceAccountsCreate,
                    P::ServiceAccountsUpdate,
                    P::ServiceAccountsDelete,
                    P::ServiceAccountsUse,
                    P::AuthorizedKeysCreate,
                    P::AuthorizedKeysUpdate,
                    P::AuthorizedKeysDelete,
                    P::ApiKeysCreate,
                    P::ApiKeysUpdate,
                    P::ApiKeysDelete,
                    P::AccessKeysCreate,
                    P::AccessKeysUpdate,
                    P::AccessKeysDelete,
                    P::FoldersCreate,
                    P::FoldersUpdate,
                    P::FoldersDelete,
                ]),
                includes: &[Role::IamViewer],
                on: ANYWHERE,
            },
            Role::IamAdmin => RoleDef {
                id: "iam.admin",
                description: "Manage service accounts, access to them and their keys, and \
                              folders; assign roles; get IAM tokens for service accounts; view \
                              workload identity federations.",
                own: Own::List(&[
                    P::FederationsGet,
                    P::FederationsList,
                    P::OrganizationsListAccessBindings,
                    P::OrganizationsSetAccessBindings,
                    P::CloudsListAccessBindings,
                    P::CloudsSetAccessBindings,
                    P::FoldersListAccessBindings,
                    P::FoldersSetAccessBindings,
                    P::ServiceAccountsListAccessBindings,
                    P::ServiceAccountsSetAccessBindings,
                    P::FederationsListAccessBindings,
                    P::FederationsSetAccessBindings,
                ]),
                includes: &[Role::IamEditor, Role::ServiceAccountsAdmin],
                on: ANYWHERE,
            },
            Role::ServiceAccountsUser => RoleDef {
                id: "iam.serviceAccounts.user",
                description: "View service accounts and act on behalf of them.",
                own: Own::List(&[
                    P::ServiceAccountsGet,
                    P::ServiceAccountsList,
                    P::ServiceAccountsUse,
                ]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::ServiceAccountsAdmin => RoleDef {
                id: "iam.serviceAccounts.admin",
                description: "Manage service accounts, access to them and their keys; get IAM \
                              tokens for them; view the folder.",
                own: Own::List(&[
                    P::ServiceAccountsCreate,
                    P::ServiceAccountsUpdate,
                    P::ServiceAccountsDelete,
                    P::ServiceAccountsListAccessBindings,
                    P::ServiceAccountsSetAccessBindings,
                    P::FoldersGet,
                ]),
                includes: &[
                    Role::ServiceAccountsUser,
                    Role::ServiceAccountsTokenCreator,
                    Role::ServiceAccountsKeyAdmin,
                ],
                on: ANYWHERE,
            },
            Role::ServiceAccountsAccessKeyAdmin => RoleDef {
                id: "iam.serviceAccounts.accessKeyAdmin",
                description: "Manage the static access keys of service accounts.",
                own: Own::List(&[
                    P::AccessKeysGet,
                    P::AccessKeysList,
                    P::AccessKeysCreate,
                    P::AccessKeysUpdate,
                    P::AccessKeysDelete,
                ]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::ServiceAccountsApiKeyAdmin => RoleDef {
                id: "iam.serviceAccounts.apiKeyAdmin",
                description: "Manage the API keys of service accounts.",
                own: Own::List(&[
                    P::ApiKeysGet,
                    P::ApiKeysList,
                    P::ApiKeysCreate,
                    P::ApiKeysUpdate,
                    P::ApiKeysDelete,
                ]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::ServiceAccountsAuthorizedKeyAdmin => RoleDef {
                id: "iam.serviceAccounts.authorizedKeyAdmin",
                description: "Manage the authorized keys of service accounts.",
                own: Own::List(&[
                    P::AuthorizedKeysGet,
                    P::AuthorizedKeysList,
                    P::AuthorizedKeysCreate,
                    P::AuthorizedKeysUpdate,
                    P::AuthorizedKeysDelete,
                ]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::ServiceAccountsKeyAdmin => RoleDef {
                id: "iam.serviceAccounts.keyAdmin",
                description: "Manage the static access keys, API keys and authorized keys of \
                              service accounts.",
                own: Own::List(&[]),
                includes: &[
                    Role::ServiceAccountsAccessKeyAdmin,
                    Role::ServiceAccountsApiKeyAdmin,
                    Role::ServiceAccountsAuthorizedKeyAdmin,
                ],
                on: ANYWHERE,
            },
            Role::ServiceAccountsTokenCreator => RoleDef {
                id: "iam.serviceAccounts.tokenCreator",
                description: "Get IAM tokens for service accounts (impersonation).",
                own: Own::List(&[P::ServiceAccountsCreateIamToken]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::ServiceAccountsFederatedCredentialViewer => RoleDef {
                id: "iam.serviceAccounts.federatedCredentialViewer",
                description: "View the federated credentials of service accounts.",
                own: Own::List(&[P::FederatedCredentialsGet, P::FederatedCredentialsList]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::ServiceAccountsFederatedCredentialEditor => RoleDef {
                id: "iam.serviceAccounts.federatedCredentialEditor",
                description: "View, create and delete the federated credentials of service \
                              accounts.",
                own: Own::List(&[P::FederatedCredentialsCreate, P::FederatedCredentialsDelete]),
                includes: &[Role::ServiceAccountsFederatedCredentialViewer],
                on: ANYWHERE,
            },
            Role::FederationsAuditor => RoleDef {
                id: "iam.workloadIdentityFederations.auditor",
                description: "View the metadata of workload identity federations.",
                own: Own::List(&[P::FederationsGet, P::FederationsList]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::FederationsViewer => RoleDef {
                id: "iam.workloadIdentityFederations.viewer",
                description: "View workload identity federations.",
                own: Own::List(&[]),
                includes: &[Role::FederationsAuditor],
                on: ANYWHERE,
            },
            Role::FederationsUser => RoleDef {
                id: "iam.workloadIdentityFederations.user",
                description: "Use workload identity federations: link service accounts to \
                              them.",
                own: Own::List(&[P::FederationsUse]),
                includes: &[],
                on: ANYWHERE,
            },
            Role::FederationsEditor => RoleDef {
                id: "iam.workloadIdentityFederations.editor",
                description: "View, create, modify and delete workload identity federations.",
                own: Own::List(&[
                    P::FederationsCreate,
                    P::FederationsUpdate,
                    P::FederationsDelete,
                ]),
                includes: &[Role::FederationsViewer],
                on: ANYWHERE,
            },
            Role::FederationsAdmin => RoleDef {
                id: "iam.workloadIdentityFederations.admin",
                description: "View, create, modify, use and delete workload identity \
                              federations.",
                own: Own::List(&[]),
                includes: &[Role::FederationsEditor, Role::FederationsUser],
                on: ANYWHERE,
            },
            Role::RefreshTokenViewer => RoleDef {
                id: "iam.userAccounts.refreshTokenViewer",
                description: "List the refresh tokens of federated users.",
                own: Own::List(&[P::UserAccountsListRefreshTokens]),
                includes: &[],
                on: ORGANIZATION,
            },
            Role::RefreshTokenRevoker => RoleDef {
                id: "iam.userAccounts.refreshTokenRevoker",
                description: "Revoke the refresh tokens of federated users.",
                own: Own::List(&[P::UserAccountsRevokeRefreshTokens]),
                includes: &[],
                on: ORGANIZATION,
            },
            Role::AccessServiceAuthorizer => RoleDef {
                id: "iam.accessService.authorizer",
                description: "Ask the Authorize API whether subjects hold permissions on the \
                              resource and everything in it: the role of a resource service.",
                own: Own::List(&[P::AccessServiceAuthorize]),
                includes: &[],
                on: ANYWHERE,
            },
        }
    }

    /// The role id, e.g. `iam.serviceAccounts.admin`.
    pub const fn id(self) -> &'static str {
        self.def().id
    }

    /// One sentence on what the role grants (`iam.v1.Role.description`).
    pub const fn description(self) -> &'static str {
        self.def().description
    }

    /// The role whose id is `id`; `None` for an unknown id.
    pub fn parse(id: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.id() == id)
    }

    /// The roles this one includes directly.
    pub const fn includes(self) -> &'static [Role] {
        self.def().includes
    }

    /// The permissions this role grants itself, before inclusions.
    pub const fn own_permissions(self) -> PermissionSet {
        own_set(self)
    }

    /// Everything the role grants: its own permissions and those of every role it includes,
    /// transitively.
    pub const fn permissions(self) -> PermissionSet {
        CLOSURE[self as usize]
    }

    /// Whether holding this role satisfies everything `other` grants.
    pub const fn satisfies(self, other: Role) -> bool {
        other.permissions().is_subset(self.permissions())
    }

    /// Whether this role is `other` or includes it, directly or through other roles.
    pub fn includes_transitively(self, other: Role) -> bool {
        self == other
            || self
                .includes()
                .iter()
                .any(|r| r.includes_transitively(other))
    }

    /// Whether the role may be granted on a resource of `scope`.
    pub fn grantable_on(self, scope: Scope) -> bool {
        self.def().on.contains(&scope)
    }

    /// The roles that grant `permission`: the roles whose closure holds it.
    pub const fn granting(permission: Permission) -> RoleSet {
        GRANTING[permission as usize]
    }

    const fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A role id that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role `{0}` does not exist")]
pub struct UnknownRole(pub String);

/// The role named `id`, or the refusal that names the unknown id.
pub fn check_role_id(id: &str) -> Result<Role, UnknownRole> {
    Role::parse(id).ok_or_else(|| UnknownRole(id.to_owned()))
}

/// Every role in id order: the RoleService's list order (its page token is the last id).
pub fn roles_by_id() -> Vec<Role> {
    let mut roles = Role::ALL.to_vec();
    roles.sort_unstable_by_key(|r| r.id());
    roles
}

const fn own_set(role: Role) -> PermissionSet {
    match role.def().own {
        Own::List(list) => PermissionSet::of(list),
        Own::Classes(classes) => {
            let mut set = PermissionSet::EMPTY;
            let mut i = 0;
            while i < classes.len() {
                set = set.union(PermissionSet::of_class(classes[i]));
                i += 1;
            }
            set
        }
    }
}

const ROLES: usize = Role::ALL.len();

/// Per role, everything it grants: its own permissions, then, until nothing changes, the
/// current sets of the roles it includes added to it. The sets only grow, so this ends (after
/// as many rounds as the longest chain of inclusions, plus one).
const CLOSURE: [PermissionSet; ROLES] = {
    let mut sets = [PermissionSet::EMPTY; ROLES];
    let mut i = 0;
    while i < ROLES {
        sets[i] = own_set(Role::ALL[i]);
        i += 1;
    }
    let mut changed = true;
    while changed {
        changed = false;
        let mut r = 0;
        while r < ROLES {
            let includes = Role::ALL[r].def().includes;
            let mut j = 0;
            while j < includes.len() {
                let grown = sets[r].union(sets[includes[j] as usize]);
                if grown.0 != sets[r].0 {
                    sets[r] = grown;
                    changed = true;
                }
                j += 1;
            }
            r += 1;
        }
    }
    sets
};

/// Per permission, the roles that grant it.
const GRANTING: [RoleSet; Permission::ALL.len()] = {
    let mut sets = [RoleSet::EMPTY; Permission::ALL.len()];
    let mut p = 0;
    while p < Permission::ALL.len() {
        let mut r = 0;
        while r < ROLES {
            if CLOSURE[r].contains(Permission::ALL[p]) {
                sets[p] = sets[p].with(Role::ALL[r]);
            }
            r += 1;
        }
        p += 1;
    }
    sets
};

/// Every permission of the [`Class::Owner`] class: granting a role that holds one takes
/// holding it.
pub const OWNER_PERMISSIONS: PermissionSet = PermissionSet::of_class(Class::Owner);

/// What a method's call names, by position: the resources [`Method::requirements`] refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A resource of this scope.
    Of(Scope),
    /// A resource of any scope (the resource an operation acts on).
    Any,
}

/// What a requirement asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// This permission.
    Permission(Permission),
    /// The read permission of the target's scope ([`Scope::read_permission`]).
    Read,
}

/// One permission a method needs, on its `on`-th target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub need: Need,
    pub on: usize,
}

/// The requirement of `permission` on the first target.
macro_rules! needs {
    ($permission:expr) => {
        Requirement {
            need: Need::Permission($permission),
            on: 0,
        }
    };
}

struct MethodDef {
    name: &'static str,
    targets: &'static [Target],
    requires: &'static [Requirement],
}

macro_rules! methods {
    ($($variant:ident,)*) => {
        /// A management method of the REST and gRPC APIs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Method {
            $($variant,)*
        }

        impl Method {
            /// Every method.
            pub const ALL: &'static [Method] = &[$(Method::$variant,)*];
        }
    };
}

methods! {
    CloudGet,
    CloudList,
    CloudCreate,
    CloudUpdate,
    CloudDelete,
    CloudListOperations,
    CloudListAccessBindings,
    CloudSetAccessBindings,
    CloudUpdateAccessBindings,
    FolderGet,
    FolderList,
    FolderCreate,
    FolderUpdate,
    FolderDelete,
    FolderListOperations,
    FolderListAccessBindings,
    FolderSetAccessBindings,
    FolderUpdateAccessBindings,
    ServiceAccountGet,
    ServiceAccountList,
    ServiceAccountCreate,
    ServiceAccountUpdate,
    ServiceAccountDelete,
    ServiceAccountSuspend,
    ServiceAccountReactivate,
    ServiceAccountListOperations,
    ServiceAccountListAccessBindings,
    ServiceAccountSetAccessBindings,
    ServiceAccountUpdateAccessBindings,
    KeyGet,
    KeyList,
    KeyCreate,
    KeyUpdate,
    KeyDelete,
    KeyListOperations,
    ApiKeyGet,
    ApiKeyList,
    ApiKeyCreate,
    ApiKeyUpdate,
    ApiKeyDelete,
    ApiKeyListOperations,
    ApiKeyListScopes,
    AccessKeyGet,
    AccessKeyList,
    AccessKeyCreate,
    AccessKeyUpdate,
    AccessKeyDelete,
    AccessKeyListOperations,
    FederationGet,
    FederationList,
    FederationCreate,
    FederationUpdate,
    FederationDelete,
    FederationListAccessBindings,
    FederationSetAccessBindings,
    FederationUpdateAccessBindings,
    FederatedCredentialGet,
    FederatedCredentialList,
    FederatedCredentialCreate,
    FederatedCredentialDelete,
    OperationGet,
    RoleGet,
    RoleList,
    IamTokenCreate,
    IamTokenCreateForServiceAccount,
    IamTokenRevoke,
    IamTokenIntrospect,
    AccessServiceAuthorize,
}

const ORG: &[Target] = &[Target::Of(Scope::Organization)];
const CLOUD: &[Target] = &[Target::Of(Scope::Cloud)];
const FOLDER: &[Target] = &[Target::Of(Scope::Folder)];
const ACCOUNT: &[Target] = &[Target::Of(Scope::ServiceAccount)];
const FEDERATION: &[Target] = &[Target::Of(Scope::Federation)];

impl Method {
    /// The method's data. Keys and federated credentials are authorized on their service
    /// account, operations on the resource they act on: the caller resolves those first.
    const fn def(self) -> MethodDef {
        use Permission as P;
        const fn m(
            name: &'static str,
            targets: &'static [Target],
            requires: &'static [Requirement],
        ) -> MethodDef {
            MethodDef {
                name,
                targets,
                requires,
            }
        }
        match self {
            Method::CloudGet => m(
                "yandex.cloud.resourcemanager.v1.CloudService/Get",
                CLOUD,
                &[needs!(P::CloudsGet)],
            ),
            Method::CloudList => m(
                "yandex.cloud.resourcemanager.v1.CloudService/List",
                &[],
                &[],
            ),
            Method::CloudCreate => m(
                "yandex.cloud.resourcemanager.v1.CloudService/Create",
                ORG,
                &[needs!(P::CloudsCreate)],
            ),
            Method::CloudUpdate => m(
                "yandex.cloud.resourcemanager.v1.CloudService/Update",
                CLOUD,
                &[needs!(P::CloudsUpdate)],
            ),
            Method::CloudDelete => m(
                "yandex.cloud.resourcemanager.v1.CloudService/Delete",
                CLOUD,
                &[needs!(P::CloudsDelete)],
            ),
            Method::CloudListOperations => m(
                "yandex.cloud.resourcemanager.v1.CloudService/ListOperations",
                CLOUD,
                &[needs!(P::CloudsGet)],
            ),
            Method::CloudListAccessBindings => m(
                "yandex.cloud.resourcemanager.v1.CloudService/ListAccessBindings",
                CLOUD,
                &[needs!(P::CloudsListAccessBindings)],
            ),
            Method::CloudSetAccessBindings => m(
                "yandex.cloud.resourcemanager.v1.CloudService/SetAccessBindings",
                CLOUD,
                &[needs!(P::CloudsSetAccessBindings)],
            ),
            Method::CloudUpdateAccessBindings => m(
                "yandex.cloud.resourcemanager.v1.CloudService/UpdateAccessBindings",
                CLOUD,
                &[needs!(P::CloudsSetAccessBindings)],
            ),
            Method::FolderGet => m(
                "yandex.cloud.resourcemanager.v1.FolderService/Get",
                FOLDER,
                &[needs!(P::FoldersGet)],
            ),
            Method::FolderList => m(
                "yandex.cloud.resourcemanager.v1.FolderService/List",
                CLOUD,
                &[needs!(P::FoldersList)],
            ),
            Method::FolderCreate => m(
                "yandex.cloud.resourcemanager.v1.FolderService/Create",
                CLOUD,
                &[needs!(P::FoldersCreate)],
            ),
            Method::FolderUpdate => m(
                "yandex.cloud.resourcemanager.v1.FolderService/Update",
                FOLDER,
                &[needs!(P::FoldersUpdate)],
            ),
            Method::FolderDelete => m(
                "yandex.cloud.resourcemanager.v1.FolderService/Delete",
                FOLDER,
                &[needs!(P::FoldersDelete)],
            ),
            Method::FolderListOperations => m(
                "yandex.cloud.resourcemanager.v1.FolderService/ListOperations",
                FOLDER,
                &[needs!(P::FoldersGet)],
            ),
            Method::FolderListAccessBindings => m(
                "yandex.cloud.resourcemanager.v1.FolderService/ListAccessBindings",
                FOLDER,
                &[needs!(P::FoldersListAccessBindings)],
            ),
            Method::FolderSetAccessBindings => m(
                "yandex.cloud.resourcemanager.v1.FolderService/SetAccessBindings",
                FOLDER,
                &[needs!(P::FoldersSetAccessBindings)],
            ),
            Method::FolderUpdateAccessBindings => m(
                "yandex.cloud.resourcemanager.v1.FolderService/UpdateAccessBindings",
                FOLDER,
                &[needs!(P::FoldersSetAccessBindings)],
            ),
            Method::ServiceAccountGet => m(
                "yandex.cloud.iam.v1.ServiceAccountService/Get",
                ACCOUNT,
                &[needs!(P::ServiceAccountsGet)],
            ),
            Method::ServiceAccountList => m(
                "yandex.cloud.iam.v1.ServiceAccountService/List",
                FOLDER,
                &[needs!(P::ServiceAccountsList)],
            ),
            Method::ServiceAccountCreate => m(
                "yandex.cloud.iam.v1.ServiceAccountService/Create",
                FOLDER,
                &[needs!(P::ServiceAccountsCreate)],
            ),
            Method::ServiceAccountUpdate => m(
                "yandex.cloud.iam.v1.ServiceAccountService/Update",
                ACCOUNT,
                &[needs!(P::ServiceAccountsUpdate)],
            ),
            Method::ServiceAccountDelete => m(
                "yandex.cloud.iam.v1.ServiceAccountService/Delete",
                ACCOUNT,
                &[needs!(P::ServiceAccountsDelete)],
            ),
            Method::ServiceAccountSuspend => m(
                "yandex.cloud.iam.v1.ServiceAccountService/Suspend",
                ACCOUNT,
                &[needs!(P::ServiceAccountsUpdate)],
            ),
            Method::ServiceAccountReactivate => m(
                "yandex.cloud.iam.v1.ServiceAccountService/Reactivate",
                ACCOUNT,
                &[needs!(P::ServiceAccountsUpdate)],
            ),
            Method::ServiceAccountListOperations => m(
                "yandex.cloud.iam.v1.ServiceAccountService/ListOperations",
                ACCOUNT,
                &[needs!(P::ServiceAccountsGet)],
            ),
            Method::ServiceAccountListAccessBindings => m(
                "yandex.cloud.iam.v1.ServiceAccountService/ListAccessBindings",
                ACCOUNT,
                &[needs!(P::ServiceAccountsListAccessBindings)],
            ),
            Method::ServiceAccountSetAccessBindings => m(
                "yandex.cloud.iam.v1.ServiceAccountService/SetAccessBindings",
                ACCOUNT,
                &[needs!(P::ServiceAccountsSetAccessBindings)],
            ),
            Method::ServiceAccountUpdateAccessBindings => m(
                "yandex.cloud.iam.v1.ServiceAccountService/UpdateAccessBindings",
                ACCOUNT,
                &[needs!(P::ServiceAccountsSetAccessBindings)],
            ),
            Method::KeyGet => m(
                "yandex.cloud.iam.v1.KeyService/Get",
                ACCOUNT,
                &[needs!(P::AuthorizedKeysGet)],
            ),
            Method::KeyList => m(
                "yandex.cloud.iam.v1.KeyService/List",
                ACCOUNT,
                &[needs!(P::AuthorizedKeysList)],
            ),
            Method::KeyCreate => m(
                "yandex.cloud.iam.v1.KeyService/Create",
                ACCOUNT,
                &[needs!(P::AuthorizedKeysCreate)],
            ),
            Method::KeyUpdate => m(
                "yandex.cloud.iam.v1.KeyService/Update",
                ACCOUNT,
                &[needs!(P::AuthorizedKeysUpdate)],
            ),
            Method::KeyDelete => m(
                "yandex.cloud.iam.v1.KeyService/Delete",
                ACCOUNT,
                &[needs!(P::AuthorizedKeysDelete)],
            ),
            Method::KeyListOperations => m(
                "yandex.cloud.iam.v1.KeyService/ListOperations",
                ACCOUNT,
                &[needs!(P::AuthorizedKeysGet)],
            ),
            Method::ApiKeyGet => m(
                "yandex.cloud.iam.v1.ApiKeyService/Get",
                ACCOUNT,
                &[needs!(P::ApiKeysGet)],
            ),
            Method::ApiKeyList => m(
                "yandex.cloud.iam.v1.ApiKeyService/List",
                ACCOUNT,
                &[needs!(P::ApiKeysList)],
            ),
            Method::ApiKeyCreate => m(
                "yandex.cloud.iam.v1.ApiKeyService/Create",
                ACCOUNT,
                &[needs!(P::ApiKeysCreate)],
            ),
            Method::ApiKeyUpdate => m(
                "yandex.cloud.iam.v1.ApiKeyService/Update",
                ACCOUNT,
                &[needs!(P::ApiKeysUpdate)],
            ),
            Method::ApiKeyDelete => m(
                "yandex.cloud.iam.v1.ApiKeyService/Delete",
                ACCOUNT,
                &[needs!(P::ApiKeysDelete)],
            ),
            Method::ApiKeyListOperations => m(
                "yandex.cloud.iam.v1.ApiKeyService/ListOperations",
                ACCOUNT,
                &[needs!(P::ApiKeysGet)],
            ),
            // The scopes the configuration declares: any authenticated caller may read them.
            Method::ApiKeyListScopes => m("yandex.cloud.iam.v1.ApiKeyService/ListScopes", &[], &[]),
            Method::AccessKeyGet => m(
                "yandex.cloud.iam.v1.awscompatibility.AccessKeyService/Get",
                ACCOUNT,
                &[needs!(P::AccessKeysGet)],
            ),
            Method::AccessKeyList => m(
                "yandex.cloud.iam.v1.awscompatibility.AccessKeyService/List",
                ACCOUNT,
                &[needs!(P::AccessKeysList)],
            ),
            Method::AccessKeyCreate => m(
                "yandex.cloud.iam.v1.awscompatibility.AccessKeyService/Create",
                ACCOUNT,
                &[needs!(P::AccessKeysCreate)],
            ),
            Method::AccessKeyUpdate => m(
                "yandex.cloud.iam.v1.awscompatibility.AccessKeyService/Update",
                ACCOUNT,
                &[needs!(P::AccessKeysUpdate)],
            ),
            Method::AccessKeyDelete => m(
                "yandex.cloud.iam.v1.awscompatibility.AccessKeyService/Delete",
                ACCOUNT,
                &[needs!(P::AccessKeysDelete)],
            ),
            Method::AccessKeyListOperations => m(
                "yandex.cloud.iam.v1.awscompatibility.AccessKeyService/ListOperations",
                ACCOUNT,
                &[needs!(P::AccessKeysGet)],
            ),
            Method::FederationGet => m(
                "yandex.cloud.iam.v1.workload.oidc.FederationService/Get",
                FEDERATION,
                &[needs!(P::FederationsGet)],
            ),
            Method::FederationList => m(
                "yandex.cloud.iam.v1.workload.oidc.FederationService/List",
                FOLDER,
                &[needs!(P::FederationsList)],
            ),
            Method::FederationCreate => m(
                "yandex.cloud.iam.v1.workload.oidc.FederationService/Create",
                FOLDER,
                &[needs!(P::FederationsCreate)],
            ),
            Method::FederationUpdate => m(
                "yandex.cloud.iam.v1.workload.oidc.FederationService/Update",
                FEDERATION,
                &[needs!(P::FederationsUpdate)],
            ),
            Method::FederationDelete => m(
                "yandex.cloud.iam.v1.workload.oidc.FederationService/Delete",
                FEDERATION,
                &[needs!(P::FederationsDelete)],
            ),
            Method::FederationListAccessBindings => m(
                "yandex.cloud.iam.v1.workload.oidc.FederationService/ListAccessBindings",
                FEDERATION,
                &[needs!(P::FederationsListAccessBindings)],
            ),
            Method::FederationSetAccessBindings => m(
                "yandex.cloud.iam.v1.workload.oidc.FederationService/SetAccessBindings",
                FEDERATION,
                &[needs!(P::FederationsSetAccessBindings)],
            ),
            Method::FederationUpdateAccessBindings => m(
                "yandex.cloud.iam.v1.workload.oidc.FederationService/UpdateAccessBindings",
                FEDERATION,
                &[needs!(P::FederationsSetAccessBindings)],
            ),
            Method::FederatedCredentialGet => m(
                "yandex.cloud.iam.v1.workload.FederatedCredentialService/Get",
                ACCOUNT,
                &[needs!(P::FederatedCredentialsGet)],
            ),
            Method::FederatedCredentialList => m(
                "yandex.cloud.iam.v1.workload.FederatedCredentialService/List",
                ACCOUNT,
                &[needs!(P::FederatedCredentialsList)],
            ),
            Method::FederatedCredentialCreate => m(
                "yandex.cloud.iam.v1.workload.FederatedCredentialService/Create",
                &[
                    Target::Of(Scope::ServiceAccount),
                    Target::Of(Scope::Federation),
                ],
                &[
                    needs!(P::FederatedCredentialsCreate),
                    Requirement {
                        need: Need::Permission(P::FederationsUse),
                        on: 1,
                    },
                ],
            ),
            Method::FederatedCredentialDelete => m(
                "yandex.cloud.iam.v1.workload.FederatedCredentialService/Delete",
                ACCOUNT,
                &[needs!(P::FederatedCredentialsDelete)],
            ),
            Method::OperationGet => m(
                "yandex.cloud.operation.OperationService/Get",
                &[Target::Any],
                &[Requirement {
                    need: Need::Read,
                    on: 0,
                }],
            ),
            Method::RoleGet => m("yandex.cloud.iam.v1.RoleService/Get", &[], &[]),
            Method::RoleList => m("yandex.cloud.iam.v1.RoleService/List", &[], &[]),
            Method::IamTokenCreate => m("yandex.cloud.iam.v1.IamTokenService/Create", &[], &[]),
            Method::IamTokenCreateForServiceAccount => m(
                "yandex.cloud.iam.v1.IamTokenService/CreateForServiceAccount",
                ACCOUNT,
                &[needs!(P::ServiceAccountsCreateIamToken)],
            ),
            // Revoking another account's token: whoever may get tokens for that account could
            // get one and revoke as the account itself, so asking more would protect nothing.
            // The account revoking its own token needs no role (the API layer's rule).
            Method::IamTokenRevoke => m(
                "yandex.cloud.iam.v1.IamTokenService/Revoke",
                ACCOUNT,
                &[needs!(P::ServiceAccountsCreateIamToken)],
            ),
            // RFC 7662 introspection at `/oauth/introspect`, not a Yandex method: a token is
            // answered active only to a caller that may read its service account.
            Method::IamTokenIntrospect => m(
                "wif.gateway.oauth.TokenIntrospection/Introspect",
                ACCOUNT,
                &[needs!(P::ServiceAccountsGet)],
            ),
            Method::AccessServiceAuthorize => m(
                "yandex.cloud.priv.servicecontrol.v1.AccessService/Authorize",
                &[Target::Any],
                &[needs!(P::AccessServiceAuthorize)],
            ),
        }
    }

    /// The gRPC method (`yandex.cloud.iam.v1.ServiceAccountService/Create`); the REST route
    /// of the same name maps to it.
    pub const fn name(self) -> &'static str {
        self.def().name
    }

    /// What the call names, by position. Empty for methods that need authentication only
    /// (`CloudList` shows only the clouds on which the caller holds `resource-manager.clouds.get`;
    /// the role and token methods need no role).
    pub const fn targets(self) -> &'static [Target] {
        self.def().targets
    }

    /// Every permission the method needs, each on one of its targets; all must hold.
    pub const fn requirements(self) -> &'static [Requirement] {
        self.def().requires
    }

    /// Whether the method changes something (and so is audited): every method but the
    /// `Get…` and `List…` ones and token introspection.
    /// `Get…` and `List…` ones and `AccessService/Authorize`, which only reads (its denials are
    /// audited one by one instead).
    pub fn is_mutation(self) -> bool {
        if self == Method::AccessServiceAuthorize {
            return false;
        }
        let short = self.name().rsplit('/').next().unwrap_or_default();
        !(short.starts_with("Get") || short.starts_with("List") || short == "Introspect")
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_mutations_and_everything_else_is() {
        for (method, mutation) in [
            (Method::KeyGet, false),
            (Method::KeyList, false),
            (Method::FolderListAccessBindings, false),
            (Method::CloudListOperations, false),
            (Method::OperationGet, false),
            (Method::RoleList, false),
            (Method::KeyCreate, true),
            (Method::FolderSetAccessBindings, true),
            (Method::ServiceAccountUpdateAccessBindings, true),
            (Method::IamTokenCreate, true),
            (Method::IamTokenRevoke, true),
            (Method::IamTokenIntrospect, false),
            (Method::FederatedCredentialDelete, true),
        ] {
            assert_eq!(method.is_mutation(), mutation, "{method}");
        }
    }

    const PRIMITIVE_CHAIN: [Role; 4] = [Role::Auditor, Role::Viewer, Role::Editor, Role::Admin];

    #[test]
    fn each_primitive_role_satisfies_everything_the_one_below_does() {
        for pair in PRIMITIVE_CHAIN.windows(2) {
            let (lower, upper) = (pair[0], pair[1]);
            for p in Permission::ALL {
                if lower.permissions().contains(*p) {
                    assert!(
                        upper.permissions().contains(*p),
                        "{upper} lacks {p} of {lower}"
                    );
                }
            }
            assert!(upper.satisfies(lower), "{upper} satisfies {lower}");
            assert!(!lower.satisfies(upper), "{lower} does not satisfy {upper}");
        }
    }

    #[test]
    fn the_closure_is_own_permissions_plus_the_closures_of_the_included_roles() {
        for role in Role::ALL {
            let mut expected = role.own_permissions();
            for included in role.includes() {
                expected = expected.union(included.permissions());
            }
            assert_eq!(role.permissions(), expected, "{role}");
            for included in role.includes() {
                assert!(role.satisfies(*included), "{role} satisfies {included}");
            }
        }
    }

    #[test]
    fn the_role_graph_has_no_cycle() {
        fn reaches(from: Role, target: Role, seen: &mut Vec<Role>) -> bool {
            from.includes().iter().any(|next| {
                if *next == target {
                    return true;
                }
                if seen.contains(next) {
                    return false;
                }
                seen.push(*next);
                reaches(*next, target, seen)
            })
        }
        for role in Role::ALL {
            assert!(
                !reaches(*role, *role, &mut Vec::new()),
                "{role} includes itself"
            );
        }
        for (i, role) in Role::ALL.iter().enumerate() {
            assert_eq!(*role as usize, i, "Role::ALL is in declaration order");
        }
        for (i, p) in Permission::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i, "Permission::ALL is in declaration order");
        }
    }

    #[test]
    fn the_closure_follows_chains_of_inclusions() {
        // organizations.owner → clouds.owner → admin → editor → viewer → auditor.
        let owner = Role::OrganizationManagerOrganizationsOwner;
        for role in Role::ALL {
            assert!(
                owner.satisfies(*role),
                "the organization owner satisfies {role}"
            );
        }
        assert!(owner.permissions().contains(Permission::OrganizationsGet));
        assert!(Role::IamAdmin.satisfies(Role::ServiceAccountsAuthorizedKeyAdmin));
        assert!(Role::FederationsAdmin.satisfies(Role::FederationsAuditor));
        assert!(
            Role::ServiceAccountsFederatedCredentialEditor
                .permissions()
                .contains(Permission::FederatedCredentialsList)
        );
    }

    #[test]
    fn admin_holds_every_permission_but_the_owners() {
        let all = PermissionSet::of(Permission::ALL);
        let not_owner = PermissionSet(all.0 & !OWNER_PERMISSIONS.0);
        assert_eq!(Role::Admin.permissions(), not_owner);
        for role in Role::ALL {
            let owner_class = !role
                .permissions()
                .intersection(OWNER_PERMISSIONS)
                .is_empty();
            assert_eq!(
                Role::Admin.satisfies(*role),
                !owner_class,
                "{role}: admin satisfies every role without an owner permission"
            );
        }
        assert_eq!(
            OWNER_PERMISSIONS,
            PermissionSet::of(&[
                Permission::OrganizationsManageOwners,
                Permission::CloudsManageOwners
            ])
        );
    }

    #[test]
    fn primitive_roles_own_exactly_their_class() {
        for (role, class) in [
            (Role::Auditor, Class::ReadMetadata),
            (Role::Viewer, Class::Read),
            (Role::Editor, Class::Manage),
            (Role::Admin, Class::ManageAccess),
        ] {
            for p in Permission::ALL {
                assert_eq!(
                    role.own_permissions().contains(*p),
                    p.class() == class,
                    "{role} / {p}"
                );
            }
        }
        assert!(
            PermissionSet::of_class(Class::Read)
                .contains(Permission::ServiceAccountsListAccessBindings)
        );
        assert!(
            !Role::Auditor
                .permissions()
                .contains(Permission::ServiceAccountsListAccessBindings)
        );
    }

    #[test]
    fn granting_lists_exactly_the_roles_whose_closure_holds_the_permission() {
        for p in Permission::ALL {
            for role in Role::ALL {
                assert_eq!(
                    Role::granting(*p).contains(*role),
                    role.permissions().contains(*p),
                    "{p} / {role}"
                );
            }
            assert!(!Role::granting(*p).is_empty(), "some role grants {p}");
        }
    }

    #[test]
    fn every_permission_is_granted_and_every_method_permission_exists_in_a_role() {
        for method in Method::ALL {
            for req in method.requirements() {
                assert!(req.on < method.targets().len(), "{method:?}");
                if let Need::Permission(p) = req.need {
                    assert!(
                        Role::ALL.iter().any(|r| r.permissions().contains(p)),
                        "{method:?}: {p}"
                    );
                }
            }
            assert_eq!(
                method.targets().is_empty(),
                method.requirements().is_empty(),
                "{method:?}: a method with targets has requirements, and the reverse"
            );
        }
    }

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut ids: Vec<&str> = Role::ALL.iter().map(|r| r.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Role::ALL.len());
        for role in Role::ALL {
            assert_eq!(Role::parse(role.id()), Some(*role));
            assert_eq!(check_role_id(role.id()), Ok(*role));
            assert_eq!(role.to_string(), role.id());
            assert!(!role.description().is_empty(), "{role}");
        }
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
            assert_eq!(p.to_string(), p.as_str());
        }
        let mut names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Method::ALL.len());
        assert_eq!(
            Method::KeyCreate.to_string(),
            "yandex.cloud.iam.v1.KeyService/Create"
        );
    }

    #[test]
    fn unknown_role_ids_are_refused() {
        for id in [
            "",
            "owner",
            "Admin",
            "admin ",
            "iam.serviceAccounts",
            "lockbox.payloadViewer",
            "resource-manager.clouds.owner.x",
        ] {
            assert_eq!(Role::parse(id), None, "{id:?}");
            assert_eq!(check_role_id(id), Err(UnknownRole(id.to_owned())));
        }
        assert_eq!(
            UnknownRole("x.y".into()).to_string(),
            "role `x.y` does not exist"
        );
        assert_eq!(Permission::parse("iam.serviceAccounts"), None);
    }

    #[test]
    fn roles_describe_themselves() {
        assert_eq!(Role::IamViewer.description(), "The same as iam.auditor.");
        assert_eq!(
            Role::Auditor.description(),
            "Read the configuration and metadata of any resource, without access to data."
        );
        assert_eq!(
            Role::ServiceAccountsUser.includes(),
            &[] as &[Role],
            "a leaf of the graph"
        );
        assert_eq!(
            Role::FederationsAdmin.includes(),
            [Role::FederationsEditor, Role::FederationsUser]
        );
    }

    #[test]
    fn roles_list_in_id_order() {
        let listed = roles_by_id();
        assert_eq!(listed.len(), Role::ALL.len());
        assert!(listed.windows(2).all(|w| w[0].id() < w[1].id()));
        assert_eq!(listed[0], Role::Admin);
    }

    #[test]
    fn where_roles_may_be_granted() {
        for role in Role::ALL {
            for scope in Scope::ALL {
                let expected = match role {
                    Role::OrganizationManagerAdmin
                    | Role::OrganizationManagerOrganizationsOwner
                    | Role::RefreshTokenViewer
                    | Role::RefreshTokenRevoker => scope == Scope::Organization,
                    Role::ResourceManagerCloudsOwner => {
                        matches!(scope, Scope::Organization | Scope::Cloud)
                    }
                    _ => true,
                };
                assert_eq!(role.grantable_on(scope), expected, "{role} on {scope}");
            }
        }
    }

    #[test]
    fn scopes() {
        let names: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "organization-manager.organization",
                "resource-manager.cloud",
                "resource-manager.folder",
                "iam.serviceAccount",
                "iam.workloadIdentityFederation"
            ]
        );
        assert_eq!(Scope::Folder.to_string(), "resource-manager.folder");
        for scope in Scope::ALL {
            if let Some(parent) = scope.parent() {
                assert!(parent < scope);
            }
            let read = scope.read_permission();
            let list = scope.list_bindings_permission();
            let set = scope.set_bindings_permission();
            assert_eq!(read.class(), Class::ReadMetadata, "{scope}");
            assert!(read.as_str().ends_with(".get"), "{scope}");
            assert!(list.as_str().ends_with(".listAccessBindings"), "{scope}");
            assert!(set.as_str().ends_with(".setAccessBindings"), "{scope}");
            assert_eq!(set.class(), Class::ManageAccess, "{scope}");
        }
        assert_eq!(Scope::Organization.parent(), None);
        assert_eq!(Scope::Cloud.parent(), Some(Scope::Organization));
        assert_eq!(Scope::Folder.parent(), Some(Scope::Cloud));
        assert_eq!(Scope::ServiceAccount.parent(), Some(Scope::Folder));
        assert_eq!(Scope::Federation.parent(), Some(Scope::Folder));
        for kind in ResourceKind::ALL {
            let scope = Scope::of_kind(kind);
            assert_eq!(scope.is_some(), kind.is_bindable(), "{kind}");
        }
        assert_eq!(
            Scope::of_kind(ResourceKind::Federation),
            Some(Scope::Federation)
        );
        assert_eq!(Scope::of_kind(ResourceKind::Cloud), Some(Scope::Cloud));
        assert_eq!(Scope::of_kind(ResourceKind::Folder), Some(Scope::Folder));
        assert_eq!(
            Scope::of_kind(ResourceKind::ServiceAccount),
            Some(Scope::ServiceAccount)
        );
    }

    #[test]
    fn sets() {
        let set = PermissionSet::of(&[Permission::CloudsGet, Permission::FoldersGet]);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Permission::CloudsGet, Permission::FoldersGet]
        );
        assert!(set.is_subset(set));
        assert!(PermissionSet::EMPTY.is_subset(set));
        assert!(!set.is_subset(PermissionSet::of(&[Permission::CloudsGet])));
        assert!(PermissionSet::EMPTY.is_empty() && !set.is_empty());
        let roles = RoleSet::EMPTY.with(Role::Admin).with(Role::Viewer);
        assert_eq!(
            roles.with(Role::Admin),
            roles,
            "adding a role it holds changes nothing"
        );
        assert_eq!(
            roles.iter().collect::<Vec<_>>(),
            [Role::Viewer, Role::Admin]
        );
        assert_eq!(roles.without(Role::Admin).iter().count(), 1);
        assert!(roles.intersects(RoleSet::EMPTY.with(Role::Viewer)));
        assert!(!roles.intersects(RoleSet::EMPTY.with(Role::Auditor)));
        assert!(RoleSet::EMPTY.is_empty() && !roles.is_empty());
    }
}
