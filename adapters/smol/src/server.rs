//! A small listener: accepts TCP connections, bounds how many are open at once, and runs
//! each opening handshake in its own task.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_io::Timer;
use async_net::{AsyncToSocketAddrs, TcpListener, TcpStream};
use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use smol::channel::{Receiver, Sender, bounded};
use tether::handshake::{Reject, write_reject};

use crate::config::ServerConfig;
use crate::handshake::accept_guarded;
use crate::{Error, WebSocket};

/// How long a refused connection is given to read the 503 before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Connections whose handshake succeeded, waiting for [`Server::accept`]; beyond this their
/// handshake tasks wait (still holding their slots).
const ACCEPTED_QUEUE: usize = 64;

/// A connection slot: held from the TCP accept until the connection's transport is closed,
/// whatever the path (normal close, error, a dropped handle, a panic in user code).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

type Accepted = (WebSocket<TcpStream>, SocketAddr);

/// A WebSocket listener over TCP.
///
/// ```no_run
/// # smol::block_on(async {
/// use tether_smol::{Server, ServerConfig};
/// let server = Server::bind("127.0.0.1:9001", ServerConfig::default()).await?
///     .max_connections(1000);
/// while let Ok((mut ws, _peer)) = server.accept().await {
///     smol::spawn(async move {
///         while let Some(Ok(message)) = ws.recv().await {
///             let _ = ws.send(message).await;
///         }
///     })
///     .detach();
/// }
/// # Ok::<(), tether_smol::Error>(()) });
/// ```
///
/// Over [`max_connections`](Server::max_connections), a new connection is answered with
/// `503 Service Unavailable` and `Retry-After`, then closed. Each opening handshake runs in a
/// task of its own (bounded by `Config::handshake_timeout`), so a slow client does not hold
/// up the others; connections whose handshake fails are dropped without being reported.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    max_connections: usize,
    retry_after: Duration,
    active: Arc<AtomicUsize>,
    sender: Sender<Accepted>,
    receiver: Receiver<Accepted>,
}

impl Server {
    /// Binds a listener on `addr`.
    pub async fn bind(addr: impl AsyncToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server::from_listener(listener, config))
    }

    /// Serves on an already bound listener.
    #[must_use]
    pub fn from_listener(listener: TcpListener, config: ServerConfig) -> Server {
        let (sender, receiver) = bounded(ACCEPTED_QUEUE);
        Server {
            listener,
            config,
            max_connections: usize::MAX,
            retry_after: Duration::from_secs(1),
            active: Arc::new(AtomicUsize::new(0)),
            sender,
            receiver,
        }
    }

    /// Most connections open at once, counting those still in their handshake. Default: no
    /// limit.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Server {
        self.max_connections = max;
        self
    }

    /// The `Retry-After` sent with a 503 (whole seconds, at least 1). Default 1 s.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Server {
        self.retry_after = delay;
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Connections open now (including those in their handshake).
    #[must_use]
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// The next connection whose opening handshake succeeded, and the peer's address. Fails
    /// only when the listener itself fails.
    ///
    /// Cancel safe: a connection accepted while the future was pending is not lost; it is
    /// returned by a later call.
    pub async fn accept(&self) -> Result<Accepted, Error> {
        enum Next {
            Ready(Accepted),
            Tcp(io::Result<(TcpStream, SocketAddr)>),
        }
        loop {
            let ready = async {
                match self.receiver.recv().await {
                    Ok(accepted) => Next::Ready(accepted),
                    // The server holds a sender, so the channel never closes.
                    Err(_) => std::future::pending().await,
                }
            };
            let next = ready
                .or(async { Next::Tcp(self.listener.accept().await) })
                .await;
            match next {
                Next::Ready(accepted) => return Ok(accepted),
                Next::Tcp(Ok((stream, addr))) => self.admit(stream, addr),
                Next::Tcp(Err(e)) => return Err(Error::Io(e)),
            }
        }
    }

    /// Takes a slot and starts the handshake in its own task, or refuses with 503.
    fn admit(&self, stream: TcpStream, addr: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let previous = self.active.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.active.clone());
        if previous >= self.max_connections {
            drop(slot);
            let retry_after = self.retry_after.as_secs().max(1);
            self.config.spawner.spawn(refuse(stream, retry_after));
            return;
        }
        let config = self.config.clone();
        let sender = self.sender.clone();
        self.config.spawner.spawn(async move {
            if let Ok(ws) = accept_guarded(stream, config, Some(Box::new(slot))).await {
                let _ = sender.send((ws, addr)).await;
            }
        });
    }
}

/// Answers `503 Service Unavailable` with `Retry-After`, then closes once the client has
/// read it (or after a short linger), so that the response is not lost to a reset.
async fn refuse(mut stream: TcpStream, retry_after: u64) {
    let mut head = BytesMut::new();
    let reject = Reject::new(503).header("Retry-After", retry_after.to_string());
    write_reject(&reject, &mut head);
    let exchange = async {
        stream.write_all(&head).await?;
        stream.flush().await?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), io::Error>(())
    };
    let _ = exchange
        .or(async {
            Timer::after(REFUSAL_LINGER).await;
            Ok(())
        })
        .await;
}
