//! The recorder's persistence: fixes are journalled as they arrive (one
//! transaction a call, so a fix is durable when the call returns: nothing
//! is lost to a kill), the recorder's state lives beside them, and the
//! journal is sealed into changes — the gaps found, then the points in
//! track changes of up to a change's worth — at a sync, at a stop, or when
//! a change's worth waits. A day of track costs a few changes, not one per
//! fix. The rules are `crate::recorder`.
//!
//! Journalling writes no change, so a [`FixJournal`] — its own connection
//! to the store's file — takes fixes while the store itself is busy with a
//! sync: the location service never waits for the network.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior, params};
use serde::Serialize;

use super::{Store, get_meta, open_connection, set_meta};
use crate::crdt::change::MAX_POINTS_PER_CHANGE;
use crate::crdt::{Op, TrackBatch};
use crate::error::{Error, Result, invalid};
use crate::model::{TrackGap, TrackPoint};
use crate::recorder::{Fix, RecorderRules, RecorderState};

/// Most fixes one call takes.
pub const MAX_FIXES_PER_CALL: usize = 10_000;

const STATE_KEY: &str = "recorder";

/// What a call to the recorder did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Recorded {
    /// Fixes taken into the journal (mock ones included).
    pub fixes: u64,
    /// Of those, flagged as mock (not part of the track).
    pub mock: u64,
    /// Fixes at or before the newest one already taken: ignored.
    pub stale: u64,
    /// Gaps that ended with these fixes (or with the start or stop).
    pub gaps: Vec<TrackGap>,
    /// Points sealed into track changes by this call.
    pub sealed: u64,
}

fn load_state(conn: &Connection) -> Result<RecorderState> {
    match get_meta(conn, STATE_KEY)? {
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("recorder state: {e}")))
        }
        None => Ok(RecorderState::default()),
    }
}

fn save_state(conn: &Connection, state: &RecorderState) -> Result<()> {
    let text =
        serde_json::to_string(state).map_err(|e| Error::Corrupt(format!("recorder state: {e}")))?;
    set_meta(conn, STATE_KEY, &text)
}

/// One transaction over the recorder's state.
fn with_state<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection, &mut RecorderState) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut state = load_state(&tx)?;
    let out = f(&tx, &mut state)?;
    save_state(&tx, &state)?;
    tx.commit()?;
    Ok(out)
}

fn check_fixes(fixes: &[Fix]) -> Result<()> {
    if fixes.len() > MAX_FIXES_PER_CALL {
        return Err(invalid(
            "fixes",
            format!("{} in one call (max {MAX_FIXES_PER_CALL})", fixes.len()),
        ));
    }
    for (i, f) in fixes.iter().enumerate() {
        f.point().map_err(|e| match e {
            Error::Invalid { field, reason } => invalid(format!("fixes[{i}].{field}"), reason),
            other => other,
        })?;
        if f.bearing_deg.is_some_and(|b| !(0.0..=360.0).contains(&b)) {
            return Err(invalid(
                format!("fixes[{i}].bearing_deg"),
                "not within 0–360",
            ));
        }
        if f.provider.as_ref().is_some_and(|p| p.len() > 32) {
            return Err(invalid(
                format!("fixes[{i}].provider"),
                "longer than 32 bytes",
            ));
        }
    }
    Ok(())
}

fn start(conn: &mut Connection, now_ms: i64) -> Result<Recorded> {
    with_state(conn, |_, state| {
        let gaps = state.start(now_ms, &RecorderRules::default())?;
        state.pending_gaps.extend(&gaps);
        Ok(Recorded {
            gaps,
            ..Recorded::default()
        })
    })
}

fn stop(conn: &mut Connection) -> Result<Recorded> {
    with_state(conn, |_, state| {
        let gaps = state.stop()?;
        state.pending_gaps.extend(&gaps);
        Ok(Recorded {
            gaps,
            ..Recorded::default()
        })
    })
}

fn record(conn: &mut Connection, fixes: &[Fix]) -> Result<Recorded> {
    check_fixes(fixes)?;
    let mut sorted: Vec<&Fix> = fixes.iter().collect();
    sorted.sort_by_key(|f| f.at);
    with_state(conn, |tx, state| {
        let rules = RecorderRules::default();
        let mut out = Recorded::default();
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO raw_fixes
             (t_ms, lon, lat, accuracy_m, speed_mps, bearing_deg, provider, mock)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for f in sorted {
            let step = state.feed(f, &rules)?;
            if step.stale {
                out.stale += 1;
                continue;
            }
            insert.execute(params![
                f.at.millis(),
                f.pos.lon(),
                f.pos.lat(),
                f.accuracy_m,
                f.speed_mps,
                f.bearing_deg,
                f.provider,
                f.mock
            ])?;
            out.fixes += 1;
            out.mock += f.mock as u64;
            state.pending_gaps.extend(&step.gaps);
            out.gaps.extend(step.gaps);
        }
        Ok(out)
    })
}

fn waiting(conn: &Connection) -> Result<usize> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM raw_fixes WHERE sealed = 0 AND mock = 0",
        [],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

/// The recorder's own connection to a store's file: takes fixes while
/// the [`Store`] is busy (a sync). It writes no change; the store seals
/// what it journalled.
pub struct FixJournal {
    conn: Connection,
}

impl FixJournal {
    /// Opens the journal of an existing store.
    pub fn open(path: &Path) -> Result<FixJournal> {
        if !path.exists() {
            return Err(invalid(
                "path",
                format!("{}: no store here", path.display()),
            ));
        }
        Ok(FixJournal {
            conn: open_connection(path)?,
        })
    }

    /// The recorder starts at `now_ms` (the device's corrected clock).
    pub fn start(&mut self, now_ms: i64) -> Result<Recorded> {
        start(&mut self.conn, now_ms)
    }

    pub fn stop(&mut self) -> Result<Recorded> {
        stop(&mut self.conn)
    }

    pub fn record(&mut self, fixes: &[Fix]) -> Result<Recorded> {
        record(&mut self.conn, fixes)
    }

    /// Fixes journalled and not yet sealed into the track.
    pub fn waiting(&self) -> Result<usize> {
        waiting(&self.conn)
    }
}

impl Store {
    /// The recorder starts (the app was opened, a shift began). A recorder
    /// found running after a silence was killed: that gap is recorded.
    pub fn recorder_start(&mut self) -> Result<Recorded> {
        let now = self.now_ms() as i64;
        start(&mut self.conn, now)
    }

    /// The recorder stops cleanly: an open stretch is closed and the
    /// journal sealed.
    pub fn recorder_stop(&mut self) -> Result<Recorded> {
        let mut out = stop(&mut self.conn)?;
        out.sealed = self.seal_fixes()?;
        Ok(out)
    }

    /// Takes fixes as the location service delivered them (one
    /// transaction), and seals the journal when a change's worth waits.
    pub fn record_fixes(&mut self, fixes: &[Fix]) -> Result<Recorded> {
        let mut out = record(&mut self.conn, fixes)?;
        if waiting(&self.conn)? >= MAX_POINTS_PER_CHANGE {
            out.sealed = self.seal_fixes()?;
        }
        Ok(out)
    }

    /// Seals the journal into changes: the gaps found, then the waiting
    /// fixes as track points (the sync client calls this before it reads
    /// the outbox). Returns the points sealed.
    pub fn seal_fixes(&mut self) -> Result<u64> {
        if waiting(&self.conn)? == 0 && load_state(&self.conn)?.pending_gaps.is_empty() {
            return Ok(0);
        }
        self.write_local(|w| {
            let mut state = load_state(w.tx())?;
            for g in std::mem::take(&mut state.pending_gaps) {
                w.emit(Op::TrackGap(g))?;
            }
            save_state(w.tx(), &state)?;
            seal_points(w)
        })
    }

    /// The recorder's state, for status displays.
    pub fn recorder_state(&self) -> Result<RecorderState> {
        load_state(&self.conn)
    }

    /// The gaps in this store's log (any author), oldest first.
    pub fn track_gaps(&self) -> Result<Vec<(crate::model::ActorId, TrackGap)>> {
        Ok(super::tracks::track_gaps_of(self.ops_of_kind("track_gap")?))
    }
}

/// Moves waiting fixes into track changes of at most a change's worth of
/// points; an instant the track already holds (an imported GPX file) is
/// not added again.
fn seal_points(w: &mut super::LocalTx<'_>) -> Result<u64> {
    let mut sealed = 0;
    loop {
        let batch: Vec<TrackPoint> = {
            let mut stmt = w.tx().prepare_cached(
                "SELECT t_ms, lon, lat, accuracy_m, speed_mps FROM raw_fixes
                 WHERE sealed = 0 AND mock = 0 ORDER BY t_ms LIMIT ?1",
            )?;
            super::tracks::points_of(&mut stmt, [MAX_POINTS_PER_CHANGE as i64])?
        };
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok(sealed);
        };
        let (lo, hi) = (first.at.millis(), last.at.millis());
        let held: std::collections::HashSet<i64> = w
            .tx()
            .prepare_cached(
                "SELECT t_ms FROM track_points WHERE actor = ?1 AND t_ms BETWEEN ?2 AND ?3",
            )?
            .query_map(params![w.actor.as_bytes(), lo, hi], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let fresh: Vec<TrackPoint> = batch
            .iter()
            .filter(|p| !held.contains(&p.at.millis()))
            .copied()
            .collect();
        if !fresh.is_empty() {
            let first_seq: i64 = w
                .tx()
                .prepare_cached(
                    "SELECT COALESCE(MAX(seq) + 1, 0) FROM track_points WHERE actor = ?1",
                )?
                .query_row([w.actor.as_bytes()], |r| r.get(0))?;
            w.emit(Op::TrackAppend(TrackBatch::encode(
                first_seq as u64,
                &fresh,
            )))?;
            sealed += fresh.len() as u64;
        }
        w.tx().execute(
            "UPDATE raw_fixes SET sealed = 1 WHERE sealed = 0 AND mock = 0 AND t_ms BETWEEN ?1 AND ?2",
            params![lo, hi],
        )?;
    }
}
