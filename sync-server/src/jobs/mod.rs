//! Jobs that run on a schedule beside the server (cron, a systemd timer):
//! `sync-server nightly`.

mod nightly;

pub use nightly::NightlySummary;
