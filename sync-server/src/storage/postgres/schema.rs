//! Versioned migrations of the PostgreSQL schema. `schema_version` holds
//! how many ran; each runs in the transaction that records it, under an
//! advisory lock, so instances starting together migrate once. A database
//! written by a newer build is refused.

use super::{Result, StorageError, Tx};

/// Migrations in order; index + 1 is the version each brings the database to.
const MIGRATIONS: &[&str] = &[
    // 1: everything the embedded backend keeps in `changes.db` and `center.db`.
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- The change log. `log_seq` is allocated at commit under the `log_head`
-- row lock, so positions become visible in order (ARCHITECTURE.md).
CREATE TABLE log_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL);
INSERT INTO log_head (id, seq) VALUES (1, 0);
CREATE TABLE changes (
    log_seq     BIGINT NOT NULL UNIQUE,
    actor       BYTEA NOT NULL,
    counter     BIGINT NOT NULL,
    hlc         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    case_id     TEXT,
    task_id     TEXT,
    body        TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (actor, counter)
);
CREATE INDEX changes_by_case ON changes (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX changes_by_task ON changes (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX changes_shift_marks ON changes (kind) WHERE kind = 'shift_mark';

CREATE TABLE pending_changes (
    actor   BYTEA NOT NULL,
    counter BIGINT NOT NULL,
    case_id TEXT,
    body    TEXT NOT NULL,
    PRIMARY KEY (actor, counter)
);
CREATE INDEX pending_by_case ON pending_changes (case_id);

CREATE TABLE cases (
    id          TEXT PRIMARY KEY,
    state       BYTEA NOT NULL,
    status      TEXT NOT NULL,
    conflict    BOOLEAN NOT NULL,
    category    TEXT,
    cell        TEXT,
    reporter    BYTEA,
    reported_at BIGINT,
    collector   TEXT,
    lon         DOUBLE PRECISION,
    lat         DOUBLE PRECISION
);
CREATE INDEX cases_by_cell ON cases (cell);
CREATE INDEX cases_by_reporter ON cases (reporter);
CREATE INDEX cases_by_time ON cases (reported_at, id);
CREATE INDEX cases_by_collector ON cases (collector, reported_at);
CREATE INDEX cases_by_category ON cases (category, lat);
CREATE TABLE case_photos (
    hash    TEXT NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (hash, case_id)
);
CREATE INDEX case_photos_by_case ON case_photos (case_id);

CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    state       BYTEA NOT NULL,
    kind        TEXT,
    case_id     TEXT,
    to_user     TEXT,
    due_ms      BIGINT,
    answered_ms BIGINT,
    received_ms BIGINT
);
CREATE INDEX tasks_by_user ON tasks (to_user);

-- A collector-day is one range scan on (actor, t_ms), covering the columns
-- the assessment reads.
CREATE TABLE track_points (
    actor      BYTEA NOT NULL,
    seq        BIGINT NOT NULL,
    t_ms       BIGINT NOT NULL,
    lon        DOUBLE PRECISION NOT NULL,
    lat        DOUBLE PRECISION NOT NULL,
    accuracy_m DOUBLE PRECISION,
    speed_mps  DOUBLE PRECISION,
    PRIMARY KEY (actor, seq)
);
CREATE INDEX track_by_time ON track_points (actor, t_ms) INCLUDE (lon, lat, accuracy_m, speed_mps);

CREATE TABLE shift_marks (
    id    TEXT PRIMARY KEY,
    actor BYTEA NOT NULL,
    kind  TEXT NOT NULL,
    t_ms  BIGINT NOT NULL,
    lon   DOUBLE PRECISION,
    lat   DOUBLE PRECISION,
    cell  TEXT
);

CREATE TABLE cells (
    code     TEXT PRIMARY KEY,
    zone     TEXT NOT NULL,
    name     TEXT,
    area_m2  DOUBLE PRECISION NOT NULL,
    geometry TEXT NOT NULL
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    company    TEXT,
    cells      TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    actor      BYTEA,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE devices (
    actor        BYTEA PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE,
    enrolled_ms  BIGINT NOT NULL,
    successor_of BYTEA
);
CREATE INDEX devices_by_user ON devices (user_id);
CREATE TABLE tokens (
    hash    TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    actor   BYTEA REFERENCES devices (actor)
);
CREATE TABLE enrolments (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    expires_ms BIGINT NOT NULL,
    used_ms    BIGINT
);
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE TABLE audit (
    seq     BIGSERIAL PRIMARY KEY,
    at_ms   BIGINT NOT NULL,
    by_user TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE TABLE photo_bytes (actor BYTEA NOT NULL, day BIGINT NOT NULL, bytes BIGINT NOT NULL, PRIMARY KEY (actor, day));
CREATE TABLE report_skews (case_id TEXT PRIMARY KEY, skew_ms BIGINT NOT NULL, backdate_ms BIGINT NOT NULL);
CREATE TABLE photos_lost (hash TEXT PRIMARY KEY, actor BYTEA NOT NULL, at_ms BIGINT NOT NULL);

CREATE TABLE surveys (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE findings (id TEXT PRIMARY KEY, body TEXT NOT NULL, at_ms BIGINT NOT NULL);
CREATE TABLE config_versions (version BIGINT PRIMARY KEY, toml TEXT NOT NULL, by_user TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE assignments (user_id TEXT NOT NULL REFERENCES users (id), from_date TEXT NOT NULL, cells TEXT NOT NULL, PRIMARY KEY (user_id, from_date));
CREATE TABLE rollups (day TEXT NOT NULL, user_id TEXT NOT NULL, report TEXT NOT NULL, computed_ms BIGINT NOT NULL, PRIMARY KEY (day, user_id));
CREATE TABLE dirty_days (day TEXT PRIMARY KEY, since_ms BIGINT NOT NULL);
CREATE TABLE violations (id TEXT PRIMARY KEY, body TEXT NOT NULL, at_ms BIGINT NOT NULL);
CREATE TABLE attempts (id TEXT PRIMARY KEY, body TEXT NOT NULL, day TEXT NOT NULL);
CREATE TABLE trainings (id TEXT PRIMARY KEY, body TEXT NOT NULL, day TEXT NOT NULL);
CREATE TABLE leases (job TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms BIGINT NOT NULL);
"#,
    // 2: change bodies (a track batch is ~40 KB of JSON) are stored out of
    // line uncompressed: compressing each on insert cost the database more
    // CPU than the disk it saved.
    r#"
ALTER TABLE changes ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE pending_changes ALTER COLUMN body SET STORAGE EXTERNAL;
"#,
    // 3: the server's own jobs, one row per due run (claimed once by one
    // instance of many).
    r#"
CREATE TABLE IF NOT EXISTS job_runs (job TEXT NOT NULL, slot_ms BIGINT NOT NULL, instance TEXT NOT NULL, started_ms BIGINT NOT NULL, finished_ms BIGINT, outcome TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', PRIMARY KEY (job, slot_ms));
"#,
    // 4: the recorders' gaps are read from the log by kind, like shift marks.
    r#"
CREATE INDEX IF NOT EXISTS changes_track_gaps ON changes (kind) WHERE kind = 'track_gap';
"#,
    // 5: citizens' channels (Open311 API keys by hash), their rate
    // windows, and the requests they sent.
    r#"
CREATE TABLE IF NOT EXISTS open311_channels (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS open311_rate (channel TEXT NOT NULL, window_ms BIGINT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY (channel, window_ms));
CREATE TABLE IF NOT EXISTS open311_requests (id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, at_ms BIGINT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS open311_requests_at ON open311_requests (at_ms);
"#,
    // 6: track points as chunks of a collector's time-ordered run
    // (`track_chunks.rs`); the points held a row each are moved into them
    // by `move_points_into_chunks` and their table dropped.
    r#"
CREATE TABLE IF NOT EXISTS track_chunks (
    actor     BYTEA NOT NULL,
    first_seq BIGINT NOT NULL,
    t_first   BIGINT NOT NULL,
    t_last    BIGINT NOT NULL,
    n         INTEGER NOT NULL,
    points    BYTEA NOT NULL,
    PRIMARY KEY (actor, first_seq)
);
CREATE INDEX IF NOT EXISTS track_chunks_by_time ON track_chunks (actor, t_first);
-- Already compact: compressing each chunk again on insert (pglz) cost the
-- database ~2 ms a chunk for little.
ALTER TABLE track_chunks ALTER COLUMN points SET STORAGE EXTERNAL;
"#,
    // 7: a collector's pull finds their share of the log by index: a
    // case's, a task's and a device's case-free changes in log order.
    r#"
CREATE INDEX IF NOT EXISTS changes_by_case_seq ON changes (case_id, log_seq) WHERE case_id IS NOT NULL;
DROP INDEX IF EXISTS changes_by_case;
CREATE INDEX IF NOT EXISTS changes_by_task_seq ON changes (task_id, log_seq) WHERE task_id IS NOT NULL;
DROP INDEX IF EXISTS changes_by_task;
CREATE INDEX IF NOT EXISTS changes_case_free ON changes (actor, log_seq) WHERE case_id IS NULL AND task_id IS NULL;
"#,
];

/// The migration after which points live in chunks.
const CHUNKED_TRACKS: usize = 6;

/// The schema version this build creates.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Any number between instances of this product: the lock migrations take.
const MIGRATION_LOCK: i64 = 0x6669_656c_645f_6d67; // "field_mg"

pub(super) fn migrate(tx: &mut Tx<'_>) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        tx.batch("CREATE TABLE schema_version (version BIGINT NOT NULL)")?;
    }
    let current: i64 = match tx.query_opt("SELECT version FROM schema_version", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])?;
            0
        }
    };
    if current > SCHEMA_VERSION {
        return Err(StorageError::Invalid {
            field: "database".into(),
            reason: format!(
                "its schema is version {current}, newer than this build understands (up to {SCHEMA_VERSION}); run a newer sync-server"
            ),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch(sql)?;
        if i + 1 == CHUNKED_TRACKS {
            move_points_into_chunks(tx)?;
        }
        tx.execute(
            "UPDATE schema_version SET version = $1",
            &[&((i + 1) as i64)],
        )?;
    }
    Ok(())
}

/// Moves the points of migration 1's `track_points` (a row each) into
/// `track_chunks`, an actor at a time, and drops the table.
fn move_points_into_chunks(tx: &mut Tx<'_>) -> Result<()> {
    let held: bool = tx
        .query_one("SELECT to_regclass('track_points') IS NOT NULL", &[])?
        .get(0);
    if !held {
        return Ok(());
    }
    let actors: Vec<Vec<u8>> = tx
        .query("SELECT DISTINCT actor FROM track_points", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for actor in actors {
        let points = tx
            .query(
                "SELECT seq, t_ms, lon, lat, accuracy_m, speed_mps FROM track_points WHERE actor = $1",
                &[&actor],
            )?
            .iter()
            .map(|r| {
                Ok((
                    r.get::<_, i64>(0) as u64,
                    field_core::model::TrackPoint::new(
                        field_core::model::Timestamp::from_millis("t", r.get(1))?,
                        field_core::model::LonLat::new(r.get(2), r.get(3))?,
                        r.get(4),
                        r.get(5),
                    )?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        super::rows::insert_chunks(tx, &actor, &points)?;
    }
    tx.batch("DROP TABLE track_points")?;
    Ok(())
}
