//! External findings (center checks, citizens, industry, media, leaders):
//! checked and recorded one by one or in bulk; each marks the day it
//! happened stale. The miss rate counts them (`field_core::assess::figures`).

use field_core::model::{CaseSource, ExternalFinding, Timestamp};
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::{Center, Result, ServiceError, invalid};
use crate::storage::Principal;

/// Most findings one bulk import may carry.
pub const MAX_FINDINGS_PER_IMPORT: usize = 100_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFinding {
    pub source: CaseSource,
    pub category: String,
    pub lon: f64,
    pub lat: f64,
    pub at: String,
    #[serde(default)]
    pub note: Option<String>,
}

impl Center {
    /// Adds many findings: all of them, or none when one is bad (its row named).
    pub fn add_findings(
        &self,
        p: &Principal,
        rows: Vec<NewFinding>,
    ) -> Result<Vec<ExternalFinding>> {
        self.require(p, Operation::Direct)?;
        if rows.len() > MAX_FINDINGS_PER_IMPORT {
            return Err(ServiceError::TooLarge(format!(
                "rows: {}, at most {MAX_FINDINGS_PER_IMPORT} per import",
                rows.len()
            )));
        }
        let checked = rows
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                self.check_finding(f).map_err(|e| match e {
                    ServiceError::Invalid { field, reason } => {
                        invalid(format!("rows[{i}].{field}"), reason)
                    }
                    other => other,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for f in &checked {
            self.storage.add_finding(f)?;
        }
        let instants: Vec<i64> = checked.iter().map(|f| f.at.millis()).collect();
        self.stale_at(&instants)?;
        Ok(checked)
    }

    pub fn add_finding(&self, p: &Principal, f: NewFinding) -> Result<ExternalFinding> {
        self.require(p, Operation::Direct)?;
        let finding = self.check_finding(f)?;
        self.storage.add_finding(&finding)?;
        self.stale_at(&[finding.at.millis()])?;
        Ok(finding)
    }

    fn check_finding(&self, f: NewFinding) -> Result<ExternalFinding> {
        use field_core::model::limits::{MAX_NAME_BYTES, MAX_NOTE_BYTES, bounded, bounded_opt};
        bounded_opt("note", f.note.as_deref(), MAX_NOTE_BYTES)?;
        bounded("category", &f.category, MAX_NAME_BYTES)?;
        bounded("at", &f.at, MAX_NAME_BYTES)?;
        if !matches!(
            f.source,
            CaseSource::CenterCheck
                | CaseSource::Citizen
                | CaseSource::Industry
                | CaseSource::Media
                | CaseSource::Leader
        ) {
            return Err(invalid(
                "source",
                "a finding comes from center_check, citizen, industry, media or leader",
            ));
        }
        let catalog = self.storage.catalog()?;
        let finding = ExternalFinding {
            id: uuid::Uuid::new_v4().to_string(),
            source: f.source,
            category: catalog.resolve("category", &f.category)?.code.clone(),
            pos: field_core::model::LonLat::new(f.lon, f.lat)?,
            at: Timestamp::parse("at", &f.at)?,
            note: f.note,
        };
        Ok(finding)
    }
}
