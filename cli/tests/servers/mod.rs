//! The gallery: servers on 127.0.0.1 port 0, each broken in one way (and a good one).

#![allow(dead_code)] // each test file uses some of them

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether::handshake::accept_key;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Serves every connection to a fresh listener with `handle`, in its own task.
pub async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(handle(tcp));
        }
    });
    addr
}

/// Reads an HTTP request head (up to its empty line), or only its first byte when that
/// cannot start an HTTP request (a TLS hello), as a server that answers 400 at once.
pub async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
        if !head[0].is_ascii_uppercase() {
            break;
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The value of a header in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// tether's own echo server: the good case.
pub async fn echo_server() -> SocketAddr {
    serve(|tcp| async move {
        let Ok(mut ws) = tether_tokio::accept(tcp, tether_tokio::ServerConfig::default()).await
        else {
            return;
        };
        while let Some(Ok(m)) = ws.recv().await {
            if ws.send(m).await.is_err() {
                break;
            }
        }
    })
    .await
}

/// A port where nothing listens (a listener bound, then closed).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// A listener that never accepts, with a zero backlog already filled: Linux drops further
/// SYNs while the accept queue is full, so a new connect gets no answer. The returned
/// streams keep the queue full.
pub async fn full_backlog() -> (SocketAddr, (TcpListener, Vec<TcpStream>)) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = socket.listen(0).unwrap();
    let mut held = Vec::new();
    // Fill the queue: connects complete until it is full, then hang (bounded here).
    for _ in 0..4 {
        let connect = TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(300), connect).await {
            Ok(Ok(tcp)) => held.push(tcp),
            _ => break,
        }
    }
    (addr, (listener, held))
}

/// Accepts connections and never answers: the handshake times out.
pub async fn silent_server() -> SocketAddr {
    serve(|mut tcp| async move {
        let mut sink = [0u8; 1024];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await
}

/// Answers every request with `head` (status line and fields, each ending in CRLF) and
/// `body`, then closes.
pub async fn http_server(head: &'static str, body: &'static str) -> SocketAddr {
    serve(move |mut tcp| async move {
        read_head(&mut tcp).await;
        let response = format!("{head}Content-Length: {}\r\n\r\n{body}", body.len());
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.shutdown().await;
        // Drain until the client hangs up, so the close is graceful.
        let mut sink = [0u8; 1024];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await
}

/// How a raw server answers the upgrade.
#[derive(Clone, Copy)]
pub enum Upgrade {
    /// A correct 101.
    Valid,
    /// A 101 whose Sec-WebSocket-Accept is for another key.
    WrongAccept,
    /// A correct 101 that selects this subprotocol.
    Subprotocol(&'static str),
    /// A correct 101 that turns on this extension.
    Extension(&'static str),
}

/// What a raw server does once it has answered 101.
#[derive(Clone, Copy)]
pub enum After {
    /// Reads and discards (no Pongs).
    Silence,
    /// Sends these bytes, then reads and discards.
    Send(&'static [u8]),
    /// Sends a Close with this code and reason, then reads and discards.
    Close(u16, &'static str),
    /// Closes the TCP connection at once.
    Drop,
    /// Nothing more happens: stays open (the client gives up first).
    Nothing,
}

/// A hand-written server: answers the upgrade as told, then behaves as told.
pub async fn upgrade_server(upgrade: Upgrade, after: After) -> SocketAddr {
    serve(move |mut tcp| async move {
        let head = read_head(&mut tcp).await;
        let key = header(&head, "sec-websocket-key").unwrap_or_default();
        let (accept, extra) = match upgrade {
            Upgrade::Valid => (accept_key(key), String::new()),
            Upgrade::WrongAccept => (accept_key("not the client's key"), String::new()),
            Upgrade::Subprotocol(p) => {
                (accept_key(key), format!("Sec-WebSocket-Protocol: {p}\r\n"))
            }
            Upgrade::Extension(e) => (
                accept_key(key),
                format!("Sec-WebSocket-Extensions: {e}\r\n"),
            ),
        };
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
        );
        let _ = tcp.write_all(response.as_bytes()).await;
        match after {
            After::Drop => return,
            After::Send(bytes) => {
                let _ = tcp.write_all(bytes).await;
            }
            After::Close(code, reason) => {
                let mut frame = vec![0x88, (2 + reason.len()) as u8];
                frame.extend_from_slice(&code.to_be_bytes());
                frame.extend_from_slice(reason.as_bytes());
                let _ = tcp.write_all(&frame).await;
            }
            After::Silence | After::Nothing => {}
        }
        let mut sink = [0u8; 1024];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await
}

/// Which certificate a TLS server presents.
#[derive(Clone, Copy)]
pub enum Cert {
    /// Self-signed for 127.0.0.1 and localhost, valid now.
    SelfSigned,
    /// Self-signed for 127.0.0.1 and localhost, valid only during the year 2000.
    Expired,
    /// Self-signed for example.org only.
    OtherName,
}

/// tether's echo server behind TLS (the engine's rustls); returns its address and its
/// certificate in PEM.
pub async fn tls_echo_server(cert: Cert) -> (SocketAddr, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names = match cert {
        Cert::OtherName => vec!["example.org".to_owned()],
        _ => vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
    };
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    if let Cert::Expired = cert {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let certificate = params.self_signed(&key).unwrap();
    let pem = certificate.pem();
    let der: CertificateDer<'static> = certificate.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der], private)
    .unwrap();
    let config = Arc::new(config);
    let addr = serve(move |tcp| {
        let config = Arc::clone(&config);
        async move {
            let accepted =
                tether_tokio::accept_tls(tcp, config, tether_tokio::ServerConfig::default());
            let Ok(mut ws) = accepted.await else {
                return;
            };
            while let Some(Ok(m)) = ws.recv().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        }
    })
    .await;
    (addr, pem)
}

/// Writes `pem` to a file of its own under the temporary directory.
pub fn temp_pem(pem: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "tether-doctor-{}-{}.pem",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, pem).unwrap();
    path
}

/// A minimal HTTP CONNECT proxy that only tunnels to loopback addresses.
pub async fn connect_proxy() -> SocketAddr {
    serve(|mut tcp| async move {
        let head = read_head(&mut tcp).await;
        let target = head
            .split_whitespace()
            .nth(1)
            .and_then(|t| t.parse::<SocketAddr>().ok())
            .filter(|a| a.ip().is_loopback());
        let Some(target) = target else {
            let _ = tcp
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
            return;
        };
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            let _ = tcp
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await;
            return;
        };
        let _ = tcp
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await;
        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
    })
    .await
}

/// A TCP forwarder to `target` that cuts every forwarded connection after `life`: a path
/// that flaps.
pub async fn flaky_link(target: SocketAddr, life: Duration) -> SocketAddr {
    serve(move |mut tcp| async move {
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            return;
        };
        let _ = tokio::time::timeout(life, tokio::io::copy_bidirectional(&mut tcp, &mut upstream))
            .await;
        // Dropping both streams ends the connection without a Close frame.
    })
    .await
}
