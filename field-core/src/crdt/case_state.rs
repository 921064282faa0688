//! The merge of one case: a pure function (state, change) → state.
//!
//! - scalar fields (description, category, placement, origin) are `LWWReg`s
//!   whose marker is (HLC, actor): later stamp wins, actor breaks ties, and
//!   the marker is unique because a device never reuses a stamp;
//! - the photo set is an `Orswot` (observed-remove, add wins over a
//!   concurrent remove);
//! - the status is an `MVReg`: concurrent decisions stay side by side as a
//!   conflict for a reviewer instead of one silently winning.
//!
//! Every op here commutes with every other op of another actor; ops of one
//! actor must come in counter order (the store's causal buffer sees to it).

use std::collections::BTreeMap;

use crdts::{CmRDT, Dot, LWWReg, MVReg, Orswot, VClock, mvreg, orswot};
use serde::{Deserialize, Serialize};

use super::Hlc;
use super::change::{CaseEdit, CaseReport, Change, Op, StatusSet};
use crate::error::{Result, invalid};
use crate::model::{
    ActorId, CaseFields, CaseId, CaseOrigin, CasePhoto, CategoryCode, Placement, Status,
    StatusEntry,
};

/// LWW marker: unique per write because a device never issues an HLC twice.
pub type Marker = (Hlc, ActorId);

/// The replicated state of one case.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CaseState {
    pub origin: LWWReg<Option<CaseOrigin>, Marker>,
    pub description: LWWReg<Option<String>, Marker>,
    pub category: LWWReg<Option<CategoryCode>, Marker>,
    pub placement: LWWReg<Option<Placement>, Marker>,
    pub photos: Orswot<CasePhoto, ActorId>,
    pub status: MVReg<StatusEntry, ActorId>,
}

/// A case as people read it: winners of every register, sorted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseView {
    pub id: CaseId,
    /// `None` until the report itself has arrived (an edit can come first).
    pub origin: Option<CaseOrigin>,
    pub description: Option<String>,
    pub category: Option<CategoryCode>,
    pub placement: Option<Placement>,
    pub photos: Vec<CasePhoto>,
    /// One value normally; several when reviewers decided concurrently.
    pub status: Vec<StatusEntry>,
    /// The status register's causal context: a decision made on this view
    /// carries it, so decisions it did not see stay visible beside it.
    pub status_context: BTreeMap<ActorId, u64>,
}

impl CaseView {
    pub fn in_conflict(&self) -> bool {
        self.status.len() > 1
    }

    /// The current status values; `reported` until a decision is made.
    pub fn statuses(&self) -> Vec<Status> {
        if self.status.is_empty() {
            vec![Status::Reported]
        } else {
            self.status.iter().map(|s| s.status).collect()
        }
    }
}

fn to_vclock(map: &BTreeMap<ActorId, u64>) -> VClock<ActorId> {
    map.iter().map(|(a, c)| Dot::new(*a, *c)).collect()
}

fn from_vclock(clock: &VClock<ActorId>) -> BTreeMap<ActorId, u64> {
    clock.iter().map(|d| (*d.actor, d.counter)).collect()
}

impl CaseState {
    /// Applies one change to this case. Refuses (and leaves the state as it
    /// was) a change whose op is malformed.
    pub fn apply(&mut self, change: &Change) -> Result<()> {
        let marker = (change.hlc, change.actor);
        match &change.op {
            Op::CaseReport(r) => self.apply_report(r, change.actor, marker),
            Op::CaseEdit(e) => self.apply_edit(e, change.actor, marker),
            Op::StatusSet(s) => self.apply_status(s, change.actor),
            Op::TrackAppend(_)
            | Op::TrackGap(_)
            | Op::ShiftMark(_)
            | Op::TaskAssign(_)
            | Op::TaskAnswer(_) => Ok(()),
        }
    }

    fn apply_report(&mut self, r: &CaseReport, actor: ActorId, marker: Marker) -> Result<()> {
        // A report only creates a case: whoever holds the case keeps it, on
        // every replica, so knowing a case's id never lets anyone take it over.
        if let Some(o) = &self.origin.val {
            return Err(invalid(
                "case",
                format!(
                    "{} was already reported by {} ({}): a report only creates a case",
                    r.case, o.collector, o.reporter
                ),
            ));
        }
        if r.origin.reporter != actor {
            return Err(invalid(
                "origin.reporter",
                "a case is reported by the change's author",
            ));
        }
        let add = self.photo_add(&r.photos, Some(r.photo_dot), actor)?;
        self.origin.update(Some(r.origin.clone()), marker);
        self.apply_fields(&r.fields, marker);
        if let Some(op) = add {
            self.photos.apply(op);
        }
        Ok(())
    }

    fn apply_edit(&mut self, e: &CaseEdit, actor: ActorId, marker: Marker) -> Result<()> {
        let add = self.photo_add(&e.add_photos, e.photo_dot, actor)?;
        self.apply_fields(&e.fields, marker);
        if let Some(op) = add {
            self.photos.apply(op);
        }
        if !e.remove_photos.is_empty() {
            self.photos.apply(orswot::Op::Rm {
                clock: to_vclock(&e.seen),
                members: e.remove_photos.clone(),
            });
        }
        Ok(())
    }

    /// Builds (and validates, before anything changes) the add op.
    fn photo_add(
        &self,
        photos: &[CasePhoto],
        dot: Option<u64>,
        actor: ActorId,
    ) -> Result<Option<orswot::Op<CasePhoto, ActorId>>> {
        if photos.is_empty() {
            return Ok(None);
        }
        let counter = dot.ok_or_else(|| invalid("photo_dot", "photos added without a dot"))?;
        let op = orswot::Op::Add {
            dot: Dot::new(actor, counter),
            members: photos.to_vec(),
        };
        self.photos
            .validate_op(&op)
            .map_err(|e| invalid("photo_dot", format!("out of causal order: {e:?}")))?;
        Ok(Some(op))
    }

    fn apply_fields(&mut self, f: &CaseFields, marker: Marker) {
        if let Some(d) = &f.description {
            self.description.update(Some(d.clone()), marker);
        }
        if let Some(c) = &f.category {
            self.category.update(Some(c.clone()), marker);
        }
        if let Some(p) = &f.placement {
            self.placement.update(Some(p.clone()), marker);
        }
    }

    fn apply_status(&mut self, s: &StatusSet, actor: ActorId) -> Result<()> {
        s.check_lifecycle()?;
        if s.context.get(&actor).copied().unwrap_or(0) == 0 {
            return Err(invalid(
                "context",
                "a status write must carry its author's dot",
            ));
        }
        self.status.apply(mvreg::Op::Put {
            clock: to_vclock(&s.context),
            val: StatusEntry {
                status: s.to,
                reason: s.reason.clone(),
                note: s.note.clone(),
                department: s.department.clone(),
                by: actor,
                at: s.at,
            },
        });
        Ok(())
    }

    /// The next photo dot of `actor` in this case's photo set.
    pub fn next_photo_dot(&self, actor: ActorId) -> u64 {
        self.photos.clock().get(&actor) + 1
    }

    /// The photo-set context a remove must carry (what this replica has seen).
    pub fn photo_context(&self) -> BTreeMap<ActorId, u64> {
        from_vclock(&self.photos.clock())
    }

    pub fn view(&self, id: CaseId) -> CaseView {
        let mut photos: Vec<CasePhoto> = self.photos.read().val.into_iter().collect();
        photos.sort();
        let mut status = self.status.read().val;
        status.sort();
        CaseView {
            id,
            origin: self.origin.val.clone(),
            description: self.description.val.clone(),
            category: self.category.val.clone(),
            placement: self.placement.val.clone(),
            photos,
            status,
            status_context: from_vclock(&self.status.read_ctx().add_clock),
        }
    }

    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("writing CBOR to a Vec cannot fail");
        out
    }

    pub fn from_cbor(bytes: &[u8]) -> Result<CaseState> {
        ciborium::from_reader(bytes)
            .map_err(|e| crate::Error::Corrupt(format!("case state is unreadable: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::CHANGE_SCHEMA;
    use crate::model::{CaseSource, LonLat, PhotoHash, PhotoRole, Timestamp};
    use uuid::Uuid;

    fn actor(n: u128) -> ActorId {
        Uuid::from_u128(n)
    }

    fn change(a: ActorId, counter: u64, hlc: u64, op: Op) -> Change {
        Change {
            schema: CHANGE_SCHEMA,
            actor: a,
            counter,
            hlc: Hlc::new(hlc, 0),
            op,
        }
    }

    fn photo(b: &[u8]) -> CasePhoto {
        CasePhoto {
            hash: PhotoHash::of(b),
            role: PhotoRole::Before,
        }
    }

    fn report(a: ActorId) -> Change {
        let at = Timestamp::from_millis("at", 1_764_000_000_000).unwrap();
        change(
            a,
            1,
            100,
            Op::CaseReport(CaseReport {
                case: CaseId(Uuid::nil()),
                origin: CaseOrigin {
                    reporter: a,
                    collector: "wang".into(),
                    source: CaseSource::Collector,
                    reported_at: at,
                    survey: None,
                },
                fields: CaseFields {
                    description: Some("cover broken".into()),
                    category: Some(CategoryCode::parse("c", "BJ0101").unwrap()),
                    placement: Some(Placement {
                        pos: LonLat::new(120.0, 30.0).unwrap(),
                        cell: None,
                    }),
                },
                photos: vec![photo(b"p1")],
                photo_dot: 1,
            }),
        )
    }

    fn edit_desc(a: ActorId, counter: u64, hlc: u64, text: &str) -> Change {
        change(
            a,
            counter,
            hlc,
            Op::CaseEdit(CaseEdit {
                case: CaseId(Uuid::nil()),
                fields: CaseFields {
                    description: Some(text.into()),
                    ..Default::default()
                },
                ..Default::default()
            }),
        )
    }

    fn merged(changes: &[Change]) -> CaseView {
        let mut s = CaseState::default();
        for c in changes {
            s.apply(c).unwrap();
        }
        s.view(CaseId(Uuid::nil()))
    }

    #[test]
    fn later_hlc_wins_whatever_the_order_and_ties_go_to_the_greater_actor() {
        let (a, b) = (actor(1), actor(2));
        let r = report(a);
        let e1 = edit_desc(a, 2, 200, "from a");
        let e2 = edit_desc(b, 1, 300, "from b");
        let x = merged(&[r.clone(), e1.clone(), e2.clone()]);
        let y = merged(&[e2.clone(), r.clone(), e1.clone()]);
        assert_eq!(x, y);
        assert_eq!(x.description.as_deref(), Some("from b"));
        let t1 = edit_desc(a, 2, 500, "tie a");
        let t2 = edit_desc(b, 1, 500, "tie b");
        assert_eq!(
            merged(&[r.clone(), t2.clone(), t1.clone()])
                .description
                .as_deref(),
            Some("tie b")
        );
        assert_eq!(merged(&[r, t1, t2]).description.as_deref(), Some("tie b"));
    }

    #[test]
    fn concurrent_add_beats_remove_of_unseen_add() {
        let (a, b) = (actor(1), actor(2));
        let r = report(a);
        // b saw p1 (dot a:1) and removes it; a concurrently re-adds p1 and adds p2.
        let mut seen = BTreeMap::new();
        seen.insert(a, 1);
        let rm = change(
            b,
            1,
            300,
            Op::CaseEdit(CaseEdit {
                case: CaseId(Uuid::nil()),
                remove_photos: vec![photo(b"p1")],
                seen,
                ..Default::default()
            }),
        );
        let add = change(
            a,
            2,
            250,
            Op::CaseEdit(CaseEdit {
                case: CaseId(Uuid::nil()),
                add_photos: vec![photo(b"p1"), photo(b"p2")],
                photo_dot: Some(2),
                ..Default::default()
            }),
        );
        let x = merged(&[r.clone(), rm.clone(), add.clone()]);
        let y = merged(&[r.clone(), add.clone(), rm.clone()]);
        let z = merged(&[rm, r, add]);
        assert_eq!(x, y);
        assert_eq!(x, z);
        assert_eq!(x.photos.len(), 2, "the concurrent re-add of p1 survives");
    }

    #[test]
    fn concurrent_decisions_are_a_visible_conflict_until_resolved() {
        let (a, r1, r2) = (actor(1), actor(8), actor(9));
        let at = Timestamp::from_millis("at", 1_764_000_000_000).unwrap();
        let decide =
            |who: ActorId, ctr: u64, from: Vec<Status>, to: Status, ctx: &[(ActorId, u64)]| {
                change(
                    who,
                    ctr,
                    400,
                    Op::StatusSet(StatusSet {
                        case: CaseId(Uuid::nil()),
                        from,
                        to,
                        reason: (to == Status::Rejected)
                            .then_some(crate::model::RejectReason::Duplicate),
                        note: None,
                        department: None,
                        at,
                        context: ctx.iter().copied().collect(),
                    }),
                )
            };
        let reg = decide(
            r1,
            1,
            vec![Status::Reported],
            Status::Registered,
            &[(r1, 1)],
        );
        let rej = decide(r2, 1, vec![Status::Reported], Status::Rejected, &[(r2, 1)]);
        let v = merged(&[report(a), rej.clone(), reg.clone()]);
        assert!(v.in_conflict());
        assert_eq!(v, merged(&[reg.clone(), report(a), rej.clone()]));
        let fix = decide(
            r1,
            2,
            vec![Status::Registered, Status::Rejected],
            Status::Registered,
            &[(r1, 2), (r2, 1)],
        );
        let v = merged(&[report(a), rej, fix, reg]);
        assert_eq!(v.statuses(), vec![Status::Registered]);
    }

    #[test]
    fn forged_reporter_and_illegal_transition_are_refused_untouched() {
        let mut s = CaseState::default();
        let mut r = report(actor(1));
        r.actor = actor(2);
        assert!(s.apply(&r).is_err());
        assert_eq!(s.view(CaseId(Uuid::nil())).origin, None);
    }

    #[test]
    fn state_survives_cbor() {
        let mut s = CaseState::default();
        s.apply(&report(actor(1))).unwrap();
        let back = CaseState::from_cbor(&s.to_cbor()).unwrap();
        assert_eq!(back.view(CaseId(Uuid::nil())), s.view(CaseId(Uuid::nil())));
    }
}
