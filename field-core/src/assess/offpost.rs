//! Off post (离岗/脱岗): during patrol hours, a stretch of `off_post_minutes`
//! or more with no usable point inside the collector's assigned cells —
//! outside them, or no signal at all — is one event, with where the
//! collector was.

use serde::Serialize;

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
    let mut usable: Vec<&TrackPoint> = points
        .iter()
        .filter(|p| p.accuracy_m.is_none_or(|a| a <= rules.max_accuracy_m))
        .filter(|p| (day.start_ms..=day.end_ms).contains(&p.at.millis()))
        .collect();
    usable.sort_by_key(|p| p.at);
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
    for p in usable {
        if assigned.locate(p.pos).is_some() {
            close(last_in, p.at.millis(), &mut outside);
            last_in = p.at.millis();
        } else {
            outside.push(p);
        }
    }
    close(last_in, day.end_ms, &mut outside);
    out
}
