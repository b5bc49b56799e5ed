//! `tether_tokio::hyper` under a plain hyper HTTP/1.1 server, whose upgraded stream is
//! `TokioIo<TcpStream>`: the stream is taken back from hyper and the bytes hyper read past
//! the request head (a frame the client sent in the same write) reach the connection first.
//! (`axum::serve` detects HTTP/1 or HTTP/2 first and hands out a stream type of its own,
//! which runs through `Upgraded` itself: the e2e tests cover that path.)

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tether::handshake::ServerPolicy;
use tether::handshake::http::accept_parts;
use tether_tokio::{CloseCode, Config, Message, Role, Upgraded};
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

/// A hyper HTTP/1.1 server that answers with `accept_parts` and echoes over
/// `tether_tokio::hyper::open`; each server connection's messages are reported.
async fn hyper_server(report: mpsc::UnboundedSender<Vec<Message>>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let report = report.clone();
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let report = report.clone();
                async move {
                    let (mut parts, _body) = request.into_parts();
                    let accepted =
                        accept_parts(&parts, None, &ServerPolicy::new(), &Config::default())
                            .expect("a valid handshake");
                    let on_upgrade = parts
                        .extensions
                        .remove::<hyper::upgrade::OnUpgrade>()
                        .unwrap();
                    let settings = Upgraded::new(Role::Server, Config::default())
                        .with_negotiated(accepted.negotiated);
                    tokio::spawn(async move {
                        let upgraded = on_upgrade.await.unwrap();
                        let mut ws = tether_tokio::hyper::open(upgraded, settings).unwrap();
                        let mut seen = Vec::new();
                        while let Some(Ok(m)) = ws.recv().await {
                            seen.push(m.clone());
                            if ws.send(m).await.is_err() {
                                break;
                            }
                        }
                        let _ = report.send(seen);
                    });
                    Ok::<_, Infallible>(accepted.response.map(|()| Empty::<tether::Bytes>::new()))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });
    addr
}

#[tokio::test]
async fn frames_read_with_the_head_reach_the_connection() {
    let (report, mut reports) = mpsc::unbounded_channel();
    let addr = hyper_server(report).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut first = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec();
    first.extend(masked_text("pipelined"));
    first.extend(masked_text("second"));
    tcp.write_all(&first).await.unwrap();

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
    assert!(buf.starts_with(b"HTTP/1.1 101"), "{buf:?}");
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
    ws.send_text("third").await.unwrap();
    assert_eq!(
        bounded("echo", ws.recv()).await.unwrap().unwrap(),
        Message::text("third")
    );
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    let seen = bounded("server report", reports.recv()).await.unwrap();
    assert_eq!(
        seen,
        [
            Message::text("pipelined"),
            Message::text("second"),
            Message::text("third")
        ]
    );
}
