//! Broadcast: topics that connections subscribe to, and a publish that frames a message once
//! and shares its bytes with every subscriber.
//!
//! A [`Broadcast`] is a set of named topics. A connection joins it through a [`Subscriber`]
//! (one per connection, from [`Broadcast::subscriber`]), which subscribes to and unsubscribes
//! from topics and leaves them all when dropped. [`Broadcast::publish`] encodes the message
//! once as a [`PreparedMessage`] (server frames are unmasked, RFC 6455 §5.1, so the same
//! bytes serve every receiver) and hands it to each subscriber of the topic, in the same
//! order for every subscriber of one topic:
//!
//! - straight into the connection's output while the core has room under
//!   `Config::high_watermark` (written at once in the publisher's task when the connection is
//!   idle, else by its driver);
//! - otherwise into the subscriber's queue, bounded in bytes
//!   ([`BroadcastConfig::max_queued_bytes`]), which the connection's driver moves into the
//!   output as the peer reads;
//! - and when that queue is full, the [`SlowConsumer`] policy decides: drop the oldest queued
//!   messages, drop the new one, or close the connection (1008 Policy Violation or 1013 Try
//!   Again Later, say) and remove it from every topic.
//!
//! Publishing never waits, so a stalled reader costs at most `Config::high_watermark` (its
//! output) plus `max_queued_bytes` (its queue), and never slows the others: its messages
//! are references to the same frames.
//!
//! With permessage-deflate negotiated on a connection, broadcast messages still go out
//! uncompressed (RSV1 clear, which RFC 7692 §6.1 allows per message); see
//! [`PreparedMessage`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tether::{CloseCode, Connection, PreparedMessage, SendError, SendErrorKind};

use crate::shared::{Inner, Shared, Wake};
use crate::socket::{WebSocket, WsReader, WsWriter};

/// What happens when a subscriber's queue would go over
/// [`BroadcastConfig::max_queued_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Drop the oldest queued messages until the new one fits (a live feed: the latest state
    /// matters most).
    DropOldest,
    /// Drop the new message (the subscriber sees a gap at the end, not in the middle).
    DropNewest,
    /// Close the connection with this code (1008 Policy Violation or 1013 Try Again Later are
    /// the usual ones) and remove it from every topic. Its queue is released at once; the
    /// Close frame waits behind the output already queued, bounded by `Config::close_timeout`.
    Close(CloseCode),
}

/// A subscriber's queue bound and slow-consumer policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastConfig {
    /// The most bytes (encoded frames) a subscriber's queue holds beyond what its connection's
    /// output takes (`Config::high_watermark`). Default 1 MiB.
    pub max_queued_bytes: usize,
    /// What happens beyond that. Default [`SlowConsumer::DropOldest`].
    pub slow_consumer: SlowConsumer,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        BroadcastConfig {
            max_queued_bytes: 1 << 20,
            slow_consumer: SlowConsumer::DropOldest,
        }
    }
}

impl BroadcastConfig {
    /// Sets [`max_queued_bytes`](BroadcastConfig::max_queued_bytes).
    #[must_use]
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// Sets [`slow_consumer`](BroadcastConfig::slow_consumer).
    #[must_use]
    pub fn slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.slow_consumer = policy;
        self
    }
}

/// What one [`Broadcast::publish`] did, per subscriber of the topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// Queued in the connection's output.
    pub sent: usize,
    /// Queued in the subscriber's queue (its output was full).
    pub queued: usize,
    /// Messages dropped by [`SlowConsumer::DropOldest`] or [`SlowConsumer::DropNewest`] (the
    /// new one or older ones).
    pub dropped: usize,
    /// Subscribers closed by [`SlowConsumer::Close`] or found ended, and removed.
    pub removed: usize,
}

impl Published {
    /// Subscribers the message reached (sent or queued).
    #[must_use]
    pub fn reached(&self) -> usize {
        self.sent + self.queued
    }
}

/// Named topics and their subscribers. Cloning shares the same topics.
#[derive(Clone, Default)]
pub struct Broadcast {
    hub: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    topics: RwLock<HashMap<Box<str>, Arc<Topic>>>,
    config: BroadcastConfig,
    next_id: AtomicU64,
}

/// A topic's subscribers. Its lock is held for a whole publish, so every subscriber sees one
/// topic's messages in the same order.
#[derive(Default)]
struct Topic {
    subscribers: Mutex<HashMap<u64, Arc<Shared>>>,
}

impl Topic {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Shared>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A subscriber's messages waiting for room in its connection's output, with its policy.
pub(crate) struct Mailbox {
    queue: VecDeque<PreparedMessage>,
    bytes: usize,
    config: BroadcastConfig,
    dropped: u64,
    /// Live [`Subscriber`]s of this connection.
    owners: usize,
}

/// One connection's membership in a [`Broadcast`]: subscribes to and unsubscribes from
/// topics; dropping it leaves them all. Made by [`Broadcast::subscriber`].
pub struct Subscriber {
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    id: u64,
    topics: Vec<Box<str>>,
}

/// A connection a [`Subscriber`] can be made for: [`WebSocket`], [`WsWriter`], [`WsReader`].
pub trait Subscribable: sealed::Sealed {}

mod sealed {
    use std::sync::Arc;

    use crate::shared::Shared;

    /// A connection's shared state, opaque outside the crate.
    pub struct Link(pub(crate) Arc<Shared>);

    pub trait Sealed {
        fn link(&self) -> Link;
    }
}

impl sealed::Sealed for WebSocket {
    fn link(&self) -> sealed::Link {
        sealed::Link(Arc::clone(self.shared()))
    }
}
impl sealed::Sealed for WsWriter {
    fn link(&self) -> sealed::Link {
        sealed::Link(Arc::clone(self.shared()))
    }
}
impl sealed::Sealed for WsReader {
    fn link(&self) -> sealed::Link {
        sealed::Link(Arc::clone(self.shared()))
    }
}
impl Subscribable for WebSocket {}
impl Subscribable for WsWriter {}
impl Subscribable for WsReader {}

impl Broadcast {
    /// Topics whose subscribers get `config` unless they are made with their own.
    #[must_use]
    pub fn new(config: BroadcastConfig) -> Self {
        Broadcast {
            hub: Arc::new(Hub {
                config,
                ..Hub::default()
            }),
        }
    }

    /// A subscriber for `connection` with the default [`BroadcastConfig`] of this broadcast.
    #[must_use]
    pub fn subscriber(&self, connection: &impl Subscribable) -> Subscriber {
        self.subscriber_with(connection, self.hub.config)
    }

    /// A subscriber for `connection` with its own queue bound and policy. A connection has one
    /// queue: a second subscriber for it shares the queue and sets its policy.
    #[must_use]
    pub fn subscriber_with(
        &self,
        connection: &impl Subscribable,
        config: BroadcastConfig,
    ) -> Subscriber {
        let shared = sealed::Sealed::link(connection).0;
        {
            let mut inner = shared.lock();
            match inner.mailbox.as_deref_mut() {
                Some(mailbox) => {
                    mailbox.owners += 1;
                    mailbox.config = config;
                }
                None => {
                    inner.mailbox = Some(Box::new(Mailbox {
                        queue: VecDeque::new(),
                        bytes: 0,
                        config,
                        dropped: 0,
                        owners: 1,
                    }));
                }
            }
        }
        Subscriber {
            hub: Arc::clone(&self.hub),
            shared,
            id: self.hub.next_id.fetch_add(1, Ordering::Relaxed),
            topics: Vec::new(),
        }
    }

    /// Publishes `message` (a [`Message`](tether::Message) or a [`PreparedMessage`]) to every
    /// subscriber of `topic`, encoding it once. Never waits: see the
    /// [module documentation](self) for where the message goes and what a full queue does.
    pub fn publish(&self, topic: &str, message: impl Into<PreparedMessage>) -> Published {
        self.publish_prepared(topic, &message.into())
    }

    /// [`publish`](Broadcast::publish) of a message prepared once (e.g. for several topics).
    pub fn publish_prepared(&self, topic: &str, message: &PreparedMessage) -> Published {
        let mut published = Published::default();
        let Some(topic) = self.hub.topic(topic) else {
            return published;
        };
        let mut subscribers = topic.lock();
        subscribers.retain(|_, shared| {
            let mut inner = shared.lock();
            let (keep, wake) = deliver(&mut inner, message, &mut published);
            drop(inner);
            wake.run();
            keep
        });
        published
    }

    /// How many subscribers `topic` has.
    #[must_use]
    pub fn subscribers(&self, topic: &str) -> usize {
        self.hub.topic(topic).map_or(0, |t| t.lock().len())
    }

    /// The topics with at least one subscriber.
    #[must_use]
    pub fn topics(&self) -> Vec<String> {
        let topics = self.hub.topics.read().unwrap_or_else(|e| e.into_inner());
        topics
            .iter()
            .filter(|(_, t)| !t.lock().is_empty())
            .map(|(name, _)| name.to_string())
            .collect()
    }
}

impl std::fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcast")
            .field("config", &self.hub.config)
            .finish_non_exhaustive()
    }
}

impl Hub {
    fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        topics.get(name).cloned()
    }

    fn topic_or_insert(&self, name: &str) -> Arc<Topic> {
        if let Some(topic) = self.topic(name) {
            return topic;
        }
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(topics.entry(name.into()).or_default())
    }

    /// Removes subscriber `id` from `name`, and the topic once it is empty.
    fn leave(&self, name: &str, id: u64) {
        let Some(topic) = self.topic(name) else {
            return;
        };
        let empty = {
            let mut subscribers = topic.lock();
            subscribers.remove(&id);
            subscribers.is_empty()
        };
        if empty {
            let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
            // Still empty under the registry's lock: nobody joined meanwhile.
            if topics.get(name).is_some_and(|t| t.lock().is_empty()) {
                topics.remove(name);
            }
        }
    }
}

/// Hands `message` to one subscriber's connection; whether it stays subscribed.
fn deliver(
    inner: &mut Inner,
    message: &PreparedMessage,
    published: &mut Published,
) -> (bool, Wake) {
    let mut wake = Wake::default();
    if inner.transport_closed || inner.conn.closed().is_some() || inner.mailbox.is_none() {
        published.removed += 1;
        return (false, wake);
    }
    inner.pump_mailbox();
    let mailbox_empty = inner.mailbox.as_ref().is_some_and(|m| m.queue.is_empty());
    if mailbox_empty {
        let idle = inner.conn.poll_transmit().is_none();
        match inner.conn.send_prepared(message) {
            Ok(()) => {
                published.sent += 1;
                return (true, inner.queued(idle));
            }
            Err(SendError {
                kind: SendErrorKind::BufferFull { .. },
                ..
            }) => {}
            Err(_) => {
                // Closing or ended: it will get nothing more.
                published.removed += 1;
                return (false, wake);
            }
        }
    }
    let Some(mailbox) = inner.mailbox.as_deref_mut() else {
        return (false, wake);
    };
    let len = message.frame().len();
    let max = mailbox.config.max_queued_bytes;
    if mailbox.bytes + len > max {
        match mailbox.config.slow_consumer {
            SlowConsumer::DropNewest => {
                mailbox.dropped += 1;
                published.dropped += 1;
                return (true, wake);
            }
            SlowConsumer::DropOldest => {
                while mailbox.bytes + len > max {
                    let Some(old) = mailbox.queue.pop_front() else {
                        break;
                    };
                    mailbox.bytes -= old.frame().len();
                    mailbox.dropped += 1;
                    published.dropped += 1;
                }
                if len > max {
                    // Larger than the whole queue: it cannot be kept either.
                    mailbox.dropped += 1;
                    published.dropped += 1;
                    return (true, wake);
                }
            }
            SlowConsumer::Close(code) => {
                mailbox.release();
                mailbox.dropped += 1;
                published.removed += 1;
                let _ = inner.close(code, "slow consumer");
                wake.driver = inner.driver_waker.clone();
                return (false, wake);
            }
        }
    }
    mailbox.bytes += len;
    mailbox.queue.push_back(message.clone());
    published.queued += 1;
    (true, wake)
}

impl Mailbox {
    /// Forgets every queued message (the connection ended).
    pub(crate) fn release(&mut self) {
        self.queue = VecDeque::new();
        self.bytes = 0;
    }
}

impl Inner {
    /// Moves queued broadcast messages into the core's output while it has room.
    pub(crate) fn pump_mailbox(&mut self) {
        pump(&mut self.conn, self.mailbox.as_deref_mut());
    }

    /// Whether broadcast messages wait for room in the output.
    pub(crate) fn mailbox_waiting(&self) -> bool {
        self.mailbox.as_ref().is_some_and(|m| !m.queue.is_empty())
    }
}

/// Moves `mailbox`'s messages into `conn`'s output while it has room.
pub(crate) fn pump(conn: &mut Connection, mailbox: Option<&mut Mailbox>) {
    let Some(mailbox) = mailbox else {
        return;
    };
    while let Some(front) = mailbox.queue.front() {
        match conn.send_prepared(front) {
            Ok(()) => {
                mailbox.bytes -= front.frame().len();
                mailbox.queue.pop_front();
            }
            Err(SendError {
                kind: SendErrorKind::BufferFull { .. },
                ..
            }) => break,
            Err(_) => {
                mailbox.release();
                break;
            }
        }
    }
}

impl Subscriber {
    /// Subscribes to `topic`; `false` if already subscribed.
    pub fn subscribe(&mut self, topic: &str) -> bool {
        if self.topics.iter().any(|t| &**t == topic) {
            return false;
        }
        let joined = self.hub.topic_or_insert(topic);
        joined.lock().insert(self.id, Arc::clone(&self.shared));
        self.topics.push(topic.into());
        true
    }

    /// Unsubscribes from `topic`; `false` if not subscribed.
    pub fn unsubscribe(&mut self, topic: &str) -> bool {
        let Some(i) = self.topics.iter().position(|t| &**t == topic) else {
            return false;
        };
        self.topics.swap_remove(i);
        self.hub.leave(topic, self.id);
        true
    }

    /// The topics subscribed to.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(|t| &**t)
    }

    /// Messages the slow-consumer policy dropped for this connection so far.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.shared.lock().mailbox.as_ref().map_or(0, |m| m.dropped)
    }

    /// Bytes waiting in this subscriber's queue (at most
    /// [`BroadcastConfig::max_queued_bytes`]).
    #[must_use]
    pub fn queued_bytes(&self) -> usize {
        self.shared.lock().mailbox.as_ref().map_or(0, |m| m.bytes)
    }

    /// Bytes this connection holds for its peer: its queue plus its unwritten output (at most
    /// `max_queued_bytes` plus about `Config::high_watermark`).
    #[must_use]
    pub fn held_bytes(&self) -> usize {
        let inner = self.shared.lock();
        inner.mailbox.as_ref().map_or(0, |m| m.bytes)
            + inner.conn.poll_transmit().map_or(0, |t| t.len())
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        for topic in std::mem::take(&mut self.topics) {
            self.hub.leave(&topic, self.id);
        }
        let mut inner = self.shared.lock();
        if let Some(mailbox) = inner.mailbox.as_deref_mut() {
            mailbox.owners -= 1;
            if mailbox.owners == 0 {
                inner.mailbox = None;
            }
        }
    }
}
