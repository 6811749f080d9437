//! The change log, and the one way the store writes what replicas follow: a [`Mutation`] is a
//! write transaction that changes resources, records a change for each, and commits the
//! changes, the log's counter and the resources together. A new operation, which no replica
//! follows, is one `INSERT` outside it (`Store::create_operation`).
//!
//! Mutations commit one at a time, in sequence order, on both backends: SQLite has one writer,
//! whose `BEGIN IMMEDIATE` holds the database's write lock until `COMMIT`, and the counter is
//! advanced just before it; on PostgreSQL a mutation first locks the counter's row, and the
//! others queue on that lock. So the numbers have no gaps, and a reader that sees change n has
//! seen every change before it: a replica that applies [`changes_since`] its last number
//! misses nothing. The management plane writes rarely, so one writer at a time costs nothing
//! that matters.
//!
//! On PostgreSQL the same transaction sends `NOTIFY wif_changes` with payload
//! `"<seq> <schema>"`; PostgreSQL delivers it at commit, to every store listening on the
//! database (see `Store::subscribe`). On SQLite, the store tells its own subscribers after the
//! commit.

use std::sync::LazyLock;

use crate::iam::ResourceKind;

use super::db::{Db, Statement, Tx};
use super::error::StoreError;
use super::model::{Change, ChangeOp, Record, Seq};

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "wif_changes";

/// The notification payload for `seq` in `schema`.
pub(crate) fn payload(seq: Seq, schema: &str) -> String {
    format!("{seq} {schema}")
}

/// The sequence number in a payload, if it names `schema`.
pub(crate) fn parse_payload(payload: &str, schema: &str) -> Option<Seq> {
    let (seq, from) = payload.split_once(' ')?;
    (from == schema).then_some(())?;
    seq.parse().ok().map(Seq)
}

/// A write transaction in progress. Dropping it rolls everything back.
pub(crate) struct Mutation {
    tx: Tx,
    counter: Counter,
    pending: Vec<(ResourceKind, String, ChangeOp, i64, After)>,
    now: i64,
}

/// How a mutation numbers its changes, by backend.
enum Counter {
    /// Read and advanced at commit: `BEGIN IMMEDIATE` already holds the write lock.
    Sqlite,
    /// Locked at begin, when it stood at `last`; advanced at commit with a notification
    /// naming `schema`.
    Postgres { last: i64, schema: String },
}

/// What a change left of its resource, as far as the mutation knows without reading it back.
enum After {
    /// The record as written.
    Record(Box<Record>),
    /// Nothing: the resource is deleted.
    Gone,
    /// Not known here: a follower reads the record.
    Unknown,
}

/// A committed mutation: the number of its last change, and its changes whose result the
/// mutation knew, in order, each with the record as written (`None`: deleted). A follower in
/// the same process applies these without reading them back (`Store::own_changes_after`).
pub(crate) struct Committed {
    pub(crate) seq: Seq,
    pub(crate) known: Vec<(Change, Option<Record>)>,
}

impl Mutation {
    /// Starts a write transaction. PostgreSQL: locks the change counter first, so that
    /// mutations queue on it and commit in sequence order. SQLite: `BEGIN IMMEDIATE` already
    /// holds the database's one write lock; the counter is read and advanced at commit, in one
    /// statement.
    pub(crate) async fn begin(
        db: &Db,
        now: i64,
        notify_schema: Option<String>,
    ) -> Result<Mutation, StoreError> {
        let mut tx = db.begin().await?;
        let counter = match (&tx, notify_schema) {
            (Tx::Sqlite(_), _) => Counter::Sqlite,
            (Tx::Postgres(_), Some(schema)) => Counter::Postgres {
                last: read_counter(
                    &mut tx,
                    "UPDATE change_counter SET seq = seq WHERE id = 1 RETURNING seq",
                    None,
                )
                .await?,
                schema,
            },
            (Tx::Postgres(_), None) => {
                return Err(StoreError::FailedPrecondition {
                    reason: "a PostgreSQL store names the schema its notifications are for".into(),
                });
            }
        };
        Ok(Mutation {
            tx,
            counter,
            pending: Vec::new(),
            now,
        })
    }

    /// The transaction, for the mutation's own statements.
    pub(crate) fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Records a change, written at commit. A deletion leaves nothing; what another change
    /// left, a follower reads back.
    pub(crate) fn record(&mut self, kind: ResourceKind, id: &str, op: ChangeOp, version: i64) {
        let after = match op {
            ChangeOp::Delete => After::Gone,
            ChangeOp::Create | ChangeOp::Update => After::Unknown,
        };
        self.pending.push((kind, id.to_owned(), op, version, after));
    }

    /// Records the creation of `record`, exactly as this transaction inserted it; written at
    /// commit.
    pub(crate) fn record_created(&mut self, record: Record) {
        let (kind, id, version) = (record.kind(), record.id().to_owned(), record.version());
        self.pending.push((
            kind,
            id,
            ChangeOp::Create,
            version,
            After::Record(Box::new(record)),
        ));
    }

    /// Writes the recorded changes, advances the counter, notifies (PostgreSQL) and commits.
    /// The changes go in multi-row `INSERT`s of up to [`ROWS_PER_INSERT`]; on SQLite the
    /// counter is advanced by their number in one statement that returns where it stood, on
    /// PostgreSQL the last `INSERT`, the counter and the notification are one statement.
    pub(crate) async fn commit(mut self) -> Result<Committed, StoreError> {
        let pending = std::mem::take(&mut self.pending);
        let count = i64::try_from(pending.len()).unwrap_or(i64::MAX);
        let last = match &self.counter {
            Counter::Postgres { last, .. } => *last,
            Counter::Sqlite if pending.is_empty() => {
                read_counter(
                    &mut self.tx,
                    "SELECT seq FROM change_counter WHERE id = 1",
                    None,
                )
                .await?
            }
            Counter::Sqlite => {
                read_counter(
                    &mut self.tx,
                    "UPDATE change_counter SET seq = seq + $1 WHERE id = 1 RETURNING seq",
                    Some(count),
                )
                .await?
                    - count
            }
        };
        let newest = last + count;
        let mut changes = Vec::with_capacity(pending.len());
        let mut afters = Vec::with_capacity(pending.len());
        for (seq, (kind, resource_id, op, version, after)) in (last + 1..).zip(pending) {
            changes.push(Change {
                seq: Seq(seq),
                kind,
                resource_id,
                op,
                version,
                at: self.now,
            });
            afters.push(after);
        }
        let chunks: Vec<&[Change]> = changes.chunks(ROWS_PER_INSERT).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let notify = match &self.counter {
                Counter::Postgres { schema, .. } if i + 1 == chunks.len() => Some(schema),
                _ => None,
            };
            let mut stmt = Statement::new(match notify {
                Some(_) => PG_LAST_INSERTS[chunk.len() - 1].as_str(),
                None => INSERTS[chunk.len() - 1].as_str(),
            });
            for change in *chunk {
                stmt = stmt
                    .bind(change.seq.0)
                    .bind(change.kind.as_str())
                    .bind(change.resource_id.as_str())
                    .bind(change.op.as_str())
                    .bind(change.version)
                    .bind(change.at);
            }
            match notify {
                Some(schema) => {
                    let stmt = stmt
                        .bind(newest)
                        .bind(CHANNEL)
                        .bind(payload(Seq(newest), schema));
                    self.tx
                        .fetch_optional(stmt, "change sequence number")
                        .await?;
                }
                None => {
                    self.tx.execute(stmt, "change sequence number").await?;
                }
            }
        }
        self.tx.commit().await?;
        let known = changes
            .into_iter()
            .zip(afters)
            .filter_map(|(change, after)| match after {
                After::Record(record) => Some((change, Some(*record))),
                After::Gone => Some((change, None)),
                After::Unknown => None,
            })
            .collect();
        Ok(Committed {
            seq: Seq(newest),
            known,
        })
    }
}

/// Runs `sql`, with `arg` as `$1` if given, and returns the counter it answers.
async fn read_counter(tx: &mut Tx, sql: &'static str, arg: Option<i64>) -> Result<i64, StoreError> {
    let mut stmt = Statement::new(sql);
    if let Some(arg) = arg {
        stmt = stmt.bind(arg);
    }
    let row = tx
        .fetch_optional(stmt, "change counter")
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            what: "change counter",
            reason: "the row is missing".into(),
        })?;
    row.int("seq")
}

/// The most changes one `INSERT` writes.
const ROWS_PER_INSERT: usize = 32;

/// `INSERT INTO changes` of 1, 2, … [`ROWS_PER_INSERT`] rows, six arguments a row.
static INSERTS: LazyLock<Vec<String>> =
    LazyLock::new(|| (1..=ROWS_PER_INSERT).map(insert_changes).collect());

/// PostgreSQL: the same, then the counter set to the argument after the rows', and
/// `pg_notify` of the next two (channel, payload): a mutation's last statement before `COMMIT`.
static PG_LAST_INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=ROWS_PER_INSERT)
        .map(|rows| {
            let next = rows * 6;
            format!(
                "WITH inserted AS ({}), advanced AS (UPDATE change_counter SET seq = ${} \
                 WHERE id = 1) SELECT pg_notify(${}, ${})",
                insert_changes(rows),
                next + 1,
                next + 2,
                next + 3
            )
        })
        .collect()
});

fn insert_changes(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let first = row * 6;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${})",
                first + 1,
                first + 2,
                first + 3,
                first + 4,
                first + 5,
                first + 6
            )
        })
        .collect();
    format!(
        "INSERT INTO changes (seq, kind, resource_id, op, version, at) VALUES {}",
        values.join(", ")
    )
}

/// Up to `limit` changes after `after`, oldest first.
pub(crate) async fn changes_since(
    db: &Db,
    after: Seq,
    limit: u32,
) -> Result<Vec<Change>, StoreError> {
    let rows = db
        .fetch_all(
            Statement::new(
                "SELECT seq, kind, resource_id, op, version, at FROM changes \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after.0)
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter()
        .map(|row| {
            let kind = row.text("kind")?;
            let op = row.text("op")?;
            Ok(Change {
                seq: Seq(row.int("seq")?),
                kind: ResourceKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                    what: "change",
                    reason: format!("unknown kind {kind:?}"),
                })?,
                resource_id: row.text("resource_id")?,
                op: ChangeOp::parse(&op).ok_or_else(|| StoreError::Corrupt {
                    what: "change",
                    reason: format!("unknown op {op:?}"),
                })?,
                version: row.int("version")?,
                at: row.int("at")?,
            })
        })
        .collect()
}

/// The number of the last committed change (0 before the first).
pub(crate) async fn max_seq(db: &Db) -> Result<Seq, StoreError> {
    let row = db
        .fetch_optional(Statement::new(
            "SELECT seq FROM change_counter WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            what: "change counter",
            reason: "the row is missing".into(),
        })?;
    Ok(Seq(row.int("seq")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_their_schema() {
        let cases = [
            ("own schema", "42 public", "public", Some(Seq(42))),
            ("other schema", "42 wif_test_a", "public", None),
            ("no schema", "42", "public", None),
            ("not a number", "x public", "public", None),
        ];
        for (name, text, schema, want) in cases {
            assert_eq!(parse_payload(text, schema), want, "{name}");
        }
        assert_eq!(
            parse_payload(&payload(Seq(7), "s"), "s"),
            Some(Seq(7)),
            "round trip"
        );
    }
}
