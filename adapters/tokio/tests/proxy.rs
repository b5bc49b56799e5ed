//! Clients through HTTP CONNECT proxies: in-process fake proxies for every edge (a tunnel with
//! credentials, refusals, garbage, an oversized head, a proxy that closes or stays silent,
//! bytes right behind the answer), the reconnecting client through a proxy, and errors that
//! name the address. Real sockets on 127.0.0.1 port 0; every wait is bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether::handshake::ServerPolicy;
use tether::handshake::proxy::ProxyError;
use tether::reconnect::{ReconnectConfig, SessionConfig};
use tether::{CloseCode, Config, Message};
use tether_tokio::tether_io::ProxyFailure;
use tether_tokio::{ClientConfig, Error, Proxy, ReconnectEvent, Server, ServerConfig, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// An echo server on a free port.
async fn echo_server() -> SocketAddr {
    let server = Server::bind(
        "127.0.0.1:0",
        ServerConfig::new(Config::default(), ServerPolicy::new()),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok(connecting) = server.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = connecting.handshake().await {
                    while let Some(Ok(m)) = ws.recv().await {
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// What a fake proxy does once it has read a CONNECT head.
#[derive(Clone)]
enum Behaviour {
    /// Answers 200, then relays to the requested target.
    Forward,
    /// Writes these bytes, then closes.
    Answer(&'static [u8]),
    /// Writes these bytes and keeps the connection open without reading.
    AnswerAndHold(Vec<u8>),
}

/// A fake proxy on a free port; every CONNECT head it read is recorded.
async fn fake_proxy(behaviour: Behaviour) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let behaviour = behaviour.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8(head).unwrap();
                let target = head.split(' ').nth(1).unwrap().to_owned();
                seen.lock().unwrap().push(head);
                match behaviour {
                    Behaviour::Forward => {
                        let mut upstream = TcpStream::connect(&target).await.unwrap();
                        tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                            .await
                            .unwrap();
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
                    }
                    Behaviour::Answer(bytes) => {
                        let _ = tcp.write_all(bytes).await;
                    }
                    Behaviour::AnswerAndHold(bytes) => {
                        let _ = tcp.write_all(&bytes).await;
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    });
    (addr, heads)
}

fn through(proxy: &str) -> ClientConfig {
    ClientConfig::default().proxy(Proxy::all(proxy).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_flow_through_a_tunnel_with_credentials() {
    let server = echo_server().await;
    let (proxy, heads) = fake_proxy(Behaviour::Forward).await;
    let config = through(&format!("http://user:s%40cret@{proxy}"));
    let (mut ws, _) = bounded(
        "connect",
        tether_tokio::connect(&format!("ws://{server}/"), config),
    )
    .await
    .expect("connect through the proxy");
    ws.send_text("through the tunnel").await.unwrap();
    let echoed = bounded("echo", ws.recv()).await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("through the tunnel"));
    let closed = bounded("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(closed.clean);
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].starts_with(&format!("CONNECT {server} HTTP/1.1\r\n")),
        "{}",
        heads[0]
    );
    // base64("user:s@cret")
    assert!(
        heads[0].contains("\r\nProxy-Authorization: Basic dXNlcjpzQGNyZXQ=\r\n"),
        "{}",
        heads[0]
    );
}

/// Connects to a server that is not there through a proxy that behaves as `behaviour`.
async fn refused(behaviour: Behaviour) -> (Error, SocketAddr) {
    let (proxy, _) = fake_proxy(behaviour).await;
    let err = bounded(
        "connect",
        tether_tokio::connect("ws://target.invalid:9000/", through(&proxy.to_string())),
    )
    .await
    .map(|_| ())
    .expect_err("the proxy refuses");
    (err, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_names_the_proxy_the_target_and_the_status() {
    let (err, proxy) = refused(Behaviour::Answer(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    ))
    .await;
    let text = err.to_string();
    match err {
        Error::Proxy(failure) => {
            let ProxyFailure {
                proxy: p,
                target,
                error,
                ..
            } = *failure;
            assert_eq!(p, proxy.to_string());
            assert_eq!(target, "target.invalid:9000");
            assert_eq!(
                error,
                ProxyError::Refused {
                    status: 403,
                    reason: "Forbidden".into()
                }
            );
        }
        other => panic!("expected a proxy refusal, got {other:?}"),
    }
    assert_eq!(
        text,
        format!(
            "proxy {proxy} did not open a tunnel to target.invalid:9000: refused with 403 Forbidden"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_407_asks_for_credentials() {
    let (err, _) = refused(Behaviour::Answer(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n",
    ))
    .await;
    assert!(
        matches!(&err, Error::Proxy(f) if f.error.http_status() == Some(407)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closing_and_oversized_answers_are_typed() {
    let (err, _) = refused(Behaviour::Answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")).await;
    assert!(
        matches!(
            &err,
            Error::Proxy(f) if matches!(f.error, ProxyError::InvalidResponse)
        ),
        "{err:?}"
    );
    let (err, _) = refused(Behaviour::Answer(b"")).await;
    assert!(
        matches!(
            &err,
            Error::Proxy(f) if matches!(f.error, ProxyError::Closed)
        ),
        "{err:?}"
    );
    let (err, _) = refused(Behaviour::Answer(b"HTTP/1.1 200 OK\r\nX: y")).await;
    assert!(
        matches!(
            &err,
            Error::Proxy(f) if matches!(f.error, ProxyError::Closed)
        ),
        "{err:?}"
    );
    // A head that never ends: refused at the bound, however much more the proxy sends.
    let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
    while endless.len() < 64 * 1024 {
        endless.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let (err, _) = refused(Behaviour::AnswerAndHold(endless)).await;
    assert!(
        matches!(
            &err,
            Error::Proxy(f) if matches!(f.error, ProxyError::TooLarge { limit: 8192 })
        ),
        "{err:?}"
    );
}

/// A proxy that never answers: the connect timeout covers the CONNECT exchange, and the error
/// names the target and the time waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_proxy_is_bounded_by_the_connect_timeout() {
    let (proxy, _) = fake_proxy(Behaviour::AnswerAndHold(Vec::new())).await;
    let config = through(&proxy.to_string()).connect_timeout(Duration::from_millis(200));
    let err = bounded(
        "connect",
        tether_tokio::connect("ws://target.invalid:9000/", config),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    match &err {
        Error::ConnectTimeout { addr, waited } => {
            assert_eq!(addr, "target.invalid:9000");
            assert_eq!(*waited, Duration::from_millis(200));
        }
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "connecting to target.invalid:9000 timed out after 200ms"
    );
}

/// Bytes the proxy sent right behind its 200 are the tunnel's first bytes, not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_behind_the_answer_belong_to_the_tunnel() {
    let (proxy, _) = fake_proxy(Behaviour::AnswerAndHold(
        b"HTTP/1.1 200 Connection established\r\n\r\nearly bytes".to_vec(),
    ))
    .await;
    let server = tether_tokio::tether_io::ProxyServer::parse(&proxy.to_string()).unwrap();
    let tcp = TcpStream::connect(proxy).await.unwrap();
    let mut tunnel = bounded(
        "tunnel",
        tether_tokio::tether_io::tunnel(TokioIo(tcp), &server, "example.com", 80),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4];
    while got.len() < 11 {
        let n = bounded(
            "read",
            std::future::poll_fn(|cx| {
                tether_tokio::tether_io::Transport::poll_read(&mut tunnel, cx, &mut buf)
            }),
        )
        .await
        .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"early bytes");
}

/// A refused connection names the address it tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_names_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = bounded(
        "connect",
        tether_tokio::connect(&format!("ws://{addr}/"), ClientConfig::default()),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert!(
        matches!(&err, Error::Connect { addr: a, .. } if *a == addr.to_string()),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("connecting to {addr} failed: ")),
        "{err}"
    );
    // Through a proxy that is not there: the proxy's address.
    let err = bounded(
        "connect",
        tether_tokio::connect("ws://example.com/", through(&addr.to_string())),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert!(
        matches!(&err, Error::Connect { addr: a, .. } if *a == addr.to_string()),
        "{err:?}"
    );
}

/// The reconnecting client opens every connection through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconnecting_client_uses_the_proxy() {
    let server = echo_server().await;
    let (proxy, heads) = fake_proxy(Behaviour::Forward).await;
    let mut client = tether_tokio::reconnecting(
        &format!("ws://{server}/"),
        through(&proxy.to_string()),
        ReconnectConfig::default(),
        SessionConfig::default(),
    )
    .unwrap();
    client.send_text("again").unwrap();
    let echoed = bounded("echo", async {
        loop {
            match client.recv().await {
                Some(ReconnectEvent::Message(m)) => break m,
                Some(_) => {}
                None => panic!("the client ended"),
            }
        }
    })
    .await;
    assert_eq!(echoed, Message::text("again"));
    assert_eq!(heads.lock().unwrap().len(), 1);
}
