//! A reconnecting client: one task asks the core's reconnect [`Supervisor`] when to connect,
//! opens the transport, runs the connection the supervisor hands out with the ordinary driver,
//! and reports its end. The handle sends through the supervisor's bounded queue and reads from
//! the live connection.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tether::handshake::{ClientRequest, WsUrl};
use tether::reconnect::{
    ReconnectConfig, ReconnectEvent, SessionConfig, SessionSendError, Supervisor, SupervisorAction,
};
use tether::{CloseCode, Message};

use crate::client::open;
use crate::clock::{CoreTimer, now, os_rng};
use crate::driver::Driver;
use crate::runtime::{ClientStream, Runtime};
use crate::shared::{Incoming, Received, Shared, Wake};
use crate::{ClientConfig, Error};

/// Rounds per wake-up before yielding to other tasks.
const BUDGET: usize = 32;

type Opening<S> = Pin<Box<dyn Future<Output = Result<S, Error>> + Send>>;
/// The live connection: its driver (run inside the client's task) and its shared state.
type Live<R> = (Driver<R>, Arc<Shared>);

struct State {
    sup: Supervisor,
    /// The runtime's clock.
    now: fn() -> tether::Instant,
    /// The connection the supervisor handed out: running, or ended with messages the handle
    /// has not taken yet (the next attempt waits for those).
    conn: Option<Arc<Shared>>,
    /// The attempt that opened `conn`, and when it began.
    attempt: u32,
    attempt_started: tether::Instant,
    /// The handle was dropped.
    detached: bool,
    /// The task ended: nothing more will happen.
    done: bool,
    task_waker: Option<Waker>,
    /// The handle's `recv` or `close`, whichever waits (both take `&mut self`).
    waiter: Option<Waker>,
}

struct Client(Mutex<State>);

impl Client {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A WebSocket client that reconnects by the core's [`ReconnectConfig`] policy (backoff with
/// jitter, give up on a 401 or a 1008, ...) and keeps its outbound queue across connections.
///
/// [`send`](ReconnectingClient::send) never waits: messages go through the supervisor's queue
/// (bounded by [`SessionConfig`]'s limits) into the live connection as fast as its flow control
/// allows, and are kept while disconnected; see [`Supervisor`] for exactly which messages can
/// be lost or are re-sent. [`recv`](ReconnectingClient::recv) yields [`ReconnectEvent`]s:
/// messages and state changes. Messages received on a connection stay readable after it ended;
/// the next attempt waits until they have been taken.
///
/// Dropping the handle closes the live connection with 1001 (Going Away) and stops.
pub struct ReconnectingClient {
    client: Arc<Client>,
}

/// Starts a reconnecting client for `url` (its first attempt begins at once). TLS settings come
/// from `config`; each attempt is bounded by `config.connect_timeout` and by
/// `settings.connect_timeout`, and runs its handshake with `config.config`.
#[allow(clippy::result_large_err)] // `Error` carries `Closed` by value, as in every adapter
pub fn reconnecting<R: Runtime>(
    url: &str,
    config: ClientConfig,
    reconnect: ReconnectConfig,
    settings: SessionConfig,
) -> Result<ReconnectingClient, Error> {
    reconnecting_request::<R>(ClientRequest::new(url)?, config, reconnect, settings)
}

/// [`reconnecting`] with a prepared request (subprotocols, extra headers).
#[allow(clippy::result_large_err)] // `Error` carries `Closed` by value, as in every adapter
pub fn reconnecting_request<R: Runtime>(
    request: ClientRequest,
    config: ClientConfig,
    reconnect: ReconnectConfig,
    settings: SessionConfig,
) -> Result<ReconnectingClient, Error> {
    let url = request.url().clone();
    #[cfg(feature = "tracing")]
    let request_url = url.clone();
    let mut core_config = config.config.clone();
    core_config.streaming = false;
    let now = now::<R>();
    let sup = Supervisor::new(request, core_config, reconnect, settings, os_rng()?, now);
    let client = Arc::new(Client(Mutex::new(State {
        sup,
        now: crate::clock::now::<R>,
        conn: None,
        attempt: 0,
        attempt_started: now,
        detached: false,
        done: false,
        task_waker: None,
        waiter: None,
    })));
    let mut task = Task::<R> {
        client: Arc::clone(&client),
        url,
        config,
        opening: None,
        live: None,
        timer: CoreTimer::new(),
        detach_handled: false,
    };
    let run = async move { poll_fn(|cx| task.poll_run(cx)).await };
    #[cfg(feature = "tracing")]
    let run = tracing::Instrument::instrument(
        run,
        tracing::info_span!("reconnecting", url = %request_url),
    );
    R::spawn(run);
    Ok(ReconnectingClient { client })
}

impl ReconnectingClient {
    /// Queues `message` and moves the queue into the live connection as far as it has room.
    /// A full queue (or a client that is closing or ended) hands it back.
    pub fn send(&self, message: Message) -> Result<(), SessionSendError> {
        let mut state = self.client.lock();
        state.sup.send(message)?;
        if let Some(shared) = state.conn.clone() {
            let mut inner = shared.lock();
            if state.sup.send_queued(&mut inner.conn) > 0 {
                let driver = inner.driver_waker.clone();
                drop(inner);
                drop(state);
                if let Some(w) = driver {
                    w.wake();
                }
            }
        }
        Ok(())
    }

    /// Sends a text message; see [`send`](ReconnectingClient::send).
    pub fn send_text(&self, text: &str) -> Result<(), SessionSendError> {
        self.send(Message::text(text.to_owned()))
    }

    /// The next message or state change; `None` after the terminal event (`GaveUp` or
    /// `Stopped`) was returned. Cancel safe.
    pub async fn recv(&mut self) -> Option<ReconnectEvent> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<ReconnectEvent>> {
        let mut state = self.client.lock();
        let mut wake = Wake::default();
        let conn = state.conn.clone();
        let ended = conn
            .as_ref()
            .is_some_and(|c| c.lock().conn.closed().is_some());
        // What a connection received came before the supervisor's account of its end, and
        // the account before anything of the next connection.
        let mut event = None;
        if ended {
            event = conn.as_ref().and_then(|c| take(&state, c, &mut wake));
            // Taking from an ended connection may let the next attempt go ahead.
            if wake.driver.is_none() {
                wake.driver = state.task_waker.clone();
            }
        }
        event = event.or_else(|| state.sup.poll_event().map(ReconnectEvent::Supervisor));
        if !ended {
            event = event.or_else(|| conn.as_ref().and_then(|c| take(&state, c, &mut wake)));
        }
        let result = match event {
            Some(event) => Poll::Ready(Some(event)),
            None if state.done => Poll::Ready(None),
            None => {
                state.waiter = Some(cx.waker().clone());
                if let Some(c) = &conn {
                    c.lock().wait_readable(cx);
                }
                Poll::Pending
            }
        };
        drop(state);
        wake.run();
        result
    }

    /// Ends the client (it will not reconnect): with an open connection, runs the close
    /// handshake with `code` and `reason`. Waits until the client has ended; its last events
    /// (`Disconnected`, `Stopped`) stay readable with [`recv`](ReconnectingClient::recv).
    /// Cancel safe: the close goes on if the future is dropped.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        {
            let mut state = self.client.lock();
            if let Some(shared) = state.conn.clone() {
                shared.lock().close(code, reason)?;
            }
            let now = (state.now)();
            state.sup.close(now);
            if let Some(w) = state.task_waker.clone() {
                w.wake();
            }
        }
        poll_fn(|cx| {
            let mut state = self.client.lock();
            if state.done {
                return Poll::Ready(Ok(()));
            }
            state.waiter = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Whether a connection is open now.
    #[must_use]
    pub fn is_open(&self) -> bool {
        let state = self.client.lock();
        state.conn.as_ref().is_some_and(|c| c.lock().conn.is_open())
    }

    /// Messages waiting in the outbound queue (not counting those in the live connection).
    #[must_use]
    pub fn queued_messages(&self) -> usize {
        self.client.lock().sup.queued_messages()
    }

    /// Takes the messages still queued (after the end: everything accepted and not written).
    pub fn take_unsent(&mut self) -> Vec<Message> {
        self.client.lock().sup.take_unsent()
    }
}

/// The next item of connection `conn`, as an event.
fn take(state: &State, conn: &Shared, wake: &mut Wake) -> Option<ReconnectEvent> {
    let mut inner = conn.lock();
    Some(match inner.take_next(wake)? {
        Received::Connected(subprotocol) => ReconnectEvent::Connected {
            attempt: state.attempt,
            took: inner
                .conn
                .opened_at()
                .map_or(Duration::ZERO, |at| at - state.attempt_started),
            subprotocol,
        },
        Received::Session(s) => ReconnectEvent::Session(s),
        Received::Item(Incoming::Message(m)) => ReconnectEvent::Message(m),
        Received::Item(Incoming::Ping(p)) => ReconnectEvent::Ping(p),
        Received::Item(Incoming::Pong(p)) => ReconnectEvent::Pong(p),
    })
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
        let mut state = self.client.lock();
        state.detached = true;
        let task = state.task_waker.clone();
        drop(state);
        if let Some(w) = task {
            w.wake();
        }
    }
}

/// The client's task: obeys the supervisor, opens transports, and runs each connection with
/// the ordinary [`Driver`] until its transport is closed.
struct Task<R: Runtime> {
    client: Arc<Client>,
    url: WsUrl,
    config: ClientConfig,
    opening: Option<Opening<ClientStream<R>>>,
    live: Option<Live<R>>,
    timer: CoreTimer<R>,
    detach_handled: bool,
}

impl<R: Runtime> Task<R> {
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let client = Arc::clone(&self.client);
        for _ in 0..BUDGET {
            let now = now::<R>();
            let mut state = client.lock();
            let mut progress = false;
            match &state.task_waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => state.task_waker = Some(cx.waker().clone()),
            }
            if state.detached && !self.detach_handled {
                self.detach_handled = true;
                state.sup.close(now);
                if let Some(shared) = &state.conn {
                    let mut inner = shared.lock();
                    inner.stop_reading();
                    let _ = inner.close(CloseCode::GOING_AWAY, "");
                }
            }
            while let Some(action) = state.sup.poll_action() {
                progress = true;
                match action {
                    SupervisorAction::Connect { attempt } => {
                        state.attempt = attempt;
                        state.attempt_started = now;
                        let (url, config) = (self.url.clone(), self.config.clone());
                        self.opening =
                            Some(Box::pin(async move { open::<R>(&url, &config).await }));
                    }
                    _ => self.opening = None,
                }
            }
            if let Some(opening) = self.opening.as_mut()
                && let Poll::Ready(result) = opening.as_mut().poll(cx)
            {
                self.opening = None;
                progress = true;
                match result {
                    Ok(stream) => {
                        #[cfg(feature = "tracing")]
                        let span = {
                            let peer = format!("{}:{}", self.url.host(), self.url.port());
                            crate::trace::connection_span(tether::Role::Client, Some(&peer))
                        };
                        #[cfg(feature = "tracing")]
                        let _entered = span.enter();
                        if let Some(conn) = state.sup.transport_connected(now) {
                            let shared = Shared::new(conn, crate::clock::now::<R>);
                            let driver = Driver::new(stream, Arc::clone(&shared));
                            self.live = Some((driver, Arc::clone(&shared)));
                            state.conn = Some(shared);
                        }
                    }
                    Err(e) => state.sup.connect_failed(now, &e.to_string()),
                }
            }
            if let Some((driver, shared)) = self.live.as_mut() {
                if driver.poll_drive(cx).is_ready() {
                    state.sup.connection_ended(now, &mut shared.lock().conn);
                    self.live = None;
                    progress = true;
                } else if state.sup.send_queued(&mut shared.lock().conn) > 0 {
                    progress = true;
                }
            }
            if state.sup.is_finished() && self.opening.is_none() && self.live.is_none() {
                state.done = true;
                let waiter = state.waiter.take();
                drop(state);
                if let Some(w) = waiter {
                    w.wake();
                }
                return Poll::Ready(());
            }
            // The next attempt waits until the handle has taken what the last connection
            // received.
            let unread = state.conn.as_ref().is_some_and(|c| {
                let inner = c.lock();
                inner.conn.closed().is_some() && inner.conn.has_unread_data()
            });
            if (!unread || state.detached)
                && let Some(at) = self.timer.due(cx, state.sup.poll_timeout(), now)
            {
                state.sup.handle_timeout(at);
                progress = true;
            }
            let waiter = if progress { state.waiter.take() } else { None };
            drop(state);
            if let Some(w) = waiter {
                w.wake();
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
