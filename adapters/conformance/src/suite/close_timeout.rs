//! The close timeout bounds how long a peer that stopped reading can hold a socket.

use std::time::{Duration, Instant};

use tether::{Config, Message, Role};

use crate::flood::Flood;
use crate::harness::Adapter;
use crate::setup::{LIMIT, facing_raw, payload};

const CLOSE_TIMEOUT: Duration = Duration::from_millis(200);
/// How late the end may come on a busy two-core machine.
const SLACK: Duration = Duration::from_secs(1);
const STALL: Duration = Duration::from_millis(500);
const CAP: usize = 64 << 20;

/// The adapter has megabytes to send to a peer that sends Close and never reads again: the
/// close handshake cannot finish, and at the close timeout the adapter lets the socket go.
/// The peer, without reading, sees the connection end within the close timeout: a graceful
/// FIN would wait behind the unread data, so a reset (`SO_LINGER` 0) is the way. The
/// adapter's blocked send returns as well.
pub fn close_timeout_releases_a_stuck_socket<A: Adapter>(role: Role) {
    let mut config = Config::default();
    config.close_timeout = CLOSE_TIMEOUT;
    let (conn, mut peer, _) = facing_raw::<A>(role, config, Some(64 << 10));
    let flood = Flood::start(conn, Message::binary(payload(256 << 10, false)));
    let stuck = flood.until_stalled(STALL, CAP);
    assert!(stuck < CAP, "{}: send never waited", A::NAME);

    let started = Instant::now();
    peer.send_close(1000, "");
    let end = peer.poll_end(LIMIT);
    let elapsed = started.elapsed();
    let sender = match flood.ended(SLACK) {
        Some((error, closed)) => format!("its send failed ({error}), the connection {closed:?}"),
        None => "its send was still blocked".into(),
    };
    assert!(
        end.is_some(),
        "{}: the socket was still open {LIMIT:?} after the peer's Close, with a \
         {CLOSE_TIMEOUT:?} close timeout and output stuck behind {stuck} bytes; {sender}",
        A::NAME
    );
    assert!(
        elapsed <= CLOSE_TIMEOUT + SLACK,
        "{}: the connection ended ({end:?}) {elapsed:?} after the peer's Close, with a \
         {CLOSE_TIMEOUT:?} close timeout; {sender}",
        A::NAME
    );
    assert!(
        !sender.ends_with("blocked"),
        "{}: the connection ended, but {sender}",
        A::NAME
    );
}
