//! Where every request is authorised, by what it means.
//!
//! Center operations: [`TABLE`] says which role may do what; every service
//! entry point calls [`Center::require`] with its [`Operation`] and nothing
//! else decides. `sync-server policy` prints the table (it is the one in
//! `API.md`, checked by a test).
//!
//! Changes: every pushed change is judged here before the merge sees it; a
//! refusal names the rule, and the other changes of the batch are judged on
//! their own.
//!
//! Rules: a device authors only as its own actor; a collector reports cases,
//! edits their own cases while `reported`, and appends their own track and
//! shift marks; only center staff change a case's status. Times in a change
//! may not lie more than 24 h in the future.

use std::collections::HashMap;

use field_core::crdt::{Change, Op};
use field_core::model::{ActorId, CaseId, Status};

use super::{Center, ServiceError};
use crate::storage::{Principal, Role};

/// What a request to the center means, whatever endpoint carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Add a collector, or mint an enrolment code for one.
    EnrolCollector,
    /// Add a reviewer or admin, or mint an enrolment code for one.
    EnrolStaff,
    /// List users, their roles and devices.
    ListUsers,
    /// Disable a user, revoke unused codes, revoke a device.
    ManageAccounts,
    /// Replace one's own device-less token.
    RotateOwnToken,
    /// Read the audit log.
    ReadAudit,
    /// Scrape the server's metrics (a scraper may use its own token instead).
    ReadMetrics,
    /// Import the grid or the category catalog.
    ImportReference,
    /// Change the assessment configuration.
    ChangeConfig,
    /// Assign cells to a collector from a date.
    Assign,
    /// Read the configuration.
    ReadConfig,
    /// Read cases, tasks, shifts, surveys, maps, reports and digests.
    ReadCases,
    /// Decide on a case (register, reject, dispatch, close, ...).
    Decide,
    /// Read one's own assessment report (a collector checking their pay).
    ReadOwnReport,
    /// Create verification and check tasks, special surveys, findings.
    Direct,
    /// Open and revoke the API keys of citizens' channels (Open311).
    ManageChannels,
}

/// One row of the table: the operation and whether each role may do it.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub op: Operation,
    pub what: &'static str,
    pub endpoints: &'static str,
    pub collector: bool,
    pub reviewer: bool,
    pub admin: bool,
}

const fn rule(
    op: Operation,
    what: &'static str,
    endpoints: &'static str,
    [collector, reviewer, admin]: [bool; 3],
) -> Rule {
    Rule {
        op,
        what,
        endpoints,
        collector,
        reviewer,
        admin,
    }
}

const STAFF: [bool; 3] = [false, true, true];
const ADMIN: [bool; 3] = [false, false, true];

/// Who may do what at the center. Collectors act only through changes (see
/// [`Center::authorize`]) and their own photos.
pub const TABLE: &[Rule] = &[
    rule(
        Operation::EnrolCollector,
        "add a collector, mint a collector's enrolment code",
        "POST /v1/center/users (role collector), POST /v1/center/users/{id}/codes",
        STAFF,
    ),
    rule(
        Operation::EnrolStaff,
        "add a reviewer or admin, mint their enrolment code",
        "POST /v1/center/users (role reviewer, admin), POST /v1/center/users/{id}/codes",
        ADMIN,
    ),
    rule(
        Operation::ListUsers,
        "list users, roles, devices",
        "GET /v1/center/users",
        STAFF,
    ),
    rule(
        Operation::ManageAccounts,
        "disable a user, revoke unused codes, revoke a device",
        "POST /v1/center/users/{id}/disable, POST /v1/center/users/{id}/codes/revoke, POST /v1/center/devices/{actor}/revoke",
        ADMIN,
    ),
    rule(
        Operation::RotateOwnToken,
        "replace one's own device-less token",
        "POST /v1/center/token/rotate",
        STAFF,
    ),
    rule(
        Operation::ReadAudit,
        "read the audit log",
        "GET /v1/center/audit",
        ADMIN,
    ),
    rule(
        Operation::ReadMetrics,
        "scrape the server's metrics (or with the `[metrics] token`)",
        "GET /metrics",
        ADMIN,
    ),
    rule(
        Operation::ImportReference,
        "import the grid or the catalog",
        "PUT /v1/center/grid, PUT /v1/center/catalog",
        ADMIN,
    ),
    rule(
        Operation::ChangeConfig,
        "change the assessment configuration",
        "PUT /v1/center/config, POST /v1/center/config/set",
        ADMIN,
    ),
    rule(
        Operation::Assign,
        "assign cells to a collector",
        "POST /v1/center/assignments",
        STAFF,
    ),
    rule(
        Operation::ReadConfig,
        "read the configuration",
        "GET /v1/center/config",
        STAFF,
    ),
    rule(
        Operation::ReadCases,
        "read cases, tasks, shifts, surveys, maps, reports, city figures, violations, certification, training, digests",
        "GET /v1/center/cases[/{id}], tasks, shifts, surveys[/{id}/report], report, city-figures, map, city-map, violations, certification/{collector}, trainings, digest, dashboard, findings, *.xlsx",
        STAFF,
    ),
    rule(
        Operation::ReadOwnReport,
        "read one's own assessment report, read-only",
        "GET /v1/center/report?collector=(oneself)",
        [true, true, true],
    ),
    rule(
        Operation::Decide,
        "decide on a case, record or revoke a red-line violation, record certification attempts and training",
        "POST /v1/center/cases/{id}/decisions, POST /v1/center/violations[/{id}/revoke], certification/attempts, trainings",
        STAFF,
    ),
    rule(
        Operation::Direct,
        "create tasks, surveys and findings",
        "POST /v1/center/tasks, surveys, findings[/bulk]",
        STAFF,
    ),
    rule(
        Operation::ManageChannels,
        "open, list and revoke citizens' channels (Open311 API keys)",
        "POST /v1/center/channels, GET /v1/center/channels, POST /v1/center/channels/{id}/revoke",
        ADMIN,
    ),
];

impl Operation {
    pub fn rule(self) -> &'static Rule {
        TABLE
            .iter()
            .find(|r| r.op == self)
            .expect("every operation has a row in TABLE")
    }

    pub fn allowed(self, role: Role) -> bool {
        let r = self.rule();
        match role {
            Role::Collector => r.collector,
            Role::Reviewer => r.reviewer,
            Role::Admin => r.admin,
        }
    }

    /// The operation of minting a code for (or creating) a user of `role`.
    pub fn enrol(role: Role) -> Operation {
        match role {
            Role::Collector => Operation::EnrolCollector,
            Role::Reviewer | Role::Admin => Operation::EnrolStaff,
        }
    }
}

/// The table as Markdown, as `API.md` carries it.
pub fn table_markdown() -> String {
    let yes = |b: bool| if b { "yes" } else { "403" };
    let mut out = String::from(
        "| operation | endpoints | collector | reviewer | admin |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in TABLE {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.what,
            r.endpoints,
            yes(r.collector),
            yes(r.reviewer),
            yes(r.admin)
        ));
    }
    out
}

impl Center {
    /// The one gate of every center operation.
    pub fn require(&self, p: &Principal, op: Operation) -> Result<(), ServiceError> {
        if op.allowed(p.user.role) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "{} is a {}: to {} needs {}",
                p.user.name,
                p.user.role.as_str(),
                op.rule().what,
                if op.rule().reviewer {
                    "a reviewer or admin"
                } else {
                    "an admin"
                }
            )))
        }
    }
}

/// Why a change was refused, with the HTTP-like code the device sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
}

fn forbidden(reason: impl Into<String>) -> Refusal {
    Refusal {
        code: 403,
        reason: reason.into(),
    }
}

/// A refusal for time: the device keeps the change and re-issues it with a
/// corrected clock.
fn too_early(reason: impl Into<String>) -> Refusal {
    Refusal {
        code: field_core::sync::protocol::CODE_RETRY_CLOCK,
        reason: reason.into(),
    }
}

fn bad(reason: impl Into<String>) -> Refusal {
    Refusal {
        code: 400,
        reason: reason.into(),
    }
}

/// Changes may not carry times further ahead than this.
pub const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;

/// A report's own time may run this far past its change's clock stamp
/// (the stamp is taken as the report is saved).
pub const REPORT_STAMP_SLACK_MS: i64 = 60 * 1000;

impl Center {
    /// `earlier` holds the cases reported by changes admitted earlier in the
    /// same push (case → reporting device): an edit may follow its report
    /// in one batch.
    pub(super) fn authorize(
        &self,
        p: &Principal,
        change: &Change,
        earlier: &HashMap<CaseId, ActorId>,
    ) -> Result<(), Refusal> {
        let Some(device) = p.device else {
            return Err(forbidden(
                "this token has no device: enrol a device to push changes",
            ));
        };
        if change.actor != device {
            return Err(forbidden(format!(
                "a device may only author changes as its own actor ({device})"
            )));
        }
        self.check_times(change)?;
        change.check_bounds().map_err(|e| bad(e.to_string()))?;
        if let Op::CaseReport(r) = &change.op {
            self.check_report(p, change, r)?;
        }
        if p.user.role.is_staff() {
            return Ok(());
        }
        match &change.op {
            // A device's own track, its gaps and its shift marks.
            Op::CaseReport(_) | Op::TrackAppend(_) | Op::TrackGap(_) | Op::ShiftMark(_) => Ok(()),
            Op::TaskAssign(_) => Err(forbidden("only center staff assign tasks")),
            Op::TaskAnswer(a) => {
                let task = self
                    .storage
                    .task(a.task)
                    .map_err(|err| bad(err.to_string()))?
                    .and_then(|t| t.task.spec)
                    .ok_or_else(|| forbidden(format!("task {} is unknown here", a.task)))?;
                if task.to_user != p.user.id {
                    return Err(forbidden(format!(
                        "task {} is addressed to {}, not to {}",
                        a.task, task.to_name, p.user.name
                    )));
                }
                Ok(())
            }
            Op::StatusSet(_) => Err(forbidden("only reviewers change a case's status")),
            Op::CaseEdit(e) => {
                let view = self
                    .storage
                    .case(e.case)
                    .map_err(|err| bad(err.to_string()))?;
                let reporter = match (&view, earlier.get(&e.case)) {
                    (Some(v), _) => v.origin.as_ref().map(|o| o.reporter),
                    (None, Some(actor)) => Some(*actor),
                    (None, None) => {
                        return Err(forbidden(format!(
                            "case {} is unknown here: its report must reach the server first",
                            e.case
                        )));
                    }
                };
                let owner = match reporter {
                    Some(actor) => self
                        .storage
                        .device(actor)
                        .map_err(|err| bad(err.to_string()))?
                        .map(|d| d.user_id),
                    None => None,
                };
                if owner.as_deref() != Some(p.user.id.as_str()) {
                    return Err(forbidden(format!(
                        "case {} was reported by someone else",
                        e.case
                    )));
                }
                if let Some(v) = &view
                    && v.statuses() != [Status::Reported]
                {
                    return Err(forbidden(format!(
                        "case {} is {:?}: a collector edits a case only while reported",
                        e.case,
                        v.statuses()
                    )));
                }
                Ok(())
            }
        }
    }

    /// What the server would answer each of `changes` if pushed now, in
    /// order, without storing anything (a dry run; the bench times the
    /// checks with it).
    pub fn check_push(&self, p: &Principal, changes: &[Change]) -> Vec<Result<(), Refusal>> {
        let mut reported = HashMap::new();
        changes
            .iter()
            .map(|c| {
                let r = self.authorize(p, c, &reported);
                if r.is_ok()
                    && let Op::CaseReport(rep) = &c.op
                {
                    reported.insert(rep.case, c.actor);
                }
                r
            })
            .collect()
    }

    /// A report only creates a case, and the facts the server can know are
    /// the server's: who reported (the authenticated device and its user),
    /// which cell the position is in, what a collector may claim as source,
    /// and that the report is not later than its own clock stamp.
    fn check_report(
        &self,
        p: &Principal,
        change: &Change,
        r: &field_core::crdt::CaseReport,
    ) -> Result<(), Refusal> {
        use field_core::model::CaseSource;
        let internal = |e: super::ServiceError| bad(e.to_string());
        if let Some(view) = self.storage.case(r.case).map_err(|e| internal(e.into()))?
            && let Some(o) = &view.origin
            && o.reporter != change.actor
        {
            return Err(forbidden(format!(
                "case {} already exists (reported by {}): a report only creates a case",
                r.case, o.collector
            )));
        }
        if r.origin.reporter != change.actor {
            return Err(forbidden(
                "origin.reporter: a case is reported by the pushing device",
            ));
        }
        // The collector is the device's user (a handset used before its
        // enrolment renames its unsent reports when it enrols).
        if r.origin.collector != p.user.name {
            let other = self
                .storage
                .users()
                .map_err(|e| internal(e.into()))?
                .iter()
                .any(|u| u.name == r.origin.collector);
            let why = format!(
                "origin.collector: `{}`, but this device belongs to `{}`",
                r.origin.collector, p.user.name
            );
            return Err(if other { forbidden(why) } else { bad(why) });
        }
        let claimable = [
            CaseSource::Collector,
            CaseSource::QuickFix,
            CaseSource::Survey,
            CaseSource::Test,
        ];
        if !p.user.role.is_staff() && !claimable.contains(&r.origin.source) {
            return Err(forbidden(format!(
                "origin.source: a collector reports as collector, quick_fix or survey, not {:?}",
                r.origin.source
            )));
        }
        let stamp = change.hlc.physical_ms() as i64;
        if r.origin.reported_at.millis() > stamp + REPORT_STAMP_SLACK_MS {
            return Err(bad(format!(
                "origin.reported_at: {} is later than the change's own clock stamp",
                r.origin.reported_at
            )));
        }
        if r.photos.is_empty() && r.origin.source != CaseSource::Test {
            return Err(bad("photos: a report needs at least one photo"));
        }
        if let Some(category) = &r.fields.category
            && !self
                .storage
                .has_category(category)
                .map_err(|e| internal(e.into()))?
        {
            return Err(bad(format!(
                "fields.category: {category} is not in the catalog"
            )));
        }
        if let Some(place) = &r.fields.placement
            && self.storage.has_grid().map_err(|e| internal(e.into()))?
        {
            let located = self
                .storage
                .locate_cell(place.pos)
                .map_err(|e| internal(e.into()))?;
            let Some(cell) = located else {
                return Err(bad(format!(
                    "fields.placement.pos: {} is outside the city's grid",
                    place.pos
                )));
            };
            if let Some(claimed) = &place.cell
                && claimed.as_str() != cell
            {
                return Err(bad(format!(
                    "fields.placement.cell: claims {claimed}, but the position is in {cell}"
                )));
            }
            // A report outside the collector's cells is kept and flagged
            // (`outside_cells`): collectors report what they pass.
        }
        Ok(())
    }

    fn check_times(&self, change: &Change) -> Result<(), Refusal> {
        let limit = self.now_ms() + MAX_FUTURE_MS;
        let now = self.now_ms();
        let late = |what: &str, ms: i64| {
            if ms > limit {
                Err(too_early(format!(
                    "{what}: {} h ahead of the server's clock (at most 24 h): re-issue with a corrected clock",
                    (ms - now) / 3_600_000
                )))
            } else {
                Ok(())
            }
        };
        late("hlc", change.hlc.physical_ms() as i64)?;
        match &change.op {
            Op::CaseReport(r) => late("origin.reported_at", r.origin.reported_at.millis()),
            Op::StatusSet(s) => late("at", s.at.millis()),
            Op::ShiftMark(m) => late("at", m.at.millis()),
            Op::TrackGap(g) => late("gap.to", g.to.millis()),
            Op::TrackAppend(batch) => {
                let points = batch.decode().map_err(|e| bad(e.to_string()))?;
                match points.iter().map(|(_, p)| p.at.millis()).max() {
                    Some(t) => late("track.at", t),
                    None => Ok(()),
                }
            }
            Op::TaskAssign(t) => late("due_at", t.created_at.millis()),
            Op::TaskAnswer(a) => late("answered_at", a.answered_at.millis()),
            Op::CaseEdit(_) => Ok(()),
        }
    }
}
