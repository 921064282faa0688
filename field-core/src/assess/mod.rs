//! The assessment's geometry and time rules, as pure functions over a
//! collector's day: which patrol windows the track covered, the attendance
//! faults of the shift's test cases, and the off-post stretches. The server
//! feeds them its synced data; nothing here reads a store or a clock.
//!
//! Formulas are DOMAIN.md's "Assessment" section; every default is the
//! city's to configure ([`rules::AssessmentRules`]).

pub mod attendance;
pub mod contract;
pub mod coverage;
pub mod offpost;
pub mod period;
pub mod rules;

pub use attendance::{AttendanceFault, attendance};
pub use coverage::{CoverageWindow, LocatedTrack, coverage, coverage_of, locate};
pub use offpost::{OffPostStretch, off_post, off_post_of};
pub use rules::{AssessmentRules, PatrolDay};
