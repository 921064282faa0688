//! `sync-server --data DIR --listen ADDR`: a few lines; the work is in the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use sync_server::config::FileConfig;
use sync_server::service::{Center, ensure_admin, system_clock};
use sync_server::storage::Storage;
use sync_server::storage::postgres::PgStorage;
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
    /// Where photos live: a directory (default DATA/blobs) or an
    /// S3-compatible bucket, `s3://BUCKET[/PREFIX]?endpoint=URL&region=R`
    /// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "SYNC_SERVER_BLOBS", global = true)]
    blobs: Option<String>,
    /// Where the records live: the embedded SQLite files in the data
    /// directory (the default, `sqlite`), or a PostgreSQL database,
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, shared by any number of
    /// instances (each with its own `--data` for its admin token copy).
    #[arg(long, env = "SYNC_SERVER_DATABASE", global = true)]
    database: Option<String>,
    /// TOML file with `data`, `listen`, `database`, `blobs`, `[limits]` and `[review]`.
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
    /// Print who may do what at the center (the table in API.md), then exit.
    Policy,
    /// Move a city out of its data directory: `--to postgres://…` copies
    /// the records into an empty PostgreSQL database (the change log
    /// replayed through the merge with its receipt times, the center's
    /// tables copied, then the state digests of both sides compared — a
    /// difference fails the command); `--blobs s3://…` copies the photos
    /// (each read back and hash-checked; safe to run again). Run it with the
    /// server stopped, then start servers with the same `--database` and
    /// `--blobs`.
    Migrate {
        /// The data directory to move from.
        #[arg(long)]
        from: PathBuf,
        /// Where the records go: an empty PostgreSQL database.
        #[arg(long)]
        to: Option<String>,
    },
    /// Replace the admin token (a lost or leaked one) and write the new one
    /// to DATA/admin.token; the old token stops working. Run it with the
    /// server stopped, or use `POST /v1/center/token/rotate`.
    RotateAdminToken,
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
    if let Some(Job::Policy) = args.job {
        print!("{}", sync_server::service::authorize::table_markdown());
        return Ok(());
    }
    if let Some(Job::Migrate { from, to }) = &args.job {
        let (from, to, blobs) = (from.clone(), to.clone(), args.blobs.clone());
        // Not beside a server on the same data: uploads would race the copy.
        let _lock = sync_server::storage::lock_data_dir(&from)?;
        let (summary, equal) =
            tokio::task::spawn_blocking(move || migrate(&from, to.as_deref(), blobs.as_deref()))
                .await??;
        println!("{}", serde_json::to_string(&summary)?);
        anyhow::ensure!(
            equal,
            "the state digests differ after the move: see the summary above"
        );
        return Ok(());
    }
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
    // One data directory, one server: the lock lives as long as the process.
    // The nightly job runs beside a serving server (SQLite takes turns).
    let _lock = match args.job {
        Some(Job::Nightly { .. }) => None,
        _ => Some(sync_server::storage::lock_data_dir(&data)?),
    };
    let blobs = args.blobs.or(file.blobs);
    let database = args.database.or(file.database);
    let storage = {
        let data = data.clone();
        // Opening talks to the database and maybe a bucket: off the async threads.
        tokio::task::spawn_blocking(move || {
            open_storage(&data, database.as_deref(), blobs.as_deref())
        })
        .await??
    };
    if let Some(Job::RotateAdminToken) = args.job {
        sync_server::service::rotate_admin_file(storage.as_ref(), &data)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!(
            "new admin token written to {}",
            data.join("admin.token").display()
        );
        return Ok(());
    }
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
    // Handlers in place before anyone can know the address: a SIGTERM
    // right after it is a clean stop, not the default kill.
    let stop = shutdown_signal()?;
    // The first stdout line is the address, for scripts and tests.
    println!("listening on http://{}", listener.local_addr()?);
    sync_server::run(listener, center, stop).await?;
    eprintln!("sync-server stopped");
    // Work still running on blocking threads (a huge grid being checked)
    // must not keep a stopped server alive: every write is a transaction,
    // so leaving now loses nothing accepted.
    std::process::exit(0)
}

/// The records in `database` (PostgreSQL) or the embedded store in
/// `data`, the photos in `blobs` (a directory or a bucket) or DATA/blobs.
fn open_storage(
    data: &std::path::Path,
    database: Option<&str>,
    blobs: Option<&str>,
) -> anyhow::Result<Arc<dyn Storage>> {
    let blobs = match open_blobs(blobs)? {
        Some(b) => b,
        None => sync_server::storage::blobs::Blobs::in_dir(&data.join("blobs"))?,
    };
    Ok(match database {
        None | Some("sqlite") => Arc::new(
            SqliteStorage::open_with(data, Box::new(field_core::crdt::SystemClock), blobs)
                .with_context(|| format!("opening {}", data.display()))?,
        ),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(PgStorage::open(url, blobs).context("opening the PostgreSQL database")?)
        }
        Some(other) => {
            anyhow::bail!("database: {other:?} is neither `sqlite` nor a postgres:// URL")
        }
    })
}

/// Moves the city in the data directory `from`: its records into the
/// PostgreSQL database `to` (empty) when given, its photos into `blobs`
/// when given. The summary, and whether both sides' digests agree.
fn migrate(
    from: &std::path::Path,
    to: Option<&str>,
    blobs: Option<&str>,
) -> anyhow::Result<(serde_json::Value, bool)> {
    use sync_server::storage::blobs::Blobs;
    anyhow::ensure!(
        to.is_some() || blobs.is_some(),
        "migrate needs --to postgres://… (the records), --blobs s3://… (the photos), or both"
    );
    // The target database first: an unreachable one stops the move before
    // anything is copied.
    let target = match to {
        Some(url) => {
            anyhow::ensure!(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "--to: {url:?} is not a postgres:// URL"
            );
            anyhow::ensure!(
                from.join("center.db").exists(),
                "--from: {} holds no city (no center.db)",
                from.display()
            );
            let photos_home = match open_blobs(blobs)? {
                Some(b) => b,
                None => Blobs::in_dir(&from.join("blobs"))?,
            };
            Some(PgStorage::open(url, photos_home).context("opening the target database")?)
        }
        None => None,
    };
    let photos = match open_blobs(blobs)? {
        Some(to) => Some(Blobs::in_dir(&from.join("blobs"))?.copy_to(&to)?),
        None => None,
    };
    let records = match target {
        Some(target) => {
            let source = SqliteStorage::open_with(
                from,
                Box::new(field_core::crdt::SystemClock),
                Blobs::in_dir(&from.join("blobs"))?,
            )?;
            Some(target.import_city(&source)?)
        }
        None => None,
    };
    let equal = records.as_ref().is_none_or(|r| r.equal);
    Ok((
        serde_json::json!({ "records": records, "photos": photos }),
        equal,
    ))
}

/// The photos' home `--blobs` names: a bucket or a directory.
fn open_blobs(blobs: Option<&str>) -> anyhow::Result<Option<sync_server::storage::blobs::Blobs>> {
    use sync_server::storage::blobs::{Blobs, s3};
    Ok(match blobs {
        Some(url) if url.starts_with("s3://") => {
            let objects = s3::S3Objects::open(s3::BucketUrl::parse(url)?)?;
            Some(Blobs::open(Arc::new(objects))?)
        }
        Some(dir) => Some(Blobs::in_dir(std::path::Path::new(dir))?),
        None => None,
    })
}

/// Resolves on Ctrl-C or SIGTERM; the handlers are installed when called.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    })
}
