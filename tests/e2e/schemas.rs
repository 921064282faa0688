//! Every message of the protocol and every file format, as real code writes
//! them, validates against its JSON Schema in `schemas/`; broken ones do not.

use field_core::crdt::Op;
use field_core::sync::http::HttpTransport;
use field_core::sync::protocol::{
    EnrollRequest, PROTOCOL_VERSION, PhotosNeededRequest, PullRequest, SyncRequest,
};
use field_e2e::schemas::Schemas;
use field_e2e::server::Server;
use field_e2e::{Device, grid_geojson, png};
use serde_json::{Value, json};

#[test]
fn real_messages_and_files_match_their_schemas() {
    let schemas = Schemas::load();
    let catalog: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schemas/catalog/default.json"
        ))
        .unwrap(),
    )
    .unwrap();
    schemas.assert_valid("catalog", &catalog);
    let grid: Value = serde_json::from_str(&grid_geojson(false)).unwrap();
    schemas.assert_valid("grid", &grid);

    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let code = server.add_user("周", "collector", &["330109001001001", "330109001001002"]);

    // Enrolment, by hand to see both messages (so the device is set up
    // under its user's name: the server takes reports only under it).
    let d = Device::init("周");
    let actor: uuid::Uuid = d.actor().parse().unwrap();
    let enroll = EnrollRequest {
        code,
        actor,
        device_name: Some("handset 1".into()),
    };
    schemas.assert_valid("enroll-request", &serde_json::to_value(&enroll).unwrap());
    let resp: Value = HttpTransport::new(&server.url, None)
        .unwrap()
        .call("POST", "/v1/enroll", Some(&enroll))
        .unwrap();
    schemas.assert_valid("enroll-response", &resp);
    let token = resp["token"].as_str().unwrap().to_string();

    // A device's data, then the sync request it makes and the answer.
    let p = d.file("p.png", &png(5));
    d.ok(&[
        "case",
        "report",
        "--category",
        "BJ0101",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
        "--desc",
        "cover",
        "--photo",
        p.to_str().unwrap(),
        "--quick-fix",
        "--after-photo",
        p.to_str().unwrap(),
    ]);
    d.ok(&[
        "track",
        "add",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
        "--at",
        "2025-11-26T08:00:00+08:00",
        "--accuracy",
        "4",
    ]);
    d.ok(&[
        "shift",
        "start",
        "--at",
        "2025-11-26T07:10:00+08:00",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
    ]);
    let bundle_path = d.home().join("b.json");
    d.ok(&["changes", "export", "--out", bundle_path.to_str().unwrap()]);
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle_path).unwrap()).unwrap();
    schemas.assert_valid("change-bundle", &bundle);
    let changes: Vec<field_core::crdt::Change> =
        serde_json::from_value(bundle["changes"].clone()).unwrap();
    assert!(
        changes.iter().any(|c| matches!(c.op, Op::TrackAppend(_)))
            && changes.iter().any(|c| matches!(c.op, Op::ShiftMark(_)))
    );

    let mut t = HttpTransport::new(&server.url, Some(token)).unwrap();
    let req = SyncRequest {
        device_time_ms: None,
        protocol: PROTOCOL_VERSION,
        push: changes,
        pull: PullRequest::default(),
    };
    schemas.assert_valid("sync-request", &serde_json::to_value(&req).unwrap());
    let resp: Value = t.call("POST", "/v1/sync", Some(&req)).unwrap();
    schemas.assert_valid("sync-response", &resp);
    assert!(
        resp["push"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "accepted"),
        "{resp}"
    );
    assert!(
        resp["pull"]["grid"].is_object(),
        "the first pull carries the grid"
    );

    let hash = field_core::model::PhotoHash::of(&png(5));
    let needed_req = PhotosNeededRequest {
        lost: Vec::new(),
        hashes: vec![hash.clone()],
    };
    schemas.assert_valid(
        "photos-needed-request",
        &serde_json::to_value(&needed_req).unwrap(),
    );
    let needed: Value = t
        .call("POST", "/v1/photos/needed", Some(&needed_req))
        .unwrap();
    schemas.assert_valid("photos-needed-response", &needed);
    let bytes = png(5);
    let ack: Value = t
        .call_raw(
            "PUT",
            &format!("/v1/photos/{hash}?offset=0&total={}", bytes.len()),
            "application/octet-stream",
            bytes,
        )
        .unwrap();
    schemas.assert_valid("chunk-ack", &ack);
    assert_eq!(ack["complete"], true);

    // Decisions and tasks travel as changes too: a bundle holding them validates.
    let case_id = bundle["changes"][0]["op"]["case"]
        .as_str()
        .unwrap()
        .to_string();
    let mut admin = server.admin();
    let _: Value = admin
        .call(
            "POST",
            &format!("/v1/center/cases/{case_id}/decisions"),
            Some(&json!({ "action": "close", "note": "approved quick fix" })),
        )
        .unwrap();
    let _: Value = admin.call("POST", "/v1/center/tasks", Some(&json!({ "kind": "verify", "lon": 120.2606, "lat": 30.1894, "category": "SJ0201", "to": "周", "due": "1h" }))).unwrap();
    let d2 = server.enrolled_device(&server.new_code("周")); // 周's second handset
    d2.ok(&["sync"]);
    let task = d2.ok(&["task", "list", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p2 = d2.file("answer.png", &png(6));
    d2.ok(&[
        "task",
        "answer",
        &task,
        "--result",
        "no",
        "--photo",
        p2.to_str().unwrap(),
    ]);
    let later = d2.home().join("later.json");
    d2.ok(&["changes", "export", "--out", later.to_str().unwrap()]);
    let later: Value = serde_json::from_str(&std::fs::read_to_string(&later).unwrap()).unwrap();
    let kinds: Vec<&str> = later["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["op"]["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"status_set")
            && kinds.contains(&"task_assign")
            && kinds.contains(&"task_answer"),
        "{kinds:?}"
    );
    schemas.assert_valid("change-bundle", &later);

    // An error body.
    let raw = reqwest_free_error(&server.url);
    schemas.assert_valid("error", &raw);

    // The center's requests, as the CLI sends them.
    schemas.assert_valid("decision-request", &json!({ "action": "reject", "reason": "duplicate", "text": null, "department": null, "note": null }));
    schemas.assert_valid("task-request", &json!({ "kind": "check", "case": bundle["changes"][0]["op"]["case"], "to": "周", "due": "30m", "lon": null, "lat": null, "category": null, "note": null }));
    schemas.assert_valid("survey-request", &json!({ "name": "litter", "cells": ["330109001001001"], "categories": ["SJ0102"], "from": "2025-11-20", "to": "2025-11-30" }));

    // Broken messages are caught by the schemas too.
    let mut bad = serde_json::to_value(&req).unwrap();
    bad["extra"] = json!(1);
    assert!(
        !schemas.errors("sync-request", &bad).is_empty(),
        "unknown field"
    );
    let mut bad_change = bundle["changes"][0].clone();
    bad_change["op"]["fields"]["placement"]["pos"] = json!([120.26, 91.0]);
    assert!(
        !schemas.errors("change", &bad_change).is_empty(),
        "latitude 91"
    );
    assert!(
        !schemas
            .errors("photos-needed-request", &json!({ "hashes": ["abc"] }))
            .is_empty()
    );
}

/// The body of a 401, fetched without a token.
fn reqwest_free_error(url: &str) -> Value {
    match HttpTransport::new(url, None).unwrap().call::<Value, Value>(
        "POST",
        "/v1/sync",
        Some(&json!({})),
    ) {
        Err(field_core::sync::client::TransportError::Refused {
            status: 401,
            reason,
        }) => json!({ "error": "unauthorized", "reason": reason }),
        other => panic!("{other:?}"),
    }
}
