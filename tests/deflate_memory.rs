//! Memory of an idle connection in each permessage-deflate mode, as resident memory growth over
//! many connections (Linux): the numbers in the `deflate` module's documentation come from here
//! (`cargo test --release --features deflate --test deflate_memory -- --nocapture`).
#![cfg(feature = "deflate")]

mod common;

use common::*;
use tether::deflate::DeflateConfig;
use tether::handshake::{Accept, ClientRequest, ServerPolicy};
use tether::{Config, Connection, Instant, Message};

/// Resident memory of this process, in bytes (Linux).
fn rss() -> Option<isize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: isize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Resident bytes per connection (client and server averaged) for `pairs` pairs that each
/// exchanged one 16 KiB JSON text each way and then went quiet past the buffer linger. The
/// pairs are kept in `keep`, so no mode reuses memory another freed.
fn idle_bytes(deflate: Option<DeflateConfig>, pairs: usize, keep: &mut Vec<Pair>) -> Option<isize> {
    let mut config = quiet();
    config.deflate = deflate;
    let json = "{\"user\":\"alice\",\"room\":\"general\",\"text\":\"hello there\"}".repeat(400);
    let message = Message::text(&json[..16 << 10]);
    // One pair first, so the configuration's pool and lazily built tables are not counted per
    // pair.
    keep.push(open_pair(config.clone(), &message));
    keep.reserve(pairs);
    let before = rss()?;
    for _ in 0..pairs {
        keep.push(open_pair(config.clone(), &message));
    }
    let after = rss()?;
    Some((after - before) / (2 * pairs as isize))
}

fn open_pair(config: Config, message: &Message) -> Pair {
    let request = ClientRequest::new("ws://127.0.0.1:9001/").unwrap();
    let client = Connection::client(request, config.clone(), rng(1), Instant::ZERO);
    let server = Connection::server(config, ServerPolicy::new(), rng(2), Instant::ZERO);
    let mut p = Pair::new(client, server, Chunking::Whole);
    p.drive();
    p.server.conn.accept(p.now, Accept::new()).unwrap();
    p.drive();
    p.client.conn.send(message.clone()).unwrap();
    p.server.conn.send(message.clone()).unwrap();
    p.drive();
    // Quiet past every buffer linger: what remains is what an idle connection holds.
    p.now += std::time::Duration::from_secs(5);
    p.client.conn.handle_timeout(p.now);
    p.server.conn.handle_timeout(p.now);
    p.drive();
    // The application took its data and events.
    p.client.data.clear();
    p.server.data.clear();
    p.client.events.clear();
    p.server.events.clear();
    p.client.events.shrink_to_fit();
    p.server.events.shrink_to_fit();
    p.client.data.shrink_to_fit();
    p.server.data.shrink_to_fit();
    p.wire = [Vec::new(), Vec::new()];
    p
}

/// Without context takeover an idle connection holds no compression state; with it, the
/// windows and tables cost what the documentation says.
#[test]
fn idle_memory_per_mode() {
    let mut keep = Vec::new();
    let Some(off) = idle_bytes(None, 1000, &mut keep) else {
        return; // no /proc here
    };
    let low = idle_bytes(Some(DeflateConfig::low_memory()), 1000, &mut keep).unwrap();
    let mut small = DeflateConfig::default();
    small.max_window_bits = 10;
    small.peer_max_window_bits = 10;
    let mut smallest = small;
    smallest.memory_level = 1;
    let small = idle_bytes(Some(small), 200, &mut keep).unwrap();
    let smallest = idle_bytes(Some(smallest), 200, &mut keep).unwrap();
    let mut lean = DeflateConfig::default();
    lean.memory_level = 1;
    let lean = idle_bytes(Some(lean), 200, &mut keep).unwrap();
    let full = idle_bytes(Some(DeflateConfig::default()), 200, &mut keep).unwrap();
    println!("idle resident bytes per connection (with the test pair's bookkeeping):");
    println!(
        "  off {off}, low_memory {low}, window 10 {small}, window 10 memory level 1 {smallest}, \
         memory level 1 {lean}, default {full}"
    );
    println!(
        "  deflate's share: low_memory {}, window 10 {}, window 10 memory level 1 {}, \
         memory level 1 {}, default {}",
        low - off,
        small - off,
        smallest - off,
        lean - off,
        full - off
    );
    // Resident memory moves in pages: allow a little noise over the 4 KB goal.
    assert!(
        low - off <= 6 << 10,
        "low-memory mode holds {} bytes more",
        low - off
    );
    assert!(full > small && small > low, "{full} {small} {low}");
    // The memory level shrinks the kept compressor's block buffers (112 KiB at 8, under 1 KiB
    // at 1); resident memory sees the part a 16 KiB message touched.
    assert!(
        small > smallest && full > lean,
        "{small} {smallest} {full} {lean}"
    );
}
