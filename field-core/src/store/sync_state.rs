//! What the device remembers about the server: where it is, its token, the
//! outbox (own changes past the push cursor — in the same file and
//! transaction as the data, so a crash can neither lose nor wedge it), the
//! pull cursor (advanced in the transaction that applies the pull), and
//! which photos the server has confirmed.

use rusqlite::{TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::{ApplySummary, Store, get_meta, set_meta};
use crate::crdt::Change;
use crate::error::{Error, Result};
use crate::model::{Catalog, PhotoHash, Timestamp};
use crate::sync::protocol::{CODE_RETRY_CLOCK, PullResponse, PushOutcome, PushResult};

/// The device's enrolment with a server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncSettings {
    pub server: String,
    pub token: String,
    pub user: crate::sync::protocol::UserInfo,
}

/// `field status`.
#[derive(Clone, Debug, Serialize)]
pub struct SyncStatus {
    pub server: Option<String>,
    pub user: Option<String>,
    pub pending_changes: u64,
    pub pending_photos: u64,
    pub refused_changes: u64,
    pub buffered_changes: u64,
    pub last_sync: Option<Timestamp>,
    pub pull_cursor: u64,
    /// Server time minus this device's clock at the last sync (ms).
    pub clock_offset_ms: i64,
}

fn meta_u64(conn: &rusqlite::Connection, key: &str) -> Result<u64> {
    Ok(get_meta(conn, key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

impl Store {
    pub fn sync_settings(&self) -> Result<Option<SyncSettings>> {
        get_meta(&self.conn, "sync")?
            .map(|s| {
                serde_json::from_str(&s).map_err(|e| Error::Corrupt(format!("sync settings: {e}")))
            })
            .transpose()
    }

    /// Records the enrolment; the collector name becomes the server's, also
    /// in the reports made before enrolment that were never sent (the server
    /// takes a report only under its user's name).
    pub fn set_sync_settings(&mut self, settings: &SyncSettings) -> Result<()> {
        self.load_cell_index()?;
        let cursor = meta_u64(&self.conn, "push_cursor")? as i64;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        set_meta(&tx, "sync", &serde_json::to_string(settings)?)?;
        set_meta(&tx, "collector", &settings.user.name)?;
        let unsent: Vec<(i64, String)> = tx
            .prepare("SELECT log_seq, body FROM changes WHERE actor = ?1 AND log_seq > ?2 AND kind = 'case_report'")?
            .query_map(params![self.actor.as_bytes(), cursor], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (seq, body) in unsent {
            let mut change = Change::from_json(&body)?;
            if let crate::crdt::Op::CaseReport(r) = &mut change.op
                && r.origin.collector != settings.user.name
            {
                r.origin.collector = settings.user.name.clone();
                let case = r.case;
                tx.execute(
                    "UPDATE changes SET body = ?1 WHERE log_seq = ?2",
                    params![change.to_json(), seq],
                )?;
                super::reissue::replay_case(&tx, case, self.cell_index.as_ref())?;
            }
        }
        tx.commit()?;
        self.collector = settings.user.name.clone();
        Ok(())
    }

    /// Own changes the server has not judged yet, oldest first: at most
    /// `limit` of them and, past the first, at most `max_bytes` of JSON, so
    /// a month offline still goes up in bodies the server accepts. Returns
    /// the log position of the last one.
    pub fn outbox(&self, limit: usize, max_bytes: usize) -> Result<(Vec<Change>, u64)> {
        let cursor = meta_u64(&self.conn, "push_cursor")? as i64;
        let mut stmt = self.conn.prepare_cached(
            "SELECT log_seq, body FROM changes WHERE actor = +?1 AND log_seq > ?2 ORDER BY log_seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                self.actor.as_bytes(),
                cursor,
                limit.min(i64::MAX as usize) as i64
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )?;
        let (mut out, mut last, mut bytes) = (Vec::new(), cursor, 0);
        for row in rows {
            let (seq, body) = row?;
            bytes += body.len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(Change::from_json(&body)?);
            last = seq;
        }
        Ok((out, last as u64))
    }

    pub fn outbox_len(&self) -> Result<u64> {
        let cursor = meta_u64(&self.conn, "push_cursor")? as i64;
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM changes WHERE actor = ?1 AND log_seq > ?2",
            params![self.actor.as_bytes(), cursor],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Every pushed change up to log position `through` has a judgement:
    /// move the push cursor and remember the refusals. A change the server
    /// asks to re-issue (its counter reused after a restore, or its stamp
    /// from a clock that ran ahead) is never dropped: the cursor stops
    /// before it and the answer says where re-issuing starts and whether the
    /// device must re-pull its past.
    pub fn record_push(
        &mut self,
        through: u64,
        results: &[PushResult],
    ) -> Result<Option<(u64, bool)>> {
        let now = self.now_ms() as i64;
        let reissue_at = results
            .iter()
            .position(|r| r.outcome == PushOutcome::Reused || r.code == Some(CODE_RETRY_CLOCK));
        let (results, through, redo) = match reissue_at {
            None => (results, through, None),
            Some(i) => {
                let r = &results[i];
                let seq: i64 = self.conn.query_row(
                    "SELECT log_seq FROM changes WHERE actor = ?1 AND counter = ?2",
                    params![r.actor.as_bytes(), r.counter as i64],
                    |row| row.get(0),
                )?;
                let repull = results[i..]
                    .iter()
                    .any(|r| r.outcome == PushOutcome::Reused);
                (&results[..i], seq as u64 - 1, Some((seq as u64, repull)))
            }
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for r in results.iter().filter(|r| r.outcome == PushOutcome::Refused) {
            tx.execute(
                "INSERT OR REPLACE INTO refused_changes (actor, counter, reason, refused_at) VALUES (?1, ?2, ?3, ?4)",
                params![r.actor.as_bytes(), r.counter as i64, r.reason.clone().unwrap_or_default(), now],
            )?;
        }
        set_meta(&tx, "push_cursor", &through.to_string())?;
        tx.commit()?;
        Ok(redo)
    }

    /// Notes the server's restore epoch. When it differs from the one
    /// seen before, the server was restored from a backup and may lack
    /// what this device sent since: the push cursor goes back to the start
    /// (the server answers `duplicate` for what it holds), the pull cursor
    /// too (the restored server hands out log positions anew), and every
    /// photo is offered again. True when that happened.
    pub fn observe_server_epoch(&mut self, epoch: &str) -> Result<bool> {
        let seen = get_meta(&self.conn, "server_epoch")?;
        if seen.as_deref() == Some(epoch) {
            return Ok(false);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        set_meta(&tx, "server_epoch", epoch)?;
        // The first epoch seen is not a restore.
        let restored = seen.is_some();
        if restored {
            set_meta(&tx, "push_cursor", "0")?;
            set_meta(&tx, "pull_cursor", "0")?;
            // Pruned bytes cannot be offered again (`prune` says so).
            tx.execute("UPDATE photos SET uploaded = 0 WHERE pruned = 0", [])?;
        }
        tx.commit()?;
        Ok(restored)
    }

    pub fn pull_cursor(&self) -> Result<u64> {
        meta_u64(&self.conn, "pull_cursor")
    }

    pub fn grid_version(&self) -> Result<Option<String>> {
        get_meta(&self.conn, "grid_version")
    }

    /// The special surveys the server sent for this device's cells.
    pub fn surveys(&self) -> Result<Option<crate::sync::protocol::SurveysPayload>> {
        get_meta(&self.conn, "surveys")?
            .map(|s| serde_json::from_str(&s).map_err(|e| Error::Corrupt(format!("surveys: {e}"))))
            .transpose()
    }

    pub fn catalog_version(&self) -> Result<Option<String>> {
        Ok(get_meta(&self.conn, "catalog")?.map(|_| self.catalog.version.clone()))
    }

    /// Applies one pull: grid and catalog if sent, then the changes and the
    /// new cursor in one transaction (a crash re-pulls, harmlessly).
    pub fn apply_pull(&mut self, pull: PullResponse) -> Result<ApplySummary> {
        if let Some(grid) = &pull.grid {
            let cells = crate::import::parse_grid(&grid.geojson.to_string(), &self.cell_pattern)?;
            self.import_grid(cells)?;
            set_meta(&self.conn, "grid_version", &grid.version)?;
        }
        if let Some(c) = &pull.catalog {
            self.import_catalog(Catalog::from_json(&c.catalog.to_string())?)?;
        }
        if let Some(s) = &pull.surveys {
            set_meta(&self.conn, "surveys", &serde_json::to_string(s)?)?;
        }
        let cursor = pull.cursor.to_string();
        let now = self.now_ms().to_string();
        self.apply_remote(pull.changes, |tx| {
            set_meta(tx, "pull_cursor", &cursor)?;
            set_meta(tx, "last_sync", &now)
        })
    }

    /// Photos the server has not confirmed holding.
    pub fn photos_to_upload(&self) -> Result<Vec<PhotoHash>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM photos WHERE uploaded = 0 ORDER BY hash")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|h| PhotoHash::parse("hash", &h?).map_err(|e| Error::Corrupt(e.to_string())))
            .collect()
    }

    pub fn mark_photo_uploaded(&mut self, hash: &PhotoHash) -> Result<()> {
        self.conn.execute(
            "UPDATE photos SET uploaded = 1 WHERE hash = ?1",
            [hash.as_str()],
        )?;
        Ok(())
    }

    /// Changes the server refused, with its reasons (newest first).
    pub fn refused_changes(&self) -> Result<Vec<(crate::crdt::ChangeId, String)>> {
        let mut stmt = self.conn.prepare_cached("SELECT actor, counter, reason FROM refused_changes ORDER BY refused_at DESC, counter DESC")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (actor, counter, reason) = row?;
            out.push((
                crate::crdt::ChangeId {
                    actor: super::tracks::actor_from(&actor)?,
                    counter: counter as u64,
                },
                reason,
            ));
        }
        Ok(out)
    }

    pub fn sync_status(&self) -> Result<SyncStatus> {
        let settings = self.sync_settings()?;
        let count = |sql: &str| -> Result<u64> {
            let n: i64 = self.conn.query_row(sql, [], |r| r.get(0))?;
            Ok(n as u64)
        };
        Ok(SyncStatus {
            server: settings.as_ref().map(|s| s.server.clone()),
            user: settings.as_ref().map(|s| s.user.name.clone()),
            pending_changes: self.outbox_len()?,
            pending_photos: count("SELECT COUNT(*) FROM photos WHERE uploaded = 0")?,
            refused_changes: count("SELECT COUNT(*) FROM refused_changes")?,
            buffered_changes: self.buffered_count()?,
            last_sync: get_meta(&self.conn, "last_sync")?
                .and_then(|v| v.parse::<i64>().ok())
                .map(|ms| Timestamp::from_millis("last_sync", ms))
                .transpose()?,
            pull_cursor: self.pull_cursor()?,
            clock_offset_ms: self.clock_offset_ms(),
        })
    }
}

/// One page of a pull.
#[derive(Clone, Debug, Default)]
pub struct PullPage {
    pub changes: Vec<Change>,
    pub cursor: u64,
    pub more: bool,
}

impl Store {
    /// The changes after log position `after` that a device should hold:
    /// changes of cases in `cells` or reported by one of `own` devices (the
    /// user's handsets, earlier actors of a restored one included), the
    /// tracks and shift marks of `own` devices, and tasks addressed to
    /// `tasks_for` (every task with `None`); never its own (`requester`'s). At most `limit`; the cursor
    /// moves past everything scanned.
    pub fn changes_for(
        &self,
        after: u64,
        limit: usize,
        requester: crate::model::ActorId,
        cells: &[String],
        own: &[crate::model::ActorId],
        tasks_for: Option<&str>,
    ) -> Result<PullPage> {
        let cells_json = serde_json::to_string(cells)?;
        let own_json = serde_json::to_string(
            &own.iter()
                .map(|a| hex::encode(a.as_bytes()))
                .collect::<Vec<_>>(),
        )?;
        // Staff hold the whole city: one pass over the log after the
        // cursor. A collector's share is found by index — their cells'
        // and own cases' changes, their devices' case-free changes, their
        // tasks' — each in log order; the page is the first `limit` of the
        // three (they are disjoint), so the work follows what the
        // collector holds, not how busy the city was since their cursor.
        let mut stmt = self.conn.prepare_cached(if tasks_for.is_none() {
            "SELECT log_seq, body FROM changes
             WHERE log_seq > ?1 AND actor != ?2 AND (
                 (task_id IS NULL AND case_id IN (
                     SELECT id FROM cases
                     WHERE cell IN (SELECT value FROM json_each(?3))
                        OR reporter IN (SELECT unhex(value) FROM json_each(?4))))
                 OR (task_id IS NULL AND case_id IS NULL
                     AND actor IN (SELECT unhex(value) FROM json_each(?4)))
                 OR task_id IN (SELECT id FROM tasks WHERE ?6 IS NULL OR to_user = ?6))
             ORDER BY log_seq LIMIT ?5"
        } else {
            "SELECT log_seq, body FROM (
                 SELECT * FROM (
                     SELECT log_seq, body FROM changes INDEXED BY changes_by_case
                     WHERE case_id IN (
                         SELECT id FROM cases
                         WHERE cell IN (SELECT value FROM json_each(?3))
                            OR reporter IN (SELECT unhex(value) FROM json_each(?4)))
                       AND task_id IS NULL AND log_seq > ?1 AND actor != ?2
                     ORDER BY log_seq LIMIT ?5)
                 UNION ALL
                 SELECT * FROM (
                     SELECT log_seq, body FROM changes INDEXED BY changes_case_free
                     WHERE actor IN (SELECT unhex(value) FROM json_each(?4))
                       AND case_id IS NULL AND task_id IS NULL AND log_seq > ?1 AND actor != ?2
                     ORDER BY log_seq LIMIT ?5)
                 UNION ALL
                 SELECT * FROM (
                     SELECT log_seq, body FROM changes INDEXED BY changes_by_task
                     WHERE task_id IN (SELECT id FROM tasks WHERE to_user = ?6)
                       AND log_seq > ?1 AND actor != ?2
                     ORDER BY log_seq LIMIT ?5))
             ORDER BY log_seq LIMIT ?5"
        })?;
        let rows = stmt.query_map(
            params![
                after as i64,
                requester.as_bytes(),
                cells_json,
                own_json,
                limit as i64,
                tasks_for
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )?;
        let mut page = PullPage::default();
        let mut last = after;
        for row in rows {
            let (seq, body) = row?;
            page.changes.push(Change::from_json(&body)?);
            last = seq as u64;
        }
        page.more = page.changes.len() == limit;
        page.cursor = if page.more {
            last
        } else {
            self.log_position()?.max(after)
        };
        Ok(page)
    }

    /// The log itself, for moving a replica elsewhere: up to `limit`
    /// changes after position `after`, in log order, each with its position
    /// and when it reached this replica (ms; `None` for changes logged
    /// before receipt times were kept).
    pub fn log_page(&self, after: u64, limit: usize) -> Result<Vec<(u64, Option<i64>, Change)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT log_seq, received_ms, body FROM changes WHERE log_seq > ?1 ORDER BY log_seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![after as i64, limit.min(i64::MAX as usize) as i64],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, received, body) = row?;
            out.push((seq as u64, received, Change::from_json(&body)?));
        }
        Ok(out)
    }

    /// Changes waiting in the causal buffer.
    pub fn buffered_changes(&self) -> Result<Vec<Change>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM pending_changes ORDER BY actor, counter")?;
        let bodies = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        bodies.iter().map(|b| Change::from_json(b)).collect()
    }

    /// The position of the newest change in the log.
    pub fn log_position(&self) -> Result<u64> {
        let n: Option<i64> = self
            .conn
            .query_row("SELECT MAX(log_seq) FROM changes", [], |r| r.get(0))?;
        Ok(n.unwrap_or(0) as u64)
    }

    /// The grid as a GeoJSON FeatureCollection, for devices to pull.
    pub fn grid_geojson(&self) -> Result<serde_json::Value> {
        super::grid::grid_geojson_of(&self.cells()?)
    }

    /// Records which grid version the store holds (the server sets it on import).
    pub fn set_grid_version(&mut self, version: &str) -> Result<()> {
        set_meta(&self.conn, "grid_version", version)
    }
}
