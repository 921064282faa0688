//! Case writes (report, edit, decide) and reads (list, show, history).

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use super::Store;
use super::apply::load_case;
use crate::crdt::{CaseEdit, CaseReport, CaseState, CaseView, Change, Op, StatusSet};
use crate::error::{Error, Result, invalid};
use crate::model::case::check_description;
use crate::model::{
    CaseFields, CaseId, CaseOrigin, CasePhoto, CaseSource, LonLat, PhotoHash, PhotoRole, Placement,
    RejectReason, Status, Timestamp,
};

/// A report as the collector makes it; photo bytes are checked and stored
/// in the same transaction as the case.
#[derive(Clone, Debug)]
pub struct NewCase {
    pub category: String,
    pub pos: LonLat,
    pub description: String,
    pub photos: Vec<Vec<u8>>,
    pub at: Option<Timestamp>,
    /// Quick fix (举手之劳): the after-photos of the fixed problem.
    pub quick_fix_after: Option<Vec<Vec<u8>>>,
    pub survey: Option<String>,
}

/// A center decision on a case.
#[derive(Clone, Debug)]
pub struct Decision {
    pub to: Status,
    pub reason: Option<RejectReason>,
    pub note: Option<String>,
    pub department: Option<String>,
    /// What the decider saw; `None`: what this replica holds now.
    pub seen: Option<SeenStatus>,
}

/// The status values and status context a decider saw (from a case view).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeenStatus {
    pub statuses: Vec<Status>,
    pub context: std::collections::BTreeMap<crate::model::ActorId, u64>,
}

/// An edit by the reporting collector.
#[derive(Clone, Debug, Default)]
pub struct CaseEditRequest {
    pub description: Option<String>,
    pub category: Option<String>,
    pub add_photos: Vec<Vec<u8>>,
    pub remove_photos: Vec<PhotoHash>,
}

/// One line of `field case list`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseSummary {
    pub id: CaseId,
    pub status: Vec<Status>,
    pub conflict: bool,
    pub source: Option<CaseSource>,
    pub category: Option<String>,
    pub category_name: Option<String>,
    pub cell: Option<String>,
    pub description: Option<String>,
    pub reported_at: Option<Timestamp>,
    pub collector: Option<String>,
    pub photos: usize,
    /// Photos cited by the case whose bytes this device does not hold yet.
    pub photos_missing: usize,
}

/// One change in a case's history, with what it wrote and whether each
/// written field is still the current value (overwritten values stay here).
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub hlc: String,
    pub actor: uuid::Uuid,
    pub counter: u64,
    pub kind: String,
    pub op: serde_json::Value,
    /// Fields this change wrote that are still the winning value.
    pub current: Vec<String>,
    /// Fields this change wrote that a later write overwrote.
    pub overwritten: Vec<String>,
    /// What it changed, readably: field, value before (in log order), value after.
    pub edits: Vec<FieldEdit>,
}

/// One field a change wrote: `description: "old" → "new"`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldEdit {
    pub field: String,
    pub old: Option<String>,
    pub new: String,
}

impl CaseSummary {
    /// The summary of a case view; `photos_missing` is what the caller's
    /// photo storage lacks (a device's table, a server's blob files).
    pub fn of(v: &CaseView, catalog: &crate::model::Catalog, photos_missing: usize) -> CaseSummary {
        CaseSummary {
            id: v.id,
            status: v.statuses(),
            conflict: v.in_conflict(),
            source: v.origin.as_ref().map(|o| o.source),
            category_name: v
                .category
                .as_ref()
                .and_then(|c| catalog.get(c))
                .map(|e| format!("{} ({})", e.name_zh, e.name_en)),
            category: v.category.as_ref().map(|c| c.to_string()),
            cell: v
                .placement
                .as_ref()
                .and_then(|p| p.cell.as_ref())
                .map(|c| c.to_string()),
            description: v.description.clone(),
            reported_at: v.origin.as_ref().map(|o| o.reported_at),
            collector: v.origin.as_ref().map(|o| o.collector.clone()),
            photos: v.photos.len(),
            photos_missing,
        }
    }
}

impl Store {
    /// Reports a case: validates everything first, then writes the photos,
    /// the case and its change in one transaction. Returns the new id.
    pub fn report_case(&mut self, new: NewCase) -> Result<CaseId> {
        let entry = self.catalog.resolve("category", &new.category)?.clone();
        let description = check_description("desc", &new.description)?;
        if new.photos.is_empty() {
            return Err(invalid("photo", "a case needs at least one photo"));
        }
        let quick_fix = new.quick_fix_after.is_some();
        if matches!(&new.quick_fix_after, Some(after) if after.is_empty()) {
            return Err(invalid(
                "after-photo",
                "a quick fix needs a photo after the fix",
            ));
        }
        let before = self.check_photos("photo", &new.photos)?;
        let after =
            self.check_photos("after-photo", new.quick_fix_after.as_deref().unwrap_or(&[]))?;
        let cell = self.locate_cell(new.pos)?;
        let reported_at = match new.at {
            Some(t) => t,
            None => Timestamp::from_millis("at", self.now_ms() as i64)?,
        };
        if let Some(survey) = &new.survey {
            self.check_survey(survey, cell.as_ref(), &entry.code, reported_at)?;
        }
        let id = CaseId::new_random();
        let collector = self.collector.clone();
        let source = match (quick_fix, &new.survey) {
            (true, _) => CaseSource::QuickFix,
            (false, Some(_)) => CaseSource::Survey,
            (false, None) => CaseSource::Collector,
        };
        let survey = new.survey.clone();
        self.write_local(|w| {
            let mut photos = Vec::new();
            for (info, bytes) in &before {
                super::photos::put(w.tx(), info, bytes, w.now_ms)?;
                photos.push(CasePhoto {
                    hash: info.hash.clone(),
                    role: PhotoRole::Before,
                });
            }
            for (info, bytes) in &after {
                super::photos::put(w.tx(), info, bytes, w.now_ms)?;
                photos.push(CasePhoto {
                    hash: info.hash.clone(),
                    role: PhotoRole::After,
                });
            }
            let op = Op::CaseReport(CaseReport {
                case: id,
                origin: CaseOrigin {
                    reporter: w.actor,
                    collector,
                    source,
                    reported_at,
                    survey,
                },
                fields: CaseFields {
                    description: Some(description),
                    category: Some(entry.code.clone()),
                    placement: Some(Placement { pos: new.pos, cell }),
                },
                photos,
                photo_dot: 1,
            });
            w.emit(op)
        })?;
        Ok(id)
    }

    /// A case reported under a survey must fall in its cells, categories
    /// and days (local days of the city's time zone).
    fn check_survey(
        &self,
        id: &str,
        cell: Option<&crate::model::CellCode>,
        category: &crate::model::CategoryCode,
        at: Timestamp,
    ) -> Result<()> {
        let payload = self
            .surveys()?
            .ok_or_else(|| invalid("survey", "this device knows no surveys: sync first"))?;
        let survey =
            payload.surveys.iter().find(|s| s.id == id).ok_or_else(|| {
                invalid("survey", format!("`{id}` is not a survey of your cells"))
            })?;
        let tz: chrono_tz::Tz = payload
            .timezone
            .parse()
            .map_err(|_| invalid("survey", format!("unknown time zone {}", payload.timezone)))?;
        let day = chrono::DateTime::from_timestamp_millis(at.millis())
            .map(|t| t.with_timezone(&tz).date_naive())
            .ok_or_else(|| invalid("at", "out of range"))?;
        survey
            .covers(cell.map(|c| c.as_str()), category, day)
            .map_err(|why| invalid("survey", why))
    }

    /// Edits a case the collector reported while it is still `reported`.
    pub fn edit_case(&mut self, id: CaseId, req: CaseEditRequest) -> Result<Change> {
        let state = self.case_state(id)?;
        let view = state.view(id);
        match &view.origin {
            // The person, not the handset: a collector may switch to a spare device.
            Some(o) if o.collector == self.collector => {}
            Some(o) => {
                return Err(invalid(
                    "case",
                    format!(
                        "was reported by {}: only the reporting collector may edit it",
                        o.collector
                    ),
                ));
            }
            None => {
                return Err(invalid(
                    "case",
                    "the report itself has not arrived on this device yet",
                ));
            }
        }
        if view.statuses() != [Status::Reported] {
            return Err(invalid(
                "case",
                format!(
                    "is {:?}: a case can be edited only while reported",
                    view.statuses()
                ),
            ));
        }
        let description = req
            .description
            .as_deref()
            .map(|d| check_description("desc", d))
            .transpose()?;
        let category = match &req.category {
            Some(c) => Some(self.catalog.resolve("category", c)?.code.clone()),
            None => None,
        };
        let added = self.check_photos("add-photo", &req.add_photos)?;
        let mut remove = Vec::new();
        for hash in &req.remove_photos {
            let matching: Vec<CasePhoto> = view
                .photos
                .iter()
                .filter(|p| &p.hash == hash)
                .cloned()
                .collect();
            if matching.is_empty() {
                return Err(invalid(
                    "remove-photo",
                    format!("{hash} is not a photo of case {id}"),
                ));
            }
            remove.extend(matching);
        }
        let fields = CaseFields {
            description,
            category,
            placement: None,
        };
        if fields.is_empty() && added.is_empty() && remove.is_empty() {
            return Err(invalid(
                "edit",
                "nothing to change: give --desc, --category, --add-photo or --remove-photo",
            ));
        }
        self.write_local(|w| {
            let mut add_photos = Vec::new();
            for (info, bytes) in &added {
                super::photos::put(w.tx(), info, bytes, w.now_ms)?;
                add_photos.push(CasePhoto {
                    hash: info.hash.clone(),
                    role: PhotoRole::Before,
                });
            }
            let photo_dot = (!add_photos.is_empty()).then(|| state.next_photo_dot(w.actor));
            let seen = if remove.is_empty() {
                Default::default()
            } else {
                state.photo_context()
            };
            w.emit(Op::CaseEdit(CaseEdit {
                case: id,
                fields,
                add_photos,
                photo_dot,
                remove_photos: remove,
                seen,
            }))
        })
    }

    /// Records a center decision by this device's own actor.
    pub fn set_status(
        &mut self,
        id: CaseId,
        to: Status,
        reason: Option<RejectReason>,
        note: Option<String>,
    ) -> Result<Change> {
        let decision = Decision {
            to,
            reason,
            note,
            department: None,
            seen: None,
        };
        self.decide_as(self.actor, id, decision)
    }

    /// Records a center decision authored by `actor`. Checks the lifecycle
    /// against what the decider saw (`seen`, from the case view they
    /// acted on) or, without it, against what this replica holds. A decision
    /// made on a stale view stays concurrent with the ones it did not see,
    /// so the case shows a conflict instead of losing either.
    /// Records, as `actor`'s report, a case the center takes in from
    /// outside (a citizen's request): no photos of its own, merged like any
    /// other change.
    pub fn record_case_as(
        &mut self,
        actor: crate::model::ActorId,
        report: crate::crdt::CaseReport,
    ) -> Result<Change> {
        self.write_local_as(actor, |w| w.emit(Op::CaseReport(report)))
    }

    pub fn decide_as(
        &mut self,
        actor: crate::model::ActorId,
        id: CaseId,
        d: Decision,
    ) -> Result<Change> {
        let state = self.case_state(id)?;
        let at = Timestamp::from_millis("at", self.now_ms() as i64)?;
        let op = decision_op(id, &state, actor, d, at)?;
        self.write_local_as(actor, |w| w.emit(op))
    }

    fn case_state(&self, id: CaseId) -> Result<CaseState> {
        load_case(&self.conn, id)?.ok_or_else(|| Error::NotFound {
            what: "case",
            id: id.to_string(),
        })
    }

    /// The merged view of one case.
    pub fn case(&self, id: CaseId) -> Result<CaseView> {
        Ok(self.case_state(id)?.view(id))
    }

    /// Every case, sorted by report time then id (test cases are not cases here).
    pub fn cases(&self) -> Result<Vec<CaseView>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, state FROM cases ORDER BY reported_at, id")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, bytes) = row?;
            let id = CaseId::parse("case", &id).map_err(|e| Error::Corrupt(e.to_string()))?;
            out.push(CaseState::from_cbor(&bytes)?.view(id));
        }
        Ok(out)
    }

    /// The one-line summary of a case, with catalog name and missing photos.
    pub fn summarize(&self, v: &CaseView) -> Result<CaseSummary> {
        let mut missing = 0;
        for p in &v.photos {
            if !self.has_photo(&p.hash)? {
                missing += 1;
            }
        }
        Ok(CaseSummary::of(v, &self.catalog, missing))
    }

    /// Every change that touched a case, oldest first by HLC, each marked
    /// with which of its writes still stand.
    pub fn case_history(&self, id: CaseId) -> Result<Vec<HistoryEntry>> {
        let state = self.case_state(id)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT body FROM changes WHERE case_id = +?1 ORDER BY hlc, actor, counter",
        )?;
        let bodies = stmt
            .query_map([id.to_string()], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        history_of(&state, &bodies)
    }

    /// Whether a case id exists here.
    pub fn has_case(&self, id: CaseId) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM cases WHERE id = ?1",
                [id.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn check_photos(
        &self,
        field: &str,
        photos: &[Vec<u8>],
    ) -> Result<Vec<(crate::model::PhotoInfo, Vec<u8>)>> {
        photos
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let name = if photos.len() > 1 {
                    format!("{field}[{i}]")
                } else {
                    field.to_string()
                };
                crate::model::photo::inspect_photo(&name, bytes).map(|info| (info, bytes.clone()))
            })
            .collect()
    }
}

/// Every change of a case (bodies oldest first by HLC), each marked with
/// which of its writes still stand in the merged `state`.
pub fn history_of(state: &CaseState, bodies: &[String]) -> Result<Vec<HistoryEntry>> {
    let mut out = Vec::new();
    // The values as the log has them so far, for "old → new".
    let mut seen: std::collections::BTreeMap<&'static str, String> = Default::default();
    for body in bodies {
        let change = Change::from_json(body)?;
        let edits = field_edits(&change.op, &mut seen);
        let marker = (change.hlc, change.actor);
        let written = written_fields(&change.op);
        let wins = |f: &str| match f {
            "description" => state.description.marker == marker,
            "category" => state.category.marker == marker,
            "placement" => state.placement.marker == marker,
            _ => true,
        };
        let (current, overwritten) = written.into_iter().partition(|f| wins(f));
        out.push(HistoryEntry {
            at: Timestamp::from_millis("hlc", change.hlc.physical_ms() as i64)?,
            hlc: change.hlc.to_string(),
            actor: change.actor,
            counter: change.counter,
            kind: change.op.kind().to_string(),
            op: serde_json::to_value(&change.op)?,
            current,
            overwritten,
            edits,
        });
    }
    Ok(out)
}

/// The fields `op` writes, each with the value the log held before.
fn field_edits(
    op: &Op,
    seen: &mut std::collections::BTreeMap<&'static str, String>,
) -> Vec<FieldEdit> {
    let mut writes: Vec<(&'static str, String)> = Vec::new();
    let fields = match op {
        Op::CaseReport(r) => Some(&r.fields),
        Op::CaseEdit(e) => Some(&e.fields),
        _ => None,
    };
    if let Some(f) = fields {
        if let Some(d) = &f.description {
            writes.push(("description", d.clone()));
        }
        if let Some(c) = &f.category {
            writes.push(("category", c.to_string()));
        }
        if let Some(p) = &f.placement {
            writes.push(("position", p.pos.to_string()));
        }
    }
    match op {
        Op::CaseReport(r) if !r.photos.is_empty() => {
            writes.push(("photos", format!("+{}", r.photos.len())));
        }
        Op::CaseEdit(e) => {
            if !e.add_photos.is_empty() {
                writes.push(("photos", format!("+{}", e.add_photos.len())));
            }
            if !e.remove_photos.is_empty() {
                writes.push(("photos", format!("-{}", e.remove_photos.len())));
            }
        }
        Op::StatusSet(st) => writes.push(("status", st.to.as_str().to_string())),
        _ => {}
    }
    writes
        .into_iter()
        .map(|(field, new)| {
            let old = if field == "photos" {
                None
            } else {
                seen.insert(field, new.clone())
            };
            FieldEdit {
                field: field.to_string(),
                old,
                new,
            }
        })
        .collect()
}

/// The change a center decision makes to a case as `actor`: the lifecycle
/// checked against what the decider saw (`seen`, from the case view they
/// acted on) or, without it, against the merged `state`. Pure: every
/// backend writing decisions builds them here.
pub fn decision_op(
    id: CaseId,
    state: &CaseState,
    actor: crate::model::ActorId,
    d: Decision,
    at: Timestamp,
) -> Result<Op> {
    let view = state.view(id);
    if view
        .origin
        .as_ref()
        .is_some_and(|o| o.source == CaseSource::Test)
    {
        return Err(invalid("case", "a test case is never reviewed"));
    }
    let quick_fix = view.origin.as_ref().is_some_and(|o| o.is_quick_fix());
    let (from, base) = match d.seen {
        Some(seen) => (seen.statuses, seen.context),
        None => (view.statuses(), view.status_context.clone()),
    };
    let to = d.to;
    let resolving = from.len() > 1 && from.contains(&to);
    if !resolving && !from.iter().any(|f| f.may_become(to, quick_fix)) {
        let hint = if quick_fix && to == Status::Registered {
            " (a quick fix is approved by closing it)"
        } else {
            ""
        };
        return Err(invalid(
            "status",
            format!("cannot go from {:?} to {}{hint}", from, to.as_str()),
        ));
    }
    if to == Status::Rejected && d.reason.is_none() {
        return Err(invalid("reason", "a rejection needs a reason"));
    }
    let mut context = base;
    let own = context
        .get(&actor)
        .copied()
        .unwrap_or(0)
        .max(view.status_context.get(&actor).copied().unwrap_or(0));
    context.insert(actor, own + 1);
    Ok(Op::StatusSet(StatusSet {
        case: id,
        from,
        to,
        reason: d.reason,
        note: d.note,
        department: d.department,
        at,
        context,
    }))
}

fn written_fields(op: &Op) -> Vec<String> {
    let fields = match op {
        Op::CaseReport(r) => Some(&r.fields),
        Op::CaseEdit(e) => Some(&e.fields),
        _ => None,
    };
    let mut out = Vec::new();
    if let Some(f) = fields {
        if f.description.is_some() {
            out.push("description".to_string());
        }
        if f.category.is_some() {
            out.push("category".to_string());
        }
        if f.placement.is_some() {
            out.push("placement".to_string());
        }
    }
    out
}

/// Fills the case projections a store written by an older build lacks
/// (collector, position, cited photos), once, in one transaction. The
/// merged states are read, never changed.
pub(super) fn reproject_cases(conn: &mut rusqlite::Connection) -> Result<()> {
    use super::schema::CASE_PROJECTION_VERSION;
    if super::get_meta(conn, "case_projection")?.as_deref() == Some(CASE_PROJECTION_VERSION) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let rows: Vec<(String, Vec<u8>)> = tx
        .prepare("SELECT id, state FROM cases")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, bytes) in rows {
        let case = CaseId::parse("case", &id).map_err(|e| Error::Corrupt(e.to_string()))?;
        let view = CaseState::from_cbor(&bytes)?.view(case);
        let pos = view.placement.as_ref().map(|p| p.pos);
        tx.execute(
            "UPDATE cases SET collector = ?2, lon = ?3, lat = ?4 WHERE id = ?1",
            rusqlite::params![
                id,
                view.origin.as_ref().map(|o| o.collector.as_str()),
                pos.map(|p| p.lon()),
                pos.map(|p| p.lat()),
            ],
        )?;
        for p in &view.photos {
            tx.execute(
                "INSERT OR IGNORE INTO case_photos (hash, case_id) VALUES (?1, ?2)",
                rusqlite::params![p.hash.as_str(), id],
            )?;
        }
    }
    super::set_meta(&tx, "case_projection", CASE_PROJECTION_VERSION)?;
    tx.commit()?;
    Ok(())
}
