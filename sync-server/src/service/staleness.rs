//! Which days' figures an input changes, so that exactly those rollups go
//! stale: keyed by the day the figure belongs to, not the day the input
//! arrived (a decision today on a case reported on the 26th changes the
//! 26th). Every input that changes a figure calls in here.

use chrono::NaiveDate;
use field_core::crdt::{Change, Op};
use field_core::model::CaseId;

use super::{Center, Result};

impl Center {
    /// The local days whose figures a change alters.
    pub(super) fn days_changed_by(&self, change: &Change) -> Result<Vec<NaiveDate>> {
        let rules = self.city_config()?.config.patrol;
        self.days_changed_by_under(&rules, change)
    }

    /// [`Center::days_changed_by`] with the patrol rules already read (a
    /// push of hundreds of changes reads the configuration once).
    pub(super) fn days_changed_by_under(
        &self,
        rules: &field_core::assess::AssessmentRules,
        change: &Change,
    ) -> Result<Vec<NaiveDate>> {
        let times: Vec<i64> = match &change.op {
            Op::TrackAppend(b) => b
                .decode()
                .map(|pts| pts.iter().map(|(_, p)| p.at.millis()).collect())
                .unwrap_or_default(),
            Op::CaseReport(r) => vec![r.origin.reported_at.millis()],
            Op::ShiftMark(m) => vec![m.at.millis()],
            // A gap shows in the explanation of the days it touches.
            Op::TrackGap(g) => vec![g.from.millis(), g.to.millis()],
            // A task counts on the day it falls due.
            Op::TaskAssign(t) => vec![t.due_at.millis()],
            Op::TaskAnswer(a) => match self.storage.task(a.task)?.and_then(|t| t.task.spec) {
                Some(spec) => vec![spec.due_at.millis()],
                None => vec![a.answered_at.millis()],
            },
            // A case's figures (valid, error, subclasses, misses) count on
            // the day it was reported.
            Op::StatusSet(s) => self.report_time(s.case)?.into_iter().collect(),
            Op::CaseEdit(e) => self.report_time(e.case)?.into_iter().collect(),
        };
        let mut days: Vec<NaiveDate> = times
            .into_iter()
            .filter_map(|t| rules.local_date(t).ok())
            .collect();
        days.sort();
        days.dedup();
        Ok(days)
    }

    fn report_time(&self, case: CaseId) -> Result<Option<i64>> {
        Ok(self
            .storage
            .case(case)?
            .and_then(|v| v.origin.map(|o| o.reported_at.millis())))
    }

    /// Marks the days of `ms` instants stale.
    pub(super) fn stale_at(&self, instants: &[i64]) -> Result<()> {
        let rules = self.city_config()?.config.patrol;
        let days: Vec<NaiveDate> = instants
            .iter()
            .filter_map(|t| rules.local_date(*t).ok())
            .collect();
        Ok(self.storage.mark_dirty(&days)?)
    }

    /// Marks every rolled-up day from `from` on stale (a configuration
    /// version or an assignment changes all of them).
    pub(super) fn stale_from(&self, from: Option<NaiveDate>) -> Result<()> {
        let days: Vec<NaiveDate> = self
            .storage
            .rollup_days()?
            .into_iter()
            .filter(|d| from.is_none_or(|f| *d >= f))
            .collect();
        Ok(self.storage.mark_dirty(&days)?)
    }
}
