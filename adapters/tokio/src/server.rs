//! The server side: `accept` over an accepted stream, and a listener with a connection limit.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tether::handshake::{Accept, Reject, Request, ServerPolicy, write_reject};
use tether::{Config, Connection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::clock::{now, os_rng};
use crate::{Error, WebSocket};

/// How long a refused connection (over the limit) may take to receive its 503.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A server's settings: the core's [`Config`], the handshake [`ServerPolicy`] (Origin
/// allowlist, authentication hook, subprotocols) and, for [`Server`], a connection limit.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Limits and timers of each connection, including `handshake_timeout`.
    pub config: Config,
    /// Which handshakes to accept.
    pub policy: ServerPolicy,
    /// [`Server`] only: the most connections (handshaking or open) at once; the others get
    /// `503 Service Unavailable` with `Retry-After`. `None` (the default): no limit.
    pub max_connections: Option<usize>,
    /// The `Retry-After` sent with a 503, rounded up to whole seconds. Default 1 s.
    pub retry_after: Duration,
}

impl ServerConfig {
    /// Settings with `config` and `policy`, no connection limit and a 1 s `Retry-After`.
    #[must_use]
    pub fn new(config: Config, policy: ServerPolicy) -> Self {
        ServerConfig {
            config,
            policy,
            max_connections: None,
            retry_after: Duration::from_secs(1),
        }
    }

    /// Sets the connection limit of a [`Server`].
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }
}

/// Runs the opening handshake on an accepted stream (plain TCP, TLS, anything), applying the
/// policy and selecting the first subprotocol of the policy's list that the client offered.
/// The handshake is bounded by `Config::handshake_timeout`. A refused request ends in
/// [`Error::Rejected`] after the refusal was written.
///
/// Cancel safety: dropping the future drops the stream.
pub async fn accept<S>(stream: S, config: ServerConfig) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let policy = config.policy.clone();
    accept_with(
        stream,
        config,
        move |request| Ok(policy.accept_for(request)),
    )
    .await
}

/// Like [`accept`], with the decision made by `decide` (after the policy's Origin and
/// authentication checks passed): it sees the request and accepts (choosing the subprotocol,
/// extra headers) or rejects it.
pub async fn accept_with<S, F>(
    stream: S,
    config: ServerConfig,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    accept_guarded(stream, config, decide, None).await
}

async fn accept_guarded<S, F>(
    stream: S,
    config: ServerConfig,
    decide: F,
    guard: Option<Box<dyn Send + Sync>>,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut core_config = config.config;
    core_config.streaming = false;
    let conn = Connection::server(core_config, config.policy, os_rng()?, now());
    let (socket, _) = crate::handshake::drive(stream, conn, Some(decide), guard).await?;
    Ok(socket)
}

/// A TCP listener that upgrades connections, with an optional connection limit.
///
/// ```no_run
/// # async fn run() -> Result<(), tether_tokio::Error> {
/// use tether_tokio::{Server, ServerConfig};
/// let server = Server::bind("127.0.0.1:9001", ServerConfig::default().max_connections(1000)).await?;
/// loop {
///     let connecting = server.accept().await?;
///     tokio::spawn(async move {
///         let mut ws = connecting.handshake().await?;
///         while let Some(message) = ws.recv().await {
///             ws.send(message?).await?;
///         }
///         Ok::<_, tether_tokio::Error>(())
///     });
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    active: Arc<AtomicUsize>,
}

impl Server {
    /// Binds a listener on `addr`.
    pub async fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        Ok(Server::from_listener(
            TcpListener::bind(addr).await?,
            config,
        ))
    }

    /// Serves on an existing listener.
    #[must_use]
    pub fn from_listener(listener: TcpListener, config: ServerConfig) -> Server {
        Server {
            listener,
            config,
            active: Arc::new(AtomicUsize::new(0)),
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

    /// Waits for the next TCP connection within the limit (with `TCP_NODELAY` set). Over the
    /// limit, connections are answered `503 Service Unavailable` with `Retry-After` by a
    /// background task and closed, and this keeps waiting. Run the handshake with
    /// [`Connecting::handshake`], typically in a task of its own so a slow client does not hold
    /// up the others. Cancel safe.
    pub async fn accept(&self) -> io::Result<Connecting> {
        loop {
            let (stream, peer) = self.listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let slot = match Slot::acquire(&self.active, self.config.max_connections) {
                Some(slot) => slot,
                None => {
                    tokio::spawn(refuse(stream, self.config.retry_after));
                    continue;
                }
            };
            return Ok(Connecting {
                stream,
                peer,
                config: self.config.clone(),
                slot,
            });
        }
    }
}

/// An accepted TCP connection holding a slot of the [`Server`]'s limit; the slot is released
/// when its transport closes, whatever the way (close, error, handle dropped, task panicked).
#[derive(Debug)]
pub struct Connecting {
    stream: TcpStream,
    peer: SocketAddr,
    config: ServerConfig,
    slot: Slot,
}

impl Connecting {
    /// The client's address.
    #[must_use]
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Runs the opening handshake as [`accept`] does.
    pub async fn handshake(self) -> Result<WebSocket<TcpStream>, Error> {
        let policy = self.config.policy.clone();
        self.handshake_with(move |request| Ok(policy.accept_for(request)))
            .await
    }

    /// Runs the opening handshake as [`accept_with`] does.
    pub async fn handshake_with<F>(self, decide: F) -> Result<WebSocket<TcpStream>, Error>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        let guard: Box<dyn Send + Sync> = Box::new(self.slot);
        accept_guarded(self.stream, self.config, decide, Some(guard)).await
    }

    /// Gives up the WebSocket handshake and returns the raw stream (e.g. to answer a plain
    /// HTTP request), keeping the slot until `slot` is dropped.
    #[must_use]
    pub fn into_parts(self) -> (TcpStream, SlotGuard) {
        (self.stream, SlotGuard(self.slot))
    }
}

/// Holds a [`Server`] connection slot until dropped.
#[derive(Debug)]
pub struct SlotGuard(#[allow(dead_code)] Slot);

/// One unit of a server's connection count.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

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
/// could destroy the response before the client reads it).
async fn refuse(mut stream: TcpStream, retry_after: Duration) {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let reject = Reject::new(503).header("Retry-After", secs.to_string());
    let mut out = BytesMut::new();
    write_reject(&reject, &mut out);
    let _ = tokio::time::timeout(REFUSE_TIMEOUT, async {
        stream.write_all(&out).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}
