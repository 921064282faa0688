//! Real GPX and GeoJSON files written by other projects (`../shared/fixtures`,
//! or FIELD_FIXTURES): each imports with the right point count or is refused
//! with a clear error, never a panic. Absent fixtures are reported as skipped.

use std::path::{Path, PathBuf};

use field_core::import::{parse_grid, parse_polygonal, read_gpx, read_gpx_report};
use field_core::model::CellCodePattern;

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("FIELD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: fixtures folder {} is absent (set FIELD_FIXTURES)",
            dir.display()
        );
        None
    }
}

fn files(dir: &Path, ext: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| ext.contains(&x))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Counts `<tag ` / `<tag>` openings in the raw text: an independent count.
fn count_tag(text: &str, tag: &str) -> usize {
    text.matches(&format!("<{tag} ")).count() + text.matches(&format!("<{tag}>")).count()
}

#[test]
fn gpx_files_import_with_exact_counts_or_are_refused_clearly() {
    let Some(dir) = fixtures() else { return };
    let all = files(&dir.join("gpx"), &["gpx", "xml"]);
    assert!(
        all.len() >= 20,
        "expected the whole GPX set, found {}",
        all.len()
    );
    let (mut imported, mut refused) = (0, 0);
    for path in &all {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).to_string();
        let result =
            std::panic::catch_unwind(|| read_gpx_report(std::fs::File::open(path).unwrap()));
        let result = result.unwrap_or_else(|_| panic!("{} panicked the importer", path.display()));
        match result {
            Ok(read) => {
                let trkpt = count_tag(&text, "trkpt");
                let expected = if trkpt > 0 {
                    trkpt
                } else {
                    count_tag(&text, "wpt")
                };
                // Every point is imported or reported with its reason.
                assert_eq!(
                    read.points.len() + read.skipped.len(),
                    expected,
                    "{}",
                    path.display()
                );
                imported += 1;
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with("gpx"), "{}: {msg}", path.display());
                assert!(
                    msg.contains("no <time>")
                        || msg.contains("not a readable GPX")
                        || msg.contains("no track points"),
                    "{}: unclear refusal: {msg}",
                    path.display()
                );
                refused += 1;
            }
        }
    }
    assert!(
        imported >= 5 && refused >= 3,
        "imported {imported}, refused {refused}"
    );
}

#[test]
fn specific_gpx_outcomes() {
    let Some(dir) = fixtures() else { return };
    let open = |p: &str| std::fs::File::open(dir.join("gpx").join(p)).unwrap();
    let e = read_gpx(open("georust-gpx/badcharacter.xml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a readable GPX"), "{e}");
    let e = read_gpx(open("togeojson/empty_trk.gpx"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no track points"), "{e}");
    let pts = read_gpx(open("georust-gpx/garmin-activity.gpx")).unwrap();
    assert_eq!(pts.len(), 988);
    assert!(
        pts.windows(2).all(|w| w[0].at <= w[1].at),
        "activity points are in time order"
    );
}

#[test]
fn every_invalid_geojson_is_refused_and_valid_polygons_accepted() {
    let Some(dir) = fixtures() else { return };
    let pattern = CellCodePattern::default();
    let invalid = files(&dir.join("geojson/invalid"), &["json"]);
    assert!(invalid.len() >= 30, "{}", invalid.len());
    for path in &invalid {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            parse_polygonal(&text).is_err(),
            "{} accepted as an area",
            path.display()
        );
        let e = parse_grid(&text, &pattern).unwrap_err().to_string();
        assert!(!e.is_empty());
    }
    let mut polygons = 0;
    for path in files(&dir.join("geojson/valid"), &["json"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        let kind = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let result = parse_polygonal(&text);
        if kind == "polygon" || kind == "multipolygon" {
            let mp = result.unwrap_or_else(|e| panic!("{} refused: {e}", path.display()));
            assert!(!mp.0.is_empty());
            polygons += 1;
        } else if kind != "feature" {
            // Points and lines are valid GeoJSON but not areas: refused, not panicked.
            assert!(result.is_err(), "{} accepted as an area", path.display());
        }
    }
    assert_eq!(
        polygons, 7,
        "valid/polygon and valid/multipolygon hold 7 files"
    );
}
