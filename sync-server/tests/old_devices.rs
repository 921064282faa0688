//! Devices not yet upgraded speak protocol 1, whose track batches travel as
//! columnar JSON; upgraded ones send them packed. The server takes both,
//! and a batch is the same change whichever form it came in.

use field_core::crdt::{Op, TrackWire};
use field_core::model::{LonLat, Timestamp, TrackPoint};
use field_core::sync::protocol::{PullRequest, PushOutcome, SyncRequest};
use sync_server::service::NewUserRequest;
use sync_server::storage::Role;

mod support;
use support::{Harness, grid};

const NOV_3_9AM: i64 = 1_762_131_600_000; // 2025-11-03T09:00:00+08:00

#[test]
fn old_and_new_devices_send_the_same_track_in_either_form() {
    let h = Harness::new(NOV_3_9AM, &grid(&["red"]));
    let mut a = h.enrol(NewUserRequest {
        name: "周".into(),
        role: Role::Collector,
        company: None,
        cells: vec!["330109001001001".into()],
        from: None,
    });
    let points: Vec<TrackPoint> = (0..30)
        .map(|i| {
            TrackPoint::new(
                Timestamp::from_millis("at", NOV_3_9AM - 3_600_000 + i * 5_000).unwrap(),
                LonLat::new(120.2602 + i as f64 * 1e-5, 30.1895).unwrap(),
                Some(5.0),
                Some(1.2),
            )
            .unwrap()
        })
        .collect();
    a.store.append_track_points(&points).unwrap();
    let (push, _) = a.store.outbox(500, 4 << 20).unwrap();
    let track = push
        .iter()
        .find(|c| matches!(c.op, Op::TrackAppend(_)))
        .cloned()
        .expect("a track change");
    let as_old = |mut c: field_core::crdt::Change| {
        if let Op::TrackAppend(b) = c.op {
            c.op = Op::TrackAppend(b.written_as(TrackWire::Columnar));
        }
        c
    };
    // The old device's request, as JSON on the wire.
    let old = as_old(track.clone());
    let text = serde_json::to_string(&SyncRequest {
        protocol: 1,
        push: vec![old.clone()],
        pull: PullRequest::default(),
        device_time_ms: None,
    })
    .unwrap();
    assert!(text.contains("\"dt_ms\"") && !text.contains("\"packed\""));
    let req: SyncRequest = serde_json::from_str(&text).unwrap();
    let resp = h.center.sync(&a.principal, req).unwrap();
    assert_eq!(
        resp.push[0].outcome,
        PushOutcome::Accepted,
        "{:?}",
        resp.push
    );
    assert_eq!(
        h.center
            .storage()
            .track_between(old.actor, 0, i64::MAX)
            .unwrap()
            .len(),
        points.len(),
        "every point of the columnar batch is held"
    );
    // The same change again, packed, from the upgraded device: a
    // duplicate, not a reused counter.
    let text = serde_json::to_string(&SyncRequest {
        protocol: 2,
        push: vec![track],
        pull: PullRequest::default(),
        device_time_ms: None,
    })
    .unwrap();
    assert!(text.contains("\"packed\"") && !text.contains("\"dt_ms\""));
    let resp = h
        .center
        .sync(&a.principal, serde_json::from_str(&text).unwrap())
        .unwrap();
    assert_eq!(
        resp.push[0].outcome,
        PushOutcome::Duplicate,
        "{:?}",
        resp.push
    );
    // A protocol 0 request is refused by name.
    let err = h
        .center
        .sync(
            &a.principal,
            SyncRequest {
                protocol: 0,
                push: vec![],
                pull: PullRequest::default(),
                device_time_ms: None,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("protocol"), "{err}");
}

/// A device states its own gaps; one ending in the future or longer than a
/// week is refused by name, one of another actor is forbidden.
#[test]
fn gaps_are_bounded_and_a_devices_own() {
    use field_core::crdt::{CHANGE_SCHEMA, Change, Hlc};
    use field_core::model::{GapCause, TrackGap};
    let h = Harness::new(NOV_3_9AM, &grid(&["red"]));
    let a = h.enrol(NewUserRequest {
        name: "吴".into(),
        role: Role::Collector,
        company: None,
        cells: vec!["330109001001001".into()],
        from: None,
    });
    let at = |ms: i64| Timestamp::from_millis("at", ms).unwrap();
    let gap = |actor, counter, from: i64, to: i64| Change {
        schema: CHANGE_SCHEMA,
        actor,
        counter,
        hlc: Hlc::new(NOV_3_9AM as u64 - 60_000, 0),
        op: Op::TrackGap(TrackGap {
            from: at(from),
            to: at(to),
            cause: GapCause::NoFix,
        }),
    };
    let me = a.store.actor();
    let push = |changes| {
        h.center
            .sync(
                &a.principal,
                SyncRequest {
                    protocol: 2,
                    push: changes,
                    pull: PullRequest::default(),
                    device_time_ms: None,
                },
            )
            .unwrap()
            .push
    };
    let ok = push(vec![gap(me, 1, NOV_3_9AM - 600_000, NOV_3_9AM - 60_000)]);
    assert_eq!(ok[0].outcome, PushOutcome::Accepted, "{ok:?}");
    let day = 86_400_000;
    let future = push(vec![gap(me, 2, NOV_3_9AM, NOV_3_9AM + 2 * day)]);
    assert_eq!(future[0].code, Some(425), "{future:?}");
    assert!(future[0].reason.as_deref().unwrap_or("").contains("gap.to"));
    let long = push(vec![gap(me, 2, NOV_3_9AM - 9 * day, NOV_3_9AM - 60_000)]);
    assert_eq!(long[0].code, Some(400), "{long:?}");
    assert!(long[0].reason.as_deref().unwrap_or("").contains("week"));
    let other = push(vec![gap(
        uuid::Uuid::new_v4(),
        1,
        NOV_3_9AM - 600_000,
        NOV_3_9AM - 60_000,
    )]);
    assert_eq!(other[0].code, Some(403), "{other:?}");
    assert_eq!(h.center.storage().track_gaps().unwrap().len(), 1);
}
