//! The tokio adapter over real sockets on 127.0.0.1 (port 0). Every wait is bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tether::Bytes;
use tether::handshake::{ClientRequest, Reject, ServerPolicy};
use tether::{CloseCause, CloseCode, Config, DataKind, Heartbeat, Message};
use tether_tokio::{ClientConfig, Error, Incoming, Server, ServerConfig, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

/// Bounds a step of a test: a hang fails instead of blocking the run.
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn server_config() -> ServerConfig {
    ServerConfig::new(Config::default(), ServerPolicy::new())
}

/// A server whose connections are handed to `handler`, one task each.
async fn serve<F, Fut>(config: ServerConfig, handler: F) -> SocketAddr
where
    F: Fn(WebSocket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let server = Server::bind("127.0.0.1:0", config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let handler = std::sync::Arc::new(handler);
    tokio::spawn(async move {
        while let Ok(connecting) = server.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                if let Ok(ws) = connecting.handshake().await {
                    handler(ws).await;
                }
            });
        }
    });
    addr
}

async fn echo(mut ws: WebSocket) {
    while let Some(Ok(m)) = ws.recv().await {
        if ws.send(m).await.is_err() {
            break;
        }
    }
}

async fn echo_server() -> SocketAddr {
    serve(server_config(), echo).await
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

async fn client(addr: SocketAddr) -> WebSocket {
    let (ws, _) = bounded(
        "connect",
        tether_tokio::connect(&url(addr), ClientConfig::default()),
    )
    .await
    .expect("connect");
    ws
}

/// A raw TCP peer that completes the opening handshake and then does what the test says.
async fn raw_client(addr: SocketAddr) -> TcpStream {
    handshake_on(TcpStream::connect(addr).await.unwrap()).await
}

/// Completes the opening handshake as a raw client on `tcp`.
async fn handshake_on(mut tcp: TcpStream) -> TcpStream {
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "eof in response head"
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_text_binary_and_16_mib() {
    let addr = echo_server().await;
    let mut ws = client(addr).await;
    ws.send_text("héllo wörld ✓").await.unwrap();
    let m = bounded("text", ws.recv()).await.unwrap().unwrap();
    assert_eq!(m, Message::text("héllo wörld ✓"));
    let bytes: Vec<u8> = (0..=255).collect();
    ws.send_binary(bytes.clone()).await.unwrap();
    let m = bounded("binary", ws.recv()).await.unwrap().unwrap();
    assert_eq!(m, Message::Binary(Bytes::from(bytes)));
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    ws.send_binary(big.clone()).await.unwrap();
    let m = bounded("16 MiB", ws.recv()).await.unwrap().unwrap();
    assert_eq!(m.len(), big.len());
    assert!(m.as_bytes() == &big[..], "16 MiB echo differs");
    let closed = bounded("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(closed.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_message_is_received_whole() {
    let addr = echo_server().await;
    let mut ws = client(addr).await;
    ws.send_fragment(DataKind::Text, "frag", false)
        .await
        .unwrap();
    ws.send_fragment(DataKind::Text, "men", false)
        .await
        .unwrap();
    ws.send_fragment(DataKind::Text, "ted ✓", true)
        .await
        .unwrap();
    let m = bounded("fragmented", ws.recv()).await.unwrap().unwrap();
    assert_eq!(m, Message::text("fragmented ✓"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pong_to_our_ping_is_observed() {
    let addr = echo_server().await;
    let mut ws = client(addr).await;
    ws.ping("are you there").await.unwrap();
    let event = bounded("pong", ws.next_event()).await.unwrap().unwrap();
    assert_eq!(event, Incoming::Pong(Bytes::from_static(b"are you there")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_initiated_close_with_code() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let addr = serve(server_config(), move |mut ws| {
        let tx = tx.lock().unwrap().take();
        async move {
            assert!(
                ws.recv().await.is_none(),
                "a clean close ends recv with None"
            );
            let _ = tx.unwrap().send(ws.closed());
        }
    })
    .await;
    let mut ws = client(addr).await;
    let closed = bounded("close", ws.close(CloseCode(4001), "bye"))
        .await
        .unwrap();
    assert!(closed.clean);
    assert_eq!(closed.code, CloseCode(4001), "the server echoes the code");
    assert!(bounded("recv after close", ws.recv()).await.is_none());
    let server_side = bounded("server", rx).await.unwrap().unwrap();
    assert_eq!(
        (server_side.code, server_side.reason.as_str()),
        (CloseCode(4001), "bye")
    );
    assert!(server_side.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_initiated_close_with_code() {
    let addr = serve(server_config(), |mut ws| async move {
        let closed = ws.close(CloseCode(4002), "asked").await.unwrap();
        assert!(closed.clean);
        assert_eq!(closed.code, CloseCode(4002));
    })
    .await;
    let mut ws = client(addr).await;
    assert!(bounded("recv", ws.recv()).await.is_none());
    let closed = ws.closed().unwrap();
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (CloseCode(4002), "asked")
    );
    assert!(closed.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprotocol_follows_server_preference() {
    let policy = ServerPolicy::new()
        .subprotocol("chat.v2")
        .subprotocol("chat.v1");
    let addr = serve(ServerConfig::new(Config::default(), policy), echo).await;
    let request = ClientRequest::new(&url(addr))
        .unwrap()
        .subprotocol("chat.v1")
        .unwrap()
        .subprotocol("chat.v2")
        .unwrap();
    let (ws, response) = bounded(
        "connect",
        tether_tokio::connect_request(request, ClientConfig::default()),
    )
    .await
    .unwrap();
    assert_eq!(ws.subprotocol(), Some("chat.v2"));
    assert_eq!(response.subprotocol(), Some("chat.v2"));
}

async fn rejected_status(config: ServerConfig, request: ClientRequest) -> (u16, Error) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tether_tokio::accept(tcp, config).await.map(|_| ())
    });
    let request = ClientRequest::from_url(tether::handshake::WsUrl::parse(&url(addr)).unwrap())
        .header("Origin", request.headers()[0].1.clone())
        .unwrap();
    let err = bounded(
        "connect",
        tether_tokio::connect_request(request, ClientConfig::default()),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    let Error::Handshake(e) = &err else {
        panic!("expected a handshake error, got {err:?}")
    };
    let status = e.http_status().expect("an HTTP status");
    let server_err = bounded("server", server).await.unwrap().unwrap_err();
    (status, server_err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_outside_allowlist_gets_403() {
    let policy = ServerPolicy::new()
        .allow_origin("https://good.example")
        .unwrap();
    let request = ClientRequest::new("ws://x/")
        .unwrap()
        .header("Origin", "https://evil.example")
        .unwrap();
    let (status, server_err) =
        rejected_status(ServerConfig::new(Config::default(), policy), request).await;
    assert_eq!(status, 403);
    assert!(
        matches!(server_err, Error::Rejected { status: 403 }),
        "{server_err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_hook_refusal_gets_401() {
    let policy =
        ServerPolicy::new().authenticate(|request| match request.header("Authorization") {
            Some("Bearer good") => Ok(()),
            _ => Err(Reject::new(401).header("WWW-Authenticate", "Bearer")),
        });
    let request = ClientRequest::new("ws://x/")
        .unwrap()
        .header("Origin", "https://any.example")
        .unwrap();
    let (status, server_err) =
        rejected_status(ServerConfig::new(Config::default(), policy), request).await;
    assert_eq!(status, 401);
    assert!(
        matches!(server_err, Error::Rejected { status: 401 }),
        "{server_err:?}"
    );
}

/// Accepts one raw connection with `config` and returns the server handle.
async fn accept_raw(config: Config) -> (WebSocket, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tether_tokio::accept(tcp, ServerConfig::new(config, ServerPolicy::new()))
            .await
            .unwrap()
    });
    let peer = bounded("raw handshake", raw_client(addr)).await;
    let ws = bounded("accept", server).await.unwrap();
    (ws, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_detected_by_the_heartbeat() {
    let mut config = Config::default();
    config.heartbeat = Some(Heartbeat::new(
        Duration::from_millis(200),
        Duration::from_millis(200),
    ));
    let (mut ws, _silent_peer) = accept_raw(config).await;
    match bounded("heartbeat timeout", ws.recv()).await {
        Some(Err(Error::Closed(closed))) => {
            assert_eq!(closed.cause, CloseCause::HeartbeatTimeout);
            assert_eq!(closed.code, CloseCode::INTERNAL_ERROR);
        }
        other => panic!("expected a heartbeat timeout, got {other:?}"),
    }
    assert!(ws.recv().await.is_none(), "the end is reported once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_socket_yields_1006() {
    let (mut ws, peer) = accept_raw(Config::default()).await;
    drop(peer);
    match bounded("transport lost", ws.recv()).await {
        Some(Err(Error::Closed(closed))) => {
            assert_eq!(closed.cause, CloseCause::TransportLost);
            assert_eq!(closed.code, CloseCode::ABNORMAL);
            assert!(!closed.clean);
        }
        other => panic!("expected 1006, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_while_the_user_is_idle() {
    let (ws, mut peer) = accept_raw(Config::default()).await;
    // The server's user holds `ws` and does nothing with it.
    for i in 0..3u8 {
        // A masked Ping with payload [i, i, i] (mask 0: the payload is sent as is).
        peer.write_all(&[0x89, 0x83, 0, 0, 0, 0, i, i, i])
            .await
            .unwrap();
        let mut pong = [0u8; 5];
        bounded("pong", peer.read_exact(&mut pong)).await.unwrap();
        assert_eq!(pong, [0x8A, 0x03, i, i, i]);
    }
    drop(ws);
}

/// A masked "Hello" (mask 0), then a Text frame with RSV1 set (a protocol error, RFC 6455
/// §5.2), then a Ping that is never read: Autobahn's case 3.2.
const HELLO_THEN_RSV1: [u8; 19] = [
    0x81, 0x85, 0, 0, 0, 0, b'H', b'e', b'l', b'l', b'o', 0xC1, 0x80, 0, 0, 0, 0, 0x89, 0x80,
];

/// Reads one unmasked frame from the server: (first byte, payload).
async fn read_frame(peer: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    peer.read_exact(&mut head).await.unwrap();
    assert!(head[1] < 126, "a short frame expected, got {head:?}");
    let mut payload = vec![0u8; usize::from(head[1])];
    peer.read_exact(&mut payload).await.unwrap();
    (head[0], payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_violation_behind_a_message_is_answered_after_the_reply() {
    let (mut ws, mut peer) = accept_raw(Config::default()).await;
    peer.write_all(&HELLO_THEN_RSV1).await.unwrap();
    let hello = bounded("hello", ws.recv()).await.unwrap().unwrap();
    assert_eq!(hello, Message::text("Hello"));
    ws.send(hello).await.unwrap();
    match bounded("the failure", ws.recv()).await {
        Some(Err(Error::Closed(closed))) => assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR),
        other => panic!("expected a 1002 end, got {other:?}"),
    }
    // The peer sees the echo first, then our Close.
    let echo = bounded("echo", read_frame(&mut peer)).await;
    assert_eq!(echo, (0x81, b"Hello".to_vec()));
    let (op, close) = bounded("close", read_frame(&mut peer)).await;
    assert_eq!((op, &close[..2]), (0x88, &1002u16.to_be_bytes()[..]));
}

/// A masked Text frame (mask 0: the payload is sent as is).
fn masked_text(text: &str) -> Vec<u8> {
    assert!(text.len() < 126);
    let mut frame = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(text.as_bytes());
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_violation_waits_for_the_reply_to_the_message_before_it() {
    let (mut ws, mut peer) = accept_raw(Config::default()).await;
    peer.write_all(&masked_text("Hello")).await.unwrap();
    let hello = bounded("hello", ws.recv()).await.unwrap().unwrap();
    assert_eq!(hello, Message::text("Hello"));
    // The application holds the message and is about to reply when, 100 ms later, the peer
    // breaks the protocol: an empty Ping, then a Text frame with RSV1 set. The Pong shows the
    // driver has read them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    peer.write_all(&[0x89, 0x80, 0, 0, 0, 0, 0xC1, 0x80, 0, 0, 0, 0])
        .await
        .unwrap();
    assert_eq!(bounded("pong", read_frame(&mut peer)).await, (0x8A, vec![]));
    ws.send(hello).await.unwrap();
    match bounded("the failure", ws.recv()).await {
        Some(Err(Error::Closed(closed))) => assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR),
        other => panic!("expected a 1002 end, got {other:?}"),
    }
    // The reply reaches the peer before our Close.
    let echo = bounded("echo", read_frame(&mut peer)).await;
    assert_eq!(echo, (0x81, b"Hello".to_vec()));
    let (op, close) = bounded("close", read_frame(&mut peer)).await;
    assert_eq!((op, &close[..2]), (0x88, &1002u16.to_be_bytes()[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reply_to_a_message_goes_out_before_the_close_echo_behind_it() {
    let (mut ws, mut peer) = accept_raw(Config::default()).await;
    // A request and the peer's Close 1000, in one write.
    let mut bytes = masked_text("request");
    bytes.extend_from_slice(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]);
    peer.write_all(&bytes).await.unwrap();
    let request = bounded("request", ws.recv()).await.unwrap().unwrap();
    assert_eq!(request, Message::text("request"));
    ws.send_text("reply").await.unwrap();
    assert!(
        bounded("the end", ws.recv()).await.is_none(),
        "a clean close"
    );
    let closed = ws.closed().unwrap();
    assert!(closed.clean, "{closed:?}");
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert_eq!(
        bounded("reply", read_frame(&mut peer)).await,
        (0x81, b"reply".to_vec())
    );
    assert_eq!(
        bounded("close echo", read_frame(&mut peer)).await,
        (0x88, 1000u16.to_be_bytes().to_vec())
    );
    // The server closes the TCP connection first (RFC 6455 §7.1.1).
    let mut rest = Vec::new();
    bounded("end of stream", peer.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_costs_the_echo_server_bounded_memory() {
    const SIZE: usize = 32 << 10;
    /// Small kernel buffers on both ends, so what the peer manages to write is mostly what
    /// the server holds.
    const SOCKET_BUFFER: u32 = 64 << 10;
    const BOUND: usize = 8 << 20;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
    socket.set_send_buffer_size(SOCKET_BUFFER).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    let echoed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = echoed.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tether_tokio::accept(tcp, server_config()).await.unwrap();
        while let Some(Ok(m)) = ws.recv().await {
            if ws.send(m).await.is_err() {
                break;
            }
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
    socket.set_send_buffer_size(SOCKET_BUFFER).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let mut peer = bounded("raw handshake", handshake_on(tcp)).await;
    let mut frame = vec![0x82, 0xFE, (SIZE >> 8) as u8, SIZE as u8, 0, 0, 0, 0];
    frame.resize(frame.len() + SIZE, 7);
    // Write until the server stops taking bytes (a write that makes no progress for a
    // second), never reading; an unbounded server would take all 64 MiB.
    let mut written = 0;
    while written < 64 << 20 {
        match timeout(Duration::from_secs(1), peer.write_all(&frame)).await {
            Ok(result) => result.unwrap(),
            Err(_) => break,
        }
        written += frame.len();
    }
    let echoed = echoed.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("the peer wrote {written} bytes before the server pushed back; {echoed} echoed");
    assert!(
        written < BOUND,
        "the server took {written} bytes from a peer that never reads"
    );
    assert!(echoed > 0, "the server echoed until its output was full");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_violation_behind_an_unread_message_waits_at_most_the_close_timeout() {
    let mut config = Config::default();
    config.close_timeout = Duration::from_millis(300);
    let (mut ws, mut peer) = accept_raw(config).await;
    peer.write_all(&HELLO_THEN_RSV1).await.unwrap();
    // Nobody reads on the server: the Close comes once the close timeout has passed.
    let (op, close) = bounded("close", read_frame(&mut peer)).await;
    assert_eq!((op, &close[..2]), (0x88, &1002u16.to_be_bytes()[..]));
    // The message stays readable, then the end is reported.
    assert_eq!(
        bounded("hello", ws.recv()).await.unwrap().unwrap(),
        Message::text("Hello")
    );
    match bounded("the failure", ws.recv()).await {
        Some(Err(Error::Closed(closed))) => assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR),
        other => panic!("expected a 1002 end, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_pauses_behind_unread_messages_and_resumes_when_they_are_taken() {
    const N: usize = 300;
    const SIZE: usize = 1000;
    let mut config = Config::default();
    config.high_watermark = 4 * SIZE;
    config.low_watermark = SIZE;
    let (mut ws, mut peer) = accept_raw(config).await;
    let writer = tokio::spawn(async move {
        let mut frame = vec![0x82, 0xFE, (SIZE >> 8) as u8, SIZE as u8, 0, 0, 0, 0];
        frame.resize(frame.len() + SIZE, 7);
        for _ in 0..N {
            peer.write_all(&frame).await.unwrap();
        }
        peer
    });
    // Each read of the driver brings more than the high watermark, so it pauses again and
    // again; a pause the user's `recv` failed to end would hang here.
    for i in 0..N {
        match bounded("message", ws.recv()).await {
            Some(Ok(Message::Binary(b))) => assert_eq!(b.len(), SIZE, "message {i}"),
            other => panic!("message {i}: {other:?}"),
        }
    }
    let _peer = bounded("writer", writer).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_work_from_two_tasks() {
    const N: usize = 1000;
    let addr = echo_server().await;
    let (mut writer, mut reader) = client(addr).await.split();
    let send = tokio::spawn(async move {
        for i in 0..N {
            writer.send_text(&i.to_string()).await.unwrap();
        }
        writer
    });
    let recv = tokio::spawn(async move {
        for i in 0..N {
            let m = reader.recv().await.unwrap().unwrap();
            assert_eq!(m, Message::text(i.to_string()));
        }
        reader
    });
    let mut writer = bounded("writer", send).await.unwrap();
    let _reader = bounded("reader", recv).await.unwrap();
    let closed = bounded("close", writer.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(closed.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_sink() {
    use futures_util::{SinkExt, StreamExt};
    let addr = echo_server().await;
    let mut ws = client(addr).await;
    ws.send(Message::text("a")).await.unwrap();
    SinkExt::send(&mut ws, Message::text("b")).await.unwrap();
    assert_eq!(
        bounded("a", ws.next()).await.unwrap().unwrap(),
        Message::text("a")
    );
    assert_eq!(
        bounded("b", ws.next()).await.unwrap().unwrap(),
        Message::text("b")
    );
    bounded("close", SinkExt::close(&mut ws)).await.unwrap();
    assert!(bounded("end", ws.next()).await.is_none());
}

/// Whether `err` is the 503 of a full server, with its `Retry-After`.
fn is_503(err: &Error) -> bool {
    match err {
        Error::Handshake(e) => match &**e {
            tether::handshake::HandshakeError::Rejected {
                status: 503,
                headers,
                ..
            } => headers.get("Retry-After") == Some("1"),
            _ => false,
        },
        _ => false,
    }
}

/// Waits (bounded) until the server's slot count is `n`: the drivers release their slots as
/// their transports close, a moment after the handles see the end.
async fn settle(server: &Server, n: usize) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while server.active_connections() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "slots never settled at {n} (now {})",
            server.active_connections()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_holds_at_twice_the_limit() {
    const N: usize = 4;
    let server = std::sync::Arc::new(
        Server::bind("127.0.0.1:0", server_config().max_connections(N))
            .await
            .unwrap(),
    );
    let addr = server.local_addr().unwrap();
    let acceptor = server.clone();
    tokio::spawn(async move {
        while let Ok(connecting) = acceptor.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = connecting.handshake().await else {
                    return;
                };
                while let Some(Ok(m)) = ws.recv().await {
                    if m == Message::text("panic") {
                        panic!("user code panicked (on purpose)");
                    }
                    let _ = ws.send(m).await;
                }
            });
        }
    });

    for round in 0..2 {
        // One raw peer (to be cut off: the error path), then 2N - 1 clients at once.
        let raw = bounded("raw", raw_client(addr)).await;
        let attempts: Vec<_> = (0..2 * N - 1)
            .map(|_| {
                tokio::spawn(async move {
                    tether_tokio::connect(&url(addr), ClientConfig::default()).await
                })
            })
            .collect();
        let mut open = Vec::new();
        let mut refused = 0;
        for attempt in attempts {
            match bounded("connect", attempt).await.unwrap() {
                Ok((ws, _)) => open.push(ws),
                Err(e) if is_503(&e) => refused += 1,
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        assert_eq!((open.len() + 1, refused), (N, N), "round {round}");
        assert_eq!(server.active_connections(), N);

        // Every close path: normal close, dropped handle, panic in the server's user code,
        // and a transport error (the raw peer's socket dropped without a Close).
        let mut open = open.into_iter();
        let mut normal = open.next().unwrap();
        let closed = bounded("close", normal.close(CloseCode::NORMAL, ""))
            .await
            .unwrap();
        assert!(closed.clean);
        drop(open.next().unwrap());
        let mut panicking = open.next().unwrap();
        panicking.send_text("panic").await.unwrap();
        match bounded("server drop", panicking.recv()).await {
            None => assert_eq!(panicking.closed().unwrap().code, CloseCode::GOING_AWAY),
            other => panic!("expected the server's Going Away, got {other:?}"),
        }
        drop(raw);
        settle(&server, 0).await;
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` elsewhere.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections_echo() {
    const WANTED: usize = 1000;
    const MESSAGES: usize = 3;
    // Each connection costs two descriptors here (client and server end); keep a margin.
    let fit = open_files_limit().map_or(WANTED, |l| l.saturating_sub(64) / 2);
    let count = WANTED.min(fit);
    if count < WANTED {
        eprintln!("open-files soft limit allows {count} connections, not {WANTED}");
    }
    let addr = echo_server().await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(count));
    let clients: Vec<_> = (0..count)
        .map(|i| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let (mut ws, _) = tether_tokio::connect(&url(addr), ClientConfig::default())
                    .await
                    .expect("connect");
                // All connections are open at the same time before any echo starts.
                barrier.wait().await;
                for j in 0..MESSAGES {
                    let text = format!("{i}:{j}");
                    ws.send_text(&text).await.unwrap();
                    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(text));
                }
                ws.send_binary(vec![i as u8; 100]).await.unwrap();
                assert_eq!(
                    ws.recv().await.unwrap().unwrap(),
                    Message::Binary(vec![i as u8; 100].into())
                );
                let closed = ws.close(CloseCode::NORMAL, "").await.unwrap();
                assert!(closed.clean);
            })
        })
        .collect();
    timeout(Duration::from_secs(120), async {
        for client in clients {
            client.await.expect("a client failed");
        }
    })
    .await
    .expect("1000 connections did not finish in time");
}

/// Accepts on `listener` and forwards every text received to `seen`. Aborting the returned
/// task drops the listener and every connection.
fn recording_server(
    listener: TcpListener,
    seen: tokio::sync::mpsc::UnboundedSender<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            connections.spawn(async move {
                let Ok(mut ws) = tether_tokio::accept(tcp, server_config()).await else {
                    return;
                };
                while let Some(Ok(Message::Text(t))) = ws.recv().await {
                    let _ = seen.send(t.as_str().to_owned());
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_client_comes_back_after_a_server_restart() {
    use tether::reconnect::{ReconnectConfig, SessionConfig, SupervisorEvent};
    use tether_tokio::ReconnectEvent;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let server = recording_server(listener, seen_tx.clone());

    let mut reconnect = ReconnectConfig::default();
    reconnect.backoff.initial = Duration::from_millis(20);
    reconnect.backoff.max = Duration::from_millis(200);
    let mut client = tether_tokio::reconnecting(
        &url(addr),
        ClientConfig::default(),
        reconnect,
        SessionConfig::default(),
    )
    .unwrap();
    let next_event = async |client: &mut tether_tokio::ReconnectingClient| {
        bounded("client event", client.recv())
            .await
            .expect("client ended")
    };
    assert!(matches!(
        next_event(&mut client).await,
        ReconnectEvent::Connected { attempt: 1, .. }
    ));
    for text in ["1", "2"] {
        client.send_text(text).unwrap();
    }
    for text in ["1", "2"] {
        assert_eq!(bounded("first server", seen.recv()).await.unwrap(), text);
    }

    // The restart: the listener and every connection go away.
    server.abort();
    let _ = server.await;
    loop {
        if let ReconnectEvent::Supervisor(SupervisorEvent::Disconnected { retry_at, .. }) =
            next_event(&mut client).await
        {
            assert!(retry_at.is_some(), "a server restart is retried");
            break;
        }
    }
    for text in ["3", "4", "5"] {
        client.send_text(text).unwrap();
    }
    let listener = TcpListener::bind(addr).await.expect("rebind the same port");
    let server = recording_server(listener, seen_tx);
    loop {
        if let ReconnectEvent::Connected { .. } = next_event(&mut client).await {
            break;
        }
    }
    for text in ["3", "4", "5"] {
        assert_eq!(bounded("second server", seen.recv()).await.unwrap(), text);
    }
    bounded("close", client.close(CloseCode::NORMAL, "done"))
        .await
        .unwrap();
    let mut stopped = false;
    while let Some(event) = client.recv().await {
        stopped |= matches!(
            event,
            ReconnectEvent::Supervisor(SupervisorEvent::Stopped { unsent: 0 })
        );
    }
    assert!(stopped, "the session ends with Stopped and nothing unsent");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_cut_off_by_the_handshake_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_millis(200);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tether_tokio::accept(tcp, ServerConfig::new(config, ServerPolicy::new()))
            .await
            .map(|_| ())
    });
    // Connects, then sends nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let err = bounded("handshake timeout", server)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, Error::HandshakeTimeout { waited } if waited == Duration::from_millis(200)),
        "{err:?}"
    );
    let mut answer = Vec::new();
    bounded("408", silent.read_to_end(&mut answer))
        .await
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_client_reads_each_connection_in_order() {
    use tether::reconnect::{Disconnect, ReconnectConfig, SessionConfig, SupervisorEvent};
    use tether_tokio::ReconnectEvent;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Each connection: echo one message, send two of its own, then go away (1001, retried).
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            n += 1;
            tokio::spawn(async move {
                let mut ws = tether_tokio::accept(tcp, server_config()).await.unwrap();
                let m = ws.recv().await.unwrap().unwrap();
                ws.send(m).await.unwrap();
                ws.send_text(&format!("x{n}")).await.unwrap();
                ws.send_text(&format!("y{n}")).await.unwrap();
                let _ = ws.close(CloseCode::GOING_AWAY, "restart").await;
            });
        }
    });
    let mut reconnect = ReconnectConfig::default();
    reconnect.backoff.initial = Duration::from_millis(10);
    reconnect.backoff.max = Duration::from_millis(50);
    let mut settings = SessionConfig::default();
    settings.on_open.push(Message::text("hello"));
    let mut client =
        tether_tokio::reconnecting(&url(addr), ClientConfig::default(), reconnect, settings)
            .unwrap();
    for n in 1..=2 {
        let mut seen = Vec::new();
        loop {
            let event = bounded("client event", client.recv())
                .await
                .expect("client ended");
            match event {
                ReconnectEvent::Connected { .. } => seen.push("connected".to_owned()),
                ReconnectEvent::Message(Message::Text(t)) => seen.push(t.as_str().to_owned()),
                ReconnectEvent::Supervisor(SupervisorEvent::Disconnected {
                    reason,
                    retry_at,
                    ..
                }) => {
                    assert!(matches!(reason, Disconnect::Closed { .. }), "{reason:?}");
                    assert!(retry_at.is_some());
                    break;
                }
                other => panic!("connection {n}: unexpected {other:?}"),
            }
        }
        // What a connection received comes before the account of its end.
        assert_eq!(
            seen,
            ["connected", "hello", &format!("x{n}"), &format!("y{n}")]
        );
    }
    bounded("close", client.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let mut last = None;
    while let Some(event) = client.recv().await {
        last = Some(event);
    }
    assert!(
        matches!(
            last,
            Some(ReconnectEvent::Supervisor(SupervisorEvent::Stopped { .. }))
        ),
        "{last:?}"
    );
}

/// The counters are read from the handle and from both halves, and are exact for a scripted
/// exchange with an echo server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_messages_bytes_pings_and_pongs() {
    let addr = echo_server().await;
    let mut config = ClientConfig::default();
    config.config.heartbeat = None;
    let (mut ws, _) = bounded("connect", tether_tokio::connect(&url(addr), config))
        .await
        .expect("connect");
    ws.send_text("abc").await.unwrap();
    ws.send_binary(vec![7u8; 1000]).await.unwrap();
    for _ in 0..2 {
        bounded("echo", ws.recv()).await.unwrap().unwrap();
    }
    ws.ping("x").await.unwrap();
    let pong = bounded("pong", ws.next_event()).await.unwrap().unwrap();
    assert_eq!(pong, Incoming::Pong(Bytes::from_static(b"x")));
    let stats = ws.stats();
    assert_eq!(stats.messages_sent, 2);
    assert_eq!(stats.bytes_sent, 1003);
    assert_eq!(stats.messages_received, 2);
    assert_eq!(stats.bytes_received, 1003);
    assert_eq!(stats.pings_sent, 1);
    assert_eq!(stats.pongs_received, 1);
    // Frames from the server: 2+3, 4+1000 and 2+1 bytes, after the 101 response.
    assert!(stats.wire_bytes_received > 5 + 1004 + 3, "{stats:?}");
    // Client frames are masked: 6+3, 8+1000, 6+1 bytes after the request head.
    assert!(stats.wire_bytes_sent > 9 + 1008 + 7, "{stats:?}");
    let (writer, reader) = ws.split();
    assert_eq!(writer.stats(), stats);
    assert_eq!(reader.stats(), stats);
}
