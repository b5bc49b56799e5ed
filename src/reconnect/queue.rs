//! The supervisor's outbound queue: messages waiting for a connection, within limits.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use crate::message::Message;

/// What [`Supervisor::send`](super::Supervisor::send) does when the outbound queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the new message: [`SessionSendErrorKind::QueueFull`], with the message handed
    /// back. The default: nothing the caller accepted is ever discarded.
    #[default]
    RejectNew,
    /// Make room by dropping the oldest queued messages; they are handed back in a
    /// [`SupervisorEvent::Dropped`](super::SupervisorEvent::Dropped). For data where only the latest
    /// matters (positions, prices). A message larger than the byte limit on its own is still
    /// refused.
    DropOldest,
}

/// Why [`Supervisor::send`](super::Supervisor::send) refused a message. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionSendErrorKind {
    /// The outbound queue is at its message or byte limit (or the message alone is over the byte
    /// limit).
    #[error("outbound queue full: {messages} messages, {bytes} bytes queued")]
    QueueFull {
        /// Messages queued.
        messages: usize,
        /// Payload bytes queued.
        bytes: usize,
    },
    /// The user asked the supervisor to close; it accepts nothing more.
    #[error("the session is closing")]
    Closing,
    /// The supervisor ended (stopped or gave up).
    #[error("the session has ended")]
    Ended,
}

/// A message the supervisor refused, handed back to the caller.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct SessionSendError {
    /// Why it was refused.
    pub kind: SessionSendErrorKind,
    /// The message, untouched.
    pub message: Message,
}

impl SessionSendError {
    /// The message that was not accepted.
    #[must_use]
    pub fn into_inner(self) -> Message {
        self.message
    }
}

impl fmt::Debug for SessionSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSendError")
            .field("kind", &self.kind)
            .field("len", &self.message.len())
            .finish()
    }
}

/// A FIFO of messages with a count limit and a payload-byte limit.
///
/// The limits apply when the user adds a message. Messages put back at the front after a
/// transport died were accepted before, so they are never refused or dropped for it, even if the
/// queue goes over its limits for a while.
#[derive(Debug)]
pub(crate) struct Outbox {
    messages: VecDeque<Message>,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
    overflow: Overflow,
}

impl Outbox {
    pub(crate) fn new(max_messages: usize, max_bytes: usize, overflow: Overflow) -> Self {
        Outbox {
            messages: VecDeque::new(),
            bytes: 0,
            max_messages,
            max_bytes,
            overflow,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn fits(&self, len: usize) -> bool {
        self.messages.len() < self.max_messages && self.bytes.saturating_add(len) <= self.max_bytes
    }

    fn full(&self) -> SessionSendErrorKind {
        SessionSendErrorKind::QueueFull {
            messages: self.messages.len(),
            bytes: self.bytes,
        }
    }

    /// Appends `message` within the limits. With [`Overflow::DropOldest`], the messages dropped
    /// to make room are returned (oldest first).
    pub(crate) fn push(&mut self, message: Message) -> Result<Vec<Message>, SessionSendError> {
        let len = message.len();
        let mut dropped = Vec::new();
        if !self.fits(len) {
            let can_ever_fit = self.max_messages > 0 && len <= self.max_bytes;
            if self.overflow != Overflow::DropOldest || !can_ever_fit {
                return Err(SessionSendError {
                    kind: self.full(),
                    message,
                });
            }
            while !self.fits(len) {
                match self.pop_front() {
                    Some(old) => dropped.push(old),
                    None => break,
                }
            }
        }
        self.bytes += len;
        self.messages.push_back(message);
        Ok(dropped)
    }

    /// Puts messages back at the front, in their order, ahead of everything queued.
    pub(crate) fn requeue_front(&mut self, messages: impl DoubleEndedIterator<Item = Message>) {
        for message in messages.rev() {
            self.bytes += message.len();
            self.messages.push_front(message);
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<Message> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.len();
        Some(message)
    }

    pub(crate) fn push_front(&mut self, message: Message) {
        self.requeue_front(core::iter::once(message));
    }

    pub(crate) fn take_all(&mut self) -> Vec<Message> {
        self.bytes = 0;
        self.messages.drain(..).collect()
    }
}
