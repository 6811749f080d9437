//! The IAM store: clouds, folders, service accounts, federations, federated credentials,
//! authorized keys (public part), API keys (the secret's hash, never the secret), static
//! access keys (the secret sealed), access bindings and operations, kept in SQLite (embedded,
//! the default: nothing to install) or PostgreSQL (when replicas share state).
//!
//! - **One schema** for both, in `migrations/`, embedded in the binary and applied by
//!   [`Store::open`] (and [`Store::migrate`], which is idempotent).
//! - **The database enforces the rules** it can: primary keys, the Yandex uniqueness rules
//!   (a service account's name in its cloud, a federation's name in its folder, a credential's
//!   (account, federation, subject), a binding's (resource, role, subject)), references with
//!   the cascades Yandex has, NOT NULL and cheap CHECKs.
//! - **One transaction per mutation**, which also appends to the change log and returns the
//!   change's sequence number ([`Written::seq`]); every record has a `version`, and updates
//!   take the version the caller read, so a concurrent update is a
//!   [`StoreError::Conflict`], never a lost update.
//! - **Propagation**: [`Store::changes_since`] and [`Store::max_seq`] read the log;
//!   [`Store::subscribe`] tells of new changes as they commit (see there).
//!
//! Per kind there are create, get, list (by parent, id order, pages), update (where the kind
//! is mutable) and delete; they live in the sibling modules, one per part of the hierarchy.
//! [`Store::bootstrap`] fills an empty store with its first cloud, folder, administrator and
//! key in one transaction.
//! Validation of names and lengths is the API layer's; authorization too. Nothing here knows
//! HTTP, and times come from the caller.

mod access_keys;
mod accounts;
mod api_keys;
mod bindings;
mod bootstrap;
mod cascade;
mod codec;
mod db;
mod error;
mod federations;
mod hierarchy;
mod idempotency;
mod log;
mod model;
mod operations;
mod revocations;
mod scan;
mod usage;
mod versions;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

use tokio::sync::{Mutex, broadcast};
use tokio::task::JoinHandle;

pub use db::{Backend, OpenOptions};
pub use error::StoreError;
pub use log::CHANNEL;
pub use model::*;

/// The migrations, compiled into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/iam/store/migrations");

/// How many unread sequence numbers a subscriber may fall behind before it sees `Lagged`.
const SUBSCRIBER_BUFFER: usize = 1024;
/// How many of this process's own changes are kept for its follower (`Store::own_changes_after`);
/// past this, the oldest are dropped and the follower reads them from the log.
const OWN_CHANGES: usize = 1024;

/// A handle on the store. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: db::Db,
    /// PostgreSQL: the schema the tables live in (`current_schema()`), named in notifications.
    pg_schema: Option<String>,
    /// Where subscribers listen. SQLite: fed after each commit. PostgreSQL: fed by the
    /// listener task from `NOTIFY`.
    changes: broadcast::Sender<Seq>,
    /// PostgreSQL: the task that listens, started by the first `subscribe`.
    listener: Mutex<Option<Listener>>,
    /// This process's committed changes not yet taken by a follower, by sequence number.
    own: std::sync::Mutex<BTreeMap<Seq, (Change, Option<Record>)>>,
}

/// The PostgreSQL listener task; stopped when the store goes.
struct Listener(JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.db.backend())
            .field("pg_schema", &self.inner.pg_schema)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `url` and applies pending migrations. `sqlite://PATH?mode=rwc`
    /// creates the file if needed; `postgres://user@host:port/db` uses the server's default
    /// schema. Connection failures answer [`StoreError::Unavailable`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, &OpenOptions::default()).await
    }

    /// [`Store::open`] with options: a PostgreSQL schema of its own, the pool size.
    pub async fn open_with(url: &str, options: &OpenOptions) -> Result<Store, StoreError> {
        let db = db::Db::connect(url, options).await?;
        let pg_schema = match &db {
            db::Db::Postgres { .. } => {
                let row = db
                    .fetch_optional(db::Statement::new("SELECT current_schema() AS schema"))
                    .await?;
                let schema = match row {
                    Some(row) => row.opt_text("schema")?,
                    None => None,
                };
                Some(schema.ok_or_else(|| StoreError::FailedPrecondition {
                    reason: "PostgreSQL has no current schema (check search_path)".into(),
                })?)
            }
            db::Db::Sqlite { .. } => None,
        };
        let (changes, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        let store = Store {
            inner: Arc::new(Inner {
                db,
                pg_schema,
                changes,
                listener: Mutex::new(None),
                own: std::sync::Mutex::new(BTreeMap::new()),
            }),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the embedded migrations that have not run yet; a no-op when all have.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.db.migrate(&MIGRATOR).await
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.inner.db.backend()
    }

    /// Closes the connections and stops the listener. Calls made afterwards, through any
    /// clone, answer [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.inner.listener.lock().await.take();
        self.inner.db.close().await;
    }

    /// Up to `limit` changes after `after`, oldest first. Since mutations commit in sequence
    /// order, a caller that applies these and remembers the last number never misses one.
    pub async fn changes_since(&self, after: Seq, limit: u32) -> Result<Vec<Change>, StoreError> {
        log::changes_since(&self.inner.db, after, limit).await
    }

    /// This process's own changes after `after`, oldest first, each with the record as it
    /// wrote it (`None`: deleted), as far as they follow `after` without a gap; what a
    /// follower at `after` can apply without reading the log. The changes returned, and any
    /// at or before `after`, are forgotten. A change committed by another process, or one
    /// whose record its mutation did not know, ends the run: [`Store::changes_since`] and
    /// [`Store::record`] read it.
    pub fn own_changes_after(&self, after: Seq) -> Vec<(Change, Option<Record>)> {
        let mut own = self
            .inner
            .own
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while own.first_key_value().is_some_and(|(seq, _)| *seq <= after) {
            own.pop_first();
        }
        let mut run = Vec::new();
        let mut next = Seq(after.0 + 1);
        while let Some(entry) = own.remove(&next) {
            run.push(entry);
            next = Seq(next.0 + 1);
        }
        run
    }

    /// The number of the last committed change; `Seq(0)` for an empty store.
    pub async fn max_seq(&self) -> Result<Seq, StoreError> {
        log::max_seq(&self.inner.db).await
    }

    /// Tells of committed changes: each value received is the sequence number of a commit,
    /// i.e. "the log has grown to at least this; read [`Store::changes_since`]".
    ///
    /// - SQLite: this process's own commits, sent right after each commits. (SQLite serves
    ///   one gateway; other processes writing the same file are not seen.)
    /// - PostgreSQL: every commit of every store on the same database and schema, this one's
    ///   included, through `LISTEN wif_changes`, typically within milliseconds. The first
    ///   call connects the listener and returns once it listens.
    ///
    /// Notifications are hints and can be lost: a receiver that falls more than 1024 behind
    /// gets `Lagged`, and PostgreSQL drops notifications while the listener reconnects. The
    /// caller must also poll [`Store::max_seq`] now and then (say, every few seconds) and
    /// treat `Lagged` as "poll now".
    pub async fn subscribe(&self) -> Result<broadcast::Receiver<Seq>, StoreError> {
        if let (Some(pool), Some(schema)) = (self.inner.db.pg_pool(), &self.inner.pg_schema) {
            let mut listener = self.inner.listener.lock().await;
            if listener.as_ref().is_none_or(|l| l.0.is_finished()) {
                let mut pg = sqlx::postgres::PgListener::connect_with(pool).await?;
                pg.listen(log::CHANNEL).await?;
                let sender = self.inner.changes.clone();
                let schema = schema.clone();
                *listener = Some(Listener(tokio::spawn(forward(pg, sender, schema))));
            }
        }
        Ok(self.inner.changes.subscribe())
    }

    /// Starts a mutation at `now`.
    async fn mutation(&self, now: i64) -> Result<log::Mutation, StoreError> {
        log::Mutation::begin(&self.inner.db, now, self.inner.pg_schema.clone()).await
    }

    /// Commits a mutation, keeps the changes whose result it knows for this process's
    /// follower, and tells local subscribers (SQLite; PostgreSQL tells everyone through
    /// NOTIFY).
    async fn commit(&self, mutation: log::Mutation) -> Result<Seq, StoreError> {
        let log::Committed { seq, known } = mutation.commit().await?;
        if !known.is_empty() {
            let mut own = self
                .inner
                .own
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (change, record) in known {
                own.insert(change.seq, (change, record));
            }
            while own.len() > OWN_CHANGES {
                own.pop_first();
            }
        }
        if self.inner.pg_schema.is_none() {
            // No receivers is not an error.
            let _ = self.inner.changes.send(seq);
        }
        Ok(seq)
    }

    fn db(&self) -> &db::Db {
        &self.inner.db
    }
}

/// Forwards `NOTIFY wif_changes` payloads for `schema` to subscribers until the pool closes.
async fn forward(
    mut listener: sqlx::postgres::PgListener,
    sender: broadcast::Sender<Seq>,
    schema: String,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Some(seq) = log::parse_payload(notification.payload(), &schema) {
                    let _ = sender.send(seq);
                }
            }
            // The connection was lost; the next call reconnects and listens again.
            Ok(None) => {}
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => {
                tracing::warn!(error = %err, "IAM change listener: reconnecting in 1 s");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::ResourceKind;

    #[tokio::test]
    async fn a_mutation_hands_its_follower_the_changes_whose_records_it_wrote() {
        let store = Store::open("sqlite::memory:").await.expect("store");
        let other = Store::open("sqlite::memory:").await.expect("store");
        let cloud = store
            .create_cloud(
                &NewCloud {
                    organization_id: "org".into(),
                    name: "c".into(),
                    ..NewCloud::default()
                },
                10,
            )
            .await
            .unwrap();
        let own = store.own_changes_after(Seq(0));
        assert_eq!(own.len(), 1, "{own:?}");
        let (change, record) = &own[0];
        assert_eq!(
            (
                change.seq,
                change.kind,
                change.op,
                change.version,
                change.at
            ),
            (cloud.seq, ResourceKind::Cloud, ChangeOp::Create, 1, 10)
        );
        assert_eq!(change.resource_id, cloud.item.id);
        assert_eq!(record, &Some(Record::Cloud(cloud.item.clone())));
        assert_eq!(
            store
                .record(ResourceKind::Cloud, &cloud.item.id)
                .await
                .unwrap(),
            Some(Record::Cloud(cloud.item.clone())),
            "what it hands over is what the log's reader would read"
        );
        assert!(
            store.own_changes_after(Seq(0)).is_empty(),
            "each change is handed over once"
        );
        assert!(
            other.own_changes_after(Seq(0)).is_empty(),
            "another store has none"
        );

        let folder = store
            .create_folder(
                &NewFolder {
                    cloud_id: cloud.item.id.clone(),
                    name: "f".into(),
                    ..NewFolder::default()
                },
                11,
            )
            .await
            .unwrap();
        let renamed = store
            .update_folder(
                &folder.item.id,
                1,
                &FolderUpdate {
                    name: "g".into(),
                    description: String::new(),
                    labels: Labels::default(),
                },
                12,
            )
            .await
            .unwrap();
        let account = store
            .create_service_account(
                &NewServiceAccount {
                    folder_id: folder.item.id.clone(),
                    name: "sa".into(),
                    ..NewServiceAccount::default()
                },
                13,
            )
            .await
            .unwrap();
        let deleted = store
            .delete_service_account(&account.item.id, None, 14)
            .await
            .unwrap();
        let seqs = |run: &[(Change, Option<Record>)]| -> Vec<Seq> {
            run.iter().map(|(change, _)| change.seq).collect()
        };
        let run = store.own_changes_after(cloud.seq);
        assert_eq!(
            seqs(&run),
            [folder.seq],
            "an update's record is read back: the run stops before it"
        );
        assert_eq!(run[0].1, Some(Record::Folder(folder.item.clone())));
        assert!(
            store.own_changes_after(folder.seq).is_empty(),
            "nothing follows the update without a gap"
        );
        let run = store.own_changes_after(renamed.seq);
        assert_eq!(seqs(&run), [account.seq, deleted]);
        assert_eq!(run[0].1, Some(Record::ServiceAccount(account.item.clone())));
        assert_eq!(
            (run[1].0.op, run[1].1.clone()),
            (ChangeOp::Delete, None),
            "a deletion leaves nothing"
        );

        // Changes at or before the follower's position are dropped unasked.
        store
            .create_service_account(
                &NewServiceAccount {
                    folder_id: folder.item.id.clone(),
                    name: "sa2".into(),
                    ..NewServiceAccount::default()
                },
                15,
            )
            .await
            .unwrap();
        assert!(store.own_changes_after(Seq(deleted.0 + 1)).is_empty());
        assert!(store.own_changes_after(deleted).is_empty());
    }

    #[tokio::test]
    async fn the_oldest_changes_not_taken_are_dropped_past_the_limit() {
        let store = Store::open("sqlite::memory:").await.expect("store");
        let mut last = Seq(0);
        for i in 0..OWN_CHANGES + 2 {
            last = store
                .create_cloud(
                    &NewCloud {
                        organization_id: "org".into(),
                        name: format!("c{i}"),
                        ..NewCloud::default()
                    },
                    0,
                )
                .await
                .unwrap()
                .seq;
        }
        assert_eq!(last, Seq(OWN_CHANGES as i64 + 2));
        assert!(
            store.own_changes_after(Seq(0)).is_empty(),
            "the first two were dropped: a follower reads them from the log"
        );
        let run = store.own_changes_after(Seq(2));
        assert_eq!(run.len(), OWN_CHANGES);
        assert_eq!(run.first().map(|(c, _)| c.seq), Some(Seq(3)));
        assert_eq!(run.last().map(|(c, _)| c.seq), Some(last));
    }
}
