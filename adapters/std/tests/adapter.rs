//! The std adapter over real sockets on 127.0.0.1 (port 0).
#![allow(clippy::result_large_err)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use tether_std::tether::handshake::{Accept, Reject, ServerPolicy};
use tether_std::tether::{CloseCause, CloseCode, DataKind};
use tether_std::{
    ClientConfig, Error, Incoming, Message, ServerConfig, accept, accept_with, connect, connect_on,
    connect_request,
};

#[test]
fn echo_round_trip_text_binary_and_16_mib() {
    let addr = echo_server(ServerConfig::default().config(big_config()));
    bounded(move || {
        let mut ws = client(addr);
        ws.send_text("héllo ✓").unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("héllo ✓"));
        let bytes: Vec<u8> = (0..=255u8).collect();
        ws.send_binary(bytes.clone()).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::binary(bytes));
        let large: Vec<u8> = (0..16usize << 20).map(|i| (i % 253) as u8).collect();
        ws.send_binary(large.clone()).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::binary(large));
        let closed = ws.close(CloseCode(1000), "done").unwrap();
        assert!(closed.clean);
        assert_eq!(closed.code.0, 1000);
    });
}

#[test]
fn fragmented_message_is_received_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = accept(tcp, ServerConfig::default()).unwrap();
        ws.send_fragment(DataKind::Text, "one ", false).unwrap();
        ws.ping("between").unwrap();
        ws.send_fragment(DataKind::Text, "two ", false).unwrap();
        ws.send_fragment(DataKind::Text, "thrée", true).unwrap();
        ws.send_fragment(DataKind::Binary, vec![1u8, 2], false)
            .unwrap();
        ws.send_fragment(DataKind::Binary, vec![3u8], true).unwrap();
        ws.recv()
    });
    bounded(move || {
        let mut ws = client(addr);
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("one two thrée"));
        assert_eq!(
            ws.recv().unwrap().unwrap(),
            Message::binary(vec![1u8, 2, 3])
        );
        ws.close(CloseCode(1000), "").unwrap();
    });
    assert!(
        server.join().unwrap().is_none(),
        "the server saw a clean close"
    );
}

#[test]
fn ping_and_pong_are_observed_with_next_event() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = accept(tcp, ServerConfig::default()).unwrap();
        let first = ws.next_event_timeout(LIMIT);
        let rest = ws.recv_timeout(LIMIT);
        (first, rest)
    });
    bounded(move || {
        let mut ws = client(addr);
        ws.ping("are you there").unwrap();
        match ws.next_event_timeout(LIMIT) {
            Some(Ok(Incoming::Pong(p))) => assert_eq!(&p[..], b"are you there"),
            other => panic!("expected the pong, got {other:?}"),
        }
        ws.close(CloseCode(1000), "").unwrap();
    });
    let (first, rest) = server.join().unwrap();
    match first {
        Some(Ok(Incoming::Ping(p))) => assert_eq!(&p[..], b"are you there"),
        other => panic!("the server expected the ping, got {other:?}"),
    }
    assert!(rest.is_none());
}

#[test]
fn client_initiated_close_carries_the_code_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = accept(tcp, ServerConfig::default()).unwrap();
        let end = ws.recv_timeout(LIMIT);
        (end.is_none(), ws.closed())
    });
    let closed = bounded(move || client(addr).close(CloseCode(4001), "bye").unwrap());
    assert!(closed.clean, "{closed:?}");
    assert_eq!(closed.code.0, 4001, "the peer echoed our code");
    let (clean_end, server_closed) = server.join().unwrap();
    assert!(clean_end);
    let server_closed = server_closed.unwrap();
    assert_eq!(
        (server_closed.code.0, server_closed.reason.as_str()),
        (4001, "bye")
    );
    assert_eq!(server_closed.cause, CloseCause::Normal);
}

#[test]
fn server_initiated_close_carries_the_code_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = accept(tcp, ServerConfig::default()).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("close-me"));
        ws.close(CloseCode(4002), "asked").unwrap()
    });
    let client_closed = bounded(move || {
        let mut ws = client(addr);
        ws.send_text("close-me").unwrap();
        assert!(
            ws.recv_timeout(LIMIT).is_none(),
            "a clean close ends recv with None"
        );
        ws.closed().unwrap()
    });
    assert!(client_closed.clean);
    assert_eq!(
        (client_closed.code.0, client_closed.reason.as_str()),
        (4002, "asked")
    );
    let server_closed = server.join().unwrap();
    assert!(server_closed.clean);
    assert_eq!(server_closed.code.0, 4002);
}

#[test]
fn subprotocol_is_negotiated_in_server_preference_order() {
    let policy = ServerPolicy::new()
        .subprotocol("chat.v2")
        .subprotocol("chat.v1");
    let addr = echo_server(ServerConfig::default().policy(policy));
    bounded(move || {
        let ws = client_with(addr, |r| {
            r.subprotocol("chat.v1")
                .unwrap()
                .subprotocol("chat.v2")
                .unwrap()
        });
        assert_eq!(ws.subprotocol(), Some("chat.v2"));
        let none = client(addr);
        assert_eq!(none.subprotocol(), None);
    });
}

#[test]
fn accept_with_decides_and_rejects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut results = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().unwrap();
            let result = accept_with(tcp, ServerConfig::default(), |request| {
                if request.path() == "/yes" {
                    Ok(Accept::new().subprotocol("x"))
                } else {
                    Err(Reject::new(404))
                }
            });
            results.push(result.map(|ws| ws.subprotocol().map(str::to_owned)));
        }
        results
    });
    bounded(move || {
        let request =
            tether_std::tether::handshake::ClientRequest::new(&format!("ws://{addr}/yes"))
                .unwrap()
                .subprotocol("x")
                .unwrap();
        let (ws, response) = connect_request(request, ClientConfig::default()).unwrap();
        assert_eq!(response.status(), 101);
        assert_eq!(ws.subprotocol(), Some("x"));
        match connect(&format!("ws://{addr}/no"), ClientConfig::default()) {
            Err(Error::Handshake(e)) => assert_eq!(e.http_status(), Some(404)),
            other => panic!("expected a 404, got {other:?}"),
        }
    });
    let results = server.join().unwrap();
    assert_eq!(results[0].as_ref().unwrap().as_deref(), Some("x"));
    assert!(matches!(results[1], Err(Error::Rejected { status: 404 })));
}

#[test]
fn origin_allowlist_rejects_with_403() {
    let policy = ServerPolicy::new()
        .allow_origin("https://good.example")
        .unwrap();
    let addr = echo_server(ServerConfig::default().policy(policy));
    bounded(move || {
        let request = tether_std::tether::handshake::ClientRequest::new(&format!("ws://{addr}/"))
            .unwrap()
            .header("Origin", "https://evil.example")
            .unwrap();
        match connect_request(request, ClientConfig::default()) {
            Err(Error::Handshake(e)) => assert_eq!(e.http_status(), Some(403)),
            other => panic!("expected a 403, got {other:?}"),
        }
        let mut good = client_with(addr, |r| {
            r.header("Origin", "https://good.example").unwrap()
        });
        good.send_text("hi").unwrap();
        assert_eq!(good.recv().unwrap().unwrap(), Message::text("hi"));
    });
}

#[test]
fn auth_hook_rejects_with_401() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let policy =
        ServerPolicy::new().authenticate(|request| match request.header("Authorization") {
            Some("Bearer secret") => Ok(()),
            _ => Err(Reject::new(401).header("WWW-Authenticate", "Bearer")),
        });
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        accept(tcp, ServerConfig::default().policy(policy)).map(|_| ())
    });
    bounded(
        move || match connect(&format!("ws://{addr}/"), ClientConfig::default()) {
            Err(Error::Handshake(e)) => assert_eq!(e.http_status(), Some(401)),
            other => panic!("expected a 401, got {other:?}"),
        },
    );
    assert!(matches!(
        server.join().unwrap(),
        Err(Error::Rejected { status: 401 })
    ));
}

#[test]
fn heartbeat_detects_a_silent_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let sock = raw_upgrade(&listener);
        // Silent: neither reads nor answers until the test is over.
        let (_tx, rx) = mpsc::channel::<()>();
        let _ = rx.recv_timeout(LIMIT);
        drop(sock);
    });
    let end = bounded(move || {
        let (mut ws, _) = connect(
            &format!("ws://{addr}/"),
            ClientConfig::new(heartbeat_config(200, 200)),
        )
        .unwrap();
        ws.recv_timeout(LIMIT)
    });
    match end {
        Some(Err(Error::Closed(closed))) => {
            assert_eq!(closed.cause, CloseCause::HeartbeatTimeout, "{closed:?}");
            assert!(!closed.clean);
        }
        other => panic!("expected a heartbeat timeout, got {other:?}"),
    }
    drop(peer);
}

#[test]
fn a_dropped_socket_yields_1006() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || drop(raw_upgrade(&listener)));
    let end = bounded(move || client(addr).recv_timeout(LIMIT));
    match end {
        Some(Err(Error::Closed(closed))) => {
            assert_eq!(closed.code.0, 1006);
            assert_eq!(closed.cause, CloseCause::TransportLost);
        }
        other => panic!("expected 1006, got {other:?}"),
    }
    peer.join().unwrap();
}

#[test]
fn max_connections_holds_at_twice_the_limit_and_slots_come_back() {
    const N: usize = 3;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_tx = std::sync::Mutex::new(done_tx);
    let (server, addr) = shared_server(
        ServerConfig::default()
            .max_connections(N)
            .retry_after(Duration::from_secs(2)),
        move |mut ws| {
            let done = done_tx.lock().unwrap().clone();
            while let Some(Ok(message)) = ws.recv() {
                match message.as_bytes() {
                    b"panic" => panic!("a handler panics (expected by the test)"),
                    b"drop" => break,
                    _ => ws.send(message).unwrap(),
                }
            }
            drop(ws);
            let _ = done.send(());
        },
    );
    bounded(move || {
        let mut open = Vec::new();
        let mut refused = 0;
        for _ in 0..2 * N {
            match connect(&format!("ws://{addr}/"), ClientConfig::default()) {
                Ok((ws, _)) => open.push(ws),
                Err(Error::Handshake(e))
                    if matches!(
                        *e,
                        tether_std::tether::handshake::HandshakeError::Rejected { .. }
                    ) =>
                {
                    assert_eq!(e.http_status(), Some(503));
                    let tether_std::tether::handshake::HandshakeError::Rejected { headers, .. } =
                        *e
                    else {
                        unreachable!()
                    };
                    assert_eq!(headers.get("Retry-After"), Some("2"));
                    refused += 1;
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!((open.len(), refused), (N, N));
        assert_eq!(server.active_connections(), N);
        // Close the N by three paths. 1: a normal close from the client.
        let mut open = open.into_iter();
        let mut first = open.next().unwrap();
        assert!(first.close(CloseCode(1000), "").unwrap().clean);
        // 2: the server's handler panics; its handle is dropped during the unwind (1001).
        let mut second = open.next().unwrap();
        second.send_text("panic").unwrap();
        assert!(second.recv_timeout(LIMIT).is_none());
        assert_eq!(second.closed().unwrap().code.0, 1001);
        // 3: the server's handler returns and drops its handle.
        let mut third = open.next().unwrap();
        third.send_text("drop").unwrap();
        assert!(third.recv_timeout(LIMIT).is_none());
        // The first and third handlers report that their connection ended.
        for _ in 0..2 {
            done_rx.recv_timeout(LIMIT).expect("a handler finished");
        }
        // Every slot comes back once the drivers have let go of their transports.
        settle(&server, 0);
        let mut again: Vec<_> = (0..N).map(|_| client(addr)).collect();
        for ws in &mut again {
            ws.send_text("still here").unwrap();
            assert_eq!(ws.recv().unwrap().unwrap(), Message::text("still here"));
        }
    });
}

#[test]
fn slot_is_released_when_the_client_vanishes() {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_tx = std::sync::Mutex::new(done_tx);
    let (server, addr) =
        shared_server(ServerConfig::default().max_connections(1), move |mut ws| {
            let done = done_tx.lock().unwrap().clone();
            while let Some(Ok(_)) = ws.recv() {}
            let _ = done.send(());
        });
    bounded(move || {
        // Drop the client's handle: it closes with 1001 in the background.
        drop(client(addr));
        done_rx
            .recv_timeout(LIMIT)
            .expect("the handler saw the end");
        settle(&server, 0);
        // The transport vanishes under the client without a close: the server sees 1006.
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        let cut = tcp.try_clone().unwrap();
        let request =
            tether_std::tether::handshake::ClientRequest::new(&format!("ws://{addr}/")).unwrap();
        let (mut ws, _) = connect_on(tcp, request, big_config()).unwrap();
        cut.shutdown(std::net::Shutdown::Both).unwrap();
        done_rx
            .recv_timeout(LIMIT)
            .expect("the handler saw the end");
        assert!(matches!(
            ws.recv_timeout(LIMIT),
            Some(Err(Error::Closed(_)))
        ));
        // The slot is free again (over the limit this would be a 503).
        settle(&server, 0);
        let mut last = client(addr);
        assert!(last.close(CloseCode(1000), "").unwrap().clean);
    });
}

#[test]
fn replies_and_heartbeats_flow_while_the_user_is_idle() {
    // The server pings every 100 ms; the client's user never touches its handle, yet its
    // driver answers, so the server measures a round-trip time and the connection survives.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (rtt_tx, rtt_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = accept(
            tcp,
            ServerConfig::default().config(heartbeat_config(100, 1000)),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + LIMIT;
        while ws.rtt().is_none() && std::time::Instant::now() < deadline {
            let _ = ws.next_event_timeout(Duration::from_millis(50));
        }
        let _ = rtt_tx.send(ws.rtt());
        // The client's user is idle too: our ping gets its pong from the client's driver.
        ws.ping("idle?").unwrap();
        let pong = ws.next_event_timeout(LIMIT);
        (ws.close(CloseCode(1000), "").map(|c| c.clean), pong)
    });
    let idle_client = client(addr);
    let rtt = rtt_rx.recv_timeout(LIMIT * 2).expect("the server reports");
    assert!(
        rtt.is_some(),
        "the idle client's driver answered the heartbeat"
    );
    let (closed, pong) = server.join().unwrap();
    assert!(matches!(pong, Some(Ok(Incoming::Pong(p))) if &p[..] == b"idle?"));
    assert!(
        closed.unwrap(),
        "the close handshake completed while the client user was idle"
    );
    drop(idle_client);
}

#[test]
fn split_halves_work_from_two_threads() {
    const COUNT: usize = 2000;
    let addr = echo_server(ServerConfig::default());
    bounded(move || {
        let (mut writer, reader) = client(addr).split();
        let sender = thread::spawn(move || {
            for i in 0..COUNT {
                writer.send_text(&i.to_string()).unwrap();
            }
            writer
        });
        for (i, message) in reader.take(COUNT).enumerate() {
            assert_eq!(message.unwrap(), Message::text(i.to_string()));
        }
        let mut writer = sender.join().unwrap();
        assert!(writer.close(CloseCode(1000), "").unwrap().clean);
    });
}

#[test]
fn recv_timeout_gives_up_without_harm() {
    let addr = echo_server(ServerConfig::default());
    bounded(move || {
        let mut ws = client(addr);
        assert!(matches!(
            ws.recv_timeout(Duration::from_millis(20)),
            Some(Err(Error::Timeout))
        ));
        ws.send_text("after").unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("after"));
    });
}

#[test]
fn send_after_close_is_local_misuse() {
    let addr = echo_server(ServerConfig::default());
    bounded(move || {
        let mut ws = client(addr);
        ws.close(CloseCode(1000), "").unwrap();
        assert!(matches!(ws.send_text("late"), Err(Error::Send(_))));
        assert!(matches!(ws.close(CloseCode(999), ""), Err(Error::Close(_))));
    });
}

#[test]
fn handshake_timeout_bounds_a_silent_client() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = std::net::TcpStream::connect(addr).unwrap();
    let (tcp, _) = listener.accept().unwrap();
    let mut config = big_config();
    config.handshake_timeout = Duration::from_millis(200);
    let result = bounded(move || accept(tcp, ServerConfig::default().config(config)).map(|_| ()));
    assert!(
        matches!(result, Err(Error::HandshakeTimeout { waited }) if waited == Duration::from_millis(200)),
        "{result:?}"
    );
    drop(silent);
}

#[test]
fn pipelined_large_messages_do_not_deadlock() {
    // Both ends write big messages (larger than the default high watermark) while the other
    // is also writing: the drivers keep reading while the users' threads write, because the
    // application's own output never stops reading (only the peer's Pongs do).
    const COUNT: usize = 6;
    let config = big_config();
    let addr = echo_server(ServerConfig::default().config(config.clone()));
    bounded(move || {
        let (ws, _) = connect(&format!("ws://{addr}/"), ClientConfig::new(config)).unwrap();
        let (mut writer, mut reader) = ws.split();
        let sender = thread::spawn(move || {
            for i in 0..COUNT {
                writer.send_binary(vec![i as u8; 8 << 20]).unwrap();
            }
            writer
        });
        for i in 0..COUNT {
            let message = reader.recv().unwrap().unwrap();
            assert_eq!(message.len(), 8 << 20);
            assert!(message.as_bytes().iter().all(|&b| b == i as u8));
        }
        drop(sender.join().unwrap());
    });
}

#[test]
fn a_send_blocked_on_a_peer_that_does_not_read_ends_with_the_heartbeat() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let sock = raw_upgrade(&listener);
        // Never reads again: the client's writes fill the socket buffers and block.
        let (_tx, rx) = mpsc::channel::<()>();
        let _ = rx.recv_timeout(LIMIT);
        drop(sock);
    });
    let result = bounded(move || {
        let mut config = heartbeat_config(200, 200);
        config.close_timeout = Duration::from_millis(200);
        let (mut ws, _) = connect(&format!("ws://{addr}/"), ClientConfig::new(config)).unwrap();
        let started = std::time::Instant::now();
        // A send returns once its message is queued: the first goes into the empty output at
        // once, the next waits for room that the peer never makes.
        let result = ws
            .send_binary(vec![0u8; 48 << 20])
            .and_then(|()| ws.send_binary(vec![1u8; 1 << 20]));
        (result, started.elapsed())
    });
    match result {
        (Err(Error::Closed(closed)), took) => {
            assert_eq!(closed.cause, CloseCause::HeartbeatTimeout, "{closed:?}");
            assert!(took < LIMIT, "took {took:?}");
        }
        other => panic!("expected the heartbeat to end the blocked send, got {other:?}"),
    }
    drop(peer);
}

/// Two text frames from a server ("a", "b") and then a frame with RSV2 set, a protocol
/// violation (RFC 6455 §5.2), in one write.
const TWO_MESSAGES_THEN_A_VIOLATION: &[u8] = &[0x81, 1, b'a', 0x81, 1, b'b', 0xa1, 1, b'x'];

#[test]
fn replies_to_messages_before_a_violation_go_out_before_our_close() {
    // Like a peer that reads frame by frame: the failure (Close 1002) waits until the user
    // received the messages in front of it and answered them.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let mut sock = raw_upgrade(&listener);
        sock.write_all(TWO_MESSAGES_THEN_A_VIOLATION).unwrap();
        let frames: Vec<_> = (0..3).map(|_| read_client_frame(&mut sock)).collect();
        frames
    });
    let (received, end) = bounded(move || {
        let mut ws = client(addr);
        let mut received = Vec::new();
        loop {
            match ws.recv() {
                Some(Ok(message)) => {
                    ws.send(message.clone()).unwrap();
                    received.push(message);
                }
                end => break (received, end),
            }
        }
    });
    assert_eq!(received, [Message::text("a"), Message::text("b")]);
    match end {
        Some(Err(Error::Closed(closed))) => {
            assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR, "{closed:?}");
            assert!(!closed.clean);
        }
        other => panic!("expected the protocol error, got {other:?}"),
    }
    let frames = peer.join().unwrap();
    assert_eq!(frames[0], (0x81, b"a".to_vec()));
    assert_eq!(frames[1], (0x81, b"b".to_vec()));
    assert_eq!(frames[2].0, 0x88, "then our Close: {frames:?}");
    assert_eq!(frames[2].1[..2], 1002u16.to_be_bytes());
}

#[test]
fn a_deferred_failure_happens_after_the_close_timeout_while_the_user_is_idle() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let mut sock = raw_upgrade(&listener);
        sock.write_all(TWO_MESSAGES_THEN_A_VIOLATION).unwrap();
        let started = std::time::Instant::now();
        let close = read_client_frame(&mut sock);
        (close, started.elapsed())
    });
    let mut config = big_config();
    config.close_timeout = Duration::from_millis(300);
    let (mut ws, _) = connect(&format!("ws://{addr}/"), ClientConfig::new(config)).unwrap();
    // The user does nothing until the peer has our Close.
    let ((opcode, payload), took) = peer.join().unwrap();
    assert_eq!(opcode, 0x88);
    assert_eq!(payload[..2], 1002u16.to_be_bytes());
    assert!(
        took >= Duration::from_millis(200),
        "the Close waited for the user: {took:?}"
    );
    // The messages in front of the violation are still there, then the error.
    let mut ws = bounded(move || {
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("a"));
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("b"));
        ws
    });
    assert!(matches!(
        bounded(move || ws.recv()),
        Some(Err(Error::Closed(closed))) if closed.code == CloseCode::PROTOCOL_ERROR
    ));
}

#[test]
fn a_reply_goes_out_before_the_close_for_a_violation_that_comes_later() {
    // The user has received a message and is about to answer it when, 100 ms later, the peer
    // breaks the protocol: the answer still reaches the peer before our Close 1002.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (received_tx, received_rx) = mpsc::channel::<()>();
    let (violated_tx, violated_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut sock = raw_upgrade(&listener);
        sock.write_all(&[0x81, 1, b'a']).unwrap();
        received_rx.recv_timeout(LIMIT).unwrap();
        thread::sleep(Duration::from_millis(100));
        // A Ping, then a frame with RSV2 set, in one write: the Pong shows that the client's
        // driver has read the violation as well.
        sock.write_all(&[0x89, 1, b'p', 0xa1, 1, b'x']).unwrap();
        assert_eq!(read_client_frame(&mut sock), (0x8a, b"p".to_vec()));
        violated_tx.send(()).unwrap();
        (read_client_frame(&mut sock), read_client_frame(&mut sock))
    });
    let end = bounded(move || {
        let mut ws = client(addr);
        let message = ws.recv().unwrap().unwrap();
        received_tx.send(()).unwrap();
        violated_rx.recv_timeout(LIMIT).unwrap();
        ws.send(message).unwrap();
        ws.recv()
    });
    match end {
        Some(Err(Error::Closed(closed))) => {
            assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR, "{closed:?}");
        }
        other => panic!("expected the protocol error, got {other:?}"),
    }
    let (reply, close) = peer.join().unwrap();
    assert_eq!(reply, (0x81, b"a".to_vec()), "the reply first");
    assert_eq!(close.0, 0x88, "then our Close");
    assert_eq!(close.1[..2], 1002u16.to_be_bytes());
}

#[test]
fn a_reply_to_a_message_that_came_with_the_close_goes_out_before_the_echo() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let mut sock = raw_upgrade(&listener);
        // A question and the Close (1000) in one write.
        sock.write_all(&[0x81, 1, b'q', 0x88, 2, 0x03, 0xe8])
            .unwrap();
        let frames = (read_client_frame(&mut sock), read_client_frame(&mut sock));
        // The server closes the TCP connection first (RFC 6455 §7.1.1).
        drop(sock);
        frames
    });
    let (end, closed) = bounded(move || {
        let mut ws = client(addr);
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("q"));
        ws.send_text("r").unwrap();
        (ws.recv(), ws.closed())
    });
    assert!(end.is_none(), "a clean end: {end:?}");
    let closed = closed.unwrap();
    assert!(closed.clean, "{closed:?}");
    assert_eq!(closed.code, CloseCode::NORMAL);
    let (reply, echo) = peer.join().unwrap();
    assert_eq!(reply, (0x81, b"r".to_vec()), "the reply first");
    assert_eq!(
        echo,
        (0x88, 1000u16.to_be_bytes().to_vec()),
        "then the echo"
    );
}

#[test]
fn a_server_half_closes_after_the_close_handshake() {
    // RFC 6455 §7.1.1: the server closes the TCP connection first. It shuts down its side and
    // reads on until the client's end of stream.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = accept(tcp, ServerConfig::default()).unwrap();
        (ws.recv_timeout(LIMIT).is_none(), ws.closed())
    });
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        sock,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(std::io::Read::read(&mut sock, &mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    // A masked Close 1000 (key 0, so the payload reads as is).
    sock.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
        .unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut sock, &mut rest).expect("the server's end of stream");
    assert_eq!(rest, [0x88, 2, 0x03, 0xe8], "the echo, then end of stream");
    drop(sock);
    let (clean_end, closed) = bounded(move || server.join().unwrap());
    assert!(clean_end);
    assert!(closed.unwrap().clean);
}

/// The counters read through the blocking handle and both halves are exact for a scripted
/// exchange with an echo server.
#[test]
fn stats_are_readable_from_the_handle_and_both_halves() {
    let addr = echo_server(ServerConfig::default());
    bounded(move || {
        let mut ws = client(addr);
        ws.send_text("hello").unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("hello"));
        ws.send_binary(vec![1u8; 300]).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::binary(vec![1u8; 300]));
        let stats = ws.stats();
        assert_eq!(stats.messages_sent, 2);
        assert_eq!(stats.bytes_sent, 305);
        assert_eq!(stats.messages_received, 2);
        assert_eq!(stats.bytes_received, 305);
        assert_eq!(stats.pongs_received, 0);
        let (writer, reader) = ws.split();
        assert_eq!(writer.stats().bytes_sent, 305);
        assert_eq!(reader.stats().messages_received, 2);
    });
}
