//! Assessment a contractor can be paid on (issue 11): fair periods, figures
//! never stale after review, deductions by the rule's own grain.

use chrono::{Datelike, Utc};
use field_e2e::server::Server;
use field_e2e::{Device, grid_geojson, png};
use serde_json::{Value, json};

fn rate(r: &Value, k: &str) -> (u64, u64) {
    (r[k]["n"].as_u64().unwrap(), r[k]["d"].as_u64().unwrap())
}

fn report_of(server: &Server, collector: &str, period: &str) -> Value {
    let path = format!("/v1/center/report?period={period}&collector={}", collector);
    let r: Value = server.admin().call::<(), Value>("GET", &path, None).unwrap();
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
    let _: Value = server.admin().call("POST", "/v1/center/users", Some(&body)).unwrap();
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
    assert_eq!((before["days_assigned"].as_u64(), rate(&before, "coverage"), before["absent_halves"].as_u64()), (Some(0), (0, 0), Some(0)), "{before}");
}
