//! Hand-computed assessment scenarios as data files
//! (`tests/scenarios/pay/*.json`): collectors, a clock, a sequence of
//! inputs, and every figure expected of the reports, by JSON pointer. The
//! real server logic and storage run in process with the clock injected, so
//! "now" is exactly the scenario's.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use field_core::model::{CaseId, LonLat, Timestamp};
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
    figures: BTreeMap<String, Value>,
}

struct Device {
    handset: Handset,
    cases: Vec<CaseId>,
}

struct Run {
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
                },
            );
        }
        Run { h, devices, seq: 0 }
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
                let mut req = serde_json::json!({ "action": body["action"] });
                if let Some(r) = body.get("reason") {
                    req["reason"] = r.clone();
                }
                for id in self.devices[&who].cases[from..to].to_vec() {
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
        for e in &s.events {
            run.event(e);
        }
        for x in &s.expect {
            let q = ReportQuery {
                period: x.period.clone(),
                collector: x.collector.clone(),
                company: x.company.clone(),
                explain: false,
                daily: false,
            };
            let reports =
                serde_json::to_value(run.h.center.report(&run.h.admin, q).unwrap()).unwrap();
            let list = reports.as_array().unwrap();
            let i = if x.index < 0 {
                list.len() as i64 + x.index
            } else {
                x.index
            } as usize;
            for (pointer, want) in &x.figures {
                let got = list[i].pointer(pointer).cloned().unwrap_or(Value::Null);
                assert_eq!(
                    &got,
                    want,
                    "{} ({}): {} {pointer}",
                    file.display(),
                    s.about,
                    x.period
                );
            }
        }
    }
}
