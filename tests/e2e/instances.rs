//! Two `sync-server` processes on one PostgreSQL database and one S3
//! bucket (s3s-fs on loopback), behind a round-robin HTTP balancer: every
//! device *request* lands on the other instance than the one before, even
//! within one keep-alive connection of one sync. They serve one city; one of them killed mid-push loses and
//! duplicates nothing while the other keeps serving.

use std::io::Write;

use field_e2e::balancer::Balancer;
use field_e2e::s3::S3Server;
use field_e2e::server::Server;
use field_e2e::{CELLS, Device, grid_geojson, png};

use crate::console::{csrf_of, form, http};
use crate::sync::{own_changes, report, track};

struct City {
    _dir: tempfile::TempDir,
    _bucket: S3Server,
    one: Server,
    two: Server,
    balancer: Balancer,
}

/// Instance one starts first (it writes the admin token); instance two
/// gets a copy of the token file, as an operator would hand it out.
fn city() -> Option<City> {
    let url = field_e2e::pg_database()?;
    let bucket = S3Server::start("city")?;
    let dir = tempfile::tempdir().unwrap();
    let blobs = bucket.url();
    let flags = ["--database", &url, "--blobs", &blobs];
    let env = bucket.env();
    let one = Server::start_with(&dir.path().join("one"), &flags, &env);
    std::fs::create_dir_all(dir.path().join("two")).unwrap();
    std::fs::copy(
        dir.path().join("one/admin.token"),
        dir.path().join("two/admin.token"),
    )
    .unwrap();
    let two = Server::start_with(&dir.path().join("two"), &flags, &env);
    let balancer = Balancer::start(vec![one.addr(), two.addr()]);
    Some(City {
        _dir: dir,
        _bucket: bucket,
        one,
        two,
        balancer,
    })
}

fn enrol(city: &City, code: &str) -> Device {
    let d = Device::init("pending");
    d.ok(&["enroll", "--server", &city.balancer.url, "--code", code]);
    d
}

#[test]
fn two_instances_on_one_database_serve_one_city() {
    let Some(city) = city() else {
        return;
    };
    // The grid imported on one instance is what the other serves.
    city.two.import_grid(&grid_geojson(false));
    let a1 = enrol(&city, &city.one.add_user("王芳", "collector", &CELLS));
    let a2 = enrol(&city, &city.two.new_code("王芳"));
    let b = enrol(&city, &city.one.add_user("李伟", "collector", &CELLS));
    let devices = [&a1, &a2, &b];
    a1.ok(&["sync"]);
    assert!(
        a1.status()["pull_cursor"].as_u64().is_some(),
        "a1 synced through the balancer"
    );
    let x = report(&a1, 1, "120.2605", "garbage by the gate");
    report(&b, 3, "120.2625", "bags on the kerb");
    for (i, d) in devices.iter().enumerate() {
        track(d, i as u32);
    }
    // One sync of a case with photos is several requests (the sync, the
    // photo check, the uploads) on one connection: they alternate.
    let before = city.balancer.served();
    let pushed = a1.ok(&["sync", "--json"]).json();
    let after = city.balancer.served();
    assert!(
        pushed["pushed"].as_u64().unwrap_or(0) > 0,
        "a1 pushed its case: {pushed}"
    );
    for (i, (b0, b1)) in before.iter().zip(&after).enumerate() {
        assert!(
            b1 > b0,
            "instance {i} served part of one sync: {before:?} → {after:?}"
        );
    }
    for d in [&b, &a2, &a1, &b, &a2] {
        d.ok(&["sync"]);
    }
    a2.ok(&["case", "edit", &x, "--desc", "garbage, two bags (a2)"]);
    let p9 = a1.file("p9.png", &png(9));
    a1.ok(&[
        "case",
        "edit",
        &x,
        "--desc",
        "garbage, three bags (a1)",
        "--add-photo",
        p9.to_str().unwrap(),
    ]);
    for d in [&a2, &a1, &b, &a1, &a2, &b] {
        d.ok(&["sync"]);
    }
    let (one, two) = (city.one.digest(), city.two.digest());
    assert_eq!(one, two, "both instances read the same city");
    let mut authored = 0;
    for d in devices {
        let mine = d.digests();
        assert_eq!(mine["cases"], one["cases"]);
        let actor = d.actor();
        assert_eq!(mine["devices"][&actor], one["devices"][&actor]);
        let status = d.status();
        assert_eq!(status["pending_changes"], 0);
        assert_eq!(status["pending_photos"], 0);
        assert_eq!(status["refused_changes"], 0);
        authored += own_changes(d);
    }
    assert_eq!(
        one["changes"].as_i64().unwrap(),
        authored,
        "each change once"
    );
    // A photo uploaded through either instance is readable on both.
    let shown = a2.ok(&["case", "show", &x, "--json"]).json();
    for p in shown["case"]["photos"].as_array().unwrap() {
        let hash = p["hash"].as_str().unwrap();
        for s in [&city.one, &city.two] {
            let bytes = s
                .admin()
                .get_bytes(&format!("/v1/photos/{hash}"))
                .expect("photo on both instances");
            assert!(!bytes.is_empty());
        }
    }
}

#[test]
fn an_instance_killed_mid_push_loses_and_duplicates_nothing() {
    let Some(mut city) = city() else {
        return;
    };
    city.one.import_grid(&grid_geojson(false));
    let d = enrol(&city, &city.one.add_user("赵磊", "collector", &CELLS));
    d.ok(&["sync"]);
    for i in 0..5 {
        report(&d, 20 + i, "120.2605", &format!("case {i}"));
        track(&d, i);
    }
    // Half a push reaches instance one, which then dies (SIGKILL).
    let bundle = d.home().join("out.json");
    d.ok(&["changes", "export", "--out", bundle.to_str().unwrap()]);
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let body = serde_json::to_vec(&serde_json::json!({
        "protocol": field_core::sync::protocol::PROTOCOL_VERSION,
        "push": bundle["changes"],
        "pull": {}
    }))
    .unwrap();
    let mut raw = std::net::TcpStream::connect(city.one.addr()).unwrap();
    write!(
        raw,
        "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        d.token(),
        body.len()
    )
    .unwrap();
    raw.write_all(&body[..body.len() / 2]).unwrap();
    raw.flush().unwrap();
    city.one.kill();
    // The device syncs on; the balancer finds instance one gone and sends
    // every request to instance two.
    d.ok(&["sync"]);
    d.ok(&["sync"]);
    let server = city.two.digest();
    let mine = d.digests();
    assert_eq!(mine["cases"], server["cases"]);
    assert_eq!(mine["devices"][&d.actor()], server["devices"][&d.actor()]);
    assert_eq!(d.status()["pending_changes"], 0);
    assert_eq!(d.status()["pending_photos"], 0);
    assert_eq!(server["changes"].as_i64().unwrap(), own_changes(&d));
}

/// `migrate` of the demo's city: records into PostgreSQL, photos into a
/// bucket, digests equal; a server on the new homes serves the same city
/// to the same admin token.
#[test]
fn migrate_moves_the_demo_city() {
    let Some(url) = field_e2e::pg_database() else {
        return;
    };
    let Some(bucket) = S3Server::start("moved-demo") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = std::process::Command::new(field_e2e::field_bin())
        .args(["demo", "--no-serve", "--keep", demo.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = demo.join("server");
    let (before, users) = {
        let old = Server::start_on(&data, "127.0.0.1:0");
        let users: serde_json::Value = old
            .admin()
            .call::<(), serde_json::Value>("GET", "/v1/center/users", None)
            .unwrap();
        (old.digest(), users)
    };
    let out = std::process::Command::new(field_e2e::server_bin())
        .args(["migrate", "--from", data.to_str().unwrap(), "--to", &url])
        .args(["--blobs", &bucket.url()])
        .envs(bucket.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = &summary["records"];
    assert_eq!(records["equal"], true, "{summary}");
    assert_eq!(records["digest_from"], records["digest_to"]);
    assert_eq!(records["changes"], before["changes"]);
    assert_eq!(records["rows"]["users"], 3, "{summary}");
    let photos = &summary["photos"];
    assert!(photos["photos"].as_u64().unwrap() > 0);
    assert_eq!(photos["verified"], photos["photos"]);

    // Again: the target is no longer empty, and the command says so.
    let again = std::process::Command::new(field_e2e::server_bin())
        .args(["migrate", "--from", data.to_str().unwrap(), "--to", &url])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a city"));

    // A server on PostgreSQL and the bucket, with the city's admin token.
    let home = dir.path().join("moved");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::copy(data.join("admin.token"), home.join("admin.token")).unwrap();
    let moved = Server::start_with(
        &home,
        &["--database", &url, "--blobs", &bucket.url()],
        &bucket.env(),
    );
    assert_eq!(moved.digest(), before);
    let moved_users: serde_json::Value = moved
        .admin()
        .call::<(), serde_json::Value>("GET", "/v1/center/users", None)
        .unwrap();
    assert_eq!(moved_users, users);
}

/// A reviewer signed in on one instance is signed in on the other; signing
/// out on the other ends the session on both.
#[test]
fn a_console_session_is_the_citys_not_an_instances() {
    let Some(city) = city() else {
        return;
    };
    let (one, two) = (city.one.url.as_str(), city.two.url.as_str());
    let r = http(
        one,
        "POST",
        "/console/sign-in",
        &[],
        &form(&[("token", &city.one.admin_token())]),
    );
    assert_eq!(r.status, 303, "{}", r.reply.head);
    let cookie = r
        .reply
        .header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let with = [("Cookie", cookie.as_str())];
    let queue = http(two, "GET", "/console/queue", &with, "");
    assert_eq!(queue.status, 200, "instance two knows the session");
    let csrf = csrf_of(&queue.body);
    let r = http(
        two,
        "POST",
        "/console/sign-out",
        &with,
        &form(&[("csrf", &csrf)]),
    );
    assert_eq!(r.status, 303);
    for base in [one, two] {
        let r = http(base, "GET", "/console/queue", &with, "");
        assert_eq!(r.status, 303, "signed out everywhere");
    }
}
