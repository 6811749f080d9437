//! Bulk seeding of an IAM store with plain SQL, for load tests and figures: rows go straight
//! into the tables, 1 000 per `INSERT`, all in one transaction, on SQLite or PostgreSQL. Not the
//! store's API: no change-log entries, no operations, so only a replica that starts afterwards
//! (loading the store) sees them.

use sqlx::Executor as _;

/// Rows for one table: `values` yields each row's parenthesised SQL values, e.g.
/// `('id', 'name', 1)`.
pub struct Rows {
    pub table: &'static str,
    pub columns: &'static str,
    pub values: Box<dyn Iterator<Item = anyhow::Result<String>> + Send>,
}

impl Rows {
    pub fn new(
        table: &'static str,
        columns: &'static str,
        values: impl Iterator<Item = anyhow::Result<String>> + Send + 'static,
    ) -> Rows {
        Rows {
            table,
            columns,
            values: Box::new(values),
        }
    }
}

/// The `INSERT` statements for `tables`, in order, 1 000 rows each.
fn statements(tables: Vec<Rows>) -> impl Iterator<Item = anyhow::Result<String>> {
    tables.into_iter().flat_map(|mut rows| {
        std::iter::from_fn(move || {
            let mut values = Vec::with_capacity(1000);
            for value in rows.values.by_ref().take(1000) {
                match value {
                    Ok(value) => values.push(value),
                    Err(e) => return Some(Err(e)),
                }
            }
            (!values.is_empty()).then(|| {
                Ok(format!(
                    "INSERT INTO {} ({}) VALUES {}",
                    rows.table,
                    rows.columns,
                    values.join(", ")
                ))
            })
        })
    })
}

/// In a transaction `$tx`: drops the tables' secondary indexes (those `$list` names: `(name,
/// definition)` for the table `$1`; not the primary keys' and unique constraints'), inserts the
/// rows, and creates the indexes again (sorting once is far quicker than a million random
/// inserts into each). Adds the statements run to `$count`.
macro_rules! load {
    ($tx:expr, $list:literal, $tables:expr, $count:expr) => {{
        let mut indexes: Vec<(String, String)> = Vec::new();
        for rows in &$tables {
            let found: Vec<(String, String)> = sqlx::query_as($list)
                .bind(rows.table)
                .fetch_all(&mut *$tx)
                .await?;
            indexes.extend(found);
        }
        for (name, _) in &indexes {
            $tx.execute(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
                .await?;
        }
        for sql in statements($tables) {
            $tx.execute(sqlx::AssertSqlSafe(sql?)).await?;
            $count += 1;
        }
        for (_, definition) in indexes {
            $tx.execute(sqlx::AssertSqlSafe(definition)).await?;
        }
    }};
}

/// Inserts `tables` into the store at `url` (`sqlite://…` or `postgres://…`; with `schema`, in
/// that PostgreSQL schema) in one transaction. Answers the number of statements run.
pub async fn insert(url: &str, schema: Option<&str>, tables: Vec<Rows>) -> anyhow::Result<usize> {
    let mut count = 0;
    if url.starts_with("sqlite:") {
        // One connection, a page cache large enough for the whole file, no fsync and the
        // rollback journal in memory: the rows are written once, at commit, in page order
        // (the store's connections go back to WAL when they open it).
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        let options = <SqliteConnectOptions as std::str::FromStr>::from_str(url)?
            .journal_mode(SqliteJournalMode::Memory)
            .synchronous(SqliteSynchronous::Off)
            .pragma("cache_size", "-4000000");
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let mut tx = pool.begin().await?;
        load!(
            tx,
            "SELECT name, sql FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
            tables,
            count
        );
        tx.commit().await?;
        pool.close().await;
    } else {
        let names: Vec<String> = tables
            .iter()
            .map(|rows| match schema {
                Some(schema) => format!("{schema}.{}", rows.table),
                None => rows.table.to_owned(),
            })
            .collect();
        let pool = sqlx::PgPool::connect(url).await?;
        let mut tx = pool.begin().await?;
        if let Some(schema) = schema {
            tx.execute(sqlx::AssertSqlSafe(format!(
                "SET LOCAL search_path TO {schema}"
            )))
            .await?;
        }
        load!(
            tx,
            "SELECT indexname::text, indexdef::text FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename = $1 \
             AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            tables,
            count
        );
        tx.commit().await?;
        // Statistics for the planner now, not whenever autovacuum comes: without them the
        // store's queries on the new rows are planned as for empty tables.
        pool.execute(sqlx::AssertSqlSafe(format!("ANALYZE {}", names.join(", "))))
            .await?;
        pool.close().await;
    }
    Ok(count)
}
