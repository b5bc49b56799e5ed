//! A whole connection driven by an arbitrary list of operations: peer bytes in arbitrary
//! chunks (copied in or read through the read token), every command, reading data or not,
//! time jumps in both directions, end of stream. Oracle: no panic, no unbounded memory (flow
//! control holds whatever the application does), only documented errors, at most one terminal
//! event and it comes last, and after `handle_timeout(now)` the next deadline is never in the
//! past.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use std::time::Duration;
use tether::{CloseCode, Config, Connection, DataKind, Event, Heartbeat, Instant, Message, Role};

#[derive(Arbitrary, Debug)]
enum Op {
    Bytes(Vec<u8>),
    /// Peer bytes read through `recv_buf`, committing at most `max` of them.
    Recv {
        data: Vec<u8>,
        max: u16,
    },
    /// A well-formed frame from the peer, to reach deeper states than random bytes do.
    Frame {
        fin: bool,
        opcode: u8,
        payload: Vec<u8>,
    },
    Eof,
    Advance(u32),
    StepBack(u16),
    Timeout,
    SendText(String),
    SendBinary(Vec<u8>),
    Fragment {
        text: bool,
        data: Vec<u8>,
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close {
        code: u16,
        reason: String,
    },
    Abort,
    Write(u16),
    Transport,
    /// The application takes one piece of data, or everything.
    Read,
    ReadAll,
    DiscardIncoming,
}

#[derive(Arbitrary, Debug)]
struct Input {
    server: bool,
    streaming: bool,
    heartbeat: bool,
    idle: bool,
    ops: Vec<Op>,
}

fn peer_frame(server: bool, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (opcode & 0x0f)];
    let mask_bit = if server { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend((len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend((len as u64).to_be_bytes());
    }
    let mut body = payload.to_vec();
    if server {
        let key = [0xa1, 0xb2, 0xc3, 0xd4];
        out.extend(key);
        tether::mask::apply_mask(&mut body, key);
    }
    out.extend(body);
    out
}

fuzz_target!(|input: Input| {
    let mut config = Config::default();
    config.streaming = input.streaming;
    config.max_frame_payload = 1 << 16;
    config.max_message_size = 1 << 17;
    config.high_watermark = 1 << 16;
    config.low_watermark = 1 << 14;
    config.heartbeat = input
        .heartbeat
        .then(|| Heartbeat::new(Duration::from_secs(2), Duration::from_secs(1)));
    config.idle_timeout = input.idle.then(|| Duration::from_secs(5));
    config.close_timeout = Duration::from_secs(3);
    let role = if input.server {
        Role::Server
    } else {
        Role::Client
    };
    let mut conn = Connection::open(role, config, ChaCha8Rng::seed_from_u64(1), Instant::ZERO);
    let mut now = Instant::ZERO;
    let mut seen = Instant::ZERO;
    let mut ended = false;
    let mut discarding = false;
    for op in input.ops {
        match op {
            // A driver reads only while the core wants it to (backpressure).
            Op::Bytes(b) if conn.wants_read() => conn.handle_data(now, &b),
            Op::Frame {
                fin,
                opcode,
                payload,
            } if conn.wants_read() => {
                conn.handle_data(now, &peer_frame(input.server, fin, opcode, &payload))
            }
            Op::Recv { data, max } if conn.wants_read() => {
                let mut buf = conn.recv_buf();
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                buf.commit(now, n.min(usize::from(max)));
            }
            Op::Bytes(_) | Op::Frame { .. } | Op::Recv { .. } => {}
            Op::Eof => conn.handle_eof(now),
            Op::Advance(ms) => now = now + Duration::from_millis(u64::from(ms % 20_000)),
            Op::StepBack(ms) => now = now - Duration::from_millis(u64::from(ms)),
            Op::Timeout => {
                conn.handle_timeout(now);
                seen = seen.max(now);
                if let Some(next) = conn.poll_timeout() {
                    assert!(next > seen, "deadline in the past");
                }
            }
            Op::SendText(s) => {
                let _ = conn.send_text(&s);
            }
            Op::SendBinary(b) => {
                let _ = conn.send(Message::binary(b));
            }
            Op::Fragment { text, data, fin } => {
                let kind = if text {
                    DataKind::Text
                } else {
                    DataKind::Binary
                };
                let _ = conn.send_fragment(kind, data, fin);
            }
            Op::Ping(p) => {
                let _ = conn.ping(p);
            }
            Op::Pong(p) => {
                let _ = conn.pong(p);
            }
            Op::Close { code, reason } => {
                let _ = conn.close(now, CloseCode(code), &reason);
            }
            Op::Abort => conn.abort(),
            Op::Write(n) => {
                if let Some(out) = conn.poll_transmit() {
                    let n = (n as usize).min(out.len());
                    conn.advance(n);
                }
            }
            Op::Transport => {
                let _ = conn.poll_transport();
            }
            Op::Read => {
                let _ = conn.read();
            }
            Op::ReadAll => while conn.read().is_some() {},
            Op::DiscardIncoming => {
                conn.discard_incoming();
                discarding = true;
            }
        }
        if discarding {
            assert!(!conn.has_unread_data());
        }
        while let Some(ev) = conn.poll_event() {
            assert!(!ended, "an event after the terminal event: {ev:?}");
            ended = matches!(ev, Event::Closed(_));
        }
        // Output is bounded by the write limit plus what the core must queue itself (Pongs,
        // Close) for the bytes of one operation.
        let unwritten = conn.poll_transmit().map_or(0, |t| t.len());
        assert!(unwritten <= (1 << 16) + (1 << 17) + 4096);
        assert!(conn.buffer_memory() <= (1 << 20));
    }
});
