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
    CatalogPayload, ChunkAck, GridPayload, MAX_CHANGES_PER_PULL, PROTOCOL_VERSION, PhotoNeed,
    PhotosNeededRequest, PhotosNeededResponse, PullRequest, PullResponse, PushOutcome, PushResult,
    SyncRequest, SyncResponse,
};

use super::{Center, Result, ServiceError, invalid};
use crate::storage::Principal;

/// Most hashes one "which photos do you need" question may list.
pub const MAX_HASHES_PER_QUESTION: usize = 5000;

impl Center {
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
        let push = self.push(p, req.push)?;
        let pull = self.pull(p, device, &req.pull)?;
        Ok(SyncResponse { push, pull })
    }

    fn push(
        &self,
        p: &Principal,
        changes: Vec<field_core::crdt::Change>,
    ) -> Result<Vec<PushResult>> {
        let mut results: Vec<Option<PushResult>> = vec![None; changes.len()];
        let mut admitted = Vec::new();
        let mut admitted_at = Vec::new();
        let mut reported = std::collections::HashMap::new();
        for (i, change) in changes.into_iter().enumerate() {
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
        let mut touched: Vec<chrono::NaiveDate> = admitted
            .iter()
            .flat_map(|c| Center::days_touched(&rules, c))
            .collect();
        touched.sort();
        touched.dedup();
        let judged = self.storage.apply(admitted)?;
        // Late data: the rollups of the days it belongs to are stale.
        self.storage.mark_dirty(&touched)?;
        for (i, (id, judgement)) in admitted_at.into_iter().zip(judged) {
            let (outcome, code, reason) = match judgement {
                Judgement::Applied => (PushOutcome::Accepted, None, None),
                Judgement::Buffered => (PushOutcome::Held, None, None),
                Judgement::Duplicate => (PushOutcome::Duplicate, None, None),
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
        let grid = match self.storage.grid()? {
            Some((version, geojson)) if req.grid_version.as_deref() != Some(version.as_str()) => {
                Some(GridPayload { version, geojson })
            }
            _ => None,
        };
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
        let mut needed = Vec::new();
        for hash in req.hashes {
            if !self.storage.blob_exists(&hash)? {
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
        p.device.ok_or_else(|| {
            ServiceError::Forbidden("only an enrolled device uploads photos".into())
        })?;
        let hash = PhotoHash::parse("hash", hash)?;
        if bytes.len() > self.limits.max_chunk_bytes {
            return Err(ServiceError::TooLarge(format!(
                "chunk of {} bytes, at most {}",
                bytes.len(),
                self.limits.max_chunk_bytes
            )));
        }
        Ok(self.storage.blob_append(&hash, offset, total, bytes)?)
    }
}

impl From<field_core::Error> for ServiceError {
    fn from(e: field_core::Error) -> ServiceError {
        ServiceError::from(crate::storage::StorageError::Core(e))
    }
}
