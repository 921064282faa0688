//! State digests: SHA-256 of a canonical rendering of the merged state,
//! equal on every replica that holds the same changes. Never a hash of
//! stored bytes: CBOR of crdts types holds HashMaps whose order differs
//! between replicas.
//!
//! A device pulls only its cells' cases and never other devices' tracks, so
//! besides the whole-state digest there are digests of the cases (in given
//! cells) and of each device's track and shift marks, which a device and the
//! server can compare.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Store;
use crate::error::Result;
use crate::model::ActorId;

/// The digests `field digest` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DigestReport {
    /// Everything this replica holds.
    pub digest: String,
    /// The cases alone.
    pub cases: String,
    /// Per device: its track points and shift marks.
    pub devices: BTreeMap<ActorId, String>,
    pub changes: u64,
}

impl Store {
    /// The whole-state digest.
    pub fn digest(&self) -> Result<String> {
        Ok(whole_digest(
            &self.cases_digest(None)?,
            &self.device_digests()?,
        ))
    }

    pub fn digest_report(&self) -> Result<DigestReport> {
        Ok(DigestReport {
            digest: self.digest()?,
            cases: self.cases_digest(None)?,
            devices: self.device_digests()?,
            changes: self.change_count()?,
        })
    }

    /// Digest of the cases, or of those in `cells` only.
    pub fn cases_digest(&self, cells: Option<&[String]>) -> Result<String> {
        cases_digest_of(self.cases()?, cells)
    }

    /// Per device: digest of its track points and shift marks.
    pub fn device_digests(&self) -> Result<BTreeMap<ActorId, String>> {
        let mut hashers: BTreeMap<ActorId, Sha256> = BTreeMap::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT actor, seq, t_ms, lon, lat, accuracy_m, speed_mps FROM track_points ORDER BY actor, seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let actor = super::tracks::actor_from(&r.get::<_, Vec<u8>>(0)?)?;
            let line = point_line(
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, Option<f64>>(5)?,
                r.get::<_, Option<f64>>(6)?,
            );
            hashers.entry(actor).or_default().update(line.as_bytes());
        }
        for (actor, mark) in self.shift_marks()? {
            add_shift(hashers.entry(actor).or_default(), &mark)?;
        }
        Ok(hashers
            .into_iter()
            .map(|(a, h)| (a, hex::encode(h.finalize())))
            .collect())
    }
}

/// The whole-state digest from the cases' and the devices' digests.
pub fn whole_digest(cases: &str, devices: &BTreeMap<ActorId, String>) -> String {
    let mut h = Sha256::new();
    h.update(b"cases\n");
    h.update(cases.as_bytes());
    h.update(b"\ndevices\n");
    for (actor, d) in devices {
        h.update(format!("{actor} {d}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

/// Digest of `cases` (in any order), or of those in `cells` only.
pub fn cases_digest_of(
    mut cases: Vec<crate::crdt::CaseView>,
    cells: Option<&[String]>,
) -> Result<String> {
    let mut h = Sha256::new();
    cases.sort_by_key(|c| c.id);
    for c in &cases {
        let cell = c
            .placement
            .as_ref()
            .and_then(|p| p.cell.as_ref())
            .map(|c| c.to_string());
        if let Some(cells) = cells
            && !cell.is_some_and(|x| cells.contains(&x))
        {
            continue;
        }
        h.update(serde_json::to_vec(c)?);
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

/// One track point's line in its device's digest.
pub fn point_line(
    seq: i64,
    t_ms: i64,
    lon: f64,
    lat: f64,
    accuracy_m: Option<f64>,
    speed_mps: Option<f64>,
) -> String {
    format!("{seq},{t_ms},{lon},{lat},{accuracy_m:?},{speed_mps:?}\n")
}

/// A shift mark's part of its device's digest.
pub fn add_shift(h: &mut Sha256, mark: &crate::model::ShiftMark) -> Result<()> {
    h.update(b"shift ");
    h.update(serde_json::to_vec(mark)?);
    h.update(b"\n");
    Ok(())
}
