//! A reconnecting client on the core's [`Session`]: the same loop as a connection's driver,
//! one level up, where the session's outputs also include "open a new transport now".

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use async_io::Timer;
use futures_io::{AsyncRead as _, AsyncWrite as _};
use tether::handshake::{ClientRequest, WsUrl};
use tether::reconnect::{
    ReconnectConfig, Session, SessionAction, SessionConfig, SessionEvent, SessionSendError,
};
use tether::{CloseCode, Instant, Message};

use crate::Error;
use crate::client::{MaybeTlsStream, open_transport};
use crate::config::ClientConfig;
use crate::driver::{poll_write_slices, to_std};
use crate::shared::now;

/// Events queued for the user before the driver stops reading from the transport.
const MAX_EVENTS: usize = 4096;
/// Reads per poll before the driver yields to other tasks.
const READ_BUDGET: usize = 16;

/// Settings of a [`ReconnectingClient`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReconnectingConfig {
    /// The core's settings for each connection, the TLS configuration and the executor. Its
    /// `connect_timeout` is not used: [`SessionConfig::connect_timeout`] bounds each attempt.
    pub client: ClientConfig,
    /// When to retry: the backoff schedule and which ends are worth retrying.
    pub reconnect: ReconnectConfig,
    /// The outbound queue and the messages sent first on every connection.
    pub session: SessionConfig,
}

struct State {
    session: Session,
    events: VecDeque<SessionEvent>,
    /// The terminal event (`Stopped` or `GaveUp`) was handed to the user.
    ended: bool,
    /// The driver has finished.
    done: bool,
    handles: usize,
    driver: Option<Waker>,
    reader: Option<Waker>,
}

type SharedState = Arc<Mutex<State>>;

fn lock(shared: &SharedState) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// A client that reconnects: it opens a connection, and when the connection is lost it
/// comes back after the policy's backoff, for as long as the policy says the end is worth
/// retrying. Messages sent while it is disconnected wait in the session's queue (bounded,
/// see [`SessionConfig`]) and go out, in order, on the next connection; messages whose
/// frames were not entirely written when a transport died are sent again.
///
/// [`next_event`](Self::next_event) yields the messages and the state changes:
/// [`SessionEvent::Connected`], [`SessionEvent::Disconnected`] (with the reason and the time
/// of the next attempt), and finally [`SessionEvent::Stopped`] or [`SessionEvent::GaveUp`].
///
/// A background task (on smol's global executor, or the one in [`ClientConfig::executor`])
/// drives the session, so replies and heartbeats flow while the user is busy. Dropping the
/// client closes the session with 1000.
#[derive(Debug)]
pub struct ReconnectingClient {
    shared: SharedState,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("session", &self.session)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ReconnectingClient {
    /// Starts a session for `url` (`ws://` or `wss://`); the first attempt begins at once.
    pub fn connect(url: &str, config: ReconnectingConfig) -> Result<ReconnectingClient, Error> {
        Ok(ReconnectingClient::new(ClientRequest::new(url)?, config))
    }

    /// Starts a session for `request` (its URL, subprotocols and header fields are sent on
    /// every attempt); the first attempt begins at once.
    #[must_use]
    pub fn new(request: ClientRequest, config: ReconnectingConfig) -> ReconnectingClient {
        let ReconnectingConfig {
            client,
            reconnect,
            session,
        } = config;
        let url = request.url().clone();
        let mut core_config = client.config.clone();
        core_config.streaming = false;
        let rng: rand::rngs::StdRng = rand::make_rng();
        let session = Session::new(request, core_config, reconnect, session, rng, now());
        let shared = Arc::new(Mutex::new(State {
            session,
            events: VecDeque::new(),
            ended: false,
            done: false,
            handles: 1,
            driver: None,
            reader: None,
        }));
        let driver = SessionDriver {
            shared: shared.clone(),
            url,
            spawner: client.spawner.clone(),
            client,
            opening: None,
            stream: None,
            timer: Timer::never(),
            armed: None,
            needs_flush: false,
        };
        driver.spawner.clone().spawn(driver);
        ReconnectingClient { shared }
    }

    /// Sends `message` on the open connection, or queues it for the next one. Refused, with
    /// the message handed back, when the queue is full (as [`SessionConfig::overflow`] says)
    /// or once the session is closing or over. Never waits.
    pub fn send(&self, message: Message) -> Result<(), SessionSendError> {
        let mut st = lock(&self.shared);
        st.session.send(message)?;
        let driver = st.driver.take();
        drop(st);
        wake(driver);
        Ok(())
    }

    /// Sends a text message (see [`send`](Self::send)).
    pub fn send_text(&self, text: &str) -> Result<(), SessionSendError> {
        self.send(Message::text(text.to_owned()))
    }

    /// The next message or state change; `None` once the terminal event (`Stopped` or
    /// `GaveUp`) has been returned. Call it from one task at a time.
    ///
    /// Cancel safe: an event is taken only when the future completes.
    pub async fn next_event(&self) -> Option<SessionEvent> {
        poll_fn(|cx| {
            let mut st = lock(&self.shared);
            if let Some(event) = st.events.pop_front() {
                if matches!(
                    event,
                    SessionEvent::Stopped { .. } | SessionEvent::GaveUp { .. }
                ) {
                    st.ended = true;
                }
                // The driver may have paused reading on a full queue.
                let driver = st.driver.take();
                drop(st);
                wake(driver);
                return Poll::Ready(Some(event));
            }
            if st.ended || st.done {
                return Poll::Ready(None);
            }
            match &st.reader {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.reader = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Ends the session: closes the open connection with `code` and `reason` (or stops
    /// connecting) and does not reconnect. Events continue until [`SessionEvent::Stopped`];
    /// unsent messages can be taken back with [`take_unsent`](Self::take_unsent).
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let mut st = lock(&self.shared);
        st.session
            .close(now(), code, reason)
            .map_err(Error::Close)?;
        let driver = st.driver.take();
        drop(st);
        wake(driver);
        Ok(())
    }

    /// Takes the messages still queued, oldest first (after the end: everything accepted and
    /// not written).
    pub fn take_unsent(&self) -> Vec<Message> {
        lock(&self.shared).session.take_unsent()
    }

    /// Whether a connection is open now.
    #[must_use]
    pub fn is_open(&self) -> bool {
        lock(&self.shared).session.is_open()
    }

    /// Messages waiting in the queue.
    #[must_use]
    pub fn queued_messages(&self) -> usize {
        lock(&self.shared).session.queued_messages()
    }
}

impl Drop for ReconnectingClient {
    fn drop(&mut self) {
        let mut st = lock(&self.shared);
        st.handles -= 1;
        st.events.clear();
        let _ = st.session.close(now(), CloseCode::NORMAL, "");
        let driver = st.driver.take();
        drop(st);
        wake(driver);
    }
}

type Opening = Pin<Box<dyn Future<Output = Result<MaybeTlsStream, Error>> + Send>>;

/// The session's driver: opens transports when asked, and otherwise is a connection driver.
struct SessionDriver {
    shared: SharedState,
    url: WsUrl,
    client: ClientConfig,
    spawner: crate::config::Spawner,
    opening: Option<Opening>,
    stream: Option<MaybeTlsStream>,
    timer: Timer,
    armed: Option<Instant>,
    needs_flush: bool,
}

impl Future for SessionDriver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let shared = this.shared.clone();
        let mut st = lock(&shared);
        let mut reads = 0;
        let mut wake_reader = false;
        let result = loop {
            // 1. Transport actions: open a new one, or close the current one.
            while let Some(action) = st.session.poll_action() {
                match action {
                    SessionAction::Connect { .. } => {
                        this.stream = None;
                        this.needs_flush = false;
                        let url = this.url.clone();
                        let client = this.client.clone();
                        this.opening = Some(Box::pin(open_transport(url, client)));
                    }
                    SessionAction::CloseTransport => {
                        this.opening = None;
                        this.stream = None;
                    }
                    _ => {}
                }
            }
            if let Some(opening) = &mut this.opening
                && let Poll::Ready(outcome) = opening.as_mut().poll(cx)
            {
                this.opening = None;
                match outcome {
                    Ok(stream) => {
                        this.stream = Some(stream);
                        st.session.transport_connected(now());
                    }
                    Err(e) => st.session.connect_failed(now(), &e.to_string()),
                }
                continue;
            }
            // 2. Write what the session queued.
            if let Some(stream) = &mut this.stream {
                let mut failed = false;
                while st.session.output_slices().next().is_some() {
                    match poll_write_slices(stream, cx, st.session.output_slices()) {
                        Poll::Ready(Ok(0)) => failed = true,
                        Poll::Ready(Ok(n)) => {
                            st.session.consume_output(n);
                            this.needs_flush = true;
                            continue;
                        }
                        Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => continue,
                        Poll::Ready(Err(_)) => failed = true,
                        Poll::Pending => {}
                    }
                    break;
                }
                if !failed && this.needs_flush && st.session.output_slices().next().is_none() {
                    match Pin::new(&mut *stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => this.needs_flush = false,
                        Poll::Ready(Err(_)) => failed = true,
                        Poll::Pending => {}
                    }
                }
                if failed {
                    st.session.handle_eof(now());
                    continue;
                }
            }
            // 3. Events to the user.
            while let Some(event) = st.session.poll_event() {
                if st.handles > 0 {
                    st.events.push_back(event);
                    wake_reader = true;
                }
            }
            if st.session.is_finished() && this.stream.is_none() && this.opening.is_none() {
                st.done = true;
                wake_reader = true;
                break Poll::Ready(());
            }
            // 4. Read, unless the session or the user's queue is full.
            if let Some(stream) = &mut this.stream
                && st.session.wants_read()
                && st.events.len() < MAX_EVENTS
            {
                if reads == READ_BUDGET {
                    cx.waker().wake_by_ref();
                    break Poll::Pending;
                }
                match Pin::new(stream).poll_read(cx, st.session.read_buf()) {
                    Poll::Ready(Ok(0)) => {
                        st.session.handle_eof(now());
                        continue;
                    }
                    Poll::Ready(Ok(n)) => {
                        reads += 1;
                        st.session.handle_read(now(), n);
                        continue;
                    }
                    Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => continue,
                    Poll::Ready(Err(_)) => {
                        st.session.handle_eof(now());
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            // 5. Sleep until the next deadline (connection timers, backoff, connect timeout).
            let deadline = st.session.poll_timeout();
            if deadline != this.armed {
                this.armed = deadline;
                match deadline {
                    Some(at) => this.timer.set_at(to_std(at)),
                    None => this.timer = Timer::never(),
                }
            }
            if deadline.is_some() && Pin::new(&mut this.timer).poll(cx).is_ready() {
                this.armed = None;
                st.session.handle_timeout(now());
                continue;
            }
            match &st.driver {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => st.driver = Some(cx.waker().clone()),
            }
            break Poll::Pending;
        };
        let reader = if wake_reader { st.reader.take() } else { None };
        drop(st);
        wake(reader);
        result
    }
}

impl Drop for SessionDriver {
    /// A driver dropped before the session ended (its executor went away) lets the reader
    /// see the end instead of waiting forever.
    fn drop(&mut self) {
        let mut st = lock(&self.shared);
        st.done = true;
        let reader = st.reader.take();
        drop(st);
        wake(reader);
    }
}
