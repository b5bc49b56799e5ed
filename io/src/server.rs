//! The server side: [`accept`] over an accepted transport, and a [`Server`] listener with its
//! limits: a connection limit (503 with `Retry-After` beyond it, at bounded cost), back-off
//! when the process runs out of file descriptors, and the handshake timeout of the core.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Poll;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use bytes::BytesMut;
use tether::handshake::{Accept, Reject, Request, write_reject};
use tether::{CloseCode, Config, Connection};

use crate::clock::{now, timeout};
use crate::driver::{Driver, Together};
use crate::runtime::{Listener, Runtime, Transport};
use crate::shared::Shared;
use crate::{Error, ServerConfig, WebSocket};

/// How long a refused connection (over the limit) may take to receive its 503.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long accepting pauses when the process or the system is out of file descriptors or
/// memory: retrying at once would spin, and closing connections is what frees them.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Runs the opening handshake on an accepted transport (plain TCP, TLS, anything), applying
/// the policy and selecting the first subprotocol of the policy's list that the client
/// offered. The handshake is bounded by `Config::handshake_timeout`. A refused request ends
/// in [`Error::Rejected`] after the refusal was written.
///
/// Cancel safety: dropping the future drops the transport.
pub fn accept<R: Runtime, T: Transport>(
    stream: T,
    config: ServerConfig,
) -> impl Future<Output = Result<WebSocket, Error>> {
    let policy = config.policy.clone();
    accept_with::<R, T, _>(
        stream,
        config,
        move |request| Ok(policy.accept_for(request)),
    )
}

/// Like [`accept`], with the decision made by `decide` (after the policy's Origin and
/// authentication checks passed): it sees the request and accepts (choosing the subprotocol,
/// extra headers) or rejects it.
pub fn accept_with<R, T, F>(
    stream: T,
    config: ServerConfig,
    decide: F,
) -> impl Future<Output = Result<WebSocket, Error>>
where
    R: Runtime,
    T: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    accept_guarded::<R, T, F>(stream, Arc::new(Settings::new(config)), decide, None)
}

/// Runs TLS (rustls) and then the opening handshake on an accepted transport, both within
/// `Config::handshake_timeout`: for servers that terminate TLS themselves.
#[cfg(feature = "rustls")]
pub fn accept_tls<R: Runtime, T: Transport>(
    stream: T,
    tls: Arc<rustls::ServerConfig>,
    config: ServerConfig,
) -> impl Future<Output = Result<WebSocket, Error>> {
    Box::pin(async move {
        let limit = config.config.handshake_timeout;
        let tls = timeout::<R, _>(limit, crate::tls::accept(stream, tls))
            .await
            .ok_or(Error::HandshakeTimeout { waited: limit })??;
        accept::<R, _>(tls, config).await
    })
}

/// The handshake, then a driver task for the open connection.
fn accept_guarded<R, T, F>(
    stream: T,
    config: Arc<Settings>,
    decide: F,
    guard: Option<Slot>,
) -> impl Future<Output = Result<WebSocket, Error>>
where
    R: Runtime,
    T: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let open = open_guarded::<R, T, F>(stream, config, decide, guard);
    async move {
        let (socket, driver) = open.await?;
        driver.spawn();
        Ok(socket)
    }
}

/// An open connection's handle and the driver that must run from now on.
type Opened<R> = Result<(WebSocket, Driver<R>), Error>;

/// The handshake as one boxed future: whoever awaits it (often a connection's whole task)
/// holds a pointer while it runs, not its state for the rest of its life. The driver it
/// returns must run from then on.
fn open_guarded<R, T, F>(
    stream: T,
    config: Arc<Settings>,
    decide: F,
    guard: Option<Slot>,
) -> Pin<Box<impl Future<Output = Opened<R>>>>
where
    R: Runtime,
    T: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    Box::pin(async move {
        // A server draws randomness only for its heartbeat payloads: the OS generator, which
        // takes no memory per connection (a client masks every frame and keeps a fast one).
        let rng = tether::rand_core::UnwrapErr(rand::rngs::SysRng);
        let conn = Connection::server(
            Arc::clone(&config.core),
            config.policy.clone(),
            rng,
            now::<R>(),
        );
        let sessions = config.sessions.clone();
        let side = crate::handshake::ServerSide {
            hook: config.request_hook.clone(),
            keep_request: config.keep_request,
        };
        let drive =
            crate::handshake::drive::<R, T, F>(stream, conn, Some(decide), side, guard, sessions);
        let (socket, _, driver) = drive.await?;
        Ok((socket, driver))
    })
}

/// A server's settings as its connections use them: the core's configuration is prepared
/// once and shared by every connection (the core holds it behind an `Arc`), not copied into
/// each.
struct Settings {
    server: ServerConfig,
    core: Arc<Config>,
    /// `tether-resume`: the server's sessions, when resumption is on.
    sessions: Option<Arc<crate::SessionRegistry>>,
}

impl Settings {
    fn new(server: ServerConfig) -> Settings {
        let mut core = server.config.clone();
        // The engine hands whole messages to the application.
        core.streaming = false;
        let mut server = server;
        if server.request_hook.is_some() {
            // The hook answers plain HTTP requests too (a health check on the same port).
            server.policy = server.policy.pass_http_requests(true);
        }
        let sessions = core
            .resume
            .map(|_| server.sessions.clone().unwrap_or_default());
        Settings {
            core: Arc::new(core),
            sessions,
            server,
        }
    }
}

impl std::ops::Deref for Settings {
    type Target = ServerConfig;

    fn deref(&self) -> &ServerConfig {
        &self.server
    }
}

/// A TCP listener that upgrades connections, with an optional connection limit.
///
/// Over the limit, connections are answered `503 Service Unavailable` with `Retry-After` in
/// the background (at most `ServerConfig::max_refusals` at once; beyond that they are closed
/// without an answer). When the process runs out of file descriptors (`EMFILE`, `ENFILE`) or
/// memory, accepting pauses briefly instead of spinning; errors that concern one connection
/// (reset before it was accepted) are skipped.
pub struct Server<R: Runtime> {
    /// `None` once [`shutdown`](Server::shutdown) closed it.
    listener: Mutex<Option<R::Listener>>,
    /// The address, kept for after the listener is closed.
    local_addr: io::Result<SocketAddr>,
    /// Shared with every [`Connecting`]: a connection waiting for its handshake holds a
    /// pointer, not a copy.
    config: Arc<Settings>,
    active: Arc<AtomicUsize>,
    refusing: Arc<AtomicUsize>,
    /// The connections, for a graceful shutdown.
    tracker: Arc<Tracker>,
}

impl<R: Runtime> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr().ok())
            .field("active", &self.active_connections())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Server<R> {
    /// Binds a listener on `addr`.
    pub async fn bind(
        addr: impl std::net::ToSocketAddrs,
        config: ServerConfig,
    ) -> io::Result<Server<R>> {
        let listener = std::net::TcpListener::bind(addr)?;
        Server::from_std(listener, config)
    }

    /// Serves on a bound std listener.
    pub fn from_std(
        listener: std::net::TcpListener,
        config: ServerConfig,
    ) -> io::Result<Server<R>> {
        listener.set_nonblocking(true)?;
        Ok(Server::from_listener(R::listener(listener)?, config))
    }

    /// Serves on an existing listener of the runtime.
    #[must_use]
    pub fn from_listener(listener: R::Listener, config: ServerConfig) -> Server<R> {
        Server {
            local_addr: listener.local_addr(),
            listener: Mutex::new(Some(listener)),
            config: Arc::new(Settings::new(config)),
            active: Arc::new(AtomicUsize::new(0)),
            refusing: Arc::new(AtomicUsize::new(0)),
            tracker: Arc::default(),
        }
    }

    /// The address the listener is (or was) bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.local_addr {
            Ok(addr) => Ok(*addr),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }

    /// Whether [`shutdown`](Server::shutdown) was called: [`accept`](Server::accept) fails
    /// from then on.
    #[must_use]
    pub fn is_shut_down(&self) -> bool {
        self.tracker.shutting_down.load(Ordering::Acquire)
    }

    /// Shuts the server down gracefully: stops accepting (the listening socket is closed, so
    /// new clients are refused by the system and a pending [`accept`](Server::accept)
    /// returns an error), starts the close handshake with 1001 (Going Away) on every open
    /// connection (a connection still in its opening handshake is dropped), waits until
    /// they have all ended or `grace` has passed, then resets those left (`SO_LINGER` 0).
    /// A connection accepted but not yet handshaking is dropped when its handshake starts.
    /// Calling it again does the same for what is left.
    pub async fn shutdown(&self, grace: Duration) -> Shutdown {
        self.tracker.shutting_down.store(true, Ordering::Release);
        drop(lock(&self.listener).take());
        self.tracker.accepting.wake();
        let open = self.tracker.each(|inner| {
            let _ = inner.close(CloseCode::GOING_AWAY, "server shutting down");
        });
        let active = &self.active;
        let drained = poll_fn(|cx| {
            self.tracker.idle.register(cx.waker());
            if active.load(Ordering::Acquire) == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let closed_in_time = timeout::<R, _>(grace, drained).await.is_some();
        let reset = if closed_in_time {
            0
        } else {
            self.tracker.each(|inner| inner.conn.abort())
        };
        Shutdown {
            connections: open,
            reset,
        }
    }

    /// Connections that hold a slot now: handshaking or open, until their transport closes.
    #[must_use]
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Waits for the next TCP connection within the limit. Run the handshake with
    /// [`Connecting::handshake`], typically in a task of its own so a slow client does not
    /// hold up the others. An error is one the listener cannot recover from. Cancel safe.
    pub async fn accept(&self) -> io::Result<Connecting<R>> {
        loop {
            let accepted = poll_fn(|cx| {
                self.tracker.accepting.register(cx.waker());
                match &*lock(&self.listener) {
                    Some(listener) => listener.poll_accept(cx),
                    None => Poll::Ready(Err(shut_down())),
                }
            });
            let (stream, peer) = match accepted.await {
                Ok(accepted) => accepted,
                Err(e) => match accept_error(&e) {
                    AcceptError::Skip => continue,
                    AcceptError::BackOff => {
                        timeout::<R, _>(ACCEPT_BACKOFF, std::future::pending::<()>()).await;
                        continue;
                    }
                    AcceptError::Fatal => return Err(e),
                },
            };
            let Some(mut slot) = Slot::acquire(&self.active, self.config.max_connections) else {
                if let Some(refusal) = Slot::acquire(&self.refusing, Some(self.config.max_refusals))
                {
                    R::spawn(refuse::<R, _>(stream, self.config.retry_after, refusal));
                }
                continue;
            };
            slot.tracker = Some(Arc::clone(&self.tracker));
            return Ok(Connecting {
                stream,
                peer,
                config: Arc::clone(&self.config),
                slot,
            });
        }
    }
}

/// What an accept error means for the listener.
enum AcceptError {
    /// It concerned one connection, gone already.
    Skip,
    /// Out of descriptors or memory: wait for connections to close.
    BackOff,
    /// The listener itself failed.
    Fatal,
}

fn accept_error(e: &io::Error) -> AcceptError {
    use io::ErrorKind::*;
    if is_shut_down(e) {
        return AcceptError::Fatal;
    }
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 (Linux); the kinds cover other systems.
    if matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12)) || e.kind() == OutOfMemory {
        return AcceptError::BackOff;
    }
    match e.kind() {
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut => {
            AcceptError::Skip
        }
        _ => AcceptError::Fatal,
    }
}

/// An accepted TCP connection holding a slot of the [`Server`]'s limit; the slot is released
/// when its transport closes, whatever the way (close, error, handle dropped, task panicked).
pub struct Connecting<R: Runtime> {
    stream: <R::Listener as Listener>::Stream,
    peer: SocketAddr,
    config: Arc<Settings>,
    slot: Slot,
}

impl<R: Runtime> std::fmt::Debug for Connecting<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connecting")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Connecting<R> {
    /// The client's address.
    #[must_use]
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Runs the opening handshake as [`accept`] does.
    pub fn handshake(self) -> impl Future<Output = Result<WebSocket, Error>> {
        let policy = self.config.policy.clone();
        self.handshake_with(move |request| Ok(policy.accept_for(request)))
    }

    /// Runs the opening handshake as [`accept_with`] does.
    pub fn handshake_with<F>(self, decide: F) -> impl Future<Output = Result<WebSocket, Error>>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        #[cfg(feature = "tracing")]
        let span = crate::trace::connection_span(tether::Role::Server, Some(&self.peer));
        let accept = accept_guarded::<R, _, F>(self.stream, self.config, decide, Some(self.slot));
        #[cfg(feature = "tracing")]
        let accept = tracing::Instrument::instrument(accept, span);
        accept
    }

    /// Runs the opening handshake as [`handshake`](Connecting::handshake) does, then
    /// `handler` with the open connection, with the connection's driver in this same future:
    /// one task per connection instead of two. That is a few hundred bytes less per
    /// connection (a task of its own and its timer) and no wake-up of another task for what
    /// the driver does. Heartbeats, the close handshake and the timeouts run whenever the
    /// task is polled, whatever `handler` is waiting for, so `handler` must not block the
    /// thread (as in any task). The future ends once `handler` has returned and the
    /// transport is closed (the handle dropped by `handler` closes with 1001, as ever); it
    /// fails only when the handshake does. Spawn it as the connection's task.
    pub fn serve<H, Fut>(self, handler: H) -> impl Future<Output = Result<(), Error>>
    where
        H: FnOnce(WebSocket) -> Fut,
        Fut: Future<Output = ()>,
    {
        let policy = self.config.policy.clone();
        let decide = move |request: &Request| Ok(policy.accept_for(request));
        let open = open_guarded::<R, _, _>(self.stream, self.config, decide, Some(self.slot));
        async move {
            let (socket, driver) = open.await?;
            let handler = std::pin::pin!(handler(socket));
            Together::new(handler, driver).await;
            Ok(())
        }
    }

    /// Gives up the WebSocket handshake and returns the raw stream (e.g. to answer a plain
    /// HTTP request), keeping the slot until the guard is dropped.
    #[must_use]
    pub fn into_parts(self) -> (<R::Listener as Listener>::Stream, SlotGuard) {
        (self.stream, SlotGuard(self.slot))
    }
}

/// Holds a [`Server`] connection slot until dropped.
#[derive(Debug)]
pub struct SlotGuard(#[allow(dead_code)] Slot);

/// What [`Server::shutdown`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shutdown {
    /// Connections that were told to close (open ones with 1001; those still in their
    /// opening handshake were dropped).
    pub connections: usize,
    /// Connections still there when the grace period ended, reset.
    pub reset: usize,
}

/// The error [`Server::accept`] returns once the server is shut down: its kind is
/// `NotConnected`; [`is_shut_down`] tells it apart.
fn shut_down() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, ServerShutDown)
}

/// Whether `e` is the error of [`Server::accept`] after [`Server::shutdown`].
#[must_use]
pub fn is_shut_down(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<ServerShutDown>())
}

/// The cause inside [`Server::accept`]'s error after [`Server::shutdown`].
#[derive(Debug, thiserror::Error)]
#[error("the server is shut down")]
struct ServerShutDown;

/// A server's connections, for a graceful shutdown: each open or handshaking connection's
/// shared state (weakly: a connection is not kept alive by it), in a slab: 8 bytes per
/// connection and a free list, so tracking costs an idle connection next to nothing.
#[derive(Default)]
struct Tracker {
    shutting_down: AtomicBool,
    connections: Mutex<Slab>,
    /// The shutdown waiting for the last connection.
    idle: AtomicWaker,
    /// An `accept` waiting on the listener.
    accepting: AtomicWaker,
}

impl Tracker {
    /// Runs `f` on every connection still there, then wakes its driver; returns how many.
    fn each(&self, mut f: impl FnMut(&mut crate::shared::Inner)) -> usize {
        let connections: Vec<_> = lock(&self.connections)
            .entries
            .iter()
            .flatten()
            .cloned()
            .collect();
        let mut count = 0;
        for shared in connections.iter().filter_map(Weak::upgrade) {
            let waker = {
                let mut inner = shared.lock();
                f(&mut inner);
                inner.driver_waker.clone()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
            count += 1;
        }
        count
    }
}

/// Places an empty slab keeps (12 bytes each).
const KEPT_PLACES: usize = 64;

/// Weak pointers in numbered places that are reused once free.
#[derive(Default)]
struct Slab {
    entries: Vec<Option<Weak<Shared>>>,
    free: Vec<u32>,
}

impl Slab {
    fn insert(&mut self, shared: Weak<Shared>) -> u32 {
        match self.free.pop() {
            Some(at) => {
                self.entries[at as usize] = Some(shared);
                at
            }
            None => {
                self.entries.push(Some(shared));
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    fn remove(&mut self, at: u32) {
        if let Some(entry) = self.entries.get_mut(at as usize) {
            *entry = None;
            self.free.push(at);
        }
        // Once every connection is gone, so is the slab's memory after a burst; a few places
        // are kept (a server taking connections one at a time would otherwise allocate and
        // free both lists per connection).
        if self.free.len() == self.entries.len() {
            if self.entries.capacity() > KEPT_PLACES {
                *self = Slab::default();
            } else {
                self.entries.clear();
                self.free.clear();
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One unit of a count with a limit; a server's connection slot also registers the
/// connection with the server's [`Tracker`] once it has a shared state.
#[derive(Debug)]
pub(crate) struct Slot {
    count: Arc<AtomicUsize>,
    tracker: Option<Arc<Tracker>>,
    /// The place in the tracker's slab, once registered.
    id: Option<u32>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").finish_non_exhaustive()
    }
}

impl Slot {
    /// Registers the connection with its server. False when the server is shutting down:
    /// the connection must not start.
    pub(crate) fn track(&mut self, shared: &Arc<Shared>) -> bool {
        let Some(tracker) = &self.tracker else {
            return true;
        };
        self.id = Some(lock(&tracker.connections).insert(Arc::downgrade(shared)));
        !tracker.shutting_down.load(Ordering::Acquire)
    }

    fn acquire(active: &Arc<AtomicUsize>, max: Option<usize>) -> Option<Slot> {
        let mut current = active.load(Ordering::Acquire);
        loop {
            if max.is_some_and(|max| current >= max) {
                return None;
            }
            match active.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(Slot {
                        count: Arc::clone(active),
                        tracker: None,
                        id: None,
                    });
                }
                Err(now) => current = now,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let (Some(tracker), Some(id)) = (&self.tracker, self.id) {
            lock(&tracker.connections).remove(id);
        }
        let left = self.count.fetch_sub(1, Ordering::AcqRel) - 1;
        if let Some(tracker) = &self.tracker
            && left == 0
            && tracker.shutting_down.load(Ordering::Acquire)
        {
            tracker.idle.wake();
        }
    }
}

/// Answers a connection over the limit with 503 and `Retry-After`, then closes it after the
/// client's request was drained (closing with unread input would reset the connection and
/// could destroy the response before the client reads it). Bounded by [`REFUSE_TIMEOUT`].
async fn refuse<R: Runtime, T: Transport>(mut stream: T, retry_after: Duration, _refusal: Slot) {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let reject = Reject::new(503).header("Retry-After", secs.to_string());
    let mut out = BytesMut::new();
    write_reject(&reject, &mut out);
    let work = async {
        let mut written = 0;
        while written < out.len() {
            match poll_fn(|cx| stream.poll_write(cx, &out[written..])).await? {
                0 => return Ok(()),
                n => written += n,
            }
        }
        poll_fn(|cx| stream.poll_shutdown(cx)).await?;
        let mut sink = [0u8; 1024];
        while poll_fn(|cx| stream.poll_read(cx, &mut sink)).await? > 0 {}
        Ok::<_, io::Error>(())
    };
    let _ = timeout::<R, _>(REFUSE_TIMEOUT, work).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slab_reuses_places_and_lets_go_of_its_memory_when_empty() {
        let mut slab = Slab::default();
        let ids: Vec<u32> = (0..4).map(|_| slab.insert(Weak::new())).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        slab.remove(1);
        slab.remove(2);
        assert_eq!(slab.insert(Weak::new()), 2);
        assert_eq!(slab.insert(Weak::new()), 1);
        assert_eq!(slab.insert(Weak::new()), 4);
        assert_eq!(slab.entries.iter().flatten().count(), 5);
        for id in [0, 1, 2, 3, 4] {
            slab.remove(id);
        }
        // A few places are kept for the next connections...
        assert!(slab.entries.is_empty() && slab.free.is_empty());
        assert!(slab.entries.capacity() >= 5);
        // A place removed twice (it cannot happen: a slot removes its own once) breaks nothing.
        assert_eq!(slab.insert(Weak::new()), 0);
        slab.remove(0);
        // ...the memory of a burst is given back.
        let ids: Vec<u32> = (0..=KEPT_PLACES)
            .map(|_| slab.insert(Weak::new()))
            .collect();
        for id in ids {
            slab.remove(id);
        }
        assert_eq!(slab.entries.capacity(), 0);
        assert_eq!(slab.free.capacity(), 0);
    }
}
