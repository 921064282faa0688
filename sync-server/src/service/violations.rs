//! Red lines (三条高压线): staff record a violation against a collector —
//! `bribery` (吃拿卡要), `false_information` (虚假信息), `at_fault_dispute`
//! (有责纠纷) — with evidence and who recorded it. Each costs the
//! configured heavy fine; the second of a company's contract year marks its
//! contract for termination. A violation is revoked with a reason, never
//! deleted: the history stays.

pub use field_core::assess::red_lines::{RedLine, Revocation, Violation, contract_year_start};
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::{Center, Result, ServiceError, invalid};
use crate::storage::{Principal, Role};
use field_core::model::limits::{MAX_NOTE_BYTES, bounded, bounded_len};
use field_core::model::{CaseId, PhotoHash, Timestamp};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewViolation {
    pub collector: String,
    pub kind: RedLine,
    /// RFC 3339; default now.
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub cases: Vec<CaseId>,
    #[serde(default)]
    pub photos: Vec<PhotoHash>,
    #[serde(default)]
    pub note: Option<String>,
}

impl Center {
    pub fn record_violation(&self, p: &Principal, req: NewViolation) -> Result<Violation> {
        self.require(p, Operation::Decide)?;
        let user = self
            .storage
            .users()?
            .into_iter()
            .find(|u| {
                u.role == Role::Collector && (u.id == req.collector || u.name == req.collector)
            })
            .ok_or_else(|| invalid("collector", format!("no collector `{}`", req.collector)))?;
        if let Some(n) = &req.note {
            bounded("note", n, MAX_NOTE_BYTES)?;
        }
        bounded_len("cases", req.cases.len(), 100)?;
        bounded_len("photos", req.photos.len(), 32)?;
        for c in &req.cases {
            if self.storage.case(*c)?.is_none() {
                return Err(invalid("cases", format!("case {c} is unknown")));
            }
        }
        let now = self.now_ms();
        let at = match &req.at {
            Some(t) => Timestamp::parse("at", t)?,
            None => Timestamp::from_millis("at", now)?,
        };
        if at.millis() > now {
            return Err(invalid(
                "at",
                "a violation is recorded once it has happened",
            ));
        }
        let v = Violation {
            id: uuid::Uuid::new_v4().to_string(),
            collector: user.name.clone(),
            collector_id: user.id.clone(),
            company: user.company.clone(),
            kind: req.kind,
            at,
            cases: req.cases,
            photos: req.photos,
            note: req.note,
            recorded_by: p.user.name.clone(),
            recorded_at: Timestamp::from_millis("recorded_at", now)?,
            revoked: None,
        };
        self.storage.put_violation(&v)?;
        self.audit(
            p,
            "record_violation",
            &user.name,
            format!("{:?} {}", v.kind, v.id),
        )?;
        self.stale_after(&v)?;
        Ok(v)
    }

    pub fn revoke_violation(&self, p: &Principal, id: &str, reason: &str) -> Result<Violation> {
        self.require(p, Operation::Decide)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(invalid("reason", "a revocation needs a reason"));
        }
        bounded("reason", reason, MAX_NOTE_BYTES)?;
        let mut v = self
            .storage
            .violations()?
            .into_iter()
            .find(|v| v.id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("violation {id}")))?;
        if v.revoked.is_some() {
            return Err(invalid("id", "this violation is already revoked"));
        }
        v.revoked = Some(Revocation {
            at: Timestamp::from_millis("at", self.now_ms())?,
            by: p.user.name.clone(),
            reason: reason.to_string(),
        });
        self.storage.put_violation(&v)?;
        self.audit(
            p,
            "revoke_violation",
            &v.collector,
            format!("{} ({reason})", v.id),
        )?;
        self.stale_after(&v)?;
        Ok(v)
    }

    /// A violation's day, and the days of the company's later violations
    /// in the same contract year (their order in it, and so the
    /// termination mark, changes).
    fn stale_after(&self, v: &Violation) -> Result<()> {
        let cfg = self.city_config()?.config;
        let rules = &cfg.patrol;
        let year_end = contract_year_start(
            rules.local_date(v.at.millis())?,
            cfg.contract_year_start_month,
        )
        .checked_add_months(chrono::Months::new(12));
        let mut instants = vec![v.at.millis()];
        for w in self.storage.violations()? {
            let in_year = rules
                .local_date(w.at.millis())
                .is_ok_and(|d| year_end.is_none_or(|end| d < end));
            if w.company == v.company && w.at > v.at && in_year {
                instants.push(w.at.millis());
            }
        }
        self.stale_at(&instants)
    }

    pub fn violations(&self, p: &Principal, collector: Option<&str>) -> Result<Vec<Violation>> {
        self.require(p, Operation::ReadCases)?;
        Ok(self
            .storage
            .violations()?
            .into_iter()
            .filter(|v| collector.is_none_or(|c| v.collector == c || v.collector_id == c))
            .collect())
    }
}
