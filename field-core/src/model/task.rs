//! Tasks the center sends to a collector: verify that a reported problem
//! exists (核实), or check that a dispatched case was handled (核查). Each
//! has a deadline; the answer and when it arrived feed the timeliness rate.

use serde::{Deserialize, Serialize};

use super::{CaseId, CategoryCode, PhotoHash, Placement, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// 核实: does the reported problem exist?
    Verify,
    /// 核查: was the dispatched case really handled?
    Check,
}

/// Yes (exists / handled) or no.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskResult {
    Yes,
    No,
}

/// A task as the center assigned it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub id: uuid::Uuid,
    pub kind: TaskKind,
    /// The case to verify or check, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseId>,
    /// Where to go when no case exists yet (a citizen's report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Placement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CategoryCode>,
    /// The collector's user id and name.
    pub to_user: String,
    pub to_name: String,
    pub created_at: Timestamp,
    pub due_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A collector's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskAnswer {
    pub task: uuid::Uuid,
    pub result: TaskResult,
    pub photos: Vec<PhotoHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the collector answered, by the device's clock.
    pub answered_at: Timestamp,
}
