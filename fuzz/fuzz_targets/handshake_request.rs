//! The server's request parser: arbitrary bytes, cut at arbitrary points, optionally after a
//! valid prefix, fed to a server handshake with arbitrary limits. Oracle: no panic; the input is
//! untouched until a request is accepted and then loses exactly the head, which fits the
//! limits; nothing is buffered past the head limit; refusals use only the documented statuses
//! and write a response; an accepted request can be answered.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tether::handshake::{
    Accept, HandshakeLimits, ServerHandshake, ServerPolicy, write_accept, write_reject,
};

/// The request line and handshake fields without the key, to reach the later rules quickly.
const PREFIX: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";

/// A complete valid head: what follows it must survive byte for byte.
const VALID: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\r\n";

fuzz_target!(|input: (u8, u8, u8, Vec<u8>, Vec<u8>)| {
    let (template, size, headers, cuts, tail) = input;
    let mut data = match template % 3 {
        0 => Vec::new(),
        1 => PREFIX.to_vec(),
        _ => VALID.to_vec(),
    };
    data.extend_from_slice(&tail);
    let limits = HandshakeLimits::new(32 + usize::from(size) * 64, usize::from(headers % 80));

    let mut server = ServerHandshake::new(&limits);
    let mut buffer = BytesMut::new();
    let mut fed = 0;
    let mut cut = cuts.iter().cycle();
    while fed < data.len() {
        let n = cut
            .next()
            .map_or(data.len(), |c| usize::from(*c).max(1))
            .min(data.len() - fed);
        buffer.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        match server.handle(&mut buffer) {
            Ok(None) => {
                assert_eq!(&buffer[..], &data[..fed], "input changed while waiting");
                assert!(
                    buffer.len() < limits.max_head_size,
                    "buffered past the head limit"
                );
            }
            Ok(Some(request)) => {
                let consumed = fed - buffer.len();
                assert!(consumed > 0 && consumed <= limits.max_head_size);
                assert_eq!(
                    &buffer[..],
                    &data[consumed..fed],
                    "bytes after the head changed"
                );
                assert!(request.headers().len() <= limits.max_headers);
                assert_eq!(request.method(), "GET");
                assert!(request.target().starts_with('/'));
                assert_eq!(request.key().len(), 24);
                let policy = ServerPolicy::new()
                    .subprotocol("superchat")
                    .subprotocol("chat");
                let accept = policy.accept_for(&request);
                if let Some(p) = &accept.subprotocol {
                    assert!(request.subprotocols().contains(p));
                }
                let mut out = BytesMut::new();
                write_accept(&request, &accept, &mut out)
                    .expect("policy picks an offered protocol");
                assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
                write_accept(&request, &Accept::new(), &mut out).expect("a bare accept is valid");
                // Over: later calls change nothing.
                let before = buffer.clone();
                assert!(matches!(server.handle(&mut buffer), Ok(None)));
                assert_eq!(buffer, before);
                return;
            }
            Err(reject) => {
                assert_eq!(&buffer[..], &data[..fed], "input changed on refusal");
                assert!(
                    matches!(reject.status, 400 | 405 | 426 | 431 | 505),
                    "undocumented status {}",
                    reject.status
                );
                let mut out = BytesMut::new();
                write_reject(&reject, &mut out);
                assert!(out.starts_with(format!("HTTP/1.1 {} ", reject.status).as_bytes()));
                return;
            }
        }
    }
});
