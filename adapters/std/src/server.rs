//! The blocking listener and handshakes over the engine's.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;

use async_io::Async;
use tether::handshake::{Accept, Reject, Request};
use tether_io::{Error, ServerConfig, SlotGuard};
use tether_smol::SmolIo;

use crate::WebSocket;
use crate::runtime::{Std, wait};

/// Runs the opening handshake on an accepted TCP stream, applying the policy; bounded by
/// `Config::handshake_timeout`. Blocks until the connection is open or refused.
pub fn accept(stream: TcpStream, config: ServerConfig) -> Result<WebSocket, Error> {
    let stream = SmolIo(Async::new(stream)?);
    wait(tether_io::accept::<Std, _>(stream, config)).map(WebSocket::new)
}

/// Like [`accept`], with the decision made by `decide` after the policy's checks.
pub fn accept_with<F>(
    stream: TcpStream,
    config: ServerConfig,
    decide: F,
) -> Result<WebSocket, Error>
where
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let stream = SmolIo(Async::new(stream)?);
    wait(tether_io::accept_with::<Std, _, _>(stream, config, decide)).map(WebSocket::new)
}

/// Runs TLS (rustls) and then the opening handshake on an accepted TCP stream, both within
/// `Config::handshake_timeout`.
#[cfg(feature = "rustls")]
pub fn accept_tls(
    stream: TcpStream,
    tls: Arc<tether_io::rustls::ServerConfig>,
    config: ServerConfig,
) -> Result<WebSocket, Error> {
    let stream = SmolIo(Async::new(stream)?);
    wait(tether_io::accept_tls::<Std, _>(stream, tls, config)).map(WebSocket::new)
}

/// A TCP listener that upgrades connections, with the engine's limits: a connection limit
/// (503 with `Retry-After` beyond it, at bounded cost), back-off when out of file
/// descriptors, the handshake timeout.
#[derive(Debug)]
pub struct Server(tether_io::Server<Std>);

/// An accepted connection holding a slot of the [`Server`]'s limit.
#[derive(Debug)]
pub struct Connecting(tether_io::Connecting<Std>);

impl Server {
    /// Binds a listener on `addr`.
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        Server::from_listener(std::net::TcpListener::bind(addr)?, config)
    }

    /// Serves on a bound listener.
    pub fn from_listener(
        listener: std::net::TcpListener,
        config: ServerConfig,
    ) -> io::Result<Server> {
        tether_io::Server::from_std(listener, config).map(Server)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// Connections that hold a slot now: handshaking or open.
    #[must_use]
    pub fn active_connections(&self) -> usize {
        self.0.active_connections()
    }

    /// Waits for the next TCP connection within the limit; see [`tether_io::Server::accept`].
    pub fn accept(&self) -> io::Result<Connecting> {
        wait(self.0.accept()).map(Connecting)
    }

    /// Whether [`shutdown`](Server::shutdown) was called.
    #[must_use]
    pub fn is_shut_down(&self) -> bool {
        self.0.is_shut_down()
    }

    /// Shuts down gracefully (from any thread: share the server in an `Arc`): stops
    /// accepting, closes every connection with 1001, waits at most `grace` for them to end,
    /// then resets the rest; see [`tether_io::Server::shutdown`].
    pub fn shutdown(&self, grace: std::time::Duration) -> tether_io::Shutdown {
        wait(self.0.shutdown(grace))
    }

    /// Serves until accepting fails for good (`Ok(())` once the server is
    /// [shut down](Server::shutdown)): each connection gets a thread that runs the opening
    /// handshake and then `handler`. A connection whose thread cannot be started is dropped
    /// (its slot too); the others go on.
    pub fn serve<F>(&self, handler: F) -> io::Result<()>
    where
        F: Fn(WebSocket) + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        loop {
            let connecting = match self.accept() {
                Ok(connecting) => connecting,
                Err(e) if tether_io::is_shut_down(&e) => return Ok(()),
                Err(e) => return Err(e),
            };
            let handler = Arc::clone(&handler);
            let _ = std::thread::Builder::new()
                .name("tether-std-conn".into())
                .spawn(move || {
                    if let Ok(ws) = connecting.handshake() {
                        handler(ws);
                    }
                });
        }
    }
}

impl Connecting {
    /// The client's address.
    #[must_use]
    pub fn peer_addr(&self) -> SocketAddr {
        self.0.peer_addr()
    }

    /// Runs the opening handshake as [`accept`] does.
    pub fn handshake(self) -> Result<WebSocket, Error> {
        wait(self.0.handshake()).map(WebSocket::new)
    }

    /// Runs the opening handshake as [`accept_with`] does.
    pub fn handshake_with<F>(self, decide: F) -> Result<WebSocket, Error>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        wait(self.0.handshake_with(decide)).map(WebSocket::new)
    }

    /// Gives up the WebSocket handshake and returns the stream, keeping the slot until the
    /// guard is dropped.
    pub fn into_parts(self) -> io::Result<(TcpStream, SlotGuard)> {
        let (stream, guard) = self.0.into_parts();
        Ok((stream.0.into_inner()?, guard))
    }
}
