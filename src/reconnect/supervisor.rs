//! A reconnect supervisor: it lives beside the current [`Connection`], decides when to open a
//! transport, hands out each fresh connection with the queued messages already sent into it,
//! and learns how the connection ended.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::classify::ReconnectConfig;
use super::disconnect::{Disconnect, GiveUpReason};
use super::policy::{Decision, ReconnectPolicy};
use super::queue::{Outbox, SessionSendError, SessionSendErrorKind};
use super::session_config::SessionConfig;
use super::supervisor_event::{SupervisorAction, SupervisorEvent};
use crate::config::Config;
use crate::connection::Connection;
use crate::event::{Closed, TransportAction};
use crate::handshake::ClientRequest;
use crate::message::Message;
use crate::time::Instant;

/// What the supervisor knows about the connection it handed out.
#[derive(Debug)]
struct Live {
    /// On-open messages the connection has not accepted yet (it refused one for lack of room):
    /// they go in before anything queued.
    preamble: VecDeque<Message>,
    /// On-open messages the connection accepted. They were its first messages.
    on_open_sent: usize,
    /// Messages the connection accepted from the supervisor, on-open ones included.
    sent: usize,
    /// The user called [`Supervisor::close`]: however the connection ends, it is not retried.
    closing: bool,
}

#[derive(Debug)]
enum Plan {
    /// [`SupervisorAction::Connect`] was issued; waiting for the driver's report.
    Connecting { deadline: Instant },
    /// A connection is out; waiting for [`Supervisor::connection_ended`].
    Live(Live),
    /// Backing off until `at`.
    Waiting { at: Instant },
    /// The terminal event was emitted.
    Done,
}

/// A reconnecting WebSocket client's supervisor, sans-IO. It stands beside the connection, not
/// around it.
///
/// The supervisor owns a [`ReconnectPolicy`] and a bounded outbound queue. It tells its driver
/// when to open a transport ([`SupervisorAction::Connect`]); when the transport is open,
/// [`transport_connected`](Supervisor::transport_connected) hands out a fresh client
/// [`Connection`] with the [`SessionConfig::on_open`] messages and then the queued messages
/// already sent into it. The driver runs that connection exactly like a plain one (its bytes,
/// events, data and transport actions never pass through the supervisor) and, once done with
/// the transport, reports the end with [`connection_ended`](Supervisor::connection_ended). The
/// supervisor takes back what was not written, asks the policy, and answers with the next delay
/// ([`SupervisorEvent::Disconnected`]) or a terminal event.
///
/// The driver's contract:
///
/// - after every input or command, obey [`poll_action`](Supervisor::poll_action), then hand out
///   [`poll_event`](Supervisor::poll_event)s, and wait for
///   [`poll_timeout`](Supervisor::poll_timeout) (as well as for the connection's own deadline);
/// - answer [`SupervisorAction::Connect`] with [`transport_connected`](Supervisor::transport_connected)
///   or [`connect_failed`](Supervisor::connect_failed);
/// - every data message for the service goes through [`send`](Supervisor::send) (a bounded
///   queue), and [`send_queued`](Supervisor::send_queued) moves the queue into the live
///   connection as far as its flow control allows: call it after `send` and whenever the
///   connection has written output. Do not send data messages into a supervised connection
///   directly: the supervisor counts what it gave the connection to know, at the end, which of
///   the messages it gets back were on-open ones;
/// - call [`connection_ended`](Supervisor::connection_ended) once the transport is finished
///   with: after the connection's [`TransportAction::Close`], or when the transport failed.
///
/// A blocking driver over `std::net::TcpStream`, in full:
///
/// ```no_run
/// use std::io::{ErrorKind, Read, Write};
/// use std::net::{Shutdown, TcpStream};
/// use tether::handshake::ClientRequest;
/// use tether::reconnect::{
///     ReconnectConfig, SessionConfig, Supervisor, SupervisorAction, SupervisorEvent,
/// };
/// use tether::{Config, Connection, Data, Event, Instant, Message, TransportAction};
///
/// /// A transport and the connection that runs on it.
/// struct Live {
///     sock: TcpStream,
///     conn: Connection,
///     shut_down: bool,
/// }
///
/// fn run(rng: impl rand_core::Rng + Send + 'static) -> std::io::Result<()> {
///     let now = || Instant::from(std::time::Instant::now());
///     let request = ClientRequest::new("ws://127.0.0.1:9001/feed").expect("a ws URL");
///     let mut settings = SessionConfig::default();
///     settings.on_open.push(Message::text("SUBSCRIBE prices"));
///     let (config, reconnect) = (Config::default(), ReconnectConfig::default());
///     let mut sup = Supervisor::new(request, config, reconnect, settings, rng, now());
///     sup.send(Message::text("hello")).expect("room in the queue");
///     let mut live: Option<Live> = None;
///     loop {
///         // 1. Open a transport when asked: the supervisor hands out its connection.
///         while let Some(action) = sup.poll_action() {
///             if let SupervisorAction::Connect { .. } = action {
///                 match TcpStream::connect("127.0.0.1:9001") {
///                     Ok(sock) => {
///                         let conn = sup.transport_connected(now());
///                         live = conn.map(|conn| Live { sock, conn, shut_down: false });
///                     }
///                     Err(e) => sup.connect_failed(now(), &e.to_string()),
///                 }
///             }
///         }
///         // 2. What the supervisor decided.
///         while let Some(event) = sup.poll_event() {
///             match event {
///                 SupervisorEvent::Disconnected { reason, retry_in, .. } => {
///                     eprintln!("{reason}; next attempt in {retry_in:?}");
///                 }
///                 SupervisorEvent::GaveUp { reason, .. } => {
///                     return Err(std::io::Error::other(reason));
///                 }
///                 SupervisorEvent::Stopped { .. } => return Ok(()),
///                 _ => {}
///             }
///         }
///         let Some(Live { sock, conn, shut_down }) = live.as_mut() else {
///             // Backing off until the next attempt.
///             if let Some(at) = sup.poll_timeout() {
///                 std::thread::sleep(at - now());
///             }
///             sup.handle_timeout(now());
///             continue;
///         };
///         // 3. The connection's own loop, with the queue fed in as room allows.
///         sup.send_queued(conn);
///         let mut finished = false;
///         while let Some(transmit) = conn.poll_transmit() {
///             match sock.write(transmit.first()) {
///                 Ok(n) => conn.advance(n),
///                 Err(_) => {
///                     finished = true;
///                     break;
///                 }
///             }
///         }
///         while let Some(event) = conn.poll_event() {
///             if let Event::Connected { .. } = event {
///                 eprintln!("connected");
///             }
///         }
///         while let Some(data) = conn.read() {
///             if let Data::Message(Message::Text(text)) = data {
///                 println!("{text}");
///             }
///         }
///         match conn.poll_transport() {
///             Some(TransportAction::Shutdown) if !*shut_down => {
///                 *shut_down = true;
///                 let _ = sock.shutdown(Shutdown::Write);
///             }
///             Some(TransportAction::Close) => finished = true,
///             _ => {}
///         }
///         if finished {
///             sup.connection_ended(now(), conn);
///             live = None; // drops the socket
///             continue;
///         }
///         // 4. Wait for bytes or the connection's next deadline.
///         let timeout = conn.poll_timeout().map(|t| t - now());
///         sock.set_read_timeout(timeout.filter(|d| !d.is_zero()))?;
///         let mut buf = conn.recv_buf();
///         let read = sock.read(&mut buf);
///         buf.commit(now(), *read.as_ref().unwrap_or(&0));
///         match read {
///             Ok(0) => conn.handle_eof(now()),
///             Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
///                 conn.handle_eof(now());
///             }
///             _ => {}
///         }
///         conn.handle_timeout(now());
///     }
/// }
/// ```
///
/// # What happens to sent messages
///
/// [`send`](Supervisor::send) appends to the queue, which is bounded in messages
/// ([`SessionConfig::max_queued_messages`]) and payload bytes
/// ([`SessionConfig::max_queued_bytes`]). The queue goes into each new connection right behind
/// its [`SessionConfig::on_open`] messages, in order, and later through
/// [`send_queued`](Supervisor::send_queued). A client connection accepts messages before its
/// opening handshake completes and writes them right after it. A message the connection refuses
/// for lack of room ([`SendErrorKind::BufferFull`](crate::SendErrorKind::BufferFull), its
/// [`Config::high_watermark`]) stays at the front of the queue, and so does everything behind it,
/// until `send_queued` finds room.
///
/// Every connection the supervisor hands out keeps the messages it was given until their frames
/// are entirely written ([`Config::retain_unsent`] is turned on). When the connection ends,
/// [`connection_ended`](Supervisor::connection_ended) takes back every message whose frame was
/// not entirely reported written through [`Connection::advance`] and puts it at the front of the
/// queue, in order, for the next connection. So:
///
/// - a message is **lost** only if its frame was entirely written to a transport that then died
///   before the server processed it (it may sit in a kernel buffer, or in flight). WebSocket has
///   no acknowledgements; an application that cannot lose those needs its own. Such a message
///   may also arrive **late** instead: when the client gave up on a transport (a heartbeat
///   timeout over a stalled link) that the server still holds open, the link can heal and
///   deliver it after newer messages sent over the next connection.
/// - a message is never **duplicated**: only frames that were not entirely written are sent
///   again, and the server cannot have received those whole.
/// - the [`SessionConfig::on_open`] messages are never put back: every connection sends them
///   afresh. They are the first messages of each connection, so the supervisor tells them apart
///   by counting: of the `n` messages it gave the connection, the `u` returned are the last `u`,
///   and those among the first `k` (the on-open ones) are dropped.
/// - messages are never dropped silently: the queue refuses what does not fit (the message is
///   handed back), or, with [`Overflow::DropOldest`](super::Overflow::DropOldest), hands the
///   dropped ones back in [`SupervisorEvent::Dropped`]. When the supervisor ends, what is left is
///   counted in its terminal event and returned by [`take_unsent`](Supervisor::take_unsent).
///
/// # How ends are classified
///
/// The end of a connection is reported to the policy as the [`Disconnect`] given by
/// [`Disconnect::from_closed`] (a heartbeat timeout, for one, counts as a lost transport and is
/// retried), except that any end after the user's [`close`](Supervisor::close) is
/// [`Disconnect::UserClosed`]. A connection that had opened ([`Connection::opened_at`]) is
/// reported to the policy as connected at that instant, so one that stayed up for
/// [`ReconnectConfig::stable_period`] starts the schedule afresh. A transport that could not be
/// opened is [`Disconnect::ConnectFailed`] ([`connect_failed`](Supervisor::connect_failed)) or
/// [`Disconnect::ConnectTimeout`] (no report within [`SessionConfig::connect_timeout`]).
///
/// # Randomness
///
/// The generator given to [`Supervisor::new`] draws the backoff jitter and seeds a
/// [`ChaCha20Rng`] for each connection (handshake nonce, masking keys, ping payloads): give it a
/// CSPRNG in production and a seeded one in tests.
pub struct Supervisor {
    request: ClientRequest,
    /// The connections' configuration, with [`Config::retain_unsent`] on.
    config: Config,
    settings: SessionConfig,
    policy: ReconnectPolicy,
    rng: Box<dyn Rng + Send>,
    queue: Outbox,
    plan: Plan,
    /// Attempts since the supervisor started or a connection last opened.
    attempt: u32,
    actions: VecDeque<SupervisorAction>,
    events: VecDeque<SupervisorEvent>,
    /// The latest `now` seen: a clock that steps back is read as "no time passed".
    now: Instant,
    /// `tether-resume` ([`Config::resume`]): the session the last connection carried, resumed
    /// by the next one.
    session: Option<crate::resume::Session>,
}

impl core::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Supervisor")
            .field("plan", &self.plan)
            .field("attempt", &self.attempt)
            .field("queued", &self.queue.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor that starts at once with its first attempt: the first
    /// [`poll_action`](Supervisor::poll_action) is [`SupervisorAction::Connect`]. Every attempt
    /// sends a fresh opening handshake for `request` and runs a connection with `config` (with
    /// [`Config::retain_unsent`] turned on, which the supervisor relies on).
    pub fn new<R: Rng + Send + 'static>(
        request: ClientRequest,
        mut config: Config,
        reconnect: ReconnectConfig,
        settings: SessionConfig,
        rng: R,
        now: Instant,
    ) -> Self {
        config.retain_unsent = true;
        let queue = Outbox::new(
            settings.max_queued_messages,
            settings.max_queued_bytes,
            settings.overflow,
        );
        let mut supervisor = Supervisor {
            request,
            config,
            settings,
            policy: ReconnectPolicy::new(reconnect),
            rng: Box::new(rng),
            queue,
            plan: Plan::Done,
            attempt: 0,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            now,
            session: None,
        };
        supervisor.start_attempt(now);
        supervisor
    }

    // ----- inputs from the driver ---------------------------------------------------------

    /// The transport asked for by [`SupervisorAction::Connect`] is open: here is the client
    /// connection to run on it. Its first output is the opening handshake; the on-open messages
    /// and the queue have already been sent into it (as far as its flow control allowed; see
    /// [`send_queued`](Supervisor::send_queued)), to be written once the handshake completes.
    ///
    /// `None` when no connect is pending (the attempt was abandoned with
    /// [`SupervisorAction::AbandonConnect`], or the supervisor ended): close the transport.
    #[must_use = "run the connection on the transport, or close the transport on None"]
    pub fn transport_connected(&mut self, now: Instant) -> Option<Connection> {
        let now = self.tick(now);
        if !matches!(self.plan, Plan::Connecting { .. }) {
            return None;
        }
        let rng = ChaCha20Rng::from_rng(&mut *self.rng);
        let mut conn = Connection::client_resuming(
            self.request.clone(),
            self.config.clone(),
            rng,
            now,
            self.session.take(),
        );
        self.plan = Plan::Live(Live {
            preamble: self.settings.on_open.iter().cloned().collect(),
            on_open_sent: 0,
            sent: 0,
            closing: false,
        });
        self.send_queued(&mut conn);
        Some(conn)
    }

    /// The transport asked for by [`SupervisorAction::Connect`] could not be opened (refused,
    /// unreachable, name resolution, TLS setup); `detail` says how, for the
    /// [`SupervisorEvent::Disconnected`] event. Ignored when no connect is pending.
    pub fn connect_failed(&mut self, now: Instant, detail: &str) {
        let now = self.tick(now);
        if let Plan::Connecting { .. } = self.plan {
            self.on_end(now, Disconnect::ConnectFailed, None, detail.to_string(), 0);
        }
    }

    /// The connection handed out by [`transport_connected`](Supervisor::transport_connected) is
    /// finished with its transport: call this after its
    /// [`TransportAction::Close`], or as soon as the transport failed (a write or read error).
    /// Nothing more may be written to that transport afterwards.
    ///
    /// If the connection had not ended yet (no [`Connection::closed`] record), or was still
    /// waiting on its transport, it is given its end of stream
    /// ([`Connection::handle_eof`]) first. Then the supervisor reads how it ended and when it
    /// opened, takes back with [`Connection::take_unsent`] the messages whose frames were not
    /// entirely written (the on-open ones excepted) and puts them at the front of the queue,
    /// asks the policy, and emits [`SupervisorEvent::Disconnected`] with the next delay,
    /// followed by [`SupervisorEvent::GaveUp`] or [`SupervisorEvent::Stopped`] when it will not
    /// retry. Ignored when no connection is out (say, a second report for the same one).
    ///
    /// The connection itself is left as it is, ended: data it received and the application
    /// has not [`read`](Connection::read) yet, and its own events, stay there to be taken.
    pub fn connection_ended(&mut self, now: Instant, conn: &mut Connection) {
        let now = self.tick(now);
        let Plan::Live(live) = &self.plan else {
            return;
        };
        let (closing, sent, on_open_sent) = (live.closing, live.sent, live.on_open_sent);
        // A peer's Close that waited behind unread data is answered by the first end of stream,
        // which then ends the connection for good; two are always enough.
        for _ in 0..2 {
            if conn.closed().is_some() && conn.poll_transport() == Some(TransportAction::Close) {
                break;
            }
            conn.handle_eof(now);
        }
        if let Some(opened) = conn.opened_at() {
            self.policy.connected(opened);
            self.attempt = 0;
        }
        let unsent = conn.take_unsent();
        // With `tether-resume` the written messages stay in the session, replayed on resumption.
        self.session = conn.take_session();
        // The on-open messages were the connection's first: of the `sent` messages it was given,
        // the unsent ones are the last, and those among the first `on_open_sent` are dropped.
        let written = sent.saturating_sub(unsent.len());
        let skip = on_open_sent.saturating_sub(written).min(unsent.len());
        let requeued = unsent.len() - skip;
        self.queue.requeue_front(unsent.into_iter().skip(skip));
        let closed = conn.closed().cloned();
        let reason = match &closed {
            _ if closing => Disconnect::UserClosed,
            Some(closed) => Disconnect::from_closed(closed),
            None => Disconnect::TransportLost,
        };
        let detail = closed
            .as_ref()
            .map_or_else(|| "transport closed".to_string(), |c| c.reason.clone());
        self.on_end(now, reason, closed, detail, requeued);
    }

    /// Time passed: fires the supervisor's own timers (the connect timeout, the end of a
    /// backoff). The connection's timers are its own business. Harmless when called early,
    /// late or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        match self.plan {
            Plan::Connecting { deadline } if deadline <= now => {
                self.actions.push_back(SupervisorAction::AbandonConnect);
                let detail = "the transport did not open in time".to_string();
                self.on_end(now, Disconnect::ConnectTimeout, None, detail, 0);
            }
            Plan::Waiting { at } if at <= now => self.start_attempt(now),
            _ => {}
        }
    }

    // ----- outputs ------------------------------------------------------------------------

    /// The next thing to do about transports, if any. Ask after every input or command.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<SupervisorAction> {
        self.actions.pop_front()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SupervisorEvent> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`handle_timeout`](Supervisor::handle_timeout) has work:
    /// the connect timeout, or the end of a backoff. `None` while a connection is out (wait for
    /// the connection's own [`poll_timeout`](Connection::poll_timeout) then) and once ended.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.plan {
            Plan::Connecting { deadline } => Some(deadline),
            Plan::Waiting { at } => Some(at),
            Plan::Live(_) | Plan::Done => None,
        }
    }

    // ----- commands -----------------------------------------------------------------------

    /// Queues `message` for the service: it goes into the live connection with the next
    /// [`send_queued`](Supervisor::send_queued), or into the next connection. Refused (with the
    /// message handed back) when the queue is full, as [`SessionConfig::overflow`] says, and
    /// once the user closed the supervisor or it ended.
    pub fn send(&mut self, message: Message) -> Result<(), SessionSendError> {
        let refuse = match &self.plan {
            Plan::Live(Live { closing: true, .. }) => Some(SessionSendErrorKind::Closing),
            Plan::Done => Some(SessionSendErrorKind::Ended),
            _ => None,
        };
        if let Some(kind) = refuse {
            return Err(SessionSendError { kind, message });
        }
        let dropped = self.queue.push(message)?;
        if !dropped.is_empty() {
            self.report_dropped(dropped);
        }
        Ok(())
    }

    /// Hands dropped messages back in a [`SupervisorEvent::Dropped`]: the last one if it has not
    /// been polled yet, within the queue's limits (the oldest beyond them are only counted).
    fn report_dropped(&mut self, mut dropped: Vec<Message>) {
        if !matches!(self.events.back(), Some(SupervisorEvent::Dropped { .. })) {
            self.events.push_back(SupervisorEvent::Dropped {
                messages: Vec::new(),
                forgotten: 0,
            });
        }
        let Some(SupervisorEvent::Dropped {
            messages,
            forgotten,
        }) = self.events.back_mut()
        else {
            return;
        };
        messages.append(&mut dropped);
        let (max_messages, max_bytes) = (
            self.settings.max_queued_messages,
            self.settings.max_queued_bytes,
        );
        let mut bytes: usize = messages.iter().map(Message::len).sum();
        let mut cut = 0;
        while cut < messages.len() && (messages.len() - cut > max_messages || bytes > max_bytes) {
            bytes -= messages[cut].len();
            cut += 1;
        }
        messages.drain(..cut);
        *forgotten += cut;
    }

    /// Sends what waits, in order, into `conn` (the connection this supervisor handed out):
    /// first the on-open messages it has not accepted yet, then the queue. Stops at the first
    /// message the connection refuses (for lack of room,
    /// [`SendErrorKind::BufferFull`](crate::SendErrorKind::BufferFull), or because it is
    /// closing): that message and the rest stay queued. Returns how many messages went in.
    /// Does nothing when no connection is out.
    ///
    /// Call it after [`send`](Supervisor::send) and whenever the connection wrote output
    /// ([`Connection::advance`]); it is cheap when nothing waits.
    pub fn send_queued(&mut self, conn: &mut Connection) -> usize {
        let Plan::Live(live) = &mut self.plan else {
            return 0;
        };
        let before = live.sent;
        while let Some(message) = live.preamble.pop_front() {
            match conn.send(message) {
                Ok(()) => {
                    live.on_open_sent += 1;
                    live.sent += 1;
                }
                Err(err) => {
                    live.preamble.push_front(err.into_inner());
                    return live.sent - before;
                }
            }
        }
        while let Some(message) = self.queue.pop_front() {
            match conn.send(message) {
                Ok(()) => live.sent += 1,
                Err(err) => {
                    self.queue.push_front(err.into_inner());
                    break;
                }
            }
        }
        live.sent - before
    }

    /// Ends the supervision at the user's request; it will not reconnect. While connecting it
    /// abandons the attempt ([`SupervisorAction::AbandonConnect`]) and while backing off it
    /// stops at once, with [`SupervisorEvent::Stopped`]. With a connection out, the driver
    /// closes that connection itself ([`Connection::close`], or [`Connection::abort`] before it
    /// is open), and its end, whatever it is, is reported as [`Disconnect::UserClosed`] followed
    /// by [`SupervisorEvent::Stopped`]. Queued messages stay queued: the terminal event counts
    /// them and [`take_unsent`](Supervisor::take_unsent) returns them. Does nothing once the
    /// user already closed, or the supervisor ended.
    pub fn close(&mut self, now: Instant) {
        self.tick(now);
        match &mut self.plan {
            Plan::Connecting { .. } => {
                self.actions.push_back(SupervisorAction::AbandonConnect);
                self.finish(None);
            }
            Plan::Waiting { .. } => self.finish(None),
            Plan::Live(live) => live.closing = true,
            Plan::Done => {}
        }
    }

    /// Takes every message still in the queue, oldest first. After the terminal event this is
    /// everything the supervisor accepted and did not see entirely written; before it, messages
    /// already in the live connection are not included.
    pub fn take_unsent(&mut self) -> Vec<Message> {
        self.queue.take_all()
    }

    // ----- accessors ----------------------------------------------------------------------

    /// Whether a connection handed out by [`transport_connected`](Supervisor::transport_connected)
    /// has not been reported ended yet.
    #[must_use]
    pub fn has_connection(&self) -> bool {
        matches!(self.plan, Plan::Live(_))
    }

    /// Whether the user called [`close`](Supervisor::close) (or the supervisor ended).
    #[must_use]
    pub fn is_closing(&self) -> bool {
        matches!(
            self.plan,
            Plan::Live(Live { closing: true, .. }) | Plan::Done
        )
    }

    /// Whether the supervisor emitted its terminal event.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.plan, Plan::Done)
    }

    /// Messages in the outbound queue (not counting those already in the live connection).
    #[must_use]
    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }

    /// Payload bytes in the outbound queue.
    #[must_use]
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// The number of the current or latest attempt since the supervisor started or a connection
    /// last opened (the `attempt` of the latest [`SupervisorAction::Connect`]).
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The reconnect policy and where it is in its schedule.
    #[must_use]
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// The supervisor's settings.
    #[must_use]
    pub fn settings(&self) -> &SessionConfig {
        &self.settings
    }

    /// The configuration every connection gets ([`Config::retain_unsent`] on).
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The opening request every attempt sends.
    #[must_use]
    pub fn request(&self) -> &ClientRequest {
        &self.request
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
        crate::trace::trace_event!(
            tracing::Level::DEBUG,
            attempt = self.attempt,
            "reconnect: connecting"
        );
        self.actions.push_back(SupervisorAction::Connect {
            attempt: self.attempt,
        });
        self.plan = Plan::Connecting {
            deadline: now.saturating_add(self.settings.connect_timeout),
        };
    }

    /// A connection attempt or a connection ended: asks the policy, reports, plans.
    fn on_end(
        &mut self,
        now: Instant,
        reason: Disconnect,
        closed: Option<Closed>,
        detail: String,
        requeued: usize,
    ) {
        let decision = self.policy.disconnected(now, reason, &mut *self.rng);
        let (retry_in, retry_at, terminal) = match decision {
            Decision::Retry { after, .. } => {
                crate::trace::trace_event!(
                    tracing::Level::INFO,
                    reason = %reason,
                    detail = detail.as_str(),
                    retry_in = ?after,
                    "reconnect: retrying"
                );
                let at = now.saturating_add(after);
                self.plan = Plan::Waiting { at };
                (Some(after), Some(at), None)
            }
            Decision::GiveUp { reason: why } => {
                crate::trace::trace_event!(
                    tracing::Level::WARN,
                    reason = %reason,
                    detail = detail.as_str(),
                    why = ?why,
                    "reconnect: giving up"
                );
                (None, None, Some(Some(why)))
            }
            Decision::Stop => {
                crate::trace::trace_event!(
                    tracing::Level::INFO,
                    reason = %reason,
                    "reconnect: stopped (closed by the application)"
                );
                (None, None, Some(None))
            }
        };
        self.events.push_back(SupervisorEvent::Disconnected {
            reason,
            closed,
            detail,
            requeued,
            retry_in,
            retry_at,
        });
        if let Some(gave_up) = terminal {
            self.finish(gave_up);
        }
    }

    /// Emits the terminal event: [`SupervisorEvent::GaveUp`] with a reason, else
    /// [`SupervisorEvent::Stopped`].
    fn finish(&mut self, gave_up: Option<GiveUpReason>) {
        self.policy.reset();
        let unsent = self.queue.len();
        self.events.push_back(match gave_up {
            Some(reason) => SupervisorEvent::GaveUp { reason, unsent },
            None => SupervisorEvent::Stopped { unsent },
        });
        self.plan = Plan::Done;
    }
}
