//! The delay schedule: exponential backoff with jitter, and the unbiased sampler it draws from.

use core::time::Duration;

use rand_core::Rng;

/// How randomness spreads out the delays of clients that failed together.
///
/// Below, `ceiling(n)` is `min(max, base × multiplier^(n-1))` for retry `n` (counted from 1)
/// and `base` is [`Backoff::initial`] (or [`Backoff::first_delay_max`] after an open connection
/// was lost, see there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// Exactly `ceiling(n)`. Clients that failed together retry together, every time.
    None,
    /// Uniform in `[0, ceiling(n)]`. The default: it spreads retries the most and, in AWS's
    /// analysis, costs a recovering server the least total work.
    #[default]
    Full,
    /// Half of `ceiling(n)` plus a uniform draw over the other half: `[ceiling(n)/2, ceiling(n)]`.
    /// Never retries almost at once, at the price of less spread.
    Equal,
    /// Uniform in `[base, 3 × the previous delay]`, capped at `max`. It grows from the previous
    /// delay rather than from the retry count, so [`Backoff::multiplier`] is not used.
    Decorrelated,
}

/// The shape of the delays between attempts.
///
/// `Default` gives: `initial` 500 ms, `multiplier` 2.0, `max` 30 s, [`Jitter::Full`] and
/// `first_delay_max` 5 s.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// The base of the exponential schedule when attempts start failing without an open
    /// connection having been lost (a cold start that cannot connect). Default 500 ms.
    pub initial: Duration,
    /// The growth factor per retry. Values below 1.0, and NaN, count as 1.0 (a constant delay).
    /// Default 2.0 (binary exponential backoff).
    pub multiplier: f64,
    /// The cap on the backoff part of a delay. A floor demanded by the server (a `Retry-After`
    /// header, a 1013 close) comes on top and may exceed it. Default 30 s.
    pub max: Duration,
    /// How retries are randomised. Default [`Jitter::Full`].
    pub jitter: Jitter,
    /// RFC 6455 §7.2.3: the first reconnect after an open connection is lost waits a uniformly
    /// random time in `[0, first_delay_max]` (capped at `max`), whatever [`Backoff::jitter`] says,
    /// and the retries after it back off from `first_delay_max` as their base, so that each
    /// stage waits longer than the last. `None` treats that first reconnect like any other
    /// retry, from `initial`: with [`Jitter::None`] a fleet that lost one server then returns as
    /// one. Default 5 s, the RFC's suggestion.
    pub first_delay_max: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            multiplier: 2.0,
            max: Duration::from_secs(30),
            jitter: Jitter::Full,
            first_delay_max: Some(Duration::from_secs(5)),
        }
    }
}

impl Backoff {
    /// `min(max, base × multiplier^(retry-1))`, exact when the product is a whole number of
    /// nanoseconds (as it is for the defaults).
    pub(super) fn ceiling(&self, base: Duration, retry: u32) -> Duration {
        let cap = nanos(self.max);
        let base = nanos(base);
        if base == 0 {
            return Duration::ZERO;
        }
        let multiplier = if self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let scaled = base as f64 * power(multiplier, retry.saturating_sub(1));
        if scaled < cap as f64 {
            Duration::from_nanos(scaled as u64)
        } else {
            Duration::from_nanos(cap)
        }
    }
}

/// A duration in nanoseconds, saturating at about 584 years.
pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `x^n` by repeated squaring: `f64::powi` needs `std`.
fn power(mut x: f64, mut n: u32) -> f64 {
    let mut result = 1.0;
    while n > 0 {
        if n & 1 == 1 {
            result *= x;
        }
        x *= x;
        n >>= 1;
    }
    result
}

/// A uniformly random duration in `[low, high]`, to the nanosecond. `low` must not exceed `high`.
pub(super) fn uniform<R: Rng + ?Sized>(rng: &mut R, low: Duration, high: Duration) -> Duration {
    let low = nanos(low);
    Duration::from_nanos(low + uniform_up_to(rng, nanos(high) - low))
}

/// A uniformly random integer in `[0, max]`, without modulo bias: the high half of a 128-bit
/// product picks the value, and the rare draws whose low half falls in the short final interval
/// are drawn again.
fn uniform_up_to<R: Rng + ?Sized>(rng: &mut R, max: u64) -> u64 {
    let Some(span) = max.checked_add(1) else {
        return rng.next_u64();
    };
    // 2^64 mod span: the number of low-half values that would over-represent some results.
    let reject_below = span.wrapping_neg() % span;
    loop {
        let product = u128::from(rng.next_u64()) * u128::from(span);
        if (product as u64) >= reject_below {
            return (product >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generator that replays fixed words, to drive the sampler into its corners.
    struct Script(&'static [u64], usize);

    impl rand_core::TryRng for Script {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let word = self.0[self.1];
            self.1 += 1;
            Ok(word)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for b in dst {
                *b = self.try_next_u64()? as u8;
            }
            Ok(())
        }
    }

    #[test]
    fn sampler_reaches_both_ends() {
        // span 10: a word of 0 has a low half of 0, inside the rejected 2^64 mod 10 = 6.
        assert_eq!(uniform_up_to(&mut Script(&[0, 1], 0), 9), 0);
        assert_eq!(uniform_up_to(&mut Script(&[u64::MAX], 0), 9), 9);
        assert_eq!(uniform_up_to(&mut Script(&[12345], 0), 0), 0);
        assert_eq!(uniform_up_to(&mut Script(&[77], 0), u64::MAX), 77);
    }

    #[test]
    fn sampler_rejects_the_biased_remainder() {
        // span 3: 2^64 mod 3 = 1, so a draw whose low half is 0 is drawn again.
        let mut rng = Script(&[0, u64::MAX], 0);
        assert_eq!(uniform_up_to(&mut rng, 2), 2);
        assert_eq!(rng.1, 2);
    }

    #[test]
    fn sampler_is_even_over_a_small_span() {
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[uniform_up_to(&mut rng, 5) as usize] += 1;
        }
        // Each count is Binomial(60000, 1/6): mean 10000, sd ~91; 6 sd either side.
        for c in counts {
            assert!((9_450..=10_550).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn power_by_squaring() {
        assert_eq!(power(2.0, 0), 1.0);
        assert_eq!(power(2.0, 10), 1024.0);
        assert_eq!(power(1.5, 3), 3.375);
        assert!(power(10.0, 400).is_infinite());
    }

    #[test]
    fn ceiling_saturates_at_the_cap() {
        let b = Backoff::default();
        let base = b.initial;
        assert_eq!(b.ceiling(base, 1), Duration::from_millis(500));
        assert_eq!(b.ceiling(base, 7), Duration::from_secs(30));
        assert_eq!(b.ceiling(base, u32::MAX), Duration::from_secs(30));
        let flat = Backoff {
            multiplier: f64::NAN,
            ..Backoff::default()
        };
        assert_eq!(flat.ceiling(base, 50), base);
        let huge = Backoff {
            multiplier: f64::INFINITY,
            ..Backoff::default()
        };
        assert_eq!(huge.ceiling(Duration::ZERO, 9), Duration::ZERO);
        assert_eq!(huge.ceiling(base, 2), Duration::from_secs(30));
    }
}
