//! The frame decoder: arbitrary bytes, cut at arbitrary points, fed to an open connection of
//! either role. Oracle: no panic; the header parser and the connection agree on what they accept;
//! buffered memory stays within the configured limits plus a constant; at most one terminal
//! event, and exactly one after end of stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use tether::frame::FrameHeader;
use tether::{Config, Connection, Event, Instant, Role};

fuzz_target!(|input: (bool, bool, Vec<u8>, Vec<u8>)| {
    let (server, streaming, cuts, data) = input;
    // The header parser alone: never panics, and a parsed header's length fits the input.
    if let Ok(Some((header, len))) = FrameHeader::parse(&data) {
        assert!(len <= data.len() && len <= 14);
        assert_eq!(header.encoded_len(), len);
    }
    let mut config = Config::default();
    config.streaming = streaming;
    config.max_frame_payload = 1 << 16;
    config.max_message_size = 1 << 17;
    config.read_buffer_size = 4096;
    let role = if server { Role::Server } else { Role::Client };
    let mut conn = Connection::open(role, config, ChaCha8Rng::seed_from_u64(0), Instant::ZERO);
    let mut rest = &data[..];
    let mut cut = cuts.iter().cycle();
    let mut terminal = 0;
    while !rest.is_empty() {
        let want = cut.next().map_or(rest.len(), |c| (*c as usize).max(1));
        let mut buf = conn.recv_buf();
        let n = want.min(buf.len()).min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        buf.commit(Instant::ZERO, n);
        rest = &rest[n..];
        while conn.read().is_some() {}
        while let Some(ev) = conn.poll_event() {
            terminal += usize::from(matches!(ev, Event::Closed(_)));
        }
        while let Some(out) = conn.poll_transmit() {
            let n = out.len();
            conn.advance(n);
        }
        // Limits (64 KiB frames, 128 KiB messages) plus a constant.
        assert!(conn.buffer_memory() <= (1 << 17) + (1 << 16) + (1 << 14) + 4096 * 4);
    }
    assert!(terminal <= 1);
    conn.handle_eof(Instant::ZERO);
    while let Some(ev) = conn.poll_event() {
        terminal += usize::from(matches!(ev, Event::Closed(_)));
    }
    assert_eq!(terminal, 1);
});
