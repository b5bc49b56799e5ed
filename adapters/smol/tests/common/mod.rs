//! Helpers shared by the adapter tests: a bounded runner, servers on 127.0.0.1 port 0 and a
//! raw TCP peer that speaks just enough HTTP to open a connection.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use smol::channel::{Receiver, unbounded};
use tether::handshake::accept_key;
use tether_smol::{Server, ServerConfig, WebSocket};

/// Every test's deadline: a hang fails the test instead of blocking the run.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Runs `fut` to completion or panics after [`LIMIT`].
pub fn run<T>(fut: impl Future<Output = T>) -> T {
    smol::block_on(within(LIMIT, fut))
}

/// `fut`, or a panic after `limit`.
pub async fn within<T>(limit: Duration, fut: impl Future<Output = T>) -> T {
    fut.or(async {
        async_io::Timer::after(limit).await;
        panic!("timed out after {limit:?}");
    })
    .await
}

/// A server with a limit of `max` connections whose connections arrive on the returned
/// channel once their opening handshake succeeded (each handshake runs in a task of its own;
/// failed ones are dropped).
pub async fn server(
    config: ServerConfig,
    max: usize,
) -> (Arc<Server>, SocketAddr, Receiver<WebSocket>) {
    let server = Arc::new(
        Server::bind("127.0.0.1:0", config.max_connections(max))
            .await
            .expect("bind"),
    );
    let addr = server.local_addr().expect("local addr");
    let (tx, rx) = unbounded();
    let acceptor = server.clone();
    smol::spawn(async move {
        while let Ok(connecting) = acceptor.accept().await {
            if tx.is_closed() {
                break;
            }
            let tx = tx.clone();
            smol::spawn(async move {
                if let Ok(ws) = connecting.handshake().await {
                    let _ = tx.send(ws).await;
                }
            })
            .detach();
        }
    })
    .detach();
    (server, addr, rx)
}

/// A server that echoes every message of every connection.
pub async fn echo_server(config: ServerConfig) -> SocketAddr {
    let (_server, addr, rx) = server(config, usize::MAX).await;
    smol::spawn(async move {
        let _server = _server;
        while let Ok(mut ws) = rx.recv().await {
            smol::spawn(async move {
                while let Some(Ok(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            })
            .detach();
        }
    })
    .detach();
    addr
}

/// Reads an HTTP head (up to the blank line).
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read head");
        assert_eq!(n, 1, "stream ended inside the head");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("head is UTF-8")
}

/// A raw listener that accepts one connection and answers its opening request with a valid
/// 101; the returned stream is then the test's to misuse.
pub async fn raw_peer() -> (SocketAddr, impl Future<Output = TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let accepted = async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let head = read_head(&mut stream).await;
        let key = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .expect("a Sec-WebSocket-Key");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key)
        );
        stream
            .write_all(response.as_bytes())
            .await
            .expect("write 101");
        stream
    };
    (addr, accepted)
}

/// A raw client that completes an opening handshake with `addr`.
pub async fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
    stream
}
