//! The assessment, as pure functions: the geometry and time rules of a
//! collector's day (which patrol windows the track covered, the attendance
//! faults, the off-post stretches), the figures of a collector's days
//! (`figures`), and how days combine into months, periods, companies and a
//! quarter's settlement (`report`). The server feeds them what it loaded;
//! nothing here reads a store or a clock.
//!
//! Formulas are DOMAIN.md's "Assessment" section; every default is the
//! city's to configure ([`config::CityConfig`]).

pub mod attendance;
pub mod certification;
pub mod config;
pub mod contract;
pub mod coverage;
pub mod explain;
pub mod figures;
pub mod offpost;
pub mod period;
pub mod red_lines;
pub mod report;
pub mod rules;

pub use attendance::{AttendanceFault, attendance};
pub use config::CityConfig;
pub use coverage::{CoverageWindow, LocatedTrack, coverage, coverage_of, locate};
pub use figures::{Collected, Collector, Inputs, collector_figures};
pub use offpost::{OffPostStretch, off_post, off_post_of};
pub use report::{DayRates, Rate, Report, Settlement};
pub use rules::{AssessmentRules, PatrolDay};
