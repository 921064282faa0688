//! What center staff do over the API: add users (with an enrolment code),
//! list them, revoke devices, load the grid and catalog, look at cases.

use field_core::model::{ActorId, CaseId, Catalog, Timestamp};
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::enrolment::{CODE_LIFETIME_MS, user_info};
use super::{Center, Result, ServiceError, invalid, tokens};
use crate::storage::{Device, Principal, Role};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub name: String,
    #[serde(default = "collector")]
    pub role: Role,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub cells: Vec<String>,
    /// A collector's first assigned day (default today in the city's zone):
    /// no day before it is assessed.
    #[serde(default)]
    pub from: Option<chrono::NaiveDate>,
}

fn collector() -> Role {
    Role::Collector
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewUserResponse {
    pub user: field_core::sync::protocol::UserInfo,
    /// Shown once: give it to the person to run `field enroll`.
    pub enrolment_code: String,
    pub code_expires_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRow {
    #[serde(flatten)]
    pub user: field_core::sync::protocol::UserInfo,
    pub disabled: bool,
    /// Unused, unexpired enrolment codes.
    pub pending_codes: usize,
    pub devices: Vec<Device>,
}

/// How long a grid import may spend checking that the cells tile.
pub const GRID_CHECK_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

impl Center {
    pub fn add_user(&self, p: &Principal, req: NewUserRequest) -> Result<NewUserResponse> {
        self.require(p, Operation::enrol(req.role))?;
        if let Some((_, grid)) = self.storage.grid()? {
            let known: Vec<&str> = grid["features"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .filter_map(|f| f["properties"]["code"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(bad) = req.cells.iter().find(|c| !known.contains(&c.as_str())) {
                return Err(invalid(
                    "cells",
                    format!("{bad} is not a cell of the imported grid"),
                ));
            }
        }
        let user =
            self.storage
                .create_user(&req.name, req.role, req.company.as_deref(), &req.cells)?;
        if user.role == Role::Collector && !user.cells.is_empty() {
            let from = match req.from {
                Some(d) => d,
                None => self.today()?,
            };
            self.storage.set_assignment(&user.id, &user.cells, from)?;
        }
        let code = tokens::new_enrolment_code();
        let expires = self.now_ms() + CODE_LIFETIME_MS;
        self.storage
            .add_enrolment(&tokens::hash_code(&code), &user.id, expires)?;
        self.audit(p, "add_user", &user.name, user.role.as_str())?;
        Ok(NewUserResponse {
            user: user_info(&user),
            enrolment_code: code,
            code_expires_at: Timestamp::from_millis("expires", expires)?,
        })
    }

    /// A fresh one-time code for an existing user (a second handset, a
    /// replaced one).
    pub fn new_code(&self, p: &Principal, user_id: &str) -> Result<NewUserResponse> {
        let user = self.find_user(p, user_id)?;
        self.require(p, Operation::enrol(user.role))?;
        let code = tokens::new_enrolment_code();
        let expires = self.now_ms() + CODE_LIFETIME_MS;
        self.storage
            .add_enrolment(&tokens::hash_code(&code), &user.id, expires)?;
        self.audit(p, "mint_code", &user.name, user.role.as_str())?;
        Ok(NewUserResponse {
            user: user_info(&user),
            enrolment_code: code,
            code_expires_at: Timestamp::from_millis("expires", expires)?,
        })
    }

    pub fn users(&self, p: &Principal, role: Option<Role>) -> Result<Vec<UserRow>> {
        self.require(p, Operation::ListUsers)?;
        let mut out = Vec::new();
        for u in self.storage.users()? {
            if role.is_some_and(|r| r != u.role) {
                continue;
            }
            out.push(UserRow {
                user: user_info(&u),
                disabled: u.disabled,
                pending_codes: self.storage.pending_codes(&u.id, self.now_ms())?,
                devices: self.storage.devices_of(&u.id)?,
            });
        }
        Ok(out)
    }

    pub fn revoke_device(&self, p: &Principal, actor: ActorId) -> Result<()> {
        self.require(p, Operation::ManageAccounts)?;
        if self.storage.revoke_device(actor)? {
            self.audit(p, "revoke_device", &actor.to_string(), "")
        } else {
            Err(ServiceError::NotFound(format!("device {actor}")))
        }
    }

    pub fn import_grid(&self, p: &Principal, geojson: &str) -> Result<serde_json::Value> {
        self.require(p, Operation::ImportReference)?;
        let cells = field_core::import::parse_grid(geojson, &Default::default())?;
        let problems = field_core::geo::tiling::check_tiling_within(
            &cells,
            field_core::geo::tiling::DEFAULT_TOLERANCE_M2,
            Some(GRID_CHECK_BUDGET),
        )
        .map_err(|e| invalid("grid", e.to_string()))?;
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(invalid(
                "grid",
                format!("does not tile: {}", list.join("; ")),
            ));
        }
        let n = cells.len();
        let version = self.storage.set_grid(cells)?;
        self.audit(p, "import_grid", &version, format!("{n} cells"))?;
        Ok(serde_json::json!({ "cells": n, "version": version }))
    }

    pub fn import_catalog(&self, p: &Principal, json: &str) -> Result<serde_json::Value> {
        self.require(p, Operation::ImportReference)?;
        let catalog = Catalog::from_json(json)?;
        let (version, n) = (catalog.version.clone(), catalog.len());
        self.storage.set_catalog(catalog)?;
        self.audit(p, "import_catalog", &version, format!("{n} subclasses"))?;
        Ok(serde_json::json!({ "version": version, "subclasses": n }))
    }

    pub fn case_show(&self, p: &Principal, id: CaseId) -> Result<serde_json::Value> {
        self.require(p, Operation::ReadCases)?;
        let view = self
            .storage
            .case(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("case {id}")))?;
        let catalog = self.storage.catalog()?;
        let row = self.row(&view, &catalog)?;
        let history = self.storage.case_history(id)?;
        Ok(serde_json::json!({ "case": view, "summary": row, "history": history }))
    }

    pub fn digest(&self, p: &Principal) -> Result<field_core::store::DigestReport> {
        self.require(p, Operation::ReadCases)?;
        Ok(self.storage.digest()?)
    }
}

/// A photo to serve: its bytes and content type.
pub struct PhotoFile {
    pub mime: String,
    pub bytes: Vec<u8>,
}

impl Center {
    /// A case photo (or its thumbnail), only for those allowed to see a case
    /// or task that cites it: staff, a collector whose cells hold the case,
    /// or the collector who took it.
    pub fn photo(&self, p: &Principal, hash: &str, thumb: bool) -> Result<PhotoFile> {
        let hash = field_core::model::PhotoHash::parse("hash", hash)?;
        if !p.user.role.is_staff() && !self.may_see_photo(p, &hash)? {
            return Err(ServiceError::Forbidden(format!(
                "photo {hash} belongs to no case or task you can see"
            )));
        }
        if !self.storage.blob_exists(&hash)? {
            return Err(ServiceError::NotFound(format!("photo {hash}")));
        }
        if thumb {
            return Ok(PhotoFile {
                mime: "image/jpeg".into(),
                bytes: self.storage.blob_thumbnail(&hash)?,
            });
        }
        let bytes = self.storage.blob_read(&hash)?;
        let mime = field_core::model::photo::inspect_photo("photo", &bytes)?.mime;
        Ok(PhotoFile { mime, bytes })
    }

    fn may_see_photo(&self, p: &Principal, hash: &field_core::model::PhotoHash) -> Result<bool> {
        let own: Vec<ActorId> = self
            .storage
            .devices_of(&p.user.id)?
            .into_iter()
            .map(|d| d.actor)
            .collect();
        for id in self.storage.cases_citing(hash)? {
            let Some(v) = self.storage.case(id)? else {
                continue;
            };
            let in_cells = v
                .placement
                .as_ref()
                .and_then(|pl| pl.cell.as_ref())
                .is_some_and(|c| p.user.cells.iter().any(|x| x == c.as_str()));
            let mine = v.origin.as_ref().is_some_and(|o| own.contains(&o.reporter));
            if in_cells || mine {
                return Ok(true);
            }
        }
        Ok(self.storage.tasks(Some(&p.user.id))?.iter().any(|t| {
            t.task
                .answer
                .as_ref()
                .is_some_and(|a| a.photos.contains(hash))
        }))
    }
}
