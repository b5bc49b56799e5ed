//! Heartbeat, dead-peer detection, idle and close timeouts, all on a virtual clock.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use tether::frame::OpCode;
use tether::{
    CloseCause, CloseCode, Config, Event, Heartbeat, Initiator, Instant, Role, TransportAction,
};

const T0: Instant = Instant::ZERO;

fn hb_config(interval: u64, timeout: u64) -> Config {
    let mut c = Config::default();
    c.heartbeat = Some(Heartbeat::new(
        Duration::from_secs(interval),
        Duration::from_secs(timeout),
    ));
    c
}

/// A peer that stops answering is declared dead at ping interval + pong timeout, within one
/// timer step: a driver that sleeps until each `poll_timeout` sees it exactly then.
#[test]
fn silent_peer_is_dead_at_interval_plus_timeout() {
    for role in [Role::Client, Role::Server] {
        let mut conn = open(role, hb_config(20, 5));
        let mut now = T0;
        let mut steps = 0;
        let closed = loop {
            let next = conn.poll_timeout().expect("a timer runs");
            assert!(next > now || steps == 0);
            now = next;
            conn.handle_timeout(now);
            steps += 1;
            let events = drain_events(&mut conn);
            if !events.is_empty() {
                break terminal(&events);
            }
            let out = parse_frames(&drain_output(&mut conn));
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].1, OpCode::Ping);
            assert_eq!(out[0].2.len(), 8, "an unpredictable 8-byte payload");
        };
        assert_eq!(now, T0 + Duration::from_secs(25));
        assert_eq!(steps, 2, "one ping, one pong deadline");
        assert_eq!(closed.code, CloseCode::INTERNAL_ERROR);
        assert_eq!(closed.reason, "heartbeat timeout");
        assert_eq!(closed.cause, CloseCause::HeartbeatTimeout);
        assert_eq!(closed.initiator, Initiator::Local);
        assert!(!closed.clean);
        let out = parse_frames(&drain_output(&mut conn));
        assert_eq!(out[0].1, OpCode::Close);
        assert_eq!(close_code(&out[0].2), Some(1011));
        // A dead peer will not close its end: close as soon as our Close is written.
        assert_eq!(conn.poll_transport(), Some(TransportAction::Close));
    }
}

/// The pong deadline does not fire a moment early.
#[test]
fn heartbeat_not_before_deadline() {
    let mut conn = open(Role::Client, hb_config(20, 5));
    conn.handle_timeout(T0 + Duration::from_secs(20));
    drain_output(&mut conn);
    conn.handle_timeout(T0 + Duration::from_secs(25) - Duration::from_nanos(1));
    assert!(conn.poll_event().is_none());
    assert_eq!(conn.poll_transport(), None);
}

/// Pongs with another payload do not answer our Ping (RFC 6455 §5.5.3).
#[test]
fn rfc6455_5_5_3_foreign_pongs_are_ignored() {
    let mut conn = open(Role::Client, hb_config(20, 5));
    conn.handle_timeout(T0 + Duration::from_secs(20));
    drain_output(&mut conn);
    let at = T0 + Duration::from_secs(21);
    feed(
        &mut conn,
        at,
        &sframe(true, OpCode::Pong, b"not ours"),
        &Chunking::Whole,
    );
    assert!(matches!(conn.poll_event(), Some(Event::Pong(_))));
    conn.handle_timeout(T0 + Duration::from_secs(25));
    assert_eq!(
        terminal(&drain_events(&mut conn)).cause,
        CloseCause::HeartbeatTimeout
    );
}

/// A peer that answers every Ping is never closed over 24 hours of virtual time, and every
/// answered Ping gives an RTT sample.
#[test]
fn answering_peer_survives_24_hours() {
    let mut pair = Pair::open(hb_config(20, 5), Chunking::Whole);
    let end = T0 + Duration::from_secs(24 * 3600);
    let mut steps = 0u32;
    while pair.now < end {
        assert!(pair.advance());
        steps += 1;
    }
    for side in [&pair.client, &pair.server] {
        // Only the other side's heartbeat Pings are reported; nothing ended.
        assert!(side.events.iter().all(|e| matches!(e, Event::Ping(_))));
        assert!(side.events.len() >= 24 * 3600 / 25);
    }
    assert!(steps >= 24 * 3600 / 20);
    assert_eq!(pair.client.conn.rtt(), Some(Duration::ZERO));
    assert_eq!(pair.client.conn.smoothed_rtt(), Some(Duration::ZERO));
}

/// Round-trip time: the delay between our Ping and the matching Pong.
#[test]
fn rtt_is_measured_from_matched_pongs() {
    let mut conn = open(Role::Client, hb_config(20, 5));
    conn.handle_timeout(T0 + Duration::from_secs(20));
    let ping = parse_frames(&drain_output(&mut conn)).remove(0).2;
    let at = T0 + Duration::from_millis(20_150);
    feed(
        &mut conn,
        at,
        &sframe(true, OpCode::Pong, &ping),
        &Chunking::Whole,
    );
    assert!(
        conn.poll_event().is_none(),
        "the heartbeat's own pong is not an event"
    );
    assert_eq!(conn.rtt(), Some(Duration::from_millis(150)));
    assert_eq!(conn.smoothed_rtt(), Some(Duration::from_millis(150)));
    // Next ping one interval after the pong.
    assert_eq!(conn.poll_timeout(), Some(at + Duration::from_secs(20)));
}

/// Inbound traffic postpones the next Ping: a peer that is talking is alive.
#[test]
fn inbound_traffic_postpones_ping() {
    let mut conn = open(Role::Server, hb_config(20, 5));
    let at = T0 + Duration::from_secs(15);
    feed(
        &mut conn,
        at,
        &cframe(true, OpCode::Text, b"hi"),
        &Chunking::Whole,
    );
    assert_eq!(conn.poll_timeout(), Some(at + Duration::from_secs(20)));
}

/// Idle timeout: nothing but Pongs received for `idle_timeout` closes with 1001; any other frame
/// restarts it; it does not fire a moment early.
#[test]
fn idle_timeout_closes_with_1001() {
    let mut config = quiet();
    config.idle_timeout = Some(Duration::from_secs(30));
    let mut conn = open(Role::Server, config);
    assert_eq!(conn.poll_timeout(), Some(T0 + Duration::from_secs(30)));
    let t10 = T0 + Duration::from_secs(10);
    feed(
        &mut conn,
        t10,
        &cframe(true, OpCode::Text, b"x"),
        &Chunking::Whole,
    );
    feed(
        &mut conn,
        t10 + Duration::from_secs(15),
        &cframe(true, OpCode::Pong, b"p"),
        &Chunking::Whole,
    );
    drain_events(&mut conn);
    let deadline = t10 + Duration::from_secs(30);
    assert_eq!(conn.poll_timeout(), Some(deadline));
    conn.handle_timeout(deadline - Duration::from_nanos(1));
    assert!(conn.poll_event().is_none());
    conn.handle_timeout(deadline);
    let closed = terminal(&drain_events(&mut conn));
    assert_eq!(closed.code, CloseCode::GOING_AWAY);
    assert_eq!(closed.cause, CloseCause::IdleTimeout);
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(close_code(&out[0].2), Some(1001));
    // The silent peer is alive: half-close and let it read our Close.
    assert_eq!(conn.poll_transport(), Some(TransportAction::Shutdown));
}

/// A failed connection whose Close cannot be written (the peer stopped reading) still gets its
/// transport closed after the close timeout.
#[test]
fn unwritable_close_is_abandoned_after_close_timeout() {
    let mut conn = open(Role::Client, hb_config(20, 5));
    conn.handle_timeout(T0 + Duration::from_secs(20));
    conn.handle_timeout(T0 + Duration::from_secs(25));
    assert_eq!(
        terminal(&drain_events(&mut conn)).cause,
        CloseCause::HeartbeatTimeout
    );
    assert_eq!(conn.poll_transport(), None, "output not written yet");
    let linger = conn.poll_timeout().unwrap();
    assert_eq!(
        linger,
        T0 + Duration::from_secs(25) + Config::default().close_timeout
    );
    conn.handle_timeout(linger);
    assert_eq!(conn.poll_transport(), Some(TransportAction::Close));
    assert!(conn.poll_transmit().is_none());
}

/// `handle_timeout` is idempotent and safe early, late or repeated; a clock that steps back
/// does not panic and does not fire anything.
#[test]
fn handle_timeout_is_idempotent_and_clock_safe() {
    let mut conn = open(Role::Client, hb_config(20, 5));
    conn.handle_timeout(T0);
    conn.handle_timeout(T0);
    assert!(conn.poll_transmit().is_none());
    let t20 = T0 + Duration::from_secs(20);
    conn.handle_timeout(t20);
    conn.handle_timeout(t20);
    assert_eq!(parse_frames(&drain_output(&mut conn)).len(), 1, "one ping");
    conn.handle_timeout(T0); // the clock stepped back
    assert!(conn.poll_event().is_none());
    assert_eq!(conn.poll_timeout(), Some(T0 + Duration::from_secs(25)));
}

#[derive(Clone, Debug)]
enum Step {
    /// Move the clock by this many milliseconds (negative: a clock that steps back).
    Jump(i64),
    /// Fire timers now.
    Timeout,
    /// The peer sends a data frame.
    PeerText,
    /// The peer pings.
    PeerPing,
    /// The peer answers our last ping correctly.
    PeerAnswers,
    /// The peer sends Close.
    PeerClose,
    /// The user closes.
    UserClose,
    /// The driver writes everything.
    Flush,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (-2_000i64..40_000).prop_map(Step::Jump),
        6 => Just(Step::Timeout),
        2 => Just(Step::PeerText),
        1 => Just(Step::PeerPing),
        2 => Just(Step::PeerAnswers),
        1 => Just(Step::PeerClose),
        1 => Just(Step::UserClose),
        3 => Just(Step::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random schedules of traffic and time jumps never fire a timeout before its configured
    /// duration has passed, never panic, and after `handle_timeout(now)` the next deadline is
    /// never in the past.
    #[test]
    fn timers_never_fire_early(steps in prop::collection::vec(step(), 1..80), server in any::<bool>()) {
        let (interval, pong, idle, close) = (20_000u64, 5_000u64, 45_000u64, 10_000u64);
        let mut config = hb_config(20, 5);
        config.idle_timeout = Some(Duration::from_millis(idle));
        config.close_timeout = Duration::from_millis(close);
        let role = if server { Role::Server } else { Role::Client };
        let mut conn = open(role, config);
        let frame_from_peer = |op: OpCode, payload: &[u8]| {
            if server { cframe(true, op, payload) } else { sframe(true, op, payload) }
        };
        let ms = |t: Instant| t.as_nanos() / 1_000_000;
        let mut now = T0;
        let mut clock = T0; // the latest time the connection has seen
        let mut last_rx = T0; // last non-pong frame, for the idle timeout
        let mut last_any_rx = T0;
        let mut pong_answered_at = T0;
        // When the latest heartbeat Ping was written, and the last sign of life before it.
        let mut ping_sent: Option<(Instant, Instant)> = None;
        let mut closed_at: Option<Instant> = None;
        let mut last_ping: Option<Vec<u8>> = None;
        let mut ended = false;
        for s in steps {
            match s {
                Step::Jump(d) => {
                    now = if d >= 0 { now + Duration::from_millis(d as u64) } else { now - Duration::from_millis((-d) as u64) };
                }
                Step::Timeout => {
                    conn.handle_timeout(now);
                    clock = clock.max(now);
                    if let Some(next) = conn.poll_timeout() {
                        prop_assert!(next > clock, "deadline {next:?} not after {clock:?}");
                    }
                }
                Step::PeerText | Step::PeerPing | Step::PeerAnswers | Step::PeerClose => {
                    let bytes = match s {
                        Step::PeerText => frame_from_peer(OpCode::Text, b"t"),
                        Step::PeerPing => frame_from_peer(OpCode::Ping, b"p"),
                        Step::PeerClose => frame_from_peer(OpCode::Close, &1000u16.to_be_bytes()),
                        _ => match &last_ping { Some(p) => frame_from_peer(OpCode::Pong, p), None => continue },
                    };
                    feed(&mut conn, now, &bytes, &Chunking::Whole);
                    clock = clock.max(now);
                    last_any_rx = clock;
                    if matches!(s, Step::PeerAnswers) {
                        last_ping = None;
                        pong_answered_at = clock;
                    } else {
                        last_rx = clock;
                    }
                }
                Step::UserClose => {
                    if conn.close(now, CloseCode::NORMAL, "").is_ok() {
                        clock = clock.max(now);
                        closed_at.get_or_insert(clock);
                    }
                }
                Step::Flush => {
                    let _ = conn.poll_transport();
                }
            }
            for (_, op, payload) in parse_frames(&drain_output(&mut conn)) {
                if op == OpCode::Ping && payload.len() == 8 {
                    last_ping = Some(payload);
                    let alive = last_any_rx.max(pong_answered_at);
                    prop_assert!(ms(clock) >= ms(alive) + interval, "ping sent early");
                    ping_sent = Some((clock, alive));
                }
            }
            for ev in drain_events(&mut conn) {
                if let Event::Closed(c) = ev {
                    prop_assert!(!ended, "one terminal event");
                    ended = true;
                    let t = ms(clock);
                    match c.cause {
                        CloseCause::HeartbeatTimeout => {
                            let (sent, alive) = ping_sent.expect("a ping was sent");
                            prop_assert!(t >= ms(sent) + pong, "dead at {t}, ping at {sent:?}");
                            prop_assert!(t >= ms(alive) + interval + pong);
                        }
                        CloseCause::IdleTimeout => prop_assert!(t >= ms(last_rx) + idle),
                        CloseCause::CloseTimeout => prop_assert!(t >= ms(closed_at.unwrap()) + close),
                        CloseCause::Normal => {}
                        other => prop_assert!(false, "unexpected end {other:?}"),
                    }
                }
            }
        }
    }
}

/// A refused command changes nothing, not even the core's idea of the time: a `close` refused
/// as `AlreadyClosing` at a later instant must not make the close timer fire early when the
/// clock then reads earlier (found by `timers_never_fire_early`).
#[test]
fn refused_close_does_not_move_the_clock() {
    let mut conn = open(Role::Client, quiet());
    conn.close(T0, CloseCode::NORMAL, "").unwrap();
    let t10 = T0 + Duration::from_secs(10);
    assert!(conn.close(t10, CloseCode::NORMAL, "").is_err());
    conn.handle_timeout(t10 - Duration::from_millis(1));
    assert!(conn.poll_event().is_none());
    conn.handle_timeout(t10);
    assert_eq!(
        terminal(&drain_events(&mut conn)).cause,
        CloseCause::CloseTimeout
    );
}

/// Outputs are pure and an empty `read` is no input: asking for events, output, deadlines or
/// data moves no timer (only bytes from the peer postpone the heartbeat).
#[test]
fn polls_and_empty_reads_move_no_timer() {
    let mut conn = open(Role::Client, hb_config(20, 5));
    let before = conn.poll_timeout();
    conn.handle_timeout(T0 + Duration::from_secs(10));
    for _ in 0..3 {
        assert!(conn.read().is_none());
        assert!(conn.poll_event().is_none());
        assert!(conn.poll_transmit().is_none());
        assert_eq!(conn.poll_transport(), None);
        assert!(conn.wants_read());
    }
    assert_eq!(conn.poll_timeout(), before);
}
