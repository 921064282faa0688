//! "Rolled-up equals live": whatever sequence of inputs arrives around the
//! nightly roll-ups — reports, decisions, task creation and answers,
//! findings, configuration versions, assignments, violations — a month
//! report read from the rollups equals the same report computed live. The
//! real server logic and storage, in process, with the clock injected.

use std::sync::atomic::Ordering;

use chrono::NaiveDate;
use field_core::model::{LonLat, Timestamp, TrackPoint};
use field_core::store::NewCase;
use proptest::prelude::*;
use sync_server::service::{
    DecisionRequest, NewFinding, NewTaskRequest, NewUserRequest, NewViolation, RedLine, ReportQuery,
};
use sync_server::storage::Role;

mod support;
use support::{Handset, Harness, grid, png};

const NOV_1: i64 = 1_761_926_400_000; // 2025-11-01T00:00:00+08:00
const DAY: i64 = 24 * 3_600_000;

#[derive(Clone, Debug)]
enum Event {
    Report { day: u8, minute: u16, category: u8 },
    Decide { case: u8, action: u8 },
    Finding { day: u8, minute: u16 },
    Task { case: u8, answer: bool },
    Config { unit: u16 },
    Assign { day: u8, second_cell: bool },
    Violation { day: u8 },
    Walk { day: u8, minute: u16 },
    Attempt { day: u8, pass: bool },
    Nightly { day: u8 },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0u8..30, 0u16..780, 0u8..3).prop_map(|(day, minute, category)| Event::Report { day, minute, category }),
        4 => (any::<u8>(), 0u8..3).prop_map(|(case, action)| Event::Decide { case, action }),
        2 => (0u8..30, 0u16..780).prop_map(|(day, minute)| Event::Finding { day, minute }),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(case, answer)| Event::Task { case, answer }),
        1 => (1u16..500).prop_map(|unit| Event::Config { unit }),
        1 => (0u8..30, any::<bool>()).prop_map(|(day, second_cell)| Event::Assign { day, second_cell }),
        1 => (0u8..30).prop_map(|day| Event::Violation { day }),
        2 => (0u8..30, 0u16..760).prop_map(|(day, minute)| Event::Walk { day, minute }),
        1 => (0u8..30, any::<bool>()).prop_map(|(day, pass)| Event::Attempt { day, pass }),
        4 => (0u8..30).prop_map(|day| Event::Nightly { day }),
    ]
}

struct World {
    h: Harness,
    handset: Handset,
    cases: Vec<field_core::model::CaseId>,
    seq: u32,
}

impl World {
    fn new() -> World {
        // December: the month is over.
        let h = Harness::new(NOV_1 + 40 * DAY, &grid(&["red", "blue"]));
        let handset = h.enrol(NewUserRequest {
            name: "陆".into(),
            role: Role::Collector,
            company: Some("丙公司".into()),
            cells: vec!["330109001001001".into()],
            from: NaiveDate::from_ymd_opt(2025, 11, 1),
        });
        World {
            h,
            handset,
            cases: Vec::new(),
            seq: 0,
        }
    }

    fn push(&mut self) {
        self.h.push(&mut self.handset);
    }

    fn at(day: u8, minute: u16) -> Timestamp {
        // From 07:15 local, `minute` minutes on.
        Timestamp::from_millis(
            "at",
            NOV_1 + day as i64 * DAY + (7 * 60 + 15 + minute as i64) * 60_000,
        )
        .unwrap()
    }

    fn run(&mut self, e: Event) {
        let c = &self.h.center;
        match e {
            Event::Report {
                day,
                minute,
                category,
            } => {
                self.seq += 1;
                let new = NewCase {
                    category: ["BJ0101", "SJ0201", "06010"][category as usize].into(),
                    pos: LonLat::new(120.2605, 30.1895).unwrap(),
                    description: format!("case {}", self.seq),
                    photos: vec![png(self.seq)],
                    at: Some(World::at(day, minute)),
                    quick_fix_after: None,
                    survey: None,
                };
                let id = self.handset.store.report_case(new).unwrap();
                self.cases.push(id);
                self.push();
            }
            Event::Decide { case, action } if !self.cases.is_empty() => {
                let id = self.cases[case as usize % self.cases.len()];
                let req: DecisionRequest = serde_json::from_value(match action {
                    0 => serde_json::json!({ "action": "register" }),
                    1 => serde_json::json!({ "action": "reject", "reason": "wrong_category" }),
                    _ => serde_json::json!({ "action": "reject", "reason": "out_of_scope" }),
                })
                .unwrap();
                let _ = c.decide(&self.h.admin, id, req); // the lifecycle may refuse
            }
            Event::Finding { day, minute } => {
                let f = NewFinding {
                    source: field_core::model::CaseSource::Citizen,
                    category: "BJ0101".into(),
                    lon: 120.2605,
                    lat: 30.1895,
                    at: World::at(day, minute).to_string(),
                    note: None,
                };
                c.add_finding(&self.h.admin, f).unwrap();
            }
            Event::Task { case, answer } if !self.cases.is_empty() => {
                let id = self.cases[case as usize % self.cases.len()].to_string();
                let req: NewTaskRequest = serde_json::from_value(serde_json::json!({
                    "kind": "verify", "case": id, "to": "陆", "due": "30m"
                }))
                .unwrap();
                let task = c.create_task(&self.h.admin, req).unwrap();
                if answer {
                    self.push(); // the task reaches the device
                    self.seq += 1;
                    let _ = self.handset.store.answer_task(
                        task.task.id,
                        field_core::model::TaskResult::Yes,
                        vec![png(self.seq)],
                        None,
                        None,
                    );
                    self.push();
                }
            }
            Event::Config { unit } => {
                c.set_config(
                    &self.h.admin,
                    "deductions.per_uncovered_window",
                    &unit.to_string(),
                )
                .unwrap();
            }
            Event::Assign { day, second_cell } => {
                let cells = if second_cell {
                    vec!["330109001001002".to_string()]
                } else {
                    vec!["330109001001001".to_string()]
                };
                let req = serde_json::from_value(serde_json::json!({
                    "collector": "陆", "cells": cells, "from": NaiveDate::from_ymd_opt(2025, 11, 1 + day as u32).unwrap()
                }))
                .unwrap();
                c.assign(&self.h.admin, req).unwrap();
            }
            Event::Violation { day } => {
                c.record_violation(
                    &self.h.admin,
                    NewViolation {
                        collector: "陆".into(),
                        kind: RedLine::AtFaultDispute,
                        at: Some(World::at(day, 60).to_string()),
                        cases: vec![],
                        photos: vec![],
                        note: None,
                    },
                )
                .unwrap();
            }
            // Ten minutes of patrol in the first cell, a point every 30 s.
            Event::Walk { day, minute } => {
                let start = World::at(day, minute).millis();
                let points: Vec<TrackPoint> = (0..20)
                    .map(|i| TrackPoint {
                        at: Timestamp::from_millis("at", start + i * 30_000).unwrap(),
                        pos: LonLat::new(120.2605 + (i % 5) as f64 * 1e-5, 30.1895).unwrap(),
                        accuracy_m: Some(5.0),
                        speed_mps: Some(1.0),
                    })
                    .collect();
                self.handset.store.append_track_points(&points).unwrap();
                self.push();
            }
            // A certification attempt: passed, a permit from that day on.
            Event::Attempt { day, pass } => {
                let req = serde_json::from_value(serde_json::json!({
                    "collector": "陆",
                    "date": NaiveDate::from_ymd_opt(2025, 11, 1 + day as u32).unwrap(),
                    "theory": true, "video": pass, "field": true,
                }))
                .unwrap();
                // A third attempt after two failures is refused: that is right.
                let _ = c.record_attempt(&self.h.admin, req);
            }
            Event::Nightly { day } => {
                c.nightly(NaiveDate::from_ymd_opt(2025, 11, 1 + day as u32))
                    .unwrap();
            }
            Event::Decide { .. } | Event::Task { .. } => {}
        }
        // Time passes a little between inputs (receipt times differ).
        self.h.now.fetch_add(1_000, Ordering::SeqCst);
    }

    fn month(&self, company: bool) -> String {
        let q = ReportQuery {
            period: "2025-11".into(),
            collector: (!company).then(|| "陆".into()),
            company: company.then(|| "丙公司".into()),
            explain: true,
            daily: true,
        };
        let mut reports = self.h.center.report(&self.h.admin, q).unwrap();
        for r in &mut reports {
            r.days_from_rollups = 0;
        }
        serde_json::to_string(&reports).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_month_read_from_rollups_equals_the_month_computed_live(events in prop::collection::vec(event(), 1..40)) {
        let mut w = World::new();
        for e in events {
            w.run(e);
        }
        // Every day that has a rollup and is not stale is read from it.
        let rolled = (w.month(false), w.month(true));
        let days: Vec<NaiveDate> = (1..=30).filter_map(|d| NaiveDate::from_ymd_opt(2025, 11, d)).collect();
        w.h.center.storage().mark_dirty(&days).unwrap();
        let live = (w.month(false), w.month(true));
        prop_assert_eq!(rolled.0, live.0, "collector");
        prop_assert_eq!(rolled.1, live.1, "company");
    }
}

#[test]
fn one_instance_runs_the_nightly_roll_up_at_a_time() {
    let now = field_core::model::Timestamp::parse("now", "2025-11-27T03:00:00+08:00")
        .unwrap()
        .millis();
    let h = Harness::new(now, &grid(&["red"]));
    // Another instance holds the lease: this one does nothing.
    assert!(
        h.center
            .storage()
            .take_lease("nightly", "instance-b", now, now + 60_000)
            .unwrap()
    );
    let skipped = h.center.nightly(None).unwrap();
    assert!(
        skipped.skipped.is_some() && skipped.days.is_empty(),
        "{skipped:?}"
    );
    // Its lease lapses (a killed run): the next night is not blocked.
    h.now
        .store(now + 120_000, std::sync::atomic::Ordering::SeqCst);
    let ran = h.center.nightly(None).unwrap();
    assert_eq!(ran.skipped, None);
    assert_eq!(ran.days.len(), 1, "{ran:?}");
    // And released after the run: the next one may start at once.
    assert!(h.center.nightly(None).unwrap().skipped.is_none());
}
