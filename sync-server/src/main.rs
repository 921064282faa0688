//! `sync-server --data DIR --listen ADDR`: a few lines; the work is in the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use sync_server::config::FileConfig;
use sync_server::service::{Center, ensure_admin, system_clock};
use sync_server::storage::sqlite::SqliteStorage;

#[derive(Parser, Debug)]
#[command(
    name = "sync-server",
    version,
    about = "The city center's sync server."
)]
struct Args {
    /// Data directory (SQLite files and photo blobs). Default ./server-data.
    #[arg(long, env = "SYNC_SERVER_DATA", global = true)]
    data: Option<PathBuf>,
    /// Address to listen on. Default 127.0.0.1:8080; port 0 picks a free one.
    #[arg(long, env = "SYNC_SERVER_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// TOML file with `data`, `listen`, `[limits]` and `[review]`.
    #[arg(long, env = "SYNC_SERVER_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    job: Option<Job>,
}

#[derive(clap::Subcommand, Debug)]
enum Job {
    /// Roll up a finished day (default: yesterday) and every day late data
    /// made stale, then exit. Run it nightly (cron, a systemd timer).
    Nightly {
        /// YYYY-MM-DD.
        #[arg(long)]
        day: Option<chrono::NaiveDate>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let file = match &args.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let data = args
        .data
        .or(file.data)
        .unwrap_or_else(|| PathBuf::from("server-data"));
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid default"));
    let storage = Arc::new(
        SqliteStorage::open(&data).with_context(|| format!("opening {}", data.display()))?,
    );
    if ensure_admin(storage.as_ref(), &data)?.is_some() {
        eprintln!(
            "admin token written to {}",
            data.join("admin.token").display()
        );
    }
    let center = Center::new(storage, file.limits, system_clock()).with_rules(file.review);
    if let Some(Job::Nightly { day }) = args.job {
        let summary = center.nightly(day).map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    // The first stdout line is the address, for scripts and tests.
    println!("listening on http://{}", listener.local_addr()?);
    sync_server::run(listener, center, shutdown_signal()).await?;
    eprintln!("sync-server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
