//! Citizens' reports through Open311 GeoReport v2, exercised by the
//! `georeport` package from PyPI (a client nobody here wrote): the catalog
//! as services in JSON and XML, a request posted by a channel, its status
//! following the case's lifecycle as the center registers and closes it, a
//! verification task for the collector of that cell, the finding the miss
//! rate counts, and the abuse bounds (unknown and revoked keys, bad input,
//! the hourly allowance).

use field_e2e::server::Server;
use field_e2e::{Device, grid_geojson, png};
use serde_json::Value;

const CELL: &str = "330109001001001";

fn georeport_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import georeport, requests"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("FIELD_PYTHON_REQUIRED").is_none(),
            "georeport is required here (scripts/test installs it)"
        );
        eprintln!("SKIPPED: no georeport (scripts/test installs it)");
    }
    ok
}

fn client(root: &str, args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/open311/client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(root)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the client")
}

fn post(root: &str, key: &str, code: &str, lat: &str, long: &str, desc: &str) -> (u16, Value) {
    let r = client(root, &["post", key, code, lat, long, desc]);
    let status = r["status"].as_u64().unwrap() as u16;
    let body = serde_json::from_str(r["body"].as_str().unwrap()).unwrap_or(Value::Null);
    (status, body)
}

#[test]
fn a_citizens_request_follows_its_case_through_georeport() {
    if !georeport_available() {
        return;
    }
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let collector = server.enrolled_device(&server.add_user("王芳", "collector", &[CELL]));
    let staff = server.enrolled_device(&server.add_user("指挥中心", "admin", &[]));
    let root = format!("{}/open311/v2", server.url.trim_end_matches('/'));

    // The catalog as services, in both formats, through georeport.
    let services = client(&root, &["services"]);
    let json_codes: Vec<&str> = services["json"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_code"].as_str().unwrap())
        .collect();
    assert!(json_codes.contains(&"BJ0101"), "{json_codes:?}");
    let xml = services["xml"].as_array().unwrap();
    assert_eq!(xml.len(), json_codes.len(), "the same services in XML");
    let manhole = xml.iter().find(|s| s["service_code"] == "BJ0101").unwrap();
    assert_eq!(manhole["metadata"], "false");
    assert!(manhole["service_name"].as_str().unwrap().contains("井盖"));
    assert_eq!(services["definition_json"]["service_code"], json_codes[0]);
    assert_eq!(services["definition_xml"]["service_code"], json_codes[0]);

    // A channel, with verification tasks for the cell's collector.
    let opened = staff
        .ok(&[
            "center",
            "channel",
            "add",
            "12345热线",
            "--per-hour",
            "5",
            "--verify-within-hours",
            "24",
            "--json",
        ])
        .json();
    let key = opened["api_key"].as_str().unwrap().to_string();
    // Only admins open channels (the authorisation table's row).
    let reviewer = server.enrolled_device(&server.add_user("受理", "reviewer", &[]));
    let refused = reviewer.run(&["center", "channel", "add", "别的渠道"]);
    assert!(!refused.ok, "a reviewer opened a channel");
    let listed = staff.ok(&["center", "channel", "list", "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // Bad input is refused naming the field, nothing recorded.
    let (status, body) = post(&root, &key, "BJ0101", "95", "120.2605", "x");
    assert_eq!(status, 400, "{body}");
    assert!(
        body[0]["description"].as_str().unwrap().contains("lat"),
        "{body}"
    );
    let (status, body) = post(&root, &key, "NOPE99", "30.1895", "120.2605", "x");
    assert_eq!(status, 400);
    assert!(
        body[0]["description"]
            .as_str()
            .unwrap()
            .contains("service_code"),
        "{body}"
    );
    let (status, _) = post(
        &root,
        "o311_not_a_key",
        "BJ0101",
        "30.1895",
        "120.2605",
        "x",
    );
    assert_eq!(status, 401);

    // The citizen's request: a case, a finding, a verification task.
    let (status, body) = post(
        &root,
        &key,
        "BJ0101",
        "30.1895",
        "120.2605",
        "井盖缺失，有人差点掉下去",
    );
    assert_eq!(status, 201, "{body}");
    let id = body[0]["service_request_id"].as_str().unwrap().to_string();
    let token = body[0]["token"].as_str().unwrap().to_string();
    let by_token = client(&root, &["token", &token]);
    assert_eq!(by_token["body"][0]["service_request_id"], id.as_str());

    let read = client(&root, &["status", &id]);
    assert_eq!(read["json"]["status"], "open");
    assert_eq!(read["json"]["status_notes"], "上报");
    assert_eq!(read["xml"]["status"], "open");
    assert_eq!(read["list"][0]["service_request_id"], id.as_str());
    assert_eq!(read["json"]["address"], "滨江区 江南大道 1 号");
    let case = staff.ok(&["center", "case", "show", &id, "--json"]).json();
    assert_eq!(case["case"]["origin"]["source"], "citizen");
    let findings = staff.ok(&["center", "finding", "list", "--json"]).json();
    assert!(
        findings
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["source"] == "citizen" && f["category"] == "BJ0101"),
        "the miss rate's finding: {findings}"
    );
    collector.ok(&["sync"]);
    let tasks = collector.ok(&["task", "list", "--json"]).json();
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["spec"]["kind"] == "verify" && t["spec"]["case"] == id.as_str()),
        "a verification task for the cell's collector: {tasks}"
    );

    // The center works the case; the citizen sees it through georeport.
    staff.ok(&["center", "case", "register", &id]);
    assert_eq!(
        client(&root, &["status", &id])["json"]["status_notes"],
        "立案"
    );
    staff.ok(&["center", "case", "dispatch", &id, "--to", "市政设施管理处"]);
    staff.ok(&["center", "case", "handled", &id]);
    staff.ok(&[
        "center", "task", "create", "--kind", "check", "--case", &id, "--to", "王芳", "--due", "2h",
    ]);
    collector.ok(&["sync"]);
    let tasks = collector.ok(&["task", "list", "--json"]).json();
    let check = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["spec"]["kind"] == "check")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let photo = collector.file("check.png", &png(7));
    collector.ok(&[
        "task",
        "answer",
        &check,
        "--result",
        "yes",
        "--photo",
        photo.to_str().unwrap(),
    ]);
    collector.ok(&["sync"]);
    staff.ok(&["center", "case", "close", &id]);
    let closed = client(&root, &["status", &id]);
    assert_eq!(closed["json"]["status"], "closed");
    assert_eq!(closed["json"]["status_notes"], "结案");
    assert_eq!(closed["json"]["agency_responsible"], "市政设施管理处");
    assert_eq!(closed["xml"]["status"], "closed");

    // The hourly allowance (5): the sixth request this hour gets 429.
    let mut last = (0, Value::Null, None);
    for i in 0..5 {
        let r = client(
            &root,
            &[
                "post",
                &key,
                "BJ0101",
                "30.1895",
                "120.2605",
                &format!("again {i}"),
            ],
        );
        last = (
            r["status"].as_u64().unwrap(),
            r["body"].clone(),
            r["retry_after"].as_str().map(String::from),
        );
    }
    assert_eq!(last.0, 429, "{:?}", last.1);
    assert!(
        last.2
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n > 0))
    );

    // A revoked key is refused at once.
    staff.ok(&["center", "channel", "revoke", "12345热线"]);
    let (status, body) = post(&root, &key, "BJ0101", "30.1895", "120.2605", "x");
    assert_eq!(status, 403, "{body}");
}
