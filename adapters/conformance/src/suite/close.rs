//! Close codes both ways, close arguments that are refused, and the close that dropping every
//! handle sends.

use tether::{CloseCause, CloseCode, CloseError, Closed, Config, Initiator, Message, Role};

use crate::frame::op;
use tether_io::Error;

use crate::harness::Adapter;
use crate::raw::{End, RawPeer};
use crate::setup::{LIMIT, facing_raw, spawn};

/// The adapter closes with 4000 "bye": the peer receives exactly that Close, and once the
/// peer's answer arrives the adapter reports a clean end with the code and reason the peer
/// echoed (RFC 6455 §7.1.5-§7.1.6).
pub fn close_from_adapter<A: Adapter>(role: Role) {
    let (mut conn, mut peer, _) = facing_raw::<A>(role, Config::default(), None);
    let closing = spawn("close", move || conn.close(CloseCode(4000), "bye"));
    let frame = peer.read_frame(LIMIT);
    assert_eq!(frame.opcode, op::CLOSE, "{}: {frame:?}", A::NAME);
    assert_eq!(frame.close_status(), Some((4000, "bye".into())));
    peer.send_close(4000, "bye");
    finish_as_raw(role, peer);
    let closed = closing
        .wait(LIMIT)
        .unwrap_or_else(|e| panic!("{}: close failed: {e}", A::NAME));
    assert_eq!(
        closed,
        Closed {
            code: CloseCode(4000),
            reason: "bye".into(),
            initiator: Initiator::Local,
            clean: true,
            cause: CloseCause::Normal,
        },
        "{}",
        A::NAME
    );
}

/// The peer closes with 4001 "later": the adapter echoes the code, its receiver ends cleanly,
/// and the terminal information carries the peer's code and reason.
pub fn close_from_peer<A: Adapter>(role: Role) {
    let (mut conn, mut peer, _) = facing_raw::<A>(role, Config::default(), None);
    let receiving = spawn("recv", move || {
        let received = conn.recv(LIMIT);
        (received, conn.closed())
    });
    peer.send_close(4001, "later");
    let frame = peer.read_frame(LIMIT);
    assert_eq!(frame.opcode, op::CLOSE, "{}: {frame:?}", A::NAME);
    assert_eq!(frame.close_status().map(|(code, _)| code), Some(4001));
    finish_as_raw(role, peer);
    let (received, closed) = receiving.wait(LIMIT);
    assert!(
        received.is_none(),
        "{}: a clean end, got {received:?}",
        A::NAME
    );
    assert_eq!(
        closed,
        Some(Closed {
            code: CloseCode(4001),
            reason: "later".into(),
            initiator: Initiator::Remote,
            clean: true,
            cause: CloseCause::Normal,
        }),
        "{}",
        A::NAME
    );
}

/// Codes that may not be sent (RFC 6455 §7.4: 1005, 1006, under 1000, over 4999) and a reason
/// over 123 bytes are typed errors, and change nothing: no Close goes out and messages still
/// flow both ways.
pub fn unsendable_close_is_refused<A: Adapter>(role: Role) {
    let (mut conn, mut peer, _) = facing_raw::<A>(role, Config::default(), None);
    for code in [1005, 1006, 999, 5000] {
        match conn.close(CloseCode(code), "") {
            Err(Error::Close(CloseError::InvalidCode(c))) if c == code => {}
            other => panic!(
                "{}: close({code}) must be refused with InvalidCode, got {other:?}",
                A::NAME
            ),
        }
    }
    let long = "x".repeat(124);
    match conn.close(CloseCode::NORMAL, &long) {
        Err(Error::Close(CloseError::ReasonTooLong(124))) => {}
        other => panic!(
            "{}: a 124-byte reason must be refused, got {other:?}",
            A::NAME
        ),
    }
    assert_eq!(conn.closed(), None, "{}", A::NAME);
    conn.send(Message::text("still open"))
        .unwrap_or_else(|e| panic!("{}: send after a refused close: {e}", A::NAME));
    let frame = peer.read_frame(LIMIT);
    assert_eq!(
        (frame.opcode, frame.payload.as_slice()),
        (op::TEXT, &b"still open"[..]),
        "{}: the first frame after refused closes",
        A::NAME
    );
    peer.send(op::TEXT, b"and you?");
    let received = conn.recv(LIMIT);
    assert!(
        matches!(&received, Some(Ok(m)) if m.as_bytes() == b"and you?"),
        "{}: {received:?}",
        A::NAME
    );
}

/// Dropping every handle of an open connection closes it with 1001 (Going Away).
pub fn dropping_the_handle_closes_with_1001<A: Adapter>(role: Role) {
    let (conn, mut peer, _) = facing_raw::<A>(role, Config::default(), None);
    drop(conn);
    let frame = peer.read_frame(LIMIT);
    assert_eq!(frame.opcode, op::CLOSE, "{}: {frame:?}", A::NAME);
    assert_eq!(
        frame.close_status().map(|(code, _)| code),
        Some(1001),
        "{}: dropping the handle",
        A::NAME
    );
    peer.send_close(1001, "");
    finish_as_raw(role, peer);
}

/// A peer that ends its side of the TCP connection without a Close (a killed client or
/// server): the adapter reports an abnormal end (1006), and the peer reads the adapter's end
/// of the stream, a FIN, not a reset.
pub fn peer_ends_tcp_first<A: Adapter>(role: Role) {
    let (mut conn, mut peer, _) = facing_raw::<A>(role, Config::default(), None);
    peer.end_writing();
    let received = conn.recv(LIMIT);
    assert!(
        matches!(&received, Some(Err(Error::Closed(c))) if c.code == CloseCode::ABNORMAL),
        "{}: {received:?}",
        A::NAME
    );
    assert_eq!(
        peer.wait_end(LIMIT),
        Some(End::Eof),
        "{}: the adapter must end its side too",
        A::NAME
    );
}

/// Ends the TCP connection after the close handshake the way RFC 6455 §7.1.1 wants: a raw
/// client waits for the server's end first, a raw server closes at once.
fn finish_as_raw(role: Role, mut peer: RawPeer) {
    if role == Role::Server {
        assert_eq!(
            peer.wait_end(LIMIT),
            Some(End::Eof),
            "the server must close the TCP connection after the close handshake"
        );
    }
    drop(peer);
}
