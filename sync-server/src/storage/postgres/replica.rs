//! The replica on PostgreSQL: changes merged by field-core's `Applier`
//! through [`PgRows`], and the queries the center and devices read, from
//! the same projections the embedded backend keeps.

use std::collections::BTreeMap;

use field_core::crdt::{CaseState, CaseView, Change, ChangeId, Hlc, HlcGenerator, Op, TaskState};
use field_core::geo::CellIndex;
use field_core::model::{ActorId, CaseId, Catalog, Cell, LonLat, PhotoHash};
use field_core::model::{ShiftMark, TaskSpec, Timestamp, TrackGap, TrackPoint};
use field_core::store::{
    Applier, CasePage, CaseQuery, Decision, DigestReport, HistoryEntry, Judgement, PullPage,
    TaskRow,
};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::rows::PgRows;
use super::{PgStorage, Tx, actor_of};
use crate::storage::{Replica, ReportClock, Result, StorageError};

/// The grid an instance holds in memory, with the version it was read at:
/// checked against the database's on every use, so an instance never
/// locates with a grid another instance has replaced.
#[derive(Clone)]
pub(super) struct GridCache {
    version: String,
    index: std::sync::Arc<CellIndex>,
    geojson: std::sync::Arc<serde_json::Value>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Core(field_core::Error::Corrupt(format!("{what}: {e}")))
}

fn case_id(text: &str) -> Result<CaseId> {
    CaseId::parse("case", text).map_err(|e| corrupt("case id", e))
}

fn view_of(row: &Row) -> Result<CaseView> {
    let id = case_id(row.get::<_, &str>(0))?;
    Ok(CaseState::from_cbor(row.get::<_, &[u8]>(1))?.view(id))
}

fn decode_chunk(bytes: &[u8]) -> Result<Vec<(u64, TrackPoint)>> {
    super::track_chunks::decode(bytes).map_err(|e| corrupt("track", e))
}

/// `actor`'s points with a time in [from, to], in time order (then
/// sequence): the chunks that may hold them are a range of
/// `(actor, t_first)` (`track_chunks.rs`).
fn points_between(
    tx: &Tx<'_>,
    actor: ActorId,
    from: i64,
    to: i64,
) -> Result<Vec<(u64, TrackPoint)>> {
    let earliest = from.saturating_sub(super::track_chunks::MAX_CHUNK_SPAN_MS);
    let mut out = Vec::new();
    for r in tx.query(
        "SELECT points FROM track_chunks WHERE actor = $1 AND t_first BETWEEN $2 AND $3",
        &[&actor.as_bytes().as_slice(), &earliest, &to],
    )? {
        out.extend(
            decode_chunk(r.get::<_, &[u8]>(0))?
                .into_iter()
                .filter(|(_, p)| (from..=to).contains(&p.at.millis())),
        );
    }
    out.sort_by_key(|(seq, p)| (p.at.millis(), *seq));
    Ok(out)
}

fn task_row(row: &Row) -> Result<TaskRow> {
    let id = uuid::Uuid::parse_str(row.get::<_, &str>(0)).map_err(|e| corrupt("task id", e))?;
    Ok(TaskRow {
        task: TaskState::from_cbor(row.get::<_, &[u8]>(1))?.view(id),
        answer_received_at: row
            .get::<_, Option<i64>>(2)
            .map(|ms| Timestamp::from_millis("received", ms))
            .transpose()?,
    })
}

const OPEN_ONLY: &str =
    "NOT (('|' || status || '|') LIKE '%|closed|%' OR ('|' || status || '|') LIKE '%|rejected|%')";

fn refs(args: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// The WHERE clause of a case listing and its parameters (`$1`…).
fn clause(q: &CaseQuery) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = String::from("reported_at IS NOT NULL");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut arg = |sql: &mut String, fragment: &str, v: Box<dyn ToSql + Sync + Send>| {
        args.push(v);
        sql.push_str(&fragment.replace('?', &format!("${}", args.len())));
    };
    if let Some(s) = q.status {
        arg(
            &mut sql,
            " AND ('|' || status || '|') LIKE ?",
            Box::new(format!("%|{}|%", s.as_str())),
        );
    }
    if let Some(prefix) = q.category_prefix.as_deref().filter(|p| !p.is_empty()) {
        arg(&mut sql, " AND category >= ?", Box::new(prefix.to_string()));
        arg(
            &mut sql,
            " AND category < ?",
            Box::new(format!("{prefix}\u{10FFFF}")),
        );
    }
    if let Some(prefix) = q.id_prefix.as_deref().filter(|p| !p.is_empty()) {
        // Ids are lowercase hex and hyphens (checked by the caller): a
        // LIKE pattern with no wildcard in the prefix itself.
        arg(&mut sql, " AND id LIKE ?", Box::new(format!("{prefix}%")));
    }
    if let Some(cell) = &q.cell {
        arg(&mut sql, " AND cell = ?", Box::new(cell.clone()));
    }
    if let Some(c) = &q.collector {
        arg(&mut sql, " AND collector = ?", Box::new(c.clone()));
    }
    if let Some((from, to)) = q.reported_between {
        arg(&mut sql, " AND reported_at >= ?", Box::new(from));
        arg(&mut sql, " AND reported_at < ?", Box::new(to));
    }
    if q.sharing_a_photo {
        sql.push_str(
            " AND id IN (SELECT case_id FROM case_photos WHERE hash IN
               (SELECT hash FROM case_photos GROUP BY hash HAVING count(*) > 1))",
        );
    }
    if let Some((t, id)) = &q.after {
        arg(&mut sql, " AND (reported_at, id) < (?", Box::new(*t));
        arg(&mut sql, ", ?)", Box::new(id.to_string()));
    }
    if q.conflict_only {
        sql.push_str(" AND conflict");
    }
    if q.open_only {
        sql.push_str(" AND ");
        sql.push_str(OPEN_ONLY);
    }
    (sql, args)
}

impl PgStorage {
    /// The grid in force, re-read when another instance imported a new one
    /// (its version and its cells are read apart: a cache labelled with an
    /// older version is replaced at the next call, never kept).
    fn grid_cache(&self, tx: &Tx<'_>) -> Result<Option<GridCache>> {
        let version: Option<String> = tx
            .query_opt("SELECT value FROM meta WHERE key = 'grid_version'", &[])?
            .map(|r| r.get(0));
        let Some(version) = version else {
            return Ok(None);
        };
        let mut cache = self.grid.lock().unwrap_or_else(|p| p.into_inner());
        if cache.as_ref().is_none_or(|c| c.version != version) {
            let mut cells = Vec::new();
            for r in tx.query(
                "SELECT code, zone, name, geometry FROM cells ORDER BY code",
                &[],
            )? {
                cells.push(field_core::store::stored_cell(
                    r.get(0),
                    r.get::<_, &str>(1),
                    r.get(2),
                    r.get::<_, &str>(3),
                )?);
            }
            let geojson = field_core::store::grid_geojson_of(&cells)?;
            *cache = Some(GridCache {
                version: version.clone(),
                index: std::sync::Arc::new(CellIndex::new(cells)),
                geojson: std::sync::Arc::new(geojson),
            });
        }
        Ok(cache.clone())
    }

    fn meta(&self, tx: &Tx<'_>, key: &str) -> Result<Option<String>> {
        Ok(tx
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
            .map(|r| r.get(0)))
    }

    fn set_meta(tx: &Tx<'_>, key: &str, value: &str) -> Result<()> {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    /// One merge transaction: `f` judges or emits changes with an
    /// `Applier`, then the touched states are written and the logged
    /// changes get their positions.
    fn merge<T>(
        &self,
        received_ms: i64,
        mut f: impl FnMut(&Tx<'_>, &mut PgRows<'_, '_>, &mut Applier) -> Result<T>,
    ) -> Result<T> {
        self.write(|tx| {
            let grid = self.grid_cache(tx)?;
            let mut rows = PgRows::new(tx);
            let mut applier = Applier::at(received_ms.max(0) as u64);
            let out = f(tx, &mut rows, &mut applier)?;
            applier.finish(&mut rows, grid.as_ref().map(|g| g.index.as_ref()))?;
            let hook = self
                .before_positions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(hook) = hook {
                hook();
            }
            rows.flush()?;
            Ok(out)
        })
    }

    /// Writes `op` as `actor`'s next change (a staff member's decision or
    /// task). The actor's newest stamp is observed first: instances'
    /// clocks differ, and a staff member's later decision must not carry
    /// an earlier stamp than one another instance wrote.
    fn emit_as(&self, actor: ActorId, mut op: impl FnMut(&Tx<'_>) -> Result<Op>) -> Result<Change> {
        self.merge(self.now_ms(), |tx, rows, applier| {
            let last: Option<i64> = tx
                .query_one(
                    "SELECT MAX(hlc) FROM changes WHERE actor = $1",
                    &[&actor.as_bytes().as_slice()],
                )?
                .get(0);
            let op = op(tx)?;
            self.with_hlc(|hlc| {
                if let Some(last) = last {
                    let _ = hlc.observe(Hlc::from_raw(last as u64), self.now_ms().max(0) as u64);
                }
                Ok(applier.emit(rows, actor, hlc, op)?)
            })
        })
    }

    /// Merges `changes` as if they reached the center at `received_ms`
    /// (what decides a task answer's timeliness): `Replica::apply` with the
    /// time now, a city moved from another store with the times it kept.
    /// Delivery order, never re-sorted (see `Store::apply_judged`).
    pub fn apply_received(
        &self,
        changes: Vec<Change>,
        received_ms: i64,
    ) -> Result<Vec<(ChangeId, Judgement)>> {
        let ids: Vec<ChangeId> = changes.iter().map(|c| c.id()).collect();
        self.merge(received_ms, |_, rows, applier| {
            rows.prefetch(&ids)?;
            self.with_hlc(|hlc| {
                let mut out = Vec::with_capacity(changes.len());
                for change in &changes {
                    out.push((change.id(), applier.judge(rows, change, hlc)?));
                }
                Ok(out)
            })
        })
    }

    /// Runs `f` with a copy of this instance's clock, then keeps the later
    /// of the two: merges on one instance never wait on each other's
    /// database work for the clock.
    fn with_hlc<T>(&self, f: impl FnOnce(&mut HlcGenerator) -> T) -> T {
        let mut mine = *self.hlc.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut mine);
        let mut shared = self.hlc.lock().unwrap_or_else(|p| p.into_inner());
        if mine.last() > shared.last() {
            *shared = mine;
        }
        out
    }

    fn case_state(&self, tx: &Tx<'_>, id: CaseId) -> Result<Option<CaseState>> {
        tx.query_opt("SELECT state FROM cases WHERE id = $1", &[&id.to_string()])?
            .map(|r| Ok(CaseState::from_cbor(r.get::<_, &[u8]>(0))?))
            .transpose()
    }

    fn all_cases(&self, tx: &Tx<'_>) -> Result<Vec<CaseView>> {
        tx.query("SELECT id, state FROM cases ORDER BY reported_at, id", &[])?
            .iter()
            .map(view_of)
            .collect()
    }

    fn device_digests(&self, tx: &Tx<'_>) -> Result<BTreeMap<ActorId, String>> {
        let mut hashers: BTreeMap<ActorId, Sha256> = BTreeMap::new();
        // An actor's chunks at a time, their points hashed in sequence order.
        let actors: Vec<Vec<u8>> = tx
            .query("SELECT DISTINCT actor FROM track_chunks", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for raw in actors {
            let mut points = Vec::new();
            for r in tx.query("SELECT points FROM track_chunks WHERE actor = $1", &[&raw])? {
                points.extend(decode_chunk(r.get::<_, &[u8]>(0))?);
            }
            points.sort_by_key(|(seq, _)| *seq);
            let h = hashers.entry(actor_of(&raw)?).or_default();
            for (seq, p) in points {
                let line = field_core::store::point_line(
                    seq as i64,
                    p.at.millis(),
                    p.pos.lon(),
                    p.pos.lat(),
                    p.accuracy_m,
                    p.speed_mps,
                );
                h.update(line.as_bytes());
            }
        }
        for (actor, mark) in self.marks(tx)? {
            field_core::store::add_shift(hashers.entry(actor).or_default(), &mark)?;
        }
        Ok(hashers
            .into_iter()
            .map(|(a, h)| (a, hex::encode(h.finalize())))
            .collect())
    }

    fn marks(&self, tx: &Tx<'_>) -> Result<Vec<(ActorId, ShiftMark)>> {
        Ok(field_core::store::shift_marks_of(
            self.ops_of_kind(tx, "shift_mark")?,
        ))
    }

    /// The ops of every change of one kind in the log, with their authors.
    /// (The kind is written into the statement, not bound, so the partial
    /// index of that kind serves it.)
    fn ops_of_kind(&self, tx: &Tx<'_>, kind: &'static str) -> Result<Vec<(ActorId, Op)>> {
        let mut out = Vec::new();
        let sql =
            format!("SELECT body, actor FROM changes WHERE kind = '{kind}' ORDER BY hlc, actor");
        for r in tx.query(&sql, &[])? {
            let op = Change::from_json(r.get::<_, &str>(0))?.op;
            out.push((actor_of(r.get::<_, &[u8]>(1))?, op));
        }
        Ok(out)
    }
}

impl Replica for PgStorage {
    fn held_change(&self, id: ChangeId) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT body FROM changes WHERE actor = $1 AND counter = $2
                     UNION ALL SELECT body FROM pending_changes WHERE actor = $1 AND counter = $2 LIMIT 1",
                    &[&id.actor.as_bytes().as_slice(), &(id.counter as i64)],
                )?
                .map(|r| r.get(0)))
        })
    }

    fn locate_cell(&self, pos: LonLat) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(self
                .grid_cache(tx)?
                .and_then(|g| g.index.locate(pos).map(|c| c.code.to_string())))
        })
    }

    fn has_grid(&self) -> Result<bool> {
        self.read(|tx| Ok(self.meta(tx, "grid_version")?.is_some()))
    }

    fn has_category(&self, code: &field_core::model::CategoryCode) -> Result<bool> {
        Ok(self.catalog()?.get(code).is_some())
    }

    fn record_report_skews(&self, reports: &[ReportClock]) -> Result<()> {
        if reports.is_empty() {
            return Ok(());
        }
        let cases: Vec<String> = reports.iter().map(|r| r.case.to_string()).collect();
        let skews: Vec<i64> = reports.iter().map(|r| r.skew_ms).collect();
        let backdates: Vec<i64> = reports.iter().map(|r| r.backdate_ms).collect();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO report_skews (case_id, skew_ms, backdate_ms)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[])
                 ON CONFLICT DO NOTHING",
                &[&cases, &skews, &backdates],
            )?;
            Ok(())
        })
    }

    fn report_clock(&self, case: CaseId) -> Result<Option<ReportClock>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT skew_ms, backdate_ms FROM report_skews WHERE case_id = $1",
                    &[&case.to_string()],
                )?
                .map(|r| ReportClock {
                    case,
                    skew_ms: r.get(0),
                    backdate_ms: r.get(1),
                }))
        })
    }

    fn mark_photos_lost(&self, hashes: &[PhotoHash], by: ActorId, now_ms: i64) -> Result<()> {
        self.write(|tx| {
            for h in hashes {
                tx.execute(
                    "INSERT INTO photos_lost (hash, actor, at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&h.as_str(), &by.as_bytes().as_slice(), &now_ms],
                )?;
            }
            Ok(())
        })
    }

    fn photo_lost(&self, hash: &PhotoHash) -> Result<bool> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT 1 FROM photos_lost WHERE hash = $1",
                    &[&hash.as_str()],
                )?
                .is_some())
        })
    }

    fn apply(&self, changes: Vec<Change>) -> Result<Vec<(ChangeId, Judgement)>> {
        self.apply_received(changes, self.now_ms())
    }

    fn case(&self, id: CaseId) -> Result<Option<CaseView>> {
        self.read(|tx| Ok(self.case_state(tx, id)?.map(|s| s.view(id))))
    }

    fn cases(&self) -> Result<Vec<CaseView>> {
        self.read(|tx| self.all_cases(tx))
    }

    fn case_page(&self, q: &CaseQuery) -> Result<CasePage> {
        self.snapshot(|tx| {
            let (clause, mut args) = clause(q);
            let total: i64 = if q.skip_count {
                0
            } else {
                tx.query_one(
                    &format!("SELECT count(*) FROM cases WHERE {clause}"),
                    &refs(&args),
                )?
                .get(0)
            };
            let limit: Option<i64> = (q.limit > 0).then_some(q.limit as i64);
            args.push(Box::new(limit));
            args.push(Box::new(q.offset as i64));
            let n = args.len();
            let sql = format!(
                "SELECT id, state FROM cases WHERE {clause}
                 ORDER BY reported_at DESC, id DESC LIMIT ${} OFFSET ${}",
                n - 1,
                n
            );
            let cases = tx
                .query(&sql, &refs(&args))?
                .iter()
                .map(view_of)
                .collect::<Result<_>>()?;
            Ok(CasePage {
                total: total as usize,
                cases,
            })
        })
    }

    fn case_cell(&self, id: CaseId) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_opt("SELECT cell FROM cases WHERE id = $1", &[&id.to_string()])?
                .and_then(|r| r.get(0)))
        })
    }

    fn cases_citing(&self, hash: &PhotoHash) -> Result<Vec<CaseId>> {
        self.read(|tx| {
            tx.query(
                "SELECT case_id FROM case_photos WHERE hash = $1 ORDER BY case_id",
                &[&hash.as_str()],
            )?
            .iter()
            .map(|r| case_id(r.get::<_, &str>(0)))
            .collect()
        })
    }

    fn open_cases_near(
        &self,
        category: &str,
        pos: LonLat,
        radius_m: f64,
    ) -> Result<Vec<(CaseId, f64)>> {
        let dlat = radius_m / 111_000.0 * 1.1;
        let dlon = dlat / pos.lat().to_radians().cos().max(0.01);
        self.read(|tx| {
            let mut out = Vec::new();
            for r in tx.query(
                &format!(
                    "SELECT id, lon, lat FROM cases
                     WHERE category = $1 AND lat BETWEEN $2 AND $3 AND lon BETWEEN $4 AND $5 AND {OPEN_ONLY}"
                ),
                &[&category, &(pos.lat() - dlat), &(pos.lat() + dlat), &(pos.lon() - dlon), &(pos.lon() + dlon)],
            )? {
                let Ok(other) = LonLat::new(r.get(1), r.get(2)) else {
                    continue;
                };
                let d = pos.distance_m(other);
                if d <= radius_m {
                    out.push((case_id(r.get::<_, &str>(0))?, d));
                }
            }
            out.sort_by(|a, b| a.1.total_cmp(&b.1));
            Ok(out)
        })
    }

    fn case_history(&self, id: CaseId) -> Result<Vec<HistoryEntry>> {
        self.snapshot(|tx| {
            let Some(state) = self.case_state(tx, id)? else {
                return Err(StorageError::NotFound(format!("case {id} not found")));
            };
            let bodies: Vec<String> = tx
                .query(
                    "SELECT body FROM changes WHERE case_id = $1 ORDER BY hlc, actor, counter",
                    &[&id.to_string()],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok(field_core::store::history_of(&state, &bodies)?)
        })
    }

    fn pull(
        &self,
        after: u64,
        limit: usize,
        requester: ActorId,
        cells: &[String],
        own: &[ActorId],
        tasks_for: Option<&str>,
    ) -> Result<PullPage> {
        let own: Vec<Vec<u8>> = own.iter().map(|a| a.as_bytes().to_vec()).collect();
        let cells: Vec<String> = cells.to_vec();
        // One snapshot: the page and the head it is measured against. Every
        // position at or below a visible head is visible (positions are
        // taken under the head's lock and committed with it), so moving the
        // cursor to the head skips nothing a later commit could fill in.
        self.snapshot(|tx| {
            // Staff hold the whole city: one pass over the log after the
            // cursor. A collector's share is found by index (their cells'
            // and own cases' changes, their devices' case-free changes,
            // their tasks'), each in log order, and the page is the first
            // `limit` of the three (disjoint): the work follows what the
            // collector holds, not how busy the city was since their cursor.
            let sql = if tasks_for.is_none() {
                "SELECT log_seq, body FROM changes
                 WHERE log_seq > $1 AND actor <> $2 AND (
                     (task_id IS NULL AND case_id IN (
                         SELECT id FROM cases WHERE cell = ANY($3) OR reporter = ANY($4)))
                     OR (task_id IS NULL AND case_id IS NULL AND actor = ANY($4))
                     OR task_id IN (SELECT id FROM tasks WHERE $6::text IS NULL OR to_user = $6))
                 ORDER BY log_seq LIMIT $5"
            } else {
                "SELECT log_seq, body FROM (
                     (SELECT c.log_seq, c.body FROM cases k JOIN changes c ON c.case_id = k.id
                      WHERE (k.cell = ANY($3) OR k.reporter = ANY($4))
                        AND c.task_id IS NULL AND c.log_seq > $1 AND c.actor <> $2
                      ORDER BY c.log_seq LIMIT $5)
                     UNION ALL
                     (SELECT log_seq, body FROM changes
                      WHERE actor = ANY($4) AND case_id IS NULL AND task_id IS NULL
                        AND log_seq > $1 AND actor <> $2
                      ORDER BY log_seq LIMIT $5)
                     UNION ALL
                     (SELECT c.log_seq, c.body FROM tasks t JOIN changes c ON c.task_id = t.id
                      WHERE t.to_user = $6 AND c.log_seq > $1 AND c.actor <> $2
                      ORDER BY c.log_seq LIMIT $5)) page
                 ORDER BY log_seq LIMIT $5"
            };
            let rows = tx.query(
                sql,
                &[
                    &(after as i64),
                    &requester.as_bytes().as_slice(),
                    &cells,
                    &own,
                    &(limit as i64),
                    &tasks_for,
                ],
            )?;
            let mut page = PullPage::default();
            let mut last = after;
            for r in &rows {
                page.changes.push(Change::from_json(r.get::<_, &str>(1))?);
                last = r.get::<_, i64>(0) as u64;
            }
            page.more = page.changes.len() == limit;
            page.cursor = if page.more {
                last
            } else {
                let head: i64 = tx
                    .query_one("SELECT seq FROM log_head WHERE id = 1", &[])?
                    .get(0);
                (head as u64).max(after)
            };
            Ok(page)
        })
    }

    fn decide(&self, actor: ActorId, case: CaseId, decision: Decision) -> Result<Change> {
        let now = Timestamp::from_millis("at", self.now_ms())?;
        self.emit_as(actor, |tx| {
            let state = self
                .case_state(tx, case)?
                .ok_or_else(|| StorageError::NotFound(format!("case {case} not found")))?;
            Ok(field_core::store::decision_op(
                case,
                &state,
                actor,
                decision.clone(),
                now,
            )?)
        })
    }

    fn record_case(&self, actor: ActorId, report: field_core::crdt::CaseReport) -> Result<Change> {
        self.emit_as(actor, |_| Ok(Op::CaseReport(report.clone())))
    }

    fn assign_task(&self, actor: ActorId, spec: TaskSpec) -> Result<Change> {
        field_core::store::check_task_spec(&spec)?;
        self.emit_as(actor, |_| Ok(Op::TaskAssign(spec.clone())))
    }

    fn tasks(&self, to_user: Option<&str>) -> Result<Vec<TaskRow>> {
        self.read(|tx| {
            tx.query(
                "SELECT id, state, received_ms FROM tasks WHERE $1::text IS NULL OR to_user = $1
                 ORDER BY due_ms, id",
                &[&to_user],
            )?
            .iter()
            .map(task_row)
            .collect()
        })
    }

    fn task(&self, id: uuid::Uuid) -> Result<Option<TaskRow>> {
        self.read(|tx| {
            tx.query_opt(
                "SELECT id, state, received_ms FROM tasks WHERE id = $1",
                &[&id.to_string()],
            )?
            .map(|r| task_row(&r))
            .transpose()
        })
    }

    fn digest(&self) -> Result<DigestReport> {
        self.snapshot(|tx| {
            let cases = field_core::store::cases_digest_of(self.all_cases(tx)?, None)?;
            let devices = self.device_digests(tx)?;
            let changes: i64 = tx.query_one("SELECT count(*) FROM changes", &[])?.get(0);
            Ok(DigestReport {
                digest: field_core::store::whole_digest(&cases, &devices),
                cases,
                devices,
                changes: changes as u64,
            })
        })
    }

    fn cases_digest(&self, cells: Option<&[String]>) -> Result<String> {
        self.read(|tx| {
            Ok(field_core::store::cases_digest_of(
                self.all_cases(tx)?,
                cells,
            )?)
        })
    }

    fn set_grid(&self, cells: Vec<Cell>) -> Result<String> {
        field_core::store::check_grid(&cells)?;
        let geojson = field_core::store::grid_geojson_of(&cells)?;
        let version = hex::encode(Sha256::digest(geojson.to_string().as_bytes()))[..16].to_string();
        self.write(|tx| {
            tx.execute("DELETE FROM cells", &[])?;
            let codes: Vec<&str> = cells.iter().map(|c| c.code.as_str()).collect();
            let zones: Vec<&str> = cells.iter().map(|c| c.zone.as_str()).collect();
            let names: Vec<Option<&str>> = cells.iter().map(|c| c.name.as_deref()).collect();
            let areas: Vec<f64> = cells.iter().map(|c| c.area_m2).collect();
            let geometries: Vec<String> = cells
                .iter()
                .map(|c| geojson::Geometry::from(&c.geometry).to_string())
                .collect();
            tx.execute(
                "INSERT INTO cells (code, zone, name, area_m2, geometry)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[])",
                &[&codes, &zones, &names, &areas, &geometries],
            )?;
            PgStorage::set_meta(tx, "grid_version", &version)?;
            Ok(())
        })?;
        Ok(version)
    }

    fn grid(&self) -> Result<Option<(String, std::sync::Arc<serde_json::Value>)>> {
        self.read(|tx| Ok(self.grid_cache(tx)?.map(|g| (g.version, g.geojson))))
    }

    fn set_catalog(&self, catalog: Catalog) -> Result<()> {
        let stamp = uuid::Uuid::new_v4().to_string();
        self.write(|tx| {
            PgStorage::set_meta(tx, "catalog", &catalog.to_json())?;
            PgStorage::set_meta(tx, "catalog_stamp", &stamp)
        })
    }

    /// Read and parsed once per import on each instance: every pushed
    /// report checks its category, so only the import's stamp is read each
    /// time.
    fn custom_catalog(&self) -> Result<Option<Catalog>> {
        self.snapshot(|tx| {
            let Some(stamp) = self.meta(tx, "catalog_stamp")? else {
                return Ok(None);
            };
            let mut cache = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((held, catalog)) = cache.as_ref()
                && *held == stamp
            {
                return Ok(Some(catalog.clone()));
            }
            let Some(json) = self.meta(tx, "catalog")? else {
                return Ok(None);
            };
            let catalog = Catalog::from_json(&json)?;
            *cache = Some((stamp, catalog.clone()));
            Ok(Some(catalog))
        })
    }

    fn catalog(&self) -> Result<Catalog> {
        Ok(self
            .custom_catalog()?
            .unwrap_or_else(Catalog::default_catalog))
    }

    fn track_between(&self, actor: ActorId, from_ms: i64, to_ms: i64) -> Result<Vec<TrackPoint>> {
        self.read(|tx| {
            Ok(points_between(tx, actor, from_ms, to_ms)?
                .into_iter()
                .map(|(_, p)| p)
                .collect())
        })
    }

    fn track_around(
        &self,
        actor: ActorId,
        t: i64,
        window_ms: i64,
        max_accuracy_m: f64,
    ) -> Result<(Option<TrackPoint>, Option<TrackPoint>)> {
        self.read(|tx| {
            let usable = |p: &TrackPoint| p.accuracy_m.is_none_or(|a| a <= max_accuracy_m);
            let near = points_between(
                tx,
                actor,
                t.saturating_sub(window_ms),
                t.saturating_add(window_ms),
            )?;
            let before = near
                .iter()
                .rev()
                .find(|(_, p)| p.at.millis() <= t && usable(p))
                .map(|(_, p)| *p);
            let after = near
                .iter()
                .find(|(_, p)| p.at.millis() >= t && usable(p))
                .map(|(_, p)| *p);
            Ok((before, after))
        })
    }

    fn shift_marks(&self) -> Result<Vec<(ActorId, ShiftMark)>> {
        self.read(|tx| self.marks(tx))
    }

    fn track_gaps(&self) -> Result<Vec<(ActorId, TrackGap)>> {
        self.read(|tx| {
            Ok(field_core::store::track_gaps_of(
                self.ops_of_kind(tx, "track_gap")?,
            ))
        })
    }
}
