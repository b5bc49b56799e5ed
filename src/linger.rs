//! Keeping a buffer while the connection is busy: one rule for the input buffer and the
//! output buffer.
//!
//! An event (the input buffer emptied, the output all written) within [`LINGER`] of the
//! previous one, or while the side's timer runs, means the connection is busy: the buffer is
//! kept, initialised, for reuse, and the timer is armed once. When the timer fires it is moved
//! on by [`LINGER`] if an event happened since it was armed; otherwise the buffer is given
//! back. Busy traffic costs no timer update per event, and the rule does not depend on event
//! times once the timer runs (the output side's times are stale: the core's clock moves only
//! with inputs and timers). A buffer is given back between one and two [`LINGER`]s after the
//! last event.

use core::time::Duration;

use crate::Instant;
use crate::timer::{Timer, TimerTable};

/// How long a buffer is kept for the next event after the previous one.
pub(crate) const LINGER: Duration = Duration::from_secs(1);
const LINGER_NANOS: u64 = LINGER.as_nanos() as u64;

/// One side's state in 8 bytes: the last event's instant, rounded down to an even
/// nanosecond (all ones for never), and in the lowest bit whether an event happened since the
/// timer was armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Linger(u64);

/// The lowest bit: an event happened since the timer was armed.
const SINCE_ARMED: u64 = 1;

/// No event yet (an event at the end of time reads the same).
const NEVER: u64 = !SINCE_ARMED;

impl Default for Linger {
    fn default() -> Self {
        Linger(NEVER)
    }
}

impl Linger {
    /// An event at `now` on the side `timer` measures. Returns whether the buffer is kept: the
    /// connection is busy and `keep` allows it. Otherwise the caller gives the buffer back.
    pub(crate) fn event(
        &mut self,
        now: Instant,
        keep: bool,
        timers: &mut TimerTable,
        timer: Timer,
    ) -> bool {
        let armed = timers.get(timer).is_some();
        let kept = keep && (armed || self.recent(now));
        let since_armed = match (kept, armed) {
            (true, true) => SINCE_ARMED,
            (true, false) => {
                timers.set(timer, now + LINGER);
                0
            }
            (false, _) => self.0 & SINCE_ARMED,
        };
        self.0 = (now.as_nanos() & !SINCE_ARMED) | since_armed;
        kept
    }

    /// Whether the last event was less than [`LINGER`] before `now`.
    fn recent(self, now: Instant) -> bool {
        let last = self.0 & !SINCE_ARMED;
        last != NEVER && now.as_nanos().saturating_sub(last) < LINGER_NANOS
    }

    /// `timer` fired at `now` (the table has stopped it). Returns whether the connection is
    /// still busy: an event happened since the timer was armed, so it runs for another
    /// [`LINGER`]. Otherwise the caller gives the buffer back.
    pub(crate) fn fired(&mut self, now: Instant, timers: &mut TimerTable, timer: Timer) -> bool {
        let busy = self.0 & SINCE_ARMED != 0;
        self.0 &= !SINCE_ARMED;
        if busy {
            timers.set(timer, now + LINGER);
        }
        busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timer = Timer::OutputBuffer;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// Fires the timer the way the connection does: when due, the table stops it first.
    fn fire(linger: &mut Linger, timers: &mut TimerTable, now: Instant) -> Option<bool> {
        let due = timers.take_expired(now, Timer::Inflate)?;
        assert_eq!(due, T);
        Some(linger.fired(now, timers, T))
    }

    #[test]
    fn fits_in_eight_bytes() {
        assert_eq!(core::mem::size_of::<Linger>(), 8);
    }

    #[test]
    fn a_lone_event_keeps_nothing() {
        let mut linger = Linger::default();
        let mut timers = TimerTable::default();
        assert!(!linger.event(at(0), true, &mut timers, T));
        assert_eq!(timers.get(T), None);
        // The next one more than a linger later: still quiet.
        assert!(!linger.event(at(1000), true, &mut timers, T));
        assert!(!linger.event(at(2500), true, &mut timers, T));
        assert_eq!(timers.get(T), None);
    }

    #[test]
    fn busy_arms_once_and_moves_on_while_events_come() {
        let mut linger = Linger::default();
        let mut timers = TimerTable::default();
        assert!(!linger.event(at(0), true, &mut timers, T));
        // Within the linger: busy, the timer armed a linger on.
        assert!(linger.event(at(999), true, &mut timers, T));
        assert_eq!(timers.get(T), Some(at(1999)));
        // More events: kept, the timer not re-armed.
        assert!(linger.event(at(1500), true, &mut timers, T));
        assert!(linger.event(at(1600), true, &mut timers, T));
        assert_eq!(timers.get(T), Some(at(1999)));
        // Not due yet.
        assert_eq!(fire(&mut linger, &mut timers, at(1998)), None);
        // Due, with events since it was armed: moved on from now.
        assert_eq!(fire(&mut linger, &mut timers, at(1999)), Some(true));
        assert_eq!(timers.get(T), Some(at(2999)));
        // No event in that linger: given back, the timer stopped.
        assert_eq!(fire(&mut linger, &mut timers, at(2999)), Some(false));
        assert_eq!(timers.get(T), None);
        // The next event, more than a linger after the last: quiet.
        assert!(!linger.event(at(2999), true, &mut timers, T));
        assert_eq!(timers.get(T), None);
    }

    #[test]
    fn a_stale_clock_stays_busy_while_events_come() {
        // Every event carries the time of the last firing: the flag, not the time, counts.
        let mut linger = Linger::default();
        let mut timers = TimerTable::default();
        assert!(!linger.event(at(0), true, &mut timers, T));
        assert!(linger.event(at(0), true, &mut timers, T));
        for second in 1..5u64 {
            assert_eq!(timers.get(T), Some(at(second * 1000)));
            assert!(linger.event(at((second - 1) * 1000), true, &mut timers, T));
            assert_eq!(
                fire(&mut linger, &mut timers, at(second * 1000)),
                Some(true)
            );
        }
        assert_eq!(fire(&mut linger, &mut timers, at(5000)), Some(false));
    }

    #[test]
    fn an_event_that_may_not_keep_arms_nothing_and_counts_for_nothing() {
        let mut linger = Linger::default();
        let mut timers = TimerTable::default();
        assert!(!linger.event(at(0), true, &mut timers, T));
        // Busy, but not allowed to keep: no timer; the time is still noted.
        assert!(!linger.event(at(10), false, &mut timers, T));
        assert_eq!(timers.get(T), None);
        assert!(linger.event(at(1009), true, &mut timers, T));
        assert_eq!(timers.get(T), Some(at(2009)));
        // While armed, a refused event does not move the timer on.
        assert!(!linger.event(at(1100), false, &mut timers, T));
        assert_eq!(fire(&mut linger, &mut timers, at(2009)), Some(false));
    }

    #[test]
    fn extreme_times_do_not_panic_or_stick() {
        let mut linger = Linger::default();
        let mut timers = TimerTable::default();
        // A clock that steps back reads as no time passed.
        assert!(!linger.event(at(5000), true, &mut timers, T));
        assert!(linger.event(at(4000), true, &mut timers, T));
        let mut linger = Linger::default();
        let mut timers = TimerTable::default();
        let end = Instant::MAX;
        assert!(!linger.event(end, true, &mut timers, T));
        // An event at the end of time reads as none.
        assert!(!linger.event(end, true, &mut timers, T));
        assert_eq!(timers.get(T), None);
    }
}
