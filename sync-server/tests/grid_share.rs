//! A collector's handset holds their beat and its neighbours, not the
//! city's grid; a new beat or a new grid is sent again; staff hold it all.

use sync_server::service::{AssignRequest, NewUserRequest};
use sync_server::storage::Role;

mod support;
use support::{Handset, Harness};

const CELLS: usize = 30;

fn code(i: usize) -> String {
    format!("3301090010010{:02}", i + 1)
}

/// 30 cells of 0.001° (~96 m) side by side, west to east.
fn row() -> String {
    let features: Vec<serde_json::Value> = (0..CELLS)
        .map(|c| {
            let x0 = 120.26 + c as f64 * 0.001;
            serde_json::json!({
                "type": "Feature",
                "properties": { "code": code(c), "zone": "red" },
                "geometry": { "type": "Polygon", "coordinates": [[[x0, 30.19], [x0 + 0.001, 30.19], [x0 + 0.001, 30.189], [x0, 30.189], [x0, 30.19]]] }
            })
        })
        .collect();
    serde_json::json!({ "type": "FeatureCollection", "features": features }).to_string()
}

fn held(h: &Handset) -> Vec<String> {
    let mut codes: Vec<String> = h
        .store
        .cells()
        .unwrap()
        .into_iter()
        .map(|c| c.code.to_string())
        .collect();
    codes.sort();
    codes
}

fn reauthenticate(hx: &Harness, h: &mut Handset) {
    let token = h.store.sync_settings().unwrap().unwrap().token;
    h.principal = hx.center.authenticate(Some(&token)).unwrap();
}

#[test]
fn a_collector_holds_their_beat_and_its_neighbours() {
    let now = field_core::model::Timestamp::parse("now", "2026-11-25T10:00:00+08:00")
        .unwrap()
        .millis();
    let hx = Harness::new(now, &row());
    let mut collector = hx.enrol(NewUserRequest {
        name: "冯".into(),
        role: Role::Collector,
        company: None,
        cells: vec![code(15)],
        from: None,
    });
    let first = hx.push(&mut collector);
    assert!(first.pull.grid.is_some(), "the first sync sends a grid");
    let codes = held(&collector);
    // 500 m either side of a 96 m cell: five neighbours each way, give or
    // take the one touching the edge of reach.
    for near in [10, 14, 15, 16, 20] {
        assert!(
            codes.contains(&code(near)),
            "{} missing from {codes:?}",
            code(near)
        );
    }
    for far in [0, 8, 22, 29] {
        assert!(!codes.contains(&code(far)), "{} held: {codes:?}", code(far));
    }
    assert!(
        hx.push(&mut collector).pull.grid.is_none(),
        "held already: not sent again"
    );

    // A new beat at the east end: its share comes down with the next sync.
    hx.center
        .assign(
            &hx.admin,
            AssignRequest {
                collector: "冯".into(),
                cells: vec![code(29)],
                from: chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            },
        )
        .unwrap();
    reauthenticate(&hx, &mut collector);
    let moved = hx.push(&mut collector);
    assert!(moved.pull.grid.is_some(), "a new beat sends the grid again");
    assert_eq!(moved.pull.assigned_cells, vec![code(29)]);
    let codes = held(&collector);
    assert!(codes.contains(&code(29)) && codes.contains(&code(25)));
    assert!(
        !codes.contains(&code(15)),
        "the old beat is gone: {codes:?}"
    );

    // A new grid (one more cell) is sent to a beat that did not move.
    let mut bigger: serde_json::Value = serde_json::from_str(&row()).unwrap();
    let mut extra = bigger["features"][29].clone();
    extra["properties"]["code"] = code(30).into();
    extra["geometry"]["coordinates"][0]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .for_each(|p| p[0] = (p[0].as_f64().unwrap() + 0.001).into());
    bigger["features"].as_array_mut().unwrap().push(extra);
    hx.center
        .import_grid(&hx.admin, &bigger.to_string())
        .unwrap();
    assert!(hx.push(&mut collector).pull.grid.is_some());
    assert!(held(&collector).contains(&code(30)));

    // Staff hold the whole city.
    let mut reviewer = hx.enrol(NewUserRequest {
        name: "褚".into(),
        role: Role::Reviewer,
        company: None,
        cells: vec![],
        from: None,
    });
    hx.push(&mut reviewer);
    assert_eq!(held(&reviewer).len(), CELLS + 1);
}
