//! The sync protocol's messages (HTTP + JSON; `schemas/sync-*.schema.json`).
//! Shared by the device client and the server so the two cannot drift.
//!
//! One round trip does both directions: the device pushes what the server
//! has not acknowledged and pulls what it lacks since its cursor. Photos
//! travel separately, only those the server says it needs, in resumable
//! chunks.

use serde::{Deserialize, Serialize};

use crate::crdt::{Change, Op, TrackWire};
use crate::model::{ActorId, PhotoHash};

/// Version of these messages; the server refuses a newer one with 400.
/// 2: track batches travel packed (`crdt::track_codec`); a server answers
/// a device still at 1 in the columnar form it reads.
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest version a server still answers.
pub const OLDEST_PROTOCOL: u32 = 1;
/// The first version whose track batches travel packed.
pub const PACKED_TRACKS_FROM: u32 = 2;
/// Most changes one push may carry; larger outboxes go in several rounds.
pub const MAX_CHANGES_PER_PUSH: usize = 500;
/// Largest push body a device builds (the server takes up to 16 MiB).
pub const MAX_PUSH_BYTES: usize = 4 * 1024 * 1024;
/// Most changes one pull returns; `more` says whether to ask again.
pub const MAX_CHANGES_PER_PULL: usize = 2000;
/// Photo upload chunk size.
pub const PHOTO_CHUNK_BYTES: usize = 256 * 1024;

/// One round trip: push these, then send me what I lack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub protocol: u32,
    pub push: Vec<Change>,
    pub pull: PullRequest,
    /// The device's corrected wall clock when it sent this (ms since the
    /// epoch): the server compares it with its own and flags a wrong clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_time_ms: Option<i64>,
}

/// A pushed change refused for its time (a stamp too far ahead of the
/// server's clock): the device keeps it and re-issues it with a corrected
/// clock under a new actor.
pub const CODE_RETRY_CLOCK: u16 = 425;
/// A pushed (actor, counter) the server holds with other content: the
/// device was restored from a backup and must re-issue under a new actor.
pub const CODE_REUSED: u16 = 409;

/// `POST /v1/devices/successor`: the device (with its current token) names
/// the new actor it continues as; its earlier actors stay its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuccessorRequest {
    pub actor: ActorId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuccessorResponse {
    pub actor: ActorId,
    pub previous: ActorId,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The server cursor of the last pull applied on the device (0 at first).
    pub cursor: u64,
    /// Versions the device holds; the server sends a newer grid or catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surveys_version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    /// One result per pushed change, in the order pushed. Every result is
    /// final, except `reused` and a refusal with code 425: the device
    /// re-issues those changes under a new actor.
    pub push: Vec<PushResult>,
    pub pull: PullResponse,
    /// The server's clock when it answered (ms since the epoch).
    #[serde(default)]
    pub server_time_ms: i64,
    /// The server's restore epoch: it changes when the server is restored
    /// from a backup. A device that sees it change sends everything it
    /// holds of its own again and pulls from the start (the server may
    /// have lost what came after the backup, and reuses log positions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

/// The server's judgement of one pushed change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushResult {
    pub actor: ActorId,
    pub counter: u64,
    pub outcome: PushOutcome,
    /// HTTP-like code of a refusal: 403 forbidden, 400 invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushOutcome {
    /// Durably stored and merged.
    Accepted,
    /// Durably stored, waiting for a change it depends on.
    Held,
    /// The server already had it.
    Duplicate,
    /// Not stored; `reason` says why.
    Refused,
    /// Not stored: the server holds this (actor, counter) with other
    /// content (see [`CODE_REUSED`]).
    Reused,
}

impl PullResponse {
    /// Writes the page's track batches in the form a device speaking
    /// `protocol` reads.
    pub fn written_for(mut self, protocol: u32) -> PullResponse {
        let wire = if protocol >= PACKED_TRACKS_FROM {
            TrackWire::Packed
        } else {
            TrackWire::Columnar
        };
        for c in &mut self.changes {
            if let Op::TrackAppend(b) = &mut c.op {
                b.wire = wire;
            }
        }
        self
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullResponse {
    pub changes: Vec<Change>,
    /// Pass back as `pull.cursor` next time.
    pub cursor: u64,
    /// More changes wait beyond this page.
    pub more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridPayload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogPayload>,
    /// The special surveys in the device's cells, when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surveys: Option<SurveysPayload>,
    /// The cells this collector is assigned to, sent with the grid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assigned_cells: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridPayload {
    pub version: String,
    /// The grid as a GeoJSON FeatureCollection.
    pub geojson: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveysPayload {
    pub version: String,
    /// The city's time zone: survey dates are local days.
    pub timezone: String,
    pub surveys: Vec<crate::model::Survey>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogPayload {
    pub version: String,
    pub catalog: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotosNeededRequest {
    pub hashes: Vec<PhotoHash>,
    /// Photos this device holds but can no longer read (their bytes no
    /// longer match their hash): the center shows them as lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<PhotoHash>,
}

/// Which photos the server lacks, and how much of each it already has
/// from an interrupted upload (resume from `received`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotosNeededResponse {
    pub needed: Vec<PhotoNeed>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoNeed {
    pub hash: PhotoHash,
    pub received: u64,
}

/// The answer to one uploaded chunk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkAck {
    pub received: u64,
    pub complete: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub code: String,
    pub actor: ActorId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollResponse {
    /// The device token: shown once, stored only as a hash on the server.
    pub token: String,
    pub user: UserInfo,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default)]
    pub cells: Vec<String>,
}

/// Every refusal's body: which field, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{CHANGE_SCHEMA, Hlc, TrackBatch};
    use crate::model::{LonLat, Timestamp, TrackPoint};

    #[test]
    fn a_pull_is_written_in_the_form_the_device_reads() {
        let p = TrackPoint::new(
            Timestamp::from_millis("at", 1_764_000_000_000).unwrap(),
            LonLat::new(120.26, 30.18).unwrap(),
            Some(4.0),
            None,
        )
        .unwrap();
        let page = PullResponse {
            changes: vec![Change {
                schema: CHANGE_SCHEMA,
                actor: uuid::Uuid::from_u128(1),
                counter: 1,
                hlc: Hlc::new(1, 0),
                op: Op::TrackAppend(TrackBatch::encode(1, &[p, p])),
            }],
            ..Default::default()
        };
        let old = serde_json::to_string(&page.clone().written_for(1)).unwrap();
        assert!(
            old.contains("\"dt_ms\":[0,0]") && !old.contains("packed"),
            "{old}"
        );
        let new = serde_json::to_string(&page.clone().written_for(PROTOCOL_VERSION)).unwrap();
        assert!(
            new.contains("\"packed\"") && !new.contains("dt_ms"),
            "{new}"
        );
        let back: PullResponse = serde_json::from_str(&old).unwrap();
        assert_eq!(back, page);
    }
}
