//! Citizens' reports through Open311 GeoReport v2: the city's catalog as
//! services, requests taken in from channels (a hotline's app, a
//! WeChat mini-program), each with its own revocable, rate-limited API key.
//! A citizen's request becomes a case of source `citizen` (its status is the
//! case's lifecycle), an external finding (so the miss rate counts it) and,
//! where the channel is set up for it, a verification task for the
//! collector of that cell.

use field_core::crdt::CaseReport;
use field_core::model::limits::{MAX_NOTE_BYTES, bounded, bounded_opt};
use field_core::model::{
    ActorId, CaseFields, CaseId, CaseOrigin, CaseSource, CategoryCode, ExternalFinding, LonLat,
    Placement, Status, TaskKind, TaskSpec, Timestamp,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::authorize::Operation;
use super::{Center, Result, ServiceError, invalid};
use crate::storage::{Principal, Role};

/// Requests one channel may send per hour unless it says otherwise.
pub const DEFAULT_REQUESTS_PER_HOUR: u32 = 600;
const HOUR_MS: i64 = 3_600_000;
/// Bounds of what a citizen sends.
pub const MAX_MEDIA_URL_BYTES: usize = 2048;
pub const MAX_ADDRESS_BYTES: usize = 500;
/// Most requests one listing answers (GeoReport's default window is 90 days).
pub const MAX_LISTED_REQUESTS: usize = 1000;

/// A channel citizens' requests come through, and what it may do.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub revoked: bool,
    /// The channel's own actor: the reporter of the cases it brings in.
    pub actor: ActorId,
    pub per_hour: u32,
    /// When set, each request also sends the collector of its cell a
    /// verification task due this many hours later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_within_hours: Option<u32>,
}

/// A citizen's request as the center keeps it (no personal data: GeoReport's
/// name, e-mail and phone fields are not stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CitizenRequest {
    /// `service_request_id`.
    pub id: String,
    /// Given back at once; `tokens/{token}` answers the request's id.
    pub token: String,
    pub channel: String,
    pub service_code: String,
    pub description: String,
    pub pos: LonLat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
    pub requested_at: Timestamp,
    pub case: CaseId,
    pub finding: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<uuid::Uuid>,
}

/// What a channel posts (GeoReport v2 `POST requests`), as read from its form.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NewRequest {
    #[serde(default)]
    pub api_key: String,
    #[serde(default)]
    pub service_code: String,
    #[serde(default)]
    pub lat: Option<String>,
    #[serde(default)]
    pub long: Option<String>,
    #[serde(default)]
    pub address_string: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub media_url: Option<String>,
}

/// A channel as it is opened: the key is shown once.
#[derive(Clone, Debug, Serialize)]
pub struct OpenedChannel {
    pub channel: Channel,
    pub api_key: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub name: String,
    #[serde(default)]
    pub per_hour: Option<u32>,
    #[serde(default)]
    pub verify_within_hours: Option<u32>,
}

/// A request as GeoReport v2 lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RequestStatus {
    pub service_request_id: String,
    /// `open` or `closed`.
    pub status: String,
    /// Where the case is in the center's workflow, in words.
    pub status_notes: String,
    pub service_name: String,
    pub service_code: String,
    pub description: String,
    pub agency_responsible: String,
    pub requested_datetime: String,
    pub updated_datetime: String,
    pub address: String,
    pub lat: f64,
    pub long: f64,
    pub media_url: String,
}

fn key_hash(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(hex::encode(b))
}

/// A cell code the grid itself answered (checked when the grid was imported).
fn held_cell(code: &str) -> Result<field_core::model::CellCode> {
    serde_json::from_value(serde_json::Value::String(code.to_string()))
        .map_err(|e| ServiceError::Internal(format!("cell {code}: {e}")))
}

fn coordinate(field: &str, text: Option<&str>) -> Result<f64> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    let text = text.ok_or_else(|| invalid(field, "required: the request's position (WGS84)"))?;
    bounded(field, text, 32)?;
    text.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| invalid(field, format!("`{text}` is not a number")))
}

impl Center {
    /// Opens a channel; its API key is shown once and kept only as a hash.
    pub fn open_channel(&self, p: &Principal, req: NewChannel) -> Result<OpenedChannel> {
        self.require(p, Operation::ManageChannels)?;
        let name = req.name.trim().to_string();
        bounded("name", &name, 100)?;
        if name.is_empty() {
            return Err(invalid("name", "a channel needs a name"));
        }
        if self.storage.channels()?.iter().any(|c| c.name == name) {
            return Err(invalid("name", format!("a channel `{name}` exists")));
        }
        let per_hour = req.per_hour.unwrap_or(DEFAULT_REQUESTS_PER_HOUR);
        if per_hour == 0 || per_hour > 100_000 {
            return Err(invalid("per_hour", "between 1 and 100000 requests an hour"));
        }
        if req
            .verify_within_hours
            .is_some_and(|h| h == 0 || h > 24 * 30)
        {
            return Err(invalid("verify_within_hours", "between 1 and 720 hours"));
        }
        let api_key = format!("o311_{}", random_hex(24)?);
        let channel = Channel {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            created_at: Timestamp::from_millis("now", self.now())?,
            revoked: false,
            actor: uuid::Uuid::new_v4(),
            per_hour,
            verify_within_hours: req.verify_within_hours,
        };
        self.storage.put_channel(&channel, &key_hash(&api_key))?;
        self.audit(p, "open_channel", &channel.name, "")?;
        Ok(OpenedChannel { channel, api_key })
    }

    pub fn channels(&self, p: &Principal) -> Result<Vec<Channel>> {
        self.require(p, Operation::ManageChannels)?;
        Ok(self.storage.channels()?)
    }

    /// Revokes a channel's key: its next request is refused.
    pub fn revoke_channel(&self, p: &Principal, id_or_name: &str) -> Result<Channel> {
        self.require(p, Operation::ManageChannels)?;
        let mut c = self
            .storage
            .channels()?
            .into_iter()
            .find(|c| c.id == id_or_name || c.name == id_or_name)
            .ok_or_else(|| ServiceError::NotFound(format!("channel {id_or_name}")))?;
        c.revoked = true;
        // The key hash is kept (the row is updated by id, not re-keyed).
        self.storage.put_channel(&c, "")?;
        self.audit(p, "revoke_channel", &c.name, "")?;
        Ok(c)
    }

    /// The channel a key opens, refusing unknown and revoked keys and a
    /// channel past its hourly allowance.
    fn channel_for(&self, api_key: &str) -> Result<Channel> {
        let key = api_key.trim();
        if key.is_empty() || key.len() > 200 {
            return Err(ServiceError::Unauthorized(
                "api_key: a channel's API key is required".into(),
            ));
        }
        let c = self
            .storage
            .channel_by_key(&key_hash(key))?
            .ok_or_else(|| ServiceError::Unauthorized("api_key: unknown key".into()))?;
        if c.revoked {
            return Err(ServiceError::Forbidden(format!(
                "api_key: the channel `{}` was revoked",
                c.name
            )));
        }
        let now = self.now();
        let window = now - now.rem_euclid(HOUR_MS);
        if self.storage.charge_channel(&c.id, window)? > u64::from(c.per_hour) {
            return Err(ServiceError::RateLimited {
                reason: format!(
                    "api_key: the channel `{}` sent its {} requests this hour",
                    c.name, c.per_hour
                ),
                retry_after_s: ((window + HOUR_MS - now) / 1000).max(1) as u64,
            });
        }
        Ok(c)
    }

    /// Takes in a citizen's request: a case of source `citizen`, a finding
    /// for the miss rate, and maybe a verification task.
    pub fn submit_request(&self, req: NewRequest) -> Result<CitizenRequest> {
        let channel = self.channel_for(&req.api_key)?;
        let code = req.service_code.trim();
        bounded("service_code", code, 32)?;
        let catalog = self.storage.catalog()?;
        let entry = catalog
            .get(&CategoryCode::parse("service_code", code)?)
            .ok_or_else(|| invalid("service_code", format!("`{code}` is not a service here")))?
            .clone();
        let lat = coordinate("lat", req.lat.as_deref())?;
        let lon = coordinate("long", req.long.as_deref())?;
        let pos = LonLat::new(lon, lat).map_err(|e| invalid("lat", e.to_string()))?;
        let description = req.description.unwrap_or_default().trim().to_string();
        bounded("description", &description, MAX_NOTE_BYTES)?;
        if description.is_empty() {
            return Err(invalid("description", "say what is wrong"));
        }
        let address = req
            .address_string
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty());
        bounded_opt("address_string", address.as_deref(), MAX_ADDRESS_BYTES)?;
        let media_url = req
            .media_url
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty());
        bounded_opt("media_url", media_url.as_deref(), MAX_MEDIA_URL_BYTES)?;
        if let Some(m) = &media_url
            && !(m.starts_with("https://") || m.starts_with("http://"))
        {
            return Err(invalid("media_url", "an http(s) URL"));
        }
        let cell = self.storage.locate_cell(pos)?.ok_or_else(|| {
            invalid(
                "lat",
                "the position is outside every cell of the city's grid",
            )
        })?;
        let now = Timestamp::from_millis("now", self.now())?;
        let case = CaseId::new_random();
        self.storage.record_case(
            channel.actor,
            CaseReport {
                case,
                origin: CaseOrigin {
                    reporter: channel.actor,
                    collector: channel.name.clone(),
                    source: CaseSource::Citizen,
                    reported_at: now,
                    survey: None,
                },
                fields: CaseFields {
                    description: Some(description.clone()),
                    category: Some(entry.code.clone()),
                    placement: Some(Placement {
                        pos,
                        cell: Some(held_cell(&cell)?),
                    }),
                },
                photos: Vec::new(),
                photo_dot: 1,
            },
        )?;
        let finding = ExternalFinding {
            id: uuid::Uuid::new_v4().to_string(),
            source: CaseSource::Citizen,
            category: entry.code.clone(),
            pos,
            at: now,
            note: Some(format!("{} · {}", channel.name, case)),
        };
        self.storage.add_finding(&finding)?;
        self.stale_at(&[now.millis()])?;
        let task = match channel.verify_within_hours {
            Some(hours) => {
                self.verification_task(&channel, case, pos, &cell, &entry.code, now, hours)?
            }
            None => None,
        };
        let request = CitizenRequest {
            id: format!("{}", case),
            token: random_hex(16)?,
            channel: channel.id.clone(),
            service_code: entry.code.to_string(),
            description,
            pos,
            address,
            media_url,
            requested_at: now,
            case,
            finding: finding.id,
            task,
        };
        self.storage.put_request(&request)?;
        metrics::counter!("field_open311_requests_total").increment(1);
        Ok(request)
    }

    /// A verification task for the collector patrolling `cell` today, if any.
    #[allow(clippy::too_many_arguments)]
    fn verification_task(
        &self,
        channel: &Channel,
        case: CaseId,
        pos: LonLat,
        cell: &str,
        category: &CategoryCode,
        now: Timestamp,
        hours: u32,
    ) -> Result<Option<uuid::Uuid>> {
        let today = self.today()?;
        let mut collector = None;
        for u in self.storage.users()? {
            if u.role != Role::Collector || u.disabled {
                continue;
            }
            let assignments = self.storage.assignments(&u.id)?;
            if super::assignments::cells_in_force(&assignments, &u.cells, today)
                .iter()
                .any(|c| c == cell)
            {
                collector = Some(u);
                break;
            }
        }
        let Some(u) = collector else {
            return Ok(None);
        };
        let spec = TaskSpec {
            id: uuid::Uuid::new_v4(),
            kind: TaskKind::Verify,
            case: Some(case),
            place: Some(Placement {
                pos,
                cell: Some(held_cell(cell)?),
            }),
            category: Some(category.clone()),
            to_user: u.id.clone(),
            to_name: u.name.clone(),
            created_at: now,
            due_at: Timestamp::from_millis("due", now.millis() + i64::from(hours) * HOUR_MS)?,
            note: Some(format!("{}: citizen's report", channel.name)),
        };
        let id = spec.id;
        self.storage.assign_task(channel.actor, spec)?;
        self.stale_at(&[now.millis()])?;
        Ok(Some(id))
    }

    /// A request as GeoReport lists it: its case's status in words of `lang`.
    pub fn request_status(
        &self,
        r: &CitizenRequest,
        lang: field_i18n::Lang,
    ) -> Result<RequestStatus> {
        let catalog = self.storage.catalog()?;
        let view = self.storage.case(r.case)?;
        let statuses = view.as_ref().map(|v| v.statuses()).unwrap_or_default();
        let closed = statuses
            .iter()
            .any(|s| matches!(s, Status::Closed | Status::Rejected));
        let notes = statuses
            .iter()
            .map(|s| lang.t(&format!("status-{}", s.as_str())))
            .collect::<Vec<_>>()
            .join(" / ");
        let history = self.storage.case_history(r.case)?;
        let updated = history.last().map(|h| h.at).unwrap_or(r.requested_at);
        let name = CategoryCode::parse("service_code", &r.service_code)
            .ok()
            .and_then(|c| catalog.get(&c).cloned())
            .map(|e| match lang {
                field_i18n::Lang::Zh => e.name_zh,
                field_i18n::Lang::En => e.name_en,
            })
            .unwrap_or_default();
        // The department it was last dispatched to (the status now may be
        // a later one that names none).
        let department = view
            .as_ref()
            .and_then(|v| v.status.iter().rev().find_map(|s| s.department.clone()))
            .or_else(|| {
                history.iter().rev().find_map(|h| {
                    // The op as the history shows it: the decision's fields,
                    // at the top or under its kind.
                    let op = &h.op;
                    op.get("department")
                        .or_else(|| op.as_object()?.values().find_map(|v| v.get("department")))
                        .and_then(|d| d.as_str())
                        .map(String::from)
                })
            })
            .unwrap_or_default();
        Ok(RequestStatus {
            service_request_id: r.id.clone(),
            status: if closed { "closed" } else { "open" }.into(),
            status_notes: notes,
            service_name: name,
            service_code: r.service_code.clone(),
            description: r.description.clone(),
            agency_responsible: department,
            requested_datetime: r.requested_at.to_string(),
            updated_datetime: updated.to_string(),
            address: r.address.clone().unwrap_or_default(),
            lat: r.pos.lat(),
            long: r.pos.lon(),
            media_url: r.media_url.clone().unwrap_or_default(),
        })
    }

    pub fn citizen_request(&self, id: &str) -> Result<CitizenRequest> {
        bounded("service_request_id", id, 64)?;
        self.storage
            .request(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("request {id}")))
    }

    pub fn citizen_request_by_token(&self, token: &str) -> Result<CitizenRequest> {
        bounded("token", token, 64)?;
        self.storage
            .request_by_token(token)?
            .ok_or_else(|| ServiceError::NotFound(format!("token {token}")))
    }

    /// Requests made in `[from, to)` (at most 90 days, as GeoReport says),
    /// at most [`MAX_LISTED_REQUESTS`].
    pub fn citizen_requests(&self, from_ms: i64, to_ms: i64) -> Result<Vec<CitizenRequest>> {
        if to_ms <= from_ms || to_ms - from_ms > 90 * 24 * HOUR_MS {
            return Err(invalid(
                "start_date",
                "a range of at most 90 days, start before end",
            ));
        }
        Ok(self.storage.requests(from_ms, to_ms, MAX_LISTED_REQUESTS)?)
    }

    /// Every external finding, oldest first (the miss rate's inputs).
    pub fn findings(&self, p: &Principal) -> Result<Vec<ExternalFinding>> {
        self.require(p, Operation::ReadCases)?;
        let mut all = self.storage.findings()?;
        all.sort_by_key(|f| f.at);
        Ok(all)
    }

    /// The city's catalog as Open311 services: (code, Chinese name,
    /// English name, major class, family).
    pub fn services(&self) -> Result<Vec<field_core::model::CatalogEntry>> {
        Ok(self.storage.catalog()?.entries().cloned().collect())
    }
}
