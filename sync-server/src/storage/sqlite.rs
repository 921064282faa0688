//! The embedded default: SQLite files in the data directory (WAL) and
//! photo blobs as files. `changes.db` is a field-core store — the server is
//! a replica like any device, merging with the same code — and `center.db`
//! holds users, devices, tokens and enrolment codes.

use std::path::Path;
use std::sync::Mutex;

use field_core::crdt::{CaseView, Change, ChangeId};
use field_core::model::{ActorId, CaseId, Catalog, Cell, LonLat, PhotoHash};
use field_core::model::{ExternalFinding, ShiftMark, Survey, TaskSpec, TrackGap, TrackPoint};
use field_core::store::{
    CasePage, CaseQuery, Decision, DigestReport, HistoryEntry, Judgement, PullPage, Store, TaskRow,
};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::blobs::Blobs;
use super::{AuditEntry, Device, Principal, ReportClock, Result, Role, StorageError, User};
use super::{ConsoleSession, Identity, JobRun, Records, Replica};

/// Migrations of `center.db`, in order; index + 1 is the version each
/// brings it to.
const CENTER_MIGRATIONS: &[&str] = &[
    // 1: users, devices, tokens, enrolment codes.
    r#"
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    company    TEXT,
    cells      TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE devices (
    actor       BLOB PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    name        TEXT,
    revoked     INTEGER NOT NULL DEFAULT 0,
    enrolled_ms INTEGER NOT NULL
);
CREATE TABLE tokens (
    hash    TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    actor   BLOB REFERENCES devices (actor)
);
CREATE TABLE enrolments (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER
);
"#,
    // 2: staff decisions made over HTTP are written as the staff member's
    // own actor, minted once.
    "ALTER TABLE users ADD COLUMN actor BLOB",
    // 3: special surveys.
    "CREATE TABLE surveys (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_ms INTEGER NOT NULL)",
    // 4: external findings (the miss rate).
    "CREATE TABLE findings (id TEXT PRIMARY KEY, body TEXT NOT NULL, at_ms INTEGER NOT NULL)",
    // 5: the city's assessment configuration, every version kept.
    "CREATE TABLE config_versions (version INTEGER PRIMARY KEY, toml TEXT NOT NULL, by_user TEXT NOT NULL, created_ms INTEGER NOT NULL)",
    // 6: assignments over time (a past day is assessed on that day's cells).
    "CREATE TABLE assignments (user_id TEXT NOT NULL REFERENCES users (id), from_date TEXT NOT NULL, cells TEXT NOT NULL, PRIMARY KEY (user_id, from_date))",
    // 7: nightly rollups, and the days late data made stale.
    "CREATE TABLE rollups (day TEXT NOT NULL, user_id TEXT NOT NULL, report TEXT NOT NULL, computed_ms INTEGER NOT NULL, PRIMARY KEY (day, user_id));
     CREATE TABLE dirty_days (day TEXT PRIMARY KEY, since_ms INTEGER NOT NULL);",
    // 8: accounts: disabled users, the audit log.
    "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, by_user TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL);
     ALTER TABLE devices ADD COLUMN successor_of BLOB;
     CREATE TABLE report_skews (case_id TEXT PRIMARY KEY, skew_ms INTEGER NOT NULL, backdate_ms INTEGER NOT NULL);
     CREATE TABLE photos_lost (hash TEXT PRIMARY KEY, actor BLOB NOT NULL, at_ms INTEGER NOT NULL);
     CREATE TABLE photo_bytes (actor BLOB NOT NULL, day INTEGER NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (actor, day));",
    // 9: a collector is assessed only from their first assignment: one made
    // before assignments were recorded at creation gets one from the day it
    // was created (in UTC+8, the default zone).
    "INSERT INTO assignments (user_id, from_date, cells)
     SELECT id, date(created_ms / 1000, 'unixepoch', '+8 hours'), cells FROM users
     WHERE role = 'collector' AND cells != '[]'
       AND id NOT IN (SELECT user_id FROM assignments);",
    // 10: red-line violations (kept, revoked ones too).
    "CREATE TABLE violations (id TEXT PRIMARY KEY, body TEXT NOT NULL, at_ms INTEGER NOT NULL)",
    // 11: certification attempts and training sessions.
    "CREATE TABLE attempts (id TEXT PRIMARY KEY, body TEXT NOT NULL, day TEXT NOT NULL);
     CREATE TABLE trainings (id TEXT PRIMARY KEY, body TEXT NOT NULL, day TEXT NOT NULL);",
    // 12: console sessions (by the hash of their id; the token they were
    // opened with by its hash) and job leases: what any instance must know.
    "CREATE TABLE console_sessions (id_hash TEXT PRIMARY KEY, token_hash TEXT NOT NULL, csrf TEXT NOT NULL, expires_ms INTEGER NOT NULL);
     CREATE TABLE leases (job TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms INTEGER NOT NULL);",
    // 13: the server's own jobs (one row per due run, claimed once) and its
    // facts (the restore epoch).
    "CREATE TABLE job_runs (job TEXT NOT NULL, slot_ms INTEGER NOT NULL, instance TEXT NOT NULL, started_ms INTEGER NOT NULL, finished_ms INTEGER, outcome TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', PRIMARY KEY (job, slot_ms));
     CREATE TABLE server_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 14: citizens' channels (Open311 API keys by hash), their rate
    // windows, and the requests they sent.
    "CREATE TABLE open311_channels (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
     CREATE TABLE open311_rate (channel TEXT NOT NULL, window_ms INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (channel, window_ms));
     CREATE TABLE open311_requests (id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, at_ms INTEGER NOT NULL, body TEXT NOT NULL);
     CREATE INDEX open311_requests_at ON open311_requests (at_ms);",
];

const USER_COLUMNS: &str = "id, name, role, company, cells, disabled";

/// A record kept as JSON, read back (a body that does not parse is named).
fn json_body<T: serde::de::DeserializeOwned>(body: &str, what: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| StorageError::Invalid {
        field: what.into(),
        reason: e.to_string(),
    })
}

/// Databases hold token hashes and every case: owner-only, with their WAL
/// and shared-memory files.
fn owner_only(dir: &Path, names: &[&str]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for name in names {
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.join(format!("{name}{suffix}"));
            if path.exists() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

pub struct SqliteStorage {
    changes: Mutex<Store>,
    center: Mutex<Connection>,
    blobs: Blobs,
    grid_cache: Mutex<Option<(String, std::sync::Arc<serde_json::Value>)>>,
}

use super::invalid;
use super::wall_clock_ms as now_ms;

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(2)?;
    let cells: String = r.get(4)?;
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Collector),
        company: r.get(3)?,
        cells: serde_json::from_str(&cells).unwrap_or_default(),
        disabled: r.get(5)?,
    })
}

fn actor_from(bytes: &[u8]) -> Result<ActorId> {
    uuid::Uuid::from_slice(bytes).map_err(|e| StorageError::NotFound(format!("device id: {e}")))
}

/// Prepared statements kept per connection (rusqlite keeps 16): the
/// center's connection runs more distinct statements than that on every
/// sync, and re-parsing the evicted ones cost ~8 % of a sync's CPU.
const STATEMENT_CACHE: usize = 256;

/// Pages of the replica (`changes.db`) kept in memory.
const REPLICA_CACHE_MIB: u32 = 256;

impl SqliteStorage {
    /// Opens (creating on first use) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStorage> {
        SqliteStorage::open_with_clock(dir, Box::new(field_core::crdt::SystemClock))
    }

    /// [`SqliteStorage::open`] with the wall clock injected (the simulator).
    pub fn open_with_clock(
        dir: &Path,
        clock: Box<dyn field_core::crdt::Clock>,
    ) -> Result<SqliteStorage> {
        std::fs::create_dir_all(dir)?;
        let blobs = Blobs::in_dir(&dir.join("blobs"))?;
        SqliteStorage::open_with(dir, clock, blobs)
    }

    /// The store in `dir` with its photos elsewhere (an S3 bucket).
    pub fn open_with(
        dir: &Path,
        clock: Box<dyn field_core::crdt::Clock>,
        blobs: Blobs,
    ) -> Result<SqliteStorage> {
        std::fs::create_dir_all(dir)?;
        let changes_path = dir.join("changes.db");
        if !changes_path.exists() {
            drop(Store::init(&changes_path, "city-center")?);
        }
        let store = Store::open_with_clock(&changes_path, clock)?;
        store.index_tracks_by_time()?;
        store.cache_pages(REPLICA_CACHE_MIB)?;
        let mut center = Connection::open(dir.join("center.db"))?;
        owner_only(dir, &["changes.db", "center.db"])?;
        center.pragma_update(None, "journal_mode", "WAL")?;
        center.pragma_update(None, "synchronous", "NORMAL")?;
        center.pragma_update(None, "foreign_keys", "ON")?;
        center.busy_timeout(std::time::Duration::from_secs(10))?;
        center.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        field_core::store::apply_migrations(&mut center, CENTER_MIGRATIONS)?;
        Ok(SqliteStorage {
            changes: Mutex::new(store),
            center: Mutex::new(center),
            blobs,
            grid_cache: Mutex::new(None),
        })
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock leaves SQLite consistent (every
        // write is a transaction), so a poisoned lock is safe to take.
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rows whose one column is a JSON document of `T`.
    fn json_rows<T: serde::de::DeserializeOwned>(&self, sql: &str, what: &str) -> Result<Vec<T>> {
        let db = self.db();
        let mut stmt = db.prepare_cached(sql)?;
        let bodies: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        bodies
            .iter()
            .map(|b| {
                serde_json::from_str(b).map_err(|e| StorageError::Invalid {
                    field: what.into(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    pub(crate) fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.center.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Identity for SqliteStorage {
    fn open_session(&self, s: &ConsoleSession) -> Result<()> {
        let db = self.db();
        db.execute(
            "DELETE FROM console_sessions WHERE expires_ms <= ?1",
            [now_ms()],
        )?;
        db.execute(
            "INSERT INTO console_sessions (id_hash, token_hash, csrf, expires_ms) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![s.id_hash, s.token_hash, s.csrf, s.expires_ms],
        )?;
        Ok(())
    }

    fn session(&self, id_hash: &str) -> Result<Option<ConsoleSession>> {
        Ok(self
            .db()
            .query_row(
                "SELECT id_hash, token_hash, csrf, expires_ms FROM console_sessions WHERE id_hash = ?1 AND expires_ms > ?2",
                rusqlite::params![id_hash, now_ms()],
                |r| {
                    Ok(ConsoleSession {
                        id_hash: r.get(0)?,
                        token_hash: r.get(1)?,
                        csrf: r.get(2)?,
                        expires_ms: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn close_session(&self, id_hash: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM console_sessions WHERE id_hash = ?1", [id_hash])?;
        Ok(())
    }

    fn create_user(
        &self,
        name: &str,
        role: Role,
        company: Option<&str>,
        cells: &[String],
    ) -> Result<User> {
        let user = super::new_user(name, role, company, cells)?;
        self.db().execute(
            "INSERT INTO users (id, name, role, company, cells, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![user.id, user.name, role.as_str(), user.company, serde_json::to_string(&user.cells).unwrap_or_default(), now_ms()],
        )?;
        Ok(user)
    }

    fn users(&self) -> Result<Vec<User>> {
        let db = self.db();
        let mut stmt = db.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_ms, id"
        ))?;
        let users = stmt
            .query_map([], user_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(users)
    }

    fn devices_of(&self, user_id: &str) -> Result<Vec<Device>> {
        let db = self.db();
        let mut stmt = db.prepare_cached("SELECT actor, user_id, name, revoked FROM devices WHERE user_id = +?1 ORDER BY enrolled_ms")?;
        let rows = stmt.query_map([user_id], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (actor, user_id, name, revoked) = row?;
            out.push(Device {
                actor: actor_from(&actor)?,
                user_id,
                name,
                revoked,
            });
        }
        Ok(out)
    }

    fn add_enrolment(&self, code_hash: &str, user_id: &str, expires_ms: i64) -> Result<()> {
        self.db().execute(
            "INSERT INTO enrolments (code_hash, user_id, expires_ms) VALUES (?1, ?2, ?3)",
            params![code_hash, user_id, expires_ms],
        )?;
        Ok(())
    }

    fn redeem_enrolment(
        &self,
        code_hash: &str,
        actor: ActorId,
        device_name: Option<&str>,
        token_hash: &str,
        now: i64,
    ) -> Result<User> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let row: Option<(String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT user_id, expires_ms, used_ms FROM enrolments WHERE code_hash = ?1",
                [code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((user_id, expires, used)) = row else {
            return Err(invalid("code", "unknown enrolment code"));
        };
        if used.is_some() {
            return Err(invalid("code", "this enrolment code was already used"));
        }
        if expires < now {
            return Err(invalid("code", "this enrolment code has expired"));
        }
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE actor = ?1)",
            [actor.as_bytes()],
            |r| r.get(0),
        )?;
        if taken {
            return Err(invalid(
                "actor",
                "this device is already enrolled; a wiped device must mint a new actor id",
            ));
        }
        tx.execute(
            "UPDATE enrolments SET used_ms = ?1 WHERE code_hash = ?2",
            params![now, code_hash],
        )?;
        tx.execute(
            "INSERT INTO devices (actor, user_id, name, enrolled_ms) VALUES (?1, ?2, ?3, ?4)",
            params![actor.as_bytes(), user_id, device_name, now],
        )?;
        tx.execute(
            "INSERT INTO tokens (hash, user_id, actor) VALUES (?1, ?2, ?3)",
            params![token_hash, user_id, actor.as_bytes()],
        )?;
        let user = tx.query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
            [&user_id],
            user_from_row,
        )?;
        if user.disabled {
            return Err(invalid("code", "this user is disabled"));
        }
        tx.commit()?;
        Ok(user)
    }

    fn add_user_token(&self, token_hash: &str, user_id: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO tokens (hash, user_id, actor) VALUES (?1, ?2, NULL)",
            params![token_hash, user_id],
        )?;
        Ok(())
    }

    fn principal(&self, token_hash: &str) -> Result<Option<Principal>> {
        let db = self.db();
        let row = db
            .prepare_cached(
                "SELECT u.id, u.name, u.role, u.company, u.cells, u.disabled, t.actor, COALESCE(d.revoked, 0)
                 FROM tokens t JOIN users u ON u.id = t.user_id LEFT JOIN devices d ON d.actor = t.actor
                 WHERE t.hash = ?1",
            )?
            .query_row([token_hash], |r| Ok((user_from_row(r)?, r.get::<_, Option<Vec<u8>>>(6)?, r.get::<_, bool>(7)?)))
            .optional()?;
        match row {
            None | Some((_, _, true)) => Ok(None),
            Some((user, _, _)) if user.disabled => Ok(None),
            Some((user, actor, false)) => Ok(Some(Principal {
                user,
                token_hash: token_hash.to_string(),
                device: actor.map(|a| actor_from(&a)).transpose()?,
            })),
        }
    }

    fn expire_sessions(&self, now_ms: i64) -> Result<usize> {
        Ok(self.db().execute(
            "DELETE FROM console_sessions WHERE expires_ms <= ?1",
            [now_ms],
        )?)
    }

    fn count_sessions(&self, now_ms: i64) -> Result<u64> {
        Ok(self.db().query_row(
            "SELECT COUNT(*) FROM console_sessions WHERE expires_ms > ?1",
            [now_ms],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    fn revoke_device(&self, actor: ActorId) -> Result<bool> {
        Ok(self.db().execute(
            "UPDATE devices SET revoked = 1 WHERE actor = ?1",
            [actor.as_bytes()],
        )? == 1)
    }

    fn set_user_disabled(&self, user_id: &str, disabled: bool) -> Result<bool> {
        Ok(self.db().execute(
            "UPDATE users SET disabled = ?2 WHERE id = ?1",
            params![user_id, disabled],
        )? == 1)
    }

    fn revoke_codes(&self, user_id: &str, code_hash: Option<&str>) -> Result<usize> {
        Ok(self.db().execute(
            "DELETE FROM enrolments WHERE user_id = ?1 AND used_ms IS NULL AND (?2 IS NULL OR code_hash = ?2)",
            params![user_id, code_hash],
        )?)
    }

    fn pending_codes(&self, user_id: &str, now: i64) -> Result<usize> {
        Ok(self.db().query_row(
            "SELECT COUNT(*) FROM enrolments WHERE user_id = ?1 AND used_ms IS NULL AND expires_ms >= ?2",
            params![user_id, now],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    fn reset_user_tokens(&self, user_id: &str, new_hash: &str) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM tokens WHERE user_id = ?1 AND actor IS NULL",
            [user_id],
        )?;
        tx.execute(
            "INSERT INTO tokens (hash, user_id, actor) VALUES (?1, ?2, NULL)",
            params![new_hash, user_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn replace_user_token(&self, user_id: &str, old_hash: &str, new_hash: &str) -> Result<bool> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let gone = tx.execute(
            "DELETE FROM tokens WHERE hash = ?1 AND user_id = ?2 AND actor IS NULL",
            params![old_hash, user_id],
        )?;
        if gone != 1 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO tokens (hash, user_id, actor) VALUES (?1, ?2, NULL)",
            params![new_hash, user_id],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn audit(&self, e: &AuditEntry) -> Result<()> {
        self.db().execute(
            "INSERT INTO audit (at_ms, by_user, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.at.millis(), e.by, e.action, e.target, e.detail],
        )?;
        Ok(())
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT at_ms, by_user, action, target, detail FROM audit ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at, by, action, target, detail) = row?;
            out.push(AuditEntry {
                at: field_core::model::Timestamp::from_millis("at", at)?,
                by,
                action,
                target,
                detail,
            });
        }
        Ok(out)
    }

    fn device(&self, actor: ActorId) -> Result<Option<Device>> {
        let db = self.db();
        let row = db
            .prepare_cached("SELECT user_id, name, revoked FROM devices WHERE actor = ?1")?
            .query_row([actor.as_bytes()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })
            .optional()?;
        Ok(row.map(|(user_id, name, revoked)| Device {
            actor,
            user_id,
            name,
            revoked,
        }))
    }

    fn succeed_device(
        &self,
        previous: ActorId,
        next: ActorId,
        token_hash: &str,
        now: i64,
    ) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (user_id, name): (String, Option<String>) = tx.query_row(
            "SELECT user_id, name FROM devices WHERE actor = ?1",
            [previous.as_bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "INSERT INTO devices (actor, user_id, name, enrolled_ms, successor_of) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![next.as_bytes(), user_id, name, now, previous.as_bytes()],
        )?;
        let moved = tx.execute(
            "UPDATE tokens SET actor = ?1 WHERE hash = ?2 AND actor = ?3",
            params![next.as_bytes(), token_hash, previous.as_bytes()],
        )?;
        if moved != 1 {
            return Err(invalid("token", "does not belong to this device"));
        }
        tx.commit()?;
        Ok(())
    }

    fn charge_photo_bytes(&self, device: ActorId, day: i64, bytes: u64, cap: u64) -> Result<bool> {
        if bytes > cap {
            return Ok(false);
        }
        // One statement: added only while the day's total stays under the cap.
        let added = self
            .db()
            .prepare_cached(
                "INSERT INTO photo_bytes (actor, day, bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT (actor, day) DO UPDATE SET bytes = bytes + excluded.bytes
                 WHERE bytes + excluded.bytes <= ?4",
            )?
            .execute(params![
                device.as_bytes(),
                day,
                bytes.min(i64::MAX as u64) as i64,
                cap.min(i64::MAX as u64) as i64
            ])?;
        Ok(added == 1)
    }

    fn staff_actor(&self, user_id: &str) -> Result<ActorId> {
        let db = self.db();
        let existing: Option<Vec<u8>> =
            db.query_row("SELECT actor FROM users WHERE id = ?1", [user_id], |r| {
                r.get(0)
            })?;
        if let Some(bytes) = existing {
            return actor_from(&bytes);
        }
        let actor = uuid::Uuid::new_v4();
        db.execute(
            "UPDATE users SET actor = ?1 WHERE id = ?2",
            params![actor.as_bytes(), user_id],
        )?;
        Ok(actor)
    }

    fn set_user_cells(&self, user_id: &str, cells: &[String]) -> Result<()> {
        self.db().execute(
            "UPDATE users SET cells = ?1 WHERE id = ?2",
            params![serde_json::to_string(cells).unwrap_or_default(), user_id],
        )?;
        Ok(())
    }
}

impl Replica for SqliteStorage {
    fn held_change(&self, id: ChangeId) -> Result<Option<String>> {
        Ok(self.store().change_body(id)?)
    }

    fn has_grid(&self) -> Result<bool> {
        Ok(self.store().grid_version()?.is_some())
    }

    fn has_category(&self, code: &field_core::model::CategoryCode) -> Result<bool> {
        Ok(self.store().catalog().get(code).is_some())
    }

    fn locate_cell(&self, pos: LonLat) -> Result<Option<String>> {
        Ok(self.store().locate_cell(pos)?.map(|c| c.to_string()))
    }

    fn record_report_skews(&self, reports: &[ReportClock]) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO report_skews (case_id, skew_ms, backdate_ms) VALUES (?1, ?2, ?3)",
            )?;
            for r in reports {
                insert.execute(params![r.case.to_string(), r.skew_ms, r.backdate_ms])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn mark_photos_lost(&self, hashes: &[PhotoHash], by: ActorId, now: i64) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        for h in hashes {
            tx.execute(
                "INSERT OR IGNORE INTO photos_lost (hash, actor, at_ms) VALUES (?1, ?2, ?3)",
                params![h.as_str(), by.as_bytes(), now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn photo_lost(&self, hash: &PhotoHash) -> Result<bool> {
        Ok(self
            .db()
            .query_row(
                "SELECT 1 FROM photos_lost WHERE hash = ?1",
                [hash.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn report_clock(&self, case: CaseId) -> Result<Option<ReportClock>> {
        Ok(self
            .db()
            .query_row(
                "SELECT skew_ms, backdate_ms FROM report_skews WHERE case_id = ?1",
                [case.to_string()],
                |r| {
                    Ok(ReportClock {
                        case,
                        skew_ms: r.get(0)?,
                        backdate_ms: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn apply(&self, changes: Vec<Change>) -> Result<Vec<(ChangeId, Judgement)>> {
        Ok(self.store().apply_judged(changes)?)
    }

    fn case(&self, id: CaseId) -> Result<Option<CaseView>> {
        match self.store().case(id) {
            Ok(v) => Ok(Some(v)),
            Err(field_core::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn cases(&self) -> Result<Vec<CaseView>> {
        Ok(self.store().cases()?)
    }

    fn case_page(&self, q: &CaseQuery) -> Result<CasePage> {
        Ok(self.store().case_page(q)?)
    }

    fn case_cell(&self, id: CaseId) -> Result<Option<String>> {
        Ok(self.store().case_cell(id)?)
    }

    fn cases_citing(&self, hash: &PhotoHash) -> Result<Vec<CaseId>> {
        Ok(self.store().cases_citing(hash)?)
    }

    fn open_cases_near(
        &self,
        category: &str,
        pos: LonLat,
        radius_m: f64,
    ) -> Result<Vec<(CaseId, f64)>> {
        Ok(self.store().open_cases_near(category, pos, radius_m)?)
    }

    fn case_history(&self, id: CaseId) -> Result<Vec<HistoryEntry>> {
        Ok(self.store().case_history(id)?)
    }

    fn pull(
        &self,
        after: u64,
        limit: usize,
        requester: ActorId,
        cells: &[String],
        own: &[ActorId],
        tasks_for: Option<&str>,
    ) -> Result<PullPage> {
        Ok(self
            .store()
            .changes_for(after, limit, requester, cells, own, tasks_for)?)
    }

    fn decide(&self, actor: ActorId, case: CaseId, decision: Decision) -> Result<Change> {
        Ok(self.store().decide_as(actor, case, decision)?)
    }

    fn record_case(&self, actor: ActorId, report: field_core::crdt::CaseReport) -> Result<Change> {
        Ok(self.store().record_case_as(actor, report)?)
    }

    fn assign_task(&self, actor: ActorId, spec: TaskSpec) -> Result<Change> {
        Ok(self.store().assign_task_as(actor, spec)?)
    }

    fn tasks(&self, to_user: Option<&str>) -> Result<Vec<TaskRow>> {
        Ok(self.store().tasks(to_user)?)
    }

    fn task(&self, id: uuid::Uuid) -> Result<Option<TaskRow>> {
        match self.store().task(id) {
            Ok(t) => Ok(Some(t)),
            Err(field_core::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn digest(&self) -> Result<DigestReport> {
        Ok(self.store().digest_report()?)
    }

    fn cases_digest(&self, cells: Option<&[String]>) -> Result<String> {
        Ok(self.store().cases_digest(cells)?)
    }

    fn set_grid(&self, cells: Vec<Cell>) -> Result<String> {
        let mut store = self.store();
        store.import_grid(cells)?;
        let geojson = store.grid_geojson()?;
        let version = hex::encode(Sha256::digest(geojson.to_string().as_bytes()))[..16].to_string();
        store.set_grid_version(&version)?;
        *self.grid_cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((version.clone(), std::sync::Arc::new(geojson)));
        Ok(version)
    }

    fn grid(&self) -> Result<Option<(String, std::sync::Arc<serde_json::Value>)>> {
        let mut cache = self.grid_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.is_none() {
            let store = self.store();
            if let Some(version) = store.grid_version()? {
                *cache = Some((version, std::sync::Arc::new(store.grid_geojson()?)));
            }
        }
        Ok(cache.clone())
    }

    fn set_catalog(&self, catalog: Catalog) -> Result<()> {
        Ok(self.store().import_catalog(catalog)?)
    }

    fn custom_catalog(&self) -> Result<Option<Catalog>> {
        let store = self.store();
        Ok(store.catalog_version()?.map(|_| store.catalog().clone()))
    }

    fn catalog(&self) -> Result<Catalog> {
        Ok(self.store().catalog().clone())
    }

    fn track_between(&self, actor: ActorId, from_ms: i64, to_ms: i64) -> Result<Vec<TrackPoint>> {
        Ok(self.store().track_between(actor, from_ms, to_ms)?)
    }

    fn track_around(
        &self,
        actor: ActorId,
        t: i64,
        window_ms: i64,
        max_accuracy_m: f64,
    ) -> Result<(Option<TrackPoint>, Option<TrackPoint>)> {
        Ok(self
            .store()
            .track_around(actor, t, window_ms, max_accuracy_m)?)
    }

    fn shift_marks(&self) -> Result<Vec<(ActorId, ShiftMark)>> {
        Ok(self.store().shift_marks()?)
    }

    fn track_gaps(&self) -> Result<Vec<(ActorId, TrackGap)>> {
        Ok(self.store().track_gaps()?)
    }
}

impl super::blobs::HasBlobs for SqliteStorage {
    fn blobs(&self) -> &Blobs {
        &self.blobs
    }
}

impl Records for SqliteStorage {
    fn take_lease(&self, job: &str, holder: &str, now_ms: i64, until_ms: i64) -> Result<bool> {
        let db = self.db();
        let n = db.execute(
            "INSERT INTO leases (job, holder, until_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
             WHERE leases.until_ms <= ?4 OR leases.holder = excluded.holder",
            rusqlite::params![job, holder, until_ms, now_ms],
        )?;
        Ok(n == 1)
    }

    fn release_lease(&self, job: &str, holder: &str) -> Result<()> {
        self.db().execute(
            "DELETE FROM leases WHERE job = ?1 AND holder = ?2",
            rusqlite::params![job, holder],
        )?;
        Ok(())
    }

    fn claim_job_run(&self, job: &str, slot_ms: i64, instance: &str, now_ms: i64) -> Result<bool> {
        Ok(self.db().execute(
            "INSERT INTO job_runs (job, slot_ms, instance, started_ms, outcome) VALUES (?1, ?2, ?3, ?4, 'running')
             ON CONFLICT (job, slot_ms) DO NOTHING",
            rusqlite::params![job, slot_ms, instance, now_ms],
        )? == 1)
    }

    fn finish_job_run(
        &self,
        job: &str,
        slot_ms: i64,
        now_ms: i64,
        outcome: &str,
        detail: &str,
    ) -> Result<()> {
        self.db().execute(
            "UPDATE job_runs SET finished_ms = ?3, outcome = ?4, detail = ?5 WHERE job = ?1 AND slot_ms = ?2",
            rusqlite::params![job, slot_ms, now_ms, outcome, detail],
        )?;
        Ok(())
    }

    fn job_runs(&self, limit: usize) -> Result<Vec<JobRun>> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT job, slot_ms, instance, started_ms, finished_ms, outcome, detail FROM job_runs
             ORDER BY started_ms DESC, job LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit.min(100_000) as i64], |r| {
            Ok(JobRun {
                job: r.get(0)?,
                slot_ms: r.get(1)?,
                instance: r.get(2)?,
                started_ms: r.get(3)?,
                finished_ms: r.get(4)?,
                outcome: r.get(5)?,
                detail: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn restore_epoch(&self) -> Result<String> {
        let db = self.db();
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        db.execute(
            "INSERT INTO server_meta (key, value) VALUES ('restore_epoch', ?1) ON CONFLICT (key) DO NOTHING",
            [&fresh],
        )?;
        Ok(db.query_row(
            "SELECT value FROM server_meta WHERE key = 'restore_epoch'",
            [],
            |r| r.get(0),
        )?)
    }

    fn set_restore_epoch(&self, epoch: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO server_meta (key, value) VALUES ('restore_epoch', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [epoch],
        )?;
        Ok(())
    }

    fn backup_to(&self, data: &Path, to: &Path, now_ms: i64) -> Result<super::backup::Manifest> {
        self.online_backup(data, to, now_ms)
    }

    fn ready(&self) -> Result<()> {
        // Both files answer (the schema was brought up to date at open).
        self.db().query_row("SELECT 1", [], |_| Ok(()))?;
        self.store()
            .log_position()
            .map(|_| ())
            .map_err(StorageError::from)
    }

    fn create_survey(&self, survey: &Survey) -> Result<()> {
        self.db().execute(
            "INSERT INTO surveys (id, body, created_ms) VALUES (?1, ?2, ?3)",
            params![
                survey.id,
                serde_json::to_string(survey).unwrap_or_default(),
                now_ms()
            ],
        )?;
        Ok(())
    }

    fn set_assignment(
        &self,
        user_id: &str,
        cells: &[String],
        from: chrono::NaiveDate,
    ) -> Result<()> {
        self.db().execute(
            "INSERT INTO assignments (user_id, from_date, cells) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, from_date) DO UPDATE SET cells = excluded.cells",
            params![
                user_id,
                from.to_string(),
                serde_json::to_string(cells).unwrap_or_default()
            ],
        )?;
        Ok(())
    }

    fn assignments(&self, user_id: &str) -> Result<Vec<(chrono::NaiveDate, Vec<String>)>> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT from_date, cells FROM assignments WHERE user_id = +?1 ORDER BY from_date",
        )?;
        let rows = stmt.query_map([user_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (from, cells) = row?;
            let from = from.parse().map_err(|_| StorageError::Invalid {
                field: "from_date".into(),
                reason: from.clone(),
            })?;
            out.push((from, serde_json::from_str(&cells).unwrap_or_default()));
        }
        Ok(out)
    }

    fn put_rollup(&self, day: chrono::NaiveDate, user_id: &str, report: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO rollups (day, user_id, report, computed_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (day, user_id) DO UPDATE SET report = excluded.report, computed_ms = excluded.computed_ms",
            params![day.to_string(), user_id, report, now_ms()],
        )?;
        Ok(())
    }

    fn rollup(&self, day: chrono::NaiveDate, user_id: &str) -> Result<Option<String>> {
        Ok(self
            .db()
            .query_row(
                "SELECT report FROM rollups WHERE day = ?1 AND user_id = ?2",
                params![day.to_string(), user_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn rollup_days(&self) -> Result<Vec<chrono::NaiveDate>> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT DISTINCT day FROM rollups ORDER BY day")?;
        let days: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(days
            .iter()
            .filter_map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .collect())
    }

    fn mark_dirty(&self, days: &[chrono::NaiveDate]) -> Result<()> {
        let db = self.db();
        for d in days {
            db.execute(
                "INSERT OR IGNORE INTO dirty_days (day, since_ms) VALUES (?1, ?2)",
                params![d.to_string(), now_ms()],
            )?;
        }
        Ok(())
    }

    fn dirty_days(&self) -> Result<Vec<chrono::NaiveDate>> {
        let db = self.db();
        let mut stmt = db.prepare_cached("SELECT day FROM dirty_days ORDER BY day")?;
        let days: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(days.iter().filter_map(|d| d.parse().ok()).collect())
    }

    fn clear_dirty(&self, day: chrono::NaiveDate) -> Result<()> {
        self.db()
            .execute("DELETE FROM dirty_days WHERE day = ?1", [day.to_string()])?;
        Ok(())
    }

    fn config(&self) -> Result<Option<(u64, String)>> {
        Ok(self
            .db()
            .query_row(
                "SELECT version, toml FROM config_versions ORDER BY version DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?)
    }

    fn set_config(&self, toml: &str, by_user: &str) -> Result<u64> {
        let db = self.db();
        db.execute(
            "INSERT INTO config_versions (version, toml, by_user, created_ms) VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM config_versions), ?1, ?2, ?3)",
            params![toml, by_user, now_ms()],
        )?;
        Ok(
            db.query_row("SELECT MAX(version) FROM config_versions", [], |r| {
                r.get::<_, i64>(0)
            })? as u64,
        )
    }

    fn add_finding(&self, f: &ExternalFinding) -> Result<()> {
        self.db().execute(
            "INSERT INTO findings (id, body, at_ms) VALUES (?1, ?2, ?3)",
            params![
                f.id,
                serde_json::to_string(f).unwrap_or_default(),
                f.at.millis()
            ],
        )?;
        Ok(())
    }

    fn put_channel(&self, c: &crate::service::Channel, key_hash: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO open311_channels (id, key_hash, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            params![c.id, key_hash, serde_json::to_string(c).unwrap_or_default()],
        )?;
        Ok(())
    }

    fn channels(&self) -> Result<Vec<crate::service::Channel>> {
        self.json_rows("SELECT body FROM open311_channels ORDER BY id", "channel")
    }

    fn channel_by_key(&self, key_hash: &str) -> Result<Option<crate::service::Channel>> {
        let body: Option<String> = self
            .db()
            .query_row(
                "SELECT body FROM open311_channels WHERE key_hash = ?1",
                [key_hash],
                |r| r.get(0),
            )
            .optional()?;
        body.map(|b| json_body(&b, "channel")).transpose()
    }

    fn charge_channel(&self, channel: &str, window_ms: i64) -> Result<u64> {
        let db = self.db();
        db.execute("DELETE FROM open311_rate WHERE window_ms < ?1", [window_ms])?;
        let n: i64 = db.query_row(
            "INSERT INTO open311_rate (channel, window_ms, count) VALUES (?1, ?2, 1)
             ON CONFLICT (channel, window_ms) DO UPDATE SET count = count + 1
             RETURNING count",
            params![channel, window_ms],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    fn put_request(&self, r: &crate::service::CitizenRequest) -> Result<()> {
        self.db().execute(
            "INSERT INTO open311_requests (id, token, at_ms, body) VALUES (?1, ?2, ?3, ?4)",
            params![
                r.id,
                r.token,
                r.requested_at.millis(),
                serde_json::to_string(r).unwrap_or_default()
            ],
        )?;
        Ok(())
    }

    fn request(&self, id: &str) -> Result<Option<crate::service::CitizenRequest>> {
        let body: Option<String> = self
            .db()
            .query_row(
                "SELECT body FROM open311_requests WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        body.map(|b| json_body(&b, "request")).transpose()
    }

    fn request_by_token(&self, token: &str) -> Result<Option<crate::service::CitizenRequest>> {
        let body: Option<String> = self
            .db()
            .query_row(
                "SELECT body FROM open311_requests WHERE token = ?1",
                [token],
                |r| r.get(0),
            )
            .optional()?;
        body.map(|b| json_body(&b, "request")).transpose()
    }

    fn requests(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<crate::service::CitizenRequest>> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT body FROM open311_requests WHERE at_ms >= ?1 AND at_ms < ?2
             ORDER BY at_ms, id LIMIT ?3",
        )?;
        let bodies: Vec<String> = stmt
            .query_map(params![from_ms, to_ms, limit as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        bodies.iter().map(|b| json_body(b, "request")).collect()
    }

    fn put_violation(&self, v: &crate::service::Violation) -> Result<()> {
        self.db().execute(
            "INSERT INTO violations (id, body, at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            params![
                v.id,
                serde_json::to_string(v).unwrap_or_default(),
                v.at.millis()
            ],
        )?;
        Ok(())
    }

    fn violations(&self) -> Result<Vec<crate::service::Violation>> {
        self.json_rows(
            "SELECT body FROM violations ORDER BY at_ms, id",
            "violation",
        )
    }

    fn put_attempt(&self, a: &crate::service::Attempt) -> Result<()> {
        self.db().execute(
            "INSERT INTO attempts (id, body, day) VALUES (?1, ?2, ?3)",
            params![
                a.id,
                serde_json::to_string(a).unwrap_or_default(),
                a.date.to_string()
            ],
        )?;
        Ok(())
    }

    fn attempts(&self) -> Result<Vec<crate::service::Attempt>> {
        self.json_rows("SELECT body FROM attempts ORDER BY day, id", "attempt")
    }

    fn put_training(&self, t: &crate::service::Training) -> Result<()> {
        self.db().execute(
            "INSERT INTO trainings (id, body, day) VALUES (?1, ?2, ?3)",
            params![
                t.id,
                serde_json::to_string(t).unwrap_or_default(),
                t.date.to_string()
            ],
        )?;
        Ok(())
    }

    fn trainings(&self) -> Result<Vec<crate::service::Training>> {
        self.json_rows("SELECT body FROM trainings ORDER BY day, id", "training")
    }

    fn findings(&self) -> Result<Vec<ExternalFinding>> {
        self.json_rows("SELECT body FROM findings ORDER BY at_ms, id", "finding")
    }

    fn surveys(&self) -> Result<Vec<Survey>> {
        self.json_rows("SELECT body FROM surveys ORDER BY created_ms, id", "survey")
    }
}
