//! The state the driver task and the handles share: the core's `Connection`, a small queue of
//! received control items, the terminal information and the wakers of whoever waits on them.
//!
//! Received messages stay in the core until the reader asks for one: `poll_event` is how the
//! core learns that the application has taken a message, and a protocol failure found behind
//! unread messages waits for that (see `Connection::poll_event`), so replies to them are
//! written before our Close. The driver pulls events itself only where that cannot fire such
//! a failure early: Pings and Pongs while no message is unread, and everything once the
//! connection has ended (or the reader is gone).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tether::handshake::Request;
use tether::{CloseCode, Closed, Connection, Event, Message, SendError, SendErrorKind, State};

use crate::Error;
use crate::clock::now;

/// One item handed to the user by [`WebSocket::next_event`](crate::WebSocket::next_event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// A complete text or binary message.
    Message(Message),
    /// The peer sent a Ping (the core has already answered it with a Pong).
    Ping(Bytes),
    /// The peer sent a Pong that does not answer the core's own heartbeat Ping, typically the
    /// answer to [`WebSocket::ping`](crate::WebSocket::ping).
    Pong(Bytes),
}

impl Incoming {
    fn weight(&self) -> usize {
        64 + match self {
            Incoming::Message(m) => m.len(),
            Incoming::Ping(b) | Incoming::Pong(b) => b.len(),
        }
    }
}

/// What one event taken from the core was.
enum Pulled {
    /// The core has no event.
    Empty,
    /// An event for the adapter itself.
    Handled,
    /// An item for the reader.
    Item(Incoming),
}

/// Everything behind the lock.
pub(crate) struct Inner {
    pub(crate) conn: Connection,
    /// Items pulled from the core by the driver and not yet taken by the reader: Pings and
    /// Pongs while the connection is open (never a message: those wait in the core until the
    /// reader asks), everything left once it has ended.
    queue: VecDeque<Incoming>,
    queued_bytes: usize,
    /// Reading from the transport pauses while the queue holds more than this.
    queue_limit: usize,
    /// The terminal event's information, once it arrived.
    pub(crate) closed: Option<Closed>,
    /// Whether the reader has been told about the end (`None` or `Err(Closed)`).
    end_reported: bool,
    /// Server role: the request waiting for a decision.
    pub(crate) request: Option<Request>,
    /// The opening handshake completed.
    pub(crate) connected: bool,
    /// The driver is done with the transport.
    pub(crate) transport_closed: bool,
    /// Live handle halves (reader, writer): when both are gone the driver closes.
    halves: usize,
    /// A handle was created (before that, the handshake is driven by `accept` or `connect`).
    attached: bool,
    reader_alive: bool,
    /// The driver handled the drop of every handle.
    pub(crate) detached_handled: bool,
    pub(crate) driver_waker: Option<Waker>,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

/// Wakers to call once the lock is released.
#[derive(Default)]
pub(crate) struct Wake {
    read: Option<Waker>,
    write: Option<Waker>,
    driver: Option<Waker>,
}

impl Wake {
    pub(crate) fn run(self) {
        for w in [self.read, self.write, self.driver].into_iter().flatten() {
            w.wake();
        }
    }
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(conn: Connection) -> Arc<Shared> {
        let queue_limit = conn.config().max_message_size.max(1 << 20);
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                conn,
                queue: VecDeque::new(),
                queued_bytes: 0,
                queue_limit,
                closed: None,
                end_reported: false,
                request: None,
                connected: false,
                transport_closed: false,
                halves: 0,
                attached: false,
                reader_alive: true,
                detached_handled: false,
                driver_waker: None,
                read_waker: None,
                write_waker: None,
            }),
        })
    }

    /// Locks the state. A panic while the lock was held cannot leave the connection in a state
    /// worse than "ended", so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a command on the connection and wakes the driver if it made output to write.
    pub(crate) fn command<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut inner = self.lock();
        let before = inner.conn.buffered_output();
        let out = f(&mut inner.conn);
        let driver = (inner.conn.buffered_output() != before || before == 0)
            .then(|| inner.driver_waker.clone())
            .flatten();
        drop(inner);
        if let Some(w) = driver {
            w.wake();
        }
        out
    }

    /// A new handle half (reader or writer) exists.
    pub(crate) fn attach(&self) {
        let mut inner = self.lock();
        inner.halves += 1;
        inner.attached = true;
    }

    /// A handle half was dropped: when none is left the driver closes the connection.
    pub(crate) fn detach(&self, reader: bool) {
        let mut inner = self.lock();
        inner.halves -= 1;
        if reader {
            inner.reader_alive = false;
            inner.queue.clear();
            inner.queued_bytes = 0;
        }
        let w = inner.driver_waker.clone();
        drop(inner);
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Receives the next item: cancel safe (an item is removed only when returned). Messages
    /// come straight from the core, so it sees what the application has taken.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, Error>>> {
        let mut inner = self.lock();
        // Whoever polls now is the current reader; a stale waker must not count as "asking".
        let registered = inner.read_waker.take();
        let mut wake = Wake::default();
        let item = inner.next_item(&mut wake);
        let result = match item {
            Some(item) => Poll::Ready(Some(Ok(item))),
            None => match inner.closed.clone() {
                Some(closed) => {
                    let reported = std::mem::replace(&mut inner.end_reported, true);
                    if reported || closed.clean {
                        Poll::Ready(None)
                    } else {
                        Poll::Ready(Some(Err(Error::Closed(closed))))
                    }
                }
                None if inner.transport_closed => Poll::Ready(None),
                None => {
                    inner.read_waker = match registered {
                        Some(w) if w.will_wake(cx.waker()) => Some(w),
                        _ => Some(cx.waker().clone()),
                    };
                    Poll::Pending
                }
            },
        };
        drop(inner);
        wake.run();
        result
    }

    /// Queues `message`, waiting while the output buffer is full. On error the message is
    /// handed back.
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        message: &mut Option<Message>,
    ) -> Poll<Result<(), (Error, Message)>> {
        let Some(m) = message.take() else {
            return Poll::Ready(Ok(()));
        };
        let mut inner = self.lock();
        let before = inner.conn.buffered_output();
        match inner.conn.send(m) {
            Ok(()) => {
                let driver = if before == 0 {
                    inner.driver_waker.clone()
                } else {
                    None
                };
                drop(inner);
                if let Some(w) = driver {
                    w.wake();
                }
                Poll::Ready(Ok(()))
            }
            Err(SendError {
                kind: SendErrorKind::BufferFull { .. },
                data,
            }) => {
                *message = Some(data);
                set_waker(&mut inner.write_waker, cx);
                Poll::Pending
            }
            Err(e) => {
                let err = send_error(&inner, e.kind);
                Poll::Ready(Err((err, e.data)))
            }
        }
    }

    /// Runs a send-like command, waiting while the output buffer is full.
    pub(crate) fn poll_command<T>(
        &self,
        cx: &mut Context<'_>,
        arg: &mut Option<T>,
        f: impl FnOnce(&mut Connection, T) -> Result<(), SendError<T>>,
    ) -> Poll<Result<(), Error>> {
        let Some(value) = arg.take() else {
            return Poll::Ready(Ok(()));
        };
        let mut inner = self.lock();
        let before = inner.conn.buffered_output();
        match f(&mut inner.conn, value) {
            Ok(()) => {
                let driver = (before == 0).then(|| inner.driver_waker.clone()).flatten();
                drop(inner);
                if let Some(w) = driver {
                    w.wake();
                }
                Poll::Ready(Ok(()))
            }
            Err(SendError {
                kind: SendErrorKind::BufferFull { .. },
                data,
            }) => {
                *arg = Some(data);
                set_waker(&mut inner.write_waker, cx);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(send_error(&inner, e.kind))),
        }
    }

    /// Ready once everything queued has been handed to the transport (or it ended).
    pub(crate) fn poll_flushed(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.lock();
        if inner.conn.buffered_output() == 0 {
            return Poll::Ready(Ok(()));
        }
        if inner.transport_closed {
            return Poll::Ready(Err(closed_error(&inner)));
        }
        set_waker(&mut inner.write_waker, cx);
        Poll::Pending
    }

    /// Starts the close handshake (once) and waits for the terminal information.
    pub(crate) fn poll_close(
        &self,
        cx: &mut Context<'_>,
        start: &mut Option<(CloseCode, String)>,
    ) -> Poll<Result<Closed, Error>> {
        let mut inner = self.lock();
        if let Some((code, reason)) = start.take() {
            let now = now();
            match inner.conn.close(now, code, &reason) {
                Ok(()) | Err(tether::CloseError::AlreadyClosing | tether::CloseError::Closed) => {
                    if let Some(w) = inner.driver_waker.clone() {
                        w.wake();
                    }
                }
                Err(e) => {
                    return Poll::Ready(Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        e,
                    ))));
                }
            }
        }
        if let Some(closed) = &inner.closed {
            return Poll::Ready(Ok(closed.clone()));
        }
        if inner.transport_closed {
            return Poll::Ready(Err(closed_error(&inner)));
        }
        set_waker(&mut inner.write_waker, cx);
        Poll::Pending
    }
}

impl Inner {
    /// The driver's share of event handling: pulls the events it may take (see
    /// [`may_pull`](Inner::may_pull)) and wakes the reader when something waits for it, here
    /// or in the core.
    pub(crate) fn take_events(&mut self, wake: &mut Wake) {
        while self.may_pull() {
            match self.pull(wake) {
                Pulled::Empty => break,
                Pulled::Handled => {}
                Pulled::Item(item) => {
                    if self.reader_alive {
                        self.queued_bytes += item.weight();
                        self.queue.push_back(item);
                        if wake.read.is_none() {
                            wake.read = self.read_waker.take();
                        }
                    }
                }
            }
        }
        if self.read_waker.is_some() && self.conn.has_unread_data() {
            wake.read = self.read_waker.take();
        }
    }

    /// Whether the driver may take the core's next event without the reader asking. Taking a
    /// message would tell the core that the application has it, so the driver does that only
    /// when nobody can reply any more: the connection ended or the reader is gone. Otherwise it
    /// takes events only while no message is unread (so just Pings, Pongs and the terminal
    /// event come out) and no failure waits for the reader: either the reader is waiting
    /// (it polled the core just before) or the core wants to read (no failure is deferred).
    /// Before a handle exists it takes the handshake's events and stops at the first one.
    fn may_pull(&self) -> bool {
        if !self.reader_alive || self.conn.state() == State::Closed {
            return true;
        }
        if !self.attached {
            return !self.connected && self.request.is_none();
        }
        !self.conn.has_unread_data() && (self.read_waker.is_some() || self.conn.wants_read())
    }

    /// Takes one event from the core: the adapter's own (the handshake's, the terminal one)
    /// are handled here, the others are for the reader.
    fn pull(&mut self, wake: &mut Wake) -> Pulled {
        let Some(event) = self.conn.poll_event() else {
            return Pulled::Empty;
        };
        match event {
            Event::Message(m) => return Pulled::Item(Incoming::Message(m)),
            Event::Ping(p) => return Pulled::Item(Incoming::Ping(p)),
            Event::Pong(p) => return Pulled::Item(Incoming::Pong(p)),
            Event::Connected { .. } => self.connected = true,
            Event::Request(r) => self.request = Some(r),
            Event::Closed(c) => {
                self.closed = Some(c);
                self.wake_all(wake);
            }
            _ => {}
        }
        Pulled::Handled
    }

    /// The reader's next item: the queue first, then the core. Taking from the core can make
    /// work for the driver (a deferred failure now queues our Close; fewer unread bytes let it
    /// read again), so it is woken then, and only then.
    fn next_item(&mut self, wake: &mut Wake) -> Option<Incoming> {
        if let Some(item) = self.queue.pop_front() {
            let was_full = self.queued_bytes > self.queue_limit;
            self.queued_bytes -= item.weight();
            if was_full && self.queued_bytes <= self.queue_limit {
                wake.driver = self.driver_waker.clone();
            }
            return Some(item);
        }
        let reading = self.conn.wants_read();
        let output = self.conn.buffered_output();
        let state = self.conn.state();
        let deadline = self.conn.poll_timeout();
        let item = loop {
            match self.pull(wake) {
                Pulled::Empty => break None,
                Pulled::Handled => {}
                Pulled::Item(item) => break Some(item),
            }
        };
        if (!reading && self.conn.wants_read())
            || self.conn.buffered_output() != output
            || self.conn.state() != state
            || self.conn.poll_timeout() != deadline
        {
            wake.driver = self.driver_waker.clone();
        }
        item
    }

    /// The output buffer shrank: a waiting writer may go on.
    pub(crate) fn output_consumed(&mut self, wake: &mut Wake) {
        if wake.write.is_none() {
            wake.write = self.write_waker.take();
        }
    }

    /// The driver finished with the transport: wake everyone.
    pub(crate) fn finish(&mut self, wake: &mut Wake) {
        self.transport_closed = true;
        self.wake_all(wake);
    }

    fn wake_all(&mut self, wake: &mut Wake) {
        if let Some(w) = self.read_waker.take() {
            wake.read = Some(w);
        }
        if let Some(w) = self.write_waker.take() {
            wake.write = Some(w);
        }
    }

    /// Whether the reader has room for more received items. Once the connection has ended
    /// the core discards input, but reading goes on to see the end of the transport.
    pub(crate) fn has_room(&self) -> bool {
        self.queued_bytes <= self.queue_limit || self.closed.is_some()
    }

    /// Whether every handle half has been dropped.
    pub(crate) fn detached(&self) -> bool {
        self.halves == 0 && self.attached
    }

    pub(crate) fn state(&self) -> State {
        self.conn.state()
    }
}

fn set_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// A refused send: after an abnormal end, the terminal information says more than "closed".
fn send_error(inner: &Inner, kind: SendErrorKind) -> Error {
    match (&inner.closed, kind) {
        (Some(c), SendErrorKind::Closed | SendErrorKind::Closing) if !c.clean => {
            Error::Closed(c.clone())
        }
        _ => Error::Send(kind),
    }
}

fn closed_error(inner: &Inner) -> Error {
    match &inner.closed {
        Some(c) if !c.clean => Error::Closed(c.clone()),
        _ => Error::Send(SendErrorKind::Closed),
    }
}
