//! # tether-std: blocking WebSockets on std threads
//!
//! The blocking adapter for the [`tether`] sans-IO WebSocket core: no async runtime, just
//! sockets and threads.
//!
//! ```no_run
//! use tether_std::{ClientConfig, connect};
//!
//! # fn main() -> Result<(), tether_std::Error> {
//! let (ws, _response) = connect("ws://127.0.0.1:9001/chat", ClientConfig::default())?;
//! ws.send_text("hello")?;
//! while let Some(message) = ws.recv() {
//!     println!("{:?}", message?);
//! }
//! # Ok(()) }
//! ```
//!
//! [`ReconnectingClient`] comes back after a disconnection (on the core's reconnect
//! [`Supervisor`](tether::reconnect::Supervisor)), queueing what is sent meanwhile.
//!
//! Servers use [`Server`] (a listener with a thread per connection and a connection limit) or
//! [`accept`] / [`accept_with`] over a stream they accepted themselves.
//!
//! ## How it runs
//!
//! Each connection has one **driver thread** that owns the read half of the stream and the
//! timers: it reads into a buffer of its own (`Config::read_buffer_size`), passes the bytes to
//! the core with `handle_data` (one copy: the core's `recv_buf` borrows the connection, which
//! cannot be lent out without holding the lock across the blocking read), and sets the socket's
//! read timeout from the core's next deadline, so heartbeats, close and handshake timeouts fire
//! while it is blocked in `read`. The [`Connection`](tether::Connection) lives in an
//! `Arc<Mutex<..>>` shared with the handles, with one `Condvar` for every wait; the lock is
//! never held across a system call.
//!
//! **Writes** are made by whichever thread holds the write half: the caller of `send` (which
//! returns once its message is handed to the OS: that is the backpressure), or the driver for
//! protocol replies (Pong, the Close echo) and heartbeats when nobody else is writing. The
//! core's `poll_transmit` is copied out in chunks of up to 256 KiB so that the lock is released
//! during `write`; the driver hands the write half to a waiting sender after each chunk, so it
//! goes back to reading quickly, and the socket's write timeout also follows the core's
//! deadlines. A send the core refuses because its output is over `Config::high_watermark`
//! waits until the output has been written, then goes in. The core's transport actions are
//! obeyed by the writer: a half-close (FIN, or TLS close_notify) while reading goes on until the
//! peer's end of stream, or closing the transport.
//!
//! Measured on loopback on a 2-core machine (release build, both ends this adapter): about
//! 19,500 sequential round trips per second with 16-byte messages (two thread hand-offs per
//! hop: driver to user), about 92,000 pipelined messages per second, and about 370 MiB/s
//! echoing 1 MiB messages. See `tests/throughput.rs`.
//!
//! **Received data** stays in the core until [`WebSocket::recv`] (or `next_event`, or an
//! iterator) asks for the next message: that is how the core learns what the application has
//! read. When a peer breaks the protocol, or sends its Close, behind messages the application
//! has not finished with, the core acts on it only at the next `recv` (bounded by
//! `Config::close_timeout`), so replies to them go out before our Close, as with a peer that
//! reads frame by frame. Pongs, Close echoes and heartbeats do not wait for the user: the core
//! answers as it decodes. Flow control is the core's, in bytes: the driver reads only while
//! `Connection::wants_read` says so (unread data, or Pongs the peer asked for and does not
//! read, over `Config::high_watermark` stop it), and receiving wakes it.
//! Dropping the receiving handle tells the core that nothing will be read again.
//!
//! ## Features
//! - `rustls`: `wss://` in [`connect`] (rustls with the ring provider and the `webpki-roots`
//!   root store, or a caller-supplied `rustls::ClientConfig`), and TLS streams
//!   (`rustls::StreamOwned` over TCP) for [`accept`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// `Error` carries the core's terminal information and handshake errors by value, as the other
// adapters do.
#![allow(clippy::result_large_err)]

mod client;
mod driver;
mod reconnect;
mod server;
mod socket;
mod stream;
#[cfg(feature = "rustls")]
mod tls;

use bytes::Bytes;

pub use client::{ClientConfig, connect, connect_on, connect_request};
pub use reconnect::{ReconnectingClient, ReconnectingConfig};
#[cfg(feature = "rustls")]
pub use rustls;
pub use server::{Server, ServerConfig, accept, accept_with};
pub use socket::{Messages, WebSocket, WsReader, WsWriter};
pub use stream::{
    MaybeTlsReader, MaybeTlsStream, MaybeTlsWriter, ReadHalf, SplitStream, WriteHalf,
};
pub use tether;
pub use tether::reconnect::ReconnectEvent;
pub use tether::{CloseCode, Closed, Config, Message};
#[cfg(feature = "rustls")]
pub use tls::{TlsReader, TlsWriter};

/// What can go wrong. A normal (clean) close is not an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The URL is not a valid `ws://` or `wss://` URL.
    #[error("invalid URL: {0}")]
    Url(#[from] tether::handshake::UrlError),
    /// Client side: the server's answer was not a valid upgrade (e.g. 401, 403, 503; see
    /// [`HandshakeError::http_status`](tether::handshake::HandshakeError::http_status)).
    #[error("opening handshake failed: {0}")]
    Handshake(tether::handshake::HandshakeError),
    /// The opening handshake (or the TLS handshake) did not complete within
    /// `Config::handshake_timeout`.
    #[error("the opening handshake timed out")]
    HandshakeTimeout,
    /// No TCP connection could be made within `ClientConfig::connect_timeout`.
    #[error("connecting timed out")]
    ConnectTimeout,
    /// Server side: the opening request was refused with this HTTP status.
    #[error("the opening request was refused with {status}")]
    Rejected {
        /// The HTTP status sent.
        status: u16,
    },
    /// Local misuse: sending after a close, during a fragmented message, a control payload
    /// over 125 bytes, ...
    #[error("cannot send: {0}")]
    Send(tether::SendErrorKind),
    /// `close` was called with a code that may not be sent or a reason over 123 bytes.
    #[error("cannot close: {0}")]
    Close(tether::CloseError),
    /// The connection ended abnormally: the terminal information (1006 when the transport was
    /// lost, a heartbeat timeout, a protocol error, ...).
    #[error("connection ended abnormally: {} {}", .0.code.0, .0.reason)]
    Closed(tether::Closed),
    /// `recv_timeout` or `next_event_timeout` gave up; the connection is unaffected.
    #[error("timed out waiting for a message")]
    Timeout,
}

/// Something received: a message, or a control frame the user may want to see.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// A complete text or binary message.
    Message(Message),
    /// The peer's Ping (the Pong was already sent).
    Ping(Bytes),
    /// A Pong, e.g. the answer to [`WebSocket::ping`].
    Pong(Bytes),
}

/// A per-connection CSPRNG seeded from the operating system.
pub(crate) fn rng() -> rand::rngs::StdRng {
    rand::make_rng()
}
