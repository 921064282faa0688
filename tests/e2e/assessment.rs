//! The assessment report over HTTP and `field center report`, on a
//! hand-computed day: every figure asserted exactly.

use field_e2e::server::Server;
use field_e2e::{Device, grid_geojson, png};
use serde_json::Value;

fn report(
    d: &Device,
    seed: u32,
    category: &str,
    lon: &str,
    lat: &str,
    at: &str,
    extra: &[&str],
) -> String {
    let p = d.file(&format!("a{seed}.png"), &png(seed));
    let at = format!("2025-11-26T{at}+08:00");
    let mut args = vec![
        "case",
        "report",
        "--category",
        category,
        "--lon",
        lon,
        "--lat",
        lat,
        "--desc",
        "x",
        "--photo",
        p.to_str().unwrap(),
        "--at",
        &at,
    ];
    args.extend_from_slice(extra);
    d.ok(&args).stdout.trim().to_string()
}

fn finding(staff: &Device, category: &str, lon: &str, lat: &str, at: &str) {
    staff.ok(&[
        "center",
        "finding",
        "add",
        "--source",
        "citizen",
        "--category",
        category,
        "--lon",
        lon,
        "--lat",
        lat,
        "--at",
        &format!("2025-11-26T{at}+08:00"),
    ]);
}

fn rate(r: &Value, k: &str) -> (u64, u64) {
    (r[k]["n"].as_u64().unwrap(), r[k]["d"].as_u64().unwrap())
}

#[test]
fn a_collectors_day_adds_up_by_hand() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    // Top row: 001 red (13 windows), 002 yellow (7), 003 blue (4) = 24.
    let d = server.enrolled_device(&server.add_user(
        "王",
        "collector",
        &["330109001001001", "330109001001002", "330109001001003"],
    ));
    let staff = server.enrolled_device(&server.add_user("考核", "admin", &[]));
    d.ok(&["sync"]);
    let c1 = report(&d, 1, "SJ0201", "120.2605", "30.1895", "09:00:00", &[]);
    let c2 = report(&d, 2, "SJ0201", "120.2615", "30.1895", "09:10:00", &[]);
    let c3 = report(&d, 3, "BJ0101", "120.2625", "30.1895", "09:20:00", &[]);
    let c4 = report(&d, 4, "SJ0102", "120.2605", "30.1895", "07:30:00", &[]);
    let mut quick = Vec::new();
    for i in 0..7 {
        let after = d.file(&format!("after{i}.png"), &png(100 + i));
        quick.push(report(
            &d,
            20 + i,
            "SJ0201",
            "120.2615",
            "30.1893",
            "11:00:00",
            &["--quick-fix", "--after-photo", after.to_str().unwrap()],
        ));
    }
    d.ok(&["sync"]);
    staff.ok(&["center", "case", "register", &c1]);
    staff.ok(&["center", "case", "reject", &c2, "--reason", "duplicate"]);
    staff.ok(&["center", "case", "reject", &c3, "--reason", "out_of_scope"]);
    staff.ok(&["center", "case", "register", &c4]);
    for q in &quick {
        staff.ok(&["center", "case", "close", q]);
    }
    // Findings: 40 m east of c4, 3 h after it (matched); 60 m east (missed);
    // at c1's spot 30 min *before* c1 (missed); one outside the cells (not counted).
    finding(&staff, "SJ0102", "120.260916", "30.1895", "10:30:00");
    finding(&staff, "SJ0102", "120.261124", "30.1895", "10:30:00");
    finding(&staff, "SJ0201", "120.2605", "30.1895", "08:30:00");
    // The fourth, outside the cells, comes by CSV with a bad file refused whole first.
    let bad = staff.file("bad.csv", "source,category,lon,lat,at\ncitizen,SJ0201,120.2625,30.1875,2025-11-26T10:00:00+08:00\nmedia,SJ9999,120.26,30.18,2025-11-26T10:00:00+08:00\n".as_bytes());
    let refused = staff.run(&["center", "finding", "import", bad.to_str().unwrap()]);
    assert!(
        !refused.ok && refused.stderr.contains("rows[1].category"),
        "{}",
        refused.stderr
    );
    let good = staff.file("good.csv", "source,category,lon,lat,at,note\ncitizen,SJ0201,120.2625,30.1875,2025-11-26T10:00:00+08:00,12345 hotline\n".as_bytes());
    assert_eq!(
        staff
            .ok(&[
                "center",
                "finding",
                "import",
                good.to_str().unwrap(),
                "--json"
            ])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let reports = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11-26",
            "--collector",
            "王",
            "--explain",
            "--json",
        ])
        .json();
    let r = &reports[0];
    assert_eq!(
        rate(r, "coverage"),
        (0, 24),
        "no track: every window uncovered"
    );
    assert_eq!(
        r["explain"]["uncovered_windows"].as_array().unwrap().len(),
        24
    );
    assert_eq!(
        rate(r, "valid_report_rate"),
        (2, 4),
        "c1 and c4 registered of 4 formal cases"
    );
    assert_eq!(
        rate(r, "error_rate"),
        (1, 4),
        "the duplicate counts, out of scope does not"
    );
    assert_eq!(r["explain"]["erroneous_cases"][0]["case"], c2.as_str());
    assert_eq!(
        rate(r, "miss_rate"),
        (2, 4),
        "2 missed / (2 missed + 2 registered)"
    );
    assert_eq!(r["explain"]["missed_findings"].as_array().unwrap().len(), 2);
    assert_eq!(
        (r["quick_fixes"].as_u64(), r["quick_fix_credit"].as_u64()),
        (Some(7), Some(2))
    );
    assert_eq!(r["absent_halves"], 2, "no test case sent");
    assert_eq!(
        r["off_post_events"], 1,
        "a whole day without a point in the cells"
    );
    assert_eq!(rate(r, "timeliness"), (0, 0));
    // 100 × (0.4 × 0.5 + 0.2 × (1 − 0.5) + 0.2 × 1 + 0.2 × 1) = 70 → C.
    assert_eq!(r["composite"], 70.0);
    assert_eq!(r["grade"], "C");
    // Quota figures are over registered cases: the two registered ones are
    // events; a day report gives no quota verdict (quotas are monthly).
    assert_eq!(rate(r, "event_share"), (2, 2));
    assert_eq!(r["quota_breaches"], serde_json::json!([]), "{r}");
    assert_eq!(
        r["volume"], 4,
        "2 registered + ⌊7 approved quick fixes ÷ 3⌋"
    );
    assert_eq!(r["subclasses"], 2, "SJ0201 and SJ0102 registered");
    // 1 error in 4 cases on the day (25%): above the strict 4% threshold by 1.
    assert_eq!(r["errors_above_threshold"], 1);
    // The month, at the collector level: its verdicts.
    staff.ok(&["center", "config", "set", "quotas.level", "\"collector\""]);
    let month = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11",
            "--collector",
            "王",
            "--json",
        ])
        .json();
    let breaches: Vec<&str> = month[0]["quota_breaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert_eq!(
        breaches,
        [
            "events are 100.0% of registered cases (2/2; at most 80%)",
            "2 distinct subclasses registered (at least 104)",
            "error rate 25.0% (1/4; below 4%)"
        ]
    );
    let week = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-W48",
            "--collector",
            "王",
            "--json",
        ])
        .json();
    assert_eq!(week[0]["days"], 7);
    assert_eq!(
        rate(&week[0], "valid_report_rate"),
        (2, 4),
        "2025-11-26 is in ISO week 48"
    );
    let quarter = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-Q4",
            "--collector",
            "王",
            "--json",
        ])
        .json();
    assert_eq!(quarter[0]["days"], 92);

    let map = staff.home().join("map.svg");
    staff.ok(&[
        "center",
        "map",
        "--collector",
        "王",
        "--day",
        "2025-11-26",
        "--out",
        map.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&map).unwrap();
    assert_eq!(
        svg.matches("class=\"cell\"").count(),
        3,
        "the three assigned cells"
    );
    assert_eq!(
        svg.matches("data-covered=\"0.000\"").count(),
        3,
        "nothing covered without a track"
    );
    assert!(!svg.contains("class=\"track\""), "no track to draw");

    let csv = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11",
            "--collector",
            "王",
            "--csv",
        ])
        .stdout;
    let line = csv.lines().nth(1).unwrap();
    assert!(
        line.starts_with("\"王\",2025-11,0,720,"),
        "a month: 30 days × 24 windows: {line}"
    );
}

#[test]
fn tasks_on_time_late_and_never_answered() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("李", "collector", &["330109001001001"]));
    let staff = server.enrolled_device(&server.add_user("考核", "admin", &[]));
    for _ in 0..3 {
        staff.ok(&[
            "center", "task", "create", "--kind", "verify", "--lon", "120.2605", "--lat",
            "30.1895", "--to", "李", "--due", "2s",
        ]);
    }
    d.ok(&["sync"]);
    let tasks = d.ok(&["task", "list", "--json"]).json();
    let ids: Vec<String> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    let p = d.file("t.png", &png(1));
    d.ok(&[
        "task",
        "answer",
        &ids[0],
        "--result",
        "yes",
        "--photo",
        p.to_str().unwrap(),
    ]);
    d.ok(&["sync"]); // on time
    d.ok(&[
        "task",
        "answer",
        &ids[1],
        "--result",
        "no",
        "--photo",
        p.to_str().unwrap(),
    ]);
    loop {
        let list = staff.ok(&["center", "task", "list", "--json"]).json();
        if list
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["timeliness"] == "overdue")
            .count()
            == 2
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100)); // polling the server's view of time
    }
    d.ok(&["sync"]); // late
    let day = &tasks[0]["spec"]["due_at"].as_str().unwrap().to_string();
    // The local (UTC+8) day the tasks fell due.
    let utc: chrono::DateTime<chrono::Utc> = day.parse().unwrap();
    let local = (utc + chrono::Duration::hours(8))
        .format("%Y-%m-%d")
        .to_string();
    let r = &staff
        .ok(&[
            "center",
            "report",
            "--period",
            &local,
            "--collector",
            "李",
            "--explain",
            "--json",
        ])
        .json()[0];
    assert_eq!(rate(r, "timeliness"), (1, 3));
    assert_eq!(rate(r, "verify_on_time"), (1, 3));
    assert_eq!(rate(r, "check_on_time"), (0, 0));
    let late = r["explain"]["late_tasks"].as_array().unwrap();
    assert_eq!(late.len(), 2);
    assert!(
        late.iter().any(|t| t["answered_at"].is_null()),
        "one never answered"
    );
    assert!(
        late.iter().any(|t| !t["received_at"].is_null()),
        "one answered but arrived late, with both times"
    );
}

#[test]
fn the_citys_configuration_is_versioned_and_shapes_the_report() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("周", "collector", &["330109001001001"]));
    let staff = server.enrolled_device(&server.add_user("考核", "admin", &[]));
    // The collector's company, for the settlement.
    let _: Value = server
        .admin()
        .call("POST", "/v1/center/users", Some(&serde_json::json!({ "name": "吴", "role": "collector", "company": "一公司", "cells": ["330109001001002"], "from": "2025-10-01" })))
        .unwrap();
    d.ok(&["sync"]);
    let v0 = staff.ok(&["center", "config", "show", "--json"]).json();
    assert_eq!(v0["version"], 0, "defaults until the city sets one");
    let before = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11-26",
            "--collector",
            "周",
            "--json",
        ])
        .json();
    assert_eq!(
        rate(&before[0], "coverage"),
        (0, 13),
        "red cell, 07:15-20:15: 13 windows"
    );

    let v1 = staff
        .ok(&[
            "center",
            "config",
            "set",
            "patrol.patrol_start",
            "\"08:15:00\"",
            "--json",
        ])
        .json();
    assert_eq!(v1["version"], 1);
    let after = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11-26",
            "--collector",
            "周",
            "--json",
        ])
        .json();
    assert_eq!(
        rate(&after[0], "coverage"),
        (0, 12),
        "08:15-20:15: 12 windows"
    );
    // 12 uncovered × 2 + 2 absent halves × 50 + 1 off-post day × 100 (default rule table).
    assert_eq!(after[0]["deductions_total"], 224.0);

    staff.ok(&["center", "config", "set", "fees.一公司", "424000"]);
    let bad = staff.run(&["center", "config", "set", "weights.valid", "0.9"]);
    assert!(
        !bad.ok && bad.stderr.contains("add up to 1"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        staff.ok(&["center", "config", "show", "--json"]).json()["version"],
        2,
        "a refused change makes no version"
    );
    let q = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-Q4",
            "--company",
            "一公司",
            "--json",
        ])
        .json();
    let company = q.as_array().unwrap().last().unwrap();
    let settlement = &company["settlement"];
    assert_eq!(settlement["fee"], 424000.0);
    assert_eq!(settlement["due_by"], "2026-01-10");
    let deductions = company["deductions_total"].as_f64().unwrap();
    assert!(deductions > 0.0);
    assert_eq!(
        settlement["payable"].as_f64().unwrap(),
        424000.0 - deductions
    );
}

#[test]
fn a_collector_who_changes_cells_mid_month_is_assessed_on_each_days_cells() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    server.add_user("郑", "collector", &["330109001001001"]);
    let staff = server.enrolled_device(&server.add_user("考核", "admin", &[]));
    // Red 001 (13 windows a day) until the 15th, yellow 002 (7 a day) from the 16th.
    staff.ok(&[
        "center",
        "collector",
        "assign",
        "郑",
        "--cells",
        "330109001001001",
        "--from",
        "2025-11-01",
    ]);
    let history = staff
        .ok(&[
            "center",
            "collector",
            "assign",
            "郑",
            "--cells",
            "330109001001002",
            "--from",
            "2025-11-16",
            "--json",
        ])
        .json();
    // The assignment made with the collector, then the two.
    assert_eq!(history.as_array().unwrap().len(), 3);
    let month = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11",
            "--collector",
            "郑",
            "--json",
        ])
        .json();
    assert_eq!(rate(&month[0], "coverage"), (0, 15 * 13 + 15 * 7));
    let before = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11-10",
            "--collector",
            "郑",
            "--json",
        ])
        .json();
    assert_eq!(rate(&before[0], "coverage"), (0, 13));
    let after = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11-20",
            "--collector",
            "郑",
            "--json",
        ])
        .json();
    assert_eq!(rate(&after[0], "coverage"), (0, 7));
    let bad = staff.run(&[
        "center",
        "collector",
        "assign",
        "郑",
        "--cells",
        "999",
        "--from",
        "2025-12-01",
    ]);
    assert!(
        !bad.ok && bad.stderr.contains("not a cell"),
        "{}",
        bad.stderr
    );
}

#[test]
fn the_nightly_rollup_serves_long_periods_and_late_data_refreshes_it() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("钱", "collector", &["330109001001001"]));
    let staff = server.enrolled_device(&server.add_user("考核", "admin", &[]));
    d.ok(&["sync"]);
    report(&d, 1, "SJ0201", "120.2605", "30.1895", "09:00:00", &[]);
    d.ok(&["sync"]);
    let nightly = |extra: &[&str]| -> Value {
        let mut cmd = std::process::Command::new(field_e2e::server_bin());
        cmd.args(["nightly", "--data", server.data.to_str().unwrap()])
            .args(extra);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let run = nightly(&["--day", "2025-11-26"]);
    assert_eq!(run["days"][0], "2025-11-26");
    let month = || {
        staff
            .ok(&[
                "center",
                "report",
                "--period",
                "2025-11",
                "--collector",
                "钱",
                "--json",
            ])
            .json()[0]
            .clone()
    };
    let m = month();
    assert_eq!(
        m["days_from_rollups"], 1,
        "the rolled-up day is read, not recomputed"
    );
    assert_eq!(rate(&m, "valid_report_rate"), (0, 1));

    // A late sync for that day: its rollup is stale and the day is computed live.
    report(&d, 2, "SJ0102", "120.2605", "30.1895", "10:00:00", &[]);
    d.ok(&["sync"]);
    let m = month();
    assert_eq!(m["days_from_rollups"], 0);
    assert_eq!(rate(&m, "valid_report_rate"), (0, 2));

    // The next nightly run recomputes the stale day.
    let run = nightly(&[]);
    assert!(
        run["days"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "2025-11-26"),
        "{run}"
    );
    let m = month();
    assert_eq!(m["days_from_rollups"], 1);
    assert_eq!(rate(&m, "valid_report_rate"), (0, 2));
}

#[test]
fn every_reject_reason_counts_as_an_error_but_out_of_scope() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("冯", "collector", &["330109001001001"]));
    let staff = server.enrolled_device(&server.add_user("考核", "admin", &[]));
    d.ok(&["sync"]);
    let reasons = [
        "wrong_category",
        "wrong_location",
        "duplicate",
        "false_report",
        "out_of_scope",
        "bad_photo",
        "other",
    ];
    let ids: Vec<String> = (0..reasons.len())
        .map(|i| {
            report(
                &d,
                40 + i as u32,
                "SJ0201",
                "120.2605",
                "30.1895",
                "09:00:00",
                &[],
            )
        })
        .collect();
    d.ok(&["sync"]);
    for (id, reason) in ids.iter().zip(reasons) {
        let mut args = vec!["center", "case", "reject", id.as_str(), "--reason", reason];
        if reason == "other" {
            args.extend(["--text", "blurred and off the street"]);
        }
        staff.ok(&args);
    }
    let r = &staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11-26",
            "--collector",
            "冯",
            "--explain",
            "--json",
        ])
        .json()[0];
    assert_eq!(rate(r, "error_rate"), (6, 7));
    let counted: Vec<&str> = r["explain"]["erroneous_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"]["reason"].as_str().unwrap())
        .collect();
    assert!(
        !counted.contains(&"out_of_scope") && counted.len() == 6,
        "{counted:?}"
    );
    assert_eq!(rate(r, "valid_report_rate"), (0, 7));
    // The city may decide that bad photos are not the collector's fault either.
    staff.ok(&[
        "center",
        "config",
        "set",
        "error_reasons",
        r#"["wrong_category", "wrong_location", "duplicate", "false_report", "other"]"#,
    ]);
    let r = &staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11-26",
            "--collector",
            "冯",
            "--json",
        ])
        .json()[0];
    assert_eq!(rate(r, "error_rate"), (5, 7));
}
