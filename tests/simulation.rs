//! Ten thousand seeded worlds: reconnecting clients, a server that restarts, links that stall,
//! black-hole, reset and fill up, under traffic both ways (see `sim/mod.rs`). Every run checks
//! every claim about timers, reconnects and the outbound queue; a failing seed prints itself
//! and its scenario.
//!
//! - `cargo test --test simulation -- --nocapture`: the summary line.
//! - `SEED=N cargo test --test simulation`: replays seed N alone (`TRACE=1` prints its events).
//! - `SIM_SEEDS=N` (and `SIM_FIRST=S`) run another range.

mod sim;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sim::Outcome;

const SEEDS: u64 = 10_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs one seed; a panic anywhere is a violation like any other.
fn run_seed(seed: u64, trace: bool) -> (sim::Kind, Outcome) {
    let scenario = sim::scenario::generate(seed);
    let outcome =
        catch_unwind(AssertUnwindSafe(|| sim::run(&scenario, trace))).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome {
                violation: Some(format!("panic: {what}")),
                ..Outcome::default()
            }
        });
    (scenario.kind, outcome)
}

#[derive(Default)]
struct Totals {
    seeds: u64,
    faults: u64,
    kinds: BTreeMap<String, u64>,
    sum: Outcome,
    failures: Vec<(u64, String)>,
}

impl Totals {
    fn add(&mut self, seed: u64, kind: sim::Kind, o: Outcome) {
        self.seeds += 1;
        self.faults += o.faults;
        *self.kinds.entry(format!("{kind:?}")).or_default() += 1;
        let s = &mut self.sum;
        s.connections += o.connections;
        s.sessions += o.sessions;
        s.delivered += o.delivered;
        s.lost += o.lost;
        s.requeued += o.requeued;
        s.queue_refusals += o.queue_refusals;
        s.buffer_refusals += o.buffer_refusals;
        s.heartbeat_timeouts += o.heartbeat_timeouts;
        s.clean_closes += o.clean_closes;
        s.close_timeouts += o.close_timeouts;
        s.idle_timeouts += o.idle_timeouts;
        s.handshake_timeouts += o.handshake_timeouts;
        s.connect_timeouts += o.connect_timeouts;
        s.gave_up += o.gave_up;
        s.capped_delays += o.capped_delays;
        s.steps += o.steps;
        s.peak_memory_pct = s.peak_memory_pct.max(o.peak_memory_pct);
        if let Some(v) = o.violation {
            self.failures.push((seed, v));
        }
    }
}

fn report_failure(seed: u64, violation: &str) {
    eprintln!(
        "simulation: seed {seed} failed: {violation}\n{}  replay: SEED={seed} cargo test --test \
         simulation (TRACE=1 for events)",
        sim::scenario::generate(seed)
    );
}

#[test]
fn simulation() {
    if let Some(seed) = env_u64("SEED") {
        let trace = std::env::var_os("TRACE").is_some();
        let (_, outcome) = run_seed(seed, trace);
        println!("{}", sim::scenario::generate(seed));
        println!("{outcome:?}");
        if let Some(v) = &outcome.violation {
            report_failure(seed, v);
        }
        assert!(outcome.violation.is_none(), "seed {seed} violates a claim");
        return;
    }
    let first = env_u64("SIM_FIRST").unwrap_or(0);
    let count = env_u64("SIM_SEEDS").unwrap_or(SEEDS);
    let next = AtomicU64::new(first);
    let totals = Mutex::new(Totals::default());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= first + count {
                        break;
                    }
                    let (kind, outcome) = run_seed(seed, false);
                    totals.lock().expect("no panics").add(seed, kind, outcome);
                }
            });
        }
    });
    let mut t = totals.into_inner().expect("no panics");
    t.failures.sort();
    for (seed, violation) in t.failures.iter().take(5) {
        report_failure(*seed, violation);
    }
    println!(
        "simulation: {} seeds, {} scenarios, {} faults injected, {} violations",
        t.seeds,
        t.kinds.len(),
        t.faults,
        t.failures.len()
    );
    if std::env::var_os("SIM_STATS").is_some() {
        println!("{:?}\n{:?}", t.kinds, t.sum);
    }
    assert!(
        t.failures.is_empty(),
        "failing seeds: {:?}",
        t.failures
            .iter()
            .map(|(s, _)| s)
            .take(20)
            .collect::<Vec<_>>()
    );
    // The runs exercise what they claim to check.
    if count >= 1_000 {
        let s = &t.sum;
        assert_eq!(t.kinds.len(), sim::scenario::KINDS.len());
        for (what, n) in [
            ("heartbeat timeouts", s.heartbeat_timeouts),
            ("clean closes", s.clean_closes),
            ("close timeouts", s.close_timeouts),
            ("idle timeouts", s.idle_timeouts),
            ("handshake timeouts", s.handshake_timeouts),
            ("connect timeouts", s.connect_timeouts),
            ("requeued messages", s.requeued),
            ("lost messages", s.lost),
            ("queue refusals", s.queue_refusals),
            ("watermark refusals", s.buffer_refusals),
            ("capped delays", s.capped_delays),
            ("sessions given up", s.gave_up),
        ] {
            assert!(n > 0, "no {what} in {count} seeds: {s:?}");
        }
    }
}

/// A seed replays exactly: the same events at the same instants.
#[test]
fn a_seed_replays_exactly() {
    for seed in [1, 77, 4_242] {
        let (_, a) = run_seed(seed, false);
        let (_, b) = run_seed(seed, false);
        assert_eq!(a.digest, b.digest, "seed {seed}");
        assert_eq!(a.steps, b.steps, "seed {seed}");
        assert_ne!(a.digest, 0);
    }
}
