//! `field bench assess`: a generated city month assessed from the server
//! store — 50 collectors over 2,500 cells of ~100 m, a point every 5 s in
//! patrol hours (~14 million points), each collector walking the streets of
//! their own 50-cell block — against a plain scan of the same points read in
//! the same run. Then the time to refresh one day's rollup after a late sync,
//! and to bring the month up to date after 1,000 decisions spread over it.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use field_core::crdt::{CHANGE_SCHEMA, Change, Hlc, Op, TrackBatch};
use field_core::model::{ActorId, LonLat, Timestamp, TrackPoint};
use serde_json::json;
use sync_server::config::Limits;
use sync_server::service::{Center, ReportQuery, ensure_admin, system_clock};
use sync_server::storage::sqlite::SqliteStorage;

use super::sync::{SyncRow, row};

/// Peak resident memory of this process so far, in MB (Linux).
pub(super) fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub fn run(
    dir: &std::path::Path,
    collectors: usize,
    days: usize,
    every: i64,
    postgres: Option<String>,
) -> Result<Vec<SyncRow>> {
    let data = dir.join("server");
    let storage = Arc::new(SqliteStorage::open(&data)?);
    let changes_db = data.join("changes.db");
    let mut rows = run_on(storage, &data, collectors, days, every, "", &|| {
        sqlite_scan(&changes_db)
    })?;
    if let Some(url) = postgres {
        let home = dir.join("postgres");
        std::fs::create_dir_all(&home)?;
        let blobs = sync_server::storage::blobs::Blobs::in_dir(&home.join("blobs"))?;
        let storage = Arc::new(sync_server::storage::postgres::PgStorage::open(
            &url, blobs,
        )?);
        let mut pg = run_on(
            storage,
            &home,
            collectors,
            days,
            every,
            " (PostgreSQL)",
            &|| postgres_scan(&url),
        )?;
        // The month assessment against the embedded one, same run.
        let embedded = rows[2].figures["seconds"].as_f64().unwrap_or(f64::NAN);
        let on_pg = pg[2].figures["seconds"].as_f64().unwrap_or(f64::NAN);
        pg[2].note = format!(
            "{}; {:.2}× the embedded backend's",
            pg[2].note,
            on_pg / embedded
        );
        rows.extend(pg);
    }
    Ok(rows)
}

/// Reads every point once, as plainly as SQLite allows: (points, checksum).
fn sqlite_scan(changes_db: &std::path::Path) -> Result<(usize, f64)> {
    let conn = rusqlite::Connection::open(changes_db)?;
    let mut sum = 0.0;
    let mut n = 0usize;
    let mut stmt = conn.prepare("SELECT t_ms, lon, lat, accuracy_m FROM track_points")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        sum += r.get::<_, f64>(1)?
            + r.get::<_, f64>(2)?
            + r.get::<_, i64>(0)? as f64
            + r.get::<_, Option<f64>>(3)?.unwrap_or(0.0);
        n += 1;
    }
    Ok((n, sum))
}

/// The same from PostgreSQL, streamed through the driver: every chunk of
/// points read and decoded (PostgreSQL keeps a collector's points in
/// chunks, `sync_server::storage::postgres::track_chunks`).
fn postgres_scan(url: &str) -> Result<(usize, f64)> {
    use futures_util::TryStreamExt;
    use sync_server::storage::postgres::track_chunks;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let stmt = client.prepare("SELECT points FROM track_chunks").await?;
        let rows = client.query_raw(&stmt, std::iter::empty::<i64>()).await?;
        futures_util::pin_mut!(rows);
        let (mut n, mut sum) = (0usize, 0.0);
        while let Some(r) = rows.try_next().await? {
            for (_, p) in track_chunks::decode(r.get::<_, &[u8]>(0))? {
                sum +=
                    p.pos.lon() + p.pos.lat() + p.at.millis() as f64 + p.accuracy_m.unwrap_or(0.0);
                n += 1;
            }
        }
        Ok((n, sum))
    })
}

/// The measurements on one backend; `suffix` names it in the rows.
fn run_on(
    storage: Arc<dyn sync_server::storage::Storage>,
    data: &std::path::Path,
    collectors: usize,
    days: usize,
    every: i64,
    suffix: &str,
    scan_points: &dyn Fn() -> Result<(usize, f64)>,
) -> Result<Vec<SyncRow>> {
    let admin_token = ensure_admin(storage.as_ref(), data)?.unwrap_or_default();
    let center = Center::new(storage.clone(), Limits::default(), system_clock());
    let admin = center.authenticate(Some(&admin_token))?;
    let started = Instant::now();
    let dates: Vec<String> = (0..days).map(|d| format!("2026-10-{:02}", d + 1)).collect();
    let city = super::city::seed(&center, &admin, storage.as_ref(), collectors, &dates, every)?;
    let points_total = city.points;
    let actors: Vec<(ActorId, u64, u64)> = city
        .collectors
        .iter()
        .map(|c| (c.actor, c.counter, c.seq))
        .collect();
    let load = started.elapsed().as_secs_f64();

    // Baseline: read every point once, as plainly as the backend allows.
    let started = Instant::now();
    let (n, sum) = scan_points()?;
    let scan = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        n == points_total && sum.is_finite(),
        "scanned {n} of {points_total} points"
    );

    let started = Instant::now();
    let reports = center.report(
        &admin,
        ReportQuery {
            period: "2026-10".into(),
            collector: None,
            company: None,
            explain: false,
            daily: false,
        },
    )?;
    let assess = started.elapsed().as_secs_f64();
    let covered: u64 = reports.iter().map(|r| r.coverage.n).sum();
    let required: u64 = reports.iter().map(|r| r.coverage.d).sum();

    // One late point for a past day, then that day's rollup refreshed.
    center.nightly(Some(
        chrono::NaiveDate::from_ymd_opt(2026, 10, 15).expect("valid"),
    ))?;
    let (actor, counter, seq) = actors[0];
    let late = TrackPoint::new(
        Timestamp::parse("at", "2026-10-15T12:00:00+08:00")?,
        LonLat::new(120.2005, 30.2495)?,
        Some(5.0),
        None,
    )?;
    let change = Change {
        schema: CHANGE_SCHEMA,
        actor,
        counter: counter + 1,
        hlc: Hlc::new(late.at.millis() as u64 + 1, 0),
        op: Op::TrackAppend(TrackBatch::encode(seq, &[late])),
    };
    storage.mark_dirty(&[chrono::NaiveDate::from_ymd_opt(2026, 10, 15).expect("valid")])?;
    storage.apply(vec![change])?;
    let started = Instant::now();
    let refreshed = center.nightly(Some(
        chrono::NaiveDate::from_ymd_opt(2026, 10, 15).expect("valid"),
    ))?;
    let refresh = started.elapsed().as_secs_f64();

    // The whole month rolled up, then 1,000 cases spread over it decided
    // today: the time to bring the month up to date (every day a decision
    // touched recomputed by the nightly job), against the live month.
    center.nightly(Some(
        chrono::NaiveDate::from_ymd_opt(2026, 10, 1).expect("valid"),
    ))?;
    for d in 1..=days as u32 {
        storage.mark_dirty(&[chrono::NaiveDate::from_ymd_opt(2026, 10, d).expect("valid")])?;
    }
    center.nightly(None)?;
    let decisions = 1000usize;
    let mut cases = Vec::with_capacity(decisions);
    let mut changes = Vec::with_capacity(decisions);
    for k in 0..decisions {
        let c = &city.collectors[k % city.collectors.len()];
        let at = Timestamp::from_millis(
            "at",
            Timestamp::parse("at", "2026-10-01T10:00:00+08:00")?.millis()
                + (k % days) as i64 * 86_400_000
                + k as i64 * 1000,
        )?;
        let case = field_core::model::CaseId(uuid::Uuid::new_v4());
        // Past the seeded changes and the late point above.
        let counter = c.counter + 2 + (k / city.collectors.len()) as u64;
        changes.push(Change {
            schema: CHANGE_SCHEMA,
            actor: c.actor,
            counter,
            hlc: Hlc::new(at.millis() as u64, 0),
            op: Op::CaseReport(field_core::crdt::CaseReport {
                case,
                origin: field_core::model::CaseOrigin {
                    reporter: c.actor,
                    collector: c.name.clone(),
                    source: field_core::model::CaseSource::Collector,
                    reported_at: at,
                    survey: None,
                },
                fields: field_core::model::CaseFields {
                    description: Some(format!("bench case {k}")),
                    category: Some(field_core::model::CategoryCode::parse(
                        "category", "BJ0101",
                    )?),
                    placement: Some(field_core::model::Placement {
                        pos: LonLat::new(120.2005, 30.2495)?,
                        cell: None,
                    }),
                },
                photos: vec![field_core::model::CasePhoto {
                    hash: field_core::model::PhotoHash::of(format!("bench {k}").as_bytes()),
                    role: field_core::model::PhotoRole::Before,
                }],
                photo_dot: 1,
            }),
        });
        cases.push(case);
    }
    let judged = storage.apply(changes)?;
    if let Some((id, j)) = judged
        .iter()
        .find(|(_, j)| *j != field_core::store::Judgement::Applied)
    {
        anyhow::bail!("the bench's case {id} was not applied: {j:?}");
    }
    for (k, case) in cases.iter().enumerate() {
        let action = if k % 10 == 0 {
            r#"{"action":"reject","reason":"duplicate"}"#
        } else {
            r#"{"action":"register"}"#
        };
        center.decide(&admin, *case, serde_json::from_str(action)?)?;
    }
    let stale = storage.dirty_days()?.len();
    let started = Instant::now();
    let caught_up = center.nightly(None)?;
    let catch_up = started.elapsed().as_secs_f64();

    Ok(vec![
        row(
            &format!("{}{suffix}", "city month generated and stored"),
            format!("{points_total} points"),
            format!("{collectors} collectors × {days} days, 2,500 cells; {load:.1} s"),
            json!({ "points": points_total, "seconds": load }),
        ),
        row(
            &format!("{}{suffix}", "plain scan of the points"),
            format!("{scan:.2} s"),
            "SELECT of every point, summed".into(),
            json!({ "seconds": scan }),
        ),
        row(
            &format!("{}{suffix}", "month assessment, all collectors"),
            format!("{assess:.2} s"),
            format!(
                "{:.2}× the plain scan; {covered}/{required} windows covered; peak RSS {:.0} MB",
                assess / scan,
                peak_rss_mb()
            ),
            json!({ "seconds": assess, "ratio_to_scan": assess / scan, "peak_rss_mb": peak_rss_mb(), "covered": covered, "required": required }),
        ),
        row(
            &format!("{}{suffix}", "one day's rollup refreshed after a late sync"),
            format!("{refresh:.2} s"),
            format!("{} collector reports recomputed", refreshed.reports),
            json!({ "seconds": refresh, "reports": refreshed.reports }),
        ),
        row(
            &format!(
                "{}{suffix}",
                "month brought up to date after 1,000 decisions"
            ),
            format!("{catch_up:.2} s"),
            format!(
                "{decisions} decisions over the month made {stale} day(s) stale; {} collector-days recomputed; {:.2}× the live month",
                caught_up.reports,
                catch_up / assess
            ),
            json!({ "seconds": catch_up, "decisions": decisions, "stale_days": stale, "reports": caught_up.reports, "ratio_to_live_month": catch_up / assess }),
        ),
    ])
}
