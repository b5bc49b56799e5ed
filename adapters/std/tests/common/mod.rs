//! Helpers shared by the adapter tests: servers on 127.0.0.1 port 0 and a raw TCP peer.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use tether_std::tether::Heartbeat;
use tether_std::tether::handshake::{ClientRequest, accept_key};
use tether_std::{ClientConfig, Config, Server, ServerConfig, WebSocket, connect, connect_request};

/// The longest any single wait in a test may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(10);

pub fn big_config() -> Config {
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    config
}

pub fn heartbeat_config(interval_ms: u64, timeout_ms: u64) -> Config {
    let mut config = big_config();
    config.heartbeat = Some(Heartbeat::new(
        Duration::from_millis(interval_ms),
        Duration::from_millis(timeout_ms),
    ));
    config
}

/// An echo server in a background thread; returns its address.
pub fn echo_server(config: ServerConfig) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0", config).expect("bind");
    let addr = server.local_addr().expect("addr");
    thread::spawn(move || {
        let _ = server.serve(|mut ws| {
            while let Some(Ok(message)) = ws.recv() {
                if ws.send(message).is_err() {
                    break;
                }
            }
        });
    });
    addr
}

/// A listener with `config` whose connections each get a thread that runs the opening
/// handshake and then `handler`, as `Server::serve` does; the server stays shared so a test
/// can watch its slots.
pub fn shared_server<F>(config: ServerConfig, handler: F) -> (Arc<Server>, SocketAddr)
where
    F: Fn(WebSocket) + Send + Sync + 'static,
{
    let server = Arc::new(Server::bind("127.0.0.1:0", config).expect("bind"));
    let addr = server.local_addr().expect("addr");
    let acceptor = Arc::clone(&server);
    let handler = Arc::new(handler);
    thread::spawn(move || {
        while let Ok(connecting) = acceptor.accept() {
            let handler = Arc::clone(&handler);
            thread::spawn(move || {
                if let Ok(ws) = connecting.handshake() {
                    handler(ws);
                }
            });
        }
    });
    (server, addr)
}

/// Waits (bounded) until the server's slot count is `n`: a slot is released when the
/// connection's driver lets go of its transport, a moment after the handles see the end.
pub fn settle(server: &Server, n: usize) {
    let deadline = Instant::now() + LIMIT;
    while server.active_connections() != n {
        assert!(
            Instant::now() < deadline,
            "slots never settled at {n} (now {})",
            server.active_connections()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

pub fn client(addr: SocketAddr) -> WebSocket {
    connect(&format!("ws://{addr}/"), ClientConfig::new(big_config()))
        .expect("connect")
        .0
}

pub fn client_with(
    addr: SocketAddr,
    request: impl FnOnce(ClientRequest) -> ClientRequest,
) -> WebSocket {
    let request = request(ClientRequest::new(&format!("ws://{addr}/")).expect("url"));
    connect_request(request, ClientConfig::new(big_config()))
        .expect("connect")
        .0
}

/// Accepts one TCP connection, answers its opening request with a valid 101 by hand, and
/// returns the raw socket: a peer that does nothing unless the test makes it.
pub fn raw_upgrade(listener: &TcpListener) -> TcpStream {
    let (mut sock, _) = listener.accept().expect("accept");
    sock.set_read_timeout(Some(LIMIT)).expect("timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            sock.read(&mut byte).expect("read request"),
            1,
            "request cut short"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("utf-8 head");
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a key");
    write!(
        sock,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
    .expect("write 101");
    sock
}

/// Runs `f` on another thread and fails the test if it takes longer than [`LIMIT`].
pub fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LIMIT * 2).expect("the step took too long")
}

/// Reads one frame sent by a client (masked) from a raw peer: its first byte (FIN, RSV,
/// opcode) and its unmasked payload.
pub fn read_client_frame(sock: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    sock.read_exact(&mut head).expect("frame header");
    assert!(head[1] & 0x80 != 0, "a client's frame is masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            sock.read_exact(&mut n).expect("length");
            u64::from(u16::from_be_bytes(n))
        }
        127 => {
            let mut n = [0u8; 8];
            sock.read_exact(&mut n).expect("length");
            u64::from_be_bytes(n)
        }
        n => u64::from(n),
    };
    let mut key = [0u8; 4];
    sock.read_exact(&mut key).expect("masking key");
    let mut payload = vec![0u8; usize::try_from(len).expect("length")];
    sock.read_exact(&mut payload).expect("payload");
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
    (head[0], payload)
}
