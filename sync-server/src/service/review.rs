//! The center's review workflow: decisions on cases (register, reject,
//! dispatch, handled, close, rework) and tasks sent to collectors. Every
//! decision is a change authored by the staff member's own actor, so it is
//! merged, kept in the case's history and synced to the reporting device
//! like everything else.

use field_core::crdt::TaskView;
use field_core::model::{
    CaseId, CategoryCode, LonLat, Placement, RejectReason, Status, TaskKind, TaskResult, TaskSpec,
    Timestamp,
};
use field_core::store::{Decision, SeenStatus, TaskRow};
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::{Center, Result, ServiceError, invalid};
use crate::storage::{Principal, Role};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Register,
    Reject,
    Dispatch,
    Handled,
    Close,
    Rework,
}

/// `POST /v1/center/cases/{id}/decisions`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub action: Action,
    /// For `reject`: wrong_category, wrong_location, duplicate, false_report,
    /// out_of_scope, bad_photo, other (with `text`).
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    /// For `dispatch`: the department; for `handled`: who answered.
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// The statuses and status context of the case view the decision was
    /// made on; without it, the server's current view.
    #[serde(default)]
    pub seen: Option<SeenStatus>,
    /// With a `false_report` rejection: also record a `false_information`
    /// red-line violation against the reporting collector, citing the case.
    #[serde(default)]
    pub record_violation: bool,
}

fn reject_reason(reason: Option<&str>, text: Option<&str>) -> Result<RejectReason> {
    let r = reason.ok_or_else(|| invalid("reason", "a rejection needs a reason"))?;
    Ok(match r {
        "wrong_category" => RejectReason::WrongCategory,
        "wrong_location" => RejectReason::WrongLocation,
        "duplicate" => RejectReason::Duplicate,
        "false_report" => RejectReason::FalseReport,
        "out_of_scope" => RejectReason::OutOfScope,
        "bad_photo" => RejectReason::BadPhoto,
        "other" => RejectReason::Other(
            text.filter(|t| !t.trim().is_empty())
                .ok_or_else(|| invalid("text", "reason `other` needs a text"))?
                .to_string(),
        ),
        other => {
            return Err(invalid(
                "reason",
                format!(
                    "`{other}` is not a reject reason (wrong_category, wrong_location, duplicate, false_report, out_of_scope, bad_photo, other)"
                ),
            ));
        }
    })
}

/// `POST /v1/center/tasks`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTaskRequest {
    pub kind: TaskKind,
    #[serde(default)]
    pub case: Option<CaseId>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub category: Option<String>,
    /// The collector: user id or name.
    pub to: String,
    /// A duration from now (`30m`, `2h`) or an RFC 3339 time; absent, the
    /// city's default for the kind and the cell (verify 30 min; check 1 h
    /// in the city, 2 h in rural cells).
    #[serde(default)]
    pub due: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A task as the center lists it: on time, late or open, with both times.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskStatusRow {
    #[serde(flatten)]
    pub task: TaskView,
    pub answer_received_at: Option<Timestamp>,
    /// `on_time`, `late` (answered or arrived after the deadline), `overdue`
    /// (unanswered past the deadline) or `open`.
    pub timeliness: String,
}

impl Center {
    pub fn decide(
        &self,
        p: &Principal,
        id: CaseId,
        req: DecisionRequest,
    ) -> Result<serde_json::Value> {
        self.require(p, Operation::Decide)?;
        let view = self
            .storage
            .case(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("case {id}")))?;
        let quick_fix = view.origin.as_ref().is_some_and(|o| o.is_quick_fix());
        let record_violation = req.record_violation;
        if record_violation
            && !(req.action == Action::Reject && req.reason.as_deref() == Some("false_report"))
        {
            return Err(invalid(
                "record_violation",
                "a violation is recorded with a false_report rejection",
            ));
        }
        let (to, reason) = match req.action {
            Action::Register => (Status::Registered, None),
            Action::Reject => (
                Status::Rejected,
                Some(reject_reason(req.reason.as_deref(), req.text.as_deref())?),
            ),
            Action::Dispatch => {
                if req
                    .department
                    .as_deref()
                    .is_none_or(|d| d.trim().is_empty())
                {
                    return Err(invalid(
                        "department",
                        "dispatch needs the department (--to DEPT)",
                    ));
                }
                (Status::Dispatched, None)
            }
            Action::Handled => (Status::Handled, None),
            Action::Close => (Status::Closed, None),
            Action::Rework => {
                if !view.statuses().contains(&Status::Handled) {
                    return Err(invalid(
                        "action",
                        "rework sends a handled case back to its department",
                    ));
                }
                (Status::Dispatched, None)
            }
        };
        if to == Status::Closed && !quick_fix && !self.check_confirmed(id)? {
            return Err(invalid(
                "action",
                "closing needs a check task on this case answered yes (create one with `field center task create --kind check`)",
            ));
        }
        let actor = self.storage.staff_actor(&p.user.id)?;
        let decision = Decision {
            to,
            reason,
            note: req.note,
            department: req.department,
            seen: req.seen,
        };
        let change = self.storage.decide(actor, id, decision)?;
        if record_violation {
            let collector = view
                .origin
                .as_ref()
                .map(|o| o.collector.clone())
                .unwrap_or_default();
            self.record_violation(
                p,
                super::NewViolation {
                    collector,
                    kind: super::RedLine::FalseInformation,
                    at: None,
                    cases: vec![id],
                    photos: Vec::new(),
                    note: Some("recorded with the case's false_report rejection".into()),
                },
            )?;
        }
        // The case's figures belong to the day it was reported.
        let days = self.days_changed_by(&change)?;
        self.storage.mark_dirty(&days)?;
        self.case_show(p, id)
    }

    /// Whether a check task on `case` was answered "yes, handled".
    fn check_confirmed(&self, case: CaseId) -> Result<bool> {
        Ok(self.storage.tasks(None)?.iter().any(|t| {
            t.task
                .spec
                .as_ref()
                .is_some_and(|s| s.kind == TaskKind::Check && s.case == Some(case))
                && t.task
                    .answer
                    .as_ref()
                    .is_some_and(|a| a.result == TaskResult::Yes)
        }))
    }

    pub fn create_task(&self, p: &Principal, req: NewTaskRequest) -> Result<TaskStatusRow> {
        self.require(p, Operation::Direct)?;
        let user = self
            .storage
            .users()?
            .into_iter()
            .find(|u| (u.id == req.to || u.name == req.to) && u.role == Role::Collector)
            .ok_or_else(|| invalid("to", format!("no collector `{}`", req.to)))?;
        let now = self.now_ms();
        let due_ms = match req.due.as_deref().map(str::trim) {
            Some(due) => match humantime::parse_duration(due) {
                Ok(d) => now + d.as_millis() as i64,
                Err(_) => Timestamp::parse("due", due)?.millis(),
            },
            None => {
                // The cell of the case, or of the place asked about.
                let cell = match (req.case, req.lon, req.lat) {
                    (Some(case), _, _) => self.storage.case_cell(case)?,
                    (None, Some(x), Some(y)) => self.storage.locate_cell(LonLat::new(x, y)?)?,
                    _ => None,
                };
                let d = self.city_config()?.config.task_deadlines;
                now + d.minutes(req.kind, cell.as_deref()) * 60_000
            }
        };
        let place = match (req.lon, req.lat) {
            (Some(x), Some(y)) => Some(Placement {
                pos: LonLat::new(x, y)?,
                cell: None,
            }),
            (None, None) => None,
            _ => return Err(invalid("lat", "give both --lon and --lat")),
        };
        if let Some(case) = req.case {
            let view = self
                .storage
                .case(case)?
                .ok_or_else(|| invalid("case", format!("case {case} is unknown")))?;
            if req.kind == TaskKind::Check
                && !view
                    .statuses()
                    .iter()
                    .any(|s| matches!(s, Status::Dispatched | Status::Handled))
            {
                return Err(invalid(
                    "kind",
                    format!(
                        "a check task is for a dispatched or handled case; {case} is {:?}",
                        view.statuses()
                    ),
                ));
            }
        }
        let category = req
            .category
            .as_deref()
            .map(|c| {
                self.storage
                    .catalog()
                    .and_then(|cat| Ok(cat.resolve("category", c)?.code.clone()))
            })
            .transpose()?;
        let spec = TaskSpec {
            id: uuid::Uuid::new_v4(),
            kind: req.kind,
            case: req.case,
            place,
            category: category.map(|c: CategoryCode| c),
            to_user: user.id.clone(),
            to_name: user.name.clone(),
            created_at: Timestamp::from_millis("created_at", now)?,
            due_at: Timestamp::from_millis("due", due_ms)?,
            note: req.note,
        };
        let id = spec.id;
        let actor = self.storage.staff_actor(&p.user.id)?;
        let change = self.storage.assign_task(actor, spec)?;
        let days = self.days_changed_by(&change)?;
        self.storage.mark_dirty(&days)?;
        let row = self
            .storage
            .task(id)?
            .ok_or_else(|| ServiceError::Internal("task vanished".into()))?;
        Ok(self.timeliness(row))
    }

    pub fn task_list(&self, p: &Principal, to: Option<&str>) -> Result<Vec<TaskStatusRow>> {
        self.require(p, Operation::ReadCases)?;
        let user_id = match to {
            Some(t) => Some(
                self.storage
                    .users()?
                    .into_iter()
                    .find(|u| u.id == t || u.name == t)
                    .ok_or_else(|| invalid("to", format!("no user `{t}`")))?
                    .id,
            ),
            None => None,
        };
        Ok(self
            .storage
            .tasks(user_id.as_deref())?
            .into_iter()
            .map(|t| self.timeliness(t))
            .collect())
    }

    /// On time means the answer *reached the center* by the deadline: the
    /// center cannot act on an answer it does not have, and a device clock
    /// can be wrong. Both times are kept.
    fn timeliness(&self, row: TaskRow) -> TaskStatusRow {
        let due = row
            .task
            .spec
            .as_ref()
            .map(|s| s.due_at.millis())
            .unwrap_or(i64::MAX);
        // The city's rule (one place: `Timeliness::on_time`).
        let rule = self
            .city_config()
            .map(|c| c.config.timeliness)
            .unwrap_or_default();
        let timeliness = match (&row.task.answer, row.answer_received_at) {
            (Some(a), Some(received))
                if rule.on_time(
                    due,
                    a.answered_at.millis(),
                    row.task.answer_stamp_ms,
                    received.millis(),
                ) =>
            {
                "on_time"
            }
            (Some(_), _) => "late",
            (None, _) if self.now_ms() > due => "overdue",
            (None, _) => "open",
        };
        TaskStatusRow {
            task: row.task,
            answer_received_at: row.answer_received_at,
            timeliness: timeliness.into(),
        }
    }
}
