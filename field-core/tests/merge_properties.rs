//! Property tests of the merge, on real store files: random edits on 3 to 5
//! replicas, change sets exchanged in random order with duplicates; all
//! replicas end with the same digest, the history keeps every overwritten
//! value, and re-importing changes nothing.

use std::collections::BTreeSet;

use field_core::crdt::Change;
use field_core::model::{CaseId, LonLat, RejectReason, Status};
use field_core::store::{CaseEditRequest, NewCase, Store};
use field_core::sync::{Bundle, BundlePhoto};
use proptest::prelude::*;

fn png(seed: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 4, 4);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        let px: Vec<u8> = (0..16).map(|i| (seed as u8).wrapping_add(i)).collect();
        w.write_image_data(&px).unwrap();
    }
    out.extend_from_slice(&seed.to_le_bytes()); // distinct bytes for distinct seeds
    out
}

#[derive(Clone, Debug)]
enum Action {
    Report { r: usize, seed: u32 },
    EditDesc { r: usize, case: usize, text: u16 },
    AddPhoto { r: usize, case: usize, seed: u32 },
    RemovePhoto { r: usize, case: usize, photo: usize },
    Decide { r: usize, case: usize, to: u8 },
    Track { r: usize, n: u8 },
    Sync { from: usize, to: usize, skip: u8 },
}

fn action() -> impl Strategy<Value = Action> {
    let r = 0usize..5;
    prop_oneof![
        2 => (r.clone(), any::<u32>()).prop_map(|(r, seed)| Action::Report { r, seed }),
        3 => (r.clone(), 0usize..8, any::<u16>()).prop_map(|(r, case, text)| Action::EditDesc { r, case, text }),
        1 => (r.clone(), 0usize..8, any::<u32>()).prop_map(|(r, case, seed)| Action::AddPhoto { r, case, seed }),
        1 => (r.clone(), 0usize..8, 0usize..3).prop_map(|(r, case, photo)| Action::RemovePhoto { r, case, photo }),
        1 => (r.clone(), 0usize..8, 0u8..4).prop_map(|(r, case, to)| Action::Decide { r, case, to }),
        1 => (r.clone(), 1u8..30).prop_map(|(r, n)| Action::Track { r, n }),
        2 => (r.clone(), r, any::<u8>()).prop_map(|(from, to, skip)| Action::Sync { from, to, skip }),
    ]
}

struct World {
    _dir: tempfile::TempDir,
    stores: Vec<Store>,
    written: Vec<(CaseId, String)>,
    clock_ms: i64,
}

impl World {
    fn new(n: usize) -> World {
        let dir = tempfile::tempdir().unwrap();
        // One collector with several handsets: everyone may edit every case.
        let stores = (0..n)
            .map(|i| Store::init(&dir.path().join(format!("r{i}.db")), "zhao").unwrap())
            .collect();
        World {
            _dir: dir,
            stores,
            written: Vec::new(),
            clock_ms: 1_764_000_000_000,
        }
    }

    fn case_at(&self, r: usize, i: usize) -> Option<CaseId> {
        let cases = self.stores[r].cases().unwrap();
        let known: Vec<_> = cases.into_iter().filter(|c| c.origin.is_some()).collect();
        (!known.is_empty()).then(|| known[i % known.len()].id)
    }

    fn bundle_of(&self, r: usize) -> Bundle {
        self.stores[r].export_bundle(None).unwrap()
    }

    fn run(&mut self, a: Action) {
        let n = self.stores.len();
        match a {
            Action::Report { r, seed } => {
                let r = r % n;
                self.clock_ms += 1000;
                let new = NewCase {
                    category: ["BJ0101", "SJ0201", "06010"][seed as usize % 3].into(),
                    pos: LonLat::new(120.26 + (seed % 1000) as f64 * 1e-6, 30.18).unwrap(),
                    description: format!("report {seed}"),
                    photos: vec![png(seed)],
                    at: Some(
                        field_core::model::Timestamp::from_millis("at", self.clock_ms).unwrap(),
                    ),
                    quick_fix_after: None,
                    survey: None,
                };
                self.stores[r].report_case(new).unwrap();
            }
            Action::EditDesc { r, case, text } => {
                let r = r % n;
                if let Some(id) = self.case_at(r, case) {
                    let text = format!("edit {text} on r{r}");
                    let req = CaseEditRequest {
                        description: Some(text.clone()),
                        ..Default::default()
                    };
                    if self.stores[r].edit_case(id, req).is_ok() {
                        self.written.push((id, text));
                    }
                }
            }
            Action::AddPhoto { r, case, seed } => {
                let r = r % n;
                if let Some(id) = self.case_at(r, case) {
                    let req = CaseEditRequest {
                        add_photos: vec![png(seed)],
                        ..Default::default()
                    };
                    let _ = self.stores[r].edit_case(id, req); // refused once decided: fine
                }
            }
            Action::RemovePhoto { r, case, photo } => {
                let r = r % n;
                if let Some(id) = self.case_at(r, case) {
                    let photos = self.stores[r].case(id).unwrap().photos;
                    if let Some(p) = photos.get(photo % photos.len().max(1)) {
                        let req = CaseEditRequest {
                            remove_photos: vec![p.hash.clone()],
                            ..Default::default()
                        };
                        let _ = self.stores[r].edit_case(id, req);
                    }
                }
            }
            Action::Decide { r, case, to } => {
                let r = r % n;
                if let Some(id) = self.case_at(r, case) {
                    let (to, reason) = match to {
                        0 => (Status::Registered, None),
                        1 => (Status::Rejected, Some(RejectReason::Duplicate)),
                        2 => (Status::Dispatched, None),
                        _ => (Status::Handled, None),
                    };
                    let _ = self.stores[r].set_status(id, to, reason, None); // lifecycle may refuse
                }
            }
            Action::Track { r, n: k } => {
                let r = r % n;
                let pts: Vec<_> = (0..k)
                    .map(|i| {
                        self.clock_ms += 5000;
                        field_core::model::TrackPoint::new(
                            field_core::model::Timestamp::from_millis("at", self.clock_ms).unwrap(),
                            LonLat::new(120.26 + i as f64 * 1e-5, 30.18).unwrap(),
                            Some(5.0),
                            None,
                        )
                        .unwrap()
                    })
                    .collect();
                self.stores[r].append_track_points(&pts).unwrap();
            }
            Action::Sync { from, to, skip } => {
                let (from, to) = (from % n, to % n);
                if from == to {
                    return;
                }
                // A partial, reordered bundle: drop some changes, keep photos.
                let mut b = self.bundle_of(from);
                let k = skip as usize % 4;
                b.changes = b
                    .changes
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| k == 0 || i % (k + 1) != 0)
                    .map(|(_, c)| c)
                    .collect();
                b.changes.reverse();
                self.stores[to].import_bundle(&b).unwrap();
            }
        }
    }
}

fn shuffled_pool(world: &World, rng_seed: u64) -> (Vec<Change>, Vec<BundlePhoto>) {
    let mut changes = Vec::new();
    let mut photos = Vec::new();
    for r in 0..world.stores.len() {
        let b = world.bundle_of(r);
        changes.extend(b.changes);
        photos.extend(b.photos);
    }
    let mut rng = fastrand::Rng::with_seed(rng_seed);
    let dups: Vec<Change> = changes.iter().filter(|_| rng.bool()).cloned().collect();
    changes.extend(dups);
    rng.shuffle(&mut changes);
    (changes, photos)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_and_keep_history(
        replicas in 3usize..=5,
        actions in prop::collection::vec(action(), 1..40),
        seed in any::<u64>(),
    ) {
        let mut world = World::new(replicas);
        for a in actions {
            world.run(a);
        }
        let (pool, photos) = shuffled_pool(&world, seed);
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
        for r in 0..replicas {
            // Import in random chunks: later changes often arrive first.
            let mut order = pool.clone();
            rng.shuffle(&mut order);
            for chunk in order.chunks(rng.usize(1..8)) {
                let b = Bundle::new(uuid::Uuid::nil(), 0, chunk.to_vec(), photos.clone());
                world.stores[r].import_bundle(&b).unwrap();
            }
            prop_assert_eq!(world.stores[r].buffered_count().unwrap(), 0);
        }
        let digests: BTreeSet<String> = world.stores.iter().map(|s| s.digest().unwrap()).collect();
        prop_assert_eq!(digests.len(), 1, "replicas diverged");

        // Every description ever written is still in its case's history.
        for (id, text) in &world.written {
            let history = world.stores[0].case_history(*id).unwrap();
            let found = history.iter().any(|h| h.op["fields"]["description"].as_str() == Some(text.as_str()));
            prop_assert!(found, "lost {text:?} from the history of {id}");
        }

        // Re-importing everything applies nothing and changes nothing.
        let before = world.stores[1].digest().unwrap();
        let again = world.stores[1].import_bundle(&Bundle::new(uuid::Uuid::nil(), 0, pool, photos)).unwrap();
        prop_assert_eq!(again.changes.applied, 0);
        prop_assert_eq!(world.stores[1].digest().unwrap(), before);
    }
}

/// A hostile report: another actor's change reusing an existing case's id,
/// with its own author, text and a stamp earlier or later than the original.
fn hostile(original: &Change, thief: uuid::Uuid, counter: u64, hlc_shift: i64) -> Change {
    let mut c = original.clone();
    c.actor = thief;
    c.counter = counter;
    let physical = (c.hlc.physical_ms() as i64 + hlc_shift).max(1) as u64;
    c.hlc = field_core::crdt::Hlc::new(physical, 0);
    if let field_core::crdt::Op::CaseReport(r) = &mut c.op {
        r.origin.reporter = thief;
        r.origin.collector = "thief".into();
        r.fields.description = Some("stolen".into());
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Knowing a case's id never lets anyone take it over: on every replica
    /// that holds the case, in any delivery order, a second report of it is
    /// refused and the case stays exactly the owner's.
    #[test]
    fn no_report_takes_over_a_case_on_any_replica(
        reports in 1usize..4,
        edits in prop::collection::vec((0usize..4, any::<u16>()), 0..6),
        shifts in prop::collection::vec(-100_000i64..100_000, 1..4),
        seed in any::<u64>(),
    ) {
        let mut world = World::new(1);
        for i in 0..reports {
            world.run(Action::Report { r: 0, seed: 1000 + i as u32 });
        }
        for (case, text) in edits {
            world.run(Action::EditDesc { r: 0, case, text });
        }
        let owner = world.bundle_of(0);
        let originals: Vec<&Change> = owner
            .changes
            .iter()
            .filter(|c| matches!(c.op, field_core::crdt::Op::CaseReport(_)))
            .collect();
        let thief = uuid::Uuid::from_u128(0xbad);
        let forged: Vec<Change> = shifts
            .iter()
            .enumerate()
            .map(|(i, s)| hostile(originals[i % originals.len()], thief, i as u64 + 1, *s))
            .collect();

        // Delivery: the owner's changes shuffled, each forgery somewhere
        // after the report it copies.
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut order = owner.changes.clone();
        rng.shuffle(&mut order);
        for f in &forged {
            let at = order.iter().position(|c| c.case_id() == f.case_id() && matches!(c.op, field_core::crdt::Op::CaseReport(_))).unwrap();
            let pos = rng.usize(at + 1..=order.len());
            order.insert(pos, f.clone());
        }
        let dir = tempfile::tempdir().unwrap();
        let mut observer = Store::init(&dir.path().join("o.db"), "observer").unwrap();
        let mut refused = 0;
        for chunk in order.chunks(rng.usize(1..5)) {
            let b = Bundle::new(uuid::Uuid::nil(), 0, chunk.to_vec(), owner.photos.clone());
            refused += observer.import_bundle(&b).unwrap().changes.refused.len();
        }
        prop_assert_eq!(refused, forged.len());
        prop_assert_eq!(observer.buffered_count().unwrap(), 0);
        prop_assert_eq!(
            observer.digest_report().unwrap().cases,
            world.stores[0].digest_report().unwrap().cases,
            "a forged report changed a case"
        );
        // And the owner's own replica refuses them too.
        let s = world.stores[0].apply_changes(forged.clone()).unwrap();
        prop_assert_eq!(s.refused.len(), forged.len());
    }
}
