//! Where a report is asked for: who may read it, what it reads (the
//! inputs loaded once per run, each collector's devices, assignments,
//! track points and tasks), which days come from the nightly rollups and
//! which are computed live. The figures themselves are pure functions in
//! `field_core::assess` (`figures` for a collector's days, `report` for
//! months, periods, companies and the settlement).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use field_core::assess::certification::{standing, training_shortfall};
use field_core::assess::report::{CollectorPeriod, collector_period, company_period, period_days};
use field_core::assess::{CityConfig, Collected, Collector, Inputs, Report, collector_figures};
use field_core::model::ActorId;
use serde::{Deserialize, Serialize};

use super::authorize::Operation;

/// Live collector-days computed together (see `Center::report`).
const LIVE_DAYS_PER_BATCH: usize = 96;
use super::{Center, Result, ServiceError};
use crate::storage::{Principal, Role, User};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `YYYY-MM-DD` (a day) or `YYYY-MM` (a month).
    pub period: String,
    #[serde(default)]
    pub collector: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub explain: bool,
    /// Also give the four rates of each day of the period (for charts).
    #[serde(default)]
    pub daily: bool,
}

impl Center {
    pub fn report(&self, p: &Principal, q: ReportQuery) -> Result<Vec<Report>> {
        let mut q = q;
        if p.user.role == Role::Collector {
            // A collector checks their own figures, and only theirs.
            self.require(p, Operation::ReadOwnReport)?;
            let own = q
                .collector
                .as_deref()
                .is_none_or(|c| c == p.user.name || c == p.user.id);
            if !own || q.company.is_some() {
                return Err(ServiceError::Forbidden(format!(
                    "{} may read their own report only",
                    p.user.name
                )));
            }
            q.collector = Some(p.user.id.clone());
        } else {
            self.require(p, Operation::ReadCases)?;
        }
        let days = period_days(&q.period)?;
        let users: Vec<User> = self
            .storage
            .users()?
            .into_iter()
            .filter(|u| u.role == Role::Collector)
            .filter(|u| {
                q.collector
                    .as_deref()
                    .is_none_or(|c| u.id == c || u.name == c)
            })
            .filter(|u| {
                q.company
                    .as_deref()
                    .is_none_or(|c| u.company.as_deref() == Some(c))
            })
            .collect();
        if users.is_empty() {
            return Err(ServiceError::NotFound("no collector matches".into()));
        }
        let cfg = self.city_config()?;
        let inp = self.assessment_inputs(cfg.config.clone())?;
        // A period still running is charged only so far, and says so.
        let complete = days
            .last()
            .is_some_and(|d| *d < cfg.config.patrol.local_date(self.now_ms()).unwrap_or(*d));
        let monthly = field_core::assess::report::monthly_period(&q.period);
        let dirty = self.storage.dirty_days()?;
        let trainings = self.storage.trainings()?;
        // Which collector-days are read from rollups and which computed
        // live (a single day always live, a stale one too). Collectors go
        // in batches of about a hundred live days: enough to keep the
        // reader and the computer busy together, few enough that a city's
        // month is never all in memory at once.
        let mut periods: Vec<CollectorPeriod> = Vec::with_capacity(users.len());
        let mut batch: Vec<(&User, Vec<Option<Report>>)> = Vec::new();
        let mut jobs: Vec<(&User, NaiveDate)> = Vec::new();
        for (k, u) in users.iter().enumerate() {
            let mut per_day = Vec::with_capacity(days.len());
            for d in &days {
                let rollup = if days.len() == 1 || dirty.contains(d) {
                    None
                } else {
                    self.storage
                        .rollup(*d, &u.id)?
                        .and_then(|json| serde_json::from_str::<Report>(&json).ok())
                };
                if rollup.is_none() {
                    jobs.push((u, *d));
                }
                per_day.push(rollup);
            }
            batch.push((u, per_day));
            if jobs.len() < LIVE_DAYS_PER_BATCH && k + 1 < users.len() {
                continue;
            }
            let mut live = self.collector_reports(&jobs, &q, &inp)?.into_iter();
            jobs.clear();
            for (u, per_day) in batch.drain(..) {
                let from_rollups = per_day.iter().filter(|r| r.is_some()).count() as u32;
                let per_day: Vec<Report> = per_day
                    .into_iter()
                    .map(|r| r.or_else(|| live.next()).unwrap_or_default())
                    .collect();
                periods.push(collector_period_of(
                    u,
                    &q,
                    &days,
                    &per_day,
                    from_rollups,
                    complete,
                    monthly,
                    &trainings,
                    &cfg,
                ));
            }
        }
        let company = q
            .company
            .as_ref()
            .map(|c| company_period(c, &q.period, &days, &periods, &cfg.config));
        let mut reports: Vec<Report> = periods.into_iter().map(|p| p.report).collect();
        if let Some(mut total) = company {
            total.complete = complete;
            total.config_version = cfg.version;
            reports.push(total);
        }
        Ok(reports)
    }

    /// Each (collector, day)'s figures, computed live, in order: one thread
    /// reads the next collector-day from storage while this one computes
    /// the last (reading and computing take about as long; on two cores a
    /// month costs the longer of the two, not their sum).
    pub(crate) fn collector_reports(
        &self,
        jobs: &[(&User, NaiveDate)],
        q: &ReportQuery,
        inp: &Inputs,
    ) -> Result<Vec<Report>> {
        let mut out = Vec::with_capacity(jobs.len());
        std::thread::scope(|scope| -> Result<()> {
            // A few collector-days ahead at most: memory stays bounded.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Collected>>(2);
            scope.spawn(move || {
                for (u, d) in jobs {
                    let got = self.collect(u, std::slice::from_ref(d), inp);
                    let failed = got.is_err();
                    if tx.send(got).is_err() || failed {
                        return;
                    }
                }
            });
            for (u, d) in jobs {
                let got = rx.recv().map_err(|_| {
                    ServiceError::Internal("the reader of track points stopped".into())
                })??;
                out.push(self.figures_of(u, q, std::slice::from_ref(d), inp, &got)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// One collector's figures for `days`, from what was read for them.
    fn figures_of(
        &self,
        u: &User,
        q: &ReportQuery,
        days: &[NaiveDate],
        inp: &Inputs,
        got: &Collected,
    ) -> Result<Report> {
        let who = Collector {
            id: &u.id,
            name: &u.name,
            period: &q.period,
            explain: q.explain,
        };
        Ok(collector_figures(&who, days, inp, got)?)
    }

    /// What one collector's figures for `days` read: their devices,
    /// assignments, track points by day, tasks, and the clock.
    fn collect(&self, u: &User, days: &[NaiveDate], inp: &Inputs) -> Result<Collected> {
        let rules = &inp.cfg.patrol;
        let actors: Vec<ActorId> = self
            .storage
            .devices_of(&u.id)?
            .into_iter()
            .map(|d| d.actor)
            .collect();
        let now = self.now_ms();
        let today = rules.local_date(now)?;
        let mut points = BTreeMap::new();
        for d in days.iter().filter(|d| **d <= today) {
            let day = rules.patrol_day(*d)?;
            let mut day_points = Vec::new();
            for a in &actors {
                day_points.extend(self.storage.track_between(
                    *a,
                    day.start_ms - 3_600_000,
                    day.end_ms + 3_600_000,
                )?);
            }
            points.insert(*d, day_points);
        }
        Ok(Collected {
            assignments: self.storage.assignments(&u.id)?,
            tasks: self.storage.tasks(Some(&u.id))?,
            actors,
            points,
            now,
        })
    }
}

impl Center {
    /// What every report of one run reads once.
    pub(crate) fn assessment_inputs(&self, cfg: CityConfig) -> Result<Inputs> {
        let valid_months = cfg.certificate_valid_months;
        let grid = match self.storage.grid()? {
            Some((_, g)) => field_core::import::parse_grid(&g.to_string(), &Default::default())?,
            None => Vec::new(),
        };
        Ok(Inputs {
            cfg,
            grid,
            cases: self.storage.cases()?,
            findings: self.storage.findings()?,
            marks: self.storage.shift_marks()?,
            gaps: self.storage.track_gaps()?,
            catalog: self.storage.catalog()?,
            violations: self
                .storage
                .violations()?
                .into_iter()
                .filter(|v| v.revoked.is_none())
                .collect(),
            certificates: {
                let mut by_user: HashMap<String, Vec<super::Attempt>> = HashMap::new();
                for a in self.storage.attempts()? {
                    by_user.entry(a.collector_id.clone()).or_default().push(a);
                }
                by_user
                    .into_iter()
                    .map(|(id, attempts)| {
                        let name = attempts
                            .first()
                            .map(|a| a.collector.clone())
                            .unwrap_or_default();
                        let standing = standing(&name, attempts, valid_months);
                        (id, standing)
                    })
                    .collect()
            },
        })
    }
}

impl Center {
    /// Today in the city's time zone.
    pub fn today(&self) -> Result<NaiveDate> {
        Ok(self
            .city_config()?
            .config
            .patrol
            .local_date(self.now_ms())?)
    }

    /// The city's time zone (times are stored in UTC and shown in it).
    pub fn city_tz(&self) -> Result<chrono_tz::Tz> {
        Ok(self.city_config()?.config.patrol.tz()?)
    }
}

#[allow(clippy::too_many_arguments)]
/// One collector's period from their days, with what only the server
/// knows: where the days came from, whether the period is over, the
/// training they attended, the configuration version.
fn collector_period_of(
    u: &User,
    q: &ReportQuery,
    days: &[NaiveDate],
    per_day: &[Report],
    from_rollups: u32,
    complete: bool,
    monthly: bool,
    trainings: &[field_core::assess::certification::Training],
    cfg: &super::ConfigVersion,
) -> CollectorPeriod {
    let mut period = collector_period(&u.name, &q.period, days, per_day, &cfg.config, q.daily);
    let r = &mut period.report;
    r.days_from_rollups = from_rollups;
    r.complete = complete;
    if !q.explain {
        r.explain = None;
    }
    if monthly {
        r.compliance.extend(training_shortfall(
            &u.id,
            period.months.iter().map(|(ym, _)| ym.as_str()),
            trainings,
            cfg.config.training_per_month,
        ));
    }
    r.config_version = cfg.version;
    period
}
