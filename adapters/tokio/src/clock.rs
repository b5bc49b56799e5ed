//! The adapter reads the clock and the OS random source; the core never does.

use std::time::Duration;

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
