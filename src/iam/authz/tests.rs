//! The authorization index against the role graph: the permission matrix (one test per
//! method, named after it), inheritance, system subjects, the rules of granting, and
//! incremental changes against a rebuilt index and a brute-force model.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::iam::ResourceKind;

/// The hierarchy every test starts from:
///
/// ```text
/// o1 ─ c1 ─ f1 ─ s1, s3 (service accounts), w1 (federation)
///         └ f2 ─ s2, w2
/// ```
const O1: Resource<'static> = Resource::organization("o1");
const C1: Resource<'static> = Resource::cloud("c1");
const F1: Resource<'static> = Resource::folder("f1");
const F2: Resource<'static> = Resource::folder("f2");
const S1: Resource<'static> = Resource::service_account("s1");
const S2: Resource<'static> = Resource::service_account("s2");
const S3: Resource<'static> = Resource::service_account("s3");
const W1: Resource<'static> = Resource::federation("w1");
const W2: Resource<'static> = Resource::federation("w2");

/// The caller in every test, and someone with no bindings.
const ALICE: Principal<'static> = Principal::service_account("alice");
const BOB: Principal<'static> = Principal::service_account("bob");

fn hierarchy() -> AuthzIndex {
    let mut index = AuthzIndex::new();
    for (child, parent) in [
        (C1, O1),
        (F1, C1),
        (F2, C1),
        (S1, F1),
        (S3, F1),
        (W1, F1),
        (S2, F2),
        (W2, F2),
    ] {
        assert_eq!(index.set_parent(child, parent), Ok(true));
    }
    index
}

fn role(id: &str) -> Role {
    Role::parse(id).unwrap_or_else(|| panic!("unknown role {id}"))
}

fn grant(index: &mut AuthzIndex, role_id: &str, on: Resource<'_>, who: &str) {
    assert!(index.add_binding(on, role(role_id), SubjectRef::service_account(who)));
}

fn with(grants: &[(&str, Resource<'_>)]) -> AuthzIndex {
    let mut index = hierarchy();
    for (role_id, on) in grants {
        grant(&mut index, role_id, *on, "alice");
    }
    index
}

/// The resource of the fixture a method's target of `target` stands for.
fn fixture(target: Target) -> Resource<'static> {
    match target {
        Target::Of(Scope::Organization) => O1,
        Target::Of(Scope::Cloud) => C1,
        Target::Of(Scope::Folder) => F1,
        Target::Of(Scope::ServiceAccount) | Target::Any => S1,
        Target::Of(Scope::Federation) => W1,
    }
}

fn targets_of(method: Method) -> Vec<Resource<'static>> {
    method.targets().iter().map(|t| fixture(*t)).collect()
}

/// A scenario of a matrix row: roles granted to alice, each on a resource of the fixture.
type Grants<'a> = &'a [(&'a str, Resource<'a>)];

/// One row of the permission matrix: every `min` scenario is enough on its own, every
/// `below` scenario is not, and the refusal names one of the method's permissions.
fn row(method: Method, min: &[Grants<'_>], below: &[Grants<'_>]) {
    let targets = targets_of(method);
    let needed: Vec<Permission> = method
        .requirements()
        .iter()
        .map(|r| match r.need {
            Need::Permission(p) => p,
            Need::Read => targets[r.on].scope.read_permission(),
        })
        .collect();
    if needed.is_empty() {
        let index = hierarchy();
        for who in [ALICE, BOB, Principal::ANONYMOUS] {
            assert_eq!(index.authorize(&who, method, &[]), Ok(()), "{method:?}");
        }
        assert!(min.is_empty() && below.is_empty());
        return;
    }
    assert!(
        !min.is_empty() && !below.is_empty(),
        "{method:?}: a row names both"
    );
    for grants in min {
        let index = with(grants);
        assert_eq!(
            index.authorize(&ALICE, method, &targets),
            Ok(()),
            "{method:?} with {grants:?}"
        );
        let refused = index.authorize(&BOB, method, &targets);
        assert!(
            matches!(&refused, Err(Refused::Denied(d)) if d.permission == needed[0]),
            "{method:?}: someone else is refused: {refused:?}"
        );
    }
    for grants in below {
        let index = with(grants);
        match index.authorize(&ALICE, method, &targets) {
            Err(Refused::Denied(denied)) => {
                assert!(
                    needed.contains(&denied.permission),
                    "{method:?} with {grants:?}: {denied}"
                );
                assert!(
                    targets
                        .iter()
                        .any(|t| t.scope == denied.scope && t.id == denied.resource_id),
                    "{method:?}: the refusal names a target: {denied}"
                );
            }
            other => panic!("{method:?} with {grants:?} must be denied, got {other:?}"),
        }
    }
}

/// Each role alone, on the method's first target.
macro_rules! on_target {
    ($method:ident: $($role:literal),*) => {
        &[$(&[($role, fixture(Method::$method.targets()[0]))]),*]
    };
}

macro_rules! matrix {
    ($($name:ident: $method:ident, min [$($min:literal),*], below [$($below:literal),*];)*) => {
        mod matrix {
            use super::*;
            $(
                #[test]
                fn $name() {
                    row(
                        Method::$method,
                        on_target!($method: $($min),*),
                        on_target!($method: $($below),*),
                    );
                }
            )*
        }
        /// The methods the matrix covers.
        const MATRIX: &[Method] = &[$(Method::$method,)* Method::FederatedCredentialCreate];
    };
}

matrix! {
    cloud_get: CloudGet, min ["iam.auditor", "auditor"],
        below ["iam.serviceAccounts.admin", "iam.workloadIdentityFederations.admin"];
    cloud_list: CloudList, min [], below [];
    cloud_create: CloudCreate, min ["resource-manager.admin", "editor"], below ["viewer", "iam.admin"];
    cloud_update: CloudUpdate, min ["resource-manager.admin", "editor"], below ["viewer", "iam.admin"];
    cloud_delete: CloudDelete, min ["resource-manager.admin", "editor"], below ["viewer", "iam.admin"];
    cloud_list_operations: CloudListOperations, min ["iam.auditor", "auditor"],
        below ["iam.serviceAccounts.admin", "iam.workloadIdentityFederations.admin"];
    cloud_list_access_bindings: CloudListAccessBindings,
        min ["admin", "iam.admin", "resource-manager.admin"], below ["editor", "iam.editor"];
    cloud_set_access_bindings: CloudSetAccessBindings,
        min ["admin", "iam.admin", "resource-manager.admin"], below ["editor", "iam.editor"];
    cloud_update_access_bindings: CloudUpdateAccessBindings,
        min ["admin", "iam.admin", "resource-manager.admin"], below ["editor", "iam.editor"];

    folder_get: FolderGet, min ["iam.auditor", "auditor", "iam.serviceAccounts.admin"],
        below ["iam.serviceAccounts.user", "iam.workloadIdentityFederations.admin"];
    folder_list: FolderList, min ["iam.auditor", "auditor", "resource-manager.admin"],
        below ["iam.serviceAccounts.admin"];
    folder_create: FolderCreate, min ["iam.editor", "editor", "resource-manager.admin"],
        below ["iam.viewer", "viewer"];
    folder_update: FolderUpdate, min ["iam.editor", "editor", "resource-manager.admin"],
        below ["iam.viewer", "viewer"];
    folder_delete: FolderDelete, min ["iam.editor", "editor", "resource-manager.admin"],
        below ["iam.viewer", "viewer"];
    folder_list_operations: FolderListOperations,
        min ["iam.auditor", "auditor", "iam.serviceAccounts.admin"],
        below ["iam.serviceAccounts.user", "iam.workloadIdentityFederations.admin"];
    folder_list_access_bindings: FolderListAccessBindings,
        min ["admin", "iam.admin", "resource-manager.admin"],
        below ["editor", "iam.editor", "iam.serviceAccounts.admin"];
    folder_set_access_bindings: FolderSetAccessBindings,
        min ["admin", "iam.admin", "resource-manager.admin"],
        below ["editor", "iam.editor", "iam.serviceAccounts.admin"];
    folder_update_access_bindings: FolderUpdateAccessBindings,
        min ["admin", "iam.admin", "resource-manager.admin"],
        below ["editor", "iam.editor", "iam.serviceAccounts.admin"];

    service_account_get: ServiceAccountGet,
        min ["iam.serviceAccounts.user", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.tokenCreator", "iam.serviceAccounts.keyAdmin"];
    service_account_list: ServiceAccountList,
        min ["iam.serviceAccounts.user", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.tokenCreator", "iam.serviceAccounts.keyAdmin"];
    service_account_create: ServiceAccountCreate,
        min ["iam.serviceAccounts.admin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.user", "iam.viewer", "viewer"];
    service_account_update: ServiceAccountUpdate,
        min ["iam.serviceAccounts.admin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.user", "iam.viewer", "viewer"];
    service_account_delete: ServiceAccountDelete,
        min ["iam.serviceAccounts.admin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.user", "iam.viewer", "viewer"];
    service_account_suspend: ServiceAccountSuspend,
        min ["iam.serviceAccounts.admin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.user", "iam.viewer", "viewer"];
    service_account_reactivate: ServiceAccountReactivate,
        min ["iam.serviceAccounts.admin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.user", "iam.viewer", "viewer"];
    service_account_list_operations: ServiceAccountListOperations,
        min ["iam.serviceAccounts.user", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.tokenCreator", "iam.serviceAccounts.keyAdmin"];
    service_account_list_access_bindings: ServiceAccountListAccessBindings,
        min ["iam.auditor", "viewer", "iam.serviceAccounts.admin"],
        below ["auditor", "iam.serviceAccounts.user"];
    service_account_set_access_bindings: ServiceAccountSetAccessBindings,
        min ["iam.serviceAccounts.admin", "admin"], below ["editor", "iam.editor"];
    service_account_update_access_bindings: ServiceAccountUpdateAccessBindings,
        min ["iam.serviceAccounts.admin", "admin"], below ["editor", "iam.editor"];

    key_get: KeyGet, min ["iam.serviceAccounts.authorizedKeyAdmin", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.serviceAccounts.accessKeyAdmin"];
    key_list: KeyList, min ["iam.serviceAccounts.authorizedKeyAdmin", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.serviceAccounts.accessKeyAdmin"];
    key_create: KeyCreate, min ["iam.serviceAccounts.authorizedKeyAdmin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.viewer", "viewer"];
    key_update: KeyUpdate, min ["iam.serviceAccounts.authorizedKeyAdmin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.viewer", "viewer"];
    key_delete: KeyDelete, min ["iam.serviceAccounts.authorizedKeyAdmin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.viewer", "viewer"];
    key_list_operations: KeyListOperations,
        min ["iam.serviceAccounts.authorizedKeyAdmin", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.serviceAccounts.accessKeyAdmin"];

    api_key_get: ApiKeyGet, min ["iam.serviceAccounts.apiKeyAdmin", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.authorizedKeyAdmin", "iam.serviceAccounts.accessKeyAdmin"];
    api_key_list: ApiKeyList, min ["iam.serviceAccounts.apiKeyAdmin", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.authorizedKeyAdmin", "iam.serviceAccounts.accessKeyAdmin"];
    api_key_create: ApiKeyCreate, min ["iam.serviceAccounts.apiKeyAdmin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.authorizedKeyAdmin", "iam.viewer", "viewer"];
    api_key_update: ApiKeyUpdate, min ["iam.serviceAccounts.apiKeyAdmin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.authorizedKeyAdmin", "iam.viewer", "viewer"];
    api_key_delete: ApiKeyDelete, min ["iam.serviceAccounts.apiKeyAdmin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.authorizedKeyAdmin", "iam.viewer", "viewer"];
    api_key_list_operations: ApiKeyListOperations,
        min ["iam.serviceAccounts.apiKeyAdmin", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.authorizedKeyAdmin", "iam.serviceAccounts.accessKeyAdmin"];

    access_key_get: AccessKeyGet,
        min ["iam.serviceAccounts.accessKeyAdmin", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.serviceAccounts.authorizedKeyAdmin"];
    access_key_list: AccessKeyList,
        min ["iam.serviceAccounts.accessKeyAdmin", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.serviceAccounts.authorizedKeyAdmin"];
    access_key_create: AccessKeyCreate,
        min ["iam.serviceAccounts.accessKeyAdmin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.viewer", "viewer"];
    access_key_update: AccessKeyUpdate,
        min ["iam.serviceAccounts.accessKeyAdmin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.viewer", "viewer"];
    access_key_delete: AccessKeyDelete,
        min ["iam.serviceAccounts.accessKeyAdmin", "iam.editor", "editor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.viewer", "viewer"];
    access_key_list_operations: AccessKeyListOperations,
        min ["iam.serviceAccounts.accessKeyAdmin", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.apiKeyAdmin", "iam.serviceAccounts.authorizedKeyAdmin"];

    federation_get: FederationGet,
        min ["iam.workloadIdentityFederations.auditor", "auditor", "iam.admin"],
        below ["iam.workloadIdentityFederations.user", "iam.editor"];
    federation_list: FederationList,
        min ["iam.workloadIdentityFederations.auditor", "auditor", "iam.admin"],
        below ["iam.workloadIdentityFederations.user", "iam.editor"];
    federation_create: FederationCreate, min ["iam.workloadIdentityFederations.editor", "editor"],
        below ["iam.workloadIdentityFederations.viewer", "iam.workloadIdentityFederations.user",
               "viewer", "iam.admin"];
    federation_update: FederationUpdate, min ["iam.workloadIdentityFederations.editor", "editor"],
        below ["iam.workloadIdentityFederations.viewer", "iam.workloadIdentityFederations.user",
               "viewer", "iam.admin"];
    federation_delete: FederationDelete, min ["iam.workloadIdentityFederations.editor", "editor"],
        below ["iam.workloadIdentityFederations.viewer", "iam.workloadIdentityFederations.user",
               "viewer", "iam.admin"];
    federation_list_access_bindings: FederationListAccessBindings, min ["admin", "iam.admin"],
        below ["iam.workloadIdentityFederations.admin", "editor"];
    federation_set_access_bindings: FederationSetAccessBindings, min ["admin", "iam.admin"],
        below ["iam.workloadIdentityFederations.admin", "editor"];
    federation_update_access_bindings: FederationUpdateAccessBindings, min ["admin", "iam.admin"],
        below ["iam.workloadIdentityFederations.admin", "editor"];

    federated_credential_get: FederatedCredentialGet,
        min ["iam.serviceAccounts.federatedCredentialViewer", "auditor"],
        below ["iam.serviceAccounts.admin", "iam.auditor"];
    federated_credential_list: FederatedCredentialList,
        min ["iam.serviceAccounts.federatedCredentialViewer", "auditor"],
        below ["iam.serviceAccounts.admin", "iam.auditor"];
    federated_credential_delete: FederatedCredentialDelete,
        min ["iam.serviceAccounts.federatedCredentialEditor", "editor"],
        below ["iam.serviceAccounts.federatedCredentialViewer", "viewer"];

    operation_get: OperationGet, min ["iam.serviceAccounts.user", "auditor"],
        below ["iam.serviceAccounts.tokenCreator"];
    role_get: RoleGet, min [], below [];
    api_key_list_scopes: ApiKeyListScopes, min [], below [];
    role_list: RoleList, min [], below [];
    iam_token_create: IamTokenCreate, min [], below [];
    iam_token_create_for_service_account: IamTokenCreateForServiceAccount,
        min ["iam.serviceAccounts.tokenCreator", "iam.serviceAccounts.admin", "editor"],
        below ["iam.serviceAccounts.user", "iam.editor", "viewer"];
    iam_token_revoke: IamTokenRevoke,
        min ["iam.serviceAccounts.tokenCreator", "iam.serviceAccounts.admin", "editor"],
        below ["iam.serviceAccounts.user", "iam.editor", "viewer"];
    iam_token_introspect: IamTokenIntrospect,
        min ["iam.serviceAccounts.user", "iam.auditor", "auditor"],
        below ["iam.serviceAccounts.tokenCreator", "iam.serviceAccounts.keyAdmin"];
    access_service_authorize: AccessServiceAuthorize,
        min ["iam.accessService.authorizer", "admin"],
        below ["editor", "iam.admin", "iam.serviceAccounts.admin"];
}

/// Two requirements: the credential permission on the service account and `use` on the
/// federation (a grant on the federation's folder is what the Yandex documentation names; one
/// on the federation itself is narrower and also counts).
#[test]
fn federated_credential_create() {
    const EDITOR: &str = "iam.serviceAccounts.federatedCredentialEditor";
    const USER: &str = "iam.workloadIdentityFederations.user";
    row(
        Method::FederatedCredentialCreate,
        &[
            &[(EDITOR, S1), (USER, F1)],
            &[(EDITOR, S1), (USER, W1)],
            &[(EDITOR, F1), ("iam.workloadIdentityFederations.admin", F1)],
            &[("editor", F1)],
        ],
        &[
            &[
                ("iam.serviceAccounts.federatedCredentialViewer", S1),
                (USER, F1),
            ],
            &[(EDITOR, S1), ("iam.workloadIdentityFederations.viewer", F1)],
            &[(EDITOR, S1), (USER, F2)],
            &[(EDITOR, S1), (USER, W2)],
            &[(EDITOR, S2), (USER, F1)],
            &[(EDITOR, S1)],
            &[(USER, F1)],
            &[
                ("iam.serviceAccounts.admin", S1),
                ("iam.workloadIdentityFederations.admin", F1),
            ],
        ],
    );
    // Which of the two is missing is named.
    let index = with(&[(EDITOR, S1)]);
    assert_eq!(
        index.authorize(&ALICE, Method::FederatedCredentialCreate, &[S1, W1]),
        Err(Refused::Denied(Denied {
            permission: Permission::FederationsUse,
            scope: Scope::Federation,
            resource_id: "w1".into(),
        }))
    );
    let index = with(&[(USER, F1)]);
    assert_eq!(
        index.authorize(&ALICE, Method::FederatedCredentialCreate, &[S1, W1]),
        Err(Refused::Denied(Denied {
            permission: Permission::FederatedCredentialsCreate,
            scope: Scope::ServiceAccount,
            resource_id: "s1".into(),
        }))
    );
}

#[test]
fn the_matrix_covers_every_method() {
    for method in Method::ALL {
        assert!(MATRIX.contains(method), "{method:?} has no row");
    }
    assert_eq!(MATRIX.len(), Method::ALL.len());
}

#[test]
fn operations_are_read_with_the_read_permission_of_their_resource() {
    for (target, role_id, enough) in [
        (O1, "auditor", true),
        (O1, "iam.auditor", false),
        (C1, "iam.auditor", true),
        (C1, "iam.serviceAccounts.admin", false),
        (F1, "iam.serviceAccounts.admin", true),
        (F1, "iam.serviceAccounts.user", false),
        (S1, "iam.serviceAccounts.user", true),
        (W1, "iam.workloadIdentityFederations.auditor", true),
        (W1, "iam.workloadIdentityFederations.user", false),
    ] {
        let index = with(&[(role_id, target)]);
        let result = index.authorize(&ALICE, Method::OperationGet, &[target]);
        assert_eq!(result.is_ok(), enough, "{role_id} on {target}: {result:?}");
        if let Err(Refused::Denied(denied)) = result {
            assert_eq!(denied.permission, target.scope.read_permission());
        }
    }
}

#[test]
fn wrong_targets_are_refused_not_guessed() {
    let index = with(&[("admin", O1)]);
    for (method, targets) in [
        (Method::KeyCreate, vec![]),
        (Method::KeyCreate, vec![F1]),
        (Method::KeyCreate, vec![S1, S1]),
        (Method::FederatedCredentialCreate, vec![S1, F1]),
        (Method::FederatedCredentialCreate, vec![W1, S1]),
        (Method::CloudList, vec![C1]),
        (Method::FolderCreate, vec![F1]),
    ] {
        assert_eq!(
            index.authorize(&ALICE, method, &targets),
            Err(Refused::WrongTargets {
                method,
                expected: method.targets().len()
            }),
            "{method:?} {targets:?}"
        );
    }
    assert_eq!(
        Refused::WrongTargets {
            method: Method::KeyCreate,
            expected: 1
        }
        .to_string(),
        "yandex.cloud.iam.v1.KeyService/Create takes 1 resources of the scopes it names"
    );
}

mod inheritance {
    use super::*;

    #[test]
    fn a_folder_role_applies_to_the_accounts_and_federations_in_it() {
        let index = with(&[("editor", F1)]);
        for target in [F1, S1, S3, W1] {
            assert_eq!(
                index.check(&ALICE, Permission::ServiceAccountsUpdate, target),
                Ok(())
            );
        }
        for target in [O1, C1, F2, S2, W2] {
            assert!(
                index
                    .check(&ALICE, Permission::ServiceAccountsUpdate, target)
                    .is_err(),
                "{target}"
            );
        }
    }

    #[test]
    fn an_account_role_does_not_apply_to_its_folder_or_siblings() {
        let index = with(&[("iam.serviceAccounts.admin", S1)]);
        assert_eq!(
            index.check(&ALICE, Permission::ServiceAccountsDelete, S1),
            Ok(())
        );
        for target in [F1, S3, S2, C1] {
            assert_eq!(
                index.check(&ALICE, Permission::ServiceAccountsDelete, target),
                Err(Denied::new(Permission::ServiceAccountsDelete, target)),
            );
        }
        assert!(index.check(&ALICE, Permission::FoldersGet, F1).is_err());
        assert_eq!(
            index.authorize(&ALICE, Method::ServiceAccountCreate, &[F1]),
            Err(Refused::Denied(Denied::new(
                Permission::ServiceAccountsCreate,
                F1
            )))
        );
    }

    #[test]
    fn organization_and_cloud_roles_reach_three_levels_down() {
        let index = with(&[("viewer", O1)]);
        for target in [O1, C1, F1, F2, S1, S2, W1, W2] {
            assert_eq!(
                index.check(&ALICE, target.scope.read_permission(), target),
                Ok(()),
                "{target}"
            );
        }
        let index = with(&[("iam.serviceAccounts.user", C1)]);
        assert_eq!(
            index.check(&ALICE, Permission::ServiceAccountsUse, S2),
            Ok(())
        );
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsUse, O1)
                .is_err()
        );
    }

    #[test]
    fn unknown_resources_hold_nothing() {
        let index = with(&[("admin", O1)]);
        let stray = Resource::service_account("not-linked");
        assert_eq!(
            index.check(&ALICE, Permission::ServiceAccountsGet, stray),
            Err(Denied::new(Permission::ServiceAccountsGet, stray))
        );
        // The same id under another scope is another resource.
        assert!(
            index
                .check(&ALICE, Permission::FoldersGet, Resource::folder("s1"))
                .is_err()
        );
    }

    #[test]
    fn moving_and_unlinking_change_what_is_inherited() {
        let mut index = with(&[("editor", F1)]);
        assert_eq!(index.set_parent(S1, F1), Ok(false), "already there");
        assert_eq!(index.set_parent(S1, F2), Ok(true));
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsUpdate, S1)
                .is_err()
        );
        assert_eq!(index.set_parent(S1, F1), Ok(true));
        assert_eq!(
            index.check(&ALICE, Permission::ServiceAccountsUpdate, S1),
            Ok(())
        );
        assert!(index.remove_parent(S1));
        assert!(!index.remove_parent(S1), "no parent left");
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsUpdate, S1)
                .is_err()
        );
        assert!(!index.remove_parent(Resource::service_account("never-seen")));
        // A folder cut from its cloud takes its children with it.
        let mut index = with(&[("editor", C1)]);
        assert!(index.remove_parent(F1));
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsUpdate, S1)
                .is_err()
        );
        assert_eq!(
            index.check(&ALICE, Permission::ServiceAccountsUpdate, S2),
            Ok(())
        );
    }

    #[test]
    fn a_broken_parent_link_cannot_loop() {
        let mut index = with(&[("viewer", F1)]);
        // Not reachable through set_parent; made by hand to prove the walk is bounded.
        let f1 = index.resources.find(Scope::Folder as usize, "f1").unwrap();
        index.resources.set_parent(f1, f1);
        assert_eq!(
            index.check(&ALICE, Permission::ServiceAccountsGet, S1),
            Ok(())
        );
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsDelete, S1)
                .is_err()
        );
    }

    #[test]
    fn only_the_scope_directly_above_can_be_a_parent() {
        let mut index = AuthzIndex::new();
        for (child, parent) in [
            (S1, C1),
            (S1, O1),
            (S1, S2),
            (S1, W1),
            (F1, O1),
            (F1, F2),
            (C1, C1),
            (O1, O1),
            (W1, C1),
            (C1, F1),
        ] {
            assert_eq!(
                index.set_parent(child, parent),
                Err(WrongParent {
                    child: child.scope,
                    parent: parent.scope
                }),
                "{child} in {parent}"
            );
        }
        assert_eq!(index.resource_count(), 0, "a refused link interns nothing");
        assert_eq!(
            WrongParent {
                child: Scope::ServiceAccount,
                parent: Scope::Cloud
            }
            .to_string(),
            "a iam.serviceAccount cannot be inside a resource-manager.cloud"
        );
    }
}

mod subjects {
    use super::*;

    fn bound_to(subject: SubjectRef<'_>, role_id: &str, on: Resource<'_>) -> AuthzIndex {
        let mut index = hierarchy();
        assert!(index.add_binding(on, role(role_id), subject));
        index
    }

    #[test]
    fn all_authenticated_users_covers_every_authenticated_caller_only() {
        let index = bound_to(SubjectRef::all_authenticated_users(), "viewer", F1);
        for who in [
            ALICE,
            BOB,
            Principal::authenticated(SubjectRef::new(SubjectType::UserAccount, "u1")),
        ] {
            assert_eq!(
                index.check(&who, Permission::ServiceAccountsGet, S1),
                Ok(())
            );
        }
        assert!(
            index
                .check(&Principal::ANONYMOUS, Permission::ServiceAccountsGet, S1)
                .is_err()
        );
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsGet, S2)
                .is_err()
        );
    }

    #[test]
    fn all_users_covers_anonymous_callers_too() {
        let index = bound_to(SubjectRef::all_users(), "iam.serviceAccounts.user", S1);
        for who in [ALICE, Principal::ANONYMOUS] {
            assert_eq!(
                index.check(&who, Permission::ServiceAccountsGet, S1),
                Ok(())
            );
            assert!(
                index
                    .check(&who, Permission::ServiceAccountsGet, S3)
                    .is_err()
            );
        }
    }

    #[test]
    fn an_anonymous_caller_holds_nothing_else() {
        let mut index = with(&[("admin", O1)]);
        grant(&mut index, "admin", O1, "");
        assert!(
            index
                .check(&Principal::ANONYMOUS, Permission::FoldersGet, F1)
                .is_err()
        );
        assert_eq!(Principal::ANONYMOUS.subject(), None);
    }

    #[test]
    fn other_system_subjects_and_look_alikes_never_match() {
        for subject in [
            SubjectRef::new(SubjectType::System, "group:organization:o1:users"),
            SubjectRef::new(SubjectType::System, "allusers"),
            SubjectRef::new(SubjectType::Group, "allUsers"),
            SubjectRef::service_account(ALL_USERS),
            SubjectRef::service_account(ALL_AUTHENTICATED_USERS),
            SubjectRef::new(SubjectType::UserAccount, "alice"),
        ] {
            let index = bound_to(subject, "admin", O1);
            for who in [ALICE, Principal::ANONYMOUS] {
                assert!(
                    index.check(&who, Permission::FoldersGet, F1).is_err(),
                    "{subject:?} / {who:?}"
                );
            }
        }
    }

    #[test]
    fn the_system_subjects_are_forgotten_with_their_last_binding() {
        let mut index = hierarchy();
        let everyone = SubjectRef::all_users();
        let signed_in = SubjectRef::all_authenticated_users();
        assert!(index.add_binding(F1, Role::Viewer, everyone));
        assert!(index.add_binding(F2, Role::Viewer, signed_in));
        assert!(index.add_binding(F2, Role::Auditor, everyone));
        assert!(index.remove_binding(F1, Role::Viewer, everyone));
        assert_eq!(
            index.check(&Principal::ANONYMOUS, Permission::FoldersGet, F2),
            Ok(()),
            "allUsers still has a binding"
        );
        assert!(index.remove_binding(F2, Role::Auditor, everyone));
        assert!(
            index
                .check(&Principal::ANONYMOUS, Permission::FoldersGet, F2)
                .is_err()
        );
        assert_eq!(index.check(&BOB, Permission::FoldersGet, F2), Ok(()));
        assert!(index.remove_binding(F2, Role::Viewer, signed_in));
        assert!(index.check(&BOB, Permission::FoldersGet, F2).is_err());
        // A service account interned in the slot the system subject had is not everyone.
        grant(&mut index, "viewer", F1, "carol");
        assert!(index.check(&BOB, Permission::FoldersGet, F1).is_err());
        assert_eq!(
            index.check(
                &Principal::service_account("carol"),
                Permission::FoldersGet,
                F1
            ),
            Ok(())
        );
    }
}

mod granting {
    use super::*;

    fn refused_for_lack_of(result: Result<(), Refused>, permission: Permission) -> bool {
        matches!(result, Err(Refused::Denied(d)) if d.permission == permission)
    }

    #[test]
    fn admin_cannot_grant_or_revoke_owner_roles() {
        let index = with(&[("admin", O1)]);
        assert!(refused_for_lack_of(
            index.may_grant(&ALICE, "resource-manager.clouds.owner", C1),
            Permission::CloudsManageOwners
        ));
        assert!(refused_for_lack_of(
            index.may_grant(&ALICE, "resource-manager.clouds.owner", O1),
            Permission::CloudsManageOwners
        ));
        assert!(refused_for_lack_of(
            index.may_grant(&ALICE, "organization-manager.organizations.owner", O1),
            Permission::OrganizationsManageOwners
        ));
        for role_id in ["admin", "editor", "iam.admin", "resource-manager.admin"] {
            assert_eq!(index.may_grant(&ALICE, role_id, C1), Ok(()), "{role_id}");
        }
    }

    #[test]
    fn owners_grant_owner_roles_where_they_own() {
        let index = with(&[("resource-manager.clouds.owner", C1)]);
        assert_eq!(
            index.may_grant(&ALICE, "resource-manager.clouds.owner", C1),
            Ok(())
        );
        assert_eq!(index.may_grant(&ALICE, "admin", F1), Ok(()));
        assert!(refused_for_lack_of(
            index.may_grant(&ALICE, "organization-manager.organizations.owner", O1),
            Permission::OrganizationsSetAccessBindings
        ));
        assert!(refused_for_lack_of(
            index.may_grant(&ALICE, "viewer", O1),
            Permission::OrganizationsSetAccessBindings
        ));
        let index = with(&[("organization-manager.organizations.owner", O1)]);
        for (role_id, on) in [
            ("organization-manager.organizations.owner", O1),
            ("resource-manager.clouds.owner", O1),
            ("resource-manager.clouds.owner", C1),
            ("organization-manager.admin", O1),
        ] {
            assert_eq!(index.may_grant(&ALICE, role_id, on), Ok(()));
        }
        // An organization admin assigns roles in the organization, but not the owners'.
        let index = with(&[("organization-manager.admin", O1)]);
        assert_eq!(index.may_grant(&ALICE, "admin", S1), Ok(()));
        assert!(refused_for_lack_of(
            index.may_grant(&ALICE, "resource-manager.clouds.owner", C1),
            Permission::CloudsManageOwners
        ));
    }

    #[test]
    fn roles_are_granted_only_on_their_scopes() {
        let index = with(&[("organization-manager.organizations.owner", O1)]);
        for (role_id, on) in [
            ("resource-manager.clouds.owner", F1),
            ("organization-manager.admin", C1),
            ("organization-manager.organizations.owner", C1),
            ("iam.userAccounts.refreshTokenViewer", F1),
        ] {
            assert_eq!(
                index.may_grant(&ALICE, role_id, on),
                Err(Refused::NotGrantableOn {
                    role: role(role_id),
                    scope: on.scope
                }),
                "{role_id} on {on}"
            );
        }
        assert_eq!(
            Refused::NotGrantableOn {
                role: Role::OrganizationManagerAdmin,
                scope: Scope::Cloud
            }
            .to_string(),
            "role organization-manager.admin cannot be granted on a resource-manager.cloud"
        );
    }

    #[test]
    fn editor_cannot_change_bindings_at_all() {
        let index = with(&[("editor", O1)]);
        for on in [O1, C1, F1, S1, W1] {
            for role_id in ["auditor", "viewer", "editor", "iam.serviceAccounts.user"] {
                assert!(
                    refused_for_lack_of(
                        index.may_grant(&ALICE, role_id, on),
                        on.scope.set_bindings_permission()
                    ),
                    "{role_id} on {on}"
                );
            }
        }
        for (method, target) in [
            (Method::CloudSetAccessBindings, C1),
            (Method::FolderUpdateAccessBindings, F1),
            (Method::ServiceAccountSetAccessBindings, S1),
            (Method::FederationUpdateAccessBindings, W1),
        ] {
            assert!(index.authorize(&ALICE, method, &[target]).is_err());
        }
    }

    #[test]
    fn administering_one_service_account_grants_nothing_on_its_folder() {
        let index = with(&[("iam.serviceAccounts.admin", S1)]);
        assert_eq!(
            index.may_grant(&ALICE, "iam.serviceAccounts.user", S1),
            Ok(())
        );
        for on in [F1, C1, O1, S3, S2, W1] {
            assert!(
                refused_for_lack_of(
                    index.may_grant(&ALICE, "iam.serviceAccounts.user", on),
                    on.scope.set_bindings_permission()
                ),
                "{on}"
            );
        }
        // Even administering all the folder's accounts is not administering the folder.
        let index = with(&[("iam.serviceAccounts.admin", F1)]);
        assert_eq!(
            index.may_grant(&ALICE, "viewer", S3),
            Ok(()),
            "inherited on the accounts"
        );
        assert!(refused_for_lack_of(
            index.may_grant(&ALICE, "viewer", F1),
            Permission::FoldersSetAccessBindings
        ));
        assert!(refused_for_lack_of(
            index.may_grant(&ALICE, "viewer", W1),
            Permission::FederationsSetAccessBindings
        ));
    }

    #[test]
    fn a_folder_admin_grants_nothing_above_or_beside_it() {
        let index = with(&[("admin", F1)]);
        assert_eq!(index.may_grant(&ALICE, "editor", S1), Ok(()));
        assert_eq!(index.may_grant(&ALICE, "editor", W1), Ok(()));
        for on in [C1, O1, F2, S2] {
            assert!(index.may_grant(&ALICE, "viewer", on).is_err(), "{on}");
        }
    }

    #[test]
    fn iam_admin_may_assign_roles_as_the_seeds_say() {
        let index = with(&[("iam.admin", F1)]);
        assert_eq!(index.may_grant(&ALICE, "admin", F1), Ok(()));
        assert!(refused_for_lack_of(
            index.may_grant(&ALICE, "resource-manager.clouds.owner", C1),
            Permission::CloudsSetAccessBindings
        ));
    }

    #[test]
    fn no_key_or_credential_for_an_account_it_cannot_administer() {
        for (role_id, on) in [
            ("iam.serviceAccounts.keyAdmin", S2),
            ("iam.serviceAccounts.admin", S2),
            ("iam.serviceAccounts.admin", F2),
            ("iam.serviceAccounts.user", S1),
            ("iam.serviceAccounts.federatedCredentialViewer", S1),
            ("iam.serviceAccounts.tokenCreator", S1),
        ] {
            let mut index = with(&[(role_id, on)]);
            grant(
                &mut index,
                "iam.workloadIdentityFederations.admin",
                F1,
                "alice",
            );
            for method in [
                Method::KeyCreate,
                Method::ApiKeyCreate,
                Method::AccessKeyCreate,
            ] {
                assert!(
                    index.authorize(&ALICE, method, &[S1]).is_err(),
                    "{role_id} on {on}: {method:?}"
                );
            }
            assert_eq!(
                index.authorize(&ALICE, Method::FederatedCredentialCreate, &[S1, W1]),
                Err(Refused::Denied(Denied::new(
                    Permission::FederatedCredentialsCreate,
                    S1
                ))),
                "{role_id} on {on}"
            );
        }
        // Administering s2 makes keys for s2 only; tokens likewise.
        let index = with(&[("iam.serviceAccounts.admin", S2)]);
        assert_eq!(index.authorize(&ALICE, Method::KeyCreate, &[S2]), Ok(()));
        assert!(
            index
                .authorize(&ALICE, Method::IamTokenCreateForServiceAccount, &[S1])
                .is_err()
        );
    }

    #[test]
    fn unknown_roles_are_refused() {
        let index = with(&[("organization-manager.organizations.owner", O1)]);
        for role_id in ["", "owner", "lockbox.payloadViewer", "Admin", "admin "] {
            assert_eq!(
                index.may_grant(&ALICE, role_id, F1),
                Err(Refused::UnknownRole(UnknownRole(role_id.to_owned()))),
                "{role_id:?}"
            );
        }
    }

    #[test]
    fn nobody_grants_without_a_binding() {
        let index = hierarchy();
        for on in [O1, C1, F1, S1, W1] {
            assert!(index.may_grant(&ALICE, "viewer", on).is_err());
            assert!(
                index
                    .may_grant(&Principal::ANONYMOUS, "viewer", on)
                    .is_err()
            );
        }
    }
}

mod store_records {
    use super::*;
    use crate::iam::store::{ResourceRef, Subject};

    fn stored(kind: ResourceKind, id: &str, role_id: &str, subject: &str) -> AccessBinding {
        AccessBinding {
            id: "aje-binding".into(),
            resource: ResourceRef::new(kind, id),
            role_id: role_id.into(),
            subject: Subject {
                subject_type: SubjectType::ServiceAccount,
                id: subject.into(),
            },
            created_at: 0,
            version: 1,
        }
    }

    #[test]
    fn stored_bindings_go_in_and_out() {
        let mut index = hierarchy();
        let binding = stored(ResourceKind::Folder, "f1", "editor", "alice");
        assert_eq!(index.add_access_binding(&binding), Ok(true));
        assert_eq!(index.add_access_binding(&binding), Ok(false));
        assert_eq!(
            index.check(&ALICE, Permission::ServiceAccountsUpdate, S1),
            Ok(())
        );
        assert!(index.remove_access_binding(&binding.id));
        assert!(!index.remove_access_binding(&binding.id));
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsUpdate, S1)
                .is_err()
        );
        assert_eq!(index.binding_count(), 0);
    }

    #[test]
    fn stored_bindings_the_index_cannot_hold_are_refused() {
        let mut index = hierarchy();
        let unknown = stored(ResourceKind::Folder, "f1", "lockbox.payloadViewer", "alice");
        assert_eq!(index.add_access_binding(&unknown), Ok(false));
        assert_eq!(index.dormant_binding_count(), 1);
        assert!(!index.remove_access_binding(&unknown.id));
        assert_eq!(index.dormant_binding_count(), 0);
        let on_key = stored(ResourceKind::AuthorizedKey, "k1", "viewer", "alice");
        let err = Err(BindingError::NotBindable(ResourceKind::AuthorizedKey));
        assert_eq!(index.add_access_binding(&on_key), err);
        assert!(!index.remove_access_binding(&on_key.id));
        assert_eq!(
            BindingError::NotBindable(ResourceKind::Operation).to_string(),
            "roles are not granted on a operation"
        );
        assert_eq!(index.binding_count(), 0);
    }

    #[test]
    fn a_stored_binding_is_removed_by_its_id_and_only_by_it() {
        let mut index = hierarchy();
        let first = stored(ResourceKind::Folder, "f1", "editor", "alice");
        let repeat = AccessBinding {
            id: "aje-repeat".into(),
            ..first.clone()
        };
        assert_eq!(index.add_access_binding(&first), Ok(true));
        // The same grant under another id adds nothing, and removing it takes nothing away.
        assert_eq!(index.add_access_binding(&repeat), Ok(false));
        assert!(!index.remove_access_binding(&repeat.id));
        assert!(!index.remove_access_binding("aje-unknown"));
        assert_eq!(
            index.check(&ALICE, Permission::ServiceAccountsUpdate, S1),
            Ok(())
        );
        assert_eq!(index.binding_count(), 1);
        let names = (index.resource_count(), index.subject_count());
        assert!(index.remove_access_binding(&first.id));
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsUpdate, S1)
                .is_err()
        );
        // Its subject is forgotten; the folder stays, being the parent of others.
        assert_eq!(index.subject_count(), names.1 - 1);
        assert_eq!(index.resource_count(), names.0);
        assert_eq!(index.binding_count(), 0);
    }

    #[test]
    fn removing_a_stored_binding_of_all_users_by_id_revokes_it() {
        let mut index = hierarchy();
        let public = AccessBinding {
            subject: Subject {
                subject_type: SubjectType::System,
                id: ALL_USERS.into(),
            },
            ..stored(ResourceKind::Folder, "f1", "viewer", "")
        };
        assert_eq!(index.add_access_binding(&public), Ok(true));
        assert_eq!(
            index.check(&ALICE, Permission::ServiceAccountsGet, S1),
            Ok(())
        );
        assert!(index.remove_access_binding(&public.id));
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsGet, S1)
                .is_err()
        );
        // The subject's slot is free again, and a new subject may take it.
        assert_eq!(
            index.add_access_binding(&stored(ResourceKind::Folder, "f1", "viewer", "bob")),
            Ok(true)
        );
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsGet, S1)
                .is_err()
        );
    }

    #[test]
    fn conversions() {
        let reference = ResourceRef::new(ResourceKind::ServiceAccount, "s1");
        assert_eq!(Resource::of(&reference), Some(S1));
        let key = ResourceRef::new(ResourceKind::AuthorizedKey, "k1");
        assert_eq!(Resource::of(&key), None);
        let subject = Subject {
            subject_type: SubjectType::System,
            id: ALL_USERS.into(),
        };
        assert_eq!(SubjectRef::of(&subject), SubjectRef::all_users());
        assert_eq!(S1.to_string(), "iam.serviceAccount s1");
        assert_eq!(
            Denied::new(Permission::ServiceAccountsCreate, F1).to_string(),
            "permission iam.serviceAccounts.create is required on resource-manager.folder f1"
        );
        assert_eq!(
            Refused::from(Denied::new(Permission::FoldersGet, F1)).to_string(),
            "permission resource-manager.folders.get is required on resource-manager.folder f1"
        );
        let debug = format!("{:?}", with(&[("admin", F1)]));
        assert_eq!(
            debug,
            "AuthzIndex { bindings: 1, resources: 9, subjects: 1 }"
        );
    }
}

mod incremental {
    use super::*;

    /// A small deterministic generator (SplitMix64), so the sequences are the same on every
    /// run and a failure names its seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len())]
        }
    }

    const RESOURCES: &[Resource<'static>] = &[
        O1,
        Resource::organization("o2"),
        C1,
        Resource::cloud("c2"),
        F1,
        F2,
        Resource::folder("f3"),
        S1,
        S2,
        S3,
        Resource::service_account("s4"),
        W1,
        W2,
    ];

    const SUBJECTS: &[SubjectRef<'static>] = &[
        SubjectRef::service_account("alice"),
        SubjectRef::service_account("bob"),
        SubjectRef::service_account("carol"),
        SubjectRef::new(SubjectType::UserAccount, "alice"),
        SubjectRef::all_users(),
        SubjectRef::all_authenticated_users(),
    ];

    const PRINCIPALS: &[Principal<'static>] = &[
        Principal::service_account("alice"),
        Principal::service_account("bob"),
        Principal::service_account("carol"),
        Principal::service_account("dave"),
        Principal::ANONYMOUS,
    ];

    /// What the index should hold: the bindings and the parent links, as plain sets.
    #[derive(Default)]
    struct Model {
        bindings: BTreeSet<(usize, Role, usize)>,
        parents: BTreeMap<usize, usize>,
    }

    impl Model {
        fn rebuild(&self) -> AuthzIndex {
            let mut index = AuthzIndex::new();
            for (child, parent) in &self.parents {
                assert_eq!(
                    index.set_parent(RESOURCES[*child], RESOURCES[*parent]),
                    Ok(true)
                );
            }
            for (r, role, s) in &self.bindings {
                assert!(index.add_binding(RESOURCES[*r], *role, SUBJECTS[*s]));
            }
            index
        }

        /// Brute force: every binding on the resource or an ancestor, to the principal or to
        /// a system subject that covers it.
        fn holds(&self, who: &Principal<'_>, permission: Permission, r: usize) -> bool {
            let mut chain = vec![r];
            while let Some(parent) = self.parents.get(chain.last().unwrap_or(&r)) {
                chain.push(*parent);
            }
            self.bindings.iter().any(|(at, role, s)| {
                let subject = SUBJECTS[*s];
                let covers = Some(subject) == who.subject()
                    || subject == SubjectRef::all_users()
                    || (subject == SubjectRef::all_authenticated_users()
                        && who.subject().is_some());
                chain.contains(at) && covers && role.permissions().contains(permission)
            })
        }

        /// The number of resources a binding or a link names.
        fn resources(&self) -> usize {
            let mut named: BTreeSet<usize> = self.bindings.iter().map(|(r, _, _)| *r).collect();
            for (child, parent) in &self.parents {
                named.insert(*child);
                named.insert(*parent);
            }
            named.len()
        }

        fn subjects(&self) -> usize {
            let named: BTreeSet<usize> = self.bindings.iter().map(|(_, _, s)| *s).collect();
            named.len()
        }
    }

    fn same_answers(seed: u64, step: usize, model: &Model, a: &AuthzIndex, b: &AuthzIndex) {
        assert_eq!(
            a.binding_count(),
            model.bindings.len(),
            "seed {seed} step {step}"
        );
        assert_eq!(b.binding_count(), model.bindings.len());
        assert_eq!(
            a.resource_count(),
            model.resources(),
            "seed {seed} step {step}"
        );
        assert_eq!(b.resource_count(), model.resources());
        assert_eq!(
            a.subject_count(),
            model.subjects(),
            "seed {seed} step {step}"
        );
        assert_eq!(b.subject_count(), model.subjects());
        for who in PRINCIPALS {
            for (r, resource) in RESOURCES.iter().enumerate() {
                for permission in Permission::ALL {
                    let expected = model.holds(who, *permission, r);
                    let incremental = a.check(who, *permission, *resource).is_ok();
                    let rebuilt = b.check(who, *permission, *resource).is_ok();
                    assert_eq!(
                        (incremental, rebuilt),
                        (expected, expected),
                        "seed {seed} step {step}: {who:?} {permission} on {resource}"
                    );
                }
            }
        }
    }

    #[test]
    fn incremental_changes_equal_a_rebuild() {
        for seed in 1..=12u64 {
            let mut rng = Rng(seed);
            let mut model = Model::default();
            let mut index = AuthzIndex::new();
            for step in 0..400 {
                let r = rng.below(RESOURCES.len());
                let resource = RESOURCES[r];
                match rng.below(10) {
                    0..=3 => {
                        let role = rng.pick(Role::ALL);
                        let s = rng.below(SUBJECTS.len());
                        let added = index.add_binding(resource, role, SUBJECTS[s]);
                        assert_eq!(added, model.bindings.insert((r, role, s)), "seed {seed}");
                    }
                    4..=6 => {
                        // Remove one that exists most of the time, a random one otherwise.
                        let existing: Vec<_> = model.bindings.iter().copied().collect();
                        let (r, role, s) = if !existing.is_empty() && rng.below(4) > 0 {
                            rng.pick(&existing)
                        } else {
                            (r, rng.pick(Role::ALL), rng.below(SUBJECTS.len()))
                        };
                        let removed = index.remove_binding(RESOURCES[r], role, SUBJECTS[s]);
                        assert_eq!(removed, model.bindings.remove(&(r, role, s)), "seed {seed}");
                    }
                    7..=8 => {
                        let parents: Vec<usize> = (0..RESOURCES.len())
                            .filter(|p| Some(RESOURCES[*p].scope) == resource.scope.parent())
                            .collect();
                        if parents.is_empty() {
                            continue;
                        }
                        let p = rng.pick(&parents);
                        let changed = index.set_parent(resource, RESOURCES[p]);
                        assert_eq!(changed, Ok(model.parents.insert(r, p) != Some(p)));
                    }
                    _ => {
                        let removed = index.remove_parent(resource);
                        assert_eq!(removed, model.parents.remove(&r).is_some(), "seed {seed}");
                    }
                }
                if step % 40 == 39 {
                    same_answers(seed, step, &model, &index, &model.rebuild());
                }
            }
            // Empty it: nothing is left behind.
            for (r, role, s) in std::mem::take(&mut model.bindings) {
                assert!(index.remove_binding(RESOURCES[r], role, SUBJECTS[s]));
            }
            for (child, _) in std::mem::take(&mut model.parents) {
                assert!(index.remove_parent(RESOURCES[child]));
            }
            assert_eq!(
                (
                    index.binding_count(),
                    index.resource_count(),
                    index.subject_count()
                ),
                (0, 0, 0),
                "seed {seed}"
            );
            assert!(index.grants.is_empty());
        }
    }

    #[test]
    fn freed_names_are_reused_without_mixing_up_resources() {
        let mut index = hierarchy();
        grant(&mut index, "viewer", Resource::folder("gone"), "alice");
        assert!(index.remove_binding(
            Resource::folder("gone"),
            Role::Viewer,
            SubjectRef::service_account("alice")
        ));
        let before = index.resource_count();
        grant(&mut index, "editor", F2, "bob");
        assert_eq!(
            index.resource_count(),
            before,
            "f2 was interned by its link"
        );
        assert!(
            index
                .check(&ALICE, Permission::FoldersGet, Resource::folder("gone"))
                .is_err()
        );
        assert!(index.check(&BOB, Permission::FoldersUpdate, F2).is_ok());
        assert!(index.check(&BOB, Permission::FoldersUpdate, F1).is_err());
        assert!(index.check(&ALICE, Permission::FoldersGet, F2).is_err());
    }
}

#[test]
fn the_key_hasher_is_the_murmur3_finalizer() {
    use std::hash::Hash;
    let hash = |k: u64| {
        let mut h = KeyHasher::default();
        k.hash(&mut h);
        h.finish()
    };
    // fmix64 of MurmurHash3 (x64), as published.
    for (k, expected) in [
        (0, 0),
        (1, 0xb456_bcfc_34c2_cb2c),
        (key(1, 2), 0x10b3_e08d_1421_926a),
        (key(7, 9), 0x7242_4780_1232_6985),
        (u64::MAX, 0x64b5_720b_4b82_5f21),
    ] {
        assert_eq!(hash(k), expected, "{k:#x}");
    }
    assert_eq!(key(1, 2), 0x1_0000_0002);
    assert_eq!(key(u32::MAX, u32::MAX), u64::MAX);
    let mut h = KeyHasher::default();
    h.write(&[1, 2]);
    assert_eq!(h.0, 0x0102);
    h.write(&[0xff; 9]);
    assert_eq!(
        h.0, 0xffff_ffff_fffe_fd00,
        "the bytes that wrap around are mixed in"
    );
}

/// Roles and permissions of downstream services: bindings of configured roles, checks by
/// permission name, the Authorize API's path walk, and the catalog swapped on reload.
mod configured {
    use super::*;
    use crate::iam::catalog::{Catalog, PermissionDecl, RoleDecl};
    use crate::iam::roles::Class;
    use crate::iam::store::{ResourceRef, Subject};

    const GET_PAYLOAD: &str = "lockbox.secrets.getPayload";
    const SERVICE: Principal<'static> = Principal::service_account("lockbox-service");

    fn lockbox(with_viewer: bool) -> Arc<Catalog> {
        let permissions = [
            PermissionDecl {
                id: "lockbox.secrets.get".into(),
                class: Class::ReadMetadata,
            },
            PermissionDecl {
                id: GET_PAYLOAD.into(),
                class: Class::Read,
            },
        ];
        let mut roles = vec![RoleDecl {
            id: "lockbox.payloadViewer".into(),
            permissions: vec![GET_PAYLOAD.into()],
            ..RoleDecl::default()
        }];
        if with_viewer {
            roles.push(RoleDecl {
                id: "lockbox.viewer".into(),
                permissions: vec!["lockbox.secrets.get".into()],
                includes: vec!["lockbox.payloadViewer".into()],
                ..RoleDecl::default()
            });
        }
        Arc::new(Catalog::new(&permissions, &roles))
    }

    fn binding(id: &str, kind: ResourceKind, on: &str, role_id: &str, who: &str) -> AccessBinding {
        AccessBinding {
            id: id.into(),
            resource: ResourceRef::new(kind, on),
            role_id: role_id.into(),
            subject: Subject {
                subject_type: SubjectType::ServiceAccount,
                id: who.into(),
            },
            created_at: 0,
            version: 1,
        }
    }

    fn index() -> AuthzIndex {
        let mut index = hierarchy();
        index.set_catalog(lockbox(true));
        index
            .add_access_binding(&binding(
                "b-service",
                ResourceKind::Cloud,
                "c1",
                "iam.accessService.authorizer",
                "lockbox-service",
            ))
            .unwrap();
        index
    }

    fn path<'a>(elements: &'a [(&'a str, &'a str)]) -> Vec<PathElement<'a>> {
        elements
            .iter()
            .map(|(resource_type, id)| PathElement { resource_type, id })
            .collect()
    }

    const SECRET_IN_F1: &[(&str, &str)] = &[
        ("lockbox.secret", "e6q-secret"),
        ("resource-manager.folder", "f1"),
        ("resource-manager.cloud", "c1"),
    ];

    #[test]
    fn a_configured_role_grants_its_permissions_below_where_it_is_bound() {
        let mut index = index();
        let b = binding(
            "b1",
            ResourceKind::Folder,
            "f1",
            "lockbox.payloadViewer",
            "alice",
        );
        assert!(index.check_named(&ALICE, GET_PAYLOAD, S1).is_err());
        assert_eq!(index.add_access_binding(&b), Ok(true));
        assert_eq!(index.add_access_binding(&b), Ok(false));
        assert_eq!(index.check_named(&ALICE, GET_PAYLOAD, S1), Ok(()));
        assert_eq!(index.check_named(&ALICE, GET_PAYLOAD, F1), Ok(()));
        assert!(index.check_named(&ALICE, GET_PAYLOAD, F2).is_err());
        assert!(
            index
                .check_named(&ALICE, "lockbox.secrets.get", F1)
                .is_err()
        );
        assert!(index.check_named(&BOB, GET_PAYLOAD, F1).is_err());
        // Built-in permissions by name, and no built-in permission from a configured role.
        assert!(
            index
                .check_named(&ALICE, "iam.serviceAccounts.get", S1)
                .is_err()
        );
        assert!(
            index
                .check(&ALICE, Permission::ServiceAccountsGet, S1)
                .is_err()
        );
        assert_eq!(
            index.check_named(&ALICE, "lockbox.secrets.delete", F1),
            Err(NamedRefusal::UnknownPermission(
                "lockbox.secrets.delete".into()
            ))
        );
        assert!(index.remove_access_binding(&b.id));
        assert!(index.check_named(&ALICE, GET_PAYLOAD, F1).is_err());
        assert_eq!(index.binding_count(), 1);
    }

    #[test]
    fn primitive_roles_cover_configured_permissions_by_class() {
        for (role, payload, metadata) in [
            ("auditor", false, true),
            ("viewer", true, true),
            ("editor", true, true),
            ("admin", true, true),
            ("iam.admin", false, false),
        ] {
            let mut index = index();
            index.add_binding(
                C1,
                Role::parse(role).unwrap(),
                SubjectRef::service_account("alice"),
            );
            assert_eq!(
                index.check_named(&ALICE, GET_PAYLOAD, F1).is_ok(),
                payload,
                "{role}"
            );
            assert_eq!(
                index.check_named(&ALICE, "lockbox.secrets.get", F1).is_ok(),
                metadata,
                "{role}"
            );
        }
    }

    #[test]
    fn the_authorize_path_walks_from_the_first_known_resource() {
        let mut index = index();
        let p = path(SECRET_IN_F1);
        let denied = Err(NamedRefusal::Denied {
            permission: GET_PAYLOAD.into(),
            resource: "lockbox.secret e6q-secret".into(),
        });
        assert_eq!(index.check_path(&SERVICE, &ALICE, GET_PAYLOAD, &p), denied);
        index
            .add_access_binding(&binding(
                "b1",
                ResourceKind::Folder,
                "f1",
                "lockbox.viewer",
                "alice",
            ))
            .unwrap();
        assert_eq!(index.check_path(&SERVICE, &ALICE, GET_PAYLOAD, &p), Ok(()));
        // A folder the gateway does not know: the walk starts at the next element it knows.
        let unknown_folder = path(&[
            ("lockbox.secret", "x"),
            ("resource-manager.folder", "f-unknown"),
            ("resource-manager.cloud", "c1"),
        ]);
        assert_eq!(
            index.check_path(&SERVICE, &ALICE, GET_PAYLOAD, &unknown_folder),
            Err(NamedRefusal::Denied {
                permission: GET_PAYLOAD.into(),
                resource: "lockbox.secret x".into(),
            })
        );
        // The gateway's hierarchy decides: f1 is in c1, not in c2.
        let lying = path(&[
            ("lockbox.secret", "x"),
            ("resource-manager.folder", "f1"),
            ("resource-manager.cloud", "c2"),
        ]);
        assert!(matches!(
            index.check_path(&SERVICE, &ALICE, GET_PAYLOAD, &lying),
            Err(NamedRefusal::BadPath(m)) if m.contains("is in resource-manager.cloud c1")
        ));
        let nothing_known = path(&[("lockbox.secret", "x")]);
        assert!(matches!(
            index.check_path(&SERVICE, &ALICE, GET_PAYLOAD, &nothing_known),
            Err(NamedRefusal::BadPath(_))
        ));
        assert!(matches!(
            index.check_path(&SERVICE, &ALICE, GET_PAYLOAD, &[]),
            Err(NamedRefusal::BadPath(_))
        ));
        // The caller must hold iam.accessService.authorize there.
        assert_eq!(
            index.check_path(&BOB, &ALICE, GET_PAYLOAD, &p),
            Err(NamedRefusal::CallerDenied {
                resource: "resource-manager.folder f1".into()
            })
        );
        // A suspended subject holds nothing.
        index.set_suspended("alice", true);
        assert!(index.check_path(&SERVICE, &ALICE, GET_PAYLOAD, &p).is_err());
        index.set_suspended("alice", false);
        assert_eq!(index.check_path(&SERVICE, &ALICE, GET_PAYLOAD, &p), Ok(()));
    }

    #[test]
    fn bindings_of_undeclared_roles_wait_for_a_catalog_that_declares_them() {
        let mut index = hierarchy();
        index.set_catalog(lockbox(false));
        let viewer = binding("b1", ResourceKind::Folder, "f1", "lockbox.viewer", "alice");
        let payload = binding(
            "b2",
            ResourceKind::Folder,
            "f2",
            "lockbox.payloadViewer",
            "alice",
        );
        assert_eq!(index.add_access_binding(&viewer), Ok(false));
        assert_eq!(index.add_access_binding(&payload), Ok(true));
        assert_eq!(index.dormant_binding_count(), 1);
        assert!(index.check_named(&ALICE, GET_PAYLOAD, F1).is_err());
        index.set_catalog(lockbox(true));
        assert_eq!(index.dormant_binding_count(), 0);
        assert_eq!(index.check_named(&ALICE, GET_PAYLOAD, F1), Ok(()));
        assert_eq!(index.check_named(&ALICE, GET_PAYLOAD, F2), Ok(()));
        assert_eq!(index.binding_count(), 2);
        index.set_catalog(Arc::new(Catalog::default()));
        assert!(index.check_named(&ALICE, GET_PAYLOAD, F1).is_err());
        assert_eq!(index.binding_count(), 0);
        assert_eq!(index.resource_count(), hierarchy().resource_count());
        index.set_catalog(lockbox(true));
        assert!(index.remove_access_binding(&viewer.id));
        assert!(index.remove_access_binding(&payload.id));
        assert_eq!(index.binding_count(), 0);
    }

    #[test]
    fn configured_roles_are_granted_by_holders_of_set_access_bindings() {
        let mut index = index();
        index.add_binding(F1, Role::Admin, SubjectRef::service_account("alice"));
        assert_eq!(index.may_grant(&ALICE, "lockbox.payloadViewer", F1), Ok(()));
        assert_eq!(index.may_grant(&ALICE, "lockbox.viewer", S1), Ok(()));
        assert!(matches!(
            index.may_grant(&BOB, "lockbox.payloadViewer", F1),
            Err(Refused::Denied(_))
        ));
        assert!(matches!(
            index.may_grant(&ALICE, "lockbox.noSuchRole", F1),
            Err(Refused::UnknownRole(_))
        ));
    }
}
