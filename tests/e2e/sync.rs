//! Devices and the real server on loopback: convergence over varied sync
//! orders, and what a collector's token cannot do.

use field_core::crdt::{CHANGE_SCHEMA, CaseEdit, Change, Hlc, Op, StatusSet};
use field_core::model::{CaseFields, CaseId, ShiftKind, ShiftMark, Status, Timestamp};
use field_core::sync::client::TransportError;
use field_core::sync::http::HttpTransport;
use field_core::sync::protocol::SyncResponse;
use field_e2e::push;
use field_e2e::server::Server;
use field_e2e::{CELLS, Device, grid_geojson, png};
use serde_json::Value;

pub(crate) fn report(d: &Device, seed: u32, lon: &str, desc: &str) -> String {
    let p = d.file(&format!("p{seed}.png"), &png(seed));
    d.ok(&[
        "case",
        "report",
        "--category",
        "SJ0102",
        "--lon",
        lon,
        "--lat",
        "30.1895",
        "--desc",
        desc,
        "--photo",
        p.to_str().unwrap(),
    ])
    .stdout
    .trim()
    .to_string()
}

pub(crate) fn track(d: &Device, minute: u32) {
    let at = format!("2025-11-26T08:{minute:02}:00+08:00");
    d.ok(&[
        "track",
        "add",
        "--lon",
        "120.2606",
        "--lat",
        "30.1894",
        "--at",
        &at,
        "--accuracy",
        "5",
    ]);
}

pub(crate) fn own_changes(d: &Device) -> i64 {
    let conn = rusqlite::Connection::open(d.home().join("device.db")).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM changes WHERE actor = (SELECT unhex(replace(value, '-', '')) FROM meta WHERE key = 'actor')",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn three_devices_converge_through_the_server_in_varied_orders() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let a1 = server.enrolled_device(&server.add_user("王芳", "collector", &CELLS));
    let a2 = server.enrolled_device(&server.new_code("王芳"));
    let b = server.enrolled_device(&server.add_user("李伟", "collector", &CELLS));
    let devices = [&a1, &a2, &b];
    a1.ok(&["sync"]); // a1 has the grid; the others report before their first sync

    // Round 1: reports and tracks offline, then sync a1, b, a2.
    let x = report(&a1, 1, "120.2605", "garbage by the gate");
    let y = report(&a1, 2, "120.2615", "poster on a pole");
    let z = report(&b, 3, "120.2625", "bags on the kerb");
    for (i, d) in devices.iter().enumerate() {
        track(d, i as u32);
    }
    for d in [&a1, &b, &a2] {
        d.ok(&["sync"]);
    }
    assert_eq!(
        a2.ok(&["case", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        3,
        "a2 pulled every case of its cells"
    );

    // Round 2: overlapping offline edits of the same case on both handsets.
    a2.ok(&["case", "edit", &x, "--desc", "garbage, two bags (a2)"]);
    let p9 = a1.file("p9.png", &png(9));
    a1.ok(&[
        "case",
        "edit",
        &x,
        "--desc",
        "garbage, three bags (a1)",
        "--add-photo",
        p9.to_str().unwrap(),
    ]);
    b.ok(&["case", "edit", &z, "--desc", "bags on the kerb, torn"]);
    track(&a1, 10);
    for d in [&b, &a2, &a1] {
        d.ok(&["sync"]);
    }

    // Round 3: a concurrent photo remove and add, then everyone syncs twice.
    let shown = a1.ok(&["case", "show", &y, "--json"]).json();
    let first = shown["case"]["photos"][0]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    a1.ok(&["case", "edit", &y, "--remove-photo", &first]);
    let p10 = a2.file("p10.png", &png(10));
    a2.ok(&["case", "edit", &y, "--add-photo", p10.to_str().unwrap()]);
    for d in [&a2, &a1, &b, &a1, &a2, &b] {
        d.ok(&["sync"]);
    }

    let server_digest = server.digest();
    let mut authored = 0;
    for d in devices {
        let mine = d.digests();
        assert_eq!(
            mine["cases"], server_digest["cases"],
            "cases differ on a device"
        );
        let actor = d.actor();
        assert_eq!(
            mine["devices"][&actor], server_digest["devices"][&actor],
            "track differs for {actor}"
        );
        let status = d.status();
        assert_eq!(status["pending_changes"], 0);
        assert_eq!(status["pending_photos"], 0);
        assert_eq!(status["refused_changes"], 0);
        authored += own_changes(d);
    }
    assert_eq!(
        server_digest["changes"].as_i64().unwrap(),
        authored,
        "every change on the server exactly once"
    );
    let y_case = a2.ok(&["case", "show", &y, "--json"]).json();
    assert_eq!(
        y_case["case"]["photos"].as_array().unwrap().len(),
        1,
        "the remove took the seen photo; the concurrent add stays"
    );
    let cases: Value = server
        .admin()
        .call::<(), Value>("GET", "/v1/center/cases", None)
        .unwrap();
    assert!(
        cases
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["photos_pending"] == false),
        "every photo arrived: {cases}"
    );
}

fn change(actor: &str, counter: u64, op: Op) -> Change {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    Change {
        schema: CHANGE_SCHEMA,
        actor: actor.parse().unwrap(),
        counter,
        hlc: Hlc::new(now, 0),
        op,
    }
}

fn refusal(resp: &SyncResponse, i: usize) -> (u16, String) {
    let r = &resp.push[i];
    assert_eq!(
        r.outcome,
        field_core::sync::protocol::PushOutcome::Refused,
        "{r:?}"
    );
    (r.code.unwrap(), r.reason.clone().unwrap())
}

#[test]
fn a_collector_token_is_held_to_its_own_device_cases_and_cells() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let a = server.enrolled_device(&server.add_user("a", "collector", &CELLS[..3]));
    let b = server.enrolled_device(&server.add_user("b", "collector", &CELLS[6..]));
    let mine = report(&a, 21, "120.2605", "a's case");
    let theirs = report(&b, 22, "120.2605", "b's case");
    let _ = mine;
    let theirs_far = {
        let p = b.file("far.png", &png(23));
        b.ok(&[
            "case",
            "report",
            "--category",
            "SJ0102",
            "--lon",
            "120.2625",
            "--lat",
            "30.1875",
            "--desc",
            "b's far case",
            "--photo",
            p.to_str().unwrap(),
        ])
        .stdout
        .trim()
        .to_string()
    };
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);

    // Pull is partial: a sees its own case and b's case in a's cell, not b's far one.
    let seen: Vec<String> = a
        .ok(&["case", "list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        seen.contains(&theirs) && !seen.contains(&theirs_far),
        "{seen:?}"
    );

    let mut t = HttpTransport::new(&server.url, Some(a.token())).unwrap();
    let (a_actor, b_actor) = (a.actor(), b.actor());
    let edit = |case: &str| {
        Op::CaseEdit(CaseEdit {
            case: CaseId::parse("id", case).unwrap(),
            fields: CaseFields {
                description: Some("forged".into()),
                ..Default::default()
            },
            ..Default::default()
        })
    };
    let decide = Op::StatusSet(StatusSet {
        case: CaseId::parse("id", &theirs).unwrap(),
        from: vec![Status::Reported],
        to: Status::Registered,
        reason: None,
        note: None,
        department: None,
        at: Timestamp::now(),
        context: [(a_actor.parse().unwrap(), 1)].into_iter().collect(),
    });
    let future = Op::ShiftMark(ShiftMark {
        id: uuid::Uuid::new_v4(),
        kind: ShiftKind::Start,
        at: Timestamp::from_millis("at", Timestamp::now().millis() + 2 * 86_400_000).unwrap(),
        pos: None,
        cell: None,
    });
    let resp = push(
        &mut t,
        vec![
            change(&a_actor, 900, edit(&theirs)),
            change(&b_actor, 901, edit(&theirs)),
            change(&a_actor, 902, decide),
            change(&a_actor, 903, future),
        ],
    );
    let (code, why) = refusal(&resp, 0);
    assert_eq!(code, 403);
    assert!(why.contains("reported by someone else"), "{why}");
    let (code, why) = refusal(&resp, 1);
    assert!(code == 403 && why.contains("own actor"), "{why}");
    let (code, why) = refusal(&resp, 2);
    assert!(code == 403 && why.contains("only reviewers"), "{why}");
    let (code, why) = refusal(&resp, 3);
    // Refused for its time: 425, kept by a device to re-issue with a corrected clock.
    assert!(code == 425 && why.contains("at most 24 h"), "{why}");
    let case: Value = server
        .admin()
        .call::<(), Value>("GET", &format!("/v1/center/cases/{theirs}"), None)
        .unwrap();
    assert_eq!(
        case["case"]["description"], "b's case",
        "nothing forged was stored"
    );

    // Center endpoints are for staff.
    match t.call::<(), Value>("GET", "/v1/center/cases", None) {
        Err(TransportError::Refused { status: 403, .. }) => {}
        other => panic!("{other:?}"),
    }

    // Malformed and unknown-field bodies: 400 naming the problem; oversize: 413.
    match t.call_raw::<Value>(
        "POST",
        "/v1/sync",
        "application/json",
        b"{\"protocol\": 1, \"push\": [".to_vec(),
    ) {
        Err(TransportError::Refused {
            status: 400,
            reason,
        }) => assert!(
            reason.contains("EOF") || reason.contains("parse"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    match t.call_raw::<Value>(
        "POST",
        "/v1/sync",
        "application/json",
        br#"{"protocol":1,"push":[],"pull":{"cursor":0},"extra":1}"#.to_vec(),
    ) {
        Err(TransportError::Refused {
            status: 400,
            reason,
        }) => assert!(reason.contains("unknown field `extra`"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Its own client: a server that answers 413 early closes the connection,
    // which must not poison the pool the next requests use.
    let mut big = HttpTransport::new(&server.url, Some(a.token())).unwrap();
    match big.call_raw::<Value>(
        "POST",
        "/v1/sync",
        "application/json",
        vec![b' '; 17 * 1024 * 1024],
    ) {
        Err(TransportError::Refused { status: 413, .. }) => {}
        other => panic!("{other:?}"),
    }

    // A photo whose bytes do not match its name is refused and not kept.
    let real = png(77);
    let name = field_core::model::PhotoHash::of(&real);
    let fake = png(78);
    match t.call_raw::<Value>(
        "PUT",
        &format!("/v1/photos/{name}?offset=0&total={}", fake.len()),
        "application/octet-stream",
        fake,
    ) {
        // No case cites it: refused before a byte is stored.
        Err(TransportError::Refused {
            status: 403,
            reason,
        }) => assert!(reason.contains("cited by no case"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let needed: Value = t
        .call(
            "POST",
            "/v1/photos/needed",
            Some(&serde_json::json!({ "hashes": [name] })),
        )
        .unwrap();
    assert_eq!(
        needed["needed"],
        serde_json::json!([]),
        "an uncited photo is not wanted"
    );

    // A revoked device gets 401.
    let _: Value = server
        .admin()
        .call::<(), Value>(
            "POST",
            &format!("/v1/center/devices/{a_actor}/revoke"),
            None,
        )
        .unwrap();
    let r = a.run(&["sync"]);
    assert!(!r.ok && r.stderr.contains("401"), "{}", r.stderr);
}

#[test]
fn sigterm_stops_the_server_cleanly_and_data_survives_a_restart() {
    let mut server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("吴", "collector", &CELLS));
    d.ok(&["sync"]);
    report(&d, 31, "120.2605", "before the restart");
    d.ok(&["sync"]);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    let restarted = Server::start_on(&server.data, &format!("127.0.0.1:{}", server.port()));
    assert_eq!(
        restarted.admin_token(),
        server.admin_token(),
        "the admin token is made once"
    );
    let cases: Value = restarted
        .admin()
        .call::<(), Value>("GET", "/v1/center/cases", None)
        .unwrap();
    assert_eq!(cases.as_array().unwrap().len(), 1);
    d.ok(&["sync"]);
    assert_eq!(d.status()["pending_changes"], 0);
}
