//! The change bundle: a JSON file of changes plus the photos they cite.
//! Schema-versioned: a device refuses a bundle (or any change in it) written
//! by a newer schema before it tries to read a single op.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::crdt::{CHANGE_SCHEMA, Change};
use crate::error::{Error, Result, invalid};
use crate::model::{ActorId, PhotoHash, Timestamp};

pub const BUNDLE_FORMAT: &str = "field-change-bundle";

/// A photo's bytes inside a bundle (base64).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundlePhoto {
    pub sha256: PhotoHash,
    pub data: String,
}

impl BundlePhoto {
    pub fn new(sha256: PhotoHash, bytes: &[u8]) -> BundlePhoto {
        BundlePhoto {
            sha256,
            data: BASE64.encode(bytes),
        }
    }

    /// Decodes the bytes and checks they hash to the stated name.
    pub fn bytes(&self, field: &str) -> Result<Vec<u8>> {
        let bytes = BASE64
            .decode(&self.data)
            .map_err(|e| invalid(field, format!("photo data is not base64: {e}")))?;
        if PhotoHash::of(&bytes) != self.sha256 {
            return Err(invalid(
                field,
                format!("bytes do not hash to {}", self.sha256),
            ));
        }
        Ok(bytes)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub schema: u32,
    /// The device that wrote the bundle (not necessarily the changes' author).
    pub origin: ActorId,
    pub created_at: Timestamp,
    /// Pass to `--since` next time to export only what came after this bundle.
    pub cursor: u64,
    pub changes: Vec<Change>,
    pub photos: Vec<BundlePhoto>,
}

impl Bundle {
    pub fn new(
        origin: ActorId,
        cursor: u64,
        changes: Vec<Change>,
        photos: Vec<BundlePhoto>,
    ) -> Bundle {
        Bundle {
            format: BUNDLE_FORMAT.into(),
            schema: CHANGE_SCHEMA,
            origin,
            created_at: Timestamp::now(),
            cursor,
            changes,
            photos,
        }
    }

    /// Parses a bundle. Schemas are checked first, for the bundle and for
    /// each change, so a newer file is refused with a clear message.
    pub fn from_json(text: &str) -> Result<Bundle> {
        #[derive(Deserialize)]
        struct ChangeProbe {
            schema: u32,
        }
        #[derive(Deserialize)]
        struct Probe {
            format: String,
            schema: u32,
            #[serde(default)]
            changes: Vec<ChangeProbe>,
        }
        let probe: Probe = serde_json::from_str(text)
            .map_err(|e| invalid("bundle", format!("not a change bundle: {e}")))?;
        if probe.format != BUNDLE_FORMAT {
            return Err(invalid(
                "bundle.format",
                format!("`{}` is not {BUNDLE_FORMAT}", probe.format),
            ));
        }
        Change::check_schema(probe.schema)?;
        for c in &probe.changes {
            Change::check_schema(c.schema)?;
        }
        serde_json::from_str(text).map_err(|e| invalid("bundle", e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("bundles are plain data")
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        invalid("json", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_bundle_schema_is_refused_with_a_clear_message() {
        let text = format!(
            r#"{{"format":"{BUNDLE_FORMAT}","schema":{},"origin":"00000000-0000-0000-0000-000000000001","created_at":"2026-11-26T00:00:00Z","cursor":0,"changes":[],"photos":[],"future":true}}"#,
            CHANGE_SCHEMA + 1
        );
        let e = Bundle::from_json(&text).unwrap_err();
        assert!(matches!(e, Error::SchemaTooNew { .. }), "{e}");
        assert!(e.to_string().contains("update the field app"));
    }

    #[test]
    fn photo_bytes_must_match_their_hash() {
        let mut p = BundlePhoto::new(PhotoHash::of(b"abc"), b"abc");
        assert_eq!(p.bytes("photos[0]").unwrap(), b"abc");
        p.data = BASE64.encode(b"abd");
        assert!(
            p.bytes("photos[0]")
                .unwrap_err()
                .to_string()
                .contains("do not hash")
        );
    }
}
