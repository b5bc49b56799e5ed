//! A reconnecting client: a driver task runs the core's reconnecting `Session`, opening a new
//! transport whenever the session asks; the handle queues messages across reconnections and
//! yields messages and connection-state changes.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tether::handshake::{ClientRequest, WsUrl};
use tether::reconnect::{
    ReconnectConfig, Session, SessionAction, SessionConfig, SessionEvent, SessionSendError,
};
use tether::{CloseCode, Message};
use tokio::io::AsyncWrite;

use crate::client::open_transport;
use crate::clock::{CoreTimer, now, os_rng};
use crate::io::{poll_read_into, poll_write_out};
use crate::{ClientConfig, Error, MaybeTlsStream};

/// Reads and writes per wake-up before yielding to other tasks.
const BUDGET: usize = 32;
/// Events held for the user before reading pauses.
const MAX_EVENTS: usize = 1024;

type Opening = Pin<Box<dyn Future<Output = Result<MaybeTlsStream, Error>> + Send>>;

struct Inner {
    session: Session,
    events: VecDeque<SessionEvent>,
    /// The driver is done: the terminal event is in `events` (or was taken).
    done: bool,
    /// The handle was dropped.
    detached: bool,
    driver_waker: Option<Waker>,
    /// The handle's `recv` or `close`, whichever waits (both take `&mut self`).
    waiter: Option<Waker>,
}

struct Shared(Mutex<Inner>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A WebSocket client that reconnects by the core's [`ReconnectConfig`] policy (backoff with
/// jitter, give up on a 401 or a 1008, ...) and keeps its outbound queue across connections.
///
/// [`send`](ReconnectingClient::send) never waits: while disconnected, messages are queued
/// (up to [`SessionConfig`]'s limits) and sent in order once connected again; see
/// [`Session`] for exactly which messages can be lost or are re-sent.
/// [`recv`](ReconnectingClient::recv) yields [`SessionEvent`]s: messages and state changes
/// (`Connected`, `Disconnected` with the reason and the retry time, `GaveUp`, `Stopped`).
///
/// Dropping the handle closes the session with 1001 (Going Away).
pub struct ReconnectingClient {
    shared: Arc<Shared>,
}

/// Starts a reconnecting client for `url` (its first attempt begins at once). TLS settings come
/// from `config`; each attempt is bounded by `config.connect_timeout` and by
/// `settings.connect_timeout`, and runs its handshake with `config.config`.
#[allow(clippy::result_large_err)] // `Error` carries `Closed` by value, as in every adapter
pub fn reconnecting(
    url: &str,
    config: ClientConfig,
    reconnect: ReconnectConfig,
    settings: SessionConfig,
) -> Result<ReconnectingClient, Error> {
    reconnecting_request(ClientRequest::new(url)?, config, reconnect, settings)
}

/// [`reconnecting`] with a prepared request (subprotocols, extra headers).
#[allow(clippy::result_large_err)] // `Error` carries `Closed` by value, as in every adapter
pub fn reconnecting_request(
    request: ClientRequest,
    config: ClientConfig,
    reconnect: ReconnectConfig,
    settings: SessionConfig,
) -> Result<ReconnectingClient, Error> {
    let url = request.url().clone();
    let mut core_config = config.config.clone();
    core_config.streaming = false;
    let session = Session::new(request, core_config, reconnect, settings, os_rng()?, now());
    let shared = Arc::new(Shared(Mutex::new(Inner {
        session,
        events: VecDeque::new(),
        done: false,
        detached: false,
        driver_waker: None,
        waiter: None,
    })));
    let mut driver = SessionDriver {
        shared: Arc::clone(&shared),
        url,
        config,
        stream: None,
        opening: None,
        timer: CoreTimer::new(),
        flush_needed: false,
        read_eof: false,
        close_started: false,
    };
    tokio::spawn(async move { poll_fn(|cx| driver.poll_drive(cx)).await });
    Ok(ReconnectingClient { shared })
}

impl ReconnectingClient {
    /// Sends `message` on the open connection, or queues it for the next one. A full queue (or
    /// a session that is closing or ended) hands it back.
    pub fn send(&self, message: Message) -> Result<(), SessionSendError> {
        let mut inner = self.shared.lock();
        let result = inner.session.send(message);
        let driver = inner.driver_waker.clone();
        drop(inner);
        if let Some(w) = driver {
            w.wake();
        }
        result
    }

    /// Sends a text message; see [`send`](ReconnectingClient::send).
    pub fn send_text(&self, text: &str) -> Result<(), SessionSendError> {
        self.send(Message::text(text.to_owned()))
    }

    /// The next message or state change; `None` after the terminal event (`GaveUp` or
    /// `Stopped`) was returned. Cancel safe.
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if let Some(event) = inner.events.pop_front() {
                let driver = (inner.events.len() + 1 == MAX_EVENTS)
                    .then(|| inner.driver_waker.clone())
                    .flatten();
                drop(inner);
                if let Some(w) = driver {
                    w.wake();
                }
                return Poll::Ready(Some(event));
            }
            if inner.done {
                return Poll::Ready(None);
            }
            inner.waiter = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Ends the session (it will not reconnect): with an open connection, runs the close
    /// handshake with `code` and `reason`. Waits until the session has ended; its last events
    /// (`Disconnected`, `Stopped`) stay readable with [`recv`](ReconnectingClient::recv).
    /// Cancel safe: the close goes on if the future is dropped.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        {
            let mut inner = self.shared.lock();
            match inner.session.close(now(), code, reason) {
                Ok(()) | Err(tether::CloseError::AlreadyClosing | tether::CloseError::Closed) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidInput, e).into()),
            }
            if let Some(w) = inner.driver_waker.clone() {
                w.wake();
            }
        }
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if inner.done {
                return Poll::Ready(Ok(()));
            }
            inner.waiter = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Whether a connection is open now.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.shared.lock().session.is_open()
    }

    /// Messages waiting in the outbound queue.
    #[must_use]
    pub fn queued_messages(&self) -> usize {
        self.shared.lock().session.queued_messages()
    }

    /// Takes the messages still queued (after the end: everything accepted and not written).
    pub fn take_unsent(&mut self) -> Vec<Message> {
        self.shared.lock().session.take_unsent()
    }
}

impl std::fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingClient")
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl Drop for ReconnectingClient {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.detached = true;
        let driver = inner.driver_waker.clone();
        drop(inner);
        if let Some(w) = driver {
            w.wake();
        }
    }
}

/// The session's loop: obey its actions (open or close a transport), write its output, read
/// into it, sleep until its next deadline, queue its events for the handle.
struct SessionDriver {
    shared: Arc<Shared>,
    url: WsUrl,
    config: ClientConfig,
    stream: Option<MaybeTlsStream>,
    opening: Option<Opening>,
    timer: CoreTimer,
    flush_needed: bool,
    read_eof: bool,
    close_started: bool,
}

impl SessionDriver {
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = Arc::clone(&self.shared);
        let mut inner = shared.lock();
        let result = self.run(cx, &mut inner);
        inner.driver_waker = Some(cx.waker().clone());
        let waiter = if inner.events.is_empty() && !inner.done {
            None
        } else {
            inner.waiter.take()
        };
        drop(inner);
        if let Some(w) = waiter {
            w.wake();
        }
        result
    }

    fn run(&mut self, cx: &mut Context<'_>, inner: &mut Inner) -> Poll<()> {
        for _ in 0..BUDGET {
            let now = now();
            let mut progress = false;
            if inner.detached && !self.close_started {
                self.close_started = true;
                let _ = inner.session.close(now, CloseCode::GOING_AWAY, "");
            }
            while let Some(action) = inner.session.poll_action() {
                progress = true;
                match action {
                    SessionAction::Connect { .. } => {
                        self.stream = None;
                        self.read_eof = false;
                        self.flush_needed = false;
                        let (url, config) = (self.url.clone(), self.config.clone());
                        self.opening = Some(Box::pin(async move {
                            tokio::time::timeout(
                                config.connect_timeout,
                                open_transport(&url, &config),
                            )
                            .await
                            .map_err(|_| Error::ConnectTimeout)?
                        }));
                    }
                    SessionAction::CloseTransport => {
                        self.opening = None;
                        self.stream = None;
                    }
                    _ => {}
                }
            }
            if let Some(opening) = self.opening.as_mut()
                && let Poll::Ready(result) = opening.as_mut().poll(cx)
            {
                self.opening = None;
                progress = true;
                match result {
                    Ok(stream) => {
                        self.stream = Some(stream);
                        inner.session.transport_connected(now);
                    }
                    Err(e) => inner.session.connect_failed(now, &e.to_string()),
                }
            }
            progress |= self.io(cx, inner, now);
            while let Some(event) = inner.session.poll_event() {
                inner.events.push_back(event);
            }
            if inner.session.is_finished() && self.opening.is_none() {
                self.stream = None;
                inner.done = true;
                return Poll::Ready(());
            }
            if let Some(at) = self.timer.due(cx, inner.session.poll_timeout(), now) {
                inner.session.handle_timeout(at);
                progress = true;
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes the session's output and reads once; returns whether anything happened.
    fn io(&mut self, cx: &mut Context<'_>, inner: &mut Inner, now: tether::Instant) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        let mut progress = false;
        while inner.session.pending_output().is_some() {
            match poll_write_out(stream, cx, inner.session.output_slices()) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    inner.session.consume_output(n);
                    self.flush_needed = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(_) => {
                    inner.session.handle_eof(now);
                    return true;
                }
                Poll::Pending => break,
            }
        }
        if self.flush_needed && inner.session.pending_output().is_none() {
            match Pin::new(&mut *stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush_needed = false,
                Poll::Ready(Err(_)) => {
                    inner.session.handle_eof(now);
                    return true;
                }
                Poll::Pending => {}
            }
        }
        if !self.read_eof && inner.session.wants_read() && inner.events.len() < MAX_EVENTS {
            match poll_read_into(stream, cx, &mut inner.session) {
                Poll::Pending => {}
                Poll::Ready(Ok(n)) if n > 0 => {
                    inner.session.handle_read(now, n);
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Poll::Ready(_) => {
                    self.read_eof = true;
                    inner.session.handle_eof(now);
                    progress = true;
                }
            }
        }
        progress
    }
}
