//! Many connections at once against the adapter's server.

use std::net::TcpStream;

use crate::frame::op;
use tether_io::ServerConfig;

use crate::harness::Adapter;
use crate::limits::raise_open_files;
use crate::raw::{RawPeer, request};
use crate::setup::{LIMIT, Serving};

const CONNECTIONS: usize = 1000;
/// Connections opened together, within the listener's backlog.
const BATCH: usize = 100;

/// A thousand raw clients hold a connection open each, then each sends one message and gets
/// it back.
pub fn thousand_concurrent_connections<A: Adapter>() {
    // Each connection costs the process a descriptor for the raw client and one or two for
    // the adapter's end.
    raise_open_files(4 * CONNECTIONS as u64 + 256);
    let addr = Serving::start::<A>(ServerConfig::default()).echo_all();
    let mut peers = Vec::with_capacity(CONNECTIONS);
    while peers.len() < CONNECTIONS {
        let batch: Vec<RawPeer> = (0..BATCH)
            .map(|_| {
                let stream = TcpStream::connect(addr).expect("connect");
                let mut peer = RawPeer::client(stream);
                peer.write_all(&request(addr, "/", &[]));
                peer
            })
            .collect();
        for mut peer in batch {
            let response = peer.read_head();
            assert_eq!(
                response.status(),
                101,
                "{}: connection {}: {response:?}",
                A::NAME,
                peers.len()
            );
            peers.push(peer);
        }
    }
    for (i, peer) in peers.iter_mut().enumerate() {
        peer.send(op::TEXT, format!("hello {i}").as_bytes());
    }
    for (i, peer) in peers.iter_mut().enumerate() {
        let frame = peer.read_frame(LIMIT);
        assert_eq!(
            (frame.opcode, frame.payload),
            (op::TEXT, format!("hello {i}").into_bytes()),
            "{}: connection {i}",
            A::NAME
        );
    }
}
