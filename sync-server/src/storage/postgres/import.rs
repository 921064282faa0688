//! Moving a city from the embedded store into PostgreSQL: the change log
//! replayed through the same merge, in log order, each change with the time
//! it first reached the center (task answers keep their timeliness); the
//! center's tables copied row by row; then both sides' state digests
//! compared. The target must be empty.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use serde::Serialize;
use tokio_postgres::types::ToSql;

use super::{PgStorage, Tx};
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{Replica, Result, StorageError, invalid};

/// The center's tables, parents before children; `leases` stay behind
/// (a job running at the source is not running at the target).
const TABLES: &[&str] = &[
    "users",
    "devices",
    "tokens",
    "enrolments",
    "console_sessions",
    "audit",
    "photo_bytes",
    "report_skews",
    "photos_lost",
    "surveys",
    "findings",
    "config_versions",
    "assignments",
    "rollups",
    "dirty_days",
    "violations",
    "attempts",
    "trainings",
    "open311_channels",
    "open311_requests",
];

/// Changes replayed per transaction.
const BATCH: usize = 500;

/// What a move did, and whether both sides agree.
#[derive(Clone, Debug, Serialize)]
pub struct MoveSummary {
    pub changes: u64,
    pub buffered: u64,
    /// Rows copied, by table.
    pub rows: BTreeMap<String, u64>,
    pub digest_from: String,
    pub digest_to: String,
    /// The whole digest report (cases, each device's track, change count)
    /// is equal on both sides.
    pub equal: bool,
}

impl PgStorage {
    /// Copies the city held by `from` into this (empty) database.
    pub fn import_city(&self, from: &SqliteStorage) -> Result<MoveSummary> {
        let (users, changes): (i64, i64) = self.read(|tx| {
            let r = tx.query_one(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM changes)",
                &[],
            )?;
            Ok((r.get(0), r.get(1)))
        })?;
        if users > 0 || changes > 0 {
            return Err(invalid(
                "to",
                format!(
                    "the target database already holds a city ({users} users, {changes} changes); give an empty one"
                ),
            ));
        }
        let mut summary = MoveSummary {
            changes: 0,
            buffered: 0,
            rows: BTreeMap::new(),
            digest_from: String::new(),
            digest_to: String::new(),
            equal: false,
        };
        // Reference data first: reports are located with the grid.
        let cells = from.store().cells()?;
        if !cells.is_empty() {
            self.set_grid(cells)?;
        }
        if let Some(catalog) = from.custom_catalog()? {
            self.set_catalog(catalog)?;
        }
        // The center's own tables, in one transaction.
        {
            let src = from.db();
            self.write(|tx| {
                for table in TABLES {
                    let n = copy_table(&src, tx, table)?;
                    summary.rows.insert(table.to_string(), n);
                }
                // Audit numbers continue after the copied ones.
                tx.execute(
                    "SELECT setval(pg_get_serial_sequence('audit', 'seq'), COALESCE(MAX(seq), 0) + 1, false) FROM audit",
                    &[],
                )?;
                Ok(())
            })?;
        }
        // The log, in order, with its receipt times.
        let mut after = 0;
        loop {
            let page = from.store().log_page(after, BATCH)?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            after = *last;
            // One merge per run of changes received at the same time.
            let mut run: Vec<field_core::crdt::Change> = Vec::new();
            let mut run_at = None;
            for (_, received, change) in page {
                let at = received.unwrap_or(0);
                if run_at.is_some_and(|t| t != at) {
                    self.replay(std::mem::take(&mut run), run_at.unwrap_or(0))?;
                }
                run_at = Some(at);
                run.push(change);
                summary.changes += 1;
            }
            self.replay(run, run_at.unwrap_or(0))?;
        }
        let buffered = from.store().buffered_changes()?;
        summary.buffered = buffered.len() as u64;
        if !buffered.is_empty() {
            self.apply(buffered)?;
        }
        let (a, b) = (from.digest()?, self.digest()?);
        summary.equal = a == b;
        summary.digest_from = a.digest;
        summary.digest_to = b.digest;
        Ok(summary)
    }

    /// Replays changes the source had applied: every one must apply here too.
    fn replay(&self, changes: Vec<field_core::crdt::Change>, received_ms: i64) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        for (id, judged) in self.apply_received(changes, received_ms)? {
            use field_core::store::Judgement;
            if !matches!(judged, Judgement::Applied | Judgement::Duplicate) {
                return Err(StorageError::Invalid {
                    field: format!("change {id}"),
                    reason: format!("held by the source but not taken here: {judged:?}"),
                });
            }
        }
        Ok(())
    }
}

/// Copies one table's rows, column by column as the target types them.
fn copy_table(src: &rusqlite::Connection, tx: &Tx<'_>, table: &str) -> Result<u64> {
    let columns: Vec<(String, String)> = tx
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let names = columns
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let placeholders = (1..=columns.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let insert = format!("INSERT INTO {table} ({names}) VALUES ({placeholders})");
    let mut stmt = src.prepare(&format!("SELECT {names} FROM {table}"))?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(columns.len());
        for (i, (name, ty)) in columns.iter().enumerate() {
            let v: Value = row.get(i)?;
            values.push(convert(table, name, ty, v)?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        tx.execute(&insert, &refs)?;
        n += 1;
    }
    Ok(n)
}

/// A SQLite value as the PostgreSQL column's type wants it.
fn convert(table: &str, column: &str, ty: &str, v: Value) -> Result<Box<dyn ToSql + Sync + Send>> {
    let wrong = || {
        invalid(
            &format!("{table}.{column}"),
            format!("cannot be stored as {ty}"),
        )
    };
    Ok(match (ty, v) {
        ("bigint" | "integer", Value::Integer(i)) => Box::new(Some(i)),
        ("bigint" | "integer", Value::Null) => Box::new(None::<i64>),
        ("boolean", Value::Integer(i)) => Box::new(Some(i != 0)),
        ("boolean", Value::Null) => Box::new(None::<bool>),
        ("double precision", Value::Real(f)) => Box::new(Some(f)),
        ("double precision", Value::Integer(i)) => Box::new(Some(i as f64)),
        ("double precision", Value::Null) => Box::new(None::<f64>),
        ("text", Value::Text(s)) => Box::new(Some(s)),
        ("text", Value::Null) => Box::new(None::<String>),
        ("bytea", Value::Blob(b)) => Box::new(Some(b)),
        ("bytea", Value::Null) => Box::new(None::<Vec<u8>>),
        _ => return Err(wrong()),
    })
}
