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

use alloc::collections::BTreeMap;
use core::fmt;
use core::time::Duration;

use rand_core::Rng;

use crate::Instant;
use crate::close::CloseCode;

/// The floor on the delay after a close with 1013 (Try Again Later) in the default table: the
/// server said it is overloaded, so coming back sooner than this only adds to its load.
pub const TRY_AGAIN_LATER_DELAY: Duration = Duration::from_secs(5);

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
    fn ceiling(&self, base: Duration, retry: u32) -> Duration {
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

/// What to do about one way a connection can end. The entries of the classification table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Retry after the backoff delay (or, for a handshake rejection carrying `Retry-After`, no
    /// sooner than it says).
    Retry,
    /// Retry, but wait at least this long: the delay is this floor plus the backoff delay, so
    /// clients given the same floor still spread out after it.
    RetryAfterAtLeast(Duration),
    /// Do not retry: the connection ended as intended.
    Stop,
    /// Do not retry: the same attempt would fail the same way. The decision carries the cause.
    GiveUp,
}

/// Which side started a closing handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Initiator {
    /// This endpoint sent the first Close frame.
    Local,
    /// The peer sent the first Close frame.
    Peer,
}

/// How a connection attempt, or an open connection, ended: the input the policy classifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Disconnect {
    /// The transport could not be opened (refused, unreachable, name resolution, TLS setup).
    ConnectFailed,
    /// The transport did not open in time.
    ConnectTimeout,
    /// The transport opened but the opening handshake did not complete in time.
    HandshakeTimeout,
    /// The server answered the opening handshake with something other than 101 (RFC 6455 §4.1).
    HandshakeRejected {
        /// The HTTP status code.
        status: u16,
        /// The response's `Retry-After` delay, if it had one (see [`parse_retry_after`]).
        retry_after: Option<Duration>,
    },
    /// An open connection closed with a Close frame (RFC 6455 §7.1.5). `code` is 1005 when the
    /// frame carried none.
    Closed {
        /// The close code received, or sent when this side closed first.
        code: CloseCode,
        /// Which side closed first.
        initiator: Initiator,
    },
    /// The user asked to close. Never retried, whatever the code.
    UserClosed,
    /// This endpoint failed the connection (RFC 6455 §7.1.7) with `code`: the peer broke the
    /// protocol (1002), sent invalid data (1007), exceeded a limit (1009), and so on.
    ProtocolFailure {
        /// The code this endpoint sent.
        code: CloseCode,
    },
    /// The transport ended without a closing handshake: close code 1006 (RFC 6455 §7.1.5).
    TransportLost,
}

impl Disconnect {
    /// The close code this end reports, if the connection had opened: 1006 for
    /// [`Disconnect::TransportLost`].
    #[must_use]
    pub fn close_code(&self) -> Option<CloseCode> {
        match *self {
            Disconnect::Closed { code, .. } | Disconnect::ProtocolFailure { code } => Some(code),
            Disconnect::TransportLost => Some(CloseCode::ABNORMAL),
            _ => None,
        }
    }

    /// The HTTP status of a rejected handshake.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match *self {
            Disconnect::HandshakeRejected { status, .. } => Some(status),
            _ => None,
        }
    }

    /// Whether this ends a connection that had opened (as opposed to an attempt that never did).
    #[must_use]
    pub fn was_open(&self) -> bool {
        matches!(
            self,
            Disconnect::Closed { .. }
                | Disconnect::UserClosed
                | Disconnect::ProtocolFailure { .. }
                | Disconnect::TransportLost
        )
    }

    fn retry_after(&self) -> Option<Duration> {
        match *self {
            Disconnect::HandshakeRejected { retry_after, .. } => retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Disconnect::ConnectFailed => f.write_str("could not connect"),
            Disconnect::ConnectTimeout => f.write_str("connecting timed out"),
            Disconnect::HandshakeTimeout => f.write_str("the opening handshake timed out"),
            Disconnect::HandshakeRejected { status, .. } => {
                write!(f, "the server rejected the handshake with HTTP {status}")
            }
            Disconnect::Closed {
                code,
                initiator: Initiator::Peer,
            } => write!(f, "the peer closed the connection with code {code}"),
            Disconnect::Closed {
                code,
                initiator: Initiator::Local,
            } => write!(f, "closed the connection with code {code}"),
            Disconnect::UserClosed => f.write_str("closed at the user's request"),
            Disconnect::ProtocolFailure { code } => {
                write!(f, "failed the connection with code {code}")
            }
            Disconnect::TransportLost => {
                f.write_str("the connection was lost without a closing handshake (1006)")
            }
        }
    }
}

/// Why the policy will not retry. Carries the end that decided it, so a user can see the
/// HTTP status (say 401) or the close code (say 1008).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// The classification table says this end would only repeat itself.
    #[error("not reconnecting: {0}")]
    NotRetryable(Disconnect),
    /// [`ReconnectConfig::max_attempts`] retries in a row failed to give a stable connection.
    #[error("gave up after {attempts} reconnect attempts; the last: {last}")]
    AttemptsExhausted {
        /// How many retries were made.
        attempts: u32,
        /// How the last one ended.
        last: Disconnect,
    },
}

impl GiveUpReason {
    /// The end that made the policy give up.
    #[must_use]
    pub fn disconnect(&self) -> &Disconnect {
        match self {
            GiveUpReason::NotRetryable(d) | GiveUpReason::AttemptsExhausted { last: d, .. } => d,
        }
    }

    /// The HTTP status, when a rejected handshake made the policy give up.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.disconnect().status()
    }

    /// The close code, when a closed connection made the policy give up.
    #[must_use]
    pub fn close_code(&self) -> Option<CloseCode> {
        self.disconnect().close_code()
    }
}

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

/// The rules of a [`ReconnectPolicy`]: the delay schedule, the limits, and which ends are worth
/// retrying.
///
/// `Default` gives [`Backoff::default`], unlimited attempts, a 10 s stable period, application
/// close codes that give up, and no overrides.
///
/// # The default classification
///
/// | How it ended | Action |
/// |---|---|
/// | connect failed or timed out, handshake timed out | retry |
/// | closed by the user ([`Disconnect::UserClosed`]) | stop |
/// | 1000 normal closure, by either side | stop |
/// | 1001, 1006 (and [`Disconnect::TransportLost`]), 1011, 1012, 1014 | retry |
/// | 1005 (a Close without a code: the peer did not say its purpose was fulfilled) | retry |
/// | 1013 try again later | retry after at least [`TRY_AGAIN_LATER_DELAY`] |
/// | 1002, 1003, 1007, 1008, 1009, 1010, 1015 (protocol, policy or TLS failure) | give up |
/// | 3000 Unauthorized, 3003 Forbidden (registered codes) | give up |
/// | 3008 Timeout (registered code) | retry |
/// | other 3000-4999 (meaning known only to the application) | [`ReconnectConfig::application_codes`], default give up |
/// | any other code (not valid on the wire: only a caller can report it) | retry |
/// | handshake rejected with 408, 425, 429 or 5xx other than 501 and 505 | retry, no sooner than `Retry-After` |
/// | handshake rejected with any other status (401, 403, 404, 426, 501, 505, 3xx...) | give up |
///
/// The same close-code row applies whether the code was received, sent by this side, or sent
/// because this side failed the connection. Overrides set with
/// [`ReconnectConfig::set_close_code_action`] and [`ReconnectConfig::set_status_action`] take
/// precedence over every row.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReconnectConfig {
    /// The delay schedule.
    pub backoff: Backoff,
    /// The most retries in a row, without a stable connection in between, before giving up.
    /// `None` (the default) retries for as long as the ends are retryable.
    pub max_attempts: Option<u32>,
    /// How long a connection must stay open for its loss to start a fresh schedule (attempt
    /// count back to zero, and the random first delay again). A connection that drops sooner
    /// continues the schedule, so a server that accepts and then drops at once is still backed
    /// off from. Default 10 s.
    pub stable_period: Duration,
    /// The action for close codes 3000-4999 that have no registered meaning this crate knows
    /// (RFC 6455 §7.4.2: their meaning belongs to the application). Default [`Action::GiveUp`]:
    /// applications mostly use them to say why they refused or evicted a client.
    pub application_codes: Action,
    close_codes: BTreeMap<u16, Action>,
    statuses: BTreeMap<u16, Action>,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            backoff: Backoff::default(),
            max_attempts: None,
            stable_period: Duration::from_secs(10),
            application_codes: Action::GiveUp,
            close_codes: BTreeMap::new(),
            statuses: BTreeMap::new(),
        }
    }
}

impl ReconnectConfig {
    /// Overrides the action for one close code, whoever sent it.
    pub fn set_close_code_action(&mut self, code: CloseCode, action: Action) -> &mut Self {
        self.close_codes.insert(code.0, action);
        self
    }

    /// Removes an override set with [`ReconnectConfig::set_close_code_action`].
    pub fn clear_close_code_action(&mut self, code: CloseCode) -> &mut Self {
        self.close_codes.remove(&code.0);
        self
    }

    /// Overrides the action for one HTTP status of a rejected handshake.
    pub fn set_status_action(&mut self, status: u16, action: Action) -> &mut Self {
        self.statuses.insert(status, action);
        self
    }

    /// Removes an override set with [`ReconnectConfig::set_status_action`].
    pub fn clear_status_action(&mut self, status: u16) -> &mut Self {
        self.statuses.remove(&status);
        self
    }

    /// The action for a close code: its override, or the default table.
    #[must_use]
    pub fn close_code_action(&self, code: CloseCode) -> Action {
        if let Some(action) = self.close_codes.get(&code.0) {
            return *action;
        }
        match code.0 {
            1000 => Action::Stop,
            1001 | 1005 | 1006 | 1011 | 1012 | 1014 | 3008 => Action::Retry,
            1013 => Action::RetryAfterAtLeast(TRY_AGAIN_LATER_DELAY),
            1002 | 1003 | 1007 | 1008 | 1009 | 1010 | 1015 | 3000 | 3003 => Action::GiveUp,
            3000..=4999 => self.application_codes,
            _ => Action::Retry,
        }
    }

    /// The action for the HTTP status of a rejected handshake: its override, or the default
    /// table. 408 (timeout), 425 (too early), 429 (too many requests) and 5xx are conditions
    /// of the moment; 501 and 505 say the server cannot serve this request at all, and the
    /// other statuses (authentication, a wrong path, a redirect) would come back the same.
    #[must_use]
    pub fn status_action(&self, status: u16) -> Action {
        if let Some(action) = self.statuses.get(&status) {
            return *action;
        }
        match status {
            501 | 505 => Action::GiveUp,
            408 | 425 | 429 | 500..=599 => Action::Retry,
            _ => Action::GiveUp,
        }
    }

    /// The action for one end of a connection or attempt (see the table above).
    #[must_use]
    pub fn action_for(&self, why: &Disconnect) -> Action {
        match *why {
            Disconnect::ConnectFailed
            | Disconnect::ConnectTimeout
            | Disconnect::HandshakeTimeout => Action::Retry,
            Disconnect::HandshakeRejected { status, .. } => self.status_action(status),
            Disconnect::Closed { code, .. } | Disconnect::ProtocolFailure { code } => {
                self.close_code_action(code)
            }
            Disconnect::TransportLost => self.close_code_action(CloseCode::ABNORMAL),
            Disconnect::UserClosed => Action::Stop,
        }
    }
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

/// Parses a `Retry-After` header value in its delay-seconds form (RFC 9110 §10.2.3): ASCII digits,
/// optionally surrounded by spaces or tabs. A number too large for the clock saturates. The
/// HTTP-date form needs a wall clock, which the core does not have: it gives `None`, as does
/// anything malformed.
#[must_use]
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let digits = value.trim_matches([' ', '\t']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = digits.bytes().fold(0u64, |secs, b| {
        secs.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    Some(Duration::from_secs(secs))
}

/// A duration in nanoseconds, saturating at about 584 years.
fn nanos(d: Duration) -> u64 {
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
fn uniform<R: Rng + ?Sized>(rng: &mut R, low: Duration, high: Duration) -> Duration {
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

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" \t0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in [
            "",
            " ",
            "-1",
            "+5",
            "1.5",
            "12s",
            "1 2",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reasons_read_well() {
        use alloc::string::ToString;
        let rejected = GiveUpReason::NotRetryable(Disconnect::HandshakeRejected {
            status: 401,
            retry_after: None,
        });
        assert_eq!(
            rejected.to_string(),
            "not reconnecting: the server rejected the handshake with HTTP 401"
        );
        let exhausted = GiveUpReason::AttemptsExhausted {
            attempts: 3,
            last: Disconnect::ConnectFailed,
        };
        assert_eq!(
            exhausted.to_string(),
            "gave up after 3 reconnect attempts; the last: could not connect"
        );
    }
}
