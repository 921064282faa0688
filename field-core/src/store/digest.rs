//! The state digest: SHA-256 of a canonical rendering of the merged state
//! (cases, track points, shift marks), equal on every replica that holds the
//! same changes. Never a hash of stored bytes: CBOR of crdts types holds
//! HashMaps whose order differs between replicas.

use sha2::{Digest, Sha256};

use super::Store;
use crate::error::Result;

impl Store {
    pub fn digest(&self) -> Result<String> {
        let mut h = Sha256::new();
        h.update(b"cases\n");
        let mut cases = self.cases()?;
        cases.sort_by_key(|c| c.id);
        for c in &cases {
            h.update(serde_json::to_vec(c)?);
            h.update(b"\n");
        }
        h.update(b"track\n");
        let mut stmt = self.conn.prepare_cached(
            "SELECT actor, seq, t_ms, lon, lat, accuracy_m, speed_mps FROM track_points ORDER BY actor, seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let actor: Vec<u8> = r.get(0)?;
            let line = format!(
                "{},{},{},{},{},{:?},{:?}\n",
                hex::encode(actor),
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, Option<f64>>(5)?,
                r.get::<_, Option<f64>>(6)?,
            );
            h.update(line.as_bytes());
        }
        h.update(b"shifts\n");
        for (actor, mark) in self.shift_marks()? {
            h.update(actor.as_bytes());
            h.update(serde_json::to_vec(&mark)?);
            h.update(b"\n");
        }
        Ok(hex::encode(h.finalize()))
    }
}
