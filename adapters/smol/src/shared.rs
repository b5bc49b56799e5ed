//! The state the background driver and the user's handles share.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use tether::{Closed, Connection, Event, Instant, State};

/// Most Ping/Pong events kept for a user who does not look at them; newer ones are dropped
/// (the core has answered the Pings already).
const MAX_CONTROL_EVENTS: usize = 64;
/// Most events queued for the user before the driver stops reading from the transport.
const MAX_EVENTS: usize = 4096;

/// The current time on the core's clock.
pub(crate) fn now() -> Instant {
    Instant::from(std::time::Instant::now())
}

/// One connection's state: the core, the events waiting for the user, and the wakers of the
/// three parties (the driver, the reading half, the writing half). Each party holds the lock
/// only for a few calls into the core.
pub(crate) struct Shared {
    pub(crate) conn: Connection,
    events: VecDeque<Event>,
    queued_bytes: usize,
    queued_control: usize,
    /// The terminal information, once the core emitted it.
    pub(crate) closed: Option<Closed>,
    /// The reader has been told about the end.
    pub(crate) terminal_taken: bool,
    /// The driver has finished: the transport is closed.
    pub(crate) done: bool,
    /// The driver skipped reading because the user's queue is full.
    pub(crate) read_paused: bool,
    /// Live handles; at zero the connection is closed and events are discarded.
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

impl Shared {
    pub(crate) fn new(conn: Connection) -> SharedRef {
        Arc::new(Mutex::new(Shared {
            conn,
            events: VecDeque::new(),
            queued_bytes: 0,
            queued_control: 0,
            closed: None,
            terminal_taken: false,
            done: false,
            read_paused: false,
            handles: 0,
            driver: None,
            reader: None,
            writer: None,
        }))
    }

    /// Moves the core's events into the user's queue. Returns whether any arrived.
    pub(crate) fn drain_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.conn.poll_event() {
            any = true;
            match &event {
                Event::Closed(closed) => self.closed = Some(closed.clone()),
                Event::Message(m) => self.queued_bytes += m.len(),
                Event::Ping(_) | Event::Pong(_) => {
                    if self.queued_control >= MAX_CONTROL_EVENTS {
                        continue;
                    }
                    self.queued_control += 1;
                }
                _ => {}
            }
            if self.handles == 0 && !matches!(event, Event::Closed(_)) {
                self.forget(&event);
                continue;
            }
            self.events.push_back(event);
        }
        any
    }

    /// Whether the driver may read more: the user's queue has room (or the connection is
    /// closing, when the remaining frames must be read to finish the close handshake).
    pub(crate) fn has_room(&self) -> bool {
        self.conn.state() != State::Open
            || (self.queued_bytes < self.conn.config().max_message_size
                && self.events.len() < MAX_EVENTS)
    }

    pub(crate) fn pop_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        self.forget(&event);
        Some(event)
    }

    pub(crate) fn front_event(&self) -> Option<&Event> {
        self.events.front()
    }

    fn forget(&mut self, event: &Event) {
        match event {
            Event::Message(m) => self.queued_bytes -= m.len(),
            Event::Ping(_) | Event::Pong(_) => self.queued_control -= 1,
            _ => {}
        }
    }

    /// After the reader took an event: the driver resumes reading if it had paused.
    pub(crate) fn unpause(&mut self) -> Wake {
        if self.read_paused && self.has_room() {
            self.read_paused = false;
            return self.wake_driver();
        }
        Wake::default()
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
    /// is open) and stops the queueing of events nobody will read.
    pub(crate) fn drop_handle(&mut self) -> Wake {
        self.handles -= 1;
        if self.handles > 0 {
            return Wake::default();
        }
        self.events.clear();
        self.queued_bytes = 0;
        self.queued_control = 0;
        let _ = self.conn.close(now(), tether::CloseCode::GOING_AWAY, "");
        self.read_paused = false;
        self.wake_driver()
    }
}

fn set(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}
