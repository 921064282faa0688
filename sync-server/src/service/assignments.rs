//! Which cells a collector covers from which day: an assignment history,
//! so that a report charges only the days a collector was assigned.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::{Center, Result, invalid};
use crate::storage::{Principal, Role};

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
