//! The state the driver task and the handles share: the core's `Connection` and the wakers of
//! whoever waits on it.
//!
//! Received data and events stay in the core until the application asks for the next item:
//! only the receive path ([`Inner::take_next`]) calls `Connection::read`, which is how the core
//! learns that the application has taken a message and come back for more. So a peer's Close or
//! protocol violation right behind messages is answered after the application's replies to
//! them, and flow control (`Connection::wants_read`, in bytes) is the core's alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use atomic_waker::AtomicWaker;

use bytes::Bytes;
use tether::{
    CloseCode, Closed, Connection, Data, Event, Message, SendError, SendErrorKind, State,
    TransportAction,
};

use crate::Error;
use crate::runtime::Transport;

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

/// What the receive path takes from the core: [`Incoming`] items, and the opening handshake's
/// completion (seen by the reconnecting client, whose handshake runs without a caller).
pub(crate) enum Received {
    Connected(Option<String>),
    /// `tether-resume`: what became of the session (the reconnecting client reports it).
    Session(tether::resume::SessionEvent),
    Item(Incoming),
}

/// Where the transport's read readiness goes. The driver and a receiver reading in its own task
/// both poll the transport's read side with the router's waker, so the transport holds one
/// registration whoever reads. A wake-up goes to the receiver while it waits in
/// [`WsReader::next_event`](crate::WsReader::next_event) (it then reads in its own task: no
/// hop through the driver's), otherwise to the driver.
pub(crate) struct Router {
    /// A receiver waits for input and reads it when woken.
    reader_waiting: AtomicBool,
    reader: AtomicWaker,
    driver: AtomicWaker,
}

impl std::task::Wake for Router {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.reader_waiting.swap(false, Ordering::AcqRel) {
            self.reader.wake();
        } else {
            self.driver.wake();
        }
    }
}

impl Router {
    /// The driver polls with `waker`: wake-ups not taken by a receiver go to it.
    pub(crate) fn register_driver(&self, waker: &Waker) {
        self.driver.register(waker);
    }

    /// A receiver that waited is gone (or done) without reading: a wake-up it may have
    /// taken goes to the driver, which reads instead.
    pub(crate) fn withdraw_reader(&self) {
        if !self.reader_waiting.swap(false, Ordering::AcqRel) {
            self.driver.wake();
        }
    }
}

/// Who reads input while a receiver waits for its next item.
#[derive(Clone, Copy)]
pub(crate) enum Receiving {
    /// The driver: it wakes the receiver when input arrived.
    ViaDriver,
    /// The receiver's own task (see [`Shared::poll_next`]).
    Inline { waited: bool },
}

/// Reads a receiver may do in its own task per poll before letting other tasks run.
const INLINE_READS: usize = 32;

/// Everything behind the lock.
pub(crate) struct Inner {
    pub(crate) conn: Connection,
    /// The runtime's clock, as the core counts time.
    pub(crate) now: fn() -> tether::Instant,
    /// Whether the reader has been told about the end (`None` or `Err(Closed)`).
    end_reported: bool,
    /// The driver is done with the transport.
    pub(crate) transport_closed: bool,
    /// The transport's read side ended (or failed).
    pub(crate) read_eof: bool,
    /// The [`Router`]'s waker, for every poll of the transport's read side.
    router: Waker,
    /// Live handle halves (reader, writer): when both are gone the driver closes
    /// (a byte: there are at most two).
    halves: u8,
    /// A handle was created (before that, the handshake is driven by `accept` or `connect`).
    attached: bool,
    /// Nobody will read again: the driver drops the core's events.
    pub(crate) reader_gone: bool,
    /// The driver handled the drop of every handle.
    pub(crate) detached_handled: bool,
    pub(crate) driver_waker: Option<Waker>,
    /// The transport, once the driver has it and until it is closed. It lives here, beside
    /// the core, so that a receiver or a sender can do the I/O in its own task (see
    /// [`Shared::poll_next`], [`Shared::poll_command`]); read readiness goes through the
    /// [`Router`], write readiness to the driver.
    pub(crate) stream: Option<Box<dyn Transport>>,
    /// Bytes were written since the last flush (a TLS transport may hold some back).
    flush_needed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    /// Broadcast messages waiting for room in the output, once the connection subscribed.
    pub(crate) mailbox: Option<Box<crate::broadcast::Mailbox>>,
}

/// Wakers to call once the lock is released.
#[derive(Default)]
pub(crate) struct Wake {
    pub(crate) read: Option<Waker>,
    pub(crate) write: Option<Waker>,
    pub(crate) driver: Option<Waker>,
}

impl Wake {
    /// Calls the wakers. Usually there are none: each slot is looked at in turn (an iterator
    /// over the three cost a receive or a send some 50 instructions, callgrind).
    pub(crate) fn run(self) {
        if let Some(w) = self.read {
            w.wake();
        }
        if let Some(w) = self.write {
            w.wake();
        }
        if let Some(w) = self.driver {
            w.wake();
        }
    }
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    pub(crate) router: Arc<Router>,
    /// The connection's span: entered while the state is locked, so the core's events are
    /// in it whichever task drives the connection.
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
}

/// The locked state (and, with `tracing`, the connection's span entered meanwhile).
#[cfg(not(feature = "tracing"))]
pub(crate) type Locked<'a> = MutexGuard<'a, Inner>;

/// The locked state, with the connection's span entered meanwhile.
#[cfg(feature = "tracing")]
pub(crate) struct Locked<'a> {
    // Dropped first: the lock is released inside the span.
    guard: MutexGuard<'a, Inner>,
    _entered: tracing::span::Entered<'a>,
}

#[cfg(feature = "tracing")]
impl std::ops::Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.guard
    }
}

#[cfg(feature = "tracing")]
impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.guard
    }
}

impl Shared {
    pub(crate) fn new(conn: Connection, now: fn() -> tether::Instant) -> Arc<Shared> {
        let router = Arc::new(Router {
            reader_waiting: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            driver: AtomicWaker::new(),
        });
        Arc::new(Shared {
            #[cfg(feature = "tracing")]
            span: crate::trace::adopt_or_new(conn.role()),
            router: Arc::clone(&router),
            inner: Mutex::new(Inner {
                conn,
                now,
                end_reported: false,
                transport_closed: false,
                read_eof: false,
                router: Waker::from(router),
                halves: 0,
                attached: false,
                reader_gone: false,
                detached_handled: false,
                driver_waker: None,
                stream: None,
                flush_needed: false,
                read_waker: None,
                write_waker: None,
                mailbox: None,
            }),
        })
    }

    /// Locks the state. A panic while the lock was held cannot leave the connection in a state
    /// worse than "ended", so poisoning is ignored.
    pub(crate) fn lock(&self) -> Locked<'_> {
        #[cfg(feature = "tracing")]
        let entered = self.span.enter();
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(feature = "tracing")]
        let guard = Locked {
            guard,
            _entered: entered,
        };
        guard
    }

    /// Queues `message` without waiting (the rule of [`poll_command`](Shared::poll_command)
    /// for what happens next); a refusal hands it back.
    pub(crate) fn try_send(&self, message: Message) -> Result<(), SendError<Message>> {
        let mut inner = self.lock();
        let idle = inner.conn.poll_transmit().is_none();
        inner.conn.send(message)?;
        inner.queued(idle).run();
        Ok(())
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
            inner.stop_reading();
            self.router.reader_waiting.store(false, Ordering::Release);
        }
        let w = inner.driver_waker.clone();
        drop(inner);
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Receives the next item: cancel safe (an item is removed only when returned).
    ///
    /// With `Receiving::Inline`, input is read in the caller's task when nothing is buffered,
    /// and a waiting caller is woken by read readiness itself (see [`Router`]): `waited` says
    /// the caller's previous poll was pending, so a wake-up routed to it since may not have
    /// been acted on. A caller that stops waiting without an item must
    /// [`withdraw_reader`](Router::withdraw_reader).
    pub(crate) fn poll_next(
        &self,
        cx: &mut Context<'_>,
        receiving: Receiving,
    ) -> Poll<Option<Result<Incoming, Error>>> {
        self.poll_item(cx, receiving, Some)
    }

    /// [`poll_next`](Shared::poll_next) for messages only: Pings and Pongs are passed over
    /// (the core has answered the Pings already), under the same lock.
    pub(crate) fn poll_message(
        &self,
        cx: &mut Context<'_>,
        receiving: Receiving,
    ) -> Poll<Option<Result<Message, Error>>> {
        self.poll_item(cx, receiving, |item| match item {
            Incoming::Message(m) => Some(m),
            Incoming::Ping(_) | Incoming::Pong(_) => None,
        })
    }

    /// The next item `pick` takes (it passes over those it returns `None` for).
    fn poll_item<T>(
        &self,
        cx: &mut Context<'_>,
        receiving: Receiving,
        pick: impl Fn(Incoming) -> Option<T>,
    ) -> Poll<Option<Result<T, Error>>> {
        let inline = matches!(receiving, Receiving::Inline { .. });
        let mut waited = matches!(receiving, Receiving::Inline { waited: true });
        let mut inner = self.lock();
        let mut wake = Wake::default();
        let mut reads = 0;
        // Taken lazily: while the next item is data already waiting and the core wants reads,
        // taking it changes nothing the driver acts on (`Connection::read`), so the common
        // case (a message that is there) compares no views. Iterations that change nothing
        // leave the view as it was at the start.
        let mut before = None;
        let result = loop {
            if before.is_none() && !inner.take_is_quiet() {
                before = Some(inner.driver_view());
            }
            match inner.next_item() {
                Some(Received::Item(item)) => {
                    if reads == 0 && std::mem::take(&mut waited) {
                        // An item the driver read: a readiness wake-up routed here meanwhile
                        // is the driver's to act on.
                        self.router.withdraw_reader();
                    }
                    if let Some(item) = pick(item) {
                        if reads > 0 {
                            inner.rearm_read(&mut wake);
                        }
                        break Poll::Ready(Some(Ok(item)));
                    }
                }
                Some(Received::Connected(_) | Received::Session(_)) => {}
                None if inline && reads < INLINE_READS && inner.read_inline(&mut wake) => {
                    reads += 1;
                }
                None if reads == INLINE_READS => {
                    // Busy input: let other tasks run, and carry on.
                    cx.waker().wake_by_ref();
                    break Poll::Pending;
                }
                None => {
                    let end = inner.poll_end(cx);
                    if inline && end.is_pending() {
                        self.router.reader.register(cx.waker());
                        self.router.reader_waiting.store(true, Ordering::Release);
                    }
                    break end;
                }
            }
        };
        if let Some(before) = before {
            inner.wake_driver_for(&before, &mut wake);
        }
        drop(inner);
        wake.run();
        result
    }

    /// Queues `message`, waiting while the output is over the high watermark. On error the
    /// message is handed back.
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        message: &mut Option<Message>,
    ) -> Poll<Result<(), (Error, Message)>> {
        self.poll_command(cx, message, Connection::send)
    }

    /// Runs a send-like command, waiting while the output is over the high watermark; on error
    /// the argument is handed back.
    pub(crate) fn poll_command<T>(
        &self,
        cx: &mut Context<'_>,
        arg: &mut Option<T>,
        f: impl FnOnce(&mut Connection, T) -> Result<(), SendError<T>>,
    ) -> Poll<Result<(), (Error, T)>> {
        let Some(value) = arg.take() else {
            return Poll::Ready(Ok(()));
        };
        let mut inner = self.lock();
        let idle = inner.conn.poll_transmit().is_none();
        match f(&mut inner.conn, value) {
            Ok(()) => {
                // Output that was waiting already is the driver's (or a writer's) to write:
                // nothing to wake (the common case while messages stream).
                if idle {
                    let wake = inner.queued(idle);
                    drop(inner);
                    wake.run();
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
            Err(e) => Poll::Ready(Err((send_error(&inner, e.kind), e.data))),
        }
    }

    /// Ready once everything queued has been handed to the transport (or it ended).
    pub(crate) fn poll_flushed(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.lock();
        if inner.conn.poll_transmit().is_none() {
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
            inner.close(code, &reason)?;
            if let Some(w) = inner.driver_waker.clone() {
                w.wake();
            }
        }
        if let Some(closed) = inner.conn.closed() {
            return Poll::Ready(Ok(closed.clone()));
        }
        if inner.transport_closed {
            return Poll::Ready(Err(closed_error(&inner)));
        }
        set_waker(&mut inner.write_waker, cx);
        Poll::Pending
    }
}

/// How many slices one vectored write passes at most.
const MAX_SLICES: usize = 64;

/// What the driver may have to act on, to tell whether taking an item changed it.
struct DriverView {
    wants_read: bool,
    unwritten: usize,
    transport: Option<TransportAction>,
    deadline: Option<tether::Instant>,
}

impl Inner {
    /// The application asks for its next item: the core's events first (Pings, Pongs, the
    /// handshake's completion; the terminal one is read from `Connection::closed`), then its
    /// data. A `read` that finds nothing tells the core the application is done with what it
    /// took before; that (or fewer unread bytes) can make work for the driver, which is woken
    /// then, and only then.
    pub(crate) fn take_next(&mut self, wake: &mut Wake) -> Option<Received> {
        if self.take_is_quiet() {
            return self.next_item();
        }
        let before = self.driver_view();
        let taken = self.next_item();
        self.wake_driver_for(&before, wake);
        taken
    }

    /// Whether taking the next item cannot change what the driver acts on: data is waiting
    /// and the core wants reads (see `Connection::read`; an event taken instead changes
    /// nothing either).
    fn take_is_quiet(&self) -> bool {
        self.conn.has_unread_data() && self.conn.wants_read()
    }

    /// [`take_next`](Inner::take_next) without waking the driver (the caller compares
    /// [`driver_view`](Inner::driver_view)s around a batch of calls).
    fn next_item(&mut self) -> Option<Received> {
        loop {
            match self.conn.poll_event() {
                Some(Event::Connected { subprotocol }) => {
                    return Some(Received::Connected(subprotocol));
                }
                Some(Event::Session(s)) => return Some(Received::Session(s)),
                Some(Event::Ping(p)) => return Some(Received::Item(Incoming::Ping(p))),
                Some(Event::Pong(p)) => return Some(Received::Item(Incoming::Pong(p))),
                Some(_) => {}
                None => {
                    return match self.conn.read() {
                        Some(Data::Message(m)) => Some(Received::Item(Incoming::Message(m))),
                        // The adapters turn streaming off: complete messages only.
                        Some(_) | None => None,
                    };
                }
            }
        }
    }

    /// Wakes the driver when what it acts on changed since `before` in a way it must see:
    /// reading may resume, output or a transport action appeared, a deadline came earlier
    /// (one that moved later only makes its timer fire early, which is harmless).
    fn wake_driver_for(&self, before: &DriverView, wake: &mut Wake) {
        let now = self.driver_view();
        let earlier = now
            .deadline
            .is_some_and(|t| before.deadline.is_none_or(|d| t < d));
        if (now.wants_read && !before.wants_read)
            || now.unwritten > before.unwritten
            || now.transport != before.transport
            || earlier
        {
            wake.driver = self.driver_waker.clone();
        }
    }

    /// Nothing is left to take: the end (once as an error if abnormal), or wait for more.
    fn poll_end<T>(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        match self.conn.closed() {
            Some(closed) => {
                let reported = std::mem::replace(&mut self.end_reported, true);
                if reported || closed.clean {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(Error::Closed(Box::new(closed.clone())))))
                }
            }
            None if self.transport_closed => Poll::Ready(None),
            None => {
                set_waker(&mut self.read_waker, cx);
                Poll::Pending
            }
        }
    }

    /// Reads once in the caller's task, when the driver would read now; `true` when anything
    /// happened (input, its end). The end of input wakes the driver; whatever else the input
    /// leaves for it to do, the caller's [`wake_driver_for`](Inner::wake_driver_for) finds.
    fn read_inline(&mut self, wake: &mut Wake) -> bool {
        if self.read_eof
            || self.stream.is_none()
            || self.driver_waker.is_none()
            || self.conn.poll_transport().is_some()
            || !self.conn.wants_read()
        {
            return false;
        }
        if !self.read_transport(None) {
            return false;
        }
        // What the input made the core answer (a Pong, the Close echo) is written now, as the
        // driver would before telling the receiver: when `recv` reports the end, the Close
        // echo is on its way.
        if self.read_eof || (self.conn.poll_transmit().is_some() && !self.write_inline(wake)) {
            wake.driver = self.driver_waker.clone();
        }
        if self.conn.closed().is_some() {
            wake.write = self.write_waker.take();
        }
        true
    }

    /// Reads once into the core's buffer, registering read readiness with the [`Router`];
    /// whether anything happened. The transport is asked for readiness first, so an idle
    /// connection holds no read buffer. `now` is the time of the read, or `None` to read the
    /// clock once something arrived.
    pub(crate) fn read_transport(&mut self, now: Option<tether::Instant>) -> bool {
        let clock = self.now;
        let Inner {
            stream: Some(stream),
            conn,
            router,
            ..
        } = self
        else {
            return false;
        };
        let mut cx = Context::from_waker(router);
        let result = match stream.poll_read_ready(&mut cx) {
            Poll::Ready(Ok(())) => {
                // Dropping the token without a commit (pending, error) means nothing was read.
                let mut buf = conn.recv_buf();
                match stream.poll_read(&mut cx, &mut buf) {
                    Poll::Pending => return false,
                    Poll::Ready(Ok(n)) => {
                        buf.commit(now.unwrap_or_else(clock), n);
                        Ok(n)
                    }
                    Poll::Ready(Err(e)) => Err(e),
                }
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => return false,
        };
        match result {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            _ => {
                self.read_eof = true;
                self.conn.handle_eof(now.unwrap_or_else(clock));
            }
        }
        true
    }

    /// A receiver leaves with an item after reading in its own task. Its last read may have
    /// taken the transport's readiness without leaving a waker behind (a short read clears
    /// it, and only a pending poll registers one), so input arriving before it comes back
    /// would wake nobody: the driver would not read (answer a Ping, a Close, feed a `Stream`)
    /// until a timer fired. The router's waker is registered again, or, when more input is
    /// signalled already (or the transport cannot tell), the driver is woken to read it.
    fn rearm_read(&mut self, wake: &mut Wake) {
        let Inner {
            stream: Some(stream),
            router,
            ..
        } = self
        else {
            return;
        };
        if stream
            .poll_read_ready(&mut Context::from_waker(router))
            .is_ready()
        {
            wake.driver = self.driver_waker.clone();
        }
    }

    /// Wakes `cx` when input reaches the core (used by a receiver that also waits elsewhere).
    pub(crate) fn wait_readable(&mut self, cx: &Context<'_>) {
        set_waker(&mut self.read_waker, cx);
    }

    fn driver_view(&self) -> DriverView {
        DriverView {
            wants_read: self.conn.wants_read(),
            unwritten: self.conn.poll_transmit().map_or(0, |t| t.len()),
            transport: self.conn.poll_transport(),
            deadline: self.conn.poll_timeout(),
        }
    }

    /// Starts the close handshake with `code` and `reason`; closing twice is harmless. Before
    /// the connection is open there is no handshake to run: it is aborted. A code that may not
    /// be sent or a reason over 123 bytes is [`Error::Close`] and changes nothing.
    pub(crate) fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        match self.conn.close((self.now)(), code, reason) {
            Ok(()) | Err(tether::CloseError::AlreadyClosing | tether::CloseError::Closed) => Ok(()),
            Err(tether::CloseError::NotOpen) => {
                self.conn.abort();
                Ok(())
            }
            Err(e) => Err(Error::Close(e)),
        }
    }

    /// Output was queued (`idle`: there was none before). A driver with output left is
    /// already writing (or waiting to). Otherwise, when nothing more is waiting to be read (so
    /// no more replies are coming right behind this one to be written together), it is
    /// written now, in the caller's task, and the driver is not woken for it. The wakers to
    /// call once the lock is released.
    pub(crate) fn queued(&mut self, idle: bool) -> Wake {
        let mut wake = Wake::default();
        if idle && (self.conn.has_unread_data() || !self.write_inline(&mut wake)) {
            wake.driver = self.driver_waker.clone();
        }
        wake
    }

    /// Writes the output now with the driver's waker (so a write that cannot finish wakes
    /// the driver, not the caller); `false` when the driver has to run too (no transport or
    /// waker yet, a transport action or a failure to act on). Output goes first either way,
    /// as in the driver's own loop.
    fn write_inline(&mut self, wake: &mut Wake) -> bool {
        let (Some(waker), true) = (self.driver_waker.clone(), self.stream.is_some()) else {
            return false;
        };
        let deadline = self.conn.poll_timeout();
        let mut cx = Context::from_waker(&waker);
        let failed = self.write(&mut cx, wake).is_err();
        // Anything for the driver to act on (a failure, a transport action, a new deadline
        // for its timer) means it runs after all.
        !failed && self.conn.poll_transport().is_none() && self.conn.poll_timeout() == deadline
    }

    /// Writes what the core queued, vectored, then flushes once it is all out; `Ok(true)`
    /// when anything was written. A failed write is the end of the transport (`Err`).
    pub(crate) fn write(&mut self, cx: &mut Context<'_>, wake: &mut Wake) -> Result<bool, ()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(false);
        };
        let mut progress = false;
        let mut failed = false;
        crate::broadcast::pump(&mut self.conn, self.mailbox.as_deref_mut());
        while let Some(transmit) = self.conn.poll_transmit() {
            let mut slices = [std::io::IoSlice::new(&[]); MAX_SLICES];
            let count = transmit.io_slices(&mut slices);
            let written = match &slices[..count] {
                [one] => stream.poll_write(cx, one),
                more => stream.poll_write_vectored(cx, more),
            };
            match written {
                Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Poll::Ready(Ok(0) | Err(_)) => {
                    failed = true;
                    break;
                }
                Poll::Ready(Ok(n)) => {
                    self.conn.advance(n);
                    self.flush_needed = true;
                    progress = true;
                    crate::broadcast::pump(&mut self.conn, self.mailbox.as_deref_mut());
                }
                Poll::Pending => break,
            }
        }
        if !failed && self.flush_needed && self.conn.poll_transmit().is_none() {
            match stream.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush_needed = false,
                Poll::Ready(Err(_)) => failed = true,
                Poll::Pending => {}
            }
        }
        if progress {
            self.output_consumed(wake);
        }
        if failed {
            // The transport cannot take more: it is as good as ended.
            self.conn.handle_eof((self.now)());
            self.input_arrived(wake);
            return Err(());
        }
        Ok(progress)
    }

    /// The application will never read again: the core drops what it received.
    pub(crate) fn stop_reading(&mut self) {
        self.reader_gone = true;
        self.conn.discard_incoming();
    }

    /// New input or time reached the core: the reader may have something, and once the
    /// connection has ended, whoever waits for the end has it.
    pub(crate) fn input_arrived(&mut self, wake: &mut Wake) {
        if self.conn.closed().is_some() {
            self.wake_all(wake);
        } else if let Some(w) = self.read_waker.take() {
            wake.read = Some(w);
        }
        // An acknowledgement (`tether-resume`) can make room for a waiting sender.
        if wake.write.is_none() && self.conn.is_writable() && self.conn.session().is_some() {
            wake.write = self.write_waker.take();
        }
    }

    /// Output was written: a sender waiting for room (or a flush) may go on.
    pub(crate) fn output_consumed(&mut self, wake: &mut Wake) {
        if wake.write.is_none() && self.conn.is_writable() {
            wake.write = self.write_waker.take();
        }
        if self.mailbox_waiting() {
            // Broadcast messages wait for this room: the driver moves them in.
            wake.driver = self.driver_waker.clone();
        }
    }

    /// The driver finished with the transport: wake everyone.
    pub(crate) fn finish(&mut self, wake: &mut Wake) {
        self.transport_closed = true;
        if let Some(mailbox) = self.mailbox.as_deref_mut() {
            mailbox.release();
        }
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
    match (inner.conn.closed(), kind) {
        (Some(c), SendErrorKind::Closed | SendErrorKind::Closing) if !c.clean => {
            Error::Closed(Box::new(c.clone()))
        }
        _ => Error::Send(kind),
    }
}

fn closed_error(inner: &Inner) -> Error {
    match inner.conn.closed() {
        Some(c) if !c.clean => Error::Closed(Box::new(c.clone())),
        _ => Error::Send(SendErrorKind::Closed),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io::{self, IoSlice};
    use std::sync::atomic::AtomicUsize;

    use tether::{Config, Instant, Role};

    use super::*;

    /// In-memory input with edge-triggered readiness, as tokio's and async-io's sockets have:
    /// a poll that finds no readiness stores the waker, a short read clears readiness, and new
    /// input wakes the stored waker (if there is one); output is kept, with the kind of
    /// write that brought it.
    #[derive(Default)]
    struct Pipe {
        input: VecDeque<u8>,
        ready: bool,
        waker: Option<Waker>,
        /// What was written, and in how many plain and vectored writes.
        output: Vec<u8>,
        plain: usize,
        vectored: usize,
    }

    impl Pipe {
        fn feed(&mut self, bytes: &[u8]) {
            self.input.extend(bytes);
            self.ready = true;
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }

    struct Edge(Arc<Mutex<Pipe>>);

    impl Transport for Edge {
        fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let mut pipe = self.0.lock().unwrap();
            if pipe.input.is_empty() {
                pipe.ready = false;
                pipe.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(pipe.input.len());
            for (to, from) in buf.iter_mut().zip(pipe.input.drain(..n)) {
                *to = from;
            }
            if n < buf.len() {
                pipe.ready = false;
            }
            Poll::Ready(Ok(n))
        }

        fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let mut pipe = self.0.lock().unwrap();
            if pipe.ready {
                Poll::Ready(Ok(()))
            } else {
                pipe.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }

        fn poll_write_vectored(
            &mut self,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut pipe = self.0.lock().unwrap();
            pipe.vectored += 1;
            for b in bufs {
                pipe.output.extend_from_slice(b);
            }
            Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
        }

        fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let mut pipe = self.0.lock().unwrap();
            pipe.plain += 1;
            pipe.output.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Output in one slice (a small message's frame) goes out as a plain write, which costs
    /// the kernel less than a vectored one; output in several (a large payload queued by
    /// reference after its header) goes out vectored, in one call.
    #[test]
    fn one_slice_is_a_plain_write_several_are_one_vectored_write() {
        let shared = open_server();
        let out = Arc::new(Mutex::new(Pipe::default()));
        let waker = Waker::from(Arc::new(Count::default()));
        let mut cx = Context::from_waker(&waker);
        let mut inner = shared.lock();
        inner.stream = Some(Box::new(Edge(Arc::clone(&out))));
        let mut wake = Wake::default();

        inner.conn.send(Message::text("hello")).unwrap();
        assert_eq!(inner.write(&mut cx, &mut wake), Ok(true));
        {
            let w = out.lock().unwrap();
            assert_eq!((w.plain, w.vectored), (1, 0));
            assert_eq!(w.output, b"\x81\x05hello");
        }

        let big = bytes::Bytes::from(vec![7u8; 64 << 10]);
        inner.conn.send(Message::Binary(big)).unwrap();
        assert_eq!(inner.write(&mut cx, &mut wake), Ok(true));
        let w = out.lock().unwrap();
        assert_eq!((w.plain, w.vectored), (1, 1));
        assert_eq!(w.output.len(), 7 + 10 + (64 << 10));
        assert!(w.output[7 + 10..].iter().all(|&b| b == 7));
    }

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The shared state of an open server connection, with no transport yet.
    fn open_server() -> Arc<Shared> {
        let conn = Connection::open(
            Role::Server,
            Config::default(),
            crate::clock::os_rng().expect("rng"),
            Instant::ZERO,
        );
        Shared::new(conn, || Instant::ZERO)
    }

    /// A client's text frame (masked with the all-zero key, which leaves the payload as is).
    fn text_frame(text: &str) -> Vec<u8> {
        let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(text.as_bytes());
        frame
    }

    /// A receiver that read its message in its own task (a short read, which clears the
    /// readiness without registering anyone) leaves the transport armed: input that arrives
    /// while it is away wakes the driver, which must answer Pings and a Close meanwhile.
    #[test]
    fn a_receiver_that_read_inline_leaves_the_transport_armed() {
        let shared = open_server();
        let pipe = Arc::new(Mutex::new(Pipe::default()));
        let driver = Arc::new(Count::default());
        let driver_waker = Waker::from(Arc::clone(&driver));
        shared.router.register_driver(&driver_waker);
        {
            let mut inner = shared.lock();
            inner.stream = Some(Box::new(Edge(Arc::clone(&pipe))));
            inner.driver_waker = Some(driver_waker);
        }
        pipe.lock().unwrap().feed(&text_frame("m0"));
        let reader = Waker::from(Arc::new(Count::default()));
        let got = shared.poll_message(
            &mut Context::from_waker(&reader),
            Receiving::Inline { waited: false },
        );
        assert!(
            matches!(&got, Poll::Ready(Some(Ok(m))) if *m == Message::text("m0")),
            "{got:?}"
        );
        let before = driver.0.load(Ordering::SeqCst);
        pipe.lock().unwrap().feed(&text_frame("m1"));
        assert!(
            driver.0.load(Ordering::SeqCst) > before,
            "input arrived while the receiver was away and nobody was woken to read it"
        );
    }
}
