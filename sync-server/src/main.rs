//! `sync-server --config FILE`: reads the configuration, opens the storage,
//! and serves or runs one job; the work is in the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use sync_server::config::FileConfig;
use sync_server::service::{Center, ensure_admin, system_clock};
use sync_server::storage::postgres::PgStorage;
use sync_server::storage::sqlite::SqliteStorage;
use sync_server::storage::{Records, Storage};

#[derive(Parser, Debug)]
#[command(
    name = "sync-server",
    version,
    about = "The city center's sync server.",
    long_about = "The city center's sync server. Every setting lives in one TOML file (--config; keys in docs/configuration.md), each overridable by an environment variable SYNC_SERVER_<SECTION>_<KEY>; the flags below win over both."
)]
struct Args {
    /// Data directory (SQLite files and photo blobs). Default ./server-data.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// Address to listen on. Default 127.0.0.1:8080; port 0 picks a free one.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Where photos live: a directory (default DATA/blobs) or an
    /// S3-compatible bucket, `s3://BUCKET[/PREFIX]?endpoint=URL&region=R`
    /// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long, global = true)]
    blobs: Option<String>,
    /// Where the records live: the embedded SQLite files in the data
    /// directory (the default, `sqlite`), or a PostgreSQL database,
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, shared by any number of
    /// instances (each with its own `--data` for its admin token copy).
    #[arg(long, global = true)]
    database: Option<String>,
    /// The TOML configuration file (every key: docs/configuration.md).
    #[arg(long, env = "SYNC_SERVER_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    job: Option<Job>,
}

#[derive(clap::Subcommand, Debug)]
enum Job {
    /// Roll up a finished day (default: yesterday) and every day late data
    /// made stale, then exit. The server also runs it by itself at
    /// `jobs.nightly_at`.
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
    /// The configuration: `check` validates a file and prints the
    /// effective settings (secrets masked); `keys` lists every key with its
    /// environment variable.
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
    /// List the runs of the server's jobs (scheduled and manual), newest first.
    Jobs {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Take an online backup of the embedded store (records, photos,
    /// admin token, manifest of digests) into a new directory, while a
    /// server keeps serving the same data.
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into the data directory (refused when it is not
    /// empty, unless --force). The restored server has a new restore epoch:
    /// devices that synced after the backup send again what it lacks.
    Restore {
        #[arg(long)]
        from: PathBuf,
        /// Replace the data directory's store.
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Subcommand, Debug)]
enum ConfigCommand {
    /// Validate FILE (and the environment's overrides); print the
    /// effective configuration with secrets masked.
    Check {
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Every key and the environment variable that overrides it.
    Keys {
        #[arg(long)]
        json: bool,
    },
}

/// The file and environment, with the flags laid over them.
fn effective_config(args: &Args, file: Option<&std::path::Path>) -> anyhow::Result<FileConfig> {
    // `vars()` would panic on a variable that is not UTF-8; such a one is
    // no setting of ours (a setting's value must be text: refused by name).
    let env = std::env::vars_os().filter_map(|(k, v)| {
        let k = k.into_string().ok()?;
        Some((k, v.into_string().unwrap_or_else(|_| "\u{FFFD}".into())))
    });
    let mut c = FileConfig::load(file, env)?;
    if let Some(d) = &args.data {
        c.data = d.clone();
    }
    if let Some(l) = args.listen {
        c.listen = l;
    }
    if let Some(b) = &args.blobs {
        c.blobs = Some(b.clone());
    }
    if let Some(d) = &args.database {
        c.database = d.clone();
    }
    Ok(c)
}

fn init_logs(c: &FileConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&c.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if c.log.format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Job::Policy) = args.job {
        print!("{}", sync_server::service::authorize::table_markdown());
        return Ok(());
    }
    if let Some(Job::Config { what }) = &args.job {
        return config_command(&args, what);
    }
    let config = effective_config(&args, args.config.as_deref())?;
    init_logs(&config);
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
    let data = config.data.clone();
    if let Some(Job::Restore { from, force }) = &args.job {
        // Not under a running server.
        let _lock = sync_server::storage::lock_data_dir(&data)?;
        let (from, force, blobs) = (from.clone(), *force, config.blobs.clone());
        let (data2, database) = (data.clone(), config.database.clone());
        let summary = tokio::task::spawn_blocking(move || {
            restore(&from, &data2, &database, blobs.as_deref(), force)
        })
        .await??;
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    // One data directory, one server: the lock lives as long as the process.
    // The nightly job, a backup and the job list run beside a serving server.
    let _lock = match args.job {
        Some(Job::Nightly { .. } | Job::Backup { .. } | Job::Jobs { .. }) => None,
        _ => Some(sync_server::storage::lock_data_dir(&data)?),
    };
    let storage = {
        let data = data.clone();
        let (database, blobs) = (config.database.clone(), config.blobs.clone());
        // Opening talks to the database and maybe a bucket: off the async threads.
        tokio::task::spawn_blocking(move || open_storage(&data, &database, blobs.as_deref()))
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
    if let Some(Job::Jobs { limit, json }) = args.job {
        let runs = storage.job_runs(limit)?;
        print_job_runs(&runs, json, &config.review.timezone)?;
        return Ok(());
    }
    if let Some(Job::Backup { to }) = &args.job {
        let (to, data2, s) = (to.clone(), data.clone(), storage.clone());
        let now = sync_server::storage::wall_clock_ms();
        let manifest = tokio::task::spawn_blocking(move || s.backup_to(&data2, &to, now)).await??;
        println!("{}", serde_json::to_string(&manifest)?);
        return Ok(());
    }
    if ensure_admin(storage.as_ref(), &data)?.is_some() {
        tracing::info!(path = %data.join("admin.token").display(), "admin token written");
    }
    let center = Center::new(storage, config.limits.clone(), system_clock())
        .with_rules(config.review.clone());
    if let Some(Job::Nightly { day }) = args.job {
        let c = center.clone();
        let run = tokio::task::spawn_blocking(move || {
            // A manual run is recorded beside the scheduled ones.
            let now = c.now();
            let instance = format!("manual:{}", std::process::id());
            let _ = c.storage().claim_job_run("nightly", now, &instance, now);
            let summary = c.nightly(day);
            let (outcome, detail) = match &summary {
                Ok(s) => ("ok", serde_json::to_string(s).unwrap_or_default()),
                Err(e) => ("failed", e.to_string()),
            };
            let _ = c
                .storage()
                .finish_job_run("nightly", now, c.now(), outcome, &detail);
            summary
        })
        .await?;
        let summary = run.map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    serve(config, center).await
}

/// Serves until SIGTERM or Ctrl-C: the API and console, TLS when
/// configured (SIGHUP re-reads the certificate), the metrics listener, and
/// the scheduler.
async fn serve(config: FileConfig, center: Center) -> anyhow::Result<()> {
    use sync_server::http::{Serving, frontend::FrontDoor, tls::TlsFiles};
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(TlsFiles::load(cert, key)?),
        _ => None,
    };
    let serving = Serving {
        tls: tls.clone(),
        front_door: FrontDoor::new(config.proxy.clone(), config.public_url.as_deref()),
        metrics_token: config.metrics.token.clone(),
    };
    let listener = sync_server::http::listen(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    // Handlers in place before anyone can know the address: a SIGTERM
    // right after it is a clean stop, not the default kill.
    let stop = shutdown_signal()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    if let Some(files) = tls {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match files.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::warn!("TLS certificate not reloaded, the old one stays: {e}")
                    }
                }
            }
        });
    }
    if let Some(addr) = config.metrics.listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding metrics.listen {addr}"))?;
        tracing::info!(address = %l.local_addr()?, "metrics served on /metrics");
        tokio::spawn(sync_server::http::serve_metrics(l, stopped()));
    }
    if config.jobs.enabled {
        let schedule = sync_server::jobs::scheduler::Schedule::from_config(
            &config.jobs,
            &config.review.timezone,
            config.data.clone(),
        )
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        let every = std::time::Duration::from_secs(config.jobs.tick_s);
        tokio::spawn(sync_server::jobs::scheduler::run_scheduler(
            center.clone(),
            schedule,
            every,
            stopped(),
        ));
    }
    let scheme = if serving.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // The first stdout line is the address, for scripts and tests.
    println!("listening on {scheme}://{}", listener.local_addr()?);
    sync_server::http::serve(listener, center, serving, async move {
        stop.await;
        let _ = stop_tx.send(true);
    })
    .await?;
    tracing::info!("sync-server stopped");
    // Work still running on blocking threads (a huge grid being checked)
    // must not keep a stopped server alive: every write is a transaction,
    // so leaving now loses nothing accepted.
    std::process::exit(0)
}

fn config_command(args: &Args, what: &ConfigCommand) -> anyhow::Result<()> {
    match what {
        ConfigCommand::Check { file, json } => {
            let file = file.as_deref().or(args.config.as_deref());
            let c = effective_config(args, file)?;
            if *json {
                let masked: toml::Value = toml::from_str(&c.masked_toml())?;
                println!("{}", serde_json::to_string_pretty(&masked)?);
            } else {
                eprintln!("configuration is valid; the effective settings (secrets masked):");
                print!("{}", c.masked_toml());
            }
        }
        ConfigCommand::Keys { json } => {
            let keys = FileConfig::keys();
            if *json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|(k, e)| serde_json::json!({ "key": k, "env": e }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for (k, e) in keys {
                    println!("{k:<36} {e}");
                }
            }
        }
    }
    Ok(())
}

fn print_job_runs(
    runs: &[sync_server::storage::JobRun],
    json: bool,
    tz: &str,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(runs)?);
        return Ok(());
    }
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let local = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    println!(
        "{:<8} {:<19} {:<19} {:<8} {:>8}  detail",
        "job", "due", "started", "outcome", "seconds"
    );
    for r in runs {
        let secs = r
            .finished_ms
            .map(|f| format!("{:.1}", (f - r.started_ms) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<8} {:<19} {:<19} {:<8} {:>8}  {}",
            r.job,
            local(r.slot_ms),
            local(r.started_ms),
            r.outcome,
            secs,
            r.detail
        );
    }
    Ok(())
}

/// The records in `database` (PostgreSQL) or the embedded store in
/// `data`, the photos in `blobs` (a directory or a bucket) or DATA/blobs.
fn open_storage(
    data: &std::path::Path,
    database: &str,
    blobs: Option<&str>,
) -> anyhow::Result<Arc<dyn Storage>> {
    let database = Some(database);
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
            let summary = target.import_city(&source)?;
            // The same city, not a restored one: devices keep their place.
            target.set_restore_epoch(&source.restore_epoch()?)?;
            Some(summary)
        }
        None => None,
    };
    let equal = records.as_ref().is_none_or(|r| r.equal);
    Ok((
        serde_json::json!({ "records": records, "photos": photos }),
        equal,
    ))
}

/// Restores the backup in `from`: the embedded store into `data`, or a
/// `pg_dump` into the PostgreSQL `database`; photos into `blobs`. The
/// restored city gets a new restore epoch either way.
fn restore(
    from: &std::path::Path,
    data: &std::path::Path,
    database: &str,
    blobs: Option<&str>,
    force: bool,
) -> anyhow::Result<sync_server::storage::backup::RestoreSummary> {
    use sync_server::storage::backup;
    let target = open_blobs(blobs)?;
    if database == "sqlite" {
        return Ok(backup::restore(from, data, target, force)?);
    }
    let photos = match target {
        Some(b) => b,
        None => sync_server::storage::blobs::Blobs::in_dir(&data.join("blobs"))?,
    };
    let has_city = sync_server::storage::postgres::holds_city(database)
        .context("reaching the target database")?;
    let mut summary = backup::postgres_restore(from, database, &photos, has_city, force)?;
    let storage = PgStorage::open(database, photos)?;
    summary.epoch = uuid::Uuid::new_v4().simple().to_string();
    storage.set_restore_epoch(&summary.epoch)?;
    Ok(summary)
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
