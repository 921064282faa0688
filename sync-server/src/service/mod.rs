//! The server's logic, free of HTTP: who may do what, and doing it.
//! `Center` is what handlers and the simulator call.

mod accounts;
mod assignments;
pub mod authorize;
mod beat_grid;
mod center;
mod certification;
mod city_config;
mod city_figures;
mod dashboard;
mod enrolment;
pub use field_core::assess::explain;
mod findings;
mod flags;
mod map;
mod open311;
mod queue;
pub(crate) mod report;
mod review;
mod sessions;
mod staleness;
mod surveys;
mod sync;
pub mod tokens;
mod violations;

use std::sync::Arc;

use crate::config::{Limits, ReviewRules};
use crate::storage::{Principal, Storage, StorageError};

pub use accounts::{RevokeCodesRequest, RotatedToken};
pub use assignments::AssignRequest;
pub use center::{NewUserRequest, NewUserResponse, PhotoFile, UserRow};
pub use certification::{Attempt, Certification, NewAttempt, NewTraining, Training};
pub use city_config::{CityConfig, ConfigVersion};
pub use city_figures::{CityFigures, ResolutionRow};
pub use dashboard::{DASHBOARD_TTL_MS, Dashboard};
pub use enrolment::{ensure_admin, rotate_admin_file};
pub use field_core::assess::{DayRates, Rate, Report};
pub use findings::{MAX_FINDINGS_PER_IMPORT, NewFinding};
pub use flags::{Duplicate, Flag, ShiftRow};
pub use map::MapColour;
pub use open311::{Channel, CitizenRequest, NewChannel, NewRequest, OpenedChannel, RequestStatus};
pub use queue::{CaseRow, FLAG_KINDS, QueueFilter, QueuePage};
pub use report::ReportQuery;
pub use review::{Action, DecisionRequest, NewTaskRequest, TaskStatusRow};
pub use sessions::{OpenSession, SESSION_LIFETIME_MS};
pub use surveys::{NewSurveyRequest, SurveyReport};
pub use sync::SyncWire;
pub use violations::{NewViolation, RedLine, Violation};

/// Every way a request can fail, each with its HTTP meaning.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFound(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A caller past its allowance: try again after `retry_after_s`.
    #[error("{reason}")]
    RateLimited { reason: String, retry_after_s: u64 },
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ServiceError {
    ServiceError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl From<StorageError> for ServiceError {
    fn from(e: StorageError) -> ServiceError {
        match e {
            StorageError::Invalid { field, reason } => ServiceError::Invalid { field, reason },
            StorageError::NotFound(what) => ServiceError::NotFound(what),
            StorageError::Core(field_core::Error::Invalid { field, reason }) => {
                ServiceError::Invalid { field, reason }
            }
            StorageError::Core(e @ field_core::Error::Tiling(_)) => invalid("grid", e.to_string()),
            StorageError::Core(field_core::Error::NotFound { what, id }) => {
                ServiceError::NotFound(format!("{what} {id}"))
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// Milliseconds since the epoch; injected so the simulator owns time.
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> WallClock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

/// Upload lock stripes (photos whose hashes share a first byte share one).
const UPLOAD_STRIPES: usize = 64;

/// The server's logic over a storage backend.
#[derive(Clone)]
pub struct Center {
    storage: Arc<dyn Storage>,
    limits: Limits,
    rules: ReviewRules,
    clock: WallClock,
    /// Chunks of one photo are charged and stored one at a time (locks
    /// striped by hash), so concurrent uploads of a photo are charged once
    /// and different photos go up in parallel.
    uploads: Arc<[std::sync::Mutex<()>; UPLOAD_STRIPES]>,
    /// The restore epoch, read once (a restore happens with servers stopped).
    epoch: Arc<std::sync::OnceLock<String>>,
    /// The dashboard's figures, shared by every screen of this instance.
    dashboard: Arc<dashboard::DashboardCache>,
    /// The grid's cells' bounding boxes, for handsets' shares of it.
    grid_boxes: Arc<beat_grid::BoxCache>,
}

impl Center {
    pub fn new(storage: Arc<dyn Storage>, limits: Limits, clock: WallClock) -> Center {
        Center {
            storage,
            limits,
            rules: ReviewRules::default(),
            clock,
            uploads: Arc::new(std::array::from_fn(|_| std::sync::Mutex::new(()))),
            epoch: Arc::default(),
            dashboard: Arc::default(),
            grid_boxes: Arc::default(),
        }
    }

    /// The city's review rules (thresholds of the flags, time zone).
    pub fn with_rules(mut self, rules: ReviewRules) -> Center {
        self.rules = rules;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// The server's clock (ms since the epoch): injected, so tests and the
    /// simulator own time.
    pub fn now(&self) -> i64 {
        self.now_ms()
    }

    /// The restore epoch devices compare (see `SyncResponse::epoch`).
    pub fn restore_epoch(&self) -> Result<String> {
        if let Some(e) = self.epoch.get() {
            return Ok(e.clone());
        }
        let e = self.storage.restore_epoch()?;
        Ok(self.epoch.get_or_init(|| e).clone())
    }

    /// The principal behind a bearer token: 401 when missing, unknown or revoked.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Principal> {
        let token =
            bearer.ok_or_else(|| ServiceError::Unauthorized("missing bearer token".into()))?;
        self.storage
            .principal(&tokens::hash(token))?
            .ok_or_else(|| ServiceError::Unauthorized("unknown or revoked token".into()))
    }
}
