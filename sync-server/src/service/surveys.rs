//! Special surveys (专项普查): the center creates one over some cells and
//! categories for a date range; devices in those cells receive it; cases
//! reported under it carry its id; its report counts them by category and
//! by cell.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use field_core::model::{CategoryCode, Survey};
use field_core::sync::protocol::SurveysPayload;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::authorize::Operation;
use super::{Center, Result, ServiceError, invalid};
use crate::storage::Principal;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSurveyRequest {
    pub name: String,
    pub cells: Vec<String>,
    pub categories: Vec<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SurveyReport {
    pub survey: Survey,
    pub cases: usize,
    pub by_category: BTreeMap<String, usize>,
    pub by_cell: BTreeMap<String, usize>,
}

impl Center {
    pub fn create_survey(&self, p: &Principal, req: NewSurveyRequest) -> Result<Survey> {
        self.require(p, Operation::Direct)?;
        if req.name.trim().is_empty() {
            return Err(invalid("name", "is empty"));
        }
        if req.to < req.from {
            return Err(invalid("to", format!("{} is before {}", req.to, req.from)));
        }
        if req.cells.is_empty() || req.categories.is_empty() {
            return Err(invalid("cells", "a survey needs cells and categories"));
        }
        let known = self.all_cells()?;
        if let Some(bad) = req.cells.iter().find(|c| !known.contains(c)) {
            return Err(invalid(
                "cells",
                format!("{bad} is not a cell of the imported grid"),
            ));
        }
        let catalog = self.storage.catalog()?;
        let categories = req
            .categories
            .iter()
            .map(|c| Ok(catalog.resolve("categories", c)?.code.clone()))
            .collect::<Result<Vec<CategoryCode>>>()?;
        let n = self.storage.surveys()?.len() + 1;
        let survey = Survey {
            id: format!("S{}-{n:03}", req.from.format("%Y%m")),
            name: req.name,
            cells: req.cells,
            categories,
            from: req.from,
            to: req.to,
        };
        self.storage.create_survey(&survey)?;
        Ok(survey)
    }

    pub fn survey_list(&self, p: &Principal) -> Result<Vec<Survey>> {
        self.require(p, Operation::ReadCases)?;
        Ok(self.storage.surveys()?)
    }

    pub fn survey_report(&self, p: &Principal, id: &str) -> Result<SurveyReport> {
        self.require(p, Operation::ReadCases)?;
        let survey = self
            .storage
            .surveys()?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("survey {id}")))?;
        let mut report = SurveyReport {
            survey,
            cases: 0,
            by_category: BTreeMap::new(),
            by_cell: BTreeMap::new(),
        };
        for v in self.storage.cases()? {
            if v.origin.as_ref().and_then(|o| o.survey.as_deref()) != Some(id) {
                continue;
            }
            report.cases += 1;
            let category = v
                .category
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            *report.by_category.entry(category).or_default() += 1;
            let cell = v
                .placement
                .as_ref()
                .and_then(|pl| pl.cell.as_ref())
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into());
            *report.by_cell.entry(cell).or_default() += 1;
        }
        Ok(report)
    }

    /// The surveys touching `cells`, versioned so unchanged lists are not resent.
    pub(super) fn surveys_for(
        &self,
        p: &Principal,
        cells: &[String],
    ) -> Result<Option<SurveysPayload>> {
        let surveys: Vec<Survey> = self
            .storage
            .surveys()?
            .into_iter()
            .filter(|s| p.user.role.is_staff() || s.cells.iter().any(|c| cells.contains(c)))
            .collect();
        if surveys.is_empty() {
            return Ok(None);
        }
        let json =
            serde_json::to_string(&surveys).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let version = hex::encode(Sha256::digest(json.as_bytes()))[..16].to_string();
        Ok(Some(SurveysPayload {
            version,
            timezone: self.rules.timezone.clone(),
            surveys,
        }))
    }
}
