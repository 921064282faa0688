//! `field enroll`, `field sync`, `field status`: the device and the server.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use field_core::store::SyncSettings;
use field_core::sync::client::{self, Progress};
use field_core::sync::http::HttpTransport;
use field_core::sync::protocol::EnrollRequest;
use serde_json::json;

use crate::device::open;
use crate::output::Output;

pub fn enroll(
    home: &Path,
    server: &str,
    code: &str,
    name: Option<String>,
    out: &Output,
) -> Result<()> {
    let mut t = HttpTransport::new(server, None)?;
    // A fresh handset: its store is made here, named by the server.
    let mut store = crate::device::open_or_create(home)?;
    // The address as understood (`host:port` → `https://host:port`).
    let server = &t.base().to_string();
    let resp = t
        .enroll(&EnrollRequest {
            code: code.to_string(),
            actor: store.actor(),
            device_name: name,
        })
        .with_context(|| format!("enrolling with {server}"))?;
    store.set_sync_settings(&SyncSettings {
        server: server.to_string(),
        token: resp.token,
        user: resp.user.clone(),
    })?;
    out.show(
        &json!({ "server": server, "user": resp.user, "actor": store.actor() }),
        |_| {
            crate::output::tr(
                "cli-enrolled",
                &[
                    ("name", resp.user.name.clone().into()),
                    ("role", resp.user.role.clone().into()),
                    ("server", server.clone().into()),
                    ("cells", resp.user.cells.join(", ").into()),
                ],
            )
        },
    )
}

pub fn sync(home: &Path, out: &Output) -> Result<()> {
    let mut store = open(home)?;
    let settings = store
        .sync_settings()?
        .ok_or_else(|| anyhow!(crate::output::t("cli-sync-not-enrolled")))?;
    let mut t = HttpTransport::new(&settings.server, Some(settings.token.clone()))?;
    let show_bar = !out.is_json() && std::io::stderr().is_terminal();
    let bar = show_bar.then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let started = Instant::now();
    let result = client::sync(&mut store, &mut t, &mut |p| {
        if let Some(b) = &bar {
            match p {
                Progress::Pushed { done, total } => {
                    b.set_message("pushing changes");
                    b.set_length(total as u64);
                    b.set_position(done as u64);
                }
                Progress::Pulled { changes } => b.set_message(format!("pulled {changes} changes")),
                Progress::PhotoBytes { done, total } => {
                    b.set_message("uploading photos");
                    b.set_length(total);
                    b.set_position(done);
                }
            }
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = result.with_context(|| format!("syncing with {}", settings.server))?;
    let report = json!({
        "pushed": summary.pushed,
        "refused": summary.refused,
        "pulled": summary.pulled,
        "photos_sent": summary.photos_sent,
        "photo_bytes": summary.photo_bytes,
        "bytes_sent": t.bytes_sent,
        "bytes_received": t.bytes_received,
        "round_trips": summary.round_trips,
        "busy_waits": t.busy_waits,
        "seconds": started.elapsed().as_secs_f64(),
        "pending_changes": store.outbox_len()?,
        "clock_offset_ms": summary.clock_offset_ms,
        "clock_warning": summary.clock_warning(),
        "reissued": summary.reissued,
        "actor": store.actor().to_string(),
        "photos_lost": summary.photos_lost,
        "server_restored": summary.server_restored,
    });
    if let Some(w) = summary.clock_warning() {
        eprintln!(
            "{}{}",
            crate::output::t("cli-warning"),
            crate::output::printable(&w)
        );
    }
    for lost in &summary.photos_lost {
        eprintln!(
            "{}{}",
            crate::output::t("cli-warning"),
            crate::output::tr(
                "cli-photo-not-sent",
                &[("reason", crate::output::printable(lost).into())]
            )
        );
    }
    out.show(&report, |r| {
        let n = |k: &str| r[k].to_string();
        let mut line = crate::output::tr(
            "cli-synced",
            &[
                ("pushed", n("pushed").into()),
                ("refused", n("refused").into()),
                ("pulled", n("pulled").into()),
                ("photos", n("photos_sent").into()),
                ("up", n("bytes_sent").into()),
                ("down", n("bytes_received").into()),
                ("trips", n("round_trips").into()),
                (
                    "seconds",
                    format!("{:.2}", r["seconds"].as_f64().unwrap_or_default()).into(),
                ),
            ],
        );
        if t.busy_waits > 0 {
            line.push_str(&crate::output::tr(
                "cli-busy",
                &[("times", t.busy_waits.into())],
            ));
        }
        if summary.server_restored {
            line.push('\n');
            line.push_str(&crate::output::t("cli-server-restored"));
        }
        if summary.reissued > 0 {
            line.push('\n');
            line.push_str(&crate::output::tr(
                "cli-reissued",
                &[
                    ("count", summary.reissued.into()),
                    (
                        "actor",
                        r["actor"].as_str().unwrap_or_default().to_string().into(),
                    ),
                ],
            ));
        }
        line
    })
}

/// `field status`: the sync state beside the store's size.
#[derive(serde::Serialize)]
struct StatusView {
    #[serde(flatten)]
    sync: field_core::store::SyncStatus,
    /// The store's size and what pruning at the retention would free.
    store: field_core::store::Pruned,
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn status(home: &Path, retention_days: u32, out: &Output) -> Result<()> {
    let mut store = open(home)?;
    let tz = crate::device::city_tz(&store)?;
    let view = StatusView {
        sync: store.sync_status()?,
        store: store.prune(retention_days, true)?,
    };
    out.show(&view, |v| {
        let (s, p) = (&v.sync, &v.store);
        crate::output::tr(
            "cli-status",
            &[
                (
                    "server",
                    s.server
                        .clone()
                        .unwrap_or_else(|| crate::output::t("cli-not-enrolled"))
                        .into(),
                ),
                ("user", s.user.clone().unwrap_or_default().into()),
                ("changes", s.pending_changes.into()),
                ("photos", s.pending_photos.into()),
                ("refused", s.refused_changes.into()),
                ("buffered", s.buffered_changes.into()),
                (
                    "last",
                    s.last_sync
                        .map(|t| crate::output::city_time(t, tz))
                        .unwrap_or_else(|| crate::output::t("cli-never"))
                        .into(),
                ),
                ("size", mb(p.store_bytes).into()),
                ("days", p.retention_days.into()),
                ("free", mb(p.photo_bytes + p.raw_fix_bytes).into()),
                ("prunable_photos", p.photos.into()),
                ("fixes", p.raw_fixes.into()),
            ],
        )
    })
}

pub fn prune(home: &Path, retention_days: u32, dry_run: bool, out: &Output) -> Result<()> {
    let mut store = open(home)?;
    let before = store.store_bytes();
    let p = store.prune(retention_days, dry_run)?;
    out.show(&p, |p| {
        crate::output::tr(
            "cli-pruned",
            &[
                (
                    "what",
                    crate::output::t(if p.dry_run {
                        "cli-would-prune"
                    } else {
                        "cli-did-prune"
                    })
                    .into(),
                ),
                ("photos", p.photos.into()),
                ("photo_size", mb(p.photo_bytes).into()),
                ("fixes", p.raw_fixes.into()),
                ("days", p.retention_days.into()),
                ("before", mb(before).into()),
                ("after", mb(p.store_bytes).into()),
            ],
        )
    })
}
