//! Dead-peer detection: the heartbeat's pong timeout and the idle timeout.

use std::time::{Duration, Instant};

use tether::{CloseCause, CloseCode, Config, Heartbeat, Role};

use crate::frame::op;
use tether_io::Error;

use crate::harness::Adapter;
use crate::setup::{LIMIT, facing_raw, spawn};

/// How late a timer may fire on a busy two-core machine.
const SLACK: Duration = Duration::from_secs(1);
const PING_INTERVAL: Duration = Duration::from_millis(100);
const PONG_TIMEOUT: Duration = Duration::from_millis(200);
const IDLE_TIMEOUT: Duration = Duration::from_millis(200);

/// A peer that completed the handshake and never answers Pings: the adapter's connection ends
/// with the heartbeat cause (1011) within ping interval + pong timeout; the peer was sent a
/// Ping, then the Close, then the end of the connection.
pub fn heartbeat_timeout<A: Adapter>(role: Role) {
    let mut config = Config::default();
    config.heartbeat = Some(Heartbeat::new(PING_INTERVAL, PONG_TIMEOUT));
    let (mut conn, mut peer, _) = facing_raw::<A>(role, config, None);
    let started = Instant::now();
    let received = conn.recv(LIMIT);
    let elapsed = started.elapsed();
    match &received {
        Some(Err(Error::Closed(closed))) => {
            assert_eq!(closed.cause, CloseCause::HeartbeatTimeout, "{}", A::NAME);
            assert_eq!(closed.code, CloseCode::INTERNAL_ERROR, "{}", A::NAME);
            assert!(!closed.clean, "{}", A::NAME);
        }
        other => panic!("{}: a heartbeat timeout, got {other:?}", A::NAME),
    }
    assert!(
        elapsed <= PING_INTERVAL + PONG_TIMEOUT + SLACK,
        "{}: the dead peer was detected after {elapsed:?}",
        A::NAME
    );
    assert_eq!(peer.read_frame(LIMIT).opcode, op::PING, "{}", A::NAME);
    let close = peer.read_frame(LIMIT);
    assert_eq!(close.opcode, op::CLOSE, "{}: {close:?}", A::NAME);
    assert_eq!(close.close_status().map(|(code, _)| code), Some(1011));
    assert!(
        peer.wait_end(LIMIT).is_some(),
        "{}: the connection stayed open",
        A::NAME
    );
}

/// A peer that says nothing: the adapter sends Close 1001 within the idle timeout, and once
/// the peer closes its end the connection ends with the idle cause.
pub fn idle_timeout<A: Adapter>(role: Role) {
    let mut config = Config::default();
    config.heartbeat = None;
    config.idle_timeout = Some(IDLE_TIMEOUT);
    let (mut conn, mut peer, _) = facing_raw::<A>(role, config, None);
    let started = Instant::now();
    let receiving = spawn("recv", move || (conn.recv(LIMIT), started.elapsed()));
    let close = peer.read_frame(LIMIT);
    let sent_after = started.elapsed();
    assert_eq!(close.opcode, op::CLOSE, "{}: {close:?}", A::NAME);
    assert_eq!(close.close_status().map(|(code, _)| code), Some(1001));
    assert!(
        sent_after <= IDLE_TIMEOUT + SLACK,
        "{}: the idle Close came after {sent_after:?}",
        A::NAME
    );
    drop(peer);
    let (received, elapsed) = receiving.wait(LIMIT);
    match &received {
        Some(Err(Error::Closed(closed))) => {
            assert_eq!(closed.cause, CloseCause::IdleTimeout, "{}", A::NAME);
            assert_eq!(closed.code, CloseCode::GOING_AWAY, "{}", A::NAME);
        }
        other => panic!("{}: an idle timeout, got {other:?}", A::NAME),
    }
    assert!(
        elapsed <= IDLE_TIMEOUT + SLACK,
        "{}: the end was reported after {elapsed:?}",
        A::NAME
    );
}
