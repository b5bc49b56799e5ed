//! Resumable sessions (`tether-resume`) on real sockets: a forwarding proxy black-holes the
//! connection mid-stream, the reconnecting client notices by its heartbeat and comes back
//! through the proxy, the server takes the session over from the connection it still thinks
//! alive, and every message arrives exactly once, in order, both ways.

use std::time::{Duration, Instant};

use tether::handshake::ClientRequest;
use tether::reconnect::{Jitter, ReconnectConfig, ReconnectEvent, SessionConfig};
use tether::resume::{ResumeConfig, SessionEvent};
use tether::{Config, Heartbeat, Message};
use tether_io::{ClientConfig, Error, ServerConfig};

use crate::harness::{Adapter, Conn};
use crate::proxy::Proxy;
use crate::setup::{LIMIT, Serving};

/// Messages each way.
const N: u64 = 80;
/// A short wait: the loop interleaves both ends.
const TICK: Duration = Duration::from_millis(5);

fn number(message: &Message) -> u64 {
    std::str::from_utf8(message.as_bytes())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Takes what the server connection has now; `false` once it ended.
fn server_reads(name: &str, conn: &mut Box<dyn Conn>, got: &mut u64, wait: Duration) -> bool {
    loop {
        match conn.recv(wait) {
            Some(Ok(m)) => {
                assert_eq!(
                    number(&m),
                    *got + 1,
                    "{name}: the server got {m:?} after {got}"
                );
                *got += 1;
            }
            Some(Err(Error::Timeout)) => return true,
            None | Some(Err(_)) => return false,
        }
    }
}

/// The connection between a resuming client and server is black-holed halfway through
/// (neither end is told; the server's heartbeat is too slow to notice): the client's
/// heartbeat gives up, it reconnects through the proxy and resumes; the server hands the
/// session from the old connection to the new one. Nothing lost, nothing doubled, both ways.
pub fn resumed_session_survives_a_black_hole_both_ways<A: Adapter>() {
    let mut core = Config::default();
    core.resume = Some(ResumeConfig::default());
    core.heartbeat = Some(Heartbeat::new(
        Duration::from_secs(60),
        Duration::from_secs(60),
    ));
    let serving = Serving::start::<A>(ServerConfig::new(core.clone(), Default::default()));
    let proxy = Proxy::start(serving.addr);

    core.heartbeat = Some(Heartbeat::new(
        Duration::from_millis(150),
        Duration::from_millis(250),
    ));
    let mut reconnect = ReconnectConfig::default();
    reconnect.backoff.initial = Duration::from_millis(20);
    reconnect.backoff.max = Duration::from_millis(100);
    reconnect.backoff.jitter = Jitter::None;
    reconnect.backoff.first_delay_max = Some(Duration::from_millis(20));
    let mut session = SessionConfig::default();
    session.connect_timeout = Duration::from_secs(2);
    let request = ClientRequest::new(&format!("ws://{}/", proxy.addr)).expect("a valid URL");
    let config = ClientConfig::new(core).connect_timeout(Duration::from_secs(2));
    let mut client = A::reconnecting(request, config, reconnect, session)
        .unwrap_or_else(|e| panic!("{}: starting the reconnecting client: {e}", A::NAME));

    let mut conn = serving.next();
    let (mut c_sent, mut s_sent, mut c_got, mut s_got) = (0u64, 0u64, 0u64, 0u64);
    let (mut resumed, mut holed) = (0, false);
    let deadline = Instant::now() + 3 * LIMIT;
    while c_got < N || s_got < N {
        assert!(
            Instant::now() < deadline,
            "{}: stuck: client sent {c_sent} got {s_got}, server sent {s_sent} got {c_got}",
            A::NAME
        );
        if c_sent < N
            && client
                .send(Message::text(format!("{}", c_sent + 1)))
                .is_ok()
        {
            c_sent += 1;
        }
        if s_sent < N && conn.send(Message::text(format!("{}", s_sent + 1))).is_ok() {
            s_sent += 1;
        }
        if !holed && c_sent >= N / 2 && s_sent >= N / 2 {
            proxy.black_hole();
            holed = true;
        }
        while let Some(event) = client.recv(TICK) {
            match event {
                ReconnectEvent::Message(m) => {
                    assert_eq!(
                        number(&m),
                        s_got + 1,
                        "{}: the client got {m:?} after {s_got}",
                        A::NAME
                    );
                    s_got += 1;
                }
                ReconnectEvent::Session(SessionEvent::Resumed { .. }) => resumed += 1,
                ReconnectEvent::Session(SessionEvent::Lost { reason, .. }) => {
                    panic!("{}: session lost: {reason:?}", A::NAME)
                }
                _ => {}
            }
        }
        let alive = server_reads(A::NAME, &mut conn, &mut c_got, TICK);
        // The resumed connection: what the old one received comes first.
        if let Some(next) = serving.try_next(if alive { Duration::ZERO } else { TICK }) {
            server_reads(A::NAME, &mut conn, &mut c_got, TICK);
            conn = next;
        }
    }
    assert!(holed, "{}: the black hole never opened", A::NAME);
    assert!(
        resumed >= 1 && proxy.connections() >= 2,
        "{}: the client did not resume ({resumed} resumed, {} connections)",
        A::NAME,
        proxy.connections()
    );
    // Nothing more (no duplicate) arrives.
    assert!(
        server_reads(A::NAME, &mut conn, &mut c_got, Duration::from_millis(300)) && c_got == N,
        "{}: the server got {c_got}",
        A::NAME
    );
    while let Some(event) = client.recv(Duration::from_millis(50)) {
        assert!(
            !matches!(event, ReconnectEvent::Message(_)),
            "{}: a message after the last: {event:?}",
            A::NAME
        );
    }
}

/// A peer without the extension (here a raw WebSocket server that answers no extension): a
/// client with resumption on sees plain WebSocket, and after the peer drops the connection
/// reconnects as a plain reconnecting client does, with no session event at all.
pub fn resume_falls_back_to_plain_reconnect_with_another_peer<A: Adapter>() {
    let listener = crate::setup::listener(None);
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let mut core = Config::default();
    core.resume = Some(ResumeConfig::default());
    let mut reconnect = ReconnectConfig::default();
    reconnect.backoff.initial = Duration::from_millis(20);
    reconnect.backoff.jitter = Jitter::None;
    reconnect.backoff.first_delay_max = Some(Duration::from_millis(20));
    let request = ClientRequest::new(&url).expect("a valid URL");
    let config = ClientConfig::new(core).connect_timeout(Duration::from_secs(2));
    let mut client = A::reconnecting(request, config, reconnect, SessionConfig::default())
        .unwrap_or_else(|e| panic!("{}: starting the reconnecting client: {e}", A::NAME));
    for round in 0..2 {
        let (mut peer, head) = crate::raw::RawPeer::accept(&listener, LIMIT, |_| None);
        let offered = head.header("sec-websocket-extensions").unwrap_or_default();
        assert!(
            offered.contains("tether-resume") && !offered.contains("session="),
            "{}: round {round}: the client offers a new session each time: {offered:?}",
            A::NAME
        );
        let text = format!("hello {round}");
        client.send(Message::text(text.clone())).expect("send");
        let frame = peer.read_frame(LIMIT);
        assert_eq!(frame.payload, text.as_bytes(), "{}", A::NAME);
        peer.send(crate::frame::op::TEXT, b"back");
        let mut got = false;
        while let Some(event) = client.recv(Duration::from_millis(500)) {
            match event {
                ReconnectEvent::Session(e) => panic!("{}: a session event: {e:?}", A::NAME),
                ReconnectEvent::Message(m) => {
                    assert_eq!(m.as_bytes(), b"back", "{}", A::NAME);
                    got = true;
                    break;
                }
                _ => {}
            }
        }
        assert!(got, "{}: round {round}: no message from the peer", A::NAME);
        // The peer vanishes without a close: a plain reconnect follows.
        drop(peer);
    }
}

/// A session whose client never comes back is not dropped silently on the server: once the
/// store's expiry passes, the registry reports it with the messages its client had not
/// confirmed.
pub fn a_session_whose_client_never_returns_is_reported_lost<A: Adapter>() {
    let mut core = Config::default();
    core.resume = Some(ResumeConfig::default());
    core.heartbeat = Some(Heartbeat::new(
        Duration::from_millis(100),
        Duration::from_millis(150),
    ));
    let registry = std::sync::Arc::new(tether_io::SessionRegistry::new(
        tether::resume::MemoryStore::new(16, 1 << 20, Duration::from_millis(200)),
    ));
    let mut server_config = ServerConfig::new(core.clone(), Default::default());
    server_config.sessions = Some(registry.clone());
    let serving = Serving::start::<A>(server_config);
    let proxy = Proxy::start(serving.addr);
    let request = ClientRequest::new(&format!("ws://{}/", proxy.addr)).expect("a valid URL");
    let config = ClientConfig::new(core).connect_timeout(Duration::from_secs(2));
    let mut client =
        A::connect(request, config).unwrap_or_else(|e| panic!("{}: connect failed: {e}", A::NAME));
    let mut conn = serving.next();
    proxy.black_hole();
    for i in 1..=3 {
        conn.send(Message::text(format!("{i}"))).expect("send");
    }
    // The server's heartbeat ends the connection; its session is parked, then expires.
    let deadline = Instant::now() + LIMIT;
    let lost = loop {
        let lost = registry.take_lost();
        if !lost.is_empty() {
            break lost;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no session reported lost",
            A::NAME
        );
        let _ = conn.recv(TICK);
    };
    assert_eq!(lost.len(), 1, "{}: {lost:?}", A::NAME);
    assert_eq!(lost[0].reason, tether::resume::LossReason::Expired);
    assert_eq!(lost[0].unconfirmed_messages, 3, "{}: {lost:?}", A::NAME);
    assert!(registry.take_lost().is_empty(), "reported once");
    drop(client.close(tether::CloseCode::NORMAL, "bye"));
}
