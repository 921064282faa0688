//! Jobs the server runs on its own schedule (`scheduler`), which are also
//! commands: `sync-server nightly`, `sync-server backup`.

mod nightly;
pub mod scheduler;

pub use nightly::NightlySummary;
