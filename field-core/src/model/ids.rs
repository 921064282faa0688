//! Identities minted on devices: an actor per installation, a case per report.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, invalid};

/// A device installation. A wiped device mints a new one, so CRDT dots are
/// never re-spent.
pub type ActorId = Uuid;

/// A case id, made on the device that reported it (UUID v4: no coordination).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct CaseId(pub Uuid);

impl CaseId {
    pub fn new_random() -> CaseId {
        CaseId(Uuid::new_v4())
    }

    pub fn parse(field: &str, text: &str) -> Result<CaseId> {
        Uuid::parse_str(text.trim())
            .map(CaseId)
            .map_err(|e| invalid(field, format!("`{text}` is not a case id (UUID): {e}")))
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
