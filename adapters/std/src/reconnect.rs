//! A reconnecting client on the core's [`Session`]: one thread opens transports when the session
//! asks, reads, and fires timers; sends are queued by the session across reconnects.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

use tether::handshake::ClientRequest;
use tether::reconnect::{
    ReconnectConfig, Session, SessionAction, SessionConfig, SessionEvent, SessionSendError,
};
use tether::{CloseCode, CloseError, Message};

use crate::client::{ClientConfig, open_transport};
use crate::driver::now;
use crate::stream::{MaybeTlsReader, MaybeTlsWriter, ReadHalf, SplitStream, WriteHalf};

/// Most output bytes copied out of the session per `write` call.
const WRITE_CHUNK: usize = 256 << 10;

/// How a [`ReconnectingClient`] behaves: the transport (connect timeout, TLS), the connection
/// configuration, the reconnect policy and the session's queue.
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

struct State {
    session: Session,
    writer: Option<(MaybeTlsWriter, Vec<u8>)>,
    /// A flusher holds the writer.
    busy: bool,
    /// The session asked to close the transport while the writer was busy.
    close_pending: bool,
    events: VecDeque<SessionEvent>,
    /// The manager thread has ended.
    done: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn settle(&self, st: &mut State) {
        let mut changed = false;
        while let Some(event) = st.session.poll_event() {
            st.events.push_back(event);
            changed = true;
        }
        if changed {
            self.cond.notify_all();
        }
    }

    /// Writes the session's output while the writer is free; closes it if asked meanwhile.
    fn flush<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        if st.busy {
            return st;
        }
        let Some((mut w, mut scratch)) = st.writer.take() else {
            return st;
        };
        st.busy = true;
        while st.session.pending_output().is_some() && !st.close_pending {
            scratch.clear();
            for s in st.session.output_slices() {
                let room = WRITE_CHUNK - scratch.len();
                if room == 0 {
                    break;
                }
                scratch.extend_from_slice(&s[..s.len().min(room)]);
            }
            let timeout = st
                .session
                .poll_timeout()
                .map(|t| (t - now()).max(Duration::from_millis(1)));
            drop(st);
            let _ = w.set_write_timeout(timeout);
            let result = w.write(&scratch).and_then(|n| w.flush().map(|()| n));
            st = self.lock();
            let now = now();
            match result {
                Ok(n) if n > 0 => st.session.consume_output(n),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    st.session.handle_timeout(now)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ => st.session.handle_eof(now),
            }
            self.settle(&mut st);
        }
        st.busy = false;
        if std::mem::take(&mut st.close_pending) {
            drop(st);
            let _ = w.shutdown();
            st = self.lock();
        } else {
            st.writer = Some((w, scratch));
        }
        self.cond.notify_all();
        st
    }

    /// Carries out the session's transport actions. Returns a new reader when a transport
    /// opened, and `Some(None)` when the current one must be dropped.
    fn act<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        request: &ClientRequest,
        config: &ClientConfig,
    ) -> (MutexGuard<'a, State>, Option<Option<MaybeTlsReader>>) {
        let mut change = None;
        while let Some(action) = st.session.poll_action() {
            match action {
                SessionAction::Connect { .. } => {
                    drop(st);
                    let opened = open_transport(request, config).and_then(|s| {
                        s.split(config.config.handshake_timeout)
                            .map_err(crate::Error::Io)
                    });
                    st = self.lock();
                    match opened {
                        Ok((r, w)) => {
                            st.session.transport_connected(now());
                            st.writer = Some((w, Vec::new()));
                            change = Some(Some(r));
                        }
                        Err(e) => st.session.connect_failed(now(), &e.to_string()),
                    }
                }
                SessionAction::CloseTransport => {
                    change = Some(None);
                    if st.busy {
                        st.close_pending = true;
                    } else if let Some((mut w, _)) = st.writer.take() {
                        drop(st);
                        let _ = w.shutdown();
                        st = self.lock();
                    }
                }
                _ => {}
            }
        }
        (st, change)
    }

    fn run(self: Arc<Self>, request: ClientRequest, config: ClientConfig) {
        let mut reader: Option<MaybeTlsReader> = None;
        let mut buf = vec![0u8; config.config.read_buffer_size.max(4096)];
        let mut st = self.lock();
        loop {
            let now = now();
            if st.session.poll_timeout().is_some_and(|t| t <= now) {
                st.session.handle_timeout(now);
            }
            let (g, change) = self.act(st, &request, &config);
            st = g;
            if let Some(r) = change {
                reader = r;
            }
            self.settle(&mut st);
            st = self.flush(st);
            if st.session.is_finished() && reader.is_none() {
                st.done = true;
                self.cond.notify_all();
                return;
            }
            let timeout = st
                .session
                .poll_timeout()
                .map(|t| (t - self::now()).max(Duration::from_millis(1)));
            let readable = st.session.wants_read() && !st.close_pending;
            match reader.as_mut().filter(|_| readable) {
                Some(r) => {
                    drop(st);
                    let _ = r.set_read_timeout(timeout);
                    let result = r.read(&mut buf);
                    st = self.lock();
                    let now = self::now();
                    match result {
                        Ok(0) => {
                            st.session.handle_eof(now);
                            reader = None;
                        }
                        Ok(n) => st.session.handle_data(now, &buf[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::WouldBlock
                                    | ErrorKind::TimedOut
                                    | ErrorKind::Interrupted
                            ) => {}
                        Err(_) => {
                            st.session.handle_eof(now);
                            reader = None;
                        }
                    }
                }
                None => {
                    st = match timeout {
                        Some(d) => {
                            self.cond
                                .wait_timeout(st, d)
                                .unwrap_or_else(|e| e.into_inner())
                                .0
                        }
                        None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                    };
                }
            }
        }
    }
}

/// A client that reconnects: it opens a connection for `request`, and when it drops, comes
/// back as the [`ReconnectConfig`] says (backoff with jitter; it gives up on a 401, a 1008,
/// ...). Messages sent while disconnected wait in the session's queue and go out, in order,
/// on the next connection.
///
/// Events (messages, `Connected`, `Disconnected` with the reason and the retry time, `GaveUp`,
/// `Stopped`) come from [`next_event`](ReconnectingClient::next_event). A manager thread does
/// the connecting, reading and timers, so heartbeats flow while the user is busy. Dropping the
/// client closes it with 1000.
pub struct ReconnectingClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingClient").finish_non_exhaustive()
    }
}

impl ReconnectingClient {
    /// Starts the session for a `ws://` or `wss://` URL; the first connect begins at once.
    pub fn connect(url: &str, config: ReconnectingConfig) -> Result<Self, crate::Error> {
        Self::connect_request(ClientRequest::new(url)?, config)
    }

    /// Starts the session for a request with subprotocols or extra headers.
    pub fn connect_request(
        request: ClientRequest,
        config: ReconnectingConfig,
    ) -> Result<Self, crate::Error> {
        let ReconnectingConfig {
            client,
            reconnect,
            session,
        } = config;
        let session = Session::new(
            request.clone(),
            client.config.clone(),
            reconnect,
            session,
            crate::rng(),
            now(),
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                session,
                writer: None,
                busy: false,
                close_pending: false,
                events: VecDeque::new(),
                done: false,
            }),
            cond: Condvar::new(),
        });
        let manager = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tether-reconnect".into())
            .spawn(move || manager.run(request, client))?;
        Ok(ReconnectingClient { shared })
    }

    /// Sends `message` now if connected, or queues it for the next connection. Refused when
    /// the queue is full (per `SessionConfig::overflow`) or the session ended; the error hands
    /// the message back.
    pub fn send(&self, message: Message) -> Result<(), SessionSendError> {
        let mut st = self.shared.lock();
        st.session.send(message)?;
        let st = self.shared.flush(st);
        self.shared.cond.notify_all();
        drop(st);
        Ok(())
    }

    /// Sends (or queues) a text message.
    pub fn send_text(&self, text: &str) -> Result<(), SessionSendError> {
        self.send(Message::text(text.to_owned()))
    }

    /// The next event, blocking; `None` after the terminal event (`GaveUp` or `Stopped`) was
    /// handed out.
    pub fn next_event(&self) -> Option<SessionEvent> {
        self.next_until(None).ok().flatten()
    }

    /// Like [`next_event`](ReconnectingClient::next_event), giving up after `timeout` with
    /// `Err(Error::Timeout)`.
    pub fn next_event_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<SessionEvent>, crate::Error> {
        self.next_until(StdInstant::now().checked_add(timeout))
    }

    fn next_until(&self, until: Option<StdInstant>) -> Result<Option<SessionEvent>, crate::Error> {
        let mut st = self.shared.lock();
        loop {
            if let Some(event) = st.events.pop_front() {
                return Ok(Some(event));
            }
            if st.done {
                return Ok(None);
            }
            let wait = match until {
                Some(u) => match u.checked_duration_since(StdInstant::now()) {
                    Some(d) if !d.is_zero() => Some(d),
                    _ => return Err(crate::Error::Timeout),
                },
                None => None,
            };
            st = match wait {
                Some(d) => {
                    self.shared
                        .cond
                        .wait_timeout(st, d)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.shared.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// Ends the session with `code` and `reason` (no more reconnects) and waits until its
    /// manager thread finished; the terminal event stays available from `next_event`.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) -> Result<(), crate::Error> {
        let mut st = self.shared.lock();
        match st.session.close(now(), code.into(), reason) {
            Ok(()) | Err(CloseError::AlreadyClosing) | Err(CloseError::Closed) => {}
            Err(e) => return Err(crate::Error::Close(e)),
        }
        st = self.shared.flush(st);
        self.shared.cond.notify_all();
        while !st.done {
            st = self.shared.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }

    /// Whether a connection is open now.
    pub fn is_open(&self) -> bool {
        self.shared.lock().session.is_open()
    }

    /// Messages waiting in the queue for a connection.
    pub fn queued_messages(&self) -> usize {
        self.shared.lock().session.queued_messages()
    }
}

impl Drop for ReconnectingClient {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let _ = st.session.close(now(), CloseCode::NORMAL, "");
        let st = self.shared.flush(st);
        self.shared.cond.notify_all();
        drop(st);
    }
}
