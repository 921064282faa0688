//! Accounts: disable a user, revoke unused enrolment codes, rotate one's own
//! token, and the audit log that records every such action (who, when, what).

use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::{Center, Result, ServiceError, tokens};
use crate::storage::{AuditEntry, Principal, Role, User};

/// Most entries one audit read returns.
pub const MAX_AUDIT_ROWS: usize = 1000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RotatedToken {
    /// Shown once; the old token stops working now.
    pub token: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeCodesRequest {
    /// One code to revoke; every unused code of the user when absent.
    #[serde(default)]
    pub code: Option<String>,
}

impl Center {
    /// A user by id or name; staff only (a collector learns nothing).
    pub(super) fn find_user(&self, p: &Principal, id_or_name: &str) -> Result<User> {
        self.require(p, Operation::ListUsers)?;
        self.storage
            .users()?
            .into_iter()
            .find(|u| u.id == id_or_name || u.name == id_or_name)
            .ok_or_else(|| ServiceError::NotFound(format!("user {id_or_name}")))
    }

    /// Appends to the audit log as `p`.
    pub(super) fn audit(
        &self,
        p: &Principal,
        action: &str,
        target: &str,
        detail: impl Into<String>,
    ) -> Result<()> {
        let entry = AuditEntry {
            at: field_core::model::Timestamp::from_millis("at", self.now_ms())?,
            by: p.user.name.clone(),
            action: action.to_string(),
            target: target.to_string(),
            detail: detail.into(),
        };
        Ok(self.storage.audit(&entry)?)
    }

    /// Disables a user (every token, session and unused code ends) or
    /// enables them again. The last enabled admin cannot be disabled.
    pub fn set_user_disabled(&self, p: &Principal, user: &str, disabled: bool) -> Result<User> {
        self.require(p, Operation::ManageAccounts)?;
        let mut user = self.find_user(p, user)?;
        if disabled && user.role == Role::Admin {
            let admins = self
                .storage
                .users()?
                .into_iter()
                .filter(|u| u.role == Role::Admin && !u.disabled)
                .count();
            if admins <= 1 && !user.disabled {
                return Err(ServiceError::Forbidden(format!(
                    "{} is the last enabled admin: enable or add another first",
                    user.name
                )));
            }
        }
        self.storage.set_user_disabled(&user.id, disabled)?;
        if disabled {
            self.storage.revoke_codes(&user.id, None)?;
        }
        user.disabled = disabled;
        let action = if disabled {
            "disable_user"
        } else {
            "enable_user"
        };
        self.audit(p, action, &user.name, user.role.as_str())?;
        Ok(user)
    }

    /// Revokes a user's unused enrolment codes (or one of them); how many.
    pub fn revoke_codes(
        &self,
        p: &Principal,
        user: &str,
        req: RevokeCodesRequest,
    ) -> Result<usize> {
        self.require(p, Operation::ManageAccounts)?;
        let user = self.find_user(p, user)?;
        let hash = req.code.as_deref().map(tokens::hash_code);
        let n = self.storage.revoke_codes(&user.id, hash.as_deref())?;
        if req.code.is_some() && n == 0 {
            return Err(ServiceError::NotFound(format!(
                "no unused enrolment code of {} matches",
                user.name
            )));
        }
        self.audit(p, "revoke_codes", &user.name, format!("{n} code(s)"))?;
        Ok(n)
    }

    /// Replaces the caller's device-less token (the admin token, a staff
    /// member's API token): the old one stops working at once.
    pub fn rotate_token(&self, p: &Principal) -> Result<RotatedToken> {
        self.require(p, Operation::RotateOwnToken)?;
        if p.device.is_some() {
            return Err(ServiceError::Forbidden(
                "a device token is rotated by enrolling the device again".into(),
            ));
        }
        let token = tokens::new_token();
        if !self
            .storage
            .replace_user_token(&p.user.id, &p.token_hash, &tokens::hash(&token))?
        {
            return Err(ServiceError::Unauthorized(
                "the token presented is no longer valid".into(),
            ));
        }
        self.audit(p, "rotate_token", &p.user.name, "")?;
        Ok(RotatedToken { token })
    }

    pub fn audit_log(&self, p: &Principal, limit: Option<usize>) -> Result<Vec<AuditEntry>> {
        self.require(p, Operation::ReadAudit)?;
        let limit = limit.unwrap_or(200).min(MAX_AUDIT_ROWS);
        Ok(self.storage.audit_log(limit)?)
    }
}
