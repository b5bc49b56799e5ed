//! The reconnecting client: a bounded queue while the server is away, delivery in order when
//! it comes back, and the close that dropping the client sends.

use std::net::TcpListener;
use std::time::Duration;

use tether::Message;
use tether::handshake::ClientRequest;
use tether::reconnect::{
    Jitter, ReconnectConfig, ReconnectEvent, SessionConfig, SessionSendErrorKind,
};
use tether_io::{ClientConfig, ServerConfig};

use crate::frame::op;
use crate::harness::{Adapter, Reconnecting};
use crate::raw::RawPeer;
use crate::setup::{LIMIT, Serving, listener};

const QUEUED_MESSAGES: usize = 4;
const QUEUED_BYTES: usize = 64 << 10;

/// The adapter's reconnecting client for `url`: retries every 20-100 ms, a queue of 4
/// messages and 64 KiB.
fn reconnecting<A: Adapter>(url: &str) -> Box<dyn Reconnecting> {
    let mut reconnect = ReconnectConfig::default();
    reconnect.backoff.initial = Duration::from_millis(20);
    reconnect.backoff.max = Duration::from_millis(100);
    reconnect.backoff.jitter = Jitter::None;
    reconnect.backoff.first_delay_max = Some(Duration::from_millis(20));
    let mut session = SessionConfig::default();
    session.max_queued_messages = QUEUED_MESSAGES;
    session.max_queued_bytes = QUEUED_BYTES;
    session.connect_timeout = Duration::from_secs(2);
    let request = ClientRequest::new(url).expect("a valid URL");
    let config = ClientConfig::default().connect_timeout(Duration::from_secs(2));
    A::reconnecting(request, config, reconnect, session)
        .unwrap_or_else(|e| panic!("{}: starting the reconnecting client: {e}", A::NAME))
}

/// With the server down, sends queue up to the session's bounds (messages and bytes) and are
/// then refused with `QueueFull`, the message handed back; once a server listens on the
/// address, the queue is delivered in order and the client reports `Connected`.
pub fn reconnecting_queue_is_bounded_then_delivered_in_order<A: Adapter>() {
    let free = listener(None);
    let addr = free.local_addr().expect("address");
    drop(free);
    let mut client = reconnecting::<A>(&format!("ws://{addr}/"));

    let too_big = Message::binary(vec![1; QUEUED_BYTES + 1]);
    match client.send(too_big) {
        Err(e) if matches!(e.kind, SessionSendErrorKind::QueueFull { .. }) => {
            assert_eq!(e.message.len(), QUEUED_BYTES + 1, "{}", A::NAME);
        }
        other => panic!(
            "{}: a message over the byte bound must be refused, got {other:?}",
            A::NAME
        ),
    }
    let queued: Vec<Message> = (0..QUEUED_MESSAGES)
        .map(|i| Message::text(format!("m{i}")))
        .collect();
    for message in &queued {
        client
            .send(message.clone())
            .unwrap_or_else(|e| panic!("{}: queueing {message:?}: {e}", A::NAME));
    }
    match client.send(Message::text("refused")) {
        Err(e) if matches!(e.kind, SessionSendErrorKind::QueueFull { messages, .. } if messages == QUEUED_MESSAGES) =>
        {
            assert!(e.message == Message::text("refused"), "{}", A::NAME);
        }
        other => panic!(
            "{}: a message past the count bound must be refused, got {other:?}",
            A::NAME
        ),
    }

    let listener = TcpListener::bind(addr).expect("listen again on the client's address");
    let serving = Serving::on::<A>(listener, ServerConfig::default());
    let mut conn = serving.next();
    for message in &queued {
        let received = conn.recv(LIMIT);
        assert!(
            matches!(&received, Some(Ok(m)) if m == message),
            "{}: expected {message:?}, got {received:?}",
            A::NAME
        );
    }
    client
        .send(Message::text("after"))
        .expect("send once connected");
    let received = conn.recv(LIMIT);
    assert!(
        matches!(&received, Some(Ok(m)) if m.as_bytes() == b"after"),
        "{}: the refused message must not have been queued: got {received:?}",
        A::NAME
    );
    loop {
        match client.recv(LIMIT) {
            Some(ReconnectEvent::Connected { .. }) => break,
            Some(_) => {}
            None => panic!("{}: no Connected event", A::NAME),
        }
    }
}

/// Dropping the reconnecting client closes its live connection with 1001 (Going Away), as
/// dropping a connection's handle does.
pub fn dropping_the_reconnecting_client_closes_with_1001<A: Adapter>() {
    let listener = listener(None);
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let mut client = reconnecting::<A>(&url);
    let (mut peer, _) = RawPeer::accept(&listener, LIMIT, |_| None);
    client.send(Message::text("hello")).expect("send");
    let frame = peer.read_frame(LIMIT);
    assert_eq!(
        (frame.opcode, frame.payload.as_slice()),
        (op::TEXT, &b"hello"[..])
    );
    drop(client);
    let frame = peer.read_frame(LIMIT);
    assert_eq!(frame.opcode, op::CLOSE, "{}: {frame:?}", A::NAME);
    assert_eq!(
        frame.close_status().map(|(code, _)| code),
        Some(1001),
        "{}: dropping the reconnecting client",
        A::NAME
    );
}
