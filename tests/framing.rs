//! Framing, message and close rules of RFC 6455, one test per rule, driven through the public
//! sans-IO API with raw bytes.

mod common;

use common::*;
use tether::frame::OpCode;
use tether::{
    CloseCause, CloseCode, CloseError, Config, Data, DataKind, Event, Initiator, Instant, Message,
    ProtocolError, Role, SendErrorKind, State, TransportAction,
};

const T0: Instant = Instant::ZERO;

/// Feeds `input` to a fresh connection of `role`, reads every message as an application does,
/// and returns what it wrote, the messages and its events.
fn run(role: Role, config: Config, input: &[u8]) -> (Vec<WireFrame>, Vec<Message>, Vec<Event>) {
    let mut conn = open(role, config);
    feed(&mut conn, T0, input, &Chunking::Whole);
    let messages = messages_of(&drain_data(&mut conn));
    let out = parse_frames(&drain_output(&mut conn));
    (out, messages, drain_events(&mut conn))
}

/// Asserts that `input` makes a server fail with `code` and the given protocol error.
fn server_fails(input: &[u8], code: u16, err: ProtocolError) {
    for chunking in [Chunking::Whole, Chunking::Bytewise] {
        let mut conn = open(Role::Server, quiet());
        feed(&mut conn, T0, input, &chunking);
        drain_data(&mut conn);
        let out = parse_frames(&drain_output(&mut conn));
        let last = out.last().expect("a close frame");
        assert_eq!(last.1, OpCode::Close);
        assert_eq!(close_code(&last.2), Some(code));
        let events = drain_events(&mut conn);
        let closed = terminal(&events);
        assert_eq!(closed.code, CloseCode(code));
        assert!(!closed.clean);
        assert_eq!(closed.initiator, Initiator::Local);
        assert_eq!(closed.cause, CloseCause::Protocol(err.clone()));
        assert!(!closed.reason.is_empty(), "the reason says what was wrong");
        // Half-close once the Close is written, then close at the peer's end of stream.
        assert_eq!(conn.poll_transport(), Some(TransportAction::Shutdown));
        conn.handle_eof(T0);
        assert_eq!(conn.poll_transport(), Some(TransportAction::Close));
        assert_eq!(conn.state(), State::Closed);
    }
}

// ----- RFC 6455 §5.2 base framing ---------------------------------------------------------------

/// RFC 6455 §5.2: reserved opcodes fail the connection with 1002.
#[test]
fn rfc6455_5_2_reserved_opcodes_fail_with_1002() {
    for op in (0x3..=0x7u8).chain(0xb..=0xf) {
        let input = [0x80 | op, 0x80, 1, 2, 3, 4];
        server_fails(&input, 1002, ProtocolError::ReservedOpcode(op));
    }
}

/// RFC 6455 §5.2: RSV bits without a negotiated extension fail with 1002.
#[test]
fn rfc6455_5_2_rsv_bits_fail_with_1002() {
    for rsv in 1..=7u8 {
        let input = frame_rsv(true, rsv, OpCode::Text, b"x", Some([1, 2, 3, 4]));
        server_fails(&input, 1002, ProtocolError::ReservedBits(rsv));
    }
}

/// RFC 6455 §5.2: a 64-bit length with the most significant bit set fails with 1002.
#[test]
fn rfc6455_5_2_64bit_length_top_bit_fails() {
    let input = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    server_fails(&input, 1002, ProtocolError::InvalidLength);
}

/// RFC 6455 §5.5: control frames over 125 bytes fail with 1002.
#[test]
fn rfc6455_5_5_long_control_frame_fails() {
    let input = cframe(true, OpCode::Ping, &[0u8; 126]);
    server_fails(&input, 1002, ProtocolError::ControlFrameTooLong(126));
}

/// RFC 6455 §5.5: fragmented control frames fail with 1002.
#[test]
fn rfc6455_5_5_fragmented_control_frame_fails() {
    let input = cframe(false, OpCode::Ping, b"x");
    server_fails(&input, 1002, ProtocolError::FragmentedControlFrame);
}

/// RFC 6455 §5.1: a server fails the connection on an unmasked frame from the client.
#[test]
fn rfc6455_5_1_server_rejects_unmasked_frames() {
    server_fails(
        &sframe(true, OpCode::Text, b"hi"),
        1002,
        ProtocolError::UnmaskedFrame,
    );
}

/// RFC 6455 §5.1: a client fails the connection on a masked frame from the server.
#[test]
fn rfc6455_5_1_client_rejects_masked_frames() {
    let (out, _, events) = run(Role::Client, quiet(), &cframe(true, OpCode::Text, b"hi"));
    assert_eq!(out.last().unwrap().1, OpCode::Close);
    assert_eq!(close_code(&out.last().unwrap().2), Some(1002));
    assert_eq!(
        terminal(&events).cause,
        CloseCause::Protocol(ProtocolError::MaskedFrame)
    );
}

/// RFC 6455 §5.3: every client frame carries a fresh masking key from the injected generator.
#[test]
fn rfc6455_5_3_client_masks_with_a_fresh_key_per_frame() {
    let mut conn = open(Role::Client, quiet());
    for _ in 0..4 {
        conn.send_text("same").unwrap();
    }
    let out = drain_output(&mut conn);
    let mut keys = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let (h, n) = tether::frame::FrameHeader::parse(rest).unwrap().unwrap();
        keys.push(h.mask.expect("client frames are masked"));
        rest = &rest[n + h.payload_len as usize..];
    }
    keys.dedup();
    assert_eq!(keys.len(), 4, "four distinct keys");
    // The same seed gives the same keys: randomness is injected, not global.
    let mut again = open(Role::Client, quiet());
    for _ in 0..4 {
        again.send_text("same").unwrap();
    }
    assert_eq!(drain_output(&mut again), out);
}

/// RFC 6455 §5.1: a server never masks.
#[test]
fn rfc6455_5_1_server_does_not_mask() {
    let mut conn = open(Role::Server, quiet());
    conn.send_text("hello").unwrap();
    assert_eq!(
        drain_output(&mut conn),
        sframe(true, OpCode::Text, b"hello")
    );
}

// ----- RFC 6455 §5.4 fragmentation --------------------------------------------------------------

/// RFC 6455 §5.4: a continuation frame with no message in progress fails with 1002.
#[test]
fn rfc6455_5_4_continuation_without_start_fails() {
    server_fails(
        &cframe(true, OpCode::Continuation, b"x"),
        1002,
        ProtocolError::UnexpectedContinuation,
    );
}

/// RFC 6455 §5.4: a new data frame while a fragmented message is open fails with 1002.
#[test]
fn rfc6455_5_4_new_message_inside_fragmented_fails() {
    let mut input = cframe(false, OpCode::Text, b"a");
    input.extend(cframe(true, OpCode::Binary, b"b"));
    server_fails(&input, 1002, ProtocolError::ExpectedContinuation);
}

/// RFC 6455 §5.4: control frames between fragments are handled at once, and the message is
/// reassembled around them.
#[test]
fn rfc6455_5_4_control_frames_between_fragments() {
    let mut input = cframe(false, OpCode::Text, b"Hel");
    input.extend(cframe(true, OpCode::Ping, b"p"));
    input.extend(cframe(false, OpCode::Continuation, b"lo, "));
    input.extend(cframe(true, OpCode::Continuation, b"world"));
    for chunking in [Chunking::Whole, Chunking::Bytewise] {
        let mut conn = open(Role::Server, quiet());
        feed(&mut conn, T0, &input, &chunking);
        let out = parse_frames(&drain_output(&mut conn));
        assert_eq!(out, vec![(true, OpCode::Pong, b"p".to_vec())]);
        let (messages, events) = read_all(&mut conn);
        assert!(matches!(&events[..], [Event::Ping(p)] if &p[..] == b"p"));
        assert_eq!(messages, vec![Message::text("Hello, world")]);
    }
}

/// Fragmentation on the send side: `send_fragment` writes Text/Continuation frames with FIN on
/// the last, allows control frames in between, and refuses interleaved messages.
#[test]
fn sending_fragments() {
    let mut conn = open(Role::Server, quiet());
    conn.send_fragment(DataKind::Text, "ab", false).unwrap();
    conn.ping("x").unwrap();
    let err = conn.send_text("other").unwrap_err();
    assert_eq!(err.kind, SendErrorKind::MessageInProgress);
    let err = conn.send_fragment(DataKind::Binary, "c", true).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::KindMismatch);
    conn.send_fragment(DataKind::Text, "c", true).unwrap();
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(
        out,
        vec![
            (false, OpCode::Text, b"ab".to_vec()),
            (true, OpCode::Ping, b"x".to_vec()),
            (true, OpCode::Continuation, b"c".to_vec()),
        ]
    );
}

/// Text fragments may split a character but must stay valid UTF-8; a bad fragment is refused
/// and changes nothing.
#[test]
fn sending_text_fragments_validates_utf8() {
    let euro = "€".as_bytes();
    let mut conn = open(Role::Server, quiet());
    conn.send_fragment(DataKind::Text, euro[..1].to_vec(), false)
        .unwrap();
    let err = conn
        .send_fragment(DataKind::Text, vec![0xff], true)
        .unwrap_err();
    assert_eq!(err.kind, SendErrorKind::InvalidUtf8);
    assert_eq!(&err.data[..], &[0xff]);
    let err = conn
        .send_fragment(DataKind::Text, euro[1..2].to_vec(), true)
        .unwrap_err();
    assert_eq!(err.kind, SendErrorKind::InvalidUtf8, "unfinished at fin");
    conn.send_fragment(DataKind::Text, euro[1..].to_vec(), true)
        .unwrap();
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(out.len(), 2);
}

// ----- RFC 6455 §8.1 UTF-8 ----------------------------------------------------------------------

/// RFC 6455 §8.1: invalid UTF-8 fails with 1007 as soon as the bytes can no longer be valid,
/// before the frame (or the message) is complete.
#[test]
fn rfc6455_8_1_invalid_utf8_fails_fast_mid_frame() {
    // A 1000-byte text frame whose 11th byte is invalid: only 20 payload bytes are delivered.
    let mut payload = vec![b'a'; 1000];
    payload[10] = 0xff;
    let bytes = cframe(true, OpCode::Text, &payload);
    let mut conn = open(Role::Server, quiet());
    feed(&mut conn, T0, &bytes[..8 + 20], &Chunking::Whole);
    let events = drain_events(&mut conn);
    assert_eq!(terminal(&events).code, CloseCode::INVALID_PAYLOAD);
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(close_code(&out[0].2), Some(1007));
}

/// RFC 6455 §8.1: validation spans fragments: a character split across two frames is fine, an
/// invalid sequence split across them fails in the second.
#[test]
fn rfc6455_8_1_utf8_across_fragments() {
    let euro = "€".as_bytes();
    let mut ok = cframe(false, OpCode::Text, &euro[..2]);
    ok.extend(cframe(true, OpCode::Continuation, &euro[2..]));
    let (_, messages, _) = run(Role::Server, quiet(), &ok);
    assert_eq!(messages, vec![Message::text("€")]);

    let mut bad = cframe(false, OpCode::Text, &[0xf4]);
    bad.extend(cframe(false, OpCode::Continuation, &[0x90]));
    bad.extend(cframe(true, OpCode::Continuation, b"never reached"));
    server_fails(&bad, 1007, ProtocolError::InvalidUtf8);
}

/// RFC 6455 §8.1: a message that ends inside a character is invalid.
#[test]
fn rfc6455_8_1_truncated_character_at_end_fails() {
    server_fails(
        &cframe(true, OpCode::Text, &"€".as_bytes()[..2]),
        1007,
        ProtocolError::InvalidUtf8,
    );
}

// ----- limits -----------------------------------------------------------------------------------

/// A frame over the limit fails with 1009 when its header is parsed, before any payload.
#[test]
fn frame_limit_decided_at_header() {
    let mut config = quiet();
    config.max_frame_payload = 100;
    let header_only = &cframe(true, OpCode::Binary, &[0u8; 101])[..8];
    let mut conn = open(Role::Server, config);
    feed(&mut conn, T0, header_only, &Chunking::Whole);
    let closed = terminal(&drain_events(&mut conn));
    assert_eq!(closed.code, CloseCode::MESSAGE_TOO_BIG);
    assert_eq!(
        closed.cause,
        CloseCause::Protocol(ProtocolError::FrameTooLarge { len: 101, max: 100 })
    );
}

/// A message whose fragments add up past the limit fails with 1009 at the header that would
/// pass it.
#[test]
fn message_limit_decided_at_header() {
    let mut config = quiet();
    config.max_message_size = 100;
    let mut input = cframe(false, OpCode::Binary, &[0u8; 60]);
    input.extend(&cframe(true, OpCode::Continuation, &[0u8; 41])[..8]);
    let mut conn = open(Role::Server, config);
    feed(&mut conn, T0, &input, &Chunking::Whole);
    let closed = terminal(&drain_events(&mut conn));
    assert_eq!(closed.code, CloseCode::MESSAGE_TOO_BIG);
    assert_eq!(
        closed.cause,
        CloseCause::Protocol(ProtocolError::MessageTooLarge { len: 101, max: 100 })
    );
}

/// The defaults allow 16 MiB messages in one frame.
#[test]
fn defaults_allow_16_mib_messages() {
    let c = Config::default();
    assert!(c.max_frame_payload >= 16 << 20);
    assert!(c.max_message_size >= 16 << 20);
    let payload = vec![7u8; 16 << 20];
    let (_, messages, _) = run(
        Role::Server,
        quiet(),
        &cframe(true, OpCode::Binary, &payload),
    );
    assert!(matches!(&messages[0], Message::Binary(b) if b.len() == 16 << 20));
}

/// A send that would take the output past the high watermark hands the message back with a
/// typed error and changes nothing; once drained, it goes through.
#[test]
fn write_buffer_limit_returns_the_message() {
    let mut config = quiet();
    config.high_watermark = 100;
    config.low_watermark = 50;
    let mut conn = open(Role::Server, config);
    conn.send_binary(vec![1u8; 80]).unwrap();
    let before = unwritten(&conn);
    let err = conn.send_binary(vec![2u8; 80]).unwrap_err();
    assert!(matches!(
        err.kind,
        SendErrorKind::BufferFull { limit: 100, .. }
    ));
    assert_eq!(err.into_inner(), Message::binary(vec![2u8; 80]));
    assert_eq!(unwritten(&conn), before);
    drain_output(&mut conn);
    conn.send_binary(vec![2u8; 80]).unwrap();
}

/// Over the high watermark, sends are refused until the output drains under the low one
/// (hysteresis), and a send into an empty buffer always fits.
#[test]
fn sends_resume_under_the_low_watermark() {
    let mut config = quiet();
    config.high_watermark = 1000;
    config.low_watermark = 200;
    let mut conn = open(Role::Server, config);
    conn.send_binary(vec![1u8; 1500]).unwrap(); // into an empty buffer: fits, now over
    assert!(!conn.is_writable());
    conn.advance(1000); // 504 left: under high, not yet under low
    assert!(!conn.is_writable());
    assert!(matches!(
        conn.send_binary(vec![2u8; 1]).unwrap_err().kind,
        SendErrorKind::BufferFull { .. }
    ));
    conn.advance(400); // 104 left
    assert!(conn.is_writable());
    conn.send_binary(vec![2u8; 1]).unwrap();
}

/// Streaming mode: a large message arrives as start / chunks / end with bounded buffering.
#[test]
fn streaming_delivers_chunks_with_bounded_memory() {
    let mut config = quiet();
    config.streaming = true;
    config.max_message_size = 1024; // not applied in streaming mode
    let mut conn = open(Role::Server, config);
    let payload: Vec<u8> = (0..(4 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let input = cframe(true, OpCode::Binary, &payload);
    let mut received = Vec::new();
    let mut peak = 0;
    let mut ended = false;
    for piece in input.chunks(16 << 10) {
        feed(&mut conn, T0, piece, &Chunking::Whole);
        peak = peak.max(conn.buffer_memory());
        for d in drain_data(&mut conn) {
            match d {
                Data::MessageStart(k) => assert_eq!(k, DataKind::Binary),
                Data::MessageChunk(c) => received.extend_from_slice(&c),
                Data::MessageEnd => ended = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(drain_events(&mut conn).is_empty());
    }
    assert!(ended);
    assert_eq!(received, payload);
    assert!(peak <= 64 << 10, "peak buffer {peak}");
}

/// Streaming text is validated incrementally too.
#[test]
fn streaming_text_fails_fast() {
    let mut config = quiet();
    config.streaming = true;
    let mut payload = vec![b'a'; 100];
    payload[50] = 0xc0;
    let input = cframe(true, OpCode::Text, &payload);
    let mut conn = open(Role::Server, config);
    feed(&mut conn, T0, &input, &Chunking::Sizes(vec![20]));
    drain_data(&mut conn);
    let events = drain_events(&mut conn);
    assert_eq!(terminal(&events).code, CloseCode::INVALID_PAYLOAD);
}

// ----- zero copy --------------------------------------------------------------------------------

/// A single-frame payload larger than a read buffer leaves the input buffer without a copy: the
/// message's bytes live inside the buffer the driver read into.
#[test]
fn large_single_frame_payload_is_not_copied() {
    let mut conn = open(Role::Server, quiet());
    let payload = vec![9u8; 40 << 10];
    let input = cframe(true, OpCode::Binary, &payload);
    let mut fed = 0;
    let mut last_end = std::ptr::null::<u8>();
    while fed < input.len() {
        let mut buf = conn.recv_buf();
        let n = buf.len().min(input.len() - fed);
        buf[..n].copy_from_slice(&input[fed..fed + n]);
        last_end = buf.as_ptr().wrapping_add(n);
        buf.commit(T0, n);
        fed += n;
    }
    let Some(Data::Message(Message::Binary(b))) = conn.read() else {
        panic!("a message")
    };
    assert_eq!(
        b.as_ptr_range().end,
        last_end,
        "payload points into the read buffer"
    );
    assert_eq!(b, payload);
}

/// A small payload is copied out, so the input buffer stays whole and initialised: while input
/// keeps coming it is reused for the next read (not zeroed again, and not pinned by the
/// message), and once the connection has been quiet for a second of its timer it is given back.
#[test]
fn input_buffer_is_reused_while_busy_and_released_when_quiet() {
    let mut conn = open(Role::Server, quiet());
    let input = cframe(true, OpCode::Binary, &[7u8; 1000]);
    let mut starts = Vec::new();
    let mut messages = Vec::new();
    for i in 0..4u64 {
        let mut buf = conn.recv_buf();
        starts.push(buf.as_ptr());
        buf[..input.len()].copy_from_slice(&input);
        buf.commit(T0 + std::time::Duration::from_millis(i), input.len());
        let Some(Data::Message(m)) = conn.read() else {
            panic!("a message")
        };
        messages.push(m);
    }
    // The first input after a quiet time gives its buffer back at once; from the second on,
    // the same buffer is read into again.
    assert_eq!(starts[2], starts[1]);
    assert_eq!(starts[3], starts[1]);
    assert!(messages.iter().all(|m| m.as_bytes() == [7u8; 1000]));
    assert!(conn.buffer_memory() >= 1000, "kept while busy");
    // The timer armed by the second input fires a second later; input came since, so the
    // buffer stays another second, then goes (no input in that second).
    let deadline = conn.poll_timeout().expect("a deadline to give it back");
    assert_eq!(deadline, T0 + std::time::Duration::from_millis(1001));
    conn.handle_timeout(deadline);
    assert!(
        conn.buffer_memory() >= 1000,
        "input since the timer was armed"
    );
    let deadline = conn.poll_timeout().expect("moved on");
    assert_eq!(deadline, T0 + std::time::Duration::from_millis(2001));
    conn.handle_timeout(deadline);
    assert_eq!(conn.poll_timeout(), None, "quiet: the timer stops");
    assert!(
        conn.buffer_memory() <= 1024,
        "given back when quiet: {}",
        conn.buffer_memory()
    );
}

/// An idle connection's driver polls its transport and usually finds nothing: on a quiet
/// connection such a read leaves no buffer behind; while busy the buffer is kept for reuse.
#[test]
fn an_empty_read_on_a_quiet_connection_leaves_no_buffer() {
    let mut conn = open(Role::Server, quiet());
    let buf = conn.recv_buf();
    assert!(!buf.is_empty());
    drop(buf); // the read found nothing
    assert_eq!(conn.buffer_memory(), 0);
    conn.recv_buf().commit(T0, 0);
    assert_eq!(conn.buffer_memory(), 0);
    // Two messages within the linger make the connection busy.
    let input = cframe(true, OpCode::Binary, &[7u8; 100]);
    for i in 0..2u64 {
        let mut buf = conn.recv_buf();
        buf[..input.len()].copy_from_slice(&input);
        buf.commit(T0 + std::time::Duration::from_millis(i), input.len());
        assert!(matches!(conn.read(), Some(Data::Message(_))));
    }
    drop(conn.recv_buf());
    assert!(conn.buffer_memory() > 0, "kept for reuse while busy");
    conn.handle_timeout(T0 + std::time::Duration::from_secs(2));
    drop(conn.recv_buf());
    assert_eq!(conn.buffer_memory(), 0, "quiet again");
}

/// A message that arrives over several reads (fragments assembled, or pieces passed on in
/// streaming mode) empties the input buffer after each read: that is the middle of one message,
/// not traffic. The buffer is kept for the rest without arming the linger, and a single such
/// message leaves the connection quiet: its buffer goes back at once, as after a message that
/// came in one read.
#[test]
fn a_message_in_many_reads_counts_once_for_the_buffer_linger() {
    for streaming in [false, true] {
        let mut config = quiet();
        config.streaming = streaming;
        let mut conn = open(Role::Server, config);
        let pieces = [
            cframe(false, OpCode::Binary, &[1u8; 3000]),
            cframe(false, OpCode::Continuation, &[2u8; 3000]),
            cframe(true, OpCode::Continuation, &[3u8; 3000]),
        ];
        let mut got = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let now = T0 + std::time::Duration::from_millis(i as u64);
            feed(&mut conn, now, piece, &Chunking::Whole);
            for d in drain_data(&mut conn) {
                match d {
                    Data::Message(m) => got.extend_from_slice(m.as_bytes()),
                    Data::MessageChunk(c) => got.extend_from_slice(&c),
                    _ => {}
                }
            }
            let last = i + 1 == pieces.len();
            if !last {
                assert_eq!(
                    conn.poll_timeout(),
                    None,
                    "no linger mid-message ({streaming})"
                );
                // A read that finds nothing mid-message keeps the buffer for the rest.
                drop(conn.recv_buf());
                assert!(conn.buffer_memory() > 0, "kept mid-message ({streaming})");
            }
        }
        assert_eq!(got.len(), 9000, "{streaming}");
        assert!(got[..3000].iter().all(|&b| b == 1) && got[6000..].iter().all(|&b| b == 3));
        assert_eq!(
            conn.poll_timeout(),
            None,
            "one message is no busy time ({streaming})"
        );
        drop(conn.recv_buf());
        assert_eq!(
            conn.buffer_memory(),
            0,
            "quiet after one message ({streaming})"
        );
    }
}

/// Server role: a large binary payload is queued as-is for a vectored write.
#[test]
fn server_sends_large_payloads_without_copy() {
    let mut conn = open(Role::Server, quiet());
    let payload = bytes::Bytes::from(vec![5u8; 64 << 10]);
    conn.send_binary(payload.clone()).unwrap();
    let transmit = conn.poll_transmit().unwrap();
    let slices: Vec<&[u8]> = transmit.iter().collect();
    assert_eq!(slices.len(), 2);
    assert_eq!(slices[1].as_ptr(), payload.as_ptr());
}

// ----- ping / pong ------------------------------------------------------------------------------

/// RFC 6455 §5.5.2: a Ping is answered with a Pong with the same payload, by the core.
#[test]
fn rfc6455_5_5_2_ping_answered_with_pong() {
    let (out, _, events) = run(Role::Server, quiet(), &cframe(true, OpCode::Ping, b"abc"));
    assert_eq!(out, vec![(true, OpCode::Pong, b"abc".to_vec())]);
    assert!(matches!(&events[..], [Event::Ping(p)] if &p[..] == b"abc"));
}

/// Pings are answered even when the user does not want to see them.
#[test]
fn pings_answered_silently_when_not_reported() {
    let mut config = quiet();
    config.report_pings = false;
    let (out, _, events) = run(Role::Client, config, &sframe(true, OpCode::Ping, b""));
    assert_eq!(out, vec![(true, OpCode::Pong, vec![])]);
    assert!(events.is_empty());
}

/// Control payloads over 125 bytes are a local error.
#[test]
fn ping_payload_limit_is_a_local_error() {
    let mut conn = open(Role::Client, quiet());
    let err = conn.ping(vec![0u8; 126]).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::ControlPayloadTooLong);
    assert_eq!(unwritten(&conn), 0);
}

// ----- RFC 6455 §5.5.1 / §7 close ---------------------------------------------------------------

/// RFC 6455 §5.5.1: a Close payload of one byte fails with 1002.
#[test]
fn rfc6455_5_5_1_close_length_one_fails() {
    server_fails(
        &cframe(true, OpCode::Close, &[3]),
        1002,
        ProtocolError::InvalidCloseLength,
    );
}

/// RFC 6455 §7.4: codes not allowed on the wire fail with 1002; the allowed ones are echoed.
#[test]
fn rfc6455_7_4_close_codes_on_the_wire() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        server_fails(
            &cframe(true, OpCode::Close, &code.to_be_bytes()),
            1002,
            ProtocolError::InvalidCloseCode(code),
        );
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let (out, _, events) = run(
            Role::Server,
            quiet(),
            &cframe(true, OpCode::Close, &code.to_be_bytes()),
        );
        assert_eq!(
            out,
            vec![(true, OpCode::Close, code.to_be_bytes().to_vec())]
        );
        let closed = terminal(&events);
        assert_eq!(closed.code, CloseCode(code));
        assert!(closed.clean);
        assert_eq!(closed.initiator, Initiator::Remote);
    }
}

/// RFC 6455 §5.5.1: a Close reason that is not UTF-8 fails with 1007.
#[test]
fn rfc6455_5_5_1_close_reason_must_be_utf8() {
    server_fails(
        &cframe(true, OpCode::Close, &[0x03, 0xe8, 0xce, 0xba, 0xff]),
        1007,
        ProtocolError::InvalidCloseReason,
    );
}

/// RFC 6455 §7.1.5: an empty Close body is reported as 1005 and echoed empty.
#[test]
fn rfc6455_7_1_5_empty_close_is_1005() {
    let (out, _, events) = run(Role::Server, quiet(), &cframe(true, OpCode::Close, b""));
    assert_eq!(out, vec![(true, OpCode::Close, vec![])]);
    let closed = terminal(&events);
    assert_eq!(closed.code, CloseCode::NO_STATUS);
    assert!(closed.clean);
}

/// Local close arguments: invalid codes and long reasons are typed errors that change nothing.
#[test]
fn close_argument_errors() {
    let mut conn = open(Role::Client, quiet());
    for code in [0u16, 1005, 1006, 1015, 2000, 5000] {
        assert_eq!(
            conn.close(T0, CloseCode(code), ""),
            Err(CloseError::InvalidCode(code))
        );
    }
    let long = "x".repeat(124);
    assert_eq!(
        conn.close(T0, CloseCode::NORMAL, &long),
        Err(CloseError::ReasonTooLong(124))
    );
    assert_eq!(unwritten(&conn), 0);
    assert_eq!(conn.state(), State::Open);
    conn.close(T0, CloseCode::NORMAL, &"x".repeat(123)).unwrap();
    assert_eq!(
        conn.close(T0, CloseCode::NORMAL, ""),
        Err(CloseError::AlreadyClosing)
    );
}

/// RFC 6455 §5.5.1: after sending Close, data frames are a local error; incoming data is still
/// delivered until the peer's Close.
#[test]
fn rfc6455_5_5_1_no_data_after_our_close() {
    let mut conn = open(Role::Server, quiet());
    conn.close(T0, CloseCode::GOING_AWAY, "bye").unwrap();
    assert_eq!(conn.state(), State::Closing);
    let err = conn.send_text("late").unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Closing);
    let mut input = cframe(true, OpCode::Text, b"still here");
    input.extend(cframe(true, OpCode::Close, &1001u16.to_be_bytes()));
    feed(&mut conn, T0, &input, &Chunking::Whole);
    let (messages, events) = read_all(&mut conn);
    assert_eq!(messages, vec![Message::text("still here")]);
    let closed = terminal(&events);
    assert!(closed.clean);
    assert_eq!(closed.initiator, Initiator::Local);
    assert_eq!(closed.cause, CloseCause::Normal);
    // Our Close was written exactly once; no echo of theirs.
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(out.iter().filter(|f| f.1 == OpCode::Close).count(), 1);
    // Server closes the transport first (RFC 6455 §7.1.1), with a half-close.
    assert_eq!(conn.poll_transport(), Some(TransportAction::Shutdown));
    assert_eq!(conn.send_text("x").unwrap_err().kind, SendErrorKind::Closed);
}

/// RFC 6455 §7.1.1: after the close handshake the server closes the transport; the client waits
/// for that, and closes it itself after the close timeout.
#[test]
fn rfc6455_7_1_1_who_closes_the_transport() {
    let mut pair = Pair::open(quiet(), Chunking::Whole);
    pair.client
        .conn
        .close(pair.now, CloseCode::NORMAL, "done")
        .unwrap();
    pair.drive();
    assert!(pair.server.write_closed, "server closes first");
    assert!(
        pair.server.transport_closed,
        "and closes at the client's end of stream"
    );
    assert!(pair.client.eof_delivered);
    assert!(
        pair.client.transport_closed,
        "client closes after seeing EOF"
    );
    let c = terminal(&pair.client.events);
    let s = terminal(&pair.server.events);
    assert!(c.clean && s.clean);
    assert_eq!(
        (c.initiator, s.initiator),
        (Initiator::Local, Initiator::Remote)
    );
    assert_eq!((c.code, s.code), (CloseCode::NORMAL, CloseCode::NORMAL));
    assert_eq!(s.reason, "done");
}

/// A client whose server never closes the transport closes it after the close timeout.
#[test]
fn client_closes_transport_after_timeout() {
    let mut conn = open(Role::Client, quiet());
    feed(
        &mut conn,
        T0,
        &sframe(true, OpCode::Close, &1000u16.to_be_bytes()),
        &Chunking::Whole,
    );
    drain_output(&mut conn);
    assert!(terminal(&drain_events(&mut conn)).clean);
    assert_eq!(conn.poll_transport(), None, "waits for the server");
    let deadline = conn.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + Config::default().close_timeout);
    conn.handle_timeout(deadline - std::time::Duration::from_millis(1));
    assert_eq!(conn.poll_transport(), None);
    conn.handle_timeout(deadline);
    assert_eq!(conn.poll_transport(), Some(TransportAction::Close));
    assert_eq!(conn.poll_timeout(), None);
}

/// RFC 6455 §7.1.5: a transport that ends without a Close frame gives 1006, not clean.
#[test]
fn rfc6455_7_1_5_eof_without_close_is_1006() {
    for role in [Role::Client, Role::Server] {
        let mut conn = open(role, quiet());
        conn.handle_eof(T0);
        let closed = terminal(&drain_events(&mut conn));
        assert_eq!(closed.code, CloseCode::ABNORMAL);
        assert!(!closed.clean);
        assert_eq!(closed.cause, CloseCause::TransportLost);
        assert_eq!(conn.poll_transport(), Some(TransportAction::Close));
        conn.handle_eof(T0);
        assert!(
            conn.poll_event().is_none(),
            "still exactly one terminal event"
        );
    }
}

/// Close timeout: our Close unanswered ends with 1006 after `close_timeout`, not before.
#[test]
fn close_timeout_ends_with_1006() {
    let mut conn = open(Role::Client, quiet());
    conn.close(T0, CloseCode::NORMAL, "").unwrap();
    drain_output(&mut conn);
    let deadline = conn.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + Config::default().close_timeout);
    conn.handle_timeout(deadline - std::time::Duration::from_nanos(1));
    assert!(conn.poll_event().is_none());
    conn.handle_timeout(deadline);
    let closed = terminal(&drain_events(&mut conn));
    assert_eq!(closed.code, CloseCode::ABNORMAL);
    assert_eq!(closed.cause, CloseCause::CloseTimeout);
    assert!(!closed.clean);
    assert_eq!(conn.poll_transport(), Some(TransportAction::Close));
}

/// Bytes after a Close frame are ignored, and nothing more is reported.
#[test]
fn nothing_after_close_frame() {
    let mut input = cframe(true, OpCode::Close, &1000u16.to_be_bytes());
    input.extend(cframe(true, OpCode::Text, b"ignored"));
    input.extend([0xff; 10]);
    let (_, messages, events) = run(Role::Server, quiet(), &input);
    assert!(messages.is_empty());
    assert_eq!(events.len(), 1);
    assert!(terminal(&events).clean);
}

/// Everything sent arrives, in both directions, through a Pair.
#[test]
fn pair_round_trip_both_ways() {
    for chunking in [
        Chunking::Whole,
        Chunking::Bytewise,
        Chunking::Sizes(vec![3, 7, 1448]),
    ] {
        let mut pair = Pair::open(quiet(), chunking);
        pair.client.conn.send_text("hi server").unwrap();
        pair.server.conn.send_binary(vec![1, 2, 3]).unwrap();
        pair.client
            .conn
            .send_fragment(DataKind::Binary, vec![4u8; 3000], false)
            .unwrap();
        pair.client
            .conn
            .send_fragment(DataKind::Binary, vec![5u8; 10], true)
            .unwrap();
        pair.drive();
        let s = Pair::messages(&pair.server);
        assert_eq!(s[0], Message::text("hi server"));
        let mut expected = vec![4u8; 3000];
        expected.extend([5u8; 10]);
        assert_eq!(s[1], Message::binary(expected));
        assert_eq!(
            Pair::messages(&pair.client),
            vec![Message::binary(vec![1, 2, 3])]
        );
    }
}

/// An idle connection holds little buffer memory: after a 64 KiB message in each direction the
/// input and output buffers shrink back (the benchmark measures the whole process; this pins the
/// core's share).
#[test]
fn buffers_shrink_back_when_idle() {
    let mut pair = Pair::open(quiet(), Chunking::Whole);
    pair.client.conn.send_binary(vec![1u8; 64 << 10]).unwrap();
    pair.server.conn.send_binary(vec![2u8; 64 << 10]).unwrap();
    pair.drive();
    assert_eq!(Pair::messages(&pair.server).len(), 1);
    assert_eq!(Pair::messages(&pair.client).len(), 1);
    // Then small messages, the common case for a connection that goes idle.
    pair.client.conn.send_text("ping?").unwrap();
    pair.server.conn.send_text("pong!").unwrap();
    pair.drive();
    for side in [&pair.client, &pair.server] {
        let held = side.conn.buffer_memory();
        assert!(held <= 2048, "{held} bytes held while idle");
    }
}

/// A busy connection (input keeps coming) keeps its input buffer for the next read, and gives
/// it back once its timer finds it has been quiet for a second.
#[test]
fn a_busy_connection_keeps_its_buffer_until_quiet() {
    let mut pair = Pair::open(quiet(), Chunking::Whole);
    for i in 1..=3 {
        pair.client.conn.send_binary(vec![1u8; 8 << 10]).unwrap();
        pair.drive();
        assert_eq!(Pair::messages(&pair.server).len(), i);
    }
    let busy = pair.server.conn.buffer_memory();
    assert!(busy >= 8 << 10, "kept while busy: {busy}");
    let deadline = pair
        .server
        .conn
        .poll_timeout()
        .expect("a deadline to give it back");
    assert!(deadline <= pair.now + std::time::Duration::from_secs(1));
    // The timer was armed by the second message; the third came since: one more second.
    pair.server.conn.handle_timeout(deadline);
    let kept = pair.server.conn.buffer_memory();
    assert!(kept >= 8 << 10, "input since the timer was armed: {kept}");
    let next = pair.server.conn.poll_timeout().expect("moved on");
    assert_eq!(next, deadline + std::time::Duration::from_secs(1));
    pair.server.conn.handle_timeout(next);
    let idle = pair.server.conn.buffer_memory();
    assert!(idle <= 1024, "{idle} bytes held once quiet");
}

/// A violation right behind a valid message in the same read: the application sees the message
/// and its reply goes out before our Close, as if frames were read one by one (Autobahn 3.2,
/// 4.1.3, 5.15 and friends).
#[test]
fn violation_behind_unread_message_waits_for_the_reply() {
    let mut input = cframe(true, OpCode::Text, b"first");
    input.extend([0x85, 0x80, 1, 2, 3, 4]); // reserved opcode 5
    input.extend(cframe(true, OpCode::Ping, b"never"));
    for chunking in [Chunking::Whole, Chunking::Bytewise] {
        let mut conn = open(Role::Server, quiet());
        feed(&mut conn, T0, &input, &chunking);
        assert!(
            !conn.wants_read(),
            "nothing more is read while a failure waits"
        );
        assert!(
            conn.poll_event().is_none(),
            "polling events acts on nothing"
        );
        assert!(conn.poll_transmit().is_none());
        let Some(Data::Message(m)) = conn.read() else {
            panic!("the valid message comes first")
        };
        conn.send(m).unwrap(); // the echo
        assert!(conn.poll_event().is_none(), "still answering");
        assert!(conn.read().is_none(), "the application is back for more");
        let closed = terminal(&drain_events(&mut conn));
        assert_eq!(
            closed.cause,
            CloseCause::Protocol(ProtocolError::ReservedOpcode(5))
        );
        let out = parse_frames(&drain_output(&mut conn));
        assert_eq!(out[0], (true, OpCode::Text, b"first".to_vec()));
        assert_eq!(out[1].1, OpCode::Close);
        assert_eq!(close_code(&out[1].2), Some(1002));
        assert_eq!(out.len(), 2, "the ping after the violation is not answered");
    }
}

/// The deferred failure is bounded: an application that never reads still gets the connection
/// failed after the close timeout, and the unread message stays readable after the end.
#[test]
fn deferred_violation_is_bounded_by_the_close_timeout() {
    let mut input = cframe(true, OpCode::Binary, b"unread");
    input.extend(cframe(true, OpCode::Continuation, b"x"));
    let mut conn = open(Role::Server, quiet());
    feed(&mut conn, T0, &input, &Chunking::Whole);
    assert_eq!(unwritten(&conn), 0);
    let deadline = conn.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + Config::default().close_timeout);
    conn.handle_timeout(deadline);
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(close_code(&out[0].2), Some(1002));
    assert_eq!(
        terminal(&drain_events(&mut conn)).cause,
        CloseCause::Protocol(ProtocolError::UnexpectedContinuation)
    );
    assert_eq!(
        messages_of(&drain_data(&mut conn)),
        vec![Message::binary(&b"unread"[..])]
    );
}

/// A peer that sends a message and then floods Pings while the application reads nothing and
/// polls nothing cannot grow anything without bound: Ping events beyond the high watermark's
/// worth are dropped (counted), every Ping is answered, and reading pauses once the unwritten
/// Pongs pass the high watermark; it resumes once they are written under the low one.
#[test]
fn ping_flood_behind_an_unread_message_pauses_reading() {
    let mut config = quiet();
    config.high_watermark = 64 << 10;
    config.low_watermark = 16 << 10;
    let mut conn = open(Role::Server, config);
    feed(
        &mut conn,
        T0,
        &cframe(true, OpCode::Text, b"unread"),
        &Chunking::Whole,
    );
    let ping = cframe(true, OpCode::Ping, b"p");
    let mut fed = 0;
    while conn.wants_read() && fed < 100_000 {
        feed(&mut conn, T0, &ping, &Chunking::Whole);
        fed += 1;
    }
    assert!(!conn.wants_read());
    // A Pong to a 1-byte Ping is 3 bytes on the wire.
    assert_eq!(fed, (64 << 10) / 3 + 1, "paused after {fed} pings");
    assert!(conn.dropped_events() > 0);
    let events = drain_events(&mut conn);
    assert!(
        events.len() <= (64 << 10) / 65,
        "{} events queued",
        events.len()
    );
    assert_eq!(events.len() as u64 + conn.dropped_events(), fed as u64);
    let out = unwritten(&conn);
    conn.advance(out - 3 * 5000);
    assert!(conn.wants_read(), "reading resumes under the low watermark");
    assert_eq!(
        parse_frames(&drain_output(&mut conn)).len(),
        5000,
        "the rest of the Pongs"
    );
    assert_eq!(messages_of(&drain_data(&mut conn)).len(), 1);
}

/// Output the application sends does not stop reading (only sends are refused): two peers that
/// both hold a large message to write keep reading each other's, so neither waits for ever.
#[test]
fn large_application_output_does_not_stop_reading() {
    let mut conn = open(Role::Server, quiet());
    conn.send_binary(vec![1u8; 8 << 20]).unwrap();
    assert!(!conn.is_writable());
    assert!(conn.wants_read());
    feed(
        &mut conn,
        T0,
        &cframe(true, OpCode::Binary, &vec![2u8; 1 << 20]),
        &Chunking::Whole,
    );
    assert!(conn.wants_read());
    assert_eq!(messages_of(&drain_data(&mut conn)).len(), 1);
}

/// The application took the message, and the violation arrives in a later read (100 ms later)
/// before the application replied: the reply still goes out first (the failure waits for the
/// application's next `read`).
#[test]
fn violation_after_the_message_was_taken_still_waits_for_the_reply() {
    let mut conn = open(Role::Server, quiet());
    feed(
        &mut conn,
        T0,
        &cframe(true, OpCode::Text, b"first"),
        &Chunking::Whole,
    );
    let Some(Data::Message(m)) = conn.read() else {
        panic!("a message")
    };
    let later = T0 + std::time::Duration::from_millis(100);
    feed(
        &mut conn,
        later,
        &frame_rsv(true, 2, OpCode::Text, b"x", Some([1, 2, 3, 4])),
        &Chunking::Whole,
    );
    assert!(conn.poll_transmit().is_none(), "no Close before the reply");
    conn.send(m).unwrap();
    assert!(conn.read().is_none());
    let closed = terminal(&drain_events(&mut conn));
    assert_eq!(
        closed.cause,
        CloseCause::Protocol(ProtocolError::ReservedBits(2))
    );
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(out[0].1, OpCode::Text);
    assert_eq!(close_code(&out[1].2), Some(1002));
}

/// A message and the peer's Close in the same read (a one-shot request): the application reads
/// the message and its reply goes out before our Close echo; the close is clean.
#[test]
fn message_then_close_gets_its_reply_before_the_echo() {
    for chunking in [Chunking::Whole, Chunking::Bytewise] {
        let mut input = cframe(true, OpCode::Text, b"request");
        input.extend(cframe(true, OpCode::Close, &1000u16.to_be_bytes()));
        let mut conn = open(Role::Server, quiet());
        feed(&mut conn, T0, &input, &chunking);
        assert!(
            conn.poll_transmit().is_none(),
            "the echo waits for the reader"
        );
        assert_eq!(conn.state(), State::Open);
        let Some(Data::Message(request)) = conn.read() else {
            panic!("the request first")
        };
        assert_eq!(request, Message::text("request"));
        conn.send_text("response").unwrap();
        assert!(conn.read().is_none());
        let closed = terminal(&drain_events(&mut conn));
        assert!(closed.clean);
        assert_eq!(closed.initiator, Initiator::Remote);
        let out = parse_frames(&drain_output(&mut conn));
        assert_eq!(out[0], (true, OpCode::Text, b"response".to_vec()));
        assert_eq!(
            out[1],
            (true, OpCode::Close, 1000u16.to_be_bytes().to_vec())
        );
        assert_eq!(conn.poll_transport(), Some(TransportAction::Shutdown));
    }
}

/// The peer's Close behind an unread message is answered after the close timeout if the
/// application never reads, and at once when its reader is gone (`discard_incoming`).
#[test]
fn deferred_close_is_bounded() {
    let mut input = cframe(true, OpCode::Text, b"unread");
    input.extend(cframe(true, OpCode::Close, &1001u16.to_be_bytes()));
    let mut conn = open(Role::Server, quiet());
    feed(&mut conn, T0, &input, &Chunking::Whole);
    let deadline = conn.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + Config::default().close_timeout);
    conn.handle_timeout(deadline);
    assert!(terminal(&drain_events(&mut conn)).clean);
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(close_code(&out[0].2), Some(1001));

    let mut conn = open(Role::Server, quiet());
    feed(&mut conn, T0, &input, &Chunking::Whole);
    conn.discard_incoming();
    assert!(terminal(&drain_events(&mut conn)).clean);
    assert!(conn.read().is_none(), "the unread message was dropped");
}

/// An application that took its last message and reads no more (it only sends) holds the
/// peer's Close for one second at most, not the whole close timeout.
#[test]
fn close_after_a_taken_message_waits_one_second_for_the_answer() {
    let mut conn = open(Role::Server, quiet());
    feed(
        &mut conn,
        T0,
        &cframe(true, OpCode::Text, b"taken"),
        &Chunking::Whole,
    );
    assert!(matches!(conn.read(), Some(Data::Message(_))));
    feed(
        &mut conn,
        T0,
        &cframe(true, OpCode::Close, &1000u16.to_be_bytes()),
        &Chunking::Whole,
    );
    assert!(conn.poll_transmit().is_none(), "the answer may still come");
    let deadline = conn.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + std::time::Duration::from_secs(1));
    conn.handle_timeout(deadline);
    assert!(terminal(&drain_events(&mut conn)).clean);
    assert_eq!(parse_frames(&drain_output(&mut conn))[0].1, OpCode::Close);

    // Unread data first: the close timeout; once it is taken, one second from then.
    let mut input = cframe(true, OpCode::Text, b"unread");
    input.extend(cframe(true, OpCode::Close, &1000u16.to_be_bytes()));
    let mut conn = open(Role::Server, quiet());
    feed(&mut conn, T0, &input, &Chunking::Whole);
    assert_eq!(
        conn.poll_timeout(),
        Some(T0 + Config::default().close_timeout)
    );
    assert!(conn.read().is_some());
    assert_eq!(
        conn.poll_timeout(),
        Some(T0 + std::time::Duration::from_secs(1))
    );
}

/// The peer sends its Close and its end of stream behind an unread message: the Close counts
/// (a clean close, not a lost transport), and the transport closes once the echo is written.
#[test]
fn deferred_close_then_eof_is_still_clean() {
    let mut input = cframe(true, OpCode::Text, b"unread");
    input.extend(cframe(true, OpCode::Close, &1000u16.to_be_bytes()));
    let mut conn = open(Role::Server, quiet());
    feed(&mut conn, T0, &input, &Chunking::Whole);
    conn.handle_eof(T0);
    let closed = terminal(&drain_events(&mut conn));
    assert!(closed.clean);
    assert_eq!(conn.poll_transport(), None, "the echo is written first");
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(out[0].1, OpCode::Close);
    assert_eq!(conn.poll_transport(), Some(TransportAction::Close));
    assert_eq!(messages_of(&drain_data(&mut conn)).len(), 1);
}

/// After a Close the core answers, the application's `close` completes the handshake at once.
#[test]
fn close_answers_a_deferred_close() {
    let mut input = cframe(true, OpCode::Text, b"unread");
    input.extend(cframe(true, OpCode::Close, &1000u16.to_be_bytes()));
    let mut conn = open(Role::Server, quiet());
    feed(&mut conn, T0, &input, &Chunking::Whole);
    conn.close(T0, CloseCode::NORMAL, "bye").unwrap();
    let closed = terminal(&drain_events(&mut conn));
    assert!(closed.clean);
    let out = parse_frames(&drain_output(&mut conn));
    assert_eq!(out.len(), 1, "one Close: ours answers theirs");
}

/// Server role: a large text payload is queued as-is too, like a binary one.
#[test]
fn server_sends_large_text_without_copy() {
    let mut conn = open(Role::Server, quiet());
    let text = tether::Utf8Bytes::from("é".repeat(32 << 10));
    conn.send(Message::Text(text.clone())).unwrap();
    let transmit = conn.poll_transmit().unwrap();
    let slices: Vec<&[u8]> = transmit.iter().collect();
    assert_eq!(slices.len(), 2);
    assert_eq!(slices[1].as_ptr(), text.as_bytes().as_ptr());
}

/// After a half-close the transport waits only briefly (2 s) for the peer's end of stream; the
/// Close itself gets the whole close timeout to be written.
#[test]
fn half_closed_transport_lingers_two_seconds() {
    let mut conn = open(Role::Server, quiet());
    feed(&mut conn, T0, &[0x85, 0x80, 1, 2, 3, 4], &Chunking::Whole);
    assert_eq!(
        conn.poll_timeout(),
        Some(T0 + Config::default().close_timeout)
    );
    let later = T0 + std::time::Duration::from_secs(3);
    conn.handle_timeout(later); // time passes while the Close waits to be written
    let close = unwritten(&conn);
    conn.advance(close);
    assert_eq!(conn.poll_transport(), Some(TransportAction::Shutdown));
    // The half-close went out at the latest input's time (3 s): 2 s from there.
    assert_eq!(
        conn.poll_timeout(),
        Some(later + std::time::Duration::from_secs(2))
    );
    conn.handle_timeout(later + std::time::Duration::from_secs(2));
    assert_eq!(conn.poll_transport(), Some(TransportAction::Close));
}

/// The read token pairs the read with its commit: a commit larger than the buffer counts only
/// the buffer, and a dropped token counts nothing (no stale spare bytes are taken as input).
#[test]
fn the_read_token_counts_only_what_it_handed_out() {
    let mut conn = open(Role::Server, quiet());
    let frame = cframe(true, OpCode::Text, b"hi");
    {
        let mut buf = conn.recv_buf();
        buf[..frame.len()].copy_from_slice(&frame);
        // Dropped without a commit: nothing was read.
    }
    assert!(conn.read().is_none());
    let mut buf = conn.recv_buf();
    let len = buf.len();
    buf.fill(0);
    buf[..frame.len()].copy_from_slice(&frame);
    buf.commit(T0, frame.len());
    assert_eq!(
        messages_of(&drain_data(&mut conn)),
        vec![Message::text("hi")]
    );
    // Over-committing is clamped to the slice: its zeros are read as an unmasked frame from a
    // client, so the connection fails; nothing past what it handed out is ever counted. (The
    // slice is reused memory: what a previous read left there is only overwritten by a read.)
    let mut buf = conn.recv_buf();
    buf.fill(0);
    let offered = buf.len();
    assert!(offered >= 1 && len >= frame.len());
    buf.commit(T0, usize::MAX);
    let closed = terminal(&drain_events(&mut conn));
    assert_eq!(
        closed.cause,
        CloseCause::Protocol(ProtocolError::UnmaskedFrame)
    );
}
