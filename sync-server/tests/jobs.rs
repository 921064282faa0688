//! The server's own schedule under a clock the test owns: the nightly
//! roll-up runs by itself at its local time, once per night across
//! instances, and not before.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use sync_server::config::Jobs;
use sync_server::jobs::scheduler::{Schedule, run_scheduler};
use sync_server::service::NewUserRequest;
use sync_server::storage::{JobRun, Role};

fn shanghai(d: u32, h: u32, m: u32, s: u32) -> i64 {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, d, h, m, s)
        .unwrap()
        .timestamp_millis()
}

/// Waits (bounded) until the runs satisfy `done`; returns them.
fn runs_until(h: &support::Harness, done: impl Fn(&[JobRun]) -> bool) -> Vec<JobRun> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = h.center.storage().job_runs(100).unwrap();
        if done(&runs) {
            return runs;
        }
        assert!(Instant::now() < deadline, "no such run came: {runs:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn nightly_ok(runs: &[JobRun], slot: i64) -> bool {
    runs.iter()
        .any(|r| r.job == "nightly" && r.slot_ms == slot && r.outcome == "ok")
}

#[test]
fn the_nightly_roll_up_runs_by_itself_at_its_local_time() {
    let h = support::Harness::new(shanghai(27, 1, 59, 0), &support::grid(&["red", "red"]));
    h.center
        .add_user(
            &h.admin,
            NewUserRequest {
                name: "王芳".into(),
                role: Role::Collector,
                company: None,
                cells: vec![],
                from: chrono::NaiveDate::from_ymd_opt(2025, 1, 1),
            },
        )
        .unwrap();
    let schedule = Schedule::from_config(
        &Jobs::default(),
        "Asia/Shanghai",
        h.dir.path().join("server"),
    )
    .unwrap();
    // 01:59 local: yesterday's 02:00 is too old to catch up, today's has
    // not come.
    assert!(
        h.center
            .run_due_jobs(&schedule, "first look")
            .ran
            .is_empty()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(run_scheduler(
        h.center.clone(),
        schedule.clone(),
        Duration::from_millis(10),
        async move {
            let _ = stopped.await;
        },
    ));
    h.now.store(shanghai(27, 2, 0, 30), Ordering::SeqCst);
    let runs = runs_until(&h, |r| nightly_ok(r, shanghai(27, 2, 0, 0)));
    let night = runs.iter().find(|r| r.job == "nightly").unwrap();
    let summary: serde_json::Value = serde_json::from_str(&night.detail).unwrap();
    assert_eq!(summary["days"], serde_json::json!(["2026-11-26"]));
    assert_eq!(summary["reports"], 1, "one collector, one day");
    assert_eq!(
        h.center.storage().rollup_days().unwrap(),
        vec![chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()]
    );
    // Another instance looking at the same clock finds it done.
    let other = h.center.run_due_jobs(&schedule, "second instance");
    assert!(other.ran.iter().all(|r| r.job != "nightly"), "{other:?}");

    // The next night, by itself again.
    h.now.store(shanghai(28, 2, 0, 5), Ordering::SeqCst);
    let runs = runs_until(&h, |r| nightly_ok(r, shanghai(28, 2, 0, 0)));
    assert_eq!(runs.iter().filter(|r| r.job == "nightly").count(), 2);
    let _ = stop.send(());
}
