//! Prepared messages: framed once, the same bytes on every server-role connection, the same
//! messages as `send` on the receiving side, refused like `send`, uncompressed where
//! permessage-deflate was negotiated, masked afresh in the client role.

mod common;

use common::*;
use tether::frame::OpCode;
use tether::{Config, Message, PreparedMessage, Role, SendErrorKind};

#[test]
fn one_frame_serves_every_server_connection_and_matches_send() {
    for len in [0usize, 5, 125, 126, 2047, 2048, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let prepared = PreparedMessage::binary(payload.clone());
        let mut plain = open(Role::Server, quiet());
        plain.send_binary(payload.clone()).unwrap();
        let expected = drain_output(&mut plain);
        assert_eq!(prepared.frame()[..], expected[..], "len {len}");
        for _ in 0..3 {
            let mut conn = open(Role::Server, quiet());
            conn.send_text("before").unwrap();
            conn.send_prepared(&prepared).unwrap();
            conn.send_text("after").unwrap();
            let frames = parse_frames(&drain_output(&mut conn));
            assert_eq!(
                frames,
                vec![
                    (true, OpCode::Text, b"before".to_vec()),
                    (true, OpCode::Binary, payload.clone()),
                    (true, OpCode::Text, b"after".to_vec()),
                ],
                "len {len}"
            );
        }
    }
}

#[test]
fn a_large_prepared_frame_is_queued_by_reference() {
    let prepared = PreparedMessage::binary(vec![7u8; 64 << 10]);
    let mut conn = open(Role::Server, quiet());
    conn.send_prepared(&prepared).unwrap();
    let transmit = conn.poll_transmit().unwrap();
    let run = transmit.first();
    assert_eq!(run.as_ptr(), prepared.frame().as_ptr(), "not copied");
    assert_eq!(run.len(), prepared.frame().len());
}

#[test]
fn the_receiving_side_sees_the_message() {
    let mut client = open(Role::Client, quiet());
    let mut server = open(Role::Server, quiet());
    let prepared = PreparedMessage::text("hello \u{2713} everyone");
    server.send_prepared(&prepared).unwrap();
    let bytes = drain_output(&mut server);
    client.handle_data(tether::Instant::ZERO, &bytes);
    let (messages, _) = read_all(&mut client);
    assert_eq!(messages, vec![Message::text("hello \u{2713} everyone")]);
}

#[test]
fn refused_like_send_and_handed_back() {
    let mut config = quiet();
    config.high_watermark = 1000;
    config.low_watermark = 100;
    let mut conn = open(Role::Server, config);
    let big = PreparedMessage::binary(vec![0u8; 900]);
    conn.send_prepared(&big).unwrap();
    let err = conn.send_prepared(&big).unwrap_err();
    assert!(
        matches!(err.kind, SendErrorKind::BufferFull { .. }),
        "{err:?}"
    );
    assert_eq!(err.data, big);
    drain_output(&mut conn);
    conn.close(tether::Instant::ZERO, tether::CloseCode::NORMAL, "")
        .unwrap();
    let err = conn.send_prepared(&big).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Closing);
}

#[test]
fn the_client_role_masks_each_copy() {
    let prepared = PreparedMessage::text("from a client");
    let mut conn = open(Role::Client, quiet());
    conn.send_prepared(&prepared).unwrap();
    conn.send_prepared(&prepared).unwrap();
    let out = drain_output(&mut conn);
    let frames = parse_frames(&out);
    assert_eq!(frames.len(), 2);
    for f in &frames {
        assert_eq!(f, &(true, OpCode::Text, b"from a client".to_vec()));
    }
    // Masked: the mask bit is set and the payload is not in the clear.
    assert_eq!(out[1] & 0x80, 0x80);
    assert!(!out.windows(13).any(|w| w == b"from a client"));
}

#[cfg(feature = "deflate")]
#[test]
fn with_permessage_deflate_a_prepared_message_goes_uncompressed() {
    use tether::deflate::DeflateConfig;
    let mut deflate = DeflateConfig::default();
    deflate.threshold = 0;
    let mut config: Config = quiet();
    config.deflate = Some(deflate);
    let request = tether::handshake::ClientRequest::new("ws://127.0.0.1:9001/").unwrap();
    let client = tether::Connection::client(request, config.clone(), rng(1), tether::Instant::ZERO);
    let server = tether::Connection::server(
        config,
        tether::handshake::ServerPolicy::new(),
        rng(2),
        tether::Instant::ZERO,
    );
    let mut pair = Pair::new(client, server, Chunking::Whole);
    pair.drive();
    pair.server
        .conn
        .accept(pair.now, tether::handshake::Accept::new())
        .unwrap();
    pair.drive();
    let text = "compressible ".repeat(100);
    let prepared = PreparedMessage::text(&text);
    // A compressed message, a prepared one, a compressed one: the windows stay in step.
    pair.server.conn.send_text(&text).unwrap();
    let compressed = pair.server.conn.poll_transmit().unwrap().len();
    assert!(compressed < text.len(), "the plain send is compressed");
    pair.server.conn.send_prepared(&prepared).unwrap();
    let after = pair.server.conn.poll_transmit().unwrap().len();
    assert_eq!(after - compressed, prepared.frame().len(), "sent as framed");
    pair.server.conn.send_text(&text).unwrap();
    pair.drive();
    let got = Pair::messages(&pair.client);
    assert_eq!(got, vec![Message::text(text.clone()); 3]);
}

#[test]
fn accessors() {
    let p = PreparedMessage::from(Message::binary(vec![1u8, 2, 3]));
    assert_eq!(p.len(), 3);
    assert!(!p.is_empty());
    assert_eq!(p.kind(), tether::DataKind::Binary);
    assert_eq!(p.message(), &Message::binary(vec![1u8, 2, 3]));
    assert_eq!(p.memory(), 5 + 3);
    let _ = Config::default();
}
