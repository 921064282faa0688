//! Hold the line: a real server on loopback, tried as a hostile collector, a
//! careless admin and a reviewer with ambitions would (issue 10).

use std::io::Read;

use field_core::crdt::{Change, Op};
use field_core::sync::client::TransportError;
use field_core::sync::http::HttpTransport;

use field_e2e::push;
use field_e2e::server::Server;
use field_e2e::{CELLS, Device, grid_geojson, png};
use serde_json::{Value, json};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The HTTP status a call answers (2xx as 200).
fn status(t: &mut HttpTransport, method: &str, path: &str, body: Option<Value>) -> u16 {
    match t.call::<Value, Value>(method, path, body.as_ref()) {
        Ok(_) => 200,
        Err(TransportError::Refused { status, .. }) => status,
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

fn client(server: &Server, token: String) -> HttpTransport {
    HttpTransport::new(&server.url, Some(token)).expect("client")
}

/// The device's own changes not yet sent, as it would push them.
fn outbox(d: &Device) -> Vec<Change> {
    let path = d.home().join("out.json");
    d.ok(&["changes", "export", "--out", path.to_str().unwrap()]);
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    serde_json::from_value(bundle["changes"].clone()).unwrap()
}

fn report(d: &Device, seed: u32, desc: &str) -> String {
    let photo = d.file(&format!("p{seed}.png"), &png(seed));
    d.report(("BJ0101", "120.2605", "30.1895"), desc, &photo, None)
}

fn cases_on_server(server: &Server) -> Vec<Value> {
    server
        .admin()
        .call::<(), Value>("GET", "/v1/center/cases", None)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// A request's status: any 2xx as 200.
fn status_any(t: &mut HttpTransport, method: &str, path: &str, body: &Body) -> u16 {
    let r = match body {
        Body::Empty => t.call::<Value, Value>(method, path, None),
        Body::Json(v) => t.call::<Value, Value>(method, path, Some(v)),
        Body::Raw(mime, bytes) => t.call_raw::<Value>(method, path, mime, bytes.clone()),
    };
    match r {
        Ok(_) => 200,
        Err(TransportError::Refused { status, .. }) => status,
        // A success that is not JSON (the SVG map).
        Err(TransportError::Unreachable(why)) if why.contains("unreadable answer") => 200,
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

enum Body {
    Empty,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

#[test]
fn every_role_meets_the_authorisation_table_row_by_row() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let collector = server.enrolled_device(&server.add_user("c", "collector", &CELLS[..3]));
    let reviewer = server.enrolled_device(&server.add_user("r", "reviewer", &[]));
    let spare = server.enrolled_device(&server.add_user("spare", "collector", &CELLS[..3]));
    server.add_user("target", "collector", &CELLS[..3]);
    let case = report(&collector, 5, "a case");
    collector.ok(&["sync"]);
    let mut c = client(&server, collector.token());
    let mut r = client(&server, reviewer.token());
    let mut a = server.admin();
    let grid = grid_geojson(false).into_bytes();
    let catalog = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/catalog/default.json"
    ))
    .unwrap();
    let config: Value = a
        .call::<(), Value>("GET", "/v1/center/config", None)
        .unwrap();
    let toml = config["toml"].as_str().unwrap().as_bytes().to_vec();
    let spare_actor = spare.actor();
    use Body::{Empty, Json, Raw};
    // Every center endpoint: (method, path, body, collector, reviewer, admin),
    // true where the table allows it (any answer but 401/403), false where
    // it must be 403.
    let (no, staff, admin) = (
        [false, false, false],
        [false, true, true],
        [false, false, true],
    );
    let _ = no;
    let rows: Vec<(&str, String, Body, [bool; 3])> = vec![
        ("GET", "/v1/center/users".into(), Empty, staff),
        (
            "POST",
            "/v1/center/users".into(),
            Json(json!({"name": "c2", "role": "collector"})),
            staff,
        ),
        (
            "POST",
            "/v1/center/users".into(),
            Json(json!({"name": "r2", "role": "reviewer"})),
            admin,
        ),
        (
            "POST",
            "/v1/center/users".into(),
            Json(json!({"name": "a2", "role": "admin"})),
            admin,
        ),
        ("POST", "/v1/center/users/admin/codes".into(), Empty, admin),
        ("POST", "/v1/center/users/r/codes".into(), Empty, admin),
        ("POST", "/v1/center/users/c/codes".into(), Empty, staff),
        (
            "POST",
            "/v1/center/users/c/codes/revoke".into(),
            Empty,
            admin,
        ),
        (
            "POST",
            "/v1/center/users/target/disable".into(),
            Empty,
            admin,
        ),
        (
            "POST",
            "/v1/center/users/target/enable".into(),
            Empty,
            admin,
        ),
        ("GET", "/v1/center/audit".into(), Empty, admin),
        (
            "POST",
            format!("/v1/center/devices/{spare_actor}/revoke"),
            Empty,
            admin,
        ),
        (
            "PUT",
            "/v1/center/grid".into(),
            Raw("application/geo+json", grid),
            admin,
        ),
        (
            "PUT",
            "/v1/center/catalog".into(),
            Raw("application/json", catalog),
            admin,
        ),
        ("GET", "/v1/center/config".into(), Empty, staff),
        (
            "PUT",
            "/v1/center/config".into(),
            Raw("application/toml", toml),
            admin,
        ),
        (
            "POST",
            "/v1/center/config/set".into(),
            Json(json!({"key": "fees.一公司", "value": "1000"})),
            admin,
        ),
        (
            "POST",
            "/v1/center/assignments".into(),
            Json(json!({"collector": "c", "cells": [CELLS[0]], "from": "2026-01-01"})),
            staff,
        ),
        ("GET", "/v1/center/cases".into(), Empty, staff),
        ("GET", format!("/v1/center/cases/{case}"), Empty, staff),
        (
            "POST",
            format!("/v1/center/cases/{case}/decisions"),
            Json(json!({"action": "register"})),
            staff,
        ),
        (
            "POST",
            "/v1/center/tasks".into(),
            Json(json!({"kind": "verify", "case": case, "to": "c", "due": "30m"})),
            staff,
        ),
        ("GET", "/v1/center/tasks".into(), Empty, staff),
        ("GET", "/v1/center/shifts".into(), Empty, staff),
        (
            "POST",
            "/v1/center/findings".into(),
            Json(
                json!({"source": "citizen", "category": "BJ0101", "lon": 120.2605, "lat": 30.1895, "at": "2026-11-26T09:00:00+08:00"}),
            ),
            staff,
        ),
        (
            "POST",
            "/v1/center/findings/bulk".into(),
            Json(json!([])),
            staff,
        ),
        (
            "GET",
            "/v1/center/report?period=2026-11&collector=target".into(),
            Empty,
            staff,
        ),
        (
            "GET",
            "/v1/center/report?period=2026-11&company=甲".into(),
            Empty,
            staff,
        ),
        (
            "GET",
            "/v1/center/map?collector=c&day=2026-11-26".into(),
            Empty,
            staff,
        ),
        (
            "GET",
            "/v1/center/city-map?day=2026-11-26".into(),
            Empty,
            staff,
        ),
        (
            "POST",
            "/v1/center/surveys".into(),
            Json(
                json!({"name": "s", "cells": [CELLS[0]], "categories": ["BJ0101"], "from": "2026-11-01", "to": "2026-11-30"}),
            ),
            staff,
        ),
        ("GET", "/v1/center/surveys".into(), Empty, staff),
        ("GET", "/v1/center/surveys/none/report".into(), Empty, staff),
        ("GET", "/v1/center/digest".into(), Empty, staff),
        ("GET", "/v1/center/violations".into(), Empty, staff),
        (
            "POST",
            "/v1/center/violations".into(),
            Json(json!({"collector": "c", "kind": "bribery"})),
            staff,
        ),
        (
            "POST",
            "/v1/center/violations/none/revoke".into(),
            Json(json!({"reason": "r"})),
            staff,
        ),
        (
            "GET",
            "/v1/center/city-figures?period=2026-11".into(),
            Empty,
            staff,
        ),
        (
            "POST",
            "/v1/center/certification/attempts".into(),
            Json(
                json!({"collector": "c", "date": "2025-01-02", "theory": true, "video": true, "field": true}),
            ),
            staff,
        ),
        ("GET", "/v1/center/certification/c".into(), Empty, staff),
        (
            "POST",
            "/v1/center/trainings".into(),
            Json(json!({"date": "2025-01-02", "topic": "t", "attendees": ["c"]})),
            staff,
        ),
        ("GET", "/v1/center/trainings".into(), Empty, staff),
    ];
    for (method, path, body, allowed) in &rows {
        for (who, t, ok) in [
            ("collector", &mut c, allowed[0]),
            ("reviewer", &mut r, allowed[1]),
            ("admin", &mut a, allowed[2]),
        ] {
            let got = status_any(t, method, path, body);
            if ok {
                assert!(
                    got != 401 && got != 403,
                    "{who}: {method} {path} answered {got}, the table allows it"
                );
            } else {
                assert_eq!(got, 403, "{who}: {method} {path}");
            }
        }
    }
    // A reviewer rotates only a device-less token; the admin its own.
    assert_eq!(status(&mut r, "POST", "/v1/center/token/rotate", None), 403);
    assert_eq!(status(&mut a, "POST", "/v1/center/token/rotate", None), 200);

    // The table the code enforces is the one API.md shows.
    let out = std::process::Command::new(field_e2e::server_bin())
        .arg("policy")
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let api = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sync-server/API.md"
    ))
    .unwrap();
    assert!(
        api.contains(table.trim()),
        "API.md lacks the table `sync-server policy` prints:\n{table}"
    );
}

#[test]
fn a_disabled_user_and_a_rotated_token_stop_working_and_the_audit_log_says_who() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("c", "collector", &CELLS[..3]));
    let mut c = client(&server, d.token());
    assert_eq!(
        status(
            &mut c,
            "POST",
            "/v1/sync",
            Some(json!({"protocol": 1, "push": [], "pull": {"cursor": 0}}))
        ),
        200
    );
    let mut a = server.admin();
    // An unused code is revoked and can no longer enrol.
    let code = server.new_code("c");
    assert_eq!(
        status(&mut a, "POST", "/v1/center/users/c/codes/revoke", None),
        200
    );
    let late = Device::init("late");
    let r = late.run(&["enroll", "--server", &server.url, "--code", &code]);
    assert!(
        !r.ok && r.stderr.contains("unknown enrolment code"),
        "{}",
        r.stderr
    );
    // Disabled: the device token ends at once.
    assert_eq!(
        status(&mut a, "POST", "/v1/center/users/c/disable", None),
        200
    );
    assert_eq!(
        status(
            &mut c,
            "POST",
            "/v1/sync",
            Some(json!({"protocol": 1, "push": [], "pull": {"cursor": 0}}))
        ),
        401
    );
    // The last admin cannot lock everyone out.
    assert_eq!(
        status(&mut a, "POST", "/v1/center/users/admin/disable", None),
        403
    );
    // Rotation: the new token works, the old one is gone.
    let rotated: Value = a
        .call::<(), Value>("POST", "/v1/center/token/rotate", None)
        .unwrap();
    let fresh = rotated["token"].as_str().unwrap().to_string();
    assert_eq!(status(&mut a, "GET", "/v1/center/users", None), 401);
    let mut a2 = client(&server, fresh);
    let audit: Value = a2
        .call::<(), Value>("GET", "/v1/center/audit", None)
        .unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "import_grid",
        "add_user",
        "mint_code",
        "revoke_codes",
        "disable_user",
        "rotate_token",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    assert!(audit.as_array().unwrap().iter().all(|e| e["by"] == "admin"));
}

#[test]
fn a_report_only_creates_a_case_and_the_server_decides_its_facts() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let owner = server.enrolled_device(&server.add_user("owner", "collector", &CELLS[..3]));
    let thief = server.enrolled_device(&server.add_user("thief", "collector", &CELLS[..3]));
    let id = report(&owner, 1, "broken cover");
    owner.ok(&["sync"]);
    let thief_actor: uuid::Uuid = thief.actor().parse().unwrap();
    // The thief's own next change, reusing the owner's case id.
    let mut forged = outbox(&owner)
        .into_iter()
        .find(|c| matches!(c.op, Op::CaseReport(_)))
        .unwrap();
    forged.actor = thief_actor;
    forged.counter = 1;
    if let Op::CaseReport(r) = &mut forged.op {
        r.origin.reporter = thief_actor;
        r.origin.collector = "thief".into();
        r.fields.description = Some("mine now".into());
    }
    let mut t = client(&server, thief.token());
    for round in 0..2 {
        let resp = push(&mut t, vec![forged.clone()]);
        assert_eq!(
            resp.push[0].code,
            Some(403),
            "round {round}: {:?}",
            resp.push[0]
        );
        assert!(
            resp.push[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("a report only creates a case")
        );
        let case: Value = server
            .admin()
            .call::<(), Value>("GET", &format!("/v1/center/cases/{id}"), None)
            .unwrap();
        assert_eq!(case["case"]["description"], "broken cover");
        assert_eq!(case["case"]["origin"]["collector"], "owner");
        // Registered, it is still not anyone else's.
        if round == 0 {
            server
                .admin()
                .call::<Value, Value>(
                    "POST",
                    &format!("/v1/center/cases/{id}/decisions"),
                    Some(&json!({"action": "register"})),
                )
                .unwrap();
        }
    }

    // Facts a device may not claim: another user's name, a source only the
    // center has, a report time later than its own stamp, a wrong cell.
    let fresh = server.enrolled_device(&server.add_user("honest", "collector", &CELLS[..3]));
    report(&fresh, 2, "a real one");
    let base = outbox(&fresh)
        .into_iter()
        .find(|c| matches!(c.op, Op::CaseReport(_)))
        .unwrap();
    let mut t = client(&server, fresh.token());
    let variants: Vec<(
        &str,
        Box<dyn Fn(&mut field_core::crdt::CaseReport, &mut Change)>,
    )> = vec![
        (
            "origin.collector",
            Box::new(|r, _| r.origin.collector = "owner".into()),
        ),
        (
            "origin.source",
            Box::new(|r, _| r.origin.source = field_core::model::CaseSource::Leader),
        ),
        (
            "origin.reported_at",
            Box::new(|r, c| {
                r.origin.reported_at = field_core::model::Timestamp::from_millis(
                    "at",
                    c.hlc.physical_ms() as i64 + DAY_MS / 2,
                )
                .unwrap()
            }),
        ),
        (
            "fields.placement.cell",
            Box::new(|r, _| {
                if let Some(p) = &mut r.fields.placement {
                    p.cell = Some(
                        field_core::model::CellCodePattern::default()
                            .parse("cell", "330109001001009")
                            .unwrap(),
                    );
                }
            }),
        ),
        (
            "fields.description",
            Box::new(|r, _| r.fields.description = Some("长".repeat(4000))),
        ),
        ("photos", Box::new(|r, _| r.photos.clear())),
    ];
    for (field, mutate) in variants {
        let mut c = base.clone();
        let mut op = match &c.op {
            Op::CaseReport(r) => r.clone(),
            _ => unreachable!(),
        };
        mutate(&mut op, &mut c);
        c.op = Op::CaseReport(op);
        let resp = push(&mut t, vec![c]);
        let reason = resp.push[0].reason.clone().unwrap_or_default();
        assert!(
            resp.push[0].code.is_some() && reason.contains(field),
            "{field}: {:?}",
            resp.push[0]
        );
    }
    // The honest original still goes through afterwards: nothing was held.
    let resp = push(&mut t, vec![base]);
    assert_eq!(
        resp.push[0].outcome,
        field_core::sync::protocol::PushOutcome::Accepted,
        "{:?}",
        resp.push[0]
    );
}

#[test]
fn a_restored_handset_loses_nothing() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("wang", "collector", &CELLS[..3]));
    d.ok(&["sync"]);
    let backup = d.home().join("backup.db");
    let db = d.home().join("device.db");
    // The store holds the device token: owner-only.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    d.ok(&["status"]); // every connection closed: the WAL is checkpointed
    std::fs::copy(&db, &backup).unwrap();
    let a = report(&d, 11, "case A");
    d.ok(&[
        "track",
        "add",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
        "--at",
        &chrono::Utc::now().to_rfc3339(),
    ]);
    d.ok(&["sync"]);
    // Restore the backup (as a phone restore would).
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(d.home().join(format!("device.db{ext}")));
    }
    std::fs::copy(&backup, &db).unwrap();
    let b = report(&d, 12, "case B");
    let out = d.ok(&["sync"]);
    assert!(out.stdout.contains("re-issued"), "{}", out.stdout);
    d.ok(&["sync"]);
    let on_server: Vec<String> = cases_on_server(&server)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        on_server.contains(&a) && on_server.contains(&b),
        "server has {on_server:?}"
    );
    let on_device: Vec<String> = d
        .ok(&["case", "list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        on_device.contains(&a) && on_device.contains(&b),
        "device has {on_device:?}"
    );
    let s = d.status();
    assert_eq!(
        (s["pending_changes"].as_u64(), s["refused_changes"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    // The track recorded after the backup came back too.
    let points = d.ok(&["track", "list", "--points", "--json"]).json();
    assert_eq!(points.as_array().map(|p| p.len()), Some(1), "{points}");
    // B's photo came too, and B is the same user's.
    let row = cases_on_server(&server)
        .into_iter()
        .find(|c| c["id"] == b.as_str())
        .unwrap();
    assert_eq!(
        (row["photos_pending"].as_bool(), row["collector"].as_str()),
        (Some(false), Some("wang")),
        "{row}"
    );
}

fn skewed(d: &Device, skew_ms: i64, args: &[&str]) -> std::process::Output {
    let out = d
        .command(args)
        .env("FIELD_DEVICE_CLOCK_SKEW_MS", skew_ms.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_wrong_clock_loses_nothing_and_is_flagged() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("li", "collector", &CELLS[..3]));
    // Three days ahead, offline; then the clock is put right and another report follows.
    let photo = d.file("f.png", &png(31));
    let p = photo.to_str().unwrap();
    let args = [
        "case",
        "report",
        "--category",
        "BJ0101",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
        "--desc",
        "from the future",
        "--photo",
        p,
    ];
    let ahead = String::from_utf8(skewed(&d, 3 * DAY_MS, &args).stdout)
        .unwrap()
        .trim()
        .to_string();
    let now = report(&d, 32, "after the fix");
    let out = d.ok(&["sync", "--json"]).json();
    assert!(out["reissued"].as_u64().unwrap() >= 2, "{out}");
    let ids: Vec<String> = cases_on_server(&server)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&ahead) && ids.contains(&now), "{ids:?}");
    let s = d.status();
    assert_eq!(
        (s["pending_changes"].as_u64(), s["refused_changes"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );

    // 400 days behind: accepted, the collector warned, the reviewer told.
    let e = server.enrolled_device(&server.add_user("zhou", "collector", &CELLS[..3]));
    let behind = -400 * DAY_MS;
    let photo = e.file("g.png", &png(33));
    let args = [
        "case",
        "report",
        "--category",
        "BJ0101",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
        "--desc",
        "a year ago?",
        "--photo",
        photo.to_str().unwrap(),
    ];
    let old = String::from_utf8(skewed(&e, behind, &args).stdout)
        .unwrap()
        .trim()
        .to_string();
    let sync = skewed(&e, behind, &["sync"]);
    assert!(
        String::from_utf8_lossy(&sync.stderr).contains("clock is"),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
    let row = cases_on_server(&server)
        .into_iter()
        .find(|c| c["id"] == old.as_str())
        .expect("accepted");
    let flags: Vec<&str> = row["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(flags.contains(&"device_clock"), "{row}");
    // Its later reports are stamped by the corrected clock.
    let st = skewed(&e, behind, &["status", "--json"]);
    let st: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert!(
        st["clock_offset_ms"].as_i64().unwrap() > 399 * DAY_MS,
        "{st}"
    );
}

#[test]
fn one_unreadable_photo_does_not_stop_the_others() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("qian", "collector", &CELLS[..3]));
    let rotten = report(&d, 41, "rotten photo");
    let healthy = report(&d, 42, "healthy photo");
    // Flash rot: the first photo's bytes change under its hash.
    let conn = rusqlite::Connection::open(d.home().join("device.db")).unwrap();
    let hash = field_core::model::PhotoHash::of(&png(41));
    conn.execute(
        "UPDATE photos SET data = ?1 WHERE hash = ?2",
        rusqlite::params![png(99), hash.as_str()],
    )
    .unwrap();
    drop(conn);
    let first = d.run(&["sync"]);
    assert!(first.ok, "{}", first.stderr);
    assert!(
        first.stderr.contains("no longer matches its hash"),
        "{}",
        first.stderr
    );
    d.ok(&["sync"]);
    let rows = cases_on_server(&server);
    let row = |id: &str| rows.iter().find(|c| c["id"] == id).unwrap().clone();
    assert_eq!(row(&healthy)["photos_pending"], false);
    assert_eq!(row(&rotten)["photos_lost"][0], hash.as_str());
    assert_eq!(d.status()["pending_photos"], 0);
}

#[test]
fn a_decompression_bomb_is_refused_with_the_reason() {
    // A real JPEG whose header is patched to claim 13000×13000 pixels.
    let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let mut bytes = jpeg.into_inner();
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline SOF0");
    bytes[sof + 5..sof + 7].copy_from_slice(&13000u16.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&13000u16.to_be_bytes());
    assert!(bytes.len() < 1000);
    let err = field_core::model::photo::inspect_photo("photo", &bytes)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("13000×13000") && err.contains("megapixels"),
        "{err}"
    );
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("bomber", "collector", &CELLS[..3]));
    let path = d.file("bomb.jpg", &bytes);
    let r = d.run(&[
        "case",
        "report",
        "--category",
        "BJ0101",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
        "--desc",
        "x",
        "--photo",
        path.to_str().unwrap(),
    ]);
    assert!(!r.ok && r.stderr.contains("megapixels"), "{}", r.stderr);
    // Uploaded for no case at all: the header alone is refused (400), before any check of cases.
    let mut t = client(&server, d.token());
    let bomb = field_core::model::PhotoHash::of(&bytes);
    let up = t.call_raw::<Value>(
        "PUT",
        &format!("/v1/photos/{bomb}?offset=0&total={}", bytes.len()),
        "application/octet-stream",
        bytes.clone(),
    );
    assert!(
        matches!(&up, Err(TransportError::Refused { status: 400, reason }) if reason.contains("megapixels")),
        "{up:?}"
    );
    // A hostile client cites the bomb in a raw report and uploads it: 400 at upload.
    report(&d, 71, "carrier");
    let mut carrier = outbox(&d)
        .into_iter()
        .find(|c| matches!(c.op, Op::CaseReport(_)))
        .unwrap();
    if let Op::CaseReport(r) = &mut carrier.op {
        r.photos[0].hash = bomb.clone();
    }
    assert_eq!(
        push(&mut t, vec![carrier]).push[0].outcome,
        field_core::sync::protocol::PushOutcome::Accepted
    );
    let up = t.call_raw::<Value>(
        "PUT",
        &format!("/v1/photos/{bomb}?offset=0&total={}", bytes.len()),
        "application/octet-stream",
        bytes.clone(),
    );
    match up {
        Err(TransportError::Refused {
            status: 400,
            reason,
        }) => assert!(reason.contains("megapixels"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let thumb = t.get_bytes(&format!("/v1/photos/{bomb}/thumb"));
    assert!(
        matches!(thumb, Err(TransportError::Refused { status: 404, .. })),
        "{thumb:?}"
    );
}

#[test]
fn idle_connections_are_closed_and_a_second_server_is_refused() {
    let server = Server::start_with_config("[limits]\nheader_timeout_s = 1\n");
    let mut idle = std::net::TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    idle.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 64];
    // The server closes a connection that sends nothing (EOF, or a 408 then EOF).
    let mut got = Vec::new();
    loop {
        match idle.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the idle connection stayed open: {e}"),
        }
    }
    // One data directory, one server.
    let out = std::process::Command::new(field_e2e::server_bin())
        .args([
            "--data",
            server.data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by another sync-server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&server.data), 0o700);
    for f in ["center.db", "changes.db", "admin.token"] {
        assert_eq!(mode(&server.data.join(f)), 0o600, "{f}");
    }
}

#[test]
fn sigterm_stops_the_server() {
    let mut server = Server::start();
    // A client holding a connection open (sending nothing) does not keep it up.
    let _idle = std::net::TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn one_unreadable_change_is_refused_alone() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("sun", "collector", &CELLS[..3]));
    report(&d, 51, "good one");
    let good = outbox(&d);
    let mut bad = serde_json::to_value(&good[0]).unwrap();
    bad["counter"] = json!(good.len() as u64 + 1);
    bad["op"]["fields"]["category"] = json!("not a code");
    let mut body = json!({"protocol": 1, "push": good, "pull": {"cursor": 0}});
    body["push"].as_array_mut().unwrap().push(bad);
    let mut t = client(&server, d.token());
    let resp: Value = t.call("POST", "/v1/sync", Some(&body)).unwrap();
    let push = resp["push"].as_array().unwrap();
    assert!(
        push[..push.len() - 1]
            .iter()
            .all(|r| r["outcome"] == "accepted"),
        "{resp}"
    );
    let last = &push[push.len() - 1];
    assert_eq!(
        (last["outcome"].as_str(), last["code"].as_u64()),
        (Some("refused"), Some(400)),
        "{last}"
    );
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("push[{}]", push.len() - 1)),
        "{last}"
    );
}

#[test]
fn a_grid_too_detailed_is_refused_naming_the_cell() {
    let server = Server::start();
    let ring: Vec<[f64; 2]> = (0..60_000)
        .map(|i| {
            let a = i as f64 / 60_000.0 * std::f64::consts::TAU;
            [120.26 + 0.001 * a.cos(), 30.19 + 0.001 * a.sin()]
        })
        .chain(std::iter::once([120.261, 30.19]))
        .collect();
    let grid = json!({"type": "FeatureCollection", "features": [{"type": "Feature",
        "properties": {"code": "330109001001001", "zone": "red"},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}]});
    let refused = server.admin().call_raw::<Value>(
        "PUT",
        "/v1/center/grid",
        "application/geo+json",
        grid.to_string().into_bytes(),
    );
    match refused {
        Err(TransportError::Refused {
            status: 400,
            reason,
        }) => {
            assert!(
                reason.contains("330109001001001") && reason.contains("vertices"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_line_break_in_the_sign_in_target_cannot_break_the_answer() {
    let server = Server::start();
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &server.admin_token())
        .append_pair("next", "/console/queue\r\nSet-Cookie: evil=1")
        .finish();
    let r = field_e2e::raw_http::exchange(&server.url, "POST", "/console/sign-in", &[], &form);
    assert_eq!(r.status, 303, "{}", r.head);
    assert_eq!(r.header("location"), Some("/console/queue"));
    assert!(!r.head.contains("evil"), "{}", r.head);
}

/// The server's peak resident memory so far (VmHWM), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[test]
fn twenty_thumbnails_of_a_huge_photo_stay_within_the_decode_budget() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("wu", "collector", &CELLS[..3]));
    // 49 megapixels (under the 64 MP limit): 147 MB once decoded, a few
    // hundred KB as a JPEG.
    let img = image::RgbImage::from_fn(7000, 7000, |x, y| {
        image::Rgb([(x / 700) as u8 * 20, (y / 700) as u8 * 20, 90])
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    drop(img);
    let bytes = jpeg.into_inner();
    let hash = field_core::model::PhotoHash::of(&bytes);
    let photo = d.file("huge.jpg", &bytes);
    d.report(
        ("BJ0101", "120.2605", "30.1895"),
        "huge photo",
        &photo,
        None,
    );
    d.ok(&["sync"]);
    let before = peak_memory(server.child.id());
    let token = server.admin_token();
    let auth = format!("Bearer {token}");
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (url, auth, path) = (
                server.url.clone(),
                auth.clone(),
                format!("/v1/photos/{hash}/thumb"),
            );
            std::thread::spawn(move || {
                field_e2e::raw_http::exchange(&url, "GET", &path, &[("Authorization", &auth)], "")
                    .status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    let peak = peak_memory(server.child.id());
    // Unbounded, twenty decodes at once need ~3 GB; two at a time ~0.4 GB.
    eprintln!("peak {} MB (before {} MB)", peak >> 20, before >> 20);
    assert!(
        peak < 1 << 30,
        "peak {} MB (before {} MB)",
        peak >> 20,
        before >> 20
    );
}

#[test]
fn a_forged_report_in_a_bundle_is_refused_by_the_device_that_imports_it() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let owner = server.enrolled_device(&server.add_user("owner", "collector", &CELLS[..3]));
    let thief = server.enrolled_device(&server.add_user("thief", "collector", &CELLS[..3]));
    let friend = server.enrolled_device(&server.add_user("friend", "collector", &CELLS[..3]));
    let id = report(&owner, 61, "the owner's words");
    owner.ok(&["sync"]);
    thief.ok(&["sync"]); // the case reaches the thief through the pull of its cells
    // The thief's bundle: everything it holds, plus a report reusing the id.
    let path = thief.home().join("all.json");
    thief.ok(&["changes", "export", "--out", path.to_str().unwrap()]);
    let mut bundle: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let original = bundle["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["op"]["type"] == "case_report" && c["op"]["case"] == id.as_str())
        .unwrap()
        .clone();
    let mut forged = original.clone();
    let thief_actor = thief.actor();
    forged["actor"] = json!(thief_actor);
    forged["counter"] = json!(1);
    forged["hlc"] = json!(original["hlc"].as_u64().unwrap() - 1_000_000); // "earlier" than the owner
    forged["op"]["origin"]["reporter"] = json!(thief_actor);
    forged["op"]["origin"]["collector"] = json!("thief");
    forged["op"]["fields"]["description"] = json!("stolen");
    bundle["changes"].as_array_mut().unwrap().push(forged);
    std::fs::write(&path, bundle.to_string()).unwrap();
    for d in [&friend, &owner] {
        let r = d.ok(&["changes", "import", path.to_str().unwrap()]);
        assert!(
            r.stdout.contains("a report only creates a case"),
            "{}",
            r.stdout
        );
        let case = d.ok(&["case", "show", &id, "--json"]).json();
        assert_eq!(case["case"]["description"], "the owner's words", "{case}");
    }
}

/// Signs in to the console with `token`; the session cookie.
fn console_session(server: &Server, token: &str) -> String {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish();
    let r = field_e2e::raw_http::exchange(&server.url, "POST", "/console/sign-in", &[], &form);
    assert_eq!(r.status, 303, "{}", r.head);
    r.header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn the_console_shows_admins_the_audit_log_and_reviewers_not() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let reviewer = server.enrolled_device(&server.add_user("审核员", "reviewer", &[]));
    let admin = console_session(&server, &server.admin_token());
    let r = field_e2e::raw_http::exchange(
        &server.url,
        "GET",
        "/console/accounts",
        &[("Cookie", &admin), ("Accept-Language", "en")],
        "",
    );
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(
        page.contains("Audit log") && page.contains("import_grid") && page.contains("审核员"),
        "{page}"
    );
    let theirs = console_session(&server, &reviewer.token());
    let r = field_e2e::raw_http::exchange(
        &server.url,
        "GET",
        "/console/accounts",
        &[("Cookie", &theirs)],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // Disabling the reviewer ends their console session at once.
    server
        .admin()
        .call::<(), Value>("POST", "/v1/center/users/审核员/disable", None)
        .unwrap();
    let r = field_e2e::raw_http::exchange(
        &server.url,
        "GET",
        "/console/queue",
        &[("Cookie", &theirs)],
        "",
    );
    assert_eq!(r.status, 303, "{}", r.head);
}

/// Reports a case with a fresh photo, pushes the report alone, then PUTs the
/// whole photo three times at once; the three replies.
fn three_uploads_at_once(
    server: &Server,
    d: &Device,
    t: &mut HttpTransport,
    seed: u32,
) -> Vec<String> {
    let bytes = png(seed);
    let hash = field_core::model::PhotoHash::of(&bytes);
    let photo = d.file(&format!("c{seed}.png"), &bytes);
    d.report(
        ("BJ0101", "120.2605", "30.1895"),
        "concurrent",
        &photo,
        None,
    );
    let pending: Vec<Change> = outbox(d)
        .into_iter()
        .filter(|c| c.case_id().is_some())
        .collect();
    push(t, pending);
    let auth = format!("Bearer {}", d.token());
    let path = format!("/v1/photos/{hash}?offset=0&total={}", bytes.len());
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (url, auth, path, body) = (server.url.clone(), auth.clone(), path.clone(), bytes.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                let addr = url.trim_start_matches("http://").to_string();
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                write!(s, "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
                s.write_all(&body).unwrap();
                let mut reply = String::new();
                s.read_to_string(&mut reply).unwrap();
                reply
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn concurrent_uploads_of_one_photo_all_succeed() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("he", "collector", &CELLS[..3]));
    let mut t = client(&server, d.token());
    for trial in 0..20u32 {
        for r in three_uploads_at_once(&server, &d, &mut t, 700 + trial) {
            assert!(r.starts_with("HTTP/1.1 200"), "trial {trial}: {r}");
        }
    }
    assert!(
        cases_on_server(&server)
            .iter()
            .all(|c| c["photos_pending"] == false)
    );
}

#[test]
fn each_device_has_a_daily_photo_budget() {
    let server = Server::start_with_config("[limits]\nmax_photo_bytes_per_device_day = 400\n");
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("he", "collector", &CELLS[..3]));
    let mut t = client(&server, d.token());
    let mut sent = 0;
    for trial in 0..12u32 {
        let replies = three_uploads_at_once(&server, &d, &mut t, 800 + trial);
        sent += png(800 + trial).len();
        if sent <= 400 {
            // Three uploads of one photo are charged once.
            assert!(
                replies.iter().all(|r| r.starts_with("HTTP/1.1 200")),
                "trial {trial}: {replies:?}"
            );
        } else {
            assert!(
                replies.iter().all(|r| r.starts_with("HTTP/1.1 413")),
                "{replies:?}"
            );
            assert!(replies[0].contains("photos today"), "{replies:?}");
            return;
        }
    }
    panic!("the budget of 400 bytes was never reached");
}

#[test]
fn a_report_dated_well_before_it_was_written_is_flagged() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("feng", "collector", &CELLS[..3]));
    let hours_ago = (chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    let photo = d.file("b.png", &png(91));
    let back = d.report(
        ("BJ0101", "120.2605", "30.1895"),
        "says 3 h ago",
        &photo,
        Some(&hours_ago),
    );
    let honest = report(&d, 92, "now");
    d.ok(&["sync"]);
    let rows = cases_on_server(&server);
    let kinds = |id: &str| -> Vec<String> {
        rows.iter().find(|c| c["id"] == id).unwrap()["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(kinds(&back), vec!["backdated"]);
    assert!(kinds(&honest).is_empty(), "{:?}", kinds(&honest));
    let queue: Value = server
        .admin()
        .call::<(), Value>("GET", "/v1/center/cases?flag=backdated", None)
        .unwrap();
    assert_eq!(queue.as_array().unwrap().len(), 1, "{queue}");
}

#[test]
fn accounts_are_managed_from_the_command_line() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let c = server.enrolled_device(&server.add_user("liu", "collector", &CELLS[..3]));
    let ops = Device::init("ops");
    let admin = server.admin_token();
    let center = |args: &[&str]| {
        let mut all = vec!["center"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--server", &server.url, "--token", &admin]);
        ops.ok(&all)
    };
    center(&["user", "revoke-codes", "liu"]);
    let out = center(&["user", "disable", "liu"]);
    assert!(out.stdout.contains("liu disabled"), "{}", out.stdout);
    let r = c.run(&["sync"]);
    assert!(!r.ok && r.stderr.contains("401"), "{}", r.stderr);
    let users = center(&["user", "list", "--role", "collector", "--json"]).json();
    assert_eq!(users[0]["disabled"], true, "{users}");
    center(&["user", "enable", "liu"]);
    c.ok(&["sync"]);
    let audit = center(&["audit", "--json"]).json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..3],
        ["enable_user", "disable_user", "revoke_codes"],
        "{audit}"
    );
    let table = center(&["audit"]).stdout;
    assert!(
        table.contains("ACTION") && table.contains("disable_user"),
        "{table}"
    );
}

#[test]
fn reports_made_before_enrolment_go_up_under_the_users_name() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let code = server.add_user("钱", "collector", &CELLS[..3]);
    let d = Device::init("new handset");
    let early = report(&d, 81, "before enrolment");
    d.ok(&["enroll", "--server", &server.url, "--code", &code]);
    d.ok(&["sync"]);
    let row = cases_on_server(&server)
        .into_iter()
        .find(|c| c["id"] == early.as_str())
        .expect("accepted");
    assert_eq!(row["collector"], "钱", "{row}");
    assert_eq!(d.status()["refused_changes"], 0);
}

#[test]
fn a_shift_mark_is_placed_by_its_position_not_its_claimed_cell() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("chen", "collector", &CELLS[..3]));
    d.ok(&["sync"]); // the grid: the handset names the cell it is in
    d.ok(&["shift", "start", "--lon", "120.2605", "--lat", "30.1895"]);
    let mut mark = outbox(&d)
        .into_iter()
        .find(|c| matches!(c.op, Op::ShiftMark(_)))
        .unwrap();
    // Sent from Beijing, still claiming the collector's own cell.
    if let Op::ShiftMark(m) = &mut mark.op {
        assert_eq!(
            m.cell.as_ref().map(|c| c.to_string()).as_deref(),
            Some(CELLS[0])
        );
        m.pos = Some(field_core::model::LonLat::new(116.397, 39.908).unwrap());
    }
    let mut t = client(&server, d.token());
    assert_eq!(
        push(&mut t, vec![mark]).push[0].outcome,
        field_core::sync::protocol::PushOutcome::Accepted
    );
    let flagged: Value = server
        .admin()
        .call::<(), Value>("GET", "/v1/center/shifts?flagged=true", None)
        .unwrap();
    let rows = flagged.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{flagged}");
    let evidence = &rows[0]["flags"][0]["evidence"];
    assert_eq!(
        (evidence["cell"].clone(), evidence["claimed_cell"].as_str()),
        (Value::Null, Some(CELLS[0])),
        "{evidence}"
    );
}
