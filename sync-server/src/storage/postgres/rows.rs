//! The merge's rows in PostgreSQL: field-core's `Applier` reads and writes
//! through [`PgRows`] inside one transaction. Every case and task it reads
//! is locked first; the changes it logs are held until [`PgRows::flush`]
//! gives them their log positions, the transaction's last act before commit.

use std::collections::HashMap;

use field_core::crdt::{CaseState, Change, ChangeId, TaskState};
use field_core::model::{ActorId, CaseId, ShiftMark, TrackPoint};
use field_core::store::{CaseProjection, MergeRows, TaskProjection};

use super::{Tx, core_error};

type CoreResult<T> = field_core::Result<T>;

/// A logged change waiting for its position.
struct Logged {
    change: Change,
    body: String,
    received_ms: i64,
}

pub(super) struct PgRows<'t, 'a> {
    tx: &'t Tx<'a>,
    logged: Vec<Logged>,
    logged_at: HashMap<ChangeId, usize>,
    /// What the database holds under change ids looked up in advance
    /// (`None`: nothing), kept current as this transaction buffers.
    held: HashMap<ChangeId, Option<String>>,
}

impl<'t, 'a> PgRows<'t, 'a> {
    pub(super) fn new(tx: &'t Tx<'a>) -> PgRows<'t, 'a> {
        PgRows {
            tx,
            logged: Vec::new(),
            logged_at: HashMap::new(),
            held: HashMap::new(),
        }
    }

    /// Looks up what is held under `ids` (log or causal buffer) in one
    /// statement, so judging a batch does not ask change by change.
    pub(super) fn prefetch(&mut self, ids: &[ChangeId]) -> CoreResult<()> {
        let actors: Vec<&[u8]> = ids.iter().map(|i| i.actor.as_bytes().as_slice()).collect();
        let counters: Vec<i64> = ids.iter().map(|i| i.counter as i64).collect();
        let rows = self
            .tx
            .query(
                "WITH wanted (actor, counter) AS (SELECT * FROM UNNEST($1::bytea[], $2::bigint[]))
                 SELECT w.actor, w.counter, COALESCE(c.body, p.body) FROM wanted w
                 LEFT JOIN changes c ON c.actor = w.actor AND c.counter = w.counter
                 LEFT JOIN pending_changes p ON p.actor = w.actor AND p.counter = w.counter",
                &[&actors, &counters],
            )
            .map_err(core_error)?;
        for r in rows {
            let actor = uuid::Uuid::from_slice(r.get::<_, &[u8]>(0))
                .map_err(|e| field_core::Error::Corrupt(format!("actor id: {e}")))?;
            let id = ChangeId {
                actor,
                counter: r.get::<_, i64>(1) as u64,
            };
            self.held.insert(id, r.get(2));
        }
        Ok(())
    }

    /// Locks `key` (a case or task id) until the transaction ends.
    fn lock(&self, key: &str) -> CoreResult<()> {
        self.tx
            .execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&key],
            )
            .map_err(core_error)?;
        Ok(())
    }

    /// Gives the logged changes their positions and writes them: takes the
    /// `log_head` row lock (held until commit), so no transaction that
    /// commits later can hold a lower position than one committed earlier.
    pub(super) fn flush(self) -> CoreResult<()> {
        if self.logged.is_empty() {
            return Ok(());
        }
        let n = self.logged.len() as i64;
        let head: i64 = self
            .tx
            .query_one(
                "UPDATE log_head SET seq = seq + $1 WHERE id = 1 RETURNING seq",
                &[&n],
            )
            .map_err(core_error)?
            .get(0);
        let first = head - n + 1;
        let mut seqs = Vec::with_capacity(self.logged.len());
        let mut actors = Vec::with_capacity(self.logged.len());
        let mut counters = Vec::with_capacity(self.logged.len());
        let mut hlcs = Vec::with_capacity(self.logged.len());
        let mut kinds = Vec::with_capacity(self.logged.len());
        let mut cases = Vec::with_capacity(self.logged.len());
        let mut tasks = Vec::with_capacity(self.logged.len());
        let mut bodies = Vec::with_capacity(self.logged.len());
        let mut received = Vec::with_capacity(self.logged.len());
        for (i, l) in self.logged.into_iter().enumerate() {
            seqs.push(first + i as i64);
            actors.push(l.change.actor.as_bytes().to_vec());
            counters.push(l.change.counter as i64);
            hlcs.push(l.change.hlc.raw() as i64);
            kinds.push(l.change.op.kind().to_string());
            cases.push(l.change.case_id().map(|c| c.to_string()));
            tasks.push(l.change.task_id().map(|t| t.to_string()));
            bodies.push(l.body);
            received.push(l.received_ms);
        }
        self.tx
            .execute(
                "INSERT INTO changes (log_seq, actor, counter, hlc, kind, case_id, task_id, body, received_ms)
                 SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bigint[], $4::bigint[], $5::text[],
                                      $6::text[], $7::text[], $8::text[], $9::bigint[])",
                &[&seqs, &actors, &counters, &hlcs, &kinds, &cases, &tasks, &bodies, &received],
            )
            .map_err(core_error)?;
        Ok(())
    }
}

impl MergeRows for PgRows<'_, '_> {
    fn applied_counter(&mut self, actor: ActorId) -> CoreResult<u64> {
        let held: Option<i64> = self
            .tx
            .query_one(
                "SELECT MAX(counter) FROM changes WHERE actor = $1",
                &[&actor.as_bytes().as_slice()],
            )
            .map_err(core_error)?
            .get(0);
        let logged = self
            .logged
            .iter()
            .filter(|l| l.change.actor == actor)
            .map(|l| l.change.counter as i64)
            .max();
        Ok(held.max(logged).unwrap_or(0) as u64)
    }

    fn held_body(&mut self, id: ChangeId) -> CoreResult<Option<String>> {
        if let Some(i) = self.logged_at.get(&id) {
            return Ok(Some(self.logged[*i].body.clone()));
        }
        if let Some(known) = self.held.get(&id) {
            return Ok(known.clone());
        }
        let key: (&[u8], i64) = (id.actor.as_bytes(), id.counter as i64);
        let row = self
            .tx
            .query_opt(
                "SELECT body FROM changes WHERE actor = $1 AND counter = $2
                 UNION ALL SELECT body FROM pending_changes WHERE actor = $1 AND counter = $2
                 LIMIT 1",
                &[&key.0, &key.1],
            )
            .map_err(core_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    fn load_case(&mut self, id: CaseId) -> CoreResult<Option<CaseState>> {
        let key = id.to_string();
        self.lock(&key)?;
        let row = self
            .tx
            .query_opt("SELECT state FROM cases WHERE id = $1", &[&key])
            .map_err(core_error)?;
        row.map(|r| CaseState::from_cbor(r.get::<_, &[u8]>(0)))
            .transpose()
    }

    fn save_case(&mut self, id: CaseId, state: &CaseState, p: &CaseProjection) -> CoreResult<()> {
        let key = id.to_string();
        let reporter = p.reporter.map(|r| r.as_bytes().to_vec());
        let hashes: Vec<String> = p.photos.iter().map(|h| h.as_str().to_string()).collect();
        // One statement: the state and its projections, and the cited
        // photos (those no longer cited dropped, new ones added).
        self.tx
            .execute(
                "WITH saved AS (
                   INSERT INTO cases (id, state, status, conflict, category, cell, reporter,
                                      reported_at, collector, lon, lat)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                   ON CONFLICT (id) DO UPDATE SET state = excluded.state, status = excluded.status,
                     conflict = excluded.conflict, category = excluded.category, cell = excluded.cell,
                     reporter = excluded.reporter, reported_at = excluded.reported_at,
                     collector = excluded.collector, lon = excluded.lon, lat = excluded.lat),
                 uncited AS (
                   DELETE FROM case_photos WHERE case_id = $1 AND hash <> ALL($12::text[]))
                 INSERT INTO case_photos (hash, case_id)
                 SELECT DISTINCT h, $1 FROM UNNEST($12::text[]) AS h
                 ON CONFLICT DO NOTHING",
                &[
                    &key,
                    &state.to_cbor(),
                    &p.status,
                    &p.conflict,
                    &p.category,
                    &p.cell,
                    &reporter,
                    &p.reported_at,
                    &p.collector,
                    &p.lon,
                    &p.lat,
                    &hashes,
                ],
            )
            .map_err(core_error)?;
        Ok(())
    }

    fn buffer(&mut self, change: &Change) -> CoreResult<bool> {
        let n = self
            .tx
            .execute(
                "INSERT INTO pending_changes (actor, counter, case_id, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[
                    &change.actor.as_bytes().as_slice(),
                    &(change.counter as i64),
                    &change.case_id().map(|c| c.to_string()),
                    &change.to_json(),
                ],
            )
            .map_err(core_error)?;
        if n == 1 {
            self.held.insert(change.id(), Some(change.to_json()));
        }
        Ok(n == 1)
    }

    fn buffered_for_case(&mut self, case: CaseId) -> CoreResult<Vec<String>> {
        Ok(self
            .tx
            .query(
                "SELECT body FROM pending_changes WHERE case_id = $1 ORDER BY actor, counter",
                &[&case.to_string()],
            )
            .map_err(core_error)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn unbuffer(&mut self, id: ChangeId) -> CoreResult<()> {
        self.held.insert(id, None);
        self.tx
            .execute(
                "DELETE FROM pending_changes WHERE actor = $1 AND counter = $2",
                &[&id.actor.as_bytes().as_slice(), &(id.counter as i64)],
            )
            .map_err(core_error)?;
        Ok(())
    }

    fn log(&mut self, change: &Change, received_ms: i64) -> CoreResult<()> {
        self.logged_at.insert(change.id(), self.logged.len());
        self.logged.push(Logged {
            change: change.clone(),
            body: change.to_json(),
            received_ms,
        });
        Ok(())
    }

    fn insert_points(&mut self, actor: ActorId, points: &[(u64, TrackPoint)]) -> CoreResult<()> {
        // PostgreSQL's own errors stay themselves, so a transaction that
        // lost a race (deadlock, serialisation) is still run again.
        insert_chunks(self.tx, actor.as_bytes(), points).map_err(|e| match e {
            super::StorageError::Core(e) => e,
            super::StorageError::Postgres(e) => core_error(e),
            e => field_core::Error::Backend(Box::new(e)),
        })
    }

    fn insert_shift(&mut self, actor: ActorId, m: &ShiftMark) -> CoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO shift_marks (id, actor, kind, t_ms, lon, lat, cell)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                &[
                    &m.id.to_string(),
                    &actor.as_bytes().as_slice(),
                    &m.kind.as_str(),
                    &m.at.millis(),
                    &m.pos.map(|p| p.lon()),
                    &m.pos.map(|p| p.lat()),
                    &m.cell.as_ref().map(|c| c.to_string()),
                ],
            )
            .map_err(core_error)?;
        Ok(())
    }

    fn load_task(&mut self, id: uuid::Uuid) -> CoreResult<Option<TaskState>> {
        let key = id.to_string();
        self.lock(&key)?;
        let row = self
            .tx
            .query_opt("SELECT state FROM tasks WHERE id = $1", &[&key])
            .map_err(core_error)?;
        row.map(|r| TaskState::from_cbor(r.get::<_, &[u8]>(0)))
            .transpose()
    }

    fn save_task(
        &mut self,
        id: uuid::Uuid,
        state: &TaskState,
        p: &TaskProjection,
        answer_received_ms: Option<i64>,
    ) -> CoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO tasks (id, state, kind, case_id, to_user, due_ms, answered_ms, received_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, kind = excluded.kind,
                   case_id = excluded.case_id, to_user = excluded.to_user, due_ms = excluded.due_ms,
                   answered_ms = excluded.answered_ms,
                   received_ms = COALESCE(excluded.received_ms, tasks.received_ms)",
                &[
                    &id.to_string(),
                    &state.to_cbor(),
                    &p.kind,
                    &p.case.map(|c| c.to_string()),
                    &p.to_user,
                    &p.due_ms,
                    &p.answered_ms,
                    &answer_received_ms,
                ],
            )
            .map_err(core_error)?;
        Ok(())
    }
}

/// Writes `points` of `actor` as chunks (`track_chunks.rs`), in one
/// multi-row statement. A chunk already held (the same batch again) is kept.
pub(super) fn insert_chunks(
    tx: &Tx<'_>,
    actor: &[u8],
    points: &[(u64, TrackPoint)],
) -> super::Result<()> {
    let chunks = super::track_chunks::chunks_of(points);
    if chunks.is_empty() {
        return Ok(());
    }
    let first: Vec<i64> = chunks.iter().map(|c| c.first_seq).collect();
    let t_first: Vec<i64> = chunks.iter().map(|c| c.t_first).collect();
    let t_last: Vec<i64> = chunks.iter().map(|c| c.t_last).collect();
    let n: Vec<i32> = chunks.iter().map(|c| c.n).collect();
    let bytes: Vec<&[u8]> = chunks.iter().map(|c| c.points.as_slice()).collect();
    tx.execute(
        "INSERT INTO track_chunks (actor, first_seq, t_first, t_last, n, points)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::int[], $6::bytea[])
         ON CONFLICT DO NOTHING",
        &[&actor, &first, &t_first, &t_last, &n, &bytes],
    )?;
    Ok(())
}
