//! The permessage-deflate receive path: a server that negotiated it gets arbitrary frames,
//! frames with RSV1 and arbitrary (often invalid) deflate data, valid compressed messages, and
//! bombs (a 1 MiB run of zeros compressed to about 1 KiB, repeated up to 4,096 times: 4 GiB
//! once inflated), cut into arbitrary reads, in assembled or streaming mode. Oracle: no panic;
//! memory stays bounded (no message grows past the limit, buffers stay under 1 MiB); a valid
//! compressed message sent alone arrives unchanged; a bomb (not inside a fragmented message)
//! ends the connection with 1009.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use flate2::{Compress, Compression, FlushCompress};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use tether::deflate::DeflateConfig;
use tether::handshake::{Accept, ServerPolicy};
use tether::{CloseCode, Config, Connection, Data, Event, Instant, Message};

const MAX_MESSAGE: usize = 1 << 17;

#[derive(Arbitrary, Debug)]
enum Op {
    /// A frame with any RSV bits and opcode, its payload as given.
    Frame {
        fin: bool,
        rsv: u8,
        opcode: u8,
        payload: Vec<u8>,
    },
    /// A message compressed for real, in `parts` fragments.
    Compressed {
        text: bool,
        data: Vec<u8>,
        parts: u8,
    },
    /// `copies` MiB of zeros, compressed.
    Bomb {
        copies: u16,
    },
    Read,
}

#[derive(Arbitrary, Debug)]
struct Input {
    streaming: bool,
    no_context_takeover: bool,
    offer: u8,
    /// Read sizes, cycled.
    cuts: Vec<u16>,
    ops: Vec<Op>,
}

/// 1 MiB of zeros compressed with a sync flush: each copy inflates on its own.
fn zeros_block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| {
        let mut c = Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(1 << 14);
        c.compress_vec(&vec![0u8; 1 << 20], &mut out, FlushCompress::Sync)
            .unwrap();
        out
    })
}

fn masked(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0f)];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend((len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend((len as u64).to_be_bytes());
    }
    let key = [0x5a, 0x0f, 0xc3, 0x99];
    out.extend(key);
    let mut body = payload.to_vec();
    tether::mask::apply_mask(&mut body, key);
    out.extend(body);
    out
}

fuzz_target!(|input: Input| {
    let mut deflate = DeflateConfig::default();
    deflate.no_context_takeover = input.no_context_takeover;
    let mut config = Config::default();
    config.heartbeat = None;
    config.streaming = input.streaming;
    config.max_message_size = MAX_MESSAGE;
    config.max_frame_payload = 1 << 22;
    config.deflate = Some(deflate);
    let offer = match input.offer % 4 {
        0 => "permessage-deflate",
        1 => "permessage-deflate; client_no_context_takeover",
        2 => "permessage-deflate; client_max_window_bits=9",
        _ => "permessage-deflate; server_no_context_takeover; client_max_window_bits",
    };
    let mut conn = Connection::server(
        config,
        ServerPolicy::new(),
        ChaCha8Rng::seed_from_u64(1),
        Instant::ZERO,
    );
    let head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {offer}\r\n\r\n"
    );
    conn.handle_data(Instant::ZERO, head.as_bytes());
    conn.accept(Instant::ZERO, Accept::new()).unwrap();
    // The client side's compressor, for valid messages (its context runs on with takeover).
    let mut compressor = Compress::new(Compression::fast(), false);
    let mut cut = 0usize;
    let mut ended = false;
    // No compressed data but ours reached the server's decompressor: its window matches ours.
    let mut pristine = true;
    // A data frame without FIN came and no final continuation yet: a new message (the bomb)
    // is then a protocol error (1002), not a message too big.
    let mut mid_message = false;
    let client_resets = input.offer % 4 == 1;
    for op in input.ops {
        let mut expect = None;
        let mut bomb = false;
        let bytes = match op {
            Op::Frame {
                fin,
                rsv,
                opcode,
                payload,
            } => {
                pristine &= rsv & 4 == 0;
                match opcode & 0x0f {
                    1 | 2 if !fin => mid_message = true,
                    0 if fin => mid_message = false,
                    _ => {}
                }
                masked(fin, rsv, opcode, &payload)
            }
            Op::Compressed { text, data, parts } => {
                let mut out = Vec::with_capacity(data.len() + 64);
                compressor
                    .compress_vec(&data, &mut out, FlushCompress::Sync)
                    .unwrap();
                // Nothing new since the last flush writes nothing, not even the tail.
                if out.ends_with(&[0, 0, 0xff, 0xff]) {
                    out.truncate(out.len() - 4);
                }
                if out.is_empty() {
                    out.push(0);
                }
                if client_resets {
                    compressor.reset();
                }
                let n = usize::from(parts % 4) + 1;
                let size = out.len().div_ceil(n).max(1);
                let mut frames = Vec::new();
                let pieces: Vec<&[u8]> = out.chunks(size).collect();
                for (i, piece) in pieces.iter().enumerate() {
                    let first = i == 0;
                    let last = i + 1 == pieces.len();
                    let opcode = if !first {
                        0
                    } else if text {
                        1
                    } else {
                        2
                    };
                    frames.extend(masked(last, if first { 4 } else { 0 }, opcode, piece));
                }
                let valid_text = !text || std::str::from_utf8(&data).is_ok();
                if pristine && valid_text && data.len() <= MAX_MESSAGE && !input.streaming {
                    expect = Some((text, data));
                }
                frames
            }
            Op::Bomb { copies } => {
                let block = zeros_block();
                let copies = usize::from(copies % 4096) + 1;
                let mut payload = block.repeat(copies);
                payload.truncate(payload.len() - 4);
                bomb = copies > 1;
                masked(true, 4, 2, &payload)
            }
            Op::Read => {
                while conn.read().is_some() {}
                Vec::new()
            }
        };
        let fresh = !ended && !conn.has_unread_data() && !mid_message;
        let mut rest = &bytes[..];
        // As a driver: inflation steps that are due run before more is read.
        loop {
            if conn.poll_timeout() == Some(Instant::ZERO) {
                conn.handle_timeout(Instant::ZERO);
                continue;
            }
            if rest.is_empty() || !conn.wants_read() {
                break;
            }
            let want = usize::from(
                input
                    .cuts
                    .get(cut % input.cuts.len().max(1))
                    .copied()
                    .unwrap_or(u16::MAX),
            )
            .max(1);
            cut += 1;
            let n = want.min(rest.len());
            conn.handle_data(Instant::ZERO, &rest[..n]);
            rest = &rest[n..];
        }
        let mut got = Vec::new();
        loop {
            while let Some(d) = conn.read() {
                if let Data::Message(m) = &d {
                    assert!(m.len() <= MAX_MESSAGE);
                }
                got.push(d);
            }
            if conn.poll_timeout() != Some(Instant::ZERO) {
                break;
            }
            conn.handle_timeout(Instant::ZERO);
        }
        assert!(conn.buffer_memory() <= 1 << 23, "{}", conn.buffer_memory());
        let mut closed = None;
        while let Some(ev) = conn.poll_event() {
            if let Event::Closed(c) = ev {
                closed = Some(c);
            }
        }
        if let Some(c) = &closed {
            ended = true;
            if bomb && fresh {
                // Stopped while inflating, or (the largest) at its compressed size already.
                assert_eq!(c.code, CloseCode::MESSAGE_TOO_BIG, "{c:?}");
            }
        }
        if let (Some((text, data)), true) = (expect, fresh && closed.is_none()) {
            let want = if text {
                Message::text(std::str::from_utf8(&data).unwrap())
            } else {
                Message::binary(data)
            };
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(matches!(&got[0], Data::Message(m) if *m == want));
        }
        while let Some(t) = conn.poll_transmit() {
            let n = t.len();
            conn.advance(n);
        }
    }
});
