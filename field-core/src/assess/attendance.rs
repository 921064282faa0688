//! Attendance from the shift's test cases: a start later than the patrol
//! start plus the grace is late; an end earlier than the patrol end minus
//! the grace is an early leave; a missing one is absent for that half.

use serde::{Deserialize, Serialize};

use super::rules::{AssessmentRules, PatrolDay};
use crate::model::{ShiftKind, ShiftMark};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum AttendanceFault {
    Late { start_ms: i64, minutes_late: i64 },
    EarlyLeave { end_ms: i64, minutes_early: i64 },
    AbsentMorning,
    AbsentAfternoon,
}

/// Faults of one day from that day's shift marks (the earliest start and
/// the latest end count).
pub fn attendance(
    day: &PatrolDay,
    marks: &[ShiftMark],
    rules: &AssessmentRules,
) -> Vec<AttendanceFault> {
    let grace = rules.attendance_grace_minutes * 60_000;
    let in_day = |m: &&ShiftMark| {
        m.at.millis() >= day.start_ms - 12 * 3_600_000
            && m.at.millis() <= day.end_ms + 12 * 3_600_000
    };
    let start = marks
        .iter()
        .filter(in_day)
        .filter(|m| m.kind == ShiftKind::Start)
        .map(|m| m.at.millis())
        .min();
    let end = marks
        .iter()
        .filter(in_day)
        .filter(|m| m.kind == ShiftKind::End)
        .map(|m| m.at.millis())
        .max();
    let mut faults = Vec::new();
    match start {
        None => faults.push(AttendanceFault::AbsentMorning),
        Some(s) if s > day.start_ms + grace => faults.push(AttendanceFault::Late {
            start_ms: s,
            minutes_late: (s - day.start_ms) / 60_000,
        }),
        Some(_) => {}
    }
    match end {
        None => faults.push(AttendanceFault::AbsentAfternoon),
        Some(e) if e < day.end_ms - grace => faults.push(AttendanceFault::EarlyLeave {
            end_ms: e,
            minutes_early: (day.end_ms - e) / 60_000,
        }),
        Some(_) => {}
    }
    faults
}
