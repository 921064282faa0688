//! The case (案卷) and its lifecycle, as DOMAIN.md states them.

use serde::{Deserialize, Serialize};

use super::{ActorId, CategoryCode, CellCode, LonLat, PhotoHash, Timestamp};
use crate::error::{Result, invalid};

/// How a case arose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseSource {
    Collector,
    QuickFix,
    Test,
    Survey,
    CenterCheck,
    Citizen,
    Industry,
    Media,
    Leader,
}

/// Where a case is in the center's workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Reported,
    Registered,
    Rejected,
    Dispatched,
    Handled,
    Closed,
}

impl Status {
    /// Every status, in workflow order.
    pub const ALL: [Status; 6] = [
        Status::Reported,
        Status::Registered,
        Status::Rejected,
        Status::Dispatched,
        Status::Handled,
        Status::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Reported => "reported",
            Status::Registered => "registered",
            Status::Rejected => "rejected",
            Status::Dispatched => "dispatched",
            Status::Handled => "handled",
            Status::Closed => "closed",
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<Status> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
            invalid(
                field,
                format!("`{text}` is not a status (reported, registered, rejected, dispatched, handled, closed)"),
            )
        })
    }

    /// The lifecycle: reported → registered | rejected; registered →
    /// dispatched; dispatched → handled; handled → closed | dispatched
    /// (rework). A quick fix skips dispatch: reported → closed (approved) or
    /// rejected.
    pub fn may_become(self, to: Status, quick_fix: bool) -> bool {
        use Status::*;
        match (self, to) {
            (Reported, Registered) => !quick_fix,
            (Reported, Closed) => quick_fix,
            (Reported, Rejected) => true,
            (Registered, Dispatched) => !quick_fix,
            (Dispatched, Handled) => true,
            (Handled, Closed) | (Handled, Dispatched) => true,
            _ => false,
        }
    }
}

/// Why a case was rejected. All but `out_of_scope` count against the
/// collector by default (configurable in the assessment).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "text")]
pub enum RejectReason {
    WrongCategory,
    WrongLocation,
    Duplicate,
    FalseReport,
    OutOfScope,
    BadPhoto,
    Other(String),
}

/// What never changes after a report: who, when, how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseOrigin {
    pub reporter: ActorId,
    pub collector: String,
    pub source: CaseSource,
    pub reported_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<String>,
}

impl CaseOrigin {
    pub fn is_quick_fix(&self) -> bool {
        self.source == CaseSource::QuickFix
    }
}

/// Where the problem is: the position and the cell the device resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub pos: LonLat,
    pub cell: Option<CellCode>,
}

/// The editable scalar fields of a case; each is last-writer-wins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CategoryCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

impl CaseFields {
    pub fn is_empty(&self) -> bool {
        self.description.is_none() && self.category.is_none() && self.placement.is_none()
    }
}

/// Before or after the collector's quick fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoRole {
    Before,
    After,
}

/// A member of a case's photo set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CasePhoto {
    pub hash: PhotoHash,
    pub role: PhotoRole,
}

/// One value of the status register: the decision and who made it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusEntry {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    pub by: ActorId,
    pub at: Timestamp,
}

/// Checks a description at the edge.
pub fn check_description(field: &str, text: &str) -> Result<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(invalid(field, "is empty: say what the problem is"));
    }
    if t.chars().count() > 2000 {
        return Err(invalid(field, "is over 2000 characters"));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_follows_domain() {
        use Status::*;
        assert!(Reported.may_become(Registered, false));
        assert!(!Reported.may_become(Registered, true));
        assert!(Reported.may_become(Closed, true));
        assert!(!Reported.may_become(Closed, false));
        assert!(Handled.may_become(Dispatched, false));
        assert!(!Rejected.may_become(Registered, false));
        assert!(!Closed.may_become(Reported, false));
        assert!(!Registered.may_become(Handled, false));
    }

    #[test]
    fn reject_reason_wire_form() {
        let r = serde_json::to_string(&RejectReason::Other("blurred".into())).unwrap();
        assert_eq!(r, r#"{"reason":"other","text":"blurred"}"#);
        let d: RejectReason = serde_json::from_str(r#"{"reason":"duplicate"}"#).unwrap();
        assert_eq!(d, RejectReason::Duplicate);
    }
}
