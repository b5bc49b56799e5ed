//! tether-axum end to end over real sockets on 127.0.0.1 port 0: hyper's HTTP/2 client opens
//! an extended CONNECT (RFC 8441), tether's HTTP/1.1 client upgrades, a client pipelines its
//! first frame behind the request head, and the example's router serves its three routes.
//! Every wait is bounded.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tether::handshake::{ClientRequest, validate_extended_connect_response};
use tether_axum::{CloseCode, Config, Message, UpgradeError, WebSocket, WebSocketUpgrade};
use tether_tokio::{Closed, Role, Upgraded};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// Serves `app` with `axum::serve` (which enables HTTP/2 extended CONNECT itself).
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// What a server handler saw: the messages, then how the connection ended.
#[derive(Debug)]
struct Seen {
    subprotocol: Option<String>,
    messages: Vec<Message>,
    closed: Option<Closed>,
}

/// An echo handler that reports what it saw.
async fn echo_reporting(mut ws: WebSocket, report: mpsc::UnboundedSender<Seen>) {
    let subprotocol = ws.subprotocol().map(String::from);
    let mut messages = Vec::new();
    while let Some(Ok(message)) = ws.recv().await {
        messages.push(message.clone());
        if ws.send(message).await.is_err() {
            break;
        }
    }
    let _ = report.send(Seen {
        subprotocol,
        messages,
        closed: ws.closed(),
    });
}

/// The test router: `/ws` echoes and reports, `/proto` negotiates a subprotocol, `/small`
/// limits messages to 1 KiB; refusals and failures go to `failures`.
fn test_app(report: mpsc::UnboundedSender<Seen>, failures: mpsc::UnboundedSender<u16>) -> Router {
    let (r1, r2, r3) = (report.clone(), report.clone(), report);
    let (f1, f2) = (failures.clone(), failures);
    Router::new()
        .route(
            "/ws",
            any(move |upgrade: WebSocketUpgrade| async move {
                upgrade
                    .on_failed_upgrade(move |e| {
                        let status = match e {
                            UpgradeError::Rejected(r) => r.status,
                            _ => 0,
                        };
                        let _ = f1.send(status);
                    })
                    .on_upgrade(move |ws| echo_reporting(ws, r1))
            }),
        )
        .route(
            "/proto",
            any(move |upgrade: WebSocketUpgrade| async move {
                let upgrade = upgrade.protocols(["v2", "v1"]);
                assert_eq!(upgrade.selected_protocol(), Some("v2"));
                let requested: Vec<&str> = upgrade.requested_protocols().collect();
                assert_eq!(requested, ["v1", "v2"]);
                upgrade.on_upgrade(move |ws| echo_reporting(ws, r2))
            }),
        )
        .route(
            "/small",
            any(move |upgrade: WebSocketUpgrade| async move {
                let r: Response = upgrade
                    .max_message_size(1024)
                    .on_failed_upgrade(move |_| {
                        let _ = f2.send(0);
                    })
                    .on_upgrade(move |ws| echo_reporting(ws, r3));
                r
            }),
        )
}

fn payloads() -> Vec<Message> {
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    vec![
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary(big),
        Message::text("é ünïcödé ✓"),
        Message::text(""),
    ]
}

/// Sends every payload and checks each echo, then closes with 4001 "bye".
async fn exchange_and_close(ws: &mut WebSocket) -> Closed {
    for message in payloads() {
        bounded("send", ws.send(message.clone())).await.unwrap();
        let echo = bounded("recv", ws.recv()).await.unwrap().unwrap();
        assert_eq!(echo, message);
    }
    bounded("close", ws.close(CloseCode(4001), "bye"))
        .await
        .unwrap()
}

fn check_server_side(seen: &Seen) {
    assert_eq!(seen.messages, payloads());
    let closed = seen.closed.as_ref().expect("the server saw the end");
    assert_eq!(closed.code, CloseCode(4001));
    assert_eq!(closed.reason, "bye");
    assert!(closed.clean);
}

/// hyper's HTTP/2 client (prior knowledge) over `tcp`, once the server's SETTINGS enabled
/// extended CONNECT (RFC 8441 §3). hyper applies them in a task of its own that wakes nobody
/// here, so this checks after each turn of the runtime, a bounded number of times.
async fn http2_client(tcp: TcpStream) -> SendRequest<Empty<tether::Bytes>> {
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<tether::Bytes>>(TokioIo::new(tcp))
        .await
        .unwrap();
    let mut conn = Box::pin(conn);
    let mut turns = 0u32;
    while !conn.is_extended_connect_protocol_enabled() {
        turns += 1;
        assert!(
            turns < 1_000_000,
            "no SETTINGS_ENABLE_CONNECT_PROTOCOL from the server"
        );
        poll_fn(|cx| {
            if let Poll::Ready(r) = conn.as_mut().poll(cx) {
                panic!("HTTP/2 connection ended: {r:?}");
            }
            Poll::Ready(())
        })
        .await;
        tokio::task::yield_now().await;
    }
    tokio::spawn(conn);
    send
}

/// (a) RFC 8441: hyper's HTTP/2 client opens an extended CONNECT, gets 200, then tether runs
/// over the HTTP/2 stream in the client role.
#[tokio::test]
async fn http2_extended_connect_with_hyper_client() {
    let (report, mut reports) = mpsc::unbounded_channel();
    let (failures, _f) = mpsc::unbounded_channel();
    let addr = serve(test_app(report, failures)).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut send = http2_client(tcp).await;

    let request = http::Request::connect(format!("http://{addr}/proto"))
        .version(http::Version::HTTP_2)
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "v1, v2")
        .body(Empty::new())
        .unwrap();
    let mut response = bounded("CONNECT", send.send_request(request))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("sec-websocket-accept"));
    let negotiated = validate_extended_connect_response(
        response.status().as_u16(),
        response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
        &["v1", "v2"],
        &[] as &[&str],
    )
    .unwrap();
    assert_eq!(negotiated.subprotocol.as_deref(), Some("v2"));
    let upgraded = bounded("upgrade", hyper::upgrade::on(&mut response))
        .await
        .unwrap();
    let mut ws = tether_tokio::hyper::open(
        upgraded,
        Upgraded::new(Role::Client, Config::default()).with_negotiated(negotiated),
    )
    .unwrap();
    assert_eq!(ws.subprotocol(), Some("v2"));
    let closed = exchange_and_close(&mut ws).await;
    assert_eq!(closed.code, CloseCode(4001));
    assert!(closed.clean);
    let seen = bounded("server report", reports.recv()).await.unwrap();
    assert_eq!(seen.subprotocol.as_deref(), Some("v2"));
    check_server_side(&seen);
}

/// (b) tether's HTTP/1.1 client against the same router: echo and close, subprotocol
/// negotiation.
#[tokio::test]
async fn http1_echo_and_subprotocol() {
    let (report, mut reports) = mpsc::unbounded_channel();
    let (failures, _f) = mpsc::unbounded_channel();
    let addr = serve(test_app(report, failures)).await;

    let (mut ws, response) = tether_tokio::connect(&format!("ws://{addr}/ws"), Default::default())
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.subprotocol(), None);
    exchange_and_close(&mut ws).await;
    let seen = bounded("server report", reports.recv()).await.unwrap();
    assert_eq!(seen.subprotocol, None);
    check_server_side(&seen);

    let request = ClientRequest::new(&format!("ws://{addr}/proto"))
        .unwrap()
        .subprotocol("v1")
        .unwrap()
        .subprotocol("v2")
        .unwrap();
    let (mut ws, response) = tether_tokio::connect_request(request, Default::default())
        .await
        .unwrap();
    assert_eq!(response.subprotocol(), Some("v2"));
    assert_eq!(ws.subprotocol(), Some("v2"));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    let seen = bounded("server report", reports.recv()).await.unwrap();
    assert_eq!(seen.subprotocol.as_deref(), Some("v2"));
}

/// Writes `request` on a fresh connection and reads one response: the head, then a body of
/// its `Content-Length`.
async fn http_exchange(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    bounded("response", async {
        loop {
            if let Some(i) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..i]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if out.len() >= i + 4 + length {
                    return;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed mid-response: {out:?}");
            out.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    String::from_utf8(out).unwrap()
}

/// (b) A request without `Sec-WebSocket-Key` is refused with 400 (the reason in the body) and
/// `on_failed_upgrade` hears of it.
#[tokio::test]
async fn invalid_handshake_is_refused_and_reported() {
    let (report, _r) = mpsc::unbounded_channel();
    let (failures, mut failed) = mpsc::unbounded_channel();
    let addr = serve(test_app(report, failures)).await;
    let response = http_exchange(
        addr,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.ends_with("missing Sec-WebSocket-Key header\n"),
        "{response}"
    );
    assert_eq!(bounded("on_failed_upgrade", failed.recv()).await, Some(400));

    // A wrong version: 426 with the version this server speaks.
    let response = http_exchange(
        addr,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13\r\n"),
        "{response}"
    );
    assert_eq!(bounded("on_failed_upgrade", failed.recv()).await, Some(426));
}

/// (b) `max_message_size` is enforced: a larger message closes the connection with 1009.
#[tokio::test]
async fn max_message_size_closes_with_1009() {
    let (report, mut reports) = mpsc::unbounded_channel();
    let (failures, _f) = mpsc::unbounded_channel();
    let addr = serve(test_app(report, failures)).await;
    let (mut ws, _) = tether_tokio::connect(&format!("ws://{addr}/small"), Default::default())
        .await
        .unwrap();
    ws.send_text("fits").await.unwrap();
    assert_eq!(
        bounded("echo", ws.recv()).await.unwrap().unwrap(),
        Message::text("fits")
    );
    ws.send_binary(vec![7u8; 2000]).await.unwrap();
    let end = bounded("end", ws.recv()).await;
    assert!(!matches!(end, Some(Ok(_))), "{end:?}");
    let closed = ws.closed().expect("ended");
    assert_eq!(closed.code, CloseCode(1009));
    let seen = bounded("server report", reports.recv()).await.unwrap();
    assert_eq!(seen.messages, [Message::text("fits")]);
    assert_eq!(seen.closed.unwrap().code, CloseCode(1009));
}

/// A client's masked text frame.
fn masked_text(text: &str) -> Vec<u8> {
    let mask = [9, 8, 7, 6];
    let mut out = tether::bytes::BytesMut::new();
    tether::frame::FrameHeader {
        fin: true,
        rsv: 0,
        opcode: tether::frame::OpCode::Text,
        mask: Some(mask),
        payload_len: text.len() as u64,
    }
    .encode(&mut out);
    out.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out.to_vec()
}

/// (c) The first frame travels in the same write as the request head, so hyper reads it
/// into its buffer with the head: the server must still get it (and echo it), then the rest.
#[tokio::test]
async fn a_frame_pipelined_behind_the_request_head_is_not_lost() {
    let (report, mut reports) = mpsc::unbounded_channel();
    let (failures, _f) = mpsc::unbounded_channel();
    let addr = serve(test_app(report, failures)).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut first = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    first.extend(masked_text("pipelined"));
    first.extend(masked_text("second"));
    tcp.write_all(&first).await.unwrap();

    // Read the 101 head; whatever came behind it is the client's leftover.
    let mut buf = Vec::new();
    let head_end = bounded("101", async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the 101: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return i + 4;
            }
        }
    })
    .await;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{head}"
    );
    let mut ws = tether_tokio::open_upgraded(
        tcp,
        &buf[head_end..],
        Upgraded::new(Role::Client, Config::default()),
    )
    .unwrap();
    for expected in ["pipelined", "second"] {
        let echo = bounded("echo", ws.recv()).await.unwrap().unwrap();
        assert_eq!(echo, Message::text(expected));
    }
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    let seen = bounded("server report", reports.recv()).await.unwrap();
    assert_eq!(
        seen.messages,
        [Message::text("pipelined"), Message::text("second")]
    );
}

/// The example's router (`echo_app`) over real TCP: the page, the health check, and echoing
/// WebSockets over HTTP/1.1 and HTTP/2.
#[tokio::test]
async fn the_example_router_serves_its_three_routes() {
    let addr = serve(tether_axum::echo_app()).await;
    check_example_routes(addr).await;
}

async fn check_example_routes(addr: SocketAddr) {
    let page = http_exchange(
        addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{page}"
    );
    assert!(page.contains("new WebSocket(url)") && page.contains("\"/ws\""));
    let health = http_exchange(
        addr,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // HTTP/1.1 echo.
    let (mut ws, _) = tether_tokio::connect(&format!("ws://{addr}/ws"), Default::default())
        .await
        .unwrap();
    exchange_and_close(&mut ws).await;

    // HTTP/2 echo.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut send = http2_client(tcp).await;
    let request = http::Request::connect(format!("http://{addr}/ws"))
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .header("sec-websocket-version", "13")
        .body(Empty::new())
        .unwrap();
    let mut response = bounded("CONNECT", send.send_request(request))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let mut ws =
        tether_tokio::hyper::open(upgraded, Upgraded::new(Role::Client, Config::default()))
            .unwrap();
    exchange_and_close(&mut ws).await;

    // A plain GET of the WebSocket route is refused with 426.
    let plain = http_exchange(
        addr,
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");
}

/// The built `axum_server` example itself: it prints `listening on ADDR` once bound and
/// serves the routes. Run without `cargo build -p tether-axum --examples` first, the test says
/// so and passes, except under CI=true where the binary must be there.
#[tokio::test]
async fn the_example_binary_serves() {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    // `cargo build --examples` links it under its own name (scripts/test.sh does, before the
    // tests); `cargo test --all-targets` builds examples as test harnesses, not this binary.
    let binary = dir
        .join("examples")
        .join(format!("axum_server{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} was not built (cargo build -p tether-axum --examples --all-features)",
            binary.display()
        );
        eprintln!(
            "SKIPPED: {} was not built; cargo build -p tether-axum --examples first",
            binary.display()
        );
        return;
    }
    let mut child = tokio::process::Command::new(&binary)
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout);
    let mut line = String::new();
    bounded(
        "listening line",
        tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line),
    )
    .await
    .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    check_example_routes(addr).await;
    child.kill().await.unwrap();
}

/// An HTTP/2 extended CONNECT that breaks a rule (no `Sec-WebSocket-Version`) is refused with
/// 400 over HTTP/2, and `on_failed_upgrade` hears of it.
#[tokio::test]
async fn http2_refusal_and_failure_callback() {
    let (report, _r) = mpsc::unbounded_channel();
    let (failures, mut failed) = mpsc::unbounded_channel();
    let addr = serve(test_app(report, failures)).await;
    let mut send = http2_client(TcpStream::connect(addr).await.unwrap()).await;
    let request = http::Request::connect(format!("http://{addr}/ws"))
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .body(Empty::new())
        .unwrap();
    let response = bounded("CONNECT", send.send_request(request))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    assert_eq!(bounded("on_failed_upgrade", failed.recv()).await, Some(400));
}

/// permessage-deflate through the extractor: `config` with `Config::deflate` answers the
/// client's offer, and compressed messages echo intact.
#[cfg(feature = "deflate")]
#[tokio::test]
async fn permessage_deflate_through_the_extractor() {
    fn deflating() -> Config {
        let mut config = Config::default();
        config.deflate = Some(Default::default());
        config
    }
    let app = Router::new().route(
        "/ws",
        any(|upgrade: WebSocketUpgrade| async move {
            upgrade.config(deflating()).on_upgrade(|mut ws| async move {
                while let Some(Ok(m)) = ws.recv().await {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
            })
        }),
    );
    let addr = serve(app).await;
    let (mut ws, response) = tether_tokio::connect(
        &format!("ws://{addr}/ws"),
        tether_tokio::ClientConfig::new(deflating()),
    )
    .await
    .unwrap();
    assert!(
        response.extensions()[0].starts_with("permessage-deflate"),
        "{:?}",
        response.extensions()
    );
    let text = "a compressible line of text\n".repeat(5000);
    ws.send_text(&text).await.unwrap();
    assert_eq!(
        bounded("echo", ws.recv()).await.unwrap().unwrap(),
        Message::text(text.as_str())
    );
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

/// `Option<WebSocketUpgrade>`: one route serves a page to a plain GET and a WebSocket to an
/// upgrade.
#[tokio::test]
async fn optional_extractor_serves_a_page_and_a_websocket_on_one_route() {
    let app = Router::new().route(
        "/",
        any(|upgrade: Option<WebSocketUpgrade>| async move {
            match upgrade {
                Some(upgrade) => upgrade.on_upgrade(|mut ws| async move {
                    let _ = ws.send_text("hi from ws").await;
                    let _ = ws.recv().await;
                }),
                None => "plain page".into_response(),
            }
        }),
    );
    let addr = serve(app).await;
    let page = http_exchange(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.ends_with("plain page"), "{page}");
    let (mut ws, _) = tether_tokio::connect(&format!("ws://{addr}/"), Default::default())
        .await
        .unwrap();
    assert_eq!(
        bounded("greeting", ws.recv()).await.unwrap().unwrap(),
        Message::text("hi from ws")
    );
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}
