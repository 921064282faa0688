//! The server's own schedule: the nightly roll-up, expiry of abandoned
//! uploads and old console sessions, and (embedded backend) backups with
//! retention, each at a configured local time in the city's zone.
//!
//! A job is due at its slot (today's `HH:MM`, or yesterday's before that
//! time) while the slot is less than [`CATCH_UP`] old: a server that was
//! down at 02:00 runs the roll-up when it is back by 08:00; a server first
//! started at noon does not run a night it never saw. Each slot runs once
//! across all instances: the run is claimed by inserting its row
//! (`job_runs`, keyed by job and slot), and only the inserter runs it.
//! Every run is recorded with its outcome (`sync-server jobs`).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{NaiveTime, TimeZone};
use serde::Serialize;

use crate::config::{Jobs, local_time};
use crate::service::Center;
use crate::storage::JobRun;

/// How late a missed slot is still run.
pub const CATCH_UP: Duration = Duration::from_secs(6 * 3600);

/// What a job does.
#[derive(Clone, Debug, PartialEq)]
pub enum Job {
    /// The nightly roll-up of the finished day and stale days.
    Nightly,
    /// Abandoned partial uploads and expired console sessions removed.
    Expire,
    /// An online backup into `dir`, keeping the newest `keep`.
    Backup { dir: PathBuf, keep: usize },
}

impl Job {
    pub fn name(&self) -> &'static str {
        match self {
            Job::Nightly => "nightly",
            Job::Expire => "expire",
            Job::Backup { .. } => "backup",
        }
    }
}

/// The jobs and their local times.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub entries: Vec<(Job, NaiveTime)>,
    pub tz: chrono_tz::Tz,
    /// The data directory (backups read its files).
    pub data: PathBuf,
}

impl Schedule {
    /// The schedule the configuration describes (already checked).
    pub fn from_config(jobs: &Jobs, tz: &str, data: PathBuf) -> Result<Schedule, String> {
        let tz: chrono_tz::Tz = tz
            .parse()
            .map_err(|_| format!("review.timezone: {tz:?} is not a time zone"))?;
        let mut entries = vec![
            (Job::Nightly, local_time(&jobs.nightly_at)?),
            (Job::Expire, local_time(&jobs.expire_at)?),
        ];
        if !jobs.backup_at.is_empty()
            && let Some(dir) = &jobs.backup_dir
        {
            entries.push((
                Job::Backup {
                    dir: dir.clone(),
                    keep: jobs.backup_keep,
                },
                local_time(&jobs.backup_at)?,
            ));
        }
        Ok(Schedule { entries, tz, data })
    }

    /// The slot (ms) of a job at local time `at` most recently reached by
    /// `now_ms`.
    pub fn last_slot(&self, at: NaiveTime, now_ms: i64) -> Option<i64> {
        let now = self.tz.timestamp_millis_opt(now_ms).single()?;
        let today = now.date_naive();
        let slot_on = |d: chrono::NaiveDate| {
            // A local time skipped by a DST jump resolves to the earliest valid.
            self.tz
                .from_local_datetime(&d.and_time(at))
                .earliest()
                .map(|t| t.timestamp_millis())
        };
        match slot_on(today) {
            Some(s) if s <= now_ms => Some(s),
            _ => slot_on(today.pred_opt()?),
        }
    }
}

/// What one look at the clock ran.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tick {
    pub ran: Vec<JobRun>,
}

impl Center {
    /// Runs every job whose slot has come and that no instance has claimed.
    pub fn run_due_jobs(&self, schedule: &Schedule, instance: &str) -> Tick {
        let mut tick = Tick::default();
        let now = self.now();
        for (job, at) in &schedule.entries {
            let Some(slot) = schedule.last_slot(*at, now) else {
                continue;
            };
            if now - slot > CATCH_UP.as_millis() as i64 {
                continue;
            }
            match self
                .storage()
                .claim_job_run(job.name(), slot, instance, now)
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(job = job.name(), "cannot claim the run: {e}");
                    continue;
                }
            }
            tick.ran
                .push(self.run_job(job, slot, instance, &schedule.data));
        }
        tick
    }

    /// Runs `job` for `slot` (claimed), records and reports how it went.
    pub fn run_job(&self, job: &Job, slot: i64, instance: &str, data: &std::path::Path) -> JobRun {
        let span = tracing::info_span!("job", job = job.name(), slot);
        let _enter = span.enter();
        let started = std::time::Instant::now();
        let started_ms = self.now();
        let result: Result<String, String> = match job {
            Job::Nightly => self
                .nightly(None)
                .map(|s| serde_json::to_string(&s).unwrap_or_default())
                .map_err(|e| e.to_string()),
            Job::Expire => {
                let now = self.now();
                let sessions = self.storage().expire_sessions(now);
                let chunks = self.storage().blobs_expire(now);
                match (sessions, chunks) {
                    (Ok(s), Ok(c)) => Ok(format!("{{\"sessions\":{s},\"partial_chunks\":{c}}}")),
                    (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
                }
            }
            Job::Backup { dir, keep } => self.scheduled_backup(data, dir, *keep, slot),
        };
        let (outcome, detail) = match &result {
            Ok(d) => ("ok", d.clone()),
            Err(e) => ("failed", e.clone()),
        };
        let finished_ms = self.now();
        if let Err(e) =
            self.storage()
                .finish_job_run(job.name(), slot, finished_ms, outcome, &detail)
        {
            tracing::warn!("cannot record the run: {e}");
        }
        let secs = started.elapsed().as_secs_f64();
        metrics::histogram!("job_duration_seconds", "job" => job.name()).record(secs);
        metrics::counter!("job_runs_total", "job" => job.name(), "outcome" => outcome).increment(1);
        match &result {
            Ok(_) => tracing::info!(outcome, seconds = secs, "job done"),
            Err(e) => tracing::warn!(outcome, seconds = secs, error = %e, "job failed"),
        }
        JobRun {
            job: job.name().into(),
            slot_ms: slot,
            instance: instance.into(),
            started_ms,
            finished_ms: Some(finished_ms),
            outcome: outcome.into(),
            detail,
        }
    }

    /// A backup named for its slot; then only the newest `keep` are kept.
    fn scheduled_backup(
        &self,
        data: &std::path::Path,
        dir: &std::path::Path,
        keep: usize,
        slot: i64,
    ) -> Result<String, String> {
        let stamp = chrono::DateTime::from_timestamp_millis(slot)
            .map(|t| t.format("%Y%m%dT%H%MZ").to_string())
            .unwrap_or_else(|| slot.to_string());
        let to = dir.join(format!("backup-{stamp}"));
        let manifest = self
            .storage()
            .backup_to(data, &to, self.now())
            .map_err(|e| e.to_string())?;
        // Retention: names sort by time; only complete backups count.
        let mut kept: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("backup-"))
                    && p.join("manifest.json").is_file()
            })
            .collect();
        kept.sort();
        let mut removed = 0;
        while kept.len() > keep.max(1) {
            let old = kept.remove(0);
            std::fs::remove_dir_all(&old).map_err(|e| format!("{}: {e}", old.display()))?;
            removed += 1;
        }
        Ok(format!(
            "{{\"to\":{:?},\"photos\":{},\"removed\":{removed}}}",
            to.display().to_string(),
            manifest.photos
        ))
    }
}

/// Looks at the clock every `every` until `stop` resolves, running what is due.
pub async fn run_scheduler(
    center: Center,
    schedule: Schedule,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let instance = format!(
        "{}:{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut stop = std::pin::pin!(stop);
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = &mut stop => return,
        }
        let (c, s, i) = (center.clone(), schedule.clone(), instance.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || c.run_due_jobs(&s, &i)).await {
            tracing::warn!("scheduler tick failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule::from_config(&Jobs::default(), "Asia/Shanghai", PathBuf::from("."))
            .expect("default schedule")
    }

    fn shanghai(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn the_slot_is_the_last_local_time_reached() {
        let s = schedule();
        let two = local_time("02:00").unwrap();
        assert_eq!(
            s.last_slot(two, shanghai(2026, 11, 27, 1, 59)),
            Some(shanghai(2026, 11, 26, 2, 0))
        );
        assert_eq!(
            s.last_slot(two, shanghai(2026, 11, 27, 2, 0)),
            Some(shanghai(2026, 11, 27, 2, 0))
        );
        assert_eq!(
            s.last_slot(two, shanghai(2026, 11, 27, 23, 0)),
            Some(shanghai(2026, 11, 27, 2, 0))
        );
    }
}
