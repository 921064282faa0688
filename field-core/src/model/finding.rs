//! External findings: problems found by someone other than the collector
//! (center checks, citizens, industry, media, leaders). The miss rate asks
//! whether the collector had reported them first.

use serde::{Deserialize, Serialize};

use super::{CaseSource, CategoryCode, LonLat, Timestamp};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalFinding {
    pub id: String,
    /// `center_check`, `citizen`, `industry`, `media` or `leader`.
    pub source: CaseSource,
    pub category: CategoryCode,
    pub pos: LonLat,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
