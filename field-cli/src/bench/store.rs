//! `field bench store`: the device store against plain rusqlite, measured in
//! the same run on the same machine, so the ratios mean something.

use std::time::Instant;

use anyhow::Result;
use field_core::crdt::{CHANGE_SCHEMA, CaseEdit, CaseReport, Change, Hlc, Op};
use field_core::geo::CellIndex;
use field_core::model::{
    CaseFields, CaseId, CaseOrigin, CasePhoto, CaseSource, CategoryCode, LonLat, PhotoHash,
    PhotoRole, Placement, Timestamp,
};
use field_core::store::Store;
use rusqlite::params;
use uuid::Uuid;

use super::{Row, row};
use crate::simulate::{GridSpec, patrol_walk};

pub fn run(
    dir: &std::path::Path,
    points: usize,
    changes: usize,
    cells: usize,
    lookups: usize,
) -> Result<Vec<Row>> {
    Ok(vec![
        track_inserts(dir, points)?,
        remote_changes(dir, changes)?,
        cell_lookups(cells, lookups)?,
    ])
}

/// 1,000,000 points through `Store::append_track_points` (delta-encoded
/// changes in the log + point rows) against one prepared INSERT per row in
/// one transaction into the same table with the same pragmas.
fn track_inserts(dir: &std::path::Path, n: usize) -> Result<Row> {
    let grid = GridSpec {
        west: 120.2,
        north: 30.2,
        rows: 50,
        cols: 50,
        cell_m: 100.0,
    };
    let mut rng = fastrand::Rng::with_seed(7);
    let start = Timestamp::from_millis("at", 1_764_000_000_000)?;
    let end = Timestamp::from_millis("at", start.millis() + (n as i64 - 1) * 5000)?;
    let pts = patrol_walk(&grid, start, end, 5, &mut rng);

    let plain_path = dir.join("plain.db");
    let conn = rusqlite::Connection::open(&plain_path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE track_points (actor BLOB NOT NULL, seq INTEGER NOT NULL, t_ms INTEGER NOT NULL,
         lon REAL NOT NULL, lat REAL NOT NULL, accuracy_m REAL, speed_mps REAL,
         PRIMARY KEY (actor, seq)) WITHOUT ROWID;",
    )?;
    let actor = Uuid::new_v4();
    let t0 = Instant::now();
    let mut conn = conn;
    let tx = conn.transaction()?;
    {
        let mut stmt =
            tx.prepare("INSERT INTO track_points VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
        for (i, p) in pts.iter().enumerate() {
            stmt.execute(params![
                actor.as_bytes(),
                i as i64,
                p.at.millis(),
                p.pos.lon(),
                p.pos.lat(),
                p.accuracy_m,
                p.speed_mps
            ])?;
        }
    }
    tx.commit()?;
    let plain = t0.elapsed().as_secs_f64();

    let mut store = Store::init(&dir.join("core.db"), "bench")?;
    let t0 = Instant::now();
    store.append_track_points(&pts)?;
    let ours = t0.elapsed().as_secs_f64();
    Ok(row(
        "track points via field-core",
        pts.len(),
        ours,
        "plain rusqlite batched INSERT",
        plain,
    ))
}

/// Remote changes from 5 devices (10% new cases, 90% field edits) applied in
/// batches of 1,000 with the causal buffer and LWW merge, against inserting
/// the same change JSON into a bare log table.
fn remote_changes(dir: &std::path::Path, n: usize) -> Result<Row> {
    let actors: Vec<Uuid> = (1..=5u128).map(Uuid::from_u128).collect();
    let mut counters = [0u64; 5];
    let mut cases: Vec<CaseId> = Vec::new();
    let mut rng = fastrand::Rng::with_seed(11);
    let category = CategoryCode::parse("category", "SJ0102")?;
    let base = 1_764_000_000_000u64;
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        let a = rng.usize(0..actors.len());
        counters[a] += 1;
        let hlc = Hlc::new(base + i as u64 * 10, 0);
        let op = if cases.is_empty() || rng.usize(0..10) == 0 {
            let id = CaseId(Uuid::from_u128(i as u128 + 1_000_000));
            cases.push(id);
            Op::CaseReport(CaseReport {
                case: id,
                origin: CaseOrigin {
                    reporter: actors[a],
                    collector: format!("c{a}"),
                    source: CaseSource::Collector,
                    reported_at: Timestamp::from_millis("at", (base / 1000 * 1000) as i64)?,
                    survey: None,
                },
                fields: CaseFields {
                    description: Some(format!("case {i}")),
                    category: Some(category.clone()),
                    placement: Some(Placement {
                        pos: LonLat::new(120.2 + rng.f64() * 0.05, 30.2 - rng.f64() * 0.05)?,
                        cell: None,
                    }),
                },
                photos: vec![CasePhoto {
                    hash: PhotoHash::of(&i.to_le_bytes()),
                    role: PhotoRole::Before,
                }],
                photo_dot: 1,
            })
        } else {
            let id = cases[rng.usize(0..cases.len())];
            Op::CaseEdit(CaseEdit {
                case: id,
                fields: CaseFields {
                    description: Some(format!("edit {i}")),
                    ..Default::default()
                },
                ..Default::default()
            })
        };
        all.push(Change {
            schema: CHANGE_SCHEMA,
            actor: actors[a],
            counter: counters[a],
            hlc,
            op,
        });
    }
    // A CaseReport's photo dot must be the reporter's first in that case; a
    // case is reported once, so dot 1 always holds.

    let mut plain = rusqlite::Connection::open(dir.join("plain-log.db"))?;
    plain.pragma_update(None, "journal_mode", "WAL")?;
    plain.pragma_update(None, "synchronous", "NORMAL")?;
    plain.execute_batch("CREATE TABLE changes (actor BLOB, counter INTEGER, body TEXT, PRIMARY KEY (actor, counter))")?;
    let t0 = Instant::now();
    for batch in all.chunks(1000) {
        let tx = plain.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO changes VALUES (?1, ?2, ?3)")?;
            for c in batch {
                stmt.execute(params![c.actor.as_bytes(), c.counter as i64, c.to_json()])?;
            }
        }
        tx.commit()?;
    }
    let baseline = t0.elapsed().as_secs_f64();

    let mut store = Store::init(&dir.join("apply.db"), "bench")?;
    let t0 = Instant::now();
    for batch in all.chunks(1000) {
        store.apply_changes(batch.to_vec())?;
    }
    let ours = t0.elapsed().as_secs_f64();
    Ok(row(
        "remote case changes applied",
        n,
        ours,
        "same changes appended to a bare log",
        baseline,
    ))
}

/// Point-to-cell lookups over a square grid of `cells` cells: R-tree plus
/// exact point-in-polygon, against a linear scan of every cell (measured on
/// 1% of the points and scaled, the scan being too slow for all of them).
fn cell_lookups(cells: usize, n: usize) -> Result<Row> {
    let side = (cells as f64).sqrt().round() as usize;
    let grid = GridSpec {
        west: 120.0,
        north: 30.5,
        rows: side,
        cols: side,
        cell_m: 100.0,
    };
    let parsed = field_core::import::parse_grid(&grid.to_geojson(), &Default::default())?;
    let index = CellIndex::new(parsed);
    let mut rng = fastrand::Rng::with_seed(3);
    let (w, nth) = (grid.west, grid.north);
    let (ew, eh) = (grid.dlon() * side as f64, grid.dlat() * side as f64);
    let points: Vec<LonLat> = (0..n)
        .map(|_| LonLat::new(w + rng.f64() * ew, nth - rng.f64() * eh))
        .collect::<Result<_, _>>()?;
    let t0 = Instant::now();
    let found = points
        .iter()
        .filter(|p| index.locate(**p).is_some())
        .count();
    let ours = t0.elapsed().as_secs_f64();
    anyhow::ensure!(
        found == n,
        "{} of {n} points fell outside the grid",
        n - found
    );

    use geo::Intersects;
    let sample = (n / 100).max(1);
    let t0 = Instant::now();
    let mut hits = 0;
    for p in &points[..sample] {
        let pt = p.to_point();
        hits += index
            .cells()
            .iter()
            .position(|c| c.geometry.intersects(&pt))
            .is_some() as usize;
    }
    anyhow::ensure!(hits == sample, "linear scan missed points");
    let scan = t0.elapsed().as_secs_f64() * (n as f64 / sample as f64);
    Ok(row(
        &format!("point-to-cell lookups over {} cells", index.len()),
        n,
        ours,
        "linear scan of all cells (scaled from 1%)",
        scan,
    ))
}
