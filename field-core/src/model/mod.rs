//! Domain types and their validation. Constructors check; nothing else does,
//! so a `LonLat`, a `CategoryCode` or a `CellCode` in hand is always valid.

pub mod case;
pub mod catalog;
pub mod cell;
pub mod finding;
pub mod ids;
pub mod limits;
pub mod photo;
pub mod position;
pub mod survey;
pub mod task;
pub mod time;
pub mod track;

pub use case::{
    CaseFields, CaseOrigin, CasePhoto, CaseSource, PhotoRole, Placement, RejectReason, Status,
    StatusEntry,
};
pub use catalog::{Catalog, CatalogEntry, CategoryCode, CodeStyle, Family, catalog_search};
pub use cell::{Cell, CellCode, CellCodePattern, Zone};
pub use finding::ExternalFinding;
pub use ids::{ActorId, CaseId};
pub use photo::{PhotoHash, PhotoInfo};
pub use position::LonLat;
pub use survey::Survey;
pub use task::{TaskAnswer, TaskKind, TaskResult, TaskSpec};
pub use time::Timestamp;
pub use track::{GapCause, ShiftKind, ShiftMark, TrackGap, TrackPoint};
