//! The city's assessment configuration: every threshold, weight, fine and
//! deadline a city sets (DOMAIN.md's defaults). The server versions it and
//! edits it as TOML; the formulas read it and nothing else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AssessmentRules;
use crate::error::{Result, invalid};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MissRules {
    pub radius_m: f64,
    pub lookback_hours: i64,
}

impl Default for MissRules {
    fn default() -> MissRules {
        MissRules {
            radius_m: 50.0,
            lookback_hours: 4,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub valid: f64,
    pub miss: f64,
    pub verify: f64,
    pub check: f64,
    /// The other rates a city may grade by (the Xiaoshan rules weigh
    /// coverage, miss, timeliness and error); 0 by default.
    pub coverage: f64,
    pub error: f64,
    pub timeliness: f64,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights {
            valid: 0.4,
            miss: 0.2,
            verify: 0.2,
            check: 0.2,
            coverage: 0.0,
            error: 0.0,
            timeliness: 0.0,
        }
    }
}

/// Where the monthly quotas are evaluated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaLevel {
    #[default]
    Company,
    Collector,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grades {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
}

impl Default for Grades {
    fn default() -> Grades {
        Grades {
            a: 90.0,
            b: 75.0,
            c: 60.0,
            d: 40.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    pub event_share_max: f64,
    pub subclasses_min: u64,
    pub error_rate_max: f64,
    /// Where the monthly quotas are evaluated: `company` (the tender
    /// section's obligation, the default) or `collector`.
    pub level: QuotaLevel,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            event_share_max: 0.8,
            subclasses_min: 104,
            error_rate_max: 0.04,
            level: QuotaLevel::Company,
        }
    }
}

/// Yuan deducted per fault (the rule table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Deductions {
    pub per_uncovered_window: f64,
    pub per_late_task: f64,
    pub per_error_above_threshold: f64,
    pub per_missed_finding: f64,
    pub per_attendance_fault: f64,
    pub per_off_post_event: f64,
    /// The heavy fine of a red-line violation.
    pub per_violation: f64,
}

impl Default for Deductions {
    fn default() -> Deductions {
        Deductions {
            per_uncovered_window: 2.0,
            per_late_task: 10.0,
            per_error_above_threshold: 20.0,
            per_missed_finding: 20.0,
            per_attendance_fault: 50.0,
            per_off_post_event: 100.0,
            per_violation: 5000.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CityConfig {
    pub patrol: AssessmentRules,
    pub miss: MissRules,
    /// Reject reasons that count against the collector.
    pub error_reasons: Vec<String>,
    pub weights: Weights,
    /// The lowest composite score of each grade (below `d` is E).
    pub grades: Grades,
    pub quotas: Quotas,
    pub deductions: Deductions,
    /// Each company's quarterly contract fee, in yuan.
    pub fees: BTreeMap<String, f64>,
    /// When a quarter's deductions exceed its fee: `owed_back` (the
    /// company owes the difference, the default) or `capped` (deductions
    /// stop at the fee). Either way the payable never goes below zero.
    pub overdraft: Overdraft,
    pub timeliness: Timeliness,
    /// The month contract years start (1 = January): the second red-line
    /// violation in one marks the company's contract for termination.
    pub contract_year_start_month: u32,
    /// Hours a department has from dispatch to close, by department name;
    /// others get `department_deadline_hours`.
    pub departments: BTreeMap<String, f64>,
    pub department_deadline_hours: f64,
    /// Months a work permit (上岗证) stays valid.
    pub certificate_valid_months: u32,
    /// Company training sessions each collector is owed a month.
    pub training_per_month: u32,
    /// Whether patrol without a valid certificate is flagged (off for a
    /// city that does not record certificates).
    pub require_certificate: bool,
    /// Default task deadlines, by kind and cell type.
    pub task_deadlines: TaskDeadlines,
    /// The code style the city works in (`cjt214` or `gbt47678`): where
    /// both appear, the catalog's mapping makes one subclass one code for
    /// counting subclasses and matching findings.
    pub code_style: crate::model::CodeStyle,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskDeadlines {
    pub verify_minutes: i64,
    pub check_urban_minutes: i64,
    pub check_rural_minutes: i64,
    /// Rural cells: codes, or code prefixes (a town's 9 digits, a
    /// community's 12).
    pub rural_cells: Vec<String>,
}

impl Default for TaskDeadlines {
    fn default() -> TaskDeadlines {
        TaskDeadlines {
            verify_minutes: 30,
            check_urban_minutes: 60,
            check_rural_minutes: 120,
            rural_cells: Vec::new(),
        }
    }
}

impl TaskDeadlines {
    /// Minutes a task of `kind` in `cell` gets by default.
    pub fn minutes(&self, kind: crate::model::TaskKind, cell: Option<&str>) -> i64 {
        let rural =
            cell.is_some_and(|c| self.rural_cells.iter().any(|r| c.starts_with(r.as_str())));
        match kind {
            crate::model::TaskKind::Verify => self.verify_minutes,
            crate::model::TaskKind::Check if rural => self.check_rural_minutes,
            crate::model::TaskKind::Check => self.check_urban_minutes,
        }
    }
}

/// When a task counts as done on time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeliness {
    /// `received_by_deadline` (the answer reached the server by the
    /// deadline, the default) or `answered_by_deadline` (answered on the
    /// device by the deadline and received within `received_within_hours`,
    /// for cities that allow offline answers).
    pub rule: TimelinessRule,
    pub received_within_hours: i64,
    /// A device's answer time is believed only within this of the answer's
    /// own clock stamp; otherwise the receipt time decides.
    pub max_clock_skew_minutes: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelinessRule {
    #[default]
    ReceivedByDeadline,
    AnsweredByDeadline,
}

impl Default for Timeliness {
    fn default() -> Timeliness {
        Timeliness {
            rule: TimelinessRule::ReceivedByDeadline,
            received_within_hours: 24,
            max_clock_skew_minutes: 30,
        }
    }
}

impl Timeliness {
    /// Whether an answer made at `answered_ms` (by the device, whose own
    /// change was stamped at `stamp_ms`) and received at `received_ms` is on
    /// time for `due_ms`.
    pub fn on_time(
        &self,
        due_ms: i64,
        answered_ms: i64,
        stamp_ms: Option<i64>,
        received_ms: i64,
    ) -> bool {
        match self.rule {
            TimelinessRule::ReceivedByDeadline => answered_ms <= due_ms && received_ms <= due_ms,
            TimelinessRule::AnsweredByDeadline => {
                let believed = stamp_ms.is_some_and(|s| {
                    (s - answered_ms).abs() <= self.max_clock_skew_minutes * 60_000
                });
                let answered = if believed { answered_ms } else { received_ms };
                answered <= due_ms && received_ms <= due_ms + self.received_within_hours * 3_600_000
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overdraft {
    #[default]
    OwedBack,
    Capped,
}

impl Default for CityConfig {
    fn default() -> CityConfig {
        CityConfig {
            patrol: AssessmentRules::default(),
            miss: MissRules::default(),
            error_reasons: [
                "wrong_category",
                "wrong_location",
                "duplicate",
                "false_report",
                "bad_photo",
                "other",
            ]
            .map(String::from)
            .to_vec(),
            weights: Weights::default(),
            grades: Grades::default(),
            overdraft: Overdraft::default(),
            timeliness: Timeliness::default(),
            contract_year_start_month: 1,
            departments: BTreeMap::new(),
            department_deadline_hours: 72.0,
            certificate_valid_months: 24,
            training_per_month: 4,
            require_certificate: true,
            task_deadlines: TaskDeadlines::default(),
            code_style: crate::model::CodeStyle::default(),
            quotas: Quotas::default(),
            deductions: Deductions::default(),
            fees: BTreeMap::new(),
        }
    }
}

impl CityConfig {
    /// Parses and checks a configuration: the time zone resolves, weights
    /// are each within 0–1 and add up to 1, grade cut-offs fall from a to d.
    pub fn from_toml(text: &str) -> Result<CityConfig> {
        let c: CityConfig = toml::from_str(text).map_err(|e| invalid("config", e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        self.patrol.tz()?;
        let w = &self.weights;
        let all = [
            w.valid,
            w.miss,
            w.verify,
            w.check,
            w.coverage,
            w.error,
            w.timeliness,
        ];
        if all.iter().any(|x| !(0.0..=1.0).contains(x)) {
            return Err(invalid("weights", "each is between 0 and 1"));
        }
        if (all.iter().sum::<f64>() - 1.0).abs() > 1e-9 {
            return Err(invalid("weights", "must add up to 1"));
        }
        let g = &self.grades;
        if !(g.a >= g.b && g.b >= g.c && g.c >= g.d && g.d >= 0.0 && g.a <= 100.0) {
            return Err(invalid(
                "grades",
                "cut-offs must fall from a to d, within 0–100",
            ));
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}
