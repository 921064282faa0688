//! The city dashboard (大屏): today so far across the city, for the
//! center's wall screen. One computation serves every open screen: the
//! figures are kept for [`DASHBOARD_TTL_MS`] and a refresh inside that
//! window reads the kept copy (one query set per refresh interval, however
//! many screens poll).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use field_core::model::{ShiftKind, Status};
use serde::Serialize;

use super::authorize::Operation;
use super::{Center, MapColour, Result};
use crate::storage::{Principal, Role};

/// How long one computation of the figures serves every screen.
pub const DASHBOARD_TTL_MS: i64 = 15_000;

/// A cell's coverage so far today.
#[derive(Clone, Debug, Serialize)]
pub struct CellHeat {
    pub code: String,
    pub covered: u64,
    pub windows: u64,
    /// The fill the map paints it (red → green; grey: nobody assigned).
    pub fill: String,
}

/// Today's cases of one major class, by how far they have gone.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClassRow {
    /// The major class's code (`BJ01`, `SJ02`).
    pub class: String,
    pub name: String,
    pub reported: u64,
    pub registered: u64,
    pub dispatched: u64,
    pub closed: u64,
}

/// A fraud signal on one of today's cases.
#[derive(Clone, Debug, Serialize)]
pub struct RedFlag {
    pub kind: String,
    pub case: String,
    pub collector: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Dashboard {
    pub day: NaiveDate,
    /// When these figures were computed (ms, UTC).
    pub computed_at_ms: i64,
    /// How long they serve before the next computation (ms).
    pub ttl_ms: i64,
    pub cells: Vec<CellHeat>,
    /// Windows covered / windows due so far, all cells together.
    pub coverage_covered: u64,
    pub coverage_windows: u64,
    /// Collectors whose shift has started and not ended.
    pub on_post: Vec<String>,
    /// Collectors assigned cells today who are not on post.
    pub off_post: Vec<String>,
    pub classes: Vec<ClassRow>,
    pub totals: ClassRow,
    /// Tasks falling due today, and those past their deadline unanswered
    /// or answered late.
    pub tasks_due: u64,
    pub tasks_late: u64,
    /// The newest [`RED_FLAGS_SHOWN`] red flags (a wall shows a few)…
    pub red_flags: Vec<RedFlag>,
    /// …and how many of each kind the day has in all.
    pub red_flag_counts: BTreeMap<String, u64>,
}

/// Red flags a dashboard lists (their counts cover all of them).
pub const RED_FLAGS_SHOWN: usize = 50;

/// What the instance keeps between refreshes.
#[derive(Default)]
pub struct DashboardCache {
    kept: std::sync::Mutex<Option<Arc<Dashboard>>>,
}

impl Center {
    /// Today's dashboard: the kept figures when fresh, else computed once
    /// (concurrent refreshes wait for the one computation).
    pub fn dashboard(&self, p: &Principal) -> Result<Arc<Dashboard>> {
        self.require(p, Operation::ReadCases)?;
        let now = self.now();
        let today = self.today()?;
        let mut kept = self
            .dashboard
            .kept
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(d) = kept.as_ref()
            && now - d.computed_at_ms < DASHBOARD_TTL_MS
            && now >= d.computed_at_ms
        {
            return Ok(d.clone());
        }
        let fresh = Arc::new(self.compute_dashboard(p, today, now)?);
        metrics::counter!("field_dashboard_computations_total").increment(1);
        *kept = Some(fresh.clone());
        Ok(fresh)
    }

    /// Another day's wall as it stood at that day's end (for a review of
    /// the day or a benchmark): computed for the asker, not kept.
    pub fn dashboard_of(&self, p: &Principal, day: NaiveDate) -> Result<Dashboard> {
        self.require(p, Operation::ReadCases)?;
        let today = self.today()?;
        if day > today {
            return Err(super::invalid(
                "day",
                "the dashboard cannot show a day to come",
            ));
        }
        if day == today {
            return Ok(self.dashboard(p)?.as_ref().clone());
        }
        let end = self.city_config()?.config.patrol.patrol_day(day)?.end_ms;
        self.compute_dashboard(p, day, end)
    }

    fn compute_dashboard(&self, p: &Principal, day: NaiveDate, now: i64) -> Result<Dashboard> {
        let cfg = self.city_config()?.config;
        let patrol = cfg.patrol.patrol_day(day)?;
        // The city's calendar day: [midnight, next midnight) on its clock.
        let tz = cfg.patrol.tz()?;
        let midnight = |d: NaiveDate| {
            use chrono::TimeZone;
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| tz.from_local_datetime(&t).earliest())
                .map(|t| t.timestamp_millis())
                .unwrap_or(patrol.start_ms)
        };
        let (day_start, day_end) = (midnight(day), midnight(day + chrono::Days::new(1)));
        // Coverage per cell: the map's own computation, read back.
        let (mut cells, mut covered, mut windows) = (Vec::new(), 0, 0);
        if self.storage.grid()?.is_some() {
            let map = self.city_map(p, &day.to_string(), None, MapColour::Coverage)?;
            for f in map["features"].as_array().into_iter().flatten() {
                let props = &f["properties"];
                if props["layer"] != "cell" {
                    continue;
                }
                let (c, w) = (
                    props["covered"].as_u64().unwrap_or(0),
                    props["windows"].as_u64().unwrap_or(0),
                );
                covered += c;
                windows += w;
                cells.push(CellHeat {
                    code: props["code"].as_str().unwrap_or_default().to_string(),
                    covered: c,
                    windows: w,
                    fill: props["fill"].as_str().unwrap_or("#dddddd").to_string(),
                });
            }
        }
        // On post: the day's last shift mark per collector is a start.
        let users = self.storage.users()?;
        let mut owner = HashMap::new();
        for u in users.iter().filter(|u| u.role == Role::Collector) {
            for d in self.storage.devices_of(&u.id)? {
                owner.insert(d.actor, u.name.clone());
            }
        }
        let mut last: BTreeMap<String, (i64, ShiftKind)> = BTreeMap::new();
        for (actor, mark) in self.storage.shift_marks()? {
            let at = mark.at.millis();
            if at < day_start || at > now {
                continue;
            }
            if let Some(name) = owner.get(&actor)
                && last.get(name).is_none_or(|(t, _)| *t <= at)
            {
                last.insert(name.clone(), (at, mark.kind));
            }
        }
        let on_post: Vec<String> = last
            .iter()
            .filter(|(_, (_, k))| *k == ShiftKind::Start)
            .map(|(n, _)| n.clone())
            .collect();
        let mut off_post = Vec::new();
        for u in users
            .iter()
            .filter(|u| u.role == Role::Collector && !u.disabled)
        {
            let assignments = self.storage.assignments(&u.id)?;
            let assigned =
                !super::assignments::cells_in_force(&assignments, &u.cells, day).is_empty();
            if assigned && !on_post.contains(&u.name) {
                off_post.push(u.name.clone());
            }
        }
        // Today's cases by major class and how far they went.
        let catalog = self.storage.catalog()?;
        let cases = self.storage.case_page(&field_core::store::CaseQuery {
            reported_between: Some((day_start, day_end)),
            ..Default::default()
        })?;
        let mut classes: BTreeMap<String, ClassRow> = BTreeMap::new();
        let mut totals = ClassRow::default();
        let mut red_flags = Vec::new();
        for v in &cases.cases {
            let entry = v.category.as_ref().and_then(|c| catalog.get(c));
            let (class, name) = match entry {
                Some(e) => (e.major_code.clone(), e.major_name.clone()),
                None => ("-".to_string(), String::new()),
            };
            let st = v.statuses();
            let reached = |s: &[Status]| u64::from(st.iter().any(|x| s.contains(x)));
            let registered = reached(&[
                Status::Registered,
                Status::Dispatched,
                Status::Handled,
                Status::Closed,
            ]);
            let dispatched = reached(&[Status::Dispatched, Status::Handled, Status::Closed]);
            let closed = reached(&[Status::Closed]);
            for row in [
                classes.entry(class.clone()).or_insert_with(|| ClassRow {
                    class: class.clone(),
                    name: name.clone(),
                    ..Default::default()
                }),
                &mut totals,
            ] {
                row.reported += 1;
                row.registered += registered;
                row.dispatched += dispatched;
                row.closed += closed;
            }
            for f in self.case_flags(v)? {
                red_flags.push(RedFlag {
                    kind: f.kind.to_string(),
                    case: v.id.to_string(),
                    collector: v
                        .origin
                        .as_ref()
                        .map(|o| o.collector.clone())
                        .unwrap_or_default(),
                });
            }
        }
        // Tasks: due today; late = past the deadline and not answered in time.
        let (mut tasks_due, mut tasks_late) = (0, 0);
        for t in self.storage.tasks(None)? {
            let Some(spec) = &t.task.spec else { continue };
            let due = spec.due_at.millis();
            if due < day_start || due >= day_end {
                continue;
            }
            tasks_due += 1;
            let answered = t.answer_received_at.map(|a| a.millis());
            if due < now && answered.is_none_or(|a| a > due) {
                tasks_late += 1;
            }
        }
        totals.class = "*".into();
        let mut red_flag_counts = BTreeMap::new();
        for f in &red_flags {
            *red_flag_counts.entry(f.kind.clone()).or_insert(0) += 1;
        }
        // The listing is newest report first: keep the newest few.
        let mut red_flags = red_flags;
        red_flags.truncate(RED_FLAGS_SHOWN);
        Ok(Dashboard {
            day,
            computed_at_ms: now,
            ttl_ms: DASHBOARD_TTL_MS,
            cells,
            coverage_covered: covered,
            coverage_windows: windows,
            on_post,
            off_post,
            classes: classes.into_values().collect(),
            totals,
            tasks_due,
            tasks_late,
            red_flags,
            red_flag_counts,
        })
    }
}
