//! Sync: judge and merge what a device pushes, answer what it lacks, and
//! take its photos.
//!
//! Batch rule: every change of a push is judged on its own. Accepted,
//! held and duplicate changes are durably stored before the response is
//! sent; refused ones (403 forbidden, 400 invalid) are not stored and do not
//! affect the rest. Every result is final, so the device never re-sends a
//! judged change.

use field_core::model::PhotoHash;
use field_core::store::Judgement;
use field_core::sync::protocol::{
    CODE_REUSED, CatalogPayload, ChunkAck, GridPayload, MAX_CHANGES_PER_PULL, OLDEST_PROTOCOL,
    PROTOCOL_VERSION, PhotoNeed, PhotosNeededRequest, PhotosNeededResponse, PullRequest,
    PullResponse, PushOutcome, PushResult, SyncRequest, SyncResponse,
};

use super::{Center, Result, ServiceError, invalid};
use crate::storage::Principal;

/// Most hashes one "which photos do you need" question may list.
pub const MAX_HASHES_PER_QUESTION: usize = 5000;

/// A sync request as it arrives: each pushed change still raw, so that one
/// unreadable change is refused alone instead of failing the batch.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncWire {
    pub protocol: u32,
    pub push: Vec<Box<serde_json::value::RawValue>>,
    pub pull: field_core::sync::protocol::PullRequest,
    #[serde(default)]
    pub device_time_ms: Option<i64>,
}

impl SyncWire {
    /// Reads each change; a change whose id cannot even be read fails the
    /// request (there is nothing to answer it by), naming its position.
    pub fn read(self) -> Result<(SyncRequest, Vec<Option<PushResult>>)> {
        #[derive(serde::Deserialize)]
        struct Id {
            actor: field_core::model::ActorId,
            counter: u64,
        }
        let mut push = Vec::with_capacity(self.push.len());
        let mut unreadable = Vec::with_capacity(self.push.len());
        for (i, raw) in self.push.iter().enumerate() {
            match field_core::crdt::Change::from_json(raw.get()) {
                Ok(c) => {
                    push.push(c);
                    unreadable.push(None);
                }
                Err(e) => {
                    let id: Id = serde_json::from_str(raw.get()).map_err(|_| {
                        invalid(
                            format!("push[{i}]"),
                            format!("{e}; and no actor and counter to refuse it by"),
                        )
                    })?;
                    unreadable.push(Some(PushResult {
                        actor: id.actor,
                        counter: id.counter,
                        outcome: PushOutcome::Refused,
                        code: Some(400),
                        reason: Some(format!("push[{i}]: {e}")),
                    }));
                }
            }
        }
        Ok((
            SyncRequest {
                protocol: self.protocol,
                push,
                pull: self.pull,
                device_time_ms: self.device_time_ms,
            },
            unreadable,
        ))
    }
}

impl Center {
    /// A sync as the HTTP layer receives it: unreadable changes are refused
    /// in place, the others judged as usual.
    pub fn sync_wire(&self, p: &Principal, wire: SyncWire) -> Result<SyncResponse> {
        let (req, unreadable) = wire.read()?;
        let mut resp = self.sync(p, req)?;
        if unreadable.iter().any(Option::is_some) {
            let mut judged = std::mem::take(&mut resp.push).into_iter();
            resp.push = unreadable
                .into_iter()
                .map(|u| u.or_else(|| judged.next()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ServiceError::Internal("a pushed change went unjudged".into()))?;
        }
        Ok(resp)
    }

    pub fn sync(&self, p: &Principal, req: SyncRequest) -> Result<SyncResponse> {
        if req.protocol > PROTOCOL_VERSION {
            return Err(invalid(
                "protocol",
                format!(
                    "{} is newer than this server's {PROTOCOL_VERSION}",
                    req.protocol
                ),
            ));
        }
        if req.protocol < OLDEST_PROTOCOL {
            return Err(invalid(
                "protocol",
                format!(
                    "{} is older than the oldest this server answers ({OLDEST_PROTOCOL})",
                    req.protocol
                ),
            ));
        }
        let device = p.device.ok_or_else(|| {
            ServiceError::Forbidden("this token has no device: enrol a device to sync".into())
        })?;
        if req.push.len() > self.limits.max_changes_per_push {
            return Err(ServiceError::TooLarge(format!(
                "push: {} changes, at most {} per batch",
                req.push.len(),
                self.limits.max_changes_per_push
            )));
        }
        let skew_ms = req.device_time_ms.map(|t| self.now_ms() - t);
        let push = self.push(p, req.push, skew_ms)?;
        let pull = self.pull(p, device, &req.pull)?.written_for(req.protocol);
        Ok(SyncResponse {
            push,
            pull,
            server_time_ms: self.now_ms(),
            epoch: Some(self.restore_epoch()?),
        })
    }

    fn push(
        &self,
        p: &Principal,
        changes: Vec<field_core::crdt::Change>,
        skew_ms: Option<i64>,
    ) -> Result<Vec<PushResult>> {
        let mut results: Vec<Option<PushResult>> = vec![None; changes.len()];
        let mut admitted = Vec::new();
        let mut admitted_at = Vec::new();
        let mut reported = std::collections::HashMap::new();
        // An actor whose counter came back with other content: everything
        // after it in the batch is from the same restored lineage.
        let mut restored = std::collections::HashSet::new();
        for (i, change) in changes.into_iter().enumerate() {
            // Only a device's own counters are compared (another actor's
            // change is refused as such by `authorize`, telling nothing).
            let own = p.device == Some(change.actor);
            let reused = own
                && (restored.contains(&change.actor)
                    || self
                        .storage
                        .held_change(change.id())?
                        .is_some_and(|held| !change.is_held_as(&held)));
            if reused {
                restored.insert(change.actor);
                results[i] = Some(PushResult {
                    actor: change.actor,
                    counter: change.counter,
                    outcome: PushOutcome::Reused,
                    code: Some(CODE_REUSED),
                    reason: Some(format!(
                        "{} is held here with other content: this device was restored from a backup; re-issue under a new actor",
                        change.id()
                    )),
                });
                continue;
            }
            match self.authorize(p, &change, &reported) {
                Ok(()) => {
                    if let field_core::crdt::Op::CaseReport(r) = &change.op {
                        reported.insert(r.case, change.actor);
                    }
                    admitted_at.push(i);
                    admitted.push(change);
                }
                Err(r) => {
                    results[i] = Some(PushResult {
                        actor: change.actor,
                        counter: change.counter,
                        outcome: PushOutcome::Refused,
                        code: Some(r.code),
                        reason: Some(r.reason),
                    })
                }
            }
        }
        let rules = self.city_config()?.config.patrol;
        let mut touched = Vec::new();
        for c in &admitted {
            touched.extend(self.days_changed_by_under(&rules, c)?);
        }
        touched.sort();
        touched.dedup();
        let receipts: Vec<crate::storage::ReportClock> = admitted
            .iter()
            .filter_map(|c| match &c.op {
                field_core::crdt::Op::CaseReport(r) => Some(crate::storage::ReportClock {
                    case: r.case,
                    skew_ms: skew_ms.unwrap_or(0),
                    backdate_ms: c.hlc.physical_ms() as i64 - r.origin.reported_at.millis(),
                }),
                _ => None,
            })
            .collect();
        let judged = self.storage.apply(admitted)?;
        self.storage.record_report_skews(&receipts)?;
        // Late data: the rollups of the days it belongs to are stale.
        self.storage.mark_dirty(&touched)?;
        for (i, (id, judgement)) in admitted_at.into_iter().zip(judged) {
            let (outcome, code, reason) = match judgement {
                Judgement::Applied => (PushOutcome::Accepted, None, None),
                Judgement::Buffered => (PushOutcome::Held, None, None),
                Judgement::Duplicate => (PushOutcome::Duplicate, None, None),
                Judgement::Reused => (
                    PushOutcome::Reused,
                    Some(CODE_REUSED),
                    Some(format!("{id} is held here with other content")),
                ),
                Judgement::Refused(why) => (PushOutcome::Refused, Some(400), Some(why)),
            };
            results[i] = Some(PushResult {
                actor: id.actor,
                counter: id.counter,
                outcome,
                code,
                reason,
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every pushed change judged"))
            .collect())
    }

    fn pull(
        &self,
        p: &Principal,
        device: field_core::model::ActorId,
        req: &PullRequest,
    ) -> Result<PullResponse> {
        let own: Vec<_> = self
            .storage
            .devices_of(&p.user.id)?
            .into_iter()
            .map(|d| d.actor)
            .collect();
        // Staff see the whole city; a collector their cells and own cases.
        let tasks_for = if p.user.role.is_staff() {
            None
        } else {
            Some(p.user.id.as_str())
        };
        let cells = if p.user.role.is_staff() {
            self.all_cells()?
        } else {
            p.user.cells.clone()
        };
        let page = self.storage.pull(
            req.cursor,
            MAX_CHANGES_PER_PULL,
            device,
            &cells,
            &own,
            tasks_for,
        )?;
        let grid = self.grid_for(p, req.grid_version.as_deref())?;
        let catalog = match self.storage.custom_catalog()? {
            Some(c) if req.catalog_version.as_deref() != Some(c.version.as_str()) => {
                Some(CatalogPayload {
                    version: c.version.clone(),
                    catalog: serde_json::from_str(&c.to_json())
                        .map_err(|e| ServiceError::Internal(e.to_string()))?,
                })
            }
            _ => None,
        };
        let assigned_cells = if grid.is_some() {
            p.user.cells.clone()
        } else {
            Vec::new()
        };
        let surveys = self
            .surveys_for(p, &cells)?
            .filter(|s| req.surveys_version.as_deref() != Some(s.version.as_str()));
        Ok(PullResponse {
            changes: page.changes,
            cursor: page.cursor,
            more: page.more,
            grid,
            catalog,
            surveys,
            assigned_cells,
        })
    }

    /// The grid a device should hold, unless it holds it already: the
    /// whole city for staff, a collector's beat and its neighbours
    /// ([`super::beat_grid`]) for a collector.
    fn grid_for(&self, p: &Principal, held: Option<&str>) -> Result<Option<GridPayload>> {
        let Some((version, geojson)) = self.storage.grid()? else {
            return Ok(None);
        };
        let share = if p.user.role.is_staff() || p.user.cells.is_empty() {
            None
        } else {
            let version = super::beat_grid::version_for(&version, &p.user.cells);
            if held == Some(version.as_str()) {
                return Ok(None);
            }
            super::beat_grid::share_of(&self.grid_boxes, &version, &geojson, &p.user.cells)
                .map(|g| (version, g))
        };
        Ok(Some(match share {
            Some((version, geojson)) => GridPayload { version, geojson },
            None if held == Some(version.as_str()) => return Ok(None),
            None => GridPayload {
                version,
                geojson: (*geojson).clone(),
            },
        }))
    }

    pub(super) fn all_cells(&self) -> Result<Vec<String>> {
        Ok(match self.storage.grid()? {
            Some((_, g)) => g["features"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .filter_map(|f| f["properties"]["code"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        })
    }

    /// Which of `hashes` the server lacks, with what it holds of partial uploads.
    pub fn photos_needed(
        &self,
        p: &Principal,
        req: PhotosNeededRequest,
    ) -> Result<PhotosNeededResponse> {
        p.device.ok_or_else(|| {
            ServiceError::Forbidden("only an enrolled device uploads photos".into())
        })?;
        if req.hashes.len() > MAX_HASHES_PER_QUESTION {
            return Err(ServiceError::TooLarge(format!(
                "hashes: {} listed, at most {MAX_HASHES_PER_QUESTION}",
                req.hashes.len()
            )));
        }
        if req.lost.len() > MAX_HASHES_PER_QUESTION {
            return Err(ServiceError::TooLarge(format!(
                "lost: {} listed, at most {MAX_HASHES_PER_QUESTION}",
                req.lost.len()
            )));
        }
        if !req.lost.is_empty() {
            self.storage.mark_photos_lost(
                &req.lost,
                p.device.unwrap_or_default(),
                self.now_ms(),
            )?;
        }
        let mut needed = Vec::new();
        let mut answers = None;
        for hash in req.hashes {
            // A photo no held change cites (removed from its case before it
            // went up) is not wanted: the device stops offering it.
            if !self.storage.blob_exists(&hash)? && self.photo_is_cited(p, &hash, &mut answers)? {
                let received = self.storage.blob_received(&hash)?;
                needed.push(PhotoNeed { hash, received });
            }
        }
        Ok(PhotosNeededResponse { needed })
    }

    pub fn upload_chunk(
        &self,
        p: &Principal,
        hash: &str,
        offset: u64,
        total: u64,
        bytes: &[u8],
    ) -> Result<ChunkAck> {
        let device = p.device.ok_or_else(|| {
            ServiceError::Forbidden("only an enrolled device uploads photos".into())
        })?;
        let hash = PhotoHash::parse("hash", hash)?;
        if offset == 0 {
            field_core::model::photo::check_header_pixels("photo", bytes)?;
        }
        if !self.photo_is_cited(p, &hash, &mut None)? {
            return Err(ServiceError::Forbidden(format!(
                "photo {hash} is cited by no case or task answer held here: push the change first"
            )));
        }
        if bytes.len() > self.limits.max_chunk_bytes {
            return Err(ServiceError::TooLarge(format!(
                "chunk of {} bytes, at most {}",
                bytes.len(),
                self.limits.max_chunk_bytes
            )));
        }
        let stripe = &self.uploads[hash.as_str().as_bytes()[0] as usize % self.uploads.len()];
        let _one_at_a_time = stripe.lock().unwrap_or_else(|p| p.into_inner());
        // Charged only for bytes at the offset held (a resent chunk is
        // answered without being stored again).
        if offset == self.storage.blob_received(&hash)?
            && !self.storage.blob_exists(&hash)?
            && !self.storage.charge_photo_bytes(
                device,
                self.now_ms().div_euclid(24 * 3600 * 1000),
                bytes.len() as u64,
                self.limits.max_photo_bytes_per_device_day,
            )?
        {
            return Err(ServiceError::TooLarge(format!(
                "this device has uploaded {} MiB of photos today, the most a device may",
                self.limits.max_photo_bytes_per_device_day >> 20
            )));
        }
        Ok(self.storage.blob_append(&hash, offset, total, bytes)?)
    }
}

impl Center {
    /// Photos are stored only for a case or a task answer that cites them.
    /// `answers` caches the photos of the caller's task answers (read once,
    /// and only if some photo is not a case's).
    fn photo_is_cited(
        &self,
        p: &Principal,
        hash: &PhotoHash,
        answers: &mut Option<std::collections::HashSet<PhotoHash>>,
    ) -> Result<bool> {
        if !self.storage.cases_citing(hash)?.is_empty() {
            return Ok(true);
        }
        if answers.is_none() {
            // A collector answers their own tasks; staff devices any.
            let to = (!p.user.role.is_staff()).then_some(p.user.id.as_str());
            *answers = Some(
                self.storage
                    .tasks(to)?
                    .into_iter()
                    .filter_map(|t| t.task.answer)
                    .flat_map(|a| a.photos)
                    .collect(),
            );
        }
        Ok(answers.as_ref().is_some_and(|a| a.contains(hash)))
    }

    /// A device continues as a new actor (restored from a backup, or
    /// re-issuing changes stamped by a wrong clock): its token moves to the
    /// new actor; the old one stays the user's, so its changes stay theirs.
    pub fn succeed_device(
        &self,
        p: &Principal,
        req: field_core::sync::protocol::SuccessorRequest,
    ) -> Result<field_core::sync::protocol::SuccessorResponse> {
        let previous = p.device.ok_or_else(|| {
            ServiceError::Forbidden("this token has no device: enrol a device first".into())
        })?;
        if previous == req.actor {
            // Announced before; the answer was lost.
            return Ok(field_core::sync::protocol::SuccessorResponse {
                actor: req.actor,
                previous,
            });
        }
        let authored = self
            .storage
            .held_change(field_core::crdt::ChangeId {
                actor: req.actor,
                counter: 1,
            })?
            .is_some();
        if self.storage.device(req.actor)?.is_some() || authored {
            return Err(invalid(
                "actor",
                "is already a device here: mint a fresh actor id",
            ));
        }
        self.storage
            .succeed_device(previous, req.actor, &p.token_hash, self.now_ms())?;
        Ok(field_core::sync::protocol::SuccessorResponse {
            actor: req.actor,
            previous,
        })
    }
}

impl From<field_core::Error> for ServiceError {
    fn from(e: field_core::Error) -> ServiceError {
        ServiceError::from(crate::storage::StorageError::Core(e))
    }
}
