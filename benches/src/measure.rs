//! Per-thread CPU time (through `cpu-time`, which wraps `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`)
//! and the adaptive batch loop every in-memory scenario uses.

use std::time::Duration;

use cpu_time::ThreadTime;

/// What one sample processed and the CPU time it took on this thread.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub ops: u64,
    pub bytes: u64,
    pub cpu: Duration,
}

impl Measured {
    pub fn ns_per_op(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.ops.max(1) as f64
    }
    pub fn ops_per_s(&self) -> f64 {
        1e9 / self.ns_per_op()
    }
    /// Payload megabytes (10^6) per CPU second.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.cpu.as_nanos().max(1) as f64 * 1e3
    }
}

/// Runs `run(n)` (which does about `n` operations and returns how many operations and payload
/// bytes it really did) in batches until `budget` of this thread's CPU time is spent. A first
/// untimed pass warms caches and lets the library reach its steady buffer sizes; the batch size is
/// grown until one batch takes about a millisecond, so reading the clock costs nothing.
pub fn measure(budget: Duration, mut run: impl FnMut(u64) -> (u64, u64)) -> Measured {
    let mut batch = 1u64;
    // Warm-up and calibration.
    loop {
        let t = ThreadTime::now();
        run(batch);
        let e = t.elapsed();
        if e >= Duration::from_millis(1) || batch >= 1 << 24 {
            break;
        }
        batch = if e.is_zero() {
            batch * 16
        } else {
            (batch * 2).max((batch as f64 * 1.2e6 / e.as_nanos() as f64) as u64)
        };
    }
    let start = ThreadTime::now();
    let mut ops = 0;
    let mut bytes = 0;
    loop {
        let (o, b) = run(batch);
        ops += o;
        bytes += b;
        let cpu = start.elapsed();
        if cpu >= budget {
            return Measured { ops, bytes, cpu };
        }
    }
}
