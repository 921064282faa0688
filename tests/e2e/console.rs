//! The web console over real HTTP: sign-in and its session cookie, the
//! queue and its filters, review actions from forms, forgery protection,
//! and collector text rendered as text.

use std::io::{Read, Write};

use field_e2e::server::Server;
use field_e2e::{grid_geojson, png};

const TOP_ROW: [&str; 3] = ["330109001001001", "330109001001002", "330109001001003"];

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 exchange by hand, so that redirects and cookies are seen
/// exactly as a browser would receive them.
fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head[9..12].parse().unwrap();
    Reply {
        status,
        head,
        body: String::from_utf8_lossy(&buf[split + 4..]).to_string(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
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
        assert_eq!(r.header("location"), Some("/console/sign-in"), "{path}");
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
    assert!(r.header("set-cookie").is_none());
    assert!(r.body.contains("reviewers and admins"), "{}", r.body);

    // A reviewer's does, with an HttpOnly, SameSite cookie.
    let r = http(
        base,
        "POST",
        "/console/sign-in",
        &[],
        &form(&[("token", &reviewer.token())]),
    );
    assert_eq!(r.status, 303, "{}", r.head);
    let set = r
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
    assert!(t.header("content-type").unwrap().starts_with("image/"));

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
