//! Certification (上岗证) and training. A candidate sits three tests —
//! theory, a find-the-problem video, a field test — per attempt; an attempt
//! passing all three earns a certificate dated that day, valid for the
//! configured months; two failed attempts end the candidacy. Training
//! sessions are kept with date, topic and attendees; each collector is owed
//! a monthly number of them by the company. Reports flag patrol without a
//! valid certificate and a month's training shortfall.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: String,
    pub collector_id: String,
    pub collector: String,
    pub date: NaiveDate,
    pub theory: bool,
    pub video: bool,
    pub field: bool,
    pub recorded_by: String,
}

impl Attempt {
    pub fn passed(&self) -> bool {
        self.theory && self.video && self.field
    }
}

/// Where a collector stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Certification {
    pub collector: String,
    pub attempts: Vec<Attempt>,
    /// The certificate's date, if one was earned.
    pub certified_on: Option<NaiveDate>,
    /// The last day it is valid.
    pub valid_until: Option<NaiveDate>,
    /// Two failed attempts: no more.
    pub candidacy_ended: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Training {
    pub id: String,
    pub date: NaiveDate,
    pub topic: String,
    /// Collector user ids.
    pub attendees: Vec<String>,
    pub given_by: String,
    pub recorded_by: String,
}

/// A collector's standing from their attempts, with a certificate valid
/// for `valid_months`.
pub fn standing(collector: &str, mut attempts: Vec<Attempt>, valid_months: u32) -> Certification {
    attempts.sort_by_key(|a| a.date);
    let mut failed = 0;
    let mut certified_on = None;
    for a in &attempts {
        if a.passed() {
            certified_on = Some(a.date);
            break;
        }
        failed += 1;
        if failed >= 2 {
            break;
        }
    }
    Certification {
        collector: collector.to_string(),
        valid_until: certified_on
            .and_then(|d| d.checked_add_months(chrono::Months::new(valid_months)))
            .and_then(|d| d.pred_opt()),
        candidacy_ended: certified_on.is_none() && failed >= 2,
        certified_on,
        attempts,
    }
}

impl Certification {
    pub fn valid_on(&self, day: NaiveDate) -> bool {
        matches!((self.certified_on, self.valid_until), (Some(from), Some(to)) if from <= day && day <= to)
    }
}

/// The months (`YYYY-MM`) in which a collector attended fewer company
/// training sessions than the `per_month` owed, as compliance flags.
pub fn training_shortfall<'a>(
    collector_id: &str,
    months: impl IntoIterator<Item = &'a str>,
    trainings: &[Training],
    per_month: u32,
) -> Vec<String> {
    months
        .into_iter()
        .filter_map(|ym| {
            let got = trainings
                .iter()
                .filter(|t| {
                    t.given_by == "company"
                        && t.date.format("%Y-%m").to_string() == ym
                        && t.attendees.iter().any(|a| a == collector_id)
                })
                .count() as u32;
            (got < per_month)
                .then(|| format!("{ym}: {got} of {per_month} company training sessions"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(day: u32, pass: bool) -> Attempt {
        Attempt {
            id: day.to_string(),
            collector_id: "u".into(),
            collector: "u".into(),
            date: NaiveDate::from_ymd_opt(2025, 1, day).unwrap(),
            theory: true,
            video: pass,
            field: true,
            recorded_by: "admin".into(),
        }
    }

    #[test]
    fn two_failures_end_a_candidacy_and_a_certificate_expires() {
        let c = standing("u", vec![attempt(3, false), attempt(9, false)], 24);
        assert!(c.candidacy_ended && c.certified_on.is_none());
        let c = standing("u", vec![attempt(3, false), attempt(9, true)], 24);
        assert!(!c.candidacy_ended);
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            (c.certified_on, c.valid_until),
            (Some(d(2025, 1, 9)), Some(d(2027, 1, 8)))
        );
        assert!(
            c.valid_on(d(2026, 6, 1)) && !c.valid_on(d(2027, 1, 9)) && !c.valid_on(d(2025, 1, 8))
        );
    }
}
