//! The assessment's records on PostgreSQL: configuration versions,
//! assignments, findings, surveys, violations, certification, training,
//! rollups and stale days, and job leases.

use field_core::model::{ExternalFinding, Survey};

use super::{PgStorage, Tx};
use crate::storage::{JobRun, Records, Result, StorageError};

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn date(text: &str) -> Result<chrono::NaiveDate> {
    text.parse().map_err(|_| StorageError::Invalid {
        field: "day".into(),
        reason: text.to_string(),
    })
}

impl PgStorage {
    /// Rows whose one column is a JSON document of `T`.
    fn json_rows<T: serde::de::DeserializeOwned>(&self, sql: &str, what: &str) -> Result<Vec<T>> {
        self.read(|tx: &mut Tx<'_>| {
            tx.query(sql, &[])?
                .iter()
                .map(|r| {
                    serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StorageError::Invalid {
                        field: what.into(),
                        reason: e.to_string(),
                    })
                })
                .collect()
        })
    }

    /// One JSON record by a text key, if there is one.
    fn json_one<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        key: &str,
        what: &str,
    ) -> Result<Option<T>> {
        self.read(|tx: &mut Tx<'_>| {
            tx.query_opt(sql, &[&key])?
                .map(|r| {
                    serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StorageError::Invalid {
                        field: what.into(),
                        reason: e.to_string(),
                    })
                })
                .transpose()
        })
    }

    fn put_json(
        &self,
        sql: &str,
        id: &str,
        body: String,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(sql, &[&id, &body, key])?;
            Ok(())
        })
    }

    fn days(&self, sql: &str) -> Result<Vec<chrono::NaiveDate>> {
        self.read(|tx| {
            tx.query(sql, &[])?
                .iter()
                .map(|r| date(r.get::<_, &str>(0)))
                .collect()
        })
    }
}

impl Records for PgStorage {
    fn take_lease(&self, job: &str, holder: &str, now_ms: i64, until_ms: i64) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "INSERT INTO leases (job, holder, until_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
                 WHERE leases.until_ms <= $4 OR leases.holder = excluded.holder",
                &[&job, &holder, &until_ms, &now_ms],
            )? == 1)
        })
    }

    fn release_lease(&self, job: &str, holder: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM leases WHERE job = $1 AND holder = $2",
                &[&job, &holder],
            )?;
            Ok(())
        })
    }

    fn claim_job_run(&self, job: &str, slot_ms: i64, instance: &str, now_ms: i64) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "INSERT INTO job_runs (job, slot_ms, instance, started_ms, outcome) VALUES ($1, $2, $3, $4, 'running')
                 ON CONFLICT (job, slot_ms) DO NOTHING",
                &[&job, &slot_ms, &instance, &now_ms],
            )? == 1)
        })
    }

    fn finish_job_run(
        &self,
        job: &str,
        slot_ms: i64,
        now_ms: i64,
        outcome: &str,
        detail: &str,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE job_runs SET finished_ms = $3, outcome = $4, detail = $5 WHERE job = $1 AND slot_ms = $2",
                &[&job, &slot_ms, &now_ms, &outcome, &detail],
            )?;
            Ok(())
        })
    }

    fn job_runs(&self, limit: usize) -> Result<Vec<JobRun>> {
        let limit = limit.min(100_000) as i64;
        self.read(|tx| {
            Ok(tx
                .query(
                    "SELECT job, slot_ms, instance, started_ms, finished_ms, outcome, detail FROM job_runs
                     ORDER BY started_ms DESC, job LIMIT $1",
                    &[&limit],
                )?
                .iter()
                .map(|r| JobRun {
                    job: r.get(0),
                    slot_ms: r.get(1),
                    instance: r.get(2),
                    started_ms: r.get(3),
                    finished_ms: r.get(4),
                    outcome: r.get(5),
                    detail: r.get(6),
                })
                .collect())
        })
    }

    fn restore_epoch(&self) -> Result<String> {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('restore_epoch', $1) ON CONFLICT (key) DO NOTHING",
                &[&fresh],
            )?;
            Ok(tx
                .query_one("SELECT value FROM meta WHERE key = 'restore_epoch'", &[])?
                .get(0))
        })
    }

    fn set_restore_epoch(&self, epoch: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('restore_epoch', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&epoch],
            )?;
            Ok(())
        })
    }

    fn backup_to(
        &self,
        _data: &std::path::Path,
        to: &std::path::Path,
        now_ms: i64,
    ) -> Result<crate::storage::backup::Manifest> {
        crate::storage::backup::postgres_backup(
            self.url(),
            crate::storage::blobs::HasBlobs::blobs(self),
            &self.restore_epoch()?,
            to,
            now_ms,
        )
    }

    fn pool(&self) -> Option<crate::storage::PoolStatus> {
        Some(self.pool_status())
    }

    fn ready(&self) -> Result<()> {
        let version: i64 = self.read(|tx| {
            Ok(tx
                .query_one("SELECT version FROM schema_version", &[])?
                .get(0))
        })?;
        if version != super::schema::SCHEMA_VERSION {
            return Err(StorageError::Invalid {
                field: "schema_version".into(),
                reason: format!(
                    "the database is at version {version}, this build at {}",
                    super::schema::SCHEMA_VERSION
                ),
            });
        }
        Ok(())
    }

    fn create_survey(&self, survey: &Survey) -> Result<()> {
        self.put_json(
            "INSERT INTO surveys (id, body, created_ms) VALUES ($1, $2, $3)",
            &survey.id,
            json(survey),
            &self.now_ms(),
        )
    }

    fn set_assignment(
        &self,
        user_id: &str,
        cells: &[String],
        from: chrono::NaiveDate,
    ) -> Result<()> {
        let cells = json(&cells);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO assignments (user_id, from_date, cells) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, from_date) DO UPDATE SET cells = excluded.cells",
                &[&user_id, &from.to_string(), &cells],
            )?;
            Ok(())
        })
    }

    fn assignments(&self, user_id: &str) -> Result<Vec<(chrono::NaiveDate, Vec<String>)>> {
        self.read(|tx| {
            tx.query(
                "SELECT from_date, cells FROM assignments WHERE user_id = $1 ORDER BY from_date",
                &[&user_id],
            )?
            .iter()
            .map(|r| {
                Ok((
                    date(r.get::<_, &str>(0))?,
                    serde_json::from_str(r.get::<_, &str>(1)).unwrap_or_default(),
                ))
            })
            .collect()
        })
    }

    fn put_rollup(&self, day: chrono::NaiveDate, user_id: &str, report: &str) -> Result<()> {
        let now = self.now_ms();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO rollups (day, user_id, report, computed_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (day, user_id) DO UPDATE SET report = excluded.report, computed_ms = excluded.computed_ms",
                &[&day.to_string(), &user_id, &report, &now],
            )?;
            Ok(())
        })
    }

    fn rollup(&self, day: chrono::NaiveDate, user_id: &str) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT report FROM rollups WHERE day = $1 AND user_id = $2",
                    &[&day.to_string(), &user_id],
                )?
                .map(|r| r.get(0)))
        })
    }

    fn mark_dirty(&self, days: &[chrono::NaiveDate]) -> Result<()> {
        let now = self.now_ms();
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO dirty_days (day, since_ms) SELECT d, $2 FROM UNNEST($1::text[]) AS d
                 ON CONFLICT DO NOTHING",
                &[&days, &now],
            )?;
            Ok(())
        })
    }

    fn dirty_days(&self) -> Result<Vec<chrono::NaiveDate>> {
        self.days("SELECT day FROM dirty_days ORDER BY day")
    }

    fn rollup_days(&self) -> Result<Vec<chrono::NaiveDate>> {
        self.days("SELECT DISTINCT day FROM rollups ORDER BY day")
    }

    fn clear_dirty(&self, day: chrono::NaiveDate) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM dirty_days WHERE day = $1", &[&day.to_string()])?;
            Ok(())
        })
    }

    fn config(&self) -> Result<Option<(u64, String)>> {
        self.read(|tx| {
            Ok(tx
                .query_opt(
                    "SELECT version, toml FROM config_versions ORDER BY version DESC LIMIT 1",
                    &[],
                )?
                .map(|r| (r.get::<_, i64>(0) as u64, r.get(1))))
        })
    }

    fn set_config(&self, toml: &str, by_user: &str) -> Result<u64> {
        let now = self.now_ms();
        self.write(|tx| {
            // Versions are numbered in commit order: the table is locked
            // for the insert, so two instances never pick the same number.
            tx.batch("LOCK TABLE config_versions IN EXCLUSIVE MODE")?;
            let v: i64 = tx
                .query_one(
                    "INSERT INTO config_versions (version, toml, by_user, created_ms)
                     SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3 FROM config_versions
                     RETURNING version",
                    &[&toml, &by_user, &now],
                )?
                .get(0);
            Ok(v as u64)
        })
    }

    fn add_finding(&self, f: &ExternalFinding) -> Result<()> {
        self.put_json(
            "INSERT INTO findings (id, body, at_ms) VALUES ($1, $2, $3)",
            &f.id,
            json(f),
            &f.at.millis(),
        )
    }

    fn put_channel(&self, c: &crate::service::Channel, key_hash: &str) -> Result<()> {
        let body = json(c);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO open311_channels (id, key_hash, body) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                &[&c.id, &key_hash, &body],
            )?;
            Ok(())
        })
    }

    fn channels(&self) -> Result<Vec<crate::service::Channel>> {
        self.json_rows("SELECT body FROM open311_channels ORDER BY id", "channel")
    }

    fn channel_by_key(&self, key_hash: &str) -> Result<Option<crate::service::Channel>> {
        self.json_one(
            "SELECT body FROM open311_channels WHERE key_hash = $1",
            key_hash,
            "channel",
        )
    }

    fn charge_channel(&self, channel: &str, window_ms: i64) -> Result<u64> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM open311_rate WHERE window_ms < $1",
                &[&window_ms],
            )?;
            let n: i64 = tx
                .query_one(
                    "INSERT INTO open311_rate (channel, window_ms, count) VALUES ($1, $2, 1)
                     ON CONFLICT (channel, window_ms) DO UPDATE SET count = open311_rate.count + 1
                     RETURNING count",
                    &[&channel, &window_ms],
                )?
                .get(0);
            Ok(n.max(0) as u64)
        })
    }

    fn put_request(&self, r: &crate::service::CitizenRequest) -> Result<()> {
        let body = json(r);
        let at = r.requested_at.millis();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO open311_requests (id, token, at_ms, body) VALUES ($1, $2, $3, $4)",
                &[&r.id, &r.token, &at, &body],
            )?;
            Ok(())
        })
    }

    fn request(&self, id: &str) -> Result<Option<crate::service::CitizenRequest>> {
        self.json_one(
            "SELECT body FROM open311_requests WHERE id = $1",
            id,
            "request",
        )
    }

    fn request_by_token(&self, token: &str) -> Result<Option<crate::service::CitizenRequest>> {
        self.json_one(
            "SELECT body FROM open311_requests WHERE token = $1",
            token,
            "request",
        )
    }

    fn requests(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<crate::service::CitizenRequest>> {
        let limit = limit as i64;
        self.read(|tx| {
            tx.query(
                "SELECT body FROM open311_requests WHERE at_ms >= $1 AND at_ms < $2
                 ORDER BY at_ms, id LIMIT $3",
                &[&from_ms, &to_ms, &limit],
            )?
            .iter()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StorageError::Invalid {
                    field: "request".into(),
                    reason: e.to_string(),
                })
            })
            .collect()
        })
    }

    fn put_violation(&self, v: &crate::service::Violation) -> Result<()> {
        self.put_json(
            "INSERT INTO violations (id, body, at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            &v.id,
            json(v),
            &v.at.millis(),
        )
    }

    fn violations(&self) -> Result<Vec<crate::service::Violation>> {
        self.json_rows(
            "SELECT body FROM violations ORDER BY at_ms, id",
            "violation",
        )
    }

    fn put_attempt(&self, a: &crate::service::Attempt) -> Result<()> {
        self.put_json(
            "INSERT INTO attempts (id, body, day) VALUES ($1, $2, $3)",
            &a.id,
            json(a),
            &a.date.to_string(),
        )
    }

    fn attempts(&self) -> Result<Vec<crate::service::Attempt>> {
        self.json_rows("SELECT body FROM attempts ORDER BY day, id", "attempt")
    }

    fn put_training(&self, t: &crate::service::Training) -> Result<()> {
        self.put_json(
            "INSERT INTO trainings (id, body, day) VALUES ($1, $2, $3)",
            &t.id,
            json(t),
            &t.date.to_string(),
        )
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
