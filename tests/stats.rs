//! `Connection::stats`: exact counts for a scripted exchange on a virtual clock.

mod common;

use std::time::Duration;

use common::*;
use tether::frame::OpCode;
use tether::{Config, DataKind, Heartbeat, Instant, Message, Role, Stats};

/// Messages, payload bytes and wire bytes each way, counted on both sides.
#[test]
fn counts_messages_and_bytes_each_way() {
    for chunking in [Chunking::Whole, Chunking::Bytewise] {
        let mut pair = Pair::open(quiet(), chunking);
        let c = &mut pair.client.conn;
        c.send_text("hello").unwrap();
        c.send_binary(vec![1u8, 2, 3]).unwrap();
        c.send_fragment(DataKind::Text, &b"ab"[..], false).unwrap();
        c.send_fragment(DataKind::Text, &b"cde"[..], true).unwrap();
        c.ping(&b"p"[..]).unwrap();
        pair.server.conn.send(Message::text("0123456789")).unwrap();
        pair.drive();

        let client = pair.client.conn.stats();
        let server = pair.server.conn.stats();
        assert_eq!(client.messages_sent, 3);
        assert_eq!(client.bytes_sent, 5 + 3 + 5);
        assert_eq!(client.messages_received, 1);
        assert_eq!(client.bytes_received, 10);
        assert_eq!(client.pings_sent, 1);
        // The server answered the Ping: one Pong, whose RTT is not measured (not a heartbeat).
        assert_eq!(client.pongs_received, 1);
        assert_eq!(client.rtt, None);
        assert_eq!(server.messages_received, 3);
        assert_eq!(server.bytes_received, 13);
        assert_eq!(server.messages_sent, 1);
        assert_eq!(server.bytes_sent, 10);
        assert_eq!(server.pings_sent, 0);
        assert_eq!(server.pongs_received, 0);
        // Wire bytes are everything written, frame headers and control frames included.
        assert_eq!(client.wire_bytes_sent, pair.wire[0].len() as u64);
        assert_eq!(server.wire_bytes_received, pair.wire[0].len() as u64);
        assert_eq!(server.wire_bytes_sent, pair.wire[1].len() as u64);
        assert_eq!(client.wire_bytes_received, pair.wire[1].len() as u64);
        // Client frames: 5+3+2+3+1 payload bytes, five masked headers of 6 bytes.
        assert_eq!(client.wire_bytes_sent, 14 + 5 * 6);
    }
}

/// A fresh connection counts nothing.
#[test]
fn starts_at_zero() {
    let conn = open(Role::Client, quiet());
    assert_eq!(conn.stats(), Stats::default());
}

/// Streaming delivery counts a message once, at its end, and every chunk's bytes.
#[test]
fn streamed_message_counts_once() {
    let mut config = quiet();
    config.streaming = true;
    let mut conn = open(Role::Server, config);
    let mut wire = cframe(false, OpCode::Binary, &[0; 100]);
    wire.extend(cframe(true, OpCode::Continuation, &[0; 50]));
    feed(&mut conn, Instant::ZERO, &wire, &Chunking::Sizes(vec![7]));
    let _ = drain_data(&mut conn);
    let stats = conn.stats();
    assert_eq!(stats.messages_received, 1);
    assert_eq!(stats.bytes_received, 150);
    assert_eq!(stats.wire_bytes_received, wire.len() as u64);
}

/// Heartbeat Pings are counted, and the answering Pong gives the RTT and its smoothed mean.
#[test]
fn heartbeat_rtt_is_latest_and_smoothed() {
    let mut config = Config::default();
    config.heartbeat = Some(Heartbeat::new(
        Duration::from_secs(10),
        Duration::from_secs(5),
    ));
    let mut conn = open(Role::Client, config);
    let mut now = Instant::ZERO;
    for (i, delay_ms) in [30u64, 70].into_iter().enumerate() {
        now = conn.poll_timeout().expect("the heartbeat timer");
        conn.handle_timeout(now);
        let frames = parse_frames(&drain_output(&mut conn));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].1, OpCode::Ping);
        now += Duration::from_millis(delay_ms);
        feed(
            &mut conn,
            now,
            &sframe(true, OpCode::Pong, &frames[0].2),
            &Chunking::Whole,
        );
        let stats = conn.stats();
        assert_eq!(stats.pings_sent, i as u64 + 1);
        assert_eq!(stats.pongs_received, i as u64 + 1);
        assert_eq!(stats.rtt, Some(Duration::from_millis(delay_ms)));
    }
    // RFC 6298's 7/8 + 1/8: (7 * 30 + 70) / 8 = 35.
    assert_eq!(conn.stats().smoothed_rtt, Some(Duration::from_millis(35)));
    assert_eq!(conn.stats().messages_received, 0);
    let _ = now;
}
