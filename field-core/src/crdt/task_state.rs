//! The merge of one task: the assignment and the latest answer, each
//! last-writer-wins by (HLC, actor). Every answer stays in the change log.

use crdts::LWWReg;
use serde::{Deserialize, Serialize};

use super::case_state::Marker;
use super::change::{Change, Op};
use crate::error::{Result, invalid};
use crate::model::{ActorId, TaskAnswer, TaskSpec};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TaskState {
    pub spec: LWWReg<Option<TaskSpec>, Marker>,
    pub answer: LWWReg<Option<(TaskAnswer, ActorId)>, Marker>,
}

/// A task as people read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    pub id: uuid::Uuid,
    pub spec: Option<TaskSpec>,
    pub answer: Option<TaskAnswer>,
    pub answered_by: Option<ActorId>,
    /// The answer change's own clock stamp (ms): what the device's
    /// `answered_at` is checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_stamp_ms: Option<i64>,
}

impl TaskState {
    pub fn apply(&mut self, change: &Change) -> Result<()> {
        let marker = (change.hlc, change.actor);
        match &change.op {
            Op::TaskAssign(spec) => {
                if spec.due_at < spec.created_at {
                    return Err(invalid(
                        "due_at",
                        "a task cannot fall due before it is created",
                    ));
                }
                self.spec.update(Some(spec.clone()), marker);
            }
            Op::TaskAnswer(a) => self.answer.update(Some((a.clone(), change.actor)), marker),
            _ => {}
        }
        Ok(())
    }

    pub fn view(&self, id: uuid::Uuid) -> TaskView {
        TaskView {
            id,
            spec: self.spec.val.clone(),
            answer: self.answer.val.as_ref().map(|(a, _)| a.clone()),
            answered_by: self.answer.val.as_ref().map(|(_, by)| *by),
            answer_stamp_ms: self
                .answer
                .val
                .as_ref()
                .map(|_| self.answer.marker.0.physical_ms() as i64),
        }
    }

    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("writing CBOR to a Vec cannot fail");
        out
    }

    pub fn from_cbor(bytes: &[u8]) -> Result<TaskState> {
        ciborium::from_reader(bytes)
            .map_err(|e| crate::Error::Corrupt(format!("task state is unreadable: {e}")))
    }
}
