//! Shared test support: raw frame building, two in-memory peers on a virtual clock.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use tether::frame::{FrameHeader, OpCode};
use tether::{Config, Connection, Data, Event, Instant, Role, TransportAction};

/// A seeded generator for the core.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Encodes one frame; `mask` given means client-to-server.
pub fn frame(fin: bool, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    frame_rsv(fin, 0, opcode, payload, mask)
}

/// Encodes one frame with RSV bits.
pub fn frame_rsv(
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut out = BytesMut::new();
    header.encode(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        tether::mask::apply_mask(&mut out[start..], key);
    }
    out.to_vec()
}

/// A masked (client-to-server) frame.
pub fn cframe(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, Some([0x11, 0x22, 0x33, 0x44]))
}

/// An unmasked (server-to-client) frame.
pub fn sframe(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, None)
}

/// A config with no heartbeat, so tests that do not look at timers see no pings.
pub fn quiet() -> Config {
    let mut c = Config::default();
    c.heartbeat = None;
    c
}

/// An open connection of `role` with `config`, its `Connected` event already taken.
pub fn open(role: Role, config: Config) -> Connection {
    let mut conn = Connection::open(role, config, rng(7), Instant::ZERO);
    assert!(matches!(
        conn.poll_event(),
        Some(Event::Connected { subprotocol: None })
    ));
    conn
}

/// Everything `conn` wants written, as one buffer.
pub fn drain_output(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(transmit) = conn.poll_transmit() {
        let n = transmit.len();
        for run in transmit.iter() {
            out.extend_from_slice(run);
        }
        conn.advance(n);
    }
    out
}

/// All queued events.
pub fn drain_events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// All received data, read the way an application reads: until `read` finds nothing.
pub fn drain_data(conn: &mut Connection) -> Vec<Data> {
    std::iter::from_fn(|| conn.read()).collect()
}

/// The complete messages among received data.
pub fn messages_of(data: &[Data]) -> Vec<tether::Message> {
    data.iter()
        .filter_map(|d| match d {
            Data::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// Reads every message (as a reading application does), then drains the events.
pub fn read_all(conn: &mut Connection) -> (Vec<tether::Message>, Vec<Event>) {
    let data = drain_data(conn);
    (messages_of(&data), drain_events(conn))
}

/// A frame as written on the wire: (fin, opcode, unmasked payload).
pub type WireFrame = (bool, OpCode, Vec<u8>);

/// Frames decoded from bytes written by a peer.
pub fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (h, n) = FrameHeader::parse(bytes)
            .expect("valid frame")
            .expect("complete header");
        let len = h.payload_len as usize;
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = h.mask {
            tether::mask::apply_mask(&mut payload, key);
        }
        out.push((h.fin, h.opcode, payload));
        bytes = &bytes[n + len..];
    }
    out
}

/// The close code in a Close frame payload.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

/// How bytes are cut on their way between peers.
#[derive(Clone, Debug)]
pub enum Chunking {
    /// Everything the sender has, at once.
    Whole,
    /// One byte per delivery.
    Bytewise,
    /// Pieces with these sizes, cycled.
    Sizes(Vec<usize>),
}

impl Chunking {
    fn cut(&self, i: usize, available: usize) -> usize {
        match self {
            Chunking::Whole => available,
            Chunking::Bytewise => 1.min(available),
            Chunking::Sizes(s) => s[i % s.len()].max(1).min(available),
        }
    }
}

/// Feeds `bytes` to `conn` cut by `chunking`, reading through `recv_buf` like a socket driver.
pub fn feed(conn: &mut Connection, now: Instant, bytes: &[u8], chunking: &Chunking) {
    let mut i = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        let want = chunking.cut(i, rest.len());
        let mut buf = conn.recv_buf();
        let n = want.min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        buf.commit(now, n);
        rest = &rest[n..];
        i += 1;
    }
}

/// One side of a [`Pair`].
pub struct Side {
    pub conn: Connection,
    pub events: Vec<Event>,
    /// Data the application read, in order.
    pub data: Vec<Data>,
    /// The side half-closed (or closed) its transport: nothing more goes out.
    pub write_closed: bool,
    /// The side closed its transport: nothing more goes in either.
    pub transport_closed: bool,
    pub eof_delivered: bool,
    /// The application reads data as it arrives (the default); when false, data stays in the
    /// connection until a test reads it.
    pub reading: bool,
}

/// Two connections joined by an in-memory transport on a virtual clock.
pub struct Pair {
    pub client: Side,
    pub server: Side,
    pub now: Instant,
    pub chunking: Chunking,
    /// Bytes written by each side, in order (client first).
    pub wire: [Vec<u8>; 2],
}

impl Pair {
    pub fn new(client: Connection, server: Connection, chunking: Chunking) -> Self {
        let side = |conn| Side {
            conn,
            events: Vec::new(),
            data: Vec::new(),
            write_closed: false,
            transport_closed: false,
            eof_delivered: false,
            reading: true,
        };
        Pair {
            client: side(client),
            server: side(server),
            now: Instant::ZERO,
            chunking,
            wire: [Vec::new(), Vec::new()],
        }
    }

    /// Two already-open connections, their `Connected` events already taken.
    pub fn open(config: Config, chunking: Chunking) -> Self {
        let open = |role, seed| {
            let mut conn = Connection::open(role, config.clone(), rng(seed), Instant::ZERO);
            assert!(matches!(conn.poll_event(), Some(Event::Connected { .. })));
            conn
        };
        Pair::new(open(Role::Client, 1), open(Role::Server, 2), chunking)
    }

    /// Moves bytes and events until nothing changes.
    pub fn drive(&mut self) {
        loop {
            let mut progress = false;
            progress |= Self::step(
                &mut self.client,
                &mut self.server,
                self.now,
                &self.chunking,
                &mut self.wire[0],
            );
            progress |= Self::step(
                &mut self.server,
                &mut self.client,
                self.now,
                &self.chunking,
                &mut self.wire[1],
            );
            if !progress {
                break;
            }
        }
    }

    fn step(
        from: &mut Side,
        to: &mut Side,
        now: Instant,
        chunking: &Chunking,
        wire: &mut Vec<u8>,
    ) -> bool {
        let mut progress = false;
        if from.reading {
            while let Some(d) = from.conn.read() {
                from.data.push(d);
                progress = true;
            }
        }
        while let Some(ev) = from.conn.poll_event() {
            from.events.push(ev);
            progress = true;
        }
        if !from.write_closed {
            let bytes = drain_output(&mut from.conn);
            if !bytes.is_empty() {
                wire.extend_from_slice(&bytes);
                if !to.transport_closed {
                    feed(&mut to.conn, now, &bytes, chunking);
                }
                progress = true;
            }
        }
        match from.conn.poll_transport() {
            Some(TransportAction::Shutdown) if !from.write_closed => {
                from.write_closed = true;
                progress = true;
            }
            Some(TransportAction::Close) if !from.transport_closed => {
                from.write_closed = true;
                from.transport_closed = true;
                progress = true;
            }
            _ => {}
        }
        if from.write_closed && !to.eof_delivered && !to.transport_closed {
            to.eof_delivered = true;
            to.conn.handle_eof(now);
            progress = true;
        }
        progress
    }

    /// Jumps the clock to the earliest deadline of either side and fires it; false if none.
    pub fn advance(&mut self) -> bool {
        let next = [
            self.client.conn.poll_timeout(),
            self.server.conn.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) => {
                self.now = self.now.max(t);
                self.client.conn.handle_timeout(self.now);
                self.server.conn.handle_timeout(self.now);
                self.drive();
                true
            }
            None => false,
        }
    }

    /// Payloads of the data messages one side received.
    pub fn messages(side: &Side) -> Vec<tether::Message> {
        messages_of(&side.data)
    }
}

/// The terminal event of a side, asserting there is exactly one and it is last.
pub fn terminal(events: &[Event]) -> tether::Closed {
    let closed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Closed(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 1, "exactly one terminal event: {events:?}");
    assert!(
        matches!(events.last(), Some(Event::Closed(_))),
        "terminal event is last"
    );
    closed.into_iter().next().unwrap()
}

pub fn bytes(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// Output bytes not written yet.
pub fn unwritten(conn: &Connection) -> usize {
    conn.poll_transmit().map_or(0, |t| t.len())
}
