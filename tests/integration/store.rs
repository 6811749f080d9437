//! The IAM store on both backends. Each scenario is written once and runs on SQLite (a file in
//! a temporary directory, always) and on PostgreSQL when `WIF_TEST_DATABASE_URL` is set (e.g.
//! `postgres://root@127.0.0.1:5432/test`): every PostgreSQL test gets a schema of its own,
//! `wif_test_<random>`, dropped when it ends, even by a failure. Without the variable the
//! PostgreSQL tests print a note and pass. With `WIF_PG_MARKER` set, each PostgreSQL test that
//! ran appends its name to that file, so CI can tell that they did run.
//!
//! SQLite alone: a writer process killed with SIGKILL in the middle of a burst loses no
//! acknowledged write and leaves nothing half-written.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Row as _;
use wif_gateway::iam::ResourceKind;
use wif_gateway::iam::ids;
use wif_gateway::iam::store::{
    AccessBinding, AuthorizedKeyUpdate, Backend, BindingAction, BindingDelta, ChangeOp,
    CloudUpdate, FederationUpdate, FolderUpdate, KeyAlgorithm, Labels, NewAccessBinding, NewApiKey,
    NewAuthorizedKey, NewCloud, NewFederatedCredential, NewFederation, NewFolder, NewOperation,
    NewServiceAccount, OpenOptions, OperationResult, OperationUpdate, PageRequest, ResourceRef,
    Seq, ServiceAccountStatus, ServiceAccountUpdate, Store, StoreError, Subject, SubjectType,
    UsedBy,
};

const PG_URL_ENV: &str = "WIF_TEST_DATABASE_URL";
const PG_MARKER_ENV: &str = "WIF_PG_MARKER";
/// Set in the child process of the crash test: the SQLite URL it writes to.
const CRASH_DB_ENV: &str = "WIF_STORE_CRASH_DB";
const CRASH_FOLDER_ENV: &str = "WIF_STORE_CRASH_FOLDER";
const CRASH_FEDERATION_ENV: &str = "WIF_STORE_CRASH_FEDERATION";

/// The time every mutation here happens at.
const NOW: i64 = 1_780_000_000;

const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n";

/// A store under test, and how to open another one on the same database.
pub(crate) struct TestDb {
    pub(crate) store: Store,
    url: String,
    options: OpenOptions,
    /// SQLite: the directory holding the file.
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the schema, dropped on drop.
    schema: Option<PgSchema>,
}

impl TestDb {
    pub(crate) async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("iam.db").display());
        let options = OpenOptions::default();
        let store = Store::open_with(&url, &options).await.expect("open SQLite");
        TestDb {
            store,
            url,
            options,
            _dir: Some(dir),
            schema: None,
        }
    }

    /// `None`, with a note, when no PostgreSQL URL is configured.
    pub(crate) async fn postgres() -> Option<TestDb> {
        let Ok(url) = std::env::var(PG_URL_ENV) else {
            eprintln!(
                "note: PostgreSQL store test skipped; set {PG_URL_ENV}=postgres://… to run it"
            );
            return None;
        };
        let name = format!(
            "wif_test_{}",
            ids::generate(ResourceKind::Operation).expect("id")
        );
        let schema = PgSchema {
            url: url.clone(),
            name: name.clone(),
        };
        let options = OpenOptions {
            pg_schema: Some(name),
            ..OpenOptions::default()
        };
        let store = Store::open_with(&url, &options)
            .await
            .expect("open PostgreSQL");
        Some(TestDb {
            store,
            url,
            options,
            _dir: None,
            schema: Some(schema),
        })
    }

    /// Another store on the same database (a second replica, or a restart).
    pub(crate) async fn reopen(&self) -> Store {
        Store::open_with(&self.url, &self.options)
            .await
            .expect("reopen")
    }

    /// The URL a gateway process opens this database with (`[store] url`, `--store-url`): on
    /// PostgreSQL the test's schema rides in the URL as the connections' `search_path`.
    pub(crate) fn gateway_url(&self) -> String {
        match &self.options.pg_schema {
            Some(schema) => {
                let separator = if self.url.contains('?') { '&' } else { '?' };
                format!("{}{separator}options[search_path]={schema}", self.url)
            }
            None => self.url.clone(),
        }
    }

    /// Runs `sql` on the database beside the store, as another program would.
    pub(crate) async fn raw_sql(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if self.is_postgres() {
            let pool = sqlx::PgPool::connect(&self.gateway_url())
                .await
                .expect("connect");
            sqlx::raw_sql(sql).execute(&pool).await.expect("raw SQL");
            pool.close().await;
        } else {
            let pool = sqlx::SqlitePool::connect(&self.url).await.expect("connect");
            sqlx::raw_sql(sql).execute(&pool).await.expect("raw SQL");
            pool.close().await;
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        self.store.backend() == Backend::Postgres
    }

    /// Closes the store; PostgreSQL: drops the schema and records that `test` ran.
    pub(crate) async fn finish(self, test: &str) {
        self.store.close().await;
        if self.schema.is_some()
            && let Ok(marker) = std::env::var(PG_MARKER_ENV)
        {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&marker)
                .expect("open the PostgreSQL marker");
            writeln!(file, "{test}").expect("write the PostgreSQL marker");
        }
    }
}

/// A PostgreSQL schema that is dropped when this goes out of scope, test failure or not.
struct PgSchema {
    url: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Drop may run inside the test's runtime: use a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// Runs each scenario as two tests, `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let db = super::TestDb::sqlite().await;
                    super::$scenario(&db).await;
                    db.finish(stringify!($scenario)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(db) = super::TestDb::postgres().await else { return };
                    super::$scenario(&db).await;
                    db.finish(stringify!($scenario)).await;
                }
            )*
        }
    };
}

on_both_backends!(
    migrations_are_idempotent_on_reopen,
    clouds_and_folders_crud,
    service_accounts_and_keys_crud,
    federations_and_credentials_crud,
    access_bindings_crud,
    access_binding_changes_apply_in_one_transaction,
    operations_crud,
    uniqueness_follows_the_yandex_rules,
    missing_references_and_bad_values_are_refused,
    deleting_a_service_account_cascades,
    deleting_a_folder_or_cloud_cascades,
    concurrent_updates_from_one_version_conflict,
    change_log_is_gapless_under_20_concurrent_writers,
    pagination_is_stable_and_complete,
    subscribers_hear_of_a_commit_within_a_second,
    revocations_are_idempotent_logged_followed_and_pruned,
    idempotency_keys_are_reserved_once_settled_released_taken_over_and_pruned,
    access_keys_crud_sealed_at_rest_and_cascaded,
    api_keys_are_kept_as_hashes_logged_followed_and_cascaded,
    a_mutation_of_many_changes_logs_them_in_order_and_tells_of_the_last,
    a_credential_and_its_operation_commit_together,
);

/// `create_federated_credential_with` keeps the credential and its operation in one
/// transaction: both or neither, and the operation logs no change.
async fn a_credential_and_its_operation_commit_together(db: &TestDb) {
    use wif_gateway::iam::store::{NewOperation, OperationResult};
    let store = &db.store;
    let (_, folder) = cloud_and_folder(store, "ops").await;
    let runner = account(store, &folder, "runner").await;
    let federation = store
        .create_federation(&new_federation(&folder, "k8s"), NOW)
        .await
        .unwrap()
        .item;
    let operation_of = |done: bool| {
        move |credential: &wif_gateway::iam::store::FederatedCredential| NewOperation {
            resource_id: credential.id.clone(),
            description: "Create federated credential".into(),
            created_by: "aje-admin".into(),
            done,
            metadata: serde_json::json!({ "federatedCredentialId": credential.id }),
            result: Some(OperationResult::Response(
                serde_json::json!({ "id": credential.id }),
            )),
        }
    };
    let before = store.max_seq().await.unwrap();
    let (written, operation) = store
        .create_federated_credential_with(
            &new_credential(&runner, &federation.id, "subject-a"),
            NOW,
            operation_of(true),
        )
        .await
        .expect("create");
    assert_eq!(operation.resource_id, written.item.id);
    assert_eq!(operation.created_at, NOW);
    assert_eq!(store.get_operation(&operation.id).await.unwrap(), operation);
    let changes = store.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1, "the credential's change only");
    assert_eq!(
        (changes[0].kind, changes[0].seq),
        (ResourceKind::FederatedCredential, written.seq)
    );

    // An operation that cannot be kept (a result on one not done) takes the credential with it.
    let refused = store
        .create_federated_credential_with(
            &new_credential(&runner, &federation.id, "subject-b"),
            NOW,
            operation_of(false),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidArgument { .. })),
        "{refused:?}"
    );
    let kept = store
        .list_federated_credentials(&runner, &PageRequest::default())
        .await
        .unwrap();
    let subjects: Vec<&str> = kept
        .items
        .iter()
        .map(|c| c.external_subject_id.as_str())
        .collect();
    assert_eq!(subjects, ["subject-a"]);
    assert_eq!(store.max_seq().await.unwrap(), written.seq);
}

/// A deletion that cascades to more changes than one statement writes logs every one of them,
/// numbered without gaps in the order made, advances the counter to the last, and tells
/// subscribers of that last number.
async fn a_mutation_of_many_changes_logs_them_in_order_and_tells_of_the_last(db: &TestDb) {
    let store = &db.store;
    let (cloud, folder) = cloud_and_folder(store, "many").await;
    let mut accounts = BTreeSet::new();
    for i in 0..70 {
        accounts.insert(account(store, &folder, &format!("sa-{i}")).await);
    }
    let mut notifications = store.subscribe().await.expect("subscribe");
    let before = store.max_seq().await.unwrap();
    let version = store.get_folder(&folder).await.unwrap().version;
    let deleted = store
        .delete_folder(&folder, Some(version), NOW)
        .await
        .expect("delete the folder");

    let changes = store.changes_since(before, 1000).await.unwrap();
    assert_eq!(changes.len(), 71, "70 accounts and the folder");
    for (i, change) in changes.iter().enumerate() {
        assert_eq!(change.seq, Seq(before.0 + 1 + i as i64), "no gap at {i}");
        assert_eq!(change.op, ChangeOp::Delete);
        assert_eq!(change.at, NOW);
    }
    assert_eq!(changes.last().map(|c| c.seq), Some(deleted));
    assert_eq!(store.max_seq().await.unwrap(), deleted);
    let logged: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.kind == ResourceKind::ServiceAccount)
        .map(|c| c.resource_id.clone())
        .collect();
    assert_eq!(logged, accounts);
    assert!(
        changes
            .iter()
            .any(|c| c.kind == ResourceKind::Folder && c.resource_id == folder)
    );
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let seq = notifications.recv().await.expect("a notification");
            if seq >= deleted {
                return seq;
            }
        }
    })
    .await
    .expect("told within 10 s");
    assert_eq!(heard, deleted, "told of the last change");

    // The next mutation numbers on from there.
    let next = store
        .create_folder(
            &NewFolder {
                cloud_id: cloud,
                name: "after".into(),
                ..NewFolder::default()
            },
            NOW,
        )
        .await
        .expect("create a folder");
    assert_eq!(next.seq, Seq(deleted.0 + 1));
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A cloud with one folder; `name` keeps clouds apart within a test.
pub(crate) async fn cloud_and_folder(store: &Store, name: &str) -> (String, String) {
    let cloud = store
        .create_cloud(
            &NewCloud {
                organization_id: "org1".into(),
                name: name.into(),
                ..NewCloud::default()
            },
            NOW,
        )
        .await
        .expect("create cloud")
        .item;
    let folder = store
        .create_folder(
            &NewFolder {
                cloud_id: cloud.id.clone(),
                name: "default".into(),
                ..NewFolder::default()
            },
            NOW,
        )
        .await
        .expect("create folder")
        .item;
    (cloud.id, folder.id)
}

pub(crate) async fn account(store: &Store, folder_id: &str, name: &str) -> String {
    store
        .create_service_account(
            &NewServiceAccount {
                folder_id: folder_id.into(),
                name: name.into(),
                ..NewServiceAccount::default()
            },
            NOW,
        )
        .await
        .expect("create service account")
        .item
        .id
}

pub(crate) fn new_federation(folder_id: &str, name: &str) -> NewFederation {
    NewFederation {
        folder_id: folder_id.into(),
        name: name.into(),
        description: "GitLab CI".into(),
        enabled: true,
        audiences: vec!["https://gitlab.example.com".into()],
        issuer: "https://gitlab.com".into(),
        jwks_url: "https://gitlab.com/oauth/discovery/keys".into(),
        labels: labels(&[("team", "infra")]),
    }
}

async fn federation(store: &Store, folder_id: &str, name: &str) -> String {
    store
        .create_federation(&new_federation(folder_id, name), NOW)
        .await
        .expect("create federation")
        .item
        .id
}

fn new_key(service_account_id: &str) -> NewAuthorizedKey {
    NewAuthorizedKey {
        service_account_id: service_account_id.into(),
        description: "ci".into(),
        key_algorithm: KeyAlgorithm::Rsa2048,
        public_key: PUBLIC_KEY.into(),
    }
}

pub(crate) fn new_credential(
    account: &str,
    federation: &str,
    subject: &str,
) -> NewFederatedCredential {
    NewFederatedCredential {
        service_account_id: account.into(),
        federation_id: federation.into(),
        external_subject_id: subject.into(),
    }
}

pub(crate) fn new_binding(
    kind: ResourceKind,
    id: &str,
    role: &str,
    subject: &str,
) -> NewAccessBinding {
    NewAccessBinding {
        resource: ResourceRef::new(kind, id),
        role_id: role.into(),
        subject: Subject {
            subject_type: SubjectType::ServiceAccount,
            id: subject.into(),
        },
    }
}

fn is_not_found(result: Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound { .. }))
}

async fn migrations_are_idempotent_on_reopen(db: &TestDb) {
    let (cloud_id, _) = cloud_and_folder(&db.store, "kept").await;
    db.store.migrate().await.expect("migrate again");
    let before = db.store.max_seq().await.expect("max_seq");

    let again = db.reopen().await;
    again.migrate().await.expect("migrate after reopen");
    assert_eq!(
        again.get_cloud(&cloud_id).await.expect("cloud").name,
        "kept"
    );
    assert_eq!(again.max_seq().await.expect("max_seq"), before);
    again.close().await;
}

async fn clouds_and_folders_crud(db: &TestDb) {
    let store = &db.store;
    let written = store
        .create_cloud(
            &NewCloud {
                organization_id: "org1".into(),
                name: "main".into(),
                description: "the main cloud".into(),
                labels: labels(&[("env", "prod")]),
            },
            NOW,
        )
        .await
        .expect("create cloud");
    let cloud = written.item;
    assert!(
        cloud.id.starts_with("b1g") && cloud.id.len() == 20,
        "{}",
        cloud.id
    );
    assert_eq!((cloud.version, cloud.created_at), (1, NOW));
    assert_eq!(store.get_cloud(&cloud.id).await.expect("get"), cloud);
    let listed = store
        .list_clouds(&PageRequest::first(0))
        .await
        .expect("list");
    assert_eq!(listed.items, vec![cloud.clone()]);
    assert_eq!(listed.next_page_token, None);

    let updated = store
        .update_cloud(
            &cloud.id,
            1,
            &CloudUpdate {
                name: "renamed".into(),
                description: String::new(),
                labels: Labels::new(),
            },
            NOW + 1,
        )
        .await
        .expect("update cloud");
    assert!(updated.seq > written.seq);
    assert_eq!(
        (updated.item.name.as_str(), updated.item.version),
        ("renamed", 2)
    );
    assert_eq!(updated.item.created_at, NOW, "creation time is kept");

    let folder = store
        .create_folder(
            &NewFolder {
                cloud_id: cloud.id.clone(),
                name: "apps".into(),
                description: "applications".into(),
                labels: labels(&[("a", "b")]),
            },
            NOW,
        )
        .await
        .expect("create folder")
        .item;
    assert!(folder.id.starts_with("b1g"));
    assert_eq!(store.get_folder(&folder.id).await.expect("get"), folder);
    let folders = store
        .list_folders(&cloud.id, &PageRequest::first(10))
        .await
        .expect("list");
    assert_eq!(folders.items, vec![folder.clone()]);
    let updated = store
        .update_folder(
            &folder.id,
            1,
            &FolderUpdate {
                name: "apps2".into(),
                description: "d".into(),
                labels: Labels::new(),
            },
            NOW,
        )
        .await
        .expect("update folder")
        .item;
    assert_eq!((updated.name.as_str(), updated.version), ("apps2", 2));

    let seq = store
        .delete_folder(&folder.id, Some(2), NOW)
        .await
        .expect("delete folder");
    assert_eq!(store.max_seq().await.expect("max_seq"), seq);
    assert!(is_not_found(store.get_folder(&folder.id).await));
    store
        .delete_cloud(&cloud.id, None, NOW)
        .await
        .expect("delete cloud");
    assert!(is_not_found(store.get_cloud(&cloud.id).await));
    assert!(is_not_found(store.delete_cloud(&cloud.id, None, NOW).await));
}

async fn service_accounts_and_keys_crud(db: &TestDb) {
    let store = &db.store;
    let (cloud_id, folder_id) = cloud_and_folder(store, "c").await;
    let account = store
        .create_service_account(
            &NewServiceAccount {
                folder_id: folder_id.clone(),
                name: "deployer".into(),
                description: "deploys".into(),
                labels: labels(&[("team", "infra")]),
            },
            NOW,
        )
        .await
        .expect("create")
        .item;
    assert!(account.id.starts_with("aje") && account.id.len() == 20);
    assert_eq!(account.cloud_id, cloud_id, "the folder's cloud");
    assert_eq!(account.status, ServiceAccountStatus::Active);
    assert_eq!(
        store.get_service_account(&account.id).await.expect("get"),
        account
    );
    let listed = store
        .list_service_accounts(&folder_id, &PageRequest::first(0))
        .await
        .expect("list");
    assert_eq!(listed.items, vec![account.clone()]);

    let suspended = store
        .update_service_account(
            &account.id,
            1,
            &ServiceAccountUpdate {
                name: "deployer".into(),
                description: "suspended for now".into(),
                labels: Labels::new(),
                status: ServiceAccountStatus::Suspended,
                suspended_until: Some(NOW + 3600),
            },
            NOW,
        )
        .await
        .expect("suspend")
        .item;
    assert_eq!(suspended.status, ServiceAccountStatus::Suspended);
    assert_eq!(suspended.version, 2);
    assert_eq!(suspended.suspended_until, Some(NOW + 3600));
    assert!(
        store
            .ended_suspensions(NOW + 3599, 10)
            .await
            .expect("ended")
            .is_empty()
    );
    let ended = store
        .ended_suspensions(NOW + 3600, 10)
        .await
        .expect("ended");
    assert_eq!(ended, vec![suspended.clone()]);

    let key = store
        .create_authorized_key(&new_key(&account.id), NOW)
        .await
        .expect("create key")
        .item;
    assert_eq!(store.get_authorized_key(&key.id).await.expect("get"), key);
    assert_eq!(key.key_algorithm, KeyAlgorithm::Rsa2048);
    let keys = store
        .list_authorized_keys(&account.id, &PageRequest::first(0))
        .await
        .expect("list keys");
    assert_eq!(keys.items, vec![key.clone()]);
    let key2 = store
        .update_authorized_key(
            &key.id,
            1,
            &AuthorizedKeyUpdate {
                description: "rotated".into(),
            },
            NOW,
        )
        .await
        .expect("update key")
        .item;
    assert_eq!((key2.description.as_str(), key2.version), ("rotated", 2));

    // Uses are written outside the change log: no version moves, a later time is never
    // replaced by an earlier one, and a use of a row that is gone changes nothing.
    let seq = store.max_seq().await.expect("max_seq");
    let uses = [
        (UsedBy::ServiceAccount, account.id.clone(), NOW + 10),
        (UsedBy::AuthorizedKey, key.id.clone(), NOW + 20),
        (
            UsedBy::AuthorizedKey,
            "ajenosuchkey00000000".to_owned(),
            NOW + 20,
        ),
    ];
    assert_eq!(store.record_usage(&uses, NOW + 30).await.expect("usage"), 2);
    let earlier = [(UsedBy::ServiceAccount, account.id.clone(), NOW + 5)];
    assert_eq!(
        store.record_usage(&earlier, NOW + 30).await.expect("usage"),
        0
    );
    let used = store.get_service_account(&account.id).await.expect("get");
    assert_eq!(
        (used.last_authenticated_at, used.version),
        (Some(NOW + 10), 2)
    );
    let used = store.get_authorized_key(&key.id).await.expect("get");
    assert_eq!((used.last_used_at, used.version), (Some(NOW + 20), 2));
    assert_eq!(store.max_seq().await.expect("max_seq"), seq);
    store
        .delete_authorized_key(&key.id, Some(2), NOW)
        .await
        .expect("delete key");
    assert!(is_not_found(store.get_authorized_key(&key.id).await));

    store
        .delete_service_account(&account.id, Some(2), NOW)
        .await
        .expect("delete");
    assert!(is_not_found(store.get_service_account(&account.id).await));
}

async fn federations_and_credentials_crud(db: &TestDb) {
    let store = &db.store;
    let (_, folder_id) = cloud_and_folder(store, "c").await;
    let account_id = account(store, &folder_id, "runner").await;
    let federation = store
        .create_federation(&new_federation(&folder_id, "gitlab"), NOW)
        .await
        .expect("create")
        .item;
    assert_eq!(
        store.get_federation(&federation.id).await.expect("get"),
        federation
    );
    assert_eq!(
        store
            .list_federations(&folder_id, &PageRequest::first(0))
            .await
            .expect("list")
            .items,
        vec![federation.clone()]
    );
    let update = FederationUpdate {
        name: "gitlab-ci".into(),
        description: String::new(),
        enabled: false,
        audiences: vec!["a".into(), "b".into()],
        jwks_url: "https://gitlab.com/jwks".into(),
        labels: Labels::new(),
    };
    let updated = store
        .update_federation(&federation.id, 1, &update, NOW)
        .await
        .expect("update")
        .item;
    assert_eq!(
        updated.issuer, federation.issuer,
        "the issuer never changes"
    );
    assert!(!updated.enabled);
    assert_eq!(updated.audiences, vec!["a", "b"]);
    assert_eq!(updated.version, 2);

    let credential = store
        .create_federated_credential(
            &new_credential(
                &account_id,
                &federation.id,
                "project_path:g/p:ref_type:branch:ref:main",
            ),
            NOW,
        )
        .await
        .expect("create credential")
        .item;
    assert_eq!(
        store
            .get_federated_credential(&credential.id)
            .await
            .expect("get"),
        credential
    );
    assert_eq!(
        store
            .list_federated_credentials(&account_id, &PageRequest::first(0))
            .await
            .expect("list")
            .items,
        vec![credential.clone()]
    );
    store
        .delete_federated_credential(&credential.id, None, NOW)
        .await
        .expect("delete credential");
    assert!(is_not_found(
        store.get_federated_credential(&credential.id).await
    ));
    store
        .delete_federation(&federation.id, Some(2), NOW)
        .await
        .expect("delete federation");
    assert!(is_not_found(store.get_federation(&federation.id).await));
}

async fn access_bindings_crud(db: &TestDb) {
    let store = &db.store;
    let (cloud_id, folder_id) = cloud_and_folder(store, "c").await;
    let account_id = account(store, &folder_id, "viewer").await;
    let federation_id = federation(store, &folder_id, "f").await;
    let targets = [
        (ResourceKind::Cloud, cloud_id.as_str()),
        (ResourceKind::Folder, folder_id.as_str()),
        (ResourceKind::ServiceAccount, account_id.as_str()),
        (ResourceKind::Federation, federation_id.as_str()),
    ];
    for (kind, id) in targets {
        let binding = store
            .create_access_binding(&new_binding(kind, id, "viewer", &account_id), NOW)
            .await
            .expect("create binding")
            .item;
        assert_eq!(binding.resource, ResourceRef::new(kind, id));
        assert_eq!(
            store.get_access_binding(&binding.id).await.expect("get"),
            binding
        );
        let listed = store
            .list_access_bindings(&ResourceRef::new(kind, id), &PageRequest::first(0))
            .await
            .expect("list");
        assert_eq!(listed.items, vec![binding.clone()], "{kind}");
        store
            .delete_access_binding(&binding.id, Some(1), NOW)
            .await
            .expect("delete binding");
        assert!(is_not_found(store.get_access_binding(&binding.id).await));
    }
}

fn delta(action: BindingAction, role: &str, subject: &str) -> BindingDelta {
    BindingDelta {
        action,
        role_id: role.into(),
        subject: Subject {
            subject_type: SubjectType::ServiceAccount,
            id: subject.into(),
        },
    }
}

async fn access_binding_changes_apply_in_one_transaction(db: &TestDb) {
    let store = &db.store;
    let (_, folder_id) = cloud_and_folder(store, "c").await;
    let alice = account(store, &folder_id, "alice").await;
    let bob = account(store, &folder_id, "bob").await;
    let folder = ResourceRef::new(ResourceKind::Folder, &folder_id);
    let existing = store
        .create_access_binding(
            &new_binding(ResourceKind::Folder, &folder_id, "viewer", &alice),
            NOW,
        )
        .await
        .expect("create binding")
        .item;
    let before = store.max_seq().await.expect("max_seq");
    let deltas = vec![
        // Already granted: no change.
        delta(BindingAction::Add, "viewer", &alice),
        delta(BindingAction::Add, "editor", &alice),
        delta(BindingAction::Add, "viewer", &bob),
        // Never granted: no change.
        delta(BindingAction::Remove, "admin", &bob),
        delta(BindingAction::Remove, "viewer", &alice),
        // Granted above, in this same call.
        delta(BindingAction::Add, "editor", &alice),
    ];
    let written = store
        .change_access_bindings(&folder, &deltas, NOW)
        .await
        .expect("change");
    assert_eq!(
        written.item,
        vec![deltas[1].clone(), deltas[2].clone(), deltas[4].clone()],
        "only the deltas that changed something"
    );
    let changes = store.changes_since(before, 100).await.expect("changes");
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(
        changes
            .iter()
            .all(|c| c.kind == ResourceKind::AccessBinding)
    );
    assert_eq!(changes.last().map(|c| c.seq), Some(written.seq));
    assert_eq!(changes[2].resource_id, existing.id);
    assert_eq!(changes[2].op, ChangeOp::Delete);
    let mut held: Vec<(String, String)> = store
        .list_access_bindings(&folder, &PageRequest::first(0))
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|b| (b.role_id, b.subject.id))
        .collect();
    held.sort();
    let mut expected = vec![
        ("editor".to_owned(), alice.clone()),
        ("viewer".to_owned(), bob.clone()),
    ];
    expected.sort();
    assert_eq!(held, expected);

    // Nothing to do: nothing logged, the sequence number stays.
    let idle = store
        .change_access_bindings(&folder, &deltas[1..4], NOW)
        .await
        .expect("no-op");
    assert!(idle.item.is_empty());
    assert_eq!(idle.seq, written.seq);

    // Refused calls change nothing.
    let missing = ResourceRef::new(ResourceKind::Folder, "b1gnosuchfolder00000");
    let refused = store
        .change_access_bindings(&missing, &[delta(BindingAction::Add, "viewer", &bob)], NOW)
        .await;
    assert!(
        matches!(refused, Err(StoreError::FailedPrecondition { .. })),
        "{refused:?}"
    );
    let not_bindable = store
        .change_access_bindings(
            &ResourceRef::new(ResourceKind::Operation, "op"),
            &[delta(BindingAction::Add, "viewer", &bob)],
            NOW,
        )
        .await;
    assert!(
        matches!(not_bindable, Err(StoreError::InvalidArgument { .. })),
        "{not_bindable:?}"
    );
    assert_eq!(store.max_seq().await.expect("max_seq"), written.seq);
}

async fn operations_crud(db: &TestDb) {
    let store = &db.store;
    let before = store.max_seq().await.expect("max_seq");
    let operation = store
        .create_operation(
            &NewOperation {
                resource_id: "ajeresource000000000".into(),
                description: "Create service account".into(),
                created_by: "ajecaller00000000000".into(),
                done: false,
                metadata: serde_json::json!({"serviceAccountId": "ajeresource000000000"}),
                result: None,
            },
            NOW,
        )
        .await
        .expect("create");
    assert_eq!(
        store.get_operation(&operation.id).await.expect("get"),
        operation
    );
    assert_eq!(
        store.max_seq().await.expect("max_seq"),
        before,
        "a new operation is kept outside the change log"
    );
    assert!(
        store
            .changes_since(before, 10)
            .await
            .expect("changes")
            .is_empty()
    );
    let done = store
        .update_operation(
            &operation.id,
            1,
            &OperationUpdate {
                done: true,
                metadata: operation.metadata.clone(),
                result: Some(OperationResult::Response(
                    serde_json::json!({"id": "ajeresource000000000", "name": "sa"}),
                )),
            },
            NOW + 5,
        )
        .await
        .expect("finish")
        .item;
    assert!(done.done);
    assert_eq!((done.created_at, done.modified_at), (NOW, NOW + 5));
    let failed = store
        .create_operation(
            &NewOperation {
                resource_id: "ajeresource000000000".into(),
                description: "Delete".into(),
                created_by: "ajecaller00000000000".into(),
                done: true,
                metadata: serde_json::json!({}),
                result: Some(OperationResult::Error(
                    serde_json::json!({"code": 9, "message": "nope"}),
                )),
            },
            NOW,
        )
        .await
        .expect("create failed operation");
    let listed = store
        .list_operations("ajeresource000000000", &PageRequest::first(0))
        .await
        .expect("list");
    let mut want = vec![done.clone(), failed.clone()];
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed.items, want);
    store
        .delete_operation(&failed.id, None, NOW)
        .await
        .expect("delete");
    assert!(is_not_found(store.get_operation(&failed.id).await));
}

async fn uniqueness_follows_the_yandex_rules(db: &TestDb) {
    let store = &db.store;
    let (cloud_a, folder_a1) = cloud_and_folder(store, "a").await;
    let folder_a2 = store
        .create_folder(
            &NewFolder {
                cloud_id: cloud_a.clone(),
                name: "second".into(),
                ..NewFolder::default()
            },
            NOW,
        )
        .await
        .expect("second folder")
        .item
        .id;
    let (_, folder_b) = cloud_and_folder(store, "b").await;

    // Service account names are unique in the cloud, across its folders.
    account(store, &folder_a1, "robot").await;
    let again = store
        .create_service_account(
            &NewServiceAccount {
                folder_id: folder_a2.clone(),
                name: "robot".into(),
                ..NewServiceAccount::default()
            },
            NOW,
        )
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::AlreadyExists {
                what: "service account name in cloud"
            })
        ),
        "{again:?}"
    );
    account(store, &folder_b, "robot").await;
    let other = account(store, &folder_a2, "other").await;
    let renamed = store
        .update_service_account(
            &other,
            1,
            &ServiceAccountUpdate {
                name: "robot".into(),
                ..ServiceAccountUpdate::default()
            },
            NOW,
        )
        .await;
    assert!(
        matches!(renamed, Err(StoreError::AlreadyExists { .. })),
        "{renamed:?}"
    );

    // Federation names are unique in the folder only.
    let federation_id = federation(store, &folder_a1, "gitlab").await;
    let again = store
        .create_federation(&new_federation(&folder_a1, "gitlab"), NOW)
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::AlreadyExists {
                what: "federation name in folder"
            })
        ),
        "{again:?}"
    );
    federation(store, &folder_a2, "gitlab").await;

    // Folder names are unique in the cloud; cloud names in the organization.
    let folder_again = store
        .create_folder(
            &NewFolder {
                cloud_id: cloud_a.clone(),
                name: "default".into(),
                ..NewFolder::default()
            },
            NOW,
        )
        .await;
    assert!(matches!(
        folder_again,
        Err(StoreError::AlreadyExists { .. })
    ));
    let cloud_again = store
        .create_cloud(
            &NewCloud {
                organization_id: "org1".into(),
                name: "a".into(),
                ..NewCloud::default()
            },
            NOW,
        )
        .await;
    assert!(matches!(cloud_again, Err(StoreError::AlreadyExists { .. })));

    // A credential's (account, federation, subject) and a binding's (resource, role, subject).
    let robot = account(store, &folder_a1, "robot2").await;
    store
        .create_federated_credential(&new_credential(&robot, &federation_id, "sub"), NOW)
        .await
        .expect("credential");
    let again = store
        .create_federated_credential(&new_credential(&robot, &federation_id, "sub"), NOW)
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    store
        .create_federated_credential(&new_credential(&robot, &federation_id, "sub2"), NOW)
        .await
        .expect("another subject");
    let binding = new_binding(ResourceKind::Folder, &folder_a1, "editor", &robot);
    store
        .create_access_binding(&binding, NOW)
        .await
        .expect("binding");
    let again = store.create_access_binding(&binding, NOW).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
}

async fn missing_references_and_bad_values_are_refused(db: &TestDb) {
    let store = &db.store;
    let (_, folder_id) = cloud_and_folder(store, "c").await;
    let account_id = account(store, &folder_id, "sa").await;
    let federation_id = federation(store, &folder_id, "f").await;
    let missing = "ajemissing0000000000";

    let cases: Vec<(&str, Result<(), StoreError>)> = vec![
        (
            "folder in a missing cloud",
            store
                .create_folder(
                    &NewFolder {
                        cloud_id: missing.into(),
                        name: "x".into(),
                        ..NewFolder::default()
                    },
                    NOW,
                )
                .await
                .map(drop),
        ),
        (
            "service account in a missing folder",
            store
                .create_service_account(
                    &NewServiceAccount {
                        folder_id: missing.into(),
                        name: "x".into(),
                        ..NewServiceAccount::default()
                    },
                    NOW,
                )
                .await
                .map(drop),
        ),
        (
            "federation in a missing folder",
            store
                .create_federation(&new_federation(missing, "x"), NOW)
                .await
                .map(drop),
        ),
        (
            "credential with a missing federation",
            store
                .create_federated_credential(&new_credential(&account_id, missing, "s"), NOW)
                .await
                .map(drop),
        ),
        (
            "credential with a missing service account",
            store
                .create_federated_credential(&new_credential(missing, &federation_id, "s"), NOW)
                .await
                .map(drop),
        ),
        (
            "key of a missing service account",
            store
                .create_authorized_key(&new_key(missing), NOW)
                .await
                .map(drop),
        ),
        (
            "binding on a missing service account",
            store
                .create_access_binding(
                    &new_binding(ResourceKind::ServiceAccount, missing, "viewer", &account_id),
                    NOW,
                )
                .await
                .map(drop),
        ),
    ];
    for (name, result) in cases {
        assert!(
            matches!(result, Err(StoreError::FailedPrecondition { .. })),
            "{name}: {result:?}"
        );
    }

    let bad_key = NewAuthorizedKey {
        public_key: "not a PEM".into(),
        ..new_key(&account_id)
    };
    let long_name = NewServiceAccount {
        folder_id: folder_id.clone(),
        name: "x".repeat(64),
        ..NewServiceAccount::default()
    };
    let unfinished = NewOperation {
        resource_id: String::new(),
        description: String::new(),
        created_by: String::new(),
        done: false,
        metadata: serde_json::json!({}),
        result: Some(OperationResult::Response(serde_json::json!({}))),
    };
    let cases: Vec<(&str, Result<(), StoreError>)> = vec![
        (
            "key that is not PEM",
            store.create_authorized_key(&bad_key, NOW).await.map(drop),
        ),
        (
            "name over 63 characters",
            store
                .create_service_account(&long_name, NOW)
                .await
                .map(drop),
        ),
        (
            "binding on an operation",
            store
                .create_access_binding(
                    &new_binding(ResourceKind::Operation, missing, "viewer", &account_id),
                    NOW,
                )
                .await
                .map(drop),
        ),
        (
            "result of an unfinished operation",
            store.create_operation(&unfinished, NOW).await.map(drop),
        ),
    ];
    for (name, result) in cases {
        assert!(
            matches!(result, Err(StoreError::InvalidArgument { .. })),
            "{name}: {result:?}"
        );
    }
    // Nothing refused reached the change log: it holds the four setup creates only.
    let changes = store.changes_since(Seq(0), 100).await.expect("changes");
    assert_eq!(changes.len(), 4, "{changes:?}");
}

async fn deleting_a_service_account_cascades(db: &TestDb) {
    let store = &db.store;
    let (_, folder_id) = cloud_and_folder(store, "c").await;
    let doomed = account(store, &folder_id, "doomed").await;
    let survivor = account(store, &folder_id, "survivor").await;
    let federation_id = federation(store, &folder_id, "f").await;
    let mut dependents = Vec::new();
    for _ in 0..2 {
        let key = store
            .create_authorized_key(&new_key(&doomed), NOW)
            .await
            .expect("key");
        dependents.push((ResourceKind::AuthorizedKey, key.item.id));
    }
    for subject in ["s1", "s2"] {
        let credential = store
            .create_federated_credential(&new_credential(&doomed, &federation_id, subject), NOW)
            .await
            .expect("credential");
        dependents.push((ResourceKind::FederatedCredential, credential.item.id));
    }
    for role in ["iam.serviceAccounts.user", "editor"] {
        let binding = store
            .create_access_binding(
                &new_binding(ResourceKind::ServiceAccount, &doomed, role, &survivor),
                NOW,
            )
            .await
            .expect("binding on the doomed account");
        dependents.push((ResourceKind::AccessBinding, binding.item.id));
    }
    // A binding whose subject is the doomed account, on the folder: it grants a role to nobody
    // once the account is gone, so it goes too.
    let as_subject: AccessBinding = store
        .create_access_binding(
            &new_binding(ResourceKind::Folder, &folder_id, "viewer", &doomed),
            NOW,
        )
        .await
        .expect("binding to the doomed account")
        .item;
    dependents.push((ResourceKind::AccessBinding, as_subject.id.clone()));
    // A binding on the folder for another account stays.
    let kept: AccessBinding = store
        .create_access_binding(
            &new_binding(ResourceKind::Folder, &folder_id, "viewer", &survivor),
            NOW,
        )
        .await
        .expect("binding to the survivor")
        .item;
    let survivor_key = store
        .create_authorized_key(&new_key(&survivor), NOW)
        .await
        .expect("survivor key")
        .item;

    let before = store.max_seq().await.expect("max_seq");
    let seq = store
        .delete_service_account(&doomed, Some(1), NOW)
        .await
        .expect("delete");
    assert!(is_not_found(store.get_service_account(&doomed).await));
    for (kind, id) in &dependents {
        let gone = match kind {
            ResourceKind::AuthorizedKey => is_not_found(store.get_authorized_key(id).await),
            ResourceKind::FederatedCredential => {
                is_not_found(store.get_federated_credential(id).await)
            }
            _ => is_not_found(store.get_access_binding(id).await),
        };
        assert!(gone, "{kind} {id} was deleted with the account");
    }
    store
        .get_access_binding(&kept.id)
        .await
        .expect("bindings naming another account stay");
    store
        .get_authorized_key(&survivor_key.id)
        .await
        .expect("other accounts' keys stay");

    // One logged deletion per deleted resource, the account's last.
    let changes = store.changes_since(before, 100).await.expect("changes");
    assert_eq!(changes.len(), dependents.len() + 1, "{changes:?}");
    assert!(changes.iter().all(|c| c.op == ChangeOp::Delete));
    let logged: HashSet<(ResourceKind, String)> = changes
        .iter()
        .map(|c| (c.kind, c.resource_id.clone()))
        .collect();
    for dependent in &dependents {
        assert!(logged.contains(dependent), "{dependent:?} logged");
    }
    let last = changes.last().expect("changes");
    assert_eq!(
        (last.kind, last.resource_id.as_str(), last.seq),
        (ResourceKind::ServiceAccount, doomed.as_str(), seq)
    );
}

async fn deleting_a_folder_or_cloud_cascades(db: &TestDb) {
    let store = &db.store;
    let (cloud_id, folder_id) = cloud_and_folder(store, "c").await;
    let account_id = account(store, &folder_id, "sa").await;
    let federation_id = federation(store, &folder_id, "f").await;
    let credential = store
        .create_federated_credential(&new_credential(&account_id, &federation_id, "s"), NOW)
        .await
        .expect("credential")
        .item;
    let key = store
        .create_authorized_key(&new_key(&account_id), NOW)
        .await
        .expect("key")
        .item;
    let on_folder = store
        .create_access_binding(
            &new_binding(ResourceKind::Folder, &folder_id, "viewer", &account_id),
            NOW,
        )
        .await
        .expect("binding")
        .item;
    let on_cloud = store
        .create_access_binding(
            &new_binding(ResourceKind::Cloud, &cloud_id, "viewer", &account_id),
            NOW,
        )
        .await
        .expect("binding")
        .item;

    let before = store.max_seq().await.expect("max_seq");
    store
        .delete_folder(&folder_id, None, NOW)
        .await
        .expect("delete folder");
    assert!(is_not_found(store.get_service_account(&account_id).await));
    assert!(is_not_found(store.get_federation(&federation_id).await));
    assert!(is_not_found(
        store.get_federated_credential(&credential.id).await
    ));
    assert!(is_not_found(store.get_authorized_key(&key.id).await));
    assert!(is_not_found(store.get_access_binding(&on_folder.id).await));
    let changes = store.changes_since(before, 100).await.expect("changes");
    // Account, federation, credential (reached from both, logged once), key, the folder's
    // binding, the cloud's binding to the account (its subject is gone), folder.
    assert_eq!(changes.len(), 7, "{changes:?}");
    assert!(is_not_found(store.get_access_binding(&on_cloud.id).await));

    store
        .delete_cloud(&cloud_id, None, NOW)
        .await
        .expect("delete cloud");
    assert!(is_not_found(store.get_access_binding(&on_cloud.id).await));
}

async fn concurrent_updates_from_one_version_conflict(db: &TestDb) {
    let store = &db.store;
    let (_, folder_id) = cloud_and_folder(store, "c").await;
    let id = account(store, &folder_id, "contended").await;
    let update = |description: &str| ServiceAccountUpdate {
        name: "contended".into(),
        description: description.into(),
        ..ServiceAccountUpdate::default()
    };
    let (first, second) = (update("first"), update("second"));
    let (a, b) = tokio::join!(
        store.update_service_account(&id, 1, &first, NOW),
        store.update_service_account(&id, 1, &second, NOW),
    );
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one update wins: {other:?}"),
    };
    assert_eq!(won.item.version, 2);
    assert!(
        matches!(
            lost,
            StoreError::Conflict {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{lost:?}"
    );
    let stored = store.get_service_account(&id).await.expect("get");
    assert_eq!(stored.description, won.item.description, "no lost update");

    // A stale version is refused by update and delete; a missing id is NotFound.
    let stale = store.update_service_account(&id, 1, &first, NOW).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    let stale = store.delete_service_account(&id, Some(1), NOW).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert!(is_not_found(
        store
            .update_service_account("ajemissing0000000000", 1, &first, NOW)
            .await
    ));
}

async fn change_log_is_gapless_under_20_concurrent_writers(db: &TestDb) {
    const WRITERS: usize = 20;
    const EACH: usize = 5;
    let store = &db.store;
    let (_, folder_id) = cloud_and_folder(store, "c").await;
    let start = store.max_seq().await.expect("max_seq");

    // A reader follows the log while the writers run: it must never see a gap.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut last = start;
            let deadline = Instant::now() + Duration::from_secs(60);
            while last.0 < start.0 + i64::try_from(WRITERS * EACH * 2).expect("count")
                && Instant::now() < deadline
            {
                for change in store.changes_since(last, 1000).await.expect("read") {
                    assert_eq!(change.seq.0, last.0 + 1, "no gap after {last}");
                    last = change.seq;
                }
                tokio::task::yield_now().await;
            }
            last
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let folder_id = folder_id.clone();
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..EACH {
                let created = store
                    .create_service_account(
                        &NewServiceAccount {
                            folder_id: folder_id.clone(),
                            name: format!("w{w}-{i}"),
                            ..NewServiceAccount::default()
                        },
                        NOW,
                    )
                    .await
                    .expect("create");
                written.push((created.seq, created.item.id.clone(), ChangeOp::Create));
                let updated = store
                    .update_service_account(
                        &created.item.id,
                        1,
                        &ServiceAccountUpdate {
                            name: format!("w{w}-{i}"),
                            description: "updated".into(),
                            ..ServiceAccountUpdate::default()
                        },
                        NOW,
                    )
                    .await
                    .expect("update");
                written.push((updated.seq, created.item.id, ChangeOp::Update));
            }
            written
        }));
    }
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    let followed = reader.await.expect("reader");

    let total = i64::try_from(WRITERS * EACH * 2).expect("count");
    let end = store.max_seq().await.expect("max_seq");
    assert_eq!(end.0, start.0 + total);
    assert_eq!(followed, end, "the reader saw every change");
    let seqs: BTreeSet<Seq> = acknowledged.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(
        seqs.len(),
        acknowledged.len(),
        "every commit has its own number"
    );

    let log = store.changes_since(start, 10_000).await.expect("changes");
    assert_eq!(log.len(), acknowledged.len());
    for (i, change) in log.iter().enumerate() {
        assert_eq!(change.seq.0, start.0 + 1 + i64::try_from(i).expect("index"));
    }
    for (seq, id, op) in &acknowledged {
        let change = &log[usize::try_from(seq.0 - start.0 - 1).expect("index")];
        assert_eq!((&change.resource_id, change.op), (id, *op), "seq {seq}");
        assert_eq!(change.kind, ResourceKind::ServiceAccount);
    }
}

async fn pagination_is_stable_and_complete(db: &TestDb) {
    let store = &db.store;
    let (_, folder_id) = cloud_and_folder(store, "c").await;
    let (_, other_folder) = cloud_and_folder(store, "d").await;
    let mut ids = BTreeSet::new();
    for i in 0..23 {
        ids.insert(account(store, &folder_id, &format!("sa-{i}")).await);
    }
    account(store, &other_folder, "elsewhere").await;

    let all = store
        .list_service_accounts(&folder_id, &PageRequest::first(0))
        .await
        .expect("one default page");
    assert_eq!(all.items.len(), 23);
    assert_eq!(all.next_page_token, None);
    let in_order: Vec<&String> = all.items.iter().map(|a| &a.id).collect();
    assert_eq!(in_order, ids.iter().collect::<Vec<_>>(), "id order");

    // Walk in pages of 5 while the folder changes under the walk: after the second page, add
    // three accounts and delete one already listed.
    let mut seen = Vec::new();
    let mut page = PageRequest::first(5);
    let mut added = Vec::new();
    let mut position_when_added = String::new();
    let mut pages = 0;
    loop {
        let got = store
            .list_service_accounts(&folder_id, &page)
            .await
            .expect("page");
        pages += 1;
        assert!(got.items.len() <= 5);
        seen.extend(got.items.iter().map(|a| a.id.clone()));
        if pages == 2 {
            position_when_added = seen.last().expect("items").clone();
            for i in 0..3 {
                added.push(account(store, &folder_id, &format!("late-{i}")).await);
            }
            store
                .delete_service_account(&seen[0], None, NOW)
                .await
                .expect("delete one already listed");
        }
        match got.next_page_token {
            Some(token) => page = PageRequest::after(5, token),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no item twice");
    for id in &ids {
        assert!(unique.contains(id), "{id} listed");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages follow id order");
    // An item added during the walk is listed exactly when it sorts after the walk's position.
    for id in &added {
        assert_eq!(unique.contains(id), id > &position_when_added, "{id}");
    }
}

async fn subscribers_hear_of_a_commit_within_a_second(db: &TestDb) {
    // PostgreSQL: a second store, as another replica would be. SQLite: the same store (it
    // tells only its own process's subscribers).
    let listener = if db.is_postgres() {
        db.reopen().await
    } else {
        db.store.clone()
    };
    let mut changes = listener.subscribe().await.expect("subscribe");
    let written = db
        .store
        .create_cloud(
            &NewCloud {
                organization_id: "org1".into(),
                name: "announced".into(),
                ..NewCloud::default()
            },
            NOW,
        )
        .await
        .expect("create");
    let committed = Instant::now();
    let heard = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match changes.recv().await {
                Ok(seq) if seq >= written.seq => return seq,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(err) => panic!("subscription ended: {err}"),
            }
        }
    })
    .await;
    let heard = heard.expect("notified within 1 s of the commit");
    assert_eq!(heard, written.seq);
    eprintln!(
        "{:?}: notified {} ms after the commit",
        listener.backend(),
        committed.elapsed().as_millis()
    );
    if db.is_postgres() {
        listener.close().await;
    }
}

#[tokio::test]
async fn unreachable_or_unknown_databases_are_reported() {
    let refused = Store::open("postgres://root@127.0.0.1:1/test").await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    let unknown = Store::open("mysql://root@127.0.0.1/test").await;
    assert!(
        matches!(unknown, Err(StoreError::UnsupportedUrl { ref scheme }) if scheme == "mysql"),
        "{unknown:?}"
    );
    let bad_schema = Store::open_with(
        "postgres://root@127.0.0.1:1/test",
        &OpenOptions {
            pg_schema: Some("x; DROP TABLE y".into()),
            ..OpenOptions::default()
        },
    )
    .await;
    assert!(
        matches!(bad_schema, Err(StoreError::InvalidArgument { .. })),
        "{bad_schema:?}"
    );

    let db = TestDb::sqlite().await;
    db.store.close().await;
    let closed = db.store.get_cloud("b1g00000000000000000").await;
    assert!(
        matches!(closed, Err(StoreError::Unavailable(_))),
        "{closed:?}"
    );
}

/// The writer half of the crash test: runs only in the child process the test spawns, and
/// prints each resource it creates once the create has committed.
#[tokio::test]
async fn crash_writer() {
    let (Ok(url), Ok(folder_id), Ok(federation_id)) = (
        std::env::var(CRASH_DB_ENV),
        std::env::var(CRASH_FOLDER_ENV),
        std::env::var(CRASH_FEDERATION_ENV),
    ) else {
        return;
    };
    let store = Store::open(&url).await.expect("open");
    let mut out = std::io::stdout();
    let mut print = |kind: ResourceKind, id: &str| {
        writeln!(out, "committed {kind} {id}").expect("print");
        out.flush().expect("flush");
    };
    for i in 0..100_000 {
        let account_id = store
            .create_service_account(
                &NewServiceAccount {
                    folder_id: folder_id.clone(),
                    name: format!("crash-{i}"),
                    ..NewServiceAccount::default()
                },
                NOW,
            )
            .await
            .expect("account")
            .item
            .id;
        print(ResourceKind::ServiceAccount, &account_id);
        let credential = store
            .create_federated_credential(&new_credential(&account_id, &federation_id, "s"), NOW)
            .await
            .expect("credential");
        print(ResourceKind::FederatedCredential, &credential.item.id);
        let key = store
            .create_authorized_key(&new_key(&account_id), NOW)
            .await
            .expect("key");
        print(ResourceKind::AuthorizedKey, &key.item.id);
        let binding = store
            .create_access_binding(
                &new_binding(
                    ResourceKind::ServiceAccount,
                    &account_id,
                    "viewer",
                    &account_id,
                ),
                NOW,
            )
            .await
            .expect("binding");
        print(ResourceKind::AccessBinding, &binding.item.id);
    }
}

#[tokio::test]
async fn sqlite_killed_writer_loses_no_acknowledged_write_and_leaves_no_half_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("crash.db").display()
    );
    let store = Store::open(&url).await.expect("open");
    let (_, folder_id) = cloud_and_folder(&store, "c").await;
    let federation_id = federation(&store, &folder_id, "f").await;
    store.close().await;

    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "store::crash_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DB_ENV, &url)
        .env(CRASH_FOLDER_ENV, &folder_id)
        .env(CRASH_FEDERATION_ENV, &federation_id)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acknowledged: Vec<(ResourceKind, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.len() < 200 && Instant::now() < deadline {
        let Some(line) = lines.next() else { break };
        let line = line.expect("read");
        if let Some(rest) = line.strip_prefix("committed ") {
            let (kind, id) = rest.split_once(' ').expect("kind and id");
            acknowledged.push((ResourceKind::parse(kind).expect("kind"), id.to_owned()));
        }
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap");
    // Lines already printed were acknowledged too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix("committed ")
            && let Some((kind, id)) = rest.split_once(' ')
            && let Some(kind) = ResourceKind::parse(kind)
        {
            acknowledged.push((kind, id.to_owned()));
        }
    }
    assert!(
        acknowledged.len() >= 200,
        "the writer wrote: {}",
        acknowledged.len()
    );

    let store = Store::open(&url).await.expect("reopen after the crash");
    for (kind, id) in &acknowledged {
        let found = match kind {
            ResourceKind::ServiceAccount => store.get_service_account(id).await.map(drop),
            ResourceKind::FederatedCredential => store.get_federated_credential(id).await.map(drop),
            ResourceKind::AuthorizedKey => store.get_authorized_key(id).await.map(drop),
            _ => store.get_access_binding(id).await.map(drop),
        };
        found.unwrap_or_else(|e| panic!("acknowledged {kind} {id} survived: {e}"));
    }
    store.close().await;

    // Nothing half-written: the file is sound, every reference resolves, every resource has
    // its create in the log and every logged create its resource, and the log has no gap.
    let pool = sqlx::SqlitePool::connect(&url).await.expect("raw open");
    let integrity: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .expect("integrity_check")
        .get(0);
    assert_eq!(integrity, "ok");
    let dangling = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .expect("foreign_key_check");
    assert!(
        dangling.is_empty(),
        "{} dangling references",
        dangling.len()
    );
    for (table, kind) in [
        ("clouds", "cloud"),
        ("folders", "folder"),
        ("service_accounts", "service_account"),
        ("federations", "federation"),
        ("federated_credentials", "federated_credential"),
        ("authorized_keys", "authorized_key"),
        ("access_bindings", "access_binding"),
    ] {
        let unlogged = format!(
            "SELECT COUNT(*) FROM {table} r WHERE NOT EXISTS (SELECT 1 FROM changes c \
             WHERE c.kind = '{kind}' AND c.resource_id = r.id AND c.op = 'create')"
        );
        let missing = format!(
            "SELECT COUNT(*) FROM changes c WHERE c.kind = '{kind}' AND c.op = 'create' \
             AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.id = c.resource_id)"
        );
        for (what, sql) in [
            ("row without its change", unlogged),
            ("change without its row", missing),
        ] {
            let count: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
                .expect("count")
                .get(0);
            assert_eq!(count, 0, "{table}: {what}");
        }
    }
    let row = sqlx::query(
        "SELECT (SELECT seq FROM change_counter), (SELECT COUNT(*) FROM changes), \
         (SELECT COALESCE(MAX(seq), 0) FROM changes)",
    )
    .fetch_one(&pool)
    .await
    .expect("log summary");
    let (counter, count, max): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (counter, count),
        (max, max),
        "gapless log ending at the counter"
    );
    pool.close().await;
}

/// The store followed into memory, as a gateway follows it.
async fn follow(store: &Store) -> wif_gateway::iam::live::Live {
    wif_gateway::iam::live::Live::load(
        store.clone(),
        wif_gateway::iam::live::FederationDefaults {
            max_token_lifetime: 3600,
            allow_http_to_loopback: false,
        },
    )
    .await
    .expect("load")
}

async fn revocations_are_idempotent_logged_followed_and_pruned(db: &TestDb) {
    use wif_gateway::iam::store::{Record, RevokeToken};
    let store = &db.store;
    let t = wif_gateway::time::now_unix();
    let live_token = RevokeToken {
        jti: "jti-live",
        subject_id: "aje-account",
        expires_at: t + 3600,
        revoked_by: "aje-admin",
    };
    let before = store.max_seq().await.unwrap();
    let first = store.revoke_token(&live_token, t).await.expect("revoke");
    assert_eq!(first.seq, Seq(before.0 + 1));
    assert_eq!(
        (
            first.item.jti.as_str(),
            first.item.subject_id.as_str(),
            first.item.expires_at
        ),
        ("jti-live", "aje-account", t + 3600)
    );
    assert_eq!(
        (
            first.item.revoked_at,
            first.item.revoked_by.as_str(),
            first.item.version
        ),
        (t, "aje-admin", 1)
    );
    let changes = store.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0].kind,
            changes[0].resource_id.as_str(),
            changes[0].op
        ),
        (ResourceKind::RevokedToken, "jti-live", ChangeOp::Create)
    );
    // Again, by someone else, later: the first entry stands and nothing is logged.
    let again = store
        .revoke_token(
            &RevokeToken {
                revoked_by: "aje-other",
                ..live_token.clone()
            },
            t + 5,
        )
        .await
        .expect("revoke again");
    assert_eq!(again.item, first.item);
    assert_eq!(store.max_seq().await.unwrap(), first.seq);
    assert_eq!(
        store
            .record(ResourceKind::RevokedToken, "jti-live")
            .await
            .unwrap(),
        Some(Record::RevokedToken(first.item.clone()))
    );
    let old = RevokeToken {
        jti: "jti-expired",
        expires_at: t - 1000,
        ..live_token.clone()
    };
    store
        .revoke_token(&old, t)
        .await
        .expect("revoke an old one");
    let scanned = store
        .scan(ResourceKind::RevokedToken, "", 10)
        .await
        .unwrap();
    assert_eq!(
        scanned.iter().map(Record::id).collect::<Vec<_>>(),
        ["jti-expired", "jti-live"]
    );
    let invalid = store
        .revoke_token(
            &RevokeToken {
                jti: "",
                ..live_token.clone()
            },
            t,
        )
        .await;
    assert!(
        matches!(invalid, Err(StoreError::InvalidArgument { .. })),
        "{invalid:?}"
    );

    // A replica loading now holds both; pruning drops the expired one here and in the store.
    let live = follow(store).await;
    assert!(live.revoked().contains("jti-live") && live.revoked().contains("jti-expired"));
    assert_eq!(live.prune_revoked(t).await.expect("prune"), 1);
    assert!(live.revoked().contains("jti-live") && !live.revoked().contains("jti-expired"));
    assert_eq!(live.revoked().len(), 1);
    assert!(
        store
            .get_revoked_token("jti-expired")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_revoked_token("jti-live").await.unwrap().is_some());
    assert_eq!(store.prune_revoked_tokens(t).await.unwrap(), 0);
}

async fn idempotency_keys_are_reserved_once_settled_released_taken_over_and_pruned(db: &TestDb) {
    use wif_gateway::iam::store::Reservation;
    let store = &db.store;
    let fp = |c: char| c.to_string().repeat(64);
    let log = store.max_seq().await.unwrap();

    // The first reservation wins; the same key of the same caller is then taken, with the
    // first call's fingerprint, unsettled; another caller's same key is its own.
    assert_eq!(
        store
            .reserve_idempotency_key("aje-a", "k1", &fp('a'), NOW, NOW - 600)
            .await
            .unwrap(),
        Reservation::Fresh
    );
    let taken = Reservation::Taken {
        fingerprint: fp('a'),
        outcome: String::new(),
    };
    assert_eq!(
        store
            .reserve_idempotency_key("aje-a", "k1", &fp('b'), NOW, NOW - 600)
            .await
            .unwrap(),
        taken
    );
    assert_eq!(
        store
            .reserve_idempotency_key("aje-b", "k1", &fp('b'), NOW, NOW - 600)
            .await
            .unwrap(),
        Reservation::Fresh
    );

    // Settled: the outcome is kept; releasing a settled key changes nothing.
    store
        .settle_idempotency_key("aje-a", "k1", "op-1")
        .await
        .unwrap();
    store.release_idempotency_key("aje-a", "k1").await.unwrap();
    assert_eq!(
        store
            .reserve_idempotency_key("aje-a", "k1", &fp('a'), NOW + 1, NOW + 1 - 600)
            .await
            .unwrap(),
        Reservation::Taken {
            fingerprint: fp('a'),
            outcome: "op-1".into(),
        }
    );

    // Released while unsettled: free again.
    store.release_idempotency_key("aje-b", "k1").await.unwrap();
    assert_eq!(
        store
            .reserve_idempotency_key("aje-b", "k1", &fp('c'), NOW, NOW - 600)
            .await
            .unwrap(),
        Reservation::Fresh
    );

    // An unsettled reservation older than the stale bound is taken over; a settled one is not.
    assert_eq!(
        store
            .reserve_idempotency_key("aje-b", "k1", &fp('d'), NOW + 700, NOW + 100)
            .await
            .unwrap(),
        Reservation::Fresh
    );
    assert_eq!(
        store
            .reserve_idempotency_key("aje-a", "k1", &fp('d'), NOW + 700, NOW + 100)
            .await
            .unwrap(),
        Reservation::Taken {
            fingerprint: fp('a'),
            outcome: "op-1".into(),
        }
    );

    // Pruned by age; nothing of this reached the change log.
    assert_eq!(store.prune_idempotency_keys(NOW + 1).await.unwrap(), 1);
    assert_eq!(
        store
            .reserve_idempotency_key("aje-a", "k1", &fp('e'), NOW + 800, NOW + 200)
            .await
            .unwrap(),
        Reservation::Fresh
    );
    assert_eq!(store.max_seq().await.unwrap(), log);
}

/// Every text column of every `access_keys` row, read with the database's own driver.
async fn raw_access_key_rows(db: &TestDb) -> Vec<String> {
    const SQL: &str =
        "SELECT id, service_account_id, description, key_id, secret_sealed FROM access_keys";
    let columns = [
        "id",
        "service_account_id",
        "description",
        "key_id",
        "secret_sealed",
    ];
    if db.is_postgres() {
        let pool = sqlx::PgPool::connect(&db.gateway_url())
            .await
            .expect("PostgreSQL");
        let rows = sqlx::query(SQL).fetch_all(&pool).await.expect("rows");
        let texts = rows
            .iter()
            .map(|r| columns.map(|c| r.get::<String, _>(c)).join("|"))
            .collect();
        pool.close().await;
        texts
    } else {
        let pool = sqlx::SqlitePool::connect(&db.gateway_url())
            .await
            .expect("SQLite");
        let rows = sqlx::query(SQL).fetch_all(&pool).await.expect("rows");
        let texts = rows
            .iter()
            .map(|r| columns.map(|c| r.get::<String, _>(c)).join("|"))
            .collect();
        pool.close().await;
        texts
    }
}

async fn access_keys_crud_sealed_at_rest_and_cascaded(db: &TestDb) {
    use wif_gateway::iam::access_keys::{aad, generate_key_id, generate_secret};
    use wif_gateway::iam::sealing::SecretKeys;
    use wif_gateway::iam::store::{AccessKeyUpdate, NewAccessKey};
    let store = &db.store;
    let (cloud_id, folder_id) = cloud_and_folder(store, "c").await;
    let owner = account(store, &folder_id, "owner").await;
    let other = account(store, &folder_id, "other").await;
    let keys = SecretKeys::new(vec![("k1".into(), [7; 32])]).expect("keys");
    let new_key = |account: &str| {
        let id = ids::generate(ResourceKind::AccessKey).expect("id");
        let key_id = generate_key_id().expect("key id");
        let secret = generate_secret().expect("secret");
        let sealed = keys
            .seal(&secret, &aad(&id, account, &key_id))
            .expect("seal");
        let text = String::from_utf8(secret.as_bytes().to_vec()).expect("text");
        (
            NewAccessKey {
                id,
                service_account_id: account.into(),
                description: "uploads".into(),
                key_id,
                secret: sealed,
            },
            text,
        )
    };
    let before = store.max_seq().await.expect("max_seq");
    let (new, secret) = new_key(&owner);
    let key = store
        .create_access_key(&new, NOW)
        .await
        .expect("create")
        .item;
    assert_eq!((key.version, key.last_used_at), (1, None));
    assert_eq!(store.get_access_key(&key.id).await.expect("get"), key);
    // The row holds the sealed secret, never the secret.
    let rows = raw_access_key_rows(db).await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].contains(&secret), "{}", rows[0]);
    assert!(rows[0].contains("|k1:"), "sealed under k1: {}", rows[0]);
    assert_eq!(
        keys.open(&key.secret, &aad(&key.id, &owner, &key.key_id))
            .expect("opens")
            .as_bytes(),
        secret.as_bytes()
    );
    // The access key id is unique; the account must exist.
    let (mut twin, _) = new_key(&owner);
    twin.key_id = key.key_id.clone();
    assert!(matches!(
        store.create_access_key(&twin, NOW).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let (orphan, _) = new_key("ajenosuchaccount0000");
    assert!(matches!(
        store.create_access_key(&orphan, NOW).await,
        Err(StoreError::FailedPrecondition { .. })
    ));
    let (second, _) = new_key(&owner);
    let second = store
        .create_access_key(&second, NOW)
        .await
        .expect("second")
        .item;
    let (kept, _) = new_key(&other);
    let kept = store
        .create_access_key(&kept, NOW)
        .await
        .expect("other's")
        .item;
    let listed = store
        .list_access_keys(&owner, &PageRequest::first(1))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    let rest = store
        .list_access_keys(
            &owner,
            &PageRequest::after(1, listed.next_page_token.expect("more")),
        )
        .await
        .expect("next page");
    let mut ids: Vec<String> = listed
        .items
        .iter()
        .chain(&rest.items)
        .map(|k| k.id.clone())
        .collect();
    ids.sort();
    let mut expected = vec![key.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        store
            .count_in_cloud(ResourceKind::AccessKey, &cloud_id)
            .await
            .expect("count"),
        3
    );
    let updated = store
        .update_access_key(
            &key.id,
            1,
            &AccessKeyUpdate {
                description: "renamed".into(),
            },
            NOW,
        )
        .await
        .expect("update")
        .item;
    assert_eq!(
        (updated.description.as_str(), updated.version),
        ("renamed", 2)
    );
    assert!(matches!(
        store
            .update_access_key(&key.id, 1, &AccessKeyUpdate::default(), NOW)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store
            .update_access_key(
                &key.id,
                2,
                &AccessKeyUpdate {
                    description: "d".repeat(257)
                },
                NOW
            )
            .await,
        Err(StoreError::InvalidArgument { .. })
    ));
    // After a rotation: what is sealed under another key, and sealed again.
    let rotated =
        SecretKeys::new(vec![("k2".into(), [8; 32]), ("k1".into(), [7; 32])]).expect("keys");
    let stale = store
        .access_keys_sealed_under_other_keys("k2", 10)
        .await
        .expect("stale");
    assert_eq!(stale.len(), 3);
    assert!(
        store
            .access_keys_sealed_under_other_keys("k1", 10)
            .await
            .expect("none")
            .is_empty()
    );
    let aad_of = aad(&updated.id, &owner, &updated.key_id);
    let resealed_secret = rotated
        .seal(
            &rotated.open(&updated.secret, &aad_of).expect("open"),
            &aad_of,
        )
        .expect("seal");
    let resealed = store
        .reseal_access_key(&updated.id, 2, &resealed_secret, NOW)
        .await
        .expect("reseal")
        .item;
    assert_eq!((resealed.secret.key_id(), resealed.version), ("k2", 3));
    assert_eq!(
        store
            .access_keys_sealed_under_other_keys("k2", 10)
            .await
            .expect("stale")
            .len(),
        2
    );
    store
        .delete_access_key(&second.id, Some(1), NOW)
        .await
        .expect("delete");
    assert!(is_not_found(store.get_access_key(&second.id).await));

    // Deleting the account deletes its keys, each logged; other accounts' keys stay.
    let deleted = store
        .delete_service_account(&owner, None, NOW)
        .await
        .expect("delete account");
    assert!(is_not_found(store.get_access_key(&key.id).await));
    store
        .get_access_key(&kept.id)
        .await
        .expect("other accounts' keys stay");
    let changes = store.changes_since(before, 100).await.expect("changes");
    let of_key: Vec<(ChangeOp, i64)> = changes
        .iter()
        .filter(|c| c.kind == ResourceKind::AccessKey && c.resource_id == key.id)
        .map(|c| (c.op, c.version))
        .collect();
    assert_eq!(
        of_key,
        [
            (ChangeOp::Create, 1),
            (ChangeOp::Update, 2),
            (ChangeOp::Update, 3),
            (ChangeOp::Delete, 3)
        ]
    );
    assert_eq!(changes.last().map(|c| c.seq), Some(deleted));
    // Followed as any record is.
    let record = store
        .record(ResourceKind::AccessKey, &kept.id)
        .await
        .expect("record");
    assert!(matches!(record, Some(wif_gateway::iam::store::Record::AccessKey(k)) if k == kept));
    assert_eq!(
        store
            .scan(ResourceKind::AccessKey, "", 10)
            .await
            .expect("scan")
            .len(),
        1
    );
}

/// A new API key of `account` for the secret `secret`: its hash and mask, as the API stores
/// them.
fn new_api_key(account: &str, secret: &str, scopes: &[&str]) -> NewApiKey {
    use wif_gateway::iam::api_key_table::{hex, secret_digest};
    NewApiKey {
        service_account_id: account.into(),
        description: "lockbox reader".into(),
        secret_hash: hex(&secret_digest(secret)),
        masked_secret: format!("****{}", &secret[secret.len() - 6..]),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        expires_at: Some(NOW + 3600),
    }
}

async fn api_keys_are_kept_as_hashes_logged_followed_and_cascaded(db: &TestDb) {
    use wif_gateway::iam::api_key_table::secret_digest;
    use wif_gateway::iam::store::{ApiKeyUpdate, Record};
    let store = &db.store;
    let (cloud, folder) = cloud_and_folder(store, "c").await;
    let owner = account(store, &folder, "owner").await;
    let other = account(store, &folder, "other").await;
    const FIRST: &str = "AQVN0000000000000000000000000000000first";
    const SECOND: &str = "AQVN000000000000000000000000000000second";
    let before = store.max_seq().await.unwrap();
    let key = store
        .create_api_key(&new_api_key(&owner, FIRST, &["yc.a", "yc.b"]), NOW)
        .await
        .expect("create")
        .item;
    assert!(
        key.id.starts_with("aje") && key.id.len() == 20,
        "{}",
        key.id
    );
    assert_eq!(key.scopes, ["yc.a", "yc.b"]);
    assert_eq!(
        (key.expires_at, key.last_used_at, key.version),
        (Some(NOW + 3600), None, 1)
    );
    assert_eq!(key.masked_secret, "****0first");
    assert_eq!(store.get_api_key(&key.id).await.expect("get"), key);
    assert_eq!(
        store.record(ResourceKind::ApiKey, &key.id).await.unwrap(),
        Some(Record::ApiKey(key.clone()))
    );
    let unlimited = store
        .create_api_key(
            &NewApiKey {
                expires_at: None,
                ..new_api_key(&owner, SECOND, &[])
            },
            NOW,
        )
        .await
        .expect("a key with no scopes and no expiry")
        .item;
    assert_eq!((unlimited.scopes.len(), unlimited.expires_at), (0, None));

    // One secret never names two keys, even of another account.
    let again = store
        .create_api_key(&new_api_key(&other, FIRST, &[]), NOW)
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    // What the store refuses by itself.
    for (name, new) in [
        (
            "hash not 64 characters",
            NewApiKey {
                secret_hash: "abc".into(),
                ..new_api_key(&owner, "AQVN00000000000000000000000000000short", &[])
            },
        ),
        (
            "mask without ****",
            NewApiKey {
                masked_secret: "AQVN123456".into(),
                ..new_api_key(&owner, "AQVN0000000000000000000000000000000mask", &[])
            },
        ),
        (
            "description over 256",
            NewApiKey {
                description: "d".repeat(257),
                ..new_api_key(&owner, "AQVN00000000000000000000000000000000desc", &[])
            },
        ),
    ] {
        let refused = store.create_api_key(&new, NOW).await;
        assert!(
            matches!(refused, Err(StoreError::InvalidArgument { .. })),
            "{name}: {refused:?}"
        );
    }
    let orphan = store
        .create_api_key(
            &new_api_key(
                "ajenosuchaccount0000",
                "AQVN000000000000000000000000000000orphan",
                &[],
            ),
            NOW,
        )
        .await;
    assert!(
        matches!(orphan, Err(StoreError::FailedPrecondition { .. })),
        "{orphan:?}"
    );

    // Pages in id order; counted in the cloud.
    let first = store
        .list_api_keys(&owner, &PageRequest::first(1))
        .await
        .expect("list");
    assert_eq!(first.items.len(), 1);
    let token = first.next_page_token.clone().expect("another page");
    let second = store
        .list_api_keys(&owner, &PageRequest::after(1, token))
        .await
        .expect("list");
    assert_eq!(second.items.len(), 1);
    assert!(second.next_page_token.is_none());
    let mut ids = vec![key.id.clone(), unlimited.id.clone()];
    ids.sort();
    assert_eq!(
        [first.items[0].id.clone(), second.items[0].id.clone()],
        *ids
    );
    assert_eq!(
        store
            .count_in_cloud(ResourceKind::ApiKey, &cloud)
            .await
            .unwrap(),
        2
    );

    // Followed into memory by the hash of the secret.
    let live = follow(store).await;
    let held = live
        .api_keys()
        .get(&secret_digest(FIRST))
        .expect("the key, by its secret's hash");
    assert_eq!(
        (&*held.id, &*held.service_account_id, held.expires_at),
        (key.id.as_str(), owner.as_str(), Some(NOW + 3600))
    );
    assert_eq!(held.scopes.len(), 2);
    assert!(live.api_keys().get(&secret_digest("AQVNwrong")).is_none());

    // An update changes description, scopes and expiry, never the secret; a stale version
    // conflicts.
    let update = ApiKeyUpdate {
        description: "rotated".into(),
        scopes: vec!["yc.b".into()],
        expires_at: None,
    };
    let updated = store
        .update_api_key(&key.id, 1, &update, NOW + 1)
        .await
        .expect("update")
        .item;
    assert_eq!(
        (
            updated.description.as_str(),
            updated.version,
            updated.expires_at
        ),
        ("rotated", 2, None)
    );
    assert_eq!(updated.scopes, ["yc.b"]);
    assert_eq!(
        (&updated.secret_hash, &updated.masked_secret),
        (&key.secret_hash, &key.masked_secret)
    );
    let stale = store.update_api_key(&key.id, 1, &update, NOW + 1).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    live.catch_up().await.expect("catch up");
    let held = live
        .api_keys()
        .get(&secret_digest(FIRST))
        .expect("still held");
    assert_eq!((held.scopes.len(), held.expires_at), (1, None));

    // Deleted: gone from the store and from memory.
    store
        .delete_api_key(&unlimited.id, Some(1), NOW + 2)
        .await
        .expect("delete");
    assert!(is_not_found(store.get_api_key(&unlimited.id).await));
    live.catch_up().await.expect("catch up");
    assert!(live.api_keys().get(&secret_digest(SECOND)).is_none());

    // The account's deletion takes its keys, each logged.
    let cascade_from = store.max_seq().await.unwrap();
    store
        .delete_service_account(&owner, None, NOW + 3)
        .await
        .expect("delete the account");
    assert!(is_not_found(store.get_api_key(&key.id).await));
    let changes = store.changes_since(cascade_from, 10).await.unwrap();
    assert!(
        changes.iter().any(|c| c.kind == ResourceKind::ApiKey
            && c.resource_id == key.id
            && c.op == ChangeOp::Delete),
        "{changes:?}"
    );
    live.catch_up().await.expect("catch up");
    assert!(live.api_keys().is_empty(), "{:?}", live.api_keys());

    // Every change of a key was logged under the kind api_key.
    let logged: Vec<(ChangeOp, String)> = store
        .changes_since(before, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.kind == ResourceKind::ApiKey)
        .map(|c| (c.op, c.resource_id))
        .collect();
    assert_eq!(
        logged,
        [
            (ChangeOp::Create, key.id.clone()),
            (ChangeOp::Create, unlimited.id.clone()),
            (ChangeOp::Update, key.id.clone()),
            (ChangeOp::Delete, unlimited.id.clone()),
            (ChangeOp::Delete, key.id.clone()),
        ]
    );
}
