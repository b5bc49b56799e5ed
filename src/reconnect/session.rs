//! A reconnecting client: a [`Connection`] per transport, an outbound queue that outlives them,
//! and a [`ReconnectPolicy`] that says when to come back.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use rand_core::Rng;

use super::classify::ReconnectConfig;
use super::disconnect::{Disconnect, GiveUpReason};
use super::fork::ForkedRng;
use super::policy::{Decision, ReconnectPolicy};
use super::queue::{Outbox, SessionSendError, SessionSendErrorKind};
use super::session_config::SessionConfig;
use super::session_event::{SessionAction, SessionEvent};
use crate::close::{CloseCode, MAX_REASON_LEN};
use crate::config::Config;
use crate::connection::Connection;
use crate::error::CloseError;
use crate::event::{Closed, Event, TransportAction};
use crate::handshake::ClientRequest;
use crate::message::Message;
use crate::time::Instant;

/// A message handed to the connection, with the output offset at which its frame ends.
#[derive(Debug)]
struct Flight {
    end: u64,
    /// `None` for an on-open message, which is never put back in the queue.
    message: Option<Message>,
}

/// The current transport's connection and the bookkeeping of what it was given.
#[derive(Debug)]
struct Live {
    conn: Connection,
    /// Messages whose frames were not yet entirely written, in order.
    flights: VecDeque<Flight>,
    /// Output bytes the driver reported written, from the start of this connection.
    written: u64,
    /// When this attempt's `Connect` was issued.
    started: Instant,
    /// The connection emitted its terminal event.
    ended: bool,
}

impl Live {
    /// The output offset just past everything the connection has queued so far.
    fn queued_end(&self) -> u64 {
        self.written + self.conn.buffered_output() as u64
    }
}

#[derive(Clone, Debug)]
enum Terminal {
    Stopped,
    GaveUp(GiveUpReason),
}

#[derive(Clone, Debug)]
enum Plan {
    /// `Connect` was issued; waiting for the driver's transport.
    Connecting { started: Instant, deadline: Instant },
    /// A connection runs on the transport (handshake or open).
    Running,
    /// Backing off until `at`. A connection that ended may still hold its transport.
    Waiting { at: Instant },
    /// The user asked to close; the close handshake runs.
    Closing,
    /// The session will end once the ended connection's transport is closed.
    Ending(Terminal),
    /// The terminal event was emitted.
    Done,
}

/// A reconnecting WebSocket client, sans-IO.
///
/// The session owns a [`ReconnectPolicy`], an outbound queue and, while a transport is open,
/// the current [`Connection`]. It goes `connecting -> open -> (backoff -> connecting)* ->
/// stopped`. Its driver is the connection's loop one level up: after every input or command,
/// obey [`poll_action`](Session::poll_action) (open or close a transport), write
/// [`pending_output`](Session::pending_output), hand out [`poll_event`](Session::poll_event)s,
/// then wait for bytes or [`poll_timeout`](Session::poll_timeout).
///
/// A blocking driver over `std::net::TcpStream`, in full:
///
/// ```no_run
/// use std::io::{ErrorKind, Read, Write};
/// use std::net::TcpStream;
/// use tether::handshake::ClientRequest;
/// use tether::reconnect::{ReconnectConfig, Session, SessionAction, SessionConfig, SessionEvent};
/// use tether::{Config, Instant, Message};
///
/// fn run(rng: impl rand_core::Rng + Send + 'static) -> std::io::Result<()> {
///     let now = || Instant::from(std::time::Instant::now());
///     let request = ClientRequest::new("ws://127.0.0.1:9001/feed").expect("a ws URL");
///     let mut settings = SessionConfig::default();
///     settings.on_open.push(Message::text("SUBSCRIBE prices"));
///     let (config, reconnect) = (Config::default(), ReconnectConfig::default());
///     let mut session = Session::new(request, config, reconnect, settings, rng, now());
///     let mut sock: Option<TcpStream> = None;
///     loop {
///         // 1. Open or close transports as asked.
///         while let Some(action) = session.poll_action() {
///             match action {
///                 SessionAction::Connect { .. } => match TcpStream::connect("127.0.0.1:9001") {
///                     Ok(s) => {
///                         sock = Some(s);
///                         session.transport_connected(now());
///                     }
///                     Err(e) => session.connect_failed(now(), &e.to_string()),
///                 },
///                 SessionAction::CloseTransport => sock = None,
///                 _ => {}
///             }
///         }
///         // 2. Hand events to the application.
///         while let Some(event) = session.poll_event() {
///             match event {
///                 SessionEvent::Message(Message::Text(t)) => println!("{}", t.as_str()),
///                 SessionEvent::GaveUp { reason, .. } => {
///                     return Err(std::io::Error::other(reason));
///                 }
///                 SessionEvent::Stopped { .. } => return Ok(()),
///                 _ => {}
///             }
///         }
///         // 3. Write, then wait for bytes or the next deadline.
///         let timeout = session.poll_timeout().map(|t| t - now());
///         let Some(s) = sock.as_mut() else {
///             std::thread::sleep(timeout.unwrap_or_default()); // backing off
///             session.handle_timeout(now());
///             continue;
///         };
///         while let Some(bytes) = session.pending_output() {
///             match s.write(bytes) {
///                 Ok(n) => session.consume_output(n),
///                 Err(_) => break,
///             }
///         }
///         s.set_read_timeout(timeout.filter(|d| !d.is_zero()))?;
///         match s.read(session.read_buf()) {
///             Ok(0) => session.handle_eof(now()),
///             Ok(n) => session.handle_read(now(), n),
///             Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
///             Err(_) => session.handle_eof(now()),
///         }
///         session.handle_timeout(now());
///     }
/// }
/// ```
///
/// # What happens to sent messages
///
/// [`send`](Session::send) hands a message to the open connection when nothing is waiting
/// before it, and otherwise appends it to the queue, which is drained in order after the
/// [`SessionConfig::on_open`] messages of the next connection, as fast as the connection's
/// [`Config::max_write_buffer`] allows (the rest waits for
/// [`consume_output`](Session::consume_output)).
///
/// For every message handed to a connection the session remembers the output offset at which
/// its frame ends. When the transport closes (it died, or the session closed it), every message
/// whose frame was not entirely reported written through `consume_output` goes back to the
/// front of the queue, in order, and is sent again on the next connection. So:
///
/// - a message is **lost** only if its frame was entirely written to a transport that then died
///   before the server processed it (it may sit in a kernel buffer, or in flight). WebSocket has
///   no acknowledgements; an application that cannot lose those needs its own.
/// - the session never **duplicates** a message: it re-sends only frames that were not entirely
///   written, which the server cannot have received whole.
/// - the [`SessionConfig::on_open`] messages are never put back: every connection sends them
///   afresh.
/// - messages are never dropped silently: the queue refuses what does not fit (the message is
///   handed back), or, with [`Overflow::DropOldest`](super::Overflow::DropOldest), hands the
///   dropped ones back in [`SessionEvent::Dropped`]. When the session ends, what is left is
///   counted in its terminal event and returned by [`take_unsent`](Session::take_unsent).
///
/// # How ends are classified
///
/// Each end of a connection is reported to the policy as the [`Disconnect`] given by
/// [`Disconnect::from_closed`] (a heartbeat timeout, for one, counts as a lost transport and is
/// retried), except that any end after the user's [`close`](Session::close) is
/// [`Disconnect::UserClosed`]. A transport that could not be opened is
/// [`Disconnect::ConnectFailed`] ([`connect_failed`](Session::connect_failed)) or
/// [`Disconnect::ConnectTimeout`] (no answer within [`SessionConfig::connect_timeout`]).
///
/// # Randomness
///
/// The generator given to [`Session::new`] draws the backoff jitter, and keys a child generator
/// for each connection (handshake nonce, masking keys, ping payloads): give it a CSPRNG in
/// production and a seeded one in tests.
pub struct Session {
    request: ClientRequest,
    config: Config,
    settings: SessionConfig,
    policy: ReconnectPolicy,
    rng: Box<dyn Rng + Send>,
    queue: Outbox,
    /// On-open messages not yet handed to the current connection.
    preamble: VecDeque<Message>,
    live: Option<Live>,
    plan: Plan,
    /// Attempts since the session started or last connected.
    attempt: u32,
    actions: VecDeque<SessionAction>,
    events: VecDeque<SessionEvent>,
    /// The latest `now` seen: a clock that steps back is read as "no time passed".
    now: Instant,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("plan", &self.plan)
            .field("attempt", &self.attempt)
            .field("queued", &self.queue.len())
            .field("connection", &self.live.as_ref().map(|l| &l.conn))
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that starts at once with its first attempt: the first
    /// [`poll_action`](Session::poll_action) is [`SessionAction::Connect`]. Every attempt sends
    /// a fresh opening handshake for `request` and runs a connection with `config`.
    pub fn new<R: Rng + Send + 'static>(
        request: ClientRequest,
        config: Config,
        reconnect: ReconnectConfig,
        settings: SessionConfig,
        rng: R,
        now: Instant,
    ) -> Self {
        let queue = Outbox::new(
            settings.max_queued_messages,
            settings.max_queued_bytes,
            settings.overflow,
        );
        let mut session = Session {
            request,
            config,
            settings,
            policy: ReconnectPolicy::new(reconnect),
            rng: Box::new(rng),
            queue,
            preamble: VecDeque::new(),
            live: None,
            plan: Plan::Done,
            attempt: 0,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            now,
        };
        session.start_attempt(now);
        session
    }

    // ----- inputs from the driver ---------------------------------------------------------

    /// The transport asked for by [`SessionAction::Connect`] is open: the session starts a
    /// connection on it (its first output is the opening handshake). Ignored when no connect is
    /// pending (say, after the connect timeout abandoned it).
    pub fn transport_connected(&mut self, now: Instant) {
        let now = self.tick(now);
        let Plan::Connecting { started, .. } = self.plan else {
            return;
        };
        let rng = ForkedRng::from_parent(&mut *self.rng);
        let conn = Connection::client(self.request.clone(), self.config.clone(), rng, now);
        self.live = Some(Live {
            conn,
            flights: VecDeque::new(),
            written: 0,
            started,
            ended: false,
        });
        self.plan = Plan::Running;
    }

    /// The transport asked for by [`SessionAction::Connect`] could not be opened (refused,
    /// unreachable, name resolution, TLS setup); `detail` says how, for the
    /// [`SessionEvent::Disconnected`] event. Ignored when no connect is pending.
    pub fn connect_failed(&mut self, now: Instant, detail: &str) {
        let now = self.tick(now);
        if let Plan::Connecting { .. } = self.plan {
            self.on_end(now, Disconnect::ConnectFailed, None, detail.to_string());
        }
    }

    /// The buffer to read transport bytes into; report how many with
    /// [`handle_read`](Session::handle_read). Empty when there is no transport.
    pub fn read_buf(&mut self) -> &mut [u8] {
        match &mut self.live {
            Some(live) => live.conn.read_buf(),
            None => &mut [],
        }
    }

    /// The driver read `n` bytes into [`read_buf`](Session::read_buf).
    pub fn handle_read(&mut self, now: Instant, n: usize) {
        let now = self.tick(now);
        if let Some(live) = &mut self.live {
            live.conn.handle_read(now, n);
            self.pump(now);
        }
    }

    /// Received bytes from a buffer of the driver's own.
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        let now = self.tick(now);
        if let Some(live) = &mut self.live {
            live.conn.handle_data(now, data);
            self.pump(now);
        }
    }

    /// The current transport's read side ended, or the transport failed.
    pub fn handle_eof(&mut self, now: Instant) {
        let now = self.tick(now);
        if let Some(live) = &mut self.live {
            live.conn.handle_eof(now);
            self.pump(now);
        }
    }

    /// Time passed: fires the connection's timers and the session's (connect timeout, end of a
    /// backoff). Harmless when called early, late or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        if let Some(live) = &mut self.live {
            live.conn.handle_timeout(now);
            self.pump(now);
        }
        match self.plan {
            Plan::Connecting { deadline, .. } if deadline <= now => {
                self.actions.push_back(SessionAction::CloseTransport);
                let detail = "the transport did not open in time".to_string();
                self.on_end(now, Disconnect::ConnectTimeout, None, detail);
            }
            Plan::Waiting { at } if at <= now => {
                // A connection that ended may still linger on its transport: close it first.
                self.retire();
                self.start_attempt(now);
            }
            _ => {}
        }
    }

    // ----- outputs ------------------------------------------------------------------------

    /// The next transport action, if any. Ask after every input or command.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<SessionAction> {
        self.check_transport();
        self.actions.pop_front()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The first run of bytes to write to the current transport; report progress with
    /// [`consume_output`](Session::consume_output).
    #[must_use]
    pub fn pending_output(&self) -> Option<&[u8]> {
        self.live.as_ref().and_then(|l| l.conn.pending_output())
    }

    /// Every run of bytes waiting to be written, in order, for a vectored write.
    pub fn output_slices(&self) -> impl Iterator<Item = &[u8]> {
        self.live.iter().flat_map(|l| l.conn.output_slices())
    }

    /// The driver wrote `n` bytes of the pending output. Messages whose frames are now entirely
    /// written are forgotten; queued messages move into the room this frees.
    pub fn consume_output(&mut self, n: usize) {
        let Some(live) = &mut self.live else {
            return;
        };
        let n = n.min(live.conn.buffered_output());
        live.conn.consume_output(n);
        live.written += n as u64;
        while live.flights.front().is_some_and(|f| f.end <= live.written) {
            live.flights.pop_front();
        }
        self.flush();
        self.check_transport();
    }

    /// The earliest instant at which [`handle_timeout`](Session::handle_timeout) has work: the
    /// connection's timers, the connect timeout, the end of a backoff.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = match self.plan {
            Plan::Connecting { deadline, .. } => Some(deadline),
            Plan::Waiting { at } => Some(at),
            _ => None,
        };
        let conn = self.live.as_ref().and_then(|l| l.conn.poll_timeout());
        match (own, conn) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the driver should read from the transport now (see
    /// [`Connection::wants_read`]). False when there is no transport.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.conn.wants_read())
    }

    // ----- commands -----------------------------------------------------------------------

    /// Sends `message` now if a connection is open and nothing waits before it, or queues it
    /// for the next one. Refused (with the message handed back) when the queue is full, as
    /// [`SessionConfig::overflow`] says, and once the user closed the session or it ended.
    pub fn send(&mut self, message: Message) -> Result<(), SessionSendError> {
        let refuse = match self.plan {
            Plan::Closing => Some(SessionSendErrorKind::Closing),
            Plan::Ending(_) | Plan::Done => Some(SessionSendErrorKind::Ended),
            _ => None,
        };
        if let Some(kind) = refuse {
            return Err(SessionSendError { kind, message });
        }
        let message = if self.preamble.is_empty() && self.queue.is_empty() {
            match self.live.as_mut() {
                Some(live) if live.conn.is_open() => match hand_over(live, message, true) {
                    Ok(()) => return Ok(()),
                    Err(message) => message,
                },
                _ => message,
            }
        } else {
            message
        };
        let dropped = self.queue.push(message)?;
        if !dropped.is_empty() {
            self.events
                .push_back(SessionEvent::Dropped { messages: dropped });
        }
        Ok(())
    }

    /// Ends the session at the user's request; it will not reconnect. With an open connection
    /// this runs the close handshake with `code` and `reason` (RFC 6455 §7.1.2), then reports
    /// [`SessionEvent::Disconnected`] and [`SessionEvent::Stopped`]; while connecting it aborts
    /// the attempt, and while backing off it stops at once. Queued messages stay queued: the
    /// terminal event counts them and [`take_unsent`](Session::take_unsent) returns them.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), CloseError> {
        if !code.is_sendable() {
            return Err(CloseError::InvalidCode(code.0));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(CloseError::ReasonTooLong(reason.len()));
        }
        let now = self.tick(now);
        match self.plan {
            Plan::Closing => Err(CloseError::AlreadyClosing),
            Plan::Ending(_) | Plan::Done => Err(CloseError::Closed),
            Plan::Running => {
                if let Some(live) = &mut self.live {
                    live.conn.close(now, code, reason)?;
                }
                self.plan = Plan::Closing;
                self.pump(now);
                Ok(())
            }
            Plan::Connecting { .. } | Plan::Waiting { .. } => {
                if matches!(self.plan, Plan::Connecting { .. }) {
                    self.actions.push_back(SessionAction::CloseTransport);
                }
                self.retire();
                self.policy.reset();
                self.plan = Plan::Ending(Terminal::Stopped);
                self.check_transport();
                Ok(())
            }
        }
    }

    /// Takes every message still in the queue, oldest first. After the terminal event this is
    /// everything the session accepted and did not write; before it, messages handed to the
    /// current connection are not included.
    pub fn take_unsent(&mut self) -> Vec<Message> {
        self.queue.take_all()
    }

    // ----- accessors ----------------------------------------------------------------------

    /// The current connection, while a transport is open.
    #[must_use]
    pub fn connection(&self) -> Option<&Connection> {
        self.live.as_ref().map(|l| &l.conn)
    }

    /// Whether a connection is open (messages go straight to it).
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self.plan, Plan::Running) && self.live.as_ref().is_some_and(|l| l.conn.is_open())
    }

    /// Whether the session emitted its terminal event.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.plan, Plan::Done)
    }

    /// Messages in the outbound queue (not counting those handed to the connection).
    #[must_use]
    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }

    /// Payload bytes in the outbound queue.
    #[must_use]
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// Messages handed to the current connection whose frames are not yet entirely written:
    /// the ones that go back to the queue if the transport dies now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.live.as_ref().map_or(0, |l| {
            l.flights.iter().filter(|f| f.message.is_some()).count()
        })
    }

    /// The reconnect policy and where it is in its schedule.
    #[must_use]
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// The session's settings.
    #[must_use]
    pub fn settings(&self) -> &SessionConfig {
        &self.settings
    }

    // ----- internals ----------------------------------------------------------------------

    fn tick(&mut self, now: Instant) -> Instant {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    fn start_attempt(&mut self, now: Instant) {
        self.attempt = self.attempt.saturating_add(1);
        self.actions.push_back(SessionAction::Connect {
            attempt: self.attempt,
        });
        self.plan = Plan::Connecting {
            started: now,
            deadline: now.saturating_add(self.settings.connect_timeout),
        };
    }

    /// Moves the connection's events out, sends what it has room for, and obeys its transport
    /// action.
    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.live.as_mut().and_then(|l| l.conn.poll_event()) {
            match event {
                Event::Connected { subprotocol } => self.on_connected(now, subprotocol),
                Event::Message(m) => self.events.push_back(SessionEvent::Message(m)),
                Event::MessageStart(k) => self.events.push_back(SessionEvent::MessageStart(k)),
                Event::MessageChunk(b) => self.events.push_back(SessionEvent::MessageChunk(b)),
                Event::MessageEnd => self.events.push_back(SessionEvent::MessageEnd),
                Event::Ping(b) => self.events.push_back(SessionEvent::Ping(b)),
                Event::Pong(b) => self.events.push_back(SessionEvent::Pong(b)),
                Event::Closed(closed) => {
                    if let Some(live) = &mut self.live {
                        live.ended = true;
                    }
                    let reason = if matches!(self.plan, Plan::Closing) {
                        Disconnect::UserClosed
                    } else {
                        Disconnect::from_closed(&closed)
                    };
                    let detail = closed.reason.clone();
                    self.on_end(now, reason, Some(closed), detail);
                }
                // A client never sees an opening request.
                _ => {}
            }
        }
        self.flush();
        self.check_transport();
    }

    fn on_connected(&mut self, now: Instant, subprotocol: Option<String>) {
        self.policy.connected(now);
        let took = self
            .live
            .as_ref()
            .map_or(Duration::ZERO, |l| now - l.started);
        self.events.push_back(SessionEvent::Connected {
            attempt: self.attempt,
            took,
            subprotocol,
        });
        self.attempt = 0;
        self.preamble = self.settings.on_open.iter().cloned().collect();
    }

    /// Hands the on-open messages, then the queue, to an open connection until its write
    /// buffer is full.
    fn flush(&mut self) {
        let Some(live) = self.live.as_mut().filter(|l| l.conn.is_open()) else {
            return;
        };
        while let Some(message) = self.preamble.pop_front() {
            if let Err(message) = hand_over(live, message, false) {
                self.preamble.push_front(message);
                return;
            }
        }
        while let Some(message) = self.queue.pop_front() {
            if let Err(message) = hand_over(live, message, true) {
                self.queue.push_front(message);
                return;
            }
        }
    }

    /// A connection attempt or a connection ended: asks the policy, reports, plans.
    fn on_end(&mut self, now: Instant, reason: Disconnect, closed: Option<Closed>, detail: String) {
        self.preamble.clear();
        let decision = self.policy.disconnected(now, reason, &mut *self.rng);
        let (retry_in, retry_at) = match decision {
            Decision::Retry { after, .. } => {
                let at = now.saturating_add(after);
                self.plan = Plan::Waiting { at };
                (Some(after), Some(at))
            }
            Decision::GiveUp { reason } => {
                self.plan = Plan::Ending(Terminal::GaveUp(reason));
                (None, None)
            }
            Decision::Stop => {
                self.plan = Plan::Ending(Terminal::Stopped);
                (None, None)
            }
        };
        self.events.push_back(SessionEvent::Disconnected {
            reason,
            closed,
            detail,
            retry_in,
            retry_at,
        });
        self.check_transport();
    }

    /// Retires the connection if it wants its transport closed, and ends the session when it
    /// was only waiting for that.
    fn check_transport(&mut self) {
        if let Some(live) = &mut self.live
            && let Some(TransportAction::Close) = live.conn.poll_transport()
        {
            self.retire();
        }
        if self.live.is_none()
            && let Plan::Ending(terminal) = &self.plan
        {
            let unsent = self.queue.len();
            let event = match terminal.clone() {
                Terminal::Stopped => SessionEvent::Stopped { unsent },
                Terminal::GaveUp(reason) => SessionEvent::GaveUp { reason, unsent },
            };
            self.events.push_back(event);
            self.plan = Plan::Done;
        }
    }

    /// Drops the current connection and its transport. Messages whose frames were not entirely
    /// written go back to the front of the queue, in order.
    fn retire(&mut self) {
        let Some(live) = self.live.take() else {
            return;
        };
        let written = live.written;
        let unwritten: Vec<Message> = live
            .flights
            .into_iter()
            .filter(|f| f.end > written)
            .filter_map(|f| f.message)
            .collect();
        self.queue.requeue_front(unwritten.into_iter());
        self.actions.push_back(SessionAction::CloseTransport);
        if !live.ended && matches!(self.plan, Plan::Running | Plan::Closing) {
            // Only reachable if the connection closed its transport without a terminal event.
            let reason = if matches!(self.plan, Plan::Closing) {
                Disconnect::UserClosed
            } else {
                Disconnect::TransportLost
            };
            let detail = "transport closed".to_string();
            let now = self.now;
            self.on_end(now, reason, None, detail);
        }
    }
}

/// Gives `message` to the open connection and remembers where its frame ends; hands it back when
/// the connection's write buffer is full.
fn hand_over(live: &mut Live, message: Message, requeue: bool) -> Result<(), Message> {
    match live.conn.send(message.clone()) {
        Ok(()) => {
            let end = live.queued_end();
            live.flights.push_back(Flight {
                end,
                message: requeue.then_some(message),
            });
            Ok(())
        }
        Err(err) => Err(err.into_inner()),
    }
}
