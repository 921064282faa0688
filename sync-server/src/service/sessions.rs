//! Console sessions, kept where every instance reads them: a session opened
//! on one server process is good on any other, and survives a restart. The
//! session id (the cookie) and the bearer token it was opened with are
//! stored only as hashes; the token is re-checked on every request, so a
//! revoked or disabled account ends its sessions at once.

use super::{Center, Result, tokens};
use crate::storage::{ConsoleSession, Principal};

/// How long a console session lasts.
pub const SESSION_LIFETIME_MS: i64 = 12 * 3600 * 1000;

/// A session found: who, and the CSRF token its forms carry.
pub struct OpenSession {
    pub principal: Principal,
    pub csrf: String,
}

impl Center {
    /// Opens a session for a bearer token already checked to be staff;
    /// returns the session id for the cookie.
    pub fn open_console_session(&self, bearer: &str) -> Result<String> {
        let id = tokens::new_token();
        self.storage.open_session(&ConsoleSession {
            id_hash: tokens::hash(&id),
            token_hash: tokens::hash(bearer),
            csrf: tokens::new_token(),
            expires_ms: self.now_ms() + SESSION_LIFETIME_MS,
        })?;
        Ok(id)
    }

    /// The session with this id, if it is open and its token still staff's.
    pub fn console_session(&self, id: &str) -> Result<Option<OpenSession>> {
        let Some(s) = self.storage.session(&tokens::hash(id))? else {
            return Ok(None);
        };
        if s.expires_ms <= self.now_ms() {
            return Ok(None);
        }
        match self.storage.principal(&s.token_hash)? {
            Some(p) if p.user.role.is_staff() => Ok(Some(OpenSession {
                principal: p,
                csrf: s.csrf,
            })),
            _ => {
                self.storage.close_session(&s.id_hash)?;
                Ok(None)
            }
        }
    }

    pub fn close_console_session(&self, id: &str) -> Result<()> {
        self.storage.close_session(&tokens::hash(id))?;
        Ok(())
    }
}
