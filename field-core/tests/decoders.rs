//! Property-based fuzzing of every decoder that takes outside bytes: change
//! JSON, bundles, GPX, GeoJSON grids, photo headers, catalogs. Inputs are
//! arbitrary bytes and valid samples with random edits (flipped bytes, cut
//! and repeated ranges); each decoder must answer, never panic, and a
//! refusal must say which field and why. The case count is fixed per run.

use field_core::crdt::Change;
use field_core::model::photo::inspect_photo;
use field_core::model::{Catalog, CellCodePattern};
use field_core::sync::Bundle;
use proptest::prelude::*;

const CHANGE: &str = r#"{"schema":2,"actor":"0195a1b2-0000-7000-8000-000000000001","counter":1,"hlc":117000000000000000,"op":{"type":"case_report","case":"0195a1b2-0000-7000-8000-0000000000aa","origin":{"reporter":"0195a1b2-0000-7000-8000-000000000001","collector":"wang","source":"collector","reported_at":"2025-11-26T08:15:00Z"},"fields":{"description":"井盖破损","category":"BJ0101","placement":{"pos":[120.2605,30.1895],"cell":"330109001001001"}},"photos":[{"hash":"6cadcfb1df392d288d870f93b0b63dcf912be59a0951c5987598750d84a6bbe6","role":"before"}],"photo_dot":1}}"#;

const GPX: &str = r#"<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg><trkpt lat="30.1895" lon="120.2605"><time>2025-11-26T00:10:00Z</time><hdop>1.2</hdop></trkpt><trkpt lat="30.1896" lon="120.2606"><time>2025-11-26T00:10:05Z</time></trkpt></trkseg></trk></gpx>"#;

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"><!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"><!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;"><!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"><!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;"><!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]><gpx version="1.1" creator="&lol9;"><trk><trkseg><trkpt lat="30" lon="120"><time>2025-11-26T00:10:00Z</time></trkpt></trkseg></trk></gpx>"#;

const GRID: &str = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"330109001001001","zone":"red","name":"A"},"geometry":{"type":"Polygon","coordinates":[[[120.26,30.19],[120.261,30.19],[120.261,30.189],[120.26,30.189],[120.26,30.19]]]}},{"type":"Feature","properties":{"code":"330109001001002","zone":"blue"},"geometry":{"type":"MultiPolygon","coordinates":[[[[120.261,30.19],[120.262,30.19],[120.262,30.189],[120.261,30.189],[120.261,30.19]]]]}}]}"#;

const CATALOG: &str = r#"{"version":"default-2026.11","entries":[{"code":"BJ0101","family":"component","standard":"CJ/T 214-2007","major_code":"01","major_name":"公用设施","name_zh":"上水井盖","name_en":"water supply manhole cover","confidence":"high"},{"code":"BJ0102","family":"component","standard":"CJ/T 214-2007","major_code":"01","major_name":"公用设施","name_zh":"污水井盖","name_en":"sewer manhole cover","confidence":"high"},{"code":"BJ0103","family":"component","standard":"CJ/T 214-2007","major_code":"01","major_name":"公用设施","name_zh":"雨水井盖","name_en":"storm drain manhole cover","confidence":"high"}]}"#;

fn png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 4, 4);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[7; 16]).unwrap();
    }
    out
}

/// One edit of a sample: flip a byte, cut a range, repeat a range, or cut the end.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Cut(usize, usize),
    Repeat(usize, usize, u8),
    Truncate(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
            (any::<usize>(), 0usize..40).prop_map(|(i, n)| Edit::Cut(i, n)),
            (any::<usize>(), 1usize..40, 1u8..20).prop_map(|(i, n, k)| Edit::Repeat(i, n, k)),
            any::<usize>().prop_map(Edit::Truncate),
        ],
        1..6,
    )
}

fn mutate(sample: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = sample.to_vec();
    for e in edits {
        if b.is_empty() {
            break;
        }
        match *e {
            Edit::Set(i, v) => {
                let i = i % b.len();
                b[i] = v;
            }
            Edit::Cut(i, n) => {
                let i = i % b.len();
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Edit::Repeat(i, n, k) => {
                let i = i % b.len();
                let end = (i + n).min(b.len());
                let piece = b[i..end].to_vec();
                for _ in 0..k {
                    b.splice(i..i, piece.iter().copied());
                }
            }
            Edit::Truncate(i) => b.truncate(i % b.len()),
        }
    }
    b
}

/// A refusal names a field and a reason (`field: reason`), on one line.
fn clear(e: &field_core::Error) -> bool {
    let text = e.to_string();
    !text.trim().is_empty() && text.len() < 4096
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_samples_themselves_decode() {
    Change::from_json(CHANGE).unwrap();
    assert_eq!(
        field_core::import::read_gpx(GPX.as_bytes()).unwrap().len(),
        2
    );
    assert_eq!(
        field_core::import::parse_grid(GRID, &CellCodePattern::default())
            .unwrap()
            .len(),
        2
    );
    inspect_photo("photo", &png()).unwrap();
    Catalog::from_json(CATALOG).unwrap();
    // Entities are not expanded: the billion laughs is refused, small and fast.
    let e = field_core::import::read_gpx(BILLION_LAUGHS.as_bytes()).map(|p| p.len());
    assert!(e.as_ref().map_or(true, |n| *n == 1), "{e:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn change_json(edits in edits(), noise in ".{0,200}") {
        for input in [text(&mutate(CHANGE.as_bytes(), &edits)), noise.clone()] {
            match Change::from_json(&input) {
                Ok(c) => { let _ = c.check_bounds(); let _ = c.to_json(); }
                Err(e) => prop_assert!(clear(&e), "{e}"),
            }
        }
    }

    #[test]
    fn bundle(edits in edits()) {
        let good = Bundle::new(uuid::Uuid::nil(), 0, vec![Change::from_json(CHANGE).unwrap()], vec![]);
        let input = text(&mutate(serde_json::to_string(&good).unwrap().as_bytes(), &edits));
        if let Err(e) = Bundle::from_json(&input) {
            prop_assert!(clear(&e), "{e}");
        }
    }

    #[test]
    fn gpx(edits in edits(), noise in prop::collection::vec(any::<u8>(), 0..300)) {
        for input in [mutate(GPX.as_bytes(), &edits), noise.clone(), mutate(BILLION_LAUGHS.as_bytes(), &edits)] {
            if let Err(e) = field_core::import::read_gpx(&input[..]) {
                prop_assert!(clear(&e), "{e}");
            }
        }
    }

    #[test]
    fn geojson_grid(edits in edits()) {
        let input = text(&mutate(GRID.as_bytes(), &edits));
        match field_core::import::parse_grid(&input, &CellCodePattern::default()) {
            Ok(cells) => { let _ = field_core::geo::check_tiling(&cells, 1.0); }
            Err(e) => prop_assert!(clear(&e), "{e}"),
        }
        if let Err(e) = field_core::import::geojson_grid::parse_polygonal(&input) {
            prop_assert!(clear(&e), "{e}");
        }
    }

    #[test]
    fn photo_header(edits in edits(), noise in prop::collection::vec(any::<u8>(), 0..64)) {
        for input in [mutate(&png(), &edits), noise.clone()] {
            if let Err(e) = inspect_photo("photo", &input) {
                prop_assert!(clear(&e), "{e}");
            }
        }
    }

    #[test]
    fn catalog(edits in edits()) {
        if let Err(e) = Catalog::from_json(&text(&mutate(CATALOG.as_bytes(), &edits))) {
            prop_assert!(clear(&e), "{e}");
        }
    }
}
