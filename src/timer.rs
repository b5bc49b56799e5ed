//! The connection's timers: one table of optional deadlines; the next deadline is the earliest.

use crate::Instant;

/// Every timer a connection can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The opening handshake must complete by then.
    Handshake,
    /// Send a heartbeat Ping.
    Ping,
    /// The heartbeat Pong must arrive by then.
    Pong,
    /// Something other than a Pong must arrive by then.
    Idle,
    /// The peer's Close must arrive by then.
    Close,
    /// Close the transport by then even if output is still queued, or (client after a clean
    /// close) if the server has not closed it.
    Linger,
    /// A protocol failure deferred behind unread messages happens by then even if they stay
    /// unread.
    Deferred,
    /// Runs while the connection is busy receiving (input keeps emptying the input buffer):
    /// its buffers are kept for reuse (the input buffer without zeroing it again). At the
    /// deadline it is moved on if input emptied the buffer meanwhile; otherwise the buffers
    /// are given back (`linger.rs`).
    InputBuffer,
    /// Runs while the connection is busy sending (its output keeps being written out): its
    /// output buffer is kept for reuse. At the deadline it is moved on if the output was
    /// written out meanwhile; otherwise the buffer is given back (`linger.rs`).
    OutputBuffer,
    /// A received compressed piece is inflated in steps: the next one is due (at once).
    Inflate,
    /// Received messages must be acknowledged by then (`tether-resume`).
    Ack,
}

const COUNT: usize = 11;

impl Timer {
    pub(crate) const ALL: [Timer; COUNT] = [
        Timer::Handshake,
        Timer::Ping,
        Timer::Pong,
        Timer::Idle,
        Timer::Close,
        Timer::Linger,
        Timer::Deferred,
        Timer::InputBuffer,
        Timer::OutputBuffer,
        Timer::Inflate,
        Timer::Ack,
    ];
}

/// One deadline per timer; [`Instant::MAX`] stands for "not running" (a deadline there could
/// never be reached anyway), which keeps the table at 8 bytes a timer.
#[derive(Clone, Debug)]
pub(crate) struct TimerTable {
    deadlines: [Instant; COUNT],
}

impl Default for TimerTable {
    fn default() -> Self {
        TimerTable {
            deadlines: [Instant::MAX; COUNT],
        }
    }
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = at;
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = Instant::MAX;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        Some(self.deadlines[timer as usize]).filter(|&at| at != Instant::MAX)
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [Instant::MAX; COUNT];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        let at = self.deadlines.iter().copied().min()?;
        (at != Instant::MAX).then_some(at)
    }

    /// Stops and returns the earliest timer other than `except` due at `now`, if any.
    pub(crate) fn take_expired(&mut self, now: Instant, except: Timer) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .filter(|t| *t != except && self.get(*t).is_some_and(|d| d <= now))
            .min_by_key(|t| self.deadlines[*t as usize])?;
        self.stop(timer);
        Some(timer)
    }
}
