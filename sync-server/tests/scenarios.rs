//! Hand-computed assessment scenarios as data files
//! (`tests/scenarios/pay/*.json`): collectors, a clock, a sequence of
//! inputs, and every figure expected of the reports, by JSON pointer. The
//! real server logic and storage run in process with the clock injected, so
//! "now" is exactly the scenario's.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use field_core::model::{CaseId, LonLat, Timestamp, TrackPoint};
use field_core::store::NewCase;
use serde::Deserialize;
use serde_json::Value;
use sync_server::service::{NewUserRequest, ReportQuery};
use sync_server::storage::Role;

mod support;
use support::{Handset, Harness, grid, png};

#[derive(Deserialize)]
struct Scenario {
    about: String,
    now: String,
    collectors: Vec<Collector>,
    events: Vec<Value>,
    expect: Vec<Expect>,
}

#[derive(Deserialize)]
struct Collector {
    name: String,
    #[serde(default)]
    company: Option<String>,
    cells: Vec<String>,
    #[serde(default)]
    from: Option<chrono::NaiveDate>,
}

#[derive(Deserialize)]
struct Expect {
    period: String,
    #[serde(default)]
    collector: Option<String>,
    #[serde(default)]
    company: Option<String>,
    /// Which report of the answer (a company's total is the last: -1).
    #[serde(default)]
    index: i64,
    /// The city's own figures (resolution by department and category)
    /// instead of a collector's or a company's report.
    #[serde(default)]
    city: bool,
    figures: BTreeMap<String, Value>,
}

struct Device {
    handset: Handset,
    cases: Vec<CaseId>,
    /// Tasks addressed to the collector, in the order they were set.
    tasks: Vec<uuid::Uuid>,
}

struct Run {
    /// The scenario's file and what it is about, for failures.
    about: String,
    h: Harness,
    devices: BTreeMap<String, Device>,
    seq: u32,
}

impl Run {
    fn new(s: &Scenario) -> Run {
        let now = Timestamp::parse("now", &s.now).unwrap().millis();
        let h = Harness::new(now, &grid(&["red", "yellow", "blue"]));
        let mut devices = BTreeMap::new();
        for c in &s.collectors {
            let handset = h.enrol(NewUserRequest {
                name: c.name.clone(),
                role: Role::Collector,
                company: c.company.clone(),
                cells: c.cells.clone(),
                from: c.from,
            });
            devices.insert(
                c.name.clone(),
                Device {
                    handset,
                    cases: Vec::new(),
                    tasks: Vec::new(),
                },
            );
        }
        Run {
            about: s.about.clone(),
            h,
            devices,
            seq: 0,
        }
    }

    fn push(&mut self, who: &str) {
        let d = self.devices.get_mut(who).unwrap();
        let resp = self.h.push(&mut d.handset);
        assert!(
            resp.push.iter().all(|r| r.code.is_none()),
            "{:?}",
            resp.push
        );
    }

    fn event(&mut self, e: &Value) {
        let (kind, body) = e
            .as_object()
            .and_then(|o| o.iter().next())
            .expect("one event per object");
        let text = |k: &str| {
            body[k]
                .as_str()
                .unwrap_or_else(|| panic!("{kind}.{k}"))
                .to_string()
        };
        match kind.as_str() {
            // {"report": {"collector", "at", "categories": [..], "count": N}}:
            // N reports a minute apart from `at`, categories in turn.
            "report" => {
                let who = text("collector");
                let start = Timestamp::parse("at", &text("at")).unwrap().millis();
                let cats: Vec<String> = body["categories"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect();
                for i in 0..body["count"].as_u64().unwrap_or(1) as usize {
                    self.seq += 1;
                    let new = NewCase {
                        category: cats[i % cats.len()].clone(),
                        pos: LonLat::new(120.2605, 30.1895).unwrap(),
                        description: format!("case {}", self.seq),
                        photos: vec![png(self.seq)],
                        at: Some(Timestamp::from_millis("at", start + i as i64 * 60_000).unwrap()),
                        quick_fix_after: None,
                        survey: None,
                    };
                    let d = self.devices.get_mut(&who).unwrap();
                    let id = d.handset.store.report_case(new).unwrap();
                    d.cases.push(id);
                }
                self.push(&who);
            }
            // {"decide": {"collector", "cases": [from, to), "action", "reason"?}}
            "decide" => {
                let who = text("collector");
                let range = body["cases"].as_array().unwrap();
                let (from, to) = (
                    range[0].as_u64().unwrap() as usize,
                    range[1].as_u64().unwrap() as usize,
                );
                // The rest of the object is the decision (action, reason,
                // department…).
                let mut req = body.clone();
                let fields = req.as_object_mut().unwrap();
                fields.remove("collector");
                fields.remove("cases");
                for id in self.devices[&who].cases[from..to].iter().copied() {
                    self.h
                        .center
                        .decide(
                            &self.h.admin,
                            id,
                            serde_json::from_value(req.clone()).unwrap(),
                        )
                        .unwrap();
                }
            }
            "finding" => {
                self.h
                    .center
                    .add_finding(&self.h.admin, serde_json::from_value(body.clone()).unwrap())
                    .unwrap();
            }
            // {"task": {"collector", "case": i, "kind": "verify"|"check", "due": "<RFC 3339>"}}:
            // the center sets a task on the collector's i-th case.
            "task" => {
                let who = text("collector");
                let case = self.devices[&who].cases[body["case"].as_u64().unwrap() as usize];
                let req = serde_json::json!({
                    "kind": body["kind"], "case": case, "to": who, "due": body["due"],
                });
                let row = self
                    .h
                    .center
                    .create_task(&self.h.admin, serde_json::from_value(req).unwrap())
                    .unwrap();
                self.devices.get_mut(&who).unwrap().tasks.push(row.task.id);
            }
            // {"answer": {"collector", "task": i, "at"?, "offline"?}}: the
            // handset syncs, answers its i-th task (yes, with a photo) at
            // `at` (default now) and, unless offline, syncs again.
            "answer" => {
                let who = text("collector");
                self.push(&who);
                self.seq += 1;
                let now = match body.get("at") {
                    Some(_) => Timestamp::parse("at", &text("at")).unwrap().millis(),
                    None => self.h.now.load(Ordering::SeqCst),
                };
                let d = self.devices.get_mut(&who).unwrap();
                let task = d.tasks[body["task"].as_u64().unwrap() as usize];
                d.handset
                    .store
                    .answer_task(
                        task,
                        field_core::model::TaskResult::Yes,
                        vec![png(self.seq)],
                        None,
                        Some(Timestamp::from_millis("at", now).unwrap()),
                    )
                    .unwrap();
                if body.get("offline") != Some(&Value::Bool(true)) {
                    self.push(&who);
                }
            }
            // {"sync": "<collector>"}: the handset syncs, now.
            "sync" => self.push(body.as_str().unwrap()),
            // {"expect": {..}}: figures as they stand at this point.
            "expect" => self.check(&serde_json::from_value(body.clone()).unwrap()),
            // {"walk": {"collector", "at": "<RFC 3339>", "minutes": N}}: a
            // track in the red cell, a point every 30 s.
            "walk" => {
                let who = text("collector");
                let start = Timestamp::parse("at", &text("at")).unwrap().millis();
                let points: Vec<TrackPoint> = (0..body["minutes"].as_i64().unwrap() * 2)
                    .map(|i| TrackPoint {
                        at: Timestamp::from_millis("at", start + i * 30_000).unwrap(),
                        pos: LonLat::new(120.2605 + (i % 20) as f64 * 1e-5, 30.1895).unwrap(),
                        accuracy_m: Some(5.0),
                        speed_mps: Some(1.0),
                    })
                    .collect();
                let d = self.devices.get_mut(&who).unwrap();
                d.handset.store.append_track_points(&points).unwrap();
                self.push(&who);
            }
            "attempt" => {
                self.h
                    .center
                    .record_attempt(&self.h.admin, serde_json::from_value(body.clone()).unwrap())
                    .unwrap();
            }
            "violation" => {
                self.h
                    .center
                    .record_violation(&self.h.admin, serde_json::from_value(body.clone()).unwrap())
                    .unwrap();
            }
            // {"assign": {"collector", "cells": [..], "from": "YYYY-MM-DD"}}; no cells ends it.
            "assign" => {
                self.h
                    .center
                    .assign(&self.h.admin, serde_json::from_value(body.clone()).unwrap())
                    .unwrap();
            }
            "config" => {
                self.h
                    .center
                    .set_config(&self.h.admin, &text("key"), &text("value"))
                    .unwrap();
            }
            "nightly" => {
                self.h
                    .center
                    .nightly(Some(body.as_str().unwrap().parse().unwrap()))
                    .unwrap();
            }
            // {"clock": "<RFC 3339>"}: time moves on.
            "clock" => {
                self.h.now.store(
                    Timestamp::parse("clock", body.as_str().unwrap())
                        .unwrap()
                        .millis(),
                    Ordering::SeqCst,
                );
            }
            other => panic!("unknown event `{other}`"),
        }
    }
}

#[test]
fn every_scenario_gives_every_figure_expected() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/scenarios/pay");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let s: Scenario = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut run = Run::new(&s);
        run.about = format!("{} ({})", file.display(), s.about);
        for e in &s.events {
            run.event(e);
        }
        for x in &s.expect {
            run.check(x);
        }
    }
}

impl Run {
    /// Asserts every figure of one expectation against the reports now.
    fn check(&self, x: &Expect) {
        let q = ReportQuery {
            period: x.period.clone(),
            collector: x.collector.clone(),
            company: x.company.clone(),
            explain: false,
            daily: false,
        };
        let reports = if x.city {
            serde_json::to_value([self
                .h
                .center
                .city_figures(&self.h.admin, &x.period)
                .unwrap()])
            .unwrap()
        } else {
            serde_json::to_value(self.h.center.report(&self.h.admin, q).unwrap()).unwrap()
        };
        let list = reports.as_array().unwrap();
        let i = if x.index < 0 {
            list.len() as i64 + x.index
        } else {
            x.index
        } as usize;
        for (pointer, want) in &x.figures {
            let got = list[i].pointer(pointer).cloned().unwrap_or(Value::Null);
            assert_eq!(&got, want, "{}: {} {pointer}", self.about, x.period);
        }
    }
}
