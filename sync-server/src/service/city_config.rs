//! The city's assessment configuration: versioned on the server, edited as
//! TOML (`field center config show|set|import`). Every figure of a report is
//! computed with the version in force when it is asked for.

use field_core::assess::AssessmentRules;
pub use field_core::assess::config::*;
use serde::{Deserialize, Serialize};

use super::authorize::Operation;
use super::{Center, Result, ServiceError, invalid};
use crate::storage::Principal;

/// A stored version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfigVersion {
    pub version: u64,
    pub toml: String,
    pub config: CityConfig,
}

impl Center {
    /// The configuration in force (defaults until the city sets one).
    pub fn city_config(&self) -> Result<ConfigVersion> {
        Ok(match self.storage.config()? {
            Some((version, text)) => ConfigVersion {
                version,
                config: CityConfig::from_toml(&text)?,
                toml: text,
            },
            None => {
                let config = CityConfig {
                    patrol: AssessmentRules {
                        timezone: self.rules.timezone.clone(),
                        ..AssessmentRules::default()
                    },
                    ..CityConfig::default()
                };
                ConfigVersion {
                    version: 0,
                    toml: config.to_toml(),
                    config,
                }
            }
        })
    }

    pub fn show_config(&self, p: &Principal) -> Result<ConfigVersion> {
        self.require(p, Operation::ReadConfig)?;
        self.city_config()
    }

    /// Stores a new version from TOML (all of it), after checking it.
    pub fn import_config(&self, p: &Principal, text: &str) -> Result<ConfigVersion> {
        self.require(p, Operation::ChangeConfig)?;
        let config = CityConfig::from_toml(text)?;
        let version = self.storage.set_config(&config.to_toml(), &p.user.id)?;
        self.audit(p, "set_config", &format!("version {version}"), "")?;
        // Every figure is computed under the configuration in force.
        self.stale_from(None)?;
        Ok(ConfigVersion {
            version,
            toml: config.to_toml(),
            config,
        })
    }

    /// Sets one dotted key (`patrol.patrol_start`, `fees.公司A`) to a TOML value.
    pub fn set_config(&self, p: &Principal, key: &str, value: &str) -> Result<ConfigVersion> {
        self.require(p, Operation::ChangeConfig)?;
        let current = self.city_config()?;
        let mut table: toml::Table =
            toml::from_str(&current.toml).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|t| t.get("v").cloned())
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts
            .pop()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| invalid("key", "is empty"))?;
        let mut at = &mut table;
        for part in parts {
            at = at
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| invalid("key", format!("`{part}` is not a table")))?;
        }
        at.insert(last.to_string(), parsed);
        self.import_config(
            p,
            &toml::to_string(&table).map_err(|e| ServiceError::Internal(e.to_string()))?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_task_deadlines_follow_kind_and_cell_type() {
        use field_core::model::TaskKind;
        let d = TaskDeadlines {
            rural_cells: vec!["330109002".into()],
            ..TaskDeadlines::default()
        };
        assert_eq!(d.minutes(TaskKind::Verify, Some("330109002001001")), 30);
        assert_eq!(d.minutes(TaskKind::Check, Some("330109001001001")), 60);
        assert_eq!(d.minutes(TaskKind::Check, Some("330109002001001")), 120);
        assert_eq!(d.minutes(TaskKind::Check, None), 60);
    }

    #[test]
    fn an_offline_answer_is_on_time_where_the_city_allows_it() {
        let h = 3_600_000;
        let strict = Timeliness::default();
        let offline = Timeliness {
            rule: TimelinessRule::AnsweredByDeadline,
            ..Timeliness::default()
        };
        // Answered 10 min before the deadline offline, synced 2 h after it.
        let (due, answered, received) = (10 * h, 10 * h - 600_000, 12 * h);
        assert!(!strict.on_time(due, answered, Some(answered), received));
        assert!(offline.on_time(due, answered, Some(answered), received));
        // Received a day and more late: not on time even offline.
        assert!(!offline.on_time(due, answered, Some(answered), due + 25 * h));
        // A device clock that disagrees with its own stamp is not believed.
        assert!(!offline.on_time(due, answered, Some(answered + 2 * h), received));
    }

    #[test]
    fn the_default_round_trips_through_toml() {
        let text = CityConfig::default().to_toml();
        assert!(text.contains("patrol_start"), "{text}");
        assert_eq!(CityConfig::from_toml(&text).unwrap(), CityConfig::default());
    }

    #[test]
    fn bad_weights_and_zones_are_refused() {
        let mut c = CityConfig::default();
        c.weights.valid = 0.5;
        assert!(
            CityConfig::from_toml(&c.to_toml())
                .unwrap_err()
                .to_string()
                .contains("add up to 1")
        );
        c.weights.valid = 0.4;
        c.patrol.timezone = "Mars/Olympus".into();
        assert!(CityConfig::from_toml(&c.to_toml()).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, failure_persistence: None, ..Default::default() })]

        /// Any edit of a valid configuration is read or refused with a
        /// message, never a panic; what is read round-trips.
        #[test]
        fn edited_toml_is_read_or_refused_clearly(
            at in 0usize..4000,
            cut in 0usize..30,
            junk in "[a-z0-9 =.\\[\\]\"\n#-]{0,30}",
        ) {
            let mut text = CityConfig::default().to_toml();
            let at = text.char_indices().map(|(i, _)| i).nth(at % text.chars().count()).unwrap_or(0);
            let end = text[at..].char_indices().map(|(i, _)| at + i).nth(cut).unwrap_or(text.len());
            text.replace_range(at..end, &junk);
            match CityConfig::from_toml(&text) {
                Ok(c) => proptest::prop_assert_eq!(CityConfig::from_toml(&c.to_toml()).unwrap(), c),
                Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
