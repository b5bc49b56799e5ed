//! The connection: one state machine from the first handshake byte to the terminal event.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use core::time::Duration;

use bytes::Bytes;
use rand_core::Rng;

use crate::close::{CloseCode, CloseFrame, MAX_REASON_LEN, truncate_reason};
use crate::config::Config;
use crate::error::{CloseError, ProtocolError, SendError, SendErrorKind};
use crate::event::{CloseCause, Closed, Event, Initiator, TransportAction};
use crate::frame::{MAX_CONTROL_PAYLOAD, OpCode};
use crate::handshake::{
    Accept, AcceptError, ClientHandshake, ClientRequest, Reject, Request, Response,
    ServerHandshake, ServerPolicy,
};
use crate::message::{DataKind, Message, Utf8Bytes};
use crate::recv::{Incoming, Receiver};
use crate::send::Sender;
use crate::time::Instant;
use crate::timer::{Timer, TimerTable};
use crate::utf8::Utf8Validator;

/// The most events that may wait to be polled before [`Connection::wants_read`] turns false.
pub const MAX_QUEUED_EVENTS: usize = 1024;

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
    AwaitingAccept(Box<Request>),
    Open,
    Closing,
    Ended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Open,
    /// Close once the output queue is empty (or when the linger timer fires).
    CloseWhenDrained,
    /// Close now, dropping unwritten output.
    CloseNow,
    /// The close action was handed out.
    Closed,
}

/// A data message being sent in fragments.
#[derive(Debug)]
struct OutMessage {
    kind: DataKind,
    utf8: Utf8Validator,
}

/// Heartbeat bookkeeping: the outstanding Ping and round-trip estimates.
#[derive(Debug, Default)]
struct Heartbeat {
    outstanding: Option<([u8; 8], Instant)>,
    latest_rtt: Option<Duration>,
    smoothed_rtt: Option<Duration>,
}

/// A WebSocket connection as a sans-IO state machine.
///
/// See the [crate documentation](crate) for the driving loop. Inputs (`handle_*`) take the
/// current time; commands (`send`, `ping`, `close`, `accept`, ...) return a typed error on local
/// misuse and then change nothing; outputs (`poll_*`, `pending_output`) say what to do next.
pub struct Connection {
    role: Role,
    config: Config,
    phase: Phase,
    recv: Receiver,
    send: Sender,
    events: VecDeque<Event>,
    timers: TimerTable,
    transport: Transport,
    rng: Box<dyn Rng + Send>,
    policy: Option<Box<ServerPolicy>>,
    subprotocol: Option<String>,
    response: Option<Box<Response>>,
    out_msg: Option<OutMessage>,
    heartbeat: Heartbeat,
    close_sent: bool,
    /// A peer's protocol violation found behind data messages the user has not polled yet.
    deferred: Option<ProtocolError>,
    /// Data events (messages and streaming pieces) queued but not yet polled, and their bytes.
    unread_data: usize,
    /// The last `poll_event` handed out a data event: the application may still be answering
    /// it, until it polls again.
    answering: bool,
    unread_bytes: usize,
    /// The latest `now` seen: a clock that steps back is read as "no time passed".
    now: Instant,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("transport", &self.transport)
            .field("buffered_output", &self.send.len())
            .field("pending_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    fn new(
        role: Role,
        config: Config,
        phase: Phase,
        rng: Box<dyn Rng + Send>,
        now: Instant,
    ) -> Self {
        Connection {
            role,
            recv: Receiver::new(role, &config),
            config,
            phase,
            send: Sender::default(),
            events: VecDeque::new(),
            timers: TimerTable::default(),
            transport: Transport::Open,
            rng,
            policy: None,
            subprotocol: None,
            response: None,
            out_msg: None,
            heartbeat: Heartbeat::default(),
            close_sent: false,
            deferred: None,
            unread_data: 0,
            answering: false,
            unread_bytes: 0,
            now,
        }
    }

    /// A connection that is already open, after an upgrade done elsewhere (hyper, axum, an
    /// HTTP/2 extended CONNECT). No [`Event::Connected`] is emitted: the caller knows.
    pub fn open<R: Rng + Send + 'static>(role: Role, config: Config, rng: R, now: Instant) -> Self {
        let mut conn = Connection::new(role, config, Phase::Open, Box::new(rng), now);
        conn.arm_open_timers(now);
        conn
    }

    /// A client that starts by writing `request`'s opening handshake. The `Sec-WebSocket-Key`
    /// nonce and every masking key come from `rng`.
    pub fn client<R: Rng + Send + 'static>(
        request: ClientRequest,
        config: Config,
        mut rng: R,
        now: Instant,
    ) -> Self {
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let handshake = ClientHandshake::new(request, nonce, &config.handshake_limits);
        let mut conn = Connection::new(
            Role::Client,
            config,
            Phase::ClientHandshake(Box::new(handshake)),
            Box::new(rng),
            now,
        );
        let mut head = bytes::BytesMut::new();
        if let Phase::ClientHandshake(hs) = &conn.phase {
            hs.write_request(&mut head);
        }
        conn.send.write_raw(&head);
        let deadline = now + conn.config.handshake_timeout;
        conn.timers.set(Timer::Handshake, deadline);
        conn
    }

    /// A server that waits for an opening request. Requests that fail `policy` (Origin
    /// allowlist, authentication hook) are rejected by the core; the others are surfaced as
    /// [`Event::Request`] for [`accept`](Connection::accept) or [`reject`](Connection::reject).
    pub fn server<R: Rng + Send + 'static>(
        config: Config,
        policy: ServerPolicy,
        rng: R,
        now: Instant,
    ) -> Self {
        let handshake = ServerHandshake::new(&config.handshake_limits);
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

    /// The buffer to read transport bytes into; report how many with
    /// [`handle_read`](Connection::handle_read). Reading straight here saves a copy.
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.recv.read_buf()
    }

    /// The driver read `n` bytes into [`read_buf`](Connection::read_buf). A read of 0 bytes is
    /// not end of stream: call [`handle_eof`](Connection::handle_eof) for that.
    pub fn handle_read(&mut self, now: Instant, n: usize) {
        self.recv.commit(n);
        if n > 0 {
            self.on_input(now);
        }
    }

    /// Received bytes from a buffer of the driver's own (one copy into the core).
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        if !data.is_empty() {
            self.recv.push(data);
            self.on_input(now);
        }
    }

    /// The transport's read side ended (or the transport failed). Without a completed close
    /// handshake this ends the connection with 1006.
    pub fn handle_eof(&mut self, now: Instant) {
        self.tick(now);
        let (initiator, reason, cause) = match &mut self.phase {
            Phase::Ended => {
                if self.transport != Transport::Closed {
                    self.transport = Transport::CloseNow;
                }
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
            Transport::CloseNow,
        );
    }

    /// Time passed: fire every timer due at `now`. Harmless when called early, late or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        while let Some(timer) = self.timers.take_expired(now) {
            self.on_timer(now, timer);
        }
    }

    // ----- outputs ------------------------------------------------------------------------

    /// The next event, if any.
    ///
    /// Polling is also how the core learns that the application has taken a message: when the
    /// peer breaks the protocol right after messages that are still unread, the failure (our
    /// Close with its code) waits until they have been polled, so replies the application sends
    /// to them go out first, as a peer that reads frame by frame would see it. The wait is
    /// bounded by [`Config::close_timeout`]. Drivers should therefore leave events here until
    /// the application asks for them rather than moving them all to a queue of their own.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.answering = false;
        if self.unread_data == 0 && self.deferred.is_some() {
            self.fail_deferred();
        }
        let event = self.events.pop_front()?;
        if let Some(len) = data_len(&event) {
            self.unread_data -= 1;
            self.unread_bytes -= len;
            self.answering = true;
        }
        Some(event)
    }

    /// Whether a data event (a message or a streaming piece) is waiting to be polled.
    #[must_use]
    pub fn has_unread_data(&self) -> bool {
        self.unread_data > 0
    }

    /// The first run of bytes to write to the transport; report progress with
    /// [`consume_output`](Connection::consume_output).
    #[must_use]
    pub fn pending_output(&self) -> Option<&[u8]> {
        self.send.pending()
    }

    /// Every run of bytes waiting to be written, in order, for a vectored write.
    pub fn output_slices(&self) -> impl Iterator<Item = &[u8]> {
        self.send.slices()
    }

    /// The driver wrote `n` bytes of the pending output.
    pub fn consume_output(&mut self, n: usize) {
        self.send.consume(n);
    }

    /// Bytes waiting to be written.
    #[must_use]
    pub fn buffered_output(&self) -> usize {
        self.send.len()
    }

    /// What to do with the transport, if anything. Ask after draining the output.
    #[must_use]
    pub fn poll_transport(&mut self) -> Option<TransportAction> {
        match self.transport {
            Transport::CloseWhenDrained if self.send.is_empty() => {}
            Transport::CloseNow => {}
            _ => return None,
        }
        self.transport = Transport::Closed;
        self.send.discard();
        self.recv.discard();
        self.timers.stop_all();
        Some(TransportAction::Close)
    }

    /// The earliest instant at which [`handle_timeout`](Connection::handle_timeout) has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the driver should read from the transport now. False once the transport is
    /// done, while the output buffer is over [`Config::max_write_buffer`] (so a peer that sends
    /// without reading cannot make us buffer without bound), while unread messages hold more
    /// than [`Config::max_message_size`] bytes or [`MAX_QUEUED_EVENTS`] events are waiting
    /// (the application is not keeping up: a peer flooding Pings behind an unread message
    /// cannot grow the queue without bound either), while a
    /// protocol failure waits behind unread messages, and while a server waits for `accept`.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        self.transport != Transport::Closed
            && self.send.len() <= self.config.max_write_buffer
            && self.unread_bytes <= self.config.max_message_size
            && self.events.len() < MAX_QUEUED_EVENTS
            && self.deferred.is_none()
            && !matches!(self.phase, Phase::AwaitingAccept(_))
    }

    // ----- commands -----------------------------------------------------------------------

    /// Sends a complete message. In the server role a large payload is queued without a copy.
    pub fn send(&mut self, message: Message) -> Result<(), SendError<Message>> {
        if let Err(kind) = self.check_data(message.len()) {
            return Err(SendError {
                kind,
                data: message,
            });
        }
        // Text and binary alike: a large payload is queued without a copy in the server role.
        let (opcode, payload) = match &message {
            Message::Text(t) => (OpCode::Text, t.shared()),
            Message::Binary(b) => (OpCode::Binary, b),
        };
        self.send.write_frame(
            self.role,
            opcode,
            true,
            payload,
            Some(payload),
            &mut *self.rng,
        );
        Ok(())
    }

    /// Sends a text message, copying `text`.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError<Message>> {
        if let Err(kind) = self.check_data(text.len()) {
            return Err(SendError {
                kind,
                data: Message::Text(Utf8Bytes::from(String::from(text))),
            });
        }
        self.send.write_frame(
            self.role,
            OpCode::Text,
            true,
            text.as_bytes(),
            None,
            &mut *self.rng,
        );
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
        if let Err(kind) = self.check_room(data.len()) {
            return Err(SendError { kind, data });
        }
        let (opcode, mut utf8) = match &self.out_msg {
            Some(m) if m.kind != kind => {
                return Err(SendError {
                    kind: SendErrorKind::KindMismatch,
                    data,
                });
            }
            Some(m) => (OpCode::Continuation, m.utf8.clone()),
            None => (
                match kind {
                    DataKind::Text => OpCode::Text,
                    DataKind::Binary => OpCode::Binary,
                },
                Utf8Validator::new(),
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
        self.send
            .write_frame(self.role, opcode, fin, &data, Some(&data), &mut *self.rng);
        self.out_msg = (!fin).then_some(OutMessage { kind, utf8 });
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
    /// meantime are still delivered. Before the connection is open this aborts it instead.
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
                self.abort();
                return Ok(());
            }
        }
        // Only now: a refused command leaves everything, the clock included, as it was.
        let now = self.tick(now);
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
            Transport::CloseNow,
        );
    }

    /// Server role: accepts the request surfaced by [`Event::Request`], writing the 101
    /// response. Frames the client pipelined after its request are processed now.
    pub fn accept(&mut self, now: Instant, accept: Accept) -> Result<(), AcceptError> {
        let Phase::AwaitingAccept(request) = &self.phase else {
            return Err(AcceptError::NotAwaiting);
        };
        let mut head = bytes::BytesMut::new();
        crate::handshake::write_accept(request, &accept, &mut head)?;
        let now = self.tick(now);
        self.send.write_raw(&head);
        self.subprotocol = accept.subprotocol;
        self.become_open(now);
        self.on_input(now);
        Ok(())
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
        self.heartbeat.latest_rtt
    }

    /// A smoothed round-trip time (RFC 6298's 7/8 + 1/8 average over heartbeat samples).
    #[must_use]
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.heartbeat.smoothed_rtt
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

    // ----- internals ----------------------------------------------------------------------

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
        let buffered = self.send.len();
        if buffered > 0 && buffered.saturating_add(len) > self.config.max_write_buffer {
            return Err(SendErrorKind::BufferFull {
                buffered,
                limit: self.config.max_write_buffer,
            });
        }
        Ok(())
    }

    fn check_data(&self, len: usize) -> Result<(), SendErrorKind> {
        self.check_state()?;
        if self.out_msg.is_some() {
            return Err(SendErrorKind::MessageInProgress);
        }
        self.check_room(len)
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
        self.send
            .write_frame(self.role, opcode, true, &payload, None, &mut *self.rng);
        Ok(())
    }

    fn write_close(&mut self, frame: Option<&CloseFrame>) {
        let payload = frame.map(CloseFrame::encode).unwrap_or_default();
        self.send.write_frame(
            self.role,
            OpCode::Close,
            true,
            &payload,
            None,
            &mut *self.rng,
        );
        self.close_sent = true;
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
        self.phase = Phase::Open;
        self.timers.stop(Timer::Handshake);
        self.arm_open_timers(now);
        self.events.push_back(Event::Connected {
            subprotocol: self.subprotocol.clone(),
        });
    }

    /// Emits the terminal event and winds the connection down.
    fn end(&mut self, closed: Closed, transport: Transport) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        self.phase = Phase::Ended;
        self.deferred = None;
        self.events.push_back(Event::Closed(closed));
        self.recv.discard();
        self.timers.stop_all();
        self.out_msg = None;
        if self.transport != Transport::Closed {
            self.transport = transport;
        }
    }

    /// _Fail the WebSocket Connection_ (RFC 6455 §7.1.7): send Close with `code` if we have not
    /// sent one, end with the terminal event, and close the transport once the Close is written
    /// (or the close timeout passes).
    fn fail(&mut self, now: Instant, code: CloseCode, reason: String, cause: CloseCause) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
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
            Transport::CloseWhenDrained,
        );
        self.timers
            .set(Timer::Linger, now + self.config.close_timeout);
    }

    /// After a completed close handshake: the server closes the transport first; the client
    /// waits for it to, and closes it itself after the close timeout (RFC 6455 §7.1.1).
    fn finish_clean(&mut self, now: Instant, closed: Closed) {
        match self.role {
            Role::Server => self.end(closed, Transport::CloseWhenDrained),
            Role::Client => self.end(closed, Transport::Open),
        }
        self.timers
            .set(Timer::Linger, now + self.config.close_timeout);
    }

    fn reject_request(&mut self, reject: &Reject) {
        let mut head = bytes::BytesMut::new();
        crate::handshake::write_reject(reject, &mut head);
        self.send.write_raw(&head);
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
            Transport::CloseWhenDrained,
        );
        self.timers
            .set(Timer::Linger, now + self.config.close_timeout);
    }

    fn on_input(&mut self, now: Instant) {
        let now = self.tick(now);
        loop {
            match &mut self.phase {
                Phase::ClientHandshake(hs) => {
                    match self.recv.with_input(|input| hs.handle(input)) {
                        Ok(None) => return,
                        Ok(Some(response)) => {
                            self.subprotocol = response.subprotocol().map(String::from);
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
                                Transport::CloseNow,
                            );
                            return;
                        }
                    }
                }
                Phase::ServerHandshake(hs) => {
                    match self.recv.with_input(|input| hs.handle(input)) {
                        Ok(None) => return,
                        Ok(Some(request)) => {
                            let verdict = match &self.policy {
                                Some(policy) => policy.check(&request),
                                None => Ok(()),
                            };
                            match verdict {
                                Ok(()) => {
                                    self.events.push_back(Event::Request(request.clone()));
                                    self.phase = Phase::AwaitingAccept(Box::new(request));
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

    fn push_data(&mut self, event: Event) {
        if let Some(len) = data_len(&event) {
            self.unread_data += 1;
            self.unread_bytes += len;
        }
        self.events.push_back(event);
    }

    /// Applies a failure that was waiting behind unread messages.
    fn fail_deferred(&mut self) {
        if let Some(err) = self.deferred.take() {
            let reason = err.to_string();
            self.fail(
                self.now,
                err.close_code(),
                reason,
                CloseCause::Protocol(err),
            );
        }
    }

    fn on_frames(&mut self, now: Instant) {
        if self.deferred.is_some() {
            return;
        }
        // Anything from the peer shows it is alive: postpone the next heartbeat Ping.
        if let Some(hb) = self.config.heartbeat
            && matches!(self.phase, Phase::Open)
            && self.heartbeat.outstanding.is_none()
        {
            self.timers.set(Timer::Ping, now + hb.interval);
        }
        while matches!(self.phase, Phase::Open | Phase::Closing) {
            match self.recv.poll() {
                Ok(None) => break,
                Ok(Some(item)) => self.on_incoming(now, item),
                Err(err) if self.unread_data > 0 || self.answering => {
                    // Let the application see (and answer) what came before the violation.
                    self.deferred = Some(err);
                    self.timers
                        .set(Timer::Deferred, now + self.config.close_timeout);
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
        self.recv.shrink();
    }

    fn touch_idle(&mut self, now: Instant) {
        if let Some(idle) = self.config.idle_timeout
            && matches!(self.phase, Phase::Open)
        {
            self.timers.set(Timer::Idle, now + idle);
        }
    }

    fn on_incoming(&mut self, now: Instant, item: Incoming) {
        if !matches!(item, Incoming::Pong(_)) {
            self.touch_idle(now);
        }
        match item {
            Incoming::Message(message) => self.push_data(Event::Message(message)),
            Incoming::Chunk {
                kind,
                data,
                first,
                last,
            } => {
                if first {
                    self.push_data(Event::MessageStart(kind));
                }
                if !data.is_empty() {
                    self.push_data(Event::MessageChunk(data));
                }
                if last {
                    self.push_data(Event::MessageEnd);
                }
            }
            Incoming::Ping(payload) => {
                // RFC 6455 §5.5.2: answer with a Pong carrying the same payload, unless we
                // already sent Close (§5.5.1: nothing follows our Close).
                if matches!(self.phase, Phase::Open) {
                    self.send.write_frame(
                        self.role,
                        OpCode::Pong,
                        true,
                        &payload,
                        None,
                        &mut *self.rng,
                    );
                }
                if self.config.report_pings {
                    self.events.push_back(Event::Ping(payload));
                }
            }
            Incoming::Pong(payload) => self.on_pong(now, payload),
            Incoming::Close(payload) => self.on_close(now, &payload),
        }
    }

    fn on_pong(&mut self, now: Instant, payload: Bytes) {
        match self.heartbeat.outstanding {
            // RFC 6455 §5.5.3: only the Pong that echoes our Ping answers it.
            Some((sent, at)) if payload[..] == sent[..] => {
                let sample = now - at;
                self.heartbeat.latest_rtt = Some(sample);
                self.heartbeat.smoothed_rtt = Some(match self.heartbeat.smoothed_rtt {
                    Some(s) => (s * 7 + sample) / 8,
                    None => sample,
                });
                self.heartbeat.outstanding = None;
                self.timers.stop(Timer::Pong);
                if let Some(hb) = self.config.heartbeat
                    && matches!(self.phase, Phase::Open)
                {
                    self.timers.set(Timer::Ping, now + hb.interval);
                }
            }
            _ => self.events.push_back(Event::Pong(payload)),
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
                    && self.heartbeat.outstanding.is_none()
                    && let Some(hb) = self.config.heartbeat
                {
                    let mut payload = [0u8; 8];
                    self.rng.fill_bytes(&mut payload);
                    self.send.write_frame(
                        self.role,
                        OpCode::Ping,
                        true,
                        &payload,
                        None,
                        &mut *self.rng,
                    );
                    self.heartbeat.outstanding = Some((payload, now));
                    self.timers.set(Timer::Pong, now + hb.timeout);
                }
            }
            Timer::Pong => self.fail(
                now,
                CloseCode::INTERNAL_ERROR,
                "heartbeat timeout".to_string(),
                CloseCause::HeartbeatTimeout,
            ),
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
                Transport::CloseNow,
            ),
            Timer::Deferred => self.fail_deferred(),
            Timer::Linger => {
                if self.transport != Transport::Closed {
                    self.transport = Transport::CloseNow;
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
                Transport::CloseNow,
            ),
            Phase::ServerHandshake(_) | Phase::AwaitingAccept(_) => {
                // A 408 if it can still be written; the transport closes either way.
                let mut head = bytes::BytesMut::new();
                crate::handshake::write_reject(&Reject::new(408), &mut head);
                self.send.write_raw(&head);
                self.end(
                    Closed {
                        code: CloseCode::ABNORMAL,
                        reason: "opening handshake timed out".to_string(),
                        initiator: Initiator::Local,
                        clean: false,
                        cause: CloseCause::HandshakeTimeout,
                    },
                    Transport::CloseWhenDrained,
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

/// The payload length of a data event, `None` for other events.
fn data_len(event: &Event) -> Option<usize> {
    match event {
        Event::Message(m) => Some(m.len()),
        Event::MessageChunk(c) => Some(c.len()),
        Event::MessageStart(_) | Event::MessageEnd => Some(0),
        _ => None,
    }
}
