//! A reconnecting client on the core's [`Supervisor`]: one task asks the supervisor when to
//! connect, opens the transport and runs the connection it hands out with the ordinary
//! connection driver. The user reads from that connection and sends into it through the
//! supervisor's bounded queue.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use async_io::Timer;
use futures_lite::FutureExt;
use tether::close::MAX_REASON_LEN;
use tether::handshake::{ClientRequest, WsUrl};
use tether::reconnect::{
    ReconnectConfig, ReconnectEvent, SessionConfig, SessionSendError, Supervisor, SupervisorAction,
};
use tether::{CloseCode, CloseError, Data, Event, Instant, Message};

use crate::Error;
use crate::client::open_transport;
use crate::config::ClientConfig;
use crate::driver::{Driver, to_std};
use crate::shared::{Shared, SharedRef, close_or_abort, lock as lock_conn, now, set};

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

/// The connection the user reads from.
#[derive(Debug)]
struct Live {
    shared: SharedRef,
    attempt: u32,
    started: Instant,
    /// Its transport is finished and the supervisor was told: what it received is the last
    /// thing the user gets from it.
    ended: bool,
}

#[derive(Debug)]
struct State {
    supervisor: Supervisor,
    /// The current connection, or the previous one until the user has taken what it received
    /// (the next attempt waits for that).
    live: Option<Live>,
    /// The terminal event was handed to the user.
    ended: bool,
    /// The task has finished.
    done: bool,
    task: Option<Waker>,
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
/// retrying. Messages sent while it is disconnected wait in the supervisor's queue (bounded,
/// see [`SessionConfig`]) and go out, in order, on the next connection; messages whose
/// frames were not entirely written when a transport died are sent again.
///
/// [`next_event`](Self::next_event) yields the messages and the state changes:
/// [`ReconnectEvent::Connected`], [`SupervisorEvent::Disconnected`](tether::reconnect::SupervisorEvent::Disconnected) (with the reason and the
/// time of the next attempt), and finally [`SupervisorEvent::Stopped`](tether::reconnect::SupervisorEvent::Stopped) or
/// [`SupervisorEvent::GaveUp`](tether::reconnect::SupervisorEvent::GaveUp). Received messages stay in the connection until it is called:
/// a user who does not read slows the server down (the core's flow control), and after a
/// disconnection the next attempt waits until the user has taken the messages the lost
/// connection received (its Pings and Pongs not taken by then are dropped).
///
/// A background task (on smol's global executor, or the one in [`ClientConfig::executor`])
/// drives the connections, so replies and heartbeats flow while the user is busy. Dropping
/// the client closes the connection with 1000.
#[derive(Debug)]
pub struct ReconnectingClient {
    shared: SharedState,
}

impl ReconnectingClient {
    /// Starts a client for `url` (`ws://` or `wss://`); the first attempt begins at once.
    pub fn connect(url: &str, config: ReconnectingConfig) -> Result<ReconnectingClient, Error> {
        Ok(ReconnectingClient::new(ClientRequest::new(url)?, config))
    }

    /// Starts a client for `request` (its URL, subprotocols and header fields are sent on
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
        let supervisor = Supervisor::new(request, core_config, reconnect, session, rng, now());
        let shared = Arc::new(Mutex::new(State {
            supervisor,
            live: None,
            ended: false,
            done: false,
            task: None,
            reader: None,
        }));
        let task = supervise(TaskGuard(shared.clone()), url, client.clone());
        client.spawner.spawn(task);
        ReconnectingClient { shared }
    }

    /// Sends `message` on the open connection, or queues it for the next one. Refused, with
    /// the message handed back, when the queue is full (as [`SessionConfig::overflow`] says)
    /// or once the client is closing or over. Never waits.
    pub fn send(&self, message: Message) -> Result<(), SessionSendError> {
        let mut st = lock(&self.shared);
        let queued = st.supervisor.queued_messages();
        st.supervisor.send(message)?;
        // With `Overflow::DropOldest`, a full queue reports what it dropped.
        let dropped = st.supervisor.queued_messages() <= queued;
        if let Some(live) = st.live.as_ref().filter(|l| !l.ended) {
            let conn = live.shared.clone();
            let mut cs = lock_conn(&conn);
            let before = cs.driver_view();
            st.supervisor.send_queued(&mut cs.conn);
            let wake = cs.wake_driver_if_changed(&before);
            drop(cs);
            wake.run();
        }
        let reader = if dropped { st.reader.take() } else { None };
        drop(st);
        wake(reader);
        Ok(())
    }

    /// Sends a text message (see [`send`](Self::send)).
    pub fn send_text(&self, text: &str) -> Result<(), SessionSendError> {
        self.send(Message::text(text.to_owned()))
    }

    /// The next message or state change; `None` once the terminal event
    /// ([`SupervisorEvent::Stopped`](tether::reconnect::SupervisorEvent::Stopped) or [`SupervisorEvent::GaveUp`](tether::reconnect::SupervisorEvent::GaveUp)) has been returned. Call
    /// it from one task at a time.
    ///
    /// Cancel safe: an event is taken only when the future completes.
    pub async fn next_event(&self) -> Option<ReconnectEvent> {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    fn poll_next_event(&self, cx: &mut Context<'_>) -> Poll<Option<ReconnectEvent>> {
        let mut st = lock(&self.shared);
        loop {
            if st.ended {
                return Poll::Ready(None);
            }
            // The supervisor's news first, unless it follows the end of a connection whose
            // data the user has not taken yet.
            if !st.live.as_ref().is_some_and(|l| l.ended)
                && let Some(event) = st.supervisor.poll_event()
            {
                st.ended = event.is_terminal();
                return Poll::Ready(Some(ReconnectEvent::Supervisor(event)));
            }
            let Some(live) = &st.live else {
                if st.done {
                    return Poll::Ready(None);
                }
                set(&mut st.reader, cx.waker());
                return Poll::Pending;
            };
            let conn = live.shared.clone();
            let mut cs = lock_conn(&conn);
            let before = cs.driver_view();
            if let Some(event) = next_from(&mut cs, live) {
                let wake = cs.wake_driver_if_changed(&before);
                drop(cs);
                drop(st);
                wake.run();
                return Poll::Ready(Some(event));
            }
            let driver = cs.wake_driver_if_changed(&before);
            if live.ended || st.done {
                // Everything it received was taken: on to the supervisor's news, and the
                // next attempt may start.
                drop(cs);
                driver.run();
                st.live = None;
                wake(st.task.take());
                continue;
            }
            cs.set_reader(cx.waker());
            drop(cs);
            driver.run();
            set(&mut st.reader, cx.waker());
            return Poll::Pending;
        }
    }

    /// Ends the client: closes the open connection with `code` and `reason` (or stops
    /// connecting) and does not reconnect. Events continue until
    /// [`SupervisorEvent::Stopped`](tether::reconnect::SupervisorEvent::Stopped); unsent messages can be taken back with
    /// [`take_unsent`](Self::take_unsent).
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if !code.is_sendable() {
            return Err(Error::Close(CloseError::InvalidCode(code.0)));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(Error::Close(CloseError::ReasonTooLong(reason.len())));
        }
        self.stop(code, reason, false);
        Ok(())
    }

    /// Closes the supervisor and the live connection; with `discard`, nobody will read it.
    fn stop(&self, code: CloseCode, reason: &str, discard: bool) {
        let mut st = lock(&self.shared);
        st.supervisor.close(now());
        if let Some(live) = &st.live {
            let mut cs = lock_conn(&live.shared);
            close_or_abort(&mut cs.conn, code, reason);
            let wake = if discard {
                cs.discard_incoming()
            } else {
                cs.wake_driver()
            };
            drop(cs);
            wake.run();
        }
        if discard {
            st.live = None;
        }
        let (task, reader) = (st.task.take(), st.reader.take());
        drop(st);
        wake(task);
        wake(reader);
    }

    /// Takes the messages still queued, oldest first (after the end: everything accepted and
    /// not written).
    pub fn take_unsent(&self) -> Vec<Message> {
        lock(&self.shared).supervisor.take_unsent()
    }

    /// Whether a connection is open now.
    #[must_use]
    pub fn is_open(&self) -> bool {
        let st = lock(&self.shared);
        st.live
            .as_ref()
            .is_some_and(|l| lock_conn(&l.shared).conn.is_open())
    }

    /// Messages waiting in the queue.
    #[must_use]
    pub fn queued_messages(&self) -> usize {
        lock(&self.shared).supervisor.queued_messages()
    }
}

/// The next item of the connection for the user: its events, then its data.
fn next_from(cs: &mut Shared, live: &Live) -> Option<ReconnectEvent> {
    while let Some(event) = cs.conn.poll_event() {
        match event {
            Event::Connected { subprotocol } => {
                let opened = cs.conn.opened_at().unwrap_or(live.started);
                return Some(ReconnectEvent::Connected {
                    attempt: live.attempt,
                    took: opened.saturating_duration_since(live.started),
                    subprotocol,
                });
            }
            Event::Ping(p) => return Some(ReconnectEvent::Ping(p)),
            Event::Pong(p) => return Some(ReconnectEvent::Pong(p)),
            // The end is told by the supervisor's `Disconnected`.
            _ => {}
        }
    }
    while let Some(data) = cs.conn.read() {
        if let Data::Message(message) = data {
            return Some(ReconnectEvent::Message(message));
        }
    }
    None
}

impl Drop for ReconnectingClient {
    fn drop(&mut self) {
        self.stop(CloseCode::NORMAL, "", true);
    }
}

/// The task's hold on the state: when the task ends (or its executor drops it), the reader
/// learns it.
struct TaskGuard(SharedState);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let mut st = lock(&self.0);
        st.done = true;
        let reader = st.reader.take();
        drop(st);
        wake(reader);
    }
}

/// The supervisor's task: connects when asked, runs each connection with the ordinary driver,
/// reports its end.
async fn supervise(client: TaskGuard, url: WsUrl, config: ClientConfig) {
    let client = &client.0;
    let mut timer = SupervisorTimer::default();
    while let Some(action) = poll_fn(|cx| timer.poll_action(client, cx)).await {
        let SupervisorAction::Connect { attempt } = action else {
            continue;
        };
        let started = now();
        // Any action while connecting abandons the attempt (the connect timeout, a close).
        let opened = async { Some(open_transport(url.clone(), config.clone()).await) }
            .or(async {
                poll_fn(|cx| timer.poll_action(client, cx)).await;
                None
            })
            .await;
        let stream = match opened {
            None => continue,
            Some(Err(e)) => {
                let mut st = lock(client);
                st.supervisor.connect_failed(now(), &e.to_string());
                let reader = st.reader.take();
                drop(st);
                wake(reader);
                continue;
            }
            Some(Ok(stream)) => stream,
        };
        let shared = {
            let mut st = lock(client);
            let Some(conn) = st.supervisor.transport_connected(now()) else {
                continue;
            };
            let shared = Shared::new(conn);
            st.live = Some(Live {
                shared: shared.clone(),
                attempt,
                started,
                ended: false,
            });
            // The user may wait for it.
            wake(st.reader.take());
            shared
        };
        Driver::new(shared.clone(), stream, None)
            .or(feed(client, &shared))
            .await;
        {
            let mut st = lock(client);
            let mut cs = lock_conn(&shared);
            st.supervisor.connection_ended(now(), &mut cs.conn);
            let taken = cs.unread || !cs.conn.has_unread_data();
            drop(cs);
            match &mut st.live {
                Some(live) if !taken && Arc::ptr_eq(&live.shared, &shared) => live.ended = true,
                _ => st.live = None,
            }
            let reader = st.reader.take();
            drop(st);
            wake(reader);
        }
        // The next attempt waits until the user has taken what this connection received.
        poll_fn(|cx| {
            let mut st = lock(client);
            if st.live.is_none() {
                return Poll::Ready(());
            }
            set(&mut st.task, cx.waker());
            Poll::Pending
        })
        .await;
    }
}

/// Moves the supervisor's queue into the connection as its output drains (the driver wakes
/// the writer's slot after every write); never completes.
async fn feed(client: &SharedState, conn: &SharedRef) {
    poll_fn(|cx| {
        let mut st = lock(client);
        let mut cs = lock_conn(conn);
        let before = cs.driver_view();
        st.supervisor.send_queued(&mut cs.conn);
        cs.set_writer(cx.waker());
        let wake = cs.wake_driver_if_changed(&before);
        drop(cs);
        drop(st);
        wake.run();
        Poll::<()>::Pending
    })
    .await;
}

/// The supervisor's deadline (connect timeout, backoff) as a timer, reset only when it moves.
#[derive(Default)]
struct SupervisorTimer {
    timer: Option<Timer>,
    armed: Option<Instant>,
}

impl SupervisorTimer {
    /// The supervisor's next action; `None` once it has ended.
    fn poll_action(
        &mut self,
        client: &SharedState,
        cx: &mut Context<'_>,
    ) -> Poll<Option<SupervisorAction>> {
        let mut st = lock(client);
        let mut news = false;
        let poll = loop {
            if let Some(action) = st.supervisor.poll_action() {
                break Poll::Ready(Some(action));
            }
            if st.supervisor.is_finished() {
                break Poll::Ready(None);
            }
            let deadline = st.supervisor.poll_timeout();
            if deadline != self.armed {
                self.armed = deadline;
                self.timer = deadline.map(|at| Timer::at(to_std(at)));
            }
            if let Some(timer) = &mut self.timer
                && Pin::new(timer).poll(cx).is_ready()
            {
                self.armed = None;
                self.timer = None;
                st.supervisor.handle_timeout(now());
                news = true;
                continue;
            }
            set(&mut st.task, cx.waker());
            break Poll::Pending;
        };
        // The supervisor may have news for the user (a timeout, the end).
        let reader = if news || poll.is_ready() {
            st.reader.take()
        } else {
            None
        };
        drop(st);
        wake(reader);
        poll
    }
}
