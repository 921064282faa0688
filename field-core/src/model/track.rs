//! Track points and shift marks (the test cases that record attendance).

use serde::{Deserialize, Serialize};

use super::{CellCode, LonLat, Timestamp};
use crate::error::{Result, invalid};

/// One GPS fix as the location service (or a GPX file) delivered it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    pub at: Timestamp,
    pub pos: LonLat,
    /// Horizontal accuracy in metres; `None` when unknown.
    pub accuracy_m: Option<f64>,
    /// Ground speed in m/s where the source gives it.
    pub speed_mps: Option<f64>,
}

impl TrackPoint {
    /// Checks accuracy and speed (position and time are valid by type).
    pub fn new(
        at: Timestamp,
        pos: LonLat,
        accuracy_m: Option<f64>,
        speed_mps: Option<f64>,
    ) -> Result<TrackPoint> {
        check_non_negative("accuracy", accuracy_m)?;
        check_non_negative("speed", speed_mps)?;
        Ok(TrackPoint {
            at,
            pos,
            accuracy_m,
            speed_mps,
        })
    }
}

fn check_non_negative(field: &str, v: Option<f64>) -> Result<()> {
    match v {
        Some(x) if !x.is_finite() || x < 0.0 => Err(invalid(
            field,
            format!("{x} is not a finite, non-negative number"),
        )),
        _ => Ok(()),
    }
}

/// Start or end of a shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftKind {
    Start,
    End,
}

impl ShiftKind {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShiftKind::Start => "start",
            ShiftKind::End => "end",
        }
    }

    pub fn parse(s: &str) -> Option<ShiftKind> {
        match s {
            "start" => Some(ShiftKind::Start),
            "end" => Some(ShiftKind::End),
            _ => None,
        }
    }
}

/// A shift test case (测试案卷): its time is the attendance record. Never reviewed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftMark {
    pub id: uuid::Uuid,
    pub kind: ShiftKind,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<LonLat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<CellCode>,
}
