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

/// Why a stretch of a collector's day has no usable track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapCause {
    /// The recorder ran but the location service gave no fix (no signal).
    NoFix,
    /// The app was not running: it restarted after a silence without
    /// having been stopped (killed by the phone or the user).
    AppKilled,
    /// The platform flagged the fixes as coming from a mock location.
    Mock,
    /// Fixes came, but worse than the accuracy cut-off.
    PoorAccuracy,
}

impl GapCause {
    pub fn as_str(self) -> &'static str {
        match self {
            GapCause::NoFix => "no_fix",
            GapCause::AppKilled => "app_killed",
            GapCause::Mock => "mock",
            GapCause::PoorAccuracy => "poor_accuracy",
        }
    }
}

/// A stretch of the track with no usable fix, and why: written by the
/// device's recorder, carried as a change, shown in the assessment's
/// explanation and on the console's map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackGap {
    pub from: Timestamp,
    pub to: Timestamp,
    pub cause: GapCause,
}

/// The longest gap one change may state (a week): bounds what a device
/// can claim.
pub const MAX_GAP_MS: i64 = 7 * 24 * 3_600_000;

impl TrackGap {
    pub fn new(from: Timestamp, to: Timestamp, cause: GapCause) -> Result<TrackGap> {
        if to < from {
            return Err(invalid("gap.to", "ends before it starts"));
        }
        if to.millis() - from.millis() > MAX_GAP_MS {
            return Err(invalid("gap.to", "longer than a week"));
        }
        Ok(TrackGap { from, to, cause })
    }

    /// Checks a gap that came from outside (a pushed change).
    pub fn check(&self) -> Result<()> {
        TrackGap::new(self.from, self.to, self.cause).map(|_| ())
    }

    pub fn minutes(&self) -> i64 {
        (self.to.millis() - self.from.millis()) / 60_000
    }
}
