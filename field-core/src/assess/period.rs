//! What of a patrol day may be charged by `now`: a report charges only for
//! time that has passed. A window still open is not yet required; the
//! start-of-shift half is not absent before patrol start + grace, nor the
//! end-of-shift half before patrol end; off-post stretches run up to now.

use super::{AttendanceFault, CoverageWindow, PatrolDay};

/// The part of `day` that has passed by `now_ms`; `None` before it starts.
pub fn elapsed(day: &PatrolDay, now_ms: i64) -> Option<PatrolDay> {
    (now_ms > day.start_ms).then(|| PatrolDay {
        end_ms: day.end_ms.min(now_ms),
        ..day.clone()
    })
}

/// The windows that have ended by `now_ms`.
pub fn windows_due(windows: Vec<CoverageWindow>, now_ms: i64) -> Vec<CoverageWindow> {
    windows.into_iter().filter(|w| w.end_ms <= now_ms).collect()
}

/// The attendance faults that are faults by `now_ms` (`grace_ms` after
/// patrol start a missing start mark is an absence; a missing end mark
/// only once patrol has ended).
pub fn attendance_due(
    faults: Vec<AttendanceFault>,
    day: &PatrolDay,
    now_ms: i64,
    grace_ms: i64,
) -> Vec<AttendanceFault> {
    faults
        .into_iter()
        .filter(|f| match f {
            AttendanceFault::AbsentMorning => now_ms > day.start_ms + grace_ms,
            AttendanceFault::AbsentAfternoon => now_ms >= day.end_ms,
            AttendanceFault::Late { .. } | AttendanceFault::EarlyLeave { .. } => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> PatrolDay {
        PatrolDay {
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 10).unwrap(),
            start_ms: 1_000_000,
            end_ms: 1_000_000 + 13 * 3_600_000,
            red_minutes: 60,
            yellow_minutes: 120,
            blue_minutes: 240,
            emergency: None,
        }
    }

    #[test]
    fn nothing_is_charged_before_it_happens() {
        let d = day();
        assert!(elapsed(&d, d.start_ms).is_none());
        let mid = d.start_ms + 3_600_000 + 1;
        assert_eq!(elapsed(&d, mid).unwrap().end_ms, mid);
        assert_eq!(elapsed(&d, d.end_ms + 5).unwrap().end_ms, d.end_ms);
        let faults = vec![
            AttendanceFault::AbsentMorning,
            AttendanceFault::AbsentAfternoon,
        ];
        assert!(attendance_due(faults.clone(), &d, d.start_ms + 60_000, 300_000).is_empty());
        assert_eq!(
            attendance_due(faults.clone(), &d, mid, 300_000),
            vec![AttendanceFault::AbsentMorning]
        );
        assert_eq!(attendance_due(faults, &d, d.end_ms, 300_000).len(), 2);
        let w = |s: i64, e: i64| CoverageWindow {
            cell: "c".into(),
            start_ms: s,
            end_ms: e,
            covered: false,
            first_seen_ms: None,
        };
        let due = windows_due(vec![w(0, 10), w(10, 20), w(20, 30)], 20);
        assert_eq!(due.len(), 2);
    }
}
