//! The device store: one SQLite file (WAL) holding the change log and the
//! state it produces, always written in the same transaction. `Store` is the
//! only type in the crate that speaks SQL; its methods are named by domain
//! action.

mod apply;
mod case_query;
mod cases;
mod digest;
mod exchange;
mod grid;
mod merge_rows;
mod photos;
mod prune;
mod recorder;
mod reissue;
mod schema;
mod sync_state;
mod tasks;
mod tracks;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use uuid::Uuid;

use crate::crdt::{Change, Clock, Hlc, HlcGenerator, Op, SystemClock};
use crate::error::{Error, Result, invalid};
use crate::geo::CellIndex;
use crate::model::{ActorId, Catalog, CellCodePattern};

pub use apply::{Applier, ApplySummary, Judgement};
pub use case_query::{CasePage, CaseQuery};
pub use cases::{
    CaseEditRequest, CaseSummary, Decision, FieldEdit, HistoryEntry, NewCase, SeenStatus,
    decision_op, history_of,
};
pub use digest::{DigestReport, add_shift, cases_digest_of, point_line, whole_digest};
pub use exchange::ImportSummary;
pub use grid::{GridSummary, check_grid, grid_geojson_of, stored_cell};
pub use merge_rows::{CaseProjection, MergeRows, SqliteRows, TaskProjection};
pub use prune::{DEFAULT_RETENTION_DAYS, Pruned};
pub use recorder::{FixJournal, MAX_FIXES_PER_CALL, Recorded};
pub use reissue::Reissue;
pub use schema::{STORE_VERSION, apply_migrations};
pub use sync_state::{PullPage, SyncSettings, SyncStatus};
pub use tasks::{TaskRow, check_task_spec};
pub use tracks::{StoredPoint, TrackSummary, shift_marks_of, track_gaps_of};

/// The store file inside a device home directory.
pub const STORE_FILE: &str = "device.db";

/// A device's store, opened.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    actor: ActorId,
    collector: String,
    hlc: HlcGenerator,
    clock: Box<dyn Clock>,
    catalog: Catalog,
    cell_pattern: CellCodePattern,
    cell_index: Option<CellIndex>,
    /// Server time minus this device's wall clock, measured at the last
    /// sync: every stamp and time this device writes is corrected by it.
    offset_ms: i64,
}

fn open_connection(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    // The store holds the device token: owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(path, e))?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // A sync runs more distinct statements than rusqlite keeps by default
    // (16); an evicted one is parsed again.
    conn.set_prepared_statement_cache_capacity(128);
    schema::migrate(&mut conn)?;
    Ok(conn)
}

fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

fn set_meta(tx: &Connection, key: &str, value: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

impl Store {
    /// Creates a new device store with a fresh actor id. Refuses to
    /// re-initialise an existing one (that would re-spend its actor's dots).
    pub fn init(path: &Path, collector: &str) -> Result<Store> {
        let name = collector.trim();
        if name.is_empty() {
            return Err(invalid("collector", "is empty"));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut conn = open_connection(path)?;
        if get_meta(&conn, "actor")?.is_some() {
            return Err(invalid(
                "home",
                format!(
                    "{} is already a device store; use another --home",
                    path.display()
                ),
            ));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        set_meta(&tx, "actor", &Uuid::new_v4().to_string())?;
        set_meta(&tx, "collector", name)?;
        set_meta(&tx, "hlc", "0")?;
        tx.commit()?;
        drop(conn);
        Store::open(path)
    }

    /// Creates a store with a given actor id and clock: for simulations,
    /// which must be reproducible from a seed. A real device uses [`Store::init`].
    pub fn init_with(
        path: &Path,
        collector: &str,
        actor: ActorId,
        clock: Box<dyn Clock>,
    ) -> Result<Store> {
        drop(Store::init(path, collector)?);
        let conn = Connection::open(path)?;
        set_meta(&conn, "actor", &actor.to_string())?;
        drop(conn);
        Store::open_with_clock(path, clock)
    }

    /// Opens an initialised store with the system clock.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with_clock(path, Box::new(SystemClock))
    }

    /// Opens an initialised store with an injected clock (tests, simulation).
    pub fn open_with_clock(path: &Path, clock: Box<dyn Clock>) -> Result<Store> {
        if !path.exists() {
            return Err(Error::NotInitialised(path.display().to_string()));
        }
        let mut conn = open_connection(path)?;
        cases::reproject_cases(&mut conn)?;
        let actor_text = get_meta(&conn, "actor")?
            .ok_or_else(|| Error::NotInitialised(path.display().to_string()))?;
        let actor =
            Uuid::parse_str(&actor_text).map_err(|e| Error::Corrupt(format!("actor id: {e}")))?;
        let collector = get_meta(&conn, "collector")?.unwrap_or_default();
        let hlc_raw: u64 = get_meta(&conn, "hlc")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let catalog = match get_meta(&conn, "catalog")? {
            Some(json) => Catalog::from_json(&json)?,
            None => Catalog::default_catalog(),
        };
        let cell_pattern = match get_meta(&conn, "cell_code_pattern")? {
            Some(p) => CellCodePattern::new(&p)?,
            None => CellCodePattern::default(),
        };
        let offset_ms = get_meta(&conn, "clock_offset_ms")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            actor,
            collector,
            hlc: HlcGenerator::resume(Hlc::from_raw(hlc_raw)),
            clock,
            catalog,
            cell_pattern,
            cell_index: None,
            offset_ms,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device's wall clock corrected by the offset the server
    /// measured (ms since the epoch): what this store stamps times with.
    pub fn corrected_now_ms(&self) -> i64 {
        self.now_ms() as i64
    }

    pub fn actor(&self) -> ActorId {
        self.actor
    }

    pub fn collector(&self) -> &str {
        &self.collector
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn cell_pattern(&self) -> &CellCodePattern {
        &self.cell_pattern
    }

    /// Replaces the category catalog this device validates reports against.
    pub fn import_catalog(&mut self, catalog: Catalog) -> Result<()> {
        set_meta(&self.conn, "catalog", &catalog.to_json())?;
        self.catalog = catalog;
        Ok(())
    }

    /// Runs local writes in one immediate transaction: every change `f`
    /// emits is stamped, applied to state and appended to the log; photos
    /// and other rows it writes share the transaction. If anything fails,
    /// nothing is written.
    fn write_local<T>(&mut self, f: impl FnOnce(&mut LocalTx<'_>) -> Result<T>) -> Result<T> {
        self.write_local_as(self.actor, f)
    }

    /// [`Store::write_local`] authored by another actor this replica speaks
    /// for: the server writes center staff's decisions as their own actors.
    fn write_local_as<T>(
        &mut self,
        actor: ActorId,
        f: impl FnOnce(&mut LocalTx<'_>) -> Result<T>,
    ) -> Result<T> {
        let now_ms = self.now_ms();
        self.load_cell_index()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut local = LocalTx {
            tx,
            now_ms: now_ms as i64,
            applier: apply::Applier::at(now_ms),
            actor,
            hlc: self.hlc,
        };
        let out = f(&mut local)?;
        let LocalTx {
            tx, applier, hlc, ..
        } = local;
        applier.finish(&mut SqliteRows(&tx), self.cell_index.as_ref())?;
        set_meta(&tx, "hlc", &hlc.last().raw().to_string())?;
        tx.commit()?;
        self.hlc = hlc;
        Ok(out)
    }

    /// The corrected wall clock: the device's, moved by the offset the
    /// server measured.
    fn now_ms(&self) -> u64 {
        (self.clock.now_ms() as i64)
            .saturating_add(self.offset_ms)
            .max(0) as u64
    }

    /// The device's own wall clock, uncorrected (what the offset is measured against).
    pub fn device_clock_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn clock_offset_ms(&self) -> i64 {
        self.offset_ms
    }

    /// Records the server's time seen at `device_ms` on this device's own
    /// clock; later stamps use the corrected clock.
    pub fn observe_server_time(&mut self, server_ms: i64, device_ms: u64) -> Result<i64> {
        let offset = server_ms - device_ms as i64;
        set_meta(&self.conn, "clock_offset_ms", &offset.to_string())?;
        self.offset_ms = offset;
        Ok(offset)
    }
}

/// An open local write: emits changes authored by this device.
struct LocalTx<'a> {
    tx: Transaction<'a>,
    /// The corrected wall clock when the transaction began.
    now_ms: i64,
    applier: apply::Applier,
    actor: ActorId,
    hlc: HlcGenerator,
}

impl LocalTx<'_> {
    fn tx(&self) -> &Transaction<'_> {
        &self.tx
    }

    /// Stamps `op` as this device's next change, applies and logs it.
    fn emit(&mut self, op: Op) -> Result<Change> {
        self.applier
            .emit(&mut SqliteRows(&self.tx), self.actor, &mut self.hlc, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::ManualClock;
    use crate::model::{LonLat, RejectReason, Status, Timestamp, TrackPoint};

    fn point(ms: i64) -> TrackPoint {
        TrackPoint::new(
            Timestamp::from_millis("at", ms).unwrap(),
            LonLat::new(120.0, 30.0).unwrap(),
            None,
            None,
        )
        .unwrap()
    }

    fn hlcs(store: &Store) -> Vec<u64> {
        let mut stmt = store
            .conn
            .prepare("SELECT hlc FROM changes ORDER BY counter")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|h| h.unwrap() as u64)
            .collect()
    }

    #[test]
    fn stamps_increase_when_the_wall_clock_jumps_back_even_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        drop(Store::init(&path, "wu").unwrap());
        let clock = ManualClock::at(1_764_000_100_000);
        let mut s = Store::open_with_clock(&path, Box::new(clock.clone())).unwrap();
        s.append_track_points(&[point(1_764_000_000_000)]).unwrap();
        clock.set(1_764_000_000_000); // set back 100 s
        s.append_track_points(&[point(1_764_000_005_000)]).unwrap();
        drop(s);
        let mut s = Store::open_with_clock(&path, Box::new(clock.clone())).unwrap();
        s.append_track_points(&[point(1_764_000_010_000)]).unwrap();
        let h = hlcs(&s);
        assert_eq!(h.len(), 3);
        assert!(h[0] < h[1] && h[1] < h[2], "{h:?}");
    }

    fn tiny_png(v: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 1, 1);
        enc.set_color(png::ColorType::Grayscale);
        enc.write_header().unwrap().write_image_data(&[v]).unwrap();
        out
    }

    fn new_case(photo: Vec<u8>) -> NewCase {
        NewCase {
            category: "BJ0101".into(),
            pos: LonLat::new(120.0, 30.0).unwrap(),
            description: "cover".into(),
            photos: vec![photo],
            at: None,
            quick_fix_after: None,
            survey: None,
        }
    }

    #[test]
    fn only_photo_adds_wait_for_their_predecessor_everything_else_commutes() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Store::init(&dir.path().join("a.db"), "wu").unwrap();
        let mut b = Store::init(&dir.path().join("b.db"), "wu").unwrap();
        for i in 0..2 {
            a.append_track_points(&[point(1_764_000_000_000 + i * 5000)])
                .unwrap();
        }
        let id = a.report_case(new_case(tiny_png(1))).unwrap();
        let add = CaseEditRequest {
            add_photos: vec![tiny_png(2)],
            ..Default::default()
        };
        a.edit_case(id, add).unwrap();
        let ch = a.export_bundle(None).unwrap().changes; // track, track, report, photo add
        // A later track batch and the photo add arrive first.
        let s = b.apply_changes(vec![ch[1].clone(), ch[3].clone()]).unwrap();
        assert_eq!(
            (s.applied, s.buffered),
            (1, 1),
            "the track applies, the photo add waits"
        );
        let s = b.apply_changes(vec![ch[3].clone(), ch[0].clone()]).unwrap();
        assert_eq!((s.applied, s.duplicates, s.buffered), (1, 1, 1));
        let s = b.apply_changes(vec![ch[2].clone(), ch[2].clone()]).unwrap();
        assert_eq!(
            (s.applied, s.duplicates, s.buffered),
            (1, 1, 0),
            "the report releases the add"
        );
        assert_eq!(b.case(id).unwrap().photos.len(), 2);
        assert_eq!(b.change_count().unwrap(), 4);
        assert_eq!(a.digest().unwrap(), b.digest().unwrap());
    }

    #[test]
    fn the_outbox_is_bounded_by_count_and_bytes_and_drains_on_judgement() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Store::init(&dir.path().join("a.db"), "wu").unwrap();
        let points: Vec<_> = (0..5000)
            .map(|i| point(1_764_000_000_000 + i * 5000))
            .collect();
        a.append_track_points(&points).unwrap(); // 3 changes of up to 2,000 points
        let (all, _) = a.outbox(10, usize::MAX).unwrap();
        assert_eq!(all.len(), 3);
        let (first, through) = a.outbox(10, 1).unwrap();
        assert_eq!(
            first.len(),
            1,
            "one change even when it alone exceeds the bytes"
        );
        a.record_push(through, &[]).unwrap();
        assert_eq!(a.outbox_len().unwrap(), 2);
        let (rest, through) = a.outbox(10, usize::MAX).unwrap();
        assert_eq!(rest[0].counter, 2);
        a.record_push(through, &[]).unwrap();
        assert_eq!(a.outbox_len().unwrap(), 0);
    }

    #[test]
    fn judged_apply_refuses_one_change_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Store::init(&dir.path().join("a.db"), "wu").unwrap();
        let mut server = Store::init(&dir.path().join("s.db"), "center").unwrap();
        a.append_track_points(&[point(1_764_000_000_000)]).unwrap();
        a.report_case(new_case(tiny_png(3))).unwrap();
        let mut ch = a.export_bundle(None).unwrap().changes;
        ch[1].hlc = crate::crdt::Hlc::new(u64::MAX >> 17, 0); // years ahead
        let judged = server.apply_judged(ch).unwrap();
        assert_eq!(judged[0].1, crate::store::apply::Judgement::Applied);
        match &judged[1].1 {
            crate::store::apply::Judgement::Refused(why) => {
                assert!(why.contains("24 h ahead"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.change_count().unwrap(), 1);
    }

    #[test]
    fn a_photo_that_no_longer_matches_its_hash_is_reported_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::init(&dir.path().join("a.db"), "wu").unwrap();
        let hash = crate::model::PhotoHash::of(b"real bytes");
        s.conn
            .execute(
                "INSERT INTO photos (hash, mime, width, height, size, data) VALUES (?1, 'image/png', 1, 1, 3, ?2)",
                params![hash.as_str(), b"bad".to_vec()],
            )
            .unwrap();
        assert!(matches!(s.photo(&hash), Err(Error::Corrupt(_))));
    }

    #[test]
    fn decisions_follow_the_lifecycle_and_conflicts_show() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Store::init(&dir.path().join("a.db"), "wu").unwrap();
        let mut r1 = Store::init(&dir.path().join("r1.db"), "center-1").unwrap();
        let mut r2 = Store::init(&dir.path().join("r2.db"), "center-2").unwrap();
        let id = a.report_case(new_case(tiny_png(7))).unwrap();
        let report = a.export_bundle(None).unwrap();
        r1.import_bundle(&report).unwrap();
        r2.import_bundle(&report).unwrap();
        assert!(
            r1.set_status(id, Status::Handled, None, None).is_err(),
            "reported cannot become handled"
        );
        assert!(
            r1.edit_case(
                id,
                CaseEditRequest {
                    description: Some("x".into()),
                    ..Default::default()
                }
            )
            .is_err()
        );
        let c1 = r1.set_status(id, Status::Registered, None, None).unwrap();
        let c2 = r2
            .set_status(id, Status::Rejected, Some(RejectReason::FalseReport), None)
            .unwrap();
        a.apply_changes(vec![c1, c2]).unwrap();
        let v = a.case(id).unwrap();
        assert!(v.in_conflict());
        assert_eq!(v.statuses(), vec![Status::Registered, Status::Rejected]);
        let e = a.edit_case(
            id,
            CaseEditRequest {
                description: Some("y".into()),
                ..Default::default()
            },
        );
        assert!(e.unwrap_err().to_string().contains("only while reported"));
    }
}
