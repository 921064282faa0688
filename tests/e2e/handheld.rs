//! The handheld's importer on real-world GPX: standard elements other
//! readers refuse, partly timed tracks, the same file twice.

use field_e2e::Device;

/// GPX 1.0 as a phone logger writes it: a BOM, no `version`, `<course>`,
/// `<magvar>`, `<url>`, an empty `<fix>`, one point without a time.
const LOGGER: &str = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<gpx creator=\"GPSLogger\" xmlns=\"http://www.topografix.com/GPX/1/0\">
<url>https://gpslogger.app</url>
<trk><name>patrol</name><trkseg>
<trkpt lat=\"30.1894\" lon=\"120.2601\"><ele>8</ele><time>2025-11-26T00:00:00Z</time><course>91.2</course><speed>1.3</speed><magvar>4.5</magvar><fix/><hdop>0.9</hdop></trkpt>
<trkpt lat=\"30.1894\" lon=\"120.2602\"><time>2025-11-26T00:00:05Z</time><fix></fix></trkpt>
<trkpt lat=\"30.1894\" lon=\"120.2603\"><ele>8</ele></trkpt>
<trkpt lat=\"30.1894\" lon=\"120.2604\"><time>2025-11-26T00:00:15Z</time></trkpt>
</trkseg></trk></gpx>
";

#[test]
fn real_gpx_imports_once_with_its_untimed_points_reported() {
    let d = Device::init("王芳");
    let file = d.file("logger.gpx", LOGGER.as_bytes());
    let path = file.to_str().unwrap();
    let first = d.ok(&["track", "import", path, "--json"]).json();
    assert_eq!(first["imported"], 3, "{first}");
    assert_eq!(first["already_held"], 0);
    let skipped = first["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["point"], "line 7 (track 1 segment 1 point 3)");
    assert_eq!(skipped[0]["reason"], "has no <time>");
    // The same file again: nothing doubles.
    let again = d.ok(&["track", "import", path, "--json"]).json();
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["already_held"], 3);
    let text = d.ok(&["track", "import", path]).stdout;
    assert!(text.contains("3 already held"), "{text}");
    let points = d.ok(&["track", "list", "--points", "--json"]).json();
    assert_eq!(points.as_array().unwrap().len(), 3);
    // A file with no usable point is refused whole, naming the line.
    let untimed = d.file(
        "untimed.gpx",
        b"<gpx><trk><trkseg>\n<trkpt lat=\"30\" lon=\"120\"/>\n</trkseg></trk></gpx>",
    );
    let r = d.run(&["track", "import", untimed.to_str().unwrap()]);
    assert!(!r.ok);
    assert!(
        r.stderr
            .contains("line 2 (track 1 segment 1 point 1) has no <time>"),
        "{}",
        r.stderr
    );
}

/// A fresh handset enrols without `field init`: its store is made and named
/// by the server.
#[test]
fn a_fresh_handset_enrols_and_searches_its_catalog() {
    use field_e2e::server::Server;
    let server = Server::start();
    server.import_grid(&field_e2e::grid_geojson(false));
    let code = server.add_user("王芳", "collector", &field_e2e::CELLS);
    let home = tempfile::tempdir().unwrap();
    let field = |args: &[&str]| {
        std::process::Command::new(field_e2e::field_bin())
            .arg("--home")
            .arg(home.path().join("phone"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = field(&["enroll", "--server", &server.url, "--code", &code, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value =
        serde_json::from_slice(&field(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["user"], "王芳");
    let hits: serde_json::Value =
        serde_json::from_slice(&field(&["catalog", "search", "SJ01", "--json"]).stdout).unwrap();
    let hits = hits.as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(
        hits.iter()
            .all(|h| h["code"].as_str().unwrap().starts_with("SJ01"))
    );
    let name: String = hits[0]["name_zh"]
        .as_str()
        .unwrap()
        .chars()
        .take(2)
        .collect();
    let by_name: serde_json::Value =
        serde_json::from_slice(&field(&["catalog", "search", &name, "--json"]).stdout).unwrap();
    assert!(
        by_name
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["code"] == hits[0]["code"])
    );
    // With --json, an error is JSON too.
    let bad = field(&["case", "show", "not-a-case", "--json"]);
    assert!(!bad.status.success());
    let e: serde_json::Value = serde_json::from_slice(&bad.stderr).expect("a JSON error");
    assert!(
        e["error"].as_str().unwrap().contains("id") || !e["error"].as_str().unwrap().is_empty()
    );
}

/// A position outside every cell is refused unless asked; the case list
/// filters by status, category prefix and day.
#[test]
fn reports_outside_the_grid_are_refused_and_lists_filter() {
    let d = Device::init("王芳");
    let grid = d.file("grid.geojson", field_e2e::grid_geojson(false).as_bytes());
    d.ok(&["grid", "import", grid.to_str().unwrap()]);
    let photo = d.file("p.png", &field_e2e::png(1));
    let p = photo.to_str().unwrap();
    let report = |category: &str, lon: &str, extra: &[&str]| {
        let mut args = vec![
            "case",
            "report",
            "--category",
            category,
            "--lon",
            lon,
            "--lat",
            "30.1895",
            "--desc",
            "x",
            "--photo",
            p,
        ];
        args.extend(extra);
        d.run(&args)
    };
    let far = report("SJ0102", "121.5", &[]);
    assert!(!far.ok);
    assert!(
        far.stderr.contains("outside every cell") && far.stderr.contains("--outside"),
        "{}",
        far.stderr
    );
    let forced = report("SJ0102", "121.5", &["--outside"]);
    assert!(forced.ok, "{}", forced.stderr);
    assert!(forced.stderr.contains("warning"));
    assert!(report("BJ0101", "120.2605", &[]).ok);
    let list = |args: &[&str]| -> usize {
        let mut all = vec!["case", "list", "--json"];
        all.extend(args);
        d.ok(&all).json().as_array().unwrap().len()
    };
    assert_eq!(list(&[]), 2);
    assert_eq!(list(&["--category", "sj01"]), 1);
    assert_eq!(list(&["--status", "reported"]), 2);
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
        .to_string();
    assert_eq!(list(&["--day", &today]), 2);
    assert_eq!(list(&["--day", "2020-01-01"]), 0);
}

/// A collector reads times on the city's wall clock, not in UTC.
#[test]
fn the_handset_prints_times_in_city_time() {
    let d = Device::init("王芳");
    let added = d.ok(&[
        "track",
        "add",
        "--lon",
        "120.26",
        "--lat",
        "30.19",
        "--at",
        "2026-03-02T00:30:00Z",
    ]);
    assert!(
        added.stdout.contains("2026-03-02 08:30:00 CST"),
        "{}",
        added.stdout
    );
    let listed = d.ok(&["track", "list", "--points"]);
    assert!(
        listed.stdout.contains("2026-03-02 08:30:00 CST"),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains("00:30:00Z"), "{}", listed.stdout);
    let summary = d.ok(&["track", "list"]);
    assert!(
        summary.stdout.contains("08:30:00 CST"),
        "{}",
        summary.stdout
    );
}

/// A collector's handset speaks Chinese unless asked otherwise: messages,
/// table heads, statuses and errors.
#[test]
fn the_handset_speaks_chinese_by_default() {
    let d = Device::init("王芳");
    let zh = |args: &[&str]| {
        let out = d.command(args).env_remove("FIELD_LANG").output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, added, _) = zh(&[
        "track",
        "add",
        "--lon",
        "120.26",
        "--lat",
        "30.19",
        "--at",
        "2026-03-02T00:30:00Z",
    ]);
    assert!(
        ok && added.contains("已记录定位点 2026-03-02 08:30:00 CST"),
        "{added}"
    );
    let (_, listed, _) = zh(&["track", "list", "--points"]);
    assert!(
        listed.contains("设备") && listed.contains("精度（米）"),
        "{listed}"
    );
    let (_, status, _) = zh(&["status"]);
    assert!(
        status.contains("服务器") && status.contains("从未"),
        "{status}"
    );
    let (ok, _, err) = zh(&["sync"]);
    assert!(!ok && err.starts_with("错误："), "{err}");
    let photo = d.file("p.png", &field_e2e::png(3));
    let (ok, id, _) = zh(&[
        "case",
        "report",
        "--category",
        "BJ0101",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
        "--desc",
        "井盖",
        "--photo",
        photo.to_str().unwrap(),
    ]);
    assert!(ok);
    let (_, shown, _) = zh(&["case", "show", id.trim()]);
    assert!(
        shown.contains("状态") && shown.contains("上报") && shown.contains("处理记录"),
        "{shown}"
    );
    // Asked for English, it speaks English.
    let en = d
        .command(&["status", "--lang", "en"])
        .env_remove("FIELD_LANG")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&en.stdout).contains("last sync     never"));
}

/// What a handset holds leaves it as files other tools open: a track
/// exported as GPX imports again into another handset point for point; the
/// GeoJSON and CSV carry the same points and cases, times in city time.
#[test]
fn tracks_and_cases_export_to_geojson_csv_and_gpx() {
    let d = Device::init("王芳");
    let file = d.file("logger.gpx", LOGGER.as_bytes());
    d.ok(&["track", "import", file.to_str().unwrap()]);
    d.ok(&[
        "grid",
        "import",
        d.file("grid.geojson", field_e2e::grid_geojson(false).as_bytes())
            .to_str()
            .unwrap(),
    ]);
    let photo = d.file("p.png", &field_e2e::png(3));
    d.ok(&[
        "case",
        "report",
        "--category",
        "SJ0102",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
        "--desc",
        "井盖, \"broken\"",
        "--photo",
        photo.to_str().unwrap(),
        "--at",
        "2025-11-26T09:30:00+08:00",
    ]);
    let gpx = d.home().join("out.gpx");
    let r = d
        .ok(&["track", "export", "--out", gpx.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(r["points"], 3, "{r}");
    let other = Device::init("李伟");
    let back = other
        .ok(&["track", "import", gpx.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(back["imported"], 3, "{back}");
    let mine = d.ok(&["track", "list", "--points", "--json"]).json();
    let theirs = other.ok(&["track", "list", "--points", "--json"]).json();
    for (a, b) in mine
        .as_array()
        .unwrap()
        .iter()
        .zip(theirs.as_array().unwrap())
    {
        assert_eq!(a["at"], b["at"]);
        assert_eq!(a["pos"], b["pos"]);
    }

    let geojson = d.home().join("track.geojson");
    d.ok(&["track", "export", "--out", geojson.to_str().unwrap()]);
    let fc: serde_json::Value = serde_json::from_slice(&std::fs::read(&geojson).unwrap()).unwrap();
    let features = fc["features"].as_array().unwrap();
    assert_eq!(features.len(), 3);
    // 2025-11-26T00:00:00Z is 08:00 in the city.
    assert_eq!(
        features[0]["properties"]["time"],
        "2025-11-26T08:00:00+08:00"
    );
    assert!(
        features[0]["properties"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| !v.is_object() && !v.is_array()),
        "flat properties"
    );

    let csv = d.home().join("cases.csv");
    d.ok(&["case", "export", "--out", csv.to_str().unwrap()]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("id,status,category"));
    let row = lines.next().unwrap();
    assert!(
        row.contains("\"井盖, \"\"broken\"\"\"") && row.contains("2025-11-26T09:30:00+08:00"),
        "{row}"
    );
    let cases = d.home().join("cases.gpx");
    d.ok(&["case", "export", "--out", cases.to_str().unwrap()]);
    let text = std::fs::read_to_string(&cases).unwrap();
    assert!(
        text.contains("<wpt lat=\"30.1895000\" lon=\"120.2605000\">")
            && text.contains("<time>2025-11-26T01:30:00.000Z</time>"),
        "{text}"
    );
    // An extension that says nothing needs --format.
    let r = d.run(&[
        "case",
        "export",
        "--out",
        d.home().join("cases.txt").to_str().unwrap(),
    ]);
    assert!(!r.ok && r.stderr.contains("--format"), "{}", r.stderr);
}
