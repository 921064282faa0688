//! A handset that does not fill up. A month of patrol is ~280,000 fixes and
//! ~2,400 photos (~0.5 GB). The store keeps the merged state, the change
//! log and every photo's hash forever, but after a retention it drops the
//! bytes the center has confirmed: photo bytes the server acknowledged,
//! and the recorder's raw fixes once the track changes sealed from them
//! were pushed. Nothing unsynced is ever pruned.
//!
//! The price: after the center is restored from a backup older than the
//! retention, a pruned photo cannot be offered again (the device keeps it
//! out of the re-upload and the center's backup is what holds it).

use rusqlite::params;
use serde::Serialize;

use super::{Store, get_meta};
use crate::crdt::{Change, Op};
use crate::error::Result;

/// Days confirmed bytes stay on the handset unless configured otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 7;

/// What pruning freed (or, in a dry run, would free), and the store's size.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Pruned {
    pub retention_days: u32,
    pub dry_run: bool,
    pub photos: u64,
    pub photo_bytes: u64,
    pub raw_fixes: u64,
    /// About 40 bytes a journalled fix (row and index).
    pub raw_fix_bytes: u64,
    /// The store's files (database and write-ahead log) now, in bytes.
    pub store_bytes: u64,
}

const RAW_FIX_BYTES: u64 = 40;

impl Store {
    /// The store's files on disk, in bytes.
    pub fn store_bytes(&self) -> u64 {
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.path) + size(std::path::Path::new(&wal))
    }

    /// The earliest fix time still in an unpushed track change of this
    /// device (its journal rows must stay until that change is pushed).
    fn earliest_unpushed_track_ms(&self) -> Result<Option<i64>> {
        let cursor: i64 = get_meta(&self.conn, "push_cursor")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut stmt = self.conn.prepare_cached(
            "SELECT body FROM changes WHERE actor = ?1 AND log_seq > ?2 AND kind = 'track_append'",
        )?;
        let bodies = stmt
            .query_map(params![self.actor.as_bytes(), cursor], |r| {
                r.get::<_, String>(0)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut earliest: Option<i64> = None;
        for body in bodies {
            if let Op::TrackAppend(b) = Change::from_json(&body)?.op {
                earliest = Some(earliest.map_or(b.t0_ms, |e| e.min(b.t0_ms)));
            }
        }
        Ok(earliest)
    }

    /// Drops the bytes the center confirmed more than `retention_days`
    /// ago (`dry_run`: only counts them). One transaction.
    pub fn prune(&mut self, retention_days: u32, dry_run: bool) -> Result<Pruned> {
        let cutoff = self.now_ms() as i64 - retention_days as i64 * 86_400_000;
        // Fixes: sealed, older than the cutoff, and not in an unpushed change.
        let fix_cutoff = match self.earliest_unpushed_track_ms()? {
            Some(t) => cutoff.min(t),
            None => cutoff,
        };
        let tx = self.conn.transaction()?;
        let (photos, photo_bytes): (i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(length(data)), 0) FROM photos
             WHERE uploaded = 1 AND pruned = 0 AND stored_ms < ?1",
            [cutoff],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let raw_fixes: i64 = tx.query_row(
            "SELECT COUNT(*) FROM raw_fixes WHERE (sealed = 1 OR mock = 1) AND t_ms < ?1",
            [fix_cutoff],
            |r| r.get(0),
        )?;
        if !dry_run {
            tx.execute(
                "UPDATE photos SET data = x'', pruned = 1
                 WHERE uploaded = 1 AND pruned = 0 AND stored_ms < ?1",
                [cutoff],
            )?;
            tx.execute(
                "DELETE FROM raw_fixes WHERE (sealed = 1 OR mock = 1) AND t_ms < ?1",
                [fix_cutoff],
            )?;
        }
        tx.commit()?;
        if !dry_run && photos + raw_fixes > 0 {
            // Give the freed pages back to the file system.
            self.conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
        }
        Ok(Pruned {
            retention_days,
            dry_run,
            photos: photos as u64,
            photo_bytes: photo_bytes as u64,
            raw_fixes: raw_fixes as u64,
            raw_fix_bytes: raw_fixes as u64 * RAW_FIX_BYTES,
            store_bytes: self.store_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::crdt::ManualClock;
    use crate::model::{LonLat, Timestamp};
    use crate::recorder::Fix;
    use crate::store::{NewCase, Store};

    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_764_000_000_000;

    fn png() -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut e = png::Encoder::new(&mut out, 8, 8);
            e.set_color(png::ColorType::Rgb);
            e.set_depth(png::BitDepth::Eight);
            let mut w = e.write_header().unwrap();
            w.write_image_data(&[7u8; 8 * 8 * 3]).unwrap();
        }
        out
    }

    #[test]
    fn only_what_the_center_confirmed_and_only_after_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(T0 as u64);
        let mut s = Store::init_with(
            &dir.path().join("d.db"),
            "王",
            uuid::Uuid::from_u128(5),
            Box::new(clock.clone()),
        )
        .unwrap();
        let fixes: Vec<Fix> = (0..50)
            .map(|i| Fix {
                at: Timestamp::from_millis("at", T0 - 3_600_000 + i * 5_000).unwrap(),
                pos: LonLat::new(120.26, 30.18).unwrap(),
                accuracy_m: Some(5.0),
                speed_mps: None,
                bearing_deg: None,
                provider: None,
                mock: i >= 45,
            })
            .collect();
        s.record_fixes(&fixes).unwrap();
        s.report_case(NewCase {
            category: "SJ0102".into(),
            pos: LonLat::new(120.26, 30.18).unwrap(),
            description: "井盖".into(),
            photos: vec![png()],
            at: None,
            quick_fix_after: None,
            survey: None,
        })
        .unwrap();
        s.seal_fixes().unwrap();
        // Ten days on, nothing synced: nothing may go.
        clock.set(T0 as u64 + 10 * DAY as u64);
        let dry = s.prune(7, true).unwrap();
        assert_eq!(
            (dry.photos, dry.raw_fixes),
            (0, 0),
            "nothing pushed, nothing goes: {dry:?}"
        );
        // The track change pushed and the photo confirmed.
        let (push, through) = s.outbox(500, 4 << 20).unwrap();
        let results: Vec<_> = push
            .iter()
            .map(|c| crate::sync::protocol::PushResult {
                actor: c.actor,
                counter: c.counter,
                outcome: crate::sync::protocol::PushOutcome::Accepted,
                code: None,
                reason: None,
            })
            .collect();
        s.record_push(through, &results).unwrap();
        let hash = s.photos_to_upload().unwrap().remove(0);
        s.mark_photo_uploaded(&hash).unwrap();
        let dry = s.prune(7, true).unwrap();
        assert_eq!((dry.photos, dry.raw_fixes), (1, 50), "{dry:?}");
        assert!(dry.photo_bytes > 0);
        // A retention longer than their age keeps everything.
        assert_eq!(s.prune(30, true).unwrap().photos, 0);
        let done = s.prune(7, false).unwrap();
        assert_eq!((done.photos, done.raw_fixes), (1, 50));
        assert_eq!(s.prune(7, true).unwrap().photos, 0, "pruned once");
        // The hash and the case stay; the bytes say where they are.
        assert!(s.has_photo(&hash).unwrap());
        let e = s.photo(&hash).unwrap_err().to_string();
        assert!(e.contains("pruned"), "{e}");
        assert_eq!(s.cases().unwrap().len(), 1);
        assert_eq!(
            s.track_points(None).unwrap().len(),
            45,
            "the track itself stays"
        );
    }
}
