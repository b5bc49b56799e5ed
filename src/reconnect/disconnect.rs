//! How a connection attempt or an open connection ended, and why the policy gives up.

use core::fmt;
use core::time::Duration;

use super::retry_after::parse_retry_after;
use crate::close::CloseCode;
use crate::event::{CloseCause, Closed, Initiator};
use crate::handshake::HandshakeError;

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
    /// A redirect (3xx) counts here too: following it is the caller's choice.
    HandshakeRejected {
        /// The HTTP status code.
        status: u16,
        /// The response's `Retry-After` delay, if it had one (see
        /// [`parse_retry_after`](super::parse_retry_after)).
        retry_after: Option<Duration>,
    },
    /// The server's answer was neither a valid upgrade nor a refusal (RFC 6455 §4.1): a wrong
    /// `Sec-WebSocket-Accept`, an unoffered subprotocol or extension, malformed HTTP, a head over
    /// the limits. The same request would get the same answer.
    InvalidResponse,
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
    /// How a connection's terminal event reads as an end for the policy:
    ///
    /// | [`CloseCause`] | [`Disconnect`] |
    /// |---|---|
    /// | `Normal` (a completed close handshake), `IdleTimeout` (1001 sent here) | `Closed` with the code and initiator |
    /// | `Protocol` (this end failed the connection) | `ProtocolFailure` with the code sent |
    /// | `TransportLost`, `CloseTimeout` (1006) | `TransportLost` |
    /// | `HeartbeatTimeout` | `TransportLost`: the peer stopped answering Pings and is presumed gone, as if the transport had died (the default table retries) |
    /// | `HandshakeTimeout` | `HandshakeTimeout` |
    /// | `HandshakeFailed`: a refusal (`Rejected`) or a redirect | `HandshakeRejected` with the status, and for a refusal the delay of its `Retry-After` header (delay-seconds form) |
    /// | `HandshakeFailed`: the transport ended during the handshake | `TransportLost` |
    /// | `HandshakeFailed`: the handshake timed out | `HandshakeTimeout` |
    /// | `HandshakeFailed`: any other invalid response | `InvalidResponse` |
    /// | `Aborted` (the local user's `abort`) | `UserClosed` |
    /// | `HandshakeRejected` (a server's own refusal) | `HandshakeRejected` with the status |
    #[must_use]
    pub fn from_closed(closed: &Closed) -> Disconnect {
        match &closed.cause {
            CloseCause::Normal | CloseCause::IdleTimeout => Disconnect::Closed {
                code: closed.code,
                initiator: closed.initiator,
            },
            CloseCause::Protocol(_) => Disconnect::ProtocolFailure { code: closed.code },
            CloseCause::TransportLost | CloseCause::CloseTimeout | CloseCause::HeartbeatTimeout => {
                Disconnect::TransportLost
            }
            CloseCause::HandshakeTimeout => Disconnect::HandshakeTimeout,
            CloseCause::Aborted => Disconnect::UserClosed,
            CloseCause::HandshakeRejected { status } => Disconnect::HandshakeRejected {
                status: *status,
                retry_after: None,
            },
            CloseCause::HandshakeFailed(err) => match err {
                HandshakeError::Rejected {
                    status, headers, ..
                } => Disconnect::HandshakeRejected {
                    status: *status,
                    retry_after: headers.get("Retry-After").and_then(parse_retry_after),
                },
                HandshakeError::Redirect { status, .. } => Disconnect::HandshakeRejected {
                    status: *status,
                    retry_after: None,
                },
                HandshakeError::Timeout => Disconnect::HandshakeTimeout,
                HandshakeError::UnexpectedEof => Disconnect::TransportLost,
                _ => Disconnect::InvalidResponse,
            },
        }
    }

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

    pub(super) fn retry_after(&self) -> Option<Duration> {
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
            Disconnect::InvalidResponse => {
                f.write_str("the server's handshake response was not a valid upgrade")
            }
            Disconnect::Closed {
                code,
                initiator: Initiator::Remote,
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
    /// [`ReconnectConfig::max_attempts`](super::ReconnectConfig::max_attempts) retries in a row
    /// failed to give a stable connection.
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

#[cfg(test)]
mod tests {
    use super::*;

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
