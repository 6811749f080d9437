//! The change log, and the one way the store writes what replicas follow: a [`Mutation`] is a
//! write transaction that first locks the log's counter row, then changes resources, records a
//! change for each, and commits the changes and the resources together. A new operation, which
//! no replica follows, is one `INSERT` outside it (`Store::create_operation`).
//!
//! Locking the counter first makes mutations commit one at a time, in sequence order, on both
//! backends (SQLite has a single writer anyway; PostgreSQL queues on the row lock). So the
//! numbers have no gaps, and a reader that sees change n has seen every change before it: a
//! replica that applies [`changes_since`] its last number misses nothing. The management plane
//! writes rarely, so one writer at a time costs nothing that matters.
//!
//! On PostgreSQL the same transaction sends `NOTIFY wif_changes` with payload
//! `"<seq> <schema>"`; PostgreSQL delivers it at commit, to every store listening on the
//! database (see `Store::subscribe`). On SQLite, the store tells its own subscribers after the
//! commit.

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
    /// The counter's value when the transaction locked it.
    last: i64,
    pending: Vec<(ResourceKind, String, ChangeOp, i64, After)>,
    now: i64,
    /// PostgreSQL: the schema named in the notification.
    notify_schema: Option<String>,
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
    /// Starts a write transaction and locks the change counter.
    pub(crate) async fn begin(
        db: &Db,
        now: i64,
        notify_schema: Option<String>,
    ) -> Result<Mutation, StoreError> {
        let mut tx = db.begin().await?;
        let row = tx
            .fetch_optional(
                Statement::new("UPDATE change_counter SET seq = seq WHERE id = 1 RETURNING seq"),
                "change counter",
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                what: "change counter",
                reason: "the row is missing".into(),
            })?;
        let last = row.int("seq")?;
        Ok(Mutation {
            tx,
            last,
            pending: Vec::new(),
            now,
            notify_schema,
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
    pub(crate) async fn commit(mut self) -> Result<Committed, StoreError> {
        let mut seq = self.last;
        let mut known = Vec::with_capacity(self.pending.len());
        for (kind, id, op, version, after) in std::mem::take(&mut self.pending) {
            seq += 1;
            self.tx
                .execute(
                    Statement::new(
                        "INSERT INTO changes (seq, kind, resource_id, op, version, at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(seq)
                    .bind(kind.as_str())
                    .bind(&id)
                    .bind(op.as_str())
                    .bind(version)
                    .bind(self.now),
                    "change sequence number",
                )
                .await?;
            let record = match after {
                After::Record(record) => Some(*record),
                After::Gone => None,
                After::Unknown => continue,
            };
            let change = Change {
                seq: Seq(seq),
                kind,
                resource_id: id,
                op,
                version,
                at: self.now,
            };
            known.push((change, record));
        }
        if seq != self.last {
            self.tx
                .execute(
                    Statement::new("UPDATE change_counter SET seq = $1 WHERE id = 1").bind(seq),
                    "change counter",
                )
                .await?;
            if let Some(schema) = &self.notify_schema {
                self.tx
                    .fetch_optional(
                        Statement::new("SELECT pg_notify($1, $2)")
                            .bind(CHANNEL)
                            .bind(payload(Seq(seq), schema)),
                        "notification",
                    )
                    .await?;
            }
        }
        self.tx.commit().await?;
        Ok(Committed {
            seq: Seq(seq),
            known,
        })
    }
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
