//! `field bench …`: measurements printed as a table, each against a
//! baseline measured in the same run (the ratio is the figure).

mod assess;
mod browser;
mod city;
mod console;
mod store;
mod sync;

use anyhow::Result;
use serde::Serialize;

use crate::cli::BenchCmd;
use crate::output::{Output, table};

#[derive(Serialize)]
pub struct Row {
    pub measure: String,
    pub items: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub baseline: String,
    pub baseline_seconds: f64,
    /// baseline time / our time: 1.0 means as fast as the baseline.
    pub ratio: f64,
}

pub fn row(
    measure: &str,
    items: usize,
    seconds: f64,
    baseline: &str,
    baseline_seconds: f64,
) -> Row {
    Row {
        measure: measure.into(),
        items,
        seconds,
        per_second: items as f64 / seconds,
        baseline: baseline.into(),
        baseline_seconds,
        ratio: baseline_seconds / seconds,
    }
}

pub fn run(cmd: BenchCmd, out: &Output) -> Result<()> {
    let dir = tempfile::tempdir()?;
    match cmd {
        BenchCmd::Store {
            points,
            changes,
            cells,
            lookups,
        } => {
            let rows = store::run(dir.path(), points, changes, cells, lookups)?;
            out.show(&rows, |rows| {
                let body = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.measure.clone(),
                            r.items.to_string(),
                            format!("{:.3}", r.seconds),
                            format!("{:.0}", r.per_second),
                            r.baseline.clone(),
                            format!("{:.3}", r.baseline_seconds),
                            format!("{:.2}", r.ratio),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(
                    &[
                        "MEASURE",
                        "ITEMS",
                        "SECONDS",
                        "PER_SECOND",
                        "BASELINE",
                        "BASE_SECONDS",
                        "RATIO",
                    ],
                    &body,
                )
            })
        }
        BenchCmd::Assess {
            collectors,
            days,
            every,
            backend,
            database,
        } => {
            let postgres = postgres_target(backend, database)?;
            let rows = assess::run(dir.path(), collectors, days, every, postgres)?;
            show_measures(out, &rows)
        }
        BenchCmd::Console {
            cases,
            collectors,
            browser,
        } => {
            let rows = console::run(dir.path(), cases, collectors, browser)?;
            show_measures(out, &rows)
        }
        BenchCmd::Sync {
            devices,
            history,
            backend,
            database,
            instances,
        } => {
            let postgres = match backend {
                crate::cli::BenchBackend::Sqlite => None,
                crate::cli::BenchBackend::Postgres => Some((
                    database.ok_or_else(|| {
                        anyhow::anyhow!(
                            "--backend postgres needs --database postgres://… (an empty database)"
                        )
                    })?,
                    instances,
                )),
            };
            let rows = sync::run(dir.path(), devices, history, postgres)?;
            show_measures(out, &rows)
        }
    }
}

/// The database a bench runs on beside the embedded one, if asked.
fn postgres_target(
    backend: crate::cli::BenchBackend,
    database: Option<String>,
) -> Result<Option<String>> {
    match backend {
        crate::cli::BenchBackend::Sqlite => Ok(None),
        crate::cli::BenchBackend::Postgres => database.map(Some).ok_or_else(|| {
            anyhow::anyhow!("--backend postgres needs --database postgres://… (an empty database)")
        }),
    }
}

/// The benches that report a measure, its value and a note (with the
/// baseline it was set against): as a table, or JSON with `--json`.
fn show_measures(out: &Output, rows: &[sync::SyncRow]) -> Result<()> {
    out.show(&rows, |rows| {
        let body = rows
            .iter()
            .map(|r| vec![r.measure.clone(), r.value.clone(), r.note.clone()])
            .collect::<Vec<_>>();
        table(&["MEASURE", "VALUE", "NOTE"], &body)
    })
}
