//! The server side: [`accept`] over an accepted transport, and a [`Server`] listener with its
//! limits: a connection limit (503 with `Retry-After` beyond it, at bounded cost), back-off
//! when the process runs out of file descriptors, and the handshake timeout of the core.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tether::handshake::{Accept, Reject, Request, write_reject};
use tether::{Config, Connection};

use crate::clock::{now, timeout};
use crate::driver::{Driver, Together};
use crate::runtime::{Listener, Runtime, Transport};
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
        let drive = crate::handshake::drive::<R, T, F>(stream, conn, Some(decide), guard, sessions);
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
    listener: R::Listener,
    /// Shared with every [`Connecting`]: a connection waiting for its handshake holds a
    /// pointer, not a copy.
    config: Arc<Settings>,
    active: Arc<AtomicUsize>,
    refusing: Arc<AtomicUsize>,
}

impl<R: Runtime> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
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
            listener,
            config: Arc::new(Settings::new(config)),
            active: Arc::new(AtomicUsize::new(0)),
            refusing: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
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
            let (stream, peer) = match poll_fn(|cx| self.listener.poll_accept(cx)).await {
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
            let Some(slot) = Slot::acquire(&self.active, self.config.max_connections) else {
                if let Some(refusal) = Slot::acquire(&self.refusing, Some(self.config.max_refusals))
                {
                    R::spawn(refuse::<R, _>(stream, self.config.retry_after, refusal));
                }
                continue;
            };
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

/// One unit of a count with a limit.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Slot {
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
                Ok(_) => return Some(Slot(Arc::clone(active))),
                Err(now) => current = now,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
            let slice = [IoSlice::new(&out[written..])];
            match poll_fn(|cx| stream.poll_write_vectored(cx, &slice)).await? {
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
