//! A generated city for the server benches: 2,500 cells of ~100 m (50 × 50),
//! collectors each patrolling their own 5 × 10-cell block on foot along the
//! streets, a point every few seconds in patrol hours, stored straight into
//! the server's storage as the changes their devices would push.

use anyhow::Result;
use field_core::crdt::{CHANGE_SCHEMA, Change, Hlc, Op, TrackBatch};
use field_core::model::{ActorId, Timestamp};
use sync_server::service::{Center, tokens};
use sync_server::storage::{Principal, Role, Storage};

use crate::simulate::{GridSpec, patrol_walk};

/// One generated collector: their user, device actor, block, and how far
/// their change counter and track sequence have gone.
pub struct Seeded {
    pub name: String,
    pub actor: ActorId,
    pub block: GridSpec,
    pub cells: Vec<String>,
    pub counter: u64,
    pub seq: u64,
}

pub struct City {
    pub collectors: Vec<Seeded>,
    pub points: usize,
}

pub fn grid() -> GridSpec {
    GridSpec {
        west: 120.20,
        north: 30.25,
        rows: 50,
        cols: 50,
        cell_m: 100.0,
    }
}

/// Imports the city grid and stores `collectors` collectors' patrols on
/// each of `dates` (local `YYYY-MM-DD`, 07:15–20:15 +08:00).
pub fn seed(
    center: &Center,
    admin: &Principal,
    storage: &dyn Storage,
    collectors: usize,
    dates: &[String],
    every_s: i64,
) -> Result<City> {
    let city = grid();
    center.import_grid(admin, &city.to_geojson())?;
    let mut out = City {
        collectors: Vec::new(),
        points: 0,
    };
    // Blocks of 5 × 10 cells, one collector each.
    for k in 0..collectors {
        let (br, bc) = ((k / 5) * 5, (k % 5) * 10);
        let cells: Vec<String> = (br..br + 5)
            .flat_map(|r| (bc..bc + 10).map(move |c| (r, c)))
            .filter(|(r, c)| *r < city.rows && *c < city.cols)
            .map(|(r, c)| city.code(r, c))
            .collect();
        let name = format!("collector-{k:02}");
        let user = storage.create_user(&name, Role::Collector, None, &cells)?;
        // Assigned from the first simulated day: the assessment charges
        // only assigned days.
        let first = chrono::NaiveDate::parse_from_str(&dates[0], "%Y-%m-%d")?;
        storage.set_assignment(&user.id, &cells, first)?;
        let code = tokens::new_enrolment_code();
        storage.add_enrolment(&tokens::hash_code(&code), &user.id, i64::MAX)?;
        let actor = uuid::Uuid::from_u128(0xa55e_0000 + k as u128);
        storage.redeem_enrolment(
            &tokens::hash_code(&code),
            actor,
            None,
            &tokens::hash(&tokens::new_token()),
            0,
        )?;
        let (west, north) = city.node(br, bc);
        let block = GridSpec {
            west,
            north,
            rows: 5,
            cols: 10,
            cell_m: city.cell_m,
        };
        let mut rng = fastrand::Rng::with_seed(k as u64);
        let (mut counter, mut seq) = (0u64, 0u64);
        for date in dates {
            let start = Timestamp::parse("start", &format!("{date}T07:15:00+08:00"))?;
            let end = Timestamp::parse("end", &format!("{date}T20:15:00+08:00"))?;
            let walk = patrol_walk(&block, start, end, every_s, &mut rng);
            out.points += walk.len();
            let changes: Vec<Change> = walk
                .chunks(2000)
                .map(|chunk| {
                    counter += 1;
                    let batch = TrackBatch::encode(seq, chunk);
                    seq += chunk.len() as u64;
                    Change {
                        schema: CHANGE_SCHEMA,
                        actor,
                        counter,
                        hlc: Hlc::new(chunk[0].at.millis() as u64, 0),
                        op: Op::TrackAppend(batch),
                    }
                })
                .collect();
            storage.apply(changes)?;
        }
        out.collectors.push(Seeded {
            name,
            actor,
            block,
            cells,
            counter,
            seq,
        });
    }
    Ok(out)
}
