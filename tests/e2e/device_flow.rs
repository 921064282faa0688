//! A collector's day through the CLI: grid, track, shift, report, edit, show.

use field_e2e::{Device, gpx_track, grid_geojson, png};

#[test]
fn report_edit_and_show_with_history() {
    let d = Device::init("王芳");
    let grid = d.file("grid.geojson", grid_geojson(false).as_bytes());
    let g = d
        .ok(&["grid", "import", grid.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(g["cells"], 9);
    // 0.001° × 0.001° cells at 30.19°N, rings written clockwise: ~96 m × ~111 m each.
    let area = g["area_m2"].as_f64().unwrap();
    assert!(
        (area / 9.0 - 10_670.0).abs() < 60.0,
        "geodesic area per cell {}",
        area / 9.0
    );

    let gpx = d.file("day.gpx", gpx_track(120).as_bytes());
    let t = d
        .ok(&["track", "import", gpx.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(t["imported"], 120);
    d.ok(&[
        "track",
        "add",
        "--lon",
        "120.2615",
        "--lat",
        "30.1885",
        "--at",
        "2025-11-26T08:00:00+08:00",
        "--accuracy",
        "4.5",
    ]);
    let list = d.ok(&["track", "list", "--json"]).json();
    assert_eq!(list[0]["points"], 121);

    let shift = d
        .ok(&[
            "shift",
            "start",
            "--at",
            "2025-11-26T07:10:00+08:00",
            "--lon",
            "120.2615",
            "--lat",
            "30.1885",
            "--json",
        ])
        .json();
    assert_eq!(shift["cell"], "330109001001005");

    let p1 = d.file("p1.png", &png(1));
    let p2 = d.file("p2.png", &png(2));
    let id = d.ok(&[
        "case",
        "report",
        "--category",
        "BJ0101",
        "--lon",
        "120.2615",
        "--lat",
        "30.1885",
        "--desc",
        "井盖破损 cover broken",
        "--photo",
        p1.to_str().unwrap(),
        "--at",
        "2025-11-26T08:05:00+08:00",
    ]);
    let id = id.stdout.trim().to_string();
    assert_eq!(id.len(), 36, "prints the new case id: {id}");

    d.ok(&[
        "case",
        "edit",
        &id[..8],
        "--desc",
        "cover missing",
        "--add-photo",
        p2.to_str().unwrap(),
    ]);
    let shown = d.ok(&["case", "show", &id, "--json"]).json();
    assert_eq!(shown["case"]["description"], "cover missing");
    assert_eq!(shown["summary"]["cell"], "330109001001005");
    assert_eq!(shown["summary"]["photos"], 2);
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0]["overwritten"][0], "description",
        "the first description was overwritten"
    );
    assert_eq!(
        history[0]["op"]["fields"]["description"], "井盖破损 cover broken",
        "and stays in the history"
    );
    // Readably: which field went from what to what.
    let edit = history[1]["edits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "description")
        .expect("the edit names the field");
    assert_eq!(edit["old"], "井盖破损 cover broken");
    assert_eq!(edit["new"], "cover missing");
    let text = d.ok(&["case", "show", &id]).stdout;
    assert!(
        text.contains("description: \"井盖破损 cover broken\" → \"cover missing\""),
        "{text}"
    );
    assert!(text.contains("photos: \"+1\""), "{text}");

    // Same photo in two cases is stored once.
    d.ok(&[
        "case",
        "report",
        "--category",
        "SJ0201",
        "--lon",
        "120.2625",
        "--lat",
        "30.1885",
        "--desc",
        "poster",
        "--photo",
        p1.to_str().unwrap(),
    ]);
    let db = rusqlite_count(&d, "photos");
    assert_eq!(db, 2, "two distinct photos, three citations");

    let cases = d.ok(&["case", "list", "--json"]).json();
    assert_eq!(cases.as_array().unwrap().len(), 2);
    let quick = d.run(&[
        "case",
        "report",
        "--category",
        "SJ0201",
        "--lon",
        "120.2625",
        "--lat",
        "30.1885",
        "--desc",
        "x",
        "--photo",
        p1.to_str().unwrap(),
        "--quick-fix",
    ]);
    assert!(!quick.ok, "a quick fix needs an after photo");
}

fn rusqlite_count(d: &Device, table: &str) -> i64 {
    let conn = field_core_conn(d);
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn field_core_conn(d: &Device) -> rusqlite::Connection {
    rusqlite::Connection::open(d.home().join("device.db")).unwrap()
}
