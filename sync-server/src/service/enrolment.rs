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
