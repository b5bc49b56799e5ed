//! What a reconnecting session tells its driver (transport actions) and its user (events).

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

use super::disconnect::{Disconnect, GiveUpReason};
use crate::event::Closed;
use crate::message::{DataKind, Message};
use crate::time::Instant;

/// What the driver should do with transports. Drain with
/// [`Session::poll_action`](super::Session::poll_action).
///
/// There is at most one transport at a time: a [`SessionAction::Connect`] always comes after
/// the [`SessionAction::CloseTransport`] of the previous transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionAction {
    /// Open a new transport now (resolve, connect, TLS). Report the outcome with
    /// [`Session::transport_connected`](super::Session::transport_connected) or
    /// [`Session::connect_failed`](super::Session::connect_failed); the session gives up on the
    /// attempt after [`SessionConfig::connect_timeout`](super::SessionConfig::connect_timeout).
    Connect {
        /// Which attempt this is since the session started or last connected, from 1. (The
        /// policy's own count, [`ReconnectPolicy::attempt`](super::ReconnectPolicy::attempt),
        /// runs from the last *stable* connection instead.)
        attempt: u32,
    },
    /// Close the current transport, or abandon the connect in progress. Bytes not yet written
    /// are dropped (the session has already taken back the messages they carried).
    CloseTransport,
}

/// Something that happened in the session. Drain with
/// [`Session::poll_event`](super::Session::poll_event).
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A connection's opening handshake completed. The on-open messages and the queue are being
    /// sent.
    Connected {
        /// Which attempt succeeded, counted from 1 since the session started or last connected.
        attempt: u32,
        /// From this attempt's [`SessionAction::Connect`] to the completed handshake.
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
    /// A connection, or an attempt at one, ended. Followed by a retry (when `retry_at` is set)
    /// or by the session's terminal event.
    Disconnected {
        /// How it ended, as the policy classified it.
        reason: Disconnect,
        /// The connection's terminal event, when a transport had been opened.
        closed: Option<Closed>,
        /// A human-readable account: the close reason, or what the driver reported.
        detail: String,
        /// How long until the next attempt; `None` when the session will not retry.
        retry_in: Option<Duration>,
        /// When the next attempt starts; `None` when the session will not retry.
        retry_at: Option<Instant>,
    },
    /// Messages the queue dropped to make room
    /// ([`Overflow::DropOldest`](super::Overflow::DropOldest)), oldest first.
    Dropped {
        /// The messages, never sent.
        messages: Vec<Message>,
    },
    /// Terminal: the policy will not retry (a 401, a 1008, the attempts ran out...).
    GaveUp {
        /// Why, with the status or close code that decided it.
        reason: GiveUpReason,
        /// Messages left in the queue; take them with
        /// [`Session::take_unsent`](super::Session::take_unsent).
        unsent: usize,
    },
    /// Terminal: the session ended normally (the user's [`Session::close`](super::Session::close),
    /// or a 1000 close).
    Stopped {
        /// Messages left in the queue; take them with
        /// [`Session::take_unsent`](super::Session::take_unsent).
        unsent: usize,
    },
}
