//! hyper's upgraded streams as open WebSockets (feature `hyper`).
//!
//! After a server answered an upgrade (a `101` to an HTTP/1.1 request, a `200` to an HTTP/2
//! extended CONNECT, RFC 8441) or a client got that answer, `hyper::upgrade::on` yields a
//! [`hyper::upgrade::Upgraded`]. [`open`] makes it a [`WebSocket`] with the whole engine
//! behind it (heartbeats, the close handshake and its timeout, flow control):
//!
//! - over `hyper_util`'s `TokioIo<TcpStream>` (a hyper HTTP/1.1 server's
//!   `serve_connection(TokioIo::new(tcp), ..).with_upgrades()`), the stream is taken back from
//!   hyper: the connection then runs on the `TcpStream` itself, and the bytes hyper had read
//!   past the HTTP head (frames the client sent right behind its request) go to the
//!   connection first;
//! - any other stream runs through `Upgraded` itself, whose reads hand out those buffered
//!   bytes first: an HTTP/2 stream, TLS, and `axum::serve`'s connections (its HTTP/1-or-2
//!   detection wraps the stream in a type of `hyper_util`'s own, which cannot be taken back).
//!
//! Either way no frame is lost. The [`tether::handshake::http`] functions make the response
//! that the upgrade needs.
//!
//! ```no_run
//! # async fn run(request: hyper::Request<()>) -> Result<(), Box<dyn std::error::Error>> {
//! use tether_tokio::{Config, Role, Upgraded};
//! let upgraded = hyper::upgrade::on(request).await?;
//! let mut ws = tether_tokio::hyper::open(upgraded, Upgraded::new(Role::Server, Config::default()))?;
//! while let Some(Ok(message)) = ws.recv().await {
//!     ws.send(message).await?;
//! }
//! # Ok(()) }
//! ```

use hyper_util::rt::TokioIo as HyperIo;
use tokio::net::TcpStream;

use crate::{Error, Upgraded, WebSocket};

/// Where an upgraded connection runs: the TCP stream with what hyper had buffered, or hyper's
/// own stream.
enum Stream {
    Tcp(TcpStream, tether::Bytes),
    Hyper(HyperIo<hyper::upgrade::Upgraded>),
}

fn unwrap(upgraded: hyper::upgrade::Upgraded) -> Stream {
    match upgraded.downcast::<HyperIo<TcpStream>>() {
        Ok(parts) => Stream::Tcp(parts.io.into_inner(), parts.read_buf),
        Err(upgraded) => Stream::Hyper(HyperIo::new(upgraded)),
    }
}

/// Opens a WebSocket over hyper's upgraded stream and spawns its driver (see the
/// [module](self) for how the stream is taken). `settings` says the role and what the upgrade
/// agreed on (subprotocol, extensions).
pub fn open(upgraded: hyper::upgrade::Upgraded, settings: Upgraded) -> Result<WebSocket, Error> {
    match unwrap(upgraded) {
        Stream::Tcp(tcp, leftover) => {
            let _ = tcp.set_nodelay(true);
            crate::open_upgraded(tcp, &leftover, settings)
        }
        Stream::Hyper(io) => crate::open_upgraded(io, &[], settings),
    }
}

/// [`open`], then `handler` with the connection, with its driver in the same future (one task
/// per connection). The future ends once `handler` has returned and the transport is closed;
/// it fails only when [`open`] would.
pub async fn serve<H, Fut>(
    upgraded: hyper::upgrade::Upgraded,
    settings: Upgraded,
    handler: H,
) -> Result<(), Error>
where
    H: FnOnce(WebSocket) -> Fut,
    Fut: Future<Output = ()>,
{
    match unwrap(upgraded) {
        Stream::Tcp(tcp, leftover) => {
            let _ = tcp.set_nodelay(true);
            crate::serve_upgraded(tcp, &leftover, settings, handler).await
        }
        Stream::Hyper(io) => crate::serve_upgraded(io, &[], settings, handler).await,
    }
}
