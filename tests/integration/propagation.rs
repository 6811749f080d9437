//! The store followed (`iam::live`): what one replica writes reaches another replica's exchange
//! directory and authorization index — through PostgreSQL's notifications, or the log read every
//! second — and a replica that missed notifications, or was stopped, catches up from the log.
//! Each scenario runs on SQLite and, with `WIF_TEST_DATABASE_URL`, on PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wif_gateway::exchange::directory::{Directory, Entries};
use wif_gateway::iam::ResourceKind;
use wif_gateway::iam::authn::Principal;
use wif_gateway::iam::authz::Resource;
use wif_gateway::iam::live::{FederationDefaults, Live, POLL};
use wif_gateway::iam::roles::Method;
use wif_gateway::iam::service::Authorize;
use wif_gateway::iam::store::Store;

use crate::store::{
    TestDb, account, cloud_and_folder, new_binding, new_credential, new_federation,
};

const NOW: i64 = 1_780_000_000;
const SUBJECT: &str = "system:serviceaccount:default:wlif";

fn defaults() -> FederationDefaults {
    FederationDefaults {
        max_token_lifetime: 3600,
        allow_http_to_loopback: false,
    }
}

fn principal(id: &str) -> Principal {
    Principal {
        service_account_id: id.into(),
        folder_id: String::new(),
        cloud_id: String::new(),
        token_jti: None,
        token_expires_at: None,
        actor: None,
    }
}

/// Whether `live`'s directory binds `subject` of the federation with `issuer` to `account`.
fn binds(live: &Live, issuer: &str, account: &str, subject: &str) -> bool {
    binds_in(&live.entries(), issuer, account, subject)
}

/// Whether the directory layer `entries` binds `subject` of the federation with `issuer` to
/// `account`.
fn binds_in(entries: &Arc<Entries>, issuer: &str, account: &str, subject: &str) -> bool {
    let directory = Directory::default().with_store(entries.clone());
    directory
        .federations_for_issuer(issuer)
        .iter()
        .any(|f| directory.credential(*f, account, subject).is_some())
}

fn may_list_keys(live: &Live, caller: &str, account: &str) -> bool {
    live.authorizer()
        .authorize(
            &principal(caller),
            Method::KeyList,
            &[Resource::service_account(account)],
        )
        .is_ok()
}

/// Waits (up to 10 s) for `done`, and returns how long it took.
async fn until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: not seen in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

/// A second replica follows the first one's writes: creations, then deletions and their
/// cascades.
async fn another_replica_sees_every_write(db: &TestDb) {
    let writer = &db.store;
    let (cloud, folder) = cloud_and_folder(writer, "c").await;
    let admin = account(writer, &folder, "admin").await;
    writer
        .create_access_binding(
            &new_binding(ResourceKind::Cloud, &cloud, "admin", &admin),
            NOW,
        )
        .await
        .unwrap();

    let reader: Store = db.reopen().await;
    let live = Live::load(reader, defaults()).await.expect("load");
    let follower = tokio::spawn(live.clone().follow());
    let runner = account(writer, &folder, "runner").await;
    assert!(
        may_list_keys(&live, &admin, &admin),
        "loaded at start: admin on the cloud"
    );

    let federation = writer
        .create_federation(&new_federation(&folder, "k8s"), NOW)
        .await
        .unwrap()
        .item;
    let credential = writer
        .create_federated_credential(&new_credential(&runner, &federation.id, SUBJECT), NOW)
        .await
        .unwrap()
        .item;
    let seen = until("the credential", || {
        binds(&live, &federation.issuer, &runner, SUBJECT)
    })
    .await;
    eprintln!(
        "{}: a credential written on one replica reached the other's directory in {seen:?}",
        if db.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let binding = writer
        .create_access_binding(
            &new_binding(ResourceKind::ServiceAccount, &runner, "viewer", &runner),
            NOW,
        )
        .await
        .unwrap()
        .item;
    until("the binding", || may_list_keys(&live, &runner, &runner)).await;
    assert!(!may_list_keys(&live, &runner, &admin), "on runner only");

    writer
        .delete_access_binding(&binding.id, Some(binding.version), NOW)
        .await
        .unwrap();
    until("the binding's removal", || {
        !may_list_keys(&live, &runner, &runner)
    })
    .await;
    writer
        .delete_federated_credential(&credential.id, Some(credential.version), NOW)
        .await
        .unwrap();
    until("the credential's removal", || {
        !binds(&live, &federation.issuer, &runner, SUBJECT)
    })
    .await;

    // Deleting the folder cascades to its accounts and federations: all leave the views.
    writer
        .create_federated_credential(&new_credential(&runner, &federation.id, SUBJECT), NOW)
        .await
        .unwrap();
    until("the credential again", || {
        binds(&live, &federation.issuer, &runner, SUBJECT)
    })
    .await;
    let version = writer.get_folder(&folder).await.unwrap().version;
    writer
        .delete_folder(&folder, Some(version), NOW)
        .await
        .unwrap();
    until("the cascade", || {
        live.entries().credential_count() == 0
            && live.entries().federation_count() == 0
            && live.entries().service_account_count() == 0
    })
    .await;
    assert!(!binds(&live, &federation.issuer, &runner, SUBJECT));
    assert!(
        !may_list_keys(&live, &admin, &admin),
        "the admin's account went with its folder"
    );
    follower.abort();
}

/// A replica that does not follow (its notifications lost, or it was stopped) catches up from
/// the log on its next read, and a replica started later loads everything.
async fn a_replica_that_missed_changes_catches_up_from_the_log(db: &TestDb) {
    let writer = &db.store;
    let (_, folder) = cloud_and_folder(writer, "c").await;
    let runner = account(writer, &folder, "runner").await;
    let live = Live::load(db.reopen().await, defaults()).await.unwrap();
    let before = live.applied();

    let federation = writer
        .create_federation(&new_federation(&folder, "k8s"), NOW)
        .await
        .unwrap()
        .item;
    let mut subjects = Vec::new();
    for i in 0..25 {
        let subject = format!("{SUBJECT}-{i}");
        writer
            .create_federated_credential(&new_credential(&runner, &federation.id, &subject), NOW)
            .await
            .unwrap();
        subjects.push(subject);
    }
    assert!(
        !binds(&live, &federation.issuer, &runner, &subjects[0]),
        "nothing is applied without a read"
    );
    live.catch_up().await.unwrap();
    assert!(live.applied() > before);
    assert_eq!(live.applied(), writer.max_seq().await.unwrap());
    for subject in &subjects {
        assert!(
            binds(&live, &federation.issuer, &runner, subject),
            "{subject}"
        );
    }

    let late = Live::load(db.reopen().await, defaults()).await.unwrap();
    assert_eq!(late.entries().credential_count(), 25);
    assert_eq!(late.applied(), live.applied());
}

/// A folder with the service account "runner" and the federation "k8s": the folder's id, the
/// account's id and the federation.
async fn runner_and_federation(
    writer: &Store,
) -> (String, String, wif_gateway::iam::store::Federation) {
    let (_, folder) = cloud_and_folder(writer, "c").await;
    let runner = account(writer, &folder, "runner").await;
    let federation = writer
        .create_federation(&new_federation(&folder, "k8s"), NOW)
        .await
        .unwrap()
        .item;
    (folder, runner, federation)
}

/// This replica's own writes reach its views as its mutations wrote them, even when the
/// database no longer has them; another replica reads them from the log.
async fn this_replicas_own_changes_are_applied_as_written_without_reading_them_back(db: &TestDb) {
    let writer = &db.store;
    let (_, runner, federation) = runner_and_federation(writer).await;
    // `own` follows the store that writes; `other` is another replica.
    let own = Live::load(writer.clone(), defaults()).await.unwrap();
    let other = Live::load(db.reopen().await, defaults()).await.unwrap();

    let created = writer
        .create_federated_credential(&new_credential(&runner, &federation.id, SUBJECT), NOW)
        .await
        .unwrap();
    // Take the credential and its change out of the database, as if never written: only what
    // the mutation handed over can still show it.
    db.raw_sql(&format!(
        "DELETE FROM federated_credentials WHERE id = '{}'; DELETE FROM changes WHERE seq = {}",
        created.item.id, created.seq.0
    ))
    .await;
    own.caught_up_to(created.seq).await;
    assert_eq!(own.applied(), created.seq);
    assert!(
        binds(&own, &federation.issuer, &runner, SUBJECT),
        "the writer's replica applied the credential as it was written"
    );
    other.catch_up().await.unwrap();
    assert!(
        !binds(&other, &federation.issuer, &runner, SUBJECT),
        "another replica reads the log, which no longer has it"
    );

    // A deletion is handed over too.
    let second = writer
        .create_federated_credential(&new_credential(&runner, &federation.id, "other"), NOW)
        .await
        .unwrap();
    let gone = writer
        .delete_federated_credential(&second.item.id, None, NOW)
        .await
        .unwrap();
    db.raw_sql(&format!(
        "DELETE FROM changes WHERE seq > {}",
        created.seq.0
    ))
    .await;
    own.caught_up_to(gone).await;
    assert_eq!(own.applied(), gone);
    assert!(!binds(&own, &federation.issuer, &runner, "other"));
}

/// A batch of changes that touches no service account, federation or federated credential
/// leaves the published directory layer as it was, uncopied; one that touches it publishes a
/// new layer.
async fn the_directory_layer_is_copied_only_when_a_change_touches_it(db: &TestDb) {
    let writer = &db.store;
    let (folder, runner, federation) = runner_and_federation(writer).await;
    let live = Live::load(db.reopen().await, defaults()).await.unwrap();
    let published = live.entries();

    let before = live.applied();
    writer
        .create_access_binding(
            &new_binding(ResourceKind::ServiceAccount, &runner, "viewer", &runner),
            NOW,
        )
        .await
        .unwrap();
    live.catch_up().await.unwrap();
    assert!(live.applied() > before, "the binding was applied");
    assert!(may_list_keys(&live, &runner, &runner));
    assert!(
        Arc::ptr_eq(&published, &live.entries()),
        "a binding is not in the directory layer: nothing to copy"
    );

    writer
        .create_federated_credential(&new_credential(&runner, &federation.id, SUBJECT), NOW)
        .await
        .unwrap();
    live.catch_up().await.unwrap();
    assert!(
        !Arc::ptr_eq(&published, &live.entries()),
        "a credential is: a new layer is published"
    );
    assert!(binds(&live, &federation.issuer, &runner, SUBJECT));
    assert!(!binds_in(&published, &federation.issuer, &runner, SUBJECT));

    // A service account and a federation are in the layer too.
    let published = live.entries();
    account(writer, &folder, "other").await;
    live.catch_up().await.unwrap();
    assert!(
        !Arc::ptr_eq(&published, &live.entries()),
        "a service account is: a new layer is published"
    );
    assert!(live.entries().service_account_count() > published.service_account_count());
    let published = live.entries();
    writer
        .create_federation(&new_federation(&folder, "ci"), NOW)
        .await
        .unwrap();
    live.catch_up().await.unwrap();
    assert!(
        !Arc::ptr_eq(&published, &live.entries()),
        "a federation is: a new layer is published"
    );
    assert_eq!(
        live.entries().federation_count(),
        published.federation_count() + 1
    );
}

/// A change committed after a replica loaded but before it follows (while it starts serving)
/// is applied on its notification, not left for the next poll: the replica listens before it
/// loads. On PostgreSQL the change comes from another replica; on SQLite, where notifications
/// reach only the store that wrote, from the replica's own store.
async fn a_change_committed_while_a_replica_starts_is_applied_on_its_notification(db: &TestDb) {
    let writer = &db.store;
    let (_, runner, federation) = runner_and_federation(writer).await;
    let store = if db.is_postgres() {
        db.reopen().await
    } else {
        writer.clone()
    };
    let live = Live::load(store, defaults()).await.unwrap();
    let created = writer
        .create_federated_credential(&new_credential(&runner, &federation.id, SUBJECT), NOW)
        .await
        .unwrap();
    assert!(
        live.applied() < created.seq,
        "not applied before it follows"
    );
    let follower = tokio::spawn(live.clone().follow());
    let seen = until("the credential", || {
        binds(&live, &federation.issuer, &runner, SUBJECT)
    })
    .await;
    // Without its notification the change waits for the first poll, a full POLL after the
    // follower starts.
    assert!(
        seen < POLL,
        "applied after {seen:?}: its notification was lost and the poll found it"
    );
    follower.abort();
}

macro_rules! on_both_backends {
    ($($scenario:ident => $on_postgresql:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let db = TestDb::sqlite().await;
                super::$scenario(&db).await;
                db.finish(stringify!($scenario)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $on_postgresql() {
                let Some(db) = TestDb::postgres().await else { return };
                super::$scenario(&db).await;
                db.finish(stringify!($on_postgresql)).await;
            }
        )*
    };
}

mod backends {
    use super::*;

    on_both_backends!(
        another_replica_sees_every_write => another_replica_sees_every_write_on_postgresql,
        a_replica_that_missed_changes_catches_up_from_the_log
            => a_replica_that_missed_changes_catches_up_from_the_log_on_postgresql,
        the_directory_layer_is_copied_only_when_a_change_touches_it
            => the_directory_layer_is_copied_only_when_a_change_touches_it_on_postgresql,
        this_replicas_own_changes_are_applied_as_written_without_reading_them_back
            => this_replicas_own_changes_are_applied_as_written_without_reading_them_back_on_postgresql,
        a_change_committed_while_a_replica_starts_is_applied_on_its_notification
            => a_change_committed_while_a_replica_starts_is_applied_on_its_notification_on_postgresql,
    );
}
