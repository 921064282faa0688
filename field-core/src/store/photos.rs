//! Content-addressed photo blobs: written once per hash, verified on read.

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use crate::error::{Error, Result};
use crate::model::{PhotoHash, PhotoInfo};

/// Stores a checked photo unless its hash is already held.
pub(super) fn put(tx: &Connection, info: &PhotoInfo, bytes: &[u8], now_ms: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO photos (hash, mime, width, height, size, data, stored_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        info.hash.as_str(),
        info.mime,
        info.width,
        info.height,
        info.bytes as i64,
        bytes,
        now_ms
    ])?;
    Ok(())
}

impl Store {
    /// A photo's bytes, after checking they still hash to its name.
    pub fn photo(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        let (bytes, pruned): (Vec<u8>, bool) = self
            .conn
            .prepare_cached("SELECT data, pruned FROM photos WHERE hash = ?1")?
            .query_row([hash.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "photo",
                id: hash.to_string(),
            })?;
        if pruned {
            return Err(Error::NotFound {
                what: "photo (its bytes were pruned from this handset after the center confirmed them; the center holds it)",
                id: hash.to_string(),
            });
        }
        if PhotoHash::of(&bytes) != *hash {
            return Err(Error::Corrupt(format!(
                "photo {hash} no longer matches its hash"
            )));
        }
        Ok(bytes)
    }

    pub fn has_photo(&self, hash: &PhotoHash) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM photos WHERE hash = ?1")?
            .query_row([hash.as_str()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// How many distinct photos the device holds.
    pub fn photo_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM photos", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}
