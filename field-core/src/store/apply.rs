//! Applying changes: the causal buffer, the idempotence check and the
//! persistence of merged state. The merge itself is `CaseState::apply`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::{Store, set_meta};
use crate::crdt::{CaseState, Change, Op};
use crate::error::{Result, invalid};
use crate::model::{ActorId, CaseId, ShiftMark};

/// What applying a set of remote changes did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApplySummary {
    /// Newly applied (including buffered ones whose gap just filled).
    pub applied: usize,
    /// Already held: ignored.
    pub duplicates: usize,
    /// Changes now waiting in the causal buffer for an earlier change of
    /// their actor (all of them, not only this batch's).
    pub buffered: usize,
}

/// Applies changes inside one open transaction. Each touched case's state
/// stays in memory until [`Applier::finish`] writes it once, and each
/// actor's applied counter is read once: a batch of 1,000 edits to 100
/// cases costs 100 state writes, not 1,000.
#[derive(Default)]
pub(super) struct Applier {
    cases: HashMap<CaseId, CaseState>,
    counters: HashMap<ActorId, u64>,
}

impl Applier {
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
                let state = match self.cases.entry(id) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(load_case(tx, id)?.unwrap_or_default()),
                };
                // `CaseState::apply` checks before it mutates: a refused
                // change leaves the cached state as it was.
                state
                    .apply(change)
                    .map_err(|e| invalid(format!("change {}", change.id()), e.to_string()))?;
            }
            Op::TrackAppend(batch) => super::tracks::insert_points(tx, change.actor, batch)?,
            Op::ShiftMark(mark) => insert_shift(tx, change.actor, mark)?,
        }
        tx.prepare_cached(
            "INSERT INTO changes (actor, counter, hlc, kind, case_id, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            change.actor.as_bytes(),
            change.counter as i64,
            change.hlc.raw() as i64,
            change.op.kind(),
            change.case_id().map(|c| c.to_string()),
            change.to_json(),
        ])?;
        self.counters.insert(change.actor, change.counter);
        Ok(())
    }

    /// Writes every touched case's state and projections.
    pub(super) fn finish(self, tx: &Connection) -> Result<()> {
        for (id, state) in &self.cases {
            save_case(tx, *id, state)?;
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

fn save_case(tx: &Connection, id: CaseId, state: &CaseState) -> Result<()> {
    let view = state.view(id);
    let status = view
        .statuses()
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("|");
    tx.prepare_cached(
        "INSERT INTO cases (id, state, status, conflict, category, cell, reporter, reported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, status = excluded.status,
           conflict = excluded.conflict, category = excluded.category, cell = excluded.cell,
           reporter = excluded.reporter, reported_at = excluded.reported_at",
    )?
    .execute(params![
        id.to_string(),
        state.to_cbor(),
        status,
        view.in_conflict(),
        view.category.as_ref().map(|c| c.to_string()),
        view.placement
            .as_ref()
            .and_then(|p| p.cell.as_ref())
            .map(|c| c.to_string()),
        view.origin.as_ref().map(|o| o.reporter.as_bytes().to_vec()),
        view.origin.as_ref().map(|o| o.reported_at.millis()),
    ])?;
    Ok(())
}

fn insert_shift(tx: &Connection, actor: ActorId, m: &ShiftMark) -> Result<()> {
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

impl Store {
    /// Applies remote changes, in any order, with duplicates, atomically:
    /// either all are taken (applied or buffered) or, if one is malformed,
    /// none is and the error names it.
    pub fn apply_changes(&mut self, changes: Vec<Change>) -> Result<ApplySummary> {
        self.apply_remote(changes, |_| Ok(()))
    }

    /// [`Store::apply_changes`], with `first` run at the start of the same
    /// transaction (a bundle stores its photos there).
    pub(super) fn apply_remote(
        &mut self,
        mut changes: Vec<Change>,
        first: impl FnOnce(&Transaction) -> Result<()>,
    ) -> Result<ApplySummary> {
        let now = self.now_ms();
        for c in &changes {
            Change::check_schema(c.schema)?;
            self.hlc.observe(c.hlc, now)?;
        }
        changes.sort_by_key(|c| (c.actor, c.counter));
        let mut summary = ApplySummary::default();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        first(&tx)?;
        let mut applier = Applier::default();
        for change in &changes {
            let next = applier.applied_counter(&tx, change.actor)? + 1;
            if change.counter < next {
                summary.duplicates += 1;
            } else if change.counter == next {
                applier.apply_and_log(&tx, change)?;
                summary.applied += 1;
                summary.applied += drain_buffer(&tx, &mut applier, change.actor, next + 1)?;
            } else {
                let inserted = tx
                    .prepare_cached("INSERT OR IGNORE INTO pending_changes (actor, counter, body) VALUES (?1, ?2, ?3)")?
                    .execute(params![change.actor.as_bytes(), change.counter as i64, change.to_json()])?;
                if inserted == 0 {
                    summary.duplicates += 1;
                }
            }
        }
        applier.finish(&tx)?;
        set_meta(&tx, "hlc", &self.hlc.last().raw().to_string())?;
        let waiting: i64 =
            tx.query_row("SELECT COUNT(*) FROM pending_changes", [], |r| r.get(0))?;
        summary.buffered = waiting as usize;
        tx.commit()?;
        Ok(summary)
    }

    /// Number of remote changes waiting for an earlier change of their actor.
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

/// Applies buffered changes of `actor` from counter `from` while they are
/// contiguous; returns how many.
fn drain_buffer(
    tx: &Transaction,
    applier: &mut Applier,
    actor: ActorId,
    from: u64,
) -> Result<usize> {
    let mut n = 0;
    let mut next = from;
    loop {
        let body: Option<String> = tx
            .prepare_cached("SELECT body FROM pending_changes WHERE actor = ?1 AND counter = ?2")?
            .query_row(params![actor.as_bytes(), next as i64], |r| r.get(0))
            .optional()?;
        let Some(body) = body else { return Ok(n) };
        let change = Change::from_json(&body)?;
        applier.apply_and_log(tx, &change)?;
        tx.prepare_cached("DELETE FROM pending_changes WHERE actor = ?1 AND counter = ?2")?
            .execute(params![actor.as_bytes(), next as i64])?;
        n += 1;
        next += 1;
    }
}
