//! Flow control against a peer that never reads: what the adapter buffers stays bounded by
//! the core's high watermark (`Config::high_watermark`), whichever direction the bytes flow.

use std::time::Duration;

use tether::{Config, Message, Role};

use crate::flood::Flood;
use crate::frame::op;
use crate::harness::Adapter;
use crate::setup::{LIMIT, facing_raw, payload};

/// Socket buffers are pinned to this, on both ends, so the kernel's share is small and known.
const BUFFERS: usize = 64 << 10;
/// What the pinned kernel buffers and the loopback can hold, generously.
const KERNEL: usize = 1 << 20;
/// A writer that made no progress for this long is blocked.
const STALL: Duration = Duration::from_millis(500);
/// Far past any bound: a writer that gets here was never made to wait.
const CAP: usize = 32 << 20;

/// The adapter sends 64 KiB messages to a peer that never reads: `send` comes to wait, and
/// what it accepted by then is at most the high watermark, one message and the kernel's
/// buffers. The waiting send fails once the peer is gone.
pub fn send_waits_for_a_peer_that_never_reads<A: Adapter>() {
    let config = Config::default();
    let watermark = config.high_watermark;
    let (conn, peer, _) = facing_raw::<A>(Role::Server, config, Some(BUFFERS));
    let message = 64 << 10;
    let flood = Flood::start(conn, Message::binary(payload(message, false)));
    let accepted = flood.until_stalled(STALL, CAP);
    assert!(
        accepted < CAP,
        "{}: send accepted {accepted} bytes without waiting",
        A::NAME
    );
    assert!(
        accepted <= watermark + message + KERNEL,
        "{}: send accepted {accepted} bytes before waiting; the bound is the {watermark}-byte \
         high watermark, one message and {KERNEL} bytes of kernel buffers",
        A::NAME
    );
    drop(peer);
    assert!(
        flood.ended(LIMIT).is_some(),
        "{}: the waiting send was still blocked {LIMIT:?} after the peer went away",
        A::NAME
    );
}

/// A peer floods Pings and never reads the Pongs: the adapter stops reading once the Pongs
/// it owes are over the high watermark, so the peer's writes come to block after at most
/// twice the watermark and the kernel's buffers. The connection stays open.
pub fn ping_flood_from_a_peer_that_never_reads_is_bounded<A: Adapter>() {
    let config = Config::default();
    let watermark = config.high_watermark;
    let (conn, mut peer, _) = facing_raw::<A>(Role::Server, config, Some(BUFFERS));
    let ping = peer.encode(op::PING, &[0x5A; 125]);
    let written = peer.write_until_blocked(&ping, STALL, CAP);
    assert!(
        written < CAP,
        "{}: the adapter took {written} bytes of Pings without ever stopping",
        A::NAME
    );
    assert!(
        written <= 2 * watermark + KERNEL,
        "{}: the adapter took {written} bytes of Pings before stopping; the bound is twice the \
         {watermark}-byte high watermark and {KERNEL} bytes of kernel buffers",
        A::NAME
    );
    assert_eq!(
        conn.closed(),
        None,
        "{}: the flood ended the connection",
        A::NAME
    );
}
