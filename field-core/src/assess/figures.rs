//! Where a collector's figures for some days are computed: a pure
//! function of what was collected for them ([`Collected`]: their devices,
//! assignments, track points, tasks, the instant of the run) and the run's
//! inputs ([`Inputs`]: configuration, grid, cases, findings, shift marks,
//! catalog, violations, certificates), to a typed [`Report`] with the
//! records behind every number ([`Explain`]). No storage, no clock.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::certification::{Certification, standing};
use super::config::CityConfig;
use super::explain::{
    AttendanceRecord, CaseRecord, CoveredWindows, ErroneousCase, Explain, FindingRecord, GapRecord,
    OffPostRecord, TaskRecord, UncertifiedDay, UncoveredWindow, ViolationRecord,
};
use super::red_lines::{Violation, contract_year_start};
use super::report::{Rate, Report, finish};
use super::{attendance, coverage_of, locate, off_post_of};
use crate::crdt::CaseView;
use crate::error::Result;
use crate::geo::CellIndex;
use crate::model::{
    ActorId, CaseSource, Catalog, Cell, ExternalFinding, RejectReason, ShiftMark, Status, TaskKind,
    Timestamp, TrackGap, TrackPoint,
};
use crate::store::TaskRow;

/// Everything a report reads that does not depend on the collector or the
/// day, read once per report or nightly run.
pub struct Inputs {
    pub cfg: CityConfig,
    pub grid: Vec<Cell>,
    pub cases: Vec<CaseView>,
    pub findings: Vec<ExternalFinding>,
    pub marks: Vec<(ActorId, ShiftMark)>,
    /// The recorders' gaps, with their devices.
    pub gaps: Vec<(ActorId, TrackGap)>,
    pub catalog: Catalog,
    /// Red-line violations in force (revoked ones left out).
    pub violations: Vec<Violation>,
    /// Each collector's certification standing, by user id.
    pub certificates: HashMap<String, Certification>,
}

/// One collector's inputs to the figures, loaded before any is computed.
pub struct Collected {
    pub actors: Vec<ActorId>,
    pub assignments: Vec<(NaiveDate, Vec<String>)>,
    pub points: BTreeMap<NaiveDate, Vec<TrackPoint>>,
    pub tasks: Vec<TaskRow>,
    pub now: i64,
}

/// Whose figures, for which period, and whether the records behind them
/// are wanted.
pub struct Collector<'a> {
    /// The collector's user id (violations and certificates are keyed by it).
    pub id: &'a str,
    pub name: &'a str,
    /// The period's name the report carries (`2026-11`, `2026-11-26`).
    pub period: &'a str,
    pub explain: bool,
}

/// One collector's figures for `days`: a pure function of what was
/// collected and the run's inputs (no storage, no clock of its own).
pub fn collector_figures(
    who: &Collector,
    days: &[NaiveDate],
    inp: &Inputs,
    got: &Collected,
) -> Result<Report> {
    {
        let (cfg, grid, cases, findings) = (&inp.cfg, &inp.grid, &inp.cases, &inp.findings);
        let rules = &cfg.patrol;
        let actors = &got.actors;
        // The cells in force on a day (see `cells_in_force`), located once
        // per assignment.
        let assignments = &got.assignments;
        let cells_of = |codes: &[String]| -> Vec<Cell> {
            grid.iter()
                .filter(|c| codes.iter().any(|x| x == c.code.as_str()))
                .cloned()
                .collect()
        };
        let by_assignment: Vec<(NaiveDate, Vec<Cell>)> = assignments
            .iter()
            .map(|(from, codes)| (*from, cells_of(codes)))
            .collect();
        // Assigned on a day: the latest assignment from on or before it, if
        // it has cells (an empty one ends the assignment). Before the first
        // one the collector is not charged for anything.
        let cells_on = |d: NaiveDate| -> Option<&Vec<Cell>> {
            by_assignment
                .iter()
                .rev()
                .find(|(from, _)| *from <= d)
                .map(|(_, c)| c)
                .filter(|c| !c.is_empty())
        };
        let now = got.now;
        let today = rules.local_date(now)?;
        let tz = rules.tz()?;
        let certificate = inp
            .certificates
            .get(who.id)
            .cloned()
            .unwrap_or_else(|| standing(who.name, Vec::new(), cfg.certificate_valid_months));
        let (Some(first), Some(last)) = (days.first(), days.last()) else {
            return Ok(Report::default());
        };
        let (first, last) = (rules.patrol_day(*first)?, rules.patrol_day(*last)?);
        let day_start = first.start_ms - 8 * 3_600_000;
        let day_end = last.end_ms + 4 * 3_600_000;
        let in_period = |ms: i64| rules.local_date(ms).is_ok_and(|d| days.contains(&d));
        let mut r = Report {
            who: who.name.to_string(),
            period: who.period.to_string(),
            days: days.len() as u32,
            ..Report::default()
        };
        let mut ex = Explain::default();

        // Coverage, attendance and off post, day by day.
        let marks: Vec<ShiftMark> = inp
            .marks
            .iter()
            .filter(|(a, _)| actors.contains(a))
            .map(|(_, m)| m.clone())
            .collect();
        let (mut covered, mut required) = (0u64, 0u64);
        for d in days {
            // Only days that have begun, on which the collector was assigned.
            let (Some(mine), true) = (cells_on(*d), *d <= today) else {
                continue;
            };
            let day = rules.patrol_day(*d)?;
            let Some(passed) = super::period::elapsed(&day, now) else {
                continue;
            };
            r.days_assigned += 1;
            let points: &[TrackPoint] = got.points.get(d).map_or(&[], |p| p.as_slice());
            if cfg.require_certificate && !points.is_empty() && !certificate.valid_on(*d) {
                r.uncertified_patrol_days += 1;
                // The certificate as it stood that day (one earned later is
                // not that day's fact, so a later attempt leaves it alone).
                let held = certificate.certified_on.filter(|from| from <= d);
                ex.uncertified_patrol_days.push(UncertifiedDay {
                    day: *d,
                    certified_on: held,
                    valid_until: held.and(certificate.valid_until),
                });
            }
            let track = locate(mine, points, rules);
            let windows = super::period::windows_due(coverage_of(mine, &day, &track, rules), now);
            let mut covered_starts: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for w in windows {
                required += 1;
                if w.covered {
                    covered += 1;
                    if who.explain {
                        // Compact: a cell-day's covered window starts, local.
                        let start = chrono::DateTime::from_timestamp_millis(w.start_ms)
                            .map(|t| t.with_timezone(&tz).format("%H:%M").to_string())
                            .unwrap_or_default();
                        covered_starts
                            .entry(w.cell.clone())
                            .or_default()
                            .push(start);
                    }
                } else if who.explain {
                    ex.uncovered_windows.push(UncoveredWindow {
                        cell: w.cell.clone(),
                        start: ts(w.start_ms),
                        end: ts(w.end_ms),
                    });
                }
            }
            for (cell, starts) in covered_starts {
                ex.covered_windows.push(CoveredWindows {
                    cell,
                    day: *d,
                    starts,
                });
            }
            let day_marks: Vec<_> = marks
                .iter()
                .filter(|m| rules.local_date(m.at.millis()).is_ok_and(|x| x == *d))
                .cloned()
                .collect();
            for g in inp
                .gaps
                .iter()
                .filter(|(a, _)| actors.contains(a))
                .map(|(_, g)| g)
            {
                let touches = |ms: i64| rules.local_date(ms).is_ok_and(|x| x == *d);
                if touches(g.from.millis()) || touches(g.to.millis()) {
                    ex.track_gaps.push(GapRecord {
                        day: *d,
                        from: g.from,
                        to: g.to,
                        minutes: g.minutes(),
                        cause: g.cause,
                    });
                }
            }
            let faults = super::period::attendance_due(
                attendance(&day, &day_marks, rules),
                &day,
                now,
                rules.attendance_grace_minutes * 60_000,
            );
            for f in faults {
                match f {
                    super::AttendanceFault::Late { .. } => r.late_starts += 1,
                    super::AttendanceFault::EarlyLeave { .. } => r.early_leaves += 1,
                    _ => r.absent_halves += 1,
                }
                ex.attendance_faults
                    .push(AttendanceRecord { day: *d, fault: f });
            }
            if !mine.is_empty() {
                for s in off_post_of(&passed, &track, rules) {
                    r.off_post_events += 1;
                    ex.off_post.push(OffPostRecord {
                        start: ts(s.start_ms),
                        end: ts(s.end_ms),
                        minutes: s.minutes,
                        points_outside: s.points_outside,
                        where_: s.where_,
                    });
                }
            }
        }
        r.coverage = Rate::of(covered, required);

        // Cases the collector reported in the period.
        let own: Vec<&CaseView> = cases
            .iter()
            .filter(|v| {
                v.origin.as_ref().is_some_and(|o| {
                    actors.contains(&o.reporter) && in_period(o.reported_at.millis())
                })
            })
            .collect();
        let formal: Vec<&&CaseView> = own
            .iter()
            .filter(|v| {
                v.origin
                    .as_ref()
                    .is_some_and(|o| !matches!(o.source, CaseSource::Test | CaseSource::QuickFix))
            })
            .collect();
        r.cases_reported = formal.len() as u64;
        r.quick_fixes = own
            .iter()
            .filter(|v| {
                v.origin
                    .as_ref()
                    .is_some_and(|o| o.source == CaseSource::QuickFix)
                    && registered(v)
            })
            .count() as u64;
        r.quick_fix_credit = r.quick_fixes / 3;
        let errors: Vec<&&&CaseView> = formal
            .iter()
            .filter(|v| erroneous(v, &cfg.error_reasons))
            .collect();
        for v in &errors {
            ex.erroneous_cases.push(ErroneousCase {
                case: v.id,
                reason: v.status[0].reason.clone(),
            });
        }
        r.error_rate = Rate::of(errors.len() as u64, formal.len() as u64);
        // The denominators' records: every formal case, with its verdicts.
        for v in &formal {
            ex.cases.push(CaseRecord {
                case: v.id,
                category: v.category.clone(),
                reported_at: v.origin.as_ref().map(|o| o.reported_at),
                status: v.statuses(),
                registered: registered(v),
                erroneous: erroneous(v, &cfg.error_reasons),
            });
        }
        let registered_n = formal.iter().filter(|v| registered(v)).count() as u64;
        r.valid_report_rate = Rate::of(registered_n, formal.len() as u64);
        // The quotas are over registered cases.
        let valid: Vec<&&&CaseView> = formal.iter().filter(|v| registered(v)).collect();
        let catalog = &inp.catalog;
        let events = valid
            .iter()
            .filter(|v| {
                v.category
                    .as_ref()
                    .and_then(|c| catalog.get(c))
                    .is_some_and(|e| e.family == crate::model::Family::Event)
            })
            .count() as u64;
        r.event_share = Rate::of(events, valid.len() as u64);
        let mut subclasses: Vec<String> = valid
            .iter()
            .filter_map(|v| {
                v.category
                    .as_ref()
                    .map(|c| catalog.canonical(c, cfg.code_style).to_string())
            })
            .collect();
        subclasses.sort();
        subclasses.dedup();
        r.subclass_codes = subclasses;

        // Misses: external findings in the collector's cells during patrol hours.
        let mut missed = 0u64;
        for f in findings.iter().filter(|f| {
            f.at.millis() >= day_start && f.at.millis() <= day_end && in_period(f.at.millis())
        }) {
            let Some(assigned) = cells_on(rules.local_date(f.at.millis())?) else {
                continue;
            };
            let on_day = CellIndex::new(assigned.clone());
            let Some(cell) = on_day.locate(f.pos) else {
                continue;
            };
            let day = rules.patrol_day(rules.local_date(f.at.millis())?)?;
            if f.at.millis() < day.start_ms || f.at.millis() > day.end_ms {
                continue;
            }
            let wanted = catalog.canonical(&f.category, cfg.code_style);
            let matched = own.iter().any(|v| {
                let (Some(o), Some(c), Some(p)) = (&v.origin, &v.category, &v.placement) else {
                    return false;
                };
                // A false report did not report the problem.
                let false_report = v.status.iter().any(|s| {
                    s.status == Status::Rejected && s.reason == Some(RejectReason::FalseReport)
                });
                !false_report
                    && catalog.canonical(c, cfg.code_style) == wanted
                    && p.pos.distance_m(f.pos) <= cfg.miss.radius_m
                    && o.reported_at.millis() <= f.at.millis()
                    && f.at.millis() - o.reported_at.millis() <= cfg.miss.lookback_hours * 3_600_000
            });
            let record = FindingRecord {
                finding: f.id.clone(),
                source: f.source,
                category: f.category.clone(),
                cell: cell.code.to_string(),
                at: f.at,
            };
            if matched {
                ex.matched_findings.push(record);
            } else {
                missed += 1;
                ex.missed_findings.push(record);
            }
        }
        r.miss_rate = Rate::of(missed, missed + registered_n);

        // Tasks that fell due in the period (by now): unanswered counts late.
        let (mut all, mut verify, mut check) = (Rate::default(), Rate::default(), Rate::default());
        for t in &got.tasks {
            let Some(spec) = &t.task.spec else { continue };
            let due = spec.due_at.millis();
            // Fell due in the period (by now), or already answered.
            if !in_period(due) || (due > now && t.task.answer.is_none()) {
                continue;
            }
            let on_time = match (&t.task.answer, t.answer_received_at) {
                (Some(a), Some(rcv)) => cfg.timeliness.on_time(
                    due,
                    a.answered_at.millis(),
                    t.task.answer_stamp_ms,
                    rcv.millis(),
                ),
                _ => false,
            };
            let add = |r: Rate| Rate::of(r.n + on_time as u64, r.d + 1);
            all = add(all);
            match spec.kind {
                TaskKind::Verify => verify = add(verify),
                TaskKind::Check => check = add(check),
            }
            let record = TaskRecord {
                task: t.task.id,
                kind: spec.kind,
                due: spec.due_at,
                answered_at: t.task.answer.as_ref().map(|a| a.answered_at),
                received_at: t.answer_received_at,
            };
            if on_time {
                ex.on_time_tasks.push(record);
            } else {
                ex.late_tasks.push(record);
            }
        }
        (r.timeliness, r.verify_on_time, r.check_on_time) = (all, verify, check);

        // Red lines: each costs the heavy fine; the second of the company's
        // contract year marks the contract for termination.
        for v in inp
            .violations
            .iter()
            .filter(|v| v.collector_id == who.id && in_period(v.at.millis()))
        {
            r.violations += 1;
            ex.violations.push(ViolationRecord {
                violation: v.id.clone(),
                kind: v.kind,
                at: v.at,
                cases: v.cases.clone(),
                recorded_by: v.recorded_by.clone(),
            });
            let year_start = contract_year_start(
                rules.local_date(v.at.millis())?,
                cfg.contract_year_start_month,
            );
            let ordinal = inp
                .violations
                .iter()
                .filter(|w| {
                    w.company == v.company
                        && w.at <= v.at
                        && rules
                            .local_date(w.at.millis())
                            .is_ok_and(|d| d >= year_start)
                })
                .count();
            if ordinal >= 2 && v.company.is_some() {
                r.termination = Some(format!(
                    "violation {} ({:?}, {}) is number {ordinal} of {}'s contract year from {year_start}: the contract is marked for termination",
                    v.id,
                    v.kind,
                    v.at,
                    v.company.clone().unwrap_or_default()
                ));
            }
        }
        finish(&mut r, cfg);
        if who.explain {
            r.explain = Some(ex);
        }
        Ok(r)
    }
}

fn registered(v: &CaseView) -> bool {
    v.statuses().iter().any(|s| {
        matches!(
            s,
            Status::Registered | Status::Dispatched | Status::Handled | Status::Closed
        )
    })
}

/// Rejected for a reason the city counts against the collector.
fn erroneous(v: &CaseView, reasons: &[String]) -> bool {
    let name = |r: &RejectReason| match r {
        RejectReason::WrongCategory => "wrong_category",
        RejectReason::WrongLocation => "wrong_location",
        RejectReason::Duplicate => "duplicate",
        RejectReason::FalseReport => "false_report",
        RejectReason::OutOfScope => "out_of_scope",
        RejectReason::BadPhoto => "bad_photo",
        RejectReason::Other(_) => "other",
    };
    v.status.len() == 1
        && v.status[0].status == Status::Rejected
        && v.status[0]
            .reason
            .as_ref()
            .is_some_and(|r| reasons.iter().any(|x| x == name(r)))
}

fn ts(ms: i64) -> Option<Timestamp> {
    Timestamp::from_millis("t", ms).ok()
}
