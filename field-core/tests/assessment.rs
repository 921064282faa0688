//! Hand-computed assessment scenarios (`tests/scenarios/assess-day.json`):
//! every window, stretch and fault is asserted exactly.

use std::collections::BTreeMap;

use field_core::assess::rules::EmergencyPeriod;
use field_core::assess::{AssessmentRules, attendance, coverage, off_post};
use field_core::geo::CellIndex;
use field_core::import::parse_grid;
use field_core::model::{CellCodePattern, LonLat, ShiftKind, ShiftMark, Timestamp, TrackPoint};
use serde_json::Value;

fn scenario() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/scenarios/assess-day.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn points(v: &Value) -> Vec<TrackPoint> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let pos =
                LonLat::new(p["pos"][0].as_f64().unwrap(), p["pos"][1].as_f64().unwrap()).unwrap();
            TrackPoint::new(
                Timestamp::parse("at", p["at"].as_str().unwrap()).unwrap(),
                pos,
                p["accuracy_m"].as_f64(),
                None,
            )
            .unwrap()
        })
        .collect()
}

fn cells(s: &Value) -> Vec<field_core::model::Cell> {
    parse_grid(&s["cells"].to_string(), &CellCodePattern::default()).unwrap()
}

#[test]
fn coverage_counts_points_crossings_and_not_gaps_or_inaccurate_fixes() {
    let s = scenario();
    let rules = AssessmentRules::default();
    let day = rules
        .patrol_day(s["date"].as_str().unwrap().parse().unwrap())
        .unwrap();
    let windows = coverage(&cells(&s), &day, &points(&s["coverage"]["points"]), &rules);
    assert_eq!(
        windows.len() as u64,
        s["coverage"]["expected_required"].as_u64().unwrap()
    );
    let mut covered: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut index: BTreeMap<String, u64> = BTreeMap::new();
    for w in &windows {
        let i = index.entry(w.cell.clone()).or_default();
        if w.covered {
            covered.entry(w.cell.clone()).or_default().push(*i);
        }
        *i += 1;
    }
    let expected: BTreeMap<String, Vec<u64>> =
        serde_json::from_value(s["coverage"]["expected_covered"].clone()).unwrap();
    assert_eq!(covered, expected);
    let rate = windows.iter().filter(|w| w.covered).count() as f64 / windows.len() as f64;
    assert_eq!(rate, 8.0 / 24.0);
    // The last windows are shorter: 20:15 - 19:15.
    let last = windows.iter().rfind(|w| w.cell.ends_with('3')).unwrap();
    assert_eq!(last.end_ms - last.start_ms, 60 * 60_000);
}

#[test]
fn an_emergency_period_brings_its_own_hours_and_intervals() {
    let s = scenario();
    let e = &s["emergency"];
    let period: EmergencyPeriod = serde_json::from_value(e["period"].clone()).unwrap();
    let rules = AssessmentRules {
        emergencies: vec![period],
        ..AssessmentRules::default()
    };
    let day = rules
        .patrol_day(e["date"].as_str().unwrap().parse().unwrap())
        .unwrap();
    assert_eq!(day.emergency.as_deref(), Some("snowstorm"));
    let red: Vec<_> = cells(&s)
        .into_iter()
        .filter(|c| c.code.as_str().ends_with('1'))
        .collect();
    let windows = coverage(&red, &day, &points(&e["points"]), &rules);
    assert_eq!(
        windows.len() as u64,
        e["expected_red_windows"].as_u64().unwrap()
    );
    let covered: Vec<u64> = windows
        .iter()
        .enumerate()
        .filter(|(_, w)| w.covered)
        .map(|(i, _)| i as u64)
        .collect();
    assert_eq!(
        covered,
        serde_json::from_value::<Vec<u64>>(e["expected_red_covered"].clone()).unwrap()
    );
    assert_eq!(
        windows.last().map(|w| w.end_ms - w.start_ms),
        Some(15 * 60_000)
    );
}

#[test]
fn off_post_is_thirty_minutes_without_a_usable_point_inside() {
    let s = scenario();
    let rules = AssessmentRules::default();
    let day = rules
        .patrol_day(s["date"].as_str().unwrap().parse().unwrap())
        .unwrap();
    let index = CellIndex::new(cells(&s));
    let stretches = off_post(&index, &day, &points(&s["off_post"]["points"]), &rules);
    let expected = s["off_post"]["expected"].as_array().unwrap();
    assert_eq!(stretches.len(), expected.len(), "{stretches:?}");
    for (got, want) in stretches.iter().zip(expected) {
        assert_eq!(
            got.start_ms,
            Timestamp::parse("start", want["start"].as_str().unwrap())
                .unwrap()
                .millis()
        );
        assert_eq!(
            got.end_ms,
            Timestamp::parse("end", want["end"].as_str().unwrap())
                .unwrap()
                .millis()
        );
        assert_eq!(got.minutes, want["minutes"].as_i64().unwrap());
        assert_eq!(
            got.points_outside as u64,
            want["points_outside"].as_u64().unwrap()
        );
        assert!(got.where_.is_some());
    }
}

#[test]
fn attendance_faults_follow_the_test_cases() {
    let s = scenario();
    let rules = AssessmentRules::default();
    let day = rules
        .patrol_day(s["date"].as_str().unwrap().parse().unwrap())
        .unwrap();
    for case in s["attendance"].as_array().unwrap() {
        let marks: Vec<ShiftMark> = case["marks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| ShiftMark {
                id: uuid::Uuid::new_v4(),
                kind: if m["kind"] == "start" {
                    ShiftKind::Start
                } else {
                    ShiftKind::End
                },
                at: Timestamp::parse("at", m["at"].as_str().unwrap()).unwrap(),
                pos: None,
                cell: None,
            })
            .collect();
        let faults = serde_json::to_value(attendance(&day, &marks, &rules)).unwrap();
        let got: Vec<Value> = faults
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let mut f = f.clone();
                let o = f.as_object_mut().unwrap();
                o.remove("start_ms");
                o.remove("end_ms");
                f
            })
            .collect();
        assert_eq!(
            Value::Array(got),
            case["expected"],
            "marks {}",
            case["marks"]
        );
    }
}
