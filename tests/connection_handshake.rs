//! The opening handshake driven through `Connection`: both roles, policies, rejections,
//! pipelined bytes and the handshake timeout, on a virtual clock.

mod common;

use std::time::Duration;

use common::*;
use tether::handshake::{Accept, AcceptError, ClientRequest, HandshakeError, Reject, ServerPolicy};
use tether::{
    CloseCause, Config, Connection, Event, Initiator, Instant, Message, Role, State,
    TransportAction,
};

const T0: Instant = Instant::ZERO;

fn client(request: ClientRequest) -> Connection {
    Connection::client(request, quiet(), rng(11), T0)
}

fn server(policy: ServerPolicy) -> Connection {
    Connection::server(quiet(), policy, rng(12), T0)
}

fn request() -> ClientRequest {
    ClientRequest::new("ws://127.0.0.1:9001/chat?room=1")
        .unwrap()
        .subprotocol("chat.v2")
        .unwrap()
        .subprotocol("chat.v1")
        .unwrap()
}

/// Drives the pair, accepting the first Request with the policy's choice.
fn drive_accepting(pair: &mut Pair) {
    pair.drive();
    if let Some(Event::Request(req)) = pair
        .server
        .events
        .iter()
        .find(|e| matches!(e, Event::Request(_)))
    {
        assert_eq!(req.path(), "/chat");
        assert_eq!(req.query(), Some("room=1"));
        let chosen = req
            .choose_subprotocol(&["chat.v1", "chat.v2"])
            .map(String::from);
        if pair.server.conn.state() == State::Connecting {
            let mut accept = Accept::new();
            if let Some(p) = chosen {
                accept = accept.subprotocol(p);
            }
            pair.server.conn.accept(pair.now, accept).unwrap();
        }
    }
    pair.drive();
}

/// RFC 6455 §4: a full handshake, then messages both ways, however the bytes are cut.
#[test]
fn handshake_then_messages_under_any_chunking() {
    for chunking in [
        Chunking::Whole,
        Chunking::Bytewise,
        Chunking::Sizes(vec![5, 17, 1]),
    ] {
        let mut pair = Pair::new(client(request()), server(ServerPolicy::new()), chunking);
        drive_accepting(&mut pair);
        assert!(matches!(
            &pair.client.events[0],
            Event::Connected { subprotocol: Some(p) } if p == "chat.v1"
        ));
        assert!(matches!(&pair.server.events[1], Event::Connected { .. }));
        assert_eq!(pair.client.conn.subprotocol(), Some("chat.v1"));
        assert_eq!(pair.server.conn.subprotocol(), Some("chat.v1"));
        assert_eq!(pair.client.conn.response().unwrap().status(), 101);
        pair.client.conn.send_text("hello").unwrap();
        pair.server.conn.send_text("welcome").unwrap();
        pair.drive();
        assert_eq!(Pair::messages(&pair.server), vec![Message::text("hello")]);
        assert_eq!(Pair::messages(&pair.client), vec![Message::text("welcome")]);
    }
}

/// Frames the server writes right after its 101 arrive in the same read as the head and are
/// not lost.
#[test]
fn frames_right_after_the_response_head_are_kept() {
    let mut c = client(request());
    let mut s = server(ServerPolicy::new());
    feed(&mut s, T0, &drain_output(&mut c), &Chunking::Whole);
    assert!(matches!(s.poll_event(), Some(Event::Request(_))));
    s.accept(T0, Accept::new()).unwrap();
    s.send_text("first").unwrap();
    s.send_binary(vec![1, 2, 3]).unwrap();
    feed(&mut c, T0, &drain_output(&mut s), &Chunking::Whole);
    let (messages, events) = read_all(&mut c);
    assert!(matches!(
        &events[..],
        [Event::Connected { subprotocol: None }]
    ));
    assert_eq!(
        messages,
        vec![Message::text("first"), Message::binary(vec![1, 2, 3])]
    );
}

/// Bytes a client pipelines after its request head wait for `accept` and are then processed.
#[test]
fn frames_pipelined_after_the_request_are_processed_after_accept() {
    let mut c = client(request());
    let mut head = drain_output(&mut c);
    head.extend(cframe(true, tether::frame::OpCode::Text, b"early"));
    let mut s = server(ServerPolicy::new());
    feed(&mut s, T0, &head, &Chunking::Whole);
    assert!(matches!(s.poll_event(), Some(Event::Request(_))));
    assert!(s.poll_event().is_none(), "nothing before accept");
    assert!(
        !s.wants_read(),
        "no reading while the request awaits an answer"
    );
    s.accept(T0, Accept::new()).unwrap();
    let (messages, events) = read_all(&mut s);
    assert!(matches!(&events[..], [Event::Connected { .. }]));
    assert_eq!(messages, vec![Message::text("early")]);
}

/// The Origin policy refuses with 403 before the application sees the request; the client
/// reports the status as a typed handshake error.
#[test]
fn origin_policy_rejects_with_403() {
    let policy = ServerPolicy::new()
        .allow_origin("https://good.example")
        .unwrap();
    let req = request().header("Origin", "https://evil.example").unwrap();
    let mut pair = Pair::new(client(req), server(policy), Chunking::Whole);
    pair.drive();
    let s = terminal(&pair.server.events);
    assert_eq!(s.cause, CloseCause::HandshakeRejected { status: 403 });
    assert!(
        !pair
            .server
            .events
            .iter()
            .any(|e| matches!(e, Event::Request(_)))
    );
    assert!(pair.server.transport_closed);
    let c = terminal(&pair.client.events);
    match c.cause {
        CloseCause::HandshakeFailed(HandshakeError::Rejected { status, .. }) => {
            assert_eq!(status, 403)
        }
        other => panic!("{other:?}"),
    }
    assert!(c.reason.contains("403"), "{}", c.reason);
}

/// The authentication hook runs before accepting (401).
#[test]
fn auth_hook_rejects_with_401() {
    let policy = ServerPolicy::new().authenticate(|req| match req.header("Authorization") {
        Some("Bearer good") => Ok(()),
        _ => Err(Reject::new(401).header("WWW-Authenticate", "Bearer")),
    });
    let mut pair = Pair::new(client(request()), server(policy.clone()), Chunking::Whole);
    pair.drive();
    let c = terminal(&pair.client.events);
    assert!(matches!(
        c.cause,
        CloseCause::HandshakeFailed(HandshakeError::Rejected { status: 401, .. })
    ));
    let good = request().header("Authorization", "Bearer good").unwrap();
    let mut pair = Pair::new(client(good), server(policy), Chunking::Whole);
    drive_accepting(&mut pair);
    assert_eq!(pair.client.conn.state(), State::Open);
}

/// The application may refuse a request itself with any status, headers and body.
#[test]
fn application_reject() {
    let mut pair = Pair::new(
        client(request()),
        server(ServerPolicy::new()),
        Chunking::Whole,
    );
    pair.drive();
    pair.server
        .conn
        .reject(Reject::new(404).body("no such room"))
        .unwrap();
    pair.drive();
    match terminal(&pair.client.events).cause {
        CloseCause::HandshakeFailed(HandshakeError::Rejected { status, body, .. }) => {
            assert_eq!(status, 404);
            assert_eq!(&body[..], b"no such room");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        pair.server.conn.accept(pair.now, Accept::new()),
        Err(AcceptError::NotAwaiting)
    );
}

/// Accepting with a subprotocol the client did not offer is a typed error that changes nothing.
#[test]
fn accept_with_unoffered_subprotocol_is_refused() {
    let mut pair = Pair::new(
        client(request()),
        server(ServerPolicy::new()),
        Chunking::Whole,
    );
    pair.drive();
    let err = pair
        .server
        .conn
        .accept(pair.now, Accept::new().subprotocol("mqtt"))
        .unwrap_err();
    assert!(matches!(err, AcceptError::UnofferedSubprotocol(_)));
    assert_eq!(pair.server.conn.state(), State::Connecting);
    assert_eq!(unwritten(&pair.server.conn), 0);
    pair.server.conn.accept(pair.now, Accept::new()).unwrap();
}

/// Client handshake timeout: no answer within `handshake_timeout` ends the connection with a
/// typed cause, not a moment before.
#[test]
fn client_handshake_timeout() {
    let mut c = client(request());
    drain_output(&mut c);
    let deadline = T0 + Config::default().handshake_timeout;
    assert_eq!(c.poll_timeout(), Some(deadline));
    c.handle_timeout(deadline - Duration::from_nanos(1));
    assert!(c.poll_event().is_none());
    c.handle_timeout(deadline);
    let closed = terminal(&drain_events(&mut c));
    assert_eq!(closed.cause, CloseCause::HandshakeTimeout);
    assert_eq!(closed.initiator, Initiator::Local);
    assert_eq!(c.poll_transport(), Some(TransportAction::Close));
}

/// Server handshake timeout: a request that does not complete in time gets a 408 (if it can be
/// written) and the connection is dropped.
#[test]
fn server_handshake_timeout_sends_408() {
    let mut s = server(ServerPolicy::new());
    feed(
        &mut s,
        T0,
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        &Chunking::Whole,
    );
    let deadline = T0 + Config::default().handshake_timeout;
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert!(s.poll_event().is_none());
    s.handle_timeout(deadline);
    let closed = terminal(&drain_events(&mut s));
    assert_eq!(closed.cause, CloseCause::HandshakeTimeout);
    let out = String::from_utf8(drain_output(&mut s)).unwrap();
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    assert_eq!(s.poll_transport(), Some(TransportAction::Shutdown));
    // A client that never closes its end is cut off after a short linger.
    let linger = s.poll_timeout().unwrap();
    assert!(linger <= deadline + Duration::from_secs(1));
    s.handle_timeout(linger);
    assert_eq!(s.poll_transport(), Some(TransportAction::Close));
}

/// A server that waits for the application's answer too long also times out.
#[test]
fn server_awaiting_accept_times_out() {
    let mut c = client(request());
    let mut s = server(ServerPolicy::new());
    feed(&mut s, T0, &drain_output(&mut c), &Chunking::Whole);
    assert!(matches!(s.poll_event(), Some(Event::Request(_))));
    s.handle_timeout(T0 + Config::default().handshake_timeout);
    assert_eq!(
        terminal(&drain_events(&mut s)).cause,
        CloseCause::HandshakeTimeout
    );
}

/// End of stream in the middle of the handshake: a typed failure on the client, 1006 on the
/// server, one terminal event each.
#[test]
fn eof_during_handshake() {
    let mut c = client(request());
    drain_output(&mut c);
    feed(&mut c, T0, b"HTTP/1.1 101 Switching", &Chunking::Whole);
    c.handle_eof(T0);
    let closed = terminal(&drain_events(&mut c));
    assert!(matches!(
        closed.cause,
        CloseCause::HandshakeFailed(HandshakeError::UnexpectedEof)
    ));
    let mut s = server(ServerPolicy::new());
    feed(&mut s, T0, b"GET / HT", &Chunking::Whole);
    s.handle_eof(T0);
    assert_eq!(
        terminal(&drain_events(&mut s)).cause,
        CloseCause::TransportLost
    );
}

/// A non-WebSocket HTTP request is answered by the core with the right status (here 426 with
/// the version header for a missing Upgrade) and never reaches the application.
#[test]
fn plain_http_request_is_refused_by_the_core() {
    let mut s = server(ServerPolicy::new());
    feed(
        &mut s,
        T0,
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
        &Chunking::Whole,
    );
    let closed = terminal(&drain_events(&mut s));
    assert_eq!(closed.cause, CloseCause::HandshakeRejected { status: 426 });
    let out = String::from_utf8(drain_output(&mut s)).unwrap();
    assert!(out.starts_with("HTTP/1.1 426 "), "{out}");
    // Half-close, so the client reads the whole response before the connection goes away.
    assert_eq!(s.poll_transport(), Some(TransportAction::Shutdown));
    assert!(s.wants_read(), "reads on until the client's end of stream");
    feed(&mut s, T0, b"ignored", &Chunking::Whole);
    s.handle_eof(T0);
    assert_eq!(s.poll_transport(), Some(TransportAction::Close));
}

/// A client may send before its handshake completes: the messages are held and written right
/// after it, first and in order. A server may not send before it accepts.
#[test]
fn client_sends_before_open_are_written_after_the_handshake() {
    let mut pair = Pair::new(
        client(request()),
        server(ServerPolicy::new()),
        Chunking::Whole,
    );
    pair.client.conn.send_text("early one").unwrap();
    pair.client.conn.send_binary(vec![1, 2]).unwrap();
    let head = drain_output(&mut pair.client.conn);
    assert!(
        head.ends_with(b"\r\n\r\n"),
        "only the request head goes out before the 101"
    );
    feed(&mut pair.server.conn, T0, &head, &Chunking::Whole);
    let err = pair.server.conn.send_text("too early").unwrap_err();
    assert_eq!(err.kind, tether::SendErrorKind::NotOpen);
    drive_accepting(&mut pair);
    assert_eq!(
        Pair::messages(&pair.server),
        vec![Message::text("early one"), Message::binary(vec![1, 2])]
    );
}

/// Messages held before the handshake are handed back by `take_unsent` when the handshake
/// fails (with `retain_unsent`), and so are messages whose frames were not entirely written.
#[test]
fn unsent_messages_come_back() {
    let mut config = Config::default();
    config.retain_unsent = true;
    let mut c = Connection::client(request(), config.clone(), rng(9), T0);
    c.send_text("held").unwrap();
    drain_output(&mut c);
    c.handle_eof(T0);
    assert_eq!(c.take_unsent(), vec![Message::text("held")]);

    // Open: the first message is written whole, the second in part, the third not at all.
    let mut c = Connection::open(Role::Client, config, rng(9), T0);
    c.send_text("written").unwrap();
    let first = unwritten(&c);
    c.send_text("partly").unwrap();
    c.send_binary(vec![7u8; 3]).unwrap();
    c.advance(first + 2);
    assert_eq!(c.bytes_written(), (first + 2) as u64);
    c.handle_eof(T0);
    assert_eq!(
        c.take_unsent(),
        vec![Message::text("partly"), Message::binary(vec![7u8; 3])]
    );
    assert!(c.take_unsent().is_empty());
}

/// `close` before the connection is open is refused with a typed error and changes nothing;
/// `abort` gives up.
#[test]
fn close_before_open_is_refused() {
    let mut c = client(request());
    let before = unwritten(&c);
    assert_eq!(
        c.close(T0, tether::CloseCode::NORMAL, ""),
        Err(tether::CloseError::NotOpen)
    );
    assert_eq!(c.state(), State::Connecting);
    assert_eq!(unwritten(&c), before);
    c.abort();
    assert_eq!(terminal(&drain_events(&mut c)).cause, CloseCause::Aborted);
    assert_eq!(c.poll_transport(), Some(TransportAction::Close));
}

/// A connection created open (after an upgrade elsewhere) reports `Connected` like the others,
/// and knows when it opened.
#[test]
fn open_emits_connected() {
    let mut conn = Connection::open(Role::Server, Config::default(), rng(3), T0);
    assert!(matches!(
        drain_events(&mut conn)[..],
        [Event::Connected { subprotocol: None }]
    ));
    assert_eq!(conn.opened_at(), Some(T0));
    assert!(conn.closed().is_none());
}

/// An opening at the very end of the clock's range is still an opening (`Instant::MAX` means
/// "not yet" inside the connection, so it is recorded a nanosecond before).
#[test]
fn opened_at_the_end_of_time_is_still_open() {
    let conn = Connection::open(Role::Server, Config::default(), rng(3), Instant::MAX);
    assert_eq!(
        conn.opened_at(),
        Some(Instant::MAX - Duration::from_nanos(1))
    );
}

/// Every connection carries a `Connection`: 720 bytes, with the heartbeat's state in
/// sentinels rather than `Option`s and the receiver's limits read from the shared
/// configuration (776 before).
#[test]
fn a_connection_stays_small() {
    let size = std::mem::size_of::<Connection>();
    assert!(size <= 720, "{size} bytes");
}

/// The close handshake after an opening handshake: clean on both sides.
#[test]
fn full_life_cycle() {
    let mut pair = Pair::new(
        client(request()),
        server(ServerPolicy::new()),
        Chunking::Bytewise,
    );
    drive_accepting(&mut pair);
    pair.server
        .conn
        .close(pair.now, tether::CloseCode::GOING_AWAY, "restart")
        .unwrap();
    pair.drive();
    let c = terminal(&pair.client.events);
    let s = terminal(&pair.server.events);
    assert!(c.clean && s.clean);
    assert_eq!(c.code, tether::CloseCode::GOING_AWAY);
    assert_eq!(c.reason, "restart");
    assert_eq!(
        (c.initiator, s.initiator),
        (Initiator::Remote, Initiator::Local)
    );
    assert!(pair.server.transport_closed && pair.client.transport_closed);
}

/// A connection that opens, then receives one large message and then nothing (the common case
/// for a mostly idle connection), keeps no buffer behind, at once: not the handshake's, and
/// not the message's (opening the connection is not input, and only input that keeps coming
/// makes a connection busy enough to keep its buffers for reuse).
#[test]
fn opening_and_one_large_message_leave_no_buffer_behind() {
    for chunking in [Chunking::Whole, Chunking::Sizes(vec![1000, 7000, 30000])] {
        let mut pair = Pair::new(client(request()), server(ServerPolicy::new()), chunking);
        drive_accepting(&mut pair);
        assert_eq!(pair.server.conn.state(), State::Open);
        // Nothing is held once the handshake is over (its input and output buffers).
        assert_eq!(pair.server.conn.buffer_memory(), 0);
        assert_eq!(pair.client.conn.buffer_memory(), 0);
        pair.client.conn.send_binary(vec![1u8; 64 << 10]).unwrap();
        pair.drive();
        assert_eq!(Pair::messages(&pair.server).len(), 1);
        let held = pair.server.conn.buffer_memory();
        assert!(held <= 1024, "{held} bytes held after one message");
    }
}

/// With `pass_http_requests`, a plain HTTP request (a health check) reaches the application,
/// skips the WebSocket checks, cannot be accepted and is answered with whatever it chooses.
#[test]
fn plain_http_requests_are_passed_on_and_answered_with_any_status() {
    let health = b"GET /health?deep=1 HTTP/1.1\r\nHost: example.com\r\nX-Probe: lb\r\n\r\n";
    // Without the setting, the core refuses it itself: 426, no event.
    let mut conn = server(
        ServerPolicy::new()
            .allow_origin("https://app.example")
            .unwrap(),
    );
    feed(&mut conn, T0, health, &Chunking::Whole);
    let written = String::from_utf8(drain_output(&mut conn)).unwrap();
    assert!(written.starts_with("HTTP/1.1 426 "), "{written}");
    assert!(
        !drain_events(&mut conn)
            .iter()
            .any(|e| matches!(e, Event::Request(_)))
    );

    // With it, the request is the application's, even under an origin allowlist it fails.
    let policy = ServerPolicy::new()
        .allow_origin("https://app.example")
        .unwrap()
        .pass_http_requests(true);
    for chunking in [Chunking::Whole, Chunking::Bytewise] {
        let mut conn = server(policy.clone());
        feed(&mut conn, T0, health, &chunking);
        let events = drain_events(&mut conn);
        let Some(Event::Request(req)) = events.iter().find(|e| matches!(e, Event::Request(_)))
        else {
            panic!("no request event: {events:?}");
        };
        assert!(!req.is_websocket());
        assert_eq!(req.refusal().map(|r| r.status), Some(426));
        assert_eq!(req.path(), "/health");
        assert_eq!(req.query(), Some("deep=1"));
        assert_eq!(req.header("x-probe"), Some("lb"));
        assert_eq!(req.head(), &health[..]);
        assert_eq!(
            tether::handshake::Request::parse(req.head()).as_ref(),
            Ok(req)
        );
        assert_eq!(
            conn.accept(T0, Accept::new()),
            Err(AcceptError::NotWebSocket(426))
        );
        conn.reject(Reject::new(200).body("ok\n")).unwrap();
        let written = String::from_utf8(drain_output(&mut conn)).unwrap();
        assert_eq!(
            written,
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
        );
        assert_eq!(conn.state(), State::Closed);
    }

    // A valid opening request still goes through the policy: refused by the allowlist.
    let mut conn = server(policy.clone());
    let upgrade = "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n";
    feed(&mut conn, T0, upgrade.as_bytes(), &Chunking::Whole);
    let written = String::from_utf8(drain_output(&mut conn)).unwrap();
    assert!(written.starts_with("HTTP/1.1 403 "), "{written}");

    // Malformed HTTP is refused by the core whatever the setting.
    let mut conn = server(policy);
    feed(
        &mut conn,
        T0,
        b"\x16\x03\x01 garbage\r\n\r\n",
        &Chunking::Whole,
    );
    let written = String::from_utf8(drain_output(&mut conn)).unwrap();
    assert!(written.starts_with("HTTP/1.1 400 "), "{written}");
    assert!(
        !drain_events(&mut conn)
            .iter()
            .any(|e| matches!(e, Event::Request(_)))
    );
}
