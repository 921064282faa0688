//! SIGKILL in the middle of a large import leaves the store openable and
//! either with or without the whole batch.

use std::time::Duration;

use field_e2e::{Device, gpx_track};

#[test]
fn killed_mid_import_leaves_all_or_nothing() {
    const POINTS: usize = 200_000;
    let d = Device::init("crash");
    let gpx = d.file("big.gpx", gpx_track(POINTS).as_bytes());
    let wal = d.home().join("device.db-wal");
    let mut outcomes = Vec::new();
    for round in 0..3 {
        let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        let mut child = d
            .command(&["track", "import", gpx.to_str().unwrap()])
            .spawn()
            .unwrap();
        // Wait until the import is writing (the WAL grows), then kill it.
        let mut finished = false;
        loop {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            let now = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            if now > before + 1_000_000 * (round + 1) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2)); // polling a condition, not waiting for one
        }
        child.kill().ok();
        child.wait().unwrap();
        let conn = rusqlite::Connection::open(d.home().join("device.db")).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM track_points", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            n as usize % POINTS,
            0,
            "round {round}: {n} points is a partial batch"
        );
        outcomes.push((finished, n));
        d.ok(&["digest"]); // still opens through the library
    }
    assert!(
        outcomes.iter().any(|(finished, _)| !finished),
        "no import was actually interrupted: {outcomes:?}"
    );
}
