//! The city center's sync server.
//!
//! - [`storage`] is the one narrow interface to what the server keeps
//!   (users and devices, changes and cursors, photo blobs), with its SQLite
//!   and files implementation; a PostgreSQL or object-store backend would
//!   be another implementation of the same trait.
//! - [`service`] is the server's logic: enrolment and tokens, the
//!   authorisation of every change, sync, photo uploads, the center's views.
//!   It knows nothing of HTTP, so the simulator drives it directly.
//! - [`jobs`] runs on a schedule: the nightly roll-up of the assessment.
//! - [`http`] is the thin axum adapter: routes, the auth extractor, and the
//!   one mapping of errors to responses.

pub mod config;
pub mod exports;
pub mod http;
pub mod jobs;
pub mod service;
pub mod storage;

pub use http::{app, run};
