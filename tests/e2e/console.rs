//! The web console over real HTTP: sign-in and its session cookie, the
//! queue and its filters, review actions from forms, forgery protection,
//! and collector text rendered as text.

use field_e2e::raw_http::{Reply, exchange};
use field_e2e::server::Server;
use field_e2e::{grid_geojson, png};

const TOP_ROW: [&str; 3] = ["330109001001001", "330109001001002", "330109001001003"];

/// A request as an English-speaking browser sends it (the console's words
/// are checked in English here; the browser test checks the Chinese); the
/// body as text.
pub(crate) fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: &str,
) -> Page {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("accept-language"))
    {
        all.push(("Accept-Language", "en"));
    }
    let r = exchange(base, method, path, &all, form);
    Page {
        status: r.status,
        body: r.text(),
        reply: r,
    }
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) reply: Reply,
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub(crate) fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a csrf token")
        + 19;
    page[at..].split('"').next().unwrap().to_string()
}

#[test]
fn reviewer_signs_in_filters_and_decides_and_collector_text_stays_text() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("赵", "collector", &TOP_ROW));
    let reviewer = server.enrolled_device(&server.add_user("审核", "reviewer", &[]));
    let photo = d.file("a.png", &png(7));
    let mut ids = Vec::new();
    for (desc, lon) in [
        ("<script>alert(1)</script> lid", "120.2605"),
        ("poster", "120.2615"),
    ] {
        let id = d.report(("BJ0101", lon, "30.1895"), desc, &photo, None);
        ids.push(id);
    }
    d.ok(&["sync"]);
    let base = server.url.as_str();

    // No session: every page sends the browser to sign in.
    for path in [
        "/console/queue",
        "/console/map",
        "/console/report",
        &format!("/console/cases/{}", ids[0]),
    ] {
        let r = http(base, "GET", path, &[], "");
        assert_eq!(r.status, 303, "{path}");
        // To sign in, then back to the page asked for.
        let next = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", path)
            .finish();
        assert_eq!(
            r.reply.header("location"),
            Some(format!("/console/sign-in?{next}").as_str()),
            "{path}"
        );
    }
    // The map's data, fetched by script, is refused with a 401 it can show.
    let r = http(base, "GET", "/console/map/data?day=2025-11-26", &[], "");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("sign in"), "{}", r.body);

    // A collector's token does not open the console.
    let r = http(
        base,
        "POST",
        "/console/sign-in",
        &[],
        &form(&[("token", &d.token())]),
    );
    assert_eq!(r.status, 403);
    assert!(r.reply.header("set-cookie").is_none());
    assert!(r.body.contains("reviewers and admins"), "{}", r.body);

    // A reviewer's does, with an HttpOnly, SameSite cookie.
    let r = http(
        base,
        "POST",
        "/console/sign-in",
        &[],
        &form(&[("token", &reviewer.token())]),
    );
    assert_eq!(r.status, 303, "{}", r.reply.head);
    let set = r
        .reply
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let with = [("Cookie", cookie.as_str())];

    let queue = http(base, "GET", "/console/queue", &with, "");
    assert_eq!(queue.status, 200);
    assert!(queue.body.contains("2 cases"), "{}", queue.body);
    assert!(
        queue
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; lid")
    );
    assert!(!queue.body.contains("<script>alert"));
    let csrf = csrf_of(&queue.body);

    // Forms without the session's token, or from another site, change nothing.
    let decide = format!("/console/cases/{}/decide", ids[0]);
    let r = http(
        base,
        "POST",
        &decide,
        &with,
        &form(&[("action", "register")]),
    );
    assert_eq!(r.status, 403);
    let cross = [
        ("Cookie", cookie.as_str()),
        ("Origin", "http://evil.example"),
    ];
    let r = http(
        base,
        "POST",
        &decide,
        &cross,
        &form(&[("csrf", &csrf), ("action", "register")]),
    );
    assert_eq!(r.status, 403);
    let page = http(
        base,
        "GET",
        &format!("/console/cases/{}", ids[0]),
        &with,
        "",
    );
    assert!(
        page.body
            .contains("<td id=\"status\" data-status=\"reported\">reported"),
        "{}",
        page.body
    );

    // Register one, reject the other with a reason.
    let r = http(
        base,
        "POST",
        &decide,
        &with,
        &form(&[("csrf", &csrf), ("action", "register")]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let reject = format!("/console/cases/{}/decide", ids[1]);
    let r = http(
        base,
        "POST",
        &reject,
        &with,
        &form(&[
            ("csrf", &csrf),
            ("action", "reject"),
            ("reason", "duplicate"),
        ]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = http(
        base,
        "GET",
        &format!("/console/cases/{}", ids[0]),
        &with,
        "",
    );
    assert!(
        page.body
            .contains("<td id=\"status\" data-status=\"registered\">registered"),
        "{}",
        page.body
    );
    assert!(page.body.contains("/thumb"), "photo thumbnails shown");
    let page = http(
        base,
        "GET",
        &format!("/console/cases/{}", ids[1]),
        &with,
        "",
    );
    assert!(
        page.body
            .contains("<td id=\"status\" data-status=\"rejected\">rejected"),
        "{}",
        page.body
    );
    assert!(page.body.contains("duplicate"));

    // A rejection without a reason is refused, naming the field.
    let r = http(
        base,
        "POST",
        &decide,
        &with,
        &form(&[("csrf", &csrf), ("action", "reject")]),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("reason"), "{}", r.body);

    // Filters narrow the queue.
    let q = http(base, "GET", "/console/queue?status=registered", &with, "");
    assert!(q.body.contains(&ids[0]) && !q.body.contains(&ids[1]));
    let q = http(
        base,
        "GET",
        "/console/queue?status=rejected&collector=%E8%B5%B5",
        &with,
        "",
    );
    assert!(q.body.contains(&ids[1]) && !q.body.contains(&ids[0]));
    let q = http(base, "GET", "/console/queue?cell=nowhere", &with, "");
    assert!(q.body.contains("0 cases"));

    // Thumbnails come through the session.
    let hash = page
        .body
        .split("/console/photos/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let t = http(
        base,
        "GET",
        &format!("/console/photos/{hash}/thumb"),
        &with,
        "",
    );
    assert_eq!(t.status, 200);
    assert!(
        t.reply
            .header("content-type")
            .unwrap()
            .starts_with("image/")
    );

    // Signing out ends the session.
    let r = http(
        base,
        "POST",
        "/console/sign-out",
        &with,
        &form(&[("csrf", &csrf)]),
    );
    assert_eq!(r.status, 303);
    let r = http(base, "GET", "/console/queue", &with, "");
    assert_eq!(r.status, 303);
}

fn api_json(base: &str, token: &str, path: &str) -> (u16, Option<String>, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let r = exchange(base, "GET", path, &[("Authorization", &auth)], "");
    let total = r.header("x-total-count").map(String::from);
    let body = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, total, body)
}

#[test]
fn the_api_pages_and_filters_the_queue_and_gives_the_city_as_geojson() {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("钱", "collector", &TOP_ROW));
    let reviewer = server.enrolled_device(&server.add_user("审核", "reviewer", &[]));
    let gpx = d.file("day.gpx", field_e2e::gpx_track(2000).as_bytes());
    d.ok(&["track", "import", gpx.to_str().unwrap()]);
    let shared = d.file("shared.png", &png(1));
    let own = d.file("own.png", &png(2));
    let mut ids = Vec::new();
    for (category, lon, at, photo) in [
        ("BJ0101", "120.2605", "09:00:00", &shared),
        ("SJ0201", "120.2615", "09:10:00", &own),
        ("BJ0102", "120.2625", "09:20:00", &shared),
    ] {
        let at = format!("2025-11-26T{at}+08:00");
        let id = d.report((category, lon, "30.1895"), "x", photo, Some(&at));
        ids.push(id);
    }
    d.ok(&["sync"]);
    let (base, token) = (server.url.as_str(), reviewer.token());
    let ids_of = |rows: &serde_json::Value| -> Vec<String> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };

    // Pages, newest first, with the total in a header.
    let (status, total, rows) = api_json(base, &token, "/v1/center/cases?limit=2");
    assert_eq!((status, total.as_deref()), (200, Some("3")));
    assert_eq!(ids_of(&rows), vec![ids[2].clone(), ids[1].clone()]);
    // Every row has its cell, even when the device had no grid yet.
    assert_eq!(rows[0]["cell"], TOP_ROW[2]);
    assert_eq!(rows[1]["cell"], TOP_ROW[1]);
    let (_, _, rows) = api_json(base, &token, "/v1/center/cases?limit=2&offset=2");
    assert_eq!(ids_of(&rows), vec![ids[0].clone()]);
    // A major class by prefix; a flag computed from the evidence.
    let (_, total, rows) = api_json(base, &token, "/v1/center/cases?category=BJ01");
    assert_eq!(total.as_deref(), Some("2"));
    assert_eq!(ids_of(&rows), vec![ids[2].clone(), ids[0].clone()]);
    let (_, total, rows) = api_json(base, &token, "/v1/center/cases?flag=reused_photo");
    assert_eq!(total.as_deref(), Some("2"));
    assert_eq!(rows[0]["flags"][0]["evidence"]["other_cases_total"], 1);
    assert_eq!(
        rows[0]["flags"][0]["evidence"]["other_cases"][0],
        ids[0].as_str()
    );
    // The same from the command line.
    let listed = reviewer
        .ok(&[
            "center",
            "case",
            "list",
            "--category",
            "BJ01",
            "--limit",
            "1",
            "--offset",
            "1",
            "--json",
        ])
        .json();
    assert_eq!(ids_of(&listed), vec![ids[0].clone()]);
    let (status, _, err) = api_json(base, &token, "/v1/center/cases?flag=bogus");
    assert_eq!((status, err["field"].as_str()), (400, Some("flag")));
    // A collector is not staff.
    let (status, _, _) = api_json(base, &d.token(), "/v1/center/cases");
    assert_eq!(status, 403);

    // The city on the day: 9 cells, the walked row covered, one simplified
    // track, three cases.
    let (status, _, fc) = api_json(base, &token, "/v1/center/city-map?day=2025-11-26");
    assert_eq!(status, 200, "{fc}");
    let layer = |fc: &serde_json::Value, l: &str| -> Vec<serde_json::Value> {
        fc["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["properties"]["layer"] == l)
            .cloned()
            .collect()
    };
    let cells = layer(&fc, "cell");
    assert_eq!(cells.len(), 9);
    let walked = cells
        .iter()
        .find(|c| c["properties"]["code"] == TOP_ROW[0])
        .unwrap();
    assert!(walked["properties"]["covered"].as_u64().unwrap() > 0);
    let unassigned = cells
        .iter()
        .find(|c| c["properties"]["code"] == "330109001001009")
        .unwrap();
    assert_eq!(unassigned["properties"]["windows"], 0);
    let tracks = layer(&fc, "track");
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0]["properties"]["points"], 2000);
    let drawn: usize = tracks[0]["geometry"]["coordinates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_array().unwrap().len())
        .sum();
    assert!((2..2000).contains(&drawn), "simplified to {drawn} points");
    assert_eq!(layer(&fc, "case").len(), 3);
    let (_, _, by_zone) = api_json(
        base,
        &token,
        "/v1/center/city-map?day=2025-11-26&colour=zone",
    );
    let red = layer(&by_zone, "cell")
        .into_iter()
        .find(|c| c["properties"]["zone"] == "red")
        .unwrap();
    assert_eq!(red["properties"]["fill"], "#e06666");
    let (status, _, err) = api_json(
        base,
        &token,
        "/v1/center/city-map?day=2025-11-26&colour=pink",
    );
    assert_eq!((status, err["field"].as_str()), (400, Some("colour")));

    // A month's report with each day's rates: only the walked day has coverage.
    let (status, _, reports) = api_json(
        base,
        &token,
        "/v1/center/report?period=2025-11&collector=%E9%92%B1&daily=true",
    );
    assert_eq!(status, 200, "{reports}");
    let daily = reports[0]["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 30);
    for d in daily {
        let covered = d["coverage"]["n"].as_u64().unwrap();
        assert_eq!(covered > 0, d["day"] == "2025-11-26", "{d}");
    }
}

#[test]
fn a_console_session_outlives_a_restart_and_ends_with_its_account() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, "127.0.0.1:0");
    let reviewer = server.enrolled_device(&server.add_user("钱审核", "reviewer", &[]));
    let token = reviewer.token();
    let r = http(
        &server.url,
        "POST",
        "/console/sign-in",
        &[],
        &form(&[("token", &token)]),
    );
    assert_eq!(r.status, 303, "{}", r.reply.head);
    let cookie = r
        .reply
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let session_id = cookie.split_once('=').unwrap().1.to_string();
    // Stored as hashes only: neither the cookie nor the token is in the database.
    let db = rusqlite::Connection::open(data.join("center.db")).unwrap();
    let (id_hash, token_hash): (String, String) = db
        .query_row(
            "SELECT id_hash, token_hash FROM console_sessions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(id_hash != session_id && !id_hash.contains(&session_id));
    assert!(token_hash != token && !token_hash.contains(&token));
    drop(db);

    // Another server process on the same data: still signed in.
    server.kill();
    let server = Server::start_on(&data, "127.0.0.1:0");
    let with = [("Cookie", cookie.as_str())];
    let queue = http(&server.url, "GET", "/console/queue", &with, "");
    assert_eq!(queue.status, 200, "{}", queue.body);

    // The account disabled: the session ends at the next request.
    let users: serde_json::Value = server
        .admin()
        .call::<(), serde_json::Value>("GET", "/v1/center/users", None)
        .unwrap();
    let id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "钱审核")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let _: serde_json::Value = server
        .admin()
        .call::<(), serde_json::Value>("POST", &format!("/v1/center/users/{id}/disable"), None)
        .unwrap();
    let queue = http(&server.url, "GET", "/console/queue", &with, "");
    assert_eq!(queue.status, 303, "{}", queue.body);
}
