//! Where the merge's rows live. The merge itself is pure (`CaseState::apply`,
//! `TaskState::apply`); [`super::Applier`] decides what a change does (a
//! duplicate, a reused counter, a wait in the causal buffer, applied) and
//! reads and writes through [`MergeRows`]: the device's and the embedded
//! server's SQLite file here ([`SqliteRows`]), the city server's PostgreSQL
//! in `sync-server`. Both keep the same projections beside each state, so
//! every backend answers queries from the same facts.

use rusqlite::{Connection, OptionalExtension, params};

use crate::crdt::{CaseState, Change, ChangeId, TaskState};
use crate::error::Result;
use crate::geo::CellIndex;
use crate::model::{ActorId, CaseId, PhotoHash, ShiftMark, TaskKind, TrackPoint};

/// The rows one transaction of the merge reads and writes.
pub trait MergeRows {
    /// The highest counter of `actor` in the log (0 when none).
    fn applied_counter(&mut self, actor: ActorId) -> Result<u64>;
    /// The body held under a change id, in the log or the causal buffer.
    fn held_body(&mut self, id: ChangeId) -> Result<Option<String>>;
    /// A case's merged state. A backend with concurrent writers locks the
    /// case here until the transaction ends.
    fn load_case(&mut self, id: CaseId) -> Result<Option<CaseState>>;
    fn save_case(&mut self, id: CaseId, state: &CaseState, p: &CaseProjection) -> Result<()>;
    /// Holds a change in the causal buffer; false when it was already there.
    fn buffer(&mut self, change: &Change) -> Result<bool>;
    /// Bodies waiting in the causal buffer for `case`, by (actor, counter).
    fn buffered_for_case(&mut self, case: CaseId) -> Result<Vec<String>>;
    fn unbuffer(&mut self, id: ChangeId) -> Result<()>;
    /// Appends a change to the log, received at `received_ms`.
    fn log(&mut self, change: &Change, received_ms: i64) -> Result<()>;
    /// Track points by (actor, sequence); a point already held is kept.
    fn insert_points(&mut self, actor: ActorId, points: &[(u64, TrackPoint)]) -> Result<()>;
    fn insert_shift(&mut self, actor: ActorId, mark: &ShiftMark) -> Result<()>;
    /// A task's merged state (locked like a case's).
    fn load_task(&mut self, id: uuid::Uuid) -> Result<Option<TaskState>>;
    /// Writes a task's state; `answer_received_ms` is set when this change's
    /// answer won (the time that decides whether it was on time), else the
    /// stored one stays.
    fn save_task(
        &mut self,
        id: uuid::Uuid,
        state: &TaskState,
        p: &TaskProjection,
        answer_received_ms: Option<i64>,
    ) -> Result<()>;
}

/// What queries need of a merged case, kept beside its state.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseProjection {
    /// Every status held, `|`-separated (two when in conflict).
    pub status: String,
    pub conflict: bool,
    pub category: Option<String>,
    /// The report's own cell, or the one its position is in by the grid held.
    pub cell: Option<String>,
    pub reporter: Option<ActorId>,
    pub reported_at: Option<i64>,
    pub collector: Option<String>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub photos: Vec<PhotoHash>,
}

impl CaseProjection {
    /// Cases placed without a cell (reported before the device had the
    /// grid) get their cell from `grid` here, so queries by cell find them;
    /// the replicated placement is unchanged.
    pub fn of(id: CaseId, state: &CaseState, grid: Option<&CellIndex>) -> CaseProjection {
        let view = state.view(id);
        let status = view
            .statuses()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("|");
        let pos = view.placement.as_ref().map(|p| p.pos);
        CaseProjection {
            status,
            conflict: view.in_conflict(),
            category: view.category.as_ref().map(|c| c.to_string()),
            cell: view.placement.as_ref().and_then(|p| {
                p.cell
                    .as_ref()
                    .or_else(|| grid.and_then(|g| g.locate(p.pos)).map(|c| &c.code))
                    .map(|c| c.to_string())
            }),
            reporter: view.origin.as_ref().map(|o| o.reporter),
            reported_at: view.origin.as_ref().map(|o| o.reported_at.millis()),
            collector: view.origin.as_ref().map(|o| o.collector.clone()),
            lon: pos.map(|p| p.lon()),
            lat: pos.map(|p| p.lat()),
            photos: view.photos.iter().map(|p| p.hash.clone()).collect(),
        }
    }
}

/// What queries need of a merged task.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskProjection {
    pub kind: Option<&'static str>,
    pub case: Option<CaseId>,
    pub to_user: Option<String>,
    pub due_ms: Option<i64>,
    pub answered_ms: Option<i64>,
}

impl TaskProjection {
    pub fn of(id: uuid::Uuid, state: &TaskState) -> TaskProjection {
        let view = state.view(id);
        let spec = view.spec.as_ref();
        TaskProjection {
            kind: spec.map(|s| match s.kind {
                TaskKind::Verify => "verify",
                TaskKind::Check => "check",
            }),
            case: spec.and_then(|s| s.case),
            to_user: spec.map(|s| s.to_user.clone()),
            due_ms: spec.map(|s| s.due_at.millis()),
            answered_ms: view.answer.as_ref().map(|a| a.answered_at.millis()),
        }
    }
}

/// The merge's rows in a SQLite store (inside an open transaction).
pub struct SqliteRows<'a>(pub &'a Connection);

impl MergeRows for SqliteRows<'_> {
    fn applied_counter(&mut self, actor: ActorId) -> Result<u64> {
        let n: Option<i64> = self
            .0
            .prepare_cached("SELECT MAX(counter) FROM changes WHERE actor = ?1")?
            .query_row([actor.as_bytes()], |r| r.get(0))?;
        Ok(n.unwrap_or(0) as u64)
    }

    fn held_body(&mut self, id: ChangeId) -> Result<Option<String>> {
        let key = params![id.actor.as_bytes(), id.counter as i64];
        let logged: Option<String> = self
            .0
            .prepare_cached("SELECT body FROM changes WHERE actor = ?1 AND counter = ?2")?
            .query_row(key, |r| r.get(0))
            .optional()?;
        if logged.is_some() {
            return Ok(logged);
        }
        Ok(self
            .0
            .prepare_cached("SELECT body FROM pending_changes WHERE actor = ?1 AND counter = ?2")?
            .query_row(key, |r| r.get(0))
            .optional()?)
    }

    fn load_case(&mut self, id: CaseId) -> Result<Option<CaseState>> {
        let bytes: Option<Vec<u8>> = self
            .0
            .prepare_cached("SELECT state FROM cases WHERE id = ?1")?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?;
        bytes.map(|b| CaseState::from_cbor(&b)).transpose()
    }

    fn save_case(&mut self, id: CaseId, state: &CaseState, p: &CaseProjection) -> Result<()> {
        let tx = self.0;
        tx.prepare_cached(
            "INSERT INTO cases (id, state, status, conflict, category, cell, reporter, reported_at,
                                collector, lon, lat)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, status = excluded.status,
               conflict = excluded.conflict, category = excluded.category, cell = excluded.cell,
               reporter = excluded.reporter, reported_at = excluded.reported_at,
               collector = excluded.collector, lon = excluded.lon, lat = excluded.lat",
        )?
        .execute(params![
            id.to_string(),
            state.to_cbor(),
            p.status,
            p.conflict,
            p.category,
            p.cell,
            p.reporter.map(|r| r.as_bytes().to_vec()),
            p.reported_at,
            p.collector,
            p.lon,
            p.lat,
        ])?;
        tx.prepare_cached("DELETE FROM case_photos WHERE case_id = ?1")?
            .execute([id.to_string()])?;
        let mut add =
            tx.prepare_cached("INSERT OR IGNORE INTO case_photos (hash, case_id) VALUES (?1, ?2)")?;
        for hash in &p.photos {
            add.execute(params![hash.as_str(), id.to_string()])?;
        }
        Ok(())
    }

    fn buffer(&mut self, change: &Change) -> Result<bool> {
        let inserted = self
            .0
            .prepare_cached(
                "INSERT OR IGNORE INTO pending_changes (actor, counter, body, case_id) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                change.actor.as_bytes(),
                change.counter as i64,
                change.to_json(),
                change.case_id().map(|c| c.to_string())
            ])?;
        Ok(inserted == 1)
    }

    fn buffered_for_case(&mut self, case: CaseId) -> Result<Vec<String>> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT body FROM pending_changes WHERE case_id = +?1 ORDER BY actor, counter",
            )?
            .query_map([case.to_string()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn unbuffer(&mut self, id: ChangeId) -> Result<()> {
        self.0
            .prepare_cached("DELETE FROM pending_changes WHERE actor = ?1 AND counter = ?2")?
            .execute(params![id.actor.as_bytes(), id.counter as i64])?;
        Ok(())
    }

    fn log(&mut self, change: &Change, received_ms: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO changes (actor, counter, hlc, kind, case_id, body, task_id, received_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                change.actor.as_bytes(),
                change.counter as i64,
                change.hlc.raw() as i64,
                change.op.kind(),
                change.case_id().map(|c| c.to_string()),
                change.to_json(),
                change.task_id().map(|t| t.to_string()),
                received_ms,
            ])?;
        Ok(())
    }

    fn insert_points(&mut self, actor: ActorId, points: &[(u64, TrackPoint)]) -> Result<()> {
        let mut stmt = self.0.prepare_cached(
            "INSERT OR IGNORE INTO track_points (actor, seq, t_ms, lon, lat, accuracy_m, speed_mps)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let actor = actor.as_bytes();
        for (seq, p) in points {
            stmt.execute(params![
                actor,
                *seq as i64,
                p.at.millis(),
                p.pos.lon(),
                p.pos.lat(),
                p.accuracy_m,
                p.speed_mps
            ])?;
        }
        Ok(())
    }

    fn insert_shift(&mut self, actor: ActorId, m: &ShiftMark) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT OR IGNORE INTO shift_marks (id, actor, kind, t_ms, lon, lat, cell)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                m.id.to_string(),
                actor.as_bytes(),
                m.kind.as_str(),
                m.at.millis(),
                m.pos.map(|p| p.lon()),
                m.pos.map(|p| p.lat()),
                m.cell.as_ref().map(|c| c.to_string()),
            ])?;
        Ok(())
    }

    fn load_task(&mut self, id: uuid::Uuid) -> Result<Option<TaskState>> {
        let bytes: Option<Vec<u8>> = self
            .0
            .prepare_cached("SELECT state FROM tasks WHERE id = ?1")?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?;
        bytes.map(|b| TaskState::from_cbor(&b)).transpose()
    }

    fn save_task(
        &mut self,
        id: uuid::Uuid,
        state: &TaskState,
        p: &TaskProjection,
        answer_received_ms: Option<i64>,
    ) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO tasks (id, state, kind, case_id, to_user, due_ms, answered_ms, received_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, kind = excluded.kind,
                   case_id = excluded.case_id, to_user = excluded.to_user, due_ms = excluded.due_ms,
                   answered_ms = excluded.answered_ms,
                   received_ms = COALESCE(excluded.received_ms, tasks.received_ms)",
            )?
            .execute(params![
                id.to_string(),
                state.to_cbor(),
                p.kind,
                p.case.map(|c| c.to_string()),
                p.to_user,
                p.due_ms,
                p.answered_ms,
                answer_received_ms,
            ])?;
        Ok(())
    }
}
