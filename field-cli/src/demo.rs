//! `field demo`: one collector, two handsets, a patrol day, no network.
//!
//! 王芳 patrols with handset A. Her morning (track, shift start, reports)
//! is copied to the spare handset B by bundle file. Both then work offline:
//! on A she refines descriptions and photos; on B, which she carries in the
//! afternoon, she edits some of the same cases, reports more and ends the
//! shift. Bundles go both ways; both handsets print the same merged cases
//! and the same state digest.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use chrono::{Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use field_core::model::{LonLat, ShiftKind, Timestamp};
use field_core::store::{CaseEditRequest, NewCase, STORE_FILE, Store};
use field_core::sync::Bundle;
use serde_json::json;

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

pub fn run(keep: Option<PathBuf>, out: &Output) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let root = match &keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let (home_a, home_b) = (root.join("handset-a"), root.join("handset-b"));
    for h in [&home_a, &home_b] {
        if h.join(STORE_FILE).exists() {
            bail!(
                "{} already holds a device; give --keep an empty directory",
                h.display()
            );
        }
    }
    let mut demo = Demo {
        grid: GridSpec::demo(),
        day: (Utc::now() - Duration::days(1))
            .with_timezone(&FixedOffset::east_opt(8 * 3600).expect("valid"))
            .date_naive(),
        rng: fastrand::Rng::with_seed(20261126),
        photo_seed: 0,
    };
    let grid_file = root.join("grid.geojson");
    std::fs::write(&grid_file, demo.grid.to_geojson())?;
    let mut a = Store::init(&home_a.join(STORE_FILE), "王芳")?;
    let mut b = Store::init(&home_b.join(STORE_FILE), "王芳")?;
    for s in [&mut a, &mut b] {
        let cells = field_core::import::parse_grid(
            &std::fs::read_to_string(&grid_file)?,
            s.cell_pattern(),
        )?;
        s.import_grid(cells)?;
    }
    let mut log = Vec::new();

    // Morning on handset A.
    let (cx, cy) = demo.grid.center();
    a.mark_shift(
        ShiftKind::Start,
        Some(local(demo.day, 7, 12)?),
        Some(LonLat::new(cx, cy)?),
    )?;
    let morning = patrol_walk(
        &demo.grid,
        local(demo.day, 7, 15)?,
        local(demo.day, 12, 0)?,
        5,
        &mut demo.rng,
    );
    a.append_track_points(&morning)?;
    let cover = demo.report(
        &mut a,
        "BJ0101",
        (3, 4),
        "上水井盖破损 water cover cracked",
        (8, 5),
        false,
    )?;
    let poster = demo.report(
        &mut a,
        "SJ0201",
        (4, 3),
        "电线杆小广告 posters on a pole",
        (9, 40),
        false,
    )?;
    let garbage = demo.report(
        &mut a,
        "SJ0102",
        (5, 5),
        "暴露垃圾 rubbish bags by the kerb",
        (10, 20),
        false,
    )?;
    demo.report(
        &mut a,
        "SJ0201",
        (4, 4),
        "single poster removed on the spot",
        (11, 2),
        true,
    )?;
    log.push(json!({ "step": "morning on handset A", "points": morning.len(), "cases": 4 }));
    log.push(json!({ "step": "bundle A -> B", "exchange": exchange(&a, &mut b, &root, "a-morning.bundle.json")? }));

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
        &demo.grid,
        local(demo.day, 12, 0)?,
        local(demo.day, 20, 15)?,
        5,
        &mut demo.rng,
    );
    b.append_track_points(&afternoon)?;
    demo.report(
        &mut b,
        "BJ0118",
        (2, 6),
        "路灯不亮 street light out",
        (15, 30),
        false,
    )?;
    demo.report(
        &mut b,
        "09009",
        (6, 2),
        "机动车乱停放 car parked on the pavement",
        (17, 45),
        false,
    )?;
    b.mark_shift(
        ShiftKind::End,
        Some(local(demo.day, 20, 17)?),
        Some(LonLat::new(cx, cy)?),
    )?;
    log.push(
        json!({ "step": "offline edits on both handsets", "afternoon_points": afternoon.len() }),
    );

    // Merge both ways, twice from A to show re-import is a no-op.
    log.push(json!({ "step": "bundle B -> A", "exchange": exchange(&b, &mut a, &root, "b-day.bundle.json")? }));
    log.push(json!({ "step": "bundle A -> B", "exchange": exchange(&a, &mut b, &root, "a-day.bundle.json")? }));
    log.push(json!({ "step": "bundle A -> B again (idempotent)", "exchange": exchange(&a, &mut b, &root, "a-day-again.bundle.json")? }));

    let (da, db) = (a.digest()?, b.digest()?);
    let cases = a
        .cases()?
        .iter()
        .map(|v| a.summarize(v))
        .collect::<Result<Vec<_>, _>>()?;
    let removed_gone = !a
        .case(garbage)?
        .photos
        .iter()
        .any(|p| p.hash == garbage_photo);
    let result = json!({
        "homes": { "a": home_a, "b": home_b },
        "steps": log,
        "cases": cases,
        "digest": { "a": da, "b": db, "equal": da == db },
        "removed_photo_stays_removed": removed_gone,
        "kept": keep.is_some(),
    });
    out.show(&result, |_| {
        let mut text = String::new();
        for step in &log {
            text.push_str(&format!("- {}\n", step));
        }
        let rows = cases
            .iter()
            .map(|c| {
                vec![
                    c.id.to_string()[..8].to_string(),
                    format!(
                        "{:?}",
                        c.source.unwrap_or(field_core::model::CaseSource::Collector)
                    )
                    .to_lowercase(),
                    c.category.clone().unwrap_or_default(),
                    c.cell.clone().unwrap_or_default(),
                    c.photos.to_string(),
                    c.description.clone().unwrap_or_default(),
                ]
            })
            .collect::<Vec<_>>();
        text.push_str("\nmerged cases (identical on both handsets):\n");
        text.push_str(&table(
            &["ID", "SOURCE", "CATEGORY", "CELL", "PHOTOS", "DESCRIPTION"],
            &rows,
        ));
        text.push_str(&format!(
            "\n\ndigest handset A: {da}\ndigest handset B: {db}\n"
        ));
        text.push_str(if da == db {
            "digests equal: both handsets hold the same merged state\n"
        } else {
            "DIGESTS DIFFER\n"
        });
        if keep.is_some() {
            text.push_str(&format!(
                "homes kept in {} (try: field --home {} case list)\n",
                root.display(),
                home_a.display()
            ));
        }
        text
    })?;
    if da != db {
        bail!("the two handsets did not converge");
    }
    Ok(())
}
