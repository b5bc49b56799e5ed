//! What a server offers besides WebSockets: the asynchronous request hook (authentication,
//! and plain HTTP such as a health check on the same port), the opening request kept on the
//! accepted connection, and the graceful shutdown.

use std::future::Future;
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tether::handshake::{ClientRequest, Reject};
use tether::{CloseCode, Config, Message};
use tether_io::{ClientConfig, Error, ServerConfig};

use crate::LIMIT;
use crate::harness::Adapter;
use crate::raw::{RawPeer, request};
use crate::setup::{Serving, spawn};

/// A future that stays pending until the test opens it from another thread: a hook that
/// waits for something outside (an identity provider, a database).
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<(bool, Option<Waker>)>>);

impl Gate {
    fn open(&self) {
        let waker = {
            let mut state = self.0.lock().unwrap();
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn is_waited_on(&self) -> bool {
        self.0.lock().unwrap().1.is_some()
    }
}

impl Future for Gate {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.lock().unwrap();
        if state.0 {
            Poll::Ready(())
        } else {
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Sends `head` on a fresh connection and returns the response's status and body.
fn plain_request(addr: std::net::SocketAddr, head: &str) -> (u16, Vec<u8>) {
    let mut peer = RawPeer::client(TcpStream::connect(addr).expect("connect"));
    peer.write_all(head.as_bytes());
    let response = peer.read_head();
    let len = response
        .header("content-length")
        .map_or(0, |n| n.parse().expect("a numeric Content-Length"));
    (response.status(), peer.read_bytes(len))
}

/// The request hook sees plain HTTP requests and answers any of them (a health check's 200,
/// or leaves the core's 426), gates WebSocket requests asynchronously (a 401 with its
/// header; an accepted request waits for the hook while the handshake's timers run) and the
/// accepted connection keeps its request: path, query and header fields.
pub fn request_hook_answers_http_and_gates_websockets<A: Adapter>() {
    let gate = Gate::default();
    let hook_gate = gate.clone();
    let config = ServerConfig::default()
        .keep_request(true)
        .on_request(move |req| {
            let health = req.path() == "/health";
            let websocket = req.is_websocket();
            let token = req.header("authorization").map(str::to_owned);
            let gate = hook_gate.clone();
            async move {
                if health {
                    return Err(Reject::new(200)
                        .header("Content-Type", "text/plain")
                        .body("ok\n"));
                }
                if !websocket {
                    // Not ours: the core's answer (426 for a GET without upgrade).
                    return Ok(());
                }
                match token.as_deref() {
                    Some("Bearer good") => {
                        gate.await;
                        Ok(())
                    }
                    _ => Err(Reject::new(401).header("WWW-Authenticate", "Bearer")),
                }
            }
        });
    let serving = Serving::start::<A>(config);
    let addr = serving.addr;

    let (status, body) = plain_request(
        addr,
        "GET /health HTTP/1.1\r\nHost: localhost\r\nUser-Agent: probe\r\n\r\n",
    );
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"ok\n"[..]),
        "{}",
        A::NAME
    );
    // HTTP/1.0, as some load balancers probe, is answered too.
    let (status, _) = plain_request(addr, "GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200, "{}", A::NAME);
    let (status, _) = plain_request(addr, "GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(
        status,
        426,
        "{}: a plain request the hook let through",
        A::NAME
    );

    // A WebSocket request without the token: the hook's 401, with its header.
    let mut peer = RawPeer::client(TcpStream::connect(addr).expect("connect"));
    peer.write_all(&request(addr, "/chat", &[]));
    let head = peer.read_head();
    assert_eq!(head.status(), 401, "{}", A::NAME);
    assert_eq!(head.header("www-authenticate"), Some("Bearer"));

    // With the token, the handshake waits for the hook's future.
    let url = format!("ws://{addr}/chat?room=7");
    let client_request = ClientRequest::new(&url)
        .expect("a valid URL")
        .header("Authorization", "Bearer good")
        .expect("a valid header");
    let connecting = spawn("connect", move || {
        A::connect(client_request, ClientConfig::default())
    });
    let waited = std::time::Instant::now();
    while !gate.is_waited_on() {
        assert!(waited.elapsed() < LIMIT, "{}: the hook never ran", A::NAME);
        std::thread::yield_now();
    }
    assert!(
        serving.try_next(Duration::from_millis(50)).is_none(),
        "{}: accepted before the hook finished",
        A::NAME
    );
    gate.open();
    let mut client = connecting.wait(LIMIT).expect("the connection opens");
    let mut server = serving.next();
    let kept = server
        .request()
        .expect("the accepted connection keeps its request");
    assert_eq!(kept.path(), "/chat");
    assert_eq!(kept.query(), Some("room=7"));
    assert_eq!(kept.header("authorization"), Some("Bearer good"));
    client.send(Message::text("hello")).unwrap();
    match server.recv(LIMIT) {
        Some(Ok(m)) => assert_eq!(m, Message::text("hello")),
        other => panic!("{}: expected the message, got {other:?}", A::NAME),
    }
    // The server reads on, so the client's Close is answered at once.
    let closing = spawn("close", move || client.close(CloseCode::NORMAL, "bye"));
    assert!(server.recv(LIMIT).is_none(), "{}", A::NAME);
    assert!(closing.wait(LIMIT).unwrap().clean);
}

/// By default (`keep_request(false)`) the accepted connection keeps nothing of its request.
pub fn an_accepted_connection_keeps_no_request_by_default<A: Adapter>() {
    let serving = Serving::start::<A>(ServerConfig::default());
    let client = A::connect(serving.request(), ClientConfig::default()).unwrap();
    let server = serving.next();
    assert!(server.request().is_none(), "{}", A::NAME);
    drop(client);
}

/// A graceful shutdown closes the listener, closes every open connection with 1001, lets a
/// client that answers finish the close handshake, and resets one that does not answer
/// once the grace period has passed (well before its close timeout).
pub fn graceful_shutdown_closes_with_1001_then_resets<A: Adapter>() {
    let mut config = Config::default();
    config.close_timeout = Duration::from_secs(60);
    let serving = Serving::start::<A>(ServerConfig::default().config(config));
    let addr = serving.addr;
    // A client that answers the Close, and a raw one that never does.
    let mut answering = A::connect(serving.request(), ClientConfig::default()).unwrap();
    let _answering_server = serving.next();
    let (mut silent, head) = RawPeer::connect(addr, &[], None);
    assert_eq!(head.status(), 101);
    let mut silent_server = serving.next();

    let grace = Duration::from_millis(1500);
    // Shut down from a thread of its own while the clients react.
    let stop = serving.stopper();
    let shutting = spawn("shutdown", move || stop.shutdown(grace));

    // The answering client sees a clean close with 1001.
    match answering.recv(LIMIT) {
        None => {}
        other => panic!("{}: expected the clean end, got {other:?}", A::NAME),
    }
    let closed = answering.closed().expect("closed");
    assert_eq!(closed.code, CloseCode::GOING_AWAY, "{}", A::NAME);
    assert!(closed.clean, "{}: {closed:?}", A::NAME);
    // The silent one got the Close too, and then a reset once the grace period ended.
    let frame = silent.read_frame(LIMIT);
    assert_eq!(frame.opcode, 0x8, "{}: {frame:?}", A::NAME);
    assert_eq!(&frame.payload[..2], &1001u16.to_be_bytes());
    let report = shutting.wait(LIMIT);
    assert_eq!(report.connections, 2, "{}: {report:?}", A::NAME);
    assert_eq!(report.reset, 1, "{}: {report:?}", A::NAME);
    assert!(silent.wait_end(LIMIT).is_some(), "{}", A::NAME);
    match silent_server.recv(LIMIT) {
        Some(Err(Error::Closed(closed))) => assert!(!closed.clean, "{closed:?}"),
        other => panic!("{}: expected an abnormal end, got {other:?}", A::NAME),
    }
    // The listener is closed: a new client is refused by the system.
    assert!(
        TcpStream::connect(addr).is_err(),
        "{}: still listening after the shutdown",
        A::NAME
    );
    drop(serving);
}
