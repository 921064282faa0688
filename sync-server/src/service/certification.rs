//! Certification (上岗证) and training. A candidate sits three tests —
//! theory, a find-the-problem video, a field test — per attempt; an attempt
//! passing all three earns a certificate dated that day, valid for the
//! configured months; two failed attempts end the candidacy. Training
//! sessions are kept with date, topic and attendees; each collector is owed
//! a monthly number of them by the company. Reports flag patrol without a
//! valid certificate and a month's training shortfall.

use chrono::NaiveDate;
pub use field_core::assess::certification::{Attempt, Certification, Training, standing};
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::{Center, Result, ServiceError, invalid};
use crate::storage::{Principal, Role, User};
use field_core::model::limits::{MAX_NAME_BYTES, bounded, bounded_len};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAttempt {
    pub collector: String,
    pub date: NaiveDate,
    pub theory: bool,
    pub video: bool,
    pub field: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTraining {
    pub date: NaiveDate,
    pub topic: String,
    /// Collector names or ids.
    pub attendees: Vec<String>,
    /// `company` (counts toward the monthly quota) or `center`.
    #[serde(default = "company")]
    pub given_by: String,
}

fn company() -> String {
    "company".into()
}

impl Center {
    fn collector(&self, name: &str) -> Result<User> {
        self.storage
            .users()?
            .into_iter()
            .find(|u| u.role == Role::Collector && (u.id == name || u.name == name))
            .ok_or_else(|| invalid("collector", format!("no collector `{name}`")))
    }

    pub fn record_attempt(&self, p: &Principal, req: NewAttempt) -> Result<Certification> {
        self.require(p, Operation::Decide)?;
        let user = self.collector(&req.collector)?;
        let before = self.certification(p, &user.id)?;
        if before.candidacy_ended {
            return Err(ServiceError::Forbidden(format!(
                "{} failed two attempts: the candidacy has ended",
                user.name
            )));
        }
        if req.date > self.today()? {
            return Err(invalid(
                "date",
                "an attempt is recorded once it has been sat",
            ));
        }
        let attempt = Attempt {
            id: uuid::Uuid::new_v4().to_string(),
            collector_id: user.id.clone(),
            collector: user.name.clone(),
            date: req.date,
            theory: req.theory,
            video: req.video,
            field: req.field,
            recorded_by: p.user.name.clone(),
        };
        self.storage.put_attempt(&attempt)?;
        self.audit(
            p,
            "certification_attempt",
            &user.name,
            format!("{} passed {}", req.date, attempt.passed()),
        )?;
        self.stale_from(Some(req.date))?;
        self.certification(p, &user.id)
    }

    pub fn certification(&self, p: &Principal, collector: &str) -> Result<Certification> {
        self.require(p, Operation::ReadCases)?;
        let user = self.collector(collector)?;
        self.standing_of(&user)
    }

    fn standing_of(&self, user: &User) -> Result<Certification> {
        let months = self.city_config()?.config.certificate_valid_months;
        let attempts = self
            .storage
            .attempts()?
            .into_iter()
            .filter(|a| a.collector_id == user.id)
            .collect();
        Ok(standing(&user.name, attempts, months))
    }

    pub fn record_training(&self, p: &Principal, req: NewTraining) -> Result<Training> {
        self.require(p, Operation::Decide)?;
        bounded("topic", &req.topic, MAX_NAME_BYTES)?;
        bounded_len("attendees", req.attendees.len(), 1000)?;
        if !matches!(req.given_by.as_str(), "company" | "center") {
            return Err(invalid("given_by", "is `company` or `center`"));
        }
        let attendees = req
            .attendees
            .iter()
            .map(|a| self.collector(a).map(|u| u.id))
            .collect::<Result<Vec<_>>>()?;
        let t = Training {
            id: uuid::Uuid::new_v4().to_string(),
            date: req.date,
            topic: req.topic.trim().to_string(),
            attendees,
            given_by: req.given_by,
            recorded_by: p.user.name.clone(),
        };
        self.storage.put_training(&t)?;
        self.audit(
            p,
            "training",
            &t.topic,
            format!("{} attendee(s) on {}", t.attendees.len(), t.date),
        )?;
        Ok(t)
    }

    pub fn trainings(&self, p: &Principal) -> Result<Vec<Training>> {
        self.require(p, Operation::ReadCases)?;
        Ok(self.storage.trainings()?)
    }
}
