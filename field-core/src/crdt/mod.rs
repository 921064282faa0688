//! The change model and the merge rules. Pure: a replica's state is a
//! function of the set of changes it holds, whatever order they came in.
//! Nothing here touches a file, a socket or the wall clock.

pub mod case_state;
pub mod change;
pub mod hlc;
pub mod task_state;
pub mod track_codec;

pub use case_state::{CaseState, CaseView};
pub use change::{
    CHANGE_SCHEMA, CaseEdit, CaseReport, Change, ChangeId, Op, StatusSet, TrackBatch, TrackWire,
};
pub use hlc::{Clock, Hlc, HlcGenerator, ManualClock, SkewedClock, SystemClock};
pub use task_state::{TaskState, TaskView};
