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
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_changes_per_push: field_core::sync::protocol::MAX_CHANGES_PER_PUSH,
            max_chunk_bytes: 1024 * 1024,
        }
    }
}

/// The TOML file's shape.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub limits: Limits,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }
}
