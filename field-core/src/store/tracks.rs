//! Track points and shift marks. Points are keyed by (author, sequence) and
//! only ever appended.

use rusqlite::OptionalExtension;
use rusqlite::params;
use serde::Serialize;

use super::Store;

/// `actor = +?1`, not `actor = ?1`: with a bare parameter in an equality
/// beside an ORDER BY, SQLite marks the statement as depending on the bound
/// value and re-prepares the cached statement at every new binding, which
/// cost more than the query itself (the review queue's flags: 10 s → 3 s
/// over 100,000 cases). Every hot cached query with that shape uses `+?`.
const TRACK_BETWEEN: &str = "SELECT t_ms, lon, lat, accuracy_m, speed_mps FROM track_points
     WHERE actor = +?1 AND t_ms BETWEEN ?2 AND ?3 ORDER BY t_ms";
use crate::crdt::Op;
use crate::crdt::change::{MAX_POINTS_PER_CHANGE, TrackBatch};
use crate::error::{Result, invalid};
use crate::model::{ActorId, CellCode, LonLat, ShiftKind, ShiftMark, Timestamp, TrackPoint};

/// A stored point with its key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredPoint {
    pub actor: ActorId,
    pub seq: u64,
    #[serde(flatten)]
    pub point: TrackPoint,
}

/// What `field track list` shows per author.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrackSummary {
    pub actor: ActorId,
    pub points: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl Store {
    /// Appends this device's points, all or none, as changes of at most
    /// [`MAX_POINTS_PER_CHANGE`] points. Returns the number appended.
    pub fn append_track_points(&mut self, points: &[TrackPoint]) -> Result<u64> {
        if points.is_empty() {
            return Err(invalid("track", "no points to append"));
        }
        self.write_local(|w| {
            for chunk in points.chunks(MAX_POINTS_PER_CHANGE) {
                let first_seq: i64 = w
                    .tx()
                    .prepare_cached(
                        "SELECT COALESCE(MAX(seq) + 1, 0) FROM track_points WHERE actor = ?1",
                    )?
                    .query_row([w.actor.as_bytes()], |r| r.get(0))?;
                w.emit(Op::TrackAppend(TrackBatch::encode(first_seq as u64, chunk)))?;
            }
            Ok(points.len() as u64)
        })
    }

    /// Imports this device's points from a file: a point at an instant
    /// this device already holds (the same file imported twice, or fixes
    /// the recorder already took) is not added again, nor one repeated
    /// within the file. Returns (added, already held).
    pub fn import_track_points(&mut self, points: &[TrackPoint]) -> Result<(u64, u64)> {
        // What the recorder journalled is held too.
        self.seal_fixes()?;
        let (Some(lo), Some(hi)) = (
            points.iter().map(|p| p.at.millis()).min(),
            points.iter().map(|p| p.at.millis()).max(),
        ) else {
            return Err(invalid("track", "no points to import"));
        };
        let mut held: std::collections::HashSet<i64> = self
            .conn
            .prepare_cached(
                "SELECT t_ms FROM track_points WHERE actor = ?1 AND t_ms BETWEEN ?2 AND ?3",
            )?
            .query_map(rusqlite::params![self.actor.as_bytes(), lo, hi], |r| {
                r.get(0)
            })?
            .collect::<rusqlite::Result<_>>()?;
        let fresh: Vec<TrackPoint> = points
            .iter()
            .filter(|p| held.insert(p.at.millis()))
            .copied()
            .collect();
        let already = (points.len() - fresh.len()) as u64;
        if fresh.is_empty() {
            return Ok((0, already));
        }
        Ok((self.append_track_points(&fresh)?, already))
    }

    /// Records the start or end of a shift (a test case).
    pub fn mark_shift(
        &mut self,
        kind: ShiftKind,
        at: Option<Timestamp>,
        pos: Option<LonLat>,
    ) -> Result<ShiftMark> {
        let at = match at {
            Some(t) => t,
            None => Timestamp::from_millis("at", self.now_ms() as i64)?,
        };
        let cell: Option<CellCode> = match pos {
            Some(p) => self.locate_cell(p)?,
            None => None,
        };
        let mark = ShiftMark {
            id: uuid::Uuid::new_v4(),
            kind,
            at,
            pos,
            cell,
        };
        let m = mark.clone();
        self.write_local(|w| w.emit(Op::ShiftMark(m)))?;
        Ok(mark)
    }

    /// Per-author totals of the points held.
    pub fn track_summary(&self) -> Result<Vec<TrackSummary>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT actor, COUNT(*), MIN(t_ms), MAX(t_ms) FROM track_points GROUP BY actor ORDER BY actor",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (actor, n, first, last) = row?;
            out.push(TrackSummary {
                actor: actor_from(&actor)?,
                points: n as u64,
                first: first.map(|t| Timestamp::from_millis("t", t)).transpose()?,
                last: last.map(|t| Timestamp::from_millis("t", t)).transpose()?,
            });
        }
        Ok(out)
    }

    /// Every point of one author (or all), in (author, sequence) order.
    pub fn track_points(&self, actor: Option<ActorId>) -> Result<Vec<StoredPoint>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT actor, seq, t_ms, lon, lat, accuracy_m, speed_mps FROM track_points
             WHERE ?1 IS NULL OR actor = ?1 ORDER BY actor, seq",
        )?;
        let filter = actor.map(|a| a.as_bytes().to_vec());
        let rows = stmt.query_map([filter], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, Option<f64>>(5)?,
                r.get::<_, Option<f64>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (a, seq, t, lon, lat, acc, speed) = row?;
            let point = TrackPoint::new(
                Timestamp::from_millis("t", t)?,
                LonLat::new(lon, lat)?,
                acc,
                speed,
            )?;
            out.push(StoredPoint {
                actor: actor_from(&a)?,
                seq: seq as u64,
                point,
            });
        }
        Ok(out)
    }

    /// Indexes track points by device and time, covering the columns the
    /// assessment reads, so a day's points are one index range with no row
    /// lookups. For replicas that assess (the server); a handset does not
    /// pay for it on every fix it records.
    pub fn index_tracks_by_time(&self) -> Result<()> {
        self.conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS track_by_time ON track_points (actor, t_ms, lon, lat, accuracy_m, speed_mps)",
        )?;
        Ok(())
    }

    /// Keeps up to `mib` MiB of the store's pages in memory (SQLite's
    /// default is 2 MiB). For a server's replica, whose indexes outgrow the
    /// default within a day of a city's tracks: past it every insert reads
    /// its index pages back from the operating system.
    pub fn cache_pages(&self, mib: u32) -> Result<()> {
        self.conn
            .pragma_update(None, "cache_size", -(i64::from(mib) * 1024))?;
        Ok(())
    }

    /// The points of `actor` between two instants (ms, inclusive), by time.
    pub fn track_between(
        &self,
        actor: ActorId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<TrackPoint>> {
        let mut stmt = self.conn.prepare_cached(TRACK_BETWEEN)?;
        points_of(&mut stmt, params![actor.as_bytes(), from_ms, to_ms])
    }

    /// Where the track of `actor` brackets instant `t`: the last point at or
    /// before it and the first at or after it, each within `window_ms` and
    /// no worse than `max_accuracy_m` (two index look-ups, whatever the
    /// track's density).
    pub fn track_around(
        &self,
        actor: ActorId,
        t: i64,
        window_ms: i64,
        max_accuracy_m: f64,
    ) -> Result<(Option<TrackPoint>, Option<TrackPoint>)> {
        let one = |sql: &str, from: i64, to: i64| -> Result<Option<TrackPoint>> {
            let row = self
                .conn
                .prepare_cached(sql)?
                .query_row(params![actor.as_bytes(), from, to, max_accuracy_m], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, f64>(1)?,
                        r.get::<_, f64>(2)?,
                        r.get::<_, Option<f64>>(3)?,
                        r.get::<_, Option<f64>>(4)?,
                    ))
                })
                .optional()?;
            row.map(|(t, lon, lat, acc, speed)| {
                TrackPoint::new(
                    Timestamp::from_millis("t", t)?,
                    LonLat::new(lon, lat)?,
                    acc,
                    speed,
                )
            })
            .transpose()
        };
        let before = one(
            "SELECT t_ms, lon, lat, accuracy_m, speed_mps FROM track_points
             WHERE actor = +?1 AND t_ms BETWEEN ?2 AND ?3 AND (accuracy_m IS NULL OR accuracy_m <= ?4)
             ORDER BY t_ms DESC LIMIT 1",
            t - window_ms,
            t,
        )?;
        let after = one(
            "SELECT t_ms, lon, lat, accuracy_m, speed_mps FROM track_points
             WHERE actor = +?1 AND t_ms BETWEEN ?2 AND ?3 AND (accuracy_m IS NULL OR accuracy_m <= ?4)
             ORDER BY t_ms LIMIT 1",
            t,
            t + window_ms,
        )?;
        Ok((before, after))
    }

    /// Every shift mark held, oldest first.
    pub fn shift_marks(&self) -> Result<Vec<(ActorId, ShiftMark)>> {
        Ok(shift_marks_of(self.ops_of_kind("shift_mark")?))
    }

    /// The ops of every change of one kind in the log, with their authors.
    /// (The kind is written into the statement, not bound, so the partial
    /// index of that kind serves it.)
    pub(super) fn ops_of_kind(&self, kind: &'static str) -> Result<Vec<(ActorId, Op)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT body, actor FROM changes WHERE kind = '{kind}' ORDER BY hlc, actor"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (body, actor) = row?;
            out.push((
                actor_from(&actor)?,
                crate::crdt::Change::from_json(&body)?.op,
            ));
        }
        Ok(out)
    }
}

/// The points a statement selects as (t_ms, lon, lat, accuracy_m,
/// speed_mps), each checked.
pub(super) fn points_of(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<TrackPoint>> {
    let rows = stmt.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, f64>(1)?,
            r.get::<_, f64>(2)?,
            r.get::<_, Option<f64>>(3)?,
            r.get::<_, Option<f64>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (t, lon, lat, acc, speed) = row?;
        out.push(TrackPoint::new(
            Timestamp::from_millis("t_ms", t)?,
            LonLat::new(lon, lat)?,
            acc,
            speed,
        )?);
    }
    Ok(out)
}

/// The shift marks among ops read from a log, oldest first (both backends).
pub fn shift_marks_of(ops: Vec<(ActorId, Op)>) -> Vec<(ActorId, ShiftMark)> {
    let mut out: Vec<_> = ops
        .into_iter()
        .filter_map(|(actor, op)| match op {
            Op::ShiftMark(m) => Some((actor, m)),
            _ => None,
        })
        .collect();
    out.sort_by_key(|(_, m)| (m.at, m.id));
    out
}

/// The recorders' gaps among ops read from a log, oldest first (both backends).
pub fn track_gaps_of(ops: Vec<(ActorId, Op)>) -> Vec<(ActorId, crate::model::TrackGap)> {
    let mut out: Vec<_> = ops
        .into_iter()
        .filter_map(|(actor, op)| match op {
            Op::TrackGap(g) => Some((actor, g)),
            _ => None,
        })
        .collect();
    out.sort_by_key(|(a, g)| (g.from, g.to, *a));
    out
}

pub(super) fn actor_from(bytes: &[u8]) -> Result<ActorId> {
    uuid::Uuid::from_slice(bytes).map_err(|e| crate::Error::Corrupt(format!("actor id: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_range_queries_are_not_re_prepared_at_each_binding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::init(&dir.path().join("d.db"), "wu").expect("init");
        store.index_tracks_by_time().expect("index");
        let t0 = 1_764_000_000_000;
        let points: Vec<TrackPoint> = (0..10)
            .map(|i| {
                TrackPoint::new(
                    Timestamp::from_millis("t", t0 + i * 5000).expect("t"),
                    LonLat::new(120.0, 30.0).expect("pos"),
                    Some(5.0),
                    None,
                )
                .expect("point")
            })
            .collect();
        store.append_track_points(&points).expect("points");
        let actor = store.actor();
        for i in 0..5 {
            let got = store
                .track_between(actor, t0 + i * 5000, t0 + 50_000)
                .expect("between");
            assert_eq!(got.len(), 10 - i as usize);
            let (before, after) = store
                .track_around(actor, t0 + i * 5000 + 1, 60_000, 50.0)
                .expect("around");
            assert!(before.is_some() && after.is_some());
        }
        let stmt = store.conn.prepare_cached(TRACK_BETWEEN).expect("cached");
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
