//! The server side: the opening handshake over an accepted stream, and a listener with a thread
//! per connection and a connection limit.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant as StdInstant};

use tether::handshake::{Accept, Reject, Request, ServerPolicy};
use tether::{CloseCause, Config, Connection, Event};

use crate::driver::{Shared, now};
use crate::socket::{Handle, WebSocket};
use crate::stream::SplitStream;
use crate::{Error, rng};

/// How a server accepts connections: the connection configuration and the handshake policy
/// (Origin allowlist, authentication hook, subprotocols).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The connection's configuration (limits, heartbeat, timeouts; `handshake_timeout` bounds
    /// the opening handshake).
    pub config: Config,
    /// The handshake policy.
    pub policy: ServerPolicy,
}

impl ServerConfig {
    /// The defaults: any origin, no authentication, no subprotocol.
    #[must_use]
    pub fn new() -> Self {
        ServerConfig::default()
    }

    /// Sets the connection configuration.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the handshake policy.
    #[must_use]
    pub fn policy(mut self, policy: ServerPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// Runs the server handshake over an accepted stream: requests that fail the policy are
/// refused by the core (403 for an origin, the hook's status for authentication); the others
/// are accepted with the first of the policy's subprotocols that the client offered.
pub fn accept<S: SplitStream>(stream: S, config: &ServerConfig) -> Result<WebSocket<S>, Error> {
    let policy = config.policy.clone();
    handshake(stream, config, None, move |request: &Request| {
        Ok(policy.accept_for(request))
    })
}

/// Like [`accept`], with the decision made by `decide` (after the policy's checks passed).
pub fn accept_with<S: SplitStream>(
    stream: S,
    config: &ServerConfig,
    decide: impl FnOnce(&Request) -> Result<Accept, Reject>,
) -> Result<WebSocket<S>, Error> {
    handshake(stream, config, None, decide)
}

fn handshake<S: SplitStream>(
    stream: S,
    config: &ServerConfig,
    slot: Option<Box<dyn Send>>,
    decide: impl FnOnce(&Request) -> Result<Accept, Reject>,
) -> Result<WebSocket<S>, Error> {
    let (reader, writer) = stream.split(config.config.handshake_timeout).map_err(|e| {
        if matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) {
            Error::HandshakeTimeout
        } else {
            Error::Io(e)
        }
    })?;
    let conn = Connection::server(config.config.clone(), config.policy.clone(), rng(), now());
    let shared = Shared::start(conn, reader, writer, slot)?;
    let handle = Handle::<S>::new_pending(shared);
    let mut st = handle.shared.lock();
    let request = loop {
        let mut request = None;
        while let Some(event) = st.conn.poll_event() {
            if let Event::Request(r) = event {
                request = Some(r);
                break;
            }
        }
        if let Some(request) = request {
            break request;
        }
        if st.transport_done {
            return Err(server_error(&mut st));
        }
        st = handle.shared.wait(st, None).0;
    };
    drop(st);
    let verdict = decide(&request);
    let mut st = handle.shared.lock();
    let status = match verdict {
        Ok(accept) => match st.conn.accept(now(), accept) {
            Ok(()) => {
                st = handle.shared.flush_all(st);
                drop(st);
                return Ok(WebSocket::from_handle(handle.opened()));
            }
            Err(_) => {
                let _ = st
                    .conn
                    .reject(Reject::new(500).reason("invalid acceptance"));
                500
            }
        },
        Err(reject) => {
            let status = reject.effective_status();
            let _ = st.conn.reject(reject);
            status
        }
    };
    st = handle.shared.flush_all(st);
    drop(handle.shared.wait_finished(st));
    Err(Error::Rejected { status })
}

fn server_error<W>(st: &mut crate::driver::State<W>) -> Error {
    match st.conn.closed().cloned() {
        Some(c) => match c.cause {
            CloseCause::HandshakeRejected { status } => Error::Rejected { status },
            CloseCause::HandshakeTimeout => Error::HandshakeTimeout,
            _ => match st.io_error.take() {
                Some(io) => Error::Io(io),
                None => Error::Closed(c),
            },
        },
        None => {
            Error::Io(st.io_error.take().unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "transport closed")
            }))
        }
    }
}

/// A taken connection slot; dropping it frees the slot.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP listener that upgrades every connection, with a limit on concurrent connections.
///
/// Over the limit, a connection gets `503 Service Unavailable` with `Retry-After` and is
/// closed. A slot is held from the TCP accept until the connection's transport is closed, on
/// every path (a normal close, an error, a dropped handle, a panic in the handler).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: Arc<ServerConfig>,
    max_connections: usize,
    retry_after: Duration,
    active: Arc<AtomicUsize>,
}

impl Server {
    /// Binds a listener (use port 0 for any free port; see [`Server::local_addr`]).
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        Ok(Server::from_listener(TcpListener::bind(addr)?, config))
    }

    /// Serves on a listener bound elsewhere.
    #[must_use]
    pub fn from_listener(listener: TcpListener, config: ServerConfig) -> Server {
        Server {
            listener,
            config: Arc::new(config),
            max_connections: usize::MAX,
            retry_after: Duration::from_secs(1),
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Limits the concurrent connections (default: no limit).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// The `Retry-After` sent with a 503 over the limit (whole seconds; default 1 s).
    #[must_use]
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Connections holding a slot now.
    #[must_use]
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Accepts the next TCP connection within the limit and runs its opening handshake in the
    /// calling thread. Connections over the limit are refused (503) in the background. An
    /// error is about one connection: call again for the next.
    pub fn accept(&self) -> Result<WebSocket<TcpStream>, Error> {
        loop {
            let (tcp, _) = self.listener.accept()?;
            if let Some((tcp, slot)) = self.admit(tcp) {
                return handshake_slot(tcp, &self.config, slot);
            }
        }
    }

    /// Serves forever: each connection gets a thread that runs the opening handshake and then
    /// `handler`. Returns only if accepting fails for a reason other than a transient one.
    pub fn serve<F>(self, handler: F) -> io::Result<()>
    where
        F: Fn(WebSocket<TcpStream>) + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        loop {
            let tcp = match self.listener.accept() {
                Ok((tcp, _)) => tcp,
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            };
            let Some((tcp, slot)) = self.admit(tcp) else {
                continue;
            };
            let (config, handler) = (Arc::clone(&self.config), Arc::clone(&handler));
            // A connection whose thread cannot be started (out of threads or memory maps) is
            // dropped with the closure, slot included; the server keeps serving the others.
            let _ = std::thread::Builder::new()
                .name("tether-conn".into())
                .spawn(move || {
                    if let Ok(ws) = handshake_slot(tcp, &config, slot) {
                        handler(ws);
                    }
                });
        }
    }

    /// Takes a slot, or refuses the connection with 503 when none is free.
    fn admit(&self, tcp: TcpStream) -> Option<(TcpStream, Slot)> {
        let taken = self.active.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&self.active));
        if taken < self.max_connections {
            return Some((tcp, slot));
        }
        drop(slot);
        let retry = self.retry_after.as_secs().max(1);
        let _ = std::thread::Builder::new()
            .name("tether-refuse".into())
            .spawn(move || refuse(tcp, retry));
        None
    }
}

fn handshake_slot(
    tcp: TcpStream,
    config: &ServerConfig,
    slot: Slot,
) -> Result<WebSocket<TcpStream>, Error> {
    let policy = config.policy.clone();
    handshake(
        tcp,
        config,
        Some(Box::new(slot)),
        move |request: &Request| Ok(policy.accept_for(request)),
    )
}

fn transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut
    ) || e.raw_os_error().is_some_and(|c| c == 24 || c == 23) // EMFILE, ENFILE
}

/// Writes a 503 with `Retry-After`, half-closes, and drains what the client sends until it
/// closes (so the close does not reset the connection before the client read the answer).
/// Bounded: at most 2 s and 64 KiB.
fn refuse(mut tcp: TcpStream, retry_after: u64) {
    let reject = Reject::new(503)
        .reason("too many connections")
        .header("Retry-After", retry_after.to_string());
    let mut head = bytes::BytesMut::new();
    tether::handshake::write_reject(&reject, &mut head);
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
    if tcp.write_all(&head).is_err() {
        return;
    }
    let _ = tcp.shutdown(Shutdown::Write);
    let deadline = StdInstant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < 64 << 10 {
        let left = deadline.saturating_duration_since(StdInstant::now());
        if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}
