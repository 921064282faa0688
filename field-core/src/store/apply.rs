//! Applying changes: the causal buffer, the idempotence check and the
//! persistence of merged state. The merge itself is `CaseState::apply`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde::Serialize;

use super::merge_rows::{CaseProjection, MergeRows, SqliteRows, TaskProjection};
use super::{Store, set_meta};
use crate::crdt::ChangeId;
use crate::crdt::{CaseState, Change, HlcGenerator, Op};
use crate::error::{Result, invalid};
use crate::geo::CellIndex;
use crate::model::{ActorId, CaseId};

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

/// Applies changes inside one open transaction, on any backend's rows.
/// Each touched case's state stays in memory until [`Applier::finish`]
/// writes it once, and each actor's applied counter is read once: a batch
/// of 1,000 edits to 100 cases costs 100 state writes, not 1,000.
#[derive(Default)]
pub struct Applier {
    /// This replica's wall clock when the batch began: the changes' receipt time.
    now_ms: i64,
    cases: HashMap<CaseId, CaseState>,
    counters: HashMap<ActorId, u64>,
}

impl Applier {
    pub fn at(now_ms: u64) -> Applier {
        Applier {
            now_ms: now_ms as i64,
            ..Applier::default()
        }
    }

    /// The highest counter of `actor` applied here. Changes of an actor are
    /// applied without gaps, so every counter up to this one is present.
    pub fn applied_counter(&mut self, rows: &mut impl MergeRows, actor: ActorId) -> Result<u64> {
        if let Some(n) = self.counters.get(&actor) {
            return Ok(*n);
        }
        let n = rows.applied_counter(actor)?;
        self.counters.insert(actor, n);
        Ok(n)
    }

    /// Stamps `op` as `actor`'s next change (this replica writes as that
    /// actor: a device itself, or a staff member at the server), applies and
    /// logs it.
    pub fn emit(
        &mut self,
        rows: &mut impl MergeRows,
        actor: ActorId,
        hlc: &mut HlcGenerator,
        op: Op,
    ) -> Result<Change> {
        let change = Change {
            schema: crate::crdt::CHANGE_SCHEMA,
            actor,
            counter: self.applied_counter(rows, actor)? + 1,
            hlc: hlc.tick(self.now_ms.max(0) as u64),
            op,
        };
        change.check_bounds()?;
        self.apply_and_log(rows, &change)?;
        Ok(change)
    }

    /// Applies a change to state and appends it to the log. The caller has
    /// checked it is the next change of its actor.
    pub fn apply_and_log(&mut self, rows: &mut impl MergeRows, change: &Change) -> Result<()> {
        match &change.op {
            Op::CaseReport(_) | Op::CaseEdit(_) | Op::StatusSet(_) => {
                let id = change.case_id().expect("case ops name their case");
                let state = self.case(rows, id)?;
                // `CaseState::apply` checks before it mutates: a refused
                // change leaves the cached state as it was.
                state
                    .apply(change)
                    .map_err(|e| invalid(format!("change {}", change.id()), e.to_string()))?;
            }
            Op::TrackAppend(batch) => rows.insert_points(change.actor, &batch.decode()?)?,
            // The log is where gaps are read from.
            Op::TrackGap(gap) => gap.check()?,
            Op::ShiftMark(mark) => rows.insert_shift(change.actor, mark)?,
            Op::TaskAssign(_) | Op::TaskAnswer(_) => apply_task(rows, change, self.now_ms)?,
        }
        rows.log(change, self.now_ms)?;
        self.counters.insert(change.actor, change.counter);
        Ok(())
    }

    /// Writes every touched case's state and projections (cells located
    /// with `grid` where the report carries none).
    pub fn finish(self, rows: &mut impl MergeRows, grid: Option<&CellIndex>) -> Result<()> {
        let mut ids: Vec<_> = self.cases.keys().copied().collect();
        ids.sort();
        for id in ids {
            let state = &self.cases[&id];
            rows.save_case(id, state, &CaseProjection::of(id, state, grid))?;
        }
        Ok(())
    }

    /// Judges one remote change: its schema, its clock against `hlc` (which
    /// observes it), then [`Applier::take`]. A change wrong in itself is
    /// refused alone; only a storage failure is an error (and ends the batch).
    pub fn judge(
        &mut self,
        rows: &mut impl MergeRows,
        change: &Change,
        hlc: &mut HlcGenerator,
    ) -> Result<Judgement> {
        let judged = Change::check_schema(change.schema)
            .and_then(|()| hlc.observe(change.hlc, self.now_ms.max(0) as u64))
            .and_then(|()| self.take(rows, change));
        match judged {
            Ok(j) => Ok(j),
            Err(e) if e.is_storage_failure() => Err(e),
            Err(e) => Ok(Judgement::Refused(e.to_string())),
        }
    }
}

/// Merges a task change and keeps the projections queries need.
fn apply_task(rows: &mut impl MergeRows, change: &Change, now_ms: i64) -> Result<()> {
    let id = change.task_id().expect("task ops name their task");
    let mut state = rows.load_task(id)?.unwrap_or_default();
    let before = state.answer.marker;
    state
        .apply(change)
        .map_err(|e| invalid(format!("change {}", change.id()), e.to_string()))?;
    let answer_won = matches!(change.op, Op::TaskAnswer(_)) && state.answer.marker != before;
    rows.save_task(
        id,
        &state,
        &TaskProjection::of(id, &state),
        answer_won.then_some(now_ms),
    )
}

pub(super) fn load_case(tx: &Connection, id: CaseId) -> Result<Option<CaseState>> {
    SqliteRows(tx).load_case(id)
}

pub(super) fn save_case(
    tx: &Connection,
    id: CaseId,
    state: &CaseState,
    grid: Option<&CellIndex>,
) -> Result<()> {
    SqliteRows(tx).save_case(id, state, &CaseProjection::of(id, state, grid))
}

/// A task change re-applied outside a batch (a re-issued answer).
pub(super) fn reapply_task(tx: &Connection, change: &Change, now_ms: i64) -> Result<()> {
    apply_task(&mut SqliteRows(tx), change, now_ms)
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
        let mut rows = SqliteRows(&tx);
        for i in order {
            let change = &changes[i];
            let judgement = applier.judge(&mut rows, change, &mut self.hlc)?;
            out[i] = Some((change.id(), judgement));
        }
        applier.finish(&mut rows, self.cell_index.as_ref())?;
        set_meta(&tx, "hlc", &self.hlc.last().raw().to_string())?;
        tx.commit()?;
        Ok(out
            .into_iter()
            .map(|o| o.expect("every change judged"))
            .collect())
    }

    /// The body held under a change id, in the log or the causal buffer.
    pub fn change_body(&self, id: ChangeId) -> Result<Option<String>> {
        SqliteRows(&self.conn).held_body(id)
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
    pub fn take(&mut self, rows: &mut impl MergeRows, change: &Change) -> Result<Judgement> {
        change.check_bounds()?;
        if let Some(held) = rows.held_body(change.id())? {
            return Ok(if change.is_held_as(&held) {
                Judgement::Duplicate
            } else {
                Judgement::Reused
            });
        }
        if self.waits(rows, change)? {
            return Ok(if rows.buffer(change)? {
                Judgement::Buffered
            } else {
                Judgement::Duplicate
            });
        }
        self.apply_and_log(rows, change)?;
        if let Some(case) = change.case_id() {
            self.drain_buffer(rows, case)?;
        }
        Ok(Judgement::Applied)
    }

    /// The one ordering the merge needs: an author's photo adds to a case
    /// come in the order of their dots (the OR-set drops a dot that skips
    /// ahead). Everything else commutes, so a partial replica that receives
    /// only some cases' changes never waits on the others.
    fn waits(&mut self, rows: &mut impl MergeRows, change: &Change) -> Result<bool> {
        let dot = match &change.op {
            Op::CaseReport(r) if !r.photos.is_empty() => r.photo_dot,
            Op::CaseEdit(e) if !e.add_photos.is_empty() => match e.photo_dot {
                Some(d) => d,
                None => return Ok(false),
            },
            _ => return Ok(false),
        };
        let id = change.case_id().expect("case ops name their case");
        Ok(dot > self.case(rows, id)?.next_photo_dot(change.actor))
    }

    fn case(&mut self, rows: &mut impl MergeRows, id: CaseId) -> Result<&mut CaseState> {
        Ok(match self.cases.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(rows.load_case(id)?.unwrap_or_default()),
        })
    }

    /// Applies buffered changes of `case` that have become ready, until none is.
    fn drain_buffer(&mut self, rows: &mut impl MergeRows, case: CaseId) -> Result<()> {
        loop {
            let waiting = rows.buffered_for_case(case)?;
            let mut progressed = false;
            for body in waiting {
                let change = Change::from_json(&body)?;
                if self.waits(rows, &change)? {
                    continue;
                }
                rows.unbuffer(change.id())?;
                if rows.held_body(change.id())?.is_none()
                    && let Err(e) = self.apply_and_log(rows, &change)
                {
                    // A held change the merge refuses once its turn comes
                    // is dropped, never left to wedge the case's buffer.
                    if e.is_storage_failure() {
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
