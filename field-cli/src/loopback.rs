//! An embedded sync server on loopback (the sync-server library serving
//! real HTTP on 127.0.0.1 in this process), for the demo and the benches.

use std::sync::Arc;

use anyhow::{Context, Result};
use field_core::store::{Store, SyncSettings};
use field_core::sync::http::HttpTransport;
use field_core::sync::protocol::EnrollRequest;
use serde_json::{Value, json};
use sync_server::config::Limits;
use sync_server::service::{Center, ensure_admin, system_clock};
use sync_server::storage::Storage;
use sync_server::storage::sqlite::SqliteStorage;

/// The first day the demo's and benches' collectors are assigned.
pub const HISTORY_FROM: &str = "2026-01-01";

/// A server on loopback, stopped when dropped.
pub struct Loopback {
    pub url: String,
    pub storage: Arc<dyn Storage>,
    /// The server's logic, for in-process measurements beside the HTTP ones.
    pub center: Center,
    pub admin: String,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Loopback {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Loopback {
    /// Keeps serving until the user presses Ctrl-C (or SIGINT arrives).
    pub fn serve_until_interrupted(&self) -> Result<()> {
        self.rt.block_on(tokio::signal::ctrl_c())?;
        Ok(())
    }
}

pub fn start_server(dir: &std::path::Path) -> Result<Loopback> {
    let storage = Arc::new(SqliteStorage::open(dir)?);
    let admin =
        ensure_admin(storage.as_ref(), dir)?.context("the data directory already has an admin")?;
    serve(storage, admin)
}

/// `instances` servers on one PostgreSQL database (`url`, empty), photos
/// in DIR/blobs: each its own storage, pool and runtime, as separate
/// processes would be.
pub fn start_instances(
    dir: &std::path::Path,
    url: &str,
    instances: usize,
) -> Result<Vec<Loopback>> {
    let mut out = Vec::new();
    let mut admin = None;
    for i in 0..instances.max(1) {
        let blobs = sync_server::storage::blobs::Blobs::in_dir(&dir.join("blobs"))?;
        let storage: Arc<dyn Storage> =
            Arc::new(sync_server::storage::postgres::PgStorage::open(url, blobs)?);
        if admin.is_none() {
            let home = dir.join(format!("instance{i}"));
            std::fs::create_dir_all(&home)?;
            admin = Some(
                ensure_admin(storage.as_ref(), &home)?
                    .context("the database already has an admin: give the bench an empty one")?,
            );
        }
        out.push(serve(storage, admin.clone().unwrap_or_default())?);
    }
    Ok(out)
}

fn serve(storage: Arc<dyn Storage>, admin: String) -> Result<Loopback> {
    let center = Center::new(storage.clone(), Limits::default(), system_clock());
    // Named, and kept alive, so the benches can count the server's CPU
    // time by thread (`bench::sync::server_cpu`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("center")
        .thread_keep_alive(std::time::Duration::from_secs(3600))
        .enable_all()
        .build()?;
    let listener = rt.block_on(async { sync_server::http::listen(([127, 0, 0, 1], 0).into()) })?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(sync_server::run(listener, center.clone(), async {
        let _ = stopped.await;
    }));
    Ok(Loopback {
        url,
        center,
        storage,
        admin,
        rt,
        stop: Some(stop),
    })
}

/// Adds a collector and returns the one-time enrolment code.
/// Adds a collector assigned `cells` from `HISTORY_FROM`: the demo and the
/// benches simulate days before the moment they run.
pub fn add_collector(
    lb: &Loopback,
    name: &str,
    company: Option<&str>,
    cells: &[String],
) -> Result<String> {
    let r: Value = lb.admin()?.call(
        "POST",
        "/v1/center/users",
        Some(&json!({ "name": name, "company": company, "cells": cells, "from": HISTORY_FROM })),
    )?;
    Ok(r["enrolment_code"]
        .as_str()
        .context("enrolment code")?
        .to_string())
}

/// Another code for an existing collector (a second handset).
pub fn new_code(lb: &Loopback, name: &str) -> Result<String> {
    let r: Value =
        lb.admin()?
            .call::<(), Value>("POST", &format!("/v1/center/users/{name}/codes"), None)?;
    Ok(r["enrolment_code"]
        .as_str()
        .context("enrolment code")?
        .to_string())
}

/// Enrols an initialised device with a code.
pub fn enroll(lb: &Loopback, store: &mut Store, code: &str, device_name: &str) -> Result<()> {
    let resp = HttpTransport::new(&lb.url, None)?.enroll(&EnrollRequest {
        code: code.to_string(),
        actor: store.actor(),
        device_name: Some(device_name.to_string()),
    })?;
    store.set_sync_settings(&SyncSettings {
        server: lb.url.clone(),
        token: resp.token,
        user: resp.user,
    })?;
    Ok(())
}

/// A new device of a new collector, enrolled.
pub fn enrolled(
    lb: &Loopback,
    path: &std::path::Path,
    name: &str,
    cells: &[String],
) -> Result<Store> {
    let code = add_collector(lb, name, None, cells)?;
    let mut store = Store::init(path, name)?;
    enroll(lb, &mut store, &code, name)?;
    Ok(store)
}

impl Loopback {
    /// An HTTP client with the admin token.
    pub fn admin(&self) -> Result<HttpTransport> {
        Ok(HttpTransport::new(&self.url, Some(self.admin.clone()))?)
    }
}
