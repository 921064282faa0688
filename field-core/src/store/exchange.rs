//! Export and import of change bundles: device-to-device merge by file.

use serde::Serialize;

use super::{ApplySummary, Store};
use crate::crdt::Change;
use crate::crdt::change::photos_of;
use crate::error::Result;
use crate::model::photo::inspect_photo;
use crate::sync::{Bundle, BundlePhoto};

/// What importing a bundle did.
#[derive(Clone, Debug, Serialize)]
pub struct ImportSummary {
    #[serde(flatten)]
    pub changes: ApplySummary,
    pub photos_received: usize,
}

impl Store {
    /// The changes this device applied after log position `since` (all when
    /// `None`), with the photos they cite that the device holds.
    pub fn export_bundle(&self, since: Option<u64>) -> Result<Bundle> {
        let since = since.unwrap_or(0) as i64;
        let mut stmt = self.conn.prepare_cached(
            "SELECT log_seq, body FROM changes WHERE log_seq > ?1 ORDER BY log_seq",
        )?;
        let rows = stmt.query_map([since], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut cursor = since;
        let mut changes = Vec::new();
        for row in rows {
            let (seq, body) = row?;
            cursor = seq;
            changes.push(Change::from_json(&body)?);
        }
        let mut hashes: Vec<_> = changes
            .iter()
            .flat_map(|c| photos_of(&c.op))
            .cloned()
            .collect();
        hashes.sort();
        hashes.dedup();
        let mut photos = Vec::new();
        for h in hashes {
            if self.has_photo(&h)? {
                let bytes = self.photo(&h)?;
                photos.push(BundlePhoto::new(h, &bytes));
            }
        }
        Ok(Bundle::new(self.actor, cursor as u64, changes, photos))
    }

    /// Imports a bundle atomically: photos are checked (hash and image) and
    /// stored, then the changes applied; on any error nothing is written.
    pub fn import_bundle(&mut self, bundle: &Bundle) -> Result<ImportSummary> {
        let mut checked = Vec::with_capacity(bundle.photos.len());
        for (i, p) in bundle.photos.iter().enumerate() {
            let field = format!("photos[{i}]");
            let bytes = p.bytes(&field)?;
            checked.push((inspect_photo(&field, &bytes)?, bytes));
        }
        let now = self.now_ms() as i64;
        let changes = self.apply_remote(bundle.changes.clone(), |tx| {
            for (info, bytes) in &checked {
                super::photos::put(tx, info, bytes, now)?;
            }
            Ok(())
        })?;
        Ok(ImportSummary {
            changes,
            photos_received: checked.len(),
        })
    }
}
