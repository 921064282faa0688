//! Fraud flags and likely duplicates, one scenario each: every flagged case
//! raises exactly its flag, with evidence; a clean case raises none.

use field_e2e::server::Server;
use field_e2e::{Device, grid_geojson, jpeg_with_exif, png};
use serde_json::Value;

const TOP_ROW: [&str; 3] = ["330109001001001", "330109001001002", "330109001001003"];

fn report(
    d: &Device,
    photo: &std::path::Path,
    category: &str,
    lon: &str,
    lat: &str,
    at: &str,
) -> String {
    d.ok(&[
        "case",
        "report",
        "--category",
        category,
        "--lon",
        lon,
        "--lat",
        lat,
        "--desc",
        "x",
        "--photo",
        photo.to_str().unwrap(),
        "--at",
        at,
    ])
    .stdout
    .trim()
    .to_string()
}

fn track(d: &Device, lon: &str, lat: &str, at: &str) {
    d.ok(&[
        "track",
        "add",
        "--lon",
        lon,
        "--lat",
        lat,
        "--at",
        at,
        "--accuracy",
        "5",
    ]);
}

/// The evidence of a row's flag of `kind`.
fn flag(row: &Value, kind: &str) -> Value {
    row["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} flag: {row}"))["evidence"]
        .clone()
}

/// The flags of a row but `backdated`: this test's cases are reported with
/// `--at` on a day a year back, so each carries that one too (asserted
/// apart); the others are what each case is about.
fn kinds(row: &Value) -> Vec<String> {
    let all: Vec<String> = row["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(all.iter().any(|k| k == "backdated"), "{row}");
    all.into_iter().filter(|k| k != "backdated").collect()
}

#[test]
fn each_signal_raises_exactly_its_flag_with_evidence() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("赵", "collector", &TOP_ROW));
    let reviewer = server.enrolled_device(&server.add_user("审核", "reviewer", &[]));
    d.ok(&["sync"]);

    // The collector walks the top row between 08:00 and 09:00 local.
    for step in 0..12 {
        let lon = format!("{:.6}", 120.2605 + 0.002 * step as f64 / 11.0);
        track(
            &d,
            &lon,
            "30.1895",
            &format!("2025-11-26T08:{:02}:00+08:00", step * 5),
        );
    }
    let p = |name: &str, seed: u32| d.file(name, &png(seed));

    // Clean: on the track, own photo, no EXIF, nothing near of its kind.
    let clean = report(
        &d,
        &p("clean.png", 1),
        "BJ0101",
        "120.2605",
        "30.1895",
        "2025-11-26T08:00:30+08:00",
    );
    // Reused photo: the same picture for two different problems.
    let shared = p("shared.png", 2);
    let reused_a = report(
        &d,
        &shared,
        "BJ0118",
        "120.2615",
        "30.1895",
        "2025-11-26T08:20:00+08:00",
    );
    let reused_b = report(
        &d,
        &shared,
        "SJ0201",
        "120.2625",
        "30.1895",
        "2025-11-26T08:40:00+08:00",
    );
    // Far from the track: reported ~280 m south-east of where the track was.
    let far = report(
        &d,
        &p("far.png", 3),
        "BJ0104",
        "120.2628",
        "30.1871",
        "2025-11-26T08:10:00+08:00",
    );
    // EXIF time two hours before the report.
    let exif = d.file("old.jpg", &jpeg_with_exif(4, "2025:11:26 06:30:00"));
    let old = report(
        &d,
        &exif,
        "SJ0102",
        "120.2625",
        "30.1895",
        "2025-11-26T08:41:00+08:00",
    );
    // Likely duplicate: a second open SJ0533-like report 15 m from the first.
    let first = report(
        &d,
        &p("dup1.png", 5),
        "SJ0505",
        "120.2616",
        "30.1894",
        "2025-11-26T08:21:00+08:00",
    );
    let second = report(
        &d,
        &p("dup2.png", 6),
        "SJ0505",
        "120.2617",
        "30.1893",
        "2025-11-26T08:22:00+08:00",
    );
    // Test cases: one inside the assigned cells, one far outside them.
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
    d.ok(&[
        "shift",
        "end",
        "--at",
        "2025-11-26T20:20:00+08:00",
        "--lon",
        "120.2625",
        "--lat",
        "30.1875",
    ]);
    d.ok(&["sync"]);

    let queue = reviewer.ok(&["center", "case", "list", "--json"]).json();
    let row = |id: &str| {
        queue
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} not queued"))
            .clone()
    };

    let c = row(&clean);
    assert!(
        kinds(&c).is_empty() && c["likely_duplicates"].as_array().unwrap().is_empty(),
        "clean case: {c}"
    );

    for (id, other) in [(&reused_a, &reused_b), (&reused_b, &reused_a)] {
        let r = row(id);
        assert_eq!(kinds(&r), vec!["reused_photo"], "{r}");
        assert_eq!(flag(&r, "reused_photo")["other_cases"][0], other.as_str());
    }

    let f = row(&far);
    // Reported in a cell that is not the collector's: flagged too.
    assert_eq!(kinds(&f), vec!["outside_cells", "far_from_track"], "{f}");
    assert_eq!(flag(&f, "outside_cells")["cell"], "330109001001009");
    let distance = flag(&f, "far_from_track")["distance_m"].as_f64().unwrap();
    assert!(distance > 200.0 && distance < 400.0, "{distance}");

    let o = row(&old);
    assert_eq!(kinds(&o), vec!["exif_time"], "{o}");
    assert_eq!(flag(&o, "exif_time")["minutes_apart"], 131);

    let s = row(&second);
    assert!(kinds(&s).is_empty(), "{s}");
    assert_eq!(s["likely_duplicates"][0]["id"], first.as_str());
    assert!(s["likely_duplicates"][0]["distance_m"].as_f64().unwrap() <= 30.0);

    let shifts = reviewer
        .ok(&["center", "shifts", "--flagged", "--json"])
        .json();
    let flagged = shifts.as_array().unwrap();
    assert_eq!(flagged.len(), 1, "{shifts}");
    assert_eq!(flagged[0]["mark"]["kind"], "end");
    assert_eq!(flagged[0]["flags"][0]["kind"], "test_case_outside_cells");
    assert_eq!(
        flagged[0]["flags"][0]["evidence"]["cell"],
        "330109001001009"
    );
}
