//! What a collector's device does: `init`, `grid`, `track`, `shift`, `case`,
//! `digest`, `changes`. Each command opens the store, does one thing, and
//! prints text or JSON.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use field_core::model::{CaseId, LonLat, PhotoHash, ShiftKind, Timestamp, TrackPoint};
use field_core::store::{CaseEditRequest, NewCase, STORE_FILE, Store};
use field_core::sync::Bundle;
use serde_json::json;

use crate::cli::{CaseCmd, ChangesCmd, GridCmd, ReportArgs, ShiftEdge, TrackCmd};
use crate::output::{Output, city_time, table};

pub fn store_path(home: &Path) -> PathBuf {
    home.join(STORE_FILE)
}

pub fn open(home: &Path) -> Result<Store> {
    // FIELD_DEVICE_CLOCK_SKEW_MS makes this handset's clock run that far
    // from the system's: how a phone with a wrong clock is reproduced.
    let skew: i64 = std::env::var("FIELD_DEVICE_CLOCK_SKEW_MS")
        .ok()
        .map(|v| v.parse())
        .transpose()
        .map_err(|e| anyhow::anyhow!("FIELD_DEVICE_CLOCK_SKEW_MS: {e}"))?
        .unwrap_or(0);
    Ok(Store::open_with_clock(
        &store_path(home),
        Box::new(field_core::crdt::SkewedClock(skew)),
    )?)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The device store, created when this home has none (a fresh handset
/// enrolling: the collector's name comes from the server).
pub fn open_or_create(home: &Path) -> Result<Store> {
    if !store_path(home).exists() {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        drop(Store::init(&store_path(home), "pending")?);
    }
    open(home)
}

/// `field catalog list|search`.
pub fn catalog(home: &Path, cmd: crate::cli::CatalogCmd, out: &Output) -> Result<()> {
    let store = open(home)?;
    let hits: Vec<&field_core::model::CatalogEntry> = match &cmd {
        crate::cli::CatalogCmd::List => store.catalog().entries().collect(),
        crate::cli::CatalogCmd::Search { query, limit } => {
            field_core::model::catalog_search(store.catalog(), query, *limit)
        }
    };
    out.show(&hits, |hits| {
        if hits.is_empty() {
            return "no subclass matches".to_string();
        }
        hits.iter()
            .map(|e| {
                format!(
                    "{:<8} {}  {}  ({})",
                    e.code, e.name_zh, e.name_en, e.major_name
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

pub fn init(home: &Path, collector: &str, out: &Output) -> Result<()> {
    let store = Store::init(&store_path(home), collector)?;
    let info = json!({ "home": home, "actor": store.actor(), "collector": store.collector() });
    out.show(&info, |_| {
        format!(
            "device {} initialised for {} in {}",
            store.actor(),
            store.collector(),
            home.display()
        )
    })
}

pub fn grid(home: &Path, cmd: GridCmd, out: &Output) -> Result<()> {
    let mut store = open(home)?;
    match cmd {
        GridCmd::Import { file } => {
            let text = read_text(&file)?;
            let cells = field_core::import::parse_grid(&text, store.cell_pattern())?;
            let summary = store.import_grid(cells)?;
            out.show(&summary, |s| {
                let zones: Vec<String> =
                    s.by_zone.iter().map(|(z, n)| format!("{n} {z}")).collect();
                format!(
                    "{} cells imported ({}), {:.0} m² in all",
                    s.cells,
                    zones.join(", "),
                    s.area_m2
                )
            })
        }
        GridCmd::List => {
            let cells: Vec<_> = store
                .cells()?
                .into_iter()
                .map(|c| json!({ "code": c.code, "zone": c.zone, "name": c.name, "area_m2": c.area_m2 }))
                .collect();
            out.show(&cells, |cells| {
                let rows = cells
                    .iter()
                    .map(|c| {
                        vec![
                            c["code"].as_str().unwrap_or_default().to_string(),
                            c["zone"].as_str().unwrap_or_default().to_string(),
                            format!("{:.0}", c["area_m2"].as_f64().unwrap_or_default()),
                            c["name"].as_str().unwrap_or_default().to_string(),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["CODE", "ZONE", "AREA_M2", "NAME"], &rows)
            })
        }
    }
}

pub fn track(home: &Path, cmd: TrackCmd, out: &Output) -> Result<()> {
    let mut store = open(home)?;
    match cmd {
        TrackCmd::Import { file } => {
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let read = field_core::import::read_gpx_report(reader)
                .with_context(|| format!("importing {}", file.display()))?;
            let (n, held) = store.import_track_points(&read.points)?;
            let info = json!({ "imported": n, "already_held": held, "skipped": read.skipped, "file": file });
            out.show(&info, |_| {
                let mut text = format!("{n} track points imported");
                if held > 0 {
                    text.push_str(&format!("; {held} already held (not added again)"));
                }
                if !read.skipped.is_empty() {
                    text.push_str(&format!("; {} skipped:", read.skipped.len()));
                    for s in read.skipped.iter().take(10) {
                        text.push_str(&format!("\n  {} {}", s.point, s.reason));
                    }
                    if read.skipped.len() > 10 {
                        text.push_str(&format!("\n  … and {} more", read.skipped.len() - 10));
                    }
                }
                text
            })
        }
        TrackCmd::Add {
            lon,
            lat,
            at,
            accuracy,
            speed,
        } => {
            let point = TrackPoint::new(
                Timestamp::parse("at", &at)?,
                LonLat::new(lon, lat)?,
                accuracy,
                speed,
            )?;
            store.append_track_points(&[point])?;
            let tz = city_tz(&store)?;
            out.show(&point, |p| {
                crate::output::tr(
                    "cli-fix-recorded",
                    &[
                        ("at", city_time(p.at, tz).into()),
                        ("pos", p.pos.to_string().into()),
                    ],
                )
            })
        }
        TrackCmd::Export { out: path, format } => {
            let format = export_format(&path, format)?;
            let points = store.track_points(None)?;
            let bytes = crate::export::tracks(&points, format, city_tz(&store)?)?;
            write_atomically(&path, &bytes)?;
            out.show(
                &json!({ "points": points.len(), "file": path, "bytes": bytes.len() }),
                |_| format!("{} points written to {}", points.len(), path.display()),
            )
        }
        TrackCmd::List { points } => {
            let tz = city_tz(&store)?;
            if points {
                let all = store.track_points(None)?;
                out.show(&all, |all| {
                    let rows = all
                        .iter()
                        .map(|p| {
                            vec![
                                p.actor.to_string()[..8].to_string(),
                                p.seq.to_string(),
                                city_time(p.point.at, tz),
                                p.point.pos.to_string(),
                                p.point
                                    .accuracy_m
                                    .map(|a| format!("{a:.1}"))
                                    .unwrap_or("-".into()),
                            ]
                        })
                        .collect::<Vec<_>>();
                    table(&["DEVICE", "SEQ", "AT", "LON,LAT", "ACC_M"], &rows)
                })
            } else {
                let summary = store.track_summary()?;
                out.show(&summary, |s| {
                    let rows = s
                        .iter()
                        .map(|t| {
                            let when = |x: Option<Timestamp>| {
                                x.map(|t| city_time(t, tz)).unwrap_or_default()
                            };
                            vec![
                                t.actor.to_string(),
                                t.points.to_string(),
                                when(t.first),
                                when(t.last),
                            ]
                        })
                        .collect::<Vec<_>>();
                    table(&["DEVICE", "POINTS", "FIRST", "LAST"], &rows)
                })
            }
        }
    }
}

pub fn shift(
    home: &Path,
    edge: ShiftEdge,
    at: Option<String>,
    lon: Option<f64>,
    lat: Option<f64>,
    out: &Output,
) -> Result<()> {
    let mut store = open(home)?;
    let kind = match edge {
        ShiftEdge::Start => ShiftKind::Start,
        ShiftEdge::End => ShiftKind::End,
    };
    let at = at.map(|t| Timestamp::parse("at", &t)).transpose()?;
    let pos = match (lon, lat) {
        (Some(x), Some(y)) => Some(LonLat::new(x, y)?),
        _ => None,
    };
    let mark = store.mark_shift(kind, at, pos)?;
    let tz = city_tz(&store)?;
    out.show(&mark, |m| {
        let cell = m
            .cell
            .as_ref()
            .map(|c| crate::output::tr("cli-in-cell", &[("cell", c.to_string().into())]))
            .unwrap_or_default();
        let kind = crate::output::t(match m.kind {
            ShiftKind::Start => "cli-shift-start",
            ShiftKind::End => "cli-shift-end",
        });
        crate::output::tr(
            "cli-shift-recorded",
            &[
                ("kind", kind.into()),
                ("at", city_time(m.at, tz).into()),
                ("cell", cell.into()),
            ],
        )
    })
}

/// Resolves a full case id or a unique prefix of one.
fn find_case(store: &Store, text: &str) -> Result<CaseId> {
    if let Ok(id) = CaseId::parse("id", text) {
        return Ok(id);
    }
    let matches: Vec<CaseId> = store
        .cases()?
        .into_iter()
        .map(|c| c.id)
        .filter(|id| id.to_string().starts_with(text.trim()))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("id: no case starts with `{text}`"),
        _ => bail!(
            "id: `{text}` matches {} cases; give more characters",
            matches.len()
        ),
    }
}

fn read_photos(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    paths.iter().map(|p| read_file(p)).collect()
}

pub fn report(store: &mut Store, a: &ReportArgs) -> Result<CaseId> {
    let pos = LonLat::new(a.lon, a.lat)?;
    // A position in none of the grid's cells is usually a wrong one (a
    // swapped lon/lat, a stale fix): refused unless the collector says so.
    if !store.cells()?.is_empty() && store.locate_cell(pos)?.is_none() {
        if !a.outside {
            bail!(
                "lon/lat: ({}, {}) is outside every cell of this device's grid: check the position, or pass --outside to report it anyway",
                a.lon,
                a.lat
            );
        }
        eprintln!(
            "warning: ({}, {}) is outside every cell of this device's grid; reported as asked",
            a.lon, a.lat
        );
    }
    let new = NewCase {
        category: a.category.clone(),
        pos,
        description: a.desc.clone(),
        photos: read_photos(&a.photo)?,
        at: a
            .at
            .as_deref()
            .map(|t| Timestamp::parse("at", t))
            .transpose()?,
        quick_fix_after: a
            .quick_fix
            .then(|| read_photos(&a.after_photo))
            .transpose()?,
        survey: a.survey.clone(),
    };
    Ok(store.report_case(new)?)
}

pub fn case(home: &Path, cmd: CaseCmd, out: &Output) -> Result<()> {
    let mut store = open(home)?;
    match cmd {
        CaseCmd::Report(args) => {
            let id = report(&mut store, &args)?;
            out.show(&json!({ "id": id }), |_| id.to_string())
        }
        CaseCmd::Edit {
            id,
            desc,
            category,
            add_photo,
            remove_photo,
        } => {
            let id = find_case(&store, &id)?;
            let remove_photos = remove_photo
                .iter()
                .map(|h| PhotoHash::parse("remove-photo", h))
                .collect::<Result<Vec<_>, _>>()?;
            let req = CaseEditRequest {
                description: desc,
                category,
                add_photos: read_photos(&add_photo)?,
                remove_photos,
            };
            let change = store.edit_case(id, req)?;
            out.show(&json!({ "id": id, "change": change.id() }), |_| {
                crate::output::tr("cli-case-edited", &[("id", id.to_string().into())])
            })
        }
        CaseCmd::List {
            status,
            category,
            day,
        } => {
            let status = status
                .as_deref()
                .map(|s| field_core::model::Status::parse("status", s))
                .transpose()?;
            let tz = city_tz(&store)?;
            let mut summaries = store
                .cases()?
                .iter()
                .map(|v| store.summarize(v))
                .collect::<Result<Vec<_>, _>>()?;
            summaries.retain(|c| {
                status.is_none_or(|s| c.status.contains(&s))
                    && category.as_deref().is_none_or(|p| {
                        c.category
                            .as_deref()
                            .is_some_and(|code| code.starts_with(&p.to_uppercase()))
                    })
                    && day.is_none_or(|d| {
                        c.reported_at.is_some_and(|t| {
                            chrono::DateTime::from_timestamp_millis(t.millis())
                                .is_some_and(|u| u.with_timezone(&tz).date_naive() == d)
                        })
                    })
            });
            summaries.sort_by(|a, b| b.reported_at.cmp(&a.reported_at));
            out.show(&summaries, |s| {
                let rows = s
                    .iter()
                    .map(|c| {
                        let status: Vec<&str> = c.status.iter().map(|s| s.as_str()).collect();
                        vec![
                            c.id.to_string()[..8].to_string(),
                            status.join("|") + if c.conflict { " (conflict)" } else { "" },
                            c.category.clone().unwrap_or_default(),
                            c.cell.clone().unwrap_or("-".into()),
                            format!(
                                "{}{}",
                                c.photos,
                                if c.photos_missing > 0 {
                                    format!(" ({} pending)", c.photos_missing)
                                } else {
                                    String::new()
                                }
                            ),
                            c.description.clone().unwrap_or_default(),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(
                    &["ID", "STATUS", "CATEGORY", "CELL", "PHOTOS", "DESCRIPTION"],
                    &rows,
                )
            })
        }
        CaseCmd::Export { out: path, format } => {
            let format = export_format(&path, format)?;
            let rows = store
                .cases()?
                .iter()
                .map(|v| {
                    Ok(crate::export::CaseRow {
                        summary: store.summarize(v)?,
                        pos: v.placement.as_ref().map(|p| p.pos),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let bytes = crate::export::cases(&rows, format, city_tz(&store)?)?;
            write_atomically(&path, &bytes)?;
            out.show(
                &json!({ "cases": rows.len(), "file": path, "bytes": bytes.len() }),
                |_| format!("{} cases written to {}", rows.len(), path.display()),
            )
        }
        CaseCmd::Show { id } => {
            let id = find_case(&store, &id)?;
            let view = store.case(id)?;
            let summary = store.summarize(&view)?;
            let history = store.case_history(id)?;
            let tz = city_tz(&store)?;
            let shown = json!({ "case": view, "summary": summary, "history": history });
            out.show(&shown, |_| {
                // Labels in the run's language, padded to one column.
                let label = |key: &str| {
                    let text = crate::output::t(key);
                    let pad = 12usize
                        .saturating_sub(unicode_width::UnicodeWidthStr::width(text.as_str()));
                    format!("  {text}{}", " ".repeat(pad))
                };
                let statuses: Vec<String> = summary
                    .status
                    .iter()
                    .map(|st| crate::output::t(&format!("status-{}", st.as_str())))
                    .collect();
                let mut lines = vec![
                    format!("{} {}", crate::output::t("cli-col-case"), view.id),
                    format!(
                        "{}{}{}",
                        label("cli-case-status"),
                        statuses.join(" / "),
                        if summary.conflict {
                            format!("  {}", crate::output::t("cli-conflict"))
                        } else {
                            String::new()
                        }
                    ),
                    format!(
                        "{}{} {}",
                        label("cli-case-category"),
                        summary.category.clone().unwrap_or_default(),
                        summary.category_name.clone().unwrap_or_default()
                    ),
                    format!(
                        "{}{} {} {}",
                        label("cli-case-where"),
                        view.placement
                            .as_ref()
                            .map(|p| p.pos.to_string())
                            .unwrap_or_default(),
                        crate::output::t("cli-col-cell"),
                        summary.cell.clone().unwrap_or("-".into())
                    ),
                    format!(
                        "{}{} · {}",
                        label("cli-case-reported"),
                        summary
                            .reported_at
                            .map(|t| city_time(t, tz))
                            .unwrap_or_default(),
                        summary.collector.clone().unwrap_or_default()
                    ),
                    format!(
                        "{}{}",
                        label("cli-case-description"),
                        summary.description.clone().unwrap_or_default()
                    ),
                ];
                for p in &view.photos {
                    let role = format!("{:?}", p.role).to_lowercase();
                    lines.push(format!("{}{} ({role})", label("cli-case-photo"), p.hash));
                }
                lines.push(format!("  {}:", crate::output::t("cli-history")));
                for h in &history {
                    let over = if h.overwritten.is_empty() {
                        String::new()
                    } else {
                        format!("  [overwritten: {}]", h.overwritten.join(", "))
                    };
                    // Who and when, then what changed: field old → new.
                    let when = city_time(h.at, tz);
                    let what = if h.edits.is_empty() {
                        h.kind.replace('_', " ")
                    } else {
                        h.edits
                            .iter()
                            .map(|e| match &e.old {
                                Some(old) if *old != e.new => {
                                    format!("{}: {:?} → {:?}", e.field, old, e.new)
                                }
                                _ => format!("{}: {:?}", e.field, e.new),
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    };
                    lines.push(format!(
                        "    {when}  device {}  {what}{over}",
                        &h.actor.to_string()[..8],
                    ));
                }
                lines.join("\n")
            })
        }
    }
}

pub fn digest(home: &Path, out: &Output) -> Result<()> {
    let store = open(home)?;
    let report = store.digest_report()?;
    out.show(&report, |r| r.digest.clone())
}

pub fn changes(home: &Path, cmd: ChangesCmd, out: &Output) -> Result<()> {
    let mut store = open(home)?;
    match cmd {
        ChangesCmd::Export { out: path, since } => {
            let bundle = store.export_bundle(since)?;
            write_atomically(&path, bundle.to_json().as_bytes())?;
            let info = json!({ "file": path, "changes": bundle.changes.len(), "photos": bundle.photos.len(), "cursor": bundle.cursor });
            out.show(&info, |_| {
                format!(
                    "{} changes and {} photos written to {}; next time use --since {}",
                    bundle.changes.len(),
                    bundle.photos.len(),
                    path.display(),
                    bundle.cursor
                )
            })
        }
        ChangesCmd::Import { file } => {
            let bundle = Bundle::from_json(&read_text(&file)?)?;
            let summary = store.import_bundle(&bundle)?;
            out.show(&summary, |s| {
                let mut text = format!(
                    "{} changes applied, {} already held, {} waiting for earlier changes; {} photos received",
                    s.changes.applied, s.changes.duplicates, s.changes.buffered, s.photos_received
                );
                for why in &s.changes.refused {
                    text.push_str(&format!("\nrefused: {why}"));
                }
                text
            })
        }
    }
}

/// Writes a file via a temporary sibling and a rename, so a crash never
/// leaves half a bundle under the final name.
/// The city's time zone as the handset knows it (from the center's
/// surveys payload), China's by default.
pub fn city_tz(store: &Store) -> Result<chrono_tz::Tz> {
    Ok(store
        .surveys()?
        .and_then(|s| s.timezone.parse().ok())
        .unwrap_or(chrono_tz::Asia::Shanghai))
}

fn export_format(
    path: &Path,
    given: Option<crate::export::Format>,
) -> Result<crate::export::Format> {
    given
        .or_else(|| crate::export::Format::of_path(path))
        .with_context(|| {
            format!(
                "{}: say --format geojson|csv|gpx (the extension does not tell)",
                path.display()
            )
        })
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn task(home: &Path, cmd: crate::cli::TaskCmd, out: &Output) -> Result<()> {
    use crate::cli::TaskCmd;
    let mut store = open(home)?;
    let me = store.sync_settings()?.map(|s| s.user.id);
    match cmd {
        TaskCmd::List => {
            let tasks = store.tasks(me.as_deref())?;
            let tz = city_tz(&store)?;
            out.show(&tasks, |tasks| {
                let rows = tasks
                    .iter()
                    .map(|t| {
                        let spec = t.task.spec.as_ref();
                        vec![
                            t.task.id.to_string()[..8].to_string(),
                            spec.map(|s| format!("{:?}", s.kind).to_lowercase())
                                .unwrap_or_default(),
                            spec.and_then(|s| s.case)
                                .map(|c| c.to_string()[..8].to_string())
                                .unwrap_or("-".into()),
                            spec.map(|s| city_time(s.due_at, tz)).unwrap_or_default(),
                            t.task
                                .answer
                                .as_ref()
                                .map(|a| {
                                    let result = format!("{:?}", a.result).to_lowercase();
                                    format!("{result} at {}", city_time(a.answered_at, tz))
                                })
                                .unwrap_or("open".into()),
                            spec.and_then(|s| s.note.clone()).unwrap_or_default(),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(&["ID", "KIND", "CASE", "DUE", "ANSWER", "NOTE"], &rows)
            })
        }
        TaskCmd::Answer {
            id,
            result,
            photo,
            note,
            at,
        } => {
            let task = find_task(&store, me.as_deref(), &id)?;
            let result = match result.as_str() {
                "yes" => field_core::model::TaskResult::Yes,
                "no" => field_core::model::TaskResult::No,
                other => bail!("result: `{other}` is not yes or no"),
            };
            let at = at.map(|t| Timestamp::parse("at", &t)).transpose()?;
            let change = store.answer_task(task, result, read_photos(&photo)?, note, at)?;
            out.show(&json!({ "task": task, "change": change.id() }), |_| {
                crate::output::tr("cli-task-answered", &[("id", task.to_string().into())])
            })
        }
    }
}

/// Resolves a full task id or a unique prefix among this collector's tasks.
fn find_task(store: &Store, me: Option<&str>, text: &str) -> Result<uuid::Uuid> {
    if let Ok(id) = uuid::Uuid::parse_str(text.trim()) {
        return Ok(id);
    }
    let matches: Vec<uuid::Uuid> = store
        .tasks(me)?
        .into_iter()
        .map(|t| t.task.id)
        .filter(|id| id.to_string().starts_with(text.trim()))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("id: no task starts with `{text}`"),
        _ => bail!(
            "id: `{text}` matches {} tasks; give more characters",
            matches.len()
        ),
    }
}

pub fn surveys(home: &Path, out: &Output) -> Result<()> {
    let store = open(home)?;
    let surveys = store.surveys()?.map(|s| s.surveys).unwrap_or_default();
    out.show(&surveys, |surveys| {
        let rows = surveys
            .iter()
            .map(|s| {
                vec![
                    s.id.clone(),
                    s.name.clone(),
                    format!("{} to {}", s.from, s.to),
                    s.categories
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    s.cells.len().to_string(),
                ]
            })
            .collect::<Vec<_>>();
        table(&["ID", "NAME", "DAYS", "CATEGORIES", "CELLS"], &rows)
    })
}
