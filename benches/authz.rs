//! The cost of an authorization check against the number of access bindings.
//!
//! * `authz/check_allowed/{10,1000000}`: a principal holding `iam.serviceAccounts.user` on a
//!   folder reads a service account in it (found one level up).
//! * `authz/check_denied/{10,1000000}`: the same principal asks for a permission none of its
//!   roles grants, so every level up to the organization is looked at, for the principal,
//!   `system:allAuthenticatedUsers` and `system:allUsers` (the worst case).
//! * `authz/authorize_credential_create/{10,1000000}`: a method with two requirements
//!   (`FederatedCredentialCreate`), both held.
//! * `authz/add_remove_binding/{10,1000000}`: one binding added and removed again.
//! * `authz/authorize_path_allowed/{10,1000000}`: the Authorize API's index check: a
//!   configured permission (`lockbox.secrets.getPayload`) on a resource path (a secret the
//!   gateway does not know, its folder, its cloud), granted by the configured role
//!   `lockbox.payloadViewer` on the folder; the resource service asking holds
//!   `iam.accessService.authorizer` on the organization.
//! * `authz/authorize_path_denied/{10,1000000}`: the same for a permission no binding grants
//!   (every level looked at).
//! * `authz/api_key_allowed/{10,1000000}`: the Authorize API's whole in-process check of a
//!   presented API key (`wif_gateway::iam::api_keys::check`): SHA-256 of the 40-character
//!   secret, the lookup of the hash among the keys in memory (one per query, plus a tenth of
//!   the size in other accounts' keys: 100 000 beside the large index), expiry, suspension,
//!   the key's scope (`yc.lockbox.payload.read` allows `lockbox.secrets.getPayload`), then the
//!   `authorize_path_allowed` check with the key's service account as the subject.
//! * `authz/api_key_unknown/{10,1000000}`: a secret no key has (hash and a missed lookup).
//!
//! Each iteration takes the next query of a pool of 1024 distinct (principal, resource) pairs,
//! so the large index is not answered from a handful of hot cache lines. The bindings are
//! spread over 100 clouds, 10 000 folders, 100 000 service accounts and 10 000 federations for
//! 200 000 principals. Medians: `target/criterion/authz/<bench>/<size>/new/estimates.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

use std::sync::Arc;

use wif_gateway::iam::ResourceKind;
use wif_gateway::iam::api_key_table::{ApiKeyTable, hex, secret_digest};
use wif_gateway::iam::api_keys;
use wif_gateway::iam::authz::{AuthzIndex, PathElement, Principal, Resource, SubjectRef};
use wif_gateway::iam::catalog::{ApiKeyScopeDecl, Catalog, PermissionDecl, RoleDecl};
use wif_gateway::iam::roles::Class;
use wif_gateway::iam::roles::{Method, Permission, Role, Scope};
use wif_gateway::iam::store::ApiKey;
use wif_gateway::iam::store::{AccessBinding, ResourceRef, Subject, SubjectType};

/// A deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

struct Shape {
    clouds: usize,
    folders: usize,
    accounts: usize,
    federations: usize,
    principals: usize,
}

/// Roles the filler bindings use: none grants `iam.userAccounts.revokeRefreshTokens`, the
/// permission of the denied check.
const FILLER: &[Role] = &[
    Role::Auditor,
    Role::Viewer,
    Role::IamAuditor,
    Role::IamViewer,
    Role::ServiceAccountsUser,
    Role::ServiceAccountsKeyAdmin,
    Role::ServiceAccountsTokenCreator,
    Role::ServiceAccountsFederatedCredentialViewer,
    Role::FederationsViewer,
    Role::FederationsUser,
];

struct Query {
    principal: String,
    folder: String,
    cloud: String,
    account: String,
    federation: String,
}

struct Fixture {
    index: AuthzIndex,
    queries: Vec<Query>,
    /// One API key per query (of its principal, limited to [`READ_SCOPE`]) and filler keys.
    keys: ApiKeyTable,
}

/// The API-key scope of the queries' keys.
const READ_SCOPE: &str = "yc.lockbox.payload.read";

/// The secret of the `i`-th key: `AQVN` and 36 digits.
fn secret(i: usize) -> String {
    format!("AQVN{i:036}")
}

/// A stored key of `account` for the secret `secret`, as the store holds it.
fn stored_key(i: usize, account: &str, secret: &str) -> ApiKey {
    ApiKey {
        id: format!("ajekey{i:014}"),
        service_account_id: account.to_owned(),
        description: String::new(),
        secret_hash: hex(&secret_digest(secret)),
        masked_secret: format!("****{}", &secret[34..]),
        scopes: vec![READ_SCOPE.to_owned()],
        expires_at: None,
        last_used_at: None,
        created_at: 0,
        version: 1,
    }
}

fn build(bindings: usize) -> Fixture {
    let shape = if bindings <= 10 {
        Shape {
            clouds: 1,
            folders: 2,
            accounts: 8,
            federations: 2,
            principals: 4,
        }
    } else {
        Shape {
            clouds: 100,
            folders: 10_000,
            accounts: 100_000,
            federations: 10_000,
            principals: 200_000,
        }
    };
    let mut index = AuthzIndex::new();
    index.set_catalog(lockbox());
    let cloud = |i: usize| format!("c{}", i % shape.clouds);
    let folder = |i: usize| format!("f{}", i % shape.folders);
    let account = |i: usize| format!("s{}", i % shape.accounts);
    let federation = |i: usize| format!("w{}", i % shape.federations);
    let principal = |i: usize| format!("p{}", i % shape.principals);
    for c in 0..shape.clouds {
        index
            .set_parent(Resource::cloud(&cloud(c)), Resource::organization("o1"))
            .unwrap();
    }
    for f in 0..shape.folders {
        index
            .set_parent(Resource::folder(&folder(f)), Resource::cloud(&cloud(f)))
            .unwrap();
    }
    for s in 0..shape.accounts {
        index
            .set_parent(
                Resource::service_account(&account(s)),
                Resource::folder(&folder(s)),
            )
            .unwrap();
    }
    for w in 0..shape.federations {
        index
            .set_parent(
                Resource::federation(&federation(w)),
                Resource::folder(&folder(w)),
            )
            .unwrap();
    }
    let mut rng = Rng(7);
    let mut queries = Vec::new();
    let pool = if bindings <= 10 { 2 } else { 1024 };
    // The queries' own bindings: two each (the folder's user role and the credential editor
    // role on the account).
    for _ in 0..pool {
        let s = rng.below(shape.accounts);
        let p = principal(rng.below(shape.principals));
        let f = folder(s);
        let who = SubjectRef::service_account(&p);
        index.add_binding(Resource::folder(&f), Role::ServiceAccountsUser, who);
        index.add_binding(
            Resource::service_account(&account(s)),
            Role::ServiceAccountsFederatedCredentialEditor,
            who,
        );
        queries.push(Query {
            principal: p,
            cloud: cloud(s % shape.folders),
            folder: f,
            account: account(s),
            // A federation in the same folder: w(i) lives in folder i mod folders.
            federation: federation(s % shape.folders),
        });
    }
    // The system subjects hold something somewhere, so the walk looks them up at every level.
    index.add_binding(
        Resource::cloud(&cloud(0)),
        Role::Auditor,
        SubjectRef::all_authenticated_users(),
    );
    index.add_binding(
        Resource::federation(&federation(0)),
        Role::FederationsAuditor,
        SubjectRef::all_users(),
    );
    while index.binding_count() < bindings {
        let p = principal(rng.below(shape.principals));
        let role = FILLER[rng.below(FILLER.len())];
        let n = rng.below(shape.accounts);
        let (scope, id) = match rng.below(10) {
            0..=5 => (Scope::ServiceAccount, account(n)),
            6..=7 => (Scope::Folder, folder(n)),
            8 => (Scope::Federation, federation(n)),
            _ => (Scope::Cloud, cloud(n)),
        };
        index.add_binding(
            Resource::new(scope, &id),
            role,
            SubjectRef::service_account(&p),
        );
    }
    // A federation user role for every query, on the folder; the payload viewer role too.
    for (i, q) in queries.iter().enumerate() {
        index
            .add_access_binding(&AccessBinding {
                id: format!("payload-{i}"),
                resource: ResourceRef::new(ResourceKind::Folder, &q.folder),
                role_id: "lockbox.payloadViewer".into(),
                subject: Subject {
                    subject_type: SubjectType::ServiceAccount,
                    id: q.principal.clone(),
                },
                created_at: 0,
                version: 1,
            })
            .unwrap();
    }
    index.add_binding(
        Resource::organization("o1"),
        Role::AccessServiceAuthorizer,
        SubjectRef::service_account(SERVICE),
    );
    for q in &queries {
        index.add_binding(
            Resource::folder(&q.folder),
            Role::FederationsUser,
            SubjectRef::service_account(&q.principal),
        );
    }
    for q in &queries {
        let who = Principal::service_account(&q.principal);
        let account = Resource::service_account(&q.account);
        assert!(
            index
                .check(&who, Permission::ServiceAccountsGet, account)
                .is_ok()
        );
        assert!(
            index
                .check(&who, Permission::UserAccountsRevokeRefreshTokens, account)
                .is_err()
        );
        assert!(
            index
                .authorize(
                    &who,
                    Method::FederatedCredentialCreate,
                    &[account, Resource::federation(&q.federation)]
                )
                .is_ok()
        );
    }
    for q in &queries {
        let who = Principal::service_account(&q.principal);
        let path = secret_path(q);
        let caller = Principal::service_account(SERVICE);
        assert_eq!(index.check_path(&caller, &who, GET_PAYLOAD, &path), Ok(()));
        assert!(index.check_path(&caller, &who, UPDATE, &path).is_err());
    }
    let keys = ApiKeyTable::default();
    for (i, q) in queries.iter().enumerate() {
        keys.insert(&stored_key(i, &q.principal, &secret(i)));
    }
    for i in queries.len()..queries.len() + bindings / 10 {
        keys.insert(&stored_key(i, &principal(i), &secret(i)));
    }
    let caller = Principal::service_account(SERVICE);
    for (i, q) in queries.iter().enumerate() {
        let path = secret_path(q);
        let checked = api_keys::check(&secret(i), &keys, &index, &caller, GET_PAYLOAD, &path, 0);
        assert_eq!(
            checked.map(|k| k.service_account_id.to_string()).ok(),
            Some(q.principal.clone())
        );
        let out_of_scope = api_keys::check(&secret(i), &keys, &index, &caller, UPDATE, &path, 0);
        assert!(out_of_scope.is_err());
    }
    Fixture {
        index,
        queries,
        keys,
    }
}

/// The resource service asking at the Authorize API.
const SERVICE: &str = "lockbox-service";
const GET_PAYLOAD: &str = "lockbox.secrets.getPayload";
const UPDATE: &str = "lockbox.secrets.update";

fn lockbox() -> Arc<Catalog> {
    Arc::new(
        Catalog::new(
            &[
                PermissionDecl {
                    id: GET_PAYLOAD.into(),
                    class: Class::Read,
                },
                PermissionDecl {
                    id: UPDATE.into(),
                    class: Class::Manage,
                },
            ],
            &[RoleDecl {
                id: "lockbox.payloadViewer".into(),
                permissions: vec![GET_PAYLOAD.into()],
                ..RoleDecl::default()
            }],
        )
        .with_api_key_scopes(&[ApiKeyScopeDecl {
            id: READ_SCOPE.into(),
            permissions: vec![GET_PAYLOAD.into()],
        }]),
    )
}

fn secret_path(q: &Query) -> [PathElement<'_>; 3] {
    [
        PathElement {
            resource_type: "lockbox.secret",
            id: "e6qsecret",
        },
        PathElement {
            resource_type: "resource-manager.folder",
            id: &q.folder,
        },
        PathElement {
            resource_type: "resource-manager.cloud",
            id: &q.cloud,
        },
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("authz");
    for size in [10usize, 1_000_000] {
        let fixture = build(size);
        eprintln!("{size}: {:?}", fixture.index);
        let queries = &fixture.queries;
        let index = &fixture.index;
        group.bench_function(BenchmarkId::new("check_allowed", size), |b| {
            let mut i = 0;
            b.iter(|| {
                let q = &queries[i % queries.len()];
                i += 1;
                black_box(index.check(
                    &Principal::service_account(&q.principal),
                    black_box(Permission::ServiceAccountsGet),
                    Resource::service_account(&q.account),
                ))
            });
        });
        group.bench_function(BenchmarkId::new("check_denied", size), |b| {
            let mut i = 0;
            b.iter(|| {
                let q = &queries[i % queries.len()];
                i += 1;
                black_box(index.check(
                    &Principal::service_account(&q.principal),
                    black_box(Permission::UserAccountsRevokeRefreshTokens),
                    Resource::service_account(&q.account),
                ))
            });
        });
        group.bench_function(BenchmarkId::new("authorize_credential_create", size), |b| {
            let mut i = 0;
            b.iter(|| {
                let q = &queries[i % queries.len()];
                i += 1;
                black_box(index.authorize(
                    &Principal::service_account(&q.principal),
                    black_box(Method::FederatedCredentialCreate),
                    &[
                        Resource::service_account(&q.account),
                        Resource::federation(&q.federation),
                    ],
                ))
            });
        });
        for (name, permission) in [
            ("authorize_path_allowed", GET_PAYLOAD),
            ("authorize_path_denied", UPDATE),
        ] {
            group.bench_function(BenchmarkId::new(name, size), |b| {
                let mut i = 0;
                let caller = Principal::service_account(SERVICE);
                b.iter(|| {
                    let q = &queries[i % queries.len()];
                    i += 1;
                    black_box(index.check_path(
                        &caller,
                        &Principal::service_account(&q.principal),
                        black_box(permission),
                        &secret_path(q),
                    ))
                });
            });
        }
        let keys = &fixture.keys;
        let secrets: Vec<String> = (0..queries.len()).map(secret).collect();
        group.bench_function(BenchmarkId::new("api_key_allowed", size), |b| {
            let mut i = 0;
            let caller = Principal::service_account(SERVICE);
            b.iter(|| {
                let n = i % queries.len();
                i += 1;
                black_box(
                    api_keys::check(
                        black_box(&secrets[n]),
                        keys,
                        index,
                        &caller,
                        GET_PAYLOAD,
                        &secret_path(&queries[n]),
                        0,
                    )
                    .is_ok(),
                )
            });
        });
        let unknown = format!("AQVN{}", "z".repeat(36));
        group.bench_function(BenchmarkId::new("api_key_unknown", size), |b| {
            let caller = Principal::service_account(SERVICE);
            let path = secret_path(&queries[0]);
            b.iter(|| {
                black_box(
                    api_keys::check(
                        black_box(&unknown),
                        keys,
                        index,
                        &caller,
                        GET_PAYLOAD,
                        &path,
                        0,
                    )
                    .is_err(),
                )
            });
        });
        let mut index = fixture.index.clone();
        group.bench_function(BenchmarkId::new("add_remove_binding", size), |b| {
            let mut i = 0;
            b.iter(|| {
                let q = &queries[i % queries.len()];
                i += 1;
                let on = Resource::service_account(&q.account);
                let who = SubjectRef::service_account(&q.principal);
                assert!(index.add_binding(on, Role::Editor, who));
                assert!(index.remove_binding(on, Role::Editor, who));
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
