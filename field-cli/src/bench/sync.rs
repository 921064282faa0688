//! `field bench sync`: devices against a real server on loopback (the
//! sync-server library serving HTTP on 127.0.0.1 in this process).

use std::time::Instant;

use anyhow::{Context, Result};
use field_core::crdt::{CHANGE_SCHEMA, CaseReport, Change, Hlc, Op, TrackWire};
use field_core::model::{
    CaseFields, CaseId, CaseOrigin, CasePhoto, CaseSource, CategoryCode, LonLat, PhotoHash,
    PhotoRole, Placement, Timestamp,
};
use field_core::store::{NewCase, Store};
use field_core::sync::client;
use field_core::sync::http::HttpTransport;
use serde::Serialize;
use serde_json::{Value, json};

use crate::loopback::{Loopback, enrolled, start_server};
use crate::simulate::{GridSpec, noise_photo, patrol_walk};

#[derive(Serialize)]
pub struct SyncRow {
    pub measure: String,
    pub value: String,
    pub note: String,
    pub figures: Value,
}

pub fn row(measure: &str, value: String, note: String, figures: Value) -> SyncRow {
    SyncRow {
        measure: measure.into(),
        value,
        note,
        figures,
    }
}

struct Synced {
    seconds: f64,
    up: u64,
    down: u64,
    round_trips: usize,
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn sync(store: &mut Store) -> Result<Synced> {
    let settings = store.sync_settings()?.context("enrolled")?;
    let mut t = HttpTransport::new(&settings.server, Some(settings.token))?;
    let started = Instant::now();
    let s = client::sync(store, &mut t, &mut |_| {})?;
    Ok(Synced {
        seconds: started.elapsed().as_secs_f64(),
        up: t.bytes_sent,
        down: t.bytes_received,
        round_trips: s.round_trips,
    })
}

/// A collector's day: 07:15–20:15 every 5 s, `cases` cases with 2 photos each.
/// Returns the raw payload size: 40 bytes a point (time, lon, lat,
/// accuracy, speed as 8-byte numbers) plus photo and text bytes.
/// Imports (replaces) the server's grid.
fn import_grid(lb: &Loopback, grid: GridSpec) -> Result<()> {
    let _: Value = lb.admin()?.call_raw(
        "PUT",
        "/v1/center/grid",
        "application/geo+json",
        grid.to_geojson().into_bytes(),
    )?;
    Ok(())
}

/// Cells on a side of a collector's beat in the many-devices run.
const BEAT: usize = 4;

fn patrol_day(
    store: &mut Store,
    grid: &GridSpec,
    seed: u64,
    cases: usize,
    photo_side: u32,
) -> Result<(usize, u64)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = Timestamp::parse("start", "2026-11-25T07:15:00+08:00")?;
    let end = Timestamp::parse("end", "2026-11-25T20:15:00+08:00")?;
    let points = patrol_walk(grid, start, end, 5, &mut rng);
    store.append_track_points(&points)?;
    let mut raw = points.len() as u64 * 40;
    for i in 0..cases {
        let photos = vec![
            noise_photo(seed * 1000 + 2 * i as u64, photo_side),
            noise_photo(seed * 1000 + 2 * i as u64 + 1, photo_side),
        ];
        raw += photos.iter().map(|p| p.len() as u64).sum::<u64>();
        // In the collector's cells: the first 5 × 10 of a large grid, or
        // all of a small block.
        let (x, y) = grid.node(
            rng.usize(0..grid.rows.min(5)),
            rng.usize(0..grid.cols.min(10)),
        );
        let description = format!("case {i} of the day");
        raw += description.len() as u64 + 64;
        store.report_case(NewCase {
            category: "SJ0102".into(),
            pos: LonLat::new(x + grid.dlon() / 2.0, y - grid.dlat() / 2.0)?,
            description,
            photos,
            at: Some(Timestamp::from_millis(
                "at",
                start.millis() + i as i64 * 60_000,
            )?),
            quick_fix_after: None,
            survey: None,
        })?;
    }
    Ok((points.len(), raw))
}

/// History other collectors made: case reports in cells the bench device
/// does not patrol, applied straight into the server's store.
fn preload(lb: &Loopback, grid: &GridSpec, from: usize, to: usize) -> Result<()> {
    let category = CategoryCode::parse("category", "SJ0201")?;
    let actor = uuid::Uuid::from_u128(0xbe5c_0000_0000 + from as u128);
    let at = Timestamp::parse("at", "2026-11-25T09:00:00+08:00")?;
    let mut batch = Vec::new();
    for (counter, i) in (from..to).enumerate() {
        let (r, c) = (5 + i % (grid.rows - 5), i % grid.cols);
        let (x, y) = grid.node(r, c);
        batch.push(Change {
            schema: CHANGE_SCHEMA,
            actor,
            counter: counter as u64 + 1,
            hlc: Hlc::new(at.millis() as u64 + i as u64, 0),
            op: Op::CaseReport(CaseReport {
                case: CaseId(uuid::Uuid::from_u128(0xca5e_0000_0000 + i as u128)),
                origin: CaseOrigin {
                    reporter: actor,
                    collector: "history".into(),
                    source: CaseSource::Collector,
                    reported_at: at,
                    survey: None,
                },
                fields: CaseFields {
                    description: Some(format!("old case {i}")),
                    category: Some(category.clone()),
                    placement: Some(Placement {
                        pos: LonLat::new(x + grid.dlon() / 2.0, y - grid.dlat() / 2.0)?,
                        cell: None,
                    }),
                },
                photos: vec![CasePhoto {
                    hash: PhotoHash::of(&i.to_le_bytes()),
                    role: PhotoRole::Before,
                }],
                photo_dot: 1,
            }),
        });
        if batch.len() == 2000 {
            lb.storage.apply(std::mem::take(&mut batch))?;
        }
    }
    lb.storage.apply(batch)?;
    Ok(())
}

/// Sync metadata per changed case field: 40 edits, each of one case's
/// description to a fresh random text, pushed in one sync body (gzipped as
/// sent); beside it the floor of plain rows (case id, field, value)
/// deflated, both less the deflated values alone.
fn field_edit_metadata(d: &mut Store) -> Result<SyncRow> {
    let mut rng = fastrand::Rng::with_seed(77);
    let me = d.actor();
    let cases: Vec<_> = d
        .cases()?
        .into_iter()
        .filter(|c| c.origin.as_ref().is_some_and(|o| o.reporter == me))
        .take(40)
        .collect();
    anyhow::ensure!(!cases.is_empty(), "the bench device has cases");
    let mut values = String::new();
    let mut rows_text = String::new();
    for c in &cases {
        let value: String = (0..24).map(|_| rng.alphanumeric()).collect();
        d.edit_case(
            c.id,
            field_core::store::CaseEditRequest {
                description: Some(value.clone()),
                ..Default::default()
            },
        )?;
        values.push_str(&value);
        values.push('\n');
        rows_text.push_str(&format!("{}\tdescription\t{value}\n", c.id.0));
    }
    let edits = d.outbox(usize::MAX, usize::MAX)?.0;
    let body = serde_json::to_vec(&edits)?;
    let gz = |b: &[u8]| field_core::sync::http::gzip(b).map(|z| z.len() as f64);
    let values_z = gz(values.as_bytes())?;
    let n = cases.len() as f64;
    let ours = (gz(&body)? - values_z) / n;
    let floor = (gz(rows_text.as_bytes())? - values_z) / n;
    sync(d)?;
    Ok(row(
        "sync metadata per changed case field",
        format!("{ours:.0} B"),
        format!(
            "{} one-field edits gzipped as sent, less the values; the floor of plain rows (id, field, value) deflated: {floor:.0} B in this run (automerge ≈ 30 B)",
            cases.len()
        ),
        json!({ "bytes_per_field": ours, "plain_rows_floor_bytes": floor, "edits": cases.len() }),
    ))
}

fn one_case_sync(store: &mut Store, grid: &GridSpec, seed: u64) -> Result<Synced> {
    store.report_case(NewCase {
        category: "BJ0101".into(),
        pos: LonLat::new(
            grid.west + grid.dlon() / 2.0,
            grid.north - grid.dlat() / 2.0,
        )?,
        description: "one more".into(),
        photos: vec![noise_photo(seed, 64)],
        at: None,
        quick_fix_after: None,
        survey: None,
    })?;
    sync(store)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn run(
    dir: &std::path::Path,
    devices: usize,
    history: usize,
    postgres: Option<(String, usize)>,
) -> Result<Vec<SyncRow>> {
    let lb = start_server(&dir.join("server"))?;
    let grid = GridSpec {
        west: 120.2,
        north: 30.2,
        rows: 20,
        cols: 20,
        cell_m: 100.0,
    };
    import_grid(&lb, grid)?;
    let mine: Vec<String> = (0..5)
        .flat_map(|r| (0..10).map(move |c| (r, c)))
        .map(|(r, c)| grid.code(r, c))
        .collect();
    let mut rows = Vec::new();

    // 1. A collector-day pushed from scratch: the median of three days
    // (three collectors), and beside it the time the server's checks of
    // that push take alone (authorisation, facts, bounds: a dry run of the
    // same changes), so their share is measured in the same run.
    let mut pushes = Vec::new();
    let mut checks = Vec::new();
    let (mut points, mut raw, mut track_json, mut wire, mut trips) = (0, 0, 0, 0, 0);
    let (mut track_wire, mut track_columnar) = (0, 0);
    let mut d = enrolled(&lb, &dir.join("day0.db"), "day0", &mine)?;
    for day in 0..3u64 {
        if day > 0 {
            d = enrolled(
                &lb,
                &dir.join(format!("day{day}.db")),
                &format!("day{day}"),
                &mine,
            )?;
        }
        sync(&mut d)?; // the grid
        (points, raw) = patrol_day(&mut d, &grid, 1 + day, 40, 200)?;
        let outbox = d.outbox(usize::MAX, usize::MAX)?.0;
        let tracks: Vec<&field_core::crdt::Change> = outbox
            .iter()
            .filter(|c| matches!(c.op, Op::TrackAppend(_)))
            .collect();
        track_json = tracks.iter().map(|c| c.to_json().len()).sum();
        track_columnar = tracks
            .iter()
            .map(|c| match &c.op {
                Op::TrackAppend(b) => {
                    let mut old = (*c).clone();
                    old.op = Op::TrackAppend(b.clone().written_as(TrackWire::Columnar));
                    old.to_json().len()
                }
                _ => 0,
            })
            .sum();
        // The track as it travels: the changes in one JSON array, gzipped
        // as the transport sends a body.
        let array = format!(
            "[{}]",
            tracks
                .iter()
                .map(|c| c.to_json())
                .collect::<Vec<_>>()
                .join(",")
        );
        track_wire = field_core::sync::http::gzip(array.as_bytes())?.len();
        let token = d.sync_settings()?.context("enrolled")?.token;
        let principal = lb
            .center
            .authenticate(Some(&token))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let started = Instant::now();
        let verdicts = lb.center.check_push(&principal, &outbox);
        checks.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(
            verdicts.iter().all(|v| v.is_ok()),
            "the bench's own day was refused: {verdicts:?}"
        );
        let s = sync(&mut d)?;
        pushes.push(s.seconds);
        (wire, trips) = (s.up + s.down, s.round_trips);
    }
    let push_s = median(&mut pushes);
    let check_s = median(&mut checks);
    rows.push(row(
        "collector-day push from scratch",
        format!("{push_s:.2} s, {:.2} MB on the wire", wire as f64 / 1e6),
        format!("median of 3 days; {points} points + 40 cases × 2 photos; raw payload {:.2} MB; wire/raw {:.3}", raw as f64 / 1e6, wire as f64 / raw as f64),
        json!({ "seconds": push_s, "wire_bytes": wire, "raw_bytes": raw, "points": points, "round_trips": trips }),
    ));
    rows.push(row(
        "server checks of that push (dry run)",
        format!(
            "{:.1} ms, {:.1}% of the push",
            check_s * 1e3,
            100.0 * check_s / push_s
        ),
        "authorisation by meaning, server-decided facts, bounds, clock; median of 3".into(),
        json!({ "seconds": check_s, "share_of_push": check_s / push_s }),
    ));
    rows.push(row(
        "track encoding",
        format!("{:.1} B/point", track_json as f64 / points as f64),
        format!(
            "packed track changes as JSON (protocol 2: zig-zag varint second differences, DEFLATE, base64) vs {:.1} B/point columnar delta JSON (protocol 1): {:.2}×",
            track_columnar as f64 / points as f64,
            track_json as f64 / track_columnar as f64
        ),
        json!({ "bytes_per_point": track_json as f64 / points as f64, "columnar_bytes_per_point": track_columnar as f64 / points as f64 }),
    ));
    rows.push(row(
        "track on the wire",
        format!("{:.1} B/point", track_wire as f64 / points as f64),
        format!(
            "those changes in a sync body, gzipped as the transport sends a body ≥ {} B (goal ≤ 6 B/point; GPX ≈ 100, PouchDB ≈ 45)",
            field_core::sync::http::GZIP_FROM_BYTES,
        ),
        json!({ "bytes_per_point": track_wire as f64 / points as f64 }),
    ));

    // 2. Nothing to do.
    let s = sync(&mut d)?;
    rows.push(row(
        "no-op sync",
        format!(
            "{} B, {} round trip, {:.1} ms",
            s.up + s.down,
            s.round_trips,
            s.seconds * 1e3
        ),
        "push nothing, pull nothing: one request".into(),
        json!({ "bytes": s.up + s.down, "round_trips": s.round_trips, "seconds": s.seconds }),
    ));

    // 2b. Edits of one field each: what the sync spends beyond the values.
    rows.push(field_edit_metadata(&mut d)?);

    // 3. A 1-case sync over 1,000 and over `history` cases on the server.
    let mut small_large = Vec::new();
    for (from, to) in [(0, 1000), (1000, history.max(1000))] {
        preload(&lb, &grid, from, to)?;
        sync(&mut d)?;
        let mut times: Vec<f64> = (0..5)
            .map(|i| one_case_sync(&mut d, &grid, 9000 + to as u64 + i).map(|s| s.seconds))
            .collect::<Result<_>>()?;
        times.sort_by(f64::total_cmp);
        let median = percentile(&times, 0.5);
        small_large.push(median);
        rows.push(row(
            &format!("1-case sync, server holds {to} cases"),
            format!("{:.1} ms (median of 5)", median * 1e3),
            "report 1 case with a photo, sync".into(),
            json!({ "server_cases": to, "median_seconds": median }),
        ));
    }
    rows.push(row(
        "1-case sync cost, large / small history",
        format!("{:.2}×", small_large[1] / small_large[0]),
        "≈1 means the cost follows the delta, not the history".into(),
        json!({ "ratio": small_large[1] / small_large[0] }),
    ));

    // 4. Many devices, a day each, all at once: on the embedded server,
    // then (asked for) on PostgreSQL with several instances, the devices
    // taking turns among them.
    let (embedded, _) = many_devices(&[lb], &dir.join("many"), devices, "embedded")?;
    let embedded_rate = embedded.figures["device_days_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    rows.push(embedded);
    if let Some((url, instances)) = postgres {
        let lbs = crate::loopback::start_instances(&dir.join("pg"), &url, instances)?;
        let (mut pg, rate) = many_devices(
            &lbs,
            &dir.join("many-pg"),
            devices,
            &format!("PostgreSQL, {instances} instances"),
        )?;
        pg.note = format!(
            "{}; {:.2}× the embedded run's device-days/s",
            pg.note,
            rate / embedded_rate.max(f64::MIN_POSITIVE)
        );
        rows.push(pg);
    }
    Ok(rows)
}

/// CPU seconds spent so far by the server: this process's threads named
/// `center…` (the HTTP runtime, its blocking pool, the PostgreSQL client)
/// and, on this machine, the PostgreSQL server processes. Linux only
/// (`/proc`); 0 elsewhere. USER_HZ is 100 on Linux.
fn server_cpu() -> (f64, f64) {
    fn ticks(stat: &str) -> f64 {
        // Fields after the command's closing parenthesis: utime is the
        // 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (n(11) + n(12)) / 100.0
    }
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let mut center = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if read(t.path().join("comm")).starts_with("center") {
                center += ticks(&read(t.path().join("stat")));
            }
        }
    }
    let mut database = 0.0;
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            if read(p.path().join("comm")).trim() == "postgres" {
                database += ticks(&read(p.path().join("stat")));
            }
        }
    }
    (center, database)
}

/// Device requests the servers have answered 503 so far (`/v1/health`).
fn shed(lbs: &[Loopback]) -> Result<u64> {
    let mut total = 0;
    for lb in lbs {
        let health: Value = lb.admin()?.call("GET", "/v1/health", None::<&Value>)?;
        total += health["admission"]["shed_total"].as_u64().unwrap_or(0);
    }
    Ok(total)
}

fn handset_path(dir: &std::path::Path, i: usize) -> std::path::PathBuf {
    dir.join(format!("d{i}.db"))
}

/// Handset `i` of the many-devices run, enrolled through server
/// `lbs[i % n]` on a beat of its own, grid pulled, a day walked and
/// reported but not yet synced; its store closed. Its points and raw bytes.
fn prepare_handset(
    lbs: &[Loopback],
    dir: &std::path::Path,
    city: &GridSpec,
    side: usize,
    i: usize,
) -> Result<(usize, u64)> {
    let (r0, c0) = ((i / side) * BEAT, (i % side) * BEAT);
    let beat: Vec<String> = (0..BEAT)
        .flat_map(|r| (0..BEAT).map(move |c| (r0 + r, c0 + c)))
        .map(|(r, c)| city.code(r, c))
        .collect();
    let (west, north) = city.node(r0, c0);
    let block = GridSpec {
        west,
        north,
        rows: BEAT,
        cols: BEAT,
        cell_m: city.cell_m,
    };
    let mut s = enrolled(
        &lbs[i % lbs.len()],
        &handset_path(dir, i),
        &format!("c{i}"),
        &beat,
    )?;
    sync(&mut s)?;
    patrol_day(&mut s, &block, 100 + i as u64, 40, 48)
}

/// Many devices sync a day each at once, device `i` through server
/// `lbs[i % n]`. The row, and its device-days per second.
fn many_devices(
    lbs: &[Loopback],
    dir: &std::path::Path,
    devices: usize,
    label: &str,
) -> Result<(SyncRow, f64)> {
    std::fs::create_dir_all(dir)?;
    let lb = &lbs[0];
    // Each collector walks a
    // beat of their own (a block of 4 × 4 cells of a city grid sized for
    // them), as in a city: a device pulls its own cells' cases, not the
    // whole city's. (Before, every device shared one 50-cell area and so
    // pulled every other device's cases: work growing with the square of
    // the devices.)
    let side = (devices as f64).sqrt().ceil().max(1.0) as usize;
    let city = GridSpec {
        west: 120.2,
        north: 30.2,
        rows: side * BEAT,
        cols: side * BEAT,
        cell_m: 100.0,
    };
    import_grid(lb, city)?;
    // The handsets are made ready (enrolled, the grid pulled, a day walked)
    // by a few threads, each closing its store when done: a city's grid on
    // thousands of open stores would not fit in memory, and the handsets
    // do not share a process on the street either.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let prepared: Vec<Result<Vec<(usize, usize, u64)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let city = &city;
                scope.spawn(move || {
                    let mut done = Vec::new();
                    for i in (w..devices).step_by(workers) {
                        let (p, r) = prepare_handset(lbs, dir, city, side, i)?;
                        done.push((i, p, r));
                    }
                    Ok(done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("preparing thread panicked")))
            })
            .collect()
    });
    let (mut total_points, mut total_raw) = (0, 0);
    for batch in prepared {
        for (_, p, r) in batch? {
            total_points += p;
            total_raw += r;
        }
    }
    let shed_before = shed(lbs)?;
    let cpu_before = server_cpu();
    let started = Instant::now();
    let results: Vec<Result<Synced>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..devices)
            .map(|i| {
                let path = handset_path(dir, i);
                // Each handset opens its own store when its sync starts
                // and closes it when done.
                std::thread::Builder::new()
                    .name(format!("handset{i}"))
                    .spawn_scoped(scope, move || {
                        let mut s = Store::open(&path)?;
                        sync(&mut s)
                    })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("sync thread panicked"))),
                Err(e) => Err(anyhow::anyhow!("no thread for a handset: {e}")),
            })
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let cpu_after = server_cpu();
    let turned_away = shed(lbs)? - shed_before;
    let center_cpu = (cpu_after.0 - cpu_before.0) / devices as f64;
    let database_cpu = (cpu_after.1 - cpu_before.1) / devices as f64;
    let mut times = Vec::new();
    let mut bytes = 0;
    for r in results {
        let r = r?;
        times.push(r.seconds);
        bytes += r.up + r.down;
    }
    times.sort_by(f64::total_cmp);
    let r = row(
        &format!("{devices} devices sync a day each at once ({label})"),
        format!(
            "{:.1} s wall, {:.0} points/s, {:.1} MB/s",
            wall,
            total_points as f64 / wall,
            bytes as f64 / 1e6 / wall
        ),
        format!(
            "each on its own {} cells; {:.2} device-days/s; per-device sync p50 {:.2} s, p99 {:.2} s; server CPU {:.3} s per device-day ({:.3} s center + {:.3} s database); {turned_away} requests turned away (503, retried); raw payload {:.1} MB",
            BEAT * BEAT,
            devices as f64 / wall,
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            center_cpu + database_cpu,
            center_cpu,
            database_cpu,
            total_raw as f64 / 1e6
        ),
        json!({ "wall_seconds": wall, "device_days_per_second": devices as f64 / wall, "points": total_points, "bytes": bytes, "p50_seconds": percentile(&times, 0.5), "p99_seconds": percentile(&times, 0.99), "server_cpu_seconds_per_device_day": center_cpu + database_cpu, "center_cpu_seconds_per_device_day": center_cpu, "database_cpu_seconds_per_device_day": database_cpu, "turned_away": turned_away }),
    );
    Ok((r, devices as f64 / wall))
}
