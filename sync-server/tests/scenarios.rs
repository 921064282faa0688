//! Hand-computed assessment scenarios as data files
//! (`tests/scenarios/pay/*.json`): collectors, a clock, a sequence of
//! inputs, and every figure expected of the reports, by JSON pointer. The
//! real server logic and storage run in process with the clock injected, so
//! "now" is exactly the scenario's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use field_core::crdt::ManualClock;
use field_core::model::{CaseId, LonLat, Timestamp};
use field_core::store::{NewCase, Store};
use field_core::sync::protocol::{PROTOCOL_VERSION, PullRequest, SyncRequest};
use serde::Deserialize;
use serde_json::Value;
use sync_server::config::Limits;
use sync_server::service::{Center, NewUserRequest, ReportQuery, tokens};
use sync_server::storage::{Principal, Role, sqlite::SqliteStorage};

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

fn grid() -> String {
    let features: Vec<Value> = (0..3)
        .map(|c| {
            let x0 = 120.26 + c as f64 * 0.001;
            let zone = ["red", "yellow", "blue"][c];
            serde_json::json!({
                "type": "Feature",
                "properties": { "code": format!("33010900100100{}", c + 1), "zone": zone },
                "geometry": { "type": "Polygon", "coordinates": [[[x0, 30.19], [x0 + 0.001, 30.19], [x0 + 0.001, 30.189], [x0, 30.189], [x0, 30.19]]] }
            })
        })
        .collect();
    serde_json::json!({ "type": "FeatureCollection", "features": features }).to_string()
}

fn png(seed: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 4, 4);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[seed as u8; 16]).unwrap();
    }
    out.extend_from_slice(&seed.to_le_bytes());
    out
}

struct Device {
    store: Store,
    principal: Principal,
    cases: Vec<CaseId>,
}

struct Run {
    _dir: tempfile::TempDir,
    center: Center,
    now: Arc<AtomicI64>,
    admin: Principal,
    devices: BTreeMap<String, Device>,
    seq: u32,
}

impl Run {
    fn new(s: &Scenario) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(
            Timestamp::parse("now", &s.now).unwrap().millis(),
        ));
        let n = now.clone();
        let storage = SqliteStorage::open_with_clock(
            &dir.path().join("server"),
            Box::new(ManualClock::at(now.load(Ordering::SeqCst) as u64)),
        )
        .unwrap();
        let center = Center::new(
            Arc::new(storage),
            Limits::default(),
            Arc::new(move || n.load(Ordering::SeqCst)),
        );
        let storage = center.storage().clone();
        let admin_user = storage
            .create_user("admin", Role::Admin, None, &[])
            .unwrap();
        let token = tokens::new_token();
        storage
            .add_user_token(&tokens::hash(&token), &admin_user.id)
            .unwrap();
        let admin = center.authenticate(Some(&token)).unwrap();
        center.import_grid(&admin, &grid()).unwrap();
        let mut devices = BTreeMap::new();
        for c in &s.collectors {
            let req = NewUserRequest {
                name: c.name.clone(),
                role: Role::Collector,
                company: c.company.clone(),
                cells: c.cells.clone(),
                from: c.from,
            };
            let code = center.add_user(&admin, req).unwrap().enrolment_code;
            let actor = uuid::Uuid::new_v4();
            let mut store = Store::init_with(
                &dir.path().join(format!("{}.db", devices.len())),
                &c.name,
                actor,
                Box::new(ManualClock::at(now.load(Ordering::SeqCst) as u64)),
            )
            .unwrap();
            let enrolled = center
                .enroll(field_core::sync::protocol::EnrollRequest {
                    code,
                    actor,
                    device_name: None,
                })
                .unwrap();
            store
                .set_sync_settings(&field_core::store::SyncSettings {
                    server: "in process".into(),
                    token: enrolled.token.clone(),
                    user: enrolled.user,
                })
                .unwrap();
            let principal = center.authenticate(Some(&enrolled.token)).unwrap();
            devices.insert(
                c.name.clone(),
                Device {
                    store,
                    principal,
                    cases: Vec::new(),
                },
            );
        }
        Run {
            _dir: dir,
            center,
            now,
            admin,
            devices,
            seq: 0,
        }
    }

    fn push(&mut self, who: &str) {
        let d = self.devices.get_mut(who).unwrap();
        let (push, through) = d.store.outbox(500, 4 << 20).unwrap();
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            push,
            pull: PullRequest {
                cursor: d.store.pull_cursor().unwrap(),
                ..Default::default()
            },
            device_time_ms: None,
        };
        let resp = self.center.sync(&d.principal, req).unwrap();
        assert!(
            resp.push.iter().all(|r| r.code.is_none()),
            "{:?}",
            resp.push
        );
        d.store.record_push(through, &resp.push).unwrap();
        d.store.apply_pull(resp.pull).unwrap();
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
                    let id = d.store.report_case(new).unwrap();
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
                    self.center
                        .decide(
                            &self.admin,
                            id,
                            serde_json::from_value(req.clone()).unwrap(),
                        )
                        .unwrap();
                }
            }
            "finding" => {
                self.center
                    .add_finding(&self.admin, serde_json::from_value(body.clone()).unwrap())
                    .unwrap();
            }
            "violation" => {
                self.center
                    .record_violation(&self.admin, serde_json::from_value(body.clone()).unwrap())
                    .unwrap();
            }
            // {"assign": {"collector", "cells": [..], "from": "YYYY-MM-DD"}}; no cells ends it.
            "assign" => {
                self.center
                    .assign(&self.admin, serde_json::from_value(body.clone()).unwrap())
                    .unwrap();
            }
            "config" => {
                self.center
                    .set_config(&self.admin, &text("key"), &text("value"))
                    .unwrap();
            }
            "nightly" => {
                self.center
                    .nightly(Some(body.as_str().unwrap().parse().unwrap()))
                    .unwrap();
            }
            // {"clock": "<RFC 3339>"}: time moves on.
            "clock" => {
                self.now.store(
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
            let reports = serde_json::to_value(run.center.report(&run.admin, q).unwrap()).unwrap();
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
