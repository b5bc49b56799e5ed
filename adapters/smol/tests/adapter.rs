//! The smol adapter over real sockets on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{LIMIT, echo_server, raw_client, raw_peer, run, server, within};
use futures_lite::AsyncWriteExt;
use tether::handshake::{ClientRequest, Reject, ServerPolicy};
use tether::{CloseCause, CloseCode, Config, DataKind, Heartbeat, Message};
use tether_smol::{Bytes, ClientConfig, Error, Incoming, ServerConfig, connect, connect_request};

fn big_config() -> Config {
    let mut config = Config::default();
    config.max_frame_payload = 32 << 20;
    config.max_message_size = 32 << 20;
    config
}

fn url(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/")
}

#[test]
fn echo_round_trip_text_binary_and_16_mib() {
    run(async {
        let addr = echo_server(ServerConfig::new(big_config(), ServerPolicy::new())).await;
        let (mut ws, response) = connect(&url(addr), ClientConfig::new(big_config()))
            .await
            .expect("connect");
        assert_eq!(response.status(), 101);
        ws.send_text("héllo ✓").await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("héllo ✓"));
        let binary: Vec<u8> = (0..=255u8).collect();
        ws.send_binary(binary.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::binary(binary));
        let large: Bytes = (0..16usize << 20).map(|i| (i % 251) as u8).collect();
        ws.send_binary(large.clone()).await.unwrap();
        match ws.recv().await.unwrap().unwrap() {
            Message::Binary(b) => assert!(b == large, "16 MiB echo differs"),
            other => panic!("expected binary, got {:?}", other.kind()),
        }
        let closed = ws.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(closed.clean);
    });
}

#[test]
fn fragmented_message_is_received_whole() {
    run(async {
        let (_server, addr, accepted) = server(ServerConfig::default(), usize::MAX).await;
        let (mut client, _) = connect(&url(addr), ClientConfig::default()).await.unwrap();
        let mut server_ws = accepted.recv().await.unwrap();
        let bytes = "frag-men-ted ✓".as_bytes();
        let cut = bytes.len() - 2; // inside the 3-byte "✓"
        client
            .send_fragment(DataKind::Text, bytes[..5].to_vec(), false)
            .await
            .unwrap();
        client
            .send_fragment(DataKind::Text, bytes[5..cut].to_vec(), false)
            .await
            .unwrap();
        client.ping(&b"between"[..]).await.unwrap();
        client
            .send_fragment(DataKind::Text, bytes[cut..].to_vec(), true)
            .await
            .unwrap();
        assert_eq!(
            server_ws.recv().await.unwrap().unwrap(),
            Message::text("frag-men-ted ✓")
        );
        // And the other way.
        server_ws
            .send_fragment(DataKind::Binary, vec![1, 2], false)
            .await
            .unwrap();
        server_ws
            .send_fragment(DataKind::Binary, vec![3], true)
            .await
            .unwrap();
        assert_eq!(
            client.recv().await.unwrap().unwrap(),
            Message::binary(vec![1, 2, 3])
        );
    });
}

#[test]
fn ping_and_pong_are_observed_with_next_event() {
    run(async {
        let (_server, addr, accepted) = server(ServerConfig::default(), usize::MAX).await;
        let (mut client, _) = connect(&url(addr), ClientConfig::default()).await.unwrap();
        let mut server_ws = accepted.recv().await.unwrap();
        client.ping(&b"hello"[..]).await.unwrap();
        assert_eq!(
            server_ws.next_event().await.unwrap().unwrap(),
            Incoming::Ping(Bytes::from_static(b"hello"))
        );
        assert_eq!(
            client.next_event().await.unwrap().unwrap(),
            Incoming::Pong(Bytes::from_static(b"hello"))
        );
        // recv skips control events and returns the next message.
        client.ping(&b"again"[..]).await.unwrap();
        server_ws.send_text("after").await.unwrap();
        assert_eq!(
            client.recv().await.unwrap().unwrap(),
            Message::text("after")
        );
    });
}

#[test]
fn client_initiated_close_with_code() {
    run(async {
        let (_server, addr, accepted) = server(ServerConfig::default(), usize::MAX).await;
        let (mut client, _) = connect(&url(addr), ClientConfig::default()).await.unwrap();
        let mut server_ws = accepted.recv().await.unwrap();
        let closed = client.close(CloseCode(4001), "bye").await.unwrap();
        assert!(closed.clean, "{closed:?}");
        assert_eq!(closed.code, CloseCode(4001));
        assert!(
            server_ws.recv().await.is_none(),
            "a clean close ends recv with None"
        );
        let seen = server_ws.closed().expect("terminal info");
        assert_eq!(
            (seen.code, seen.reason.as_str(), seen.clean),
            (CloseCode(4001), "bye", true)
        );
        assert!(client.recv().await.is_none());
        assert!(matches!(
            client.send_text("late").await,
            Err(Error::Send(_))
        ));
    });
}

#[test]
fn server_initiated_close_with_code() {
    run(async {
        let (_server, addr, accepted) = server(ServerConfig::default(), usize::MAX).await;
        let (mut client, _) = connect(&url(addr), ClientConfig::default()).await.unwrap();
        let mut server_ws = accepted.recv().await.unwrap();
        let closing = smol::spawn(async move { server_ws.close(CloseCode(4002), "asked").await });
        assert!(client.recv().await.is_none());
        let seen = client.closed().expect("terminal info");
        assert_eq!(
            (seen.code, seen.reason.as_str(), seen.clean),
            (CloseCode(4002), "asked", true)
        );
        let closed = closing.await.unwrap();
        assert!(closed.clean);
        assert_eq!(closed.code, CloseCode(4002));
    });
}

#[test]
fn subprotocol_follows_the_server_preference() {
    run(async {
        let policy = ServerPolicy::new()
            .subprotocol("chat.v2")
            .subprotocol("chat.v1");
        let (_server, addr, accepted) =
            server(ServerConfig::new(Config::default(), policy), usize::MAX).await;
        let request = ClientRequest::new(&url(addr))
            .unwrap()
            .subprotocol("chat.v1")
            .unwrap()
            .subprotocol("chat.v2")
            .unwrap();
        let (client, response) = connect_request(request, ClientConfig::default())
            .await
            .unwrap();
        assert_eq!(client.subprotocol(), Some("chat.v2"));
        assert_eq!(response.subprotocol(), Some("chat.v2"));
        let server_ws = accepted.recv().await.unwrap();
        assert_eq!(server_ws.subprotocol(), Some("chat.v2"));

        let request = ClientRequest::new(&url(addr))
            .unwrap()
            .subprotocol("chat.v1")
            .unwrap();
        let (client, _) = connect_request(request, ClientConfig::default())
            .await
            .unwrap();
        assert_eq!(client.subprotocol(), Some("chat.v1"));
        let (client, _) = connect(&url(addr), ClientConfig::default()).await.unwrap();
        assert_eq!(client.subprotocol(), None);
    });
}

fn handshake_status(result: Result<impl Sized, Error>) -> u16 {
    match result {
        Err(Error::Handshake(e)) => e.http_status().expect("an HTTP status"),
        Err(other) => panic!("expected a handshake error, got {other}"),
        Ok(_) => panic!("expected a handshake error, got a connection"),
    }
}

#[test]
fn origin_allowlist_rejects_with_403() {
    run(async {
        let policy = ServerPolicy::new()
            .allow_origin("https://good.example")
            .unwrap();
        let addr = echo_server(ServerConfig::new(Config::default(), policy)).await;
        let evil = ClientRequest::new(&url(addr))
            .unwrap()
            .header("Origin", "https://evil.example")
            .unwrap();
        assert_eq!(
            handshake_status(connect_request(evil, ClientConfig::default()).await),
            403
        );
        let good = ClientRequest::new(&url(addr))
            .unwrap()
            .header("Origin", "https://good.example")
            .unwrap();
        connect_request(good, ClientConfig::default())
            .await
            .expect("the allowed origin connects");
    });
}

#[test]
fn auth_hook_rejects_with_401() {
    run(async {
        let policy =
            ServerPolicy::new().authenticate(|request| match request.header("Authorization") {
                Some("Bearer secret") => Ok(()),
                _ => Err(Reject::new(401).header("WWW-Authenticate", "Bearer")),
            });
        let addr = echo_server(ServerConfig::new(Config::default(), policy)).await;
        assert_eq!(
            handshake_status(connect(&url(addr), ClientConfig::default()).await),
            401
        );
        let good = ClientRequest::new(&url(addr))
            .unwrap()
            .header("Authorization", "Bearer secret")
            .unwrap();
        connect_request(good, ClientConfig::default())
            .await
            .expect("the right token connects");
    });
}

#[test]
fn accept_with_decides_per_request() {
    run(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = smol::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let refused = tether_smol::accept_with(stream, ServerConfig::default(), |request| {
                assert_eq!(request.path(), "/private");
                Err(Reject::new(404))
            })
            .await;
            assert!(matches!(refused, Err(Error::Rejected { status: 404 })));
        });
        let status = handshake_status(
            connect(&format!("ws://{addr}/private"), ClientConfig::default()).await,
        );
        assert_eq!(status, 404);
        serving.await;
    });
}

fn short_heartbeat() -> Config {
    heartbeat(Duration::from_millis(200), Duration::from_millis(200))
}

/// Frequent pings, with a pong timeout that a loaded machine still meets.
fn tolerant_heartbeat() -> Config {
    heartbeat(Duration::from_millis(200), Duration::from_secs(5))
}

fn heartbeat(interval: Duration, timeout: Duration) -> Config {
    let mut config = Config::default();
    config.heartbeat = Some(Heartbeat::new(interval, timeout));
    config
}

#[test]
fn heartbeat_detects_a_silent_peer() {
    run(async {
        let (addr, accepted) = raw_peer().await;
        let peer = smol::spawn(accepted);
        let (mut ws, _) = connect(&url(addr), ClientConfig::new(short_heartbeat()))
            .await
            .unwrap();
        let _silent = peer.await; // completes the handshake, then neither reads nor answers
        match within(Duration::from_secs(10), ws.recv()).await {
            Some(Err(Error::Closed(closed))) => {
                assert_eq!(closed.cause, CloseCause::HeartbeatTimeout, "{closed:?}");
            }
            other => panic!("expected a heartbeat timeout, got {other:?}"),
        }
        assert!(ws.recv().await.is_none(), "the end is reported once");
    });
}

#[test]
fn dropped_socket_yields_1006() {
    run(async {
        let (addr, accepted) = raw_peer().await;
        let peer = smol::spawn(accepted);
        let (mut ws, _) = connect(&url(addr), ClientConfig::default()).await.unwrap();
        drop(peer.await);
        match ws.recv().await {
            Some(Err(Error::Closed(closed))) => {
                assert_eq!(closed.code, CloseCode::ABNORMAL);
                assert_eq!(closed.cause, CloseCause::TransportLost);
                assert!(!closed.clean);
            }
            other => panic!("expected 1006, got {other:?}"),
        }
    });
}

#[test]
fn pongs_and_heartbeats_flow_while_the_user_is_idle() {
    run(async {
        let (_server, addr, accepted) = server(
            ServerConfig::new(tolerant_heartbeat(), ServerPolicy::new()),
            usize::MAX,
        )
        .await;
        let (mut client, _) = connect(&url(addr), ClientConfig::new(tolerant_heartbeat()))
            .await
            .unwrap();
        // The server's user holds the connection and never touches it.
        let _idle = accepted.recv().await.unwrap();
        for i in 0..5u8 {
            client.ping(vec![i]).await.unwrap();
            loop {
                match client.next_event().await.unwrap().unwrap() {
                    Incoming::Pong(p) if p[..] == [i] => break,
                    Incoming::Pong(p) => panic!("unexpected pong {p:?}"),
                    _ => {}
                }
            }
        }
        // Heartbeats both ways keep the connection up for several intervals.
        let mut rounds = 0;
        while client.rtt().is_none() && rounds < 50 {
            rounds += 1;
            async_io::Timer::after(Duration::from_millis(100)).await;
        }
        assert!(
            client.rtt().is_some(),
            "the client's heartbeat measured a round trip"
        );
        assert_eq!(client.state(), tether::State::Open);
    });
}

#[test]
fn split_halves_work_from_two_tasks() {
    run(async {
        let addr = echo_server(ServerConfig::default()).await;
        let (ws, _) = connect(&url(addr), ClientConfig::default()).await.unwrap();
        let (mut writer, mut reader) = ws.split();
        const COUNT: usize = 500;
        let writing = smol::spawn(async move {
            for i in 0..COUNT {
                writer.send_text(&i.to_string()).await.unwrap();
            }
            writer
        });
        let reading = smol::spawn(async move {
            for i in 0..COUNT {
                assert_eq!(
                    reader.recv().await.unwrap().unwrap(),
                    Message::text(i.to_string())
                );
            }
            reader
        });
        let (mut writer, mut reader) = (writing.await, reading.await);
        let closed = writer.close(CloseCode::NORMAL, "done").await.unwrap();
        assert!(closed.clean);
        assert!(reader.recv().await.is_none());
    });
}

#[test]
fn stream_and_sink() {
    use futures_util::{SinkExt, StreamExt};
    run(async {
        let addr = echo_server(ServerConfig::default()).await;
        let (mut ws, _) = connect(&url(addr), ClientConfig::default()).await.unwrap();
        for i in 0..10 {
            ws.feed(Message::text(format!("m{i}"))).await.unwrap();
        }
        ws.flush().await.unwrap();
        for i in 0..10 {
            assert_eq!(
                ws.next().await.unwrap().unwrap(),
                Message::text(format!("m{i}"))
            );
        }
        SinkExt::close(&mut ws).await.unwrap();
        assert!(ws.next().await.is_none());
    });
}

/// Waits until `server` holds `n` slots, for at most [`SETTLE`]: a slot is released when its
/// transport closes, a moment after the handles saw the end.
async fn settle(server: &tether_smol::Server, n: usize) {
    let started = std::time::Instant::now();
    while server.active_connections() != n {
        assert!(
            started.elapsed() < SETTLE,
            "slots never settled at {n} (still {})",
            server.active_connections()
        );
        async_io::Timer::after(Duration::from_millis(5)).await;
    }
}

/// How long a closed connection may keep its server slot.
const SETTLE: Duration = Duration::from_secs(5);

#[test]
fn max_connections_holds_at_twice_the_limit_and_frees_slots_on_every_close_path() {
    const N: usize = 4;
    run(async {
        let (server, addr, accepted) = server(ServerConfig::default(), N).await;
        // N accepted: three tether clients and a raw one (for the protocol-error path). Each
        // server side is taken before the next client connects (every handshake runs in a
        // task of its own), so `server_side[i]` is the peer of client `i`.
        let mut clients = Vec::new();
        let mut server_side = Vec::new();
        for _ in 0..N - 1 {
            clients.push(
                connect(&url(addr), ClientConfig::default())
                    .await
                    .expect("within the limit")
                    .0,
            );
            server_side.push(within(LIMIT, accepted.recv()).await.unwrap());
        }
        let mut raw = raw_client(addr).await;
        server_side.push(within(LIMIT, accepted.recv()).await.unwrap());
        assert_eq!(server.active_connections(), N);
        // N more: each refused with 503 and Retry-After.
        for _ in 0..N {
            match connect(&url(addr), ClientConfig::default()).await {
                Err(Error::Handshake(e))
                    if matches!(*e, tether::handshake::HandshakeError::Rejected { .. }) =>
                {
                    let tether::handshake::HandshakeError::Rejected {
                        status, headers, ..
                    } = *e
                    else {
                        unreachable!()
                    };
                    assert_eq!(status, 503);
                    assert!(
                        headers.get("Retry-After").is_some(),
                        "503 without Retry-After"
                    );
                }
                Err(other) => panic!("expected 503, got {other}"),
                Ok(_) => panic!("a connection over the limit was accepted"),
            }
        }
        assert_eq!(server.active_connections(), N);

        // Close every one, each a different way.
        let mut client_normal = clients.remove(0);
        let client_dropped = clients.remove(0);
        let mut client_of_panic = clients.remove(0);
        let mut server_normal = server_side.remove(0);
        let mut server_dropped = server_side.remove(0);
        let server_of_panic = server_side.remove(0);
        let mut server_of_raw = server_side.remove(0);
        // 1. A normal close handshake.
        assert!(
            client_normal
                .close(CloseCode::NORMAL, "")
                .await
                .unwrap()
                .clean
        );
        assert!(server_normal.recv().await.is_none());
        settle(&server, N - 1).await;
        // 2. A dropped handle (the adapter closes in the background).
        drop(client_dropped);
        assert!(server_dropped.recv().await.is_none());
        settle(&server, N - 2).await;
        // 3. A panic in user code that owns the handle.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _owned = server_of_panic;
            panic!("user code fails (expected by the test)");
        }));
        assert!(outcome.is_err());
        assert!(client_of_panic.recv().await.is_none());
        settle(&server, N - 3).await;
        // 4. An error: the peer breaks the protocol (a reserved opcode, unmasked), then reads
        //    our Close up to our end of stream (a half-close) and closes its end.
        raw.write_all(&[0x83, 0x00]).await.unwrap();
        let mut rest = Vec::new();
        futures_lite::AsyncReadExt::read_to_end(&mut raw, &mut rest)
            .await
            .unwrap();
        assert_eq!(rest[0], 0x88, "our Close");
        drop(raw);
        match server_of_raw.recv().await {
            Some(Err(Error::Closed(closed))) => {
                assert!(
                    matches!(closed.cause, CloseCause::Protocol(_)),
                    "{closed:?}"
                )
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
        settle(&server, 0).await;
        assert_eq!(
            server.active_connections(),
            0,
            "every close path releases its slot"
        );

        // N new connections succeed.
        let mut again = Vec::new();
        for _ in 0..N {
            again.push(
                connect(&url(addr), ClientConfig::default())
                    .await
                    .expect("a freed slot")
                    .0,
            );
        }
        assert_eq!(server.active_connections(), N);
    });
}

#[test]
fn server_handshake_is_bounded_by_the_handshake_timeout() {
    run(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A client that connects and never sends its request.
        let _silent = async_net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut config = Config::default();
        config.handshake_timeout = Duration::from_millis(200);
        let outcome =
            tether_smol::accept(stream, ServerConfig::new(config, ServerPolicy::new())).await;
        assert!(
            matches!(outcome, Err(Error::HandshakeTimeout { waited }) if waited == Duration::from_millis(200)),
            "{outcome:?}"
        );
    });
}

#[test]
fn client_handshake_is_bounded_by_the_handshake_timeout() {
    run(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepting = smol::spawn(async move { listener.accept().await.unwrap() });
        let mut config = Config::default();
        config.handshake_timeout = Duration::from_millis(200);
        let outcome = connect(&url(addr), ClientConfig::new(config)).await;
        assert!(
            matches!(outcome, Err(Error::HandshakeTimeout { waited }) if waited == Duration::from_millis(200)),
            "{:?}",
            outcome.err()
        );
        drop(accepting.await);
    });
}

#[test]
fn send_waits_for_room_in_the_output_buffer() {
    use futures_lite::AsyncReadExt;
    run(async {
        let (addr, accepted) = raw_peer().await;
        let peer = smol::spawn(accepted);
        let mut config = Config::default();
        config.high_watermark = 64 << 10;
        config.low_watermark = 16 << 10;
        let (mut ws, _) = connect(&url(addr), ClientConfig::new(config))
            .await
            .unwrap();
        let mut peer = peer.await; // does not read for now
        let chunk = Bytes::from(vec![9u8; 64 << 10]);
        let mut refused = None;
        for _ in 0..100_000 {
            match ws.try_send(Message::Binary(chunk.clone())) {
                Ok(()) => {}
                Err(e) => {
                    assert!(
                        matches!(e.kind, tether::SendErrorKind::BufferFull { .. }),
                        "{e:?}"
                    );
                    refused = Some(e.into_inner());
                    break;
                }
            }
            futures_lite::future::yield_now().await;
        }
        let refused = refused.expect("the buffer filled up while the peer did not read");
        assert_eq!(refused, Message::Binary(chunk.clone()));
        // Once the peer reads, the waiting send goes through.
        let draining = smol::spawn(async move {
            let mut sink = vec![0u8; 1 << 16];
            while peer.read(&mut sink).await.map(|n| n > 0).unwrap_or(false) {}
        });
        ws.send(refused).await.expect("room frees up");
        ws.flush().await.unwrap();
        drop(draining);
    });
}

#[test]
fn a_reply_goes_out_before_the_close_for_a_violation_behind_the_message() {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    run(async {
        let (_server, addr, accepted) = server(ServerConfig::default(), usize::MAX).await;
        let mut raw = raw_client(addr).await;
        let mut ws = accepted.recv().await.unwrap();
        // A masked text "A" (mask 0) and, in the same write, a frame with RSV2 set.
        raw.write_all(&[0x81, 0x81, 0, 0, 0, 0, b'A', 0xA1, 0x80, 0, 0, 0, 0])
            .await
            .unwrap();
        let app = async {
            let message = ws.recv().await.unwrap().unwrap();
            assert_eq!(message, Message::text("A"));
            ws.send(message).await.unwrap();
            match ws.recv().await {
                Some(Err(Error::Closed(closed))) => {
                    assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR)
                }
                other => panic!("expected the protocol error, got {other:?}"),
            }
        };
        // The peer sees the echo first, then our Close with 1002, then our end of stream.
        let peer = async {
            let mut seen = Vec::new();
            raw.read_to_end(&mut seen).await.unwrap();
            drop(raw);
            seen
        };
        let ((), seen) = futures_lite::future::zip(app, peer).await;
        assert_eq!(seen[..3], [0x81, 0x01, b'A']);
        assert_eq!(seen[3], 0x88, "then Close");
        assert_eq!(seen[5..7], 1002u16.to_be_bytes());
    });
}

#[test]
fn reading_pauses_for_a_user_who_does_not_read_and_resumes_when_it_does() {
    run(async {
        let mut server_config = Config::default();
        server_config.high_watermark = 64 << 10;
        server_config.low_watermark = 16 << 10;
        let (_server, addr, accepted) = server(
            ServerConfig::new(server_config, ServerPolicy::new()),
            usize::MAX,
        )
        .await;
        let mut client_config = Config::default();
        client_config.high_watermark = 64 << 10;
        client_config.low_watermark = 16 << 10;
        let (mut client, _) = connect(&url(addr), ClientConfig::new(client_config))
            .await
            .unwrap();
        let mut ws = accepted.recv().await.unwrap();
        // The server's user does not read: its driver stops reading, the transport fills up
        // and the client's buffer with it.
        let chunk = |i: u32| {
            let mut data = vec![0u8; 16 << 10];
            data[..4].copy_from_slice(&i.to_be_bytes());
            Message::binary(data)
        };
        let mut sent = 0u32;
        loop {
            match client.try_send(chunk(sent)) {
                Ok(()) => sent += 1,
                Err(e) => {
                    assert!(
                        matches!(e.kind, tether::SendErrorKind::BufferFull { .. }),
                        "{e:?}"
                    );
                    break;
                }
            }
            assert!(sent < 100_000, "the server never stopped reading");
            futures_lite::future::yield_now().await;
        }
        // Taking the messages lets it read on, in order, to the last one.
        let last = chunk(sent);
        let sending = smol::spawn(async move {
            client.send(last).await.unwrap();
            client
        });
        for i in 0..=sent {
            assert_eq!(ws.recv().await.unwrap().unwrap(), chunk(i));
        }
        let mut client = sending.await;
        let closed = client.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(closed.clean);
    });
}

#[test]
fn a_reply_goes_out_before_the_close_echo_for_a_message_and_close_together() {
    use futures_lite::AsyncReadExt;
    run(async {
        let (_server, addr, accepted) = server(ServerConfig::default(), usize::MAX).await;
        let mut raw = raw_client(addr).await;
        let mut ws = accepted.recv().await.unwrap();
        // A masked text "A" and a Close 1000 (mask 0), in one write.
        raw.write_all(&[
            0x81, 0x81, 0, 0, 0, 0, b'A', 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8,
        ])
        .await
        .unwrap();
        let app = async {
            let message = ws.recv().await.unwrap().unwrap();
            ws.send(message).await.expect("the reply is accepted");
            let end = ws.recv().await;
            (ws, end)
        };
        let peer = async {
            let mut seen = Vec::new();
            raw.read_to_end(&mut seen).await.unwrap();
            drop(raw);
            seen
        };
        let ((ws, end), seen) = futures_lite::future::zip(app, peer).await;
        assert!(end.is_none(), "a clean close ends recv with None: {end:?}");
        let closed = ws.closed().expect("terminal info");
        assert!(closed.clean, "{closed:?}");
        assert_eq!(closed.code, CloseCode::NORMAL);
        // The reply, then the Close echo (1000), then our end of stream.
        assert_eq!(seen, [0x81, 0x01, b'A', 0x88, 0x02, 0x03, 0xE8]);
    });
}

#[test]
fn a_peer_that_ignores_our_close_is_held_to_the_watermark_and_cut_at_the_close_timeout() {
    run(async {
        let mut config = Config::default();
        config.high_watermark = 256 << 10;
        config.low_watermark = 64 << 10;
        config.close_timeout = Duration::from_secs(1);
        let (_server, addr, accepted) =
            server(ServerConfig::new(config, ServerPolicy::new()), usize::MAX).await;
        let mut raw = raw_client(addr).await;
        let mut ws = accepted.recv().await.unwrap();
        // The peer sends binary frames of 65535 bytes (mask 0) as fast as it can, never reads
        // and never answers our Close.
        let mut frame = vec![0x82, 0xFE, 0xFF, 0xFF, 0, 0, 0, 0];
        frame.resize(frame.len() + 0xFFFF, 7);
        let pushing = smol::spawn(async move {
            let mut written = 0usize;
            while raw.write_all(&frame).await.is_ok() {
                written += frame.len();
            }
            written
        });
        let started = std::time::Instant::now();
        let closed = ws.close(CloseCode::NORMAL, "").await.unwrap();
        let took = started.elapsed();
        assert_eq!(closed.cause, CloseCause::CloseTimeout, "{closed:?}");
        assert!(!closed.clean);
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(10),
            "ended after {took:?}"
        );
        // What the peer could push: the watermark plus the kernel's socket buffers.
        let written = pushing.await;
        assert!(
            written < 24 << 20,
            "the peer pushed {written} bytes before the close timeout"
        );
    });
}
