//! Resumable sessions (the `tether-resume` extension): nothing lost, nothing doubled when a
//! connection between two tether peers dies.
//!
//! WebSocket has no acknowledgements, so a message written into a connection that then died
//! may or may not have arrived. When both ends run tether and [`Config::resume`](crate::Config::resume) is set, they
//! negotiate `tether-resume` in the opening handshake (a peer that does not know it ignores the
//! offer, and the connection behaves exactly as without it). Then:
//!
//! - each side numbers the data messages it sends in the session and keeps those the peer has
//!   not acknowledged ([`Session`], bounded by [`ResumeConfig`]: a send over the bound is
//!   refused with `BufferFull` until acknowledgements make room);
//! - each side tells the other how many data messages it received, cumulatively, in an Ack
//!   control frame (opcode 0xB, RFC 6455 §5.2 leaves it to extensions): coalesced, sent along
//!   with our own data, and at most [`ResumeConfig::ack_delay`] after a message arrived;
//! - the server gives every connection a single-use token (128 bits from the connection's
//!   generator); a client that lost its connection presents it with its count, the server
//!   answers with its own count, and both send again exactly what the other has not received,
//!   in order, before anything new. The application sees [`SessionEvent::Resumed`].
//!
//! A session that cannot be resumed (unknown, expired or evicted token, another principal's
//! token, a server restarted with the in-memory store, a peer without the extension) is
//! reported as [`SessionEvent::Lost`], with the messages not known to have arrived, and the
//! connection goes on as a new session. The wire format is in `docs/resume.md`.
//!
//! The core holds all of it: [`Connection::client_resuming`](crate::Connection::client_resuming)
//! and [`Connection::accept_session`](crate::Connection::accept_session) start connections of a
//! session, [`Connection::take_session`](crate::Connection::take_session) takes it back after
//! the end, and a server parks it in a [`SessionStore`] ([`MemoryStore`] by default).
//!
//! What counts as received is what reached the core: data the application has not read yet
//! when its connection ended stays readable there (read it before the resumed connection's).
//! In streaming mode a message cut by the end of its connection is sent again whole: the
//! pieces of the cut copy were delivered already.

mod params;
mod session;
mod store;
mod token;

use alloc::vec::Vec;
use core::time::Duration;

pub use params::{EXTENSION, ResumeParams};
pub use session::Session;
pub use store::{LostSession, MemoryStore, SessionStore};
pub use token::SessionToken;

use crate::message::Message;

/// The Ack frame's opcode (RFC 6455 §5.2 reserves 0xB-0xF for control frames that extensions
/// define). Its payload is 8 bytes, the count as a big-endian u64.
pub const ACK_OPCODE: u8 = 0xB;

/// Settings for resumable sessions: set [`Config::resume`](crate::Config::resume).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ResumeConfig {
    /// At most this many messages sent and not acknowledged; a send beyond is refused with
    /// `BufferFull`. Default 4096.
    pub max_unacked_messages: usize,
    /// At most this many payload bytes sent and not acknowledged. Default 4 MiB.
    pub max_unacked_bytes: usize,
    /// Acknowledge at once when this many messages arrived since the last acknowledgement.
    /// Default 64.
    pub ack_every: u64,
    /// Acknowledge at most this long after a message arrived (unless our own data carried the
    /// acknowledgement before). Default 200 ms.
    pub ack_delay: Duration,
}

impl ResumeConfig {
    /// The defaults.
    #[must_use]
    pub const fn new() -> Self {
        ResumeConfig {
            max_unacked_messages: 4096,
            max_unacked_bytes: 4 << 20,
            ack_every: 64,
            ack_delay: Duration::from_millis(200),
        }
    }
}

impl Default for ResumeConfig {
    fn default() -> Self {
        ResumeConfig::new()
    }
}

/// What became of the session when a connection opened: [`Event::Session`](crate::Event::Session).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A new session started (nothing was to be resumed).
    Started,
    /// The session was resumed: `replayed` of our messages the peer had not received were sent
    /// again, before anything new.
    Resumed {
        /// How many messages were sent again.
        replayed: usize,
    },
    /// The session to resume could not be; a new one started. Messages may have been lost in
    /// both directions: ours that were not acknowledged are handed back here, and the peer's
    /// that were sent after our last count are gone.
    Lost {
        /// Why.
        reason: LossReason,
        /// Our messages not known to have arrived, oldest first (never sent again).
        unconfirmed: Vec<Message>,
    },
}

/// Why a session could not be resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossReason {
    /// The peer does not speak `tether-resume` (or no longer offers it).
    NotNegotiated,
    /// The server does not know the token: expired, evicted, another principal's, or the
    /// server restarted.
    Unknown,
    /// The counts did not match what this side holds (a peer that lost state).
    Mismatch,
    /// Server side: the session was parked longer than its store keeps sessions.
    Expired,
    /// Server side: the store needed the room (its session or memory bound), or the session
    /// alone was larger than the store.
    Evicted,
}
