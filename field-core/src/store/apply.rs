//! Applying changes: the causal buffer, the idempotence check and the
//! persistence of merged state. The merge itself is `CaseState::apply`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::{Store, set_meta};
use crate::crdt::ChangeId;
use crate::crdt::{CaseState, Change, Op};
use crate::error::{Result, invalid};
use crate::geo::CellIndex;
use crate::model::{ActorId, CaseId, ShiftMark};

/// What applying a set of remote changes did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApplySummary {
    /// Newly applied (including buffered ones whose gap just filled).
    pub applied: usize,
    /// Already held: ignored.
    pub duplicates: usize,
    /// Changes now waiting in the causal buffer (all of them, not only
    /// this batch's).
    pub buffered: usize,
    /// Changes refused by the merge (a report of a case someone else holds,
    /// a counter reused with other content, a malformed op), with the reason:
    /// nothing of them was written, the others were taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

/// Applies changes inside one open transaction. Each touched case's state
/// stays in memory until [`Applier::finish`] writes it once, and each
/// actor's applied counter is read once: a batch of 1,000 edits to 100
/// cases costs 100 state writes, not 1,000.
#[derive(Default)]
pub(super) struct Applier {
    /// This replica's wall clock when the batch began: the changes' receipt time.
    now_ms: i64,
    cases: HashMap<CaseId, CaseState>,
    counters: HashMap<ActorId, u64>,
}

impl Applier {
    pub(super) fn at(now_ms: u64) -> Applier {
        Applier {
            now_ms: now_ms as i64,
            ..Applier::default()
        }
    }

    /// The highest counter of `actor` applied here. Changes of an actor are
    /// applied without gaps, so every counter up to this one is present.
    pub(super) fn applied_counter(&mut self, tx: &Connection, actor: ActorId) -> Result<u64> {
        if let Some(n) = self.counters.get(&actor) {
            return Ok(*n);
        }
        let n: Option<i64> = tx
            .prepare_cached("SELECT MAX(counter) FROM changes WHERE actor = ?1")?
            .query_row([actor.as_bytes()], |r| r.get(0))?;
        let n = n.unwrap_or(0) as u64;
        self.counters.insert(actor, n);
        Ok(n)
    }

    /// Applies a change to state and appends it to the log. The caller has
    /// checked it is the next change of its actor.
    pub(super) fn apply_and_log(&mut self, tx: &Connection, change: &Change) -> Result<()> {
        match &change.op {
            Op::CaseReport(_) | Op::CaseEdit(_) | Op::StatusSet(_) => {
                let id = change.case_id().expect("case ops name their case");
                let state = self.case(tx, id)?;
                // `CaseState::apply` checks before it mutates: a refused
                // change leaves the cached state as it was.
                state
                    .apply(change)
                    .map_err(|e| invalid(format!("change {}", change.id()), e.to_string()))?;
            }
            Op::TrackAppend(batch) => super::tracks::insert_points(tx, change.actor, batch)?,
            Op::ShiftMark(mark) => insert_shift(tx, change.actor, mark)?,
            Op::TaskAssign(_) | Op::TaskAnswer(_) => super::tasks::apply(tx, change, self.now_ms)?,
        }
        tx.prepare_cached(
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
            self.now_ms,
        ])?;
        self.counters.insert(change.actor, change.counter);
        Ok(())
    }

    /// Writes every touched case's state and projections.
    /// Cases placed without a cell (reported before the device had the
    /// grid) get their cell from `grid` in the `cell` projection, so
    /// queries by cell find them; the replicated placement is unchanged.
    pub(super) fn finish(self, tx: &Connection, grid: Option<&CellIndex>) -> Result<()> {
        for (id, state) in &self.cases {
            save_case(tx, *id, state, grid)?;
        }
        Ok(())
    }
}

pub(super) fn load_case(tx: &rusqlite::Connection, id: CaseId) -> Result<Option<CaseState>> {
    let bytes: Option<Vec<u8>> = tx
        .prepare_cached("SELECT state FROM cases WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    bytes.map(|b| CaseState::from_cbor(&b)).transpose()
}

pub(super) fn save_case(
    tx: &Connection,
    id: CaseId,
    state: &CaseState,
    grid: Option<&CellIndex>,
) -> Result<()> {
    let view = state.view(id);
    let status = view
        .statuses()
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("|");
    let pos = view.placement.as_ref().map(|p| p.pos);
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
        status,
        view.in_conflict(),
        view.category.as_ref().map(|c| c.to_string()),
        view.placement.as_ref().and_then(|p| {
            p.cell
                .as_ref()
                .or_else(|| grid.and_then(|g| g.locate(p.pos)).map(|c| &c.code))
                .map(|c| c.to_string())
        }),
        view.origin.as_ref().map(|o| o.reporter.as_bytes().to_vec()),
        view.origin.as_ref().map(|o| o.reported_at.millis()),
        view.origin.as_ref().map(|o| o.collector.as_str()),
        pos.map(|p| p.lon()),
        pos.map(|p| p.lat()),
    ])?;
    tx.prepare_cached("DELETE FROM case_photos WHERE case_id = ?1")?
        .execute([id.to_string()])?;
    let mut add =
        tx.prepare_cached("INSERT OR IGNORE INTO case_photos (hash, case_id) VALUES (?1, ?2)")?;
    for p in &view.photos {
        add.execute(params![p.hash.as_str(), id.to_string()])?;
    }
    Ok(())
}

/// The body held under a change id, in the log or the causal buffer.
fn held_body(conn: &Connection, id: ChangeId) -> Result<Option<String>> {
    let key = params![id.actor.as_bytes(), id.counter as i64];
    let logged: Option<String> = conn
        .prepare_cached("SELECT body FROM changes WHERE actor = ?1 AND counter = ?2")?
        .query_row(key, |r| r.get(0))
        .optional()?;
    if logged.is_some() {
        return Ok(logged);
    }
    Ok(conn
        .prepare_cached("SELECT body FROM pending_changes WHERE actor = ?1 AND counter = ?2")?
        .query_row(key, |r| r.get(0))
        .optional()?)
}

pub(super) fn insert_shift(tx: &Connection, actor: ActorId, m: &ShiftMark) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO shift_marks (id, actor, kind, t_ms, lon, lat, cell)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        m.id.to_string(),
        actor.as_bytes(),
        serde_json::to_value(m.kind)?.as_str().unwrap_or_default(),
        m.at.millis(),
        m.pos.map(|p| p.lon()),
        m.pos.map(|p| p.lat()),
        m.cell.as_ref().map(|c| c.to_string()),
    ])?;
    Ok(())
}

/// What happened to one remote change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Judgement {
    /// Merged into state and appended to the log.
    Applied,
    /// Already held (in the log or the buffer): nothing done.
    Duplicate,
    /// This (actor, counter) is held with other content: the author's
    /// device re-issued a counter (it was restored from a backup). Nothing
    /// done; the author must re-sign the change under a new actor.
    Reused,
    /// Held durably in the causal buffer until an earlier change of the same
    /// case by the same author arrives.
    Buffered,
    /// Not acceptable; nothing of it was written.
    Refused(String),
}

impl Store {
    /// Applies remote changes, in any order, with duplicates, in one
    /// transaction; a change the merge refuses is listed in the summary and
    /// the others are taken.
    pub fn apply_changes(&mut self, changes: Vec<Change>) -> Result<ApplySummary> {
        self.apply_remote(changes, |_| Ok(()))
    }

    /// [`Store::apply_changes`], with `first` run at the start of the same
    /// transaction (a bundle stores its photos there).
    pub(super) fn apply_remote(
        &mut self,
        changes: Vec<Change>,
        first: impl FnOnce(&Transaction) -> Result<()>,
    ) -> Result<ApplySummary> {
        let judged = self.apply_batch(changes, first)?;
        let mut summary = ApplySummary::default();
        for (id, j) in &judged {
            match j {
                Judgement::Applied => summary.applied += 1,
                Judgement::Duplicate => summary.duplicates += 1,
                Judgement::Buffered => {}
                Judgement::Reused => summary
                    .refused
                    .push(format!("{id}: this counter is held with other content")),
                Judgement::Refused(why) => summary.refused.push(why.clone()),
            }
        }
        summary.buffered = self.buffered_count()? as usize;
        Ok(summary)
    }

    /// Applies remote changes judging each on its own: a refused change is
    /// reported with its reason and the others still apply (the server's
    /// batch rule). One transaction; only storage failures are errors.
    pub fn apply_judged(&mut self, changes: Vec<Change>) -> Result<Vec<(ChangeId, Judgement)>> {
        self.apply_batch(changes, |_| Ok(()))
    }

    fn apply_batch(
        &mut self,
        changes: Vec<Change>,
        first: impl FnOnce(&Transaction) -> Result<()>,
    ) -> Result<Vec<(ChangeId, Judgement)>> {
        let now = self.now_ms();
        self.load_cell_index()?;
        // Delivery order, never re-sorted: the merge commutes for honest
        // changes, and of two reports of one case the one delivered first
        // (the one the sender held first) keeps it — sorting by actor would
        // let a forger pick an actor id that sorts ahead of the owner's.
        let order = 0..changes.len();
        let mut out: Vec<Option<(ChangeId, Judgement)>> = vec![None; changes.len()];
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        first(&tx)?;
        let mut applier = Applier::at(now);
        for i in order {
            let change = &changes[i];
            let judged = Change::check_schema(change.schema)
                .and_then(|()| self.hlc.observe(change.hlc, now))
                .and_then(|()| applier.take(&tx, change));
            let judgement = match judged {
                Ok(j) => j,
                // Storage failures end the batch (nothing is committed);
                // a change that is wrong in itself is refused alone.
                Err(e @ (crate::Error::Sqlite(_) | crate::Error::Io { .. })) => return Err(e),
                Err(e) => Judgement::Refused(e.to_string()),
            };
            out[i] = Some((change.id(), judgement));
        }
        applier.finish(&tx, self.cell_index.as_ref())?;
        set_meta(&tx, "hlc", &self.hlc.last().raw().to_string())?;
        tx.commit()?;
        Ok(out
            .into_iter()
            .map(|o| o.expect("every change judged"))
            .collect())
    }

    /// The body held under a change id, in the log or the causal buffer.
    pub fn change_body(&self, id: ChangeId) -> Result<Option<String>> {
        held_body(&self.conn, id)
    }

    /// Number of remote changes waiting in the causal buffer.
    pub fn buffered_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM pending_changes", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Number of changes in the log (applied, local and remote).
    pub fn change_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

impl Applier {
    /// Takes one remote change: a duplicate, ready to apply, or waiting.
    fn take(&mut self, tx: &Connection, change: &Change) -> Result<Judgement> {
        change.check_bounds()?;
        if let Some(held) = self.held_body(tx, change)? {
            return Ok(if held == change.to_json() {
                Judgement::Duplicate
            } else {
                Judgement::Reused
            });
        }
        if self.waits(tx, change)? {
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO pending_changes (actor, counter, body, case_id) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    change.actor.as_bytes(),
                    change.counter as i64,
                    change.to_json(),
                    change.case_id().map(|c| c.to_string())
                ])?;
            return Ok(if inserted == 1 {
                Judgement::Buffered
            } else {
                Judgement::Duplicate
            });
        }
        self.apply_and_log(tx, change)?;
        if let Some(case) = change.case_id() {
            self.drain_buffer(tx, case)?;
        }
        Ok(Judgement::Applied)
    }

    fn holds(&self, tx: &Connection, change: &Change) -> Result<bool> {
        Ok(self.held_body(tx, change)?.is_some())
    }

    fn held_body(&self, tx: &Connection, change: &Change) -> Result<Option<String>> {
        held_body(tx, change.id())
    }

    /// The one ordering the merge needs: an author's photo adds to a case
    /// come in the order of their dots (the OR-set drops a dot that skips
    /// ahead). Everything else commutes, so a partial replica that receives
    /// only some cases' changes never waits on the others.
    fn waits(&mut self, tx: &Connection, change: &Change) -> Result<bool> {
        let dot = match &change.op {
            Op::CaseReport(r) if !r.photos.is_empty() => r.photo_dot,
            Op::CaseEdit(e) if !e.add_photos.is_empty() => match e.photo_dot {
                Some(d) => d,
                None => return Ok(false),
            },
            _ => return Ok(false),
        };
        let id = change.case_id().expect("case ops name their case");
        Ok(dot > self.case(tx, id)?.next_photo_dot(change.actor))
    }

    fn case(&mut self, tx: &Connection, id: CaseId) -> Result<&mut CaseState> {
        Ok(match self.cases.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(load_case(tx, id)?.unwrap_or_default()),
        })
    }

    /// Applies buffered changes of `case` that have become ready, until none is.
    fn drain_buffer(&mut self, tx: &Connection, case: CaseId) -> Result<()> {
        loop {
            let waiting: Vec<String> = tx
                .prepare_cached(
                    "SELECT body FROM pending_changes WHERE case_id = +?1 ORDER BY actor, counter",
                )?
                .query_map([case.to_string()], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut progressed = false;
            for body in waiting {
                let change = Change::from_json(&body)?;
                if self.waits(tx, &change)? {
                    continue;
                }
                tx.prepare_cached("DELETE FROM pending_changes WHERE actor = ?1 AND counter = ?2")?
                    .execute(params![change.actor.as_bytes(), change.counter as i64])?;
                if !self.holds(tx, &change)?
                    && let Err(e) = self.apply_and_log(tx, &change)
                {
                    // A held change the merge refuses once its turn comes
                    // is dropped, never left to wedge the case's buffer.
                    if matches!(e, crate::Error::Sqlite(_) | crate::Error::Io { .. }) {
                        return Err(e);
                    }
                }
                progressed = true;
            }
            if !progressed {
                return Ok(());
            }
        }
    }
}
