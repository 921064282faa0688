//! Two devices merge by bundle files with no server; a newer schema is refused.

use field_e2e::{Device, grid_geojson, png};

#[test]
fn two_devices_converge_by_files_and_reimport_is_a_no_op() {
    let a = Device::init("zhou");
    let b = Device::init("zhou");
    for d in [&a, &b] {
        let g = d.file("grid.geojson", grid_geojson(false).as_bytes());
        d.ok(&["grid", "import", g.to_str().unwrap()]);
    }
    let pa = a.file("a.png", &png(11));
    let id = a
        .ok(&[
            "case",
            "report",
            "--category",
            "SJ0102",
            "--lon",
            "120.2605",
            "--lat",
            "30.1895",
            "--desc",
            "garbage",
            "--photo",
            pa.to_str().unwrap(),
        ])
        .stdout
        .trim()
        .to_string();
    let out_a = a.home().join("a1.bundle.json");
    let e = a
        .ok(&[
            "changes",
            "export",
            "--out",
            out_a.to_str().unwrap(),
            "--json",
        ])
        .json();
    assert_eq!(e["changes"], 1);
    assert_eq!(e["photos"], 1);
    let i = b
        .ok(&["changes", "import", out_a.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(i["applied"], 1);

    // Concurrent edits of the same case, then both ways.
    a.ok(&["case", "edit", &id, "--desc", "garbage, two bags"]);
    let pb = b.file("b.png", &png(12));
    b.ok(&[
        "case",
        "edit",
        &id,
        "--desc",
        "garbage, three bags",
        "--add-photo",
        pb.to_str().unwrap(),
    ]);
    let cursor = e["cursor"].as_u64().unwrap().to_string();
    let out_a2 = a.home().join("a2.bundle.json");
    let e2 = a
        .ok(&[
            "changes",
            "export",
            "--out",
            out_a2.to_str().unwrap(),
            "--since",
            &cursor,
            "--json",
        ])
        .json();
    assert_eq!(e2["changes"], 1, "--since exports only what came after");
    let out_b = b.home().join("b.bundle.json");
    b.ok(&["changes", "export", "--out", out_b.to_str().unwrap()]);
    a.ok(&["changes", "import", out_b.to_str().unwrap()]);
    b.ok(&["changes", "import", out_a2.to_str().unwrap()]);
    assert_eq!(a.digest(), b.digest());
    let shown = a.ok(&["case", "show", &id, "--json"]).json();
    assert_eq!(shown["summary"]["photos"], 2);
    assert_eq!(shown["summary"]["photos_missing"], 0);

    let again = a
        .ok(&["changes", "import", out_b.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(again["applied"], 0);
    assert_eq!(a.digest(), b.digest());
}

#[test]
fn a_bundle_from_a_newer_schema_is_refused_clearly() {
    let a = Device::init("sun");
    let out = a.home().join("x.bundle.json");
    a.ok(&["changes", "export", "--out", out.to_str().unwrap()]);
    let (now, next) = (
        field_core::crdt::CHANGE_SCHEMA,
        field_core::crdt::CHANGE_SCHEMA + 1,
    );
    let text = std::fs::read_to_string(&out)
        .unwrap()
        .replace(&format!("\"schema\":{now}"), &format!("\"schema\":{next}"));
    assert!(text.contains(&format!("\"schema\":{next}")), "{text}");
    std::fs::write(&out, text).unwrap();
    let digest = a.digest();
    let r = a.run(&["changes", "import", out.to_str().unwrap()]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains(&format!("schema {next} is newer"))
            && r.stderr.contains("update the field app"),
        "{}",
        r.stderr
    );
    assert_eq!(a.digest(), digest);
}
