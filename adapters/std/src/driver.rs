//! The per-connection driver: one thread owns the reads and the timers; the output is written by
//! whichever thread holds the write half at the time. Both share the core through one mutex and
//! one condition variable, and no lock is ever held across a system call.
//!
//! Received data stays in the core until the user asks for it ([`Shared::read`] is the only
//! caller of [`Connection::read`]): that is how the core learns what the application has read,
//! and flow control is the core's own ([`Connection::wants_read`]).

use std::io::{self, ErrorKind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

use tether::{Connection, Data, Instant, TransportAction};

use crate::reconnect::Supervised;
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
    /// Output copied out of the core, so the lock is not held across `write` (a `Transmit`
    /// borrows the connection, which lives under the lock).
    scratch: Vec<u8>,
    /// The write timeout now set on the socket (outer `None`: unknown).
    timeout: Option<Option<Duration>>,
    /// Bytes were written since the last `flush` (a TLS writer may hold some back).
    dirty: bool,
}

impl<W> WriterSlot<W> {
    fn new(w: W) -> Self {
        WriterSlot {
            w,
            scratch: Vec::new(),
            timeout: None,
            dirty: false,
        }
    }
}

/// Everything the handles and the driver share.
pub(crate) struct State<W> {
    pub(crate) conn: Connection,
    writer: Option<WriterSlot<W>>,
    /// User threads waiting to write.
    flush_waiters: usize,
    /// Threads blocked on the condition variable: it is only signalled when someone waits.
    waiters: usize,
    /// The write side was shut down for [`TransportAction::Shutdown`].
    write_shut: bool,
    /// The transport has been closed.
    pub(crate) transport_done: bool,
    /// The first I/O error seen.
    pub(crate) io_error: Option<io::Error>,
    /// A listener's connection slot, released when the transport closes.
    slot: Option<Box<dyn Send>>,
    /// Live user handles; when the last goes, the connection is closed with 1001.
    pub(crate) handles: usize,
    /// A receiving handle exists. Without one, events are dropped as they come (received data
    /// is dropped by the core, see [`Connection::discard_incoming`]).
    pub(crate) receiving: bool,
    /// The reconnecting client's supervisor, which feeds its queue into the connection.
    pub(crate) supervised: Option<Box<Supervised>>,
}

impl<W> State<W> {
    /// Nothing is waiting to be written.
    pub(crate) fn output_idle(&self) -> bool {
        self.conn.poll_transmit().is_none() && self.writer.as_ref().is_none_or(|s| !s.dirty)
    }

    /// The core asked for the transport to be closed.
    fn closing(&self) -> bool {
        self.conn.poll_transport() == Some(TransportAction::Close)
    }

    /// The writer has something to do: output, a flush, a half-close or a close.
    fn write_work(&self) -> bool {
        !self.output_idle()
            || match self.conn.poll_transport() {
                Some(TransportAction::Shutdown) => !self.write_shut,
                Some(TransportAction::Close) => !self.transport_done,
                _ => false,
            }
    }

    /// Puts a fresh connection on a fresh transport (the reconnecting client).
    pub(crate) fn replace(&mut self, mut conn: Connection, writer: W) {
        if !self.receiving {
            conn.discard_incoming();
        }
        self.conn = conn;
        self.writer = Some(WriterSlot::new(writer));
        self.write_shut = false;
        self.transport_done = false;
        self.io_error = None;
    }
}

pub(crate) struct Shared<W> {
    state: Mutex<State<W>>,
    cond: Condvar,
}

impl<W: WriteHalf> Shared<W> {
    /// Shared state for `conn`; `writer` is `None` until a transport exists.
    pub(crate) fn new(
        conn: Connection,
        writer: Option<W>,
        slot: Option<Box<dyn Send>>,
        supervised: Option<Box<Supervised>>,
    ) -> Arc<Self> {
        Arc::new(Shared {
            state: Mutex::new(State {
                conn,
                transport_done: writer.is_none(),
                writer: writer.map(WriterSlot::new),
                flush_waiters: 0,
                waiters: 0,
                write_shut: false,
                io_error: None,
                slot,
                handles: 1,
                receiving: true,
                supervised,
            }),
            cond: Condvar::new(),
        })
    }

    /// Starts the driver thread for `conn` over the two halves.
    pub(crate) fn start<R: ReadHalf>(
        conn: Connection,
        reader: R,
        writer: W,
        slot: Option<Box<dyn Send>>,
    ) -> io::Result<Arc<Self>> {
        let shared = Shared::new(conn, Some(writer), slot, None);
        let driver = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tether-driver".into())
            .stack_size(DRIVER_STACK)
            .spawn(move || driver.run(reader))?;
        Ok(shared)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every waiting thread, if any waits.
    pub(crate) fn wake(&self, st: &State<W>) {
        if st.waiters > 0 {
            self.cond.notify_all();
        }
    }

    /// Blocks on the condition variable for at most `timeout`.
    pub(crate) fn sleep<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<W>>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State<W>> {
        st.waiters += 1;
        let mut st = match timeout {
            Some(d) => {
                self.cond
                    .wait_timeout(st, d)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
        };
        st.waiters -= 1;
        st
    }

    /// What the core wants done after any input or command, short of writing: the supervisor's
    /// queue goes into the connection as room allows, events nobody will receive are dropped,
    /// and a listener slot is released before the transport closes (so a peer that sees the
    /// close can reconnect).
    fn settle(&self, st: &mut State<W>) {
        if let Some(supervised) = st.supervised.as_mut() {
            supervised.sup.send_queued(&mut st.conn);
        }
        if !st.receiving {
            while st.conn.poll_event().is_some() {}
        }
        if st.closing() {
            st.slot = None;
        }
    }

    /// Takes the next received data for the user: the only caller of [`Connection::read`]. A
    /// read that finds nothing tells the core the user is done with what it took before (a
    /// deferred Close or violation is then acted on: drive the output afterwards). Wakes the
    /// driver if it may read again, and the reconnecting client's loop once an ended connection
    /// has nothing left to read.
    pub(crate) fn read(&self, st: &mut State<W>) -> Option<Data> {
        let could_read = st.conn.wants_read();
        let data = st.conn.read();
        let drained = data.is_some() && st.transport_done && !st.conn.has_unread_data();
        if drained || !could_read && st.conn.wants_read() {
            self.wake(st);
        }
        data
    }

    /// After any input or command: settle, then write the output (or close the transport) if
    /// the write half is free. Returns with nothing left to write, unless another thread holds
    /// the write half (it writes what is queued) or the driver gave way to a user thread.
    pub(crate) fn drive<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<W>>,
        who: Who,
    ) -> MutexGuard<'a, State<W>> {
        self.settle(&mut st);
        if st.write_work() && st.writer.is_some() {
            if who == Who::Driver && st.flush_waiters > 0 && !st.closing() {
                return st;
            }
            st = self.flush(st, who);
        }
        st
    }

    /// Whether [`drive`](Shared::drive) has something to do now.
    pub(crate) fn needs_drive(st: &State<W>) -> bool {
        st.write_work() && st.writer.is_some()
    }

    /// Writes the core's output until it is empty (or, for the driver, until a user thread
    /// wants the write half), obeying the core's transport actions on the way: a half-close
    /// once, or closing the transport.
    fn flush<'a>(&'a self, mut st: MutexGuard<'a, State<W>>, who: Who) -> MutexGuard<'a, State<W>> {
        let Some(mut slot) = st.writer.take() else {
            return st;
        };
        loop {
            if st.closing() {
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
            let pending = st.conn.poll_transmit().map_or(0, |t| t.len());
            let half_close = !st.write_shut
                && !slot.dirty
                && st.conn.poll_transport() == Some(TransportAction::Shutdown);
            if pending == 0 && !slot.dirty && !half_close {
                break;
            }
            if let Some(transmit) = st.conn.poll_transmit() {
                slot.scratch.clear();
                for run in transmit.iter() {
                    let room = WRITE_CHUNK - slot.scratch.len();
                    if room == 0 {
                        break;
                    }
                    slot.scratch.extend_from_slice(&run[..run.len().min(room)]);
                }
            }
            let desired = timeout_until(st.conn.poll_timeout());
            drop(st);
            if needs_reset(slot.timeout, desired) && slot.w.set_write_timeout(desired).is_ok() {
                slot.timeout = Some(desired);
            }
            let result = if pending > 0 {
                slot.w.write(&slot.scratch)
            } else if slot.dirty {
                slot.w.flush().map(|()| 0)
            } else {
                // The peer sees our end of stream and keeps sending until its own; the core
                // discards what arrives meanwhile. A failure here is the transport's end.
                let _ = slot.w.shutdown_write();
                Ok(0)
            };
            st = self.lock();
            let now = now();
            match result {
                Ok(0) if pending > 0 => {
                    st.io_error
                        .get_or_insert_with(|| ErrorKind::WriteZero.into());
                    st.conn.handle_eof(now);
                }
                Ok(n) if pending > 0 => {
                    st.conn.advance(n);
                    slot.dirty = true;
                }
                Ok(_) if slot.dirty => slot.dirty = false,
                Ok(_) => st.write_shut = true,
                Err(e) if is_timeout(&e) => st.conn.handle_timeout(now),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    st.io_error.get_or_insert(e);
                    st.conn.handle_eof(now);
                }
            }
            self.settle(&mut st);
            self.wake(&st);
        }
        if slot.scratch.capacity() > SCRATCH_KEEP {
            slot.scratch = Vec::new();
        }
        st.writer = Some(slot);
        self.wake(&st);
        st
    }

    /// Waits for a change, or until the core's next deadline (firing its timers) or `until`.
    /// Returns `true` once `until` has passed. Callers re-check their condition after each call.
    pub(crate) fn wait<'a>(
        &'a self,
        st: MutexGuard<'a, State<W>>,
        until: Option<StdInstant>,
    ) -> (MutexGuard<'a, State<W>>, bool) {
        let std_now = StdInstant::now();
        if until.is_some_and(|u| u <= std_now) {
            return (st, true);
        }
        let now = Instant::from(std_now);
        let core = st.conn.poll_timeout().filter(|_| !st.transport_done);
        if core.is_some_and(|t| t <= now) {
            let mut st = st;
            st.conn.handle_timeout(now);
            self.wake(&st);
            return (self.drive(st, Who::User), false);
        }
        let wait = match (core.map(|t| t - now), until.map(|u| u - std_now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (self.sleep(st, wait), false)
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
            if st.transport_done || !st.write_work() {
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

    /// A user handle went away. A receiving one takes the reader with it: the core drops
    /// received data from now on. The last one closes the connection with 1001 (or aborts an
    /// opening handshake) and lets the driver finish in the background.
    pub(crate) fn release(&self, receives: bool) {
        let mut st = self.lock();
        st.handles -= 1;
        if receives {
            st.receiving = false;
            st.conn.discard_incoming();
        }
        if st.transport_done {
            return;
        }
        if st.handles == 0 {
            match st.conn.state() {
                tether::State::Open => {
                    let _ = st.conn.close(now(), tether::CloseCode::GOING_AWAY, "");
                }
                tether::State::Connecting => st.conn.abort(),
                _ => {}
            }
        }
        self.wake(&st);
        drop(self.drive(st, Who::User));
    }

    /// The driver loop: read, feed the core, fire timers, until the transport is closed. The
    /// connection's own thread runs it, or the reconnecting client's, once per connection.
    pub(crate) fn run<R: ReadHalf>(&self, mut reader: R) {
        // Reads go into this thread's buffer and are copied into the core with `handle_data`:
        // the core's `recv_buf` borrows the connection, which lives under the lock, and the
        // lock must not be held across a blocking `read` (it would stall every sender).
        let mut st = self.lock();
        let mut buf = vec![0u8; st.conn.config().read_buffer_size.max(4096)];
        let mut current: Option<Option<Duration>> = None;
        // After the end of stream, or a read error, nothing more is read.
        let mut eof = false;
        loop {
            let now = now();
            if st.conn.poll_timeout().is_some_and(|t| t <= now) {
                st.conn.handle_timeout(now);
                self.wake(&st);
            }
            st = self.drive(st, Who::Driver);
            if st.transport_done {
                return;
            }
            let desired = timeout_until(st.conn.poll_timeout());
            if eof || st.closing() || !st.conn.wants_read() {
                st = self.sleep(st, desired);
                continue;
            }
            drop(st);
            if needs_reset(current, desired) && reader.set_read_timeout(desired).is_ok() {
                current = Some(desired);
            }
            let result = reader.read(&mut buf);
            st = self.lock();
            let now = self::now();
            match result {
                Ok(0) => {
                    eof = true;
                    st.conn.handle_eof(now);
                }
                Ok(n) => st.conn.handle_data(now, &buf[..n]),
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    eof = true;
                    st.io_error.get_or_insert(e);
                    st.conn.handle_eof(now);
                }
            }
            self.wake(&st);
        }
    }
}
