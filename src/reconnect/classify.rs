//! The classification table: which ends are worth retrying, and the rules around it.

use alloc::collections::BTreeMap;
use core::time::Duration;

use super::backoff::Backoff;
use super::disconnect::Disconnect;
use crate::close::CloseCode;

/// The floor on the delay after a close with 1013 (Try Again Later) in the default table: the
/// server said it is overloaded, so coming back sooner than this only adds to its load.
pub const TRY_AGAIN_LATER_DELAY: Duration = Duration::from_secs(5);

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

/// The rules of a [`ReconnectPolicy`](super::ReconnectPolicy): the delay schedule, the limits, and
/// which ends are worth retrying.
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
/// | an invalid handshake response ([`Disconnect::InvalidResponse`]) | give up |
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
            Disconnect::InvalidResponse => Action::GiveUp,
        }
    }
}
