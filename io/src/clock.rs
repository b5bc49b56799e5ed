//! The engine reads the runtime's clock and the OS random source; the core never does.

use std::marker::PhantomData;
use std::task::{Context, Poll};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};

use crate::runtime::{Runtime, Timer};

/// The current time as the core counts it, from the runtime's clock.
pub(crate) fn now<R: Runtime>() -> tether::Instant {
    tether::Instant::from(R::now())
}

/// The runtime instant of the core's `deadline`; `None` when it is too far away to represent
/// (a `Duration::MAX` timeout): such a deadline never fires.
fn runtime_deadline<R: Runtime>(deadline: tether::Instant) -> Option<std::time::Instant> {
    let wait: Duration = deadline - now::<R>();
    R::now().checked_add(wait)
}

/// `R::now() + d`, or `None` when that cannot be represented.
pub(crate) fn after<R: Runtime>(d: Duration) -> Option<std::time::Instant> {
    R::now().checked_add(d)
}

/// A per-connection CSPRNG seeded from the operating system, for masking keys, nonces and
/// heartbeat payloads.
pub(crate) fn os_rng() -> std::io::Result<StdRng> {
    StdRng::try_from_rng(&mut SysRng).map_err(std::io::Error::other)
}

/// A runtime timer that follows the core's next deadline, re-armed only when the deadline
/// moves (quinn's `drive_timer`).
pub(crate) struct CoreTimer<R: Runtime> {
    timer: Option<R::Timer>,
    /// The deadline the timer is armed for; `Instant::MAX` when none is (no `Option`: the
    /// driver lives in every connection's task, where each word counts).
    armed: tether::Instant,
    _runtime: PhantomData<R>,
}

impl<R: Runtime> CoreTimer<R> {
    pub(crate) fn new() -> Self {
        CoreTimer {
            timer: None,
            armed: tether::Instant::MAX,
            _runtime: PhantomData,
        }
    }

    /// The time to pass to `handle_timeout` if the core's deadline `next` is due at `current`
    /// or the armed timer has fired; otherwise arms the timer so `cx` is woken then.
    ///
    /// A deadline that moves later (the heartbeat is postponed by every message received)
    /// does not re-arm the runtime's timer: the earlier one fires, the core finds nothing due
    /// (a spurious `handle_timeout` is harmless) and the timer is armed for the new deadline
    /// then. So a busy connection resets its timer about once per heartbeat interval, not once
    /// per message.
    pub(crate) fn due(
        &mut self,
        cx: &mut Context<'_>,
        next: Option<tether::Instant>,
        current: tether::Instant,
    ) -> Option<tether::Instant> {
        let at = next?;
        if at <= current {
            return Some(current);
        }
        if at < self.armed {
            self.armed = at;
            match runtime_deadline::<R>(at) {
                Some(deadline) => self.timer.get_or_insert_with(R::timer).reset(deadline),
                None => {
                    // Beyond the clock's range: it never fires.
                    self.timer = None;
                    return None;
                }
            }
        }
        let timer = self.timer.as_mut()?;
        if timer.poll_elapsed(cx).is_ready() {
            self.armed = tether::Instant::MAX;
            return Some(now::<R>());
        }
        None
    }

    /// Arms the timer for `d` from now (a deadline of the engine's own).
    pub(crate) fn reset_after(&mut self, d: Duration) {
        self.armed = tether::Instant::MAX;
        match after::<R>(d) {
            Some(at) => self.timer.get_or_insert_with(R::timer).reset(at),
            None => self.timer = None,
        }
    }

    /// Whether the timer armed by `reset_after` has fired.
    pub(crate) fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer
            .as_mut()
            .is_some_and(|t| t.poll_elapsed(cx).is_ready())
    }
}

/// `fut`'s output, or `None` once `d` has passed on the runtime's clock (`Duration::MAX`:
/// no deadline). For bounding something `fut` cannot bound itself; a cancel-safe `fut` is
/// unaffected when it runs out.
pub async fn timeout<R: Runtime, F: std::future::Future>(d: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut timer = after::<R>(d).map(|at| {
        let mut t = R::timer();
        t.reset(at);
        t
    });
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        match timer.as_mut().map(|t| t.poll_elapsed(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    })
    .await
}
