//! Streaming both ways: a 1 GiB message sent as fragments and received as chunks flows
//! between two connections with bounded memory.

mod common;

use common::*;
use tether::{Connection, Data, DataKind, Instant, Role};

#[test]
fn one_gib_message_flows_with_bounded_memory() {
    const TOTAL: usize = 1 << 30;
    const FRAGMENT: usize = 1 << 20;
    let mut config = quiet();
    config.streaming = true;
    let mut client = Connection::open(Role::Client, config.clone(), rng(3), Instant::ZERO);
    let mut server = Connection::open(Role::Server, config, rng(4), Instant::ZERO);
    let fragment = bytes::Bytes::from((0..FRAGMENT).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let (mut received, mut started, mut ended, mut peak) = (0usize, false, false, 0usize);
    let mut checksum_ok = true;
    let mut sent = 0;
    while sent < TOTAL {
        let fin = sent + FRAGMENT == TOTAL;
        client
            .send_fragment(DataKind::Binary, fragment.clone(), fin)
            .unwrap();
        sent += FRAGMENT;
        // The driver moves the bytes in socket-sized reads.
        while let Some(out) = client.poll_transmit() {
            let out = out.first();
            let n = out.len().min(64 << 10);
            let mut buf = server.recv_buf();
            let n = n.min(buf.len());
            buf[..n].copy_from_slice(&out[..n]);
            buf.commit(Instant::ZERO, n);
            client.advance(n);
            while let Some(d) = server.read() {
                match d {
                    Data::MessageStart(DataKind::Binary) => started = true,
                    Data::MessageChunk(c) => {
                        checksum_ok &= c
                            .iter()
                            .enumerate()
                            .all(|(i, b)| *b == ((received + i) % FRAGMENT % 251) as u8);
                        received += c.len();
                    }
                    Data::MessageEnd => ended = true,
                    other => panic!("unexpected {other:?}"),
                }
            }
            peak = peak.max(client.buffer_memory() + server.buffer_memory());
        }
    }
    assert!(started && ended && checksum_ok);
    assert_eq!(received, TOTAL);
    assert!(
        peak < 8 << 20,
        "peak buffered memory {peak} bytes for a 1 GiB message"
    );
}
