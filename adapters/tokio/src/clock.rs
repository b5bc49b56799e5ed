//! The adapter reads the clock and the OS random source; the core never does.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::Sleep;

use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};

/// The current time as the core counts it. Follows tokio's clock, so paused time works.
pub(crate) fn now() -> tether::Instant {
    tether::Instant::from(tokio::time::Instant::now().into_std())
}

/// The tokio instant of the core's `deadline`.
pub(crate) fn deadline(deadline: tether::Instant) -> tokio::time::Instant {
    let wait: Duration = deadline - now();
    tokio::time::Instant::now() + wait
}

/// A per-connection CSPRNG seeded from the operating system, for masking keys, nonces and
/// heartbeat payloads.
pub(crate) fn os_rng() -> std::io::Result<StdRng> {
    StdRng::try_from_rng(&mut SysRng).map_err(std::io::Error::other)
}

/// A tokio sleep that follows the core's next deadline, re-armed only when the deadline moves.
pub(crate) struct CoreTimer {
    sleep: Pin<Box<Sleep>>,
    armed: Option<tether::Instant>,
}

impl CoreTimer {
    pub(crate) fn new() -> Self {
        CoreTimer {
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
        }
    }

    /// The time to pass to `handle_timeout` if the core's deadline `next` is due at `now` or
    /// the sleep armed for it has fired; otherwise arms the sleep so `cx` is woken then.
    pub(crate) fn due(
        &mut self,
        cx: &mut Context<'_>,
        next: Option<tether::Instant>,
        now: tether::Instant,
    ) -> Option<tether::Instant> {
        let at = next?;
        if at <= now {
            return Some(now);
        }
        if self.armed != Some(at) {
            self.armed = Some(at);
            self.sleep.as_mut().reset(deadline(at));
        }
        self.sleep
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(crate::clock::now)
    }

    /// Re-arms the sleep for a fixed tokio instant (a deadline of the adapter's own).
    pub(crate) fn reset_at(&mut self, at: tokio::time::Instant) {
        self.armed = None;
        self.sleep.as_mut().reset(at);
    }

    /// Whether the sleep armed by `reset_at` has fired.
    pub(crate) fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> bool {
        self.sleep.as_mut().poll(cx).is_ready()
    }
}
