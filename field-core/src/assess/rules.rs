//! The rules a city configures: time zone, patrol hours, interval per zone
//! colour, emergency periods, thresholds. Defaults are DOMAIN.md's.

use chrono::{NaiveDate, NaiveTime, TimeZone};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::model::Zone;

/// An emergency period (storm, snow, festival) with its own hours and intervals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyPeriod {
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub red_minutes: i64,
    pub yellow_minutes: i64,
    pub blue_minutes: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssessmentRules {
    pub timezone: String,
    pub patrol_start: NaiveTime,
    pub patrol_end: NaiveTime,
    pub red_minutes: i64,
    pub yellow_minutes: i64,
    pub blue_minutes: i64,
    pub emergencies: Vec<EmergencyPeriod>,
    /// Consecutive points further apart than this are not joined.
    pub max_gap_s: i64,
    /// Points less accurate than this are ignored.
    pub max_accuracy_m: f64,
    pub attendance_grace_minutes: i64,
    pub off_post_minutes: i64,
}

impl Default for AssessmentRules {
    fn default() -> AssessmentRules {
        AssessmentRules {
            timezone: "Asia/Shanghai".into(),
            patrol_start: NaiveTime::from_hms_opt(7, 15, 0).expect("valid"),
            patrol_end: NaiveTime::from_hms_opt(20, 15, 0).expect("valid"),
            red_minutes: 60,
            yellow_minutes: 120,
            blue_minutes: 240,
            emergencies: Vec::new(),
            max_gap_s: 120,
            max_accuracy_m: 50.0,
            attendance_grace_minutes: 5,
            off_post_minutes: 30,
        }
    }
}

/// One local day's patrol hours as UTC instants (ms), with its intervals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatrolDay {
    pub date: NaiveDate,
    pub start_ms: i64,
    pub end_ms: i64,
    pub red_minutes: i64,
    pub yellow_minutes: i64,
    pub blue_minutes: i64,
    /// The emergency period in force, if any.
    pub emergency: Option<String>,
}

impl PatrolDay {
    pub fn interval_ms(&self, zone: Zone) -> i64 {
        60_000
            * match zone {
                Zone::Red => self.red_minutes,
                Zone::Yellow => self.yellow_minutes,
                Zone::Blue => self.blue_minutes,
            }
    }
}

impl AssessmentRules {
    pub fn tz(&self) -> Result<chrono_tz::Tz> {
        self.timezone.parse().map_err(|_| {
            invalid(
                "timezone",
                format!("`{}` is not an IANA time zone", self.timezone),
            )
        })
    }

    /// The patrol hours of `date` in the city's zone, emergency periods applied.
    pub fn patrol_day(&self, date: NaiveDate) -> Result<PatrolDay> {
        let tz = self.tz()?;
        let emergency = self
            .emergencies
            .iter()
            .find(|e| e.from <= date && date <= e.to);
        let (start, end) = match emergency {
            Some(e) => (e.start, e.end),
            None => (self.patrol_start, self.patrol_end),
        };
        let at = |t: NaiveTime| {
            tz.from_local_datetime(&date.and_time(t))
                .earliest()
                .map(|d| d.timestamp_millis())
                .ok_or_else(|| {
                    invalid(
                        "patrol_hours",
                        format!("{date} {t} does not exist in {}", self.timezone),
                    )
                })
        };
        Ok(PatrolDay {
            date,
            start_ms: at(start)?,
            end_ms: at(end)?,
            red_minutes: emergency.map(|e| e.red_minutes).unwrap_or(self.red_minutes),
            yellow_minutes: emergency
                .map(|e| e.yellow_minutes)
                .unwrap_or(self.yellow_minutes),
            blue_minutes: emergency
                .map(|e| e.blue_minutes)
                .unwrap_or(self.blue_minutes),
            emergency: emergency.map(|e| e.name.clone()),
        })
    }

    /// The local date of an instant.
    pub fn local_date(&self, ms: i64) -> Result<NaiveDate> {
        let tz = self.tz()?;
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&tz).date_naive())
            .ok_or_else(|| invalid("time", "out of range"))
    }
}
