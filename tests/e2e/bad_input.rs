//! Bad input is refused with an error naming the field and the reason, and
//! the store is untouched (same digest, same change count).

use field_e2e::{Device, grid_geojson, png};

fn untouched(d: &Device, args: &[&str], expect: &[&str]) {
    let (digest, changes) = (d.digest(), d.change_count());
    let r = d.run(args);
    assert!(!r.ok, "field {args:?} should fail");
    for e in expect {
        assert!(
            r.stderr.contains(e),
            "field {args:?}: error lacks {e:?}:\n{}",
            r.stderr
        );
    }
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(d.digest(), digest, "store changed after {args:?}");
    assert_eq!(d.change_count(), changes);
}

#[test]
fn each_bad_value_is_a_clear_error_and_an_untouched_store() {
    let d = Device::init("li");
    let good = d.file("grid.geojson", grid_geojson(false).as_bytes());
    d.ok(&["grid", "import", good.to_str().unwrap()]);
    let photo = d.file("ok.png", &png(7));
    let p = photo.to_str().unwrap();
    d.ok(&[
        "case",
        "report",
        "--category",
        "BJ0101",
        "--lon",
        "120.2615",
        "--lat",
        "30.1885",
        "--desc",
        "baseline",
        "--photo",
        p,
    ]);

    let malformed = d.file(
        "bad.geojson",
        b"{\"type\": \"FeatureCollection\", \"features\": [",
    );
    untouched(
        &d,
        &["grid", "import", malformed.to_str().unwrap()],
        &["grid", "not valid GeoJSON"],
    );
    let overlapping = d.file("overlap.geojson", grid_geojson(true).as_bytes());
    untouched(
        &d,
        &["grid", "import", overlapping.to_str().unwrap()],
        &["330109001001008 and 330109001001009 overlap"],
    );
    let cells_before = d.ok(&["grid", "list", "--json"]).json();
    assert_eq!(
        cells_before.as_array().unwrap().len(),
        9,
        "the old grid stays"
    );

    let report = |cat: &str, lon: &str, lat: &str, photo: &str| {
        vec![
            "case".to_string(),
            "report".into(),
            "--category".into(),
            cat.into(),
            "--lon".into(),
            lon.into(),
            "--lat".into(),
            lat.into(),
            "--desc".into(),
            "d".into(),
            "--photo".into(),
            photo.into(),
        ]
    };
    let run = |args: Vec<String>, expect: &[&str]| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        untouched(&d, &refs, expect);
    };
    run(
        report("BJ9999", "120.2615", "30.1885", p),
        &["category:", "not in the catalog"],
    );
    run(
        report("0101", "120.2615", "30.1885", p),
        &["category:", "family-qualified"],
    );
    run(
        report("BJ0101", "120.2615", "91", p),
        &["lat:", "out of range"],
    );
    run(
        report("BJ0101", "NaN", "30.1885", p),
        &["lon:", "not a finite number"],
    );
    let empty = d.file("empty.jpg", b"");
    run(
        report("BJ0101", "120.2615", "30.1885", empty.to_str().unwrap()),
        &["photo:", "0 bytes"],
    );
    let text = d.file("notes.jpg", b"this is not a picture at all");
    run(
        report("BJ0101", "120.2615", "30.1885", text.to_str().unwrap()),
        &["photo:", "not an image"],
    );
    untouched(
        &d,
        &[
            "track",
            "add",
            "--lon",
            "120.26",
            "--lat",
            "30.18",
            "--at",
            "yesterday",
        ],
        &["at:", "RFC 3339"],
    );
    untouched(
        &d,
        &[
            "track",
            "add",
            "--lon",
            "120.26",
            "--lat",
            "30.18",
            "--at",
            "2025-11-26T08:00:00Z",
            "--accuracy",
            "-3",
        ],
        &["accuracy:"],
    );
    // No usable point at all: refused whole, naming the first. (A partly
    // timed track imports its timed points: tests/e2e/handheld.rs.)
    let untimed = d.file("untimed.gpx", br#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg><trkpt lat="30.1" lon="120.2"></trkpt><trkpt lat="30.1" lon="120.2"/></trkseg></trk></gpx>"#);
    untouched(
        &d,
        &["track", "import", untimed.to_str().unwrap()],
        &["point 1) has no <time>", "nothing was imported"],
    );
}
