//! Tasks on the device and the server: assigned by the center, answered by
//! the collector they are addressed to, merged like everything else.

use serde::Serialize;

use super::Store;
use crate::crdt::{Change, Op, TaskState, TaskView};
use crate::error::{Error, Result, invalid};
use crate::model::photo::inspect_photo;
use crate::model::{ActorId, TaskAnswer, TaskResult, TaskSpec, Timestamp};

/// A task with when its answer reached this replica.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskRow {
    #[serde(flatten)]
    pub task: TaskView,
    /// When the winning answer arrived here (for the server: the time that
    /// decides whether the task was done on time).
    pub answer_received_at: Option<Timestamp>,
}

/// What any replica checks of a task before assigning it.
pub fn check_task_spec(spec: &TaskSpec) -> Result<()> {
    if spec.case.is_none() && spec.place.is_none() {
        return Err(invalid("case", "a task needs a case or a place to go to"));
    }
    if spec.due_at <= spec.created_at {
        return Err(invalid(
            "due",
            "the deadline must be after the task is created",
        ));
    }
    Ok(())
}

impl Store {
    /// Assigns a task, authored by `actor` (the server writes as the staff
    /// member who created it).
    pub fn assign_task_as(&mut self, actor: ActorId, spec: TaskSpec) -> Result<Change> {
        check_task_spec(&spec)?;
        self.write_local_as(actor, |w| w.emit(Op::TaskAssign(spec)))
    }

    /// Answers a task addressed to this device's collector, with photos.
    pub fn answer_task(
        &mut self,
        task: uuid::Uuid,
        result: TaskResult,
        photos: Vec<Vec<u8>>,
        note: Option<String>,
        at: Option<Timestamp>,
    ) -> Result<Change> {
        let view = self.task(task)?;
        let spec = view.task.spec.ok_or_else(|| Error::NotFound {
            what: "task",
            id: task.to_string(),
        })?;
        if let Some(settings) = self.sync_settings()?
            && settings.user.id != spec.to_user
        {
            return Err(invalid(
                "task",
                format!("is addressed to {}, not to you", spec.to_name),
            ));
        }
        if photos.is_empty() {
            return Err(invalid("photo", "an answer needs at least one photo"));
        }
        let checked = photos
            .iter()
            .enumerate()
            .map(|(i, b)| inspect_photo(&format!("photo[{i}]"), b).map(|info| (info, b)))
            .collect::<Result<Vec<_>>>()?;
        let answered_at = match at {
            Some(t) => t,
            None => Timestamp::from_millis("at", self.now_ms() as i64)?,
        };
        self.write_local(|w| {
            for (info, bytes) in &checked {
                super::photos::put(w.tx(), info, bytes, w.now_ms)?;
            }
            let photos = checked.iter().map(|(info, _)| info.hash.clone()).collect();
            w.emit(Op::TaskAnswer(TaskAnswer {
                task,
                result,
                photos,
                note,
                answered_at,
            }))
        })
    }

    pub fn task(&self, id: uuid::Uuid) -> Result<TaskRow> {
        self.tasks_where("WHERE id = ?1", &id.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotFound {
                what: "task",
                id: id.to_string(),
            })
    }

    /// Tasks addressed to user `to_user`, or all with `None`, by deadline.
    pub fn tasks(&self, to_user: Option<&str>) -> Result<Vec<TaskRow>> {
        match to_user {
            Some(u) => self.tasks_where("WHERE to_user = ?1", u),
            None => self.tasks_where("WHERE ?1 IS NOT NULL", ""),
        }
    }

    fn tasks_where(&self, filter: &str, arg: &str) -> Result<Vec<TaskRow>> {
        let sql = format!("SELECT id, state, received_ms FROM tasks {filter} ORDER BY due_ms, id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([arg], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, state, received) = row?;
            let id =
                uuid::Uuid::parse_str(&id).map_err(|e| Error::Corrupt(format!("task id: {e}")))?;
            out.push(TaskRow {
                task: TaskState::from_cbor(&state)?.view(id),
                answer_received_at: received
                    .map(|ms| Timestamp::from_millis("received", ms))
                    .transpose()?,
            });
        }
        Ok(out)
    }
}
