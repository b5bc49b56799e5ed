//! The adapter's error type: the core's typed errors plus what only a runtime can fail at.

use tether::handshake::{HandshakeError, UrlError};
use tether::{CloseError, Closed, SendErrorKind};

/// Why an operation of this adapter failed.
///
/// A normal close is not an error: [`WebSocket::recv`](crate::WebSocket::recv) returns `None`
/// after it. An abnormal end (1006, a heartbeat timeout, a protocol violation) is
/// [`Error::Closed`] with the terminal information.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (connect, resolve, accept, TLS).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The URL is not a valid `ws://` or `wss://` URL.
    #[error("invalid URL: {0}")]
    Url(#[from] UrlError),
    /// Client: the server's answer was not a valid upgrade (for example a 401 or a 503).
    #[error("handshake failed: {0}")]
    Handshake(HandshakeError),
    /// The opening handshake did not complete within `Config::handshake_timeout`.
    #[error("opening handshake timed out")]
    HandshakeTimeout,
    /// The TCP connection (and TLS session) was not established within the connect timeout.
    #[error("connect timed out")]
    ConnectTimeout,
    /// Server: the opening request was refused with this HTTP status.
    #[error("handshake rejected with status {status}")]
    Rejected {
        /// The HTTP status sent to the client.
        status: u16,
    },
    /// Local misuse of a send command (sending after close, a control payload over 125 bytes).
    #[error("send refused: {0}")]
    Send(SendErrorKind),
    /// Local misuse of `close` (a code that may not be sent, a reason over 123 bytes).
    #[error("close refused: {0}")]
    Close(CloseError),
    /// The connection ended abnormally; this is its terminal information.
    #[error("connection closed abnormally: {} {}", .0.code.0, .0.reason)]
    Closed(Closed),
}
