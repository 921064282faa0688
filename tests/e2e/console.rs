//! The web console over real HTTP: sign-in and its session cookie, the
//! queue and its filters, review actions from forms, forgery protection,
//! and collector text rendered as text.

use field_e2e::raw_http::{Reply, exchange};
use field_e2e::server::Server;
use field_e2e::{grid_geojson, png};

const TOP_ROW: [&str; 3] = ["330109001001001", "330109001001002", "330109001001003"];

/// A request as a browser sends it; the body as text.
fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], form: &str) -> Page {
    let r = exchange(base, method, path, headers, form);
    Page {
        status: r.status,
        body: r.text(),
        reply: r,
    }
}

struct Page {
    status: u16,
    body: String,
    reply: Reply,
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn csrf_of(page: &str) -> String {
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
        let id = d
            .ok(&[
                "case",
                "report",
                "--category",
                "BJ0101",
                "--lon",
                lon,
                "--lat",
                "30.1895",
                "--desc",
                desc,
                "--photo",
                photo.to_str().unwrap(),
            ])
            .stdout
            .trim()
            .to_string();
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
        assert_eq!(
            r.reply.header("location"),
            Some("/console/sign-in"),
            "{path}"
        );
    }

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
        page.body.contains("<td id=\"status\">reported"),
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
        page.body.contains("<td id=\"status\">registered"),
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
        page.body.contains("<td id=\"status\">rejected"),
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
