//! The two backends behind one small interface. The store's SQL is one text for both (numbered
//! `$n` parameters, which SQLite accepts too); what differs is the connection setup, the
//! driver types of arguments and rows, and how a write transaction starts. [`Statement`]
//! carries the SQL with backend-neutral [`Arg`]s, [`Row`] reads a result row of either
//! backend, [`Tx`] is a write transaction and [`Db`] the pools.
//!
//! SQLite: one writer connection (`BEGIN IMMEDIATE`, so a write never fails half-way with
//! SQLITE_BUSY), a few reader connections, WAL journal (readers never wait for the writer),
//! `synchronous=FULL` (a commit is on disk when it returns), foreign keys on, and a busy
//! timeout for other processes on the same file. An in-memory database is one connection.
//!
//! PostgreSQL: one pool; an optional schema becomes the connections' `search_path`, and is
//! created if missing.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Postgres, Row as _, Transaction};

use super::error::{StoreError, classify};

/// How long SQLite waits for a lock held by another process before answering busy.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite reader connections (reads run beside the one writer in WAL mode).
const SQLITE_READERS: u32 = 4;
/// Rows a SQLite connection's thread hands over at a time: the default (50) has the reading
/// thread and the connection's thread take turns every 50 rows, which dominates reading a
/// whole table at start.
const SQLITE_ROW_CHANNEL: usize = 4096;
/// How long a call waits for a free connection before answering UNAVAILABLE.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// A PostgreSQL connection idle for longer than this is pinged before it is handed out (one
/// round trip), so that one dropped while idle (a server restart, a proxy's idle timeout) is
/// replaced rather than failing a call. A connection in steady use is handed out as it is: a
/// ping on every hand-out was one extra round trip per statement. SQLite's connections are
/// threads in this process over a local file and are handed out without a ping.
const PG_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a store, besides its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// PostgreSQL only: keep the tables in this schema (created if missing) instead of the
    /// server's default `search_path`. Letters, digits and `_`, starting with a letter or `_`,
    /// at most 63 characters. Lets several stores share a database, e.g. one per test run.
    pub pg_schema: Option<String>,
    /// PostgreSQL pool size.
    pub pg_max_connections: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            pg_schema: None,
            pg_max_connections: 8,
        }
    }
}

/// A bind value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

/// SQL with its arguments, in `$1`, `$2`, … order.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    sql: &'static str,
    args: Vec<Arg>,
}

impl Statement {
    pub(crate) fn new(sql: &'static str) -> Statement {
        Statement {
            sql,
            args: Vec::new(),
        }
    }

    pub(crate) fn bind(mut self, arg: impl Into<Arg>) -> Statement {
        self.args.push(arg.into());
        self
    }
}

/// The driver query for `$stmt`, with its arguments bound; the same code for both backends.
macro_rules! bound {
    ($stmt:expr) => {{
        let stmt: &Statement = $stmt;
        let mut query = sqlx::query(stmt.sql);
        for arg in &stmt.args {
            query = match arg {
                Arg::Text(v) => query.bind(v.as_str()),
                Arg::OptText(v) => query.bind(v.as_deref()),
                Arg::Int(v) => query.bind(*v),
                Arg::OptInt(v) => query.bind(*v),
                Arg::Bool(v) => query.bind(*v),
            };
        }
        query
    }};
}

/// A result row of either backend.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    pub(crate) fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get(column)?,
            Row::Postgres(r) => r.try_get(column)?,
        })
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get(column)?,
            Row::Postgres(r) => r.try_get(column)?,
        })
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get(column)?,
            Row::Postgres(r) => r.try_get(column)?,
        })
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get(column)?,
            Row::Postgres(r) => r.try_get(column)?,
        })
    }

    pub(crate) fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(match self {
            Row::Sqlite(r) => r.try_get(column)?,
            Row::Postgres(r) => r.try_get(column)?,
        })
    }
}

/// What decoding a record reads of a row: a result row ([`Row`]), or one row of a page read as
/// a single JSON value ([`JsonRow`]).
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
}

impl Columns for Row {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        Row::text(self, column)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        Row::opt_text(self, column)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Row::int(self, column)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        Row::opt_int(self, column)
    }

    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Row::flag(self, column)
    }
}

/// One row of a page that the database returned as one JSON array of arrays (SQLite's
/// `json_group_array(json_array(…))`, PostgreSQL's `json_agg(json_build_array(…))`): the
/// values in the order of `names`. Reading a whole table this way hands one value per page
/// between the database driver and the caller instead of one per column of every row.
pub(crate) struct JsonRow<'a> {
    pub(crate) names: &'a [&'a str],
    pub(crate) values: Vec<serde_json::Value>,
}

impl JsonRow<'_> {
    fn value(&self, column: &str) -> Result<&serde_json::Value, StoreError> {
        self.names
            .iter()
            .position(|name| *name == column)
            .and_then(|at| self.values.get(at))
            .ok_or_else(|| StoreError::Corrupt {
                what: "page",
                reason: format!("no column {column}"),
            })
    }

    fn wrong(column: &str, wanted: &str) -> StoreError {
        StoreError::Corrupt {
            what: "page",
            reason: format!("column {column} is not {wanted}"),
        }
    }
}

impl Columns for JsonRow<'_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.opt_text(column)?
            .ok_or_else(|| Self::wrong(column, "text"))
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.value(column)? {
            serde_json::Value::String(text) => Ok(Some(text.clone())),
            serde_json::Value::Null => Ok(None),
            _ => Err(Self::wrong(column, "text")),
        }
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.opt_int(column)?
            .ok_or_else(|| Self::wrong(column, "an integer"))
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self.value(column)? {
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| Self::wrong(column, "an integer")),
            serde_json::Value::Null => Ok(None),
            _ => Err(Self::wrong(column, "an integer")),
        }
    }

    /// PostgreSQL's booleans are JSON booleans; SQLite's are the integers 0 and 1.
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        match self.value(column)? {
            serde_json::Value::Bool(b) => Ok(*b),
            serde_json::Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
            serde_json::Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
            _ => Err(Self::wrong(column, "a boolean")),
        }
    }
}

/// The rows of a page read as one JSON array of arrays, each with the values of `names`.
pub(crate) fn json_rows(page: &str) -> Result<Vec<Vec<serde_json::Value>>, StoreError> {
    serde_json::from_str(page).map_err(|e| StoreError::Corrupt {
        what: "page",
        reason: e.to_string(),
    })
}

/// One row read as one JSON array (`json_build_array(…)`): the values of a [`JsonRow`].
pub(crate) fn json_row(row: &str) -> Result<Vec<serde_json::Value>, StoreError> {
    serde_json::from_str(row).map_err(|e| StoreError::Corrupt {
        what: "row",
        reason: e.to_string(),
    })
}

/// What opens COPY's binary format, before its flags (4 bytes) and the length of its header
/// extension (4 bytes).
const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The rows of a one-column `COPY … TO STDOUT WITH (FORMAT binary)` of text, read from the
/// chunks the server sends, which may hold part of a row or several. The binary format has
/// nothing to unescape: each row is its length and the bytes as stored.
#[derive(Debug, Default)]
pub(crate) struct CopyTexts {
    /// Received and not yet read: at most one incomplete row (or the header).
    buffer: Vec<u8>,
    header: bool,
    trailer: bool,
}

impl CopyTexts {
    /// Takes the next chunk and hands `each` the text of every row it completes.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        each: &mut dyn FnMut(&str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.buffer.extend_from_slice(chunk);
        let CopyTexts {
            buffer,
            header,
            trailer,
        } = self;
        let mut at = 0;
        let read = copy_rows(buffer, &mut at, header, trailer, each);
        buffer.drain(..at);
        read
    }

    /// `Ok` if the stream ended with its trailer and nothing after it.
    pub(crate) fn finish(&self) -> Result<(), StoreError> {
        if self.trailer && self.buffer.is_empty() {
            Ok(())
        } else {
            Err(copy_corrupt("the stream ended before its trailer"))
        }
    }
}

/// Reads what `buffer` holds complete from `at`, which it advances past what it read.
fn copy_rows(
    buffer: &[u8],
    at: &mut usize,
    header: &mut bool,
    trailer: &mut bool,
    each: &mut dyn FnMut(&str) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    if !*header {
        let Some(extension) = buffer.get(15..19) else {
            return Ok(());
        };
        if !buffer.starts_with(COPY_SIGNATURE) {
            return Err(copy_corrupt("not COPY's binary format"));
        }
        let extension =
            u32::from_be_bytes([extension[0], extension[1], extension[2], extension[3]]);
        let end = 19 + extension as usize;
        if buffer.len() < end {
            return Ok(());
        }
        *at = end;
        *header = true;
    }
    loop {
        let rest = &buffer[*at..];
        if rest.is_empty() {
            return Ok(());
        }
        if *trailer {
            return Err(copy_corrupt("data after the trailer"));
        }
        let [a, b, ..] = *rest else {
            return Ok(());
        };
        match i16::from_be_bytes([a, b]) {
            -1 => {
                *trailer = true;
                *at += 2;
                continue;
            }
            1 => {}
            n => return Err(copy_corrupt(&format!("a row of {n} columns, not 1"))),
        }
        let Some(&[a, b, c, d]) = rest.get(2..6) else {
            return Ok(());
        };
        let Ok(len) = usize::try_from(i32::from_be_bytes([a, b, c, d])) else {
            return Err(copy_corrupt("a NULL row"));
        };
        let Some(bytes) = rest.get(6..6 + len) else {
            return Ok(());
        };
        let text = std::str::from_utf8(bytes).map_err(|_| copy_corrupt("a row is not UTF-8"))?;
        each(text)?;
        *at += 6 + len;
    }
}

fn copy_corrupt(reason: &str) -> StoreError {
    StoreError::Corrupt {
        what: "COPY stream",
        reason: reason.to_owned(),
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls it back.
pub(crate) enum Tx {
    Sqlite(SqliteTx),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Runs a statement; the number of rows it changed. `unique` names what a unique
    /// violation means for this statement.
    pub(crate) async fn execute(
        &mut self,
        stmt: Statement,
        unique: &'static str,
    ) -> Result<u64, StoreError> {
        let done = match self {
            Tx::Sqlite(tx) => bound!(&stmt)
                .execute(tx.conn()?)
                .await
                .map(|r| r.rows_affected()),
            Tx::Postgres(tx) => bound!(&stmt)
                .execute(&mut **tx)
                .await
                .map(|r| r.rows_affected()),
        };
        done.map_err(|e| classify(e, unique))
    }

    /// Runs a statement that returns at most one row (`RETURNING`, a lookup by key).
    pub(crate) async fn fetch_optional(
        &mut self,
        stmt: Statement,
        unique: &'static str,
    ) -> Result<Option<Row>, StoreError> {
        let row = match self {
            Tx::Sqlite(tx) => bound!(&stmt)
                .fetch_optional(tx.conn()?)
                .await
                .map(|r| r.map(Row::Sqlite)),
            Tx::Postgres(tx) => bound!(&stmt)
                .fetch_optional(&mut **tx)
                .await
                .map(|r| r.map(Row::Postgres)),
        };
        row.map_err(|e| classify(e, unique))
    }

    pub(crate) async fn fetch_all(&mut self, stmt: Statement) -> Result<Vec<Row>, StoreError> {
        Ok(match self {
            Tx::Sqlite(tx) => bound!(&stmt)
                .fetch_all(tx.conn()?)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Tx::Postgres(tx) => bound!(&stmt)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(mut tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// SQLite's one writer connection, held by the store rather than pooled: a pool pings each
/// connection it takes back (sqlx does, whatever the pool's options), one more round trip to
/// the connection's thread after every transaction. Calls queue on the lock, as they queued
/// for the pool's one connection, and wait at most [`ACQUIRE_TIMEOUT`].
#[derive(Clone)]
pub(crate) struct Writer(Arc<tokio::sync::Mutex<Held>>);

/// The writer connection and what a dropped transaction left of it.
struct Held {
    /// `None` once the store is closed.
    conn: Option<SqliteConnection>,
    /// A transaction was begun and neither committed nor rolled back: its [`SqliteTx`] was
    /// dropped (a cancelled call) where no task could be started to roll it back.
    open: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Held {
    fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::from(sqlx::Error::PoolClosed))
    }

    /// Rolls back the transaction a dropped [`SqliteTx`] left open. Failing that (there was
    /// none: SQLite ended it on an error), the connection is as it should be.
    async fn settle(&mut self) {
        if self.open {
            if let Some(conn) = self.conn.as_mut() {
                let _ = sqlx::query("ROLLBACK").execute(conn).await;
            }
            self.open = false;
        }
    }
}

impl Writer {
    fn new(conn: SqliteConnection) -> Writer {
        Writer(Arc::new(tokio::sync::Mutex::new(Held {
            conn: Some(conn),
            open: false,
        })))
    }

    /// The connection, once every call before this one is done with it.
    async fn acquire(&self) -> Result<tokio::sync::OwnedMutexGuard<Held>, StoreError> {
        let mut held = tokio::time::timeout(ACQUIRE_TIMEOUT, self.0.clone().lock_owned())
            .await
            .map_err(|_| StoreError::from(sqlx::Error::PoolTimedOut))?;
        held.conn()?;
        held.settle().await;
        Ok(held)
    }

    /// Starts a write transaction with `BEGIN IMMEDIATE`: it takes the database's write lock
    /// at once, so it never fails half-way with SQLITE_BUSY.
    async fn begin(&self) -> Result<SqliteTx, StoreError> {
        let mut held = self.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(held.conn()?).await?;
        held.open = true;
        Ok(SqliteTx { held: Some(held) })
    }

    async fn close(&self) {
        let mut held = self.0.lock().await;
        held.settle().await;
        if let Some(conn) = held.conn.take() {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// A transaction on the SQLite writer. Dropped without [`SqliteTx::commit`], it is rolled
/// back by a task started there, or else by the next call that takes the writer.
pub(crate) struct SqliteTx {
    held: Option<tokio::sync::OwnedMutexGuard<Held>>,
}

impl SqliteTx {
    fn conn(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        self.held
            .as_mut()
            .ok_or_else(|| StoreError::from(sqlx::Error::PoolClosed))?
            .conn()
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        sqlx::query("COMMIT").execute(self.conn()?).await?;
        if let Some(held) = self.held.as_mut() {
            held.open = false;
        }
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        if !held.open {
            return;
        }
        // The lock goes with the task, so no call takes the writer before the rollback.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { held.settle().await });
        }
    }
}

/// The connection pools.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite {
        /// One connection: SQLite has one writer at a time, and queueing here rather than
        /// in the file lock means no write ever fails with SQLITE_BUSY.
        writer: Writer,
        /// Reads in WAL mode see the last commit and never block the writer. `None` for an
        /// in-memory database, whose one connection is the writer's: reads take it.
        reader: Option<SqlitePool>,
    },
    Postgres {
        pool: PgPool,
    },
}

impl Db {
    /// Connects to `url`: `sqlite://PATH?mode=rwc` (or `sqlite::memory:`) or
    /// `postgres://…` / `postgresql://…`.
    pub(crate) async fn connect(url: &str, options: &OpenOptions) -> Result<Db, StoreError> {
        let scheme = url.split_once(':').map_or(url, |(s, _)| s);
        match scheme {
            "sqlite" => Db::connect_sqlite(url).await,
            "postgres" | "postgresql" => Db::connect_postgres(url, options).await,
            other => Err(StoreError::UnsupportedUrl {
                scheme: other.chars().take(32).collect(),
            }),
        }
    }

    async fn connect_sqlite(url: &str) -> Result<Db, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidArgument {
                reason: format!("SQLite URL: {e}"),
            })?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .row_buffer_size(SQLITE_ROW_CHANNEL)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = Writer::new(sqlx::ConnectOptions::connect(&options).await?);
        let reader = if in_memory {
            // Another connection would open another, empty database.
            None
        } else {
            Some(
                SqlitePoolOptions::new()
                    .max_connections(SQLITE_READERS)
                    .test_before_acquire(false)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?,
            )
        };
        Ok(Db::Sqlite { writer, reader })
    }

    async fn connect_postgres(url: &str, options: &OpenOptions) -> Result<Db, StoreError> {
        let mut connect =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidArgument {
                reason: format!("PostgreSQL URL: {e}"),
            })?;
        if let Some(schema) = &options.pg_schema {
            if !is_plain_identifier(schema) {
                return Err(StoreError::InvalidArgument {
                    reason: format!("schema name {schema:?} is not a plain identifier"),
                });
            }
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.pg_max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PG_PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect)
            .await?;
        if let Some(schema) = &options.pg_schema {
            // The name was checked above: quoting it is enough.
            let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await?;
        }
        Ok(Db::Postgres { pool })
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations that have not run yet.
    pub(crate) async fn migrate(
        &self,
        migrator: &sqlx::migrate::Migrator,
    ) -> Result<(), StoreError> {
        match self {
            Db::Sqlite { writer, .. } => {
                let mut held = writer.acquire().await?;
                migrator.run(held.conn()?).await?;
            }
            Db::Postgres { pool } => migrator.run(pool).await?,
        }
        Ok(())
    }

    /// Starts a write transaction.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite { writer, .. } => Tx::Sqlite(writer.begin().await?),
            Db::Postgres { pool } => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Runs one write statement in a transaction of its own, outside the change log (see
    /// `Store::create_operation`); the number of rows it changed. `unique` names what a unique
    /// violation means for this statement.
    pub(crate) async fn execute(
        &self,
        stmt: Statement,
        unique: &'static str,
    ) -> Result<u64, StoreError> {
        let done = match self {
            Db::Sqlite { writer, .. } => {
                let mut held = writer.acquire().await?;
                bound!(&stmt)
                    .execute(held.conn()?)
                    .await
                    .map(|r| r.rows_affected())
            }
            Db::Postgres { pool } => bound!(&stmt).execute(pool).await.map(|r| r.rows_affected()),
        };
        done.map_err(|e| classify(e, unique))
    }

    /// Runs a read that returns at most one row.
    pub(crate) async fn fetch_optional(&self, stmt: Statement) -> Result<Option<Row>, StoreError> {
        Ok(match self {
            Db::Sqlite {
                reader: Some(reader),
                ..
            } => bound!(&stmt).fetch_optional(reader).await?.map(Row::Sqlite),
            Db::Sqlite { writer, .. } => {
                let mut held = writer.acquire().await?;
                bound!(&stmt)
                    .fetch_optional(held.conn()?)
                    .await?
                    .map(Row::Sqlite)
            }
            Db::Postgres { pool } => bound!(&stmt).fetch_optional(pool).await?.map(Row::Postgres),
        })
    }

    /// Runs a read.
    pub(crate) async fn fetch_all(&self, stmt: Statement) -> Result<Vec<Row>, StoreError> {
        Ok(match self {
            Db::Sqlite {
                reader: Some(reader),
                ..
            } => bound!(&stmt)
                .fetch_all(reader)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Db::Sqlite { writer, .. } => {
                let mut held = writer.acquire().await?;
                bound!(&stmt)
                    .fetch_all(held.conn()?)
                    .await?
                    .into_iter()
                    .map(Row::Sqlite)
                    .collect()
            }
            Db::Postgres { pool } => bound!(&stmt)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    /// PostgreSQL: runs `copy`, a `COPY (SELECT <one text column> …) TO STDOUT WITH (FORMAT
    /// binary)`, and hands `each` every row's text as it arrives. One statement is one
    /// snapshot: each row committed before it is read once, in the table's physical order,
    /// with no index walk and no sort. SQLite has no COPY: an error.
    pub(crate) async fn copy_texts(
        &self,
        copy: &'static str,
        each: &mut (dyn FnMut(&str) -> Result<(), StoreError> + Send),
    ) -> Result<(), StoreError> {
        let Db::Postgres { pool } = self else {
            return Err(StoreError::InvalidArgument {
                reason: "COPY is PostgreSQL's".to_owned(),
            });
        };
        let mut conn = pool.acquire().await?;
        let read = async {
            let mut stream = conn.copy_out_raw(copy).await?;
            let mut rows = CopyTexts::default();
            while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                rows.feed(&chunk?, each)?;
            }
            rows.finish()
        }
        .await;
        if read.is_err() {
            // The rest of the stream may still be on its way: this connection is not reused.
            conn.close_on_drop();
        }
        read
    }

    /// The PostgreSQL pool, for the change listener.
    pub(crate) fn pg_pool(&self) -> Option<&PgPool> {
        match self {
            Db::Postgres { pool } => Some(pool),
            Db::Sqlite { .. } => None,
        }
    }

    /// Closes every connection; later calls answer UNAVAILABLE.
    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite { writer, reader } => {
                writer.close().await;
                if let Some(reader) = reader {
                    reader.close().await;
                }
            }
            Db::Postgres { pool } => pool.close().await,
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_]{0,62}`: a schema name that needs no escaping.
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn values(db: &Db) -> Vec<i64> {
        let rows = db
            .fetch_all(Statement::new("SELECT v FROM t ORDER BY v"))
            .await
            .unwrap();
        rows.iter().map(|r| r.int("v").unwrap()).collect()
    }

    #[tokio::test]
    async fn a_dropped_sqlite_transaction_is_rolled_back_before_the_writer_serves_again() {
        let dir = tempfile::tempdir().unwrap();
        for url in [
            format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
            "sqlite::memory:".to_owned(),
        ] {
            let db = Db::connect(&url, &OpenOptions::default()).await.unwrap();
            db.execute(Statement::new("CREATE TABLE t (v INTEGER)"), "t")
                .await
                .unwrap();
            // Dropped where a task can roll it back.
            let mut tx = db.begin().await.unwrap();
            tx.execute(Statement::new("INSERT INTO t VALUES (1)"), "t")
                .await
                .unwrap();
            drop(tx);
            assert_eq!(values(&db).await, Vec::<i64>::new(), "{url}");
            // Dropped with no task to roll it back: the next call that takes the writer does.
            let mut tx = db.begin().await.unwrap();
            tx.execute(Statement::new("INSERT INTO t VALUES (2)"), "t")
                .await
                .unwrap();
            let Tx::Sqlite(mut sqlite) = tx else {
                panic!("a SQLite transaction")
            };
            drop(sqlite.held.take());
            drop(sqlite);
            let mut tx = db.begin().await.expect("the writer is usable again");
            tx.execute(Statement::new("INSERT INTO t VALUES (3)"), "t")
                .await
                .unwrap();
            tx.commit().await.unwrap();
            db.execute(Statement::new("INSERT INTO t VALUES (4)"), "t")
                .await
                .unwrap();
            assert_eq!(values(&db).await, vec![3, 4], "{url}");

            db.close().await;
            let Err(StoreError::Unavailable { .. }) = db.begin().await else {
                panic!("{url}: a closed store is unavailable");
            };
        }
    }

    #[test]
    fn a_json_page_row_reads_both_backends_values_and_refuses_others() {
        let names = ["id", "n", "missing", "enabled", "on"];
        let rows = json_rows(r#"[["a\u0000b", 7, null, 1, true], [1, "x", 2, 2, "t"]]"#).unwrap();
        let mut rows = rows.into_iter().map(|values| JsonRow {
            names: &names,
            values,
        });
        let good = rows.next().unwrap();
        assert_eq!(good.text("id").unwrap(), "a\0b");
        assert_eq!(good.int("n").unwrap(), 7);
        assert_eq!(good.opt_int("missing").unwrap(), None);
        assert_eq!(good.opt_text("missing").unwrap(), None);
        assert!(good.flag("enabled").unwrap());
        assert!(good.flag("on").unwrap());
        assert!(good.text("missing").is_err());
        assert!(good.int("missing").is_err());
        assert!(good.text("nope").is_err());
        let bad = rows.next().unwrap();
        assert!(bad.text("id").is_err());
        assert!(bad.int("n").is_err());
        assert!(bad.flag("enabled").is_err());
        assert!(bad.flag("on").is_err());
        assert!(bad.flag("missing").is_err());
        assert!(json_rows("[[1,").is_err());
        assert!(json_rows("{}").is_err());
    }

    /// A one-column binary COPY stream of `rows`, with a header extension of `extension` bytes.
    fn copy_stream(rows: &[Option<&[u8]>], extension: usize) -> Vec<u8> {
        let mut out = COPY_SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&(extension as u32).to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, extension));
        for row in rows {
            out.extend_from_slice(&1i16.to_be_bytes());
            match row {
                Some(bytes) => {
                    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                    out.extend_from_slice(bytes);
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    /// Feeds `stream` in chunks of `size` bytes: the rows read, or the first error.
    fn read_copy(stream: &[u8], size: usize) -> Result<Vec<String>, StoreError> {
        let mut rows = CopyTexts::default();
        let mut read = Vec::new();
        for chunk in stream.chunks(size) {
            rows.feed(chunk, &mut |text| {
                read.push(text.to_owned());
                Ok(())
            })?;
        }
        rows.finish()?;
        Ok(read)
    }

    #[test]
    fn a_binary_copy_stream_is_read_row_by_row_however_it_is_cut() {
        let rows: [&[u8]; 4] = [
            b"[\"a\\tb\", 1]",
            b"",
            "[\"ключ\"]".as_bytes(),
            &[b'x'; 300],
        ];
        let want: Vec<String> = rows
            .iter()
            .map(|r| String::from_utf8(r.to_vec()).unwrap())
            .collect();
        for extension in [0, 5] {
            let stream = copy_stream(&rows.map(Some), extension);
            for size in [1, 2, 3, 7, 19, 64, stream.len()] {
                assert_eq!(read_copy(&stream, size).unwrap(), want, "chunks of {size}");
            }
        }
        assert!(read_copy(&copy_stream(&[], 0), 4).unwrap().is_empty());
    }

    #[test]
    fn a_binary_copy_stream_that_is_not_one_text_column_is_refused() {
        let good = copy_stream(&[Some(b"[1]")], 0);
        let refused = |stream: &[u8], why: &str| {
            for size in [1, stream.len().max(1)] {
                let err = read_copy(stream, size).expect_err(why);
                assert!(
                    matches!(
                        err,
                        StoreError::Corrupt {
                            what: "COPY stream",
                            ..
                        }
                    ),
                    "{why}: {err:?}"
                );
            }
        };
        let mut signature = good.clone();
        signature[0] = b'Q';
        refused(&signature, "another signature");
        refused(&copy_stream(&[None], 0), "a NULL row");
        let mut two = good.clone();
        two[20] = 2;
        refused(&two, "two columns");
        refused(&copy_stream(&[Some(&[0xff, 0xfe])], 0), "not UTF-8");
        let mut after = good.clone();
        after.push(0);
        refused(&after, "a byte after the trailer");
        refused(&good[..good.len() - 2], "no trailer");
        refused(&good[..good.len() - 4], "a row cut short");
        refused(&good[..10], "a header cut short");
        refused(&[], "nothing");
        let mut calls = 0;
        let err = CopyTexts::default()
            .feed(&good, &mut |_| {
                calls += 1;
                Err(copy_corrupt("refused by the reader"))
            })
            .unwrap_err();
        assert_eq!(calls, 1);
        assert!(err.to_string().contains("refused by the reader"), "{err}");
    }

    #[test]
    fn schema_names_that_need_no_quoting() {
        let cases = [
            ("test schema", "wif_test_ab12", true),
            ("leading underscore", "_x", true),
            ("empty", "", false),
            ("leading digit", "1abc", false),
            ("quote", "a\"b", false),
            ("dot", "a.b", false),
            ("space", "a b", false),
            ("64 characters", &"a".repeat(64), false),
        ];
        for (name, input, want) in cases {
            assert_eq!(is_plain_identifier(input), want, "{name}");
        }
    }
}
