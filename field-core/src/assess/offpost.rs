//! Off post (离岗/脱岗): during patrol hours, a stretch of `off_post_minutes`
//! or more with no usable point inside the collector's assigned cells —
//! outside them, or no signal at all — is one event, with where the
//! collector was.

use serde::Serialize;

use super::coverage::LocatedTrack;
use super::rules::{AssessmentRules, PatrolDay};
use crate::geo::CellIndex;
use crate::model::{LonLat, TrackPoint};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OffPostStretch {
    pub start_ms: i64,
    pub end_ms: i64,
    pub minutes: i64,
    /// Usable points outside the cells during the stretch (none: no signal).
    pub points_outside: usize,
    /// The first usable position seen outside, if any.
    pub where_: Option<LonLat>,
}

pub fn off_post(
    assigned: &CellIndex,
    day: &PatrolDay,
    points: &[TrackPoint],
    rules: &AssessmentRules,
) -> Vec<OffPostStretch> {
    off_post_of(
        day,
        &super::coverage::locate(assigned.cells(), points, rules),
        rules,
    )
}

/// [`off_post`] of a track already located in the assigned cells.
pub fn off_post_of(
    day: &PatrolDay,
    track: &LocatedTrack<'_>,
    rules: &AssessmentRules,
) -> Vec<OffPostStretch> {
    let limit = rules.off_post_minutes * 60_000;
    let mut out = Vec::new();
    let mut last_in = day.start_ms;
    let mut outside: Vec<&TrackPoint> = Vec::new();
    let mut close = |from: i64, to: i64, outside: &mut Vec<&TrackPoint>| {
        if to - from >= limit {
            out.push(OffPostStretch {
                start_ms: from,
                end_ms: to,
                minutes: (to - from) / 60_000,
                points_outside: outside.len(),
                where_: outside.first().map(|p| p.pos),
            });
        }
        outside.clear();
    };
    for (p, cell) in track.points.iter().zip(&track.cell_of) {
        if !(day.start_ms..=day.end_ms).contains(&p.at.millis()) {
            continue;
        }
        if cell.is_some() {
            close(last_in, p.at.millis(), &mut outside);
            last_in = p.at.millis();
        } else {
            outside.push(p);
        }
    }
    close(last_in, day.end_ms, &mut outside);
    out
}
