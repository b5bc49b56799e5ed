//! How a reconnect supervisor behaves around its connections.

use alloc::vec::Vec;
use core::time::Duration;

use super::queue::Overflow;
use crate::message::Message;

/// How a [`Supervisor`](super::Supervisor) behaves around its connections. Change fields on
/// `SessionConfig::default()`.
///
/// ```
/// use tether::Message;
/// use tether::reconnect::{Overflow, SessionConfig};
///
/// let mut config = SessionConfig::default();
/// config.on_open.push(Message::text("AUTH token"));
/// config.on_open.push(Message::text("SUBSCRIBE prices"));
/// config.overflow = Overflow::DropOldest;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The most messages the outbound queue holds. Default 1024.
    pub max_queued_messages: usize,
    /// The most payload bytes the outbound queue holds. Default 4 MiB.
    pub max_queued_bytes: usize,
    /// What [`Supervisor::send`](super::Supervisor::send) does when the queue is full. Default
    /// [`Overflow::RejectNew`].
    pub overflow: Overflow,
    /// Messages sent first on every connection, as soon as its handshake completes and before
    /// anything queued (authenticate, subscribe). They are not part of the queue: a transport
    /// that dies before writing them does not put them back, the next connection sends them
    /// afresh. Default none.
    pub on_open: Vec<Message>,
    /// How long the driver may take to open a transport after
    /// [`SupervisorAction::Connect`](super::SupervisorAction::Connect) (name resolution, TCP, TLS) before
    /// the attempt counts as a [`Disconnect::ConnectTimeout`](super::Disconnect::ConnectTimeout).
    /// The opening handshake that follows has its own limit,
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout). Default 10 s.
    pub connect_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_queued_messages: 1024,
            max_queued_bytes: 4 << 20,
            overflow: Overflow::RejectNew,
            on_open: Vec::new(),
            connect_timeout: Duration::from_secs(10),
        }
    }
}
