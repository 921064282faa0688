//! A server at capacity turns device requests away with 503 and
//! `Retry-After` instead of letting them wait past the client's timeout,
//! and a device backs off and finishes its sync once there is room.

use std::io::Write;
use std::time::{Duration, Instant};

use field_e2e::raw_http::exchange;
use field_e2e::server::Server;
use field_e2e::{CELLS, grid_geojson, png};
use serde_json::Value;

fn health(server: &Server) -> Value {
    let r = exchange(&server.url, "GET", "/v1/health", &[], "");
    serde_json::from_slice(&r.body).unwrap()
}

/// Polls the health endpoint until `ready` holds (or fails after 60 s).
fn until(server: &Server, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = health(server);
        if ready(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "never {what}: {h}");
        std::thread::yield_now();
    }
}

#[test]
fn a_full_server_says_when_to_come_back_and_a_device_finishes_later() {
    let server = Server::start_with_config(
        "[limits]\nmax_concurrent_syncs = 1\nmax_waiting_syncs = 0\nbody_timeout_s = 120\n",
    );
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("qian", "collector", &CELLS[..3]));
    let photo = d.file("p.png", &png(7));
    let case = d.report(("SJ0102", "120.2605", "30.1895"), "busy day", &photo, None);

    // An anonymous client cannot take the turn: it is refused before admission.
    let anon = exchange(&server.url, "POST", "/v1/sync", &[], "{}");
    assert_eq!(anon.status, 401, "{}", anon.text());

    // A staff upload that sends its head and then nothing holds the one turn.
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    let hash = "ab".repeat(32);
    write!(
        slow,
        "PUT /v1/photos/{hash}?offset=0&total=10 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n",
        server.admin_token()
    )
    .unwrap();
    slow.flush().unwrap();
    until(&server, "the slow upload admitted", |h| {
        h["admission"]["running"] == 1
    });

    // Another device request is turned away at once, told when to return.
    let token = d.token();
    let auth = format!("Bearer {token}");
    let busy = exchange(
        &server.url,
        "POST",
        "/v1/sync",
        &[("Authorization", &auth)],
        "{}",
    );
    assert_eq!(busy.status, 503, "{}", busy.text());
    let after: u64 = busy
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=120).contains(&after), "{after}");
    assert!(busy.text().contains("busy"), "{}", busy.text());
    assert_eq!(health(&server)["admission"]["shed_total"], 1);

    // The device's sync meets the same answer, backs off, and keeps trying.
    let sync = d
        .command(&["sync"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    until(&server, "the device turned away", |h| {
        h["admission"]["shed_total"].as_u64() >= Some(2)
    });
    // Room again: the slow upload gives up.
    drop(slow);
    let out = sync.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the sync failed after the server had room: {said}"
    );
    assert!(
        said.contains("the server was busy: waited and went on"),
        "{said}"
    );
    let h = until(&server, "the turn released", |h| {
        h["admission"]["running"] == 0
    });
    assert!(h["admission"]["admitted_total"].as_u64() >= Some(2), "{h}");
    // Everything arrived once.
    let shown: Value = server
        .admin()
        .call::<(), Value>("GET", &format!("/v1/center/cases/{case}"), None)
        .unwrap();
    assert_eq!(shown["case"]["description"], "busy day", "{shown}");
}
