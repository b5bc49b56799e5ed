//! The state the background driver and the user's handles share.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use tether::{Closed, Connection, Event, Instant, State};

/// Most Ping/Pong events kept for a user who does not look at them; newer ones are dropped
/// (the core has answered the Pings already).
const MAX_CONTROL_EVENTS: usize = 64;

/// The current time on the core's clock.
pub(crate) fn now() -> Instant {
    Instant::from(std::time::Instant::now())
}

/// One connection's state: the core, the events taken from it ahead of the user, and the
/// wakers of the three parties (the driver, the reading half, the writing half). Each party
/// holds the lock only for a few calls into the core.
///
/// Messages stay in the core until the user asks for one, so the core sees the user's pace:
/// reading pauses while unread messages exceed `max_message_size`, and a peer's violation
/// right behind unread messages is answered only after the user has taken them (and had the
/// chance to reply).
pub(crate) struct Shared {
    pub(crate) conn: Connection,
    /// Events taken from the core before the user asked: Pings and Pongs while no message
    /// waits in the core, everything once the connection is closing (the close handshake
    /// must read on), and a terminal event the reader took before the transport closed.
    events: VecDeque<Event>,
    queued_control: usize,
    /// The terminal information, once the core emitted it.
    pub(crate) closed: Option<Closed>,
    /// The reader has been told about the end.
    pub(crate) terminal_taken: bool,
    /// The driver has finished: the transport is closed.
    pub(crate) done: bool,
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
    /// Both sets of wakers.
    pub(crate) fn and(self, other: Wake) -> Wake {
        Wake(self.0.or(other.0), self.1.or(other.1), self.2.or(other.2))
    }

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
            queued_control: 0,
            closed: None,
            terminal_taken: false,
            done: false,
            handles: 0,
            driver: None,
            reader: None,
            writer: None,
        }))
    }

    /// The driver's share of the events: those that taking cannot misreport the user's pace.
    /// While open, that is Pings and Pongs when no message waits in the core and no failure
    /// is deferred (`wants_read`), so they do not pile up behind a user who does not look at
    /// them; once closing or closed, everything. Returns whether any were taken.
    pub(crate) fn pull_ahead(&mut self) -> bool {
        let mut any = false;
        loop {
            let all = matches!(self.conn.state(), State::Closing | State::Closed);
            if !all && (self.conn.has_unread_data() || !self.conn.wants_read()) {
                return any;
            }
            let Some(event) = self.conn.poll_event() else {
                return any;
            };
            any = true;
            self.keep(event);
        }
    }

    /// Queues an event taken from the core ahead of the user (Pings and Pongs beyond
    /// [`MAX_CONTROL_EVENTS`] are dropped, and everything but the end once no handle is left).
    fn keep(&mut self, event: Event) {
        match &event {
            Event::Closed(closed) => self.closed = Some(closed.clone()),
            _ if self.handles == 0 => return,
            Event::Ping(_) | Event::Pong(_) => {
                if self.queued_control >= MAX_CONTROL_EVENTS {
                    return;
                }
                self.queued_control += 1;
            }
            _ => {}
        }
        self.events.push_back(event);
    }

    /// The next event for the user: one taken ahead, or else the core's next. Returns the
    /// wakers to run too: taking a message can let the driver read again, or release a
    /// failure the core deferred behind it (our Close is then to be written).
    pub(crate) fn next_event(&mut self) -> (Option<Event>, Wake) {
        if let Some(event) = self.events.pop_front() {
            if matches!(event, Event::Ping(_) | Event::Pong(_)) {
                self.queued_control -= 1;
            }
            return (Some(event), Wake::default());
        }
        let wanted = self.conn.wants_read();
        let output = self.conn.buffered_output();
        let state = self.conn.state();
        let event = self.conn.poll_event();
        if let Some(Event::Closed(closed)) = &event {
            self.closed = Some(closed.clone());
        }
        let wake = if (!wanted && self.conn.wants_read())
            || self.conn.buffered_output() > output
            || self.conn.state() != state
        {
            self.wake_driver()
        } else {
            Wake::default()
        };
        (event, wake)
    }

    /// Puts back the event [`next_event`](Self::next_event) returned (the terminal one, which
    /// is reported only once the transport is closed too).
    pub(crate) fn put_back(&mut self, event: Event) {
        self.events.push_front(event);
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
        self.events.retain(|e| matches!(e, Event::Closed(_)));
        self.queued_control = 0;
        let _ = self.conn.close(now(), tether::CloseCode::GOING_AWAY, "");
        self.wake_driver()
    }
}

fn set(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}
