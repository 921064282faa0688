//! The library's one error type. Every variant says what failed and carries
//! the offending value, so the CLI and the server can show it unchanged.

/// Errors of `field-core`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value from outside (a flag, a file, a remote change) is not acceptable.
    /// `field` names the input (`lat`, `photo`, `features[3].properties.zone`).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },

    /// A thing looked up by id does not exist on this device.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },

    /// A change or bundle written by a newer version of the app.
    #[error(
        "schema {found} is newer than this device understands (up to {supported}); \
         update the field app before importing, nothing was imported"
    )]
    SchemaTooNew { found: u32, supported: u32 },

    /// The grid does not tile the city; every problem is listed by cell code.
    #[error("grid refused, {} problem(s): {}", .0.len(), .0.join("; "))]
    Tiling(Vec<String>),

    /// The device store has not been initialised (`field init`).
    #[error("no device store at {0}: run `field init --collector NAME` first")]
    NotInitialised(String),

    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A storage backend outside this crate failed (the server's database):
    /// like `Sqlite`, it ends the batch and nothing of it is committed.
    #[error("storage: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),

    /// Data read back from the store does not match what was written
    /// (a photo whose bytes no longer hash to its name, an unreadable state).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for [`Error::Invalid`].
pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Error {
    /// A failure of storage rather than of the input: it ends a batch
    /// (nothing is committed) instead of refusing one change.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            Error::Sqlite(_) | Error::Io { .. } | Error::Backend(_)
        )
    }

    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
