//! Deterministic simulation of sync: 5 devices (3 collectors, two with a
//! spare handset) and a server, driven through the real device client and
//! the real server logic with the network and the clocks injected — no
//! sockets, no sleeps. The network drops requests and responses, delivers
//! some twice, replays stale requests late, partitions devices; device
//! clocks are skewed by up to ±2 h; the server restarts on its data. At the
//! end of each seed the network heals and every device syncs: all hold the
//! server's cases, every change is on the server exactly once, every photo
//! arrived, nothing is left pending.
//!
//! The same simulation runs against two server instances on one
//! PostgreSQL database (every request to either, each restarting on its
//! own), where a merge on one instance is now and then held open — its
//! states merged, its log positions not yet taken — while another device
//! syncs through the other instance: a transaction that commits after a
//! later one.
//!
//! SIM_SEEDS=N runs seeds 0..N (default 1000; on PostgreSQL SIM_PG_SEEDS,
//! default 200); SIM_SEED=K runs only seed K, which replays the same
//! schedule of operations and faults.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use field_core::crdt::ManualClock;
use field_core::model::{LonLat, ShiftKind, Status, Timestamp, TrackPoint};
use field_core::store::{CaseEditRequest, NewCase, Store};
use field_core::sync::client::{self, Transport, TransportError};
use field_core::sync::protocol::{
    ChunkAck, PhotosNeededRequest, PhotosNeededResponse, SyncRequest, SyncResponse,
};
use sync_server::config::Limits;
use sync_server::service::{Center, ServiceError, tokens};
use sync_server::storage::blobs::Blobs;
use sync_server::storage::postgres::PgStorage;
use sync_server::storage::{Role, sqlite::SqliteStorage};

mod support;

/// Where the simulated center keeps its records.
#[derive(Clone)]
enum Backend {
    Sqlite,
    /// Two instances on this database.
    Postgres(String),
}

/// Syncs run while a merge was held open, over all seeds (the mechanism
/// must have been exercised for the run to mean anything).
static HELD_SYNCS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    /// What a held-open merge does while it is held (this thread's seed).
    static WHILE_HELD: RefCell<Option<Box<dyn FnMut()>>> = RefCell::new(None);
}

/// The hook a PostgreSQL instance runs before its log positions: runs this
/// thread's `WHILE_HELD` (taken out while it runs: no re-entry).
fn hold_hook() -> Arc<dyn Fn() + Send + Sync> {
    Arc::new(|| {
        let f = WHILE_HELD.with(|w| w.borrow_mut().take());
        if let Some(mut f) = f {
            f();
            WHILE_HELD.with(|w| *w.borrow_mut() = Some(f));
        }
    })
}

const BASE_MS: i64 = 1_764_115_200_000; // 2025-11-26T00:00:00Z
const HOUR: i64 = 3_600_000;

fn png(seed: u64) -> Vec<u8> {
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

fn grid() -> String {
    let mut features = Vec::new();
    for r in 0..3 {
        for c in 0..3 {
            let (x0, y0) = (120.26 + c as f64 * 0.001, 30.19 - r as f64 * 0.001);
            features.push(serde_json::json!({
                "type": "Feature",
                "properties": { "code": format!("330109001001{:03}", r * 3 + c + 1), "zone": "red" },
                "geometry": { "type": "Polygon", "coordinates": [[[x0, y0], [x0 + 0.001, y0], [x0 + 0.001, y0 - 0.001], [x0, y0 - 0.001], [x0, y0]]] }
            }));
        }
    }
    serde_json::json!({ "type": "FeatureCollection", "features": features }).to_string()
}

/// The server as the network sees it: one or more instances, each
/// restartable, with its own clock.
struct Net {
    dir: std::path::PathBuf,
    now: Arc<AtomicI64>,
    backend: Backend,
    centers: RefCell<Vec<Center>>,
    rng: RefCell<fastrand::Rng>,
    faults: std::cell::Cell<bool>,
    stale: RefCell<Vec<(String, SyncRequest)>>,
    restarts: std::cell::Cell<u32>,
}

fn open_center(dir: &std::path::Path, now: &Arc<AtomicI64>) -> Center {
    let clock = ManualClock::at(now.load(Ordering::SeqCst) as u64);
    let storage = SqliteStorage::open_with_clock(dir, Box::new(clock)).expect("server storage");
    center_on(Arc::new(storage), now)
}

/// An instance on the shared database; photos in the shared DIR/blobs.
fn open_instance(url: &str, dir: &std::path::Path, now: &Arc<AtomicI64>) -> Center {
    let clock = ManualClock::at(now.load(Ordering::SeqCst) as u64);
    let blobs = Blobs::in_dir(&dir.join("blobs")).expect("blob dir");
    let storage = PgStorage::open_with(url, blobs, Box::new(clock), 4).expect("server storage");
    storage.set_before_positions(Some(hold_hook()));
    center_on(Arc::new(storage), now)
}

fn center_on(storage: Arc<dyn sync_server::storage::Storage>, now: &Arc<AtomicI64>) -> Center {
    let n = now.clone();
    Center::new(
        storage,
        Limits::default(),
        Arc::new(move || n.load(Ordering::SeqCst)),
    )
}

impl Net {
    fn open(backend: &Backend, dir: &std::path::Path, now: &Arc<AtomicI64>) -> Vec<Center> {
        match backend {
            Backend::Sqlite => vec![open_center(&dir.join("server"), now)],
            Backend::Postgres(url) => (0..2).map(|_| open_instance(url, dir, now)).collect(),
        }
    }

    /// Any instance: a device's request may reach either.
    fn center(&self) -> Center {
        let centers = self.centers.borrow();
        let i = self.rng.borrow_mut().usize(0..centers.len());
        centers[i].clone()
    }

    /// Restarts one instance on the same data.
    fn restart(&self) {
        match &self.backend {
            Backend::Sqlite => {
                // Drop the old storage before opening the same files again.
                self.centers.borrow_mut()[0] = open_center(&self.dir.join("empty"), &self.now);
                self.centers.borrow_mut()[0] = open_center(&self.dir.join("server"), &self.now);
            }
            Backend::Postgres(url) => {
                let i = self.rng.borrow_mut().usize(0..2);
                self.centers.borrow_mut()[i] = open_instance(url, &self.dir, &self.now);
            }
        }
        self.restarts.set(self.restarts.get() + 1);
    }

    fn roll(&self, percent: u32) -> bool {
        self.faults.get() && self.rng.borrow_mut().u32(0..100) < percent
    }

    fn serve(&self, token: &str, req: SyncRequest) -> Result<SyncResponse, ServiceError> {
        let center = self.center();
        let p = center.authenticate(Some(token))?;
        center.sync(&p, req)
    }
}

fn refused(e: ServiceError) -> TransportError {
    match e {
        // The server failed (a lock waited too long): try again later.
        ServiceError::Internal(why) => TransportError::Unreachable(why),
        e => TransportError::Refused {
            status: 400,
            reason: e.to_string(),
        },
    }
}

struct SimTransport {
    net: Rc<Net>,
    token: String,
    partitioned: bool,
}

impl Transport for SimTransport {
    fn successor(
        &mut self,
        req: &field_core::sync::protocol::SuccessorRequest,
    ) -> Result<field_core::sync::protocol::SuccessorResponse, TransportError> {
        if self.partitioned {
            return Err(TransportError::Unreachable("request lost".into()));
        }
        let center = self.net.center();
        let p = center.authenticate(Some(&self.token)).map_err(refused)?;
        center.succeed_device(&p, req.clone()).map_err(refused)
    }

    fn sync(&mut self, req: &SyncRequest) -> Result<SyncResponse, TransportError> {
        let net = &self.net;
        if self.partitioned || net.roll(10) {
            return Err(TransportError::Unreachable("request lost".into()));
        }
        // An old request of anyone's, delivered late.
        if net.roll(15) && !net.stale.borrow().is_empty() {
            let i = net.rng.borrow_mut().usize(0..net.stale.borrow().len());
            let (token, old) = net.stale.borrow_mut().swap_remove(i);
            let _ = net.serve(&token, old);
        }
        if net.roll(10) {
            net.stale
                .borrow_mut()
                .push((self.token.clone(), req.clone()));
        }
        let mut resp = net.serve(&self.token, req.clone()).map_err(refused)?;
        if std::env::var_os("SIM_TRACE").is_some() {
            let pushed: Vec<String> = req
                .push
                .iter()
                .zip(&resp.push)
                .map(|(c, r)| {
                    format!(
                        "{}#{} {} -> {:?} {:?}",
                        &c.actor.to_string()[34..],
                        c.counter,
                        c.op.kind(),
                        r.outcome,
                        r.reason
                    )
                })
                .collect();
            eprintln!(
                "sync cursor {} push {:?} pulled {}",
                req.pull.cursor,
                pushed,
                resp.pull.changes.len()
            );
        }
        if net.roll(10) {
            resp = net.serve(&self.token, req.clone()).map_err(refused)?; // delivered twice
        }
        if net.roll(10) {
            return Err(TransportError::Unreachable("response lost".into()));
        }
        Ok(resp)
    }

    fn photos_needed(
        &mut self,
        req: &PhotosNeededRequest,
    ) -> Result<PhotosNeededResponse, TransportError> {
        if self.partitioned || self.net.roll(10) {
            return Err(TransportError::Unreachable("request lost".into()));
        }
        let center = self.net.center();
        let p = center.authenticate(Some(&self.token)).map_err(refused)?;
        center.photos_needed(&p, req.clone()).map_err(refused)
    }

    fn upload_chunk(
        &mut self,
        hash: &field_core::model::PhotoHash,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<ChunkAck, TransportError> {
        if self.partitioned || self.net.roll(10) {
            return Err(TransportError::Unreachable("chunk lost".into()));
        }
        let center = self.net.center();
        let p = center.authenticate(Some(&self.token)).map_err(refused)?;
        let ack = center
            .upload_chunk(&p, hash.as_str(), offset, total, bytes)
            .map_err(refused)?;
        if self.net.roll(10) {
            return Err(TransportError::Unreachable("ack lost".into()));
        }
        Ok(ack)
    }
}

struct SimDevice {
    store: Store,
    clock: ManualClock,
    skew: i64,
    transport: SimTransport,
}

fn run_seed(seed: u64, backend: &Backend) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    // RAM-backed where the machine has it: the simulation is about logic, not disks.
    let shm = std::path::Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .map_err(|e| e.to_string())?;
    let now = Arc::new(AtomicI64::new(BASE_MS + 8 * HOUR));
    let net = Rc::new(Net {
        dir: tmp.path().to_path_buf(),
        now: now.clone(),
        backend: backend.clone(),
        centers: RefCell::new(Net::open(backend, tmp.path(), &now)),
        rng: RefCell::new(fastrand::Rng::with_seed(seed ^ 0x9e37_79b9)),
        faults: std::cell::Cell::new(true),
        stale: RefCell::new(Vec::new()),
        restarts: std::cell::Cell::new(0),
    });

    // The center: an admin, the grid, three collectors on every cell.
    let center = net.center();
    let storage = center.storage().clone();
    let admin_user = storage
        .create_user("admin", Role::Admin, None, &[])
        .map_err(|e| e.to_string())?;
    let admin_token = tokens::new_token();
    storage
        .add_user_token(&tokens::hash(&admin_token), &admin_user.id)
        .map_err(|e| e.to_string())?;
    let admin = center
        .authenticate(Some(&admin_token))
        .map_err(|e| e.to_string())?;
    center
        .import_grid(&admin, &grid())
        .map_err(|e| e.to_string())?;
    let cells: Vec<String> = (1..=9).map(|i| format!("330109001001{i:03}")).collect();
    let users: Vec<String> = ["zhang", "li", "wang"]
        .iter()
        .map(|n| n.to_string())
        .collect();
    for name in &users {
        let req = sync_server::service::NewUserRequest {
            name: name.clone(),
            role: Role::Collector,
            company: None,
            cells: cells.clone(),
            from: Some(chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date")),
        };
        center.add_user(&admin, req).map_err(|e| e.to_string())?;
    }
    let owners = [0usize, 0, 1, 1, 2]; // zhang and li carry a spare handset
    let mut devices: Vec<RefCell<SimDevice>> = Vec::new();
    for (i, owner) in owners.iter().enumerate() {
        let skew = rng.i64(-2 * HOUR..=2 * HOUR);
        let clock = ManualClock::at((now.load(Ordering::SeqCst) + skew) as u64);
        let actor = uuid::Uuid::from_u128(((seed as u128) << 64) | (i as u128 + 1));
        let mut store = Store::init_with(
            &tmp.path().join(format!("d{i}.db")),
            "pending",
            actor,
            Box::new(clock.clone()),
        )
        .map_err(|e| e.to_string())?;
        let code = center
            .new_code(&admin, &users[*owner])
            .map_err(|e| e.to_string())?
            .enrolment_code;
        let resp = center
            .enroll(field_core::sync::protocol::EnrollRequest {
                code,
                actor,
                device_name: None,
            })
            .map_err(|e| e.to_string())?;
        store
            .set_sync_settings(&field_core::store::SyncSettings {
                server: "sim".into(),
                token: resp.token.clone(),
                user: resp.user,
            })
            .map_err(|e| e.to_string())?;
        devices.push(RefCell::new(SimDevice {
            store,
            clock,
            skew,
            transport: SimTransport {
                net: net.clone(),
                token: resp.token,
                partitioned: false,
            },
        }));
    }
    drop(center);
    let devices = Rc::new(devices);
    // A merge held open: now and then another device syncs meanwhile
    // (its push commits first, its pull runs before the held merge commits).
    {
        let (net, devices) = (net.clone(), devices.clone());
        let hold: Box<dyn FnMut()> = Box::new(move || {
            if !net.roll(20) {
                return;
            }
            let j = net.rng.borrow_mut().usize(0..devices.len());
            if let Ok(mut other) = devices[j].try_borrow_mut() {
                let other = &mut *other;
                if !other.transport.partitioned {
                    HELD_SYNCS.fetch_add(1, Ordering::SeqCst);
                    let _ = client::sync(&mut other.store, &mut other.transport, &mut |_| {});
                }
            }
        });
        WHILE_HELD.with(|w| *w.borrow_mut() = Some(hold));
    }

    let mut photo_seed = seed * 1000;
    let mut seq = 0u32;
    for _step in 0..40 {
        let t = now.fetch_add(rng.i64(1_000..120_000), Ordering::SeqCst);
        for d in devices.iter() {
            let d = d.borrow();
            d.clock.set((t + d.skew) as u64);
        }
        if rng.u32(0..100) < 4 {
            net.restart();
        }
        let i = rng.usize(0..devices.len());
        let mut held = devices[i].borrow_mut();
        let d = &mut *held;
        if rng.u32(0..100) < 10 {
            d.transport.partitioned = !d.transport.partitioned;
        }
        let device_now = Timestamp::from_millis("at", t + d.skew).map_err(|e| e.to_string())?;
        match rng.u32(0..100) {
            0..=24 => {
                photo_seed += 1;
                seq += 1;
                let pos = LonLat::new(120.2601 + rng.f64() * 0.0028, 30.1899 - rng.f64() * 0.0028)
                    .map_err(|e| e.to_string())?;
                let new = NewCase {
                    category: ["BJ0101", "SJ0201", "06010"][rng.usize(0..3)].into(),
                    pos,
                    description: format!("report {seq}"),
                    photos: vec![png(photo_seed)],
                    // The device's own (corrected) clock, as `field case report` does.
                    at: None,
                    quick_fix_after: None,
                    survey: None,
                };
                d.store
                    .report_case(new)
                    .map_err(|e| format!("report: {e}"))?;
            }
            25..=44 => {
                let me = d.store.collector().to_string();
                let own: Vec<_> = d
                    .store
                    .cases()
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .filter(|c| {
                        c.origin.as_ref().is_some_and(|o| o.collector == me)
                            && c.statuses() == [Status::Reported]
                    })
                    .collect();
                if !own.is_empty() {
                    let case = &own[rng.usize(0..own.len())];
                    seq += 1;
                    let mut req = CaseEditRequest {
                        description: Some(format!("edit {seq}")),
                        ..Default::default()
                    };
                    match rng.u32(0..3) {
                        0 => {
                            photo_seed += 1;
                            req.add_photos = vec![png(photo_seed)];
                        }
                        1 if case.photos.len() > 1 => {
                            req.remove_photos = vec![case.photos[0].hash.clone()]
                        }
                        _ => {}
                    }
                    d.store
                        .edit_case(case.id, req)
                        .map_err(|e| format!("edit: {e}"))?;
                }
            }
            45..=59 => {
                let points: Vec<TrackPoint> = (0..rng.usize(1..20))
                    .map(|k| {
                        TrackPoint::new(
                            Timestamp::from_millis("at", t + d.skew + k as i64 * 5000).unwrap(),
                            LonLat::new(120.261, 30.189).unwrap(),
                            Some(5.0),
                            None,
                        )
                        .unwrap()
                    })
                    .collect();
                d.store
                    .append_track_points(&points)
                    .map_err(|e| format!("track: {e}"))?;
            }
            60..=64 => {
                let kind = if rng.bool() {
                    ShiftKind::Start
                } else {
                    ShiftKind::End
                };
                d.store
                    .mark_shift(kind, Some(device_now), None)
                    .map_err(|e| format!("shift: {e}"))?;
            }
            _ => {
                let _ = client::sync(&mut d.store, &mut d.transport, &mut |_| {});
            }
        }
    }

    // Heal: no faults, no partitions; everyone syncs until nothing is pending.
    net.faults.set(false);
    WHILE_HELD.with(|w| *w.borrow_mut() = None);
    for d in devices.iter() {
        d.borrow_mut().transport.partitioned = false;
    }
    for round in 0..3 {
        for (i, d) in devices.iter().enumerate() {
            let d = &mut *d.borrow_mut();
            client::sync(&mut d.store, &mut d.transport, &mut |_| {})
                .map_err(|e| format!("round {round} device {i}: {e}"))?;
        }
    }

    let center = net.center();
    let server = center.storage().digest().map_err(|e| e.to_string())?;
    for (i, d) in devices.iter().enumerate() {
        let d = d.borrow();
        let refused = d.store.refused_changes().map_err(|e| e.to_string())?;
        if !refused.is_empty() {
            return Err(format!("device {i}: the server refused {refused:?}"));
        }
        let mine = d.store.digest_report().map_err(|e| e.to_string())?;
        if mine.cases != server.cases {
            let theirs = center.storage().cases().map_err(|e| e.to_string())?;
            let ours = d.store.cases().map_err(|e| e.to_string())?;
            let diff: Vec<String> = theirs
                .iter()
                .filter(|c| !ours.contains(c))
                .map(|c| {
                    format!(
                        "server {:?} / device {:?}",
                        c,
                        ours.iter().find(|o| o.id == c.id)
                    )
                })
                .chain(
                    ours.iter()
                        .filter(|o| !theirs.iter().any(|c| c.id == o.id))
                        .map(|o| format!("device only {o:?}")),
                )
                .collect();
            return Err(format!(
                "device {i} holds different cases from the server: {}",
                diff.join("\n")
            ));
        }
        let actor = d.store.actor();
        if mine.devices.get(&actor) != server.devices.get(&actor) {
            return Err(format!("device {i}'s track or shifts differ on the server"));
        }
        let status = d.store.sync_status().map_err(|e| e.to_string())?;
        if status.pending_changes
            + status.pending_photos
            + status.refused_changes
            + status.buffered_changes
            > 0
        {
            return Err(format!("device {i} left something pending: {status:?}"));
        }
    }
    let own_total: u64 = devices
        .iter()
        .map(|d| {
            let d = d.borrow();
            let id = d.store.actor();
            d.store
                .export_bundle(None)
                .map(|b| b.changes.iter().filter(|c| c.actor == id).count() as u64)
                .unwrap_or(0)
        })
        .sum();
    // The server's log holds exactly the devices' changes, each once.
    if server.changes != own_total {
        return Err(format!(
            "server holds {} changes, devices authored {own_total}",
            server.changes
        ));
    }
    for v in center.storage().cases().map_err(|e| e.to_string())? {
        for p in &v.photos {
            if !center
                .storage()
                .blob_exists(&p.hash)
                .map_err(|e| e.to_string())?
            {
                return Err(format!("photo {} of case {} never arrived", p.hash, v.id));
            }
        }
    }
    Ok(())
}

/// Runs `seeds` on the machine's cores; every failure, with how to rerun it.
fn run_seeds(seeds: Vec<u64>, run: impl Fn(u64) -> Result<(), String> + Sync) {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(seeds.len().max(1));
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let mine: Vec<u64> = seeds.iter().copied().skip(w).step_by(workers).collect();
                let run = &run;
                scope.spawn(move || {
                    mine.into_iter()
                        .filter_map(|seed| run(seed).err().map(|e| format!("seed {seed}: {e}  (rerun: SIM_SEED={seed} cargo test -p sync-server --test simulation)")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("simulation worker"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
}

/// SIM_SEED=K, or seeds 0..$count_var (default `default`).
fn seeds(count_var: &str, default: u64) -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var(count_var)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(default);
            (0..n).collect()
        }
    }
}

#[test]
fn sync_converges_under_faults_for_every_seed() {
    run_seeds(seeds("SIM_SEEDS", 1000), |seed| {
        run_seed(seed, &Backend::Sqlite)
    });
}

#[test]
fn two_postgres_instances_converge_under_faults_for_every_seed() {
    let Ok(admin) = std::env::var("FIELD_PG_URL") else {
        support::pg_database(); // skips, or fails where PostgreSQL is required
        return;
    };
    let seeds = seeds("SIM_PG_SEEDS", 200);
    let many = seeds.len() >= 20;
    run_seeds(seeds, |seed| {
        let name = format!("sim_{seed}_{}", uuid::Uuid::new_v4().simple());
        let url = sync_server::storage::postgres::create_database(&admin, &name)
            .map_err(|e| e.to_string())?;
        // A held-open merge must never make another request wait forever.
        let url = format!("{url}?options=-c%20lock_timeout%3D2000");
        let result = run_seed(seed, &Backend::Postgres(url));
        let _ = sync_server::storage::postgres::drop_database(&admin, &name);
        result
    });
    let held = HELD_SYNCS.load(Ordering::SeqCst);
    eprintln!("syncs run while a merge was held open: {held}");
    assert!(!many || held > 0, "no merge was ever held open");
}
