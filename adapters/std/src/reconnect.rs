//! A reconnecting client on the core's [`Supervisor`]: one thread asks the supervisor when to
//! connect, connects, runs each connection with the ordinary driver, and reports its end.

use std::collections::VecDeque;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

use tether::handshake::ClientRequest;
use tether::reconnect::{
    ReconnectConfig, ReconnectEvent, SessionConfig, SessionSendError, Supervisor, SupervisorAction,
    SupervisorEvent,
};
use tether::{CloseCode, CloseError, Connection, Event, Instant, Message, Role};

use crate::client::{ClientConfig, open_transport};
use crate::driver::{Shared, State, Who, now};
use crate::stream::{MaybeTlsWriter, SplitStream};

/// How a [`ReconnectingClient`] behaves: the transport (connect timeout, TLS), the connection
/// configuration, the reconnect policy and the supervisor's queue.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReconnectingConfig {
    /// Transport and connection settings (its `connect_timeout` bounds each TCP connect).
    pub client: ClientConfig,
    /// When to retry and when to give up.
    pub reconnect: ReconnectConfig,
    /// The outbound queue and the on-open messages.
    pub session: SessionConfig,
}

impl ReconnectingConfig {
    /// The defaults.
    #[must_use]
    pub fn new() -> Self {
        ReconnectingConfig::default()
    }
}

/// The supervisor and what the user has not seen of it, kept in the driver's shared state.
pub(crate) struct Supervised {
    pub(crate) sup: Supervisor,
    /// Supervisor events, each with the generation of the connection current when it happened:
    /// those of an earlier generation come before what the current connection received.
    events: VecDeque<(u64, SupervisorEvent)>,
    /// Connections handed out so far.
    generation: u64,
    /// The current connection's attempt and when it started.
    attempt: u32,
    started: Instant,
    /// The client's thread has ended.
    done: bool,
}

impl Supervised {
    fn collect(&mut self) {
        while let Some(event) = self.sup.poll_event() {
            self.events.push_back((self.generation, event));
        }
    }
}

type Guard<'a> = MutexGuard<'a, State<MaybeTlsWriter>>;

fn supervised(st: &mut State<MaybeTlsWriter>) -> &mut Supervised {
    st.supervised
        .as_deref_mut()
        .expect("a reconnecting client's state has a supervisor")
}

/// The client's thread: connect when the supervisor says so, run the connection with the
/// ordinary driver, report its end, until the supervisor finishes.
fn run(shared: Arc<Shared<MaybeTlsWriter>>, request: ClientRequest, config: ClientConfig) {
    let mut st = shared.lock();
    loop {
        // The next attempt waits until the user has received what the last connection did:
        // received data is never dropped, and never more than one connection's worth is held.
        let behind = st.handles > 0 && st.conn.has_unread_data();
        let s = supervised(&mut st);
        if !behind && s.sup.poll_timeout().is_some_and(|t| t <= now()) {
            s.sup.handle_timeout(now());
        }
        while let Some(action) = supervised(&mut st).sup.poll_action() {
            // Connecting is synchronous here, bounded by the client's timeouts: an abandoned
            // attempt has nothing to cancel, and its transport is dropped on arrival.
            if let SupervisorAction::Connect { attempt } = action {
                st = connect(&shared, st, attempt, &request, &config);
            }
        }
        let s = supervised(&mut st);
        s.collect();
        if s.sup.is_finished() {
            s.done = true;
            shared.wake(&st);
            return;
        }
        let wait = match s.sup.poll_timeout() {
            // Woken by the user's reads.
            _ if behind => None,
            Some(t) if t <= now() => continue,
            Some(t) => Some(t - now()),
            None => None,
        };
        shared.wake(&st);
        st = shared.sleep(st, wait);
    }
}

/// One attempt: opens the transport and, if the supervisor still wants it, runs the connection
/// on it until the transport is closed.
fn connect<'a>(
    shared: &'a Shared<MaybeTlsWriter>,
    st: Guard<'a>,
    attempt: u32,
    request: &ClientRequest,
    config: &ClientConfig,
) -> Guard<'a> {
    let started = now();
    drop(st);
    let opened = open_transport(request, config).and_then(|s| {
        s.split(config.config.handshake_timeout)
            .map_err(crate::Error::Io)
    });
    let mut st = shared.lock();
    let (reader, writer) = match opened {
        Ok(halves) => halves,
        Err(e) => {
            supervised(&mut st)
                .sup
                .connect_failed(now(), &e.to_string());
            return st;
        }
    };
    let s = supervised(&mut st);
    let Some(conn) = s.sup.transport_connected(now()) else {
        return st;
    };
    s.generation += 1;
    (s.attempt, s.started) = (attempt, started);
    st.replace(conn, writer);
    drop(st);
    shared.run(reader);
    let mut st = shared.lock();
    let st_ref = &mut *st;
    let s = st_ref.supervised.as_deref_mut().expect("supervised");
    s.sup.connection_ended(now(), &mut st_ref.conn);
    st
}

/// A client that reconnects: it opens a connection for `request`, and when it drops, comes
/// back as the [`ReconnectConfig`] says (backoff with jitter; it gives up on a 401, a 1008,
/// ...). Messages sent while disconnected wait in the supervisor's queue (bounded, see
/// [`SessionConfig`]) and go out, in order, on the next connection.
///
/// Everything comes from [`next_event`](ReconnectingClient::next_event), in order: `Connected`,
/// the messages, Pings and Pongs each connection received, and the supervisor's events
/// (`Disconnected` with the reason and the retry time, `GaveUp`, `Stopped`). A thread does the
/// connecting, reading and timers, so heartbeats flow while the user is busy.
///
/// Received messages stay in the connection until `next_event` takes them: a client that does
/// not receive holds at most the core's flow-control allowance (`Config::high_watermark`), and
/// the server is pushed back beyond that. A new connection is opened only once everything the
/// previous one received has been taken, so nothing received is dropped. Dropping the client
/// closes it with 1000.
pub struct ReconnectingClient {
    shared: Arc<Shared<MaybeTlsWriter>>,
}

impl std::fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingClient").finish_non_exhaustive()
    }
}

impl ReconnectingClient {
    /// Starts the client for a `ws://` or `wss://` URL; the first connect begins at once.
    pub fn connect(url: &str, config: ReconnectingConfig) -> Result<Self, crate::Error> {
        Self::connect_request(ClientRequest::new(url)?, config)
    }

    /// Starts the client for a request with subprotocols or extra headers.
    pub fn connect_request(
        request: ClientRequest,
        config: ReconnectingConfig,
    ) -> Result<Self, crate::Error> {
        let ReconnectingConfig {
            client,
            reconnect,
            session,
        } = config;
        let now = now();
        let sup = Supervisor::new(
            request.clone(),
            client.config.clone(),
            reconnect,
            session,
            crate::rng(),
            now,
        );
        // Until the first transport opens, the state holds an ended connection with nothing
        // in it.
        let mut idle = Connection::open(Role::Client, client.config.clone(), crate::rng(), now);
        idle.abort();
        while idle.poll_event().is_some() {}
        let supervised = Supervised {
            sup,
            events: VecDeque::new(),
            generation: 0,
            attempt: 0,
            started: now,
            done: false,
        };
        let shared = Shared::new(idle, None, None, Some(Box::new(supervised)));
        let thread = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tether-reconnect".into())
            .spawn(move || run(thread, request, client))?;
        Ok(ReconnectingClient { shared })
    }

    /// Sends `message` now if connected, or queues it for the next connection. Refused when
    /// the queue is full (per `SessionConfig::overflow`) or the client is closing or ended; the
    /// error hands the message back. While connected it returns once the message is written
    /// to the transport, or queued behind output the server has not taken yet.
    pub fn send(&self, message: Message) -> Result<(), SessionSendError> {
        let mut st = self.shared.lock();
        let s = supervised(&mut st);
        let result = s.sup.send(message);
        s.collect();
        self.shared.wake(&st);
        drop(self.shared.drive(st, Who::User));
        result
    }

    /// Sends (or queues) a text message.
    pub fn send_text(&self, text: &str) -> Result<(), SessionSendError> {
        self.send(Message::text(text.to_owned()))
    }

    /// The next event, blocking; `None` after the terminal event (`GaveUp` or `Stopped`) was
    /// handed out.
    pub fn next_event(&self) -> Option<ReconnectEvent> {
        self.next_until(None).ok().flatten()
    }

    /// Like [`next_event`](ReconnectingClient::next_event), giving up after `timeout` with
    /// `Err(Error::Timeout)`.
    pub fn next_event_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<ReconnectEvent>, crate::Error> {
        self.next_until(StdInstant::now().checked_add(timeout))
    }

    /// What the current connection has for the user: its events first, then its data.
    fn take(&self, st: &mut State<MaybeTlsWriter>) -> Option<ReconnectEvent> {
        while let Some(event) = st.conn.poll_event() {
            match event {
                Event::Connected { subprotocol } => {
                    let s = supervised(st);
                    let (attempt, started) = (s.attempt, s.started);
                    let took = st.conn.opened_at().map_or(Duration::ZERO, |t| t - started);
                    return Some(ReconnectEvent::Connected {
                        attempt,
                        took,
                        subprotocol,
                    });
                }
                Event::Ping(p) => return Some(ReconnectEvent::Ping(p)),
                Event::Pong(p) => return Some(ReconnectEvent::Pong(p)),
                // The end is told by the supervisor's `Disconnected`.
                _ => {}
            }
        }
        self.shared.read(st).map(ReconnectEvent::from)
    }

    fn next_until(
        &self,
        until: Option<StdInstant>,
    ) -> Result<Option<ReconnectEvent>, crate::Error> {
        let mut st = self.shared.lock();
        loop {
            let s = supervised(&mut st);
            if s.events.front().is_some_and(|(g, _)| *g < s.generation) {
                let (_, event) = s.events.pop_front().expect("an event");
                return Ok(Some(ReconnectEvent::Supervisor(event)));
            }
            if let Some(event) = self.take(&mut st) {
                return Ok(Some(event));
            }
            if Shared::needs_drive(&st) {
                st = self.shared.drive(st, Who::User);
                continue;
            }
            let s = supervised(&mut st);
            if let Some((_, event)) = s.events.pop_front() {
                return Ok(Some(ReconnectEvent::Supervisor(event)));
            }
            if s.done {
                return Ok(None);
            }
            let (g, timed_out) = self.shared.wait(st, until);
            st = g;
            if timed_out {
                return Err(crate::Error::Timeout);
            }
        }
    }

    /// Ends the client with `code` and `reason` (no more reconnects): closes the live
    /// connection, if any, and waits until the client's thread finished; the terminal event
    /// stays available from `next_event`.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) -> Result<(), crate::Error> {
        let code = code.into();
        if !code.is_sendable() {
            return Err(crate::Error::Close(CloseError::InvalidCode(code.0)));
        }
        if reason.len() > tether::close::MAX_REASON_LEN {
            return Err(crate::Error::Close(CloseError::ReasonTooLong(reason.len())));
        }
        let mut st = self.stop(code, reason);
        while !supervised(&mut st).done {
            st = self.shared.wait(st, None).0;
        }
        Ok(())
    }

    /// Tells the supervisor to stop and closes the live connection (or abandons its opening
    /// handshake).
    fn stop(&self, code: CloseCode, reason: &str) -> Guard<'_> {
        let mut st = self.shared.lock();
        let now = now();
        let s = supervised(&mut st);
        s.sup.close(now);
        s.collect();
        if s.sup.has_connection() && st.conn.close(now, code, reason) == Err(CloseError::NotOpen) {
            st.conn.abort();
        }
        self.shared.wake(&st);
        self.shared.drive(st, Who::User)
    }

    /// Whether a connection is open now.
    pub fn is_open(&self) -> bool {
        self.shared.lock().conn.is_open()
    }

    /// Messages waiting in the queue for a connection.
    pub fn queued_messages(&self) -> usize {
        supervised(&mut self.shared.lock()).sup.queued_messages()
    }
}

impl Drop for ReconnectingClient {
    fn drop(&mut self) {
        let mut st = self.stop(CloseCode::NORMAL, "");
        st.handles = 0;
        st.receiving = false;
        st.conn.discard_incoming();
        self.shared.wake(&st);
        drop(self.shared.drive(st, Who::User));
    }
}
