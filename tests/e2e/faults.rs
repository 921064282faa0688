//! Fault injection: connections cut mid-push, mid-pull and mid-photo-upload
//! by a proxy, and the server SIGKILLed mid-sync and restarted on the same
//! data. Afterwards every change is on the server exactly once, every photo
//! is intact, and nothing is left pending on the device.

use std::time::Duration;

use field_core::model::PhotoHash;
use field_e2e::proxy::{Direction, Proxy};
use field_e2e::server::Server;
use field_e2e::{CELLS, Device, gpx_track, grid_geojson};
use serde_json::Value;

/// A ~300 KB PNG of noise (incompressible): uploads in two chunks.
fn big_png(seed: u32) -> Vec<u8> {
    let (w, h) = (320u32, 320u32);
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let data: Vec<u8> = (0..w * h * 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

fn report_big(d: &Device, seed: u32, lon: &str) {
    let p = d.file(&format!("big{seed}.png"), &big_png(seed));
    d.ok(&[
        "case",
        "report",
        "--category",
        "BJ0101",
        "--lon",
        lon,
        "--lat",
        "30.1895",
        "--desc",
        &format!("cover {seed}"),
        "--photo",
        p.to_str().unwrap(),
    ]);
}

fn own_changes(d: &Device) -> i64 {
    let conn = rusqlite::Connection::open(d.home().join("device.db")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM changes WHERE actor = (SELECT unhex(replace(value, '-', '')) FROM meta WHERE key = 'actor')", [], |r| r.get(0)).unwrap()
}

/// Everything the device wrote is on the server once, every photo intact.
fn assert_recovered(server: &Server, devices: &[&Device]) {
    let digest = server.digest();
    let mut authored = 0;
    for d in devices {
        let status = d.status();
        assert_eq!(
            (
                status["pending_changes"].as_u64(),
                status["pending_photos"].as_u64()
            ),
            (Some(0), Some(0)),
            "{status}"
        );
        assert_eq!(status["refused_changes"], 0);
        let mine = d.digests();
        assert_eq!(mine["cases"], digest["cases"]);
        let actor = d.actor();
        assert_eq!(mine["devices"][&actor], digest["devices"][&actor]);
        authored += own_changes(d);
    }
    assert_eq!(
        digest["changes"].as_i64().unwrap(),
        authored,
        "each change exactly once"
    );
    let cases: Value = server
        .admin()
        .call::<(), Value>("GET", "/v1/center/cases", None)
        .unwrap();
    for c in cases.as_array().unwrap() {
        assert_eq!(c["photos_pending"], false, "{c}");
        let shown: Value = server
            .admin()
            .call::<(), Value>(
                "GET",
                &format!("/v1/center/cases/{}", c["id"].as_str().unwrap()),
                None,
            )
            .unwrap();
        for p in shown["case"]["photos"].as_array().unwrap() {
            let hash = p["hash"].as_str().unwrap();
            let bytes = std::fs::read(server.data.join("blobs").join(&hash[..2]).join(hash))
                .expect("blob file");
            assert_eq!(PhotoHash::of(&bytes).as_str(), hash, "blob intact");
        }
    }
    let partial = std::fs::read_dir(server.data.join("blobs/partial"))
        .unwrap()
        .count();
    assert_eq!(partial, 0, "no half uploads left behind");
}

#[test]
fn cut_connections_and_a_killed_server_lose_and_double_nothing() {
    let mut server = Server::start();
    server.import_grid(&grid_geojson(false));
    let proxy = Proxy::start(server.url.trim_start_matches("http://").to_string());
    let code = server.add_user("钱", "collector", &CELLS);
    let d = Device::init("pending");
    d.ok(&["enroll", "--server", &proxy.url, "--code", &code]);
    d.ok(&["sync"]);
    let other = server.enrolled_device(&server.add_user("孙", "collector", &CELLS));

    // A day of data: 20,000 points (10 changes, ~0.5 MB) and 3 cases with big photos.
    let gpx = d.file("day.gpx", gpx_track(20_000).as_bytes());
    d.ok(&["track", "import", gpx.to_str().unwrap()]);
    for (i, lon) in ["120.2605", "120.2615", "120.2625"].iter().enumerate() {
        report_big(&d, i as u32 + 1, lon);
    }

    // Cut mid-push: 1 KB into the sync request, inside its body (the
    // day's track travels gzipped: this regular walk compresses to a few KB).
    proxy.arm("POST /v1/sync", Direction::Up, 1_000);
    assert!(!d.run(&["sync"]).ok, "a cut push fails");
    assert_eq!(proxy.fired(), 1);
    assert!(d.status()["pending_changes"].as_u64().unwrap() > 0);

    // Cut mid-pull: the server applies the push but the answer is cut.
    report_big(&other, 10, "120.2622");
    other.ok(&["sync"]);
    proxy.arm("POST /v1/sync", Direction::Down, 200);
    assert!(!d.run(&["sync"]).ok, "a cut pull fails");
    assert_eq!(proxy.fired(), 2);

    // Cut mid-photo-upload: 100 KB into a chunk.
    proxy.arm("PUT /v1/photos", Direction::Up, 100_000);
    assert!(!d.run(&["sync"]).ok, "a cut upload fails");
    assert_eq!(proxy.fired(), 3);

    d.ok(&["sync"]);
    other.ok(&["sync"]);
    assert_recovered(&server, &[&d, &other]);

    // SIGKILL the server mid-sync, restart it on the same data and port.
    let more = d.file("more.gpx", gpx_track(60_000).as_bytes());
    d.ok(&["track", "import", more.to_str().unwrap()]);
    for i in 0..3 {
        report_big(&d, 20 + i, "120.2615");
    }
    let wal = server.data.join("changes.db-wal");
    let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let mut sync = d
        .command(&["sync"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut killed_mid_sync = false;
    loop {
        if sync.try_wait().unwrap().is_some() {
            break;
        }
        if std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > before {
            server.kill();
            killed_mid_sync = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1)); // polling a condition
    }
    let _ = sync.wait();
    assert!(
        killed_mid_sync,
        "the sync finished before the server could be killed"
    );
    let port = server.port();
    let data = server.data.clone();
    let restarted = Server::start_on(&data, &format!("127.0.0.1:{port}"));
    let conn = rusqlite::Connection::open(data.join("changes.db")).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    d.ok(&["sync"]);
    other.ok(&["sync"]);
    d.ok(&["sync"]);
    assert_recovered(&restarted, &[&d, &other]);
    drop(server); // the first handle's temp dir lives until here
}
