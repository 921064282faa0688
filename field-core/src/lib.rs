//! `field-core`: what a collector's handheld device embeds.
//!
//! - [`model`] holds the domain types; their constructors are the only way in,
//!   so a value of them is already valid.
//! - [`crdt`] holds the change model and the merge rules: pure functions, no I/O.
//! - [`store`] is the one place that speaks SQL: it persists state and the
//!   change log in the same transaction.
//! - [`geo`] answers "which cell is this point in" and checks that cells tile.
//! - [`import`] parses GPX tracks and GeoJSON grids into domain types.
//! - [`assess`] holds the assessment's geometry and time rules (coverage,
//!   attendance, off post): pure functions over a collector's day.
//! - [`sync`] defines the portable change bundle (the sync protocol's payload).

pub mod assess;
pub mod crdt;
pub mod error;
pub mod geo;
pub mod import;
pub mod model;
pub mod recorder;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
