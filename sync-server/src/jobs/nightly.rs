//! The nightly roll-up: a finished day (default yesterday in the city's
//! zone) and every day an input made stale are computed for every collector
//! and kept, so month and quarter reports read them instead of recomputing.
//! Which days go stale is `service/staleness.rs`; the figures are
//! `service/assessment.rs`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::service::{Center, ReportQuery, Result, ServiceError};
use crate::storage::{Role, User};

/// What a nightly run did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NightlySummary {
    pub days: Vec<NaiveDate>,
    pub reports: usize,
    /// Set when another instance held the nightly lease: nothing was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// How long one nightly run may hold its lease before another instance
/// may take over (a run killed mid-way does not block the next night).
pub const NIGHTLY_LEASE_MS: i64 = 2 * 3600 * 1000;

impl Center {
    /// The nightly job: rolls up `day` (default: yesterday in the city's
    /// zone) and every day late data made stale, for every collector.
    pub fn nightly(&self, day: Option<NaiveDate>) -> Result<NightlySummary> {
        // Exactly one instance runs it: a lease in the database.
        let holder = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4());
        let now = self.now();
        if !self
            .storage()
            .take_lease("nightly", &holder, now, now + NIGHTLY_LEASE_MS)?
        {
            return Ok(NightlySummary {
                days: Vec::new(),
                reports: 0,
                skipped: Some("another instance is running the nightly roll-up".into()),
            });
        }
        let result = self.nightly_under_lease(day);
        self.storage().release_lease("nightly", &holder)?;
        result
    }

    fn nightly_under_lease(&self, day: Option<NaiveDate>) -> Result<NightlySummary> {
        let cfg = self.city_config()?;
        let rules = &cfg.config.patrol;
        let today = rules.local_date(self.now())?;
        let mut days = self.storage().dirty_days()?;
        days.push(day.unwrap_or_else(|| today.pred_opt().unwrap_or(today)));
        days.sort();
        days.dedup();
        days.retain(|d| *d < today);
        let inp = self.assessment_inputs(cfg.config.clone())?;
        let users: Vec<User> = self
            .storage()
            .users()?
            .into_iter()
            .filter(|u| u.role == Role::Collector)
            .collect();
        // Cleared first: data arriving while the days are computed marks
        // them again.
        for d in &days {
            self.storage().clear_dirty(*d)?;
        }
        let jobs: Vec<(&User, NaiveDate)> = days
            .iter()
            .flat_map(|d| users.iter().map(move |u| (u, *d)))
            .collect();
        let mut reports = 0;
        // A day at a time: the reports of one day are held, not a month's.
        for day_jobs in jobs.chunks(users.len().max(1)) {
            let Some((_, d)) = day_jobs.first() else {
                continue;
            };
            let q = ReportQuery {
                period: d.to_string(),
                collector: None,
                company: None,
                explain: true,
                daily: false,
            };
            for ((u, d), r) in day_jobs
                .iter()
                .zip(self.collector_reports(day_jobs, &q, &inp)?)
            {
                let json =
                    serde_json::to_string(&r).map_err(|e| ServiceError::Internal(e.to_string()))?;
                self.storage().put_rollup(*d, &u.id, &json)?;
                reports += 1;
            }
        }
        Ok(NightlySummary {
            days,
            reports,
            skipped: None,
        })
    }
}
