//! The workbooks people open: `field center report --xlsx` and `field
//! center case list --xlsx`, read back by Python's openpyxl (a reader
//! nobody here wrote), cell by cell against the JSON report.

use field_e2e::server::Server;
use field_e2e::{Device, grid_geojson, png};
use serde_json::Value;

/// openpyxl is there, or the run says why it cannot test (and fails when
/// the test script requires it).
fn openpyxl() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import openpyxl"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("FIELD_PYTHON_REQUIRED").is_none(),
            "openpyxl is required here (scripts/test installs it)"
        );
        eprintln!("SKIPPED: no openpyxl (scripts/test installs it)");
    }
    ok
}

/// Every sheet of a workbook as openpyxl reads it: name, rows of values
/// (dates as ISO text), and each cell's number format.
fn read_workbook(path: &std::path::Path) -> Value {
    let script = r#"
import json, sys, datetime, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = []
for ws in wb.worksheets:
    rows, formats = [], []
    for row in ws.iter_rows():
        rows.append([c.value.isoformat() if isinstance(c.value, (datetime.date, datetime.datetime)) else c.value for c in row])
        formats.append([c.number_format for c in row])
    out.append({"name": ws.title, "rows": rows, "formats": formats})
print(json.dumps(out, ensure_ascii=False))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "openpyxl could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the reader")
}

fn report_case(d: &Device, seed: u32, category: &str, lon: &str, at: &str) -> String {
    let photo = d.file(&format!("x{seed}.png"), &png(seed));
    let at = format!("2025-11-26T{at}+08:00");
    d.report((category, lon, "30.1895"), "井盖破损", &photo, Some(&at))
}

fn column(sheet: &Value, head: &str) -> usize {
    sheet["rows"][0]
        .as_array()
        .unwrap()
        .iter()
        .position(|h| h == head)
        .unwrap_or_else(|| panic!("no column {head}: {}", sheet["rows"][0]))
}

#[test]
fn reports_and_case_lists_open_as_workbooks_with_numbers_and_dates() {
    if !openpyxl() {
        return;
    }
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user(
        "王",
        "collector",
        &["330109001001001", "330109001001002"],
    ));
    let staff = server.enrolled_device(&server.add_user("考核", "admin", &[]));
    d.ok(&["sync"]);
    let a = report_case(&d, 1, "SJ0201", "120.2605", "09:00:00");
    let b = report_case(&d, 2, "BJ0101", "120.2615", "09:10:00");
    let _c = report_case(&d, 3, "SJ0102", "120.2605", "09:20:00");
    d.ok(&["sync"]);
    staff.ok(&["center", "case", "register", &a]);
    staff.ok(&["center", "case", "reject", &b, "--reason", "duplicate"]);

    let json = staff
        .ok(&[
            "center",
            "report",
            "--period",
            "2025-11-26",
            "--collector",
            "王",
            "--json",
        ])
        .json();
    let r = &json[0];
    let file = staff.home().join("report.xlsx");
    staff.ok(&[
        "--lang",
        "zh",
        "center",
        "report",
        "--period",
        "2025-11-26",
        "--collector",
        "王",
        "--xlsx",
        file.to_str().unwrap(),
    ]);
    let book = read_workbook(&file);
    let sheet = &book[0];
    assert_eq!(sheet["name"], "考核报表");
    let row = &sheet["rows"][1];
    // (The test harness runs `field` in English; `--lang zh` asks for the
    // default a center user gets.)
    assert_eq!(row[column(sheet, "考核对象")], "王");
    // Rates are numbers shown as percentages, equal to the JSON's.
    for (head, key) in [
        ("覆盖率", "coverage"),
        ("差错率", "error_rate"),
        ("有效上报率", "valid_report_rate"),
    ] {
        let c = column(sheet, head);
        match r[key]["rate"].as_f64() {
            Some(rate) => {
                let cell = row[c]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{head} is a number: {}", row[c]));
                assert!((cell - rate).abs() < 1e-9, "{head}: {cell} vs {rate}");
                assert_eq!(sheet["formats"][1][c], "0.0%");
            }
            None => assert!(row[c].is_null(), "{head}: no rate, an empty cell"),
        }
    }
    assert_eq!(
        r["error_rate"]["rate"].as_f64(),
        Some(1.0 / 3.0),
        "the duplicate of 3"
    );
    let cases = column(sheet, "上报案卷数");
    assert_eq!(row[cases].as_f64(), r["cases_reported"].as_f64());
    let deductions = column(sheet, "扣款（元）");
    assert_eq!(row[deductions].as_f64(), r["deductions_total"].as_f64());

    // The case list, filtered as the queue filters, dates as dates.
    let list = staff.home().join("cases.xlsx");
    staff.ok(&[
        "--lang",
        "zh",
        "center",
        "case",
        "list",
        "--collector",
        "王",
        "--xlsx",
        list.to_str().unwrap(),
    ]);
    let sheet = &read_workbook(&list)[0];
    assert_eq!(sheet["name"], "案卷清单");
    assert_eq!(
        sheet["rows"].as_array().unwrap().len(),
        4,
        "a head row and 3 cases"
    );
    let ids: Vec<&str> = sheet["rows"].as_array().unwrap()[1..]
        .iter()
        .map(|r| r[column(sheet, "案卷编号")].as_str().unwrap())
        .collect();
    assert!(ids.contains(&a.as_str()) && ids.contains(&b.as_str()));
    let when = column(sheet, "上报时间");
    let reported: Vec<&str> = sheet["rows"].as_array().unwrap()[1..]
        .iter()
        .map(|r| r[when].as_str().unwrap())
        .collect();
    assert!(
        reported.contains(&"2025-11-26T09:00:00"),
        "city time, a date: {reported:?}"
    );
    assert_eq!(sheet["formats"][1][when], "yyyy-mm-dd hh:mm:ss");
    let status = column(sheet, "状态");
    let registered = sheet["rows"].as_array().unwrap()[1..]
        .iter()
        .find(|r| r[column(sheet, "案卷编号")] == a.as_str())
        .unwrap();
    assert_eq!(registered[status], "立案");
    let filtered = staff.home().join("registered.xlsx");
    staff.ok(&[
        "--lang",
        "zh",
        "center",
        "case",
        "list",
        "--status",
        "registered",
        "--xlsx",
        filtered.to_str().unwrap(),
    ]);
    assert_eq!(
        read_workbook(&filtered)[0]["rows"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // English on request.
    let en = staff.home().join("report-en.xlsx");
    staff.ok(&[
        "--lang",
        "en",
        "center",
        "report",
        "--period",
        "2025-11-26",
        "--collector",
        "王",
        "--xlsx",
        en.to_str().unwrap(),
    ]);
    let sheet = &read_workbook(&en)[0];
    assert_eq!(sheet["name"], "Report");
    column(sheet, "Coverage");
}
