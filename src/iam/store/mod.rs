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

use std::sync::Arc;

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

    /// Commits a mutation and tells local subscribers (SQLite; PostgreSQL tells everyone
    /// through NOTIFY).
    async fn commit(&self, mutation: log::Mutation) -> Result<Seq, StoreError> {
        let seq = mutation.commit().await?;
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
