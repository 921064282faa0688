//! The center's workflow through HTTP and `field`, with the real server:
//! the lifecycle seen on the reporting device, rework, quick fixes, a late
//! verification task, concurrent decisions, and who may do what.

use field_core::crdt::{CHANGE_SCHEMA, CaseEdit, Change, Hlc, Op};
use field_core::model::{CaseFields, CaseId, TaskAnswer, TaskResult, Timestamp};
use field_core::sync::client::TransportError;
use field_core::sync::http::HttpTransport;
use field_core::sync::protocol::{PushOutcome, SyncResponse};
use field_e2e::server::Server;
use field_e2e::{CELLS, Device, grid_geojson, png};
use serde_json::{Value, json};

struct Center {
    server: Server,
    collector: Device,
    reviewer: Device,
}

fn center() -> Center {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let collector = server.enrolled_device(&server.add_user("王芳", "collector", &CELLS));
    let reviewer = server.enrolled_device(&server.add_user("审核员甲", "reviewer", &[]));
    collector.ok(&["sync"]);
    Center {
        server,
        collector,
        reviewer,
    }
}

fn report(d: &Device, seed: u32, extra: &[&str]) -> String {
    let p = d.file(&format!("r{seed}.png"), &png(seed));
    let mut args = vec![
        "case",
        "report",
        "--category",
        "BJ0101",
        "--lon",
        "120.2605",
        "--lat",
        "30.1895",
        "--desc",
        "cover broken",
        "--photo",
        p.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    d.ok(&args).stdout.trim().to_string()
}

fn statuses(v: &Value) -> Vec<String> {
    v["summary"]["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn device_status(d: &Device, id: &str) -> Vec<String> {
    let v = d.ok(&["case", "show", id, "--json"]).json();
    v["summary"]["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn answer_check(c: &Center, seed: u32) {
    c.collector.ok(&["sync"]);
    let tasks = c.collector.ok(&["task", "list", "--json"]).json();
    let open: Vec<&Value> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["answer"].is_null())
        .collect();
    assert_eq!(open.len(), 1, "the check task reached the device: {tasks}");
    let id = open[0]["id"].as_str().unwrap();
    let p = c.collector.file(&format!("check{seed}.png"), &png(seed));
    c.collector.ok(&[
        "task",
        "answer",
        id,
        "--result",
        "yes",
        "--photo",
        p.to_str().unwrap(),
        "--note",
        "fixed",
    ]);
    c.collector.ok(&["sync"]);
}

#[test]
fn a_case_goes_through_its_lifecycle_and_the_device_sees_every_step() {
    let c = center();
    let (d, r) = (&c.collector, &c.reviewer);
    let id = report(d, 1, &[]);
    d.ok(&["sync"]);
    let step = |args: &[&str], expect: &str| {
        let mut full = vec!["center"];
        full.extend_from_slice(args);
        r.ok(&full);
        d.ok(&["sync"]);
        assert_eq!(
            device_status(d, &id),
            vec![expect.to_string()],
            "after {args:?}"
        );
    };
    // The center's commands take the 8 characters the lists print.
    step(&["case", "register", &id[..8]], "registered");
    step(
        &["case", "dispatch", &id, "--to", "城管执法局"],
        "dispatched",
    );
    step(
        &["case", "handled", &id, "--note", "cover replaced"],
        "handled",
    );
    let refused = r.run(&["center", "case", "close", &id]);
    assert!(
        !refused.ok && refused.stderr.contains("check task"),
        "{}",
        refused.stderr
    );
    r.ok(&[
        "center", "task", "create", "--kind", "check", "--case", &id, "--to", "王芳", "--due", "2h",
    ]);
    answer_check(&c, 2);
    step(&["case", "close", &id], "closed");

    // The device holds the same history as the center.
    let on_device = d.ok(&["case", "show", &id, "--json"]).json();
    let at_center = r.ok(&["center", "case", "show", &id[..8], "--json"]).json();
    let unknown = r.run(&["center", "case", "show", "0000000z"]);
    assert!(
        !unknown.ok && unknown.stderr.contains("id"),
        "{}",
        unknown.stderr
    );
    let kinds = |v: &Value| {
        v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["kind"].as_str().unwrap().to_string(),
                    h["op"]["to"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&on_device), kinds(&at_center));
    let tos: Vec<Value> = kinds(&at_center)
        .into_iter()
        .filter(|(k, _)| k == "status_set")
        .map(|(_, to)| to)
        .collect();
    assert_eq!(
        tos,
        vec![
            json!("registered"),
            json!("dispatched"),
            json!("handled"),
            json!("closed")
        ]
    );
    assert_eq!(at_center["case"]["status"][0]["department"], Value::Null);
    let dispatch = at_center["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["op"]["to"] == "dispatched")
        .unwrap();
    assert_eq!(dispatch["op"]["department"], "城管执法局");
}

#[test]
fn rework_loops_and_quick_fixes_are_approved_or_rejected() {
    let c = center();
    let (d, r) = (&c.collector, &c.reviewer);
    let id = report(d, 3, &[]);
    d.ok(&["sync"]);
    for args in [
        vec!["register"],
        vec!["dispatch", "--to", "园林局"],
        vec!["handled"],
    ] {
        let mut full = vec!["center", "case", args[0], &id];
        full.extend_from_slice(&args[1..]);
        r.ok(&full);
    }
    let refused = r.run(&["center", "case", "rework", &id, "--note", "still broken"]);
    assert!(refused.ok, "{}", refused.stderr);
    d.ok(&["sync"]);
    assert_eq!(device_status(d, &id), vec!["dispatched"]);
    r.ok(&["center", "case", "handled", &id]);
    r.ok(&[
        "center", "task", "create", "--kind", "check", "--case", &id, "--to", "王芳", "--due", "1h",
    ]);
    answer_check(&c, 4);
    r.ok(&["center", "case", "close", &id]);
    let history = r.ok(&["center", "case", "show", &id, "--json"]).json();
    let tos: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["op"]["to"].as_str())
        .collect();
    assert_eq!(
        tos,
        vec![
            "registered",
            "dispatched",
            "handled",
            "dispatched",
            "handled",
            "closed"
        ]
    );

    let after = d.file("after.png", &png(6));
    let approved = report(
        d,
        5,
        &["--quick-fix", "--after-photo", after.to_str().unwrap()],
    );
    let after2 = d.file("after2.png", &png(8));
    let rejected = report(
        d,
        7,
        &["--quick-fix", "--after-photo", after2.to_str().unwrap()],
    );
    d.ok(&["sync"]);
    let wrong = r.run(&["center", "case", "register", &approved]);
    assert!(
        !wrong.ok && wrong.stderr.contains("approved by closing"),
        "{}",
        wrong.stderr
    );
    r.ok(&["center", "case", "close", &approved]);
    r.ok(&[
        "center",
        "case",
        "reject",
        &rejected,
        "--reason",
        "bad_photo",
    ]);
    d.ok(&["sync"]);
    assert_eq!(device_status(d, &approved), vec!["closed"]);
    assert_eq!(device_status(d, &rejected), vec!["rejected"]);
    let shown = d.ok(&["case", "show", &rejected, "--json"]).json();
    assert_eq!(shown["case"]["status"][0]["reason"]["reason"], "bad_photo");
}

#[test]
fn a_verification_answered_offline_and_synced_after_its_deadline_is_late_with_both_times() {
    let c = center();
    let (d, r) = (&c.collector, &c.reviewer);
    r.ok(&[
        "center",
        "task",
        "create",
        "--kind",
        "verify",
        "--lon",
        "120.2615",
        "--lat",
        "30.1885",
        "--category",
        "SJ0201",
        "--to",
        "王芳",
        "--due",
        "2s",
        "--note",
        "citizen: posters on the bus shelter",
    ]);
    d.ok(&["sync"]);
    let task = d.ok(&["task", "list", "--json"]).json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = d.file("v.png", &png(9));
    d.ok(&[
        "task",
        "answer",
        &task,
        "--result",
        "yes",
        "--photo",
        p.to_str().unwrap(),
    ]); // offline
    // The deadline passes before the device gets signal again.
    let overdue = loop {
        let list = r.ok(&["center", "task", "list", "--json"]).json();
        if list[0]["timeliness"] == "overdue" {
            break list;
        }
        std::thread::sleep(std::time::Duration::from_millis(100)); // polling the server's view of time
    };
    assert_eq!(overdue[0]["answer"], Value::Null);
    d.ok(&["sync"]);
    let list = r.ok(&["center", "task", "list", "--json"]).json();
    assert_eq!(list[0]["timeliness"], "late");
    let (answered, received, due) = (
        list[0]["answer"]["answered_at"].as_str().unwrap(),
        list[0]["answer_received_at"].as_str().unwrap(),
        list[0]["spec"]["due_at"].as_str().unwrap(),
    );
    assert!(
        answered < received && due < received,
        "answered {answered}, received {received}, due {due}"
    );
    assert_eq!(list[0]["answer"]["result"], "yes");
}

fn decide(t: &mut HttpTransport, id: &str, body: Value) -> Value {
    t.call(
        "POST",
        &format!("/v1/center/cases/{id}/decisions"),
        Some(&body),
    )
    .expect("decision")
}

#[test]
fn two_reviewers_deciding_at_once_leave_a_visible_conflict_until_resolved() {
    let c = center();
    let r2 = c
        .server
        .enrolled_device(&c.server.add_user("审核员乙", "reviewer", &[]));
    let id = report(&c.collector, 11, &[]);
    c.collector.ok(&["sync"]);
    let mut t1 = HttpTransport::new(&c.server.url, Some(c.reviewer.token())).unwrap();
    let mut t2 = HttpTransport::new(&c.server.url, Some(r2.token())).unwrap();
    // Both open the case, then decide on what they saw.
    let seen: Value = t1
        .call::<(), Value>("GET", &format!("/v1/center/cases/{id}"), None)
        .unwrap();
    let seen =
        json!({ "statuses": seen["summary"]["status"], "context": seen["case"]["status_context"] });
    decide(&mut t1, &id, json!({ "action": "register", "seen": seen }));
    let both = decide(
        &mut t2,
        &id,
        json!({ "action": "reject", "reason": "duplicate", "seen": seen }),
    );
    assert_eq!(statuses(&both), vec!["registered", "rejected"]);
    assert_eq!(both["summary"]["conflict"], true);
    let queue = c.reviewer.ok(&["center", "case", "list", "--json"]).json();
    assert!(
        queue
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["id"] == id.as_str() && q["conflict"] == true),
        "the queue shows the conflict"
    );
    c.collector.ok(&["sync"]);
    assert_eq!(
        device_status(&c.collector, &id),
        vec!["registered", "rejected"],
        "the device sees it too"
    );

    // Resolving: one more decision that saw both.
    c.reviewer.ok(&["center", "case", "register", &id]);
    let resolved: Value = t1
        .call::<(), Value>("GET", &format!("/v1/center/cases/{id}"), None)
        .unwrap();
    assert_eq!(statuses(&resolved), vec!["registered"]);
    assert_eq!(resolved["summary"]["conflict"], false);
    let decisions: Vec<&str> = resolved["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["op"]["to"].as_str())
        .collect();
    assert_eq!(
        decisions.len(),
        3,
        "nothing either reviewer wrote is lost: {decisions:?}"
    );
    assert!(decisions.contains(&"rejected"));
}

fn push(t: &mut HttpTransport, change: Change) -> SyncResponse {
    field_e2e::push(t, vec![change])
}

fn now_hlc() -> Hlc {
    Hlc::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
        0,
    )
}

#[test]
fn who_may_do_what_in_the_workflow() {
    let c = center();
    let other = c
        .server
        .enrolled_device(&c.server.add_user("李伟", "collector", &CELLS[6..]));
    let id = report(&c.collector, 13, &[]);
    c.collector.ok(&["sync"]);
    other.ok(&["sync"]);
    let collector_token = c.collector.token();
    let mut as_collector = HttpTransport::new(&c.server.url, Some(collector_token)).unwrap();

    // A collector uses no reviewer endpoint.
    for (method, path, body) in [
        (
            "POST",
            format!("/v1/center/cases/{id}/decisions"),
            json!({ "action": "register" }),
        ),
        (
            "POST",
            "/v1/center/tasks".to_string(),
            json!({ "kind": "verify", "case": id, "to": "王芳", "due": "1h" }),
        ),
    ] {
        match as_collector.call::<Value, Value>(method, &path, Some(&body)) {
            Err(TransportError::Refused { status: 403, .. }) => {}
            other => panic!("{path}: {other:?}"),
        }
    }
    for path in ["/v1/center/tasks", "/v1/center/cases", "/v1/center/users"] {
        match as_collector.call::<(), Value>("GET", path, None) {
            Err(TransportError::Refused { status: 403, .. }) => {}
            other => panic!("{path}: {other:?}"),
        }
    }

    // A reviewer cannot forge a collector's change.
    let mut as_reviewer = HttpTransport::new(&c.server.url, Some(c.reviewer.token())).unwrap();
    let forged = Change {
        schema: CHANGE_SCHEMA,
        actor: c.collector.actor().parse().unwrap(),
        counter: 99,
        hlc: now_hlc(),
        op: Op::CaseEdit(CaseEdit {
            case: CaseId::parse("id", &id).unwrap(),
            fields: CaseFields {
                description: Some("forged".into()),
                ..Default::default()
            },
            ..Default::default()
        }),
    };
    let r = push(&mut as_reviewer, forged);
    assert_eq!(r.push[0].outcome, PushOutcome::Refused);
    assert!(
        r.push[0].reason.as_deref().unwrap().contains("own actor"),
        "{:?}",
        r.push[0]
    );

    // Photos: served to staff and the cell's collector, not to another cell's.
    let shown = c
        .reviewer
        .ok(&["center", "case", "show", &id, "--json"])
        .json();
    let hash = shown["case"]["photos"][0]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let mut other_t = HttpTransport::new(&c.server.url, Some(other.token())).unwrap();
    match other_t.call::<(), Value>("GET", &format!("/v1/photos/{hash}"), None) {
        Err(TransportError::Refused { status: 403, .. }) => {}
        other => panic!("{other:?}"),
    }
    match as_collector.call::<(), Value>("GET", &format!("/v1/photos/{hash}"), None) {
        // The bytes are a PNG, not JSON: a successful fetch fails to parse.
        Err(TransportError::Unreachable(why)) => {
            assert!(why.contains("unreadable answer"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let (mime, thumb) = raw_get(
        &c.server.url,
        &c.reviewer.token(),
        &format!("/v1/photos/{hash}/thumb"),
    );
    assert_eq!(mime, "image/jpeg");
    assert_eq!(&thumb[..2], &[0xFF, 0xD8], "a JPEG thumbnail");
    let (mime, original) = raw_get(
        &c.server.url,
        &c.reviewer.token(),
        &format!("/v1/photos/{hash}"),
    );
    assert_eq!((mime.as_str(), original), ("image/png", png(13)));

    // A collector cannot answer a task addressed to someone else.
    let task: Value = as_reviewer
        .call(
            "POST",
            "/v1/center/tasks",
            Some(&json!({ "kind": "verify", "case": id, "to": "王芳", "due": "1h" })),
        )
        .unwrap();
    let task_id: uuid::Uuid = task["id"].as_str().unwrap().parse().unwrap();
    let answer = Change {
        schema: CHANGE_SCHEMA,
        actor: other.actor().parse().unwrap(),
        counter: 50,
        hlc: now_hlc(),
        op: Op::TaskAnswer(TaskAnswer {
            task: task_id,
            result: TaskResult::Yes,
            photos: vec![],
            note: None,
            answered_at: Timestamp::now(),
        }),
    };
    let r = push(&mut other_t, answer);
    assert_eq!(r.push[0].outcome, PushOutcome::Refused);
    assert!(
        r.push[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("addressed to 王芳"),
        "{:?}",
        r.push[0]
    );
}

/// A GET with a bearer token: content type and body bytes.
fn raw_get(base: &str, token: &str, path: &str) -> (String, Vec<u8>) {
    let bearer = format!("Bearer {token}");
    let r = field_e2e::raw_http::exchange(base, "GET", path, &[("Authorization", &bearer)], "");
    assert_eq!(r.status, 200, "{}", r.head);
    (
        r.header("content-type").unwrap_or_default().to_string(),
        r.body,
    )
}
