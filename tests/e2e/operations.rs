//! Operating the center: TLS end to end, metrics checked against what was
//! sent, logs without secrets, an online backup restored with devices
//! getting the server whole again, sessions through a restart, the front
//! door.

use std::path::{Path, PathBuf};

use field_core::sync::http::{ClientTls, HttpTransport};
use field_e2e::server::Server;
use field_e2e::{CELLS, Device, grid_geojson};
use serde_json::Value;

use crate::console::{csrf_of, form, http};
use crate::sync::{own_changes, report, track};

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost
/// (`serial` makes each issue distinct). Paths: (ca, cert, key).
fn certificates(dir: &Path, serial: u64) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Test City CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.serial_number = Some(serial.into());
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let paths = (
        dir.join(format!("ca{serial}.pem")),
        dir.join(format!("cert{serial}.pem")),
        dir.join(format!("key{serial}.pem")),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn tls_admin(server: &Server, ca: &Path) -> HttpTransport {
    HttpTransport::with_tls(
        &server.url,
        Some(server.admin_token()),
        &ClientTls {
            ca_file: Some(ca.to_path_buf()),
            allow_plain_http: false,
        },
    )
    .unwrap()
}

/// A browser-like HTTPS client trusting only `ca`, not following redirects.
fn browser(ca: &Path) -> reqwest::blocking::Client {
    field_core::sync::http::tls_ready();
    let pem = std::fs::read(ca).unwrap();
    reqwest::blocking::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .tls_info(true)
        .build()
        .unwrap()
}

/// The serial number of the certificate the server presents now.
fn served_certificate(client: &reqwest::blocking::Client, url: &str) -> Vec<u8> {
    let r = client.get(format!("{url}/healthz")).send().unwrap();
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("a peer certificate")
        .to_vec()
}

#[test]
fn tls_from_enrolment_to_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path(), 1);
    let server = Server::start_with_config(&format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ));
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let mut admin = tls_admin(&server, &ca);
    admin
        .call_raw::<Value>(
            "PUT",
            "/v1/center/grid",
            "application/geo+json",
            grid_geojson(false).into_bytes(),
        )
        .unwrap();
    let user: Value = admin
        .call(
            "POST",
            "/v1/center/users",
            Some(&serde_json::json!({ "name": "王芳", "role": "collector", "cells": CELLS, "from": "2025-01-01" })),
        )
        .unwrap();
    let code = user["enrolment_code"].as_str().unwrap();
    let ca_arg = ca.to_str().unwrap();

    // Without the city's CA the handset does not trust the server.
    let stranger = Device::init("pending");
    let r = stranger.run(&["enroll", "--server", &server.url, "--code", code]);
    assert!(!r.ok);
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "says why: {}",
        r.stderr
    );
    // With it: enrol, report, sync over HTTPS.
    let d = Device::init("pending");
    d.ok(&[
        "enroll",
        "--server",
        &server.url,
        "--code",
        code,
        "--ca-file",
        ca_arg,
    ]);
    d.ok(&["sync", "--ca-file", ca_arg]);
    let x = report(&d, 1, "120.2605", "garbage by the gate");
    let synced = d.ok(&["sync", "--ca-file", ca_arg, "--json"]).json();
    assert_eq!(synced["pushed"], 1);
    assert_eq!(synced["photos_sent"], 1);
    let digest: Value = admin
        .call::<(), Value>("GET", "/v1/center/digest", None)
        .unwrap();
    assert_eq!(d.digests()["cases"], digest["cases"]);
    assert!(!x.is_empty());

    // The console over HTTPS: the cookie is Secure, HSTS is sent, and `/`
    // leads a browser to the console.
    let b = browser(&ca);
    let home = b.get(format!("{}/", server.url)).send().unwrap();
    assert!(home.status().is_redirection());
    assert_eq!(home.headers()["location"], "/console/");
    let signed_in = b
        .post(format!("{}/console/sign-in", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", &server.admin_token())]))
        .send()
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(
        signed_in.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="),
    );

    // SIGHUP: a new certificate for new connections, nothing dropped.
    let before = served_certificate(&b, &server.url);
    let (_, cert2, key2) = certificates(dir.path(), 2);
    // The new files replace the old ones in place, as certbot would.
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    let b2 = browser(&dir.path().join("ca2.pem"));
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The reload is asynchronous: wait (bounded) for the new certificate.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(r) = b2.get(format!("{}/healthz", server.url)).send() {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not served after SIGHUP"
        );
        std::thread::yield_now();
    }
    assert_ne!(served_certificate(&b2, &server.url), before);
}

#[test]
fn the_client_reads_host_port_and_refuses_clear_text_to_another_machine() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let code = server.add_user("王芳", "collector", &CELLS);
    let d = Device::init("pending");
    // `host:port` on this machine means plain HTTP.
    d.ok(&["enroll", "--server", &server.addr(), "--code", &code]);
    assert_eq!(
        d.status()["server"].as_str().unwrap(),
        server.url,
        "the address is kept as understood"
    );
    // Plain HTTP to another machine would carry the token in clear text.
    let other = Device::init("pending");
    let r = other.run(&[
        "enroll",
        "--server",
        "http://192.0.2.10:8080",
        "--code",
        "X",
    ]);
    assert!(!r.ok);
    assert!(r.stderr.contains("clear text"), "{}", r.stderr);
    let r = other.run(&["enroll", "--server", "ftp://192.0.2.10", "--code", "X"]);
    assert!(
        r.stderr.contains("https://"),
        "says what it expected: {}",
        r.stderr
    );
}

/// `name{labels} value` lines of a Prometheus text page whose labels
/// contain every one of `with`.
fn metric(page: &str, name: &str, with: &[&str]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next().is_some_and(|n| n == name))
        .filter(|l| with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_count_what_devices_sent() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("王芳", "collector", &CELLS));
    d.ok(&["sync"]);
    report(&d, 1, "120.2605", "garbage by the gate");
    report(&d, 2, "120.2615", "poster on a pole");
    for m in 0..3 {
        track(&d, m);
    }
    let synced = d.ok(&["sync", "--json"]).json();
    let pushed = synced["pushed"].as_f64().unwrap();
    assert!(pushed >= 5.0);
    let page = String::from_utf8(server.admin().get_bytes("/metrics").unwrap()).unwrap();
    assert_eq!(metric(&page, "sync_changes_pushed_total", &[]), pushed);
    assert_eq!(
        metric(&page, "sync_changes_total", &["outcome=\"accepted\""]),
        pushed,
        "every change pushed was accepted, and counted once"
    );
    assert_eq!(
        metric(&page, "photo_bytes_in_total", &[]),
        synced["photo_bytes"].as_f64().unwrap()
    );
    assert_eq!(
        metric(&page, "sync_requests_total", &[]),
        metric(
            &page,
            "http_requests_total",
            &["route=\"/v1/sync\"", "status=\"200\""]
        ),
    );
    assert!(
        metric(
            &page,
            "http_request_duration_seconds_count",
            &["route=\"/v1/sync\""]
        ) >= 2.0
    );
    assert_eq!(metric(&page, "build_info", &[]), 1.0);
    // Not for anyone: a collector's token is refused, no token too.
    let mut collector = HttpTransport::new(&server.url, Some(d.token())).unwrap();
    assert!(matches!(
        collector.get_bytes("/metrics"),
        Err(field_core::sync::client::TransportError::Refused { status: 403, .. })
    ));
    let mut nobody = HttpTransport::new(&server.url, None).unwrap();
    assert!(matches!(
        nobody.get_bytes("/metrics"),
        Err(field_core::sync::client::TransportError::Refused { status: 401, .. })
    ));
}

#[test]
fn health_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[],
        &[("SYNC_SERVER_METRICS_TOKEN", "scraper-token-123")],
    );
    // A scraper's own token reads the metrics (and nothing else).
    let mut scraper = HttpTransport::new(&server.url, Some("scraper-token-123".into())).unwrap();
    let page = String::from_utf8(scraper.get_bytes("/metrics").unwrap()).unwrap();
    assert_eq!(metric(&page, "build_info", &[]), 1.0);
    assert!(scraper.get_bytes("/v1/center/digest").is_err());
    let mut t = HttpTransport::new(&server.url, None).unwrap();
    assert_eq!(t.get_bytes("/healthz").unwrap(), b"ok\n");
    let ready: Value = serde_json::from_slice(&t.get_bytes("/readyz").unwrap()).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["blobs"], "ok");
}

/// A full round of work with every secret the center hands out, the log
/// in JSON: no token, code, session id or CSRF token in any line; every
/// line is JSON and names its request.
#[test]
fn the_logs_hold_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = Server::start_logged(
        &dir.path().join("data"),
        &log,
        &[],
        &[("SYNC_SERVER_LOG_FORMAT", "json")],
    );
    server.import_grid(&grid_geojson(false));
    let code = server.add_user("王芳", "collector", &CELLS);
    let wrong_code = "ZZZZ-WRONG-9876";
    let d = server.enrolled_device(&code);
    let bad = Device::init("pending");
    assert!(
        !bad.run(&["enroll", "--server", &server.url, "--code", wrong_code])
            .ok
    );
    report(&d, 1, "120.2605", "garbage by the gate");
    track(&d, 1);
    d.ok(&["sync"]);
    let forged = "forged-token-0123456789abcdef";
    let mut t = HttpTransport::new(&server.url, Some(forged.into())).unwrap();
    assert!(t.get_bytes("/v1/center/digest").is_err());
    let r = http(
        &server.url,
        "POST",
        "/console/sign-in",
        &[],
        &form(&[("token", &server.admin_token())]),
    );
    let session = r
        .reply
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let with = [("Cookie", session.as_str())];
    let queue = http(&server.url, "GET", "/console/queue", &with, "");
    let csrf = csrf_of(&queue.body);
    let out = http(
        &server.url,
        "POST",
        "/console/sign-out",
        &with,
        &form(&[("csrf", &csrf)]),
    );
    assert_eq!(out.status, 303);
    let request_id = out
        .reply
        .header("x-request-id")
        .expect("a request id")
        .to_string();
    drop(server);

    let text = std::fs::read_to_string(&log).unwrap();
    let session_id = session.split('=').nth(1).unwrap().to_string();
    let admin = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    for (what, secret) in [
        ("admin token", admin.trim()),
        ("device token", d.token().as_str()),
        ("enrolment code", code.as_str()),
        ("enrolment code without dashes", &code.replace('-', "")),
        ("mistyped code", wrong_code),
        ("forged token", forged),
        ("session id", session_id.as_str()),
        ("csrf token", csrf.as_str()),
    ] {
        assert!(!secret.is_empty());
        assert!(!text.contains(secret), "the {what} is in the log");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "answered")
        .collect();
    assert!(answered.len() > 5);
    let mine = answered
        .iter()
        .find(|l| l["span"]["id"] == request_id.as_str())
        .expect("the response's request id is in the log");
    assert_eq!(mine["span"]["route"], "/console/sign-out");
    let synced = lines
        .iter()
        .find(|l| l["fields"]["message"] == "sync")
        .expect("a sync line");
    assert!(synced["fields"]["pushed"].as_u64().unwrap() >= 2);
    assert!(
        synced["span"]["principal"]
            .as_str()
            .unwrap()
            .starts_with("王芳@")
    );
}

/// Where a city's records live in a restore scenario.
#[derive(Clone, Copy)]
enum Backend {
    Embedded,
    /// PostgreSQL: the first database is served and backed up, the second
    /// receives the restore.
    Postgres,
}

fn sync_server(args: &[&str]) -> std::process::Output {
    std::process::Command::new(field_e2e::server_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Points a handset at another address of its city (the restored server
/// listens elsewhere).
fn repoint(d: &Device, url: &str) {
    let conn = rusqlite::Connection::open(d.home().join("device.db")).unwrap();
    let sync: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'sync'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut v: Value = serde_json::from_str(&sync).unwrap();
    v["server"] = url.into();
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'sync'",
        [v.to_string()],
    )
    .unwrap();
}

/// A backup taken while a device syncs, a restore to that point, and the
/// devices that synced after it make the server whole again.
fn restored_server_made_whole(backend: Backend) {
    let (served, restored_db) = match backend {
        Backend::Embedded => (None, None),
        Backend::Postgres => {
            let (Some(one), Some(two)) = (field_e2e::pg_database(), field_e2e::pg_database())
            else {
                return;
            };
            (Some(one), Some(two))
        }
    };
    let database = |db: &Option<String>| -> Vec<String> {
        db.iter()
            .flat_map(|u| ["--database".to_string(), u.clone()])
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let flags = database(&served);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start_with(&data, &flags, &[]);
    server.import_grid(&grid_geojson(false));
    let a = server.enrolled_device(&server.add_user("王芳", "collector", &CELLS));
    let b = server.enrolled_device(&server.add_user("李伟", "collector", &CELLS));
    a.ok(&["sync"]);
    report(&a, 1, "120.2605", "garbage by the gate");
    b.ok(&["sync"]);
    for i in 0..20 {
        report(&b, 100 + i, "120.2625", &format!("bags on the kerb {i}"));
    }
    for m in 0..30 {
        track(&b, m);
    }
    // The backup runs beside the server while b pushes its batch.
    let backup = dir.path().join("backups/first");
    let syncing = std::thread::scope(|s| {
        let sync = s.spawn(|| b.ok(&["sync", "--json"]).json());
        let mut args = vec!["--data", data.to_str().unwrap()];
        args.extend(&flags);
        args.extend(["backup", "--to", backup.to_str().unwrap()]);
        let out = sync_server(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!manifest["files"].as_array().unwrap().is_empty());
        sync.join().unwrap()
    });
    assert_eq!(syncing["refused"], 0);
    // After the backup: more work the restored server will lack.
    let late = report(&a, 2, "120.2615", "poster on a pole");
    track(&a, 40);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    let before = server.digest();
    drop(server);

    // A restore never overwrites a city unless told.
    let mut args = vec!["--data", data.to_str().unwrap()];
    args.extend(&flags);
    args.extend(["restore", "--from", backup.to_str().unwrap()]);
    let refused = sync_server(&args);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let restored_data = dir.path().join("restored");
    let to = database(&restored_db);
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let mut args = vec!["--data", restored_data.to_str().unwrap()];
    args.extend(&to);
    args.extend(["restore", "--from", backup.to_str().unwrap()]);
    let out = sync_server(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if restored_db.is_some() {
        // The admin token file is the instance's: hand it over.
        std::fs::copy(data.join("admin.token"), restored_data.join("admin.token")).unwrap();
    }
    let server = Server::start_with(&restored_data, &to, &[]);
    assert_ne!(
        server.digest()["cases"],
        before["cases"],
        "the late case is not in the backup"
    );
    for d in [&a, &b] {
        repoint(d, &server.url);
    }
    let first = a.ok(&["sync", "--json"]).json();
    assert_eq!(first["server_restored"], true, "{first}");
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    let after = server.digest();
    assert_eq!(after["cases"], before["cases"], "every case is back");
    assert_eq!(after["changes"], before["changes"], "every change once");
    for d in [&a, &b] {
        let actor = d.actor();
        assert_eq!(after["devices"][&actor], before["devices"][&actor]);
        assert_eq!(d.digests()["cases"], after["cases"]);
        assert_eq!(d.status()["pending_photos"], 0);
    }
    assert_eq!(
        after["changes"].as_i64().unwrap(),
        own_changes(&a) + own_changes(&b)
    );
    // The late case's photo is on the restored server again.
    let shown = a.ok(&["case", "show", &late, "--json"]).json();
    for p in shown["case"]["photos"].as_array().unwrap() {
        let hash = p["hash"].as_str().unwrap();
        assert!(
            !server
                .admin()
                .get_bytes(&format!("/v1/photos/{hash}"))
                .unwrap()
                .is_empty()
        );
    }
}

#[test]
fn a_restored_embedded_server_is_made_whole_by_its_devices() {
    restored_server_made_whole(Backend::Embedded);
}

#[test]
fn a_restored_postgres_city_is_made_whole_by_its_devices() {
    restored_server_made_whole(Backend::Postgres);
}

#[test]
fn console_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_on(&data, "127.0.0.1:0");
    let r = http(
        &server.url,
        "POST",
        "/console/sign-in",
        &[],
        &form(&[("token", &server.admin_token())]),
    );
    assert_eq!(r.status, 303);
    let cookie = r
        .reply
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    drop(server);
    let again = Server::start_on(&data, "127.0.0.1:0");
    let with = [("Cookie", cookie.as_str())];
    let queue = http(&again.url, "GET", "/console/queue", &with, "");
    assert_eq!(queue.status, 200, "still signed in after the restart");
}

/// Gzipped bodies are taken (devices send a day's track so), but the body
/// limit counts the bytes after decompression: 64 MB of zeros in 64 KB of
/// gzip is refused like a 64 MB body, and the server keeps serving.
#[test]
fn a_gzip_bomb_is_refused_like_a_large_body() {
    use std::io::Write;
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("王芳", "collector", &CELLS));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..64 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    field_core::sync::http::tls_ready();
    let client = reqwest::blocking::Client::new();
    let send = |encoding: &str, body: Vec<u8>| {
        client
            .post(format!("{}/v1/sync", server.url))
            .bearer_auth(d.token())
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(send("gzip", bomb), 413);
    assert_eq!(
        send("br", b"{}".to_vec()),
        415,
        "an encoding we do not take"
    );
    // Still serving, and a real gzipped sync goes through.
    report(&d, 1, "120.2605", "garbage by the gate");
    for m in 0..40 {
        track(&d, m);
    }
    let synced = d.ok(&["sync", "--json"]).json();
    assert_eq!(synced["refused"], 0);
    assert!(synced["pushed"].as_u64().unwrap() >= 2);
}
