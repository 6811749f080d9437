//! The authorization index: access bindings and the resource hierarchy, held in memory and
//! indexed so that a check costs a handful of hash lookups whatever the number of bindings.
//!
//! - **Input**: access bindings (resource, [`Role`], subject), added and removed one at a time,
//!   and parent links (cloud → organization, folder → cloud, service account or federation →
//!   folder), set and removed one at a time by the caller, who reads them from the store. Each
//!   change costs O(1) (a few hash operations); nothing is rebuilt.
//! - **Layout**: resource ids and subject ids are interned to `u32`s (a map per scope and per
//!   subject type); bindings are kept as one [`RoleSet`] bitset per (resource, subject) pair,
//!   in one hash map keyed by the pair; each interned resource knows its parent. Interned
//!   names are reference-counted (bindings and links that name them) and forgotten when the
//!   count drops to zero, so an index that has seen any sequence of changes equals one built
//!   from the final set.
//! - **Check** ([`AuthzIndex::check`]): the roles that grant the permission are a precomputed
//!   [`RoleSet`] ([`Role::granting`]). From the resource up to the top (at most four resources,
//!   since each link goes one scope up), the pairs (resource, principal), (resource,
//!   `system:allAuthenticatedUsers`) — for an authenticated principal — and (resource,
//!   `system:allUsers`) are looked up, and the check succeeds at the first role set that
//!   intersects. At most 12 lookups of a `u64` key, plus one of the resource id and one of the
//!   principal's id.
//! - **Methods** ([`AuthzIndex::authorize`]) check every [`Requirement`] of a [`Method`] on the
//!   resources the call names. **Grants** ([`AuthzIndex::may_grant`]) add the rules of
//!   changing access bindings: the role exists, may be granted on that scope, the caller may
//!   change the resource's bindings, and holds there every owner permission the role carries.
//!
//! Pure: no I/O, no clock. Who may do what is data in [`super::roles`]; the rules and the
//! decisions behind them are in `docs/design.md#roles-and-authorization`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::catalog::{Catalog, ConfiguredRoles, Grantors};
use super::roles::{
    Method, Need, OWNER_PERMISSIONS, Permission, Role, RoleSet, Scope, Target, UnknownRole,
};
use super::store::{AccessBinding, ResourceRef, Subject, SubjectType};

/// The system subject every caller is, authenticated or not.
pub const ALL_USERS: &str = "allUsers";
/// The system subject every authenticated caller is.
pub const ALL_AUTHENTICATED_USERS: &str = "allAuthenticatedUsers";

/// A resource named by its scope and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resource<'a> {
    pub scope: Scope,
    pub id: &'a str,
}

impl<'a> Resource<'a> {
    pub const fn new(scope: Scope, id: &'a str) -> Resource<'a> {
        Resource { scope, id }
    }

    pub const fn organization(id: &'a str) -> Resource<'a> {
        Resource::new(Scope::Organization, id)
    }

    pub const fn cloud(id: &'a str) -> Resource<'a> {
        Resource::new(Scope::Cloud, id)
    }

    pub const fn folder(id: &'a str) -> Resource<'a> {
        Resource::new(Scope::Folder, id)
    }

    pub const fn service_account(id: &'a str) -> Resource<'a> {
        Resource::new(Scope::ServiceAccount, id)
    }

    pub const fn federation(id: &'a str) -> Resource<'a> {
        Resource::new(Scope::Federation, id)
    }

    /// The store's reference, when its kind is one roles are granted on.
    pub fn of(resource: &'a ResourceRef) -> Option<Resource<'a>> {
        Scope::of_kind(resource.kind).map(|scope| Resource::new(scope, &resource.id))
    }
}

impl fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.scope, self.id)
    }
}

/// Who a binding grants a role to (`access.Subject`), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectRef<'a> {
    pub subject_type: SubjectType,
    pub id: &'a str,
}

impl<'a> SubjectRef<'a> {
    pub const fn new(subject_type: SubjectType, id: &'a str) -> SubjectRef<'a> {
        SubjectRef { subject_type, id }
    }

    pub const fn service_account(id: &'a str) -> SubjectRef<'a> {
        SubjectRef::new(SubjectType::ServiceAccount, id)
    }

    /// `system:allUsers`.
    pub const fn all_users() -> SubjectRef<'static> {
        SubjectRef::new(SubjectType::System, ALL_USERS)
    }

    /// `system:allAuthenticatedUsers`.
    pub const fn all_authenticated_users() -> SubjectRef<'static> {
        SubjectRef::new(SubjectType::System, ALL_AUTHENTICATED_USERS)
    }

    pub fn of(subject: &'a Subject) -> SubjectRef<'a> {
        SubjectRef::new(subject.subject_type, &subject.id)
    }
}

/// Who is asking: an authenticated subject (a service account, for the gateway's own IAM
/// tokens), or nobody. Besides its own bindings, an authenticated principal holds those of
/// `system:allAuthenticatedUsers` and `system:allUsers`; an anonymous one only those of
/// `system:allUsers`. Membership of groups (`group:organization:<id>:users`, …) is not known
/// here: bindings to groups never match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal<'a> {
    subject: Option<SubjectRef<'a>>,
}

impl<'a> Principal<'a> {
    pub const ANONYMOUS: Principal<'static> = Principal { subject: None };

    pub const fn authenticated(subject: SubjectRef<'a>) -> Principal<'a> {
        Principal {
            subject: Some(subject),
        }
    }

    pub const fn service_account(id: &'a str) -> Principal<'a> {
        Principal::authenticated(SubjectRef::service_account(id))
    }

    pub const fn subject(&self) -> Option<SubjectRef<'a>> {
        self.subject
    }
}

/// A permission the principal does not hold on a resource, by any binding on it or above it:
/// what a `PERMISSION_DENIED` answer names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission {permission} is required on {scope} {resource_id}")]
pub struct Denied {
    pub permission: Permission,
    pub scope: Scope,
    pub resource_id: String,
}

impl Denied {
    fn new(permission: Permission, resource: Resource<'_>) -> Denied {
        Denied {
            permission,
            scope: resource.scope,
            resource_id: resource.id.to_owned(),
        }
    }
}

/// One element of a resource path of the Authorize API: a resource's type and id
/// (`{"id": "…", "type": "resource-manager.folder"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathElement<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
}

/// Why a check of a permission by name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamedRefusal {
    /// The subject holds the permission nowhere on the path.
    #[error("permission {permission} is required on {resource}")]
    Denied {
        permission: String,
        resource: String,
    },
    /// The resource service asking may not ask about this resource.
    #[error("the caller needs iam.accessService.authorize on {resource} to ask about it")]
    CallerDenied { resource: String },
    /// No permission, built-in or configured, has this name.
    #[error(
        "permission {0} does not exist: it is neither an IAM permission nor one the configuration declares"
    )]
    UnknownPermission(String),
    /// The resource path cannot be walked.
    #[error("{0}")]
    BadPath(String),
}

/// Why a method call or a grant is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error(transparent)]
    UnknownRole(#[from] UnknownRole),
    /// The role exists but is not granted on resources of this scope (the organization
    /// roles are granted on organizations only, `resource-manager.clouds.owner` on
    /// organizations and clouds).
    #[error("role {role} cannot be granted on a {scope}")]
    NotGrantableOn { role: Role, scope: Scope },
    /// The resources passed do not match [`Method::targets`]: a bug in the caller, refused
    /// rather than guessed at.
    #[error("{method} takes {expected} resources of the scopes it names")]
    WrongTargets { method: Method, expected: usize },
}

/// A parent link the hierarchy does not have: the parent's scope must be the one directly
/// above the child's ([`Scope::parent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {child} cannot be inside a {parent}")]
pub struct WrongParent {
    pub child: Scope,
    pub parent: Scope,
}

/// A stored binding the index cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error(transparent)]
    UnknownRole(#[from] UnknownRole),
    #[error("roles are not granted on a {0}")]
    NotBindable(super::ResourceKind),
}

/// No index: the end of a parent chain, a subject with no bindings.
const NONE: u32 = u32::MAX;

/// One interned name: a resource or a subject.
#[derive(Debug, Clone)]
struct Slot {
    name: Option<Arc<str>>,
    /// Scope or subject type, as the index of its map.
    group: u8,
    /// How many bindings and parent links name it (a child counts once for its own link,
    /// a parent once per child).
    refs: u32,
    /// The parent resource (resources only).
    parent: u32,
}

/// How many groups [`Names`] keeps apart: five scopes, five subject types.
const GROUPS: usize = 5;

/// Names interned to dense `u32`s, one map per group; freed indices are reused.
#[derive(Debug, Clone, Default)]
struct Names {
    by_name: [HashMap<Arc<str>, u32, foldhash::fast::RandomState>; GROUPS],
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Names {
    fn find(&self, group: usize, name: &str) -> Option<u32> {
        self.by_name.get(group)?.get(name).copied()
    }

    /// The index of `name`, interned if new, with one more reference.
    fn acquire(&mut self, group: usize, name: &str) -> u32 {
        if let Some(at) = self.find(group, name)
            && let Some(slot) = self.slots.get_mut(at as usize)
        {
            slot.refs += 1;
            return at;
        }
        let name: Arc<str> = Arc::from(name);
        let slot = Slot {
            name: Some(Arc::clone(&name)),
            group: group as u8,
            refs: 1,
            parent: NONE,
        };
        let at = match self.free.pop() {
            Some(at) => {
                if let Some(reused) = self.slots.get_mut(at as usize) {
                    *reused = slot;
                }
                at
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        if let Some(map) = self.by_name.get_mut(group) {
            map.insert(name, at);
        }
        at
    }

    /// Drops one reference to `at`; forgets the name when none is left.
    fn release(&mut self, at: u32) {
        let Some(slot) = self.slots.get_mut(at as usize) else {
            return;
        };
        slot.refs -= 1;
        if slot.refs > 0 {
            return;
        }
        if let Some(name) = slot.name.take()
            && let Some(map) = self.by_name.get_mut(usize::from(slot.group))
        {
            map.remove(&*name);
        }
        self.free.push(at);
    }

    /// The group of `at`, while it is interned.
    fn group(&self, at: u32) -> Option<usize> {
        let slot = self.slots.get(at as usize)?;
        slot.name.as_ref().map(|_| usize::from(slot.group))
    }

    fn parent(&self, at: u32) -> u32 {
        self.slots.get(at as usize).map_or(NONE, |slot| slot.parent)
    }

    fn set_parent(&mut self, at: u32, parent: u32) {
        if let Some(slot) = self.slots.get_mut(at as usize) {
            slot.parent = parent;
        }
    }

    fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// A hasher for the index's `u64` keys (two dense `u32`s): the 64-bit finalizer of
/// MurmurHash3, which spreads every input bit over the whole output, so both the low bits
/// (bucket) and the high bits (tag) vary with either half of the key. The keys are internal
/// indices, not caller-chosen values, so a keyed hash is not needed here.
#[derive(Debug, Clone, Copy, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }

    /// Only `u64` keys are hashed; bytes are folded in for completeness.
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Whether `grants` holds `role`.
fn holds_role(grants: Grants, role: Bound) -> bool {
    match role {
        Bound::Builtin(role) => grants.roles.contains(role),
        Bound::Configured(bit) => grants.configured.contains(bit),
    }
}

/// The key of a (resource, subject) pair: resource × 2³² + subject.
const fn key(resource: u32, subject: u32) -> u64 {
    ((resource as u64) << 32) + subject as u64
}

const fn subject_group(t: SubjectType) -> usize {
    match t {
        SubjectType::UserAccount => 0,
        SubjectType::ServiceAccount => 1,
        SubjectType::FederatedUser => 2,
        SubjectType::System => 3,
        SubjectType::Group => 4,
    }
}

/// The roles bound to one subject on one resource: built-in and configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Grants {
    roles: RoleSet,
    configured: ConfiguredRoles,
}

impl Grants {
    fn is_empty(self) -> bool {
        self.roles.is_empty() && self.configured.is_empty()
    }
}

/// A stored binding of a built-in role as the index holds it: the interned resource and
/// subject it took a reference to, and the role. Removing the binding by id undoes exactly this.
#[derive(Debug, Clone, Copy)]
struct Held {
    resource: u32,
    subject: u32,
    role: Role,
}

/// A role of a binding: built-in, or one of the catalog's configured roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Builtin(Role),
    Configured(ConfiguredRoles),
}

/// Access bindings and the resource hierarchy, indexed for [`AuthzIndex::check`].
#[derive(Clone, Default)]
pub struct AuthzIndex {
    resources: Names,
    subjects: Names,
    /// (resource, subject) → the roles bound there.
    grants: HashMap<u64, Grants, BuildHasherDefault<KeyHasher>>,
    /// The configured roles and who grants each permission by name.
    catalog: Arc<Catalog>,
    /// The stored bindings of built-in roles, by binding id: what
    /// [`AuthzIndex::remove_access_binding`] undoes. Twelve bytes and the id per binding, not
    /// the stored record.
    held: HashMap<Box<str>, Held, foldhash::fast::RandomState>,
    /// The stored bindings of roles that are not built in, by binding id: applied while the
    /// catalog declares their role, kept dormant otherwise, and re-applied when a reload
    /// changes the catalog.
    configured_bindings: HashMap<String, AccessBinding>,
    /// Service accounts that are suspended: they hold nothing at the Authorize API.
    suspended: HashSet<String>,
    bindings: usize,
    /// `system:allUsers` and `system:allAuthenticatedUsers` as interned subjects, or
    /// [`NONE`] while no binding names them: looked up once per change, not per check.
    all_users: u32,
    all_authenticated: u32,
}

impl fmt::Debug for AuthzIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthzIndex")
            .field("bindings", &self.bindings)
            .field("resources", &self.resources.len())
            .field("subjects", &self.subjects.len())
            .finish()
    }
}

impl AuthzIndex {
    /// An index with no bindings and no parent links.
    pub fn new() -> AuthzIndex {
        AuthzIndex {
            all_users: NONE,
            all_authenticated: NONE,
            ..AuthzIndex::default()
        }
    }

    /// How many bindings the index holds.
    pub fn binding_count(&self) -> usize {
        self.bindings
    }

    /// How many resources a binding or a parent link names.
    pub fn resource_count(&self) -> usize {
        self.resources.len()
    }

    /// How many subjects a binding names.
    pub fn subject_count(&self) -> usize {
        self.subjects.len()
    }

    /// Adds a binding; `false` when it was already there.
    pub fn add_binding(
        &mut self,
        resource: Resource<'_>,
        role: Role,
        subject: SubjectRef<'_>,
    ) -> bool {
        self.bind(resource, Bound::Builtin(role), subject).is_some()
    }

    /// Removes a binding; `false` when it was not there.
    pub fn remove_binding(
        &mut self,
        resource: Resource<'_>,
        role: Role,
        subject: SubjectRef<'_>,
    ) -> bool {
        self.unbind(resource, Bound::Builtin(role), subject)
    }

    /// Binds `role`; the interned resource and subject when the binding is new (each then holds
    /// one more reference), `None` when it was already there.
    fn bind(
        &mut self,
        resource: Resource<'_>,
        role: Bound,
        subject: SubjectRef<'_>,
    ) -> Option<(u32, u32)> {
        let r_group = resource.scope as usize;
        let s_group = subject_group(subject.subject_type);
        if let (Some(r), Some(s)) = (
            self.resources.find(r_group, resource.id),
            self.subjects.find(s_group, subject.id),
        ) && self
            .grants
            .get(&key(r, s))
            .is_some_and(|grants| holds_role(*grants, role))
        {
            return None;
        }
        let r = self.resources.acquire(r_group, resource.id);
        let s = self.subjects.acquire(s_group, subject.id);
        let grants = self.grants.entry(key(r, s)).or_default();
        match role {
            Bound::Builtin(role) => grants.roles = grants.roles.with(role),
            Bound::Configured(bit) => grants.configured = grants.configured.union(bit),
        }
        self.bindings += 1;
        self.refresh_system(subject.subject_type);
        Some((r, s))
    }

    fn unbind(&mut self, resource: Resource<'_>, role: Bound, subject: SubjectRef<'_>) -> bool {
        let (Some(r), Some(s)) = (
            self.resources.find(resource.scope as usize, resource.id),
            self.subjects
                .find(subject_group(subject.subject_type), subject.id),
        ) else {
            return false;
        };
        self.unbind_at(r, s, role)
    }

    /// Unbinds `role` from the interned resource `r` and subject `s`, releasing the references
    /// its binding took; `false` when it was not bound.
    fn unbind_at(&mut self, r: u32, s: u32, role: Bound) -> bool {
        let k = key(r, s);
        let Some(grants) = self.grants.get_mut(&k) else {
            return false;
        };
        if !holds_role(*grants, role) {
            return false;
        }
        match role {
            Bound::Builtin(role) => grants.roles = grants.roles.without(role),
            Bound::Configured(bit) => grants.configured = grants.configured.without(bit),
        }
        if grants.is_empty() {
            self.grants.remove(&k);
        }
        self.bindings -= 1;
        let system = self.subjects.group(s) == Some(subject_group(SubjectType::System));
        self.resources.release(r);
        self.subjects.release(s);
        if system {
            self.refresh_system(SubjectType::System);
        }
        true
    }

    /// Adds a stored binding; `Ok(false)` when it was already there (by id, or as the same
    /// role of the same subject on the same resource). A binding of a role that is not built in
    /// is kept: applied while the catalog declares the role, dormant (granting nothing) while it
    /// does not. Stored bindings are removed by id ([`AuthzIndex::remove_access_binding`]); the
    /// by-name [`AuthzIndex::remove_binding`] is not for them.
    pub fn add_access_binding(&mut self, binding: &AccessBinding) -> Result<bool, BindingError> {
        let resource = Self::resource(binding)?;
        if self.held.contains_key(binding.id.as_str())
            || self.configured_bindings.contains_key(&binding.id)
        {
            return Ok(false);
        }
        let subject = SubjectRef::of(&binding.subject);
        if let Some(role) = Role::parse(&binding.role_id) {
            let Some((r, s)) = self.bind(resource, Bound::Builtin(role), subject) else {
                return Ok(false);
            };
            let held = Held {
                resource: r,
                subject: s,
                role,
            };
            self.held.insert(binding.id.as_str().into(), held);
            return Ok(true);
        }
        let added = match self.catalog.role(&binding.role_id) {
            Some(bit) => self
                .bind(resource, Bound::Configured(bit), subject)
                .is_some(),
            None => false,
        };
        self.configured_bindings
            .insert(binding.id.clone(), binding.clone());
        Ok(added)
    }

    /// Removes the stored binding with id `id`, as it was added; `false` when it was not there
    /// or granted nothing (a dormant binding, or one that repeated another).
    pub fn remove_access_binding(&mut self, id: &str) -> bool {
        if let Some(held) = self.held.remove(id) {
            return self.unbind_at(held.resource, held.subject, Bound::Builtin(held.role));
        }
        let Some(binding) = self.configured_bindings.remove(id) else {
            return false;
        };
        match (
            Resource::of(&binding.resource),
            self.catalog.role(&binding.role_id),
        ) {
            (Some(resource), Some(bit)) => self.unbind(
                resource,
                Bound::Configured(bit),
                SubjectRef::of(&binding.subject),
            ),
            _ => false,
        }
    }

    fn resource(binding: &AccessBinding) -> Result<Resource<'_>, BindingError> {
        Resource::of(&binding.resource).ok_or(BindingError::NotBindable(binding.resource.kind))
    }

    /// The configured roles and permissions in force.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Replaces the configured roles and permissions (at start and on every reload): the
    /// stored bindings of the roles it no longer declares grant nothing any more, those of the
    /// roles it declares now grant them. Costs one removal and one addition per stored binding
    /// of a configured role.
    pub fn set_catalog(&mut self, catalog: Arc<Catalog>) {
        let stored: Vec<AccessBinding> = self.configured_bindings.values().cloned().collect();
        for binding in &stored {
            if let (Some(resource), Some(bit)) = (
                Resource::of(&binding.resource),
                self.catalog.role(&binding.role_id),
            ) {
                self.unbind(
                    resource,
                    Bound::Configured(bit),
                    SubjectRef::of(&binding.subject),
                );
            }
        }
        self.catalog = catalog;
        for binding in &stored {
            if let (Some(resource), Some(bit)) = (
                Resource::of(&binding.resource),
                self.catalog.role(&binding.role_id),
            ) {
                self.bind(
                    resource,
                    Bound::Configured(bit),
                    SubjectRef::of(&binding.subject),
                );
            }
        }
    }

    /// How many stored bindings name a role that the catalog does not declare (granting
    /// nothing until a reload declares it).
    pub fn dormant_binding_count(&self) -> usize {
        self.configured_bindings
            .values()
            .filter(|b| self.catalog.role(&b.role_id).is_none())
            .count()
    }

    /// Marks a service account suspended (it holds nothing at [`AuthzIndex::check_path`]) or
    /// active again.
    pub fn set_suspended(&mut self, service_account_id: &str, suspended: bool) {
        if suspended {
            self.suspended.insert(service_account_id.to_owned());
        } else {
            self.suspended.remove(service_account_id);
        }
    }

    /// Whether the service account is suspended.
    pub fn is_suspended(&self, service_account_id: &str) -> bool {
        !self.suspended.is_empty() && self.suspended.contains(service_account_id)
    }

    fn refresh_system(&mut self, subject_type: SubjectType) {
        if subject_type == SubjectType::System {
            let group = subject_group(SubjectType::System);
            self.all_users = self.subjects.find(group, ALL_USERS).unwrap_or(NONE);
            self.all_authenticated = self
                .subjects
                .find(group, ALL_AUTHENTICATED_USERS)
                .unwrap_or(NONE);
        }
    }

    /// Puts `child` inside `parent`, replacing the parent it had; `Ok(false)` when that was
    /// already its parent. Refused unless `parent`'s scope is the one directly above.
    pub fn set_parent(
        &mut self,
        child: Resource<'_>,
        parent: Resource<'_>,
    ) -> Result<bool, WrongParent> {
        if child.scope.parent() != Some(parent.scope) {
            return Err(WrongParent {
                child: child.scope,
                parent: parent.scope,
            });
        }
        let existing = self.resources.find(child.scope as usize, child.id);
        let old = existing.map_or(NONE, |c| self.resources.parent(c));
        if old != NONE && self.resources.find(parent.scope as usize, parent.id) == Some(old) {
            return Ok(false);
        }
        let p = self.resources.acquire(parent.scope as usize, parent.id);
        let c = match existing {
            Some(c) if old != NONE => c,
            _ => self.resources.acquire(child.scope as usize, child.id),
        };
        self.resources.set_parent(c, p);
        if old != NONE {
            self.resources.release(old);
        }
        Ok(true)
    }

    /// Takes `child` out of its parent; `false` when it had none.
    pub fn remove_parent(&mut self, child: Resource<'_>) -> bool {
        let Some(c) = self.resources.find(child.scope as usize, child.id) else {
            return false;
        };
        let p = self.resources.parent(c);
        if p == NONE {
            return false;
        }
        self.resources.set_parent(c, NONE);
        self.resources.release(p);
        self.resources.release(c);
        true
    }

    /// Whether `principal` holds `permission` on `resource` by a binding on it or on a
    /// resource above it; if not, which permission on which resource is missing.
    pub fn check(
        &self,
        principal: &Principal<'_>,
        permission: Permission,
        resource: Resource<'_>,
    ) -> Result<(), Denied> {
        let wanted = Role::granting(permission);
        let Some(node) = self.resources.find(resource.scope as usize, resource.id) else {
            return Err(Denied::new(permission, resource));
        };
        if self.holds(principal, node, |grants| grants.roles.intersects(wanted)) {
            Ok(())
        } else {
            Err(Denied::new(permission, resource))
        }
    }

    /// Whether `principal` holds the permission named `permission` — configured
    /// (`lockbox.secrets.getPayload`) or built-in — on `resource` or above it. The same walk as
    /// [`AuthzIndex::check`], with the configured roles looked at beside the built-in ones.
    pub fn check_named(
        &self,
        principal: &Principal<'_>,
        permission: &str,
        resource: Resource<'_>,
    ) -> Result<(), NamedRefusal> {
        let grantors = self.grantors(permission)?;
        let denied = || NamedRefusal::Denied {
            permission: permission.to_owned(),
            resource: format!("{} {}", resource.scope, resource.id),
        };
        let node = self
            .resources
            .find(resource.scope as usize, resource.id)
            .ok_or_else(denied)?;
        if self.holds_any(principal, node, grantors) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    fn grantors(&self, permission: &str) -> Result<Grantors, NamedRefusal> {
        self.catalog
            .grantors(permission)
            .ok_or_else(|| NamedRefusal::UnknownPermission(permission.to_owned()))
    }

    fn holds_any(&self, principal: &Principal<'_>, node: u32, grantors: Grantors) -> bool {
        self.holds(principal, node, |grants| {
            grants.roles.intersects(grantors.roles)
                || grants.configured.intersects(grantors.configured)
        })
    }

    /// The Authorize API's check: whether `subject` holds `permission` (by name) on the
    /// resource a resource service names by its `path`, and whether the `caller` (the resource
    /// service) may ask. The path runs from the resource up (`lockbox.secret`,
    /// `resource-manager.folder`, `resource-manager.cloud`, …): elements of types roles are
    /// granted on here (organization, cloud, folder, service account, federation) are looked
    /// up in the index, others (a secret the gateway does not know) are skipped. The walk
    /// starts at the first element the index knows and goes up by the gateway's own
    /// hierarchy; every later element of a known type must agree with it (a folder the
    /// gateway knows in another cloud than the path says is refused, never trusted). The
    /// caller must hold `iam.accessService.authorize` where the walk starts (or above it).
    pub fn check_path(
        &self,
        caller: &Principal<'_>,
        subject: &Principal<'_>,
        permission: &str,
        path: &[PathElement<'_>],
    ) -> Result<(), NamedRefusal> {
        let grantors = self.grantors(permission)?;
        let Some(first) = path.first() else {
            return Err(NamedRefusal::BadPath(
                "the resource path is empty".to_owned(),
            ));
        };
        let mut start = None;
        let mut any_known_type = false;
        for (i, element) in path.iter().enumerate() {
            let Some(scope) = Scope::parse(element.resource_type) else {
                continue;
            };
            any_known_type = true;
            if let Some(node) = self.resources.find(scope as usize, element.id) {
                start = Some((i, node));
                break;
            }
        }
        if !any_known_type {
            return Err(NamedRefusal::BadPath(format!(
                "the resource path names no {}: the gateway grants roles on those only",
                Scope::ALL.map(Scope::as_str).join(", ")
            )));
        }
        let denied = || NamedRefusal::Denied {
            permission: permission.to_owned(),
            resource: format!("{} {}", first.resource_type, first.id),
        };
        let Some((at, node)) = start else {
            return Err(denied());
        };
        for element in path.iter().skip(at + 1) {
            let Some(scope) = Scope::parse(element.resource_type) else {
                continue;
            };
            if let Some(known) = self.ancestor(node, scope)
                && known != element.id
            {
                let (child_scope, child) = self.name(node);
                return Err(NamedRefusal::BadPath(format!(
                    "{child_scope} {child} is in {scope} {known}, not in {scope} {}",
                    element.id
                )));
            }
        }
        if let Some(account) = subject.subject
            && account.subject_type == SubjectType::ServiceAccount
            && self.is_suspended(account.id)
        {
            return Err(denied());
        }
        let authorize = Role::granting(Permission::AccessServiceAuthorize);
        if !self.holds(caller, node, |grants| grants.roles.intersects(authorize)) {
            let (scope, id) = self.name(node);
            return Err(NamedRefusal::CallerDenied {
                resource: format!("{scope} {id}"),
            });
        }
        if self.holds_any(subject, node, grantors) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    /// The ancestor of `node` (or `node` itself) of `scope`, by name.
    fn ancestor(&self, mut node: u32, scope: Scope) -> Option<&str> {
        for _ in Scope::ALL {
            let slot = self.resources.slots.get(node as usize)?;
            if usize::from(slot.group) == scope as usize {
                return slot.name.as_deref();
            }
            node = slot.parent;
            if node == NONE {
                return None;
            }
        }
        None
    }

    /// The scope and id of a resource node.
    fn name(&self, node: u32) -> (Scope, &str) {
        let slot = self.resources.slots.get(node as usize);
        let scope = slot
            .and_then(|s| Scope::ALL.get(usize::from(s.group)).copied())
            .unwrap_or(Scope::Organization);
        (scope, slot.and_then(|s| s.name.as_deref()).unwrap_or(""))
    }

    /// Whether bindings that `matches` accepts are bound to the principal, to
    /// `system:allAuthenticatedUsers` (when authenticated) or to `system:allUsers`, on the
    /// resource `node` or above it.
    #[inline]
    fn holds(
        &self,
        principal: &Principal<'_>,
        mut node: u32,
        matches: impl Fn(&Grants) -> bool,
    ) -> bool {
        let who = match principal.subject {
            None => [NONE, NONE, self.all_users],
            Some(subject) => [
                self.subjects
                    .find(subject_group(subject.subject_type), subject.id)
                    .unwrap_or(NONE),
                self.all_authenticated,
                self.all_users,
            ],
        };
        // Each parent link goes one scope up (`set_parent` refuses any other), so the walk
        // visits at most one resource per scope; bounding it by that keeps a broken link from
        // ever turning a check into an endless loop.
        for _ in Scope::ALL {
            for subject in who {
                if subject != NONE && self.grants.get(&key(node, subject)).is_some_and(&matches) {
                    return true;
                }
            }
            node = self.resources.parent(node);
            if node == NONE {
                return false;
            }
        }
        false
    }

    /// Checks every requirement of `method` on the resources the call names, in the order of
    /// [`Method::targets`]; the first one missing is the refusal.
    pub fn authorize(
        &self,
        principal: &Principal<'_>,
        method: Method,
        targets: &[Resource<'_>],
    ) -> Result<(), Refused> {
        let expected = method.targets();
        let wrong = Refused::WrongTargets {
            method,
            expected: expected.len(),
        };
        if targets.len() != expected.len() {
            return Err(wrong);
        }
        let matches = targets.iter().zip(expected).all(|(t, e)| match e {
            Target::Of(scope) => t.scope == *scope,
            Target::Any => true,
        });
        if !matches {
            return Err(wrong);
        }
        for requirement in method.requirements() {
            let Some(target) = targets.get(requirement.on) else {
                return Err(wrong);
            };
            let permission = match requirement.need {
                Need::Permission(p) => p,
                Need::Read => target.scope.read_permission(),
            };
            self.check(principal, permission, *target)?;
        }
        Ok(())
    }

    /// Whether `principal` may grant — or revoke — the role `role_id` on `resource`, by
    /// `setAccessBindings` or `updateAccessBindings`. The role must exist (built in, or
    /// declared by the catalog) and be grantable on the resource's scope (configured roles are
    /// grantable everywhere); the principal must hold the scope's `setAccessBindings`
    /// permission on the resource, and every owner permission the role carries (so `admin`
    /// neither grants nor revokes an owner role). Call it for every binding a request adds
    /// and every binding it removes.
    pub fn may_grant(
        &self,
        principal: &Principal<'_>,
        role_id: &str,
        resource: Resource<'_>,
    ) -> Result<(), Refused> {
        let role = match super::roles::check_role_id(role_id) {
            Ok(role) => Some(role),
            Err(_) if self.catalog.role(role_id).is_some() => None,
            Err(unknown) => return Err(unknown.into()),
        };
        if let Some(role) = role
            && !role.grantable_on(resource.scope)
        {
            return Err(Refused::NotGrantableOn {
                role,
                scope: resource.scope,
            });
        }
        self.check(
            principal,
            resource.scope.set_bindings_permission(),
            resource,
        )?;
        if let Some(role) = role {
            for owner in role.permissions().intersection(OWNER_PERMISSIONS).iter() {
                self.check(principal, owner, resource)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
