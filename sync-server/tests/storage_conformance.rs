//! What every storage backend must do, written once against the `Storage`
//! interface and run unchanged against each implementation: the embedded
//! SQLite one and PostgreSQL (on the cluster `scripts/test` starts). Then
//! what only a shared database has to get right: instances merging into
//! one case at once, and a pull cursor that never skips a late commit.

mod support;

use std::sync::Arc;

use field_core::crdt::Change;
use field_core::model::{CellCodePattern, LonLat, ShiftKind, Status, Timestamp, TrackPoint};
use field_core::store::{CaseEditRequest, CaseQuery, Decision, Judgement, NewCase, Store};
use sync_server::storage::blobs::Blobs;
use sync_server::storage::postgres::PgStorage;
use sync_server::storage::prelude::*;
use sync_server::storage::sqlite::SqliteStorage;
use sync_server::storage::{ConsoleSession, Role};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Console sessions: any instance finds an open one, none finds an expired
/// or closed one.
fn sessions(s: &dyn Storage) {
    let open = ConsoleSession {
        id_hash: "a".repeat(64),
        token_hash: "b".repeat(64),
        csrf: "fld_csrf".into(),
        expires_ms: now_ms() + 60_000,
    };
    s.open_session(&open).unwrap();
    assert_eq!(s.session(&open.id_hash).unwrap(), Some(open.clone()));
    let expired = ConsoleSession {
        id_hash: "c".repeat(64),
        expires_ms: now_ms() - 1,
        ..open.clone()
    };
    s.open_session(&expired).unwrap();
    assert_eq!(s.session(&expired.id_hash).unwrap(), None);
    assert_eq!(s.session(&"d".repeat(64)).unwrap(), None);
    s.close_session(&open.id_hash).unwrap();
    assert_eq!(s.session(&open.id_hash).unwrap(), None);
}

/// Leases: one holder at a time; the holder renews; a lapsed lease is
/// anyone's; a released one too.
fn leases(s: &dyn Storage) {
    let t = 1_000_000;
    assert!(s.take_lease("nightly", "a", t, t + 100).unwrap());
    assert!(!s.take_lease("nightly", "b", t + 50, t + 150).unwrap());
    assert!(
        s.take_lease("nightly", "a", t + 60, t + 200).unwrap(),
        "renewal"
    );
    assert!(!s.take_lease("nightly", "b", t + 150, t + 250).unwrap());
    assert!(s.take_lease("other-job", "b", t + 150, t + 250).unwrap());
    assert!(
        s.take_lease("nightly", "b", t + 200, t + 300).unwrap(),
        "lapsed"
    );
    s.release_lease("nightly", "a").unwrap(); // not a's any more: no effect
    assert!(!s.take_lease("nightly", "a", t + 210, t + 310).unwrap());
    s.release_lease("nightly", "b").unwrap();
    assert!(s.take_lease("nightly", "a", t + 220, t + 320).unwrap());
}

/// The server's own state: a job slot is claimed once, runs are listed
/// newest first with their outcome, the restore epoch is stable until set,
/// expired sessions are counted out and dropped, and the store is ready.
fn jobs_and_epoch(s: &dyn Storage) {
    assert!(s.claim_job_run("nightly", 100, "one", 1_000).unwrap());
    assert!(
        !s.claim_job_run("nightly", 100, "two", 1_001).unwrap(),
        "claimed once"
    );
    assert!(s.claim_job_run("expire", 100, "two", 1_002).unwrap());
    s.finish_job_run("nightly", 100, 2_000, "ok", "{\"reports\":3}")
        .unwrap();
    let runs = s.job_runs(10).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].job, "expire", "newest first");
    assert_eq!(runs[0].outcome, "running");
    assert_eq!(runs[1].instance, "one");
    assert_eq!(runs[1].finished_ms, Some(2_000));
    assert_eq!(runs[1].outcome, "ok");
    let epoch = s.restore_epoch().unwrap();
    assert_eq!(s.restore_epoch().unwrap(), epoch, "stable");
    s.set_restore_epoch("restored-1").unwrap();
    assert_eq!(s.restore_epoch().unwrap(), "restored-1");
    let now = sync_server::storage::wall_clock_ms();
    for (id, expires) in [("old", now - 1), ("live", now + 60_000)] {
        s.open_session(&ConsoleSession {
            id_hash: format!("{id}-jobs"),
            token_hash: "t".into(),
            csrf: "c".into(),
            expires_ms: expires,
        })
        .unwrap();
    }
    let open = s.count_sessions(now).unwrap();
    assert!(open >= 1);
    s.expire_sessions(now + 120_000).unwrap();
    assert_eq!(s.count_sessions(now).unwrap(), 0, "all expired by then");
    s.ready().unwrap();
    s.blobs_ready().unwrap();
}

/// Identity: a user and a token find their principal; a disabled user's
/// token does not.
/// A device's daily photo allowance: charged up to the cap, never past it,
/// per device and per day.
fn photo_allowance(s: &dyn Storage) {
    let (a, b) = (uuid::Uuid::from_u128(0xa11), uuid::Uuid::from_u128(0xb11));
    assert!(s.charge_photo_bytes(a, 20000, 300, 400).unwrap());
    assert!(
        s.charge_photo_bytes(a, 20000, 100, 400).unwrap(),
        "up to the cap"
    );
    assert!(
        !s.charge_photo_bytes(a, 20000, 1, 400).unwrap(),
        "past the cap"
    );
    assert!(
        s.charge_photo_bytes(a, 20001, 400, 400).unwrap(),
        "another day"
    );
    assert!(
        s.charge_photo_bytes(b, 20000, 400, 400).unwrap(),
        "another device"
    );
    assert!(
        !s.charge_photo_bytes(b, 20002, 401, 400).unwrap(),
        "one upload over the cap"
    );
    assert!(
        s.charge_photo_bytes(b, 20002, 400, 400).unwrap(),
        "a refusal charges nothing"
    );
}

fn identity(s: &dyn Storage) {
    let u = s
        .create_user(
            "孙",
            Role::Collector,
            Some("甲公司"),
            &["330109001001001".into()],
        )
        .unwrap();
    s.add_user_token(&"e".repeat(64), &u.id).unwrap();
    let p = s.principal(&"e".repeat(64)).unwrap().unwrap();
    assert_eq!((p.user.name.as_str(), p.user.role), ("孙", Role::Collector));
    assert!(s.set_user_disabled(&u.id, true).unwrap());
    assert!(s.principal(&"e".repeat(64)).unwrap().is_none());
    assert!(s.principal(&"f".repeat(64)).unwrap().is_none());
}

const T0: i64 = 1_764_000_000_000;

fn point(ms: i64, lon: f64) -> TrackPoint {
    TrackPoint::new(
        Timestamp::from_millis("at", ms).unwrap(),
        LonLat::new(lon, 30.1895).unwrap(),
        Some(5.0),
        None,
    )
    .unwrap()
}

fn new_case(category: &str, lon: f64, seed: u32) -> NewCase {
    NewCase {
        category: category.into(),
        pos: LonLat::new(lon, 30.1895).unwrap(),
        description: format!("case {seed}"),
        photos: vec![support::png(seed)],
        at: None,
        quick_fix_after: None,
        survey: None,
    }
}

/// A handset's day: a track, two reports with photos, a photo added
/// later, a shift mark. Its changes, in the order it wrote them, and the
/// case with two photos.
fn handset(dir: &std::path::Path, name: &str) -> (Store, Vec<Change>, field_core::model::CaseId) {
    let mut d = Store::init(&dir.join(format!("{name}.db")), name).unwrap();
    let points: Vec<_> = (0..50)
        .map(|i| point(T0 + i * 5000, 120.2605 + i as f64 * 1e-5))
        .collect();
    d.append_track_points(&points).unwrap();
    let a = d.report_case(new_case("BJ0101", 120.2605, 1)).unwrap();
    d.report_case(new_case("BJ0102", 120.2615, 2)).unwrap();
    d.edit_case(
        a,
        CaseEditRequest {
            add_photos: vec![support::png(3)],
            ..Default::default()
        },
    )
    .unwrap();
    d.mark_shift(
        ShiftKind::Start,
        None,
        Some(LonLat::new(120.2605, 30.1895).unwrap()),
    )
    .unwrap();
    let changes = d.export_bundle(None).unwrap().changes;
    (d, changes, a)
}

fn cells() -> Vec<field_core::model::Cell> {
    field_core::import::parse_grid(&support::grid(&["red", "red"]), &CellCodePattern::default())
        .unwrap()
}

/// The replica: changes in any order and twice merge to the device's own
/// state; the queries the center reads answer from it; decisions and
/// tasks are written as a staff member; a pull returns each change once.
fn replica(s: &dyn Storage) {
    let dir = tempfile::tempdir().unwrap();
    s.set_grid(cells()).unwrap();
    assert!(s.has_grid().unwrap());
    assert_eq!(
        s.locate_cell(LonLat::new(120.2605, 30.1895).unwrap())
            .unwrap()
            .as_deref(),
        Some("330109001001001")
    );
    let (mut device, ch, a) = handset(dir.path(), "wu");
    // track, report a, report b, photo add to a, shift mark. The photo add
    // first: it waits for its report.
    let first = s.apply(vec![ch[3].clone(), ch[0].clone()]).unwrap();
    assert_eq!(first[0].1, Judgement::Buffered);
    assert_eq!(first[1].1, Judgement::Applied);
    let rest = s.apply(ch.clone()).unwrap();
    let outcomes: Vec<_> = rest.iter().map(|(_, j)| j.clone()).collect();
    assert_eq!(
        outcomes,
        vec![
            Judgement::Duplicate,
            Judgement::Applied,
            Judgement::Applied,
            Judgement::Duplicate,
            Judgement::Applied
        ]
    );
    let mut forged = ch[1].clone();
    if let field_core::crdt::Op::CaseReport(r) = &mut forged.op {
        r.fields.description = Some("forged".into());
    }
    assert_eq!(s.apply(vec![forged]).unwrap()[0].1, Judgement::Reused);
    assert_eq!(
        s.cases_digest(None).unwrap(),
        device.cases_digest(None).unwrap()
    );
    let report = s.digest().unwrap();
    assert_eq!(report.devices, device.device_digests().unwrap());
    assert_eq!(report.changes, 5);
    assert_eq!(s.held_change(ch[2].id()).unwrap(), Some(ch[2].to_json()));

    // Reading.
    let cases = s.cases().unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(s.case(a).unwrap().unwrap().photos.len(), 2);
    assert_eq!(s.case_cell(a).unwrap().as_deref(), Some("330109001001001"));
    let page = s
        .case_page(&CaseQuery {
            category_prefix: Some("BJ0101".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((page.total, page.cases.len(), page.cases[0].id), (1, 1, a));
    let all = s
        .case_page(&CaseQuery {
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((all.total, all.cases.len()), (2, 1));
    // The 8 characters a listing prints find the case among all of them.
    let by_prefix = |prefix: &str| {
        s.case_page(&CaseQuery {
            id_prefix: Some(prefix.into()),
            ..Default::default()
        })
        .unwrap()
        .cases
        .iter()
        .map(|v| v.id)
        .collect::<Vec<_>>()
    };
    assert_eq!(by_prefix(&a.to_string()[..8]), vec![a]);
    assert_eq!(by_prefix(&a.to_string()), vec![a]);
    let other = cases.iter().map(|v| v.id).find(|id| *id != a).unwrap();
    let shared = a
        .to_string()
        .chars()
        .zip(other.to_string().chars())
        .take_while(|(x, y)| x == y)
        .count();
    assert_eq!(by_prefix(&a.to_string()[..shared]).len(), 2);
    assert!(
        by_prefix("ffffffff-ffff")
            .iter()
            .all(|id| id.to_string().starts_with("ffffffff-ffff"))
    );
    let photo = s.case(a).unwrap().unwrap().photos[0].hash.clone();
    assert_eq!(s.cases_citing(&photo).unwrap(), vec![a]);
    // A photo removed from the case is no longer cited by it.
    let before = device.change_count().unwrap();
    device
        .edit_case(
            a,
            CaseEditRequest {
                remove_photos: vec![photo.clone()],
                ..Default::default()
            },
        )
        .unwrap();
    let removal = device.export_bundle(Some(before)).unwrap().changes;
    assert_eq!(s.apply(removal).unwrap()[0].1, Judgement::Applied);
    assert!(s.cases_citing(&photo).unwrap().is_empty());
    assert_eq!(s.case(a).unwrap().unwrap().photos.len(), 1);
    let near = s
        .open_cases_near("BJ0101", LonLat::new(120.2606, 30.1895).unwrap(), 50.0)
        .unwrap();
    assert_eq!(near.len(), 1);
    assert!(near[0].1 > 5.0 && near[0].1 < 15.0, "{near:?}");
    assert_eq!(s.case_history(a).unwrap().len(), 3);
    let actor = device.actor();
    assert_eq!(s.track_between(actor, T0, T0 + 10_000).unwrap().len(), 3);
    let (before, after) = s.track_around(actor, T0 + 7_000, 5_000, 10.0).unwrap();
    assert_eq!(before.unwrap().at.millis(), T0 + 5_000);
    assert_eq!(after.unwrap().at.millis(), T0 + 10_000);
    assert_eq!(s.shift_marks().unwrap().len(), 1);

    // Writing as the center.
    let staff = s.create_user("审核员", Role::Reviewer, None, &[]).unwrap();
    let me = s.staff_actor(&staff.id).unwrap();
    assert_eq!(s.staff_actor(&staff.id).unwrap(), me, "minted once");
    let register = |to| Decision {
        to,
        reason: None,
        note: None,
        department: None,
        seen: None,
    };
    let c1 = s.decide(me, a, register(Status::Registered)).unwrap();
    assert!(
        s.decide(me, a, register(Status::Handled)).is_err(),
        "registered cannot be handled"
    );
    let c2 = s.decide(me, a, register(Status::Dispatched)).unwrap();
    assert_eq!((c1.counter, c2.counter), (1, 2));
    assert!(c2.hlc > c1.hlc);
    assert_eq!(
        s.case(a).unwrap().unwrap().statuses(),
        vec![Status::Dispatched]
    );
    let collector = s.create_user("吴", Role::Collector, None, &[]).unwrap();
    let spec = field_core::model::TaskSpec {
        id: uuid::Uuid::new_v4(),
        kind: field_core::model::TaskKind::Verify,
        case: Some(a),
        place: None,
        category: None,
        to_user: collector.id.clone(),
        to_name: collector.name.clone(),
        created_at: Timestamp::from_millis("c", T0).unwrap(),
        due_at: Timestamp::from_millis("d", T0 + 3_600_000).unwrap(),
        note: None,
    };
    s.assign_task(me, spec.clone()).unwrap();
    assert_eq!(s.tasks(Some(&collector.id)).unwrap().len(), 1);
    assert_eq!(s.tasks(Some("nobody")).unwrap().len(), 0);
    assert!(s.task(spec.id).unwrap().is_some());

    // Pulling: another collector covering the first cell gets the cases
    // there and the decisions, never tracks; its own tasks; each once.
    let other = uuid::Uuid::new_v4();
    let cell = vec!["330109001001001".to_string()];
    let page = s
        .pull(0, 1000, other, &cell, &[], Some(&collector.id))
        .unwrap();
    let kinds: Vec<_> = page.changes.iter().map(|c| c.op.kind()).collect();
    assert_eq!(
        kinds,
        vec![
            "case_report",
            "case_edit",
            "case_edit",
            "status_set",
            "status_set",
            "task_assign"
        ],
        "{kinds:?}"
    );
    assert!(!page.more);
    let again = s
        .pull(page.cursor, 1000, other, &cell, &[], Some(&collector.id))
        .unwrap();
    assert!(again.changes.is_empty());
    assert_eq!(again.cursor, page.cursor);
    // Paged, the same changes in the same order.
    let (mut cursor, mut paged) = (0, Vec::new());
    loop {
        let p = s
            .pull(cursor, 2, other, &cell, &[], Some(&collector.id))
            .unwrap();
        paged.extend(p.changes.iter().map(|c| c.id()));
        cursor = p.cursor;
        if !p.more {
            break;
        }
    }
    assert_eq!(
        paged,
        page.changes.iter().map(|c| c.id()).collect::<Vec<_>>()
    );
    // The device's own pull: its tracks come back to a restored handset.
    let own = s
        .pull(0, 1000, uuid::Uuid::new_v4(), &[], &[actor], None)
        .unwrap();
    assert!(own.changes.iter().any(|c| c.op.kind() == "track_append"));

    // Reference data.
    let (version, geojson) = s.grid().unwrap().unwrap();
    assert_eq!(version.len(), 16);
    assert_eq!(geojson["features"].as_array().unwrap().len(), 2);
    assert!(s.custom_catalog().unwrap().is_none());
    let catalog = s.catalog().unwrap();
    let cover = catalog.resolve("category", "BJ0101").unwrap().code.clone();
    assert!(s.has_category(&cover).unwrap());
    let mut custom = catalog.clone();
    custom.version = "city-2026".into();
    s.set_catalog(custom).unwrap();
    assert_eq!(s.custom_catalog().unwrap().unwrap().version, "city-2026");
    assert_eq!(s.catalog().unwrap().version, "city-2026");
}

/// Assessment records: configuration versions number up, rollups and
/// stale days round-trip, assignments come oldest first.
fn records(s: &dyn Storage) {
    assert_eq!(s.config().unwrap(), None);
    assert_eq!(s.set_config("a = 1", "admin").unwrap(), 1);
    assert_eq!(s.set_config("a = 2", "admin").unwrap(), 2);
    assert_eq!(s.config().unwrap(), Some((2, "a = 2".into())));
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    s.put_rollup(day, "u1", "{}").unwrap();
    s.put_rollup(day, "u1", "{\"x\":1}").unwrap();
    assert_eq!(s.rollup(day, "u1").unwrap().as_deref(), Some("{\"x\":1}"));
    assert_eq!(s.rollup_days().unwrap(), vec![day]);
    s.mark_dirty(&[day, day]).unwrap();
    assert_eq!(s.dirty_days().unwrap(), vec![day]);
    s.clear_dirty(day).unwrap();
    assert!(s.dirty_days().unwrap().is_empty());
    let u = s.create_user("郑", Role::Collector, None, &[]).unwrap();
    let later = day.succ_opt().unwrap();
    s.set_assignment(&u.id, &["b".into()], later).unwrap();
    s.set_assignment(&u.id, &["a".into()], day).unwrap();
    let got = s.assignments(&u.id).unwrap();
    assert_eq!(
        got,
        vec![(day, vec!["a".to_string()]), (later, vec!["b".to_string()])]
    );
}

fn suite(s: &dyn Storage) {
    sessions(s);
    leases(s);
    jobs_and_epoch(s);
    identity(s);
    photo_allowance(s);
    replica(s);
    records(s);
}

#[test]
fn sqlite_meets_the_storage_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("server")).unwrap();
    suite(&s);
}

fn postgres(url: &str, dir: &std::path::Path) -> PgStorage {
    PgStorage::open(url, Blobs::in_dir(&dir.join("blobs")).unwrap()).unwrap()
}

#[test]
fn postgres_meets_the_storage_contract() {
    let Some(url) = support::pg_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    suite(&postgres(&url, dir.path()));
}

/// Several handsets edit one case offline (descriptions, categories,
/// photos); two instances on one database merge their changes at once,
/// one change per transaction, in two threads. Both instances then hold the
/// state one replica applying everything alone holds, and the log holds
/// every change once.
#[test]
fn two_instances_merging_into_one_case_agree_with_one_replica() {
    let Some(url) = support::pg_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let i1 = Arc::new(postgres(&url, dir.path()));
    let i2 = Arc::new(postgres(&url, dir.path()));
    let reference = SqliteStorage::open(&dir.path().join("reference")).unwrap();
    i1.set_grid(cells()).unwrap();
    reference.set_grid(cells()).unwrap();
    let (_, report, case) = handset(dir.path(), "reporter");
    let mut editors = Vec::new();
    for (k, name) in ["b", "c", "d", "e"].iter().enumerate() {
        // The reporter's other handsets (only the reporter edits a report).
        let mut d = Store::init(&dir.path().join(format!("{name}.db")), "reporter").unwrap();
        d.apply_changes(report.clone()).unwrap();
        let own_from = d.change_count().unwrap();
        for round in 0..6u32 {
            let edit = match round % 3 {
                0 => CaseEditRequest {
                    description: Some(format!("{name} says {round}")),
                    ..Default::default()
                },
                1 => CaseEditRequest {
                    category: Some(if k % 2 == 0 { "BJ0103" } else { "BJ0104" }.into()),
                    ..Default::default()
                },
                _ => CaseEditRequest {
                    add_photos: vec![support::png(100 + k as u32 * 10 + round)],
                    ..Default::default()
                },
            };
            d.edit_case(case, edit).unwrap();
        }
        let mine: Vec<Change> = d
            .export_bundle(None)
            .unwrap()
            .changes
            .into_iter()
            .skip(own_from as usize)
            .collect();
        editors.push(mine);
    }
    for s in [&*i1 as &dyn Storage, &reference] {
        s.apply(report.clone()).unwrap();
    }
    // Reference data one instance imports is what the other serves.
    assert_eq!(i2.grid().unwrap(), i1.grid().unwrap());
    let mut custom = i2.catalog().unwrap();
    custom.version = "imported-on-1".into();
    i1.set_catalog(custom.clone()).unwrap();
    assert_eq!(i1.catalog().unwrap().version, "imported-on-1"); // read, and held
    custom.version = "imported-on-2".into();
    i2.set_catalog(custom).unwrap();
    assert_eq!(i1.catalog().unwrap().version, "imported-on-2");
    let all: Vec<Change> = editors.iter().flatten().cloned().collect();
    reference.apply(all.clone()).unwrap();
    std::thread::scope(|scope| {
        for (k, changes) in editors.iter().enumerate() {
            let instance = if k % 2 == 0 { i1.clone() } else { i2.clone() };
            scope.spawn(move || {
                for c in changes {
                    let judged = instance.apply(vec![c.clone()]).unwrap();
                    assert!(
                        matches!(judged[0].1, Judgement::Applied | Judgement::Buffered),
                        "{judged:?}"
                    );
                }
            });
        }
    });
    let want = reference.cases_digest(None).unwrap();
    assert_eq!(i1.cases_digest(None).unwrap(), want);
    assert_eq!(i2.cases_digest(None).unwrap(), want);
    assert_eq!(
        i1.case(case).unwrap().unwrap().photos.len(),
        reference.case(case).unwrap().unwrap().photos.len()
    );
    assert_eq!(
        i2.digest().unwrap().changes,
        (report.len() + all.len()) as u64
    );
    let pulled = i2
        .pull(
            0,
            10_000,
            uuid::Uuid::new_v4(),
            &["330109001001001".into()],
            &[],
            None,
        )
        .unwrap();
    let mut ids: Vec<_> = pulled.changes.iter().map(|c| c.id()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no change pulled twice");
}

/// The classic lost update of sequence-based change feeds: writer 1 is
/// slow (its merge done, its log positions not yet taken), writer 2
/// commits meanwhile, a device pulls in between. The device must get
/// writer 2's change now and writer 1's on its next pull — never skip it
/// because its cursor moved past — and neither twice.
#[test]
fn a_pull_never_skips_a_change_committed_late() {
    let Some(url) = support::pg_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let slow = Arc::new(postgres(&url, dir.path()));
    let fast = postgres(&url, dir.path());
    fast.set_grid(cells()).unwrap();
    let (_, x, _) = handset(dir.path(), "x");
    let (_, y, _) = handset(dir.path(), "y");
    let (x, y) = (x[1].clone(), y[1].clone()); // a report each, in cell 1
    let cell = vec!["330109001001001".to_string()];
    let reader = uuid::Uuid::new_v4();
    let start = fast.pull(0, 100, reader, &cell, &[], None).unwrap().cursor;

    let (reached_tx, reached) = std::sync::mpsc::channel::<()>();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let reached_tx = std::sync::Mutex::new(reached_tx);
    slow.set_before_positions(Some(Arc::new(move || {
        reached_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
    })));
    let writer = {
        let slow = slow.clone();
        let x = x.clone();
        std::thread::spawn(move || slow.apply(vec![x]).unwrap())
    };
    reached.recv().unwrap(); // writer 1 is inside its transaction
    assert_eq!(
        fast.apply(vec![y.clone()]).unwrap()[0].1,
        Judgement::Applied
    );
    let first = fast.pull(start, 100, reader, &cell, &[], None).unwrap();
    let got: Vec<_> = first.changes.iter().map(|c| c.id()).collect();
    assert_eq!(got, vec![y.id()], "only what has committed");
    release.send(()).unwrap();
    assert_eq!(writer.join().unwrap()[0].1, Judgement::Applied);
    slow.set_before_positions(None);
    let second = fast
        .pull(first.cursor, 100, reader, &cell, &[], None)
        .unwrap();
    let got: Vec<_> = second.changes.iter().map(|c| c.id()).collect();
    assert_eq!(got, vec![x.id()], "the late commit, once");
    let third = fast
        .pull(second.cursor, 100, reader, &cell, &[], None)
        .unwrap();
    assert!(third.changes.is_empty());
}

/// Runs one statement on `url` (the test's own connection).
fn sql(url: &str, statement: &str) -> Vec<tokio_postgres::Row> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.query(statement, &[]).await.unwrap()
    })
}

/// A database from an older build is brought forward at start; one from a
/// newer build is refused by name, untouched.
#[test]
fn postgres_migrates_an_older_schema_and_refuses_a_newer_one() {
    let Some(url) = support::pg_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let version = || -> i64 { sql(&url, "SELECT version FROM schema_version")[0].get(0) };
    drop(postgres(&url, dir.path()));
    let current = version();
    assert_eq!(current, sync_server::storage::postgres::SCHEMA_VERSION);
    sql(&url, "UPDATE schema_version SET version = 1");
    sql(
        &url,
        "ALTER TABLE changes ALTER COLUMN body SET STORAGE EXTENDED",
    );
    drop(postgres(&url, dir.path()));
    assert_eq!(version(), current, "migrated forward");
    let storage: String = sql(
        &url,
        "SELECT attstorage::text FROM pg_attribute WHERE attrelid = 'changes'::regclass AND attname = 'body'",
    )[0]
    .get(0);
    assert_eq!(storage, "e", "migration 2 ran again");
    // Points held a row each (schema 5) move into chunks (schema 6), every
    // bit kept, and the old table goes.
    sql(&url, "UPDATE schema_version SET version = 5");
    sql(
        &url,
        "CREATE TABLE track_points (actor BYTEA NOT NULL, seq BIGINT NOT NULL, t_ms BIGINT NOT NULL,
         lon DOUBLE PRECISION NOT NULL, lat DOUBLE PRECISION NOT NULL, accuracy_m DOUBLE PRECISION,
         speed_mps DOUBLE PRECISION, PRIMARY KEY (actor, seq))",
    );
    let actor = uuid::Uuid::from_u128(0x5eed);
    let hex = hex::encode(actor.as_bytes());
    sql(
        &url,
        &format!(
            "INSERT INTO track_points VALUES
             ('\\x{hex}', 2, 1764117005000, 120.1000001, 30.2, NULL, 1.25),
             ('\\x{hex}', 1, 1764117000000, 120.1, 30.2000003, 4.5, NULL),
             ('\\x{hex}', 3, 1764120000000, 120.1000002, 30.2, 3.0, NULL)"
        ),
    );
    let moved = postgres(&url, dir.path());
    assert_eq!(version(), current, "migrated forward");
    let points = moved.track_between(actor, 0, i64::MAX).unwrap();
    let got: Vec<(i64, f64, f64, Option<f64>, Option<f64>)> = points
        .iter()
        .map(|p| {
            (
                p.at.millis(),
                p.pos.lon(),
                p.pos.lat(),
                p.accuracy_m,
                p.speed_mps,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1764117000000, 120.1, 30.2000003, Some(4.5), None),
            (1764117005000, 120.1000001, 30.2, None, Some(1.25)),
            (1764120000000, 120.1000002, 30.2, Some(3.0), None),
        ]
    );
    let gone: bool = sql(&url, "SELECT to_regclass('track_points') IS NULL")[0].get(0);
    assert!(gone, "the table of a row a point is dropped");
    drop(moved);
    sql(
        &url,
        &format!("UPDATE schema_version SET version = {}", current + 1),
    );
    let refused = PgStorage::open(&url, Blobs::in_dir(&dir.path().join("blobs")).unwrap())
        .err()
        .expect("a newer schema is refused")
        .to_string();
    assert!(refused.contains("newer than this build"), "{refused}");
    assert_eq!(version(), current + 1, "left as it was");
}
