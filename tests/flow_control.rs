//! Flow control in bytes: what a peer that floods us, or never reads, can make the core hold.
//! One policy (high and low watermarks) for unread inbound data and unwritten outbound data.

mod common;

use common::*;
use tether::frame::OpCode;
use tether::{Config, Connection, Data, Instant, Message, Role, SendErrorKind};

const T0: Instant = Instant::ZERO;
const MIB: usize = 1 << 20;

/// What a virtual client peer sends: `n` masked frames built by `frame`.
struct Peer {
    wire: Vec<u8>,
    pos: usize,
}

impl Peer {
    fn new(frame: &[u8], n: usize) -> Self {
        Peer {
            wire: frame.repeat(n),
            pos: 0,
        }
    }

    /// Feeds the next `chunk` bytes if the connection wants to read; false if it did not.
    fn push(&mut self, conn: &mut Connection, chunk: usize) -> bool {
        if !conn.wants_read() || self.pos == self.wire.len() {
            return false;
        }
        let end = (self.pos + chunk).min(self.wire.len());
        let mut buf = conn.recv_buf();
        let n = (end - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.wire[self.pos..self.pos + n]);
        buf.commit(T0, n);
        self.pos += n;
        true
    }
}

/// With `max_message_size` 4 MiB and 20 messages of 1 MiB that the application does not read,
/// the connection stops reading shortly after the high watermark (2 MiB by default), not after
/// the whole 20 MiB; reading resumes once the application reads under the low watermark.
#[test]
fn unread_megabyte_messages_stop_reading_near_the_high_watermark() {
    let mut config = quiet();
    config.max_message_size = 4 * MIB;
    let mut conn = open(Role::Server, config);
    let frame = cframe(true, OpCode::Binary, &vec![3u8; MIB]);
    let overhead = frame.len() - MIB;
    let mut peer = Peer::new(&frame, 20);
    while peer.push(&mut conn, 64 << 10) {}
    let taken = peer.pos;
    // The watermark's worth of messages, the message that crosses it, one read; and their
    // frame headers.
    assert!(
        taken <= Config::default().high_watermark + MIB + (64 << 10) + 3 * overhead,
        "read {taken} bytes with nothing read by the application"
    );
    assert!(!conn.wants_read());
    // The application reads one message: 1-2 MiB still unread, over the low mark: still paused.
    assert!(matches!(conn.read(), Some(Data::Message(_))));
    assert!(!conn.wants_read());
    while conn.has_unread_data() {
        conn.read();
    }
    assert!(conn.wants_read(), "reading resumes under the low watermark");
    // And everything arrives in the end.
    let mut received = (taken / (MIB + 14)) as usize;
    while peer.push(&mut conn, 64 << 10) || conn.has_unread_data() {
        while let Some(Data::Message(m)) = conn.read() {
            assert_eq!(m.len(), MIB);
            received += 1;
        }
    }
    assert_eq!(received, 20);
}

/// The application echoes every message while the peer never reads a byte: the core stops
/// reading once our unwritten echoes pass the high watermark, and what it holds (unwritten
/// output plus unread input) stays under 8 MiB however long the peer keeps sending.
#[test]
fn never_reading_peer_costs_at_most_8_mib_with_messages() {
    for size in [20, 16 << 10, 256 << 10, MIB] {
        let mut conn = open(Role::Server, quiet());
        let frame = cframe(true, OpCode::Binary, &vec![5u8; size]);
        let mut peer = Peer::new(&frame, (64 * MIB) / frame.len() + 1);
        let mut echo: Option<Message> = None;
        let mut read = 0usize;
        let mut peak = 0usize;
        loop {
            let mut progress = peer.push(&mut conn, 64 << 10);
            // The echo server: read, send back; keep a refused message until there is room.
            loop {
                let message = match echo.take() {
                    Some(m) => m,
                    None => match conn.read() {
                        Some(Data::Message(m)) => {
                            read += frame.len();
                            m
                        }
                        _ => break,
                    },
                };
                match conn.send(message) {
                    Ok(()) => progress = true,
                    Err(e) => {
                        assert!(matches!(e.kind, SendErrorKind::BufferFull { .. }));
                        echo = Some(e.into_inner());
                        break;
                    }
                }
            }
            let held = unwritten(&conn) + (peer.pos - read) + echo.as_ref().map_or(0, Message::len);
            peak = peak.max(held);
            if !progress {
                break;
            }
        }
        assert!(!conn.wants_read(), "{size}: the peer is pushed back");
        assert!(peer.pos < peer.wire.len());
        assert!(peak <= 8 * MIB, "{size}-byte messages: held {peak} bytes");
    }
}

/// A peer that floods Pings and never reads our Pongs: reading stops once the unwritten Pongs
/// pass the high watermark, so it costs at most the watermark plus one read.
#[test]
fn never_reading_peer_costs_at_most_8_mib_with_pings() {
    for payload in [0usize, 125] {
        let mut conn = open(Role::Server, quiet());
        let frame = cframe(true, OpCode::Ping, &vec![1u8; payload]);
        let mut peer = Peer::new(&frame, (64 * MIB) / frame.len());
        while peer.push(&mut conn, 64 << 10) {
            // The application polls events (as every driver does); it never writes output.
            while conn.poll_event().is_some() {}
        }
        assert!(!conn.wants_read());
        let held = unwritten(&conn);
        assert!(held > Config::default().high_watermark);
        assert!(
            held <= Config::default().high_watermark + (64 << 10) * 2,
            "{held} bytes of Pongs"
        );
        assert!(held + conn.buffer_memory() <= 8 * MIB);
        // Writing the Pongs out under the low watermark lets reading resume.
        let n = held - Config::default().low_watermark;
        conn.advance(n);
        assert!(conn.wants_read());
    }
}

/// A reader that is gone (`discard_incoming`) does not stop the connection from reading:
/// unread data is dropped and so is data that arrives later, while Pings are still answered.
#[test]
fn discard_incoming_keeps_reading_without_holding_data() {
    let mut conn = open(Role::Server, quiet());
    let mut peer = Peer::new(&cframe(true, OpCode::Binary, &vec![3u8; MIB]), 4);
    while peer.push(&mut conn, 64 << 10) {}
    assert!(!conn.wants_read());
    conn.discard_incoming();
    assert!(conn.wants_read());
    while peer.push(&mut conn, 64 << 10) {}
    assert_eq!(peer.pos, peer.wire.len());
    assert!(!conn.has_unread_data());
    feed(
        &mut conn,
        T0,
        &cframe(true, OpCode::Ping, b"x"),
        &Chunking::Whole,
    );
    assert_eq!(parse_frames(&drain_output(&mut conn))[0].1, OpCode::Pong);
}

/// What a driver acts on: whether to read, how much to write, what to do with the transport,
/// when to wake.
fn driver_view(
    conn: &Connection,
) -> (
    bool,
    usize,
    Option<tether::TransportAction>,
    Option<Instant>,
) {
    (
        conn.wants_read(),
        conn.poll_transmit().map_or(0, |t| t.len()),
        conn.poll_transport(),
        conn.poll_timeout(),
    )
}

/// The engine skips looking at the driver's view around `read` while data is waiting and the
/// core wants reads (`tether-io`'s receive path): such a read must change none of it, whether
/// the peer's Close or a violation waits behind the data, and across the flow-control pause.
#[test]
fn taking_waiting_data_while_reading_changes_nothing_a_driver_acts_on() {
    let message = cframe(true, OpCode::Binary, &[5u8; 300]);
    let close = cframe(true, OpCode::Close, &[0x03, 0xe8]);
    let violation = cframe(true, OpCode::Continuation, b"x");
    for tail in [Vec::new(), close, violation] {
        for (high, low) in [(2 << 20, 1 << 20), (1000, 400), (1000, 0)] {
            let mut config = Config::default();
            config.high_watermark = high;
            config.low_watermark = low;
            config.idle_timeout = Some(std::time::Duration::from_secs(30));
            let mut conn = open(Role::Server, config);
            let mut wire = message.repeat(10);
            wire.extend_from_slice(&tail);
            let mut now = T0;
            let mut fed = 0;
            let mut quiet_reads = 0;
            loop {
                if conn.wants_read() && fed < wire.len() {
                    now += std::time::Duration::from_millis(1);
                    let end = (fed + 700).min(wire.len());
                    conn.handle_data(now, &wire[fed..end]);
                    fed = end;
                }
                let quiet = conn.has_unread_data() && conn.wants_read();
                let before = driver_view(&conn);
                let Some(_) = conn.read() else {
                    if fed == wire.len() || !conn.wants_read() && !conn.has_unread_data() {
                        break;
                    }
                    continue;
                };
                if quiet {
                    quiet_reads += 1;
                    assert_eq!(
                        driver_view(&conn),
                        before,
                        "tail {tail:?}, marks {high}/{low}"
                    );
                }
            }
            assert!(quiet_reads > 0);
        }
    }
}
