//! A seeded network simulator for the sans-IO core.
//!
//! One [`Scenario`] (from one seed) runs a world: reconnecting clients (each a
//! [`Supervisor`] and its current client [`Connection`]), one server process that accepts
//! every transport, and links between them. A link is two pipes, one per direction, with
//! latency and jitter, bandwidth (a pipe serialises its bytes), a receive window (bytes in
//! flight plus bytes arrived and not yet read; an application that stops reading fills it and
//! stalls the sender), and faults: stalls, black holes (one direction: half-open), resets. The
//! server can restart, losing every connection's state: a crash resets its transports, a
//! reboot leaves them silent.
//!
//! Time jumps straight to the next thing that can happen: a scripted step, a pipe delivery,
//! a connect completing, or any party's `poll_timeout`. Everything random (the script, the
//! jitter, every generator the core is given) comes from the seed.
//!
//! Every claim is checked as the world runs ([`World::fail`] records the first violation):
//! one terminal event per connection with the right code and cause, dead-peer detection
//! within ping interval + pong timeout and never while the peer answers over a healthy link,
//! every timer firing when it should, messages in order and never twice, losses only of
//! frames entirely written into transports that died, the outbound queue's and the
//! watermarks' bounds, and reconnect delays within the policy and its cap.

pub mod scenario;

use core::time::Duration;
use std::collections::{BTreeSet, VecDeque};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use tether::frame::{FrameHeader, OpCode};
use tether::handshake::{Accept, Reject, ServerPolicy};
use tether::reconnect::{
    Action, Disconnect, GiveUpReason, Jitter, Overflow, SessionSendErrorKind, Supervisor,
    SupervisorAction, SupervisorEvent,
};
use tether::{
    CloseCause, CloseCode, Closed, Connection, Data, Event, Initiator, Instant, Message, State,
    TransportAction,
};

pub use scenario::{Kind, Op, Scenario};

use scenario::{Dir, LinkParams};

/// The most settle rounds at one instant, and the most time steps in a run.
const MAX_ROUNDS: usize = 10_000;
const MAX_STEPS: u64 = 400_000;
/// How long the world may take to run dry after the script ends.
const WIND_DOWN_LIMIT: Duration = Duration::from_secs(600);
/// Frame headers and control frames on top of the payload bytes a watermark counts.
const FRAMING_SLACK: usize = 4 << 10;

/// What one run did, for the summary and the coverage checks.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub violation: Option<String>,
    pub faults: u64,
    pub connections: u64,
    pub sessions: u64,
    pub delivered: u64,
    pub lost: u64,
    pub requeued: u64,
    pub queue_refusals: u64,
    pub buffer_refusals: u64,
    pub heartbeat_timeouts: u64,
    pub clean_closes: u64,
    pub close_timeouts: u64,
    pub idle_timeouts: u64,
    pub handshake_timeouts: u64,
    pub connect_timeouts: u64,
    pub gave_up: u64,
    pub capped_delays: u64,
    /// The largest `buffer_memory` seen, over its bound, in percent.
    pub peak_memory_pct: u64,
    /// A digest of what happened, to show a seed replays exactly.
    pub digest: u64,
    pub steps: u64,
}

/// Runs one scenario to its end. `trace` prints what happens.
pub fn run(scenario: &Scenario, trace: bool) -> Outcome {
    let mut world = World::new(scenario, trace);
    world.run();
    world.outcome
}

// ----- payloads ---------------------------------------------------------------------------

const TAG_LEN: usize = 16;

/// A message's bytes: a 16-byte tag (`c` client to server, `s` server to client, `o` on-open;
/// the client; a sequence number) and a pattern the receiver checks.
fn payload(kind: u8, client: usize, seq: u64, len: usize) -> Vec<u8> {
    let mut out = format!("{}{}:{:012}|", kind as char, client, seq).into_bytes();
    debug_assert_eq!(out.len(), TAG_LEN);
    let skip = (seq % 26) as usize;
    out.extend_from_slice(&pattern()[skip..skip + len.saturating_sub(TAG_LEN)]);
    out
}

/// The letters after every tag, long enough for the largest message from any offset.
fn pattern() -> &'static [u8] {
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        (0..(128 << 10) + 26)
            .map(|i| b'a' + (i % 26) as u8)
            .collect()
    })
}

/// Whether `bytes` are the whole message the tag names.
fn intact(bytes: &[u8], kind: u8, client: usize, seq: u64) -> bool {
    let tag = format!("{}{}:{:012}|", kind as char, client, seq);
    let skip = (seq % 26) as usize;
    bytes.len() >= TAG_LEN
        && bytes[..TAG_LEN] == *tag.as_bytes()
        && bytes[TAG_LEN..] == pattern()[skip..skip + bytes.len() - TAG_LEN]
}

fn message(kind: u8, client: usize, seq: u64, len: usize, binary: bool) -> Message {
    let bytes = payload(kind, client, seq, len);
    if binary {
        Message::binary(bytes)
    } else {
        Message::text(String::from_utf8(bytes).expect("ASCII"))
    }
}

fn parse_tag(bytes: &[u8]) -> Option<(u8, usize, u64)> {
    let tag = bytes.get(..TAG_LEN)?;
    let text = std::str::from_utf8(tag).ok()?;
    let client = text.get(1..2)?.parse().ok()?;
    let seq = text.get(3..15)?.parse().ok()?;
    Some((tag[0], client, seq))
}

/// The sequence numbers of the client-to-server messages whose frames are entirely in
/// `wire` (what a client wrote: its opening request, then masked frames).
fn whole_frames(wire: &[u8]) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let Some(head) = wire.windows(4).position(|w| w == b"\r\n\r\n") else {
        return out;
    };
    let mut rest = &wire[head + 4..];
    while let Ok(Some((header, n))) = FrameHeader::parse(rest) {
        let len = header.payload_len as usize;
        if rest.len() < n + len {
            break;
        }
        if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            let mut prefix = rest[n..n + len.min(TAG_LEN)].to_vec();
            if let Some(key) = header.mask {
                tether::mask::apply_mask(&mut prefix, key);
            }
            if let Some((b'c', _, seq)) = parse_tag(&prefix) {
                out.insert(seq);
            }
        }
        rest = &rest[n + len..];
    }
    out
}

fn ms(t: Instant) -> f64 {
    t.as_nanos() as f64 / 1e6
}

// ----- the network ------------------------------------------------------------------------

#[derive(Debug)]
struct Segment {
    at: Instant,
    data: Vec<u8>,
    fin: bool,
}

/// One direction of a transport.
#[derive(Debug, Default)]
struct Pipe {
    segments: VecDeque<Segment>,
    in_flight: usize,
    /// Delivered, not yet read by the receiver.
    arrived: VecDeque<u8>,
    /// The sender's serialisation is busy until then.
    busy_until: Instant,
    /// Deliveries stay in order: none before the previous one.
    last_at: Instant,
    /// Nothing is delivered before then (`Instant::MAX`: a black hole).
    blocked_until: Option<Instant>,
    fin_arrived: bool,
    reset_at: Option<Instant>,
    reset_arrived: bool,
}

impl Pipe {
    fn room(&self, p: &LinkParams) -> usize {
        p.window.saturating_sub(self.in_flight + self.arrived.len())
    }

    fn send(&mut self, now: Instant, data: &[u8], p: &LinkParams, rng: &mut ChaCha8Rng) {
        let nanos = data.len() as u64 * 1_000_000_000 / p.bandwidth;
        let done = self.busy_until.max(now) + Duration::from_nanos(nanos);
        self.busy_until = done;
        let jitter = rng.next_u64() % (p.jitter.as_nanos() as u64 + 1);
        let at = self
            .last_at
            .max(done + p.latency + Duration::from_nanos(jitter));
        self.last_at = at;
        self.in_flight += data.len();
        self.segments.push_back(Segment {
            at,
            data: data.to_vec(),
            fin: false,
        });
    }

    fn send_fin(&mut self, now: Instant, p: &LinkParams) {
        let at = self.last_at.max(self.busy_until.max(now) + p.latency);
        self.last_at = at;
        self.segments.push_back(Segment {
            at,
            data: Vec::new(),
            fin: true,
        });
    }

    fn send_reset(&mut self, now: Instant, p: &LinkParams) {
        if self.reset_at.is_none() && !self.reset_arrived {
            self.reset_at = Some(now + p.latency);
        }
    }

    fn blocked(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|u| u > now)
    }

    fn next_at(&self, now: Instant) -> Option<Instant> {
        let flow = match self.blocked_until {
            Some(u) if u > now => (u != Instant::MAX).then_some(u),
            _ => self.segments.front().map(|s| s.at),
        };
        [flow, self.reset_at].into_iter().flatten().min()
    }

    fn is_idle(&self) -> bool {
        self.segments.is_empty() && self.reset_at.is_none()
    }

    /// Delivers what is due; true if anything changed.
    fn deliver(&mut self, now: Instant, p: &LinkParams) -> bool {
        let mut changed = false;
        if let Some(u) = self.blocked_until.filter(|u| *u <= now) {
            // A stall ends: what it held arrives one latency later, in order.
            self.blocked_until = None;
            for s in &mut self.segments {
                s.at = s.at.max(u + p.latency);
            }
            self.last_at = self.last_at.max(u + p.latency);
        }
        if let Some(at) = self.reset_at.filter(|at| *at <= now) {
            match self.blocked_until {
                Some(Instant::MAX) => self.reset_at = None,
                Some(u) => self.reset_at = Some(at.max(u + p.latency)),
                None => {
                    self.reset_at = None;
                    self.reset_arrived = true;
                    self.segments.clear();
                    self.in_flight = 0;
                    self.arrived.clear();
                    return true;
                }
            }
        }
        if self.reset_arrived {
            // The receiver's socket is gone: what comes after the reset goes nowhere.
            self.segments.clear();
            self.in_flight = 0;
            self.arrived.clear();
            return changed;
        }
        if self.blocked(now) {
            return changed;
        }
        while self.segments.front().is_some_and(|s| s.at <= now) {
            let s = self.segments.pop_front().expect("a segment");
            self.in_flight -= s.data.len();
            self.arrived.extend(s.data);
            self.fin_arrived |= s.fin;
            changed = true;
        }
        changed
    }
}

// ----- the parties ------------------------------------------------------------------------

/// One end of a transport: the connection and what the simulator knows about it.
#[derive(Default)]
struct End {
    conn: Option<Connection>,
    created: Instant,
    terminal: Option<(Instant, Closed)>,
    eof_fed: bool,
    shut: bool,
    /// The driver closed its socket.
    closed: bool,
    /// The server process died under it (no events are owed).
    killed: bool,
    aborted: bool,
    rejected: Option<u16>,
    close_called: Option<Instant>,
    /// The code of the first Close this end sent of its own accord (not an echo).
    sent_close: Option<CloseCode>,
    last_commit: Instant,
    /// The application reads nothing before then (server ends; clients keep theirs).
    paused_until: Instant,
}

struct Link {
    client: usize,
    ends: [End; 2],
    /// `pipes[0]` carries client to server, `pipes[1]` server to client.
    pipes: [Pipe; 2],
    /// Every byte the client wrote.
    client_wire: Vec<u8>,
    /// The end of the latest trouble on this link (stall, pause), for the heartbeat's
    /// "never while the peer answers" claim.
    trouble_until: Option<Instant>,
    /// Server-to-client messages the server's connection accepted.
    server_sent: Vec<u64>,
    /// Data messages the server received on it.
    server_seen: usize,
    on_open: usize,
    /// The last client message the server received on it.
    last_received: Option<u64>,
    /// The highest client message entirely written to the client's earlier transports: this
    /// one carries only later ones (the earlier ones were taken back and sent again, or lost).
    floor: Option<u64>,
}

impl Link {
    fn done(&self) -> bool {
        self.ends.iter().all(|e| e.conn.is_none()) && self.pipes.iter().all(Pipe::is_idle)
    }
}

/// The reconnect policy, written again from its documentation: what the next delay may be.
#[derive(Debug, Default)]
struct Mirror {
    attempt: u32,
    base: Duration,
    previous: Duration,
}

enum Expect {
    Retry {
        lo: Duration,
        hi: Duration,
        floor: Duration,
    },
    Stop,
    GiveUp(GiveUpReason),
}

struct Client {
    sup: Option<Supervisor>,
    session: u32,
    restart_at: Option<Instant>,
    link: Option<usize>,
    /// A transport being opened: when it was asked for, when it completes.
    connect: Option<(Instant, Instant)>,
    expect_connect_at: Option<Instant>,
    connects: u32,
    /// How the driver saw the last connection or attempt end, for the next `Disconnected`.
    pending_end: Option<(Disconnect, Option<Closed>, Option<Instant>)>,
    expect_terminal: Option<Expect>,
    stopping: bool,
    mirror: Mirror,
    paused_until: Instant,
    next_seq: u64,
    accepted: Vec<u64>,
    dropped: BTreeSet<u64>,
    unsent: BTreeSet<u64>,
    received: BTreeSet<u64>,
    /// The highest message entirely written to a transport the client is done with.
    written_floor: Option<u64>,
    next_s2c: u64,
    last_s2c: Option<u64>,
    s2c_received: BTreeSet<u64>,
    links: Vec<usize>,
}

struct Server {
    down_until: Option<Instant>,
    /// While down: the host is up (a crashed process; transports are reset) or not (a
    /// reboot; nothing answers).
    host_up: bool,
    overload: Option<(Instant, u16, u64)>,
}

pub struct World<'a> {
    sc: &'a Scenario,
    now: Instant,
    net: ChaCha8Rng,
    pos: usize,
    winding_down: bool,
    clients: Vec<Client>,
    links: Vec<Link>,
    server: Server,
    conn_seeds: u64,
    trace: bool,
    outcome: Outcome,
}

impl<'a> World<'a> {
    fn new(sc: &'a Scenario, trace: bool) -> Self {
        let clients = (0..sc.clients)
            .map(|_| Client {
                sup: None,
                session: 0,
                restart_at: Some(Instant::ZERO),
                link: None,
                connect: None,
                expect_connect_at: None,
                connects: 0,
                pending_end: None,
                expect_terminal: None,
                stopping: false,
                mirror: Mirror::default(),
                paused_until: Instant::ZERO,
                next_seq: 0,
                accepted: Vec::new(),
                dropped: BTreeSet::new(),
                unsent: BTreeSet::new(),
                received: BTreeSet::new(),
                written_floor: None,
                next_s2c: 0,
                last_s2c: None,
                s2c_received: BTreeSet::new(),
                links: Vec::new(),
            })
            .collect();
        World {
            sc,
            now: Instant::ZERO,
            net: ChaCha8Rng::seed_from_u64(sc.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            pos: 0,
            winding_down: false,
            clients,
            links: Vec::new(),
            server: Server {
                down_until: None,
                host_up: true,
                overload: None,
            },
            conn_seeds: sc.seed << 20,
            trace,
            outcome: Outcome::default(),
        }
    }

    /// Records the first violation.
    fn fail(&mut self, what: impl Into<String>) {
        if self.outcome.violation.is_none() {
            let what = what.into();
            if self.trace {
                eprintln!("{:>10.3}ms VIOLATION {what}", ms(self.now));
            }
            self.outcome.violation = Some(format!("at {:.3} ms: {what}", ms(self.now)));
        }
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(what());
        }
    }

    fn note(&mut self, what: impl FnOnce() -> String) {
        let line = what();
        // FNV-1a over every noted line: the digest of the run.
        let mut h = self.outcome.digest ^ 0xcbf2_9ce4_8422_2325;
        for b in line.bytes().chain(self.now.as_nanos().to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.outcome.digest = h;
        if self.trace {
            eprintln!("{:>10.3}ms {line}", ms(self.now));
        }
    }

    fn heartbeat(&self) -> (Duration, Duration) {
        let hb = self
            .sc
            .config
            .heartbeat
            .expect("the scenarios run heartbeats");
        (hb.interval, hb.timeout)
    }

    // ----- the main loop ------------------------------------------------------------------

    fn run(&mut self) {
        let limit = self.sc.horizon + WIND_DOWN_LIMIT;
        let mut stuck = 0;
        loop {
            self.settle();
            self.check_steady();
            if self.outcome.violation.is_some() {
                return;
            }
            let Some(next) = self.next_event() else {
                break;
            };
            if !self.winding_down && next >= self.sc.horizon {
                self.now = self.sc.horizon;
                self.wind_down();
                continue;
            }
            if next <= self.now {
                stuck += 1;
                if stuck > 100 {
                    self.fail("a deadline stays in the past: handle_timeout does not clear it");
                    return;
                }
            } else {
                stuck = 0;
            }
            self.now = self.now.max(next);
            self.outcome.steps += 1;
            if self.outcome.steps > MAX_STEPS || self.now > limit {
                self.fail(format!(
                    "the world did not run dry ({} steps)",
                    self.outcome.steps
                ));
                return;
            }
            self.fire();
        }
        if !self.winding_down {
            self.wind_down();
            return self.run();
        }
        self.finish();
    }

    fn next_event(&self) -> Option<Instant> {
        let now = self.now;
        let mut times: Vec<Instant> = Vec::new();
        if !self.winding_down {
            times.push(self.sc.horizon);
            times.extend(self.sc.script.get(self.pos).map(|(t, _)| *t));
        }
        for c in &self.clients {
            times.extend(c.restart_at);
            times.extend(c.connect.map(|(_, done)| done));
            times.extend(c.sup.as_ref().and_then(Supervisor::poll_timeout));
        }
        times.extend(self.server.down_until);
        for link in self.links.iter().filter(|l| !l.done()) {
            for pipe in &link.pipes {
                times.extend(pipe.next_at(now));
            }
            for end in &link.ends {
                times.extend(end.conn.as_ref().and_then(Connection::poll_timeout));
            }
        }
        times.into_iter().min()
    }

    /// Everything due at `now`.
    fn fire(&mut self) {
        let now = self.now;
        while !self.winding_down
            && let Some((t, op)) = self.sc.script.get(self.pos)
            && *t <= now
        {
            let op = op.clone();
            self.pos += 1;
            self.apply(op);
            self.settle();
        }
        if self.server.down_until.is_some_and(|t| t <= now) {
            self.server.down_until = None;
            self.note(|| "server up".into());
        }
        for c in 0..self.clients.len() {
            if self.clients[c].restart_at.is_some_and(|t| t <= now) {
                self.start_session(c);
            }
            if let Some((_, done)) = self.clients[c].connect
                && done <= now
            {
                self.connect_done(c);
            }
        }
        let p = self.sc.link.clone();
        for l in 0..self.links.len() {
            if self.links[l].done() {
                continue;
            }
            for d in 0..2 {
                if self.links[l].pipes[d].deliver(now, &p) {
                    self.drop_at_dead_end(l, d);
                }
            }
        }
        for c in &mut self.clients {
            if let Some(sup) = &mut c.sup {
                sup.handle_timeout(now);
            }
        }
        for link in &mut self.links {
            for end in &mut link.ends {
                if let Some(conn) = &mut end.conn {
                    conn.handle_timeout(now);
                }
            }
        }
    }

    /// Bytes that reach a socket nobody holds any more are dropped; a live host answers them
    /// with a reset.
    fn drop_at_dead_end(&mut self, l: usize, d: usize) {
        let to = 1 - d;
        let host_up = to == 0 || self.server.down_until.is_none() || self.server.host_up;
        let link = &mut self.links[l];
        let end = &link.ends[to];
        if (end.closed || end.killed) && !link.pipes[d].arrived.is_empty() {
            link.pipes[d].arrived.clear();
            if host_up && !link.ends[d].closed {
                link.pipes[to].send_reset(self.now, &self.sc.link);
            }
        }
    }

    /// Moves bytes, events and data at `now` until nothing changes.
    fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if self.outcome.violation.is_some() {
                return;
            }
            let mut progress = false;
            for c in 0..self.clients.len() {
                progress |= self.drive_client(c);
            }
            for l in 0..self.links.len() {
                if self.links[l].ends[1].conn.is_some() {
                    progress |= self.drive_end(l, 1);
                }
            }
            if !progress {
                return;
            }
        }
        self.fail("no quiescence: the parties keep making progress at one instant");
    }

    // ----- scripted steps -----------------------------------------------------------------

    fn current(&self, client: usize) -> Option<usize> {
        self.clients[client].link
    }

    fn trouble(&mut self, l: usize, until: Instant) {
        let t = &mut self.links[l].trouble_until;
        *t = Some(t.map_or(until, |t| t.max(until)));
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        let p = self.sc.link.clone();
        self.note(|| format!("op {op:?}"));
        let fault = op.is_fault();
        let applied = match op {
            Op::ClientSend {
                client,
                len,
                binary,
            } => {
                self.client_send(client, len, binary);
                true
            }
            Op::ServerSend {
                client,
                len,
                binary,
            } => {
                self.server_send(client, len, binary);
                true
            }
            Op::ClientPing { client } | Op::ServerPing { client } => {
                let side = usize::from(matches!(op, Op::ServerPing { .. }));
                if let Some(l) = self.current(client)
                    && let Some(conn) = &mut self.links[l].ends[side].conn
                    && conn.is_open()
                {
                    conn.ping(&b"app!"[..]).expect("open");
                }
                true
            }
            Op::ClientClose { client, code } | Op::ServerClose { client, code } => {
                let side = usize::from(matches!(op, Op::ServerClose { .. }));
                if let Some(l) = self.current(client) {
                    self.close_end(l, side, CloseCode(code));
                }
                true
            }
            Op::ClientStop { client, code } => {
                self.stop_session(client, CloseCode(code));
                true
            }
            Op::Reset { client } => match self.current(client) {
                Some(l) => {
                    for pipe in &mut self.links[l].pipes {
                        pipe.send_reset(now, &p);
                    }
                    true
                }
                None => false,
            },
            Op::BlackHole { client, dir } | Op::Stall { client, dir, .. } => {
                match self.current(client) {
                    Some(l) => {
                        let until = match op {
                            Op::Stall { ms, .. } => now + Duration::from_millis(ms),
                            _ => Instant::MAX,
                        };
                        let dirs: &[usize] = match dir {
                            Dir::Both => &[0, 1],
                            Dir::ClientToServer => &[0],
                            Dir::ServerToClient => &[1],
                        };
                        for &d in dirs {
                            let b = &mut self.links[l].pipes[d].blocked_until;
                            *b = Some(b.map_or(until, |b| b.max(until)));
                        }
                        self.trouble(l, until);
                        true
                    }
                    None => false,
                }
            }
            Op::ServerRestart { crash, down_ms } => {
                for l in 0..self.links.len() {
                    let link = &mut self.links[l];
                    if link.ends[1].conn.take().is_some() {
                        link.ends[1].killed = true;
                        if crash {
                            link.pipes[1].send_reset(now, &p);
                        }
                    }
                }
                self.server.down_until = Some(now + Duration::from_millis(down_ms));
                self.server.host_up = crash;
                true
            }
            Op::ServerOverload {
                ms,
                status,
                retry_after,
            } => {
                self.server.overload = Some((now + Duration::from_millis(ms), status, retry_after));
                true
            }
            Op::ClientPause { client, ms } => {
                let until = now + Duration::from_millis(ms);
                self.clients[client].paused_until = until;
                if let Some(l) = self.current(client) {
                    self.trouble(l, until);
                }
                true
            }
            Op::ServerPause { client, ms } => match self.current(client) {
                Some(l) => {
                    let until = now + Duration::from_millis(ms);
                    self.links[l].ends[1].paused_until = until;
                    self.trouble(l, until);
                    true
                }
                None => false,
            },
        };
        if fault && applied {
            self.outcome.faults += 1;
        }
    }

    fn client_send(&mut self, c: usize, len: usize, binary: bool) {
        let settings = &self.sc.session;
        let (max_messages, max_bytes, overflow) = (
            settings.max_queued_messages,
            settings.max_queued_bytes,
            settings.overflow,
        );
        let client = &mut self.clients[c];
        let seq = client.next_seq;
        let Some(sup) = &mut client.sup else {
            return;
        };
        let msg = message(b'c', c, seq, len, binary);
        let len = msg.len();
        let (before_messages, before_bytes) = (sup.queued_messages(), sup.queued_bytes());
        let fits = before_messages < max_messages && before_bytes + len <= max_bytes;
        let result = sup.send(msg);
        let (after_messages, after_bytes) = (sup.queued_messages(), sup.queued_bytes());
        let stopping = client.stopping || sup.is_closing();
        match result {
            Ok(()) => {
                client.accepted.push(seq);
                client.next_seq += 1;
                self.check(overflow != Overflow::RejectNew || fits, || {
                    format!(
                        "the queue took a {len}-byte message over its bounds: {before_messages} \
                         messages, {before_bytes} bytes queued, limits {max_messages}/{max_bytes}"
                    )
                });
                self.check(
                    after_messages <= max_messages && after_bytes <= max_bytes,
                    || {
                        format!(
                            "the queue grew past its bounds on send: {after_messages} messages, \
                             {after_bytes} bytes, limits {max_messages}/{max_bytes}"
                        )
                    },
                );
            }
            Err(err) => {
                let back = parse_tag(err.message.as_bytes());
                self.check(back == Some((b'c', c, seq)), || {
                    "a refused message was not handed back".into()
                });
                match err.kind {
                    SessionSendErrorKind::QueueFull { .. } => {
                        self.outcome.queue_refusals += 1;
                        let refusable = match overflow {
                            Overflow::DropOldest => len > max_bytes || max_messages == 0,
                            _ => !fits,
                        };
                        self.check(refusable, || {
                            format!(
                                "the queue refused a {len}-byte message with room: \
                                 {before_messages} messages, {before_bytes} bytes queued, \
                                 limits {max_messages}/{max_bytes}"
                            )
                        });
                    }
                    SessionSendErrorKind::Closing => {
                        self.check(stopping, || "refused as closing while not closing".into());
                    }
                    other => self.fail(format!("unexpected refusal {other:?}")),
                }
            }
        }
    }

    fn server_send(&mut self, c: usize, len: usize, binary: bool) {
        let Some(l) = self.current(c) else {
            return;
        };
        let hw = self.sc.config.high_watermark;
        let seq = self.clients[c].next_s2c;
        let Some(conn) = self.links[l].ends[1].conn.as_mut() else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        let before = conn.poll_transmit().map_or(0, |t| t.len());
        let writable = conn.is_writable();
        let msg = message(b's', c, seq, len, binary);
        let len = msg.len();
        let room = before == 0 || (writable && before + len <= hw);
        match conn.send(msg) {
            Ok(()) => {
                self.links[l].server_sent.push(seq);
                self.clients[c].next_s2c += 1;
                self.check(room, || {
                    format!(
                        "a send of {len} bytes was taken over the high watermark {hw} with \
                         {before} unwritten"
                    )
                });
            }
            Err(err) => {
                self.outcome.buffer_refusals += 1;
                self.check(!room, || {
                    format!("a send of {len} bytes refused ({err:?}) with {before} unwritten")
                });
            }
        }
    }

    fn close_end(&mut self, l: usize, side: usize, code: CloseCode) {
        let now = self.now;
        let end = &mut self.links[l].ends[side];
        if let Some(conn) = &mut end.conn
            && conn.is_open()
        {
            conn.close(now, code, "scripted").expect("open");
            end.close_called = Some(now);
            end.sent_close.get_or_insert(code);
        }
    }

    // ----- sessions -----------------------------------------------------------------------

    fn start_session(&mut self, c: usize) {
        let sc = self.sc;
        let client = &mut self.clients[c];
        client.restart_at = None;
        client.session += 1;
        self.outcome.sessions += 1;
        let mut settings = sc.session.clone();
        for (i, m) in settings.on_open.iter_mut().enumerate() {
            *m = message(b'o', c, i as u64, 20 + i, false);
        }
        let request =
            tether::handshake::ClientRequest::new("ws://sim.invalid/feed").expect("a ws URL");
        let rng = ChaCha8Rng::seed_from_u64(
            sc.seed
                .wrapping_mul(1_000_003)
                .wrapping_add(c as u64 * 1_009 + u64::from(client.session)),
        );
        client.sup = Some(Supervisor::new(
            request,
            sc.config.clone(),
            sc.reconnect.clone(),
            settings,
            rng,
            self.now,
        ));
        client.stopping = false;
        client.mirror = Mirror::default();
        client.connects = 0;
        client.expect_connect_at = Some(self.now);
        client.expect_terminal = None;
        self.note(|| format!("client {c}: session starts"));
    }

    fn stop_session(&mut self, c: usize, code: CloseCode) {
        let now = self.now;
        let client = &mut self.clients[c];
        let Some(sup) = &mut client.sup else {
            return;
        };
        client.stopping = true;
        sup.close(now);
        if let Some(l) = client.link {
            let end = &mut self.links[l].ends[0];
            if let Some(conn) = &mut end.conn {
                match conn.state() {
                    State::Open => {
                        conn.close(now, code, "stop").expect("open");
                        end.close_called = Some(now);
                        end.sent_close.get_or_insert(code);
                    }
                    State::Connecting => {
                        conn.abort();
                        end.aborted = true;
                    }
                    _ => {}
                }
            }
        }
    }

    fn connect_done(&mut self, c: usize) {
        let now = self.now;
        let p = &self.sc.link;
        let rtt = p.latency * 2;
        let client = &mut self.clients[c];
        let Some((started, _)) = client.connect.take() else {
            return;
        };
        if let Some(down_until) = self.server.down_until {
            if self.server.host_up {
                client.pending_end = Some((Disconnect::ConnectFailed, None, None));
                let sup = client.sup.as_mut().expect("a session");
                sup.connect_failed(now, "connection refused");
            } else {
                // Nobody answers; the connect goes through once the host is back.
                client.connect = Some((started, down_until + rtt));
            }
            return;
        }
        let sup = client.sup.as_mut().expect("a session");
        let Some(conn) = sup.transport_connected(now) else {
            self.fail("transport_connected refused a transport it asked for");
            return;
        };
        self.conn_seeds += 1;
        let server = Connection::server(
            self.sc.config.clone(),
            ServerPolicy::new(),
            ChaCha8Rng::seed_from_u64(self.conn_seeds),
            now,
        );
        let on_open = self.sc.session.on_open.len();
        let end = |conn| End {
            conn: Some(conn),
            created: now,
            last_commit: now,
            ..End::default()
        };
        self.links.push(Link {
            client: c,
            ends: [end(conn), end(server)],
            pipes: [Pipe::default(), Pipe::default()],
            client_wire: Vec::new(),
            // An application that is not reading is trouble for the new transport too.
            trouble_until: Some(self.clients[c].paused_until).filter(|t| *t > now),
            server_sent: Vec::new(),
            server_seen: 0,
            on_open,
            last_received: None,
            floor: self.clients[c].written_floor,
        });
        let l = self.links.len() - 1;
        self.clients[c].link = Some(l);
        self.clients[c].links.push(l);
        self.outcome.connections += 1;
        self.note(|| format!("client {c}: transport {l} open"));
    }

    fn drive_client(&mut self, c: usize) -> bool {
        let now = self.now;
        let mut progress = false;
        loop {
            let client = &mut self.clients[c];
            let Some(sup) = &mut client.sup else {
                break;
            };
            let Some(action) = sup.poll_action() else {
                break;
            };
            progress = true;
            self.note(|| format!("client {c}: {action:?}"));
            match action {
                SupervisorAction::Connect { attempt } => {
                    let client = &mut self.clients[c];
                    client.connects += 1;
                    let (want, expected_at) = (client.connects, client.expect_connect_at.take());
                    client.connect = Some((now, now + self.sc.link.latency * 2));
                    self.check(attempt == want, || {
                        format!(
                            "Connect announced attempt {attempt}, the {want}th since the last open"
                        )
                    });
                    self.check(expected_at == Some(now), || {
                        format!(
                            "a connect at {:.3} ms, expected at {:?}",
                            ms(now),
                            expected_at.map(ms)
                        )
                    });
                }
                SupervisorAction::AbandonConnect => {
                    let client = &mut self.clients[c];
                    let started = client.connect.take().map(|(s, _)| s);
                    let stopping = client.stopping;
                    if !stopping {
                        client.pending_end = Some((Disconnect::ConnectTimeout, None, None));
                        self.outcome.connect_timeouts += 1;
                    }
                    let due = started.map(|s| s + self.sc.session.connect_timeout);
                    self.check(stopping || due == Some(now), || {
                        format!(
                            "AbandonConnect at {:.3} ms, due at {:?}",
                            ms(now),
                            due.map(ms)
                        )
                    });
                }
                other => self.fail(format!("unknown action {other:?}")),
            }
        }
        loop {
            let Some(event) = self.clients[c]
                .sup
                .as_mut()
                .and_then(Supervisor::poll_event)
            else {
                break;
            };
            progress = true;
            self.on_supervisor_event(c, event);
        }
        if let Some(l) = self.clients[c].link {
            progress |= self.drive_end(l, 0);
        }
        progress
    }

    fn on_supervisor_event(&mut self, c: usize, event: SupervisorEvent) {
        let now = self.now;
        self.note(|| format!("client {c}: {event:?}"));
        match event {
            SupervisorEvent::Disconnected {
                reason,
                closed,
                retry_in,
                retry_at,
                requeued,
                ..
            } => {
                self.outcome.requeued += requeued as u64;
                let Some((want, want_closed, opened_at)) = self.clients[c].pending_end.take()
                else {
                    self.fail(format!(
                        "Disconnected ({reason:?}) for nothing the driver reported"
                    ));
                    return;
                };
                self.check(reason == want, || {
                    format!("Disconnected reason {reason:?}, expected {want:?}")
                });
                self.check(closed == want_closed, || {
                    format!("Disconnected carries {closed:?}, the connection said {want_closed:?}")
                });
                let expect = self.decide(c, reason, opened_at);
                let max = self.sc.reconnect.backoff.max;
                match expect {
                    Expect::Retry { lo, hi, floor } => {
                        let Some(delay) = retry_in else {
                            self.fail(format!("no retry after {reason:?}; the policy retries"));
                            return;
                        };
                        self.check(delay <= floor + max, || {
                            format!(
                                "reconnect delay {delay:?} over its cap {max:?} (+ floor {floor:?})"
                            )
                        });
                        let tolerance = Duration::from_micros(1);
                        self.check(delay + tolerance >= lo && delay <= hi + tolerance, || {
                            format!(
                                "reconnect delay {delay:?} outside the policy's [{lo:?}, {hi:?}] \
                                 after {reason:?}"
                            )
                        });
                        self.check(retry_at == Some(now + delay), || {
                            "retry_at is not now + retry_in".into()
                        });
                        if delay + tolerance >= floor + max {
                            self.outcome.capped_delays += 1;
                        }
                        let client = &mut self.clients[c];
                        client.mirror.previous = delay.saturating_sub(floor);
                        client.expect_connect_at = Some(now + delay);
                        client.expect_terminal = None;
                    }
                    Expect::Stop | Expect::GiveUp(_) => {
                        self.check(retry_in.is_none() && retry_at.is_none(), || {
                            format!("a retry in {retry_in:?} after {reason:?}; the policy ends")
                        });
                        self.clients[c].expect_terminal = Some(expect);
                    }
                }
            }
            SupervisorEvent::Dropped {
                messages,
                forgotten,
            } => {
                self.check(forgotten == 0, || "dropped messages were forgotten".into());
                for m in messages {
                    match parse_tag(m.as_bytes()) {
                        Some((b'c', who, seq)) if who == c => {
                            self.clients[c].dropped.insert(seq);
                        }
                        other => self.fail(format!("dropped a message not ours: {other:?}")),
                    }
                }
            }
            SupervisorEvent::GaveUp { unsent, .. } | SupervisorEvent::Stopped { unsent } => {
                let client = &mut self.clients[c];
                let sup = client.sup.as_mut().expect("a session");
                let queued = sup.queued_messages();
                let back = sup.take_unsent();
                let expected = client.expect_terminal.take();
                let stopping = client.stopping;
                let live = client.link.is_some() || client.connect.is_some();
                for m in &back {
                    if let Some((b'c', _, seq)) = parse_tag(m.as_bytes()) {
                        client.unsent.insert(seq);
                    }
                }
                client.sup = None;
                if !self.winding_down {
                    let wait = 1_000 + self.net.next_u64() % 4_000;
                    self.clients[c].restart_at = Some(now + Duration::from_millis(wait));
                }
                self.check(unsent == queued && back.len() == queued, || {
                    format!("the terminal event counts {unsent} unsent, the queue held {queued}")
                });
                self.check(!live, || "the supervisor ended with a transport out".into());
                let ok = match (&event_kind(&event), expected) {
                    (Terminal::Stopped, Some(Expect::Stop)) => true,
                    (Terminal::Stopped, None) => stopping,
                    (Terminal::GaveUp(got), Some(Expect::GiveUp(want))) => *got == want,
                    _ => false,
                };
                if matches!(event, SupervisorEvent::GaveUp { .. }) {
                    self.outcome.gave_up += 1;
                }
                self.check(ok, || {
                    format!("terminal event {event:?} is not what the policy decided")
                });
            }
            other => self.fail(format!("unknown supervisor event {other:?}")),
        }
    }

    /// What the policy may answer, from its documented rules.
    fn decide(&mut self, c: usize, why: Disconnect, opened_at: Option<Instant>) -> Expect {
        let now = self.now;
        let cfg = &self.sc.reconnect;
        let b = &cfg.backoff;
        let m = &mut self.clients[c].mirror;
        let reset = |m: &mut Mirror| {
            m.attempt = 0;
        };
        if opened_at.is_some_and(|o| now - o >= cfg.stable_period) {
            reset(m);
        }
        let floor = match cfg.action_for(&why) {
            Action::Retry => Duration::ZERO,
            Action::RetryAfterAtLeast(floor) => floor,
            Action::Stop => {
                reset(m);
                return Expect::Stop;
            }
            _ => {
                reset(m);
                return Expect::GiveUp(GiveUpReason::NotRetryable(why));
            }
        };
        if let Some(max) = cfg.max_attempts
            && m.attempt >= max
        {
            let attempts = m.attempt;
            reset(m);
            return Expect::GiveUp(GiveUpReason::AttemptsExhausted {
                attempts,
                last: why,
            });
        }
        let retry_after = match why {
            Disconnect::HandshakeRejected { retry_after, .. } => retry_after.unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let floor = floor.max(retry_after);
        m.attempt += 1;
        let was_open = why.was_open();
        let spread_first = m.attempt == 1 && was_open && b.first_delay_max.is_some();
        if m.attempt == 1 {
            m.base = match b.first_delay_max {
                Some(first) if was_open => first,
                _ => b.initial,
            };
            m.previous = m.base;
        }
        let multiplier = if b.multiplier >= 1.0 {
            b.multiplier
        } else {
            1.0
        };
        let scaled = m.base.as_secs_f64() * multiplier.powi(m.attempt as i32 - 1);
        let ceiling = if scaled < b.max.as_secs_f64() {
            Duration::from_secs_f64(scaled)
        } else {
            b.max
        };
        let jitter = if spread_first { Jitter::Full } else { b.jitter };
        let (lo, hi) = match jitter {
            Jitter::None => (ceiling, ceiling),
            Jitter::Full => (Duration::ZERO, ceiling),
            Jitter::Equal => (ceiling - ceiling / 2, ceiling),
            _ => {
                let low = m.base.min(b.max);
                (low, (m.previous * 3).min(b.max).max(low))
            }
        };
        Expect::Retry {
            lo: floor + lo,
            hi: floor + hi,
            floor,
        }
    }

    // ----- one end of a transport ---------------------------------------------------------

    fn drive_end(&mut self, l: usize, s: usize) -> bool {
        let Some(mut conn) = self.links[l].ends[s].conn.take() else {
            return false;
        };
        let now = self.now;
        let c = self.links[l].client;
        let mut progress = false;
        if s == 0
            && let Some(sup) = &mut self.clients[c].sup
        {
            progress |= sup.send_queued(&mut conn) > 0;
        }
        progress |= self.write_out(l, s, &mut conn);
        while let Some(event) = conn.poll_event() {
            progress = true;
            self.on_event(l, s, &mut conn, event);
        }
        let paused = match s {
            0 => self.clients[c].paused_until > now,
            _ => self.links[l].ends[1].paused_until > now,
        };
        if !paused {
            while let Some(data) = conn.read() {
                progress = true;
                self.on_data(l, s, data);
            }
        }
        progress |= self.read_in(l, s, &mut conn);
        match conn.poll_transport() {
            Some(TransportAction::Shutdown) if !self.links[l].ends[s].shut => {
                self.links[l].ends[s].shut = true;
                self.links[l].pipes[s].send_fin(now, &self.sc.link);
                progress = true;
            }
            Some(TransportAction::Close) => {
                // The application takes what is left, then the socket goes.
                while let Some(event) = conn.poll_event() {
                    self.on_event(l, s, &mut conn, event);
                }
                while let Some(data) = conn.read() {
                    self.on_data(l, s, data);
                }
                let link = &mut self.links[l];
                if !link.ends[s].shut {
                    link.ends[s].shut = true;
                    link.pipes[s].send_fin(now, &self.sc.link);
                }
                link.ends[s].closed = true;
                link.pipes[1 - s].arrived.clear();
                let has_terminal = link.ends[s].terminal.is_some();
                self.check(has_terminal, || {
                    format!("transport {l} end {s} closed before its terminal event")
                });
                if s == 0 {
                    self.end_client_connection(c, l, conn);
                }
                return true;
            }
            _ => {}
        }
        self.links[l].ends[s].conn = Some(conn);
        progress
    }

    fn write_out(&mut self, l: usize, s: usize, conn: &mut Connection) -> bool {
        let p = &self.sc.link;
        let link = &mut self.links[l];
        if link.ends[s].shut || link.pipes[1 - s].reset_arrived {
            return false;
        }
        let mut progress = false;
        while let Some(transmit) = conn.poll_transmit() {
            let room = link.pipes[s].room(p).min(p.mss);
            if room == 0 {
                break;
            }
            let run = transmit.first();
            let n = run.len().min(room);
            link.pipes[s].send(self.now, &run[..n], p, &mut self.net);
            if s == 0 {
                link.client_wire.extend_from_slice(&run[..n]);
            }
            conn.advance(n);
            progress = true;
            if s == 0
                && let Some(sup) = &mut self.clients[link.client].sup
            {
                sup.send_queued(conn);
            }
        }
        progress
    }

    fn read_in(&mut self, l: usize, s: usize, conn: &mut Connection) -> bool {
        let now = self.now;
        let link = &mut self.links[l];
        let end = &mut link.ends[s];
        let pipe = &mut link.pipes[1 - s];
        if end.eof_fed {
            return false;
        }
        if pipe.reset_arrived {
            // A reset shows on the next read or write; the driver reports the failure.
            end.eof_fed = true;
            conn.handle_eof(now);
            return true;
        }
        let mut progress = false;
        while !pipe.arrived.is_empty() && conn.wants_read() {
            let mut buf = conn.recv_buf();
            let n = buf.len().min(pipe.arrived.len());
            if n == 0 {
                drop(buf);
                self.fail("recv_buf offered no room while the connection wants to read");
                return progress;
            }
            let (front, back) = pipe.arrived.as_slices();
            let k = n.min(front.len());
            buf[..k].copy_from_slice(&front[..k]);
            buf[k..n].copy_from_slice(&back[..n - k]);
            pipe.arrived.drain(..n);
            buf.commit(now, n);
            end.last_commit = now;
            progress = true;
        }
        if pipe.arrived.is_empty() && pipe.fin_arrived && conn.wants_read() {
            end.eof_fed = true;
            conn.handle_eof(now);
            progress = true;
        }
        progress
    }

    fn end_client_connection(&mut self, c: usize, l: usize, mut conn: Connection) {
        let now = self.now;
        let client = &mut self.clients[c];
        let closed = conn.closed().cloned();
        let want = if client.stopping {
            Disconnect::UserClosed
        } else {
            closed
                .as_ref()
                .map_or(Disconnect::TransportLost, Disconnect::from_closed)
        };
        let opened_at = conn.opened_at();
        if opened_at.is_some() {
            client.connects = 0;
        }
        client.pending_end = Some((want, closed, opened_at));
        client.link = None;
        let written = whole_frames(&self.links[l].client_wire).last().copied();
        client.written_floor = client.written_floor.max(written);
        if let Some(sup) = &mut client.sup {
            sup.connection_ended(now, &mut conn);
        }
        if let Some(event) = conn.poll_event() {
            self.fail(format!(
                "an event after the connection was handed back: {event:?}"
            ));
        }
        self.note(|| format!("client {c}: transport {l} ended"));
    }

    fn on_event(&mut self, l: usize, s: usize, conn: &mut Connection, event: Event) {
        let now = self.now;
        if let Some((at, closed)) = &self.links[l].ends[s].terminal {
            let what = format!(
                "transport {l} end {s}: {event:?} after its terminal event ({closed:?} at {:.3} ms)",
                ms(*at)
            );
            self.fail(what);
            return;
        }
        match event {
            Event::Request(_) => {
                let overload = self.server.overload.filter(|(until, ..)| *until > now);
                match overload {
                    Some((_, status, retry_after)) => {
                        let reject =
                            Reject::new(status).header("Retry-After", retry_after.to_string());
                        conn.reject(reject).expect("awaiting accept");
                        self.links[l].ends[s].rejected = Some(status);
                    }
                    None => conn.accept(now, Accept::new()).expect("awaiting accept"),
                }
            }
            Event::Closed(closed) => {
                self.note(|| format!("transport {l} end {s}: {closed:?}"));
                self.links[l].ends[s].terminal = Some((now, closed.clone()));
                self.check_terminal(l, s, &closed);
            }
            _ => {}
        }
    }

    fn check_terminal(&mut self, l: usize, s: usize, closed: &Closed) {
        let now = self.now;
        let cfg = &self.sc.config;
        let (interval, pong) = self.heartbeat();
        let link = &self.links[l];
        let end = &link.ends[s];
        let peer = &link.ends[1 - s];
        let code = closed.code;
        let local = closed.initiator == Initiator::Local;
        let mut problems = Vec::new();
        let ok = match &closed.cause {
            CloseCause::Normal => {
                self.outcome.clean_closes += 1;
                let want = if local {
                    peer.sent_close.or(end.sent_close)
                } else {
                    peer.sent_close
                };
                closed.clean && Some(code) == want
            }
            CloseCause::TransportLost => code == CloseCode::ABNORMAL && end.eof_fed,
            CloseCause::CloseTimeout => {
                self.outcome.close_timeouts += 1;
                code == CloseCode::ABNORMAL
                    && local
                    && end.close_called.map(|t| t + cfg.close_timeout) == Some(now)
            }
            CloseCause::HeartbeatTimeout => {
                self.outcome.heartbeat_timeouts += 1;
                let bound = end.last_commit + interval + pong;
                let peer_alive = peer.conn.as_ref().is_some_and(|p| p.state() == State::Open);
                let quiet_since = now.saturating_sub(interval + pong);
                let healthy = link.trouble_until.is_none_or(|t| t < quiet_since)
                    && !link.pipes.iter().any(|p| p.blocked_until.is_some());
                if now > bound {
                    problems.push(format!(
                        "transport {l} end {s}: dead peer declared at {:.3} ms, later than last \
                         input {:.3} ms + interval {interval:?} + pong timeout {pong:?}",
                        ms(now),
                        ms(end.last_commit)
                    ));
                }
                if peer_alive && healthy {
                    problems.push(format!(
                        "transport {l} end {s}: declared dead while the peer is alive and the \
                         link has delivered for {:?}",
                        interval + pong
                    ));
                }
                code == CloseCode::INTERNAL_ERROR && local && !closed.clean
            }
            CloseCause::IdleTimeout => {
                self.outcome.idle_timeouts += 1;
                cfg.idle_timeout
                    .is_some_and(|idle| now <= end.last_commit + idle)
                    && code == CloseCode::GOING_AWAY
                    && local
            }
            CloseCause::HandshakeTimeout => {
                self.outcome.handshake_timeouts += 1;
                now == end.created + cfg.handshake_timeout
            }
            CloseCause::Aborted => end.aborted,
            CloseCause::HandshakeFailed(_) => s == 0 && (end.eof_fed || peer.rejected.is_some()),
            CloseCause::HandshakeRejected { status } => end.rejected == Some(*status),
            _ => false,
        };
        let fails_itself = local
            && matches!(
                closed.cause,
                CloseCause::HeartbeatTimeout | CloseCause::IdleTimeout | CloseCause::Protocol(_)
            );
        if fails_itself {
            self.links[l].ends[s].sent_close.get_or_insert(code);
        }
        for problem in problems {
            self.fail(problem);
        }
        self.check(ok, || {
            format!("transport {l} end {s}: wrong terminal event {closed:?}")
        });
    }

    fn on_data(&mut self, l: usize, s: usize, data: Data) {
        let Data::Message(m) = data else {
            self.fail(format!("streaming data without streaming: {data:?}"));
            return;
        };
        let bytes = m.as_bytes();
        let Some((kind, who, seq)) = parse_tag(bytes) else {
            self.fail("a message without a tag");
            return;
        };
        let intact = intact(bytes, kind, who, seq);
        self.check(intact, || {
            format!("message {seq} from {} corrupted", kind as char)
        });
        self.outcome.delivered += 1;
        let c = self.links[l].client;
        self.check(who == c, || {
            format!("client {c} got client {who}'s message")
        });
        let link = &mut self.links[l];
        match (s, kind) {
            (1, b'o') => {
                let i = link.server_seen;
                link.server_seen += 1;
                self.check(seq == i as u64, || {
                    format!("on-open message {seq} arrived as message {i}")
                });
            }
            (1, b'c') => {
                let (i, on_open) = (link.server_seen, link.on_open);
                link.server_seen += 1;
                let (last, floor) = (link.last_received.replace(seq), link.floor);
                self.check(i >= on_open, || {
                    format!("queued message {seq} arrived before the on-open messages")
                });
                let first_time = self.clients[c].received.insert(seq);
                self.check(first_time, || format!("message {seq} delivered twice"));
                self.check(last.is_none_or(|last| seq > last), || {
                    format!("message {seq} delivered after {last:?} on transport {l}")
                });
                self.check(floor.is_none_or(|floor| seq > floor), || {
                    format!(
                        "message {seq} on transport {l}, after {floor:?} was entirely written to \
                         an earlier one"
                    )
                });
            }
            (0, b's') => {
                let client = &mut self.clients[c];
                let last = client.last_s2c.replace(seq);
                client.s2c_received.insert(seq);
                self.check(last.is_none_or(|last| seq > last), || {
                    format!("server message {seq} delivered after {last:?}: twice or out of order")
                });
            }
            _ => self.fail(format!("end {s} got a '{}' message", kind as char)),
        }
    }

    // ----- invariants at rest -------------------------------------------------------------

    fn check_steady(&mut self) {
        let now = self.now;
        let cfg = &self.sc.config;
        let (interval, pong) = self.heartbeat();
        let hw = cfg.high_watermark;
        let biggest = 96 << 10;
        // The watermark's documented bound: sends stop over the mark (one message may go into
        // an empty buffer), replies stop reading over it.
        let out_bound = 2 * hw + biggest + cfg.read_buffer_size + FRAMING_SLACK;
        // "A peer that never reads costs at most about twice this plus one message of each
        // direction": buffers are counted by capacity, which may round up to twice the length.
        let memory_bound = 2 * (2 * hw + 2 * biggest + 2 * cfg.read_buffer_size + FRAMING_SLACK);
        let mut found = None;
        for (l, link) in self.links.iter().enumerate() {
            for (s, end) in link.ends.iter().enumerate() {
                let Some(conn) = &end.conn else {
                    continue;
                };
                let unwritten = conn.poll_transmit().map_or(0, |t| t.len());
                let memory = conn.buffer_memory();
                let pct = (memory * 100 / memory_bound) as u64;
                self.outcome.peak_memory_pct = self.outcome.peak_memory_pct.max(pct);
                let paused = match s {
                    0 => self.clients[link.client].paused_until > now,
                    _ => end.paused_until > now,
                };
                if unwritten > out_bound {
                    found = Some(format!(
                        "transport {l} end {s}: {unwritten} bytes unwritten, over {out_bound}"
                    ));
                } else if memory > memory_bound {
                    found = Some(format!(
                        "transport {l} end {s}: buffer_memory {memory}, over {memory_bound}"
                    ));
                } else if conn.state() == State::Open
                    && !paused
                    && !conn.has_unread_data()
                    && now > end.last_commit + interval + pong
                {
                    found = Some(format!(
                        "transport {l} end {s}: silent since {:.3} ms and still not declared dead",
                        ms(end.last_commit)
                    ));
                }
            }
        }
        if let Some(what) = found {
            self.fail(what);
        }
    }

    // ----- the end ------------------------------------------------------------------------

    fn wind_down(&mut self) {
        self.winding_down = true;
        self.note(|| "wind down".into());
        self.server.down_until = None;
        self.server.overload = None;
        for l in 0..self.links.len() {
            self.links[l].ends[1].paused_until = self.now;
        }
        for c in 0..self.clients.len() {
            self.clients[c].paused_until = self.now;
            self.clients[c].restart_at = None;
            self.stop_session(c, CloseCode::NORMAL);
        }
    }

    fn finish(&mut self) {
        for (l, link) in self.links.iter().enumerate() {
            for (s, end) in link.ends.iter().enumerate() {
                if !end.killed && end.terminal.is_none() {
                    self.outcome.violation.get_or_insert(format!(
                        "transport {l} end {s} never had its terminal event"
                    ));
                }
            }
        }
        for c in 0..self.clients.len() {
            if self.clients[c].sup.is_some() {
                self.fail(format!("client {c}'s session never ended"));
            }
            self.account(c);
        }
    }

    /// Every message the client's sessions accepted was delivered once, handed back, or lost
    /// with a transport that died after its frame was entirely written.
    fn account(&mut self, c: usize) {
        let client = &self.clients[c];
        let mut lost_ok = BTreeSet::new();
        let mut found = None;
        for &l in &client.links {
            let link = &self.links[l];
            let written = whole_frames(&link.client_wire);
            let clean = link.ends.iter().all(|e| {
                e.terminal
                    .as_ref()
                    .is_some_and(|(_, t)| t.cause == CloseCause::Normal && t.clean)
            });
            if clean {
                if let Some(seq) = written.iter().find(|s| !client.received.contains(s)) {
                    found = Some(format!(
                        "message {seq} written on transport {l}, which closed cleanly, never arrived"
                    ));
                }
                if let Some(seq) = link
                    .server_sent
                    .iter()
                    .find(|s| !client.s2c_received.contains(s))
                {
                    found = Some(format!(
                        "server message {seq} sent on transport {l}, which closed cleanly, never \
                         arrived"
                    ));
                }
            } else {
                lost_ok.extend(written);
            }
        }
        for &seq in &client.accepted {
            let places = [&client.received, &client.unsent, &client.dropped]
                .iter()
                .filter(|set| set.contains(&seq))
                .count();
            if places > 1 {
                found = Some(format!("message {seq} both delivered and handed back"));
            } else if places == 0 {
                if lost_ok.contains(&seq) {
                    self.outcome.lost += 1;
                } else {
                    found = Some(format!(
                        "message {seq} lost, but its frame was never entirely written to a \
                         transport that died"
                    ));
                }
            }
        }
        if let Some(seq) = client.received.iter().find(|s| **s >= client.next_seq) {
            found = Some(format!("message {seq} delivered but never accepted"));
        }
        if let Some(what) = found {
            self.outcome
                .violation
                .get_or_insert(format!("client {c}: {what}"));
        }
    }
}

enum Terminal {
    Stopped,
    GaveUp(GiveUpReason),
}

fn event_kind(event: &SupervisorEvent) -> Terminal {
    match event {
        SupervisorEvent::GaveUp { reason, .. } => Terminal::GaveUp(*reason),
        _ => Terminal::Stopped,
    }
}
