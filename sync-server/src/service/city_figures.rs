//! The center's own figures (DOMAIN "City figures"): problem resolution
//! rate (closed / registered) and timely resolution rate (closed within the
//! department's deadline, counted from dispatch, / closed), per department
//! and per category, over the cases reported in a period.

use std::collections::BTreeMap;

use field_core::crdt::Op;
use field_core::model::{CaseSource, Status};
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::{Center, Result};
use crate::storage::Principal;
use field_core::assess::Rate;
use field_core::assess::report::period_days;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolutionRow {
    /// A department, or a category code.
    pub key: String,
    /// closed / registered.
    pub resolution: Rate,
    /// closed within the deadline / closed.
    pub timely_resolution: Rate,
    /// The closed cases that took longer than the deadline.
    pub late: Vec<field_core::model::CaseId>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CityFigures {
    pub period: String,
    pub resolution: Rate,
    pub timely_resolution: Rate,
    pub by_department: Vec<ResolutionRow>,
    pub by_category: Vec<ResolutionRow>,
}

fn registered(s: Status) -> bool {
    matches!(
        s,
        Status::Registered | Status::Dispatched | Status::Handled | Status::Closed
    )
}

impl Center {
    pub fn city_figures(&self, p: &Principal, period: &str) -> Result<CityFigures> {
        self.require(p, Operation::ReadCases)?;
        let days = period_days(period)?;
        let cfg = self.city_config()?.config;
        let rules = &cfg.patrol;
        let mut by_dep: BTreeMap<String, ResolutionRow> = BTreeMap::new();
        let mut by_cat: BTreeMap<String, ResolutionRow> = BTreeMap::new();
        let mut all = ResolutionRow::default();
        for v in self.storage.cases()? {
            let Some(o) = &v.origin else { continue };
            if matches!(o.source, CaseSource::Test | CaseSource::QuickFix)
                || !rules
                    .local_date(o.reported_at.millis())
                    .is_ok_and(|d| days.contains(&d))
                || !v.statuses().into_iter().any(registered)
            {
                continue;
            }
            // From the history: the department it went to, when it was
            // first dispatched, when it was closed.
            let (mut department, mut dispatched, mut closed) = (None, None, None);
            for h in self.storage.case_history(v.id)? {
                if let Ok(Op::StatusSet(s)) = serde_json::from_value::<Op>(h.op.clone()) {
                    match s.to {
                        Status::Dispatched => {
                            department = s.department.clone().or(department);
                            dispatched = dispatched.or(Some(s.at.millis()));
                        }
                        Status::Closed => closed = Some(s.at.millis()),
                        _ => {}
                    }
                }
            }
            let is_closed = v.statuses() == [Status::Closed];
            let dep = department.unwrap_or_else(|| "(not dispatched)".into());
            let deadline_h = cfg
                .departments
                .get(&dep)
                .copied()
                .unwrap_or(cfg.department_deadline_hours);
            let on_time = match (dispatched, closed) {
                (Some(d), Some(c)) => (c - d) as f64 <= deadline_h * 3_600_000.0,
                (None, Some(_)) => true,
                _ => false,
            };
            let cat = v
                .category
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            for row in [
                by_dep.entry(dep.clone()).or_insert_with(|| ResolutionRow {
                    key: dep.clone(),
                    ..Default::default()
                }),
                by_cat.entry(cat.clone()).or_insert_with(|| ResolutionRow {
                    key: cat.clone(),
                    ..Default::default()
                }),
                &mut all,
            ] {
                row.resolution = row.resolution.plus(Rate::of(is_closed as u64, 1));
                if is_closed {
                    row.timely_resolution = row.timely_resolution.plus(Rate::of(on_time as u64, 1));
                    if !on_time {
                        row.late.push(v.id);
                    }
                }
            }
        }
        Ok(CityFigures {
            period: period.to_string(),
            resolution: all.resolution,
            timely_resolution: all.timely_resolution,
            by_department: by_dep.into_values().collect(),
            by_category: by_cat.into_values().collect(),
        })
    }
}
