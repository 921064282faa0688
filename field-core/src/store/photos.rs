//! Content-addressed photo blobs: written once per hash, verified on read.

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use crate::error::{Error, Result};
use crate::model::{PhotoHash, PhotoInfo};

/// Stores a checked photo unless its hash is already held.
pub(super) fn put(tx: &Connection, info: &PhotoInfo, bytes: &[u8]) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO photos (hash, mime, width, height, size, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        info.hash.as_str(),
        info.mime,
        info.width,
        info.height,
        info.bytes as i64,
        bytes
    ])?;
    Ok(())
}

impl Store {
    /// A photo's bytes, after checking they still hash to its name.
    pub fn photo(&self, hash: &PhotoHash) -> Result<Vec<u8>> {
        let bytes: Vec<u8> = self
            .conn
            .prepare_cached("SELECT data FROM photos WHERE hash = ?1")?
            .query_row([hash.as_str()], |r| r.get(0))
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "photo",
                id: hash.to_string(),
            })?;
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
