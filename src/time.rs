//! Time as a value: the core never reads a clock.
//!
//! [`Instant`] is a monotonic timestamp measured from an origin the caller chooses (process start, boot,
//! a simulation's zero). A `no_std` runtime builds one from its own tick counter with
//! [`Instant::from_nanos`]; under the `std` feature it converts from [`std::time::Instant`].
//! All arithmetic saturates, so a clock that steps backwards never panics: the core treats a
//! timestamp earlier than one it has already seen as "no time has passed".

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point on a monotonic clock, with nanosecond resolution, counted from a caller-chosen origin.
///
/// The range is about 584 years from the origin; arithmetic past either end saturates.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant; adding to it saturates here.
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the origin.
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// This instant, or a nanosecond before the end of time if it is [`Instant::MAX`]: for a
    /// field where `MAX` stands for "none" (a sentinel costs no `Option` word), so that an
    /// event at the very end of time is still recorded.
    pub(crate) const fn short_of_max(self) -> Instant {
        if self.0 == u64::MAX {
            Instant(u64::MAX - 1)
        } else {
            self
        }
    }

    /// An instant `millis` milliseconds after the origin.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the origin.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1_000_000_000))
    }

    /// An instant `d` after the origin (saturating).
    #[must_use]
    pub const fn from_duration(d: Duration) -> Self {
        let n = d.as_nanos();
        Instant(if n > u64::MAX as u128 {
            u64::MAX
        } else {
            n as u64
        })
    }

    /// Nanoseconds since the origin.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time since the origin.
    #[must_use]
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self - earlier`, or zero when `earlier` is later than `self` (a clock that stepped back).
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    #[must_use]
    pub const fn saturating_add(self, d: Duration) -> Instant {
        let n = d.as_nanos();
        let n = if n > u64::MAX as u128 {
            u64::MAX
        } else {
            n as u64
        };
        Instant(self.0.saturating_add(n))
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    #[must_use]
    pub const fn saturating_sub(self, d: Duration) -> Instant {
        let n = d.as_nanos();
        let n = if n > u64::MAX as u128 {
            u64::MAX
        } else {
            n as u64
        };
        Instant(self.0.saturating_sub(n))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: never panics, zero when `rhs` is later.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        self.saturating_sub(d)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", self.as_duration())
    }
}

#[cfg(feature = "std")]
mod std_conv {
    use super::Instant;
    use std::sync::OnceLock;
    use std::time::Duration;

    /// The `std` instant that maps to `Instant::ZERO + ANCHOR_OFFSET`: the first one ever converted.
    static ANCHOR: OnceLock<std::time::Instant> = OnceLock::new();
    /// Room below the anchor, so instants a little older than the first converted one still map
    /// to distinct values (about 11.5 days).
    const ANCHOR_OFFSET: Duration = Duration::from_secs(1 << 20);

    impl From<std::time::Instant> for Instant {
        /// Maps a `std` instant onto this clock. The first instant converted in the process fixes
        /// the origin (no clock is read here); conversions are monotonic and consistent across
        /// threads, and an instant more than ~11 days older than that first one saturates to
        /// [`Instant::ZERO`].
        fn from(i: std::time::Instant) -> Self {
            let anchor = *ANCHOR.get_or_init(|| i);
            let base = Instant::from_duration(ANCHOR_OFFSET);
            match i.checked_duration_since(anchor) {
                Some(after) => base.saturating_add(after),
                None => base.saturating_sub(anchor.duration_since(i)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_both_ways() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(
            Instant::from_secs(1) - Instant::from_secs(2),
            Duration::ZERO
        );
        assert_eq!(
            Instant::from_secs(2) - Instant::from_secs(1),
            Duration::from_secs(1)
        );
    }
}
