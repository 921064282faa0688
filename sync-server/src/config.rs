//! Server configuration: flags, then environment (SYNC_SERVER_*), then an
//! optional TOML file, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Limits the server enforces on every request.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body of any JSON endpoint, in bytes.
    pub max_body_bytes: usize,
    /// Most changes one push may carry.
    pub max_changes_per_push: usize,
    /// Largest photo chunk, in bytes.
    pub max_chunk_bytes: usize,
    /// A client must send a request's headers within this (also the
    /// longest an idle keep-alive connection stays open), in seconds.
    pub header_timeout_s: u64,
    /// A request body must arrive within this, in seconds.
    pub body_timeout_s: u64,
    /// A handler must answer within this, in seconds (then 408/503).
    pub request_timeout_s: u64,
    /// Open connections at once; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// Photo bytes one device may upload per day (UTC).
    pub max_photo_bytes_per_device_day: u64,
    /// Device requests (syncs, photo uploads) served at once; more wait.
    pub max_concurrent_syncs: usize,
    /// Device requests that may wait for a turn; past this a request is
    /// turned away at once with 503 and `Retry-After`.
    pub max_waiting_syncs: usize,
    /// The longest a device request waits for its turn before 503, in seconds.
    pub admission_wait_s: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_changes_per_push: field_core::sync::protocol::MAX_CHANGES_PER_PUSH,
            max_chunk_bytes: 1024 * 1024,
            header_timeout_s: 10,
            body_timeout_s: 60,
            request_timeout_s: 120,
            max_connections: 1024,
            max_photo_bytes_per_device_day: 2 * 1024 * 1024 * 1024,
            max_concurrent_syncs: 8,
            max_waiting_syncs: 256,
            admission_wait_s: 30,
        }
    }
}

/// What the review queue flags, and the city's time zone (EXIF times carry
/// no zone; patrol hours are local).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewRules {
    /// IANA name, e.g. `Asia/Shanghai`.
    pub timezone: String,
    /// A new case this close to an open case of the same subclass is a likely duplicate.
    pub duplicate_radius_m: f64,
    /// A case further than this from the reporter's track at report time is flagged.
    pub track_distance_m: f64,
    /// Track points this close in time to the report locate the reporter.
    pub track_window_s: i64,
    /// A photo whose EXIF time is further than this from the report time is flagged.
    pub exif_minutes: i64,
    /// A report from a device whose clock was further than this from the
    /// server's when it arrived is flagged (`device_clock`).
    pub clock_skew_minutes: i64,
    /// A report claiming a time further than this before its device wrote
    /// it is flagged (`backdated`).
    pub backdate_minutes: i64,
}

impl Default for ReviewRules {
    fn default() -> ReviewRules {
        ReviewRules {
            timezone: "Asia/Shanghai".into(),
            duplicate_radius_m: 30.0,
            track_distance_m: 200.0,
            track_window_s: 300,
            exif_minutes: 30,
            clock_skew_minutes: 30,
            backdate_minutes: 60,
        }
    }
}

/// The TOML file's shape.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    /// `sqlite` (the default: files in `data`) or `postgres://…`.
    pub database: Option<String>,
    /// Where photos live: a directory (default DATA/blobs) or
    /// `s3://BUCKET[/PREFIX]?endpoint=URL&region=R`.
    pub blobs: Option<String>,
    pub limits: Limits,
    pub review: ReviewRules,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }
}
