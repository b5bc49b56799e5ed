//! Resumable sessions on a virtual clock: two peers exchange numbered messages both ways while
//! the transport between them is cut at seeded moments (bytes in flight lost, a frame cut in
//! half, each side told at once or left facing a black hole until its heartbeat gives up). The
//! client reconnects and resumes; the server parks sessions in a `MemoryStore`. Every message
//! must arrive exactly once, in order, in both directions, for every seed.
//!
//! `SEED=N cargo test --test resume` replays one seed; `RESUME_SEEDS=N` runs another count.

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use tether::handshake::{Accept, ClientRequest, ServerPolicy};
use tether::resume::{LossReason, MemoryStore, ResumeConfig, SessionEvent, SessionStore};
use tether::{Config, Connection, Data, Event, Heartbeat, Instant, Message};

const SEEDS: u64 = 4_000;
const STEP: Duration = Duration::from_millis(5);

/// One direction of the transport: chunks in flight with their arrival time.
#[derive(Default)]
struct Pipe {
    chunks: VecDeque<(Instant, Vec<u8>)>,
}

/// One peer's application: what it sent and received, in order.
#[derive(Default)]
struct App {
    sent: u64,
    got: u64,
    resumed: u64,
    opened: bool,
    lost: Vec<LossReason>,
}

/// A number in `lo..hi`.
fn range(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    lo + rng.next_u64() % (hi - lo)
}

fn config(rng: &mut ChaCha8Rng) -> Config {
    let mut config = Config::default();
    config.heartbeat = Some(Heartbeat::new(
        Duration::from_millis(400),
        Duration::from_millis(400),
    ));
    let mut resume = ResumeConfig::default();
    // Small bounds and lazy acknowledgements, so sends are refused and wait for room.
    resume.max_unacked_messages = range(rng, 4, 64) as usize;
    resume.max_unacked_bytes = range(rng, 400, 8_000) as usize;
    resume.ack_every = range(rng, 1, 32);
    resume.ack_delay = Duration::from_millis(range(rng, 1, 300));
    config.resume = Some(resume);
    config
}

fn text(n: u64, rng: &mut ChaCha8Rng) -> Message {
    let pad = range(rng, 0, 200) as usize;
    Message::text(format!("{n} {}", "x".repeat(pad)))
}

/// Takes every received message, checking it is the next one.
fn drain(conn: &mut Connection, app: &mut App, who: &str) -> Result<(), String> {
    while let Some(data) = conn.read() {
        let Data::Message(Message::Text(t)) = data else {
            return Err(format!("{who}: unexpected {data:?}"));
        };
        let n: u64 = t
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if n != app.got + 1 {
            return Err(format!("{who}: got {n} after {}", app.got));
        }
        app.got = n;
    }
    Ok(())
}

fn events(conn: &mut Connection, app: &mut App) -> bool {
    let mut request = false;
    while let Some(event) = conn.poll_event() {
        match event {
            Event::Request(_) => request = true,
            Event::Connected { .. } => app.opened = true,
            Event::Session(SessionEvent::Resumed { .. }) => app.resumed += 1,
            Event::Session(SessionEvent::Lost { reason, .. }) => app.lost.push(reason),
            _ => {}
        }
    }
    request
}

/// Moves a connection's output into its pipe (or nowhere once the link is dead).
fn pump(conn: &mut Connection, pipe: Option<&mut Pipe>, now: Instant, rng: &mut ChaCha8Rng) {
    let mut out = Vec::new();
    while let Some(t) = conn.poll_transmit() {
        let n = t.first().len();
        out.extend_from_slice(t.first());
        conn.advance(n);
    }
    if let (Some(pipe), false) = (pipe, out.is_empty()) {
        let latency = Duration::from_millis(range(rng, 1, 30));
        // In order: a chunk never overtakes the one before it.
        let at = pipe
            .chunks
            .back()
            .map_or(now + latency, |(t, _)| (*t).max(now + latency));
        pipe.chunks.push_back((at, out));
    }
}

fn deliver(pipe: &mut Pipe, conn: &mut Connection, now: Instant) {
    while pipe.chunks.front().is_some_and(|(t, _)| *t <= now) {
        let (_, bytes) = pipe.chunks.pop_front().unwrap();
        conn.handle_data(now, &bytes);
    }
}

struct Link {
    up: Pipe,
    down: Pipe,
}

fn run(seed: u64) -> Result<(u64, u64), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = config(&mut rng);
    let total_c: u64 = range(&mut rng, 20, 150);
    let total_s: u64 = range(&mut rng, 20, 150);
    let cuts = range(&mut rng, 1, 5);
    let mut cut_at: Vec<Instant> = (0..cuts)
        .map(|_| Instant::from_millis(range(&mut rng, 10, 3_000)))
        .collect();
    cut_at.sort();
    let mut cut_at: VecDeque<Instant> = cut_at.into();
    let mut store = MemoryStore::default();
    let request = ClientRequest::new("ws://sim.test/chat").unwrap();

    let mut now = Instant::ZERO;
    let (mut client_app, mut server_app) = (App::default(), App::default());
    let mut client = Some(Connection::client(
        request.clone(),
        config.clone(),
        common::rng(rng.next_u64()),
        now,
    ));
    let mut server = Some(Connection::server(
        config.clone(),
        ServerPolicy::new(),
        common::rng(rng.next_u64()),
        now,
    ));
    // A server connection whose transport died without it knowing (a black hole).
    let mut zombies: Vec<Connection> = Vec::new();
    let mut link = Some(Link {
        up: Pipe::default(),
        down: Pipe::default(),
    });
    let mut session = None;
    let mut reconnect_at: Option<Instant> = None;
    let mut connections = 1;

    for _ in 0..200_000 {
        now += STEP;
        if client_app.got == total_s && server_app.got == total_c && cut_at.is_empty() {
            return Ok((connections, client_app.resumed));
        }
        // A cut: bytes in flight are lost (the first chunk maybe half delivered), each side is
        // told now or left to its heartbeat.
        // (Cuts wait for the first handshake: before its 101 arrives the client holds no
        // session to resume, a documented limit.)
        if cut_at.front().is_some_and(|t| *t <= now)
            && client_app.opened
            && let Some(mut l) = link.take()
        {
            cut_at.pop_front();
            for (pipe, conn) in [(&mut l.up, server.as_mut()), (&mut l.down, client.as_mut())] {
                if let (Some((_, bytes)), Some(conn)) = (pipe.chunks.pop_front(), conn) {
                    let cut = range(&mut rng, 0, bytes.len() as u64 + 1) as usize;
                    conn.handle_data(now, &bytes[..cut]);
                }
            }
            if range(&mut rng, 0, 2) == 0
                && let Some(c) = client.as_mut()
            {
                c.handle_eof(now);
            }
            if let Some(mut s) = server.take() {
                if range(&mut rng, 0, 2) == 0 {
                    s.handle_eof(now);
                }
                zombies.push(s);
            }
        } else if cut_at.front().is_some_and(|t| *t <= now) && client_app.opened {
            cut_at.pop_front();
        }
        // Time passes for everyone.
        for conn in [client.as_mut(), server.as_mut()]
            .into_iter()
            .flatten()
            .chain(zombies.iter_mut())
        {
            conn.handle_timeout(now);
        }
        if let Some(l) = link.as_mut() {
            if let Some(s) = server.as_mut() {
                deliver(&mut l.up, s, now);
            }
            if let Some(c) = client.as_mut() {
                deliver(&mut l.down, c, now);
            }
        }
        // The server accepts, resuming a session parked (or held by a zombie) first.
        if let Some(s) = server.as_mut()
            && events(s, &mut server_app)
        {
            // A real server finds the connection holding the offered token; here every
            // zombie's transport is dead anyway.
            for mut z in zombies.drain(..) {
                z.abort();
                events(&mut z, &mut server_app);
                drain(&mut z, &mut server_app, "server")?;
                if let Some(old) = z.take_session() {
                    store.park(old, now);
                }
            }
            s.accept_session(now, Accept::new(), &mut store, "alice")
                .map_err(|e| e.to_string())?;
        }
        for z in zombies.iter_mut() {
            events(z, &mut server_app);
            drain(z, &mut server_app, "server")?;
            if z.closed().is_some()
                && let Some(old) = z.take_session()
            {
                store.park(old, now);
            }
        }
        zombies.retain(|z| z.closed().is_none());
        if let Some(c) = client.as_mut() {
            events(c, &mut client_app);
            drain(c, &mut client_app, "client")?;
        }
        if let Some(s) = server.as_mut() {
            events(s, &mut server_app);
            drain(s, &mut server_app, "server")?;
        }
        // The applications send their next messages while the connection takes them.
        for _ in 0..range(&mut rng, 0, 4) {
            if let Some(c) = client.as_mut().filter(|c| c.is_open())
                && client_app.sent < total_c
                && c.send(text(client_app.sent + 1, &mut rng)).is_ok()
            {
                client_app.sent += 1;
            }
            if let Some(s) = server.as_mut().filter(|s| s.is_open())
                && server_app.sent < total_s
                && s.send(text(server_app.sent + 1, &mut rng)).is_ok()
            {
                server_app.sent += 1;
            }
        }
        if let Some(c) = client.as_mut() {
            pump(c, link.as_mut().map(|l| &mut l.up), now, &mut rng);
        }
        if let Some(s) = server.as_mut() {
            pump(s, link.as_mut().map(|l| &mut l.down), now, &mut rng);
        }
        for z in zombies.iter_mut() {
            pump(z, None, now, &mut rng);
        }
        // The client noticed the end: it takes the session and reconnects a little later.
        if let Some(c) = client.as_mut()
            && c.closed().is_some()
        {
            drain(c, &mut client_app, "client")?;
            session = c.take_session();
            if session.is_none() {
                return Err("the client lost its session".into());
            }
            client = None;
            reconnect_at = Some(now + Duration::from_millis(range(&mut rng, 0, 500)));
            zombies.extend(server.take());
            link = None;
        }
        if reconnect_at.is_some_and(|t| t <= now) {
            reconnect_at = None;
            connections += 1;
            client = Some(Connection::client_resuming(
                request.clone(),
                config.clone(),
                common::rng(rng.next_u64()),
                now,
                session.take(),
            ));
            server = Some(Connection::server(
                config.clone(),
                ServerPolicy::new(),
                common::rng(rng.next_u64()),
                now,
            ));
            link = Some(Link {
                up: Pipe::default(),
                down: Pipe::default(),
            });
        }
        if !client_app.lost.is_empty() || !server_app.lost.is_empty() {
            return Err(format!(
                "session lost: client {:?}, server {:?}",
                client_app.lost, server_app.lost
            ));
        }
    }
    Err(format!(
        "not done: client sent {}/{total_c}, got {}/{total_s}; server sent {}/{total_s}, got {}/{total_c}",
        client_app.sent, client_app.got, server_app.sent, server_app.got
    ))
}

#[test]
fn every_message_exactly_once_in_order_across_cuts() {
    let seeds: Vec<u64> = match std::env::var("SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => {
            let n = std::env::var("RESUME_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(SEEDS);
            (0..n).collect()
        }
    };
    let (mut connections, mut resumed) = (0, 0);
    let mut failures = Vec::new();
    for &seed in &seeds {
        match run(seed) {
            Ok((c, r)) => {
                connections += c;
                resumed += r;
            }
            Err(why) => failures.push(format!("seed {seed}: {why}")),
        }
    }
    println!(
        "{} seeds, {connections} connections, {resumed} resumed, {} failed",
        seeds.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{}",
        failures[..failures.len().min(10)].join("\n")
    );
    // The cuts happened and were survived by resuming, not by luck.
    assert!(seeds.len() < 10 || resumed > seeds.len() as u64 / 2);
}

// ----- negotiation ---------------------------------------------------------------------------

fn resume_config() -> Config {
    let mut config = Config::default();
    config.resume = Some(ResumeConfig::default());
    config
}

/// Moves bytes both ways until neither side has anything to write.
fn shuttle(client: &mut Connection, server: &mut Connection, now: Instant) {
    fn move_bytes(from: &mut Connection, to: &mut Connection, now: Instant) -> bool {
        let mut moved = false;
        while let Some(t) = from.poll_transmit() {
            let bytes = t.first().to_vec();
            from.advance(bytes.len());
            to.handle_data(now, &bytes);
            moved = true;
        }
        moved
    }
    for _ in 0..100 {
        let up = move_bytes(client, server, now);
        let down = move_bytes(server, client, now);
        if !up && !down {
            return;
        }
    }
}

fn session_events(conn: &mut Connection) -> Vec<SessionEvent> {
    std::iter::from_fn(|| conn.poll_event())
        .filter_map(|e| match e {
            Event::Session(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Connects a client carrying `session` to a server that accepts with `accept_session` when
/// `server_config` has resume set (with `store` and `principal`), or plainly otherwise.
fn connect(
    session: Option<tether::resume::Session>,
    server_config: Config,
    store: &mut MemoryStore,
    principal: &str,
    seed: u64,
) -> (Connection, Connection) {
    let now = Instant::from_secs(1);
    let request = ClientRequest::new("ws://sim.test/chat").unwrap();
    let mut client =
        Connection::client_resuming(request, resume_config(), common::rng(seed), now, session);
    let mut server = Connection::server(
        server_config,
        ServerPolicy::new(),
        common::rng(seed + 1),
        now,
    );
    shuttle(&mut client, &mut server, now);
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server
        .accept_session(now, Accept::new(), store, principal)
        .unwrap();
    shuttle(&mut client, &mut server, now);
    assert!(client.is_open() && server.is_open());
    (client, server)
}

/// Sends `n` messages from the client and cuts the transport before they arrive: the client
/// ends with a session holding them unacknowledged, the server parks its own.
fn cut_with_unacked(store: &mut MemoryStore, principal: &str, n: usize) -> tether::resume::Session {
    let (mut client, mut server) = connect(None, resume_config(), store, principal, 7);
    for i in 0..n {
        client.send_text(&format!("{i}")).unwrap();
        while let Some(t) = client.poll_transmit() {
            let len = t.first().len();
            client.advance(len);
        }
    }
    let now = Instant::from_secs(2);
    client.handle_eof(now);
    server.handle_eof(now);
    store.park(server.take_session().unwrap(), now);
    client.take_session().unwrap()
}

#[test]
fn a_session_is_resumed_with_the_missing_messages() {
    let mut store = MemoryStore::default();
    let session = cut_with_unacked(&mut store, "alice", 3);
    assert_eq!(session.unacked_messages(), 3);
    let (mut client, mut server) = connect(Some(session), resume_config(), &mut store, "alice", 9);
    assert!(client.resumed() && server.resumed());
    assert_eq!(
        session_events(&mut client),
        [SessionEvent::Resumed { replayed: 3 }]
    );
    assert_eq!(
        session_events(&mut server),
        [SessionEvent::Resumed { replayed: 0 }]
    );
    let got: Vec<_> = std::iter::from_fn(|| server.read()).collect();
    assert_eq!(got.len(), 3);
}

/// A token presented for another principal is answered like an unknown one, and stays usable
/// by its owner.
#[test]
fn someone_elses_token_fails_like_an_unknown_one() {
    let mut store = MemoryStore::default();
    let session = cut_with_unacked(&mut store, "alice", 2);
    let (mut mallory, _server) = connect(
        Some(session.clone()),
        resume_config(),
        &mut store,
        "mallory",
        11,
    );
    let events = session_events(&mut mallory);
    assert!(
        matches!(&events[..], [SessionEvent::Lost { reason: LossReason::Unknown, unconfirmed }] if unconfirmed.len() == 2),
        "{events:?}"
    );
    let mut other = MemoryStore::default();
    let (mut stranger, _server) = connect(
        Some(session.clone()),
        resume_config(),
        &mut other,
        "alice",
        13,
    );
    assert_eq!(
        session_events(&mut stranger),
        events,
        "unknown and foreign look alike"
    );
    let (mut alice, _server) = connect(Some(session), resume_config(), &mut store, "alice", 15);
    assert_eq!(
        session_events(&mut alice),
        [SessionEvent::Resumed { replayed: 2 }]
    );
}

/// Single-use: once a token resumed a session (and the client spoke on the new connection), it
/// resumes nothing again.
#[test]
fn a_token_is_single_use() {
    let mut store = MemoryStore::default();
    let session = cut_with_unacked(&mut store, "alice", 1);
    let (mut client, mut server) = connect(
        Some(session.clone()),
        resume_config(),
        &mut store,
        "alice",
        17,
    );
    client.send_text("more").unwrap();
    shuttle(&mut client, &mut server, Instant::from_secs(3));
    server.handle_eof(Instant::from_secs(3));
    store.park(server.take_session().unwrap(), Instant::from_secs(3));
    let (mut replay, _server) = connect(Some(session), resume_config(), &mut store, "alice", 19);
    assert!(matches!(
        &session_events(&mut replay)[..],
        [SessionEvent::Lost {
            reason: LossReason::Unknown,
            ..
        }]
    ));
}

/// A server without the extension: the offer is ignored, the connection is plain WebSocket,
/// 0xB stays reserved, and a session that was to be resumed is reported lost.
#[test]
fn a_peer_without_the_extension_gets_plain_websocket() {
    let mut store = MemoryStore::default();
    let (mut client, mut server) = connect(None, Config::default(), &mut store, "", 21);
    assert!(session_events(&mut client).is_empty());
    assert!(client.session().is_none());
    // An Ack frame is a protocol error without the extension.
    let frame = common::frame(true, tether::frame::OpCode::Ack, &[0; 8], None);
    client.handle_data(Instant::from_secs(2), &frame);
    assert!(matches!(client.closed().map(|c| c.code.0), Some(1002)));
    drop(server.take_session());

    let session = cut_with_unacked(&mut store, "", 2);
    let (mut client, _server) = connect(Some(session), Config::default(), &mut store, "", 23);
    let events = session_events(&mut client);
    assert!(
        matches!(&events[..], [SessionEvent::Lost { reason: LossReason::NotNegotiated, unconfirmed }] if unconfirmed.len() == 2),
        "{events:?}"
    );
}

/// Acknowledgements free the sender's log, without the application doing anything.
#[test]
fn acks_free_the_log() {
    let mut store = MemoryStore::default();
    let (mut client, mut server) = connect(None, resume_config(), &mut store, "", 25);
    assert!(!client.resumed() && !server.resumed());
    for i in 0..200 {
        client.send_text(&format!("{i}")).unwrap();
    }
    let mut now = Instant::from_secs(2);
    shuttle(&mut client, &mut server, now);
    now += Duration::from_secs(1);
    server.handle_timeout(now);
    shuttle(&mut client, &mut server, now);
    let s = client.session().unwrap();
    assert_eq!((s.sent(), s.acked(), s.unacked_messages()), (200, 200, 0));
    assert_eq!(server.session().unwrap().received(), 200);
}

/// A prepared (broadcast) message sent on a resumable connection is counted and kept for
/// replay like any other: the counts of both sides agree.
#[test]
fn prepared_messages_count_in_the_session() {
    let mut store = MemoryStore::default();
    let (mut client, mut server) = connect(None, resume_config(), &mut store, "", 27);
    let prepared = tether::PreparedMessage::new(Message::text("to everyone"));
    for _ in 0..5 {
        server.send_prepared(&prepared).unwrap();
    }
    server.send_text("direct").unwrap();
    let now = Instant::from_secs(2);
    shuttle(&mut client, &mut server, now);
    let s = server.session().unwrap();
    assert_eq!(s.sent(), 6);
    assert_eq!(client.session().unwrap().received(), 6);
}
