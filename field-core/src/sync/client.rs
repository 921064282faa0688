//! The device side of sync: push the outbox in bounded batches while
//! pulling, then upload the photos the server lacks, in resumable chunks.
//! No I/O of its own: the transport is injected.

use serde::Serialize;

use super::protocol::{
    ChunkAck, MAX_CHANGES_PER_PUSH, MAX_PUSH_BYTES, PHOTO_CHUNK_BYTES, PROTOCOL_VERSION,
    PhotosNeededRequest, PhotosNeededResponse, PullRequest, PushOutcome, SuccessorRequest,
    SuccessorResponse, SyncRequest, SyncResponse,
};
use crate::model::PhotoHash;
use crate::store::Store;

/// Why a round trip failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No answer (connection refused, cut, timed out): safe to retry.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The server is at capacity and asked to be called again later; the
    /// HTTP transport waits and retries by itself until its patience ends.
    #[error("server busy: retry after {retry_after_ms} ms")]
    Busy { retry_after_ms: u64 },
    /// The server answered with a refusal.
    #[error("server refused ({status}): {reason}")]
    Refused { status: u16, reason: String },
    /// The server's address cannot be used as given (never sent anywhere).
    #[error("server address {given:?}: {reason}")]
    Address { given: String, reason: String },
}

/// Moves protocol messages; HTTP in the field, a simulated network in tests.
pub trait Transport {
    fn sync(&mut self, req: &SyncRequest) -> Result<SyncResponse, TransportError>;
    fn photos_needed(
        &mut self,
        req: &PhotosNeededRequest,
    ) -> Result<PhotosNeededResponse, TransportError>;
    fn upload_chunk(
        &mut self,
        hash: &PhotoHash,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<ChunkAck, TransportError>;
    /// Announces the new actor this device continues as.
    fn successor(&mut self, req: &SuccessorRequest) -> Result<SuccessorResponse, TransportError>;
}

/// A clock further than this from the server's is worth telling the collector.
pub const CLOCK_WARNING_MS: i64 = 5 * 60 * 1000;
/// Re-issues one sync may do before giving up (the next sync tries again).
const MAX_REISSUES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Store(#[from] crate::Error),
    #[error("the server answered {got} results for {sent} pushed changes")]
    Protocol { sent: usize, got: usize },
}

/// What one `sync` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncSummary {
    pub pushed: usize,
    pub refused: usize,
    pub pulled: usize,
    pub photos_sent: usize,
    pub photo_bytes: u64,
    pub round_trips: usize,
    /// Server time minus this device's clock (ms), measured at this sync.
    pub clock_offset_ms: i64,
    /// Changes re-issued under a new actor (restored backup, wrong clock).
    pub reissued: usize,
    /// The server had been restored from a backup: everything this device
    /// holds of its own was sent again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub server_restored: bool,
    /// Photos that could not be sent (unreadable on this device), with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub photos_lost: Vec<String>,
}

impl SyncSummary {
    /// A warning for the collector when the device's clock is off.
    pub fn clock_warning(&self) -> Option<String> {
        let off = self.clock_offset_ms;
        (off.abs() > CLOCK_WARNING_MS).then(|| {
            let mins = off.abs() / 60_000;
            let dir = if off > 0 { "behind" } else { "ahead of" };
            format!(
                "this device's clock is {}h {:02}m {dir} the server's: set it right; times are corrected meanwhile",
                mins / 60,
                mins % 60
            )
        })
    }
}

/// Progress events for a progress bar.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    Pushed { done: usize, total: usize },
    Pulled { changes: usize },
    PhotoBytes { done: u64, total: u64 },
}

/// One full sync. Safe to interrupt anywhere: each step is durable before
/// the next, and every step is idempotent when repeated.
pub fn sync(
    store: &mut Store,
    t: &mut dyn Transport,
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncSummary, SyncError> {
    let mut summary = SyncSummary::default();
    // What the recorder journalled goes out with this sync.
    store.seal_fixes()?;
    let total = store.outbox_len()? as usize;
    let mut reissues = 0;
    loop {
        if let Some(actor) = store.successor_pending()? {
            t.successor(&SuccessorRequest { actor })?;
            summary.round_trips += 1;
            store.successor_announced()?;
        }
        let (push, through) = store.outbox(MAX_CHANGES_PER_PUSH, MAX_PUSH_BYTES)?;
        let sent_at = store.device_clock_ms();
        let req = SyncRequest {
            device_time_ms: Some(sent_at as i64 + store.clock_offset_ms()),
            protocol: PROTOCOL_VERSION,
            pull: PullRequest {
                cursor: store.pull_cursor()?,
                grid_version: store.grid_version()?,
                catalog_version: store.catalog_version()?,
                surveys_version: store.surveys()?.map(|s| s.version),
            },
            push,
        };
        let resp = t.sync(&req)?;
        summary.round_trips += 1;
        // A server restored from a backup: its answer to our old cursor
        // means nothing; start over from the beginning on both sides.
        if let Some(epoch) = &resp.epoch
            && store.observe_server_epoch(epoch)?
        {
            if summary.server_restored {
                // Two epochs in one sync: two different servers answer at
                // one address. Stop rather than resend forever.
                return Err(TransportError::Refused {
                    status: 409,
                    reason: "the server's restore epoch changed twice in one sync: are two different servers behind this address?".into(),
                }
                .into());
            }
            summary.server_restored = true;
            continue;
        }
        if resp.server_time_ms > 0 {
            // Half the round trip is the best estimate of when it was read.
            let mid = sent_at + store.device_clock_ms().saturating_sub(sent_at) / 2;
            summary.clock_offset_ms = store.observe_server_time(resp.server_time_ms, mid)?;
        }
        let mut redo = None;
        if resp.push.len() != req.push.len() {
            return Err(SyncError::Protocol {
                sent: req.push.len(),
                got: resp.push.len(),
            });
        }
        if !req.push.is_empty() {
            redo = store.record_push(through, &resp.push)?;
            summary.pushed += req.push.len();
            summary.refused += resp
                .push
                .iter()
                .filter(|r| r.outcome == PushOutcome::Refused)
                .count();
            progress(Progress::Pushed {
                done: summary.pushed,
                total,
            });
        }
        let more = resp.pull.more;
        summary.pulled += resp.pull.changes.len();
        store.apply_pull(resp.pull)?;
        progress(Progress::Pulled {
            changes: summary.pulled,
        });
        if let Some((from, repull)) = redo {
            if reissues == MAX_REISSUES {
                break;
            }
            reissues += 1;
            summary.reissued += store.reissue(from, repull)?.changes;
            continue;
        }
        if store.outbox_len()? == 0 && !more {
            break;
        }
    }
    upload_photos(store, t, &mut summary, progress)?;
    Ok(summary)
}

fn upload_photos(
    store: &mut Store,
    t: &mut dyn Transport,
    summary: &mut SyncSummary,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), SyncError> {
    let offered = store.photos_to_upload()?;
    if offered.is_empty() {
        return Ok(());
    }
    // One unreadable photo (flash storage rots) must not stop the others:
    // it is reported to the center as lost and the rest go up.
    let mut readable = Vec::new();
    let mut lost = Vec::new();
    for h in offered {
        match store.photo(&h) {
            Ok(_) => readable.push(h),
            Err(e @ crate::Error::Corrupt(_)) => {
                summary.photos_lost.push(e.to_string());
                lost.push(h);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let hashes = readable;
    let needed = t.photos_needed(&PhotosNeededRequest {
        hashes: hashes.clone(),
        lost: lost.clone(),
    })?;
    summary.round_trips += 1;
    let mut bytes_total = 0;
    let mut jobs = Vec::new();
    for need in &needed.needed {
        let Some(bytes) = store.photo(&need.hash).ok() else {
            continue;
        };
        bytes_total += bytes.len() as u64 - need.received.min(bytes.len() as u64);
        jobs.push((need.hash.clone(), need.received, bytes));
    }
    let mut done = 0;
    for (hash, mut offset, bytes) in jobs {
        let total = bytes.len() as u64;
        // A server that keeps answering without taking bytes must not spin us.
        let mut budget = 2 * bytes.len().div_ceil(PHOTO_CHUNK_BYTES) + 2;
        while offset < total {
            if budget == 0 {
                return Err(TransportError::Refused {
                    status: 500,
                    reason: format!("upload of {hash} makes no progress"),
                }
                .into());
            }
            budget -= 1;
            let end = (offset as usize + PHOTO_CHUNK_BYTES).min(bytes.len());
            let ack = t.upload_chunk(&hash, offset, total, &bytes[offset as usize..end])?;
            summary.round_trips += 1;
            done += end as u64 - offset;
            summary.photo_bytes += end as u64 - offset;
            progress(Progress::PhotoBytes {
                done,
                total: bytes_total,
            });
            offset = ack.received;
            if ack.complete {
                break;
            }
        }
        summary.photos_sent += 1;
    }
    // Everything offered is now held by the server: sent, or not needed;
    // the lost ones are known to the center and not offered again.
    for h in hashes.iter().chain(&lost) {
        store.mark_photo_uploaded(h)?;
    }
    Ok(())
}
