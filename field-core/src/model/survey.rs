//! Special surveys (专项普查): a campaign over some cells and categories for
//! a date range. Cases reported under one carry its id.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::CategoryCode;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    pub id: String,
    pub name: String,
    pub cells: Vec<String>,
    pub categories: Vec<CategoryCode>,
    /// First and last day, in the city's calendar.
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Survey {
    pub fn covers(
        &self,
        cell: Option<&str>,
        category: &CategoryCode,
        day: NaiveDate,
    ) -> Result<(), String> {
        if day < self.from || day > self.to {
            return Err(format!(
                "survey {} runs {} to {}",
                self.id, self.from, self.to
            ));
        }
        if !self.categories.contains(category) {
            return Err(format!(
                "survey {} does not cover category {category}",
                self.id
            ));
        }
        match cell {
            Some(c) if self.cells.iter().any(|x| x == c) => Ok(()),
            _ => Err(format!("survey {} does not cover this cell", self.id)),
        }
    }
}
