//! Assessment a contractor can be paid on (issue 11): fair periods, figures
//! never stale after review, deductions by the rule's own grain.

use chrono::{Datelike, Utc};
use field_e2e::server::Server;
use field_e2e::{grid_geojson, png};
use serde_json::{Value, json};

fn rate(r: &Value, k: &str) -> (u64, u64) {
    (r[k]["n"].as_u64().unwrap(), r[k]["d"].as_u64().unwrap())
}

fn report_of(server: &Server, collector: &str, period: &str) -> Value {
    let path = format!("/v1/center/report?period={period}&collector={}", collector);
    let r: Value = server
        .admin()
        .call::<(), Value>("GET", &path, None)
        .unwrap();
    r[0].clone()
}

/// The city's (Asia/Shanghai) month of `days` from now.
fn local_month(offset_days: i64) -> String {
    let t = Utc::now().with_timezone(&chrono_tz_shanghai()) + chrono::Duration::days(offset_days);
    format!("{:04}-{:02}", t.year(), t.month())
}

fn chrono_tz_shanghai() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

#[test]
fn a_collector_added_today_is_charged_for_nothing_before_or_after_now() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    // Added today with one blue cell, no `from`: assigned from today.
    let body = json!({ "name": "新人", "role": "collector", "cells": ["330109001001003"] });
    let _: Value = server
        .admin()
        .call("POST", "/v1/center/users", Some(&body))
        .unwrap();
    let month = report_of(&server, "新人", &local_month(0));
    assert_eq!(month["complete"], false, "{month}");
    // At most today's blue windows (4: 07:15–11:15 … 19:15–20:15) that have
    // ended, both attendance halves, one off-post stretch: never the month's
    // 120 windows, 60 absent halves and 30 off-post events.
    assert!(month["days_assigned"].as_u64().unwrap() <= 1, "{month}");
    assert!(rate(&month, "coverage").1 <= 4, "{month}");
    assert!(month["absent_halves"].as_u64().unwrap() <= 2, "{month}");
    assert!(month["off_post_events"].as_u64().unwrap() <= 1, "{month}");
    // Last month, before the collector existed: nothing at all.
    let before = report_of(&server, "新人", &local_month(-40));
    assert_eq!(before["complete"], true);
    assert_eq!(
        (
            before["days_assigned"].as_u64(),
            rate(&before, "coverage"),
            before["absent_halves"].as_u64()
        ),
        (Some(0), (0, 0), Some(0)),
        "{before}"
    );
}

fn nightly(server: &Server, day: &str) -> Value {
    let out = std::process::Command::new(field_e2e::server_bin())
        .args([
            "nightly",
            "--data",
            server.data.to_str().unwrap(),
            "--day",
            day,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn review_after_the_nightly_rollup_reaches_the_month() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("孙", "collector", &["330109001001001"]));
    let photo = d.file("p.png", &png(1));
    let id = d.report(
        ("BJ0101", "120.2605", "30.1895"),
        "x",
        &photo,
        Some("2025-11-26T09:00:00+08:00"),
    );
    d.ok(&["sync"]);
    nightly(&server, "2025-11-26");
    let month = report_of(&server, "孙", "2025-11");
    assert_eq!(rate(&month, "valid_report_rate"), (0, 1));
    assert_eq!(
        month["days_from_rollups"], 1,
        "the 26th from its rollup: {month}"
    );

    // A decision today on the case reported on the 26th: the 26th is stale.
    let _: Value = server
        .admin()
        .call(
            "POST",
            &format!("/v1/center/cases/{id}/decisions"),
            Some(&json!({"action": "register"})),
        )
        .unwrap();
    let month = report_of(&server, "孙", "2025-11");
    assert_eq!(rate(&month, "valid_report_rate"), (1, 1), "{month}");
    assert_eq!(
        month["days_from_rollups"], 0,
        "the 26th recomputed: {month}"
    );
    nightly(&server, "2025-11-26");

    // A finding on the 26th, then a configuration version: each reaches the month.
    let finding = json!({"source": "citizen", "category": "SJ0201", "lon": 120.2605, "lat": 30.1895, "at": "2025-11-26T10:00:00+08:00"});
    let _: Value = server
        .admin()
        .call("POST", "/v1/center/findings", Some(&finding))
        .unwrap();
    let month = report_of(&server, "孙", "2025-11");
    assert_eq!(rate(&month, "miss_rate"), (1, 2), "{month}");
    nightly(&server, "2025-11-26");
    let before = report_of(&server, "孙", "2025-11")["deductions"]["missed_findings"]
        .as_f64()
        .unwrap();
    let set = json!({"key": "deductions.per_missed_finding", "value": "777"});
    let _: Value = server
        .admin()
        .call("POST", "/v1/center/config/set", Some(&set))
        .unwrap();
    let after = report_of(&server, "孙", "2025-11");
    assert_eq!(
        after["deductions"]["missed_findings"].as_f64().unwrap(),
        777.0,
        "before {before}: {after}"
    );
    assert_eq!(
        after["days_from_rollups"], 0,
        "every rolled-up day is stale under a new configuration"
    );
}

fn decide(server: &Server, id: &str, body: Value) {
    let _: Value = server
        .admin()
        .call(
            "POST",
            &format!("/v1/center/cases/{id}/decisions"),
            Some(&body),
        )
        .unwrap();
}

#[test]
fn errors_above_the_threshold_are_counted_per_collector_month_never_pooled() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let add = |name: &str| {
        let body = json!({ "name": name, "role": "collector", "company": "甲公司", "cells": ["330109001001001"], "from": "2025-01-01" });
        let r: Value = server
            .admin()
            .call("POST", "/v1/center/users", Some(&body))
            .unwrap();
        let d = field_e2e::Device::init("x");
        d.ok(&[
            "enroll",
            "--server",
            &server.url,
            "--code",
            r["enrolment_code"].as_str().unwrap(),
        ]);
        d
    };
    let (a, b) = (add("甲"), add("乙"));
    // 甲: October, 1 case, rejected (100%): 1 above the threshold.
    let photo = a.file("a.png", &png(500));
    let only = a.report(
        ("BJ0101", "120.2605", "30.1895"),
        "x",
        &photo,
        Some("2025-10-15T09:00:00+08:00"),
    );
    a.ok(&["sync"]);
    decide(
        &server,
        &only,
        json!({"action": "reject", "reason": "wrong_category"}),
    );
    // 乙: November, 25 cases, 1 rejected: exactly 4.0%, a breach (below is strict).
    let mut ids = Vec::new();
    for i in 0..25u32 {
        let photo = b.file(&format!("b{i}.png"), &png(600 + i));
        let at = format!("2025-11-{:02}T09:{:02}:00+08:00", 1 + i % 28, i);
        ids.push(b.report(("BJ0101", "120.2605", "30.1895"), "x", &photo, Some(&at)));
    }
    b.ok(&["sync"]);
    decide(
        &server,
        &ids[0],
        json!({"action": "reject", "reason": "duplicate"}),
    );
    for id in &ids[1..] {
        decide(&server, id, json!({"action": "register"}));
    }
    let nov: Value = server
        .admin()
        .call::<(), Value>("GET", "/v1/center/report?period=2025-11&collector=乙", None)
        .unwrap();
    assert_eq!(
        (
            rate(&nov[0], "error_rate"),
            nov[0]["errors_above_threshold"].as_u64()
        ),
        ((1, 25), Some(1)),
        "{}",
        nov[0]
    );
    let q: Value = server
        .admin()
        .call::<(), Value>(
            "GET",
            "/v1/center/report?period=2025-Q4&company=甲公司",
            None,
        )
        .unwrap();
    let company = q.as_array().unwrap().last().unwrap();
    // Pooled, 2 errors in 26 cases would allow 1 and deduct 1; by the
    // rule's grain it is 甲's October + 乙's November = 2.
    assert_eq!(rate(company, "error_rate"), (2, 26));
    assert_eq!(company["errors_above_threshold"], 2, "{company}");
    let unit = 20.0; // the default per_error_above_threshold
    assert_eq!(
        company["deductions"]["errors_above_threshold"].as_f64(),
        Some(2.0 * unit)
    );
    // Quotas at the company level (the default), per calendar month: the
    // company shows each month's verdicts, its collectors none.
    let breaches: Vec<&str> = company["quota_breaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(
        breaches.contains(&"2025-11: error rate 4.0% (1/25; below 4%)"),
        "{breaches:?}"
    );
    assert!(
        breaches.contains(&"2025-10: error rate 100.0% (1/1; below 4%)"),
        "{breaches:?}"
    );
    assert!(
        breaches
            .iter()
            .filter(|b| b.contains("distinct subclasses"))
            .count()
            == 3,
        "{breaches:?}"
    );
    assert_eq!(q[0]["quota_breaches"], json!([]));
    // A week gives no verdict at all.
    let week: Value = server
        .admin()
        .call::<(), Value>(
            "GET",
            "/v1/center/report?period=2025-W45&company=甲公司",
            None,
        )
        .unwrap();
    assert!(
        week.as_array()
            .unwrap()
            .iter()
            .all(|r| r["quota_breaches"] == json!([])),
        "{week}"
    );
}

#[test]
fn a_city_grades_by_the_rates_it_chooses() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("周", "collector", &["330109001001001"]));
    let mut ids = Vec::new();
    for i in 0..4u32 {
        let photo = d.file(&format!("g{i}.png"), &png(900 + i));
        let at = format!("2025-11-26T09:0{i}:00+08:00");
        ids.push(d.report(("BJ0101", "120.2605", "30.1895"), "x", &photo, Some(&at)));
    }
    d.ok(&["sync"]);
    decide(
        &server,
        &ids[0],
        json!({"action": "reject", "reason": "wrong_location"}),
    );
    for id in &ids[1..] {
        decide(&server, id, json!({"action": "register"}));
    }
    // The common scheme: valid 3/4 × 40 + (1 − 0) × 20 + 20 + 20 = 90: an A
    // with a 25% error rate and nothing covered.
    let day = report_of(&server, "周", "2025-11-26");
    assert_eq!(
        (day["composite"].as_f64(), day["grade"].as_str()),
        (Some(90.0), Some("A")),
        "{day}"
    );
    // Xiaoshan's four rates, a quarter each: 0 × 25 + 25 + 25 + 0.75 × 25 = 68.75: C.
    let cfg: Value = server
        .admin()
        .call::<(), Value>("GET", "/v1/center/config", None)
        .unwrap();
    let toml = cfg["toml"].as_str().unwrap();
    let mut lines: Vec<String> = Vec::new();
    let mut in_weights = false;
    for line in toml.lines() {
        if line.starts_with('[') {
            in_weights = line == "[weights]";
        }
        if in_weights && line.contains(" = ") {
            let key = line.split(" = ").next().unwrap();
            let v = if ["coverage", "miss", "timeliness", "error"].contains(&key) {
                "0.25"
            } else {
                "0.0"
            };
            lines.push(format!("{key} = {v}"));
        } else {
            lines.push(line.to_string());
        }
    }
    let _: Value = server
        .admin()
        .call_raw(
            "PUT",
            "/v1/center/config",
            "application/toml",
            lines.join("\n").into_bytes(),
        )
        .unwrap();
    let day = report_of(&server, "周", "2025-11-26");
    assert_eq!(
        (day["composite"].as_f64(), day["grade"].as_str()),
        (Some(68.75), Some("C")),
        "{day}"
    );
    // Cut-offs are configuration too.
    let set = json!({"key": "grades.c", "value": "70"});
    let _: Value = server
        .admin()
        .call("POST", "/v1/center/config/set", Some(&set))
        .unwrap();
    assert_eq!(report_of(&server, "周", "2025-11-26")["grade"], "D");
}

#[test]
fn red_lines_cost_a_fine_then_the_contract_and_can_be_revoked() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    for name in ["赵", "钱"] {
        let body = json!({ "name": name, "role": "collector", "company": "乙公司", "cells": ["330109001001001"], "from": "2025-01-01" });
        let _: Value = server
            .admin()
            .call("POST", "/v1/center/users", Some(&body))
            .unwrap();
    }
    let ops = field_e2e::Device::init("ops");
    let admin = server.admin_token();
    let center = |args: &[&str]| {
        let mut all = vec!["center"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--server", &server.url, "--token", &admin, "--json"]);
        ops.ok(&all).json()
    };
    let first = center(&[
        "violation",
        "record",
        "--collector",
        "赵",
        "--kind",
        "bribery",
        "--at",
        "2025-11-05T10:00:00+08:00",
        "--note",
        "asked a shop for a meal",
    ]);
    let month = |who: &str| report_of(&server, who, "2025-11");
    let zhao = month("赵");
    assert_eq!(
        (
            zhao["violations"].as_u64(),
            zhao["deductions"]["violations"].as_f64()
        ),
        (Some(1), Some(5000.0)),
        "{zhao}"
    );
    assert!(
        zhao.get("termination").is_none(),
        "the first is a fine only: {zhao}"
    );
    // The second of the company's contract year: the contract is marked.
    center(&[
        "violation",
        "record",
        "--collector",
        "钱",
        "--kind",
        "at_fault_dispute",
        "--at",
        "2025-11-20T10:00:00+08:00",
    ]);
    let q: Value = server
        .admin()
        .call::<(), Value>(
            "GET",
            "/v1/center/report?period=2025-11&company=乙公司",
            None,
        )
        .unwrap();
    let company = q.as_array().unwrap().last().unwrap();
    assert_eq!(company["violations"], 2);
    assert!(
        company["termination"]
            .as_str()
            .unwrap()
            .contains("number 2 of 乙公司"),
        "{company}"
    );
    // Revoked, with a reason: the fine and the mark go, the history stays.
    center(&[
        "violation",
        "revoke",
        first["id"].as_str().unwrap(),
        "--reason",
        "the shop withdrew the complaint",
    ]);
    let zhao = month("赵");
    assert_eq!(
        (
            zhao["violations"].as_u64(),
            zhao["deductions"]["violations"].as_f64()
        ),
        (Some(0), Some(0.0)),
        "{zhao}"
    );
    let q: Value = server
        .admin()
        .call::<(), Value>(
            "GET",
            "/v1/center/report?period=2025-11&company=乙公司",
            None,
        )
        .unwrap();
    assert!(
        q.as_array()
            .unwrap()
            .last()
            .unwrap()
            .get("termination")
            .is_none()
    );
    let all = center(&["violation", "list"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(
        all[0]["revoked"]["reason"],
        "the shop withdrew the complaint"
    );
    // A reviewer records; a collector cannot.
    let c = server.enrolled_device(&server.add_user("孔", "collector", &["330109001001001"]));
    let mut t = field_core::sync::http::HttpTransport::new(&server.url, Some(c.token())).unwrap();
    let refused = t.call::<Value, Value>(
        "POST",
        "/v1/center/violations",
        Some(&json!({"collector": "赵", "kind": "bribery"})),
    );
    assert!(
        matches!(
            refused,
            Err(field_core::sync::client::TransportError::Refused { status: 403, .. })
        ),
        "{refused:?}"
    );
}

#[test]
fn a_report_is_byte_identical_twice_and_a_collector_reads_their_own() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("冯", "collector", &["330109001001001"]));
    let other = server.enrolled_device(&server.add_user("陈", "collector", &["330109001001002"]));
    let photo = d.file("p.png", &png(77));
    d.report(
        ("BJ0101", "120.2605", "30.1895"),
        "x",
        &photo,
        Some("2025-11-26T09:00:00+08:00"),
    );
    d.ok(&["sync"]);
    let path = "/v1/center/report?period=2025-11&collector=冯&explain=true";
    let a = server.admin().get_bytes(path).unwrap();
    let b = server.admin().get_bytes(path).unwrap();
    assert_eq!(
        a, b,
        "the same records and configuration give the same bytes"
    );
    let r: Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(
        r[0]["config_version"], 0,
        "the built-in configuration: {}",
        r[0]["config_version"]
    );
    // Their own report, read-only; nobody else's.
    let mut mine =
        field_core::sync::http::HttpTransport::new(&server.url, Some(d.token())).unwrap();
    let own: Value = mine
        .call::<(), Value>("GET", "/v1/center/report?period=2025-11", None)
        .unwrap();
    assert_eq!(own[0]["who"], "冯");
    let theirs =
        mine.call::<(), Value>("GET", "/v1/center/report?period=2025-11&collector=陈", None);
    assert!(
        matches!(
            theirs,
            Err(field_core::sync::client::TransportError::Refused { status: 403, .. })
        ),
        "{theirs:?}"
    );
    let _ = other;
}

#[test]
fn the_center_reports_its_own_resolution_by_department() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("韩", "collector", &["330109001001001"]));
    let mut ids = Vec::new();
    for i in 0..3u32 {
        let photo = d.file(&format!("r{i}.png"), &png(950 + i));
        ids.push(d.report(("BJ0101", "120.2605", "30.1895"), "x", &photo, None));
    }
    d.ok(&["sync"]);
    // 城管局 gets no time; 水务局 the default (72 h).
    let set = json!({"key": "departments.城管局", "value": "0.0"}); // no time at all: any close is late
    let _: Value = server
        .admin()
        .call("POST", "/v1/center/config/set", Some(&set))
        .unwrap();
    for (id, dept) in [
        (&ids[0], "城管局"),
        (&ids[1], "水务局"),
        (&ids[2], "水务局"),
    ] {
        decide(&server, id, json!({"action": "register"}));
        decide(
            &server,
            id,
            json!({"action": "dispatch", "department": dept}),
        );
    }
    // Closing needs a check task answered yes: the two closed ones get one.
    for id in [&ids[0], &ids[1]] {
        decide(&server, id, json!({"action": "handled"}));
        let task: Value = server
            .admin()
            .call(
                "POST",
                "/v1/center/tasks",
                Some(&json!({"kind": "check", "case": id, "to": "韩", "due": "1h"})),
            )
            .unwrap();
        let photo = d.file("check.png", &png(990));
        d.ok(&["sync"]);
        d.ok(&[
            "task",
            "answer",
            task["id"].as_str().unwrap(),
            "--result",
            "yes",
            "--photo",
            photo.to_str().unwrap(),
        ]);
        d.ok(&["sync"]);
        decide(&server, id, json!({"action": "close"}));
    }
    let today = Utc::now()
        .with_timezone(&chrono_tz_shanghai())
        .format("%Y-%m")
        .to_string();
    let f: Value = server
        .admin()
        .call::<(), Value>(
            "GET",
            &format!("/v1/center/city-figures?period={today}"),
            None,
        )
        .unwrap();
    assert_eq!(rate(&f, "resolution"), (2, 3), "{f}");
    let dept = |k: &str| {
        f["by_department"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == k)
            .unwrap()
            .clone()
    };
    // 城管局 closed its case, but later than its (tiny) deadline; 水务局 closed one of two in time.
    assert_eq!(
        (
            rate(&dept("城管局"), "resolution"),
            rate(&dept("城管局"), "timely_resolution")
        ),
        ((1, 1), (0, 1))
    );
    assert_eq!(dept("城管局")["late"][0], ids[0].as_str());
    assert_eq!(
        (
            rate(&dept("水务局"), "resolution"),
            rate(&dept("水务局"), "timely_resolution")
        ),
        ((1, 2), (1, 1))
    );
    assert_eq!(rate(&f["by_category"][0], "resolution"), (2, 3));
}

#[test]
fn patrol_without_a_valid_certificate_and_a_training_shortfall_are_flagged() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("褚", "collector", &["330109001001001"]));
    let post =
        |path: &str, body: Value| -> Result<Value, field_core::sync::client::TransportError> {
            server.admin().call("POST", path, Some(&body))
        };
    // Certified on 2023-11-20 for 24 months: expired on 2025-11-20.
    post("/v1/center/certification/attempts", json!({"collector": "褚", "date": "2023-11-01", "theory": true, "video": false, "field": true})).unwrap();
    let c = post("/v1/center/certification/attempts", json!({"collector": "褚", "date": "2023-11-20", "theory": true, "video": true, "field": true})).unwrap();
    assert_eq!(
        (c["certified_on"].as_str(), c["valid_until"].as_str()),
        (Some("2023-11-20"), Some("2025-11-19")),
        "{c}"
    );
    // Patrols on the 18th (valid) and the 26th (expired).
    for day in ["18", "26"] {
        d.ok(&[
            "track",
            "add",
            "--lon",
            "120.2605",
            "--lat",
            "30.1895",
            "--at",
            &format!("2025-11-{day}T09:00:00+08:00"),
        ]);
    }
    d.ok(&["sync"]);
    // Two company sessions in November (the quota is 4).
    for day in ["03", "17"] {
        post(
            "/v1/center/trainings",
            json!({"date": format!("2025-11-{day}"), "topic": "井盖分类", "attendees": ["褚"]}),
        )
        .unwrap();
    }
    let month = report_of(&server, "褚", "2025-11");
    assert_eq!(month["uncertified_patrol_days"], 1, "{month}");
    assert_eq!(month["explain"], Value::Null);
    let flags: Vec<&str> = month["compliance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        flags,
        [
            "patrolled 1 day(s) without a valid certificate",
            "2025-11: 2 of 4 company training sessions"
        ]
    );
    // Two failed attempts end a candidacy.
    let _: Value = server
        .admin()
        .call(
            "POST",
            "/v1/center/users",
            Some(&json!({"name": "卫", "role": "collector", "cells": ["330109001001002"]})),
        )
        .unwrap();
    for day in ["2025-10-01", "2025-10-08"] {
        post(
            "/v1/center/certification/attempts",
            json!({"collector": "卫", "date": day, "theory": false, "video": true, "field": true}),
        )
        .unwrap();
    }
    let third = post(
        "/v1/center/certification/attempts",
        json!({"collector": "卫", "date": "2025-10-15", "theory": true, "video": true, "field": true}),
    );
    assert!(
        matches!(
            third,
            Err(field_core::sync::client::TransportError::Refused { status: 403, .. })
        ),
        "{third:?}"
    );
}

#[test]
fn explain_lists_the_records_behind_every_numerator_and_denominator() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("蒋", "collector", &["330109001001001"]));
    // A walk inside the red cell from 08:20 to 09:40: windows 08:15 and 09:15 covered.
    for m in (20..=100).step_by(2) {
        let at = format!("2025-11-26T{:02}:{:02}:00+08:00", 8 + m / 60, m % 60);
        d.ok(&[
            "track",
            "add",
            "--lon",
            "120.2605",
            "--lat",
            "30.1895",
            "--at",
            &at,
            "--accuracy",
            "5",
        ]);
    }
    let mut ids = Vec::new();
    for i in 0..3u32 {
        let photo = d.file(&format!("e{i}.png"), &png(970 + i));
        ids.push(d.report(
            ("BJ0101", "120.2605", "30.1895"),
            "x",
            &photo,
            Some(&format!("2025-11-26T09:0{i}:00+08:00")),
        ));
    }
    d.ok(&["sync"]);
    decide(&server, &ids[0], json!({"action": "register"}));
    decide(
        &server,
        &ids[1],
        json!({"action": "reject", "reason": "bad_photo"}),
    );
    let finding = |at: &str, cat: &str| json!({"source": "media", "category": cat, "lon": 120.2605, "lat": 30.1895, "at": at});
    let _: Value = server
        .admin()
        .call(
            "POST",
            "/v1/center/findings",
            Some(&finding("2025-11-26T10:00:00+08:00", "BJ0101")),
        )
        .unwrap();
    let _: Value = server
        .admin()
        .call(
            "POST",
            "/v1/center/findings",
            Some(&finding("2025-11-26T10:00:00+08:00", "SJ0201")),
        )
        .unwrap();
    let r: Value = server
        .admin()
        .call::<(), Value>(
            "GET",
            "/v1/center/report?period=2025-11-26&collector=蒋&explain=true",
            None,
        )
        .unwrap();
    let r = &r[0];
    let ex = &r["explain"];
    let len = |k: &str| ex[k].as_array().map(|a| a.len()).unwrap_or(0) as u64;
    let covered: u64 = ex["covered_windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["starts"].as_array().unwrap().len() as u64)
        .sum();
    assert_eq!(covered, rate(r, "coverage").0, "{ex}");
    assert_eq!(covered + len("uncovered_windows"), rate(r, "coverage").1);
    assert_eq!(
        ex["covered_windows"][0]["starts"],
        json!(["08:15", "09:15"])
    );
    assert_eq!(len("cases"), rate(r, "error_rate").1);
    assert_eq!(len("erroneous_cases"), rate(r, "error_rate").0);
    let registered = ex["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["registered"] == true)
        .count() as u64;
    assert_eq!(registered, rate(r, "valid_report_rate").0);
    assert_eq!((len("missed_findings"), len("matched_findings")), (1, 1));
    assert_eq!(rate(r, "miss_rate"), (1, 1 + registered));
    assert_eq!(
        len("on_time_tasks") + len("late_tasks"),
        rate(r, "timeliness").1
    );
}

#[test]
fn a_false_report_rejection_records_the_red_line_when_asked() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("沈", "collector", &["330109001001001"]));
    let photo = d.file("f.png", &png(42));
    let id = d.report(("BJ0101", "120.2605", "30.1895"), "staged", &photo, None);
    d.ok(&["sync"]);
    let wrong = server.admin().call::<Value, Value>(
        "POST",
        &format!("/v1/center/cases/{id}/decisions"),
        Some(&json!({"action": "reject", "reason": "duplicate", "record_violation": true})),
    );
    assert!(
        matches!(
            wrong,
            Err(field_core::sync::client::TransportError::Refused { status: 400, .. })
        ),
        "{wrong:?}"
    );
    decide(
        &server,
        &id,
        json!({"action": "reject", "reason": "false_report", "record_violation": true}),
    );
    let v: Value = server
        .admin()
        .call::<(), Value>("GET", "/v1/center/violations?collector=沈", None)
        .unwrap();
    assert_eq!(
        (v[0]["kind"].as_str(), v[0]["cases"][0].as_str()),
        (Some("false_information"), Some(id.as_str())),
        "{v}"
    );
}

#[test]
fn a_task_without_a_deadline_gets_the_citys_default_for_its_kind_and_cell() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("杨", "collector", &["330109001001001"]));
    let photo = d.file("t.png", &png(61));
    let id = d.report(("BJ0101", "120.2605", "30.1895"), "x", &photo, None);
    d.ok(&["sync"]);
    let minutes = |t: &Value| {
        let created =
            field_core::model::Timestamp::parse("c", t["spec"]["created_at"].as_str().unwrap())
                .unwrap();
        let due = field_core::model::Timestamp::parse("d", t["spec"]["due_at"].as_str().unwrap())
            .unwrap();
        (due.millis() - created.millis()) / 60_000
    };
    let verify: Value = server
        .admin()
        .call(
            "POST",
            "/v1/center/tasks",
            Some(&json!({"kind": "verify", "case": id, "to": "杨"})),
        )
        .unwrap();
    assert_eq!(minutes(&verify), 30, "{verify}");
    decide(&server, &id, json!({"action": "register"}));
    decide(
        &server,
        &id,
        json!({"action": "dispatch", "department": "水务局"}),
    );
    let check: Value = server
        .admin()
        .call(
            "POST",
            "/v1/center/tasks",
            Some(&json!({"kind": "check", "case": id, "to": "杨"})),
        )
        .unwrap();
    assert_eq!(minutes(&check), 60, "an urban cell");
    let set = json!({"key": "task_deadlines.rural_cells", "value": "[\"330109001001\"]"});
    let _: Value = server
        .admin()
        .call("POST", "/v1/center/config/set", Some(&set))
        .unwrap();
    let check: Value = server
        .admin()
        .call(
            "POST",
            "/v1/center/tasks",
            Some(&json!({"kind": "check", "case": id, "to": "杨"})),
        )
        .unwrap();
    assert_eq!(minutes(&check), 120, "a rural cell");
}

#[test]
fn one_subclass_is_one_code_and_a_false_report_reports_nothing() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("朱", "collector", &["330109001001001"]));
    let mut ids = Vec::new();
    // The same manhole cover in both code styles, and a staged poster.
    for (i, cat) in [(0u32, "BJ0101"), (1, "01001"), (2, "SJ0201")] {
        let photo = d.file(&format!("o{i}.png"), &png(300 + i));
        ids.push(d.report(
            (cat, "120.2605", "30.1895"),
            "x",
            &photo,
            Some(&format!("2025-11-26T09:0{i}:00+08:00")),
        ));
    }
    d.ok(&["sync"]);
    decide(&server, &ids[0], json!({"action": "register"}));
    decide(&server, &ids[1], json!({"action": "register"}));
    decide(
        &server,
        &ids[2],
        json!({"action": "reject", "reason": "false_report"}),
    );
    // A finding in the other style matches; one the false report "covered" is missed.
    for cat in ["01001", "SJ0201"] {
        let f = json!({"source": "citizen", "category": cat, "lon": 120.2605, "lat": 30.1895, "at": "2025-11-26T10:00:00+08:00"});
        let _: Value = server
            .admin()
            .call("POST", "/v1/center/findings", Some(&f))
            .unwrap();
    }
    let r = report_of(&server, "朱", "2025-11-26");
    assert_eq!(
        r["subclasses"], 1,
        "BJ0101 and 01001 are one subclass: {}",
        r["subclass_codes"]
    );
    assert_eq!(r["subclass_codes"], json!(["BJ0101"]));
    assert_eq!(
        rate(&r, "miss_rate"),
        (1, 3),
        "the poster finding is missed, the cover one matched: {r}"
    );
}
