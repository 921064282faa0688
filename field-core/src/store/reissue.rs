//! Re-issuing a device's unsent changes under a new actor. Two things force
//! it, and both would otherwise lose data silently:
//! - the device was restored from a backup, so its counters run again over
//!   changes the server already holds with other content;
//! - its clock ran ahead, so its hybrid clock keeps stamping a future the
//!   server refuses until real time catches up.
//!
//! A new actor starts a fresh counter and clock; every unsent change is
//! re-signed under it (counter, stamp, report author, photo dots), its
//! times clamped to the corrected clock, and the cases it touches are
//! rebuilt from the log. The old actor's changes the server holds stay the
//! device's own (the server keeps the lineage) and come back by a re-pull.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{TransactionBehavior, params};

use super::{MergeRows, Store, set_meta};
use crate::crdt::{CaseState, Change, Hlc, HlcGenerator, Op};
use crate::error::Result;
use crate::model::{ActorId, CaseId, Timestamp};

/// What one re-issue did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reissue {
    pub previous: ActorId,
    pub actor: ActorId,
    pub changes: usize,
}

fn clamp(t: &mut Timestamp, now_ms: i64) -> Result<()> {
    if t.millis() > now_ms {
        *t = Timestamp::from_millis("at", now_ms)?;
    }
    Ok(())
}

impl Store {
    /// Re-signs this device's own changes from log position `from_seq` on
    /// under a fresh actor, which becomes this device's. `repull` rewinds
    /// the pull cursor so the device receives its earlier actors' changes
    /// again (a restored backup lacks them). The new actor must be announced
    /// to the server before the next push ([`Store::successor_pending`]).
    pub fn reissue(&mut self, from_seq: u64, repull: bool) -> Result<Reissue> {
        let old = self.actor;
        let new = uuid::Uuid::new_v4();
        let now = self.now_ms();
        self.load_cell_index()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String)> = tx
            .prepare("SELECT log_seq, body FROM changes WHERE actor = ?1 AND log_seq >= ?2 ORDER BY log_seq")?
            .query_map(params![old.as_bytes(), from_seq as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut hlc = HlcGenerator::resume(Hlc::default());
        // Photo dots of the new actor per case, and of the old one kept.
        let mut dots: BTreeMap<CaseId, u64> = BTreeMap::new();
        let mut kept: BTreeMap<CaseId, u64> = BTreeMap::new();
        let mut touched = BTreeSet::new();
        let now_i = now as i64;
        for (i, (seq, body)) in rows.iter().enumerate() {
            let mut ch = Change::from_json(body)?;
            ch.actor = new;
            ch.counter = i as u64 + 1;
            ch.hlc = hlc.tick(ch.hlc.physical_ms().min(now));
            if let Some(case) = ch.case_id() {
                touched.insert(case);
                if let std::collections::btree_map::Entry::Vacant(e) = kept.entry(case) {
                    e.insert(kept_dot(&tx, old, case, from_seq)?);
                }
            }
            match &mut ch.op {
                Op::CaseReport(r) => {
                    r.origin.reporter = new;
                    clamp(&mut r.origin.reported_at, now_i)?;
                    if !r.photos.is_empty() {
                        let d = dots.entry(r.case).or_default();
                        *d += 1;
                        r.photo_dot = *d;
                    }
                }
                Op::CaseEdit(e) => {
                    if !e.add_photos.is_empty() {
                        let d = dots.entry(e.case).or_default();
                        *d += 1;
                        e.photo_dot = Some(*d);
                    }
                    if let Some(seen_old) = e.seen.get_mut(&old) {
                        *seen_old = (*seen_old).min(kept.get(&e.case).copied().unwrap_or(0));
                    }
                    let mine = dots.get(&e.case).copied().unwrap_or(0);
                    if !e.remove_photos.is_empty() && mine > 0 {
                        e.seen.insert(new, mine);
                    }
                    e.seen.retain(|_, c| *c > 0);
                }
                Op::StatusSet(s) => {
                    clamp(&mut s.at, now_i)?;
                    if let Some(c) = s.context.remove(&old) {
                        s.context.insert(new, c.min(1));
                    }
                }
                Op::TrackAppend(batch) => {
                    tx.execute(
                        "DELETE FROM track_points WHERE actor = ?1 AND seq >= ?2 AND seq < ?3",
                        params![
                            old.as_bytes(),
                            batch.first_seq as i64,
                            (batch.first_seq + batch.len() as u64) as i64
                        ],
                    )?;
                    let last = batch.t0_ms + batch.dt_ms.iter().skip(1).sum::<i64>();
                    if last > now_i {
                        batch.t0_ms -= last - now_i;
                    }
                    super::SqliteRows(&tx).insert_points(new, &batch.decode()?)?;
                }
                Op::TrackGap(g) => {
                    clamp(&mut g.from, now_i)?;
                    clamp(&mut g.to, now_i)?;
                }
                Op::ShiftMark(m) => {
                    clamp(&mut m.at, now_i)?;
                    tx.execute("DELETE FROM shift_marks WHERE id = ?1", [m.id.to_string()])?;
                    super::SqliteRows(&tx).insert_shift(new, m)?;
                }
                Op::TaskAnswer(a) => clamp(&mut a.answered_at, now_i)?,
                Op::TaskAssign(_) => {}
            }
            tx.execute(
                "UPDATE changes SET actor = ?1, counter = ?2, hlc = ?3, body = ?4 WHERE log_seq = ?5",
                params![
                    new.as_bytes(),
                    ch.counter as i64,
                    ch.hlc.raw() as i64,
                    ch.to_json(),
                    seq
                ],
            )?;
            if matches!(ch.op, Op::TaskAnswer(_)) {
                super::apply::reapply_task(&tx, &ch, now_i)?;
            }
        }
        for case in touched {
            replay_case(&tx, case, self.cell_index.as_ref())?;
        }
        set_meta(&tx, "actor", &new.to_string())?;
        set_meta(&tx, "hlc", &hlc.last().raw().to_string())?;
        set_meta(&tx, "successor_pending", &new.to_string())?;
        if repull {
            set_meta(&tx, "pull_cursor", "0")?;
        }
        tx.commit()?;
        self.actor = new;
        self.hlc = hlc;
        Ok(Reissue {
            previous: old,
            actor: new,
            changes: rows.len(),
        })
    }

    /// The actor this device became and has not yet announced to its server.
    pub fn successor_pending(&self) -> Result<Option<ActorId>> {
        Ok(super::get_meta(&self.conn, "successor_pending")?
            .and_then(|a| uuid::Uuid::parse_str(&a).ok()))
    }

    pub fn successor_announced(&mut self) -> Result<()> {
        self.conn
            .execute("DELETE FROM meta WHERE key = 'successor_pending'", [])?;
        Ok(())
    }
}

/// The old actor's highest photo dot in `case` among changes it keeps.
fn kept_dot(tx: &rusqlite::Connection, old: ActorId, case: CaseId, from_seq: u64) -> Result<u64> {
    let bodies: Vec<String> = tx
        .prepare_cached(
            "SELECT body FROM changes WHERE actor = ?1 AND case_id = ?2 AND log_seq < ?3",
        )?
        .query_map(
            params![old.as_bytes(), case.to_string(), from_seq as i64],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut max = 0;
    for b in bodies {
        match Change::from_json(&b)?.op {
            Op::CaseReport(r) if !r.photos.is_empty() => max = max.max(r.photo_dot),
            Op::CaseEdit(e) if !e.add_photos.is_empty() => max = max.max(e.photo_dot.unwrap_or(0)),
            _ => {}
        }
    }
    Ok(max)
}

/// Rebuilds one case's state from the log, in log order.
pub(super) fn replay_case(
    tx: &rusqlite::Connection,
    case: CaseId,
    grid: Option<&crate::geo::CellIndex>,
) -> Result<()> {
    let bodies: Vec<String> = tx
        .prepare_cached("SELECT body FROM changes WHERE case_id = ?1 ORDER BY log_seq")?
        .query_map([case.to_string()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut state = CaseState::default();
    for b in bodies {
        // A change the rebuilt state cannot take stays in the log and is
        // judged again wherever it goes.
        let _ = state.apply(&Change::from_json(&b)?);
    }
    super::apply::save_case(tx, case, &state, grid)
}
