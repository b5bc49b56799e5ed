//! The per-connection driver: one thread owns the reads and the timers; the output is written by
//! whichever thread holds the write half at the time. Both share the core through one mutex and
//! one condition variable, and no lock is ever held across a system call.
//!
//! Received messages stay in the core until the user asks for one: polling is how the core learns
//! what the application has read, and it defers a failure behind unread messages until then
//! (see [`Connection::poll_event`]), so a reply to a message goes out before our Close.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

use tether::handshake::Request;
use tether::{Closed, Connection, Event, Instant, State as Phase, TransportAction};

use crate::Incoming;
use crate::stream::{ReadHalf, WriteHalf};

/// The core's clock, read from the system's monotonic clock.
pub(crate) fn now() -> Instant {
    Instant::from(StdInstant::now())
}

/// Most output bytes copied out of the core for one `write` call.
const WRITE_CHUNK: usize = 256 << 10;
/// Largest write scratch buffer kept while the connection is idle.
const SCRATCH_KEEP: usize = 16 << 10;
/// Stack size of a driver thread: it only moves bytes between the socket and the core.
const DRIVER_STACK: usize = 256 << 10;

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// The time until `deadline`, at least 1 ms (a socket timeout of zero means "none").
fn timeout_until(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| (d - now()).max(Duration::from_millis(1)))
}

/// Whether a socket timeout of `current` (outer `None`: unknown) should be replaced by
/// `desired`. A timeout that fires a little early is harmless (a spurious `handle_timeout`), so
/// the socket option is only changed when it would fire late or far too early: most reads make
/// no `setsockopt` call.
fn needs_reset(current: Option<Option<Duration>>, desired: Option<Duration>) -> bool {
    match (current, desired) {
        (None, _) => true,
        (Some(Some(c)), Some(d)) => c > d + d / 32 || c * 2 < d,
        (Some(c), d) => c != d,
    }
}

/// Who is flushing: the driver hands the write half over as soon as a user thread waits for it,
/// so that the reading thread is never stuck behind a large message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    Driver,
    User,
}

/// The write half and what goes with it, held by the shared state while nobody writes.
struct WriterSlot<W> {
    w: W,
    /// Output copied out of the core, so the lock is not held across `write`.
    scratch: Vec<u8>,
    /// The write timeout now set on the socket (outer `None`: unknown).
    timeout: Option<Option<Duration>>,
    /// Bytes were written since the last `flush` (a TLS writer may hold some back).
    dirty: bool,
}

/// Everything the handles and the driver share.
pub(crate) struct State<W> {
    pub(crate) conn: Connection,
    writer: Option<WriterSlot<W>>,
    /// User threads waiting to write.
    flush_waiters: usize,
    /// Received items taken from the core ahead of the user: Pings and Pongs while no message
    /// waits in the core, and everything once no reply can follow (see `may_pull`).
    pub(crate) events: VecDeque<Incoming>,
    /// Payload bytes in `events`.
    queued: usize,
    /// Reading pauses while `queued` is over this.
    recv_limit: usize,
    /// User threads blocked in `recv` or `next_event`, to be woken when a message arrives.
    pullers: usize,
    pub(crate) connected: bool,
    pub(crate) request: Option<Request>,
    pub(crate) closed: Option<Closed>,
    /// The core asked for the transport to be closed.
    shutdown: bool,
    /// The transport has been closed.
    pub(crate) transport_done: bool,
    /// The first I/O error seen.
    pub(crate) io_error: Option<io::Error>,
    /// A listener's connection slot, released when the transport closes.
    slot: Option<Box<dyn Send>>,
    /// Live user handles; when the last goes, the connection is closed with 1001.
    pub(crate) handles: usize,
}

impl<W> State<W> {
    /// Nothing is waiting to be written.
    pub(crate) fn output_idle(&self) -> bool {
        self.conn.buffered_output() == 0 && self.writer.as_ref().is_some_and(|s| !s.dirty)
    }

    /// Whether the driver may take the core's next event on the user's behalf. While the
    /// connection is open and the user can still answer, a message stays in the core (and so
    /// does whatever is behind it) until the user asks, and an empty poll is not made while
    /// reading is paused, since the core may then hold a deferred failure for the next poll.
    /// Before the handshake completes, after we sent Close and after the terminal event there
    /// is nothing left to reply to, so everything is taken (this is how `closed` becomes known).
    fn may_pull(&self) -> bool {
        match self.conn.state() {
            Phase::Open if self.handles > 0 && self.connected => {
                !self.conn.has_unread_data() && self.conn.wants_read()
            }
            // Open but not yet `connected`: the core's first event is `Connected`.
            _ => true,
        }
    }

    /// Notes a lifecycle event; returns what is for the user.
    fn record(&mut self, event: Event) -> Option<Incoming> {
        match event {
            Event::Connected { .. } => self.connected = true,
            Event::Request(request) => self.request = Some(request),
            Event::Closed(closed) => self.closed = Some(closed),
            Event::Message(m) => return Some(Incoming::Message(m)),
            Event::Ping(p) => return Some(Incoming::Ping(p)),
            Event::Pong(p) => return Some(Incoming::Pong(p)),
            _ => {}
        }
        None
    }

    /// Takes the next received item, waking the driver if it paused for the user.
    pub(crate) fn pop_event(&mut self, cond: &Condvar) -> Option<Incoming> {
        let item = self.events.pop_front()?;
        let over = self.queued > self.recv_limit;
        self.queued -= item.payload_len();
        if over && self.queued <= self.recv_limit {
            cond.notify_all();
        }
        Some(item)
    }

    /// The connection ended and its transport is closed.
    pub(crate) fn finished(&self) -> bool {
        self.transport_done
    }
}

pub(crate) struct Shared<W> {
    state: Mutex<State<W>>,
    pub(crate) cond: Condvar,
}

impl<W: WriteHalf> Shared<W> {
    /// Starts the driver thread for `conn` over the two halves.
    pub(crate) fn start<R: ReadHalf>(
        conn: Connection,
        reader: R,
        writer: W,
        slot: Option<Box<dyn Send>>,
    ) -> io::Result<Arc<Self>> {
        let read_size = conn.config().read_buffer_size.max(4096);
        let recv_limit = conn.config().max_message_size;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                conn,
                writer: Some(WriterSlot {
                    w: writer,
                    scratch: Vec::new(),
                    timeout: None,
                    dirty: false,
                }),
                flush_waiters: 0,
                events: VecDeque::new(),
                queued: 0,
                recv_limit,
                pullers: 0,
                connected: false,
                request: None,
                closed: None,
                shutdown: false,
                transport_done: false,
                io_error: None,
                slot,
                handles: 1,
            }),
            cond: Condvar::new(),
        });
        let driver = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tether-driver".into())
            .stack_size(DRIVER_STACK)
            .spawn(move || driver.run(reader, read_size))?;
        Ok(shared)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the core's events that need no user (see `State::may_pull`), notes a transport
    /// close, and wakes the waiting users if there is something for them.
    fn settle(&self, st: &mut State<W>) {
        let mut changed = false;
        while st.may_pull() {
            let Some(event) = st.conn.poll_event() else {
                break;
            };
            changed = true;
            if let Some(item) = st.record(event)
                && st.handles > 0
            {
                st.queued += item.payload_len();
                st.events.push_back(item);
            }
        }
        if !st.shutdown && matches!(st.conn.poll_transport(), Some(TransportAction::Close)) {
            st.shutdown = true;
            // Released before the transport closes: a peer that sees the close can reconnect.
            st.slot = None;
            changed = true;
        }
        if changed || st.pullers > 0 && st.conn.has_unread_data() {
            self.cond.notify_all();
        }
    }

    /// The user asks for the next event, once the items already taken are gone: it comes from
    /// the core, which so learns what the user has read. This may be when a deferred failure
    /// happens (its Close is written here), and it may let the driver read again.
    pub(crate) fn pull<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<W>>,
    ) -> (MutexGuard<'a, State<W>>, Option<Incoming>) {
        let could_read = st.conn.wants_read();
        let mut item = None;
        let mut polled = false;
        while let Some(event) = st.conn.poll_event() {
            polled = true;
            item = st.record(event);
            if item.is_some() {
                break;
            }
        }
        if !polled {
            return (st, None);
        }
        if !could_read && st.conn.wants_read() {
            self.cond.notify_all();
        }
        (self.drive(st, Who::User), item)
    }

    /// Blocks a user thread that found nothing to receive; see [`Shared::wait`].
    pub(crate) fn wait_for_event<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<W>>,
        until: Option<StdInstant>,
    ) -> (MutexGuard<'a, State<W>>, bool) {
        st.pullers += 1;
        let (mut st, timed_out) = self.wait(st, until);
        st.pullers -= 1;
        (st, timed_out)
    }

    /// After any input or command: hand out events, then close or flush the transport if the
    /// write half is free.
    pub(crate) fn drive<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<W>>,
        who: Who,
    ) -> MutexGuard<'a, State<W>> {
        self.settle(&mut st);
        let work = st.shutdown || !st.output_idle();
        if work && st.writer.is_some() {
            if who == Who::Driver && st.flush_waiters > 0 && !st.shutdown {
                return st;
            }
            st = self.flush(st, who);
        }
        st
    }

    /// Writes the core's output until it is empty (or, for the driver, until a user thread
    /// wants the write half), obeying a transport close on the way.
    fn flush<'a>(&'a self, mut st: MutexGuard<'a, State<W>>, who: Who) -> MutexGuard<'a, State<W>> {
        let Some(mut slot) = st.writer.take() else {
            return st;
        };
        loop {
            if st.shutdown {
                drop(st);
                let _ = slot.w.shutdown();
                drop(slot);
                st = self.lock();
                st.transport_done = true;
                self.cond.notify_all();
                return st;
            }
            if who == Who::Driver && st.flush_waiters > 0 {
                break;
            }
            let pending = st.conn.buffered_output();
            if pending == 0 && !slot.dirty {
                break;
            }
            if pending > 0 {
                slot.scratch.clear();
                for s in st.conn.output_slices() {
                    let room = WRITE_CHUNK - slot.scratch.len();
                    if room == 0 {
                        break;
                    }
                    slot.scratch.extend_from_slice(&s[..s.len().min(room)]);
                }
            }
            let desired = timeout_until(st.conn.poll_timeout());
            drop(st);
            if needs_reset(slot.timeout, desired) && slot.w.set_write_timeout(desired).is_ok() {
                slot.timeout = Some(desired);
            }
            let result = if pending > 0 {
                slot.w.write(&slot.scratch)
            } else {
                slot.w.flush().map(|()| 0)
            };
            st = self.lock();
            let now = now();
            match result {
                Ok(0) if pending > 0 => {
                    st.io_error
                        .get_or_insert_with(|| ErrorKind::WriteZero.into());
                    st.conn.handle_eof(now);
                }
                Ok(n) => {
                    if pending > 0 {
                        st.conn.consume_output(n);
                        slot.dirty = true;
                    } else {
                        slot.dirty = false;
                    }
                }
                Err(e) if is_timeout(&e) => st.conn.handle_timeout(now),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    st.io_error.get_or_insert(e);
                    st.conn.handle_eof(now);
                }
            }
            self.settle(&mut st);
        }
        if slot.scratch.capacity() > SCRATCH_KEEP {
            slot.scratch = Vec::new();
        }
        st.writer = Some(slot);
        self.cond.notify_all();
        st
    }

    /// Waits for a change, or until the core's next deadline (firing its timers) or `until`.
    /// Returns `true` once `until` has passed. Callers re-check their condition after each call.
    pub(crate) fn wait<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<W>>,
        until: Option<StdInstant>,
    ) -> (MutexGuard<'a, State<W>>, bool) {
        let std_now = StdInstant::now();
        if until.is_some_and(|u| u <= std_now) {
            return (st, true);
        }
        let now = Instant::from(std_now);
        let core = st.conn.poll_timeout();
        if core.is_some_and(|t| t <= now) {
            st.conn.handle_timeout(now);
            return (self.drive(st, Who::User), false);
        }
        let wait = match (core.map(|t| t - now), until.map(|u| u - std_now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        st = match wait {
            Some(d) => {
                self.cond
                    .wait_timeout(st, d)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
        };
        (st, false)
    }

    /// Writes everything queued so far (or waits while another thread does). Ends early if the
    /// transport closes.
    pub(crate) fn flush_all<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<W>>,
    ) -> MutexGuard<'a, State<W>> {
        st.flush_waiters += 1;
        loop {
            self.settle(&mut st);
            if st.transport_done || st.output_idle() && !st.shutdown {
                break;
            }
            if st.writer.is_some() {
                st = self.flush(st, Who::User);
                continue;
            }
            st = self.wait(st, None).0;
        }
        st.flush_waiters -= 1;
        st
    }

    /// Waits until the transport is closed.
    pub(crate) fn wait_finished<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<W>>,
    ) -> MutexGuard<'a, State<W>> {
        loop {
            st = self.drive(st, Who::User);
            if st.transport_done {
                return st;
            }
            st = self.wait(st, None).0;
        }
    }

    /// A user handle went away; the last one closes the connection with 1001 (or aborts an
    /// opening handshake) and lets the driver finish in the background.
    pub(crate) fn release(&self) {
        let mut st = self.lock();
        st.handles -= 1;
        if st.handles > 0 || st.transport_done {
            return;
        }
        st.events.clear();
        st.queued = 0;
        match st.conn.state() {
            tether::State::Open => {
                let _ = st.conn.close(now(), tether::CloseCode::GOING_AWAY, "");
            }
            tether::State::Connecting => st.conn.abort(),
            _ => {}
        }
        let st = self.drive(st, Who::User);
        self.cond.notify_all();
        drop(st);
    }

    /// The driver thread: read, feed the core, fire timers, until the transport is closed.
    fn run<R: ReadHalf>(self: Arc<Self>, mut reader: R, read_size: usize) {
        // Reads go into this thread's buffer and are copied into the core with `handle_data`:
        // the core's own buffer cannot be lent out without holding the lock across `read`.
        let mut buf = vec![0u8; read_size];
        let mut current: Option<Option<Duration>> = None;
        let mut st = self.lock();
        loop {
            let now = now();
            if st.conn.poll_timeout().is_some_and(|t| t <= now) {
                st.conn.handle_timeout(now);
            }
            st = self.drive(st, Who::Driver);
            if st.transport_done {
                return;
            }
            let paused = st.shutdown || !st.conn.wants_read() || st.queued > st.recv_limit;
            if paused {
                let wait = timeout_until(st.conn.poll_timeout());
                st = match wait {
                    Some(d) => {
                        self.cond
                            .wait_timeout(st, d)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                    None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                };
                continue;
            }
            let desired = timeout_until(st.conn.poll_timeout());
            drop(st);
            if needs_reset(current, desired) && reader.set_read_timeout(desired).is_ok() {
                current = Some(desired);
            }
            let result = reader.read(&mut buf);
            st = self.lock();
            let now = self::now();
            match result {
                Ok(0) => st.conn.handle_eof(now),
                Ok(n) => st.conn.handle_data(now, &buf[..n]),
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    st.io_error.get_or_insert(e);
                    st.conn.handle_eof(now);
                }
            }
        }
    }
}
