//! Where a change is authorised. Every pushed change is judged here before
//! the merge sees it; a refusal names the rule, and the other changes of
//! the batch are judged on their own.
//!
//! Rules: a device authors only as its own actor; a collector reports cases,
//! edits their own cases while `reported`, and appends their own track and
//! shift marks; only center staff change a case's status. Times in a change
//! may not lie more than 24 h in the future.

use std::collections::HashMap;

use field_core::crdt::{Change, Op};
use field_core::model::{ActorId, CaseId, Status};

use super::Center;
use crate::storage::Principal;

/// Why a change was refused, with the HTTP-like code the device sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
}

fn forbidden(reason: impl Into<String>) -> Refusal {
    Refusal {
        code: 403,
        reason: reason.into(),
    }
}

fn bad(reason: impl Into<String>) -> Refusal {
    Refusal {
        code: 400,
        reason: reason.into(),
    }
}

/// Changes may not carry times further ahead than this.
pub const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;

impl Center {
    /// `earlier` holds the cases reported by changes admitted earlier in the
    /// same push (case → reporting device): an edit may follow its report
    /// in one batch.
    pub(super) fn authorize(
        &self,
        p: &Principal,
        change: &Change,
        earlier: &HashMap<CaseId, ActorId>,
    ) -> Result<(), Refusal> {
        let Some(device) = p.device else {
            return Err(forbidden(
                "this token has no device: enrol a device to push changes",
            ));
        };
        if change.actor != device {
            return Err(forbidden(format!(
                "a device may only author changes as its own actor ({device})"
            )));
        }
        self.check_times(change)?;
        if p.user.role.is_staff() {
            return Ok(());
        }
        match &change.op {
            Op::CaseReport(_) | Op::TrackAppend(_) | Op::ShiftMark(_) => Ok(()),
            Op::TaskAssign(_) => Err(forbidden("only center staff assign tasks")),
            Op::TaskAnswer(a) => {
                let task = self
                    .storage
                    .task(a.task)
                    .map_err(|err| bad(err.to_string()))?
                    .and_then(|t| t.task.spec)
                    .ok_or_else(|| forbidden(format!("task {} is unknown here", a.task)))?;
                if task.to_user != p.user.id {
                    return Err(forbidden(format!(
                        "task {} is addressed to {}, not to {}",
                        a.task, task.to_name, p.user.name
                    )));
                }
                Ok(())
            }
            Op::StatusSet(_) => Err(forbidden("only reviewers change a case's status")),
            Op::CaseEdit(e) => {
                let view = self
                    .storage
                    .case(e.case)
                    .map_err(|err| bad(err.to_string()))?;
                let reporter = match (&view, earlier.get(&e.case)) {
                    (Some(v), _) => v.origin.as_ref().map(|o| o.reporter),
                    (None, Some(actor)) => Some(*actor),
                    (None, None) => {
                        return Err(forbidden(format!(
                            "case {} is unknown here: its report must reach the server first",
                            e.case
                        )));
                    }
                };
                let owner = match reporter {
                    Some(actor) => self
                        .storage
                        .device(actor)
                        .map_err(|err| bad(err.to_string()))?
                        .map(|d| d.user_id),
                    None => None,
                };
                if owner.as_deref() != Some(p.user.id.as_str()) {
                    return Err(forbidden(format!(
                        "case {} was reported by someone else",
                        e.case
                    )));
                }
                if let Some(v) = &view
                    && v.statuses() != [Status::Reported]
                {
                    return Err(forbidden(format!(
                        "case {} is {:?}: a collector edits a case only while reported",
                        e.case,
                        v.statuses()
                    )));
                }
                Ok(())
            }
        }
    }

    fn check_times(&self, change: &Change) -> Result<(), Refusal> {
        let limit = self.now_ms() + MAX_FUTURE_MS;
        let late = |what: &str, ms: i64| {
            if ms > limit {
                Err(bad(format!("{what}: more than 24 h in the future")))
            } else {
                Ok(())
            }
        };
        late("hlc", change.hlc.physical_ms() as i64)?;
        match &change.op {
            Op::CaseReport(r) => late("origin.reported_at", r.origin.reported_at.millis()),
            Op::StatusSet(s) => late("at", s.at.millis()),
            Op::ShiftMark(m) => late("at", m.at.millis()),
            Op::TrackAppend(batch) => {
                let points = batch.decode().map_err(|e| bad(e.to_string()))?;
                match points.iter().map(|(_, p)| p.at.millis()).max() {
                    Some(t) => late("track.at", t),
                    None => Ok(()),
                }
            }
            Op::TaskAssign(t) => late("due_at", t.created_at.millis()),
            Op::TaskAnswer(a) => late("answered_at", a.answered_at.millis()),
            Op::CaseEdit(_) => Ok(()),
        }
    }
}
