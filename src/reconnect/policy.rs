//! The reconnect policy: after a connection attempt or an open connection ends, should the client
//! try again, and how long should it wait first?
//!
//! The policy is pure. It reads no clock (every call takes the `Instant` the caller observed) and
//! owns no generator (the call that needs randomness borrows one), so the same inputs and the same
//! seed always give the same schedule. A reconnecting session holds one [`ReconnectPolicy`] and
//! reports to it:
//!
//! ```
//! use rand_core::Rng;
//! use tether::Instant;
//! use tether::reconnect::{Decision, Disconnect, ReconnectPolicy};
//!
//! fn on_end(policy: &mut ReconnectPolicy, now: Instant, why: Disconnect, rng: &mut impl Rng) {
//!     match policy.disconnected(now, why, rng) {
//!         Decision::Retry { after, attempt } => { /* open a new transport at `now + after` */ }
//!         Decision::Stop => { /* a normal end: report it, do not reconnect */ }
//!         Decision::GiveUp { reason } => { /* report `reason` (it is an error) */ }
//!         _ => {}
//!     }
//! }
//! ```
//!
//! and calls [`ReconnectPolicy::connected`] once an attempt's handshake succeeds.
//!
//! The schedule (RFC 6455 §7.2.3): the first reconnect after an open connection is lost is
//! delayed by a uniformly random time, so that clients which lost the same server at the same
//! moment do not all return at the same moment; later attempts back off exponentially, with the
//! [`Jitter`] strategy spreading them out (see AWS's "Exponential Backoff and Jitter" analysis).

use core::time::Duration;

use rand_core::Rng;

use super::backoff::{Jitter, nanos, uniform};
use super::classify::{Action, ReconnectConfig};
use super::disconnect::{Disconnect, GiveUpReason};
use crate::Instant;

/// The policy's answer to "should we retry, and when?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Decision {
    /// Open a new transport `after` from the `at` given to [`ReconnectPolicy::disconnected`].
    Retry {
        /// How long to wait.
        after: Duration,
        /// Which retry this is since the last stable connection, from 1.
        attempt: u32,
    },
    /// Do not reconnect: the connection ended normally (a 1000 close, the user's own close).
    Stop,
    /// Do not reconnect: retrying cannot help, or the attempts ran out.
    GiveUp {
        /// Why, with the status or close code that decided it.
        reason: GiveUpReason,
    },
}

/// The reconnect state of one client: the rules and where it is in its schedule.
///
/// Report every end with [`ReconnectPolicy::disconnected`] and every successful handshake with
/// [`ReconnectPolicy::connected`]. Retries are counted from the last stable connection (one that
/// stayed open for [`ReconnectConfig::stable_period`]). After [`Decision::Stop`] or
/// [`Decision::GiveUp`] the schedule starts afresh, so the policy can serve a later session.
#[derive(Clone, Debug)]
pub struct ReconnectPolicy {
    config: ReconnectConfig,
    /// Retries decided since the schedule last started.
    attempt: u32,
    /// The base of the current schedule: `initial`, or `first_delay_max` after a lost connection.
    base: Duration,
    /// The backoff part of the last delay, for [`Jitter::Decorrelated`].
    previous: Duration,
    /// When the current connection opened, if one is open.
    connected_at: Option<Instant>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy::new(ReconnectConfig::default())
    }
}

impl ReconnectPolicy {
    /// A policy at the start of its schedule.
    #[must_use]
    pub fn new(config: ReconnectConfig) -> Self {
        let base = config.backoff.initial;
        ReconnectPolicy {
            config,
            attempt: 0,
            base,
            previous: base,
            connected_at: None,
        }
    }

    /// The rules.
    #[must_use]
    pub fn config(&self) -> &ReconnectConfig {
        &self.config
    }

    /// The rules, to change between decisions. The schedule in progress keeps its count.
    pub fn config_mut(&mut self) -> &mut ReconnectConfig {
        &mut self.config
    }

    /// How many retries have been decided since the schedule last started.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Starts the schedule afresh, as if no attempt had failed.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.base = self.config.backoff.initial;
        self.previous = self.base;
        self.connected_at = None;
    }

    /// A connection opened at `at` (its opening handshake completed).
    pub fn connected(&mut self, at: Instant) {
        self.connected_at = Some(at);
    }

    /// A connection attempt or an open connection ended at `at`, the way `why` says: decides
    /// whether and when to try again, by the configured table ([`ReconnectConfig::action_for`]).
    pub fn disconnected<R: Rng + ?Sized>(
        &mut self,
        at: Instant,
        why: Disconnect,
        rng: &mut R,
    ) -> Decision {
        let action = self.config.action_for(&why);
        self.disconnected_with(at, why, action, rng)
    }

    /// Like [`ReconnectPolicy::disconnected`], with the caller's own classification of this end
    /// (for rules the table cannot express, such as ones that read the close reason).
    pub fn disconnected_with<R: Rng + ?Sized>(
        &mut self,
        at: Instant,
        why: Disconnect,
        action: Action,
        rng: &mut R,
    ) -> Decision {
        let stable = self.config.stable_period;
        if self
            .connected_at
            .take()
            .is_some_and(|opened| at - opened >= stable)
        {
            self.reset();
        }
        let floor = match action {
            Action::Retry => Duration::ZERO,
            Action::RetryAfterAtLeast(floor) => floor,
            Action::Stop => {
                self.reset();
                return Decision::Stop;
            }
            Action::GiveUp => {
                self.reset();
                return Decision::GiveUp {
                    reason: GiveUpReason::NotRetryable(why),
                };
            }
        };
        if self
            .config
            .max_attempts
            .is_some_and(|max| self.attempt >= max)
        {
            let attempts = self.attempt;
            self.reset();
            return Decision::GiveUp {
                reason: GiveUpReason::AttemptsExhausted {
                    attempts,
                    last: why,
                },
            };
        }
        let floor = floor.max(why.retry_after().unwrap_or(Duration::ZERO));
        let backoff = self.next_backoff(why.was_open(), rng);
        Decision::Retry {
            after: floor.saturating_add(backoff),
            attempt: self.attempt,
        }
    }

    /// Counts one more retry and draws its backoff delay.
    fn next_backoff<R: Rng + ?Sized>(&mut self, was_open: bool, rng: &mut R) -> Duration {
        let backoff = &self.config.backoff;
        self.attempt = self.attempt.saturating_add(1);
        // RFC 6455 §7.2.3: a schedule that starts with the loss of an open connection starts
        // with a uniformly random delay and backs off from its range.
        let spread_first = self.attempt == 1 && was_open && backoff.first_delay_max.is_some();
        if self.attempt == 1 {
            self.base = match backoff.first_delay_max {
                Some(first) if was_open => first,
                _ => backoff.initial,
            };
            self.previous = self.base;
        }
        let ceiling = backoff.ceiling(self.base, self.attempt);
        let jitter = if spread_first {
            Jitter::Full
        } else {
            backoff.jitter
        };
        let delay = match jitter {
            Jitter::None => ceiling,
            Jitter::Full => uniform(rng, Duration::ZERO, ceiling),
            Jitter::Equal => {
                let half = ceiling / 2;
                uniform(rng, ceiling - half, ceiling)
            }
            Jitter::Decorrelated => {
                let low = self.base.min(backoff.max);
                let high = Duration::from_nanos(nanos(self.previous).saturating_mul(3))
                    .min(backoff.max)
                    .max(low);
                uniform(rng, low, high)
            }
        };
        self.previous = delay;
        delay
    }
}
