//! What a reconnect supervisor tells its driver (actions) and its user (events), and what a
//! reconnecting client built on it yields.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

use super::disconnect::{Disconnect, GiveUpReason};
use crate::event::Closed;
use crate::message::{DataKind, Message};
use crate::time::Instant;

/// What the driver should do about transports. Drain with
/// [`Supervisor::poll_action`](super::Supervisor::poll_action).
///
/// Closing a transport is never asked for here: the live [`Connection`](crate::Connection) says
/// that itself, through [`poll_transport`](crate::Connection::poll_transport).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SupervisorAction {
    /// Open a new transport now (resolve, connect, TLS). Report the outcome with
    /// [`Supervisor::transport_connected`](super::Supervisor::transport_connected) or
    /// [`Supervisor::connect_failed`](super::Supervisor::connect_failed). The supervisor gives up
    /// on the attempt after [`SessionConfig::connect_timeout`](super::SessionConfig::connect_timeout)
    /// and then says [`SupervisorAction::AbandonConnect`].
    Connect {
        /// Which attempt this is, counted from 1 since the supervisor started or a connection
        /// last opened. (The policy's own count,
        /// [`ReconnectPolicy::attempt`](super::ReconnectPolicy::attempt), runs from the last
        /// *stable* connection instead.)
        attempt: u32,
    },
    /// Give up on the transport being opened for the last [`SupervisorAction::Connect`] (the
    /// connect timed out, or the user closed the supervisor): cancel it, and close the transport
    /// if it opens after all. The supervisor no longer expects a report about it.
    AbandonConnect,
}

/// Something the supervisor decided. Drain with
/// [`Supervisor::poll_event`](super::Supervisor::poll_event).
///
/// Nothing of what a connection receives passes through here: messages, Pings and the
/// connection's own [`Event::Closed`](crate::Event::Closed) stay in the
/// [`Connection`](crate::Connection) until the application takes them.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SupervisorEvent {
    /// A connection, or an attempt at one, ended. Followed by a retry (when `retry_at` is set)
    /// or by the supervisor's terminal event.
    Disconnected {
        /// How it ended, as the policy classified it.
        reason: Disconnect,
        /// How the connection ended, when a transport had been opened (what
        /// [`Connection::closed`](crate::Connection::closed) returned).
        closed: Option<Closed>,
        /// A human-readable account: the close reason, or what the driver reported.
        detail: String,
        /// Messages taken back from the connection because their frames were not entirely
        /// written: they are at the front of the queue again, for the next connection.
        requeued: usize,
        /// How long until the next attempt; `None` when the supervisor will not retry.
        retry_in: Option<Duration>,
        /// When the next attempt starts; `None` when the supervisor will not retry.
        retry_at: Option<Instant>,
    },
    /// Messages the queue dropped to make room
    /// ([`Overflow::DropOldest`](super::Overflow::DropOldest)), oldest first. Drops that
    /// happen before this event is polled join it; it keeps at most the queue's own limits'
    /// worth of them, so a user who never polls holds at most twice the queue.
    Dropped {
        /// The messages, never sent.
        messages: Vec<Message>,
        /// Older dropped messages this event no longer holds (it was not polled in time): only
        /// counted.
        forgotten: usize,
    },
    /// Terminal: the policy will not retry (a 401, a 1008, the attempts ran out...).
    GaveUp {
        /// Why, with the status or close code that decided it.
        reason: GiveUpReason,
        /// Messages left in the queue; take them with
        /// [`Supervisor::take_unsent`](super::Supervisor::take_unsent).
        unsent: usize,
    },
    /// Terminal: the supervisor ended normally (the user's
    /// [`Supervisor::close`](super::Supervisor::close), or a 1000 close).
    Stopped {
        /// Messages left in the queue; take them with
        /// [`Supervisor::take_unsent`](super::Supervisor::take_unsent).
        unsent: usize,
    },
}

impl SupervisorEvent {
    /// Whether this is the last event: [`SupervisorEvent::GaveUp`] or
    /// [`SupervisorEvent::Stopped`].
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SupervisorEvent::GaveUp { .. } | SupervisorEvent::Stopped { .. }
        )
    }
}

/// What a reconnecting client hands its application, in order: what each connection received,
/// and what the [`Supervisor`](super::Supervisor) decided between connections. The core's types
/// produce its pieces (a connection's events and [`Data`](crate::Data), the supervisor's
/// events); every reconnecting client built on them (the adapters') yields this one type.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReconnectEvent {
    /// A connection's opening handshake completed; the on-open messages and the queue are
    /// being sent.
    Connected {
        /// Which attempt succeeded, counted from 1 since the client started or last connected.
        attempt: u32,
        /// From the start of this attempt (the connect) to the completed handshake.
        took: Duration,
        /// The subprotocol the server selected.
        subprotocol: Option<String>,
    },
    /// A complete message from the server.
    Message(Message),
    /// Streaming mode ([`Config::streaming`](crate::Config::streaming)): a message of this kind
    /// begins.
    MessageStart(DataKind),
    /// Streaming mode: the next bytes of the current message.
    MessageChunk(Bytes),
    /// Streaming mode: the current message is complete.
    MessageEnd,
    /// The server sent a Ping (the connection already answered it).
    Ping(Bytes),
    /// The server sent a Pong that does not answer the connection's heartbeat.
    Pong(Bytes),
    /// `tether-resume` ([`Config::resume`](crate::Config::resume)): right after
    /// [`ReconnectEvent::Connected`], whether the session was resumed (what the server missed
    /// was sent again first), started, or lost (with our messages not known to have arrived).
    Session(crate::resume::SessionEvent),
    /// What the supervisor decided: a connection or an attempt ended (and when the next one
    /// starts), queued messages were dropped, or the client ended
    /// ([`SupervisorEvent::Stopped`], [`SupervisorEvent::GaveUp`]: the last event).
    Supervisor(SupervisorEvent),
}

impl ReconnectEvent {
    /// Whether this is the last event (the supervisor gave up or stopped).
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(self, ReconnectEvent::Supervisor(e) if e.is_terminal())
    }
}

impl From<crate::Data> for ReconnectEvent {
    fn from(data: crate::Data) -> Self {
        match data {
            crate::Data::Message(m) => ReconnectEvent::Message(m),
            crate::Data::MessageStart(kind) => ReconnectEvent::MessageStart(kind),
            crate::Data::MessageChunk(chunk) => ReconnectEvent::MessageChunk(chunk),
            crate::Data::MessageEnd => ReconnectEvent::MessageEnd,
        }
    }
}
