//! Red lines (三条高压线): staff record a violation against a collector —
//! `bribery` (吃拿卡要), `false_information` (虚假信息), `at_fault_dispute`
//! (有责纠纷) — with evidence and who recorded it. Each costs the
//! configured heavy fine; the second of a company's contract year marks its
//! contract for termination. A violation is revoked with a reason, never
//! deleted: the history stays.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::model::{CaseId, PhotoHash, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedLine {
    Bribery,
    FalseInformation,
    AtFaultDispute,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    pub at: Timestamp,
    pub by: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub id: String,
    pub collector: String,
    pub collector_id: String,
    pub company: Option<String>,
    pub kind: RedLine,
    /// When it happened (the day it counts on).
    pub at: Timestamp,
    #[serde(default)]
    pub cases: Vec<CaseId>,
    #[serde(default)]
    pub photos: Vec<PhotoHash>,
    #[serde(default)]
    pub note: Option<String>,
    pub recorded_by: String,
    pub recorded_at: Timestamp,
    #[serde(default)]
    pub revoked: Option<Revocation>,
}

/// The first day of the contract year holding `day` (contract years start
/// on `start_month`/1).
pub fn contract_year_start(day: NaiveDate, start_month: u32) -> NaiveDate {
    let m = start_month.clamp(1, 12);
    let y = if day.month() >= m {
        day.year()
    } else {
        day.year() - 1
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_years_start_on_their_month() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(contract_year_start(d(2026, 11, 27), 1), d(2026, 1, 1));
        assert_eq!(contract_year_start(d(2026, 3, 1), 4), d(2025, 4, 1));
        assert_eq!(contract_year_start(d(2026, 4, 1), 4), d(2026, 4, 1));
    }
}
