//! The handheld SDK: the small device API a collector's app embeds,
//! exported with UniFFI to Kotlin (Android), Swift (iOS) and Python.
//!
//! Everything here is a thin, typed layer over `field-core`: the same store,
//! merge and sync client the `field` command drives. Inputs from the app are
//! checked by field-core (errors name the field); photos may come as bytes
//! or as paths, both bounded. `sync` is async (the app's executor awaits
//! it; the work runs on its own thread), reports progress to a callback and
//! stops at the next request when cancelled — every step of a sync is
//! durable and idempotent, so a cancelled sync resumes where it was.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use field_core::model::{CaseId, LonLat, ShiftKind, Timestamp};
use field_core::store::{CaseEditRequest, FixJournal, NewCase, Store, SyncSettings};
use field_core::sync::client::{Progress, Transport, TransportError};
use field_core::sync::http::{ClientTls, HttpTransport};
use field_core::sync::protocol::EnrollRequest;

uniffi::setup_scaffolding!();

/// The largest photo the SDK reads from a path or takes as bytes.
pub const MAX_PHOTO_BYTES: u64 = 20 * 1024 * 1024;
/// Most photos in one report or answer.
pub const MAX_PHOTOS: usize = 20;
/// Most fixes recorded in one call.
pub use field_core::store::MAX_FIXES_PER_CALL;

/// What went wrong, typed for the app: an invalid input names its field.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum FieldError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{what} {id} not found")]
    NotFound { what: String, id: String },
    #[error("this device is not enrolled: call enroll first")]
    NotEnrolled,
    #[error("server unreachable: {reason}")]
    Unreachable { reason: String },
    #[error("server busy: retry after {retry_after_ms} ms")]
    Busy { retry_after_ms: u64 },
    #[error("server refused ({status}): {reason}")]
    Refused { status: u16, reason: String },
    #[error("cancelled")]
    Cancelled,
    #[error("store: {reason}")]
    Store { reason: String },
}

impl From<field_core::Error> for FieldError {
    fn from(e: field_core::Error) -> FieldError {
        match e {
            field_core::Error::Invalid { field, reason } => FieldError::Invalid { field, reason },
            field_core::Error::NotFound { what, id } => FieldError::NotFound {
                what: what.to_string(),
                id,
            },
            other => FieldError::Store {
                reason: other.to_string(),
            },
        }
    }
}

impl From<TransportError> for FieldError {
    fn from(e: TransportError) -> FieldError {
        match e {
            TransportError::Unreachable(reason) => FieldError::Unreachable { reason },
            TransportError::Busy { retry_after_ms } => FieldError::Busy { retry_after_ms },
            TransportError::Refused { status, reason } => FieldError::Refused { status, reason },
            TransportError::Address { given, reason } => FieldError::Invalid {
                field: "server".into(),
                reason: format!("{given}: {reason}"),
            },
        }
    }
}

impl From<field_core::sync::client::SyncError> for FieldError {
    fn from(e: field_core::sync::client::SyncError) -> FieldError {
        use field_core::sync::client::SyncError;
        match e {
            SyncError::Transport(t) => t.into(),
            SyncError::Store(s) => s.into(),
            other @ SyncError::Protocol { .. } => FieldError::Store {
                reason: other.to_string(),
            },
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A position fix as the platform's location service delivers it.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Fix {
    /// When the fix was taken (ms since the epoch, UTC).
    pub at_ms: i64,
    pub lon: f64,
    pub lat: f64,
    pub accuracy_m: Option<f64>,
    pub speed_mps: Option<f64>,
    pub bearing_deg: Option<f64>,
    /// `gps`, `network`, `fused`, …
    pub provider: Option<String>,
    /// The platform says the position was mocked (developer options).
    pub mock: bool,
}

/// What a batch of fixes did.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FixesRecorded {
    /// Fixes journalled (durable when the call returned), mock ones included.
    pub recorded: u64,
    /// Mock-flagged fixes: kept out of the track (they prove no patrol).
    pub skipped_mock: u64,
    /// Fixes at or before the newest one already taken: ignored.
    pub stale: u64,
    /// Gaps that ended with these fixes (or with the recorder's start or stop).
    pub gaps: Vec<Gap>,
}

/// A stretch of the track without usable fixes, and why.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Gap {
    pub from_ms: i64,
    pub to_ms: i64,
    /// `no_fix`, `app_killed`, `mock` or `poor_accuracy`.
    pub cause: String,
}

fn recorded(r: field_core::store::Recorded) -> FixesRecorded {
    FixesRecorded {
        recorded: r.fixes,
        skipped_mock: r.mock,
        stale: r.stale,
        gaps: r
            .gaps
            .iter()
            .map(|g| Gap {
                from_ms: g.from.millis(),
                to_ms: g.to.millis(),
                cause: g.cause.as_str().into(),
            })
            .collect(),
    }
}

/// What a GPX import did.
#[derive(Clone, Debug, uniffi::Record)]
pub struct GpxImport {
    pub added: u64,
    /// Points at instants this device already held (not added again).
    pub already_held: u64,
    /// Points left out, each `line N (track t segment s point p) why`.
    pub skipped: Vec<String>,
}

/// A photo: its bytes, or a path to read them from.
#[derive(Clone, Debug, uniffi::Enum)]
pub enum Photo {
    Bytes { data: Vec<u8> },
    File { path: String },
}

/// A new case.
#[derive(Clone, Debug, uniffi::Record)]
pub struct CaseReport {
    /// Catalog code (`SJ0102`, `01001`).
    pub category: String,
    pub lon: f64,
    pub lat: f64,
    pub description: String,
    pub photos: Vec<Photo>,
    /// When it was seen (default: now).
    pub at_ms: Option<i64>,
    /// Fixed on the spot: the photos after the fix.
    pub fixed_photos: Vec<Photo>,
    /// Report even though the position is outside every cell of the
    /// device's grid (refused otherwise: usually a wrong position).
    #[uniffi(default = false)]
    pub outside_ok: bool,
}

/// An edit of a case this collector reported.
#[derive(Clone, Debug, uniffi::Record)]
pub struct CaseEdit {
    pub description: Option<String>,
    pub category: Option<String>,
    pub add_photos: Vec<Photo>,
    /// Hashes of photos to remove.
    pub remove_photos: Vec<String>,
}

/// A case as the app lists it.
#[derive(Clone, Debug, uniffi::Record)]
pub struct CaseInfo {
    pub id: String,
    /// More than one when concurrent edits left a conflict.
    pub status: Vec<String>,
    pub category: Option<String>,
    pub category_name: Option<String>,
    pub cell: Option<String>,
    pub description: Option<String>,
    pub reported_at_ms: Option<i64>,
    pub photos: u64,
}

/// A task the center assigned (verify or check a case, or go to a place).
#[derive(Clone, Debug, uniffi::Record)]
pub struct TaskInfo {
    pub id: String,
    pub kind: String,
    pub case_id: Option<String>,
    pub due_at_ms: i64,
    pub note: Option<String>,
    /// `yes`/`no` once answered.
    pub answer: Option<String>,
}

/// A catalog subclass.
#[derive(Clone, Debug, uniffi::Record)]
pub struct CatalogItem {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub major_name: String,
}

/// The device's state for a status screen.
#[derive(Clone, Debug, uniffi::Record)]
pub struct DeviceStatus {
    pub server: Option<String>,
    pub user: Option<String>,
    pub actor: String,
    pub pending_changes: u64,
    pub pending_photos: u64,
    pub refused_changes: u64,
    pub last_sync_ms: Option<i64>,
    pub clock_offset_ms: i64,
    /// The store's files, in bytes.
    pub store_bytes: u64,
    /// Fixes journalled by the recorder and not yet in the track.
    pub waiting_fixes: u64,
}

/// What pruning freed (or would free).
#[derive(Clone, Debug, uniffi::Record)]
pub struct Pruned {
    pub retention_days: u32,
    pub dry_run: bool,
    pub photos: u64,
    pub photo_bytes: u64,
    pub raw_fixes: u64,
    pub store_bytes: u64,
}

/// Who the device was enrolled as.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Enrolment {
    pub server: String,
    pub user: String,
    pub role: String,
    pub cells: Vec<String>,
}

/// What a sync did.
#[derive(Clone, Debug, uniffi::Record)]
pub struct SyncReport {
    pub pushed: u64,
    pub refused: u64,
    pub pulled: u64,
    pub photos_sent: u64,
    pub photo_bytes: u64,
    pub round_trips: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The server had been restored from a backup: everything of this
    /// device's was sent again.
    pub server_restored: bool,
    /// A warning for the collector when the device's clock is off.
    pub clock_warning: Option<String>,
}

/// Progress of a sync, for a progress bar.
#[derive(Clone, Debug, uniffi::Enum)]
pub enum SyncProgress {
    Pushed { done: u64, total: u64 },
    Pulled { changes: u64 },
    PhotoBytes { done: u64, total: u64 },
}

/// The app's progress callback.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

/// Cancels a sync in flight: it stops before its next request.
#[derive(Default, uniffi::Object)]
pub struct CancelToken {
    cancelled: AtomicBool,
}

#[uniffi::export]
impl CancelToken {
    #[uniffi::constructor]
    pub fn new() -> Arc<CancelToken> {
        Arc::new(CancelToken::default())
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// A transport that refuses to send once its token is cancelled.
struct Cancellable<'a> {
    inner: HttpTransport,
    cancel: Option<&'a CancelToken>,
}

impl Cancellable<'_> {
    fn check(&self) -> Result<(), TransportError> {
        match self.cancel {
            Some(c) if c.is_cancelled() => Err(TransportError::Unreachable("cancelled".into())),
            _ => Ok(()),
        }
    }
}

impl Transport for Cancellable<'_> {
    fn sync(
        &mut self,
        req: &field_core::sync::protocol::SyncRequest,
    ) -> Result<field_core::sync::protocol::SyncResponse, TransportError> {
        self.check()?;
        self.inner.sync(req)
    }

    fn photos_needed(
        &mut self,
        req: &field_core::sync::protocol::PhotosNeededRequest,
    ) -> Result<field_core::sync::protocol::PhotosNeededResponse, TransportError> {
        self.check()?;
        self.inner.photos_needed(req)
    }

    fn upload_chunk(
        &mut self,
        hash: &field_core::model::PhotoHash,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<field_core::sync::protocol::ChunkAck, TransportError> {
        self.check()?;
        self.inner.upload_chunk(hash, offset, total, bytes)
    }

    fn successor(
        &mut self,
        req: &field_core::sync::protocol::SuccessorRequest,
    ) -> Result<field_core::sync::protocol::SuccessorResponse, TransportError> {
        self.check()?;
        self.inner.successor(req)
    }
}

/// One collector's handset: its store, and the way to the server.
#[derive(uniffi::Object)]
pub struct Device {
    store: Arc<Mutex<Store>>,
    /// The recorder's own connection: fixes are taken while a sync holds
    /// the store.
    journal: Mutex<FixJournal>,
    path: PathBuf,
    /// A city CA beside the system's roots (PEM file).
    ca_file: Mutex<Option<PathBuf>>,
}

fn timestamp(field: &str, ms: Option<i64>) -> Result<Option<Timestamp>, FieldError> {
    ms.map(|m| Timestamp::from_millis(field, m))
        .transpose()
        .map_err(Into::into)
}

fn photos(field: &str, photos: &[Photo]) -> Result<Vec<Vec<u8>>, FieldError> {
    if photos.len() > MAX_PHOTOS {
        return Err(invalid(field, format!("at most {MAX_PHOTOS} photos")));
    }
    photos
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = format!("{field}[{i}]");
            let bytes = match p {
                Photo::Bytes { data } => data.clone(),
                Photo::File { path } => {
                    let meta =
                        std::fs::metadata(path).map_err(|e| invalid(&f, format!("{path}: {e}")))?;
                    if meta.len() > MAX_PHOTO_BYTES {
                        return Err(invalid(&f, format!("larger than {MAX_PHOTO_BYTES} bytes")));
                    }
                    std::fs::read(path).map_err(|e| invalid(&f, format!("{path}: {e}")))?
                }
            };
            if bytes.len() as u64 > MAX_PHOTO_BYTES {
                return Err(invalid(&f, format!("larger than {MAX_PHOTO_BYTES} bytes")));
            }
            Ok(bytes)
        })
        .collect()
}

impl Device {
    fn journal(&self) -> std::sync::MutexGuard<'_, FixJournal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock leaves SQLite consistent.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tls(&self) -> ClientTls {
        ClientTls {
            ca_file: self
                .ca_file
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            allow_plain_http: false,
        }
    }
}

#[uniffi::export]
impl Device {
    /// Opens the device store at `path`, creating it (with a fresh actor)
    /// when there is none; the collector's name comes from the server at
    /// enrolment.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Device>, FieldError> {
        let p = PathBuf::from(&path);
        let store = if p.exists() {
            Store::open(&p)?
        } else {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| invalid("path", e.to_string()))?;
            }
            Store::init(&p, "pending")?
        };
        let journal = FixJournal::open(&p)?;
        Ok(Arc::new(Device {
            store: Arc::new(Mutex::new(store)),
            journal: Mutex::new(journal),
            path: p,
            ca_file: Mutex::new(None),
        }))
    }

    /// Trusts a city's own CA (a PEM file) beside the system's roots.
    pub fn set_ca_file(&self, path: Option<String>) {
        *self.ca_file.lock().unwrap_or_else(|p| p.into_inner()) = path.map(PathBuf::from);
    }

    /// The store's path.
    pub fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// Enrols with the server using a one-time code from the center.
    pub fn enroll(
        &self,
        server: String,
        code: String,
        device_name: Option<String>,
    ) -> Result<Enrolment, FieldError> {
        let mut t = HttpTransport::with_tls(&server, None, &self.tls())?;
        let server = t.base().to_string();
        let mut store = self.store();
        let resp = t.enroll(&EnrollRequest {
            code,
            actor: store.actor(),
            device_name,
        })?;
        store.set_sync_settings(&SyncSettings {
            server: server.clone(),
            token: resp.token,
            user: resp.user.clone(),
        })?;
        Ok(Enrolment {
            server,
            user: resp.user.name,
            role: resp.user.role,
            cells: resp.user.cells,
        })
    }

    /// Records one fix (see [`Device::record_fixes`]).
    pub fn record_fix(&self, fix: Fix) -> Result<FixesRecorded, FieldError> {
        self.record_fixes(vec![fix])
    }

    /// Records fixes as they arrive: journalled in one transaction, so a
    /// fix is durable when the call returns (a kill loses nothing already
    /// handed over), even while a sync runs. Mock-flagged fixes are kept
    /// out of the track and mark a gap; the journal becomes track changes
    /// at the next sync or stop.
    pub fn record_fixes(&self, fixes: Vec<Fix>) -> Result<FixesRecorded, FieldError> {
        if fixes.len() > MAX_FIXES_PER_CALL {
            return Err(invalid(
                "fixes",
                format!("at most {MAX_FIXES_PER_CALL} per call"),
            ));
        }
        let mut taken = Vec::with_capacity(fixes.len());
        for (i, f) in fixes.iter().enumerate() {
            taken.push(field_core::recorder::Fix {
                at: Timestamp::from_millis(&format!("fixes[{i}].at_ms"), f.at_ms)?,
                pos: LonLat::new(f.lon, f.lat).map_err(|e| prefix(e, &format!("fixes[{i}]")))?,
                accuracy_m: f.accuracy_m,
                speed_mps: f.speed_mps,
                bearing_deg: f.bearing_deg,
                provider: f.provider.clone(),
                mock: f.mock,
            });
        }
        let r = self.journal().record(&taken)?;
        Ok(recorded(r))
    }

    /// The recorder starts: call it when the app (re)starts recording. A
    /// recorder that was running and went silent without a stop was
    /// killed: the gap is recorded ("app_killed") and the same day's track
    /// goes on.
    pub fn start_recorder(&self) -> Result<FixesRecorded, FieldError> {
        let now = self.store().corrected_now_ms();
        Ok(recorded(self.journal().start(now)?))
    }

    /// The recorder stops cleanly (no gap is counted for the pause); what
    /// it journalled becomes track changes.
    pub fn stop_recorder(&self) -> Result<FixesRecorded, FieldError> {
        let r = self.journal().stop()?;
        self.store().seal_fixes()?;
        Ok(recorded(r))
    }

    /// The gaps of this device's track, oldest first.
    pub fn gaps(&self) -> Result<Vec<Gap>, FieldError> {
        let store = self.store();
        let me = store.actor();
        Ok(store
            .track_gaps()?
            .into_iter()
            .filter(|(a, _)| *a == me)
            .map(|(_, g)| Gap {
                from_ms: g.from.millis(),
                to_ms: g.to.millis(),
                cause: g.cause.as_str().into(),
            })
            .collect())
    }

    /// Imports a GPX file (1.0 or 1.1) into this device's track: points
    /// already held are not added again; untimed points are skipped and
    /// reported.
    pub fn import_gpx(&self, path: String) -> Result<GpxImport, FieldError> {
        let file =
            std::fs::File::open(&path).map_err(|e| invalid("path", format!("{path}: {e}")))?;
        let read = field_core::import::read_gpx_report(file)?;
        let (added, already_held) = self.store().import_track_points(&read.points)?;
        Ok(GpxImport {
            added,
            already_held,
            skipped: read
                .skipped
                .into_iter()
                .map(|s| format!("{} {}", s.point, s.reason))
                .collect(),
        })
    }

    /// The start of a shift (the attendance record), now or at `at_ms`;
    /// the recorder starts with it.
    pub fn start_shift(
        &self,
        at_ms: Option<i64>,
        lon: Option<f64>,
        lat: Option<f64>,
    ) -> Result<(), FieldError> {
        self.shift(ShiftKind::Start, at_ms, lon, lat)?;
        self.start_recorder()?;
        Ok(())
    }

    pub fn end_shift(
        &self,
        at_ms: Option<i64>,
        lon: Option<f64>,
        lat: Option<f64>,
    ) -> Result<(), FieldError> {
        self.shift(ShiftKind::End, at_ms, lon, lat)?;
        self.stop_recorder()?;
        Ok(())
    }

    /// Reports a new case; its id.
    pub fn report_case(&self, report: CaseReport) -> Result<String, FieldError> {
        let pos = LonLat::new(report.lon, report.lat)?;
        let mut store = self.store();
        if !report.outside_ok && !store.cells()?.is_empty() && store.locate_cell(pos)?.is_none() {
            return Err(invalid(
                "lon",
                "the position is outside every cell of this device's grid (set outside_ok to report it anyway)",
            ));
        }
        drop(store);
        let new = NewCase {
            category: report.category,
            pos,
            description: report.description,
            photos: photos("photos", &report.photos)?,
            at: timestamp("at_ms", report.at_ms)?,
            quick_fix_after: if report.fixed_photos.is_empty() {
                None
            } else {
                Some(photos("fixed_photos", &report.fixed_photos)?)
            },
            survey: None,
        };
        Ok(self.store().report_case(new)?.to_string())
    }

    /// Edits a case this collector reported.
    pub fn edit_case(&self, id: String, edit: CaseEdit) -> Result<(), FieldError> {
        let id = CaseId::parse("id", &id)?;
        let remove = edit
            .remove_photos
            .iter()
            .map(|h| field_core::model::PhotoHash::parse("remove_photos", h))
            .collect::<Result<Vec<_>, _>>()?;
        self.store().edit_case(
            id,
            CaseEditRequest {
                description: edit.description,
                category: edit.category,
                add_photos: photos("add_photos", &edit.add_photos)?,
                remove_photos: remove,
            },
        )?;
        Ok(())
    }

    /// The cases this device holds, newest first.
    pub fn cases(&self) -> Result<Vec<CaseInfo>, FieldError> {
        let store = self.store();
        let mut out = Vec::new();
        for v in store.cases()? {
            let s = store.summarize(&v)?;
            out.push(CaseInfo {
                id: s.id.to_string(),
                status: s.status.iter().map(|st| label(st)).collect(),
                category: s.category,
                category_name: s.category_name,
                cell: s.cell,
                description: s.description,
                reported_at_ms: s.reported_at.map(|t| t.millis()),
                photos: s.photos as u64,
            });
        }
        out.sort_by(|a, b| b.reported_at_ms.cmp(&a.reported_at_ms));
        Ok(out)
    }

    /// The tasks assigned to this device's collector.
    pub fn tasks(&self) -> Result<Vec<TaskInfo>, FieldError> {
        let store = self.store();
        let user = store.sync_settings()?.map(|s| s.user.id);
        Ok(store
            .tasks(user.as_deref())?
            .into_iter()
            .filter_map(|row| {
                let spec = row.task.spec?;
                Some(TaskInfo {
                    id: spec.id.to_string(),
                    kind: label(&spec.kind),
                    case_id: spec.case.map(|c| c.to_string()),
                    due_at_ms: spec.due_at.millis(),
                    note: spec.note,
                    answer: row.task.answer.map(|a| label(&a.result)),
                })
            })
            .collect())
    }

    /// Answers a task: `yes` (the case is there / fixed) or `no`.
    pub fn answer_task(
        &self,
        id: String,
        result: String,
        photos_: Vec<Photo>,
        note: Option<String>,
    ) -> Result<(), FieldError> {
        let task = uuid::Uuid::parse_str(&id).map_err(|e| invalid("id", e.to_string()))?;
        let result = match result.as_str() {
            "yes" => field_core::model::TaskResult::Yes,
            "no" => field_core::model::TaskResult::No,
            other => return Err(invalid("result", format!("{other:?} is not yes or no"))),
        };
        self.store()
            .answer_task(task, result, photos("photos", &photos_)?, note, None)?;
        Ok(())
    }

    /// Catalog subclasses matching `query`: a code prefix (`SJ01`), part of
    /// the Chinese or English name (`井盖`, `manhole`); at most `limit`.
    pub fn catalog_search(&self, query: String, limit: u32) -> Vec<CatalogItem> {
        let store = self.store();
        field_core::model::catalog_search(store.catalog(), &query, limit as usize)
            .into_iter()
            .map(|e| CatalogItem {
                code: e.code.to_string(),
                name_zh: e.name_zh.clone(),
                name_en: e.name_en.clone(),
                major_name: e.major_name.clone(),
            })
            .collect()
    }

    /// Syncs with the server: pushes what the center lacks, pulls what this
    /// device lacks, uploads photos. Awaitable; `listener` hears progress;
    /// `cancel` stops it before its next request.
    pub async fn sync(
        &self,
        listener: Option<Arc<dyn SyncListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<SyncReport, FieldError> {
        let store = self.store.clone();
        let tls = self.tls();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("field-sync".into())
            .spawn(move || {
                let result = sync_blocking(&store, &tls, listener.as_deref(), cancel.as_deref());
                let _ = tx.send(result);
            })
            .map_err(|e| FieldError::Store {
                reason: format!("cannot start the sync: {e}"),
            })?;
        rx.await.map_err(|_| FieldError::Store {
            reason: "the sync stopped without an answer".into(),
        })?
    }

    /// Counts for a status screen.
    pub fn status(&self) -> Result<DeviceStatus, FieldError> {
        let store = self.store();
        let s = store.sync_status()?;
        Ok(DeviceStatus {
            server: s.server,
            user: s.user,
            actor: store.actor().to_string(),
            pending_changes: s.pending_changes,
            pending_photos: s.pending_photos,
            refused_changes: s.refused_changes,
            last_sync_ms: s.last_sync.map(|t| t.millis()),
            clock_offset_ms: s.clock_offset_ms,
            store_bytes: store.store_bytes(),
            waiting_fixes: self.journal().waiting()? as u64,
        })
    }

    /// Drops the bytes the center confirmed more than `retention_days` ago
    /// (photo bytes it acknowledged, raw fixes already pushed; 7 is the
    /// default a collector's app should use). The merged state, the log
    /// and every hash stay; nothing unsynced is pruned.
    pub fn prune(&self, retention_days: u32, dry_run: bool) -> Result<Pruned, FieldError> {
        let p = self.store().prune(retention_days, dry_run)?;
        Ok(Pruned {
            retention_days: p.retention_days,
            dry_run: p.dry_run,
            photos: p.photos,
            photo_bytes: p.photo_bytes,
            raw_fixes: p.raw_fixes,
            store_bytes: p.store_bytes,
        })
    }

    /// The digest of the cases this device holds: equal to the server's
    /// for the same cells when both hold the same changes.
    pub fn digest(&self) -> Result<String, FieldError> {
        Ok(self.store().cases_digest(None)?)
    }
}

impl Device {
    fn shift(
        &self,
        kind: ShiftKind,
        at_ms: Option<i64>,
        lon: Option<f64>,
        lat: Option<f64>,
    ) -> Result<(), FieldError> {
        let pos = match (lon, lat) {
            (Some(lon), Some(lat)) => Some(LonLat::new(lon, lat)?),
            (None, None) => None,
            _ => return Err(invalid("lon", "give both lon and lat, or neither")),
        };
        self.store()
            .mark_shift(kind, timestamp("at_ms", at_ms)?, pos)?;
        Ok(())
    }
}

fn sync_blocking(
    store: &Mutex<Store>,
    tls: &ClientTls,
    listener: Option<&dyn SyncListener>,
    cancel: Option<&CancelToken>,
) -> Result<SyncReport, FieldError> {
    let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
    let settings = store.sync_settings()?.ok_or(FieldError::NotEnrolled)?;
    let inner = HttpTransport::with_tls(&settings.server, Some(settings.token.clone()), tls)?;
    let mut t = Cancellable { inner, cancel };
    let result = field_core::sync::client::sync(&mut store, &mut t, &mut |p| {
        if let Some(l) = listener {
            l.on_progress(match p {
                Progress::Pushed { done, total } => SyncProgress::Pushed {
                    done: done as u64,
                    total: total as u64,
                },
                Progress::Pulled { changes } => SyncProgress::Pulled {
                    changes: changes as u64,
                },
                Progress::PhotoBytes { done, total } => SyncProgress::PhotoBytes { done, total },
            });
        }
    });
    if cancel.is_some_and(CancelToken::is_cancelled) {
        return Err(FieldError::Cancelled);
    }
    let s = result?;
    Ok(SyncReport {
        pushed: s.pushed as u64,
        refused: s.refused as u64,
        pulled: s.pulled as u64,
        photos_sent: s.photos_sent as u64,
        photo_bytes: s.photo_bytes,
        round_trips: s.round_trips as u64,
        bytes_sent: t.inner.bytes_sent,
        bytes_received: t.inner.bytes_received,
        server_restored: s.server_restored,
        clock_warning: s.clock_warning(),
    })
}

/// A field-core error with the field's path put in front (`fixes[3].lat`).
fn prefix(e: field_core::Error, at: &str) -> FieldError {
    match e {
        field_core::Error::Invalid { field, reason } => invalid(&format!("{at}.{field}"), reason),
        other => other.into(),
    }
}

/// A serde enum's wire name (`verify`, `yes`, `registered`).
fn label<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
