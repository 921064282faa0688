//! Enrolment: a one-time code (made when staff add a user) is traded for a
//! device token bound to the device's actor id.

use field_core::sync::protocol::{EnrollRequest, EnrollResponse, UserInfo};

use super::{Center, Result, tokens};
use crate::storage::User;

/// How long an enrolment code stays valid.
pub const CODE_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

pub fn user_info(u: &User) -> UserInfo {
    UserInfo {
        id: u.id.clone(),
        name: u.name.clone(),
        role: u.role.as_str().to_string(),
        company: u.company.clone(),
        cells: u.cells.clone(),
    }
}

impl Center {
    pub fn enroll(&self, req: EnrollRequest) -> Result<EnrollResponse> {
        let token = tokens::new_token();
        let user = self.storage.redeem_enrolment(
            &tokens::hash_code(&req.code),
            req.actor,
            req.device_name.as_deref(),
            &tokens::hash(&token),
            self.now_ms(),
        )?;
        Ok(EnrollResponse {
            token,
            user: user_info(&user),
        })
    }
}

/// A new token for the first admin, written over `DIR/admin.token` (0600);
/// every other device-less token of that admin stops working.
pub fn rotate_admin_file(
    storage: &dyn crate::storage::Storage,
    dir: &std::path::Path,
) -> Result<()> {
    use crate::storage::Role;
    let admin = storage
        .users()?
        .into_iter()
        .find(|u| u.role == Role::Admin && !u.disabled)
        .ok_or_else(|| super::ServiceError::NotFound("an enabled admin".into()))?;
    let token = tokens::new_token();
    storage.reset_user_tokens(&admin.id, &tokens::hash(&token))?;
    let path = dir.join("admin.token");
    let tmp = dir.join("admin.token.new");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        writeln!(f, "{token}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| super::ServiceError::Internal(format!("writing {}: {e}", path.display())))
}

/// On a fresh data directory: an admin user and token, the token written
/// to `DIR/admin.token` (mode 0600). Returns the token when one was made.
pub fn ensure_admin(
    storage: &dyn crate::storage::Storage,
    dir: &std::path::Path,
) -> Result<Option<String>> {
    use crate::storage::Role;
    if storage.users()?.iter().any(|u| u.role == Role::Admin) {
        return Ok(None);
    }
    let admin = storage.create_user("admin", Role::Admin, None, &[])?;
    let token = tokens::new_token();
    storage.add_user_token(&tokens::hash(&token), &admin.id)?;
    let path = dir.join("admin.token");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        writeln!(f, "{token}")
    };
    write()
        .map_err(|e| super::ServiceError::Internal(format!("writing {}: {e}", path.display())))?;
    Ok(Some(token))
}
