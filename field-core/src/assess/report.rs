//! Where a report is put together: the typed [`Report`] of a collector,
//! a company, a day or a longer period, and the arithmetic that combines
//! days into calendar months (the grain of the error deduction and the
//! quotas), months into periods, collectors into a company, and a
//! company's quarter into its settlement. Formulas are DOMAIN.md's, named
//! the same. A day's figures are [`super::figures`].

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::config::{CityConfig, Overdraft, QuotaLevel};
use super::contract;
use super::explain::Explain;
use crate::error::{Result, invalid};

/// n / d, with the rate when d > 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub n: u64,
    pub d: u64,
    pub rate: Option<f64>,
}

impl Rate {
    pub fn of(n: u64, d: u64) -> Rate {
        Rate {
            n,
            d,
            rate: (d > 0).then(|| n as f64 / d as f64),
        }
    }

    pub fn plus(self, o: Rate) -> Rate {
        Rate::of(self.n + o.n, self.d + o.d)
    }
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
    pub fn of(day: NaiveDate, r: &Report) -> DayRates {
        DayRates {
            day,
            coverage: r.coverage,
            miss_rate: r.miss_rate,
            timeliness: r.timeliness,
            error_rate: r.error_rate,
        }
    }

    /// Several collectors' same day, pooled (numerators and denominators add).
    pub fn pool(series: &[Vec<DayRates>]) -> Vec<DayRates> {
        let Some(first) = series.first() else {
            return Vec::new();
        };
        (0..first.len())
            .map(|i| {
                let mut d = first[i].clone();
                for s in &series[1..] {
                    if let Some(o) = s.get(i) {
                        d.coverage = d.coverage.plus(o.coverage);
                        d.miss_rate = d.miss_rate.plus(o.miss_rate);
                        d.timeliness = d.timeliness.plus(o.timeliness);
                        d.error_rate = d.error_rate.plus(o.error_rate);
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
    pub fn of(fee: f64, deductions: f64, overdraft: Overdraft, due_by: String) -> Settlement {
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
pub fn period_days(period: &str) -> Result<Vec<NaiveDate>> {
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
pub fn finish(r: &mut Report, cfg: &CityConfig) {
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
pub fn settle_month(r: &mut Report, cfg: &CityConfig) {
    r.errors_above_threshold =
        contract::errors_above_threshold(r.error_rate.n, r.error_rate.d, cfg.quotas.error_rate_max);
    finish(r, cfg);
}

/// The monthly quotas a month's figures (over registered cases) miss.
pub fn quota_verdicts(r: &Report, cfg: &CityConfig) -> Vec<String> {
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
pub fn month_of(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

/// Whether a period is a calendar month or a quarter (quotas apply).
pub fn monthly_period(period: &str) -> bool {
    quarter_of(period).is_some()
        || NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").is_ok()
}

/// Adds up reports (days of a period, collectors of a company) and derives
/// the rest from the sums; explain lists are concatenated.
pub fn combine(parts: &[Report], who: &str, period: &str, cfg: &CityConfig) -> Report {
    let mut t = Report {
        who: who.to_string(),
        period: period.to_string(),
        ..Report::default()
    };
    let mut explain: Option<Explain> = None;
    for r in parts {
        t.coverage = t.coverage.plus(r.coverage);
        t.timeliness = t.timeliness.plus(r.timeliness);
        t.verify_on_time = t.verify_on_time.plus(r.verify_on_time);
        t.check_on_time = t.check_on_time.plus(r.check_on_time);
        t.error_rate = t.error_rate.plus(r.error_rate);
        t.miss_rate = t.miss_rate.plus(r.miss_rate);
        t.valid_report_rate = t.valid_report_rate.plus(r.valid_report_rate);
        t.event_share = t.event_share.plus(r.event_share);
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
pub fn quarter_of(period: &str) -> Option<(i32, u32)> {
    let (y, q) = period.split_once("-Q")?;
    Some((y.parse().ok()?, q.parse().ok()?))
}

/// DOMAIN's composite with default weights; a rate with nothing to count
/// counts as perfect (no tasks due: nothing late).
/// Σ weight × rate over every rate a city may weigh, on 0–100; graded on
/// the exact score, rounded only for display. A rate with nothing to count
/// scores as met (nothing required, nothing missed), but a valid report
/// rate with no reports scores 0.
pub fn composite(r: &Report, cfg: &CityConfig) -> (f64, char) {
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

/// One collector's period, combined from their day reports.
pub struct CollectorPeriod {
    /// The period's report (quota verdicts at the collector level, each
    /// day's rates when asked for).
    pub report: Report,
    /// Its calendar months (or their parts in the period), each settled on
    /// its own: the grain of the error deduction and of the quotas.
    pub months: Vec<(String, Report)>,
}

/// A collector's period from their day reports (`per_day[i]` is
/// `days[i]`): days group into calendar months, each month settles its
/// errors above the threshold, the months add up; quotas are judged per
/// month at the collector level.
pub fn collector_period(
    who: &str,
    period: &str,
    days: &[NaiveDate],
    per_day: &[Report],
    cfg: &CityConfig,
    daily: bool,
) -> CollectorPeriod {
    let mut grouped: Vec<(String, Vec<Report>)> = Vec::new();
    for (d, r) in days.iter().zip(per_day) {
        let ym = month_of(*d);
        match grouped.last_mut() {
            Some((m, parts)) if *m == ym => parts.push(r.clone()),
            _ => grouped.push((ym, vec![r.clone()])),
        }
    }
    let months: Vec<(String, Report)> = grouped
        .into_iter()
        .map(|(ym, parts)| {
            let mut m = combine(&parts, who, &ym, cfg);
            settle_month(&mut m, cfg);
            (ym, m)
        })
        .collect();
    let parts: Vec<Report> = months.iter().map(|(_, m)| m.clone()).collect();
    let mut r = combine(&parts, who, period, cfg);
    let quarter = quarter_of(period).is_some();
    if monthly_period(period) && cfg.quotas.level == QuotaLevel::Collector {
        r.quota_breaches = months
            .iter()
            .flat_map(|(ym, m)| {
                quota_verdicts(m, cfg)
                    .into_iter()
                    .map(move |v| if quarter { format!("{ym}: {v}") } else { v })
            })
            .collect();
    }
    if daily {
        r.daily = days
            .iter()
            .zip(per_day)
            .map(|(d, r)| DayRates::of(*d, r))
            .collect();
    }
    r.days = days.len() as u32;
    if r.uncertified_patrol_days > 0 {
        r.compliance.push(format!(
            "patrolled {} day(s) without a valid certificate",
            r.uncertified_patrol_days
        ));
    }
    CollectorPeriod { report: r, months }
}

/// A company's period from its collectors' periods: their figures add up
/// (each collector's deductions already settled by month), the quotas are
/// judged per calendar month over all of them at the company level, and a
/// quarter with a fee on record is settled.
pub fn company_period(
    company: &str,
    period: &str,
    days: &[NaiveDate],
    collectors: &[CollectorPeriod],
    cfg: &CityConfig,
) -> Report {
    let reports: Vec<Report> = collectors.iter().map(|c| c.report.clone()).collect();
    let mut total = combine(&reports, &format!("company {company}"), period, cfg);
    total.days = days.len() as u32;
    let quarter = quarter_of(period);
    if monthly_period(period) && cfg.quotas.level == QuotaLevel::Company {
        let mut yms: Vec<&String> = collectors
            .iter()
            .flat_map(|c| &c.months)
            .map(|(ym, _)| ym)
            .collect();
        yms.sort();
        yms.dedup();
        for ym in yms {
            let parts: Vec<Report> = collectors
                .iter()
                .flat_map(|c| &c.months)
                .filter(|(m, _)| m == ym)
                .map(|(_, r)| r.clone())
                .collect();
            let month = combine(&parts, company, ym, cfg);
            total
                .quota_breaches
                .extend(quota_verdicts(&month, cfg).into_iter().map(|v| {
                    if quarter.is_some() {
                        format!("{ym}: {v}")
                    } else {
                        v
                    }
                }));
        }
    }
    if reports.iter().any(|r| !r.daily.is_empty()) {
        let series: Vec<Vec<DayRates>> = reports.iter().map(|r| r.daily.clone()).collect();
        total.daily = DayRates::pool(&series);
    }
    if let (Some((year, q)), Some(fee)) = (quarter, cfg.fees.get(company)) {
        let (y, m) = if q == 4 {
            (year + 1, 1)
        } else {
            (year, 3 * q + 1)
        };
        total.settlement = Some(Settlement::of(
            *fee,
            total.deductions_total,
            cfg.overdraft,
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
    total
}

#[cfg(test)]
mod tests {
    use super::super::config::CityConfig;
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
