//! Versioned migrations of the device store. `PRAGMA user_version` holds the
//! version; each migration runs in one transaction with its version bump.

use rusqlite::Connection;

use crate::error::Result;

/// Migrations in order; index + 1 is the version they bring the store to.
const MIGRATIONS: &[&str] = &[
    // 1: the first device schema.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    -- The append-only change log: local and remote changes, in the order this
    -- replica applied them (log_seq is the export cursor).
    CREATE TABLE changes (
        log_seq   INTEGER PRIMARY KEY AUTOINCREMENT,
        actor     BLOB NOT NULL,
        counter   INTEGER NOT NULL,
        hlc       INTEGER NOT NULL,
        kind      TEXT NOT NULL,
        case_id   TEXT,
        body      TEXT NOT NULL,
        UNIQUE (actor, counter)
    );
    CREATE INDEX changes_by_case ON changes (case_id) WHERE case_id IS NOT NULL;

    -- The causal buffer: remote changes that arrived before an earlier change
    -- of the same actor. Applied (and moved to the log) once the gap fills.
    CREATE TABLE pending_changes (
        actor   BLOB NOT NULL,
        counter INTEGER NOT NULL,
        body    TEXT NOT NULL,
        PRIMARY KEY (actor, counter)
    ) WITHOUT ROWID;

    -- Merged case state (CBOR of CaseState) and the projections queries need.
    CREATE TABLE cases (
        id          TEXT PRIMARY KEY,
        state       BLOB NOT NULL,
        status      TEXT NOT NULL,
        conflict    INTEGER NOT NULL,
        category    TEXT,
        cell        TEXT,
        reporter    BLOB,
        reported_at INTEGER
    );

    -- Photos, content-addressed: stored once however many cases cite them.
    CREATE TABLE photos (
        hash   TEXT PRIMARY KEY,
        mime   TEXT NOT NULL,
        width  INTEGER NOT NULL,
        height INTEGER NOT NULL,
        size   INTEGER NOT NULL,
        data   BLOB NOT NULL
    );

    CREATE TABLE track_points (
        actor      BLOB NOT NULL,
        seq        INTEGER NOT NULL,
        t_ms       INTEGER NOT NULL,
        lon        REAL NOT NULL,
        lat        REAL NOT NULL,
        accuracy_m REAL,
        speed_mps  REAL,
        PRIMARY KEY (actor, seq)
    ) WITHOUT ROWID;

    CREATE TABLE shift_marks (
        id    TEXT PRIMARY KEY,
        actor BLOB NOT NULL,
        kind  TEXT NOT NULL,
        t_ms  INTEGER NOT NULL,
        lon   REAL,
        lat   REAL,
        cell  TEXT
    );

    CREATE TABLE cells (
        code     TEXT PRIMARY KEY,
        zone     TEXT NOT NULL,
        name     TEXT,
        area_m2  REAL NOT NULL,
        geometry TEXT NOT NULL
    );
    "#,
    // 2: partial replication and sync. The causal buffer is keyed by case
    // (a device that pulls only its cells sees gaps in other actors'
    // counters); the device remembers changes the server refused.
    r#"
    ALTER TABLE pending_changes ADD COLUMN case_id TEXT;
    CREATE INDEX pending_by_case ON pending_changes (case_id);
    CREATE TABLE refused_changes (
        actor      BLOB NOT NULL,
        counter    INTEGER NOT NULL,
        reason     TEXT NOT NULL,
        refused_at INTEGER NOT NULL,
        PRIMARY KEY (actor, counter)
    ) WITHOUT ROWID;
    -- Photos the server has confirmed holding need no upload.
    ALTER TABLE photos ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0;
    "#,
    // 3: a server pulls by cell and by reporter for each device: the cost of
    // a pull must follow the delta, not the number of cases held.
    r#"
    CREATE INDEX cases_by_cell ON cases (cell);
    CREATE INDEX cases_by_reporter ON cases (reporter);
    "#,
    // 4: tasks, and when each change reached this replica (a task's answer
    // is on time when it arrives by the deadline).
    r#"
    ALTER TABLE changes ADD COLUMN task_id TEXT;
    ALTER TABLE changes ADD COLUMN received_ms INTEGER;
    CREATE INDEX changes_by_task ON changes (task_id) WHERE task_id IS NOT NULL;
    CREATE TABLE tasks (
        id          TEXT PRIMARY KEY,
        state       BLOB NOT NULL,
        kind        TEXT,
        case_id     TEXT,
        to_user     TEXT,
        due_ms      INTEGER,
        answered_ms INTEGER,
        received_ms INTEGER
    );
    CREATE INDEX tasks_by_user ON tasks (to_user);
    "#,
    // 5: the review queue pages through a city's cases with filters, and
    // the flags it shows look up photo reuse and nearby open cases: more
    // projections of the merged state (filled for older stores on open,
    // see `Store::reproject_cases`).
    r#"
    ALTER TABLE cases ADD COLUMN collector TEXT;
    ALTER TABLE cases ADD COLUMN lon REAL;
    ALTER TABLE cases ADD COLUMN lat REAL;
    CREATE INDEX cases_by_time ON cases (reported_at, id);
    CREATE INDEX cases_by_collector ON cases (collector, reported_at);
    CREATE INDEX cases_by_category ON cases (category, lat);
    CREATE TABLE case_photos (
        hash    TEXT NOT NULL,
        case_id TEXT NOT NULL,
        PRIMARY KEY (hash, case_id)
    ) WITHOUT ROWID;
    CREATE INDEX case_photos_by_case ON case_photos (case_id);
    "#,
    // 6: the recorder's journal: every fix as the platform delivered it
    // (mock ones too), durable as it arrives; `sealed` once it went into a
    // track change (mock fixes never do).
    r#"
    CREATE TABLE raw_fixes (
        t_ms        INTEGER PRIMARY KEY,
        lon         REAL NOT NULL,
        lat         REAL NOT NULL,
        accuracy_m  REAL,
        speed_mps   REAL,
        bearing_deg REAL,
        provider    TEXT,
        mock        INTEGER NOT NULL,
        sealed      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX raw_fixes_unsealed ON raw_fixes (t_ms) WHERE sealed = 0 AND mock = 0;
    -- Shift marks and gaps are read from the log by kind.
    CREATE INDEX changes_shift_marks ON changes (hlc) WHERE kind = 'shift_mark';
    CREATE INDEX changes_track_gaps ON changes (hlc) WHERE kind = 'track_gap';
    "#,
    // 7: photo bytes the center confirmed may be pruned after a retention;
    // the row (hash, size, the merged state citing it) stays. Photos held
    // before this version count from the upgrade.
    r#"
    ALTER TABLE photos ADD COLUMN stored_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE photos SET stored_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
    ALTER TABLE photos ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0;
    "#,
    // 8: a collector's pull reads their own devices' case-free changes
    // (tracks, shift marks, gaps) after a log position by index, not by
    // scanning the city's log since then.
    r#"
    CREATE INDEX changes_case_free ON changes (actor, log_seq) WHERE case_id IS NULL AND task_id IS NULL;
    "#,
];

/// The store version whose case projections (the `cases` columns beside
/// `state`, and `case_photos`) every case has; older ones are rewritten on open.
pub const CASE_PROJECTION_VERSION: &str = "5";

/// The schema version this build creates.
pub const STORE_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the store up to [`STORE_VERSION`]; refuses a store from a newer build.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    apply_migrations(conn, MIGRATIONS)
}

/// Runs the `migrations` a database has not had yet, each in one
/// transaction with its version bump (`PRAGMA user_version` = how many
/// ran). Refuses a database written by a newer build. Any SQLite file of the
/// product migrates this way.
pub fn apply_migrations(conn: &mut Connection, migrations: &[&str]) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > migrations.len() as i64 {
        return Err(crate::Error::SchemaTooNew {
            found: current as u32,
            supported: migrations.len() as u32,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
