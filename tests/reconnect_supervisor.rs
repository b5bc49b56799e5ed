//! The reconnect supervisor beside a client connection, against an in-memory server on a virtual
//! clock: outages, backoff, the outbound queue across transports (what comes back, what is lost),
//! the terminal events and the supervisor's own timers.

use core::time::Duration;

use bytes::BytesMut;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use tether::frame::{FrameHeader, OpCode};
use tether::handshake::{Accept, ClientRequest, Reject, ServerPolicy};
use tether::reconnect::{
    Disconnect, GiveUpReason, Jitter, Overflow, ReconnectConfig, SessionConfig,
    SessionSendErrorKind, Supervisor, SupervisorAction, SupervisorEvent,
};
use tether::{
    CloseCause, CloseCode, Closed, Config, Connection, Data, Event, Initiator, Instant, Message,
    TransportAction,
};

const SEC: Duration = Duration::from_secs(1);

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A config with no heartbeat, so the runs see no pings unless a test asks for them.
fn quiet() -> Config {
    let mut config = Config::default();
    config.heartbeat = None;
    config
}

fn request() -> ClientRequest {
    ClientRequest::new("ws://example.com/feed").expect("a ws URL")
}

fn text(s: &str) -> Message {
    Message::text(s.to_string())
}

fn texts(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.as_bytes().to_vec()).expect("text"))
        .collect()
}

fn on_open(messages: &[&str]) -> SessionConfig {
    let mut settings = SessionConfig::default();
    settings.on_open = messages.iter().map(|m| text(m)).collect();
    settings
}

/// A masked text frame, which no server may send (RFC 6455 §5.1).
fn masked_frame(payload: &[u8]) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Text,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut out = BytesMut::new();
    header.encode(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    tether::mask::apply_mask(&mut out[start..], key);
    out.to_vec()
}

/// How the simulated driver answers [`SupervisorAction::Connect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Connects {
    /// The transport opens after this long (zero: at once), unless the server is down.
    After(Duration),
    /// The driver never reports anything.
    Hang,
}

/// A supervisor, its driver, the client connection and the server it reaches, on one clock.
struct Sim {
    sup: Supervisor,
    now: Instant,
    /// The client connection on the current transport.
    client: Option<Connection>,
    /// The client half-closed its transport.
    client_shut: bool,
    /// The server side of the current transport.
    server: Option<Connection>,
    server_shut: bool,
    /// The server process hangs: it reads nothing, writes nothing, fires no timers, but its
    /// transport stays up (the client's writes vanish into it).
    frozen: bool,
    /// The server refuses connections before this instant.
    up_at: Instant,
    /// How the server answers opening requests: `None` accepts.
    reject: Option<Reject>,
    connects: Connects,
    pending_connect: Option<Instant>,
    /// How many more client bytes the driver may write; `None` for no limit.
    write_budget: Option<usize>,
    /// The driver writes nothing once the client is open (a peer that stopped reading).
    stall_when_open: bool,
    /// The client's application reads what arrives.
    app_reads: bool,
    server_seed: u64,
    events: Vec<(Instant, SupervisorEvent)>,
    /// Every `Connect`: when, and the attempt it announced.
    connect_log: Vec<(Instant, u32)>,
    /// When each `AbandonConnect` came.
    abandon_log: Vec<Instant>,
    /// When each client connection reported `Event::Connected`.
    opened_log: Vec<Instant>,
    /// Every lifecycle event of every client connection, in order.
    client_events: Vec<Event>,
    /// Everything the client's application read.
    client_data: Vec<Data>,
    /// Every data message each server received, one list per transport.
    received: Vec<Vec<Message>>,
    server_ends: Vec<Closed>,
    /// The `Sec-WebSocket-Key` of every opening request the servers saw.
    keys: Vec<String>,
    /// Transports that opened for an attempt the supervisor had abandoned.
    unused_transports: usize,
}

impl Sim {
    fn new(reconnect: ReconnectConfig, settings: SessionConfig) -> Self {
        Sim::with_config(quiet(), reconnect, settings)
    }

    fn with_config(config: Config, reconnect: ReconnectConfig, settings: SessionConfig) -> Self {
        let sup = Supervisor::new(
            request(),
            config,
            reconnect,
            settings,
            rng(42),
            Instant::ZERO,
        );
        Sim {
            sup,
            now: Instant::ZERO,
            client: None,
            client_shut: false,
            server: None,
            server_shut: false,
            frozen: false,
            up_at: Instant::ZERO,
            reject: None,
            connects: Connects::After(Duration::ZERO),
            pending_connect: None,
            write_budget: None,
            stall_when_open: false,
            app_reads: true,
            server_seed: 100,
            events: Vec::new(),
            connect_log: Vec::new(),
            abandon_log: Vec::new(),
            opened_log: Vec::new(),
            client_events: Vec::new(),
            client_data: Vec::new(),
            received: Vec::new(),
            server_ends: Vec::new(),
            keys: Vec::new(),
            unused_transports: 0,
        }
    }

    fn open_transport(&mut self) {
        self.pending_connect = None;
        // None: the attempt was abandoned before the driver got to it; the transport is closed.
        let Some(client) = self.sup.transport_connected(self.now) else {
            self.unused_transports += 1;
            return;
        };
        self.client = Some(client);
        self.client_shut = false;
        self.server_seed += 1;
        self.server = Some(Connection::server(
            quiet(),
            ServerPolicy::new(),
            rng(self.server_seed),
            self.now,
        ));
        self.server_shut = false;
        self.frozen = false;
        self.received.push(Vec::new());
    }

    fn is_open(&self) -> bool {
        self.client.as_ref().is_some_and(Connection::is_open)
    }

    fn client(&mut self) -> &mut Connection {
        self.client.as_mut().expect("a client connection")
    }

    /// The server's application: answers requests, reads every message, notes the end.
    fn serve(&mut self, server: &mut Connection) -> bool {
        let mut progress = false;
        while let Some(event) = server.poll_event() {
            progress = true;
            match event {
                Event::Request(request) => {
                    self.keys
                        .extend(request.header("Sec-WebSocket-Key").map(String::from));
                    match self.reject.clone() {
                        Some(reject) => server.reject(reject).expect("awaiting"),
                        None => server.accept(self.now, Accept::new()).expect("awaiting"),
                    }
                }
                Event::Closed(closed) => self.server_ends.push(closed),
                _ => {}
            }
        }
        while let Some(data) = server.read() {
            progress = true;
            if let Data::Message(m) = data {
                self.received.last_mut().expect("a transport").push(m);
            }
        }
        progress
    }

    /// The server side of the transport is gone: a live server sees its end of stream.
    fn drop_server(&mut self) {
        if let Some(mut server) = self.server.take()
            && !self.frozen
        {
            server.handle_eof(self.now);
            self.serve(&mut server);
        }
        self.frozen = false;
    }

    /// The client's driver is done with the transport: it reports the end and drops it.
    fn end_client(&mut self) {
        let mut client = self.client.take().expect("a client");
        self.sup.connection_ended(self.now, &mut client);
        self.drop_server();
    }

    /// The transport dies under both ends; the driver learns it from a failed write and reports
    /// the end directly.
    fn kill(&mut self) {
        self.drop_server();
        if self.client.is_some() {
            self.end_client();
        }
        self.drive();
    }

    /// The transport dies under both ends; the driver learns it from a read (end of stream) and
    /// waits for the connection to say `Close`.
    fn kill_by_eof(&mut self) {
        self.drop_server();
        if let Some(client) = &mut self.client {
            client.handle_eof(self.now);
        }
        self.drive();
    }

    /// Moves actions, bytes, events and data until nothing changes.
    fn drive(&mut self) {
        loop {
            let mut progress = false;
            while let Some(action) = self.sup.poll_action() {
                progress = true;
                match action {
                    SupervisorAction::Connect { attempt } => {
                        self.connect_log.push((self.now, attempt));
                        match self.connects {
                            Connects::Hang => {}
                            Connects::After(_) if self.now < self.up_at => {
                                self.sup.connect_failed(self.now, "connection refused");
                            }
                            Connects::After(d) if d.is_zero() => self.open_transport(),
                            Connects::After(d) => self.pending_connect = Some(self.now + d),
                        }
                    }
                    SupervisorAction::AbandonConnect => {
                        self.abandon_log.push(self.now);
                        self.pending_connect = None;
                    }
                    other => panic!("unexpected action {other:?}"),
                }
            }
            progress |= self.drive_client();
            progress |= self.drive_server();
            while let Some(event) = self.sup.poll_event() {
                progress = true;
                self.events.push((self.now, event));
            }
            if !progress {
                break;
            }
        }
    }

    fn drive_client(&mut self) -> bool {
        let Some(client) = self.client.as_mut() else {
            return false;
        };
        let mut progress = self.sup.send_queued(client) > 0;
        if !(self.stall_when_open && client.is_open()) {
            let mut bytes = Vec::new();
            while let Some(transmit) = client.poll_transmit() {
                let run = transmit.first();
                let n = run.len().min(self.write_budget.unwrap_or(usize::MAX));
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&run[..n]);
                client.advance(n);
                if let Some(budget) = &mut self.write_budget {
                    *budget -= n;
                }
            }
            if !bytes.is_empty() {
                progress = true;
                self.sup.send_queued(client);
                if let Some(server) = self.server.as_mut().filter(|_| !self.frozen) {
                    server.handle_data(self.now, &bytes);
                }
            }
        }
        while let Some(event) = client.poll_event() {
            progress = true;
            if let Event::Connected { .. } = event {
                self.opened_log.push(self.now);
            }
            self.client_events.push(event);
        }
        if self.app_reads {
            while let Some(data) = client.read() {
                progress = true;
                self.client_data.push(data);
            }
        }
        match client.poll_transport() {
            Some(TransportAction::Shutdown) if !self.client_shut => {
                progress = true;
                self.client_shut = true;
                if let Some(server) = self.server.as_mut().filter(|_| !self.frozen) {
                    server.handle_eof(self.now);
                }
            }
            Some(TransportAction::Close) => {
                progress = true;
                self.end_client();
            }
            _ => {}
        }
        progress
    }

    fn drive_server(&mut self) -> bool {
        if self.frozen {
            return false;
        }
        let Some(mut server) = self.server.take() else {
            return false;
        };
        let mut progress = self.serve(&mut server);
        let mut out = Vec::new();
        while let Some(transmit) = server.poll_transmit() {
            let n = transmit.len();
            transmit.iter().for_each(|run| out.extend_from_slice(run));
            server.advance(n);
        }
        progress |= self.serve(&mut server);
        let action = server.poll_transport();
        if let Some(client) = &mut self.client {
            if !out.is_empty() {
                progress = true;
                client.handle_data(self.now, &out);
            }
            let eof = match action {
                Some(TransportAction::Shutdown) => !self.server_shut,
                Some(TransportAction::Close) => true,
                _ => false,
            };
            if eof {
                progress = true;
                client.handle_eof(self.now);
            }
        }
        match action {
            Some(TransportAction::Shutdown) => self.server_shut = true,
            Some(TransportAction::Close) => {
                progress = true;
                return progress;
            }
            _ => {}
        }
        self.server = Some(server);
        progress
    }

    /// Jumps to the earliest deadline of anyone and fires it; false when nobody has one.
    fn advance(&mut self) -> bool {
        let server = self.server.as_ref().filter(|_| !self.frozen);
        let next = [
            self.sup.poll_timeout(),
            self.client.as_ref().and_then(Connection::poll_timeout),
            server.and_then(Connection::poll_timeout),
            self.pending_connect,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        if self.pending_connect.is_some_and(|t| t <= self.now) {
            if self.now < self.up_at {
                self.pending_connect = None;
                self.sup.connect_failed(self.now, "connection refused");
            } else {
                self.open_transport();
            }
        }
        self.sup.handle_timeout(self.now);
        if let Some(client) = &mut self.client {
            client.handle_timeout(self.now);
        }
        if let Some(server) = self.server.as_mut().filter(|_| !self.frozen) {
            server.handle_timeout(self.now);
        }
        self.drive();
        true
    }

    /// Advances until `done` holds (checked after every step).
    fn run_until(&mut self, mut done: impl FnMut(&Sim) -> bool) {
        self.drive();
        for _ in 0..10_000 {
            if done(self) {
                return;
            }
            assert!(self.advance(), "stuck before the condition held");
        }
        panic!("condition never held");
    }

    /// Advances until no one has a deadline left (the supervisor ended).
    fn run_to_end(&mut self) {
        self.drive();
        let mut steps = 0;
        while self.advance() {
            steps += 1;
            assert!(steps < 10_000, "no end");
        }
    }

    fn send(&mut self, s: &str) {
        self.sup.send(text(s)).expect("accepted");
        self.drive();
    }

    fn unwritten(&self) -> usize {
        self.client
            .as_ref()
            .and_then(Connection::poll_transmit)
            .map_or(0, |t| t.len())
    }

    /// Every message the servers received, over every transport, in order.
    fn all_received(&self) -> Vec<String> {
        self.received.iter().flat_map(|r| texts(r)).collect()
    }

    fn disconnects(&self) -> Vec<(Instant, Disconnect, Option<Duration>, Option<Instant>)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                SupervisorEvent::Disconnected {
                    reason,
                    retry_in,
                    retry_at,
                    ..
                } => Some((*t, *reason, *retry_in, *retry_at)),
                _ => None,
            })
            .collect()
    }

    /// The `closed` and `requeued` of every `Disconnected`.
    fn ends(&self) -> Vec<(Option<Closed>, usize)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                SupervisorEvent::Disconnected {
                    closed, requeued, ..
                } => Some((closed.clone(), *requeued)),
                _ => None,
            })
            .collect()
    }

    fn terminal(&self) -> &SupervisorEvent {
        let (_, last) = self.events.last().expect("events");
        assert!(last.is_terminal(), "terminal event last: {:?}", self.events);
        last
    }
}

#[test]
fn the_supervisor_is_send() {
    fn send<T: Send>() {}
    send::<Supervisor>();
    send::<SupervisorEvent>();
}

#[test]
fn a_fresh_connection_comes_with_the_on_open_and_queued_messages_already_sent() {
    let mut sup = Supervisor::new(
        request(),
        quiet(),
        ReconnectConfig::default(),
        on_open(&["auth"]),
        rng(1),
        Instant::ZERO,
    );
    sup.send(text("early")).expect("queued");
    assert_eq!(sup.queued_messages(), 1);
    assert_eq!(
        sup.poll_action(),
        Some(SupervisorAction::Connect { attempt: 1 })
    );
    assert_eq!(sup.poll_action(), None);
    assert_eq!(sup.poll_timeout(), Some(Instant::ZERO + 10 * SEC));
    let mut conn = sup.transport_connected(Instant::ZERO).expect("pending");
    assert!(sup.config().retain_unsent);
    assert!(conn.config().retain_unsent);
    assert!(sup.has_connection());
    assert_eq!(
        sup.queued_messages(),
        0,
        "the queue went into the connection"
    );
    assert_eq!(
        sup.poll_timeout(),
        None,
        "the connection's timers are its own"
    );
    assert_eq!(
        sup.transport_connected(Instant::ZERO).map(|_| ()),
        None,
        "one connection per Connect"
    );
    // Nothing but the opening request is written before the handshake completes.
    let head = conn.poll_transmit().expect("the opening request").first();
    assert!(head.starts_with(b"GET /feed HTTP/1.1\r\n"));
    assert!(head.ends_with(b"\r\n\r\n"));
    // The transport dies at once: the queued message comes back, the on-open one does not.
    sup.connection_ended(Instant::ZERO, &mut conn);
    assert_eq!(texts(&sup.take_unsent()), ["early"]);
    assert!(matches!(
        sup.poll_event(),
        Some(SupervisorEvent::Disconnected {
            reason: Disconnect::TransportLost,
            closed: Some(_),
            requeued: 1,
            retry_in: Some(_),
            ..
        })
    ));
    // A second report about the same connection changes nothing.
    sup.connection_ended(Instant::ZERO, &mut conn);
    assert_eq!(sup.poll_event(), None);
}

#[test]
fn connects_at_once_and_sends_the_on_open_messages_first() {
    let mut sim = Sim::new(ReconnectConfig::default(), on_open(&["auth", "subscribe"]));
    sim.sup.send(text("early")).expect("queued");
    sim.drive();
    assert_eq!(sim.connect_log, [(Instant::ZERO, 1)]);
    assert!(sim.is_open());
    assert_eq!(sim.opened_log, [Instant::ZERO]);
    assert!(matches!(
        sim.client_events[0],
        Event::Connected { subprotocol: None }
    ));
    assert_eq!(sim.all_received(), ["auth", "subscribe", "early"]);
    sim.send("later");
    assert_eq!(sim.all_received(), ["auth", "subscribe", "early", "later"]);
    assert_eq!(sim.sup.queued_messages(), 0);
    assert!(sim.events.is_empty(), "{:?}", sim.events);
}

#[test]
fn a_server_outage_of_30_s_loses_and_duplicates_nothing() {
    let mut sim = Sim::new(ReconnectConfig::default(), on_open(&["auth", "subscribe"]));
    sim.connects = Connects::After(Duration::from_millis(40));
    sim.run_until(Sim::is_open);
    assert_eq!(sim.opened_log, [Instant::ZERO + Duration::from_millis(40)]);
    for i in 0..5 {
        sim.send(&format!("m{i}"));
    }
    assert_eq!(sim.received[0].len(), 2 + 5);

    // Three messages go into the connection, but the transport only takes 10 bytes (one 8-byte
    // masked frame and the start of the next) before the server disappears.
    sim.write_budget = Some(0);
    for i in 5..8 {
        sim.send(&format!("m{i}"));
    }
    assert_eq!(
        sim.sup.queued_messages(),
        0,
        "all three are in the connection"
    );
    sim.write_budget = Some(10);
    sim.drive();
    assert_eq!(sim.all_received().last().map(String::as_str), Some("m5"));
    sim.write_budget = None;
    sim.up_at = sim.now + 30 * SEC;
    sim.kill();
    // m5 was written, m6 only half, m7 not at all: m6 and m7 are back in the queue.
    assert_eq!(sim.sup.queued_messages(), 2);
    assert_eq!(sim.ends()[0].1, 2, "Disconnected counts the two taken back");
    assert!(!sim.sup.has_connection());

    // Sent while disconnected: queued behind the ones taken back.
    for i in 8..11 {
        sim.send(&format!("m{i}"));
    }
    assert_eq!(sim.sup.queued_messages(), 5);

    sim.run_until(|s| s.opened_log.len() == 2);
    assert!(sim.now >= sim.up_at);

    // The new server saw the on-open messages first, then the queue in order.
    assert_eq!(
        texts(sim.received.last().expect("a transport")),
        ["auth", "subscribe", "m6", "m7", "m8", "m9", "m10"],
    );
    // Over every transport: each queued message exactly once, in order.
    let data: Vec<String> = sim
        .all_received()
        .into_iter()
        .filter(|m| m.starts_with('m'))
        .collect();
    let want: Vec<String> = (0..11).map(|i| format!("m{i}")).collect();
    assert_eq!(data, want);
    assert_eq!(sim.sup.queued_messages(), 0);

    // The first end was the lost transport; then refused connects until the server returned.
    let ends = sim.disconnects();
    assert_eq!(ends[0].1, Disconnect::TransportLost);
    assert!(ends[1..].iter().all(|e| e.1 == Disconnect::ConnectFailed));
    // Every end announced its retry, and the next Connect came exactly then.
    let reconnects = &sim.connect_log[1..];
    assert_eq!(reconnects.len(), ends.len());
    for ((at, _, retry_in, retry_at), (connect_at, _)) in ends.iter().zip(reconnects) {
        let retry_in = retry_in.expect("retrying");
        assert_eq!(retry_at.expect("retrying"), *at + retry_in);
        assert_eq!(*connect_at, *at + retry_in);
    }
    // RFC 6455 §7.2.3: the first reconnect waits a random time within the first-delay range,
    // and the later ones back off from it (Full jitter, capped at 30 s).
    assert!(ends[0].2.expect("retrying") <= 5 * SEC);
    for (n, end) in ends.iter().enumerate().skip(1) {
        let ceiling = (5 * SEC * 2u32.pow(n as u32)).min(30 * SEC);
        assert!(
            end.2.expect("retrying") <= ceiling,
            "retry {n}: {:?}",
            end.2
        );
    }
    // Attempts are numbered from the disconnection.
    let attempts: Vec<u32> = reconnects.iter().map(|(_, a)| *a).collect();
    let want: Vec<u32> = (1..=attempts.len() as u32).collect();
    assert_eq!(attempts, want);
    assert_eq!(sim.sup.attempt(), *attempts.last().expect("attempts"));
    // The transport of the successful attempt opened 40 ms after its Connect.
    assert_eq!(
        sim.opened_log[1],
        reconnects.last().expect("attempts").0 + Duration::from_millis(40)
    );
}

/// Runs a connection with on-open messages and a queue, writes exactly `cut` bytes of its
/// output once it is open, kills the transport (the driver noticing through a failed write, or
/// through end of stream), and returns what the server received and what the supervisor took
/// back.
fn cut_run(cut: usize, by_eof: bool) -> (Vec<String>, Vec<String>, usize) {
    let mut sim = Sim::new(ReconnectConfig::default(), on_open(&["auth", "subscribe"]));
    let big = "b".repeat(130); // a 2-byte extended length (RFC 6455 §5.2)
    for m in ["m0", "m1", &big, "m3", ""] {
        sim.sup.send(text(m)).expect("queued");
    }
    sim.stall_when_open = true;
    sim.drive();
    assert!(sim.is_open());
    let mut wire = Vec::new();
    let transmit = sim.client().poll_transmit().expect("the messages");
    transmit.iter().for_each(|run| wire.extend_from_slice(run));
    let written = wire[..cut].to_vec();
    sim.client().advance(cut);
    if let Some(server) = &mut sim.server {
        server.handle_data(sim.now, &written);
    }
    sim.drive();
    if by_eof {
        sim.kill_by_eof();
    } else {
        sim.kill();
    }
    let requeued = match sim.ends().as_slice() {
        [(Some(closed), requeued)] => {
            assert_eq!(closed.cause, CloseCause::TransportLost);
            *requeued
        }
        other => panic!("{other:?}"),
    };
    let received = sim.all_received();
    let back = texts(&sim.sup.take_unsent());
    (received, back, requeued)
}

/// The frames in `wire`, as the offsets where each ends.
fn frame_ends(mut wire: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut offset = 0;
    while !wire.is_empty() {
        let (header, n) = FrameHeader::parse(wire)
            .expect("a valid frame")
            .expect("a whole header");
        let len = n + header.payload_len as usize;
        offset += len;
        ends.push(offset);
        wire = &wire[len..];
    }
    ends
}

#[test]
fn a_message_is_lost_only_if_its_frame_was_entirely_written() {
    // The wire once, to know where each frame ends.
    let mut sim = Sim::new(ReconnectConfig::default(), on_open(&["auth", "subscribe"]));
    let big = "b".repeat(130);
    let all = ["auth", "subscribe", "m0", "m1", big.as_str(), "m3", ""];
    for m in &all[2..] {
        sim.sup.send(text(m)).expect("queued");
    }
    sim.stall_when_open = true;
    sim.drive();
    let mut wire = Vec::new();
    let transmit = sim.client().poll_transmit().expect("the messages");
    transmit.iter().for_each(|run| wire.extend_from_slice(run));
    let ends = frame_ends(&wire);
    assert_eq!(ends.len(), all.len(), "one frame per message");
    assert_eq!(*ends.last().expect("frames"), wire.len());

    // Cut the transport after every byte: what the server got whole is exactly the messages
    // whose frames were entirely written; every other queued message comes back, in order; the
    // on-open messages never do.
    for cut in 0..=wire.len() {
        let (received, back, requeued) = cut_run(cut, cut % 2 == 1);
        let whole = ends.iter().filter(|end| **end <= cut).count();
        assert_eq!(received, all[..whole], "cut at {cut}");
        let want_back: Vec<&str> = all[whole.max(2)..].to_vec();
        assert_eq!(back, want_back, "cut at {cut}");
        assert_eq!(requeued, want_back.len(), "cut at {cut}");
    }
}

#[test]
fn a_transport_lost_during_the_handshake_gives_every_queued_message_back() {
    let mut sim = Sim::new(ReconnectConfig::default(), on_open(&["auth"]));
    sim.write_budget = Some(20);
    for m in ["a", "b"] {
        sim.sup.send(text(m)).expect("queued");
    }
    sim.drive();
    assert!(sim.client.is_some() && !sim.is_open());
    assert_eq!(sim.sup.queued_messages(), 0, "held by the connection");
    sim.kill_by_eof();
    match sim.events.first() {
        Some((
            _,
            SupervisorEvent::Disconnected {
                reason: Disconnect::TransportLost,
                closed: Some(closed),
                requeued: 2,
                ..
            },
        )) => {
            assert!(matches!(closed.cause, CloseCause::HandshakeFailed(_)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.sup.queued_messages(), 2);
    sim.write_budget = None;
    sim.run_until(|s| s.opened_log.len() == 1);
    assert_eq!(sim.all_received(), ["auth", "a", "b"]);
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    let run = |seed_offset: u64| {
        let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
        sim.server_seed += seed_offset;
        sim.run_until(Sim::is_open);
        sim.up_at = sim.now + 30 * SEC;
        sim.kill();
        sim.run_until(|s| s.opened_log.len() == 2);
        sim.connect_log
    };
    assert_eq!(run(0), run(0));
    assert_eq!(run(0), run(7), "the server's generator does not matter");
}

#[test]
fn a_401_gives_up_without_retrying() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.reject = Some(Reject::new(401).header("WWW-Authenticate", "Bearer"));
    sim.sup.send(text("never sent")).expect("queued");
    sim.run_to_end();
    assert_eq!(sim.connect_log.len(), 1);
    let ends = sim.disconnects();
    assert_eq!(ends.len(), 1);
    assert!(matches!(
        ends[0].1,
        Disconnect::HandshakeRejected {
            status: 401,
            retry_after: None
        }
    ));
    assert_eq!(ends[0].2, None);
    assert_eq!(sim.ends()[0].1, 1, "the held message came back");
    match sim.terminal() {
        SupervisorEvent::GaveUp { reason, unsent } => {
            assert!(matches!(reason, GiveUpReason::NotRetryable(_)));
            assert_eq!(reason.status(), Some(401));
            assert_eq!(*unsent, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(sim.sup.is_finished());
    assert_eq!(texts(&sim.sup.take_unsent()), ["never sent"]);
    let err = sim.sup.send(text("late")).expect_err("ended");
    assert_eq!(err.kind, SessionSendErrorKind::Ended);
    assert_eq!(texts(&[err.into_inner()]), ["late"]);
    assert_eq!(sim.sup.poll_action(), None);
    assert_eq!(sim.sup.poll_timeout(), None);
    assert!(sim.sup.transport_connected(sim.now).is_none());
}

#[test]
fn gives_up_after_max_attempts() {
    let mut reconnect = ReconnectConfig::default();
    reconnect.max_attempts = Some(3);
    let mut sim = Sim::new(reconnect, SessionConfig::default());
    sim.up_at = Instant::MAX;
    sim.run_to_end();
    let attempts: Vec<u32> = sim.connect_log.iter().map(|(_, a)| *a).collect();
    assert_eq!(attempts, [1, 2, 3, 4], "the first try and three retries");
    let ends = sim.disconnects();
    assert_eq!(ends.len(), 4);
    assert!(ends.iter().all(|e| e.1 == Disconnect::ConnectFailed));
    assert!(ends[..3].iter().all(|e| e.2.is_some()));
    assert_eq!(ends[3].2, None);
    match sim.terminal() {
        SupervisorEvent::GaveUp {
            reason: GiveUpReason::AttemptsExhausted { attempts, last },
            unsent: 0,
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(*last, Disconnect::ConnectFailed);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_503_with_retry_after_7_waits_at_least_7_s() {
    let mut reconnect = ReconnectConfig::default();
    reconnect.backoff.jitter = Jitter::Full;
    let mut sim = Sim::new(reconnect, SessionConfig::default());
    sim.reject = Some(Reject::new(503).header("Retry-After", "7"));
    sim.sup.send(text("after the wait")).expect("queued");
    sim.drive();
    let ends = sim.disconnects();
    assert_eq!(ends.len(), 1);
    assert_eq!(
        ends[0].1,
        Disconnect::HandshakeRejected {
            status: 503,
            retry_after: Some(7 * SEC)
        }
    );
    let retry_in = ends[0].2.expect("retrying");
    assert!(retry_in >= 7 * SEC, "{retry_in:?}");
    sim.reject = None;
    sim.run_until(Sim::is_open);
    assert_eq!(sim.connect_log.len(), 2);
    assert!(sim.connect_log[1].0 >= Instant::ZERO + 7 * SEC);
    assert_eq!(sim.connect_log[1].0, Instant::ZERO + retry_in);
    assert_eq!(
        texts(sim.received.last().expect("a transport")),
        ["after the wait"]
    );
}

#[test]
fn a_1000_from_the_server_stops_the_supervisor() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.run_until(Sim::is_open);
    let now = sim.now;
    sim.server
        .as_mut()
        .expect("a server")
        .close(now, CloseCode::NORMAL, "done for today")
        .expect("open");
    sim.run_to_end();
    let ends = sim.disconnects();
    assert_eq!(ends.len(), 1);
    assert_eq!(
        ends[0].1,
        Disconnect::Closed {
            code: CloseCode::NORMAL,
            initiator: Initiator::Remote
        }
    );
    assert_eq!(ends[0].2, None);
    assert!(matches!(
        sim.terminal(),
        SupervisorEvent::Stopped { unsent: 0 }
    ));
    assert_eq!(sim.connect_log.len(), 1, "no retry");
    let detail = sim.events.iter().find_map(|(_, e)| match e {
        SupervisorEvent::Disconnected { closed, detail, .. } => {
            Some((closed.clone(), detail.clone()))
        }
        _ => None,
    });
    let (closed, detail) = detail.expect("disconnected");
    assert!(closed.expect("a connection ended").clean);
    assert_eq!(detail, "done for today");
    // The connection's own terminal event stayed with the connection.
    assert!(matches!(
        sim.client_events.last(),
        Some(Event::Closed(Closed { clean: true, .. }))
    ));
}

#[test]
fn a_1001_from_the_server_is_retried() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.run_until(Sim::is_open);
    let now = sim.now;
    sim.server
        .as_mut()
        .expect("a server")
        .close(now, CloseCode::GOING_AWAY, "restarting")
        .expect("open");
    sim.run_until(|s| s.opened_log.len() == 2);
    let ends = sim.disconnects();
    assert_eq!(
        ends[0].1,
        Disconnect::Closed {
            code: CloseCode::GOING_AWAY,
            initiator: Initiator::Remote
        }
    );
    assert!(ends[0].2.is_some());
    assert!(
        sim.connect_log.iter().all(|(_, attempt)| *attempt == 1),
        "numbering restarts after a connection opened"
    );
}

#[test]
fn the_users_close_runs_the_close_handshake_and_stops() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.run_until(Sim::is_open);
    sim.send("hello");
    sim.sup.close(sim.now);
    let now = sim.now;
    sim.client()
        .close(now, CloseCode::NORMAL, "bye")
        .expect("open");
    assert!(sim.sup.is_closing());
    assert_eq!(
        sim.sup.send(text("too late")).expect_err("closing").kind,
        SessionSendErrorKind::Closing
    );
    sim.sup.close(sim.now); // again: harmless
    sim.run_to_end();
    let ends = sim.disconnects();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].1, Disconnect::UserClosed);
    assert!(matches!(
        sim.terminal(),
        SupervisorEvent::Stopped { unsent: 0 }
    ));
    assert_eq!(sim.connect_log.len(), 1);
    assert_eq!(sim.all_received(), ["hello"]);
    let server_end = &sim.server_ends[0];
    assert_eq!(server_end.code, CloseCode::NORMAL);
    assert_eq!(server_end.reason, "bye");
    assert_eq!(server_end.initiator, Initiator::Remote);
    assert!(server_end.clean);
    assert_eq!(
        sim.sup.send(text("later")).expect_err("ended").kind,
        SessionSendErrorKind::Ended
    );
}

#[test]
fn closing_during_the_handshake_aborts_and_returns_the_held_messages() {
    let mut sim = Sim::new(ReconnectConfig::default(), on_open(&["auth"]));
    sim.write_budget = Some(0);
    sim.drive();
    sim.send("a");
    sim.send("b");
    sim.sup.close(sim.now);
    assert_eq!(
        sim.client().close(Instant::ZERO, CloseCode::NORMAL, ""),
        Err(tether::CloseError::NotOpen)
    );
    sim.client().abort();
    sim.drive();
    assert_eq!(sim.disconnects()[0].1, Disconnect::UserClosed);
    assert!(matches!(
        sim.terminal(),
        SupervisorEvent::Stopped { unsent: 2 }
    ));
    assert_eq!(texts(&sim.sup.take_unsent()), ["a", "b"]);
    assert_eq!(sim.sup.poll_timeout(), None);
}

#[test]
fn closing_while_backing_off_stops_at_once_and_returns_the_queue() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.up_at = Instant::MAX;
    sim.drive();
    sim.send("a");
    sim.send("b");
    assert!(sim.sup.poll_timeout().is_some(), "backing off");
    sim.sup.close(sim.now);
    sim.drive();
    assert!(matches!(
        sim.terminal(),
        SupervisorEvent::Stopped { unsent: 2 }
    ));
    assert_eq!(sim.sup.poll_timeout(), None);
    assert_eq!(texts(&sim.sup.take_unsent()), ["a", "b"]);
    assert_eq!(sim.connect_log.len(), 1);
}

#[test]
fn closing_while_connecting_abandons_the_attempt() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.connects = Connects::Hang;
    sim.drive();
    sim.sup.close(sim.now);
    sim.drive();
    assert_eq!(sim.abandon_log, [Instant::ZERO], "the connect is abandoned");
    assert!(matches!(
        sim.terminal(),
        SupervisorEvent::Stopped { unsent: 0 }
    ));
    assert!(sim.disconnects().is_empty());
    assert!(
        sim.sup.transport_connected(sim.now).is_none(),
        "a transport that opens after all is not used"
    );
}

#[test]
fn the_count_limit_refuses_with_the_message_returned() {
    let mut settings = SessionConfig::default();
    settings.max_queued_messages = 2;
    let mut sim = Sim::new(ReconnectConfig::default(), settings);
    sim.connects = Connects::Hang;
    sim.drive();
    sim.send("one");
    sim.send("two");
    let err = sim.sup.send(text("three")).expect_err("full");
    assert_eq!(
        err.kind,
        SessionSendErrorKind::QueueFull {
            messages: 2,
            bytes: 6
        }
    );
    assert_eq!(texts(&[err.into_inner()]), ["three"]);
    assert_eq!(sim.sup.queued_messages(), 2);
}

#[test]
fn the_byte_limit_refuses_with_the_message_returned() {
    let mut settings = SessionConfig::default();
    settings.max_queued_bytes = 10;
    let mut sim = Sim::new(ReconnectConfig::default(), settings);
    sim.connects = Connects::Hang;
    sim.drive();
    sim.send("12345678");
    let err = sim.sup.send(text("abc")).expect_err("over the byte limit");
    assert_eq!(
        err.kind,
        SessionSendErrorKind::QueueFull {
            messages: 1,
            bytes: 8
        }
    );
    assert_eq!(texts(&[err.message]), ["abc"]);
    sim.send("ab");
    assert_eq!(sim.sup.queued_bytes(), 10);
}

#[test]
fn drop_oldest_reports_what_it_dropped() {
    let mut settings = SessionConfig::default();
    settings.max_queued_messages = 2;
    settings.max_queued_bytes = 8;
    settings.overflow = Overflow::DropOldest;
    let mut sim = Sim::new(ReconnectConfig::default(), settings);
    sim.connects = Connects::After(SEC);
    sim.drive();
    for m in ["a", "b", "c", "dddddd", "eeeeeee"] {
        sim.send(m);
    }
    let dropped: Vec<Vec<String>> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            SupervisorEvent::Dropped { messages, .. } => Some(texts(messages)),
            _ => None,
        })
        .collect();
    // "c" and "dddddd" each drop one for the count; "eeeeeee" drops "c" for the count and then
    // "dddddd" for the bytes.
    assert_eq!(dropped, [vec!["a"], vec!["b"], vec!["c", "dddddd"]]);
    let err = sim.sup.send(text("123456789")).expect_err("never fits");
    assert!(matches!(err.kind, SessionSendErrorKind::QueueFull { .. }));
    assert_eq!(sim.sup.queued_messages(), 1);
    sim.run_until(Sim::is_open);
    assert_eq!(sim.all_received(), ["eeeeeee"]);
}

#[test]
fn a_driver_that_never_connects_gets_a_retry_after_the_connect_timeout() {
    let mut settings = SessionConfig::default();
    settings.connect_timeout = 3 * SEC;
    let mut sim = Sim::new(ReconnectConfig::default(), settings);
    sim.connects = Connects::Hang;
    sim.drive();
    assert_eq!(sim.sup.poll_timeout(), Some(Instant::ZERO + 3 * SEC));
    sim.run_until(|s| !s.disconnects().is_empty());
    assert_eq!(
        sim.abandon_log,
        [Instant::ZERO + 3 * SEC],
        "the attempt is abandoned"
    );
    assert!(
        sim.sup.transport_connected(sim.now).is_none(),
        "the abandoned attempt's transport is not used"
    );
    sim.run_until(|s| s.connect_log.len() == 2);
    let ends = sim.disconnects();
    assert_eq!(ends[0].0, Instant::ZERO + 3 * SEC);
    assert_eq!(ends[0].1, Disconnect::ConnectTimeout);
    let retry_at = ends[0].3.expect("retrying");
    assert_eq!(sim.connect_log[1], (retry_at, 2));
    // The second attempt's transport opens.
    sim.open_transport();
    sim.drive();
    assert!(sim.is_open());
    assert_eq!(sim.sup.attempt(), 2);
}

#[test]
fn the_handshake_timeout_is_retried() {
    let mut config = quiet();
    config.handshake_timeout = 2 * SEC;
    let mut sim = Sim::with_config(config, ReconnectConfig::default(), SessionConfig::default());
    // The transport opens but nothing gets through to the server.
    sim.write_budget = Some(0);
    sim.run_until(|s| s.connect_log.len() == 2);
    let ends = sim.disconnects();
    assert_eq!(ends[0].0, Instant::ZERO + 2 * SEC);
    assert_eq!(ends[0].1, Disconnect::HandshakeTimeout);
    assert_eq!(sim.connect_log[1].1, 2, "the connection never opened");
}

#[test]
fn the_queue_drains_within_the_high_watermark() {
    let mut config = quiet();
    config.high_watermark = 64;
    config.low_watermark = 32;
    let mut sim = Sim::with_config(config, ReconnectConfig::default(), SessionConfig::default());
    sim.connects = Connects::After(SEC);
    sim.drive();
    let want: Vec<String> = (0..40).map(|i| format!("message number {i:02}")).collect();
    for m in &want {
        sim.sup.send(text(m)).expect("queued");
    }
    // Open the transport but write nothing once the handshake is done.
    sim.stall_when_open = true;
    sim.run_until(Sim::is_open);
    let unwritten = sim.unwritten();
    // The watermark counts payloads; frame headers come on top.
    assert!(
        unwritten > 0 && unwritten <= 64 + 32,
        "{unwritten} bytes unwritten"
    );
    assert!(sim.sup.queued_messages() > 30);
    sim.stall_when_open = false;
    sim.drive();
    assert_eq!(sim.all_received(), want);
    assert_eq!(sim.sup.queued_messages(), 0);
}

#[test]
fn a_heartbeat_timeout_counts_as_a_lost_transport() {
    let mut config = Config::default();
    config.heartbeat = Some(tether::Heartbeat::new(5 * SEC, 5 * SEC));
    let mut sim = Sim::with_config(config, ReconnectConfig::default(), SessionConfig::default());
    sim.drive();
    assert!(sim.is_open());
    // The server hangs, but its transport stays up.
    sim.frozen = true;
    sim.run_until(|s| !s.disconnects().is_empty());
    let ends = sim.disconnects();
    assert!(ends[0].0 >= Instant::ZERO + 10 * SEC, "{:?}", ends[0].0);
    assert_eq!(ends[0].1, Disconnect::TransportLost);
    assert!(ends[0].2.is_some());
    let closed = sim.ends()[0].0.clone().expect("a connection ended");
    assert_eq!(closed.cause, CloseCause::HeartbeatTimeout);
}

#[test]
fn a_protocol_violation_by_the_server_gives_up() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.drive();
    // A masked frame from a server (RFC 6455 §5.1): the client fails the connection with 1002.
    let now = sim.now;
    sim.client().handle_data(now, &masked_frame(b"x"));
    sim.run_to_end();
    let ends = sim.disconnects();
    assert_eq!(
        ends[0].1,
        Disconnect::ProtocolFailure {
            code: CloseCode::PROTOCOL_ERROR
        }
    );
    match sim.terminal() {
        SupervisorEvent::GaveUp { reason, .. } => {
            assert_eq!(reason.close_code(), Some(CloseCode::PROTOCOL_ERROR));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn messages_and_pings_stay_in_the_connection() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.app_reads = false;
    sim.drive();
    let server = sim.server.as_mut().expect("a server");
    server.send_text("price 1").expect("open");
    server.ping(&b"are you there"[..]).expect("open");
    server.send_text("price 2").expect("open");
    sim.drive();
    // The supervisor saw none of it: no events, and nothing left the connection unread.
    assert!(sim.events.is_empty(), "{:?}", sim.events);
    assert!(sim.client_data.is_empty());
    assert!(sim.client().has_unread_data());
    assert!(
        sim.client_events
            .iter()
            .any(|e| matches!(e, Event::Ping(p) if p.as_ref() == b"are you there"))
    );
    let mut read = Vec::new();
    while let Some(data) = sim.client().read() {
        if let Data::Message(m) = data {
            read.push(m);
        }
    }
    assert_eq!(texts(&read), ["price 1", "price 2"]);
}

#[test]
fn random_outages_and_partial_writes_never_lose_or_duplicate_a_queued_message() {
    let (mut requeued_total, mut reconnects) = (0, 0);
    for seed in 0..40 {
        let mut dice = rng(1_000 + seed);
        let mut sim = Sim::new(ReconnectConfig::default(), on_open(&["hello"]));
        let mut sent = 0;
        for _ in 0..300 {
            match dice.next_u32() % 20 {
                0..=7 => {
                    sim.send(&format!("m{sent}"));
                    sent += 1;
                }
                8..=10 => {
                    sim.write_budget = Some((dice.next_u32() % 40) as usize);
                    sim.drive();
                }
                11..=12 => {
                    sim.write_budget = None;
                    sim.drive();
                }
                13..=14 if sim.client.is_some() => {
                    // The transport dies under both ends.
                    sim.up_at =
                        sim.now + Duration::from_millis(u64::from(dice.next_u32() % 20_000));
                    if dice.next_u32().is_multiple_of(2) {
                        sim.kill();
                    } else {
                        sim.kill_by_eof();
                    }
                }
                _ => {
                    sim.advance();
                }
            }
        }
        sim.write_budget = None;
        sim.up_at = sim.now;
        sim.run_until(|s| s.is_open() && s.sup.queued_messages() == 0 && s.unwritten() == 0);
        let data: Vec<String> = sim
            .all_received()
            .into_iter()
            .filter(|m| m != "hello")
            .collect();
        let want: Vec<String> = (0..sent).map(|i| format!("m{i}")).collect();
        assert_eq!(data, want, "seed {seed}");
        // Every connection began with the on-open message.
        for received in sim.received.iter().filter(|r| !r.is_empty()) {
            assert_eq!(texts(&received[..1]), ["hello"], "seed {seed}");
        }
        requeued_total += sim.ends().iter().map(|(_, n)| n).sum::<usize>();
        reconnects += sim.opened_log.len() - 1;
    }
    // The runs did exercise what they claim to.
    assert!(requeued_total >= 20, "{requeued_total}");
    assert!(reconnects >= 100, "{reconnects}");
}

#[test]
fn unwritten_messages_are_returned_when_the_supervisor_gives_up() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.drive();
    sim.write_budget = Some(0);
    for m in ["x", "y", "z"] {
        sim.send(m);
    }
    assert_eq!(sim.sup.queued_messages(), 0, "in the connection");
    // The server breaks the protocol: the client fails the connection with 1002, but its Close
    // (behind x, y, z) never gets written.
    let now = sim.now;
    sim.client().handle_data(now, &masked_frame(b"masked"));
    sim.run_to_end();
    assert!(matches!(
        sim.disconnects()[0].1,
        Disconnect::ProtocolFailure { .. }
    ));
    assert_eq!(sim.ends()[0].1, 3);
    assert!(matches!(
        sim.terminal(),
        SupervisorEvent::GaveUp { unsent: 3, .. }
    ));
    assert_eq!(texts(&sim.sup.take_unsent()), ["x", "y", "z"]);
    assert!(sim.all_received().is_empty());
    let err = sim.sup.send(text("after")).expect_err("ended");
    assert_eq!(err.kind, SessionSendErrorKind::Ended);
}

#[test]
fn a_stable_connection_starts_the_schedule_afresh() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    // Up for 1 s at a time: the policy keeps counting across the short-lived connections.
    for want in 1..=3 {
        sim.run_until(Sim::is_open);
        sim.now += SEC;
        sim.kill();
        assert_eq!(sim.sup.policy().attempt(), want);
    }
    // Up for the stable period (10 s by default): the next loss is retry 1 again, within the
    // random first delay of RFC 6455 §7.2.3.
    sim.run_until(Sim::is_open);
    sim.now += 10 * SEC;
    sim.kill();
    assert_eq!(sim.sup.policy().attempt(), 1);
    let (_, _, retry_in, _) = *sim.disconnects().last().expect("ends");
    assert!(retry_in.expect("retrying") <= 5 * SEC);
    // The supervisor's own numbering restarts at every connection that opened.
    assert!(sim.connect_log.iter().all(|(_, attempt)| *attempt == 1));
}

#[test]
fn every_attempt_sends_a_fresh_handshake_nonce() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    for _ in 0..4 {
        sim.run_until(Sim::is_open);
        sim.kill();
    }
    assert_eq!(sim.keys.len(), 4);
    let mut unique = sim.keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{:?}", sim.keys);
}

#[test]
fn a_clock_that_steps_back_is_harmless() {
    let mut settings = SessionConfig::default();
    settings.connect_timeout = 3 * SEC;
    let mut sim = Sim::new(ReconnectConfig::default(), settings);
    sim.connects = Connects::Hang;
    sim.drive();
    let late = Instant::ZERO + 2 * SEC;
    sim.sup.handle_timeout(late);
    sim.sup.handle_timeout(Instant::ZERO);
    sim.sup.handle_timeout(late);
    sim.drive();
    assert_eq!(sim.connect_log.len(), 1);
    assert!(sim.disconnects().is_empty());
    assert_eq!(sim.sup.poll_timeout(), Some(Instant::ZERO + 3 * SEC));
    // Reports that arrive with an earlier time than the latest seen count as "now".
    sim.sup.connect_failed(Instant::ZERO, "refused");
    sim.drive();
    let ends = sim.disconnects();
    assert_eq!(ends[0].0, Instant::ZERO);
    let retry_at = ends[0].3.expect("retrying");
    assert!(
        retry_at >= late,
        "the retry counts from the latest time seen"
    );
}

#[test]
fn a_transport_given_up_with_a_close_behind_unread_data_still_ends_the_connection() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.app_reads = false;
    sim.drive();
    let now = sim.now;
    let server = sim.server.as_mut().expect("a server");
    server.send_text("last words").expect("open");
    server
        .close(now, CloseCode::GOING_AWAY, "restarting")
        .expect("open");
    sim.drive();
    // The Close waits behind the unread message; the supervisor knows nothing yet.
    assert!(sim.client().has_unread_data());
    assert!(sim.client().closed().is_none());
    assert!(sim.events.is_empty());
    // The driver gives up on the transport anyway: the supervisor ends the connection.
    let mut client = sim.client.take().expect("a client");
    sim.sup.connection_ended(sim.now, &mut client);
    assert!(client.closed().is_some());
    assert_eq!(client.poll_transport(), Some(TransportAction::Close));
    assert!(matches!(
        client.read(),
        Some(Data::Message(m)) if m.as_bytes() == b"last words"
    ));
    match sim.sup.poll_event() {
        Some(SupervisorEvent::Disconnected {
            reason,
            closed: Some(_),
            retry_in: Some(_),
            ..
        }) => assert_eq!(
            reason,
            Disconnect::Closed {
                code: CloseCode::GOING_AWAY,
                initiator: Initiator::Remote
            }
        ),
        other => panic!("{other:?}"),
    }
}

/// The old `Session` drained its connection's events eagerly: with `max_message_size` 4 MiB
/// it took 20 MiB from a server before the application read once. A supervised connection is
/// an ordinary one: it stops reading near the high watermark until the application reads.
#[test]
fn a_supervised_connection_stops_reading_when_the_application_does_not_read() {
    const MIB: usize = 1 << 20;
    let mut config = quiet();
    config.max_message_size = 4 * MIB;
    let mut sup = Supervisor::new(
        request(),
        config,
        ReconnectConfig::default(),
        SessionConfig::default(),
        rng(5),
        Instant::ZERO,
    );
    assert!(matches!(
        sup.poll_action(),
        Some(SupervisorAction::Connect { attempt: 1 })
    ));
    let mut client = sup
        .transport_connected(Instant::ZERO)
        .expect("a connection");
    let mut server = Connection::server(quiet(), ServerPolicy::new(), rng(6), Instant::ZERO);
    let pump = |from: &mut Connection, to: &mut Connection| {
        while let Some(t) = from.poll_transmit() {
            let n = t.len();
            let bytes: Vec<u8> = t.iter().flatten().copied().collect();
            to.handle_data(Instant::ZERO, &bytes);
            from.advance(n);
        }
    };
    pump(&mut client, &mut server);
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(Instant::ZERO, Accept::new()).expect("accept");
    pump(&mut server, &mut client);
    assert!(client.is_open());
    let mut sent = 0;
    loop {
        // The server application sends while its connection takes more.
        while sent < 20 && server.send_binary(vec![9u8; MIB]).is_ok() {
            sent += 1;
        }
        // The server's driver writes whenever the client's driver reads, 64 KiB at a time.
        let Some(t) = server.poll_transmit().filter(|_| client.wants_read()) else {
            break;
        };
        let run = t.first();
        let n = run.len().min(64 << 10);
        client.handle_data(Instant::ZERO, &run[..n]);
        server.advance(n);
    }
    assert!(sent < 20);
    let taken = server.bytes_written() as usize;
    assert!(
        taken <= Config::default().high_watermark + MIB + (64 << 10) + 4096,
        "the client took {taken} bytes without the application reading"
    );
    assert!(!client.wants_read());
    assert!(
        sup.poll_event().is_none(),
        "nothing passes through the supervisor"
    );
}

/// Drops that pile up while nobody polls the supervisor's events join one `Dropped` event that
/// keeps at most the queue's limits' worth of messages; the older ones are only counted.
#[test]
fn unpolled_drops_stay_bounded() {
    let mut settings = SessionConfig::default();
    settings.max_queued_messages = 2;
    settings.max_queued_bytes = 1024;
    settings.overflow = Overflow::DropOldest;
    let mut sup = Supervisor::new(
        request(),
        quiet(),
        ReconnectConfig::default(),
        settings,
        rng(8),
        Instant::ZERO,
    );
    for i in 0..1000 {
        sup.send(text(&format!("m{i}")))
            .expect("room after dropping");
    }
    let events: Vec<SupervisorEvent> = std::iter::from_fn(|| sup.poll_event()).collect();
    let [
        SupervisorEvent::Dropped {
            messages,
            forgotten,
        },
    ] = &events[..]
    else {
        panic!("one Dropped event: {events:?}")
    };
    assert_eq!(texts(messages), ["m996", "m997"]);
    assert_eq!(*forgotten, 996);
    assert_eq!(sup.queued_messages(), 2);
}
