//! The connection: one state machine from the first handshake byte to the terminal event.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;
use rand_core::Rng;

use crate::close::{CloseCode, CloseFrame, MAX_REASON_LEN, truncate_reason};
use crate::config::Config;
use crate::deflate::Codec;
use crate::error::{CloseError, ProtocolError, SendError, SendErrorKind};
use crate::event::{CloseCause, Closed, Data, Event, Initiator, TransportAction};
use crate::frame::{MAX_CONTROL_PAYLOAD, OpCode};
use crate::handshake::{
    Accept, AcceptError, ClientHandshake, ClientRequest, HandshakeError, Reject, Request, Response,
    ServerHandshake, ServerPolicy,
};
use crate::linger::Linger;
use crate::message::{DataKind, Message};
use crate::prepared::PreparedMessage;
use crate::recv::{Incoming, Receiver};
use crate::resume::{LossReason, ResumeParams, Session, SessionEvent, SessionStore, SessionToken};
use crate::send::{Sender, Transmit};
use crate::stats::{Counters, Stats};
use crate::time::Instant;
use crate::timer::{Timer, TimerTable};
use crate::trace::trace_event;
use crate::utf8::Utf8Validator;

/// What a queued Ping or Pong event counts for in the inbound flow-control total, besides its
/// payload.
const EVENT_WEIGHT: usize = 64;

/// How long a half-closed transport waits for the peer's end of stream before it is closed
/// (bounded by [`Config::close_timeout`] too): long enough for a peer to read our last bytes,
/// short enough that a peer that neither reads nor closes does not hold the connection.
const SHUTDOWN_LINGER: Duration = Duration::from_secs(2);

/// How long the peer's Close (or violation) waits for the application's answer once it has
/// taken every message before it (bounded by [`Config::close_timeout`] too).
const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// Which end of the connection this is (RFC 6455 §5.1: clients mask, servers do not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The end that sent the opening request.
    Client,
    /// The end that answered it.
    Server,
}

/// Where a connection is in its life, as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// The opening handshake is in progress (or, for a server, waiting for `accept`).
    Connecting,
    /// Messages flow both ways.
    Open,
    /// We sent Close and wait for the peer's.
    Closing,
    /// The terminal event has been emitted.
    Closed,
}

#[derive(Debug)]
enum Phase {
    ClientHandshake(Box<ClientHandshake>),
    ServerHandshake(Box<ServerHandshake>),
    AwaitingAccept(Request),
    Open,
    Closing,
    Ended,
}

/// What the transport should do; [`Connection::poll_transport`] reads it as a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Open,
    /// Half-close once the output queue is empty, then wait for the peer's end of stream (or
    /// the linger timer) while discarding what arrives.
    ShutdownWhenDrained,
    /// Close once the output queue is empty (the peer's read side may still take it).
    CloseWhenDrained,
    /// Close now; unwritten output was dropped.
    Close,
}

/// Something from the peer that waits until the application has taken the data before it.
#[derive(Debug)]
enum Deferred {
    /// A protocol violation: we fail the connection with its code.
    Violation(ProtocolError),
    /// The peer's Close frame (its payload): we answer it.
    Close(Bytes),
}

/// Client role: messages sent before the opening handshake completed, and their bytes.
#[derive(Default)]
struct Early {
    messages: VecDeque<Message>,
    bytes: usize,
}

/// Sent messages whose frames are not entirely written yet, with the output offset at which
/// each frame ends (`Config::retain_unsent`). Boxed in the connection: most connections have
/// none.
#[derive(Default)]
struct Flights(VecDeque<(u64, Message)>);

/// A data message being sent in fragments.
#[derive(Debug)]
struct OutMessage {
    kind: DataKind,
    utf8: Utf8Validator,
    /// Its fragments are compressed (permessage-deflate).
    compressed: bool,
}

/// RSV1, which marks a compressed message's first frame (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// Heartbeat bookkeeping: the outstanding Ping and round-trip estimates, in 32 bytes (every
/// connection carries it; with `Option`s it took 56): sentinels stand for "none".
#[derive(Debug)]
struct Heartbeat {
    /// The outstanding Ping's payload, valid while `sent_at` is not `Instant::MAX`.
    payload: [u8; 8],
    sent_at: Instant,
    /// Round-trip times in nanoseconds, `u64::MAX` before the first sample.
    latest_rtt: u64,
    smoothed_rtt: u64,
}

/// No round-trip sample yet.
const NO_RTT: u64 = u64::MAX;

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            payload: [0; 8],
            sent_at: Instant::MAX,
            latest_rtt: NO_RTT,
            smoothed_rtt: NO_RTT,
        }
    }
}

impl Heartbeat {
    fn outstanding(&self) -> Option<([u8; 8], Instant)> {
        (self.sent_at != Instant::MAX).then_some((self.payload, self.sent_at))
    }

    /// A Ping with `payload` went out at `now` (a Ping sent at the very end of time counts
    /// as sent a nanosecond before it, `Instant::MAX` meaning none).
    fn sent(&mut self, payload: [u8; 8], now: Instant) {
        self.payload = payload;
        self.sent_at = now.short_of_max();
    }

    /// The outstanding Ping was answered after `sample`.
    fn answered(&mut self, sample: Duration) {
        let nanos = u64::try_from(sample.as_nanos()).map_or(NO_RTT - 1, |n| n.min(NO_RTT - 1));
        self.smoothed_rtt = if self.smoothed_rtt == NO_RTT {
            nanos
        } else {
            // RFC 6298's 7/8 + 1/8 average, without overflow.
            ((u128::from(self.smoothed_rtt) * 7 + u128::from(nanos)) / 8) as u64
        };
        self.latest_rtt = nanos;
        self.sent_at = Instant::MAX;
    }

    fn rtt(nanos: u64) -> Option<Duration> {
        (nanos != NO_RTT).then(|| Duration::from_nanos(nanos))
    }
}

/// A WebSocket connection as a sans-IO state machine.
///
/// See the [crate documentation](crate) for the driving loop. Inputs (`handle_*`) take the
/// current time; commands (`send`, `ping`, `close`, `accept`, ...) return a typed error on local
/// misuse and then change nothing; outputs (`poll_*`, `pending_output`) say what to do next.
pub struct Connection {
    role: Role,
    /// Shared: connections made with one configuration need not each carry a copy.
    config: Arc<Config>,
    phase: Phase,
    recv: Receiver,
    send: Sender,
    /// Lifecycle events waiting for `poll_event`, and the flow-control weight of the Ping and
    /// Pong events among them.
    events: VecDeque<Event>,
    event_bytes: usize,
    /// Received data waiting for `read`, and its payload bytes.
    inbox: VecDeque<Data>,
    unread_bytes: usize,
    /// The last `read` handed out data: the application may still be answering it, until it
    /// calls `read` again.
    answering: bool,
    /// The application will not read again: data is dropped on arrival.
    discard_data: bool,
    /// Something from the peer found behind data the application has not taken yet.
    /// Boxed: rare, and an open connection should not carry the room for it.
    deferred: Option<Box<Deferred>>,
    /// Flow control: reading paused by unread inbound data; sends refused while unwritten
    /// output is over the high watermark (until it is under the low one).
    in_paused: bool,
    out_paused: bool,
    /// Bytes of replies the core queued on its own (Pongs, the Close echo) since unwritten
    /// output was last under the low watermark: what a peer that never reads makes us hold.
    replies_since_low: usize,
    /// Ping and Pong events not queued because the queue already weighed the high watermark.
    dropped_events: u64,
    timers: TimerTable,
    transport: Transport,
    rng: Box<dyn Rng + Send>,
    policy: Option<Box<ServerPolicy>>,
    subprotocol: Option<Box<str>>,
    response: Option<Box<Response>>,
    out_msg: Option<OutMessage>,
    heartbeat: Heartbeat,
    close_sent: bool,
    /// Client role: messages sent before the opening handshake completed.
    early: Option<Box<Early>>,
    /// With `Config::retain_unsent`: sent messages whose frames are not entirely written yet,
    /// with the output offset at which each frame ends (`None` when there are none).
    flights: Option<Box<Flights>>,
    /// Output bytes queued and reported written since the connection started.
    queued_total: u64,
    written_total: u64,
    /// Messages, bytes, Pings and Pongs each way ([`Connection::stats`]).
    counters: Counters,
    /// The terminal record, once the connection ended.
    /// Boxed: an open connection does not carry the room for it.
    closed: Option<Box<Closed>>,
    /// When the connection opened; `Instant::MAX` while it has not (an opening at that very
    /// instant is recorded a nanosecond before it).
    opened_at: Instant,
    /// Keeping the input buffer while input keeps emptying it (see `settle_input_buffer`).
    input_linger: Linger,
    /// Keeping the output buffer while it keeps being written out (see
    /// `settle_output_buffer`).
    output_linger: Linger,
    /// The latest `now` seen: a clock that steps back is read as "no time passed".
    now: Instant,
    /// permessage-deflate, once negotiated (RFC 7692); `None` costs nothing.
    deflate: Option<Box<Codec>>,
    /// `tether-resume`: the session this connection carries (offered, or negotiated once
    /// `active`); `None` costs nothing.
    resume: Option<Box<Resume>>,
}

/// The session a connection carries, and where the negotiation stands.
#[derive(Debug)]
struct Resume {
    session: Session,
    /// Negotiated: messages are numbered, acknowledged and kept.
    active: bool,
    /// What to report (and replay) when the connection opens.
    outcome: Option<SessionEvent>,
    /// This connection resumed the session.
    resumed: bool,
}

/// The spare input buffer to read transport bytes into, from [`Connection::recv_buf`]: a
/// token that borrows the connection, so the read and its [`commit`](RecvBuf::commit) always
/// pair up.
///
/// The buffer is initialised memory that is reused from read to read; only new growth is
/// zeroed. A connection that has been quiet offers a small buffer first (1 KiB), so a read
/// that finds nothing leaves little behind.
#[must_use = "read into it, then commit how many bytes were read"]
pub struct RecvBuf<'a> {
    conn: &'a mut Connection,
}

impl RecvBuf<'_> {
    /// The driver read `n` bytes into this buffer (`n` is clamped to its length). A read of 0
    /// bytes is not end of stream: call [`Connection::handle_eof`] for that.
    pub fn commit(self, now: Instant, n: usize) {
        let n = self.conn.recv.commit(n, &self.conn.config);
        self.conn.counters.wire_bytes_received += n as u64;
        if n > 0 {
            self.conn.on_input(now);
        }
    }
}

impl Drop for RecvBuf<'_> {
    fn drop(&mut self) {
        // A read that found nothing (or input that left the buffer empty) on a quiet
        // connection: the buffer goes back now instead of waiting, allocated, for the next
        // input (which may be minutes away).
        if self.conn.quiet() {
            self.conn.recv.drop_if_empty();
        }
    }
}

impl core::ops::Deref for RecvBuf<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.conn.recv.spare()
    }
}

impl core::ops::DerefMut for RecvBuf<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.conn.recv.spare_mut()
    }
}

impl core::fmt::Debug for RecvBuf<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecvBuf")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("transport", &self.transport)
            .field("unwritten", &self.send.len())
            .field("pending_events", &self.events.len())
            .field("unread_data", &self.inbox.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(
        role: Role,
        config: Arc<Config>,
        phase: Phase,
        rng: Box<dyn Rng + Send>,
        now: Instant,
    ) -> Self {
        trace_event!(tracing::Level::DEBUG, role = ?role, "connecting");
        Connection {
            role,
            recv: Receiver::new(role, &config),
            config,
            phase,
            send: Sender::default(),
            events: VecDeque::new(),
            event_bytes: 0,
            inbox: VecDeque::new(),
            unread_bytes: 0,
            answering: false,
            discard_data: false,
            deferred: None,
            in_paused: false,
            out_paused: false,
            replies_since_low: 0,
            dropped_events: 0,
            timers: TimerTable::default(),
            transport: Transport::Open,
            rng,
            policy: None,
            subprotocol: None,
            response: None,
            out_msg: None,
            heartbeat: Heartbeat::default(),
            close_sent: false,
            early: None,
            flights: None,
            queued_total: 0,
            written_total: 0,
            counters: Counters::default(),
            closed: None,
            opened_at: Instant::MAX,
            input_linger: Linger::default(),
            output_linger: Linger::default(),
            now,
            deflate: None,
            resume: None,
        }
    }

    /// A connection that is already open, after an upgrade done elsewhere (hyper, axum, an
    /// HTTP/2 extended CONNECT). Its first event is [`Event::Connected`] with no subprotocol
    /// (the caller knows which one the upgrade agreed on).
    ///
    /// `config` is a [`Config`] or an `Arc<Config>`: connections that share one configuration
    /// can share one allocation of it.
    pub fn open<R: Rng + Send + 'static>(
        role: Role,
        config: impl Into<Arc<Config>>,
        rng: R,
        now: Instant,
    ) -> Self {
        let mut conn = Connection::new(role, config.into(), Phase::Open, Box::new(rng), now);
        conn.become_open(now);
        conn
    }

    /// A connection that is already open, like [`open`](Connection::open), with what the
    /// upgrade done elsewhere agreed on: the subprotocol (reported by [`Event::Connected`]
    /// and [`subprotocol`](Connection::subprotocol)) and the extensions of the response, of
    /// which permessage-deflate is set up (RFC 7692) when [`Config::deflate`] is set. Other
    /// extensions are not the core's and are ignored.
    ///
    /// Fails, with the reason, when the permessage-deflate element cannot be acted on
    /// (RFC 7692 §5.1): the upgrade must not be completed on such terms.
    pub fn open_negotiated<R: Rng + Send + 'static>(
        role: Role,
        negotiated: &crate::handshake::Negotiated,
        config: impl Into<Arc<Config>>,
        rng: R,
        now: Instant,
    ) -> Result<Self, HandshakeError> {
        let config = config.into();
        let deflate = if config.deflate.is_some() {
            crate::deflate::agreed_codec(role, &config, &negotiated.extensions)
                .map_err(HandshakeError::Deflate)?
        } else {
            None
        };
        let mut conn = Connection::new(role, config, Phase::Open, Box::new(rng), now);
        if deflate.is_some() {
            conn.recv.allow_compression();
            conn.deflate = deflate;
        }
        conn.subprotocol = negotiated.subprotocol.as_deref().map(Box::from);
        conn.become_open(now);
        Ok(conn)
    }

    /// A client that starts by writing `request`'s opening handshake. The `Sec-WebSocket-Key`
    /// nonce and every masking key come from `rng`. `config` is a [`Config`] or an
    /// `Arc<Config>` (see [`open`](Connection::open)).
    pub fn client<R: Rng + Send + 'static>(
        request: ClientRequest,
        config: impl Into<Arc<Config>>,
        rng: R,
        now: Instant,
    ) -> Self {
        Connection::client_resuming(request, config, rng, now, None)
    }

    /// A client that carries a session: with [`Config::resume`] set, it offers `tether-resume`
    /// and, given the `session` a previous connection's
    /// [`take_session`](Connection::take_session) returned, asks to resume it. Without
    /// [`Config::resume`] this is [`client`](Connection::client) (the session is dropped).
    /// See [`crate::resume`].
    pub fn client_resuming<R: Rng + Send + 'static>(
        request: ClientRequest,
        config: impl Into<Arc<Config>>,
        mut rng: R,
        now: Instant,
        session: Option<Session>,
    ) -> Self {
        let config = config.into();
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let resume = config.resume.map(|rc| {
            let session = session.unwrap_or_else(|| Session::new(rc));
            let offer = ResumeParams {
                session: session.token(),
                received: session.token().map(|_| session.received()),
            };
            (offer.to_element(), session)
        });
        let mut request = crate::deflate::offers(&config)
            .into_iter()
            .fold(request, ClientRequest::with_offer);
        if let Some((offer, _)) = &resume {
            request = request.with_offer(offer.clone());
        }
        let handshake = ClientHandshake::new(request, nonce, &config.handshake_limits);
        let mut conn = Connection::new(
            Role::Client,
            config,
            Phase::ClientHandshake(Box::new(handshake)),
            Box::new(rng),
            now,
        );
        conn.resume = resume.map(|(_, session)| {
            Box::new(Resume {
                session,
                active: false,
                outcome: None,
                resumed: false,
            })
        });
        let mut head = bytes::BytesMut::new();
        if let Phase::ClientHandshake(hs) = &conn.phase {
            hs.write_request(&mut head);
        }
        conn.queue_raw(&head);
        let deadline = now + conn.config.handshake_timeout;
        conn.timers.set(Timer::Handshake, deadline);
        conn
    }

    /// A server that waits for an opening request. Requests that fail `policy` (Origin
    /// allowlist, authentication hook) are rejected by the core; the others are surfaced as
    /// [`Event::Request`] for [`accept`](Connection::accept) or [`reject`](Connection::reject)
    /// (with [`ServerPolicy::pass_http_requests`], plain HTTP requests too, for `reject`
    /// alone: any status, a health check's 200 included).
    ///
    /// `config` is a [`Config`] or an `Arc<Config>` (see [`open`](Connection::open)).
    pub fn server<R: Rng + Send + 'static>(
        config: impl Into<Arc<Config>>,
        policy: ServerPolicy,
        rng: R,
        now: Instant,
    ) -> Self {
        let config = config.into();
        let mut handshake = ServerHandshake::new(&config.handshake_limits);
        handshake.pass_http_requests(policy.passes_http_requests());
        let mut conn = Connection::new(
            Role::Server,
            config,
            Phase::ServerHandshake(Box::new(handshake)),
            Box::new(rng),
            now,
        );
        conn.policy = Some(Box::new(policy));
        let deadline = now + conn.config.handshake_timeout;
        conn.timers.set(Timer::Handshake, deadline);
        conn
    }

    // ----- inputs -------------------------------------------------------------------------

    /// The buffer to read transport bytes into, as a token: read into it, then
    /// [`commit`](RecvBuf::commit) how many bytes arrived. Reading straight into the core's
    /// buffer saves a copy, and the buffer is reused while the connection is busy. Dropping
    /// the token without a commit means nothing was read; on a quiet connection the empty
    /// buffer is then given back.
    pub fn recv_buf(&mut self) -> RecvBuf<'_> {
        let quiet = self.quiet();
        self.recv.prepare(quiet, &self.config);
        RecvBuf { conn: self }
    }

    /// Received bytes from a buffer of the driver's own (one copy into the core).
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        if !data.is_empty() {
            self.counters.wire_bytes_received += data.len() as u64;
            self.recv.push(data);
            self.on_input(now);
        }
    }

    /// The transport's read side ended (or the transport failed). Without a completed close
    /// handshake this ends the connection with 1006.
    pub fn handle_eof(&mut self, now: Instant) {
        self.tick(now);
        // What arrived before the end is inflated and handed on first.
        while self.inflating() && matches!(self.phase, Phase::Open | Phase::Closing) {
            self.continue_inflation(now, true);
        }
        if self.deferred.is_some() {
            // The peer's Close (or violation) arrived before its end of stream: act on it now,
            // and close once what we answer is written.
            self.release_deferred();
            if self.send.is_empty() {
                self.close_transport();
            } else if self.transport != Transport::Close {
                self.transport = Transport::CloseWhenDrained;
                self.timers
                    .set(Timer::Linger, self.now + self.config.close_timeout);
            }
            return;
        }
        let (initiator, reason, cause) = match &mut self.phase {
            Phase::Ended => {
                self.close_transport();
                return;
            }
            Phase::ClientHandshake(hs) => {
                let err = self.recv.with_input(|input| hs.handle_eof(input));
                (
                    Initiator::Remote,
                    err.to_string(),
                    CloseCause::HandshakeFailed(err),
                )
            }
            Phase::ServerHandshake(_) | Phase::AwaitingAccept(_) => (
                Initiator::Remote,
                "transport closed during the opening handshake".to_string(),
                CloseCause::TransportLost,
            ),
            Phase::Open => (
                Initiator::Remote,
                "transport closed without a close frame".to_string(),
                CloseCause::TransportLost,
            ),
            Phase::Closing => (
                Initiator::Local,
                "transport closed before the peer's close frame".to_string(),
                CloseCause::TransportLost,
            ),
        };
        self.end(
            Closed {
                code: CloseCode::ABNORMAL,
                reason,
                initiator,
                clean: false,
                cause,
            },
            Transport::Close,
        );
    }

    /// Time passed: fire every timer due at `now`. Harmless when called early, late or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        // One inflation step per call at most: a step re-arms its timer at `now`, and the
        // driver's turn in between is the point of stepping.
        let step = self.timers.get(Timer::Inflate).is_some_and(|t| t <= now);
        while let Some(timer) = self.timers.take_expired(now, Timer::Inflate) {
            self.on_timer(now, timer);
        }
        if step && self.timers.get(Timer::Inflate).is_some_and(|t| t <= now) {
            self.timers.stop(Timer::Inflate);
            self.on_timer(now, Timer::Inflate);
        }
    }

    /// The driver wrote `n` bytes of the [`poll_transmit`](Connection::poll_transmit) output to
    /// the transport (`n` is clamped to what was waiting).
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.send.len());
        self.send.consume(n);
        if n > 0 && self.send.is_empty() {
            self.settle_output_buffer();
        }
        self.written_total += n as u64;
        if let Some(Flights(flights)) = self.flights.as_deref_mut() {
            while flights
                .front()
                .is_some_and(|(end, _)| *end <= self.written_total)
            {
                flights.pop_front();
            }
            if flights.is_empty() && self.quiet() {
                self.flights = None;
            }
        }
        if self.send.is_empty() {
            match self.transport {
                // Nothing more will be written: the transport only waits for the peer's end.
                Transport::ShutdownWhenDrained => {
                    self.send.discard();
                    // The half-close goes out now: wait only briefly for the peer's end.
                    let by = self.now + SHUTDOWN_LINGER;
                    if self.timers.get(Timer::Linger).is_some_and(|t| t > by) {
                        self.timers.set(Timer::Linger, by);
                    }
                }
                Transport::CloseWhenDrained => self.close_transport(),
                _ => {}
            }
        }
        self.update_outbound();
    }

    // ----- outputs: pure, they never change the protocol state ----------------------------

    /// The bytes to write to the transport, if any; report what was written with
    /// [`advance`](Connection::advance). Partial and vectored writes are fine.
    #[must_use]
    pub fn poll_transmit(&self) -> Option<Transmit<'_>> {
        Transmit::new(&self.send)
    }

    /// The next lifecycle event, if any: a request to accept, the completed handshake, Pings
    /// and Pongs, the terminal [`Event::Closed`]. Received data is not an event: the
    /// application takes it with [`read`](Connection::read). Polling changes nothing else, so a
    /// driver may drain events as eagerly as it likes.
    #[must_use]
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        // Usually there is none: asked for before every message a receiver takes.
        if self.events.is_empty() {
            return None;
        }
        self.pop_event()
    }

    fn pop_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        self.event_bytes -= event_weight(&event);
        if self.events.is_empty() {
            // Events are rare (the handshake, Pings, Pongs, the end): an idle connection
            // keeps no queue memory.
            self.events = VecDeque::new();
        }
        Some(event)
    }

    /// What the driver should do with the transport now (a level: the same answer until the
    /// connection moves on). Ask after writing the output.
    #[must_use]
    pub fn poll_transport(&self) -> Option<TransportAction> {
        match self.transport {
            Transport::Open => None,
            Transport::ShutdownWhenDrained if self.send.is_empty() => {
                Some(TransportAction::Shutdown)
            }
            Transport::ShutdownWhenDrained => None,
            Transport::CloseWhenDrained if self.send.is_empty() => Some(TransportAction::Close),
            Transport::CloseWhenDrained => None,
            Transport::Close => Some(TransportAction::Close),
        }
    }

    /// The earliest instant at which [`handle_timeout`](Connection::handle_timeout) has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the driver should read from the transport now. False once the transport is to
    /// be closed, while a server waits for `accept`, while something from the peer waits
    /// behind data the application has not taken, and (flow control, see
    /// [`Config::high_watermark`]) while unread inbound data is over the high watermark, or
    /// unwritten output is, mostly made of Pongs the peer's Pings asked for, until it is under
    /// the low one. Output the application sends does not stop reading (sends are refused
    /// over the mark instead): two peers that each stopped reading while holding a large
    /// message to write would wait for each other for ever. Once the connection has ended,
    /// reading only looks for the peer's end of stream, and is never paused.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        if self.transport == Transport::Close || matches!(self.phase, Phase::AwaitingAccept(_)) {
            return false;
        }
        if matches!(self.phase, Phase::Ended) {
            return true;
        }
        !self.in_paused && !self.replies_pause() && self.deferred.is_none() && !self.inflating()
    }

    // ----- received data ------------------------------------------------------------------

    /// Takes the next piece of received data: the explicit step by which the application
    /// reads. Call it when the application asks for its next message, not ahead of it.
    ///
    /// A call that finds nothing tells the core the application is done with what it took
    /// before. That matters when the peer broke the protocol, or sent its Close, right behind
    /// data the application had not taken yet (or had just taken): the core waits for this
    /// moment before it fails the connection or answers the Close, so the application's
    /// replies go out first, as a peer reading frame by frame would see them. The wait is
    /// bounded by [`Config::close_timeout`] while data is unread, and by one second (at most
    /// the close timeout) once the application has taken everything and is only answering.
    /// Data received before the end stays readable after [`Event::Closed`].
    ///
    /// While data is waiting ([`has_unread_data`](Connection::has_unread_data)) and
    /// [`wants_read`](Connection::wants_read) is true, taking it changes nothing else a driver
    /// acts on (`wants_read`, the output, [`poll_transport`](Connection::poll_transport),
    /// [`poll_timeout`](Connection::poll_timeout)): a driver need not look again.
    #[inline]
    pub fn read(&mut self) -> Option<Data> {
        if self.inbox.is_empty() && self.inflating() {
            // Everything inflated so far is taken: the next step, at once.
            self.continue_inflation(self.now, false);
        }
        if let Some(data) = self.inbox.pop_front() {
            if self.inbox.is_empty() && self.quiet() {
                // A quiet connection keeps no queue memory (a busy one reuses it).
                self.inbox = VecDeque::new();
            }
            self.unread_bytes -= data.len();
            self.answering = true;
            self.update_inbound();
            if self.inbox.is_empty() && self.deferred.is_some() {
                // Everything before it is taken: only the answer is awaited now.
                let by = self.now + self.answer_grace();
                if self.timers.get(Timer::Deferred).is_none_or(|t| t > by) {
                    self.timers.set(Timer::Deferred, by);
                }
            }
            return Some(data);
        }
        self.answering = false;
        self.release_deferred();
        None
    }

    /// Whether received data is waiting for [`read`](Connection::read).
    #[must_use]
    pub fn has_unread_data(&self) -> bool {
        !self.inbox.is_empty()
    }

    /// The application will not read again (its reader was dropped): unread data is dropped,
    /// data that still arrives is dropped too, and nothing waits for a reader any more.
    pub fn discard_incoming(&mut self) {
        self.discard_data = true;
        self.inbox.clear();
        self.unread_bytes = 0;
        self.answering = false;
        self.release_deferred();
        self.update_inbound();
    }

    // ----- commands -----------------------------------------------------------------------

    /// Sends a complete message. In the server role a large payload is queued without a copy.
    ///
    /// In the client role a message sent before the opening handshake completes is held and
    /// written right after it, before anything else.
    pub fn send(&mut self, message: Message) -> Result<(), SendError<Message>> {
        if let Err(kind) = self.check_data(message.len()) {
            return Err(SendError {
                kind,
                data: message,
            });
        }
        if matches!(self.phase, Phase::ClientHandshake(_)) {
            let early = self.early.get_or_insert_default();
            early.bytes += message.len();
            early.messages.push_back(message);
            self.update_outbound();
            return Ok(());
        }
        self.write_message(&message);
        Ok(())
    }

    /// Sends a text message, copying `text` (see [`send`](Connection::send)).
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError<Message>> {
        if let Err(kind) = self.check_data(text.len()) {
            return Err(SendError {
                kind,
                data: Message::text(text),
            });
        }
        if matches!(self.phase, Phase::ClientHandshake(_))
            || self.config.retain_unsent
            || self.session_active()
        {
            // Held or remembered: it needs a shared copy anyway.
            return self.send(Message::text(text));
        }
        self.queue_message(OpCode::Text, text.as_bytes(), None);
        Ok(())
    }

    /// Sends a message framed once for many connections (a broadcast, see
    /// [`PreparedMessage`]): in the server role its frame is queued as it is, by reference when
    /// large, never encoded or compressed again (with permessage-deflate it goes out
    /// uncompressed, which RFC 7692 §6.1 allows per message). In the client role, and with
    /// [`Config::retain_unsent`], it is sent as its [`Message`] (see
    /// [`send`](Connection::send)). The same refusals as `send`; the message comes back in the
    /// error.
    pub fn send_prepared(
        &mut self,
        prepared: &PreparedMessage,
    ) -> Result<(), SendError<PreparedMessage>> {
        let refuse = |kind| {
            Err(SendError {
                kind,
                data: prepared.clone(),
            })
        };
        // A session (tether-resume) remembers what was sent, for replay: that is `send`'s path.
        if self.role == Role::Client || self.config.retain_unsent || self.session_active() {
            return match self.send(prepared.message().clone()) {
                Ok(()) => Ok(()),
                Err(e) => refuse(e.kind),
            };
        }
        if let Err(kind) = self.check_data(prepared.len()) {
            return refuse(kind);
        }
        let frame = prepared.frame();
        self.counters.sent(prepared.len(), true);
        self.send.write_frame_bytes(frame);
        self.queued_total += frame.len() as u64;
        self.update_outbound();
        Ok(())
    }

    /// Sends a binary message (see [`send`](Connection::send)).
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), SendError<Message>> {
        self.send(Message::Binary(data.into()))
    }

    /// Sends one fragment of a message (RFC 6455 §5.4): the first call starts a message of
    /// `kind`, later calls continue it with the same `kind`, and `fin` ends it. Text fragments
    /// may split a character; the bytes must stay a valid UTF-8 prefix, and be complete at
    /// `fin`. Control frames may be sent between fragments; other messages may not.
    pub fn send_fragment(
        &mut self,
        kind: DataKind,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> Result<(), SendError<Bytes>> {
        let data = data.into();
        if let Err(kind) = self.check_state() {
            return Err(SendError { kind, data });
        }
        if let Err(kind) = self.check_room(data.len()).and_then(|()| {
            if self.out_msg.is_none() {
                self.check_session_room(data.len())
            } else {
                Ok(())
            }
        }) {
            return Err(SendError { kind, data });
        }
        let (opcode, mut utf8, compressed) = match &self.out_msg {
            Some(m) if m.kind != kind => {
                return Err(SendError {
                    kind: SendErrorKind::KindMismatch,
                    data,
                });
            }
            Some(m) => (OpCode::Continuation, m.utf8.clone(), m.compressed),
            None => (
                match kind {
                    DataKind::Text => OpCode::Text,
                    DataKind::Binary => OpCode::Binary,
                },
                Utf8Validator::new(),
                // The first fragment's size decides for the whole message.
                self.deflate
                    .as_deref()
                    .is_some_and(|d| d.should_compress(data.len())),
            ),
        };
        if kind == DataKind::Text {
            let valid = utf8.feed(&data).is_ok() && (!fin || utf8.finish().is_ok());
            if !valid {
                return Err(SendError {
                    kind: SendErrorKind::InvalidUtf8,
                    data,
                });
            }
        }
        match self.deflate.as_deref_mut() {
            // RFC 7692 §6.1: RSV1 on the first frame only.
            Some(d) if compressed => {
                let payload = Bytes::from(d.compress_fragment(&data, fin));
                let rsv = if opcode == OpCode::Continuation {
                    0
                } else {
                    RSV1
                };
                self.queue_frame_rsv(opcode, fin, rsv, &payload, Some(&payload));
            }
            _ => self.queue_frame(opcode, fin, &data, Some(&data)),
        }
        self.counters.sent(data.len(), fin);
        if let Some(r) = self.resume.as_deref_mut().filter(|r| r.active) {
            r.session.record_fragment(kind, &data, fin);
        }
        self.out_msg = (!fin).then_some(OutMessage {
            kind,
            utf8,
            compressed,
        });
        Ok(())
    }

    /// Sends a Ping with up to 125 bytes of payload. The peer's Pong arrives as [`Event::Pong`].
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        self.send_control(OpCode::Ping, payload.into())
    }

    /// Sends an unsolicited Pong (a one-way heartbeat, RFC 6455 §5.5.3).
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        self.send_control(OpCode::Pong, payload.into())
    }

    /// Starts the close handshake (RFC 6455 §7.1.2): sends Close with `code` and `reason`, then
    /// waits up to [`Config::close_timeout`] for the peer's Close. Messages that arrive in the
    /// meantime are still delivered. Before the connection is open there is no close handshake:
    /// this is refused with [`CloseError::NotOpen`] ([`abort`](Connection::abort) gives up).
    /// A Close the peer sent that waits behind unread data is answered by this one.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), CloseError> {
        if !code.is_sendable() {
            return Err(CloseError::InvalidCode(code.0));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(CloseError::ReasonTooLong(reason.len()));
        }
        match self.phase {
            Phase::Open => {}
            Phase::Closing => return Err(CloseError::AlreadyClosing),
            Phase::Ended => return Err(CloseError::Closed),
            Phase::ClientHandshake(_) | Phase::ServerHandshake(_) | Phase::AwaitingAccept(_) => {
                return Err(CloseError::NotOpen);
            }
        }
        // Only now: a refused command leaves everything, the clock included, as it was.
        let now = self.tick(now);
        trace_event!(
            tracing::Level::DEBUG,
            code = code.0,
            reason,
            initiator = "local",
            "closing"
        );
        self.write_close(Some(&CloseFrame {
            code,
            reason: String::from(reason),
        }));
        self.phase = Phase::Closing;
        self.timers.stop(Timer::Ping);
        self.timers.stop(Timer::Pong);
        self.timers.stop(Timer::Idle);
        self.timers
            .set(Timer::Close, now + self.config.close_timeout);
        self.update_outbound();
        // The application is done: a peer's Close that waited for it now completes the
        // handshake (and a waiting violation fails the connection).
        self.answering = false;
        self.release_deferred();
        Ok(())
    }

    /// Ends the connection at once without a close handshake: the terminal event reports 1006
    /// and the driver is told to close the transport. Does nothing once the connection ended.
    pub fn abort(&mut self) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        self.end(
            Closed {
                code: CloseCode::ABNORMAL,
                reason: "aborted locally".to_string(),
                initiator: Initiator::Local,
                clean: false,
                cause: CloseCause::Aborted,
            },
            Transport::Close,
        );
    }

    /// Server role: accepts the request surfaced by [`Event::Request`], writing the 101
    /// response. Frames the client pipelined after its request are processed now.
    ///
    /// With [`Config::deflate`] the core answers the client's permessage-deflate offers itself
    /// (the first acceptable one), unless `accept` already lists permessage-deflate.
    pub fn accept(&mut self, now: Instant, mut accept: Accept) -> Result<(), AcceptError> {
        let Phase::AwaitingAccept(request) = &self.phase else {
            return Err(AcceptError::NotAwaiting);
        };
        if let Some(refusal) = request.refusal() {
            return Err(AcceptError::NotWebSocket(refusal.effective_status()));
        }
        let deflate = crate::deflate::server_codec(&self.config, request, &mut accept);
        // Room for the usual 101 (about 130 bytes): written without growing.
        let mut head = bytes::BytesMut::with_capacity(256);
        crate::handshake::write_accept(request, &accept, &mut head)?;
        if deflate.is_some() {
            self.recv.allow_compression();
            self.deflate = deflate;
        }
        let now = self.tick(now);
        self.queue_raw(&head);
        self.subprotocol = accept.subprotocol.map(String::into_boxed_str);
        self.become_open(now);
        self.on_input(now);
        Ok(())
    }

    /// Server role: accepts the request like [`accept`](Connection::accept), taking
    /// `tether-resume` when [`Config::resume`] is set and the client offered it (see
    /// [`crate::resume`]). `principal` is what the authentication hook accepted for this
    /// request (a user id; empty when there is none): a session is resumed only for the
    /// principal that started it, from `store`. A new single-use token comes from the
    /// connection's generator. A resumed session's unacknowledged messages are sent again
    /// right after the 101, before anything new.
    pub fn accept_session(
        &mut self,
        now: Instant,
        mut accept: Accept,
        store: &mut dyn SessionStore,
        principal: &str,
    ) -> Result<(), AcceptError> {
        let Phase::AwaitingAccept(request) = &self.phase else {
            return Err(AcceptError::NotAwaiting);
        };
        let Some(config) = self.config.resume else {
            return self.accept(now, accept);
        };
        // An offer we cannot read is declined: the connection goes on without the extension.
        let Some(Ok(offer)) = request
            .extensions()
            .iter()
            .find_map(|e| ResumeParams::parse(e))
        else {
            return self.accept(now, accept);
        };
        let old = offer.session;
        let found = match (offer.session, offer.received) {
            (Some(token), Some(count)) => store
                .take(&token, principal, now)
                .map(|session| (session, count)),
            _ => None,
        };
        let (mut session, outcome) = match found {
            Some((mut session, count)) if session.can_resume_from(count) => {
                session.acknowledge(count);
                let replayed = session.unacked_messages();
                (session, SessionEvent::Resumed { replayed })
            }
            Some((mut session, _)) => {
                let unconfirmed = session.take_unacked();
                let lost = SessionEvent::Lost {
                    reason: LossReason::Mismatch,
                    unconfirmed,
                };
                (Session::new(config), lost)
            }
            None if old.is_some() => (
                Session::new(config),
                SessionEvent::Lost {
                    reason: LossReason::Unknown,
                    unconfirmed: Vec::new(),
                },
            ),
            None => (Session::new(config), SessionEvent::Started),
        };
        let resumed = matches!(outcome, SessionEvent::Resumed { .. });
        let token = SessionToken::generate(&mut *self.rng);
        session.set_token(token);
        session.set_previous_token(old.filter(|_| resumed));
        session.set_principal(principal);
        let answer = ResumeParams {
            session: Some(token),
            received: resumed.then(|| session.received()),
        };
        session.told();
        accept.extensions.push(answer.to_element());
        self.resume = Some(Box::new(Resume {
            session,
            active: true,
            outcome: Some(outcome),
            resumed,
        }));
        self.recv.allow_acks();
        let result = self.accept(now, accept);
        if result.is_err() {
            // Nothing was written: the session goes back where it was, under its old token.
            let r = self.resume.take();
            if let (true, Some(r), Some(old)) = (resumed, r, old) {
                let mut session = r.session;
                session.set_token(old);
                store.park(session, now);
            }
        }
        result
    }

    /// Server role: refuses the request surfaced by [`Event::Request`] with `reject`'s status,
    /// headers and body. The connection ends after the response is written.
    pub fn reject(&mut self, reject: Reject) -> Result<(), AcceptError> {
        if !matches!(
            self.phase,
            Phase::AwaitingAccept(_) | Phase::ServerHandshake(_)
        ) {
            return Err(AcceptError::NotAwaiting);
        }
        self.reject_request(&reject);
        Ok(())
    }

    // ----- accessors ----------------------------------------------------------------------

    /// This end's role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the connection is in its life.
    #[must_use]
    pub fn state(&self) -> State {
        match self.phase {
            Phase::ClientHandshake(_) | Phase::ServerHandshake(_) | Phase::AwaitingAccept(_) => {
                State::Connecting
            }
            Phase::Open => State::Open,
            Phase::Closing => State::Closing,
            Phase::Ended => State::Closed,
        }
    }

    /// Whether messages can be sent.
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// The negotiated subprotocol.
    #[must_use]
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Client role: the server's 101 response, once the handshake completed.
    #[must_use]
    pub fn response(&self) -> Option<&Response> {
        self.response.as_deref()
    }

    /// The round-trip time measured by the latest heartbeat Ping.
    #[must_use]
    pub fn rtt(&self) -> Option<Duration> {
        Heartbeat::rtt(self.heartbeat.latest_rtt)
    }

    /// A smoothed round-trip time (RFC 6298's 7/8 + 1/8 average over heartbeat samples).
    #[must_use]
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        Heartbeat::rtt(self.heartbeat.smoothed_rtt)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes of buffer memory the connection holds now (input, assembly and output buffers).
    #[must_use]
    pub fn buffer_memory(&self) -> usize {
        self.recv.capacity() + self.send.capacity()
    }

    /// Whether a send would not be refused for lack of room: unwritten output is not over
    /// [`Config::high_watermark`] (or, after it was, has come back under the low one).
    #[must_use]
    pub fn is_writable(&self) -> bool {
        !self.out_paused && self.check_session_room(0).is_ok()
    }

    /// How the connection ended, once it has: the record the terminal [`Event::Closed`]
    /// carries.
    #[must_use]
    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_deref()
    }

    /// When the connection opened: its opening handshake completed, or it was created
    /// [`open`](Connection::open). `None` if it never did.
    #[must_use]
    pub fn opened_at(&self) -> Option<Instant> {
        (self.opened_at != Instant::MAX).then_some(self.opened_at)
    }

    /// Ping and Pong events that were not queued because those waiting already weighed
    /// [`Config::high_watermark`] (an application that does not poll events loses the newest
    /// of them, never the connection; the Pings were answered all the same).
    #[must_use]
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// Messages and bytes each way, Pings sent, Pongs received and round-trip times (see
    /// [`Stats`] for what is counted where).
    #[must_use]
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            messages_sent: c.messages_sent,
            messages_received: c.messages_received,
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
            wire_bytes_sent: self.written_total,
            wire_bytes_received: c.wire_bytes_received,
            pings_sent: u64::from(c.pings_sent),
            pongs_received: u64::from(c.pongs_received),
            rtt: self.rtt(),
            smoothed_rtt: self.smoothed_rtt(),
        }
    }

    /// Output bytes reported written through [`advance`](Connection::advance) so far.
    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.written_total
    }

    /// With [`Config::retain_unsent`]: the messages given to [`send`](Connection::send),
    /// [`send_text`](Connection::send_text) or [`send_binary`](Connection::send_binary) whose
    /// frames were not entirely reported written through [`advance`](Connection::advance)
    /// (messages held before the handshake completed included), in the order they were sent;
    /// they are forgotten here. A message whose frame was entirely written is never returned,
    /// even if the transport then died with it in a kernel buffer. Meant for after the end:
    /// before it, messages still being written are returned too. Fragments sent with
    /// [`send_fragment`](Connection::send_fragment) are not tracked. With `tether-resume`
    /// negotiated, written messages belong to the session instead (replayed on resumption,
    /// see [`take_session`](Connection::take_session)): only held ones are returned.
    pub fn take_unsent(&mut self) -> Vec<Message> {
        if self.session_active() {
            // Every written message is kept by the session, to be replayed on resumption.
            self.flights = None;
        }
        let mut out: Vec<Message> = self
            .flights
            .take()
            .map(|flights| flights.0.into_iter().map(|(_, m)| m).collect())
            .unwrap_or_default();
        if let Some(early) = self.early.take() {
            out.extend(early.messages);
        }
        out
    }

    /// `tether-resume`: the session this connection carries, if the extension was negotiated
    /// (or, in the client role, is offered).
    #[must_use]
    pub fn session(&self) -> Option<&Session> {
        self.resume.as_deref().map(|r| &r.session)
    }

    /// `tether-resume`: whether this connection resumed a session (the application sees the
    /// same in [`Event::Session`]).
    #[must_use]
    pub fn resumed(&self) -> bool {
        self.resume.as_deref().is_some_and(|r| r.resumed)
    }

    /// `tether-resume`: takes the session back once the connection has ended, to resume it on
    /// the next connection (client, [`client_resuming`](Connection::client_resuming)) or to
    /// park it in a [`SessionStore`] (server). `None` without a session, before the end, and
    /// after a clean close handshake (both sides meant to end the session).
    pub fn take_session(&mut self) -> Option<Session> {
        let closed = self.closed.as_deref()?;
        if closed.clean {
            return None;
        }
        let mut session = self.resume.take()?.session;
        session.connection_ended();
        Some(session)
    }

    // ----- internals ----------------------------------------------------------------------

    fn session_active(&self) -> bool {
        self.resume.as_deref().is_some_and(|r| r.active)
    }

    /// Client role: acts on the server's `tether-resume` answer (or its absence).
    fn negotiate_resume(&mut self, response: &Response) -> Result<(), HandshakeError> {
        let Some(r) = self.resume.as_deref_mut() else {
            return Ok(());
        };
        let config = *r.session.config();
        let answer = response
            .extensions()
            .iter()
            .find_map(|e| ResumeParams::parse(e));
        let offered = r.session.token().is_some();
        let answer = match answer {
            None => {
                // A peer without the extension: plain WebSocket, the loss reported.
                let outcome = offered.then(|| SessionEvent::Lost {
                    reason: LossReason::NotNegotiated,
                    unconfirmed: r.session.take_unacked(),
                });
                self.resume = None;
                if let Some(outcome) = outcome {
                    self.events.push_back(Event::Session(outcome));
                }
                return Ok(());
            }
            Some(Err(why)) => return Err(HandshakeError::Resume(why)),
            Some(Ok(answer)) => answer,
        };
        let Some(token) = answer.session else {
            return Err(HandshakeError::Resume(String::from("no session token")));
        };
        let event = match (offered, answer.received) {
            (false, None) => SessionEvent::Started,
            (false, Some(_)) => {
                return Err(HandshakeError::Resume(String::from(
                    "resumed a session that was not offered",
                )));
            }
            (true, None) => {
                let unconfirmed = r.session.take_unacked();
                r.session = Session::new(config);
                SessionEvent::Lost {
                    reason: LossReason::Unknown,
                    unconfirmed,
                }
            }
            (true, Some(count)) => {
                if !r.session.can_resume_from(count) {
                    return Err(HandshakeError::Resume(format!(
                        "the server received {count} messages; {} were sent, {} acknowledged",
                        r.session.sent(),
                        r.session.acked()
                    )));
                }
                r.session.acknowledge(count);
                r.resumed = true;
                SessionEvent::Resumed {
                    replayed: r.session.unacked_messages(),
                }
            }
        };
        r.session.set_token(token);
        r.session.told();
        r.active = true;
        r.outcome = Some(event);
        self.recv.allow_acks();
        Ok(())
    }

    /// The connection opened: reports the session's outcome and sends again what the peer of
    /// a resumed session has not received, before anything new.
    fn start_session(&mut self) {
        let Some(r) = self.resume.as_deref_mut() else {
            return;
        };
        let Some(outcome) = r.outcome.take() else {
            return;
        };
        let replay: Vec<Message> = match outcome {
            SessionEvent::Resumed { .. } => r.session.replay().cloned().collect(),
            _ => Vec::new(),
        };
        self.events.push_back(Event::Session(outcome));
        for message in &replay {
            let (opcode, payload) = match message {
                Message::Text(t) => (OpCode::Text, t.shared()),
                Message::Binary(b) => (OpCode::Binary, b),
            };
            self.queue_message(opcode, payload, Some(payload));
        }
    }

    /// A whole data message arrived: counted, and acknowledged soon (at once every
    /// `ack_every` messages, else within `ack_delay` unless our own data carries it first).
    fn on_message_received(&mut self, now: Instant) {
        let Some(r) = self.resume.as_deref_mut().filter(|r| r.active) else {
            return;
        };
        r.session.on_received();
        if r.session.unacked_received() >= r.session.config().ack_every {
            self.queue_ack();
        } else if self.timers.get(Timer::Ack).is_none() {
            let at = now + r.session.config().ack_delay;
            self.timers.set(Timer::Ack, at);
        }
    }

    /// Queues an Ack with our count if the peer has not been told it (RFC 6455 §5.5.1:
    /// nothing after our Close).
    fn queue_ack(&mut self) {
        if !matches!(self.phase, Phase::Open) || self.close_sent {
            return;
        }
        let Some(r) = self.resume.as_deref_mut().filter(|r| r.active) else {
            return;
        };
        if r.session.unacked_received() == 0 {
            return;
        }
        let count = r.session.take_ack();
        self.timers.stop(Timer::Ack);
        self.queue_frame(OpCode::Ack, true, &count.to_be_bytes(), None);
    }

    /// The peer's Ack: forget what it received.
    fn on_ack(&mut self, now: Instant, payload: &[u8]) {
        let ok = match (
            self.resume.as_deref_mut().filter(|r| r.active),
            <[u8; 8]>::try_from(payload),
        ) {
            (Some(r), Ok(count)) => r.session.acknowledge(u64::from_be_bytes(count)),
            _ => false,
        };
        if !ok {
            let err = ProtocolError::InvalidAck;
            let reason = err.to_string();
            self.fail(now, err.close_code(), reason, CloseCause::Protocol(err));
        }
    }

    fn tick(&mut self, now: Instant) -> Instant {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    fn check_state(&self) -> Result<(), SendErrorKind> {
        match self.phase {
            Phase::Open => Ok(()),
            Phase::Closing => Err(SendErrorKind::Closing),
            Phase::Ended => Err(SendErrorKind::Closed),
            _ => Err(SendErrorKind::NotOpen),
        }
    }

    /// Whether `len` more payload bytes fit; a send into an empty buffer always fits, so a
    /// message larger than the limit is not refused forever.
    fn check_room(&self, len: usize) -> Result<(), SendErrorKind> {
        let buffered = self.unwritten();
        let limit = self.config.high_watermark;
        if buffered > 0 && (self.out_paused || buffered.saturating_add(len) > limit) {
            return Err(SendErrorKind::BufferFull { buffered, limit });
        }
        Ok(())
    }

    /// Outbound bytes not written yet, held messages included.
    fn unwritten(&self) -> usize {
        self.send.len() + self.early.as_ref().map_or(0, |early| early.bytes)
    }

    fn check_data(&self, len: usize) -> Result<(), SendErrorKind> {
        match self.phase {
            // A client may send before the handshake completes: the message is held.
            Phase::ClientHandshake(_) => {}
            _ => self.check_state()?,
        }
        if self.out_msg.is_some() {
            return Err(SendErrorKind::MessageInProgress);
        }
        self.check_room(len)?;
        self.check_session_room(len)
    }

    /// `tether-resume`: whether one more message fits among those not acknowledged yet.
    fn check_session_room(&self, len: usize) -> Result<(), SendErrorKind> {
        match self.resume.as_deref().filter(|r| r.active) {
            Some(r) if !r.session.has_room(len) => Err(SendErrorKind::BufferFull {
                buffered: r.session.unacked_bytes(),
                limit: r.session.config().max_unacked_bytes,
            }),
            _ => Ok(()),
        }
    }

    fn send_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<(), SendError<Bytes>> {
        let check = if payload.len() > MAX_CONTROL_PAYLOAD {
            Err(SendErrorKind::ControlPayloadTooLong)
        } else {
            self.check_state()
        };
        if let Err(kind) = check {
            return Err(SendError {
                kind,
                data: payload,
            });
        }
        self.queue_frame(opcode, true, &payload, None);
        Ok(())
    }

    fn write_close(&mut self, frame: Option<&CloseFrame>) {
        let payload = frame.map(CloseFrame::encode).unwrap_or_default();
        self.queue_frame(OpCode::Close, true, &payload, None);
        self.close_sent = true;
    }

    /// Queues one frame, keeping the output offset and the flow-control state up to date.
    fn queue_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8], shared: Option<&Bytes>) {
        self.queue_frame_rsv(opcode, fin, 0, payload, shared);
    }

    /// Queues one frame with RSV bits (RSV1 marks a compressed message, RFC 7692 §6).
    #[inline]
    fn queue_frame_rsv(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv: u8,
        payload: &[u8],
        shared: Option<&Bytes>,
    ) {
        if opcode == OpCode::Ping {
            self.counters.pings_sent = self.counters.pings_sent.saturating_add(1);
        }
        let before = self.send.len();
        self.send
            .write_frame(self.role, opcode, fin, rsv, payload, shared, &mut *self.rng);
        self.queued_total += (self.send.len() - before) as u64;
        self.update_outbound();
    }

    /// Queues bytes as they are (an HTTP head).
    fn queue_raw(&mut self, bytes: &[u8]) {
        self.send.write_raw(bytes);
        self.queued_total += bytes.len() as u64;
        self.update_outbound();
    }

    /// Queues a data message's frame; remembers the message until it is written when
    /// [`Config::retain_unsent`] asks for it.
    #[inline]
    fn write_message(&mut self, message: &Message) {
        // Text and binary alike: a large payload is queued without a copy in the server role.
        let (opcode, payload) = match message {
            Message::Text(t) => (OpCode::Text, t.shared()),
            Message::Binary(b) => (OpCode::Binary, b),
        };
        let resume = self.resume.is_some();
        if resume {
            self.queue_ack();
        }
        self.queue_message(opcode, payload, Some(payload));
        if !resume && !self.config.retain_unsent {
            // Nothing to remember (the common case).
            return;
        }
        if let Some(r) = self.resume.as_deref_mut().filter(|r| r.active) {
            r.session.record(message.clone());
        }
        if self.config.retain_unsent {
            let end = self.queued_total;
            self.flights
                .get_or_insert_default()
                .0
                .push_back((end, message.clone()));
        }
    }

    /// Queues a whole data message in one frame, compressed when permessage-deflate was
    /// negotiated and the message reaches its threshold (RFC 7692 §6: RSV1 set).
    // Always inlined: out of line it cost 21 instructions per 16-byte message
    // (callgrind, encode).
    #[inline(always)]
    fn queue_message(&mut self, opcode: OpCode, payload: &[u8], shared: Option<&Bytes>) {
        self.counters.sent(payload.len(), true);
        match self.deflate.as_deref_mut() {
            Some(d) if d.should_compress(payload.len()) => {
                let compressed = Bytes::from(d.compress_message(payload));
                self.queue_frame_rsv(opcode, true, RSV1, &compressed, Some(&compressed));
            }
            _ => self.queue_frame(opcode, true, payload, shared),
        }
    }

    /// Client role: sets up permessage-deflate from the server's response, or says why the
    /// response must fail the connection (RFC 7692 §5.1).
    fn negotiate_deflate(&mut self, response: &Response) -> Result<(), HandshakeError> {
        if self.config.deflate.is_none() {
            return Ok(());
        }
        let codec = crate::deflate::client_codec(&self.config, response)
            .map_err(HandshakeError::Deflate)?;
        if codec.is_some() {
            self.recv.allow_compression();
            self.deflate = codec;
        }
        Ok(())
    }

    /// A piece of a compressed message arrived: inflate it (RFC 7692 §7.2.2) and hand the
    /// result on, or fail the connection (1007 for bad data, 1009 past the size limit). A piece
    /// that inflates to more than one step's budget is finished in later steps
    /// ([`continue_inflation`](Connection::continue_inflation)); frames behind it wait.
    fn on_compressed(
        &mut self,
        now: Instant,
        kind: DataKind,
        data: Bytes,
        first: bool,
        last: bool,
        tailed: bool,
    ) {
        let streaming = self.config.streaming;
        let max = self.config.max_message_size;
        // The codec is taken out while it hands its output over, one item at a time (no
        // list allocated per message).
        let Some(mut codec) = self.deflate.take() else {
            self.after_inflation(now, Err(ProtocolError::ReservedBits(RSV1)));
            return;
        };
        let result = codec.receive(
            kind,
            data,
            first,
            last,
            tailed,
            streaming,
            max,
            &mut |data| self.on_inflated(now, data),
        );
        self.deflate = Some(codec);
        self.after_inflation(now, result);
    }

    /// Whether a received compressed piece is only partly inflated.
    fn inflating(&self) -> bool {
        self.deflate.as_deref().is_some_and(|d| d.is_inflating())
    }

    /// Hands inflated data on.
    fn on_inflated(&mut self, now: Instant, data: Data) {
        // A message is received (for `tether-resume`'s count) once it is whole.
        let ended = matches!(data, Data::Message(_) | Data::MessageEnd);
        self.push_data(data);
        if ended {
            self.on_message_received(now);
        }
    }

    /// Arms the next step while the piece is unfinished; fails the connection on an error.
    fn after_inflation(&mut self, now: Instant, result: Result<(), ProtocolError>) {
        match result {
            Ok(()) if self.inflating() => self.timers.set(Timer::Inflate, now),
            Ok(()) => {}
            Err(err) => {
                let reason = err.to_string();
                self.fail(now, err.close_code(), reason, CloseCause::Protocol(err));
            }
        }
    }

    /// The next step of a partly inflated piece (the driver's turn came, or the application
    /// read everything before it), then the frames that waited behind it. A streamed message
    /// waits while its unread chunks are over the high watermark; reading resumes it.
    fn continue_inflation(&mut self, now: Instant, forced: bool) {
        if !matches!(self.phase, Phase::Open | Phase::Closing) || !self.inflating() {
            return;
        }
        self.update_inbound();
        if self.in_paused && !forced {
            return;
        }
        let max = self.config.max_message_size;
        if let Some(mut codec) = self.deflate.take() {
            let result = codec.step(max, &mut |data| self.on_inflated(now, data));
            self.deflate = Some(codec);
            self.after_inflation(now, result);
        }
        if !self.inflating() {
            self.timers.stop(Timer::Inflate);
            self.on_frames(now);
        }
    }

    /// Re-evaluates the inbound flow-control hysteresis after data came in or was read.
    fn update_inbound(&mut self) {
        if self.unread_bytes > self.config.high_watermark {
            self.in_paused = true;
        } else if self.unread_bytes <= self.config.low_watermark {
            self.in_paused = false;
        }
    }

    /// Re-evaluates the outbound flow-control hysteresis after output was queued or written.
    fn update_outbound(&mut self) {
        let outbound = self.unwritten();
        if outbound > self.config.high_watermark {
            self.out_paused = true;
        } else if outbound <= self.config.low_watermark {
            self.out_paused = false;
            self.replies_since_low = 0;
        }
    }

    /// Whether unwritten output stops reading: only when it is over the high watermark *and*
    /// the peer made us queue most of the difference (Pongs to its Pings). Output the
    /// application sends does not stop reading: sends are refused over the mark already, and
    /// two peers that both stopped reading while they each had a large message to write would
    /// wait for each other for ever.
    fn replies_pause(&self) -> bool {
        self.out_paused
            && self.replies_since_low
                > self.config.high_watermark
                    - self.config.low_watermark.min(self.config.high_watermark)
    }

    /// Queues a frame the protocol makes the core send by itself (a Pong, the Close echo).
    fn queue_reply(&mut self, opcode: OpCode, payload: &[u8]) {
        let before = self.send.len();
        self.queue_frame(opcode, true, payload, None);
        self.replies_since_low += self.send.len() - before;
    }

    /// Acts on what the peer sent behind data the application had not taken yet, if anything.
    /// Inlined: `read` asks on every call, and there is rarely anything.
    #[inline]
    fn release_deferred(&mut self) {
        if self.deferred.is_some() {
            self.act_on_deferred();
        }
    }

    /// [`release_deferred`](Connection::release_deferred)'s work. Either way the connection
    /// ends (nothing that follows a Close or a violation is read).
    #[inline(never)]
    fn act_on_deferred(&mut self) {
        let now = self.now;
        match self.deferred.take().map(|what| *what) {
            None => {}
            Some(Deferred::Violation(err)) => {
                let reason = err.to_string();
                self.fail(now, err.close_code(), reason, CloseCause::Protocol(err));
            }
            Some(Deferred::Close(payload)) => self.on_close(now, &payload),
        }
    }

    fn arm_open_timers(&mut self, now: Instant) {
        if let Some(hb) = self.config.heartbeat {
            self.timers.set(Timer::Ping, now + hb.interval);
        }
        if let Some(idle) = self.config.idle_timeout {
            self.timers.set(Timer::Idle, now + idle);
        }
    }

    fn become_open(&mut self, now: Instant) {
        trace_event!(
            tracing::Level::INFO,
            role = ?self.role,
            subprotocol = self.subprotocol.as_deref(),
            "open"
        );
        self.phase = Phase::Open;
        self.opened_at = now.short_of_max();
        self.timers.stop(Timer::Handshake);
        self.arm_open_timers(now);
        self.events.push_back(Event::Connected {
            subprotocol: self.subprotocol.as_deref().map(String::from),
        });
        self.start_session();
        // Messages sent while the handshake ran go first (after a resumed session's replay).
        if let Some(early) = self.early.take() {
            for message in &early.messages {
                self.write_message(message);
            }
        }
        // The handshake's input buffer is not kept unless frames came right behind it.
        self.recv.drop_if_empty();
    }

    /// Queues an event. Ping and Pong events are information a peer can produce without end:
    /// beyond the high watermark's worth of them waiting, new ones are counted in
    /// [`dropped_events`](Connection::dropped_events) instead of queued, so an application that
    /// never polls events neither grows the queue nor stops the connection.
    fn push_event(&mut self, event: Event) {
        let weight = event_weight(&event);
        if weight > 0 && self.event_bytes + weight > self.config.high_watermark {
            self.dropped_events += 1;
            return;
        }
        self.event_bytes += weight;
        self.events.push_back(event);
    }

    /// Bounds how long the transport stays up after the end: the close timeout to write what
    /// is queued (or, as a client after a clean close, to wait for the server to close), and
    /// only [`SHUTDOWN_LINGER`] once a half-close has been handed out.
    fn arm_linger(&mut self, now: Instant) {
        let mut at = now + self.config.close_timeout;
        if self.transport == Transport::ShutdownWhenDrained && self.send.is_empty() {
            at = at.min(now + SHUTDOWN_LINGER);
        }
        self.timers.set(Timer::Linger, at);
    }

    /// Closes the transport now: unwritten output is dropped, nothing more is read.
    fn close_transport(&mut self) {
        self.transport = Transport::Close;
        self.send.discard();
        self.recv.discard();
        self.timers.stop_all();
        self.update_inbound();
        self.update_outbound();
    }

    /// Emits the terminal event and winds the connection down.
    fn end(&mut self, closed: Closed, transport: Transport) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        trace_event!(
            tracing::Level::INFO,
            code = closed.code.0,
            reason = closed.reason.as_str(),
            initiator = ?closed.initiator,
            clean = closed.clean,
            cause = ?closed.cause,
            "closed"
        );
        self.phase = Phase::Ended;
        self.deferred = None;
        self.closed = Some(Box::new(closed.clone()));
        self.events.push_back(Event::Closed(closed));
        self.recv.discard();
        self.timers.stop_all();
        self.out_msg = None;
        match transport {
            Transport::Close => self.close_transport(),
            Transport::CloseWhenDrained if self.send.is_empty() => self.close_transport(),
            _ if self.transport == Transport::Close => {}
            other => self.transport = other,
        }
    }

    /// _Fail the WebSocket Connection_ (RFC 6455 §7.1.7): send Close with `code` if we have not
    /// sent one, end with the terminal event, and close the transport once the Close is written
    /// (or the close timeout passes).
    fn fail(&mut self, now: Instant, code: CloseCode, reason: String, cause: CloseCause) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        // A peer that stopped answering will not close its end: close once our Close is
        // written. Any other peer gets a half-close, so it can read our Close first.
        let transport = match cause {
            CloseCause::HeartbeatTimeout => Transport::CloseWhenDrained,
            _ => Transport::ShutdownWhenDrained,
        };
        let reason = String::from(truncate_reason(&reason));
        if !self.close_sent && matches!(self.phase, Phase::Open) {
            self.write_close(Some(&CloseFrame {
                code,
                reason: reason.clone(),
            }));
        }
        self.end(
            Closed {
                code,
                reason,
                initiator: Initiator::Local,
                clean: false,
                cause,
            },
            transport,
        );
        self.arm_linger(now);
    }

    /// After a completed close handshake: the server closes the transport first (a
    /// half-close, then the close at the client's end of stream); the client waits for it to,
    /// and closes it itself after the close timeout (RFC 6455 §7.1.1).
    fn finish_clean(&mut self, now: Instant, closed: Closed) {
        match self.role {
            Role::Server => self.end(closed, Transport::ShutdownWhenDrained),
            Role::Client => self.end(closed, Transport::Open),
        }
        self.arm_linger(now);
    }

    fn reject_request(&mut self, reject: &Reject) {
        let mut head = bytes::BytesMut::new();
        crate::handshake::write_reject(reject, &mut head);
        self.queue_raw(&head);
        let now = self.now;
        self.end(
            Closed {
                code: CloseCode::ABNORMAL,
                reason: format!(
                    "opening handshake rejected with {}",
                    reject.effective_status()
                ),
                initiator: Initiator::Local,
                clean: false,
                cause: CloseCause::HandshakeRejected {
                    status: reject.effective_status(),
                },
            },
            Transport::ShutdownWhenDrained,
        );
        self.arm_linger(now);
    }

    fn on_input(&mut self, now: Instant) {
        let now = self.tick(now);
        loop {
            match &mut self.phase {
                Phase::ClientHandshake(hs) => {
                    // A response the extension negotiation refuses fails like any bad 101.
                    let result =
                        self.recv
                            .with_input(|input| hs.handle(input))
                            .and_then(|response| match response {
                                Some(response) => self
                                    .negotiate_deflate(&response)
                                    .and_then(|()| self.negotiate_resume(&response))
                                    .map(|()| Some(response)),
                                None => Ok(None),
                            });
                    match result {
                        Ok(None) => return,
                        Ok(Some(response)) => {
                            self.subprotocol = response.subprotocol().map(Box::from);
                            self.response = Some(Box::new(response));
                            self.become_open(now);
                        }
                        Err(err) => {
                            self.end(
                                Closed {
                                    code: CloseCode::ABNORMAL,
                                    reason: err.to_string(),
                                    initiator: Initiator::Remote,
                                    clean: false,
                                    cause: CloseCause::HandshakeFailed(err),
                                },
                                Transport::Close,
                            );
                            return;
                        }
                    }
                }
                Phase::ServerHandshake(hs) => {
                    match self.recv.with_input(|input| hs.handle(input)) {
                        Ok(None) => return,
                        Ok(Some(request)) => {
                            // Checked once: an open connection does not keep the policy.
                            // A request passed on as plain HTTP is the application's to
                            // answer: the WebSocket checks do not apply to it.
                            let verdict = match self.policy.take() {
                                Some(policy) if request.is_websocket() => policy.check(&request),
                                _ => Ok(()),
                            };
                            match verdict {
                                Ok(()) => {
                                    self.events.push_back(Event::Request(request.clone()));
                                    self.phase = Phase::AwaitingAccept(request);
                                }
                                Err(reject) => self.reject_request(&reject),
                            }
                            return;
                        }
                        Err(reject) => {
                            self.reject_request(&reject);
                            return;
                        }
                    }
                }
                Phase::AwaitingAccept(_) => return,
                Phase::Open | Phase::Closing => {
                    self.on_frames(now);
                    return;
                }
                Phase::Ended => {
                    self.recv.discard();
                    return;
                }
            }
        }
    }

    #[inline]
    fn push_data(&mut self, data: Data) {
        match &data {
            Data::Message(m) => self.counters.received(m.len(), true),
            Data::MessageChunk(b) => self.counters.received(b.len(), false),
            Data::MessageEnd => self.counters.received(0, true),
            Data::MessageStart(_) => {}
        }
        if self.discard_data {
            return;
        }
        self.unread_bytes += data.len();
        self.inbox.push_back(data);
        self.update_inbound();
    }

    /// Whether something the peer sends now must wait for the application to take (and
    /// answer) the data before it.
    fn must_wait(&self) -> bool {
        !self.discard_data && (!self.inbox.is_empty() || self.answering)
    }

    /// Holds `what` until the application has taken the data before it and come back for
    /// more: at most the close timeout while data is unread, at most [`ANSWER_GRACE`] once
    /// everything was taken (an application that took its last message and is not reading any
    /// more must not hold the peer's Close for long). Nothing more is read meanwhile, and the
    /// heartbeat stops: the peer is done.
    fn defer(&mut self, now: Instant, what: Deferred) {
        self.deferred = Some(Box::new(what));
        self.timers.stop(Timer::Ping);
        self.timers.stop(Timer::Pong);
        self.timers.stop(Timer::Idle);
        let wait = if self.inbox.is_empty() {
            self.answer_grace()
        } else {
            self.config.close_timeout
        };
        self.timers.set(Timer::Deferred, now + wait);
    }

    fn answer_grace(&self) -> Duration {
        ANSWER_GRACE.min(self.config.close_timeout)
    }

    fn on_frames(&mut self, now: Instant) {
        if self.deferred.is_some() {
            return;
        }
        // Opening the connection runs this too, usually with nothing buffered.
        let had_input = !self.recv.is_empty();
        if had_input && let Some(r) = self.resume.as_deref_mut() {
            // A frame from the client: it has the token our 101 gave it.
            r.session.set_previous_token(None);
        }
        // Anything from the peer shows it is alive: postpone the next heartbeat Ping.
        if let Some(hb) = self.config.heartbeat
            && matches!(self.phase, Phase::Open)
            && self.heartbeat.outstanding().is_none()
        {
            self.timers.set(Timer::Ping, now + hb.interval);
        }
        // A partly inflated piece holds back the frames behind it (they stay buffered, and
        // reading waits) until its last step.
        while matches!(self.phase, Phase::Open | Phase::Closing) && !self.inflating() {
            match self.recv.poll(&self.config) {
                Ok(None) => break,
                // Let the application see (and answer) what came before the peer's Close.
                Ok(Some(Incoming::Close(payload)))
                    if self.must_wait() && matches!(self.phase, Phase::Open) =>
                {
                    self.touch_idle(now);
                    self.defer(now, Deferred::Close(payload));
                    return;
                }
                Ok(Some(item)) => self.on_incoming(now, item),
                // Likewise before a violation.
                Err(err) if self.must_wait() => {
                    self.defer(now, Deferred::Violation(err));
                    return;
                }
                Err(err) => {
                    let reason = err.to_string();
                    self.fail(now, err.close_code(), reason, CloseCause::Protocol(err));
                }
            }
        }
        if self.recv.in_data_frame() {
            self.touch_idle(now);
        }
        if had_input {
            self.settle_input_buffer(now);
        }
    }

    /// Input was processed. When it left the input buffer empty (a message or more ended)
    /// while the connection is busy receiving, its buffers are kept, initialised, for reuse;
    /// otherwise the emptied input buffer is given back at once, so an idle connection holds
    /// none (the rule is in `linger.rs`). An input buffer emptied in the middle of a message
    /// (a piece of it passed on, a fragment assembled) is kept for the rest and counts as no
    /// event: a message that came in many reads makes the connection no busier than one that
    /// came in one. Not inlined: in `on_frames` it cost the frame loop a few instructions a
    /// frame (callgrind).
    #[inline(never)]
    fn settle_input_buffer(&mut self, now: Instant) {
        if self.recv.is_empty()
            && !self.recv.in_message()
            && !self
                .input_linger
                .event(now, true, &mut self.timers, Timer::InputBuffer)
        {
            self.recv.release();
        }
    }

    /// The output was all written. While an open connection is busy sending, its output buffer
    /// is kept, initialised, for the next frames if it is no larger than the high watermark;
    /// otherwise it is given back at once, so an idle connection holds none (the rule is in
    /// `linger.rs`; the time is the core's clock, stale on a connection that only sends).
    fn settle_output_buffer(&mut self) {
        let open = matches!(self.phase, Phase::Open | Phase::Closing);
        let keep = self.send.buffer_size() <= self.config.high_watermark;
        if !(open
            && self
                .output_linger
                .event(self.now, keep, &mut self.timers, Timer::OutputBuffer))
        {
            self.send.release();
        }
    }

    /// Not busy receiving (see `settle_input_buffer`): buffers are given back rather than kept
    /// for reuse. Never in the middle of a message, whose rest is on its way.
    fn quiet(&self) -> bool {
        self.timers.get(Timer::InputBuffer).is_none() && !self.recv.in_message()
    }

    fn touch_idle(&mut self, now: Instant) {
        if let Some(idle) = self.config.idle_timeout
            && matches!(self.phase, Phase::Open)
        {
            self.timers.set(Timer::Idle, now + idle);
        }
    }

    #[inline]
    fn on_incoming(&mut self, now: Instant, item: Incoming) {
        if !matches!(item, Incoming::Pong(_)) {
            self.touch_idle(now);
        }
        match item {
            Incoming::Message(message) => {
                self.push_data(Data::Message(message));
                self.on_message_received(now);
            }
            Incoming::Chunk {
                kind,
                data,
                first,
                last,
                compressed: true,
                tailed,
            } => self.on_compressed(now, kind, data, first, last, tailed),
            Incoming::Chunk {
                kind,
                data,
                first,
                last,
                compressed: false,
                ..
            } => {
                if first {
                    self.push_data(Data::MessageStart(kind));
                }
                if !data.is_empty() {
                    self.push_data(Data::MessageChunk(data));
                }
                if last {
                    self.push_data(Data::MessageEnd);
                    self.on_message_received(now);
                }
            }
            Incoming::Ping(payload) => {
                // RFC 6455 §5.5.2: answer with a Pong carrying the same payload, unless we
                // already sent Close (§5.5.1: nothing follows our Close).
                if matches!(self.phase, Phase::Open) {
                    self.queue_reply(OpCode::Pong, &payload);
                }
                if self.config.report_pings {
                    self.push_event(Event::Ping(payload));
                }
            }
            Incoming::Pong(payload) => self.on_pong(now, payload),
            Incoming::Ack(payload) => self.on_ack(now, &payload),
            Incoming::Close(payload) => self.on_close(now, &payload),
        }
    }

    fn on_pong(&mut self, now: Instant, payload: Bytes) {
        self.counters.pongs_received = self.counters.pongs_received.saturating_add(1);
        match self.heartbeat.outstanding() {
            // RFC 6455 §5.5.3: only the Pong that echoes our Ping answers it.
            Some((sent, at)) if payload[..] == sent[..] => {
                let sample = now - at;
                trace_event!(tracing::Level::DEBUG, rtt = ?sample, "heartbeat pong received");
                self.heartbeat.answered(sample);
                self.timers.stop(Timer::Pong);
                if let Some(hb) = self.config.heartbeat
                    && matches!(self.phase, Phase::Open)
                {
                    self.timers.set(Timer::Ping, now + hb.interval);
                }
            }
            _ => self.push_event(Event::Pong(payload)),
        }
    }

    fn on_close(&mut self, now: Instant, payload: &[u8]) {
        let frame = match CloseFrame::parse(payload) {
            Ok(frame) => frame,
            Err(err) => {
                let reason = err.to_string();
                self.fail(now, err.close_code(), reason, CloseCause::Protocol(err));
                return;
            }
        };
        let (code, reason) = match &frame {
            Some(f) => (f.code, f.reason.clone()),
            None => (CloseCode::NO_STATUS, String::new()),
        };
        let initiator = if matches!(self.phase, Phase::Closing) {
            Initiator::Local
        } else {
            trace_event!(
                tracing::Level::DEBUG,
                code = code.0,
                reason = reason.as_str(),
                initiator = "remote",
                "closing"
            );
            // RFC 6455 §5.5.1: echo the status code we received.
            let echo = frame.map(|f| CloseFrame {
                code: f.code,
                reason: String::new(),
            });
            self.write_close(echo.as_ref());
            Initiator::Remote
        };
        self.finish_clean(
            now,
            Closed {
                code,
                reason,
                initiator,
                clean: true,
                cause: CloseCause::Normal,
            },
        );
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Handshake => self.on_handshake_timeout(now),
            Timer::Ping => {
                if matches!(self.phase, Phase::Open)
                    && self.heartbeat.outstanding().is_none()
                    && let Some(hb) = self.config.heartbeat
                {
                    let mut payload = [0u8; 8];
                    self.rng.fill_bytes(&mut payload);
                    self.queue_ack();
                    self.queue_frame(OpCode::Ping, true, &payload, None);
                    trace_event!(tracing::Level::TRACE, "heartbeat ping sent");
                    self.heartbeat.sent(payload, now);
                    self.timers.set(Timer::Pong, now + hb.timeout);
                }
            }
            Timer::Pong => {
                trace_event!(
                    tracing::Level::WARN,
                    timeout = ?self.config.heartbeat.map(|hb| hb.timeout),
                    "heartbeat missed: no pong within the timeout"
                );
                self.fail(
                    now,
                    CloseCode::INTERNAL_ERROR,
                    "heartbeat timeout".to_string(),
                    CloseCause::HeartbeatTimeout,
                );
            }
            Timer::Idle => self.fail(
                now,
                CloseCode::GOING_AWAY,
                "idle timeout".to_string(),
                CloseCause::IdleTimeout,
            ),
            Timer::Close => self.end(
                Closed {
                    code: CloseCode::ABNORMAL,
                    reason: "close handshake timed out".to_string(),
                    initiator: Initiator::Local,
                    clean: false,
                    cause: CloseCause::CloseTimeout,
                },
                Transport::Close,
            ),
            Timer::Deferred => self.release_deferred(),
            Timer::Inflate => self.continue_inflation(now, false),
            Timer::Ack => self.queue_ack(),
            Timer::Linger => self.close_transport(),
            Timer::OutputBuffer => {
                if !self
                    .output_linger
                    .fired(now, &mut self.timers, Timer::OutputBuffer)
                {
                    // Quiet for a while (output still waiting keeps it until written).
                    self.send.release();
                }
            }
            Timer::InputBuffer => {
                if self
                    .input_linger
                    .fired(now, &mut self.timers, Timer::InputBuffer)
                {
                    return;
                }
                // Quiet for a while: give back what only a busy connection reuses.
                self.recv.release();
                if self.inbox.is_empty() {
                    self.inbox = VecDeque::new();
                }
                if self
                    .flights
                    .as_ref()
                    .is_some_and(|flights| flights.0.is_empty())
                {
                    self.flights = None;
                }
            }
        }
    }

    fn on_handshake_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::ClientHandshake(_) => self.end(
                Closed {
                    code: CloseCode::ABNORMAL,
                    reason: "opening handshake timed out".to_string(),
                    initiator: Initiator::Local,
                    clean: false,
                    cause: CloseCause::HandshakeTimeout,
                },
                Transport::Close,
            ),
            Phase::ServerHandshake(_) | Phase::AwaitingAccept(_) => {
                // A 408 if it can still be written; the transport closes either way.
                let mut head = bytes::BytesMut::new();
                crate::handshake::write_reject(&Reject::new(408), &mut head);
                self.queue_raw(&head);
                self.end(
                    Closed {
                        code: CloseCode::ABNORMAL,
                        reason: "opening handshake timed out".to_string(),
                        initiator: Initiator::Local,
                        clean: false,
                        cause: CloseCause::HandshakeTimeout,
                    },
                    Transport::ShutdownWhenDrained,
                );
                self.timers.set(
                    Timer::Linger,
                    now + Duration::from_secs(1).min(self.config.close_timeout),
                );
            }
            _ => {}
        }
    }
}

/// What a queued event counts for in the inbound flow-control total: Pings and Pongs (a peer
/// can send them without end), nothing for the few lifecycle events.
fn event_weight(event: &Event) -> usize {
    match event {
        Event::Ping(b) | Event::Pong(b) => EVENT_WEIGHT + b.len(),
        _ => 0,
    }
}
