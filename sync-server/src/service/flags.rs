//! What the review queue flags for a reviewer to judge (DOMAIN "Fraud
//! signals"), each with its evidence, and likely duplicates:
//! - a photo (same hash) cited by more than one case;
//! - a case further than 200 m from the reporter's track at report time;
//! - a photo whose EXIF time is more than 30 min from the report time;
//! - a test case sent from outside the collector's assigned cells;
//! - an open case of the same subclass within 30 m (likely duplicate).
//!
//! Thresholds and the city's time zone come from `[review]` in the config.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeZone};
use field_core::crdt::CaseView;
use field_core::model::{ActorId, CaseId, LonLat, PhotoHash, Timestamp, TrackPoint};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::authorize::Operation;
use super::{Center, Result};
use crate::storage::{Principal, Role};

/// Other cases listed as evidence of a reused photo (the total is given too).
const MAX_LISTED: usize = 20;

/// Track points worse than this are not evidence of where anyone was.
const USABLE_ACCURACY_M: f64 = 50.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// `reused_photo`, `far_from_track`, `exif_time` or `test_case_outside_cells`.
    pub kind: String,
    pub evidence: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Duplicate {
    pub id: CaseId,
    pub distance_m: f64,
}

/// A test case (shift mark) with its flags.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShiftRow {
    pub collector: String,
    pub device: ActorId,
    pub mark: field_core::model::ShiftMark,
    pub flags: Vec<Flag>,
}

/// Where the track says the reporter was at `t`, from the usable points
/// bracketing it: interpolated between the two, or the one there is.
fn position_at(
    (before, after): (Option<TrackPoint>, Option<TrackPoint>),
    t: i64,
) -> Option<(LonLat, i64)> {
    match (before, after) {
        (Some(a), Some(b)) if b.at.millis() > a.at.millis() => {
            let f = (t - a.at.millis()) as f64 / (b.at.millis() - a.at.millis()) as f64;
            let lon = a.pos.lon() + f * (b.pos.lon() - a.pos.lon());
            let lat = a.pos.lat() + f * (b.pos.lat() - a.pos.lat());
            LonLat::new(lon, lat).ok().map(|p| (p, t))
        }
        (Some(a), _) => Some((a.pos, a.at.millis())),
        (None, Some(b)) => Some((b.pos, b.at.millis())),
        (None, None) => None,
    }
}

impl Center {
    pub(super) fn case_flags(&self, v: &CaseView) -> Result<Vec<Flag>> {
        let mut flags = Vec::new();
        let mut hashes: Vec<&PhotoHash> = v.photos.iter().map(|p| &p.hash).collect();
        hashes.sort();
        hashes.dedup();
        for hash in hashes {
            let others: Vec<CaseId> = self
                .storage
                .cases_citing(hash)?
                .into_iter()
                .filter(|id| *id != v.id)
                .collect();
            if !others.is_empty() {
                // A photo pasted into thousands of cases must not make every
                // row thousands of ids long: the first few, and how many.
                flags.push(Flag {
                    kind: "reused_photo".into(),
                    evidence: json!({
                        "photo": hash,
                        "other_cases": &others[..others.len().min(MAX_LISTED)],
                        "other_cases_total": others.len(),
                    }),
                });
            }
        }
        let (Some(origin), Some(place)) = (&v.origin, &v.placement) else {
            return Ok(flags);
        };
        if let Some(clock) = self.storage.report_clock(v.id)? {
            if clock.skew_ms.abs() > self.rules.clock_skew_minutes * 60_000 {
                flags.push(Flag {
                    kind: "device_clock".into(),
                    evidence: json!({
                        "offset_minutes": clock.skew_ms / 60_000,
                        "limit_minutes": self.rules.clock_skew_minutes,
                        "meaning": "the reporting device's clock was this far behind the server's (negative: ahead) when the report arrived; its times are doubtful",
                    }),
                });
            }
            if clock.backdate_ms > self.rules.backdate_minutes * 60_000 {
                flags.push(Flag {
                    kind: "backdated".into(),
                    evidence: json!({
                        "minutes_before_written": clock.backdate_ms / 60_000,
                        "limit_minutes": self.rules.backdate_minutes,
                        "meaning": "the report claims a time this long before the device wrote it",
                    }),
                });
            }
        }
        let cell = match place.cell.as_ref() {
            Some(c) => Some(c.to_string()),
            None => self.storage.case_cell(v.id)?,
        };
        if let (Some(cell), Some(device)) = (cell, self.storage.device(origin.reporter)?)
            && let Some(user) = self
                .storage
                .users()?
                .into_iter()
                .find(|u| u.id == device.user_id)
            && user.role == Role::Collector
            && !user.cells.contains(&cell)
        {
            flags.push(Flag {
                kind: "outside_cells".into(),
                evidence: json!({ "cell": cell, "collector_cells": user.cells }),
            });
        }
        let t = origin.reported_at.millis();
        let window = self.rules.track_window_s * 1000;
        let around = self
            .storage
            .track_around(origin.reporter, t, window, USABLE_ACCURACY_M)?;
        if let Some((pos, at)) = position_at(around, t) {
            let d = place.pos.distance_m(pos);
            if d > self.rules.track_distance_m {
                flags.push(Flag {
                    kind: "far_from_track".into(),
                    evidence: json!({ "distance_m": d.round(), "track_position": pos, "track_at": Timestamp::from_millis("at", at)?, "limit_m": self.rules.track_distance_m }),
                });
            }
        }
        for p in &v.photos {
            if !self.storage.blob_exists(&p.hash)? {
                continue;
            }
            if let Some(taken) = self.exif_instant(&self.storage.blob_exif_time(&p.hash)?) {
                let minutes = (taken - t).abs() / 60_000;
                if minutes > self.rules.exif_minutes {
                    flags.push(Flag {
                        kind: "exif_time".into(),
                        evidence: json!({ "photo": p.hash, "exif_time": Timestamp::from_millis("exif", taken)?, "reported_at": origin.reported_at, "minutes_apart": minutes, "limit_minutes": self.rules.exif_minutes }),
                    });
                }
            }
        }
        Ok(flags)
    }

    /// EXIF local time to an instant: its own offset, else the city's zone.
    fn exif_instant(&self, e: &crate::storage::blobs::ExifTime) -> Option<i64> {
        let naive =
            NaiveDateTime::parse_from_str(e.datetime.as_deref()?, "%Y:%m:%d %H:%M:%S").ok()?;
        if let Some(off) = &e.offset
            && let Ok(t) = DateTime::parse_from_str(
                &format!("{} {off}", naive.format("%Y-%m-%d %H:%M:%S")),
                "%Y-%m-%d %H:%M:%S %:z",
            )
        {
            return Some(t.timestamp_millis());
        }
        let tz: chrono_tz::Tz = self.rules.timezone.parse().ok()?;
        tz.from_local_datetime(&naive)
            .earliest()
            .map(|t| t.timestamp_millis())
    }

    pub(super) fn likely_duplicates(&self, v: &CaseView) -> Result<Vec<Duplicate>> {
        let (Some(cat), Some(place)) = (&v.category, &v.placement) else {
            return Ok(Vec::new());
        };
        Ok(self
            .storage
            .open_cases_near(cat.as_str(), place.pos, self.rules.duplicate_radius_m)?
            .into_iter()
            .filter(|(id, _)| *id != v.id)
            .map(|(id, d)| Duplicate {
                id,
                distance_m: d.round(),
            })
            .collect())
    }

    /// Test cases (shift marks), flagged when sent from outside the
    /// collector's assigned cells.
    pub fn shifts(&self, p: &Principal, flagged_only: bool) -> Result<Vec<ShiftRow>> {
        self.require(p, Operation::ReadCases)?;
        let mut owner: HashMap<ActorId, crate::storage::User> = HashMap::new();
        for u in self
            .storage
            .users()?
            .into_iter()
            .filter(|u| u.role == Role::Collector)
        {
            for d in self.storage.devices_of(&u.id)? {
                owner.insert(d.actor, u.clone());
            }
        }
        let mut out = Vec::new();
        for (device, mark) in self.storage.shift_marks()? {
            let Some(user) = owner.get(&device) else {
                continue;
            };
            // The cell is the server's fact, located from the position; the
            // device's claim is only shown beside it.
            let located = match mark.pos {
                Some(pos) => self.storage.locate_cell(pos)?,
                None => None,
            };
            let inside = located
                .as_ref()
                .is_some_and(|c| user.cells.iter().any(|x| x == c));
            let flags = if inside {
                Vec::new()
            } else {
                vec![Flag {
                    kind: "test_case_outside_cells".into(),
                    evidence: json!({ "cell": located, "claimed_cell": mark.cell, "position": mark.pos, "at": mark.at, "assigned_cells": user.cells }),
                }]
            };
            if flagged_only && flags.is_empty() {
                continue;
            }
            out.push(ShiftRow {
                collector: user.name.clone(),
                device,
                mark,
                flags,
            });
        }
        Ok(out)
    }
}
