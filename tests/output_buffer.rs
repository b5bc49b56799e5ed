//! The output buffer's life: reused while the connection keeps sending, given back once it has
//! been quiet for a second, never kept for an idle connection; what it writes stays exact.

mod common;

use std::time::Duration;

use common::*;
use tether::frame::OpCode;
use tether::{Config, Connection, Instant, Role};

const T0: Instant = Instant::ZERO;

/// Sends `payload` and writes all of it; returns where the output started and what was written.
fn send_and_write(conn: &mut Connection, payload: &[u8]) -> (*const u8, Vec<u8>) {
    conn.send_binary(payload.to_vec()).unwrap();
    let start = conn.poll_transmit().expect("output").first().as_ptr();
    (start, drain_output(conn))
}

/// A client sending steadily masks every message into the same buffer (no allocation and no
/// zeroing per message); the buffer is given back a second after the last write, and a
/// connection that sends once in a while keeps nothing.
#[test]
fn a_busy_sender_reuses_its_output_buffer_and_gives_it_back_when_quiet() {
    let mut conn = open(Role::Client, quiet());
    let payload: Vec<u8> = (0..16 << 10).map(|i| (i * 7) as u8).collect();
    // The first write on a quiet connection: given back at once.
    let (_, out) = send_and_write(&mut conn, &payload);
    assert_eq!(
        parse_frames(&out),
        [(true, OpCode::Binary, payload.clone())]
    );
    assert_eq!(conn.buffer_memory(), 0, "a single message keeps nothing");
    // Written out again within a second: busy, the buffer stays and is written into again.
    let mut starts = Vec::new();
    for i in 0..4u64 {
        if i == 2 {
            // Time passes (a timer, input): the buffer stays while writes keep coming.
            conn.handle_timeout(T0 + Duration::from_millis(600));
        }
        let (start, out) = send_and_write(&mut conn, &payload);
        assert_eq!(
            parse_frames(&out),
            [(true, OpCode::Binary, payload.clone())]
        );
        starts.push(start);
        assert!(conn.buffer_memory() >= 16 << 10, "kept while busy");
    }
    assert!(starts.iter().all(|&s| s == starts[0]), "the same buffer");
    // The timer armed by the first busy write fires at 1 s; written out since, so the buffer
    // stays another second, then goes (nothing written in that second).
    let deadline = conn.poll_timeout().expect("a deadline to give it back");
    assert_eq!(deadline, T0 + Duration::from_secs(1));
    conn.handle_timeout(deadline);
    assert!(conn.buffer_memory() >= 16 << 10, "written to 0.4 s ago");
    let deadline = conn.poll_timeout().expect("moved on");
    assert_eq!(deadline, T0 + Duration::from_secs(2));
    conn.handle_timeout(deadline);
    assert_eq!(conn.buffer_memory(), 0, "quiet for a second");
    assert_eq!(conn.poll_timeout(), None);
    // A connection that only sends (its clock moves with timers alone, so every write in a
    // second carries the same stale time) keeps the buffer across timer firings while it
    // keeps writing: only the first write after the quiet time gives it back.
    for second in 3..6u64 {
        for i in 0..3 {
            let (_, out) = send_and_write(&mut conn, &payload);
            assert_eq!(
                parse_frames(&out),
                [(true, OpCode::Binary, payload.clone())]
            );
            let first = second == 3 && i == 0;
            assert_eq!(conn.buffer_memory() == 0, first, "{second} s, write {i}");
        }
        let deadline = conn.poll_timeout().expect("armed while busy");
        assert_eq!(deadline, T0 + Duration::from_secs(second));
        conn.handle_timeout(deadline);
        assert!(conn.buffer_memory() >= 16 << 10, "busy through {second} s");
    }
    conn.handle_timeout(T0 + Duration::from_secs(6));
    assert_eq!(conn.buffer_memory(), 0, "then quiet for a second");
    // Sending once in a while (more than a second apart) keeps nothing between messages.
    for s in [8, 10] {
        conn.handle_timeout(T0 + Duration::from_secs(s));
        let (_, out) = send_and_write(&mut conn, &payload);
        assert_eq!(
            parse_frames(&out),
            [(true, OpCode::Binary, payload.clone())]
        );
        assert_eq!(conn.buffer_memory(), 0);
    }
}

/// A buffer larger than the high watermark is never kept, busy or not.
#[test]
fn an_output_buffer_over_the_high_watermark_is_not_kept() {
    let mut config = quiet();
    config.high_watermark = 32 << 10;
    config.low_watermark = 8 << 10;
    let mut conn = open(Role::Client, config);
    let payload = vec![3u8; 48 << 10];
    for _ in 0..3 {
        let (_, out) = send_and_write(&mut conn, &payload);
        assert_eq!(
            parse_frames(&out),
            [(true, OpCode::Binary, payload.clone())]
        );
        assert_eq!(conn.buffer_memory(), 0);
    }
    // Small messages in the same busy stretch are kept.
    let (_, out) = send_and_write(&mut conn, b"small");
    assert_eq!(
        parse_frames(&out),
        [(true, OpCode::Binary, b"small".to_vec())]
    );
    assert!(conn.buffer_memory() > 0);
}

/// Writes of every size, partial writes among them, while more frames are queued behind: the
/// written stream is exactly the frames in order (server role: large payloads by reference
/// between copied headers; client role: everything copied and masked).
#[test]
fn partial_writes_while_queueing_keep_the_stream_exact() {
    for role in [Role::Server, Role::Client] {
        let mut conn = Connection::open(role, quiet(), rng(3), T0);
        let _ = drain_events(&mut conn);
        let mut sent = Vec::new();
        let mut written = Vec::new();
        let mut step = 1usize;
        for i in 0..200usize {
            let len = [0, 1, 125, 126, 2047, 2048, 5000, 70_000][i % 8];
            let payload: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            conn.send_binary(payload.clone()).unwrap();
            sent.push(payload);
            // Write a varying part of what waits, from its first run or all runs.
            let t = conn.poll_transmit().expect("output");
            step = step * 7 % 9973 + 1;
            let n = if i % 3 == 0 {
                t.first().len().min(step)
            } else {
                t.len().min(step * 13)
            };
            let mut all = Vec::new();
            for run in t.iter() {
                all.extend_from_slice(run);
            }
            assert_eq!(all.len(), t.len());
            assert_eq!(&all[..t.first().len()], t.first());
            written.extend_from_slice(&all[..n]);
            conn.advance(n);
        }
        written.extend(drain_output(&mut conn));
        let frames = parse_frames(&written);
        assert_eq!(frames.len(), sent.len(), "{role:?}");
        for (frame, payload) in frames.iter().zip(&sent) {
            assert_eq!(frame, &(true, OpCode::Binary, payload.clone()), "{role:?}");
        }
    }
}

/// A text message is masked straight from the caller's string, which stays intact.
#[test]
fn text_is_copied_once_and_left_intact() {
    let mut conn = open(Role::Client, Config::default());
    let text = "héllo wörld ".repeat(100);
    let before = text.clone();
    conn.send_text(&text).unwrap();
    let frames = parse_frames(&drain_output(&mut conn));
    assert_eq!(frames, [(true, OpCode::Text, text.as_bytes().to_vec())]);
    assert_eq!(text, before);
}
