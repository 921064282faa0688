//! Where a rate is computed: a collector's (or a company's) figures for a
//! day or a month, from the server's synced data, with the records behind
//! every number (`explain`). Formulas are DOMAIN.md's, named the same:
//! coverage, timeliness (with on-time verification and check), error rate,
//! miss rate, valid report rate, attendance, off post, quick-fix credit,
//! composite score and grade. The geometry is `field_core::assess`.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use field_core::assess::{attendance, contract, coverage_of, locate, off_post_of};
use field_core::crdt::CaseView;
use field_core::geo::CellIndex;
use field_core::model::{
    ActorId, CaseSource, ExternalFinding, RejectReason, Status, TaskKind, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::city_config::{CityConfig, Overdraft, QuotaLevel};
use super::explain::{
    AttendanceRecord, CaseRecord, CoveredWindows, ErroneousCase, Explain, FindingRecord,
    OffPostRecord, TaskRecord, UncertifiedDay, UncoveredWindow, ViolationRecord,
};
use super::{Center, Result, ServiceError, invalid};
use crate::storage::{Principal, Role, User};

/// n / d, with the rate when d > 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub n: u64,
    pub d: u64,
    pub rate: Option<f64>,
}

impl Rate {
    pub(super) fn of(n: u64, d: u64) -> Rate {
        Rate {
            n,
            d,
            rate: (d > 0).then(|| n as f64 / d as f64),
        }
    }

    pub(super) fn add(self, o: Rate) -> Rate {
        Rate::of(self.n + o.n, self.d + o.d)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `YYYY-MM-DD` (a day) or `YYYY-MM` (a month).
    pub period: String,
    #[serde(default)]
    pub collector: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub explain: bool,
    /// Also give the four rates of each day of the period (for charts).
    #[serde(default)]
    pub daily: bool,
}

/// The four rates of one day, for a period's chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayRates {
    pub day: NaiveDate,
    pub coverage: Rate,
    pub miss_rate: Rate,
    pub timeliness: Rate,
    pub error_rate: Rate,
}

impl DayRates {
    fn of(day: NaiveDate, r: &Report) -> DayRates {
        DayRates {
            day,
            coverage: r.coverage,
            miss_rate: r.miss_rate,
            timeliness: r.timeliness,
            error_rate: r.error_rate,
        }
    }

    /// Several collectors' same day, pooled (numerators and denominators add).
    fn pool(series: &[Vec<DayRates>]) -> Vec<DayRates> {
        let Some(first) = series.first() else {
            return Vec::new();
        };
        (0..first.len())
            .map(|i| {
                let mut d = first[i].clone();
                for s in &series[1..] {
                    if let Some(o) = s.get(i) {
                        d.coverage = d.coverage.add(o.coverage);
                        d.miss_rate = d.miss_rate.add(o.miss_rate);
                        d.timeliness = d.timeliness.add(o.timeliness);
                        d.error_rate = d.error_rate.add(o.error_rate);
                    }
                }
                d
            })
            .collect()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub who: String,
    pub period: String,
    pub days: u32,
    /// Days of the period charged: begun by now, and assigned.
    #[serde(default)]
    pub days_assigned: u32,
    /// False while the period is still running (figures are "so far").
    #[serde(default)]
    pub complete: bool,
    pub coverage: Rate,
    pub timeliness: Rate,
    pub verify_on_time: Rate,
    pub check_on_time: Rate,
    pub error_rate: Rate,
    pub miss_rate: Rate,
    pub valid_report_rate: Rate,
    pub cases_reported: u64,
    pub quick_fixes: u64,
    /// 3 quick fixes count as 1 formal case (floor).
    pub quick_fix_credit: u64,
    pub late_starts: u64,
    pub early_leaves: u64,
    pub absent_halves: u64,
    pub off_post_events: u64,
    /// valid × 40% + (1 − miss) × 20% + on-time verification × 20% + on-time check × 20%, 0–100.
    pub composite: f64,
    pub grade: char,
    /// Events among formal cases (quota: at most 80% per month).
    pub event_share: Rate,
    /// Distinct subclasses reported (quota: at least 104 per month).
    pub subclasses: u64,
    /// Monthly quotas not met, per calendar month (month and quarter
    /// reports only, at the configured level; day and week reports none).
    pub quota_breaches: Vec<String>,
    /// Errors above the error-rate threshold: per collector and calendar
    /// month, summed over months and collectors (never pooled).
    #[serde(default)]
    pub errors_above_threshold: u64,
    /// 采集总量: registered formal cases + ⌊approved quick fixes ÷ 3⌋.
    #[serde(default)]
    pub volume: u64,
    /// Days the collector patrolled (sent a track) without a valid
    /// certificate (上岗证).
    #[serde(default)]
    pub uncertified_patrol_days: u64,
    /// Compliance flags: patrol without a valid certificate, a month's
    /// training shortfall, a company below the training quota.
    #[serde(default)]
    pub compliance: Vec<String>,
    /// The configuration version the figures were computed under.
    #[serde(default)]
    pub config_version: u64,
    /// Red-line violations in the period (revoked ones not counted).
    #[serde(default)]
    pub violations: u64,
    /// Set when a violation in the period is the second of its company's
    /// contract year: the contract is marked for termination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination: Option<String>,
    /// The subclasses behind `subclasses` (distinct counts do not add up).
    #[serde(default)]
    pub subclass_codes: Vec<String>,
    /// Days of the period read from nightly rollups (the rest computed live).
    #[serde(default)]
    pub days_from_rollups: u32,
    /// Deductions by the city's rule table, in yuan.
    pub deductions: BTreeMap<String, f64>,
    pub deductions_total: f64,
    /// For a company over a quarter: fee − deductions, payable by the 10th
    /// of the next quarter's first month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Settlement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
    /// Each day's four rates, when asked for (`daily`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub daily: Vec<DayRates>,
}

/// A company's quarter: the fee, what is deducted, what is paid, and what
/// the company owes back when deductions pass the fee (or how much of them
/// a cap waived).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settlement {
    pub fee: f64,
    /// The deductions of the quarter's collectors and months.
    pub deductions: f64,
    /// fee − deductions, never below zero.
    pub payable: f64,
    /// Deductions beyond the fee the company owes back (`owed_back`).
    pub owed_back: f64,
    /// Deductions beyond the fee not charged (`capped`).
    pub waived: f64,
    /// Payable by the 10th of the next quarter's first month.
    pub due_by: String,
}

impl Settlement {
    fn of(fee: f64, deductions: f64, overdraft: Overdraft, due_by: String) -> Settlement {
        let beyond = (deductions - fee).max(0.0);
        let (owed_back, waived) = match overdraft {
            Overdraft::OwedBack => (beyond, 0.0),
            Overdraft::Capped => (0.0, beyond),
        };
        Settlement {
            fee,
            deductions,
            payable: (fee - deductions).max(0.0),
            owed_back,
            waived,
            due_by,
        }
    }
}

/// The days of a period: `YYYY-MM-DD`, `YYYY-Www` (ISO week), `YYYY-MM`, `YYYY-Qn`.
pub(super) fn period_days(period: &str) -> Result<Vec<NaiveDate>> {
    let bad = || {
        invalid(
            "period",
            format!("`{period}` is not YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-Qn"),
        )
    };
    if let Ok(d) = NaiveDate::parse_from_str(period, "%Y-%m-%d") {
        return Ok(vec![d]);
    }
    if let Some((y, w)) = period.split_once("-W") {
        let (y, w): (i32, u32) = (y.parse().map_err(|_| bad())?, w.parse().map_err(|_| bad())?);
        let monday = NaiveDate::from_isoywd_opt(y, w, chrono::Weekday::Mon).ok_or_else(bad)?;
        return Ok(monday.iter_days().take(7).collect());
    }
    if let Some((y, q)) = period.split_once("-Q") {
        let (y, q): (i32, u32) = (y.parse().map_err(|_| bad())?, q.parse().map_err(|_| bad())?);
        if !(1..=4).contains(&q) {
            return Err(bad());
        }
        let first = NaiveDate::from_ymd_opt(y, 3 * (q - 1) + 1, 1).ok_or_else(bad)?;
        return Ok(first
            .iter_days()
            .take_while(|d| d.year() == y && (d.month() - 1) / 3 == q - 1)
            .collect());
    }
    let first =
        NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    Ok(first
        .iter_days()
        .take_while(|d| d.month() == first.month())
        .collect())
}

/// The figures derived from the counts: subclasses, volume, composite and
/// grade, deductions. One place, for a day, a period, a company. Errors
/// above the threshold are settled per collector-month before
/// ([`settle_month`]) and only summed here.
fn finish(r: &mut Report, cfg: &CityConfig) {
    r.subclass_codes.sort();
    r.subclass_codes.dedup();
    r.subclasses = r.subclass_codes.len() as u64;
    r.quick_fix_credit = r.quick_fixes / 3;
    r.volume = contract::volume(r.valid_report_rate.n, r.quick_fixes);
    (r.composite, r.grade) = composite(r, cfg);
    let d = &cfg.deductions;
    let items = [
        (
            "uncovered_windows",
            (r.coverage.d - r.coverage.n) as f64 * d.per_uncovered_window,
        ),
        (
            "late_tasks",
            (r.timeliness.d - r.timeliness.n) as f64 * d.per_late_task,
        ),
        (
            "errors_above_threshold",
            r.errors_above_threshold as f64 * d.per_error_above_threshold,
        ),
        (
            "missed_findings",
            r.miss_rate.n as f64 * d.per_missed_finding,
        ),
        (
            "attendance_faults",
            (r.late_starts + r.early_leaves + r.absent_halves) as f64 * d.per_attendance_fault,
        ),
        (
            "off_post_events",
            r.off_post_events as f64 * d.per_off_post_event,
        ),
        ("violations", r.violations as f64 * d.per_violation),
    ];
    r.deductions = items.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    r.deductions_total = items.iter().map(|(_, v)| v).sum();
}

/// A collector's calendar month (or the part of it in the period): its
/// errors above the threshold come from its own counts.
fn settle_month(r: &mut Report, cfg: &CityConfig) {
    r.errors_above_threshold =
        contract::errors_above_threshold(r.error_rate.n, r.error_rate.d, cfg.quotas.error_rate_max);
    finish(r, cfg);
}

/// The monthly quotas a month's figures (over registered cases) miss.
fn quota_verdicts(r: &Report, cfg: &CityConfig) -> Vec<String> {
    let mut out = Vec::new();
    if r.event_share
        .rate
        .is_some_and(|x| x > cfg.quotas.event_share_max)
    {
        out.push(format!(
            "events are {:.1}% of registered cases ({}/{}; at most {:.0}%)",
            r.event_share.rate.unwrap_or(0.0) * 100.0,
            r.event_share.n,
            r.event_share.d,
            cfg.quotas.event_share_max * 100.0
        ));
    }
    if r.subclasses < cfg.quotas.subclasses_min {
        out.push(format!(
            "{} distinct subclasses registered (at least {})",
            r.subclasses, cfg.quotas.subclasses_min
        ));
    }
    if contract::error_rate_breached(r.error_rate.n, r.error_rate.d, cfg.quotas.error_rate_max) {
        out.push(format!(
            "error rate {:.1}% ({}/{}; below {:.0}%)",
            r.error_rate.rate.unwrap_or(0.0) * 100.0,
            r.error_rate.n,
            r.error_rate.d,
            cfg.quotas.error_rate_max * 100.0
        ));
    }
    out
}

/// `YYYY-MM` of a day.
fn month_of(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

/// Whether a period is a calendar month or a quarter (quotas apply).
fn monthly_period(period: &str) -> bool {
    quarter_of(period).is_some()
        || NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").is_ok()
}

/// Adds up reports (days of a period, collectors of a company) and derives
/// the rest from the sums; explain lists are concatenated.
fn combine(parts: &[Report], who: &str, period: &str, cfg: &CityConfig) -> Report {
    let mut t = Report {
        who: who.to_string(),
        period: period.to_string(),
        ..Report::default()
    };
    let mut explain: Option<Explain> = None;
    for r in parts {
        t.coverage = t.coverage.add(r.coverage);
        t.timeliness = t.timeliness.add(r.timeliness);
        t.verify_on_time = t.verify_on_time.add(r.verify_on_time);
        t.check_on_time = t.check_on_time.add(r.check_on_time);
        t.error_rate = t.error_rate.add(r.error_rate);
        t.miss_rate = t.miss_rate.add(r.miss_rate);
        t.valid_report_rate = t.valid_report_rate.add(r.valid_report_rate);
        t.event_share = t.event_share.add(r.event_share);
        t.cases_reported += r.cases_reported;
        t.quick_fixes += r.quick_fixes;
        t.late_starts += r.late_starts;
        t.early_leaves += r.early_leaves;
        t.absent_halves += r.absent_halves;
        t.off_post_events += r.off_post_events;
        t.subclass_codes.extend(r.subclass_codes.iter().cloned());
        t.days_from_rollups += r.days_from_rollups;
        t.days_assigned += r.days_assigned;
        t.errors_above_threshold += r.errors_above_threshold;
        t.violations += r.violations;
        t.uncertified_patrol_days += r.uncertified_patrol_days;
        if t.termination.is_none() {
            t.termination = r.termination.clone();
        }
        if let Some(ex) = &r.explain {
            explain.get_or_insert_with(Explain::default).extend(ex);
        }
    }
    t.explain = explain;
    finish(&mut t, cfg);
    t
}

/// `YYYY-Qn` → (year, n).
fn quarter_of(period: &str) -> Option<(i32, u32)> {
    let (y, q) = period.split_once("-Q")?;
    Some((y.parse().ok()?, q.parse().ok()?))
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

impl Center {
    pub fn report(&self, p: &Principal, q: ReportQuery) -> Result<Vec<Report>> {
        let mut q = q;
        if p.user.role == Role::Collector {
            // A collector checks their own figures, and only theirs.
            self.require(p, Operation::ReadOwnReport)?;
            let own = q
                .collector
                .as_deref()
                .is_none_or(|c| c == p.user.name || c == p.user.id);
            if !own || q.company.is_some() {
                return Err(ServiceError::Forbidden(format!(
                    "{} may read their own report only",
                    p.user.name
                )));
            }
            q.collector = Some(p.user.id.clone());
        } else {
            self.require(p, Operation::ReadCases)?;
        }
        let days = period_days(&q.period)?;
        let users: Vec<User> = self
            .storage
            .users()?
            .into_iter()
            .filter(|u| u.role == Role::Collector)
            .filter(|u| {
                q.collector
                    .as_deref()
                    .is_none_or(|c| u.id == c || u.name == c)
            })
            .filter(|u| {
                q.company
                    .as_deref()
                    .is_none_or(|c| u.company.as_deref() == Some(c))
            })
            .collect();
        if users.is_empty() {
            return Err(ServiceError::NotFound("no collector matches".into()));
        }
        let cfg = self.city_config()?;
        let inp = self.assessment_inputs(cfg.config.clone())?;
        // A period still running is charged only so far, and says so.
        let complete = days
            .last()
            .is_some_and(|d| *d < cfg.config.patrol.local_date(self.now_ms()).unwrap_or(*d));
        let monthly = monthly_period(&q.period);
        let level = cfg.config.quotas.level;
        let quarter = quarter_of(&q.period).is_some();
        let dirty = self.storage.dirty_days()?;
        let trainings = self.storage.trainings()?;
        let mut reports = Vec::new();
        // Each collector's calendar months (or their parts in the period):
        // the grain of the error deduction and of the quotas.
        let mut months_of: Vec<Vec<(String, Report)>> = Vec::new();
        for u in &users {
            let live = |d: &[NaiveDate]| self.collector_report(u, &q, d, &inp);
            let mut per_day = Vec::with_capacity(days.len());
            let mut from_rollups = 0;
            for d in &days {
                let stored = if days.len() == 1 || dirty.contains(d) {
                    None
                } else {
                    self.storage.rollup(*d, &u.id)?
                };
                match stored.and_then(|json: String| serde_json::from_str::<Report>(&json).ok()) {
                    Some(r) => {
                        from_rollups += 1;
                        per_day.push(r);
                    }
                    None => per_day.push(live(std::slice::from_ref(d))?),
                }
            }
            let mut grouped: Vec<(String, Vec<Report>)> = Vec::new();
            for (d, r) in days.iter().zip(&per_day) {
                let ym = month_of(*d);
                match grouped.last_mut() {
                    Some((m, parts)) if *m == ym => parts.push(r.clone()),
                    _ => grouped.push((ym, vec![r.clone()])),
                }
            }
            let months: Vec<(String, Report)> = grouped
                .into_iter()
                .map(|(ym, parts)| {
                    let mut m = combine(&parts, &u.name, &ym, &cfg.config);
                    settle_month(&mut m, &cfg.config);
                    (ym, m)
                })
                .collect();
            let parts: Vec<Report> = months.iter().map(|(_, m)| m.clone()).collect();
            let mut r = combine(&parts, &u.name, &q.period, &cfg.config);
            if monthly && level == QuotaLevel::Collector {
                r.quota_breaches = months
                    .iter()
                    .flat_map(|(ym, m)| {
                        quota_verdicts(m, &cfg.config)
                            .into_iter()
                            .map(move |v| if quarter { format!("{ym}: {v}") } else { v })
                    })
                    .collect();
            }
            if q.daily {
                r.daily = days
                    .iter()
                    .zip(&per_day)
                    .map(|(d, r)| DayRates::of(*d, r))
                    .collect();
            }
            r.days = days.len() as u32;
            r.days_from_rollups = from_rollups;
            r.complete = complete;
            if !q.explain {
                r.explain = None;
            }
            if r.uncertified_patrol_days > 0 {
                r.compliance.push(format!(
                    "patrolled {} day(s) without a valid certificate",
                    r.uncertified_patrol_days
                ));
            }
            if monthly {
                for (ym, _) in &months {
                    let got = trainings
                        .iter()
                        .filter(|t| {
                            t.given_by == "company"
                                && month_of(t.date) == *ym
                                && t.attendees.contains(&u.id)
                        })
                        .count() as u32;
                    if got < cfg.config.training_per_month {
                        let flag = format!(
                            "{ym}: {got} of {} company training sessions",
                            cfg.config.training_per_month
                        );
                        r.compliance.push(flag);
                    }
                }
            }
            r.config_version = cfg.version;
            reports.push(r);
            months_of.push(months);
        }
        if let Some(company) = &q.company {
            let mut total = combine(
                &reports,
                &format!("company {company}"),
                &q.period,
                &cfg.config,
            );
            total.days = days.len() as u32;
            total.complete = complete;
            if monthly && level == QuotaLevel::Company {
                let mut yms: Vec<&String> = months_of.iter().flatten().map(|(ym, _)| ym).collect();
                yms.sort();
                yms.dedup();
                for ym in yms {
                    let parts: Vec<Report> = months_of
                        .iter()
                        .flatten()
                        .filter(|(m, _)| m == ym)
                        .map(|(_, r)| r.clone())
                        .collect();
                    let month = combine(&parts, company, ym, &cfg.config);
                    total.quota_breaches.extend(
                        quota_verdicts(&month, &cfg.config)
                            .into_iter()
                            .map(|v| if quarter { format!("{ym}: {v}") } else { v }),
                    );
                }
            }
            if q.daily {
                let series: Vec<Vec<DayRates>> = reports.iter().map(|r| r.daily.clone()).collect();
                total.daily = DayRates::pool(&series);
            }
            if let (Some((year, quarter)), Some(fee)) =
                (quarter_of(&q.period), cfg.config.fees.get(company))
            {
                let (y, m) = if quarter == 4 {
                    (year + 1, 1)
                } else {
                    (year, 3 * quarter + 1)
                };
                total.settlement = Some(Settlement::of(
                    *fee,
                    total.deductions_total,
                    cfg.config.overdraft,
                    format!("{y:04}-{m:02}-10"),
                ));
            }
            let short: Vec<&str> = reports
                .iter()
                .filter(|r| {
                    r.compliance
                        .iter()
                        .any(|f| f.contains("company training sessions"))
                })
                .map(|r| r.who.as_str())
                .collect();
            if !short.is_empty() {
                total.compliance.push(format!(
                    "below the monthly training quota for: {}",
                    short.join(", ")
                ));
            }
            if total.uncertified_patrol_days > 0 {
                total.compliance.push(format!(
                    "{} collector-day(s) of patrol without a valid certificate",
                    total.uncertified_patrol_days
                ));
            }
            total.config_version = cfg.version;
            reports.push(total);
        }
        Ok(reports)
    }

    #[allow(clippy::too_many_arguments)]
    /// One collector's figures for `days` (the nightly job's unit).
    pub(crate) fn collector_report(
        &self,
        u: &User,
        q: &ReportQuery,
        days: &[NaiveDate],
        inp: &Inputs,
    ) -> Result<Report> {
        let got = self.collect(u, days, inp)?;
        collector_figures(u, q, days, inp, &got)
    }

    /// What one collector's figures for `days` read: their devices,
    /// assignments, track points by day, tasks, and the clock.
    fn collect(&self, u: &User, days: &[NaiveDate], inp: &Inputs) -> Result<Collected> {
        let rules = &inp.cfg.patrol;
        let actors: Vec<ActorId> = self
            .storage
            .devices_of(&u.id)?
            .into_iter()
            .map(|d| d.actor)
            .collect();
        let now = self.now_ms();
        let today = rules.local_date(now)?;
        let mut points = BTreeMap::new();
        for d in days.iter().filter(|d| **d <= today) {
            let day = rules.patrol_day(*d)?;
            let mut day_points = Vec::new();
            for a in &actors {
                day_points.extend(self.storage.track_between(
                    *a,
                    day.start_ms - 3_600_000,
                    day.end_ms + 3_600_000,
                )?);
            }
            points.insert(*d, day_points);
        }
        Ok(Collected {
            assignments: self.storage.assignments(&u.id)?,
            tasks: self.storage.tasks(Some(&u.id))?,
            actors,
            points,
            now,
        })
    }
}

/// One collector's inputs to the figures, loaded before any is computed.
pub(crate) struct Collected {
    actors: Vec<ActorId>,
    assignments: Vec<(NaiveDate, Vec<String>)>,
    points: BTreeMap<NaiveDate, Vec<field_core::model::TrackPoint>>,
    tasks: Vec<field_core::store::TaskRow>,
    now: i64,
}

/// One collector's figures for `days`: a pure function of what was
/// collected and the run's inputs (no storage, no clock of its own).
fn collector_figures(
    u: &User,
    q: &ReportQuery,
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
        let cells_of = |codes: &[String]| -> Vec<field_core::model::Cell> {
            grid.iter()
                .filter(|c| codes.iter().any(|x| x == c.code.as_str()))
                .cloned()
                .collect()
        };
        let by_assignment: Vec<(NaiveDate, Vec<field_core::model::Cell>)> = assignments
            .iter()
            .map(|(from, codes)| (*from, cells_of(codes)))
            .collect();
        // Assigned on a day: the latest assignment from on or before it, if
        // it has cells (an empty one ends the assignment). Before the first
        // one the collector is not charged for anything.
        let cells_on = |d: NaiveDate| -> Option<&Vec<field_core::model::Cell>> {
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
        let certificate = inp.certificates.get(&u.id).cloned().unwrap_or_else(|| {
            super::certification::standing(&u.name, Vec::new(), cfg.certificate_valid_months)
        });
        let first = rules.patrol_day(days[0])?;
        let last = rules.patrol_day(*days.last().expect("a period has days"))?;
        let day_start = first.start_ms - 8 * 3_600_000;
        let day_end = last.end_ms + 4 * 3_600_000;
        let in_period = |ms: i64| rules.local_date(ms).is_ok_and(|d| days.contains(&d));
        let mut r = Report {
            who: u.name.clone(),
            period: q.period.clone(),
            days: days.len() as u32,
            ..Report::default()
        };
        let mut ex = Explain::default();

        // Coverage, attendance and off post, day by day.
        let marks: Vec<field_core::model::ShiftMark> = inp
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
            let Some(passed) = field_core::assess::period::elapsed(&day, now) else {
                continue;
            };
            r.days_assigned += 1;
            let points = got.points.get(d).cloned().unwrap_or_default();
            if cfg.require_certificate && !points.is_empty() && !certificate.valid_on(*d) {
                r.uncertified_patrol_days += 1;
                ex.uncertified_patrol_days.push(UncertifiedDay {
                    day: *d,
                    certified_on: certificate.certified_on,
                    valid_until: certificate.valid_until,
                });
            }
            let track = locate(mine, &points, rules);
            let windows = field_core::assess::period::windows_due(
                coverage_of(mine, &day, &track, rules),
                now,
            );
            let mut covered_starts: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for w in windows {
                required += 1;
                if w.covered {
                    covered += 1;
                    if q.explain {
                        // Compact: a cell-day's covered window starts, local.
                        let start = chrono::DateTime::from_timestamp_millis(w.start_ms)
                            .map(|t| t.with_timezone(&tz).format("%H:%M").to_string())
                            .unwrap_or_default();
                        covered_starts
                            .entry(w.cell.clone())
                            .or_default()
                            .push(start);
                    }
                } else if q.explain {
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
            let faults = field_core::assess::period::attendance_due(
                attendance(&day, &day_marks, rules),
                &day,
                now,
                rules.attendance_grace_minutes * 60_000,
            );
            for f in faults {
                match f {
                    field_core::assess::AttendanceFault::Late { .. } => r.late_starts += 1,
                    field_core::assess::AttendanceFault::EarlyLeave { .. } => r.early_leaves += 1,
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
                    .is_some_and(|e| e.family == field_core::model::Family::Event)
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
            .filter(|v| v.collector_id == u.id && in_period(v.at.millis()))
        {
            r.violations += 1;
            ex.violations.push(ViolationRecord {
                violation: v.id.clone(),
                kind: v.kind,
                at: v.at,
                cases: v.cases.clone(),
                recorded_by: v.recorded_by.clone(),
            });
            let year_start = super::violations::contract_year_start(
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
        if q.explain {
            r.explain = Some(ex);
        }
        Ok(r)
    }
}

impl Center {
    /// Adds many findings: all of them, or none when one is bad (its row named).
    pub fn add_findings(
        &self,
        p: &Principal,
        rows: Vec<NewFinding>,
    ) -> Result<Vec<ExternalFinding>> {
        self.require(p, Operation::Direct)?;
        if rows.len() > MAX_FINDINGS_PER_IMPORT {
            return Err(ServiceError::TooLarge(format!(
                "rows: {}, at most {MAX_FINDINGS_PER_IMPORT} per import",
                rows.len()
            )));
        }
        let checked = rows
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                self.check_finding(f).map_err(|e| match e {
                    ServiceError::Invalid { field, reason } => {
                        invalid(format!("rows[{i}].{field}"), reason)
                    }
                    other => other,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for f in &checked {
            self.storage.add_finding(f)?;
        }
        let instants: Vec<i64> = checked.iter().map(|f| f.at.millis()).collect();
        self.stale_at(&instants)?;
        Ok(checked)
    }

    pub fn add_finding(&self, p: &Principal, f: NewFinding) -> Result<ExternalFinding> {
        self.require(p, Operation::Direct)?;
        let finding = self.check_finding(f)?;
        self.storage.add_finding(&finding)?;
        self.stale_at(&[finding.at.millis()])?;
        Ok(finding)
    }

    fn check_finding(&self, f: NewFinding) -> Result<ExternalFinding> {
        use field_core::model::limits::{MAX_NAME_BYTES, MAX_NOTE_BYTES, bounded, bounded_opt};
        bounded_opt("note", f.note.as_deref(), MAX_NOTE_BYTES)?;
        bounded("category", &f.category, MAX_NAME_BYTES)?;
        bounded("at", &f.at, MAX_NAME_BYTES)?;
        if !matches!(
            f.source,
            CaseSource::CenterCheck
                | CaseSource::Citizen
                | CaseSource::Industry
                | CaseSource::Media
                | CaseSource::Leader
        ) {
            return Err(invalid(
                "source",
                "a finding comes from center_check, citizen, industry, media or leader",
            ));
        }
        let catalog = self.storage.catalog()?;
        let finding = ExternalFinding {
            id: uuid::Uuid::new_v4().to_string(),
            source: f.source,
            category: catalog.resolve("category", &f.category)?.code.clone(),
            pos: field_core::model::LonLat::new(f.lon, f.lat)?,
            at: Timestamp::parse("at", &f.at)?,
            note: f.note,
        };
        Ok(finding)
    }
}

fn ts(ms: i64) -> Option<Timestamp> {
    Timestamp::from_millis("t", ms).ok()
}

/// DOMAIN's composite with default weights; a rate with nothing to count
/// counts as perfect (no tasks due: nothing late).
/// Σ weight × rate over every rate a city may weigh, on 0–100; graded on
/// the exact score, rounded only for display. A rate with nothing to count
/// scores as met (nothing required, nothing missed), but a valid report
/// rate with no reports scores 0.
fn composite(r: &Report, cfg: &CityConfig) -> (f64, char) {
    let w = &cfg.weights;
    let or = |x: Rate, d: f64| x.rate.unwrap_or(d);
    let score = 100.0
        * (w.valid * or(r.valid_report_rate, 0.0)
            + w.miss * (1.0 - or(r.miss_rate, 0.0))
            + w.verify * or(r.verify_on_time, 1.0)
            + w.check * or(r.check_on_time, 1.0)
            + w.coverage * or(r.coverage, 1.0)
            + w.error * (1.0 - or(r.error_rate, 0.0))
            + w.timeliness * or(r.timeliness, 1.0));
    let g = &cfg.grades;
    // Graded exactly, but not by binary noise (0.4 × 0.75 + 0.6 is 0.8999…).
    let graded = score + 1e-9;
    let grade = match graded {
        s if s >= g.a => 'A',
        s if s >= g.b => 'B',
        s if s >= g.c => 'C',
        s if s >= g.d => 'D',
        _ => 'E',
    };
    ((score * 100.0).round() / 100.0, grade)
}

/// Most findings one bulk import may carry.
pub const MAX_FINDINGS_PER_IMPORT: usize = 100_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFinding {
    pub source: CaseSource,
    pub category: String,
    pub lon: f64,
    pub lat: f64,
    pub at: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    pub collector: String,
    pub cells: Vec<String>,
    /// First local day the cells are covered (YYYY-MM-DD).
    pub from: NaiveDate,
}

impl Center {
    /// Assigns cells to a collector from a date; from today or earlier it
    /// also becomes what the collector's devices pull.
    pub fn assign(
        &self,
        p: &Principal,
        req: AssignRequest,
    ) -> Result<Vec<(NaiveDate, Vec<String>)>> {
        self.require(p, Operation::Assign)?;
        let user = self
            .storage
            .users()?
            .into_iter()
            .find(|u| {
                u.role == Role::Collector && (u.id == req.collector || u.name == req.collector)
            })
            .ok_or_else(|| invalid("collector", format!("no collector `{}`", req.collector)))?;
        let known = self.all_cells()?;
        if let Some(bad) = req.cells.iter().find(|c| !known.contains(c)) {
            return Err(invalid(
                "cells",
                format!("{bad} is not a cell of the imported grid"),
            ));
        }
        self.storage
            .set_assignment(&user.id, &req.cells, req.from)?;
        self.audit(
            p,
            "assign",
            &user.name,
            format!("{} from {}", req.cells.join(","), req.from),
        )?;
        self.stale_from(Some(req.from))?;
        let today = self
            .city_config()?
            .config
            .patrol
            .local_date(self.now_ms())?;
        if let Some((_, cells)) = self
            .storage
            .assignments(&user.id)?
            .into_iter()
            .rev()
            .find(|(from, _)| *from <= today)
        {
            self.storage.set_user_cells(&user.id, &cells)?;
        }
        Ok(self.storage.assignments(&user.id)?)
    }
}

/// Everything a report reads that does not depend on the collector or the
/// day, read once per report or nightly run.
pub(crate) struct Inputs {
    cfg: CityConfig,
    grid: Vec<field_core::model::Cell>,
    cases: Vec<CaseView>,
    findings: Vec<ExternalFinding>,
    marks: Vec<(ActorId, field_core::model::ShiftMark)>,
    catalog: field_core::model::Catalog,
    /// Red-line violations in force (revoked ones left out).
    violations: Vec<super::Violation>,
    /// Each collector's certification standing, by user id.
    certificates: std::collections::HashMap<String, super::Certification>,
}

impl Center {
    /// What every report of one run reads once.
    pub(crate) fn assessment_inputs(&self, cfg: CityConfig) -> Result<Inputs> {
        let valid_months = cfg.certificate_valid_months;
        let grid = match self.storage.grid()? {
            Some((_, g)) => field_core::import::parse_grid(&g.to_string(), &Default::default())?,
            None => Vec::new(),
        };
        Ok(Inputs {
            cfg,
            grid,
            cases: self.storage.cases()?,
            findings: self.storage.findings()?,
            marks: self.storage.shift_marks()?,
            catalog: self.storage.catalog()?,
            violations: self
                .storage
                .violations()?
                .into_iter()
                .filter(|v| v.revoked.is_none())
                .collect(),
            certificates: {
                let mut by_user: std::collections::HashMap<String, Vec<super::Attempt>> =
                    std::collections::HashMap::new();
                for a in self.storage.attempts()? {
                    by_user.entry(a.collector_id.clone()).or_default().push(a);
                }
                by_user
                    .into_iter()
                    .map(|(id, attempts)| {
                        let name = attempts
                            .first()
                            .map(|a| a.collector.clone())
                            .unwrap_or_default();
                        let standing =
                            super::certification::standing(&name, attempts, valid_months);
                        (id, standing)
                    })
                    .collect()
            },
        })
    }
}

/// The cell codes in force for a user on a day: the latest assignment
/// from on or before it, else the user's current cells.
pub(super) fn cells_in_force<'a>(
    assignments: &'a [(NaiveDate, Vec<String>)],
    current: &'a [String],
    day: NaiveDate,
) -> &'a [String] {
    assignments
        .iter()
        .rev()
        .find(|(from, _)| *from <= day)
        .map(|(_, c)| c.as_slice())
        .unwrap_or(current)
}

impl Center {
    /// Today in the city's time zone.
    pub fn today(&self) -> Result<NaiveDate> {
        Ok(self
            .city_config()?
            .config
            .patrol
            .local_date(self.now_ms())?)
    }

    /// The city's time zone (times are stored in UTC and shown in it).
    pub fn city_tz(&self) -> Result<chrono_tz::Tz> {
        Ok(self.city_config()?.config.patrol.tz()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_met_and_missed_by_one() {
        let cfg = CityConfig::default();
        let month = |events: u64, subclasses: usize| {
            let mut r = Report {
                event_share: Rate::of(events, 100),
                error_rate: Rate::of(0, 100),
                subclass_codes: (0..subclasses).map(|i| format!("{i:05}")).collect(),
                ..Report::default()
            };
            finish(&mut r, &cfg);
            quota_verdicts(&r, &cfg)
        };
        assert!(
            month(80, 104).is_empty(),
            "80/20 events, 104 subclasses: met"
        );
        let missed = month(81, 103);
        assert_eq!(missed.len(), 2, "{missed:?}");
        assert!(
            missed[0].contains("81.0%") && missed[1].contains("103 distinct"),
            "{missed:?}"
        );
    }

    #[test]
    fn a_payable_never_goes_below_zero_silently() {
        let s = Settlement::of(1000.0, 1300.0, Overdraft::OwedBack, "2026-01-10".into());
        assert_eq!((s.payable, s.owed_back, s.waived), (0.0, 300.0, 0.0));
        let s = Settlement::of(1000.0, 1300.0, Overdraft::Capped, "2026-01-10".into());
        assert_eq!((s.payable, s.owed_back, s.waived), (0.0, 0.0, 300.0));
        let s = Settlement::of(1000.0, 250.0, Overdraft::OwedBack, "2026-01-10".into());
        assert_eq!((s.payable, s.owed_back, s.waived), (750.0, 0.0, 0.0));
    }

    #[test]
    fn a_score_is_graded_before_it_is_rounded() {
        let cfg = CityConfig::default();
        // valid 0.7499875 × 40 + 20 + 20 + 20 = 89.9995: shown 90.0, graded B.
        let r = Report {
            valid_report_rate: Rate {
                n: 0,
                d: 0,
                rate: Some(0.749_987_5),
            },
            ..Report::default()
        };
        let (score, grade) = composite(&r, &cfg);
        assert_eq!((score, grade), (90.0, 'B'));
    }
}
