//! `field bench console`: the web console at a city's scale, over real HTTP
//! on loopback with a signed-in session — the review queue paging through
//! 100,000 cases (unfiltered, deep pages, by cell, by category, by flag)
//! and the city map's GeoJSON for 2,500 cells with 50 collectors' tracks of
//! a day. Each is set against plain SQLite reading the same rows in the
//! same run (the floor no page can beat).

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use field_core::crdt::{CHANGE_SCHEMA, CaseReport, Change, Hlc, Op};
use field_core::model::{
    CaseFields, CaseId, CaseOrigin, CasePhoto, CaseSource, CategoryCode, LonLat, PhotoHash,
    PhotoRole, Placement, Timestamp,
};
use serde_json::json;
use sync_server::config::Limits;
use sync_server::service::{Center, system_clock};
use sync_server::storage::Storage;

use super::sync::{SyncRow, row};
use crate::loopback::start_server;

/// The patrol day whose tracks the map draws.
const MAP_DAY: &str = "2026-11-25";
const CATEGORIES: [&str; 6] = ["BJ0101", "BJ0102", "BJ0201", "SJ0101", "SJ0201", "SJ0301"];

/// A signed-in browser, as far as timing goes: a cookie and GETs.
struct Session {
    http: reqwest::blocking::Client,
    base: String,
    cookie: String,
}

impl Session {
    fn sign_in(base: &str, token: &str) -> Result<Session> {
        field_core::sync::http::tls_ready();
        // The flag scans of a 100,000-case city take longer than a
        // client's usual 30 s: a bench measures them, it does not give up.
        // English pages, so the counts read the same in every run.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT_LANGUAGE,
            reqwest::header::HeaderValue::from_static("en"),
        );
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(900))
            .default_headers(headers)
            .build()?;
        let r = http
            .post(format!("{base}/console/sign-in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()?;
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .context("sign-in gave no session cookie")?
            .to_string();
        Ok(Session {
            http,
            base: base.to_string(),
            cookie,
        })
    }

    /// The body and the best of `runs` timings (seconds).
    fn get(&self, path: &str, runs: usize) -> Result<(String, f64)> {
        let mut best = f64::INFINITY;
        let mut body = String::new();
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            let r = self
                .http
                .get(format!("{}{path}", self.base))
                .header("cookie", &self.cookie)
                .send()?;
            ensure!(r.status().is_success(), "{path}: HTTP {}", r.status());
            body = r.text()?;
            best = best.min(started.elapsed().as_secs_f64());
        }
        Ok((body, best))
    }
}

fn rows_on_page(html: &str) -> usize {
    html.matches("<tr data-case=").count()
}

/// `cases` reports spread over the 30 days up to the map day, each in its
/// collector's block; 1 in 100 reuses the photo of the one before.
fn seed_cases(storage: &dyn Storage, city: &super::city::City, cases: usize) -> Result<()> {
    let mut rng = fastrand::Rng::with_seed(7);
    let last = Timestamp::parse("last", &format!("{MAP_DAY}T08:00:00+08:00"))?.millis();
    let per = cases.div_ceil(city.collectors.len());
    for (k, c) in city.collectors.iter().enumerate() {
        let mut batch = Vec::with_capacity(2000);
        let mine = per.min(cases - (k * per).min(cases));
        for (j, counter) in (0..mine).zip(c.counter + 1..) {
            let i = k * per + j;
            let day = (j % 30) as i64;
            let at = last - day * 86_400_000 + rng.i64(0..10 * 3_600_000);
            let (x, y) = c.block.node(0, 0);
            let pos = LonLat::new(
                x + rng.f64() * c.block.dlon() * c.block.cols as f64,
                y - rng.f64() * c.block.dlat() * c.block.rows as f64,
            )?;
            let photo_seed = if i % 100 == 99 { i - 1 } else { i };
            batch.push(Change {
                schema: CHANGE_SCHEMA,
                actor: c.actor,
                counter,
                hlc: Hlc::new(at as u64, 0),
                op: Op::CaseReport(CaseReport {
                    case: CaseId(uuid::Uuid::from_u128(0xc0de_0000_0000 + i as u128)),
                    origin: CaseOrigin {
                        reporter: c.actor,
                        collector: c.name.clone(),
                        source: CaseSource::Collector,
                        reported_at: Timestamp::from_millis("at", at)?,
                        survey: None,
                    },
                    fields: CaseFields {
                        description: Some(format!("case {i} <b>as typed</b>")),
                        category: Some(CategoryCode::parse(
                            "category",
                            CATEGORIES[rng.usize(0..CATEGORIES.len())],
                        )?),
                        placement: Some(Placement { pos, cell: None }),
                    },
                    photos: vec![CasePhoto {
                        hash: PhotoHash::of(&(photo_seed as u64).to_le_bytes()),
                        role: PhotoRole::Before,
                    }],
                    photo_dot: 1,
                }),
            });
            if batch.len() == 2000 {
                storage.apply(std::mem::take(&mut batch))?;
            }
        }
        storage.apply(batch)?;
    }
    Ok(())
}

pub fn run(
    dir: &std::path::Path,
    cases: usize,
    collectors: usize,
    browser: bool,
) -> Result<Vec<SyncRow>> {
    let data = dir.join("server");
    let lb = start_server(&data)?;
    let center = Center::new(lb.storage.clone(), Limits::default(), system_clock());
    let admin = center.authenticate(Some(&lb.admin))?;
    let started = Instant::now();
    let city = super::city::seed(
        &center,
        &admin,
        lb.storage.as_ref(),
        collectors,
        &[MAP_DAY.to_string()],
        5,
    )?;
    seed_cases(lb.storage.as_ref(), &city, cases)?;
    let load = started.elapsed().as_secs_f64();
    let session = Session::sign_in(&lb.url, &lb.admin)?;
    let pages = cases.div_ceil(50);

    // The floor: the same 50 rows (id and state) read with plain SQLite.
    let conn = rusqlite::Connection::open(data.join("changes.db"))?;
    let plain = |sql: &str| -> Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let started = Instant::now();
            let mut stmt = conn.prepare(sql)?;
            let n = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })?
                .count();
            ensure!(n > 0, "no rows for {sql}");
            best = best.min(started.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let newest = plain("SELECT id, state FROM cases ORDER BY reported_at DESC, id DESC LIMIT 50")?;

    let mut rows = vec![row(
        "city generated and stored",
        format!("{cases} cases"),
        format!(
            "{collectors} collectors' tracks of {MAP_DAY} ({} points) over 2,500 cells; {load:.1} s",
            city.points
        ),
        json!({ "cases": cases, "points": city.points, "seconds": load }),
    )];
    let cell = city.collectors[0].cells[0].clone();
    let queue = [
        ("queue, first page", "/console/queue".to_string()),
        (
            "queue, middle page",
            format!("/console/queue?page={}", pages / 2),
        ),
        (
            "queue, last page",
            format!("/console/queue?page={}", pages - 1),
        ),
        ("queue, one cell", format!("/console/queue?cell={cell}")),
        (
            "queue, a major class",
            "/console/queue?category=BJ01".into(),
        ),
        (
            "queue, one collector's unreviewed",
            "/console/queue?collector=collector-01&status=reported".into(),
        ),
        (
            "queue, flag = reused photo (indexed)",
            "/console/queue?flag=reused_photo".into(),
        ),
        (
            "queue, flag = far from track (every case's flags computed)",
            "/console/queue?flag=far_from_track".into(),
        ),
    ];
    for (measure, path) in queue {
        let runs = if path.contains("flag=far") { 1 } else { 5 };
        let (html, secs) = session.get(&path, runs)?;
        let shown = rows_on_page(&html);
        ensure!(shown > 0 || path.contains("flag=far"), "{path}: no rows");
        let count = html
            .split("<p id=\"count\">")
            .nth(1)
            .and_then(|s| s.split(" case").next())
            .unwrap_or("?")
            .to_string();
        rows.push(row(
            measure,
            format!("{:.1} ms", secs * 1000.0),
            format!(
                "{shown} rows of {count}; {:.0}× plain SQLite's 50 newest rows ({:.2} ms)",
                secs / newest,
                newest * 1000.0
            ),
            json!({ "path": path, "seconds": secs, "rows": shown, "matching": count, "plain_sqlite_seconds": newest }),
        ));
    }

    // A collector's month report page: the four rates, a daily chart, explain lists.
    let month = &MAP_DAY[..7];
    let (html, report_secs) = session.get(
        &format!("/console/report?collector=collector-01&period={month}"),
        3,
    )?;
    ensure!(
        html.contains("id=\"chart\""),
        "the report page has its chart"
    );
    rows.push(row(
        "collector's month report page",
        format!("{:.2} s", report_secs),
        format!(
            "{month}: 30 days assessed live (no nightly rollups), {cases} cases in the city; {:.0} KB of HTML",
            html.len() as f64 / 1e3
        ),
        json!({ "seconds": report_secs, "bytes": html.len() }),
    ));

    // The map: the page, then its GeoJSON (what the browser fetches and draws).
    let (_, page_secs) = session.get(&format!("/console/map?day={MAP_DAY}"), 3)?;
    let (geojson, data_secs) = session.get(&format!("/console/map/data?day={MAP_DAY}"), 3)?;
    let fc: serde_json::Value = serde_json::from_str(&geojson)?;
    let layer = |l: &str| {
        fc["features"]
            .as_array()
            .map(|f| f.iter().filter(|x| x["properties"]["layer"] == l).count())
            .unwrap_or(0)
    };
    let drawn_points: usize = fc["features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["properties"]["layer"] == "track")
        .map(|x| {
            x["geometry"]["coordinates"]
                .as_array()
                .map(|ls| {
                    ls.iter()
                        .map(|l| l.as_array().map_or(0, Vec::len))
                        .sum::<usize>()
                })
                .unwrap_or(0)
        })
        .sum();
    ensure!(layer("cell") == 2500, "the map has {} cells", layer("cell"));
    // The floor for the map: the day's points read plainly.
    let started = Instant::now();
    let mut points = 0usize;
    {
        let mut stmt = conn.prepare(
            "SELECT actor, t_ms, lon, lat FROM track_points WHERE t_ms BETWEEN ?1 AND ?2",
        )?;
        let mut q = stmt.query([
            Timestamp::parse("a", &format!("{MAP_DAY}T00:00:00+08:00"))?.millis(),
            Timestamp::parse("b", &format!("{MAP_DAY}T23:59:59+08:00"))?.millis(),
        ])?;
        while let Some(r) = q.next()? {
            let _: (Vec<u8>, i64, f64, f64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            points += 1;
        }
    }
    let points_secs = started.elapsed().as_secs_f64();
    rows.push(row(
        "map page (HTML)",
        format!("{:.1} ms", page_secs * 1000.0),
        "the frame; the drawing comes from the GeoJSON below".into(),
        json!({ "seconds": page_secs }),
    ));
    rows.push(row(
        "map GeoJSON: 2,500 cells + the day's tracks + cases",
        format!("{:.2} s", data_secs),
        format!(
            "{} cells, {} tracks ({drawn_points} drawn of {points} points), {} cases; {:.1} MB; {:.1}× reading the day's {points} points plainly ({:.0} ms)",
            layer("cell"),
            layer("track"),
            layer("case"),
            geojson.len() as f64 / 1e6,
            data_secs / points_secs,
            points_secs * 1000.0
        ),
        json!({ "seconds": data_secs, "bytes": geojson.len(), "cells": layer("cell"), "tracks": layer("track"), "cases": layer("case"), "drawn_points": drawn_points, "points": points, "plain_points_seconds": points_secs }),
    ));
    // The wall screen: the map day's figures computed (a past day is never
    // kept: every call computes), then today's refresh as every open
    // screen makes it (the one kept computation).
    let (dash, dash_secs) = session.get(&format!("/console/dashboard/data?day={MAP_DAY}"), 3)?;
    let d: serde_json::Value = serde_json::from_str(&dash)?;
    ensure!(
        d["cells"].as_array().map_or(0, Vec::len) == 2500,
        "the dashboard has every cell"
    );
    let (_, first_secs) = session.get("/console/dashboard/data", 1)?;
    let (kept, kept_secs) = session.get("/console/dashboard/data", 5)?;
    rows.push(row(
        "dashboard refresh, computed (the map day)",
        format!("{:.2} s", dash_secs),
        format!(
            "2,500 cells' coverage, {} on post, {} cases by class, {} red flags; {:.0} KB ({:.0}% of the map GeoJSON's bytes, {:.2}× its time)",
            d["on_post"].as_array().map_or(0, Vec::len),
            d["totals"]["reported"],
            d["red_flags"].as_array().map_or(0, Vec::len),
            dash.len() as f64 / 1e3,
            100.0 * dash.len() as f64 / geojson.len() as f64,
            dash_secs / data_secs
        ),
        json!({ "seconds": dash_secs, "bytes": dash.len(), "map_seconds": data_secs, "map_bytes": geojson.len() }),
    ));
    rows.push(row(
        "dashboard refresh, shared (today, kept 15 s)",
        format!("{:.1} ms", kept_secs * 1000.0),
        format!(
            "what every open screen pays after the first ({:.2} s to compute today's); {:.0} KB",
            first_secs,
            kept.len() as f64 / 1e3
        ),
        json!({ "seconds": kept_secs, "first_seconds": first_secs, "bytes": kept.len() }),
    ));
    if browser {
        rows.extend(in_browser(&lb.url, &session)?);
    }
    Ok(rows)
}

/// The map and the first queue page as a reviewer sees them: headless
/// Chromium from the address to the drawing painted (the page's own
/// timings split fetch from draw).
fn in_browser(base: &str, session: &Session) -> Result<Vec<SyncRow>> {
    let b = super::browser::Browser::start()?;
    b.goto(&format!("{base}/console/sign-in"))?;
    let (name, value) = session
        .cookie
        .split_once('=')
        .context("a name=value cookie")?;
    b.add_cookie(name, value)?;
    let started = Instant::now();
    b.goto(&format!("{base}/console/map?day={MAP_DAY}"))?;
    let t = b.until(
        "const s = document.querySelector('svg#map');
         return s && s.dataset.ready === '1' ? {
           fetch: +s.dataset.fetchMs, draw: +s.dataset.drawMs,
           cells: document.querySelectorAll('svg#map path.cell').length,
           tracks: document.querySelectorAll('svg#map path.track').length,
           cases: document.querySelectorAll('svg#map circle.case').length } : null",
    )?;
    let wall = started.elapsed().as_secs_f64();
    ensure!(t["cells"] == 2500, "the browser drew {} cells", t["cells"]);
    let started = Instant::now();
    b.goto(&format!("{base}/console/queue"))?;
    let shown = b.until(
        "return document.readyState === 'complete' ? document.querySelectorAll('#queue tr[data-case]').length : null",
    )?;
    let queue = started.elapsed().as_secs_f64();
    Ok(vec![
        row(
            "map in headless Chromium, address to painted",
            format!("{wall:.2} s"),
            format!(
                "{} cells, {} tracks, {} cases drawn; fetch {} ms, draw and paint {} ms",
                t["cells"], t["tracks"], t["cases"], t["fetch"], t["draw"]
            ),
            json!({ "seconds": wall, "browser": t }),
        ),
        row(
            "queue's first page in headless Chromium, loaded",
            format!("{:.0} ms", queue * 1000.0),
            format!("{shown} rows with their thumbnails requested"),
            json!({ "seconds": queue, "rows": shown }),
        ),
    ])
}
