//! One side's state of a resumable session: what it sent that the peer has not acknowledged,
//! and how much it has received. It outlives the connections that carry it.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

use super::ResumeConfig;
use super::token::SessionToken;
use crate::message::{DataKind, Message, Utf8Bytes};

/// A resumable session, as one side keeps it: the data messages it sent that the peer has not
/// acknowledged yet (bounded by [`ResumeConfig`]), and the count of data messages it has
/// received. A [`Connection`](crate::Connection) carries it while it is open; take it back with
/// [`Connection::take_session`](crate::Connection::take_session) after the end, to resume on the
/// next connection (client) or to park it in a [`SessionStore`](super::SessionStore) (server).
#[derive(Clone, Debug)]
pub struct Session {
    /// The token that resumes it: the last one the server handed out.
    token: Option<SessionToken>,
    /// Server role: the token this connection replaced, still good until the client shows it
    /// has the new one (its first frame here): the 101 that carried it may have been lost.
    prev_token: Option<SessionToken>,
    /// Server role: what the authentication hook accepted for the connection that started it.
    principal: String,
    /// Sent and not acknowledged, oldest first: message number `acked + 1` is at the front.
    unacked: VecDeque<Message>,
    unacked_bytes: usize,
    /// Data messages sent in the session.
    sent: u64,
    /// Data messages the peer said it received (cumulative).
    acked: u64,
    /// Data messages received in the session.
    received: u64,
    /// The `received` count last told to the peer.
    ack_sent: u64,
    /// A message being sent in fragments, gathered to be replayed whole.
    fragments: Option<(DataKind, BytesMut)>,
    config: ResumeConfig,
}

impl Session {
    /// A new, empty session.
    #[must_use]
    pub fn new(config: ResumeConfig) -> Self {
        Session {
            token: None,
            prev_token: None,
            principal: String::new(),
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            sent: 0,
            acked: 0,
            received: 0,
            ack_sent: 0,
            fragments: None,
            config,
        }
    }

    /// The token that resumes it, once a server handed one out.
    #[must_use]
    pub fn token(&self) -> Option<SessionToken> {
        self.token
    }

    /// Server role: what the authentication hook accepted when the session started.
    #[must_use]
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Data messages sent in the session so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Data messages the peer has acknowledged.
    #[must_use]
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Data messages received in the session so far.
    #[must_use]
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Messages sent and not acknowledged yet.
    #[must_use]
    pub fn unacked_messages(&self) -> usize {
        self.unacked.len()
    }

    /// Payload bytes of the messages sent and not acknowledged yet.
    #[must_use]
    pub fn unacked_bytes(&self) -> usize {
        self.unacked_bytes
    }

    /// About how much memory the session holds (its unacknowledged payloads and bookkeeping),
    /// what a [`MemoryStore`](super::MemoryStore) counts against its bound.
    #[must_use]
    pub fn memory(&self) -> usize {
        let fragments = self.fragments.as_ref().map_or(0, |(_, b)| b.len());
        self.unacked_bytes
            + fragments
            + self.unacked.len() * core::mem::size_of::<Message>()
            + self.principal.len()
            + core::mem::size_of::<Session>()
    }

    /// The settings it was made with.
    #[must_use]
    pub fn config(&self) -> &ResumeConfig {
        &self.config
    }

    /// The unacknowledged messages, oldest first, forgotten here: what a session that cannot
    /// be resumed reports as not known to have arrived.
    pub fn take_unacked(&mut self) -> Vec<Message> {
        self.unacked_bytes = 0;
        self.acked = self.sent;
        self.unacked.drain(..).collect()
    }

    pub(crate) fn set_token(&mut self, token: SessionToken) {
        self.token = Some(token);
    }

    /// The token a resumed connection replaced, while the client may not have the new one.
    #[must_use]
    pub fn previous_token(&self) -> Option<SessionToken> {
        self.prev_token
    }

    pub(crate) fn set_previous_token(&mut self, token: Option<SessionToken>) {
        self.prev_token = token;
    }

    pub(crate) fn set_principal(&mut self, principal: &str) {
        self.principal = String::from(principal);
    }

    /// Whether one more message of `len` bytes fits; into an empty log it always does, so a
    /// message larger than the bound is not refused forever.
    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.unacked.is_empty()
            || (self.unacked.len() < self.config.max_unacked_messages
                && self.unacked_bytes.saturating_add(len) <= self.config.max_unacked_bytes)
    }

    /// A whole data message was sent.
    pub(crate) fn record(&mut self, message: Message) {
        self.sent += 1;
        self.unacked_bytes += message.len();
        self.unacked.push_back(message);
    }

    /// A fragment was sent; at `fin` the gathered message is recorded.
    pub(crate) fn record_fragment(&mut self, kind: DataKind, data: &[u8], fin: bool) {
        let (_, buf) = self
            .fragments
            .get_or_insert_with(|| (kind, BytesMut::new()));
        buf.extend_from_slice(data);
        if fin && let Some((kind, buf)) = self.fragments.take() {
            let bytes: Bytes = buf.freeze();
            let message = match kind {
                DataKind::Binary => Message::Binary(bytes),
                // Validated fragment by fragment by the connection before it was sent.
                DataKind::Text => match Utf8Bytes::try_from_bytes(bytes) {
                    Ok(text) => Message::Text(text),
                    Err(_) => return,
                },
            };
            self.record(message);
        }
    }

    /// The peer received `count` of our messages in all. Returns false when that cannot be
    /// true (more than we sent); an older count than we know changes nothing.
    pub(crate) fn acknowledge(&mut self, count: u64) -> bool {
        if count > self.sent {
            return false;
        }
        while self.acked < count {
            if let Some(m) = self.unacked.pop_front() {
                self.unacked_bytes -= m.len();
            }
            self.acked += 1;
        }
        if self.unacked.is_empty() {
            self.unacked = VecDeque::new();
        }
        true
    }

    /// Whether the peer's count on resumption lets us replay exactly what it misses.
    pub(crate) fn can_resume_from(&self, count: u64) -> bool {
        count >= self.acked && count <= self.sent
    }

    /// The messages to send again, in order (after [`acknowledge`](Session::acknowledge)).
    pub(crate) fn replay(&self) -> impl Iterator<Item = &Message> {
        self.unacked.iter()
    }

    /// A whole data message was received.
    pub(crate) fn on_received(&mut self) {
        self.received += 1;
    }

    /// Received messages the peer has not been told about.
    pub(crate) fn unacked_received(&self) -> u64 {
        self.received - self.ack_sent
    }

    /// The count to send in an Ack frame now (and remembered as told).
    pub(crate) fn take_ack(&mut self) -> u64 {
        self.ack_sent = self.received;
        self.received
    }

    /// A new connection tells the peer our count in its handshake.
    pub(crate) fn told(&mut self) {
        self.ack_sent = self.received;
    }

    /// A partial fragmented message is not replayed: it is dropped when a connection ends.
    pub(crate) fn connection_ended(&mut self) {
        self.fragments = None;
    }
}
