//! permessage-deflate (RFC 7692) through `Connection`: negotiation in both roles, the RFC's
//! examples on the wire, round trips in every mode however the bytes are cut, and the failures
//! (bad data 1007, RSV1 where it may not be 1002, a bomb 1009).
#![cfg(feature = "deflate")]

mod common;

use common::*;
use flate2::{Compress, Compression, FlushCompress};
use tether::deflate::DeflateConfig;
use tether::frame::OpCode;
use tether::handshake::{Accept, ClientRequest, HandshakeError, ServerPolicy, accept_key};
use tether::{
    CloseCause, CloseCode, Config, Connection, Data, DataKind, Event, Instant, Message,
    ProtocolError,
};

const T0: Instant = Instant::ZERO;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn config(deflate: Option<DeflateConfig>) -> Config {
    let mut c = quiet();
    c.deflate = deflate;
    c
}

/// Compresses everything, however short.
fn eager() -> DeflateConfig {
    let mut d = DeflateConfig::default();
    d.threshold = 0;
    d
}

/// A client and a server with these settings after the opening handshake.
fn pair(client: Config, server: Config, chunking: Chunking) -> Pair {
    let request = ClientRequest::new("ws://127.0.0.1:9001/").unwrap();
    let client = Connection::client(request, client, rng(1), T0);
    let server = Connection::server(server, ServerPolicy::new(), rng(2), T0);
    let mut pair = Pair::new(client, server, chunking);
    pair.drive();
    pair.server.conn.accept(pair.now, Accept::new()).unwrap();
    pair.drive();
    pair
}

fn negotiated(pair: &Pair) -> Vec<String> {
    pair.client.conn.response().unwrap().extensions().to_vec()
}

/// A server that negotiated permessage-deflate with the client's `offer`, ready for raw frames.
fn server_with(offer: &str, deflate: DeflateConfig) -> Connection {
    server_configured(offer, config(Some(deflate)))
}

fn server_configured(offer: &str, config: Config) -> Connection {
    let mut conn = Connection::server(config, ServerPolicy::new(), rng(3), T0);
    let head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {offer}\r\n\r\n"
    );
    feed(&mut conn, T0, head.as_bytes(), &Chunking::Whole);
    assert!(matches!(conn.poll_event(), Some(Event::Request(_))));
    conn.accept(T0, Accept::new()).unwrap();
    let out = String::from_utf8(drain_output(&mut conn)).unwrap();
    assert!(
        out.contains("Sec-WebSocket-Extensions: permessage-deflate"),
        "{out}"
    );
    assert!(matches!(conn.poll_event(), Some(Event::Connected { .. })));
    conn
}

/// A client whose request got the 101 response with `extensions`; the client's events.
fn client_given(extensions: &str) -> (Connection, Vec<Event>) {
    let request = ClientRequest::new("ws://127.0.0.1:9001/").unwrap();
    let mut conn = Connection::client(request, config(Some(eager())), rng(4), T0);
    let head = String::from_utf8(drain_output(&mut conn)).unwrap();
    assert!(
        head.contains("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
        "{head}"
    );
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n",
        accept_key(key)
    );
    feed(&mut conn, T0, response.as_bytes(), &Chunking::Whole);
    let events = drain_events(&mut conn);
    (conn, events)
}

fn text(s: &str) -> Message {
    Message::text(s)
}

/// RFC 7692 §7.2.3: the examples decode, in one frame and in fragments, with and without
/// the shared window, stored and with BFINAL.
#[test]
fn rfc7692_7_2_3_examples_decode() {
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let cases: Vec<(Vec<Vec<u8>>, Vec<&str>)> = vec![
        // §7.2.3.1: one frame, then in two fragments.
        (
            vec![frame_rsv(true, 4, OpCode::Text, &hello, Some(MASK))],
            vec!["Hello"],
        ),
        (
            vec![
                frame_rsv(false, 4, OpCode::Text, &hello[..3], Some(MASK)),
                frame_rsv(true, 0, OpCode::Continuation, &hello[3..], Some(MASK)),
            ],
            vec!["Hello"],
        ),
        // §7.2.3.2: the second "Hello" refers back to the first.
        (
            vec![
                frame_rsv(true, 4, OpCode::Text, &hello, Some(MASK)),
                frame_rsv(
                    true,
                    4,
                    OpCode::Text,
                    &[0xf2, 0x00, 0x11, 0x00, 0x00],
                    Some(MASK),
                ),
            ],
            vec!["Hello", "Hello"],
        ),
        // §7.2.3.3: a stored block.
        (
            vec![frame_rsv(
                true,
                4,
                OpCode::Text,
                &[
                    0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                ],
                Some(MASK),
            )],
            vec!["Hello"],
        ),
        // §7.2.3.4: a final block (BFINAL) with padding.
        (
            vec![frame_rsv(
                true,
                4,
                OpCode::Text,
                &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
                Some(MASK),
            )],
            vec!["Hello"],
        ),
        // An uncompressed message (RSV1 clear) between compressed ones.
        (
            vec![
                frame_rsv(true, 4, OpCode::Text, &hello, Some(MASK)),
                frame_rsv(true, 0, OpCode::Text, b"plain", Some(MASK)),
            ],
            vec!["Hello", "plain"],
        ),
    ];
    for (frames, expected) in cases {
        for chunking in [Chunking::Whole, Chunking::Bytewise] {
            for streaming in [false, true] {
                let mut c = config(Some(eager()));
                c.streaming = streaming;
                let mut conn = server_configured("permessage-deflate", c);
                for f in &frames {
                    feed(&mut conn, T0, f, &chunking);
                }
                let data = drain_data(&mut conn);
                let got: Vec<String> = if streaming {
                    let mut texts = Vec::new();
                    let mut current = Vec::new();
                    for d in data {
                        match d {
                            Data::MessageStart(kind) => {
                                assert_eq!(kind, DataKind::Text);
                                current.clear();
                            }
                            Data::MessageChunk(b) => current.extend_from_slice(&b),
                            Data::MessageEnd => {
                                texts.push(String::from_utf8(current.clone()).unwrap())
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    texts
                } else {
                    messages_of(&data)
                        .into_iter()
                        .map(|m| match m {
                            Message::Text(t) => t.to_string(),
                            other => panic!("unexpected {other:?}"),
                        })
                        .collect()
                };
                assert_eq!(got, expected, "{chunking:?} streaming {streaming}");
                assert!(drain_events(&mut conn).is_empty(), "no failure");
            }
        }
    }
}

/// RFC 7692 §7.2.3.1: "Hello" compresses to `f2 48 cd c9 c9 07 00`, RSV1 on the frame.
#[test]
fn rfc7692_7_2_3_1_hello_on_the_wire() {
    let mut conn = server_with("permessage-deflate", eager());
    conn.send_text("Hello").unwrap();
    let out = drain_output(&mut conn);
    assert_eq!(out, [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    // With context takeover the second one refers back to the first (§7.2.3.2) and is shorter.
    conn.send_text("Hello").unwrap();
    let out = drain_output(&mut conn);
    assert_eq!(out[0], 0xc1, "FIN, RSV1, text");
    assert!(out.len() < 9, "{out:02x?}");
    // Control frames are never compressed (RFC 7692 §6.1).
    conn.ping(&b"Hello"[..]).unwrap();
    assert_eq!(
        drain_output(&mut conn),
        [0x89, 0x05, b'H', b'e', b'l', b'l', b'o']
    );
}

/// RFC 7692 §6.1: a fragmented send has RSV1 on its first frame only.
#[test]
fn fragments_have_rsv1_on_the_first_frame_only() {
    let mut p = pair(
        config(Some(eager())),
        config(Some(eager())),
        Chunking::Whole,
    );
    let payload = "chat ".repeat(500);
    p.client
        .conn
        .send_fragment(DataKind::Text, payload.clone().into_bytes(), false)
        .unwrap();
    p.client
        .conn
        .send_fragment(DataKind::Text, payload.clone().into_bytes(), false)
        .unwrap();
    p.client
        .conn
        .send_fragment(DataKind::Text, payload.clone().into_bytes(), true)
        .unwrap();
    let start = p.wire[0].len();
    p.drive();
    let mut wire = &p.wire[0][start..];
    let mut headers = Vec::new();
    while !wire.is_empty() {
        let (h, n) = tether::frame::FrameHeader::parse(wire).unwrap().unwrap();
        headers.push((h.opcode, h.rsv, h.fin));
        wire = &wire[n + h.payload_len as usize..];
    }
    assert_eq!(
        headers,
        [
            (OpCode::Text, 4, false),
            (OpCode::Continuation, 0, false),
            (OpCode::Continuation, 0, true)
        ]
    );
    assert_eq!(Pair::messages(&p.server), [text(&payload.repeat(3))]);
}

/// Both roles, every mode, however the bytes are cut: the same messages arrive, and
/// permessage-deflate was negotiated.
#[test]
fn round_trips_in_every_mode_and_chunking() {
    let sizes = [0usize, 1, 100, 1023, 1024, 5000, 16 << 10, 200 << 10];
    let messages: Vec<Message> = sizes
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| {
            let json = format!("{{\"user\":\"u{i}\",\"text\":\"hello world\"}}").repeat(n / 30 + 1)
                [..n]
                .to_string();
            let noise: Vec<u8> = (0..n as u32)
                .map(|x| (x.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            [text(&json), Message::Binary(noise.into()), text(&json)]
        })
        .collect();
    let mut window = DeflateConfig::default();
    window.max_window_bits = 9;
    window.peer_max_window_bits = 10;
    let modes = [
        (DeflateConfig::default(), DeflateConfig::default()),
        (eager(), eager()),
        (DeflateConfig::low_memory(), DeflateConfig::default()),
        (DeflateConfig::default(), DeflateConfig::low_memory()),
        (window, window),
    ];
    let chunkings = [
        Chunking::Whole,
        Chunking::Sizes(vec![1, 7, 300, 4096, 3]),
        Chunking::Sizes(vec![65536, 13]),
    ];
    for (ci, (cd, sd)) in modes.iter().enumerate() {
        for chunking in &chunkings {
            for streaming in [false, true] {
                let mut cc = config(Some(*cd));
                let mut sc = config(Some(*sd));
                cc.streaming = streaming;
                sc.streaming = streaming;
                let mut p = pair(cc, sc, chunking.clone());
                let agreed = negotiated(&p);
                assert_eq!(agreed.len(), 1, "{agreed:?}");
                assert!(agreed[0].starts_with("permessage-deflate"));
                for m in &messages {
                    if !p.client.conn.is_open() || !p.server.conn.is_open() {
                        panic!(
                            "mode {ci} {chunking:?} streaming {streaming}: {:?} {:?}",
                            p.client.events, p.server.events
                        );
                    }
                    p.client.conn.send(m.clone()).unwrap();
                    p.server.conn.send(m.clone()).unwrap();
                    p.drive();
                }
                for side in [&p.client, &p.server] {
                    let got = if streaming {
                        reassemble(&side.data)
                    } else {
                        Pair::messages(side)
                    };
                    assert_eq!(got.len(), messages.len(), "mode {ci} {chunking:?}");
                    assert!(
                        got == messages,
                        "mode {ci} {chunking:?} streaming {streaming}"
                    );
                }
                assert!(
                    !p.client
                        .events
                        .iter()
                        .any(|e| matches!(e, Event::Closed(_)))
                );
            }
        }
    }
}

/// Streamed data put back together into messages.
fn reassemble(data: &[Data]) -> Vec<Message> {
    let mut out = Vec::new();
    let mut kind = DataKind::Binary;
    let mut buf = Vec::new();
    for d in data {
        match d {
            Data::MessageStart(k) => {
                kind = *k;
                buf.clear();
            }
            Data::MessageChunk(b) => buf.extend_from_slice(b),
            Data::MessageEnd => out.push(match kind {
                DataKind::Text => text(std::str::from_utf8(&buf).unwrap()),
                _ => Message::Binary(buf.clone().into()),
            }),
            Data::Message(m) => out.push(m.clone()),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

/// Compression actually happens: JSON shrinks on the wire; a message under the threshold
/// goes uncompressed (RSV1 clear).
#[test]
fn threshold_and_ratio() {
    let mut p = pair(
        config(Some(DeflateConfig::default())),
        config(Some(DeflateConfig::default())),
        Chunking::Whole,
    );
    let json = "{\"user\":\"alice\",\"room\":\"general\",\"text\":\"hello\"}".repeat(100);
    let start = p.wire[1].len();
    p.server.conn.send_text(&json).unwrap();
    p.server.conn.send_text("short").unwrap();
    p.drive();
    let frames = &p.wire[1][start..];
    let (h, n) = tether::frame::FrameHeader::parse(frames).unwrap().unwrap();
    assert_eq!(h.rsv, 4);
    assert!(
        h.payload_len < json.len() as u64 / 10,
        "{} of {}",
        h.payload_len,
        json.len()
    );
    let rest = &frames[n + h.payload_len as usize..];
    assert_eq!(rest, [0x81, 5, b's', b'h', b'o', b'r', b't']);
    assert_eq!(Pair::messages(&p.client), [text(&json), text("short")]);
}

/// A peer that does not configure deflate neither offers nor accepts it, and the other side
/// works on without it.
#[test]
fn off_on_either_side_means_off() {
    for (c, s) in [(None, Some(eager())), (Some(eager()), None)] {
        let mut p = pair(config(c), config(s), Chunking::Whole);
        assert!(negotiated(&p).is_empty());
        let start = p.wire[1].len();
        p.server.conn.send_text(&"x".repeat(4000)).unwrap();
        p.drive();
        assert_eq!(p.wire[1][start] & 0x70, 0, "no RSV bit");
        assert_eq!(Pair::messages(&p.client), [text(&"x".repeat(4000))]);
    }
}

/// RFC 7692 §6.1 and RFC 6455 §5.2: RSV1 on a continuation or a control frame, or without
/// negotiation, fails with 1002.
#[test]
fn rsv1_where_it_may_not_be_fails_with_1002() {
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let bad = [
        vec![
            frame_rsv(false, 0, OpCode::Text, b"He", Some(MASK)),
            frame_rsv(true, 4, OpCode::Continuation, b"llo", Some(MASK)),
        ],
        vec![frame_rsv(true, 4, OpCode::Ping, b"", Some(MASK))],
        vec![frame_rsv(true, 2, OpCode::Text, &hello, Some(MASK))],
        vec![frame_rsv(true, 6, OpCode::Text, &hello, Some(MASK))],
    ];
    for frames in bad {
        let mut conn = server_with("permessage-deflate", eager());
        for f in &frames {
            feed(&mut conn, T0, f, &Chunking::Whole);
        }
        let closed = terminal(&drain_events(&mut conn));
        assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR, "{frames:02x?}");
    }
    // Without negotiation.
    let mut conn = open(tether::Role::Server, quiet());
    feed(
        &mut conn,
        T0,
        &frame_rsv(true, 4, OpCode::Text, &hello, Some(MASK)),
        &Chunking::Whole,
    );
    let closed = terminal(&drain_events(&mut conn));
    assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR);
    assert_eq!(
        closed.cause,
        CloseCause::Protocol(ProtocolError::ReservedBits(4))
    );
}

/// Data that is not deflate fails with 1007; compressed text that is not UTF-8 too.
#[test]
fn bad_compressed_data_fails_with_1007() {
    let not_utf8 = {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(64);
        c.compress_vec(&[0xff, 0xfe, 0x41], &mut out, FlushCompress::Sync)
            .unwrap();
        out.truncate(out.len() - 4);
        out
    };
    for (payload, err) in [
        (
            vec![0xff, 0xff, 0xff, 0xff, 0x00],
            ProtocolError::InvalidCompressedData,
        ),
        (not_utf8, ProtocolError::InvalidUtf8),
    ] {
        for streaming in [false, true] {
            let mut c = config(Some(eager()));
            c.streaming = streaming;
            let mut conn = server_configured("permessage-deflate", c);
            feed(
                &mut conn,
                T0,
                &frame_rsv(true, 4, OpCode::Text, &payload, Some(MASK)),
                &Chunking::Whole,
            );
            drain_data(&mut conn);
            let out = parse_frames(&drain_output(&mut conn));
            assert_eq!(close_code(&out.last().unwrap().2), Some(1007));
            let closed = terminal(&drain_events(&mut conn));
            assert_eq!(closed.cause, CloseCause::Protocol(err.clone()));
        }
    }
}

/// RFC 7692 §5.1: the client fails the connection on an invalid response, with a typed
/// handshake error, and accepts a valid one.
#[test]
fn client_fails_on_an_invalid_response() {
    for bad in [
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover=yes",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate, permessage-deflate",
    ] {
        let (conn, events) = client_given(bad);
        let closed = terminal(&events);
        assert!(
            matches!(
                closed.cause,
                CloseCause::HandshakeFailed(HandshakeError::Deflate(_))
            ),
            "{bad}: {closed:?}"
        );
        assert_eq!(conn.poll_transport(), Some(tether::TransportAction::Close));
    }
    let (mut conn, events) =
        client_given("permessage-deflate; server_no_context_takeover; client_max_window_bits=9");
    assert!(
        matches!(events[..], [Event::Connected { .. }]),
        "{events:?}"
    );
    // The server's answer binds us: a 9-bit window, no context takeover.
    conn.send_text(&"abc".repeat(1000)).unwrap();
    let out = drain_output(&mut conn);
    assert_eq!(out[0], 0xc1);
}

/// A 1 GiB bomb (zeros, about 1 MiB compressed) stops at the message limit with 1009, in
/// both modes, without inflating it all.
#[test]
fn bomb_stops_at_the_limit_with_1009() {
    let block = {
        let mut c = Compress::new(Compression::best(), false);
        let zeros = vec![0u8; 1 << 20];
        let mut out = Vec::with_capacity(1 << 16);
        c.compress_vec(&zeros, &mut out, FlushCompress::Sync)
            .unwrap();
        out
    };
    // Each copy inflates to 1 MiB on its own; 1024 of them to 1 GiB.
    let mut bomb = block.repeat(1024);
    bomb.truncate(bomb.len() - 4);
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    for streaming in [false, true] {
        let mut c = config(Some(eager()));
        c.max_message_size = 8 << 20;
        c.streaming = streaming;
        let mut conn = server_configured("permessage-deflate", c);
        feed(
            &mut conn,
            T0,
            &frame_rsv(true, 4, OpCode::Binary, &bomb, Some(MASK)),
            &Chunking::Sizes(vec![65536]),
        );
        // The steps a driver runs at its next turns (reads of 64 KiB take more than one).
        run_steps(&mut conn);
        let data = drain_data(&mut conn);
        let delivered: usize = data.iter().map(Data::len).sum();
        assert!(delivered <= 8 << 20, "{delivered}");
        let out = parse_frames(&drain_output(&mut conn));
        assert_eq!(close_code(&out.last().unwrap().2), Some(1009));
        let closed = terminal(&drain_events(&mut conn));
        assert!(
            matches!(
                closed.cause,
                CloseCause::Protocol(ProtocolError::MessageTooLarge { len, max: 0x80_0000 })
                    if len == (8 << 20) + 1
            ),
            "{closed:?}"
        );
    }
}

/// A compressed frame is inflated as it arrives, never buffered whole: the frame limit does not
/// apply to it (incompressible data grows a little when compressed), the message limit does, to
/// the inflated size and (with a little room) to the compressed bytes.
#[test]
fn compressed_frames_are_bounded_by_the_message_limit_only() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..8192)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    let mut c = Compress::new(Compression::default(), false);
    let mut payload = Vec::with_capacity(9000);
    c.compress_vec(&noise, &mut payload, FlushCompress::Sync)
        .unwrap();
    payload.truncate(payload.len() - 4);
    assert!(payload.len() > noise.len(), "{}", payload.len());
    for (max_message, ok) in [(8192, true), (8191, false)] {
        let mut config = config(Some(eager()));
        config.max_frame_payload = 1024;
        config.max_message_size = max_message;
        let mut conn = server_configured("permessage-deflate", config);
        let frame = frame_rsv(true, 4, OpCode::Binary, &payload, Some(MASK));
        feed(&mut conn, T0, &frame, &Chunking::Sizes(vec![1000]));
        let messages = messages_of(&drain_data(&mut conn));
        let events = drain_events(&mut conn);
        if ok {
            assert_eq!(messages, [Message::Binary(noise.clone().into())]);
            assert!(events.is_empty(), "{events:?}");
        } else {
            assert_eq!(terminal(&events).code, CloseCode::MESSAGE_TOO_BIG);
        }
    }
    // Compressed bytes far past the limit fail at the header, whatever they would inflate to.
    let mut conn = server_with("permessage-deflate", eager());
    let header = frame_rsv(true, 4, OpCode::Binary, &[], Some(MASK));
    let mut big = vec![header[0], 0x80 | 127];
    big.extend(((64u64 << 20) * 2).to_be_bytes());
    big.extend(MASK);
    feed(&mut conn, T0, &big, &Chunking::Whole);
    assert_eq!(
        terminal(&drain_events(&mut conn)).code,
        CloseCode::MESSAGE_TOO_BIG
    );
}

/// Raw deflate of `data` with a sync flush and the tail removed: one message's payload.
fn deflated(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    while c.total_in() < data.len() as u64 || out.len() < 4 || !out.ends_with(&[0, 0, 0xff, 0xff]) {
        let at = c.total_in() as usize;
        out.reserve(1 << 16);
        c.compress_vec(&data[at..], &mut out, FlushCompress::Sync)
            .unwrap();
    }
    out.truncate(out.len() - 4);
    out
}

/// Steps of the inflation a read started, driven as a driver does: while the core's next
/// deadline is now, fire it. Returns how many steps it took.
fn run_steps(conn: &mut Connection) -> usize {
    let mut steps = 0;
    while conn.poll_timeout() == Some(T0) {
        conn.handle_timeout(T0);
        steps += 1;
        assert!(steps < 10_000, "inflation never ends");
    }
    steps
}

/// A small read that inflates to megabytes is inflated in steps of bounded output, each at
/// the driver's next turn (a deadline of "now"); reading waits meanwhile, and the frames
/// behind it (here a text and a Ping) are handled after it, in order.
#[test]
fn a_large_inflation_runs_in_bounded_steps_in_order() {
    let zeros = vec![0u8; 5 << 20];
    let payload = deflated(&zeros);
    assert!(payload.len() < 64 << 10, "{}", payload.len());
    let mut wire = frame_rsv(true, 4, OpCode::Binary, &payload, Some(MASK));
    wire.extend(frame(true, OpCode::Text, b"after", Some(MASK)));
    wire.extend(frame(true, OpCode::Ping, b"p", Some(MASK)));
    let mut conn = server_with("permessage-deflate", eager());
    feed(&mut conn, T0, &wire, &Chunking::Whole);
    // One step ran: the message is not complete, the Ping not answered, reading waits.
    assert!(!conn.has_unread_data());
    assert!(!conn.wants_read());
    assert_eq!(conn.poll_timeout(), Some(T0));
    assert!(parse_frames(&drain_output(&mut conn)).is_empty());
    // 5 MiB in steps of at most 1 MiB.
    let steps = run_steps(&mut conn);
    assert!(steps >= 4, "{steps} steps");
    assert!(conn.has_unread_data());
    let (messages, events) = read_all(&mut conn);
    assert_eq!(
        messages,
        [Message::Binary(zeros.into()), text("after")],
        "in order"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::Ping(_))),
        "{events:?}"
    );
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, OpCode::Pong);
}

/// Streaming: each step hands on chunks of at most the budget, and while the unread chunks
/// are over the high watermark the next step waits for the application to read.
#[test]
fn streamed_inflation_waits_for_the_reader() {
    let zeros = vec![0u8; 6 << 20];
    let payload = deflated(&zeros);
    let mut config = config(Some(eager()));
    config.streaming = true;
    config.high_watermark = 2 << 20;
    config.low_watermark = 512 << 10;
    let mut conn = server_configured("permessage-deflate", config);
    feed(
        &mut conn,
        T0,
        &frame_rsv(true, 4, OpCode::Binary, &payload, Some(MASK)),
        &Chunking::Whole,
    );
    run_steps(&mut conn);
    // Steps stopped at the high watermark (plus at most one step's budget), not at 6 MiB:
    // no step is due until the application reads.
    assert!(conn.poll_timeout().is_none_or(|t| t > T0));
    let mut data = Vec::new();
    let mut buffered = 0;
    while conn.has_unread_data() {
        let d = conn.read().unwrap();
        buffered += d.len();
        data.push(d);
    }
    assert!(
        (2 << 20..=3 << 20).contains(&buffered),
        "{buffered} bytes inflated ahead of the reader"
    );
    // Reading on resumes the steps until the message ends.
    let mut unread = buffered;
    loop {
        run_steps(&mut conn);
        match conn.read() {
            Some(d) => {
                unread += d.len();
                data.push(d);
            }
            None => break,
        }
    }
    assert_eq!(unread, 6 << 20);
    assert!(matches!(
        data.first(),
        Some(Data::MessageStart(DataKind::Binary))
    ));
    assert!(matches!(data.last(), Some(Data::MessageEnd)));
}

/// What arrived before the transport's end is inflated and readable, however large, before
/// the connection reports its end.
#[test]
fn inflation_left_at_the_end_of_stream_is_delivered() {
    let zeros = vec![0u8; 3 << 20];
    let payload = deflated(&zeros);
    let mut conn = server_with("permessage-deflate", eager());
    feed(
        &mut conn,
        T0,
        &frame_rsv(true, 4, OpCode::Binary, &payload, Some(MASK)),
        &Chunking::Whole,
    );
    conn.handle_eof(T0);
    let (messages, events) = read_all(&mut conn);
    assert_eq!(messages, [Message::Binary(zeros.into())]);
    assert_eq!(terminal(&events).code, CloseCode::ABNORMAL);
}

/// A connection that starts quiet reads into 1 KiB; once busy, its reads grow with what
/// arrives, also when compressed frames are taken in pieces as they come (the input buffer is
/// then never left with less than 1 KiB of room, which used to keep it at 1 KiB for ever:
/// a read per KiB).
#[test]
fn reads_grow_past_the_quiet_kilobyte_while_pieces_arrive() {
    let mut conn = server_with("permessage-deflate", eager());
    let mut x = 7u64;
    let noise: String = (0..16_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let payload = deflated(noise.as_bytes());
    let wire = frame_rsv(true, 4, OpCode::Text, &payload, Some(MASK)).repeat(20);
    let (mut rest, mut reads, mut largest) = (&wire[..], 0, 0);
    while !rest.is_empty() {
        let mut buf = conn.recv_buf();
        largest = largest.max(buf.len());
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        buf.commit(T0, n);
        rest = &rest[n..];
        reads += 1;
        while conn.read().is_some() {}
    }
    assert!(largest >= 16 << 10, "largest read {largest} bytes");
    assert!(reads <= 30, "{reads} reads for {} bytes", wire.len());
}
