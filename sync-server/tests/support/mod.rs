//! An in-process center with an injected clock, for tests that drive the
//! server's logic directly: an admin, a grid of cells in a row, collectors
//! enrolled on their own device stores, pushes through `Center::sync`.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use field_core::crdt::Clock;
use field_core::store::Store;
use field_core::sync::protocol::{PROTOCOL_VERSION, PullRequest, SyncRequest, SyncResponse};
use sync_server::config::Limits;
use sync_server::service::{Center, NewUserRequest, tokens};
use sync_server::storage::{Principal, Role, sqlite::SqliteStorage};

/// The scenario's clock, shared by the center, its storage and every
/// handset: moving it moves them all.
#[derive(Clone)]
pub struct SharedClock(pub Arc<AtomicI64>);

impl Clock for SharedClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst) as u64
    }
}

/// A tiny PNG with distinct bytes per seed.
pub fn png(seed: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 4, 4);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[seed as u8; 16]).unwrap();
    }
    out.extend_from_slice(&seed.to_le_bytes());
    out
}

/// Cells `330109001001001`… side by side (~100 m), of the given zones.
pub fn grid(zones: &[&str]) -> String {
    let features: Vec<serde_json::Value> = zones
        .iter()
        .enumerate()
        .map(|(c, zone)| {
            let x0 = 120.26 + c as f64 * 0.001;
            serde_json::json!({
                "type": "Feature",
                "properties": { "code": format!("33010900100100{}", c + 1), "zone": zone },
                "geometry": { "type": "Polygon", "coordinates": [[[x0, 30.19], [x0 + 0.001, 30.19], [x0 + 0.001, 30.189], [x0, 30.189], [x0, 30.19]]] }
            })
        })
        .collect();
    serde_json::json!({ "type": "FeatureCollection", "features": features }).to_string()
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub center: Center,
    pub now: Arc<AtomicI64>,
    pub admin: Principal,
}

/// A collector's handset, enrolled.
pub struct Handset {
    pub store: Store,
    pub principal: Principal,
}

impl Harness {
    pub fn new(now_ms: i64, grid: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(now_ms));
        let n = now.clone();
        let storage = SqliteStorage::open_with_clock(
            &dir.path().join("server"),
            Box::new(SharedClock(now.clone())),
        )
        .unwrap();
        let center = Center::new(
            Arc::new(storage),
            Limits::default(),
            Arc::new(move || n.load(Ordering::SeqCst)),
        );
        let storage = center.storage().clone();
        let admin_user = storage
            .create_user("admin", Role::Admin, None, &[])
            .unwrap();
        let token = tokens::new_token();
        storage
            .add_user_token(&tokens::hash(&token), &admin_user.id)
            .unwrap();
        let admin = center.authenticate(Some(&token)).unwrap();
        center.import_grid(&admin, grid).unwrap();
        Harness {
            dir,
            center,
            now,
            admin,
        }
    }

    /// Adds the collector and enrols a handset of theirs.
    pub fn enrol(&self, req: NewUserRequest) -> Handset {
        let name = req.name.clone();
        let code = self
            .center
            .add_user(&self.admin, req)
            .unwrap()
            .enrolment_code;
        let actor = uuid::Uuid::new_v4();
        let mut store = Store::init_with(
            &self.dir.path().join(format!("{actor}.db")),
            &name,
            actor,
            Box::new(SharedClock(self.now.clone())),
        )
        .unwrap();
        let enrolled = self
            .center
            .enroll(field_core::sync::protocol::EnrollRequest {
                code,
                actor,
                device_name: None,
            })
            .unwrap();
        store
            .set_sync_settings(&field_core::store::SyncSettings {
                server: "in process".into(),
                token: enrolled.token.clone(),
                user: enrolled.user,
            })
            .unwrap();
        let principal = self.center.authenticate(Some(&enrolled.token)).unwrap();
        Handset { store, principal }
    }

    /// One sync of a handset: its outbox up, what it lacks down.
    pub fn push(&self, h: &mut Handset) -> SyncResponse {
        let (push, through) = h.store.outbox(500, 4 << 20).unwrap();
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            push,
            pull: PullRequest {
                cursor: h.store.pull_cursor().unwrap(),
                grid_version: h.store.grid_version().unwrap(),
                ..Default::default()
            },
            device_time_ms: None,
        };
        let resp = self.center.sync(&h.principal, req).unwrap();
        h.store.record_push(through, &resp.push).unwrap();
        h.store.apply_pull(resp.pull.clone()).unwrap();
        resp
    }
}

/// A fresh PostgreSQL database on the test cluster (`FIELD_PG_URL`, which
/// `scripts/test` starts), or `None` when there is none here — a failure
/// instead when the run requires it (`FIELD_PG_REQUIRED`).
pub fn pg_database() -> Option<String> {
    let Ok(admin) = std::env::var("FIELD_PG_URL") else {
        assert!(
            std::env::var_os("FIELD_PG_REQUIRED").is_none(),
            "FIELD_PG_REQUIRED is set but FIELD_PG_URL is not: start scripts/pg-cluster"
        );
        eprintln!("skipped: no PostgreSQL here (FIELD_PG_URL unset; scripts/test starts one)");
        return None;
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    Some(sync_server::storage::postgres::create_database(&admin, &name).unwrap())
}
