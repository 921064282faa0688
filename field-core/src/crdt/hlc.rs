//! Hybrid logical clock (Kulkarni et al., 2014): physical milliseconds in
//! the high 48 bits, a logical counter in the low 16. Stamps increase on a
//! device even when its wall clock jumps backwards, and stay close to real
//! time so LWW picks the edit a person would call "later".

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

const LOGICAL_BITS: u32 = 16;
const LOGICAL_MAX: u64 = (1 << LOGICAL_BITS) - 1;

/// How far ahead of our wall clock a remote stamp may be before we refuse it:
/// further than this is a broken clock, and accepting it would drag every
/// later local stamp into the future.
pub const MAX_FORWARD_DRIFT_MS: u64 = 24 * 3600 * 1000;

/// An HLC stamp. Ordered, unique per device, comparable across devices.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Hlc(u64);

impl Hlc {
    pub fn new(physical_ms: u64, logical: u16) -> Hlc {
        Hlc((physical_ms << LOGICAL_BITS) | logical as u64)
    }

    pub fn from_raw(raw: u64) -> Hlc {
        Hlc(raw)
    }

    pub fn raw(self) -> u64 {
        self.0
    }

    pub fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    pub fn logical(self) -> u16 {
        (self.0 & LOGICAL_MAX) as u16
    }
}

impl std::fmt::Display for Hlc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.physical_ms(), self.logical())
    }
}

/// The wall clock, injected so tests and simulations control time.
pub trait Clock: Send {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The system clock moved by a fixed offset: a handset whose clock is set
/// wrong (tests reproduce one with it).
#[derive(Clone, Copy, Debug, Default)]
pub struct SkewedClock(pub i64);

impl Clock for SkewedClock {
    fn now_ms(&self) -> u64 {
        (SystemClock.now_ms() as i64).saturating_add(self.0).max(0) as u64
    }
}

/// A clock moved by hand (also backwards): tests and simulations.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ManualClock {
    pub fn at(ms: u64) -> ManualClock {
        ManualClock(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(ms)))
    }

    pub fn set(&self, ms: u64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The HLC state of one device: the last stamp it issued or observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HlcGenerator {
    last: Hlc,
}

impl HlcGenerator {
    pub fn resume(last: Hlc) -> HlcGenerator {
        HlcGenerator { last }
    }

    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A new stamp for a local event, strictly greater than any before.
    pub fn tick(&mut self, wall_ms: u64) -> Hlc {
        let next = if wall_ms > self.last.physical_ms() {
            Hlc::new(wall_ms, 0)
        } else if self.last.logical() as u64 == LOGICAL_MAX {
            // 65,536 events in one millisecond: borrow the next millisecond.
            Hlc::new(self.last.physical_ms() + 1, 0)
        } else {
            Hlc::new(self.last.physical_ms(), self.last.logical() + 1)
        };
        self.last = next;
        next
    }

    /// Takes a remote stamp into account so later local stamps sort after it.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Result<()> {
        if remote.physical_ms() > wall_ms.saturating_add(MAX_FORWARD_DRIFT_MS) {
            return Err(invalid(
                "hlc",
                format!(
                    "stamp {remote} is more than 24 h ahead of this device's clock ({wall_ms} ms)"
                ),
            ));
        }
        if remote > self.last {
            self.last = remote;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increases_when_wall_clock_jumps_back() {
        let mut g = HlcGenerator::default();
        let a = g.tick(10_000);
        let b = g.tick(5_000); // clock set back by 5 s
        let c = g.tick(5_001);
        assert!(a < b && b < c);
        assert_eq!(b.physical_ms(), 10_000);
        let d = g.tick(20_000);
        assert_eq!((d.physical_ms(), d.logical()), (20_000, 0));
    }

    #[test]
    fn observed_remote_orders_later_events_after_it() {
        let mut g = HlcGenerator::default();
        g.tick(1_000);
        g.observe(Hlc::new(50_000, 7), 1_000).unwrap();
        assert!(g.tick(1_001) > Hlc::new(50_000, 7));
    }

    #[test]
    fn refuses_stamps_a_day_ahead() {
        let mut g = HlcGenerator::default();
        let far = Hlc::new(1_000 + MAX_FORWARD_DRIFT_MS + 1, 0);
        assert!(g.observe(far, 1_000).is_err());
        assert_eq!(g.last(), Hlc::default());
    }

    #[test]
    fn logical_overflow_borrows_a_millisecond() {
        let mut g = HlcGenerator::resume(Hlc::new(7, u16::MAX));
        let n = g.tick(7);
        assert_eq!((n.physical_ms(), n.logical()), (8, 0));
    }
}
