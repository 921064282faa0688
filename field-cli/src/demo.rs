//! `field demo`: a patrol day of two collectors on three handsets, merged
//! offline by bundle files and then through an embedded sync server.
//!
//! The center (an embedded server on loopback) imports an 8×8 grid and
//! enrols 王芳 (two handsets, the north half) and 李伟 (the south half). 王芳
//! patrols with handset A in the morning; her morning is copied to the spare
//! handset B by file; both then work offline, editing the same cases; B
//! carries the afternoon. Bundles go both ways; in the evening every handset
//! syncs. Each handset ends with the server's cases of its cells, nothing
//! pending, and the server holds every change once.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use chrono::{Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use field_core::model::{LonLat, ShiftKind, Timestamp};
use field_core::store::{CaseEditRequest, NewCase, STORE_FILE, Store};
use field_core::sync::Bundle;
use field_core::sync::http::HttpTransport;
use serde_json::{Value, json};

use crate::loopback::{add_collector, enroll, new_code, start_server};
use crate::output::{Output, table};
use crate::simulate::{GridSpec, patrol_walk, photo};

/// A local time of the demo day (yesterday in UTC+8, so nothing is in the future).
fn local(day: chrono::NaiveDate, hh: u32, mm: u32) -> Result<Timestamp> {
    let tz = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    let naive = day.and_time(NaiveTime::from_hms_opt(hh, mm, 0).expect("demo times are valid"));
    let t = tz
        .from_local_datetime(&naive)
        .single()
        .expect("fixed offsets are unambiguous");
    Ok(Timestamp::from_millis("at", t.timestamp_millis())?)
}

struct Demo {
    grid: GridSpec,
    day: chrono::NaiveDate,
    rng: fastrand::Rng,
    photo_seed: u64,
}

impl Demo {
    fn at_cell(&mut self, r: usize, c: usize) -> Result<LonLat> {
        let (x, y) = self.grid.node(r, c);
        let (dx, dy) = (self.grid.dlon(), self.grid.dlat());
        Ok(LonLat::new(
            x + dx * (0.3 + 0.4 * self.rng.f64()),
            y - dy * (0.3 + 0.4 * self.rng.f64()),
        )?)
    }

    fn photo(&mut self) -> Vec<u8> {
        self.photo_seed += 1;
        photo(self.photo_seed)
    }

    fn report(
        &mut self,
        store: &mut Store,
        category: &str,
        cell: (usize, usize),
        desc: &str,
        (hh, mm): (u32, u32),
        quick_fix: bool,
    ) -> Result<field_core::model::CaseId> {
        let pos = self.at_cell(cell.0, cell.1)?;
        let photos = vec![self.photo()];
        let after = if quick_fix {
            Some(vec![self.photo()])
        } else {
            None
        };
        let at = Some(local(self.day, hh, mm)?);
        Ok(store.report_case(NewCase {
            category: category.into(),
            pos,
            description: desc.into(),
            photos,
            at,
            quick_fix_after: after,
            survey: None,
        })?)
    }
}

fn exchange(from: &Store, to: &mut Store, dir: &Path, name: &str) -> Result<serde_json::Value> {
    let bundle = from.export_bundle(None)?;
    let path = dir.join(name);
    crate::device::write_atomically(&path, bundle.to_json().as_bytes())?;
    let read = Bundle::from_json(&std::fs::read_to_string(&path)?)?;
    let s = to.import_bundle(&read)?;
    Ok(
        json!({ "file": path, "changes": bundle.changes.len(), "photos": bundle.photos.len(), "applied": s.changes.applied, "already_held": s.changes.duplicates }),
    )
}

pub fn run(keep: Option<PathBuf>, serve: bool, out: &Output) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = match &keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let homes = [
        root.join("handset-a"),
        root.join("handset-b"),
        root.join("handset-c"),
    ];
    if homes.iter().any(|h| h.join(STORE_FILE).exists()) || root.join("server").exists() {
        bail!(
            "{} already holds a demo; give --keep an empty directory",
            root.display()
        );
    }
    let mut demo = Demo {
        grid: GridSpec::demo(),
        day: (Utc::now() - Duration::days(1))
            .with_timezone(&FixedOffset::east_opt(8 * 3600).expect("valid"))
            .date_naive(),
        rng: fastrand::Rng::with_seed(20261126),
        photo_seed: 0,
    };
    let mut log = Vec::new();

    // The center: an embedded server, the grid, two collectors.
    let lb = start_server(&root.join("server"))?;
    let grid_file = root.join("grid.geojson");
    std::fs::write(&grid_file, demo.grid.to_geojson())?;
    let _: Value = lb.admin()?.call_raw(
        "PUT",
        "/v1/center/grid",
        "application/geo+json",
        std::fs::read(&grid_file)?,
    )?;
    let g = demo.grid;
    let north: Vec<String> = (0..4)
        .flat_map(|r| (0..8).map(move |c| g.code(r, c)))
        .collect();
    let south: Vec<String> = (4..8)
        .flat_map(|r| (0..8).map(move |c| g.code(r, c)))
        .collect();
    let wang = add_collector(&lb, "王芳", Some("杭州城市采集一公司"), &north)?;
    let li = add_collector(&lb, "李伟", Some("杭州城市采集二公司"), &south)?;
    let mut a = Store::init(&homes[0].join(STORE_FILE), "王芳")?;
    let mut b = Store::init(&homes[1].join(STORE_FILE), "王芳")?;
    let mut c = Store::init(&homes[2].join(STORE_FILE), "李伟")?;
    enroll(&lb, &mut a, &wang, "王芳 handset A")?;
    enroll(&lb, &mut b, &new_code(&lb, "王芳")?, "王芳 spare handset B")?;
    enroll(&lb, &mut c, &li, "李伟 handset")?;
    for s in [&mut a, &mut b, &mut c] {
        sync_quietly(s)?; // at the depot: the grid arrives
    }
    log.push(json!({ "step": "center enrols 王芳 (handsets A, B) and 李伟 (C); handsets pull the grid", "server": lb.url }));

    // Morning on handset A, offline.
    let (cx, cy) = demo.grid.node(2, 4);
    a.mark_shift(
        ShiftKind::Start,
        Some(local(demo.day, 7, 12)?),
        Some(LonLat::new(cx, cy)?),
    )?;
    let north_grid = GridSpec {
        rows: 4,
        ..demo.grid
    };
    let morning = patrol_walk(
        &north_grid,
        local(demo.day, 7, 15)?,
        local(demo.day, 12, 0)?,
        5,
        &mut demo.rng,
    );
    a.append_track_points(&morning)?;
    let cover = demo.report(
        &mut a,
        "BJ0101",
        (1, 4),
        "上水井盖破损 water cover cracked",
        (8, 5),
        false,
    )?;
    let poster = demo.report(
        &mut a,
        "SJ0201",
        (2, 3),
        "电线杆小广告 posters on a pole",
        (9, 40),
        false,
    )?;
    let garbage = demo.report(
        &mut a,
        "SJ0102",
        (3, 5),
        "暴露垃圾 rubbish bags by the kerb",
        (10, 20),
        false,
    )?;
    demo.report(
        &mut a,
        "SJ0201",
        (2, 2),
        "single poster removed on the spot",
        (11, 2),
        true,
    )?;
    log.push(
        json!({ "step": "morning on handset A (offline)", "points": morning.len(), "cases": 4 }),
    );
    log.push(json!({ "step": "bundle A -> B by file", "exchange": exchange(&a, &mut b, &root, "a-morning.bundle.json")? }));

    // Both handsets offline: concurrent edits of the same cases.
    let garbage_photo = a.case(garbage)?.photos[0].hash.clone();
    a.edit_case(
        cover,
        CaseEditRequest {
            description: Some("上水井盖破损，裂缝约30厘米 cover cracked ~30 cm".into()),
            ..Default::default()
        },
    )?;
    a.edit_case(
        garbage,
        CaseEditRequest {
            remove_photos: vec![garbage_photo.clone()],
            add_photos: vec![demo.photo()],
            ..Default::default()
        },
    )?;
    b.edit_case(
        cover,
        CaseEditRequest {
            description: Some("上水井盖缺失 cover missing, cone placed".into()),
            ..Default::default()
        },
    )?;
    b.edit_case(
        poster,
        CaseEditRequest {
            category: Some("SJ0202".into()),
            add_photos: vec![demo.photo()],
            ..Default::default()
        },
    )?;
    b.edit_case(
        garbage,
        CaseEditRequest {
            add_photos: vec![demo.photo()],
            ..Default::default()
        },
    )?;
    let afternoon = patrol_walk(
        &north_grid,
        local(demo.day, 12, 0)?,
        local(demo.day, 20, 15)?,
        5,
        &mut demo.rng,
    );
    b.append_track_points(&afternoon)?;
    demo.report(
        &mut b,
        "BJ0118",
        (0, 6),
        "路灯不亮 street light out",
        (15, 30),
        false,
    )?;
    b.mark_shift(
        ShiftKind::End,
        Some(local(demo.day, 20, 17)?),
        Some(LonLat::new(cx, cy)?),
    )?;
    log.push(json!({ "step": "offline edits on both handsets; afternoon on B", "afternoon_points": afternoon.len() }));

    // 李伟's day in the south half.
    let south_grid = GridSpec {
        north: demo.grid.north - 4.0 * demo.grid.dlat(),
        rows: 4,
        ..demo.grid
    };
    c.mark_shift(ShiftKind::Start, Some(local(demo.day, 7, 14)?), None)?;
    let li_day = patrol_walk(
        &south_grid,
        local(demo.day, 7, 15)?,
        local(demo.day, 20, 15)?,
        5,
        &mut demo.rng,
    );
    c.append_track_points(&li_day)?;
    demo.report(
        &mut c,
        "09009",
        (6, 2),
        "机动车乱停放 car parked on the pavement",
        (17, 45),
        false,
    )?;
    demo.report(
        &mut c,
        "SJ0102",
        (5, 6),
        "暴露垃圾 rubbish by the bus stop",
        (10, 5),
        false,
    )?;
    c.mark_shift(ShiftKind::End, Some(local(demo.day, 20, 18)?), None)?;
    log.push(
        json!({ "step": "李伟 patrols the south half on C", "points": li_day.len(), "cases": 2 }),
    );

    // Merge the two handsets by file, both ways (once more to show re-import is a no-op).
    log.push(json!({ "step": "bundle B -> A", "exchange": exchange(&b, &mut a, &root, "b-day.bundle.json")? }));
    log.push(json!({ "step": "bundle A -> B", "exchange": exchange(&a, &mut b, &root, "a-day.bundle.json")? }));
    log.push(json!({ "step": "bundle A -> B again (idempotent)", "exchange": exchange(&a, &mut b, &root, "a-day-again.bundle.json")? }));

    // Evening: every handset syncs (twice, so each pulls what the others pushed).
    let mut synced = Vec::new();
    let mut decisions = 0;
    for round in 0..2 {
        for (name, s) in [("A", &mut a), ("B", &mut b), ("C", &mut c)] {
            let r = sync_quietly(s)?;
            synced.push(json!({ "round": round + 1, "handset": name, "pushed": r.pushed, "pulled": r.pulled, "photos_sent": r.photos_sent }));
        }
        if round == 0 {
            let d = review(&lb)?;
            decisions = d.len();
            log.push(json!({ "step": "the center reviews", "decisions": d }));
        }
    }
    log.push(json!({ "step": "evening sync of every handset (twice: the second pulls the decisions)", "syncs": synced }));

    let server = lb.storage.digest()?;
    let cases: Value = lb
        .admin()?
        .call::<(), Value>("GET", "/v1/center/cases", None)?;
    let mut checks = Vec::new();
    for (name, s, cells) in [("A", &a, &north), ("B", &b, &north), ("C", &c, &south)] {
        let status = s.sync_status()?;
        let mine = s.cases_digest(Some(cells))?;
        let theirs = lb.storage.cases_digest(Some(cells))?;
        checks.push(json!({
            "handset": name,
            "cases_match_server": mine == theirs,
            "track_on_server": s.device_digests()?.get(&s.actor()) == server.devices.get(&s.actor()),
            "pending_changes": status.pending_changes,
            "pending_photos": status.pending_photos,
        }));
    }
    let authored: usize = [&a, &b, &c]
        .iter()
        .map(|s| {
            s.export_bundle(None).map(|bundle| {
                bundle
                    .changes
                    .iter()
                    .filter(|ch| ch.actor == s.actor())
                    .count()
            })
        })
        .sum::<Result<usize, _>>()?;
    let ok = (authored + decisions) as u64 == server.changes
        && checks.iter().all(|c| {
            c["cases_match_server"] == true
                && c["track_on_server"] == true
                && c["pending_changes"] == 0
                && c["pending_photos"] == 0
        });
    let removed_gone = !a
        .case(garbage)?
        .photos
        .iter()
        .any(|p| p.hash == garbage_photo);
    let assessment: Value = lb.admin()?.call::<(), Value>(
        "GET",
        &format!("/v1/center/report?period={}", demo.day),
        None,
    )?;
    let console = format!("{}/console/map?day={}", lb.url, demo.day);
    let result = json!({
        "server": lb.url,
        "console": console,
        "root": root,
        "steps": log,
        "center_cases": cases,
        "handsets": checks,
        "server_changes": server.changes,
        "authored_changes": authored,
        "center_decisions": decisions,
        "removed_photo_stays_removed": removed_gone,
        "converged": ok,
        "assessment": assessment,
        "kept": keep.is_some(),
    });
    out.show(&result, |_| {
        let mut text = String::new();
        for step in &log {
            text.push_str(&format!("- {}: {}\n", step["step"].as_str().unwrap_or_default(), compact(step)));
        }
        text.push_str("\ncases at the center after the evening sync:\n");
        text.push_str(&center_table(&cases));
        text.push_str(&format!("\n\nserver holds {} changes: {authored} from the handsets, {decisions} decisions of the center\n", server.changes));
        for c in &checks {
            text.push_str(&format!(
                "handset {}: cases {} the server's, track {}, {} changes and {} photos pending\n",
                c["handset"].as_str().unwrap_or_default(),
                if c["cases_match_server"] == true { "match" } else { "DIFFER FROM" },
                if c["track_on_server"] == true { "on the server" } else { "MISSING on the server" },
                c["pending_changes"],
                c["pending_photos"]
            ));
        }
        text.push_str(&format!("\nthe day's assessment ({}):\n{}\n", demo.day, crate::center::report_table(&assessment)));
        text.push_str(&format!(
            "\nweb console: {console}\n  sign in with the admin token {} (also in {})\n",
            lb.admin,
            root.join("server").join("admin.token").display()
        ));
        if keep.is_some() {
            text.push_str(&format!(
                "kept in {}: restart the center with `sync-server --data {}`, explore a handset with `field --home {} case list`\n",
                root.display(),
                root.join("server").display(),
                homes[0].display()
            ));
        }
        text
    })?;
    if !ok {
        bail!("the handsets and the server did not converge");
    }
    if serve {
        eprintln!("serving the console until Ctrl-C (`field demo --no-serve` exits at once)");
        lb.serve_until_interrupted()?;
    }
    Ok(())
}

fn sync_quietly(store: &mut Store) -> Result<field_core::sync::client::SyncSummary> {
    let settings = store
        .sync_settings()?
        .ok_or_else(|| anyhow::anyhow!("not enrolled"))?;
    let mut t = HttpTransport::new(&settings.server, Some(settings.token))?;
    Ok(field_core::sync::client::sync(store, &mut t, &mut |_| {})?)
}

/// A step's figures without its name, on one line.
fn compact(step: &Value) -> String {
    let mut v = step.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("step");
    }
    v.to_string()
}

fn center_table(cases: &Value) -> String {
    let rows = cases
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    vec![
                        c["id"]
                            .as_str()
                            .unwrap_or_default()
                            .chars()
                            .take(8)
                            .collect(),
                        c["collector"].as_str().unwrap_or_default().to_string(),
                        c["status"]
                            .as_array()
                            .map(|s| {
                                s.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join("|")
                            })
                            .unwrap_or_default(),
                        c["source"].as_str().unwrap_or_default().to_string(),
                        c["category"].as_str().unwrap_or_default().to_string(),
                        c["cell"].as_str().unwrap_or_default().to_string(),
                        format!(
                            "{}{}",
                            c["photos"],
                            if c["photos_pending"] == true {
                                " (pending)"
                            } else {
                                ""
                            }
                        ),
                        c["description"].as_str().unwrap_or_default().to_string(),
                    ]
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    table(
        &[
            "ID",
            "COLLECTOR",
            "STATUS",
            "SOURCE",
            "CATEGORY",
            "CELL",
            "PHOTOS",
            "DESCRIPTION",
        ],
        &rows,
    )
}

/// The center's evening review: register what is valid, reject what is not,
/// approve quick fixes. Returns what it decided.
fn review(lb: &crate::loopback::Loopback) -> Result<Vec<Value>> {
    let mut admin = lb.admin()?;
    let queue: Value = admin.call::<(), Value>("GET", "/v1/center/cases", None)?;
    let mut decided = Vec::new();
    for c in queue.as_array().into_iter().flatten() {
        let id = c["id"].as_str().unwrap_or_default();
        let body = match (c["source"].as_str(), c["category"].as_str()) {
            (Some("quick_fix"), _) => json!({ "action": "close", "note": "quick fix approved" }),
            (_, Some("SJ0202")) => json!({ "action": "reject", "reason": "wrong_category" }),
            _ => json!({ "action": "register" }),
        };
        let _: Value = admin.call(
            "POST",
            &format!("/v1/center/cases/{id}/decisions"),
            Some(&body),
        )?;
        decided.push(json!({ "case": &id[..8.min(id.len())], "decision": body["action"] }));
    }
    Ok(decided)
}
