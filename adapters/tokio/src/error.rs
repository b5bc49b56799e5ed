//! The adapter's error type: transport failures, handshake outcomes and abnormal ends.

use std::io;

use tether::handshake::{HandshakeError, UrlError};
use tether::{Closed, SendErrorKind};

/// Why an operation of this adapter failed. A normal close is not an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (connect, TLS, read or write), or an argument was invalid
    /// (`InvalidInput`, e.g. a close code that may not be sent).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The URL is not a valid `ws://` or `wss://` URL.
    #[error("invalid URL: {0}")]
    Url(#[from] UrlError),
    /// Client side: the server's answer was not a valid upgrade (e.g. a 401 or a 403: see
    /// [`HandshakeError::http_status`]).
    #[error("opening handshake failed: {0}")]
    Handshake(HandshakeError),
    /// The opening handshake did not complete within `Config::handshake_timeout`.
    #[error("the opening handshake timed out")]
    HandshakeTimeout,
    /// The TCP connection was not established within `ClientConfig::connect_timeout`.
    #[error("connecting timed out")]
    ConnectTimeout,
    /// Server side: the opening request was refused with this HTTP status (by the policy, the
    /// decision function, or because it was not a valid WebSocket request).
    #[error("opening request rejected with {status}")]
    Rejected {
        /// The HTTP status that was sent.
        status: u16,
    },
    /// Local misuse: a send the core refused (not open yet, a fragmented message in progress,
    /// a control payload over 125 bytes, ...).
    #[error("send refused: {0}")]
    Send(SendErrorKind),
    /// The connection ended abnormally (1006, a heartbeat or idle timeout, a protocol error):
    /// the terminal close information.
    #[error("connection closed abnormally: {} {}", .0.code, .0.reason)]
    Closed(Closed),
}

impl Error {
    /// The error for a connection whose terminal event arrived before it opened.
    pub(crate) fn from_handshake_end(closed: Closed) -> Error {
        match closed.cause {
            tether::CloseCause::HandshakeRejected { status } => Error::Rejected { status },
            tether::CloseCause::HandshakeTimeout => Error::HandshakeTimeout,
            tether::CloseCause::HandshakeFailed(err) => Error::Handshake(err),
            _ => Error::Closed(closed),
        }
    }
}
