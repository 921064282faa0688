//! The server's storage, by concern: [`Identity`] (users, devices, tokens,
//! codes, sessions), [`Replica`] (changes, merged states and their
//! projections, the pull log, tracks), [`BlobStore`] (photos) and
//! [`Records`] (the assessment's records, rollups, leases); [`Storage`] is
//! all four. Handlers and the merge never see SQL or file paths;
//! [`sqlite::SqliteStorage`] is the embedded default, its photos in a
//! directory or an S3 bucket ([`blobs`]).

pub mod backup;
pub mod blobs;
pub mod postgres;
pub mod sqlite;

use field_core::crdt::{CaseView, Change, ChangeId};
use field_core::model::{ActorId, CaseId, Catalog, Cell, LonLat, PhotoHash};
use field_core::model::{ExternalFinding, ShiftMark, Survey, TaskSpec, TrackGap, TrackPoint};
use field_core::store::{
    CasePage, CaseQuery, Decision, DigestReport, HistoryEntry, Judgement, PullPage, TaskRow,
};
use field_core::sync::protocol::ChunkAck;
use serde::{Deserialize, Serialize};

/// The clock facts of a report, measured by the server when it arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportClock {
    pub case: CaseId,
    /// Server time minus the device's corrected clock at the push (ms):
    /// large when the device's clock is wrong.
    pub skew_ms: i64,
    /// The report change's own clock stamp minus its `reported_at` (ms):
    /// large when the report claims a time well before it was written.
    pub backdate_ms: i64,
}

/// Held while a server uses a data directory; dropped (and so released)
/// when the process ends, however it ends.
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Creates `dir` (0700) and takes its exclusive lock, or says who holds it.
/// Secrets live there, so the directory and its databases are owner-only.
pub fn lock_data_dir(dir: &std::path::Path) -> std::io::Result<DataDirLock> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join("server.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => {
            use std::io::{Seek, Write};
            file.set_len(0)?;
            file.seek(std::io::SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())?;
            Ok(DataDirLock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "{} is in use by another sync-server (pid {}); one data directory serves one server",
                    dir.display(),
                    holder.trim()
                ),
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Core(#[from] field_core::Error),
    #[error("storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The database cannot be reached or used (its pool, its runtime).
    #[error("{0}")]
    Backend(String),
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    NotFound(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The wall clock (ms since the epoch), for bookkeeping no domain rule
/// reads (session expiry sweeps).
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A storage input refused: the field and the reason.
pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> StorageError {
    StorageError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A new user, its fields checked (name, company, cells bounded): what
/// every backend stores on `create_user`.
pub(crate) fn new_user(
    name: &str,
    role: Role,
    company: Option<&str>,
    cells: &[String],
) -> Result<User> {
    use field_core::model::limits::{MAX_NAME_BYTES, bounded, bounded_len, bounded_opt};
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "is empty"));
    }
    bounded("name", name, MAX_NAME_BYTES)?;
    bounded_opt("company", company, MAX_NAME_BYTES)?;
    bounded_len("cells", cells.len(), 100_000)?;
    Ok(User {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_string(),
        role,
        company: company.map(str::to_string),
        cells: cells.to_vec(),
        disabled: false,
    })
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Collector,
    Reviewer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Collector => "collector",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "collector" => Some(Role::Collector),
            "reviewer" => Some(Role::Reviewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Center staff: may decide on cases and manage collectors.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Reviewer | Role::Admin)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub company: Option<String>,
    pub cells: Vec<String>,
    /// A disabled user's tokens, sessions and codes no longer work.
    #[serde(default)]
    pub disabled: bool,
}

/// One line of the audit log: who did what to whom, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: field_core::model::Timestamp,
    /// The acting user's name.
    pub by: String,
    pub action: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub actor: ActorId,
    pub user_id: String,
    pub name: Option<String>,
    pub revoked: bool,
}

/// A signed-in console session, as every instance reads it: the id and the
/// bearer token it was opened with are kept only as hashes.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub token_hash: String,
    /// The session's CSRF token (it is rendered into every form).
    pub csrf: String,
    pub expires_ms: i64,
}

/// Who is calling: a user, through one of their devices (the admin token
/// written at first start has no device).
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub user: User,
    pub device: Option<ActorId>,
    /// The hash of the token presented (to rotate it).
    pub token_hash: String,
}

impl Principal {
    /// Who, for logs: the user's name, and the device when there is one.
    pub fn label(&self) -> String {
        match &self.device {
            Some(d) => format!("{}@{}", self.user.name, d),
            None => self.user.name.clone(),
        }
    }
}

/// Everything the server keeps.
/// Who is who: users, their devices and tokens, enrolment codes, console
/// sessions, the audit log, per-device counters. Tokens and codes arrive
/// already hashed.
pub trait Identity: Send + Sync {
    // Users, devices, tokens. Tokens and codes arrive here already hashed.
    fn create_user(
        &self,
        name: &str,
        role: Role,
        company: Option<&str>,
        cells: &[String],
    ) -> Result<User>;
    fn users(&self) -> Result<Vec<User>>;
    fn devices_of(&self, user_id: &str) -> Result<Vec<Device>>;
    fn add_enrolment(&self, code_hash: &str, user_id: &str, expires_ms: i64) -> Result<()>;
    /// Consumes an enrolment code (once) and registers the device and its token.
    fn redeem_enrolment(
        &self,
        code_hash: &str,
        actor: ActorId,
        device_name: Option<&str>,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<User>;
    fn add_user_token(&self, token_hash: &str, user_id: &str) -> Result<()>;
    /// The principal a token stands for; `None` when unknown or revoked.
    fn principal(&self, token_hash: &str) -> Result<Option<Principal>>;
    /// Opens a console session (expired ones are dropped on the way).
    fn open_session(&self, session: &ConsoleSession) -> Result<()>;
    /// A session not yet expired, by the hash of its id.
    fn session(&self, id_hash: &str) -> Result<Option<ConsoleSession>>;
    fn close_session(&self, id_hash: &str) -> Result<()>;
    /// Drops sessions expired at `now_ms`; how many.
    fn expire_sessions(&self, now_ms: i64) -> Result<usize>;
    /// Sessions open at `now_ms` (a gauge).
    fn count_sessions(&self, now_ms: i64) -> Result<u64>;
    fn revoke_device(&self, actor: ActorId) -> Result<bool>;
    /// Disables (or re-enables) a user; false when no such user.
    fn set_user_disabled(&self, user_id: &str, disabled: bool) -> Result<bool>;
    /// Drops a user's unused enrolment codes (all, or the one hashed); how many.
    fn revoke_codes(&self, user_id: &str, code_hash: Option<&str>) -> Result<usize>;
    /// Unused, unexpired enrolment codes of a user.
    fn pending_codes(&self, user_id: &str, now_ms: i64) -> Result<usize>;
    /// Replaces a device-less token of `user_id` by a new one, atomically.
    /// Drops every device-less token of `user_id` and adds one.
    fn reset_user_tokens(&self, user_id: &str, new_hash: &str) -> Result<()>;
    fn replace_user_token(&self, user_id: &str, old_hash: &str, new_hash: &str) -> Result<bool>;
    fn audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The newest `limit` audit entries, newest first.
    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>>;
    fn device(&self, actor: ActorId) -> Result<Option<Device>>;

    /// Registers `next` as the device `previous` continues as (same user),
    /// moving the token presented to it; `previous` stays the user's.
    fn succeed_device(
        &self,
        previous: ActorId,
        next: ActorId,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<()>;
    /// Adds `bytes` to what `device` uploaded on `day` (days since the
    /// epoch) if that stays within `cap`; false (nothing added) otherwise.
    fn charge_photo_bytes(&self, device: ActorId, day: i64, bytes: u64, cap: u64) -> Result<bool>;
    /// The actor the server writes a staff member's decisions as (made once).
    fn staff_actor(&self, user_id: &str) -> Result<ActorId>;
    /// The cells a user covers now (what pulls are scoped by).
    fn set_user_cells(&self, user_id: &str, cells: &[String]) -> Result<()>;
}

/// The replica the merge reads and writes: changes, merged cases and tasks
/// and their projections (queue pages, cells, history, digests), the pull
/// log, tracks, and the grid and catalog changes are checked against.
pub trait Replica: Send + Sync {
    // Changes, merged by field-core; cursors are log positions.
    /// The body held under a change id (log or causal buffer).
    fn held_change(&self, id: ChangeId) -> Result<Option<String>>;
    /// The cell a position is in, by the grid held.
    fn locate_cell(&self, pos: LonLat) -> Result<Option<String>>;
    /// Whether a grid was imported (cheap: no copy of it).
    fn has_grid(&self) -> Result<bool>;
    /// Whether the catalog in force has this subclass (cheap: no copy of it).
    fn has_category(&self, code: &field_core::model::CategoryCode) -> Result<bool>;
    /// What the server measured of each report's clock when it arrived.
    fn record_report_skews(&self, reports: &[ReportClock]) -> Result<()>;
    fn report_clock(&self, case: CaseId) -> Result<Option<ReportClock>>;
    /// Photos a device reported it can no longer read.
    fn mark_photos_lost(&self, hashes: &[PhotoHash], by: ActorId, now_ms: i64) -> Result<()>;
    fn photo_lost(&self, hash: &PhotoHash) -> Result<bool>;
    fn apply(&self, changes: Vec<Change>) -> Result<Vec<(ChangeId, Judgement)>>;
    /// Records a case the center takes in from outside (a citizen's
    /// request) as `actor`'s report, merged like any other change.
    fn record_case(&self, actor: ActorId, report: field_core::crdt::CaseReport) -> Result<Change>;
    fn case(&self, id: CaseId) -> Result<Option<CaseView>>;
    fn cases(&self) -> Result<Vec<CaseView>>;
    /// A filtered page of reported cases, newest first, and the matching count.
    fn case_page(&self, q: &CaseQuery) -> Result<CasePage>;
    /// The cell the server located a case in (its own, or from its position).
    fn case_cell(&self, id: CaseId) -> Result<Option<String>>;
    /// The cases citing a photo.
    fn cases_citing(&self, hash: &PhotoHash) -> Result<Vec<CaseId>>;
    /// Open cases of a subclass within `radius_m`, nearest first, with distances.
    fn open_cases_near(
        &self,
        category: &str,
        pos: LonLat,
        radius_m: f64,
    ) -> Result<Vec<(CaseId, f64)>>;
    fn case_history(&self, id: CaseId) -> Result<Vec<HistoryEntry>>;
    fn pull(
        &self,
        after: u64,
        limit: usize,
        requester: ActorId,
        cells: &[String],
        own: &[ActorId],
        tasks_for: Option<&str>,
    ) -> Result<PullPage>;
    /// Writes a staff decision as that staff member's actor.
    fn decide(&self, actor: ActorId, case: CaseId, decision: Decision) -> Result<Change>;
    fn assign_task(&self, actor: ActorId, spec: TaskSpec) -> Result<Change>;
    fn tasks(&self, to_user: Option<&str>) -> Result<Vec<TaskRow>>;
    fn task(&self, id: uuid::Uuid) -> Result<Option<TaskRow>>;
    fn digest(&self) -> Result<DigestReport>;
    fn cases_digest(&self, cells: Option<&[String]>) -> Result<String>;

    // Reference data devices pull.
    fn set_grid(&self, cells: Vec<Cell>) -> Result<String>;
    /// The grid as GeoJSON with its version (shared: a caller that needs
    /// its own copy makes one).
    fn grid(&self) -> Result<Option<(String, std::sync::Arc<serde_json::Value>)>>;
    fn set_catalog(&self, catalog: Catalog) -> Result<()>;
    /// The catalog as a device should receive it, when the center imported one.
    fn custom_catalog(&self) -> Result<Option<Catalog>>;
    fn catalog(&self) -> Result<Catalog>;

    // Evidence for the review queue.
    /// Track points of `actor` between two instants (ms).
    fn track_between(&self, actor: ActorId, from_ms: i64, to_ms: i64) -> Result<Vec<TrackPoint>>;
    /// The usable points (accuracy ≤ `max_accuracy_m`) of `actor` bracketing
    /// instant `t`, each within `window_ms`: (last at or before, first at or after).
    fn track_around(
        &self,
        actor: ActorId,
        t: i64,
        window_ms: i64,
        max_accuracy_m: f64,
    ) -> Result<(Option<TrackPoint>, Option<TrackPoint>)>;
    /// Every shift mark (test case), with its device.
    fn shift_marks(&self) -> Result<Vec<(ActorId, ShiftMark)>>;
    /// Every gap the devices' recorders stated, with its device, oldest first.
    fn track_gaps(&self) -> Result<Vec<(ActorId, TrackGap)>>;
}

/// Photo bytes: content-addressed, uploaded in resumable chunks, verified;
/// thumbnails and EXIF times kept beside them.
pub trait BlobStore: Send + Sync {
    // Photo blobs, content-addressed; uploads are resumable.
    fn blob_exists(&self, hash: &PhotoHash) -> Result<bool>;
    fn blob_received(&self, hash: &PhotoHash) -> Result<u64>;
    fn blob_append(
        &self,
        hash: &PhotoHash,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<ChunkAck>;
    fn blob_read(&self, hash: &PhotoHash) -> Result<Vec<u8>>;
    /// A JPEG thumbnail of a complete photo (made once, then kept).
    fn blob_thumbnail(&self, hash: &PhotoHash) -> Result<Vec<u8>>;
    /// The photo's EXIF capture time, if it has one (read once, then kept).
    fn blob_exif_time(&self, hash: &PhotoHash) -> Result<blobs::ExifTime>;
    /// The photo store answers (a directory is there; a bucket replies).
    fn blobs_ready(&self) -> Result<()>;
    /// Removes uploads abandoned past their lifetime at `now_ms`; how many chunks.
    fn blobs_expire(&self, now_ms: i64) -> Result<usize>;
}

/// The assessment's records: configuration versions, assignments,
/// findings, surveys, violations, certification, training, rollups and
/// which days are stale, and job leases.
pub trait Records: Send + Sync {
    /// Records or updates a citizens' channel (Open311), by id; its key by hash.
    fn put_channel(&self, channel: &crate::service::Channel, key_hash: &str) -> Result<()>;
    fn channels(&self) -> Result<Vec<crate::service::Channel>>;
    fn channel_by_key(&self, key_hash: &str) -> Result<Option<crate::service::Channel>>;
    /// Counts one request of `channel` in the rate window starting at
    /// `window_ms`; the count after it (atomic across instances).
    fn charge_channel(&self, channel: &str, window_ms: i64) -> Result<u64>;
    /// Records a citizen's request (once: its id is its key).
    fn put_request(&self, request: &crate::service::CitizenRequest) -> Result<()>;
    fn request(&self, id: &str) -> Result<Option<crate::service::CitizenRequest>>;
    fn request_by_token(&self, token: &str) -> Result<Option<crate::service::CitizenRequest>>;
    /// Requests made in `[from_ms, to_ms)`, oldest first, at most `limit`.
    fn requests(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<crate::service::CitizenRequest>>;
    /// Takes (or renews) the lease on `job` for `holder` until `until_ms`
    /// when it is free, expired at `now_ms`, or already the holder's: one
    /// instance of many runs a job at a time. False when another holds it.
    fn take_lease(&self, job: &str, holder: &str, now_ms: i64, until_ms: i64) -> Result<bool>;
    fn release_lease(&self, job: &str, holder: &str) -> Result<()>;

    // The server's own schedule and its state.
    /// Claims the run of `job` due at `slot_ms`: true for exactly one
    /// caller of all instances (the others see the run already claimed).
    fn claim_job_run(&self, job: &str, slot_ms: i64, instance: &str, now_ms: i64) -> Result<bool>;
    /// Records how a claimed run ended.
    fn finish_job_run(
        &self,
        job: &str,
        slot_ms: i64,
        now_ms: i64,
        outcome: &str,
        detail: &str,
    ) -> Result<()>;
    /// The newest `limit` runs, newest first.
    fn job_runs(&self, limit: usize) -> Result<Vec<JobRun>>;
    /// The restore epoch devices compare: minted on first use, replaced by
    /// every restore (a device seeing it change re-sends what it holds).
    fn restore_epoch(&self) -> Result<String>;
    fn set_restore_epoch(&self, epoch: &str) -> Result<()>;
    /// The records are reachable and their schema is this build's.
    fn ready(&self) -> Result<()>;
    /// An online backup of the records and photos into `to` (the
    /// embedded backend; PostgreSQL is backed up with its own tools).
    fn backup_to(
        &self,
        data: &std::path::Path,
        to: &std::path::Path,
        now_ms: i64,
    ) -> Result<backup::Manifest> {
        let _ = (data, to, now_ms);
        Err(StorageError::Invalid {
            field: "backup".into(),
            reason: "this backend is backed up with its own tools (docs/deploy.md)".into(),
        })
    }
    /// The connection pool's state, for a backend that has one.
    fn pool(&self) -> Option<PoolStatus> {
        None
    }

    // Special surveys.
    fn create_survey(&self, survey: &Survey) -> Result<()>;
    /// Records that `user_id` covers `cells` from `from` (a local date).
    fn set_assignment(
        &self,
        user_id: &str,
        cells: &[String],
        from: chrono::NaiveDate,
    ) -> Result<()>;
    /// A user's assignments, oldest first.
    fn assignments(&self, user_id: &str) -> Result<Vec<(chrono::NaiveDate, Vec<String>)>>;
    /// Nightly rollups: one day's report of one user, as JSON.
    fn put_rollup(&self, day: chrono::NaiveDate, user_id: &str, report: &str) -> Result<()>;
    fn rollup(&self, day: chrono::NaiveDate, user_id: &str) -> Result<Option<String>>;
    /// Days whose data changed after their rollup (late syncs).
    fn mark_dirty(&self, days: &[chrono::NaiveDate]) -> Result<()>;
    fn dirty_days(&self) -> Result<Vec<chrono::NaiveDate>>;
    /// The days that have a rollup.
    fn rollup_days(&self) -> Result<Vec<chrono::NaiveDate>>;
    fn clear_dirty(&self, day: chrono::NaiveDate) -> Result<()>;
    /// The city configuration in force: (version, TOML).
    fn config(&self) -> Result<Option<(u64, String)>>;
    /// Stores a new version; returns its number.
    fn set_config(&self, toml: &str, by_user: &str) -> Result<u64>;
    fn add_finding(&self, finding: &ExternalFinding) -> Result<()>;
    /// Records (or, revoked, replaces) a red-line violation.
    fn put_violation(&self, v: &crate::service::Violation) -> Result<()>;
    fn violations(&self) -> Result<Vec<crate::service::Violation>>;
    fn put_attempt(&self, a: &crate::service::Attempt) -> Result<()>;
    fn attempts(&self) -> Result<Vec<crate::service::Attempt>>;
    fn put_training(&self, t: &crate::service::Training) -> Result<()>;
    fn trainings(&self) -> Result<Vec<crate::service::Training>>;
    fn findings(&self) -> Result<Vec<ExternalFinding>>;
    fn surveys(&self) -> Result<Vec<Survey>>;
}

/// Everything the server keeps, by concern: one backend implements all four
/// (the embedded SQLite + files one, `sqlite.rs`). Services hold an
/// `Arc<dyn Storage>`; bring the concern's trait into scope to call it.
/// One run of a scheduled (or manual) job, as `sync-server jobs` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    pub job: String,
    /// When it was due (ms since the epoch; a manual run: when asked).
    pub slot_ms: i64,
    pub instance: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// `running`, `ok` or `failed`.
    pub outcome: String,
    pub detail: String,
}

/// A connection pool's state (the `db_pool_connections` gauges).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

pub trait Storage: Identity + Replica + BlobStore + Records {}

impl<T: Identity + Replica + BlobStore + Records> Storage for T {}

/// The four concerns at once, for code that calls a concrete backend.
pub mod prelude {
    pub use super::{BlobStore, Identity, Records, Replica, Storage};
}
