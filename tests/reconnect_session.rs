//! The reconnecting session against an in-memory server on a virtual clock: outages, backoff,
//! the outbound queue across transports, the terminal events and the session's own timers.

mod common;

use core::time::Duration;

use common::{quiet, rng};
use tether::handshake::{Accept, ClientRequest, Reject, ServerPolicy};
use tether::reconnect::{
    Disconnect, GiveUpReason, Jitter, Overflow, ReconnectConfig, Session, SessionAction,
    SessionConfig, SessionEvent, SessionSendErrorKind,
};
use tether::{CloseCode, Closed, Config, Connection, Event, Initiator, Instant, Message};

const SEC: Duration = Duration::from_secs(1);

/// How the simulated driver answers [`SessionAction::Connect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Connects {
    /// The transport opens after this long (zero: at once), unless the server is down.
    After(Duration),
    /// The driver never reports anything.
    Hang,
}

/// A session, its driver and the server it reaches, on one virtual clock.
struct Sim {
    session: Session,
    now: Instant,
    /// The server side of the current transport.
    server: Option<Connection>,
    /// The server refuses connections before this instant.
    up_at: Instant,
    /// How the server answers opening requests: `None` accepts.
    reject: Option<Reject>,
    connects: Connects,
    pending_connect: Option<Instant>,
    transport: bool,
    /// How many more client bytes the driver may write; `None` for no limit.
    write_budget: Option<usize>,
    /// The driver writes nothing once the session is open (a peer that stopped reading).
    stall_when_open: bool,
    server_seed: u64,
    events: Vec<(Instant, SessionEvent)>,
    /// Every `Connect`: when, and the attempt it announced.
    connect_log: Vec<(Instant, u32)>,
    /// When each `CloseTransport` came.
    close_log: Vec<Instant>,
    /// Every data message each server received, one list per transport.
    received: Vec<Vec<Message>>,
    server_ends: Vec<Closed>,
    /// The `Sec-WebSocket-Key` of every opening request the servers saw.
    keys: Vec<String>,
}

fn request() -> ClientRequest {
    ClientRequest::new("ws://example.com/feed").expect("a ws URL")
}

fn server_config() -> Config {
    quiet()
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

impl Sim {
    fn new(reconnect: ReconnectConfig, settings: SessionConfig) -> Self {
        Sim::with_config(quiet(), reconnect, settings)
    }

    fn with_config(config: Config, reconnect: ReconnectConfig, settings: SessionConfig) -> Self {
        let session = Session::new(
            request(),
            config,
            reconnect,
            settings,
            rng(42),
            Instant::ZERO,
        );
        Sim {
            session,
            now: Instant::ZERO,
            server: None,
            up_at: Instant::ZERO,
            reject: None,
            connects: Connects::After(Duration::ZERO),
            pending_connect: None,
            transport: false,
            write_budget: None,
            stall_when_open: false,
            server_seed: 100,
            events: Vec::new(),
            connect_log: Vec::new(),
            close_log: Vec::new(),
            received: Vec::new(),
            server_ends: Vec::new(),
            keys: Vec::new(),
        }
    }

    fn open_transport(&mut self) {
        self.pending_connect = None;
        self.session.transport_connected(self.now);
        self.server_seed += 1;
        self.server = Some(Connection::server(
            server_config(),
            ServerPolicy::new(),
            rng(self.server_seed),
            self.now,
        ));
        self.received.push(Vec::new());
        self.transport = true;
    }

    /// The server's transport ends (the server process went away).
    fn drop_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.handle_eof(self.now);
            self.server_events(&mut server);
        }
    }

    fn server_events(&mut self, server: &mut Connection) -> bool {
        let mut progress = false;
        while let Some(event) = server.poll_event() {
            progress = true;
            match event {
                Event::Request(request) => match self.reject.clone() {
                    Some(reject) => {
                        self.keys
                            .extend(request.header("Sec-WebSocket-Key").map(String::from));
                        server.reject(reject).expect("awaiting");
                    }
                    None => {
                        self.keys
                            .extend(request.header("Sec-WebSocket-Key").map(String::from));
                        server.accept(self.now, Accept::new()).expect("awaiting");
                    }
                },
                Event::Message(m) => self.received.last_mut().expect("a transport").push(m),
                Event::Closed(c) => self.server_ends.push(c),
                _ => {}
            }
        }
        progress
    }

    /// Moves actions, bytes and events until nothing changes.
    fn drive(&mut self) {
        loop {
            let mut progress = false;
            while let Some(action) = self.session.poll_action() {
                progress = true;
                match action {
                    SessionAction::Connect { attempt } => {
                        self.connect_log.push((self.now, attempt));
                        match self.connects {
                            Connects::Hang => {}
                            Connects::After(_) if self.now < self.up_at => {
                                self.session.connect_failed(self.now, "connection refused");
                            }
                            Connects::After(d) if d.is_zero() => self.open_transport(),
                            Connects::After(d) => self.pending_connect = Some(self.now + d),
                        }
                    }
                    SessionAction::CloseTransport => {
                        self.close_log.push(self.now);
                        self.transport = false;
                        self.pending_connect = None;
                        self.drop_server();
                    }
                    other => panic!("unexpected action {other:?}"),
                }
            }
            if self.transport && !(self.stall_when_open && self.session.is_open()) {
                let mut bytes = Vec::new();
                while let Some(chunk) = self.session.pending_output() {
                    let n = chunk.len().min(self.write_budget.unwrap_or(usize::MAX));
                    if n == 0 {
                        break;
                    }
                    bytes.extend_from_slice(&chunk[..n]);
                    self.session.consume_output(n);
                    if let Some(budget) = &mut self.write_budget {
                        *budget -= n;
                    }
                }
                if !bytes.is_empty() {
                    progress = true;
                    if let Some(server) = &mut self.server {
                        server.handle_data(self.now, &bytes);
                    }
                }
            }
            if let Some(mut server) = self.server.take() {
                progress |= self.server_events(&mut server);
                let mut out = Vec::new();
                while let Some(chunk) = server.pending_output() {
                    out.extend_from_slice(chunk);
                    let n = chunk.len();
                    server.consume_output(n);
                }
                let closes = server.poll_transport().is_some();
                progress |= self.server_events(&mut server);
                if !out.is_empty() {
                    progress = true;
                    self.session.handle_data(self.now, &out);
                }
                if closes {
                    progress = true;
                    self.session.handle_eof(self.now);
                } else {
                    self.server = Some(server);
                }
            }
            while let Some(event) = self.session.poll_event() {
                progress = true;
                self.events.push((self.now, event));
            }
            if !progress {
                break;
            }
        }
    }

    /// Jumps to the earliest deadline of anyone and fires it; false when nobody has one.
    fn advance(&mut self) -> bool {
        let next = [
            self.session.poll_timeout(),
            self.server.as_ref().and_then(Connection::poll_timeout),
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
                self.session.connect_failed(self.now, "connection refused");
            } else {
                self.open_transport();
            }
        }
        self.session.handle_timeout(self.now);
        if let Some(server) = &mut self.server {
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

    /// Advances until no one has a deadline left (the session ended).
    fn run_to_end(&mut self) {
        self.drive();
        let mut steps = 0;
        while self.advance() {
            steps += 1;
            assert!(steps < 10_000, "no end");
        }
    }

    fn connected_count(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, SessionEvent::Connected { .. }))
            .count()
    }

    fn send(&mut self, s: &str) {
        self.session.send(text(s)).expect("accepted");
        self.drive();
    }

    /// Every message the servers received, over every transport, in order.
    fn all_received(&self) -> Vec<String> {
        self.received.iter().flat_map(|r| texts(r)).collect()
    }

    fn disconnects(&self) -> Vec<(Instant, Disconnect, Option<Duration>, Option<Instant>)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                SessionEvent::Disconnected {
                    reason,
                    retry_in,
                    retry_at,
                    ..
                } => Some((*t, *reason, *retry_in, *retry_at)),
                _ => None,
            })
            .collect()
    }

    fn terminal(&self) -> &SessionEvent {
        let (_, last) = self.events.last().expect("events");
        assert!(
            matches!(
                last,
                SessionEvent::Stopped { .. } | SessionEvent::GaveUp { .. }
            ),
            "terminal event last: {:?}",
            self.events
        );
        last
    }
}

fn on_open(messages: &[&str]) -> SessionConfig {
    let mut settings = SessionConfig::default();
    settings.on_open = messages.iter().map(|m| text(m)).collect();
    settings
}

#[test]
fn connects_at_once_and_sends_the_on_open_messages_first() {
    let mut sim = Sim::new(ReconnectConfig::default(), on_open(&["auth", "subscribe"]));
    sim.session.send(text("early")).expect("queued");
    sim.drive();
    assert_eq!(sim.connect_log, [(Instant::ZERO, 1)]);
    assert!(sim.session.is_open());
    assert!(matches!(
        &sim.events[0].1,
        SessionEvent::Connected { attempt: 1, took, subprotocol: None } if took.is_zero()
    ));
    assert_eq!(sim.all_received(), ["auth", "subscribe", "early"]);
    sim.send("later");
    assert_eq!(sim.all_received(), ["auth", "subscribe", "early", "later"]);
    assert_eq!(sim.session.queued_messages(), 0);
    assert_eq!(sim.session.in_flight(), 0);
}

#[test]
fn a_server_outage_of_30_s_loses_and_duplicates_nothing() {
    let mut sim = Sim::new(ReconnectConfig::default(), on_open(&["auth", "subscribe"]));
    sim.connects = Connects::After(Duration::from_millis(40));
    sim.run_until(|s| s.session.is_open());
    assert!(matches!(
        sim.events[0].1,
        SessionEvent::Connected { attempt: 1, took, .. } if took == Duration::from_millis(40)
    ));
    for i in 0..5 {
        sim.send(&format!("m{i}"));
    }
    assert_eq!(sim.received[0].len(), 2 + 5);

    // Three messages are handed to the connection, but the transport only takes 10 bytes
    // (one 8-byte masked frame and the start of the next) before the server disappears.
    sim.write_budget = Some(0);
    for i in 5..8 {
        sim.send(&format!("m{i}"));
    }
    assert_eq!(sim.session.in_flight(), 3);
    assert_eq!(sim.session.queued_messages(), 0);
    sim.write_budget = Some(10);
    sim.drive();
    assert_eq!(
        sim.session.in_flight(),
        2,
        "m5 is written, m6 half, m7 not at all"
    );
    sim.write_budget = None;
    let outage_start = sim.now;
    sim.up_at = outage_start + 30 * SEC;
    sim.server = None;
    sim.session.handle_eof(sim.now);
    sim.drive();
    assert_eq!(
        sim.session.queued_messages(),
        2,
        "m6 and m7 are back in the queue"
    );
    assert!(!sim.session.is_open());

    // Sent while disconnected: queued behind the ones taken back.
    for i in 8..11 {
        sim.send(&format!("m{i}"));
    }
    assert_eq!(sim.session.queued_messages(), 5);

    sim.run_until(|s| s.connected_count() == 2);
    assert!(sim.now >= sim.up_at);

    // The new server saw the on-open messages first, then the queue in order.
    let last = texts(sim.received.last().expect("a transport"));
    assert_eq!(
        last,
        ["auth", "subscribe", "m6", "m7", "m8", "m9", "m10"],
        "on-open first, then the queue in order"
    );
    // Over every transport: each queued message exactly once, in order.
    let data: Vec<String> = sim
        .all_received()
        .into_iter()
        .filter(|m| m.starts_with('m'))
        .collect();
    let want: Vec<String> = (0..11).map(|i| format!("m{i}")).collect();
    assert_eq!(data, want);
    assert_eq!(sim.session.queued_messages(), 0);
    assert_eq!(sim.session.in_flight(), 0);

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
    // Attempts are numbered from the disconnection; the Connected event says which succeeded.
    let attempts: Vec<u32> = reconnects.iter().map(|(_, a)| *a).collect();
    let want: Vec<u32> = (1..=attempts.len() as u32).collect();
    assert_eq!(attempts, want);
    let (at, connected) = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, SessionEvent::Connected { .. }))
        .nth(1)
        .expect("reconnected");
    match connected {
        SessionEvent::Connected { attempt, took, .. } => {
            assert_eq!(*attempt, *attempts.last().expect("attempts"));
            assert_eq!(*took, Duration::from_millis(40));
            assert_eq!(*at, reconnects.last().expect("attempts").0 + *took);
        }
        _ => unreachable!(),
    }
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    let run = |seed_offset: u64| {
        let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
        sim.server_seed += seed_offset;
        sim.run_until(|s| s.session.is_open());
        sim.up_at = sim.now + 30 * SEC;
        sim.server = None;
        sim.session.handle_eof(sim.now);
        sim.run_until(|s| s.connected_count() == 2);
        sim.connect_log
    };
    assert_eq!(run(0), run(0));
    assert_eq!(run(0), run(7), "the server's generator does not matter");
}

#[test]
fn a_401_gives_up_without_retrying() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.reject = Some(Reject::new(401).header("WWW-Authenticate", "Bearer"));
    sim.session.send(text("never sent")).expect("queued");
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
    match sim.terminal() {
        SessionEvent::GaveUp { reason, unsent } => {
            assert!(matches!(reason, GiveUpReason::NotRetryable(_)));
            assert_eq!(reason.status(), Some(401));
            assert_eq!(*unsent, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(sim.session.is_finished());
    assert_eq!(texts(&sim.session.take_unsent()), ["never sent"]);
    let err = sim.session.send(text("late")).expect_err("ended");
    assert_eq!(err.kind, SessionSendErrorKind::Ended);
    assert_eq!(texts(&[err.into_inner()]), ["late"]);
    assert_eq!(sim.session.poll_action(), None);
    assert_eq!(sim.session.poll_timeout(), None);
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
        SessionEvent::GaveUp {
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
    sim.session.send(text("after the wait")).expect("queued");
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
    sim.run_until(|s| s.session.is_open());
    assert_eq!(sim.connect_log.len(), 2);
    assert!(sim.connect_log[1].0 >= Instant::ZERO + 7 * SEC);
    assert_eq!(sim.connect_log[1].0, Instant::ZERO + retry_in);
    assert_eq!(
        texts(sim.received.last().expect("a transport")),
        ["after the wait"]
    );
}

#[test]
fn a_1000_from_the_server_stops_the_session() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.run_until(|s| s.session.is_open());
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
        SessionEvent::Stopped { unsent: 0 }
    ));
    assert_eq!(sim.connect_log.len(), 1, "no retry");
    assert_eq!(sim.close_log.len(), 1);
    let detail = sim.events.iter().find_map(|(_, e)| match e {
        SessionEvent::Disconnected { closed, detail, .. } => Some((closed.clone(), detail.clone())),
        _ => None,
    });
    let (closed, detail) = detail.expect("disconnected");
    assert!(closed.expect("a connection ended").clean);
    assert_eq!(detail, "done for today");
}

#[test]
fn a_1001_from_the_server_is_retried() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.run_until(|s| s.session.is_open());
    let now = sim.now;
    sim.server
        .as_mut()
        .expect("a server")
        .close(now, CloseCode::GOING_AWAY, "restarting")
        .expect("open");
    sim.run_until(|s| s.connected_count() == 2);
    let ends = sim.disconnects();
    assert_eq!(
        ends[0].1,
        Disconnect::Closed {
            code: CloseCode::GOING_AWAY,
            initiator: Initiator::Remote
        }
    );
    assert!(ends[0].2.is_some());
}

#[test]
fn the_users_close_runs_the_close_handshake_and_stops() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.run_until(|s| s.session.is_open());
    sim.send("hello");
    sim.session
        .close(sim.now, CloseCode::NORMAL, "bye")
        .expect("open");
    assert_eq!(
        sim.session
            .send(text("too late"))
            .expect_err("closing")
            .kind,
        SessionSendErrorKind::Closing
    );
    assert_eq!(
        sim.session.close(sim.now, CloseCode::NORMAL, ""),
        Err(tether::CloseError::AlreadyClosing)
    );
    sim.run_to_end();
    let ends = sim.disconnects();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].1, Disconnect::UserClosed);
    assert!(matches!(
        sim.terminal(),
        SessionEvent::Stopped { unsent: 0 }
    ));
    assert_eq!(sim.connect_log.len(), 1);
    assert_eq!(sim.all_received(), ["hello"]);
    let server_end = &sim.server_ends[0];
    assert_eq!(server_end.code, CloseCode::NORMAL);
    assert_eq!(server_end.reason, "bye");
    assert_eq!(server_end.initiator, Initiator::Remote);
    assert!(server_end.clean);
    assert_eq!(
        sim.session.close(sim.now, CloseCode::NORMAL, ""),
        Err(tether::CloseError::Closed)
    );
}

#[test]
fn closing_while_backing_off_stops_at_once_and_returns_the_queue() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.up_at = Instant::MAX;
    sim.drive();
    sim.send("a");
    sim.send("b");
    assert!(sim.session.poll_timeout().is_some(), "backing off");
    sim.session
        .close(sim.now, CloseCode::NORMAL, "")
        .expect("not closed yet");
    sim.drive();
    assert!(matches!(
        sim.terminal(),
        SessionEvent::Stopped { unsent: 2 }
    ));
    assert_eq!(sim.session.poll_timeout(), None);
    assert_eq!(texts(&sim.session.take_unsent()), ["a", "b"]);
    assert_eq!(sim.connect_log.len(), 1);
}

#[test]
fn closing_while_connecting_abandons_the_attempt() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.connects = Connects::Hang;
    sim.drive();
    sim.session
        .close(sim.now, CloseCode::NORMAL, "")
        .expect("not closed yet");
    sim.drive();
    assert_eq!(sim.close_log, [Instant::ZERO], "the connect is abandoned");
    assert!(matches!(
        sim.terminal(),
        SessionEvent::Stopped { unsent: 0 }
    ));
    assert!(sim.disconnects().is_empty());
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
    let err = sim.session.send(text("three")).expect_err("full");
    assert_eq!(
        err.kind,
        SessionSendErrorKind::QueueFull {
            messages: 2,
            bytes: 6
        }
    );
    assert_eq!(texts(&[err.into_inner()]), ["three"]);
    assert_eq!(sim.session.queued_messages(), 2);
}

#[test]
fn the_byte_limit_refuses_with_the_message_returned() {
    let mut settings = SessionConfig::default();
    settings.max_queued_bytes = 10;
    let mut sim = Sim::new(ReconnectConfig::default(), settings);
    sim.connects = Connects::Hang;
    sim.drive();
    sim.send("12345678");
    let err = sim
        .session
        .send(text("abc"))
        .expect_err("over the byte limit");
    assert_eq!(
        err.kind,
        SessionSendErrorKind::QueueFull {
            messages: 1,
            bytes: 8
        }
    );
    assert_eq!(texts(&[err.message]), ["abc"]);
    sim.send("ab");
    assert_eq!(sim.session.queued_bytes(), 10);
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
            SessionEvent::Dropped { messages } => Some(texts(messages)),
            _ => None,
        })
        .collect();
    // "c" and "dddddd" each drop one for the count; "eeeeeee" drops "c" for the count and then
    // "dddddd" for the bytes.
    assert_eq!(dropped, [vec!["a"], vec!["b"], vec!["c", "dddddd"]]);
    let err = sim.session.send(text("123456789")).expect_err("never fits");
    assert!(matches!(err.kind, SessionSendErrorKind::QueueFull { .. }));
    assert_eq!(sim.session.queued_messages(), 1);
    sim.run_until(|s| s.session.is_open());
    assert_eq!(sim.all_received(), ["eeeeeee"]);
}

#[test]
fn a_driver_that_never_connects_gets_a_retry_after_the_connect_timeout() {
    let mut settings = SessionConfig::default();
    settings.connect_timeout = 3 * SEC;
    let mut sim = Sim::new(ReconnectConfig::default(), settings);
    sim.connects = Connects::Hang;
    sim.drive();
    assert_eq!(sim.session.poll_timeout(), Some(Instant::ZERO + 3 * SEC));
    sim.run_until(|s| s.connect_log.len() == 2);
    assert_eq!(
        sim.close_log,
        [Instant::ZERO + 3 * SEC],
        "the attempt is abandoned"
    );
    let ends = sim.disconnects();
    assert_eq!(ends[0].0, Instant::ZERO + 3 * SEC);
    assert_eq!(ends[0].1, Disconnect::ConnectTimeout);
    let retry_at = ends[0].3.expect("retrying");
    assert_eq!(sim.connect_log[1], (retry_at, 2));
    // The second attempt's transport opens.
    sim.open_transport();
    sim.drive();
    assert!(sim.session.is_open());
    assert!(matches!(
        sim.events
            .iter()
            .rev()
            .find(|(_, e)| matches!(e, SessionEvent::Connected { .. })),
        Some((_, SessionEvent::Connected { attempt: 2, .. }))
    ));
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
}

#[test]
fn the_queue_drains_within_the_write_buffer_limit() {
    let mut config = quiet();
    config.max_write_buffer = 64;
    let mut sim = Sim::with_config(config, ReconnectConfig::default(), SessionConfig::default());
    sim.connects = Connects::After(SEC);
    sim.drive();
    let want: Vec<String> = (0..40).map(|i| format!("message number {i:02}")).collect();
    for m in &want {
        sim.session.send(text(m)).expect("queued");
    }
    // Open the transport but write nothing once the handshake is done.
    sim.stall_when_open = true;
    sim.run_until(|s| s.session.is_open());
    let buffered = sim.session.connection().expect("open").buffered_output();
    assert!(buffered <= 64 + 32, "{buffered} bytes buffered");
    assert!(sim.session.queued_messages() > 30);
    sim.stall_when_open = false;
    sim.drive();
    assert_eq!(sim.all_received(), want);
    assert_eq!(sim.session.queued_messages(), 0);
}

#[test]
fn a_heartbeat_timeout_counts_as_a_lost_transport() {
    let mut config = Config::default();
    config.heartbeat = Some(tether::Heartbeat::new(5 * SEC, 5 * SEC));
    let mut sim = Sim::with_config(config, ReconnectConfig::default(), SessionConfig::default());
    sim.drive();
    assert!(sim.session.is_open());
    // The server stops reading and answering, but its transport stays up.
    let frozen = sim.server.take();
    sim.run_until(|s| !s.disconnects().is_empty());
    drop(frozen);
    let ends = sim.disconnects();
    assert_eq!(ends[0].0, Instant::ZERO + 10 * SEC);
    assert_eq!(ends[0].1, Disconnect::TransportLost);
    assert!(ends[0].2.is_some());
}

#[test]
fn a_protocol_violation_by_the_server_gives_up() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.drive();
    // A masked frame from a server (RFC 6455 §5.1): the client fails the connection with 1002.
    let frame = common::cframe(true, tether::frame::OpCode::Text, b"x");
    sim.session.handle_data(sim.now, &frame);
    sim.run_to_end();
    let ends = sim.disconnects();
    assert_eq!(
        ends[0].1,
        Disconnect::ProtocolFailure {
            code: CloseCode::PROTOCOL_ERROR
        }
    );
    match sim.terminal() {
        SessionEvent::GaveUp { reason, .. } => {
            assert_eq!(reason.close_code(), Some(CloseCode::PROTOCOL_ERROR));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_messages_and_pings_pass_through() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.drive();
    let server = sim.server.as_mut().expect("a server");
    server.send_text("price 1").expect("open");
    server.ping(&b"are you there"[..]).expect("open");
    sim.drive();
    let got: Vec<String> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            SessionEvent::Message(m) => Some(texts(std::slice::from_ref(m))[0].clone()),
            SessionEvent::Ping(p) => Some(format!("ping {}", String::from_utf8_lossy(p))),
            _ => None,
        })
        .collect();
    assert_eq!(got, ["price 1", "ping are you there"]);
}

#[test]
fn random_outages_and_partial_writes_never_lose_or_duplicate_a_queued_message() {
    use rand_core::Rng;
    let (mut kills_in_flight, mut reconnects) = (0, 0);
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
                13..=14 if sim.transport => {
                    // The transport dies under both ends.
                    kills_in_flight += usize::from(sim.session.in_flight() > 0);
                    sim.up_at =
                        sim.now + Duration::from_millis(u64::from(dice.next_u32() % 20_000));
                    sim.server = None;
                    sim.session.handle_eof(sim.now);
                    sim.drive();
                }
                _ => {
                    sim.advance();
                }
            }
        }
        sim.write_budget = None;
        sim.up_at = sim.now;
        sim.run_until(|s| {
            s.session.is_open() && s.session.queued_messages() == 0 && s.session.in_flight() == 0
        });
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
        reconnects += sim.connected_count() - 1;
    }
    // The runs did exercise what they claim to.
    assert!(kills_in_flight >= 20, "{kills_in_flight}");
    assert!(reconnects >= 100, "{reconnects}");
}

#[test]
fn unwritten_messages_are_returned_when_the_session_gives_up() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    sim.drive();
    sim.write_budget = Some(0);
    for m in ["x", "y", "z"] {
        sim.send(m);
    }
    assert_eq!(sim.session.in_flight(), 3);
    // The server breaks the protocol: the client fails the connection with 1002 and gives up,
    // but its Close (behind x, y, z) never gets written before the close timeout.
    let frame = common::cframe(true, tether::frame::OpCode::Text, b"masked");
    sim.session.handle_data(sim.now, &frame);
    sim.drive();
    assert!(matches!(
        sim.disconnects()[0].1,
        Disconnect::ProtocolFailure { .. }
    ));
    let err = sim.session.send(text("after")).expect_err("ending");
    assert_eq!(err.kind, SessionSendErrorKind::Ended);
    sim.run_to_end();
    assert_eq!(
        sim.close_log,
        [Instant::ZERO + 10 * SEC],
        "after the close timeout"
    );
    assert!(matches!(
        sim.terminal(),
        SessionEvent::GaveUp { unsent: 3, .. }
    ));
    assert_eq!(texts(&sim.session.take_unsent()), ["x", "y", "z"]);
    assert!(sim.all_received().is_empty());
}

#[test]
fn a_stable_connection_starts_the_schedule_afresh() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    let lose = |sim: &mut Sim| {
        sim.server = None;
        sim.session.handle_eof(sim.now);
        sim.drive();
    };
    // Up for 1 s at a time: the policy keeps counting across the short-lived connections.
    for want in 1..=3 {
        sim.run_until(|s| s.session.is_open());
        sim.now += SEC;
        lose(&mut sim);
        assert_eq!(sim.session.policy().attempt(), want);
    }
    // Up for the stable period (10 s by default): the next loss is retry 1 again, within the
    // random first delay of RFC 6455 §7.2.3.
    sim.run_until(|s| s.session.is_open());
    sim.now += 10 * SEC;
    lose(&mut sim);
    assert_eq!(sim.session.policy().attempt(), 1);
    let (_, _, retry_in, _) = *sim.disconnects().last().expect("ends");
    assert!(retry_in.expect("retrying") <= 5 * SEC);
    // The session's own numbering restarts at every connection.
    assert!(sim.connect_log.iter().all(|(_, attempt)| *attempt == 1));
}

#[test]
fn every_attempt_sends_a_fresh_handshake_nonce() {
    let mut sim = Sim::new(ReconnectConfig::default(), SessionConfig::default());
    for _ in 0..4 {
        sim.run_until(|s| s.session.is_open());
        sim.server = None;
        sim.session.handle_eof(sim.now);
        sim.drive();
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
    sim.session.handle_timeout(late);
    sim.session.handle_timeout(Instant::ZERO);
    sim.session.handle_timeout(late);
    sim.drive();
    assert_eq!(sim.connect_log.len(), 1);
    assert!(sim.disconnects().is_empty());
    assert_eq!(sim.session.poll_timeout(), Some(Instant::ZERO + 3 * SEC));
    // Reports that arrive with an earlier time than the latest seen count as "now".
    sim.session.connect_failed(Instant::ZERO, "refused");
    sim.drive();
    let ends = sim.disconnects();
    assert_eq!(ends[0].0, Instant::ZERO);
    let retry_at = ends[0].3.expect("retrying");
    assert!(
        retry_at >= late,
        "the retry counts from the latest time seen"
    );
}
