//! The state the background driver and the user's handles share.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use tether::{Connection, Instant, State, TransportAction};

/// The current time on the core's clock.
pub(crate) fn now() -> Instant {
    Instant::from(std::time::Instant::now())
}

/// One connection's state: the core, and the wakers of the three parties (the driver, the
/// reading half, the writing half). Each party holds the lock only for a few calls into the
/// core.
///
/// Everything received stays in the core until the reader asks for it (`Connection::read`,
/// and `poll_event` for Pings and Pongs), so the core's flow control sees the user's pace and
/// its answer to a peer's violation or Close waits for the user's replies.
pub(crate) struct Shared {
    pub(crate) conn: Connection,
    /// The reader has been told about the end.
    pub(crate) terminal_taken: bool,
    /// The driver has finished: the transport is closed.
    pub(crate) done: bool,
    /// Nobody will read any more (the reading half was dropped): the driver drops events.
    pub(crate) unread: bool,
    /// Live handles; at zero the connection is closed.
    handles: usize,
    driver: Option<Waker>,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// The wakers to call once the lock is released.
#[derive(Default)]
#[must_use]
pub(crate) struct Wake(Option<Waker>, Option<Waker>, Option<Waker>);

impl Wake {
    pub(crate) fn run(self) {
        for waker in [self.0, self.1, self.2].into_iter().flatten() {
            waker.wake();
        }
    }
}

pub(crate) type SharedRef = Arc<Mutex<Shared>>;

pub(crate) fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the driver acts on: a change in any of it after a user's call needs the driver.
#[derive(PartialEq)]
pub(crate) struct DriverView(bool, usize, State, Option<TransportAction>);

impl Shared {
    pub(crate) fn new(conn: Connection) -> SharedRef {
        Arc::new(Mutex::new(Shared {
            conn,
            terminal_taken: false,
            done: false,
            unread: false,
            handles: 0,
            driver: None,
            reader: None,
            writer: None,
        }))
    }

    pub(crate) fn driver_view(&self) -> DriverView {
        let conn = &self.conn;
        let unwritten = conn.poll_transmit().map_or(0, |t| t.len());
        DriverView(
            conn.wants_read(),
            unwritten,
            conn.state(),
            conn.poll_transport(),
        )
    }

    /// Wakes the driver if a user's call changed what it acts on since `before`.
    pub(crate) fn wake_driver_if_changed(&mut self, before: &DriverView) -> Wake {
        if self.driver_view() != *before {
            self.wake_driver()
        } else {
            Wake::default()
        }
    }

    /// The reader is gone: received data and events are dropped from now on.
    pub(crate) fn discard_incoming(&mut self) -> Wake {
        self.unread = true;
        self.conn.discard_incoming();
        self.wake_driver()
    }

    pub(crate) fn set_driver(&mut self, waker: &Waker) {
        set(&mut self.driver, waker);
    }

    pub(crate) fn set_reader(&mut self, waker: &Waker) {
        set(&mut self.reader, waker);
    }

    pub(crate) fn set_writer(&mut self, waker: &Waker) {
        set(&mut self.writer, waker);
    }

    pub(crate) fn wake_driver(&mut self) -> Wake {
        Wake(self.driver.take(), None, None)
    }

    pub(crate) fn wake_users(&mut self, reader: bool, writer: bool) -> Wake {
        Wake(
            None,
            if reader { self.reader.take() } else { None },
            if writer { self.writer.take() } else { None },
        )
    }

    pub(crate) fn add_handle(&mut self) {
        self.handles += 1;
    }

    /// A handle went away; the last one closes the connection (1001, or an abort before it
    /// is open).
    pub(crate) fn drop_handle(&mut self) -> Wake {
        self.handles -= 1;
        if self.handles > 0 {
            return Wake::default();
        }
        close_or_abort(&mut self.conn, tether::CloseCode::GOING_AWAY, "");
        self.wake_driver()
    }
}

/// Starts the close handshake, or gives up on a connection that is not open yet.
pub(crate) fn close_or_abort(conn: &mut Connection, code: tether::CloseCode, reason: &str) {
    if let Err(tether::CloseError::NotOpen) = conn.close(now(), code, reason) {
        conn.abort();
    }
}

/// Keeps `waker` in `slot` (without a clone when it is the same one).
pub(crate) fn set(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}
