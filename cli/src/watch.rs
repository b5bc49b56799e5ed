//! `tether doctor --watch URL`: one connection kept open with the core's heartbeat, reopened
//! by the core's reconnect [`Supervisor`], one line per event, and a summary at the end
//! (Ctrl-C, or the hidden `--duration`).
//!
//! Dead peers are found by the core's heartbeat (`--ping-interval` of silence, then
//! `--pong-timeout` without the Pong). The round trip is measured with a Ping of the watch's
//! own every `--ping-interval`, matched to its Pong event.

use std::pin::pin;
use std::time::Duration;

use tether::reconnect::{
    Disconnect, ReconnectConfig, SessionConfig, Supervisor, SupervisorAction, SupervisorEvent,
};
use tether::{CloseCause, CloseCode, Config, Event, Heartbeat};
use tokio::time::Instant;

use crate::args::DoctorArgs;
use crate::drive::{Driver, Next, now};
use crate::explain::close_code_meaning;
use crate::probe::{Options, Probe, rng};
use crate::report::human;

/// The `--watch` settings.
#[derive(Clone, Copy, Debug)]
pub struct WatchOptions {
    /// How often to measure the round trip; also the heartbeat's interval.
    pub ping_interval: Duration,
    /// The heartbeat's pong timeout.
    pub pong_timeout: Duration,
    /// A cap on the reconnect delay.
    pub max_backoff: Option<Duration>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

impl WatchOptions {
    /// The `--watch` settings from the command line.
    pub fn from_args(args: &DoctorArgs) -> Self {
        WatchOptions {
            ping_interval: args.ping_interval,
            pong_timeout: args.pong_timeout,
            max_backoff: args.max_backoff,
            duration: args.duration,
        }
    }
}

/// What the watch counted.
#[derive(Debug, Default)]
struct Stats {
    connections: u32,
    drops: u32,
    dead_peers: u32,
    failed_attempts: u32,
    connected_for: Duration,
    rtts: Vec<Duration>,
}

/// The open (or opening) connection.
struct Live {
    driver: Driver,
    attempt: u32,
    started: Instant,
    opened: Option<Instant>,
    next_ping: Option<Instant>,
    /// The payload and send time of the Ping whose Pong is awaited.
    pending: Option<(Vec<u8>, Instant)>,
    pings: u64,
}

/// Why the loop stops.
enum Stop {
    Interrupted,
    DurationReached,
    GaveUp,
}

/// Prints an event line, stamped with the seconds since the watch began.
fn line(start: Instant, text: &str) {
    println!("[{:>8.3}s] {text}", start.elapsed().as_secs_f64());
}

/// Runs the watch; returns the exit status.
pub async fn run(options: &Options, watch: &WatchOptions) -> i32 {
    let request = match options.request() {
        Ok(request) => request,
        Err(e) => {
            println!("url: {e}");
            println!("verdict: bad-url");
            return crate::report::Verdict::BadUrl.exit_code();
        }
    };
    let mut config = Config::default();
    config.heartbeat = Some(Heartbeat::new(watch.ping_interval, watch.pong_timeout));
    config.handshake_timeout = options.timeout;
    config.close_timeout = options.timeout;
    let mut reconnect = ReconnectConfig::default();
    if let Some(max) = watch.max_backoff {
        reconnect.backoff.max = max;
        reconnect.backoff.initial = reconnect.backoff.initial.min(max);
        reconnect.backoff.first_delay_max = reconnect.backoff.first_delay_max.map(|d| d.min(max));
    }
    let mut settings = SessionConfig::default();
    // Resolving, connecting and TLS each have `timeout`.
    settings.connect_timeout = options.timeout * 3 + Duration::from_secs(1);
    let mut sup = Supervisor::new(request.clone(), config, reconnect, settings, rng(), now());

    let start = Instant::now();
    let stop_at = watch.duration.map(|d| start + d);
    let mut interrupt = pin!(tokio::signal::ctrl_c());
    let mut stats = Stats::default();
    let mut live: Option<Live> = None;
    println!(
        "watching {} (ping every {}, dead after {} more without a Pong); Ctrl-C for the summary",
        request.url(),
        human(watch.ping_interval),
        human(watch.pong_timeout)
    );
    let stop = 'run: loop {
        while let Some(action) = sup.poll_action() {
            let SupervisorAction::Connect { attempt } = action else {
                continue;
            };
            let started = Instant::now();
            let mut probe = Probe::new(options);
            let opened = tokio::select! {
                opened = probe.open(request.url()) => opened,
                _ = &mut interrupt => break 'run Stop::Interrupted,
                () = sleep_until(stop_at) => break 'run Stop::DurationReached,
            };
            match opened {
                Ok(stream) => {
                    if let Some(conn) = sup.transport_connected(now()) {
                        live = Some(Live {
                            driver: Driver::new(stream, conn),
                            attempt,
                            started,
                            opened: None,
                            next_ping: None,
                            pending: None,
                            pings: 0,
                        });
                    }
                }
                Err(fail) => {
                    stats.failed_attempts += 1;
                    let why = probe.last_failure();
                    line(
                        start,
                        &format!("attempt {attempt} failed: {}: {why}", fail.verdict.as_str()),
                    );
                    sup.connect_failed(now(), &why);
                }
            }
        }
        while let Some(event) = sup.poll_event() {
            match event {
                SupervisorEvent::Disconnected {
                    reason,
                    closed,
                    detail,
                    retry_in,
                    ..
                } => {
                    describe_end(start, &reason, closed.as_ref(), &detail, watch, &mut stats);
                    if let Some(delay) = retry_in {
                        line(start, &format!("retry in {}", human(delay)));
                    }
                }
                SupervisorEvent::GaveUp { reason, .. } => {
                    line(start, &format!("gave up: {reason}"));
                    break 'run Stop::GaveUp;
                }
                SupervisorEvent::Stopped { .. } => break 'run Stop::Interrupted,
                _ => {}
            }
        }
        let Some(l) = live.as_mut() else {
            let wake = earliest(
                sup.poll_timeout().map(|at| Instant::now() + (at - now())),
                stop_at,
            );
            tokio::select! {
                () = sleep_until(wake) => {}
                _ = &mut interrupt => break 'run Stop::Interrupted,
            }
            if stop_at.is_some_and(|at| Instant::now() >= at) {
                break 'run Stop::DurationReached;
            }
            sup.handle_timeout(now());
            continue;
        };
        let wake = earliest(l.next_ping, stop_at);
        let next = tokio::select! {
            next = l.driver.next_event(wake) => next,
            _ = &mut interrupt => break 'run Stop::Interrupted,
        };
        match next {
            Next::Event(Event::Connected { .. }) => {
                stats.connections += 1;
                let opened = Instant::now();
                l.opened = Some(opened);
                l.next_ping = Some(opened);
                line(
                    start,
                    &format!(
                        "connected in {} (attempt {})",
                        human(opened - l.started),
                        l.attempt
                    ),
                );
            }
            Next::Event(Event::Pong(payload)) => {
                if let Some((expected, sent)) = &l.pending
                    && payload.as_ref() == expected.as_slice()
                {
                    let rtt = sent.elapsed();
                    stats.rtts.push(rtt);
                    l.pending = None;
                    line(start, &format!("rtt {}", human(rtt)));
                }
            }
            Next::Event(_) => {}
            Next::Finished => {
                if let Some(opened) = l.opened {
                    stats.connected_for += opened.elapsed();
                }
                sup.connection_ended(now(), l.driver.conn());
                live = None;
            }
            Next::Deadline => {
                if stop_at.is_some_and(|at| Instant::now() >= at) {
                    break 'run Stop::DurationReached;
                }
                if l.next_ping.is_some_and(|at| Instant::now() >= at) {
                    l.pings += 1;
                    let payload = format!("tether watch {}", l.pings).into_bytes();
                    if l.driver.conn().ping(payload.clone()).is_ok() {
                        l.pending = Some((payload, Instant::now()));
                    }
                    l.next_ping = Some(Instant::now() + watch.ping_interval);
                }
            }
        }
    };
    match stop {
        Stop::Interrupted => line(start, "stopping (Ctrl-C)"),
        Stop::DurationReached => line(start, "stopping (--duration reached)"),
        Stop::GaveUp => {}
    }
    if let Some(mut l) = live.take()
        && let Some(opened) = l.opened
    {
        stats.connected_for += opened.elapsed();
        let _ = l
            .driver
            .conn()
            .close(now(), CloseCode::NORMAL, "watch ended");
        let deadline = Instant::now() + options.timeout.min(Duration::from_secs(2));
        while let Next::Event(_) = l.driver.next_event(Some(deadline)).await {}
    }
    summary(start.elapsed(), &stats);
    match stop {
        Stop::GaveUp => 1,
        _ => 0,
    }
}

/// Prints how a connection or an attempt ended.
fn describe_end(
    start: Instant,
    reason: &Disconnect,
    closed: Option<&tether::Closed>,
    detail: &str,
    watch: &WatchOptions,
    stats: &mut Stats,
) {
    if reason.was_open() {
        stats.drops += 1;
    } else if matches!(reason, Disconnect::ConnectFailed) {
        // Already printed when the attempt failed.
        return;
    }
    match closed {
        Some(c) if c.cause == CloseCause::HeartbeatTimeout => {
            stats.dead_peers += 1;
            line(
                start,
                &format!(
                    "dead peer: no Pong within {} (closed with {})",
                    human(watch.pong_timeout),
                    c.code
                ),
            );
        }
        Some(c) if reason.was_open() => {
            // A 1006's reason is this side's own account; the meaning says it already.
            let why = if c.reason.is_empty() || c.code == CloseCode::ABNORMAL {
                String::new()
            } else {
                format!(": {}", c.reason)
            };
            line(
                start,
                &format!(
                    "closed with {} ({}){why}, {}",
                    c.code,
                    close_code_meaning(c.code),
                    if c.clean { "clean" } else { "not clean" }
                ),
            );
        }
        _ => {
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            };
            line(start, &format!("attempt failed: {reason}{detail}"));
        }
    }
}

/// Prints the summary: uptime, drops, RTT percentiles.
fn summary(watched: Duration, stats: &Stats) {
    let share = if watched.is_zero() {
        0.0
    } else {
        100.0 * stats.connected_for.as_secs_f64() / watched.as_secs_f64()
    };
    println!(
        "summary: watched {}, connected {} ({share:.0} %), {} connection(s), {} drop(s), {} dead \
         peer(s), {} failed attempt(s)",
        human(watched),
        human(stats.connected_for),
        stats.connections,
        stats.drops,
        stats.dead_peers,
        stats.failed_attempts
    );
    let mut rtts = stats.rtts.clone();
    rtts.sort_unstable();
    match rtts.last() {
        Some(max) => println!(
            "rtt: {} sample(s), p50 {}, p90 {}, p99 {}, max {}",
            rtts.len(),
            human(percentile(&rtts, 50)),
            human(percentile(&rtts, 90)),
            human(percentile(&rtts, 99)),
            human(*max)
        ),
        None => println!("rtt: no samples"),
    }
}

/// The nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let ms = |n| Duration::from_millis(n);
        let samples: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&samples, 50), ms(50));
        assert_eq!(percentile(&samples, 99), ms(99));
        assert_eq!(percentile(&[ms(7)], 90), ms(7));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
