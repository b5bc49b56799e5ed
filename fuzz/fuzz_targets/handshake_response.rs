//! The client's response parser: arbitrary bytes, cut at arbitrary points, optionally after a
//! valid prefix, fed to a client handshake with arbitrary limits. Oracle: no panic; the input is
//! untouched until the server is accepted and then loses exactly the head, which fits the
//! limits; waiting for a refusal's body buffers a bounded amount; only the documented errors
//! come out, with the negotiated subprotocol and extensions among those offered.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tether::handshake::{
    ClientHandshake, ClientRequest, HandshakeError, HandshakeLimits, accept_key, client_key,
};

/// The most body bytes a refusal waits for: 4 KiB of raw chunked body.
const MAX_BODY_WAIT: usize = 4096;

fuzz_target!(|input: (u8, [u8; 16], u8, u8, Vec<u8>, Vec<u8>)| {
    let (template, nonce, size, headers, cuts, tail) = input;
    let accept = accept_key(client_key(nonce));
    let upgrade = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n"
    );
    let mut data = match template % 3 {
        0 => Vec::new(),
        1 => upgrade.into_bytes(),
        _ => format!("{upgrade}Sec-WebSocket-Protocol: chat\r\n\r\n").into_bytes(),
    };
    data.extend_from_slice(&tail);
    let limits = HandshakeLimits::new(32 + usize::from(size) * 64, usize::from(headers % 80));
    let request = ClientRequest::new("ws://example.com/chat")
        .expect("a valid URL")
        .subprotocol("chat")
        .and_then(|r| r.subprotocol("superchat"))
        .and_then(|r| r.extension("permessage-deflate; client_max_window_bits"))
        .expect("valid offers");
    let mut client = ClientHandshake::new(request, nonce, &limits);

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
        match client.handle(&mut buffer) {
            Ok(None) => {
                assert_eq!(&buffer[..], &data[..fed], "input changed while waiting");
                assert!(
                    buffer.len() < limits.max_head_size + MAX_BODY_WAIT,
                    "buffered without bound"
                );
            }
            Ok(Some(response)) => {
                let consumed = fed - buffer.len();
                assert!(consumed > 0 && consumed <= limits.max_head_size);
                assert_eq!(
                    &buffer[..],
                    &data[consumed..fed],
                    "bytes after the head changed"
                );
                assert_eq!(response.status(), 101);
                assert!(response.headers().len() <= limits.max_headers);
                if let Some(p) = response.subprotocol() {
                    assert!(p == "chat" || p == "superchat");
                }
                for extension in response.extensions() {
                    let name = extension.split(';').next().unwrap_or_default().trim();
                    assert!(name.eq_ignore_ascii_case("permessage-deflate"));
                }
                let before = buffer.clone();
                assert!(matches!(client.handle(&mut buffer), Ok(None)));
                assert_eq!(buffer, before);
                return;
            }
            Err(error) => {
                assert_eq!(&buffer[..], &data[..fed], "input changed on failure");
                check_error(&error, &limits, fed);
                return;
            }
        }
    }
    let error = client.handle_eof(&mut buffer);
    assert!(
        matches!(
            error,
            HandshakeError::Rejected { .. } | HandshakeError::UnexpectedEof
        ),
        "{error:?}"
    );
    check_error(&error, &limits, fed);
});

/// Only documented errors, each consistent with what was fed.
fn check_error(error: &HandshakeError, limits: &HandshakeLimits, fed: usize) {
    assert!(!error.to_string().is_empty());
    match error {
        HandshakeError::Rejected { status, body, .. } => {
            assert!(!(300..400).contains(status) && *status != 101);
            assert!(body.len() <= 1024);
            assert_eq!(error.http_status(), Some(*status));
        }
        HandshakeError::Redirect { status, .. } => {
            assert!((300..400).contains(status));
            assert_eq!(error.http_status(), Some(*status));
        }
        HandshakeError::HeadTooLarge { limit } => {
            assert_eq!(*limit, limits.max_head_size);
            assert!(fed >= limits.max_head_size);
        }
        HandshakeError::TooManyHeaders { limit } => assert_eq!(*limit, limits.max_headers),
        HandshakeError::UnsupportedVersion
        | HandshakeError::MissingUpgrade
        | HandshakeError::InvalidUpgrade(_)
        | HandshakeError::MissingConnection
        | HandshakeError::InvalidConnection(_)
        | HandshakeError::MissingAccept
        | HandshakeError::InvalidAccept(_)
        | HandshakeError::UnofferedSubprotocol(_)
        | HandshakeError::UnexpectedSubprotocol(_)
        | HandshakeError::MultipleSubprotocols(_)
        | HandshakeError::UnofferedExtension(_)
        | HandshakeError::MalformedHttp(_)
        | HandshakeError::UnexpectedEof => assert_eq!(error.http_status(), None),
        other => panic!("undocumented error from the parser: {other:?}"),
    }
}
