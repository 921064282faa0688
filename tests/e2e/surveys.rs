//! Special surveys: devices in the survey's cells see it, cases reported
//! under it carry its id, and its report counts them by category and cell.

use field_e2e::server::Server;
use field_e2e::{grid_geojson, png};

#[test]
fn a_survey_reaches_its_cells_and_counts_its_cases() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let inside = server.enrolled_device(&server.add_user(
        "钱",
        "collector",
        &["330109001001001", "330109001001002", "330109001001003"],
    ));
    let outside = server.enrolled_device(&server.add_user(
        "孙",
        "collector",
        &["330109001001007", "330109001001008", "330109001001009"],
    ));
    let staff = server.enrolled_device(&server.add_user("审核", "reviewer", &[]));
    let created = staff
        .ok(&[
            "center",
            "survey",
            "create",
            "城乡结合部暴露垃圾普查",
            "--cells",
            "330109001001001,330109001001002",
            "--categories",
            "SJ0102,06010",
            "--from",
            "2025-11-20",
            "--to",
            "2025-11-30",
            "--json",
        ])
        .json();
    let id = created["id"].as_str().unwrap().to_string();
    inside.ok(&["sync"]);
    outside.ok(&["sync"]);
    let seen = inside.ok(&["survey", "list", "--json"]).json();
    assert_eq!(seen[0]["id"], id.as_str());
    assert_eq!(
        outside
            .ok(&["survey", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        0,
        "not in its cells"
    );

    let report = |seed: u32, category: &str, lon: &str, survey: Option<&str>| {
        let p = inside.file(&format!("s{seed}.png"), &png(seed));
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
            "garbage",
            "--photo",
            p.to_str().unwrap(),
            "--at",
            "2025-11-26T10:00:00+08:00",
        ];
        if let Some(s) = survey {
            args.extend(["--survey", s]);
        }
        inside.run(&args)
    };
    assert!(report(1, "SJ0102", "120.2605", Some(&id)).ok);
    assert!(report(2, "06010", "120.2615", Some(&id)).ok);
    assert!(
        report(3, "SJ0102", "120.2605", None).ok,
        "an ordinary case beside the survey"
    );
    let wrong_cell = report(4, "SJ0102", "120.2625", Some(&id));
    assert!(
        !wrong_cell.ok && wrong_cell.stderr.contains("does not cover this cell"),
        "{}",
        wrong_cell.stderr
    );
    let wrong_category = report(5, "BJ0101", "120.2605", Some(&id));
    assert!(
        !wrong_category.ok && wrong_category.stderr.contains("does not cover category"),
        "{}",
        wrong_category.stderr
    );
    inside.ok(&["sync"]);

    let r = staff
        .ok(&["center", "survey", "report", &id, "--json"])
        .json();
    assert_eq!(r["cases"], 2);
    assert_eq!(r["by_category"]["SJ0102"], 1);
    assert_eq!(r["by_category"]["06010"], 1);
    assert_eq!(r["by_cell"]["330109001001001"], 1);
    assert_eq!(r["by_cell"]["330109001001002"], 1);
    let queue = staff.ok(&["center", "case", "list", "--json"]).json();
    let sources: Vec<&str> = queue
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["source"].as_str())
        .collect();
    assert_eq!(sources.iter().filter(|s| **s == "survey").count(), 2);
}
