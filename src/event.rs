//! What the core tells its driver and its user: events, received data and transport actions.

use alloc::string::String;

use bytes::Bytes;

use crate::close::CloseCode;
use crate::error::ProtocolError;
use crate::message::{DataKind, Message};

/// Something that happened on the connection. Drain them with
/// [`Connection::poll_event`](crate::Connection::poll_event) after every input.
///
/// Events say what happened; they never carry received data, which the application takes
/// with [`Connection::read`](crate::Connection::read). So a driver may drain events eagerly
/// (polling never changes the protocol state) while data waits in the core until the
/// application asks for it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The server role received an opening request that passed the configured policies: inspect
    /// it, then call [`accept`](crate::Connection::accept) or [`reject`](crate::Connection::reject).
    Request(crate::handshake::Request),
    /// The opening handshake completed (or the connection was created
    /// [`open`](crate::Connection::open)); messages may flow.
    Connected {
        /// The subprotocol both sides agreed on, if any.
        subprotocol: Option<String>,
    },
    /// `tether-resume` was negotiated (right after [`Event::Connected`]): a new session, a
    /// resumed one, or one that could not be resumed and what may have been lost (see
    /// [`crate::resume`]). Also emitted, as [`SessionEvent::Lost`](crate::resume::SessionEvent),
    /// when a session was offered to a peer that did not take the extension.
    Session(crate::resume::SessionEvent),
    /// The peer sent a Ping (already answered with a Pong by the core, RFC 6455 §5.5.2).
    Ping(Bytes),
    /// The peer sent a Pong that does not answer the core's own heartbeat Ping.
    Pong(Bytes),
    /// The connection ended. Always the last event, and always exactly one. Data received
    /// before the end may still be waiting for [`read`](crate::Connection::read).
    Closed(Closed),
}

/// Received data, taken by the application with [`Connection::read`](crate::Connection::read).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Data {
    /// A complete message (the default delivery mode).
    Message(Message),
    /// Streaming mode: a message of this kind begins.
    MessageStart(DataKind),
    /// Streaming mode: the next bytes of the current message, in order. For text, a chunk may
    /// end inside a character; the message as a whole has been validated up to here.
    MessageChunk(Bytes),
    /// Streaming mode: the current message is complete (and, for text, valid UTF-8).
    MessageEnd,
}

impl Data {
    /// The payload bytes this piece carries (0 for the start and end markers).
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Data::Message(m) => m.len(),
            Data::MessageChunk(c) => c.len(),
            Data::MessageStart(_) | Data::MessageEnd => 0,
        }
    }

    /// Whether it carries no payload bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a connection ended: the terminal event's payload, also kept by
/// [`Connection::closed`](crate::Connection::closed).
///
/// One word, one meaning: a connection is *closed* once this record exists. Then
/// [`State::Closed`](crate::State::Closed) holds, [`Event::Closed`] is (or was) in the event
/// queue, and commands are refused with [`SendErrorKind::Closed`](crate::SendErrorKind::Closed)
/// or [`CloseError::Closed`](crate::CloseError::Closed). What the transport should do is a
/// separate matter: [`TransportAction`].
///
/// `code` and `reason` follow RFC 6455 §7.1.5-§7.1.6 where a Close frame was received during a
/// clean close: they are the peer's (1005 when its Close carried no code). When this endpoint
/// failed the connection (a protocol violation by the peer, a heartbeat or idle timeout), they
/// are what this endpoint sent, with a reason that says what was wrong. When the transport was
/// lost, or the close handshake timed out, the code is 1006 and `clean` is false.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    /// The close status code.
    pub code: CloseCode,
    /// The close reason, possibly empty.
    pub reason: String,
    /// Which side started the closing.
    pub initiator: Initiator,
    /// Whether the close handshake completed: both Close frames were exchanged.
    pub clean: bool,
    /// Why the connection ended, in detail.
    pub cause: CloseCause,
}

/// Which side started the end of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Initiator {
    /// This endpoint: its user called `close`, or the core failed the connection.
    Local,
    /// The peer: it sent Close first, or its transport went away.
    Remote,
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// The close handshake completed (started by either side).
    Normal,
    /// The peer broke the protocol; this endpoint sent a Close with the matching code.
    Protocol(ProtocolError),
    /// The transport ended without a Close frame (reported as 1006).
    TransportLost,
    /// The peer did not answer our Close within the close timeout (reported as 1006).
    CloseTimeout,
    /// The peer did not answer a heartbeat Ping within the pong timeout (sent as 1011).
    HeartbeatTimeout,
    /// Nothing was received for the idle timeout (sent as 1001).
    IdleTimeout,
    /// The opening handshake did not complete within the handshake timeout.
    HandshakeTimeout,
    /// The local user called [`abort`](crate::Connection::abort), or `close` before the
    /// connection was open.
    Aborted,
    /// The client's opening handshake failed: the server's response was not a valid upgrade.
    HandshakeFailed(crate::handshake::HandshakeError),
    /// The server refused the opening request with this HTTP status.
    HandshakeRejected {
        /// The HTTP status sent.
        status: u16,
    },
}

/// What the driver should do with the transport, from
/// [`Connection::poll_transport`](crate::Connection::poll_transport). The answer is a level, not
/// an edge: it stays the same until the connection moves on, so a driver acts on a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportAction {
    /// Half-close: shut down the write side now (a TCP FIN, after a TLS `close_notify`), once,
    /// and keep reading: the core discards what still arrives until the peer's end of stream
    /// ([`handle_eof`](crate::Connection::handle_eof)) or the linger timer turns this into
    /// [`Close`](TransportAction::Close). Closing a socket that still has unread input makes
    /// the kernel send a reset that can destroy our last bytes in flight; the half-close lets
    /// the peer read our Close frame first (RFC 6455 §7.1.1: the server closes first).
    Shutdown,
    /// Close the transport now. Everything the core wanted written has been handed out (or was
    /// given up on after a timeout); after this the connection produces nothing more.
    Close,
}
