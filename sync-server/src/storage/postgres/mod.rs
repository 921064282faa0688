//! The city backend: PostgreSQL through `tokio-postgres` and a
//! `deadpool-postgres` pool, for any number of server instances sharing one
//! database. The merge is field-core's (`Applier` over [`rows::PgRows`]);
//! what this module adds is where the rows live and how concurrent writers
//! stay correct:
//! - a change is applied in one transaction that holds a lock on every case
//!   and task it merges into (an advisory transaction lock keyed by the id,
//!   taken before the state is read, so a case not yet created is locked
//!   too), so two instances merging into one case serialise;
//! - log positions are allocated at the end of the transaction under the
//!   one `log_head` row lock, held until commit: positions become visible in
//!   order, and a pull never skips a change committed late (ARCHITECTURE.md);
//! - a transaction that meets a deadlock, a serialisation failure or a
//!   concurrent insert of the same change is run again from the start.
//!
//! Photos stay in the blob store (`--blobs`, a directory or a bucket).

mod identity;
mod import;
mod records;
mod replica;
mod rows;
mod schema;
pub mod track_chunks;

use std::sync::Mutex;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use field_core::crdt::{Clock, HlcGenerator};
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};

use super::blobs::Blobs;
use super::{Result, StorageError};

pub use import::MoveSummary;
pub use schema::SCHEMA_VERSION;

/// Most connections one instance holds: with the default admission limit
/// (8 device requests at once) and the console beside it, 16 is enough and
/// leaves room for several instances under PostgreSQL's default 100.
const DEFAULT_POOL_SIZE: usize = 16;

/// How often a transaction that lost a race (deadlock, serialisation, the
/// same change inserted by another instance) is run again before giving up.
const MAX_ATTEMPTS: usize = 8;

pub struct PgStorage {
    /// Where the database is (backups hand it to `pg_dump`).
    url: String,
    /// Always `Some` until dropped (shut down without blocking).
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    blobs: Blobs,
    clock: Mutex<Box<dyn Clock>>,
    hlc: Mutex<HlcGenerator>,
    grid: Mutex<Option<replica::GridCache>>,
    /// The imported catalog, parsed, with the stamp of its import.
    catalog: Mutex<Option<(String, field_core::model::Catalog)>>,
    /// Tests only: runs inside every merge transaction just before its log
    /// positions are allocated (a slow transaction, made slow on purpose).
    before_positions: Mutex<Option<std::sync::Arc<dyn Fn() + Send + Sync>>>,
}

impl Drop for PgStorage {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn pool_error(e: impl std::error::Error) -> StorageError {
    // The pool's message, then its causes (the connection's own reason).
    let mut text = format!("database pool: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    StorageError::Backend(text)
}

/// Whether a failed transaction lost a race and may simply run again.
fn retryable(e: &StorageError) -> bool {
    let pg = match e {
        StorageError::Postgres(e) => Some(e),
        StorageError::Core(field_core::Error::Backend(b)) => {
            b.downcast_ref::<tokio_postgres::Error>()
        }
        _ => None,
    };
    use tokio_postgres::error::SqlState;
    pg.and_then(|e| e.code()).is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    })
}

/// An actor id read back from the database.
fn actor_of(bytes: &[u8]) -> Result<field_core::model::ActorId> {
    uuid::Uuid::from_slice(bytes)
        .map_err(|e| StorageError::Core(field_core::Error::Corrupt(format!("actor id: {e}"))))
}

/// A PostgreSQL error inside the merge, which speaks field-core's errors.
fn core_error(e: tokio_postgres::Error) -> field_core::Error {
    field_core::Error::Backend(Box::new(e))
}

impl PgStorage {
    /// Connects to `url` (`postgres://user:pass@host:port/db`), brings the
    /// schema up to date (refusing one newer than this build) and keeps
    /// photos in `blobs`.
    pub fn open(url: &str, blobs: Blobs) -> Result<PgStorage> {
        PgStorage::open_with(
            url,
            blobs,
            Box::new(field_core::crdt::SystemClock),
            DEFAULT_POOL_SIZE,
        )
    }

    /// [`PgStorage::open`] with the clock injected and the pool sized.
    pub fn open_with(
        url: &str,
        blobs: Blobs,
        clock: Box<dyn Clock>,
        pool_size: usize,
    ) -> Result<PgStorage> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| StorageError::Invalid {
            field: "database".into(),
            reason: format!("not a PostgreSQL URL: {e}"),
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("center-db")
            .enable_all()
            .build()?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(60)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(pool_error)?;
        let storage = PgStorage {
            url: url.to_string(),
            runtime: Some(runtime),
            pool,
            blobs,
            clock: Mutex::new(clock),
            hlc: Mutex::new(HlcGenerator::default()),
            grid: Mutex::new(None),
            catalog: Mutex::new(None),
            before_positions: Mutex::new(None),
        };
        storage.write(|tx| schema::migrate(tx))?;
        Ok(storage)
    }

    /// Tests only: `hook` runs in every merge transaction just before it
    /// takes its log positions.
    #[doc(hidden)]
    pub fn set_before_positions(&self, hook: Option<std::sync::Arc<dyn Fn() + Send + Sync>>) {
        *self
            .before_positions
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = hook;
    }

    fn now_ms(&self) -> i64 {
        self.clock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .now_ms() as i64
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The pool's size, idle connections and waiters (metrics).
    pub fn pool_status(&self) -> crate::storage::PoolStatus {
        let s = self.pool.status();
        crate::storage::PoolStatus {
            size: s.size,
            available: s.available,
            waiting: s.waiting,
        }
    }

    /// Runs `f` in a read-write transaction, again from the start when it
    /// lost a race to another transaction.
    fn write<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.transaction(Some(IsolationLevel::ReadCommitted), false, &mut f)
    }

    /// Runs `f` on one consistent snapshot (REPEATABLE READ, read only):
    /// for reads of several statements that must agree.
    fn snapshot<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.transaction(Some(IsolationLevel::RepeatableRead), true, &mut f)
    }

    /// Runs `f`, statement by statement, outside a transaction: for reads
    /// of one statement (no BEGIN and COMMIT round trips on hot paths).
    fn read<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.transaction(None, true, &mut f)
    }

    /// The storage interface is synchronous. Called on an async worker
    /// thread (a handler that did not move to a blocking thread), the
    /// worker is handed over to blocking work for the call, so the
    /// server's other tasks keep running.
    fn transaction<T>(
        &self,
        level: Option<IsolationLevel>,
        read_only: bool,
        f: &mut dyn FnMut(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.run_transaction(level, read_only, f))
            }
            Ok(_) => Err(StorageError::Backend(
                "the PostgreSQL backend was called on a single-threaded async runtime: call it from a blocking thread".into(),
            )),
            Err(_) => self.run_transaction(level, read_only, f),
        }
    }

    fn run_transaction<T>(
        &self,
        level: Option<IsolationLevel>,
        read_only: bool,
        f: &mut dyn FnMut(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| StorageError::Backend("the database client is shut down".into()))?;
        let mut attempt = 0;
        let started = std::time::Instant::now();
        let kind = match (level, read_only) {
            (None, _) => "read",
            (Some(_), true) => "snapshot",
            (Some(_), false) => "write",
        };
        let _timer = TxTimer { kind, started };
        loop {
            attempt += 1;
            let mut client = rt.block_on(self.pool.get()).map_err(pool_error)?;
            let result = (|| {
                let Some(level) = level else {
                    return f(&mut Tx {
                        rt,
                        conn: Conn::Client(&client),
                    });
                };
                let tx = rt.block_on(
                    client
                        .build_transaction()
                        .isolation_level(level)
                        .read_only(read_only)
                        .start(),
                )?;
                let mut tx = Tx {
                    rt,
                    conn: Conn::Tx(tx),
                };
                let out = f(&mut tx)?;
                if let Conn::Tx(tx) = tx.conn {
                    rt.block_on(tx.commit())?;
                }
                Ok(out)
            })();
            match result {
                Err(e) if attempt < MAX_ATTEMPTS && retryable(&e) => {
                    // Lost a race: back off a little, longer each time.
                    std::thread::sleep(std::time::Duration::from_millis(fastrand_ms(
                        attempt as u64 * 5,
                    )));
                    continue;
                }
                other => return other,
            }
        }
    }
}

impl super::blobs::HasBlobs for PgStorage {
    fn blobs(&self) -> &Blobs {
        &self.blobs
    }
}

/// A few milliseconds of jitter, up to `max`, so racing retries spread.
fn fastrand_ms(max: u64) -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b) % max.max(1)
}

/// Where statements go: an open transaction, or a connection in
/// autocommit (each statement its own transaction).
enum Conn<'a> {
    Tx(deadpool_postgres::Transaction<'a>),
    Client(&'a deadpool_postgres::Object),
}

/// One open transaction (or autocommit connection), called synchronously
/// from the storage layer's blocking threads. Statements are prepared once
/// per connection and cached.
pub(crate) struct Tx<'a> {
    rt: &'a tokio::runtime::Runtime,
    conn: Conn<'a>,
}

/// Runs `$call` (a method of both a transaction and a client) on a
/// prepared statement for `$sql`.
macro_rules! on_conn {
    ($self:ident, $sql:ident, $params:ident, $call:ident) => {
        $self.rt.block_on(async {
            match &$self.conn {
                Conn::Tx(tx) => {
                    let stmt = tx.prepare_cached($sql).await?;
                    tx.$call(&stmt, $params).await
                }
                Conn::Client(c) => {
                    let stmt = c.prepare_cached($sql).await?;
                    c.$call(&stmt, $params).await
                }
            }
        })
    };
}

impl Tx<'_> {
    pub(crate) fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        on_conn!(self, sql, params, query)
    }

    pub(crate) fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        on_conn!(self, sql, params, query_opt)
    }

    pub(crate) fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        on_conn!(self, sql, params, query_one)
    }

    pub(crate) fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        on_conn!(self, sql, params, execute)
    }

    /// Statements without parameters, several at once (migrations).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.rt.block_on(async {
            match &self.conn {
                Conn::Tx(tx) => tx.batch_execute(sql).await,
                Conn::Client(c) => c.batch_execute(sql).await,
            }
        })
    }
}

/// Creates database `name` through the maintenance database at `admin_url`
/// and returns the URL of the new one (tests make a fresh database each).
#[doc(hidden)]
pub fn create_database(admin_url: &str, name: &str) -> Result<String> {
    maintenance(admin_url, name, "CREATE DATABASE")?;
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(admin_url);
    Ok(format!("{base}/{name}"))
}

/// Whether the database at `url` holds a city already (without creating
/// anything there): a restore refuses to overwrite one unless forced.
pub fn holds_city(url: &str) -> Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        let driver = tokio::spawn(connection);
        let row = client
            .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
            .await?;
        drop(client);
        let _ = driver.await;
        Ok(row.get(0))
    })
}

/// Drops database `name` (its sessions ended first).
#[doc(hidden)]
pub fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    maintenance(admin_url, name, "DROP DATABASE IF EXISTS")?;
    Ok(())
}

fn maintenance(admin_url: &str, name: &str, verb: &str) -> Result<()> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StorageError::Invalid {
            field: "name".into(),
            reason: "letters, digits and _ only".into(),
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await?;
        let driver = tokio::spawn(connection);
        let force = if verb.starts_with("DROP") {
            " WITH (FORCE)"
        } else {
            ""
        };
        client
            .batch_execute(&format!("{verb} {name}{force}"))
            .await?;
        drop(client);
        let _ = driver.await;
        Ok::<_, StorageError>(())
    })
}

/// Records a transaction's time (retries included) when it ends, however
/// it ends.
struct TxTimer {
    kind: &'static str,
    started: std::time::Instant,
}

impl Drop for TxTimer {
    fn drop(&mut self) {
        metrics::histogram!("db_transaction_seconds", "kind" => self.kind)
            .record(self.started.elapsed().as_secs_f64());
    }
}
