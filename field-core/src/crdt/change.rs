//! The change: the unit of replication. Every local write becomes one, with
//! a globally unique id (actor, counter) and an HLC stamp. The same JSON form
//! travels in bundles (device to device) and in the sync protocol.
//!
//! crdts' own op types are never put on the wire: we send our own plain
//! structs (dots as counters, contexts as sorted maps) and rebuild the crdts
//! ops on apply, so an upstream serde change cannot silently change the wire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Hlc;
use super::track_codec;
use crate::error::{Error, Result, invalid};
use crate::model::{
    ActorId, CaseFields, CaseId, CaseOrigin, CasePhoto, LonLat, PhotoHash, RejectReason, ShiftMark,
    Status, TaskAnswer, TaskSpec, Timestamp, TrackGap, TrackPoint,
};

/// The change schema this build writes and the newest it can read.
/// 2: tasks (`task_assign`, `task_answer`) and the department of a decision.
/// 3: track gaps (`track_gap`) and packed track batches.
pub const CHANGE_SCHEMA: u32 = 3;

/// Most points carried by one track change; bounds a change's size (~22 B/point).
pub const MAX_POINTS_PER_CHANGE: usize = 2000;

/// A change's identity: the authoring device and its own sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChangeId {
    pub actor: ActorId,
    pub counter: u64,
}

impl std::fmt::Display for ChangeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.actor, self.counter)
    }
}

/// One replicated change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub schema: u32,
    pub actor: ActorId,
    /// 1, 2, 3 ... per actor, without gaps: the causal order of its changes.
    pub counter: u64,
    pub hlc: Hlc,
    pub op: Op,
}

impl Change {
    pub fn id(&self) -> ChangeId {
        ChangeId {
            actor: self.actor,
            counter: self.counter,
        }
    }

    /// The case this change touches, if any.
    pub fn case_id(&self) -> Option<CaseId> {
        match &self.op {
            Op::CaseReport(r) => Some(r.case),
            Op::CaseEdit(e) => Some(e.case),
            Op::StatusSet(s) => Some(s.case),
            Op::TaskAssign(t) => t.case,
            Op::TrackAppend(_) | Op::TrackGap(_) | Op::ShiftMark(_) | Op::TaskAnswer(_) => None,
        }
    }

    /// The task this change assigns or answers, if any.
    pub fn task_id(&self) -> Option<uuid::Uuid> {
        match &self.op {
            Op::TaskAssign(t) => Some(t.id),
            Op::TaskAnswer(a) => Some(a.task),
            _ => None,
        }
    }

    /// Refuses a change this build cannot read, before looking at its op.
    pub fn check_schema(schema: u32) -> Result<()> {
        if schema > CHANGE_SCHEMA {
            return Err(Error::SchemaTooNew {
                found: schema,
                supported: CHANGE_SCHEMA,
            });
        }
        Ok(())
    }

    /// Parses one change from JSON, refusing newer schemas with a clear error
    /// rather than mis-reading an op this build does not know.
    pub fn from_json(text: &str) -> Result<Change> {
        #[derive(Deserialize)]
        struct Probe {
            schema: u32,
        }
        let probe: Probe = serde_json::from_str(text)
            .map_err(|e| invalid("change.schema", format!("missing or unreadable: {e}")))?;
        Change::check_schema(probe.schema)?;
        serde_json::from_str(text).map_err(|e| invalid("change", e.to_string()))
    }

    /// Refuses a change carrying more than any replica should hold: every
    /// text and list has a byte or entry bound (`model::limits`).
    pub fn check_bounds(&self) -> Result<()> {
        use crate::model::limits::*;
        let fields = |f: &CaseFields| {
            bounded_opt(
                "fields.description",
                f.description.as_deref(),
                MAX_DESCRIPTION_BYTES,
            )
        };
        match &self.op {
            Op::CaseReport(r) => {
                bounded("origin.collector", &r.origin.collector, MAX_NAME_BYTES)?;
                bounded_opt("origin.survey", r.origin.survey.as_deref(), MAX_NAME_BYTES)?;
                fields(&r.fields)?;
                bounded_len("photos", r.photos.len(), MAX_PHOTOS_PER_CHANGE)
            }
            Op::CaseEdit(e) => {
                fields(&e.fields)?;
                bounded_len("add_photos", e.add_photos.len(), MAX_PHOTOS_PER_CHANGE)?;
                bounded_len(
                    "remove_photos",
                    e.remove_photos.len(),
                    MAX_PHOTOS_PER_CHANGE,
                )?;
                bounded_len("seen", e.seen.len(), MAX_CONTEXT_ENTRIES)
            }
            Op::StatusSet(s) => {
                bounded_opt("note", s.note.as_deref(), MAX_NOTE_BYTES)?;
                bounded_opt("department", s.department.as_deref(), MAX_NAME_BYTES)?;
                if let Some(RejectReason::Other(text)) = &s.reason {
                    bounded("reason.text", text, MAX_NAME_BYTES)?;
                }
                bounded_len("from", s.from.len(), 16)?;
                bounded_len("context", s.context.len(), MAX_CONTEXT_ENTRIES)
            }
            Op::TrackAppend(b) => bounded_len("track.t", b.len(), MAX_POINTS_PER_CHANGE),
            Op::TrackGap(g) => g.check(),
            Op::ShiftMark(_) => Ok(()),
            Op::TaskAssign(t) => {
                bounded("to_user", &t.to_user, MAX_NAME_BYTES)?;
                bounded("to_name", &t.to_name, MAX_NAME_BYTES)?;
                bounded_opt("note", t.note.as_deref(), MAX_NOTE_BYTES)
            }
            Op::TaskAnswer(a) => {
                bounded_opt("note", a.note.as_deref(), MAX_NOTE_BYTES)?;
                bounded_len("photos", a.photos.len(), MAX_PHOTOS_PER_CHANGE)
            }
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("changes are plain data")
    }

    /// Whether `held` (a body stored under this change's id) is this
    /// change. Compared as values, not text: the same change may have been
    /// written in another wire form (a track batch packed or not).
    pub fn is_held_as(&self, held: &str) -> bool {
        held == self.to_json() || Change::from_json(held).is_ok_and(|h| h == *self)
    }
}

/// What a change does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    CaseReport(CaseReport),
    CaseEdit(CaseEdit),
    StatusSet(StatusSet),
    TrackAppend(TrackBatch),
    /// A stretch of the author's track without usable fixes, and why.
    TrackGap(TrackGap),
    ShiftMark(ShiftMark),
    TaskAssign(TaskSpec),
    TaskAnswer(TaskAnswer),
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CaseReport(_) => "case_report",
            Op::CaseEdit(_) => "case_edit",
            Op::StatusSet(_) => "status_set",
            Op::TrackAppend(_) => "track_append",
            Op::TrackGap(_) => "track_gap",
            Op::ShiftMark(_) => "shift_mark",
            Op::TaskAssign(_) => "task_assign",
            Op::TaskAnswer(_) => "task_answer",
        }
    }
}

/// A new case: its immutable origin, every field, and its first photos.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseReport {
    pub case: CaseId,
    pub origin: CaseOrigin,
    pub fields: CaseFields,
    pub photos: Vec<CasePhoto>,
    /// The author's dot in the case's photo set for this add.
    pub photo_dot: u64,
}

/// An edit: some fields, photos added and photos removed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseEdit {
    pub case: CaseId,
    #[serde(default)]
    pub fields: CaseFields,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_photos: Vec<CasePhoto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_dot: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_photos: Vec<CasePhoto>,
    /// The photo-set context the remover had seen (actor → counter): only
    /// adds it had seen are removed, so a concurrent add wins.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seen: BTreeMap<ActorId, u64>,
}

/// A center decision on a case's status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSet {
    pub case: CaseId,
    /// The status value(s) the decider saw: several when resolving a conflict.
    pub from: Vec<Status>,
    pub to: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The department a case is dispatched to (or that answered it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    pub at: Timestamp,
    /// The status register's context after this write (includes its own dot).
    pub context: BTreeMap<ActorId, u64>,
}

impl StatusSet {
    /// A pure check of the op itself, the same on every replica whatever it
    /// holds: `to` must follow from one of the seen values, or pick one of
    /// them when resolving a conflict. Quick-fix-only paths are checked by
    /// whoever authors the decision, with the case in hand.
    pub fn check_lifecycle(&self) -> Result<()> {
        if self.from.is_empty() {
            return Err(invalid(
                "from",
                "a status change must say what it changed from",
            ));
        }
        let resolves = self.from.len() > 1 && self.from.contains(&self.to);
        let follows = self
            .from
            .iter()
            .any(|f| f.may_become(self.to, false) || f.may_become(self.to, true));
        if !(resolves || follows) {
            return Err(invalid(
                "to",
                format!(
                    "the lifecycle does not allow {:?} -> {}",
                    self.from,
                    self.to.as_str()
                ),
            ));
        }
        if self.to == Status::Rejected && self.reason.is_none() {
            return Err(invalid("reason", "a rejection needs a reason"));
        }
        Ok(())
    }
}

/// Track points, columnar and delta-encoded: times in ms, positions in 1e-7
/// degrees (~1 cm), accuracy in decimetres, speed in cm/s. Keyed on receipt
/// by (author, `first_seq + i`).
///
/// On the wire and in bundles a batch is written in one of two forms,
/// read in either: `packed` (the compact binary of `track_codec`, base64;
/// about 3–4 bytes a point at 5 s intervals) or the columnar JSON arrays of
/// protocol 1 (~21 bytes a point), still written for devices that have not
/// been upgraded ([`TrackWire::Columnar`]). The form is not part of the
/// batch's value: two batches with the same points are equal whichever
/// form they came in.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(try_from = "WireBatch")]
pub struct TrackBatch {
    pub first_seq: u64,
    pub t0_ms: i64,
    pub dt_ms: Vec<i64>,
    pub dlon_e7: Vec<i64>,
    pub dlat_e7: Vec<i64>,
    /// Accuracy in dm, -1 when unknown.
    pub acc_dm: Vec<i64>,
    /// Speed in cm/s, -1 when unknown.
    pub speed_cms: Vec<i64>,
    /// The form this batch is written in.
    pub wire: TrackWire,
}

/// The form a track batch is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrackWire {
    /// The compact binary (protocol 2 and later, bundles).
    #[default]
    Packed,
    /// The columnar JSON arrays (protocol 1).
    Columnar,
}

impl PartialEq for TrackBatch {
    fn eq(&self, other: &Self) -> bool {
        // Everything but the wire form.
        self.first_seq == other.first_seq
            && self.t0_ms == other.t0_ms
            && self.dt_ms == other.dt_ms
            && self.dlon_e7 == other.dlon_e7
            && self.dlat_e7 == other.dlat_e7
            && self.acc_dm == other.acc_dm
            && self.speed_cms == other.speed_cms
    }
}

/// A track batch as JSON carries it: `packed`, or the five columns.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WireBatch {
    first_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    packed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t0_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dt_ms: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dlon_e7: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dlat_e7: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acc_dm: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    speed_cms: Option<Vec<i64>>,
}

impl TryFrom<WireBatch> for TrackBatch {
    type Error = Error;

    fn try_from(w: WireBatch) -> Result<TrackBatch> {
        let batch = match (
            w.packed,
            w.t0_ms,
            w.dt_ms,
            w.dlon_e7,
            w.dlat_e7,
            w.acc_dm,
            w.speed_cms,
        ) {
            (Some(packed), None, None, None, None, None, None) => {
                let (t0_ms, [dt_ms, dlon_e7, dlat_e7, acc_dm, speed_cms]) =
                    track_codec::unpack(&track_codec::from_base64(&packed)?)?;
                TrackBatch {
                    first_seq: w.first_seq,
                    t0_ms,
                    dt_ms,
                    dlon_e7,
                    dlat_e7,
                    acc_dm,
                    speed_cms,
                    wire: TrackWire::Packed,
                }
            }
            (
                None,
                Some(t0_ms),
                Some(dt_ms),
                Some(dlon_e7),
                Some(dlat_e7),
                Some(acc_dm),
                Some(speed_cms),
            ) => TrackBatch {
                first_seq: w.first_seq,
                t0_ms,
                dt_ms,
                dlon_e7,
                dlat_e7,
                acc_dm,
                speed_cms,
                wire: TrackWire::Columnar,
            },
            _ => {
                return Err(invalid(
                    "track",
                    "a track batch is either `packed` or all of t0_ms, dt_ms, dlon_e7, dlat_e7, acc_dm, speed_cms",
                ));
            }
        };
        let n = batch.dt_ms.len();
        if [
            &batch.dlon_e7,
            &batch.dlat_e7,
            &batch.acc_dm,
            &batch.speed_cms,
        ]
        .iter()
        .any(|c| c.len() != n)
        {
            return Err(invalid(
                "track",
                "columns of a track batch differ in length",
            ));
        }
        Ok(batch)
    }
}

impl Serialize for TrackBatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let w = match self.wire {
            TrackWire::Packed => WireBatch {
                first_seq: self.first_seq,
                packed: Some(track_codec::to_base64(&track_codec::pack(&self.columns()))),
                t0_ms: None,
                dt_ms: None,
                dlon_e7: None,
                dlat_e7: None,
                acc_dm: None,
                speed_cms: None,
            },
            TrackWire::Columnar => WireBatch {
                first_seq: self.first_seq,
                packed: None,
                t0_ms: Some(self.t0_ms),
                dt_ms: Some(self.dt_ms.clone()),
                dlon_e7: Some(self.dlon_e7.clone()),
                dlat_e7: Some(self.dlat_e7.clone()),
                acc_dm: Some(self.acc_dm.clone()),
                speed_cms: Some(self.speed_cms.clone()),
            },
        };
        w.serialize(s)
    }
}

fn quantize(v: f64, scale: f64) -> i64 {
    (v * scale).round() as i64
}

fn optional(v: Option<f64>, scale: f64) -> i64 {
    v.map(|x| quantize(x, scale)).unwrap_or(-1)
}

impl TrackBatch {
    fn columns(&self) -> track_codec::Columns<'_> {
        track_codec::Columns {
            t0_ms: self.t0_ms,
            dt_ms: &self.dt_ms,
            dlon_e7: &self.dlon_e7,
            dlat_e7: &self.dlat_e7,
            acc_dm: &self.acc_dm,
            speed_cms: &self.speed_cms,
        }
    }

    #[cfg(test)]
    pub(crate) fn columns_for_test(&self) -> track_codec::Columns<'_> {
        self.columns()
    }

    /// The same batch, written in `wire` form.
    pub fn written_as(mut self, wire: TrackWire) -> TrackBatch {
        self.wire = wire;
        self
    }

    /// Encodes points (in the order given) starting at sequence `first_seq`.
    pub fn encode(first_seq: u64, points: &[TrackPoint]) -> TrackBatch {
        let mut b = TrackBatch {
            first_seq,
            t0_ms: points.first().map(|p| p.at.millis()).unwrap_or(0),
            ..TrackBatch::default()
        };
        let (mut t, mut lon, mut lat) = (b.t0_ms, 0i64, 0i64);
        for p in points {
            let (x, y) = (quantize(p.pos.lon(), 1e7), quantize(p.pos.lat(), 1e7));
            b.dt_ms.push(p.at.millis() - t);
            b.dlon_e7.push(x - lon);
            b.dlat_e7.push(y - lat);
            b.acc_dm.push(optional(p.accuracy_m, 10.0));
            b.speed_cms.push(optional(p.speed_mps, 100.0));
            (t, lon, lat) = (p.at.millis(), x, y);
        }
        b
    }

    pub fn len(&self) -> usize {
        self.dt_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dt_ms.is_empty()
    }

    /// Decodes and validates every point; errors name the point's index.
    pub fn decode(&self) -> Result<Vec<(u64, TrackPoint)>> {
        let n = self.dt_ms.len();
        if [&self.dlon_e7, &self.dlat_e7, &self.acc_dm, &self.speed_cms]
            .iter()
            .any(|c| c.len() != n)
        {
            return Err(invalid(
                "track",
                "columns of a track batch differ in length",
            ));
        }
        if n > MAX_POINTS_PER_CHANGE {
            return Err(invalid(
                "track",
                format!("{n} points in one change (max {MAX_POINTS_PER_CHANGE})"),
            ));
        }
        let (mut t, mut lon, mut lat) = (self.t0_ms, 0i64, 0i64);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let field = |name: &str| format!("track[{i}].{name}");
            t = t
                .checked_add(self.dt_ms[i])
                .ok_or_else(|| invalid(field("at"), "overflow"))?;
            lon = lon
                .checked_add(self.dlon_e7[i])
                .ok_or_else(|| invalid(field("lon"), "overflow"))?;
            lat = lat
                .checked_add(self.dlat_e7[i])
                .ok_or_else(|| invalid(field("lat"), "overflow"))?;
            let at = Timestamp::from_millis(&field("at"), t)?;
            let pos = LonLat::new(lon as f64 / 1e7, lat as f64 / 1e7)
                .map_err(|e| invalid(field("pos"), e.to_string()))?;
            let unscale = |v: i64, s: f64| (v >= 0).then(|| v as f64 / s);
            let point = TrackPoint::new(
                at,
                pos,
                unscale(self.acc_dm[i], 10.0),
                unscale(self.speed_cms[i], 100.0),
            )?;
            out.push((self.first_seq + i as u64, point));
        }
        Ok(out)
    }
}

/// Reads a photo hash list from a change for the bundle's photo section.
pub fn photos_of(op: &Op) -> Vec<&PhotoHash> {
    match op {
        Op::CaseReport(r) => r.photos.iter().map(|p| &p.hash).collect(),
        Op::CaseEdit(e) => e.add_photos.iter().map(|p| &p.hash).collect(),
        Op::TaskAnswer(a) => a.photos.iter().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ms: i64, lon: f64, lat: f64, acc: Option<f64>) -> TrackPoint {
        TrackPoint::new(
            Timestamp::from_millis("at", ms).unwrap(),
            LonLat::new(lon, lat).unwrap(),
            acc,
            None,
        )
        .unwrap()
    }

    #[test]
    fn track_batch_round_trips_at_centimetre_precision() {
        let pts = vec![
            point(1_764_000_000_000, 120.2612345, 30.1801234, Some(4.0)),
            point(1_764_000_005_000, 120.2612845, 30.1801734, None),
        ];
        let b = TrackBatch::encode(41, &pts);
        let back = b.decode().unwrap();
        assert_eq!(back[0].0, 41);
        assert_eq!(back[1].0, 42);
        assert!((back[1].1.pos.lon() - 120.2612845).abs() < 1e-9);
        assert_eq!(back[1].1.accuracy_m, None);
        assert_eq!(back[0].1.accuracy_m, Some(4.0));
        // Encoding what was decoded gives the same batch: replicas agree.
        let again: Vec<_> = back.iter().map(|(_, p)| *p).collect();
        assert_eq!(TrackBatch::encode(41, &again), b);
    }

    #[test]
    fn newer_schema_is_refused_before_parsing_op() {
        let text = r#"{"schema":99,"actor":"00000000-0000-0000-0000-000000000001","counter":1,"hlc":5,"op":{"type":"teleport"}}"#;
        match Change::from_json(text) {
            Err(Error::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = r#"{"schema":1,"actor":"00000000-0000-0000-0000-000000000001","counter":1,"hlc":5,"extra":1,"op":{"type":"shift_mark","id":"00000000-0000-0000-0000-000000000002","kind":"start","at":"2026-11-26T00:00:00Z","colour":"red"}}"#;
        assert!(Change::from_json(text).is_err());
    }

    #[test]
    fn golden_wire_form_of_a_status_change() {
        // If this string changes, the wire changed: bump CHANGE_SCHEMA.
        let golden = r#"{"schema":2,"actor":"00000000-0000-0000-0000-00000000000a","counter":3,"hlc":115964116992001,"op":{"type":"status_set","case":"00000000-0000-0000-0000-0000000000c1","from":["reported"],"to":"rejected","reason":{"reason":"duplicate"},"at":"2026-11-26T01:00:00.000Z","context":{"00000000-0000-0000-0000-00000000000a":1}}}"#;
        let c = Change::from_json(golden).unwrap();
        assert_eq!(c.to_json(), golden);
        match &c.op {
            Op::StatusSet(s) => s.check_lifecycle().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lifecycle_check_is_a_pure_function_of_the_op() {
        let mut s = StatusSet {
            case: CaseId(uuid::Uuid::nil()),
            from: vec![Status::Reported],
            to: Status::Handled,
            reason: None,
            note: None,
            department: None,
            at: Timestamp::from_millis("at", 1_764_000_000_000).unwrap(),
            context: BTreeMap::new(),
        };
        assert!(s.check_lifecycle().is_err());
        s.to = Status::Rejected;
        assert!(
            s.check_lifecycle()
                .unwrap_err()
                .to_string()
                .contains("reason")
        );
        s.from = vec![Status::Registered, Status::Rejected];
        s.to = Status::Registered;
        s.check_lifecycle().unwrap();
    }
}
