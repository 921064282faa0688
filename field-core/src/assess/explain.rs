//! The records behind every figure of a report, typed: for each numerator
//! and denominator, the windows, cases, tasks, findings, attendance faults,
//! off-post stretches, violations and uncertified patrol days it counts.
//! Periods and companies concatenate their parts' lists.

use crate::assess::AttendanceFault;
use crate::model::{
    CaseId, CaseSource, CategoryCode, GapCause, LonLat, RejectReason, Status, TaskKind, Timestamp,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::red_lines::RedLine;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoveredWindows {
    pub cell: String,
    pub day: NaiveDate,
    /// Local start times of the covered windows (`08:15`).
    pub starts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UncoveredWindow {
    pub cell: String,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    pub case: CaseId,
    pub category: Option<CategoryCode>,
    pub reported_at: Option<Timestamp>,
    pub status: Vec<Status>,
    pub registered: bool,
    pub erroneous: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErroneousCase {
    pub case: CaseId,
    pub reason: Option<RejectReason>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: uuid::Uuid,
    pub kind: TaskKind,
    pub due: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub received_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    pub finding: String,
    pub source: CaseSource,
    pub category: CategoryCode,
    pub cell: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttendanceRecord {
    pub day: NaiveDate,
    pub fault: AttendanceFault,
}

/// A stretch of a patrol day's track without usable fixes, as the
/// device's recorder stated it: why coverage may be missing there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GapRecord {
    pub day: NaiveDate,
    pub from: Timestamp,
    pub to: Timestamp,
    pub minutes: i64,
    pub cause: GapCause,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffPostRecord {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub minutes: i64,
    pub points_outside: usize,
    #[serde(rename = "where")]
    pub where_: Option<LonLat>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViolationRecord {
    pub violation: String,
    pub kind: RedLine,
    pub at: Timestamp,
    pub cases: Vec<CaseId>,
    pub recorded_by: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UncertifiedDay {
    pub day: NaiveDate,
    /// The certificate held that day, if any (then it had expired).
    pub certified_on: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
}

/// Every list a report explains itself with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Explain {
    pub covered_windows: Vec<CoveredWindows>,
    pub uncovered_windows: Vec<UncoveredWindow>,
    pub cases: Vec<CaseRecord>,
    pub erroneous_cases: Vec<ErroneousCase>,
    pub on_time_tasks: Vec<TaskRecord>,
    pub late_tasks: Vec<TaskRecord>,
    pub matched_findings: Vec<FindingRecord>,
    pub missed_findings: Vec<FindingRecord>,
    pub attendance_faults: Vec<AttendanceRecord>,
    pub off_post: Vec<OffPostRecord>,
    pub violations: Vec<ViolationRecord>,
    pub uncertified_patrol_days: Vec<UncertifiedDay>,
    /// The track's gaps on patrol days, with their causes (no fix, app
    /// killed, mock location, poor accuracy).
    pub track_gaps: Vec<GapRecord>,
}

impl Explain {
    /// Appends `o`'s lists to this one's.
    pub fn extend(&mut self, o: &Explain) {
        self.covered_windows
            .extend(o.covered_windows.iter().cloned());
        self.uncovered_windows
            .extend(o.uncovered_windows.iter().cloned());
        self.cases.extend(o.cases.iter().cloned());
        self.erroneous_cases
            .extend(o.erroneous_cases.iter().cloned());
        self.on_time_tasks.extend(o.on_time_tasks.iter().cloned());
        self.late_tasks.extend(o.late_tasks.iter().cloned());
        self.matched_findings
            .extend(o.matched_findings.iter().cloned());
        self.missed_findings
            .extend(o.missed_findings.iter().cloned());
        self.attendance_faults
            .extend(o.attendance_faults.iter().cloned());
        self.off_post.extend(o.off_post.iter().cloned());
        self.violations.extend(o.violations.iter().cloned());
        self.uncertified_patrol_days
            .extend(o.uncertified_patrol_days.iter().cloned());
        self.track_gaps.extend(o.track_gaps.iter().cloned());
    }
}
