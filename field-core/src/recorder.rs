//! Where a GPS fix becomes a track point or part of a gap: the recorder's
//! rules, pure. The device store keeps the state between fixes and across
//! restarts (`store/recorder.rs`); this module only decides.
//!
//! A day's track carries its gaps with their causes:
//! - **no fix**: the recorder ran, but two fixes are more than
//!   [`RecorderRules::silence_ms`] apart (no signal);
//! - **app killed**: the recorder starts again after a silence without
//!   having been stopped — the phone or the user killed the app;
//! - **mock**: fixes the platform flagged as a mock location (they are not
//!   part of the track);
//! - **poor accuracy**: fixes worse than the cut-off (kept in the track;
//!   the assessment ignores them as it always has).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{GapCause, LonLat, Timestamp, TrackGap, TrackPoint};

/// One fix as the platform's location service delivers it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fix {
    pub at: Timestamp,
    pub pos: LonLat,
    pub accuracy_m: Option<f64>,
    pub speed_mps: Option<f64>,
    pub bearing_deg: Option<f64>,
    /// `gps`, `network`, `fused` …, as the platform names it.
    pub provider: Option<String>,
    /// The platform says this fix comes from a mock location provider.
    pub mock: bool,
}

impl Fix {
    pub fn point(&self) -> Result<TrackPoint> {
        TrackPoint::new(self.at, self.pos, self.accuracy_m, self.speed_mps)
    }
}

/// The recorder's thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecorderRules {
    /// Fixes further apart than this leave a gap.
    pub silence_ms: i64,
    /// Fixes worse than this are a poor-accuracy stretch (the assessment's
    /// own cut-off, `assess::rules::Rules::max_accuracy_m`).
    pub accuracy_cutoff_m: f64,
}

impl Default for RecorderRules {
    fn default() -> Self {
        RecorderRules {
            silence_ms: 60_000,
            accuracy_cutoff_m: 50.0,
        }
    }
}

/// What the recorder knows between fixes; kept by the store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecorderState {
    /// Started and not stopped: a restart finding this set after a silence
    /// means the app was killed.
    pub running: bool,
    /// The newest fix taken (mock or not), ms.
    pub last_fix_ms: Option<i64>,
    /// A mock or poor-accuracy stretch under way: its cause and first fix.
    pub open: Option<(GapCause, i64)>,
    /// Gaps found and not yet written as changes (the store writes them
    /// when it seals the journal).
    #[serde(default)]
    pub pending_gaps: Vec<TrackGap>,
}

/// What one fix gives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// The point to append to the track, if the fix is one.
    pub point: Option<TrackPoint>,
    /// Gaps that ended with this fix.
    pub gaps: Vec<TrackGap>,
    /// The fix was at or before the newest one taken: ignored.
    pub stale: bool,
}

fn gap(from: i64, to: i64, cause: GapCause) -> Result<TrackGap> {
    TrackGap::new(
        Timestamp::from_millis("gap.from", from)?,
        Timestamp::from_millis("gap.to", to)?,
        cause,
    )
}

impl RecorderState {
    /// The recorder starts (the app opened, or a shift began) at `now_ms`.
    /// A recorder found running after a silence was killed: the gap runs
    /// from its last fix to now.
    pub fn start(&mut self, now_ms: i64, rules: &RecorderRules) -> Result<Vec<TrackGap>> {
        let mut out = Vec::new();
        if self.running
            && let Some(last) = self.last_fix_ms
            && now_ms - last > rules.silence_ms
        {
            out.extend(self.close_open(last)?);
            out.push(gap(last, now_ms, GapCause::AppKilled)?);
            // The next fix is measured from the restart, not the last fix.
            self.last_fix_ms = Some(now_ms);
        }
        self.running = true;
        Ok(out)
    }

    /// The recorder stops cleanly (the shift ended, the user paused it).
    pub fn stop(&mut self) -> Result<Vec<TrackGap>> {
        let out = match self.last_fix_ms {
            Some(last) => self.close_open(last)?,
            None => Vec::new(),
        };
        self.open = None;
        self.running = false;
        Ok(out)
    }

    fn close_open(&mut self, at_ms: i64) -> Result<Vec<TrackGap>> {
        Ok(match self.open.take() {
            Some((cause, from)) => vec![gap(from, at_ms.max(from), cause)?],
            None => Vec::new(),
        })
    }

    /// Takes one fix (fixes arrive in time order; one at or before the
    /// newest is stale and ignored).
    pub fn feed(&mut self, fix: &Fix, rules: &RecorderRules) -> Result<Step> {
        let at = fix.at.millis();
        let mut step = Step::default();
        if self.last_fix_ms.is_some_and(|last| at <= last) {
            step.stale = true;
            return Ok(step);
        }
        self.running = true;
        if let Some(last) = self.last_fix_ms
            && at - last > rules.silence_ms
        {
            step.gaps.extend(self.close_open(last)?);
            step.gaps.push(gap(last, at, GapCause::NoFix)?);
        }
        let class = if fix.mock {
            Some(GapCause::Mock)
        } else if fix.accuracy_m.is_some_and(|a| a > rules.accuracy_cutoff_m) {
            Some(GapCause::PoorAccuracy)
        } else {
            None
        };
        if self.open.is_some_and(|(cause, _)| Some(cause) != class) {
            step.gaps.extend(self.close_open(at)?);
        }
        if let Some(cause) = class
            && self.open.is_none()
        {
            self.open = Some((cause, at));
        }
        if !fix.mock {
            step.point = Some(fix.point()?);
        }
        self.last_fix_ms = Some(at);
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_000_000_000;

    fn fix(s: i64, accuracy: f64, mock: bool) -> Fix {
        Fix {
            at: Timestamp::from_millis("at", T0 + s * 1000).unwrap(),
            pos: LonLat::new(120.26, 30.18).unwrap(),
            accuracy_m: Some(accuracy),
            speed_mps: None,
            bearing_deg: None,
            provider: Some("gps".into()),
            mock,
        }
    }

    fn run(state: &mut RecorderState, fixes: &[Fix]) -> (usize, Vec<(GapCause, i64, i64)>) {
        let rules = RecorderRules::default();
        let (mut points, mut gaps) = (0, Vec::new());
        for f in fixes {
            let s = state.feed(f, &rules).unwrap();
            points += s.point.is_some() as usize;
            gaps.extend(s.gaps);
        }
        let g = gaps
            .iter()
            .map(|g| {
                (
                    g.cause,
                    (g.from.millis() - T0) / 1000,
                    (g.to.millis() - T0) / 1000,
                )
            })
            .collect();
        (points, g)
    }

    #[test]
    fn each_cause_is_told_apart() {
        let mut st = RecorderState::default();
        let mut fixes: Vec<Fix> = (0..10).map(|i| fix(i * 5, 5.0, false)).collect();
        // No signal for 3 minutes.
        fixes.extend((0..5).map(|i| fix(225 + i * 5, 5.0, false)));
        // Mocked for 20 s, then poor accuracy for 15 s, then good again.
        fixes.extend((0..5).map(|i| fix(250 + i * 5, 5.0, true)));
        fixes.extend((0..3).map(|i| fix(275 + i * 5, 80.0, false)));
        fixes.push(fix(290, 4.0, false));
        let (points, gaps) = run(&mut st, &fixes);
        assert_eq!(points, fixes.len() - 5, "mocked fixes are not points");
        assert_eq!(
            gaps,
            vec![
                (GapCause::NoFix, 45, 225),
                (GapCause::Mock, 250, 275),
                (GapCause::PoorAccuracy, 275, 290),
            ]
        );
        // A stale fix changes nothing.
        let s = st
            .feed(&fix(100, 5.0, false), &RecorderRules::default())
            .unwrap();
        assert!(s.stale && s.point.is_none() && s.gaps.is_empty());
    }

    #[test]
    fn a_restart_after_silence_without_a_stop_is_a_kill() {
        let rules = RecorderRules::default();
        let mut st = RecorderState::default();
        st.start(T0, &rules).unwrap();
        run(
            &mut st,
            &(0..4).map(|i| fix(i * 5, 5.0, false)).collect::<Vec<_>>(),
        );
        // Killed after the fix at 15 s; opened again at 10 minutes.
        let gaps = st.start(T0 + 600_000, &rules).unwrap();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].cause, GapCause::AppKilled);
        assert_eq!(gaps[0].from.millis(), T0 + 15_000);
        assert_eq!(gaps[0].to.millis(), T0 + 600_000);
        // The first fix after the restart leaves no second gap.
        let (_, g) = run(&mut st, &[fix(605, 5.0, false)]);
        assert!(g.is_empty(), "{g:?}");
        // Stopped cleanly, then started a day later: no gap.
        assert!(st.stop().unwrap().is_empty());
        assert!(st.start(T0 + 86_400_000, &rules).unwrap().is_empty());
    }

    #[test]
    fn a_stretch_open_at_a_stop_is_closed_at_the_last_fix() {
        let mut st = RecorderState::default();
        run(
            &mut st,
            &[fix(0, 5.0, false), fix(5, 5.0, true), fix(10, 5.0, true)],
        );
        let gaps = st.stop().unwrap();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].cause, GapCause::Mock);
        assert_eq!(gaps[0].minutes(), 0);
        assert_eq!(gaps[0].to.millis(), T0 + 10_000);
    }
}
