//! Tasks on the device and the server: assigned by the center, answered by
//! the collector they are addressed to, merged like everything else.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::Store;
use crate::crdt::{Change, Op, TaskState, TaskView};
use crate::error::{Error, Result, invalid};
use crate::model::photo::inspect_photo;
use crate::model::{ActorId, TaskAnswer, TaskKind, TaskResult, TaskSpec, Timestamp};

/// A task with when its answer reached this replica.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskRow {
    #[serde(flatten)]
    pub task: TaskView,
    /// When the winning answer arrived here (for the server: the time that
    /// decides whether the task was done on time).
    pub answer_received_at: Option<Timestamp>,
}

fn load(tx: &Connection, id: &str) -> Result<Option<TaskState>> {
    let bytes: Option<Vec<u8>> = tx
        .prepare_cached("SELECT state FROM tasks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    bytes.map(|b| TaskState::from_cbor(&b)).transpose()
}

/// Merges a task change and keeps the projections queries need.
pub(super) fn apply(tx: &Connection, change: &Change, now_ms: i64) -> Result<()> {
    let id = change
        .task_id()
        .expect("task ops name their task")
        .to_string();
    let mut state = load(tx, &id)?.unwrap_or_default();
    let before = state.answer.marker;
    state
        .apply(change)
        .map_err(|e| invalid(format!("change {}", change.id()), e.to_string()))?;
    let view = state.view(change.task_id().expect("task op"));
    let answer_won = matches!(change.op, Op::TaskAnswer(_)) && state.answer.marker != before;
    let spec = view.spec.as_ref();
    tx.prepare_cached(
        "INSERT INTO tasks (id, state, kind, case_id, to_user, due_ms, answered_ms, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, kind = excluded.kind,
           case_id = excluded.case_id, to_user = excluded.to_user, due_ms = excluded.due_ms,
           answered_ms = excluded.answered_ms,
           received_ms = CASE WHEN ?9 THEN excluded.received_ms ELSE tasks.received_ms END",
    )?
    .execute(params![
        id,
        state.to_cbor(),
        spec.map(|s| match s.kind {
            TaskKind::Verify => "verify",
            TaskKind::Check => "check",
        }),
        spec.and_then(|s| s.case).map(|c| c.to_string()),
        spec.map(|s| s.to_user.clone()),
        spec.map(|s| s.due_at.millis()),
        view.answer.as_ref().map(|a| a.answered_at.millis()),
        answer_won.then_some(now_ms),
        answer_won,
    ])?;
    Ok(())
}

impl Store {
    /// Assigns a task, authored by `actor` (the server writes as the staff
    /// member who created it).
    pub fn assign_task_as(&mut self, actor: ActorId, spec: TaskSpec) -> Result<Change> {
        if spec.case.is_none() && spec.place.is_none() {
            return Err(invalid("case", "a task needs a case or a place to go to"));
        }
        if spec.due_at <= spec.created_at {
            return Err(invalid(
                "due",
                "the deadline must be after the task is created",
            ));
        }
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
                super::photos::put(w.tx(), info, bytes)?;
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
