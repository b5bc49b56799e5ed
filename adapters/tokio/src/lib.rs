//! # tether-tokio: the tokio adapter for the tether WebSocket core
//!
//! The [`tether`] core is a sans-IO state machine; this crate drives it over tokio streams.
//! One background task per connection owns the stream and the core's `Connection`: it reads
//! straight into the core's buffer (a plain `TcpStream` only once it is readable, so an idle
//! connection holds no read buffer), writes the core's output with vectored writes, obeys the
//! core's transport actions and sleeps until the core's next deadline; the core sits in a small
//! shared state (`Arc<Mutex<_>>` plus wakers) with the [`WebSocket`] handle. So Pongs, the
//! Close echo and heartbeats flow even while the user neither reads nor writes. Messages stay
//! in the core until the user asks for the next one, so a peer's Close or protocol violation
//! right behind messages is answered (our Close) after the user's replies to them, as a peer
//! that reads frame by frame would see it; flow control is the core's, in bytes.
//!
//! - Server: [`accept`] / [`accept_with`] over any accepted stream, or a [`Server`] listener
//!   with a connection limit (503 with `Retry-After` beyond it).
//! - Client: [`connect`] (TCP with a connect timeout, TLS for `wss://` with the `rustls`
//!   feature) or [`connect_on`] over a stream of your own.
//! - Reconnecting client: [`reconnecting`] runs the core's reconnect
//!   [`Supervisor`](tether::reconnect::Supervisor) beside each connection it opens: sends
//!   queue across reconnections, and the receive side yields messages and state changes.
//! - The handle: [`WebSocket`] (`send`, `recv`, `next_event`, `ping`, `close`, `split`), a
//!   `futures` [`Stream`](futures_core::Stream) of messages and [`Sink`](futures_sink::Sink)
//!   of messages.
//!
//! TCP sockets opened or accepted by this crate get `TCP_NODELAY`: WebSocket frames are
//! written whole, and Nagle's algorithm would only delay small messages. Set it yourself on
//! streams you pass to [`accept`] or [`connect_on`].
//!
//! ```no_run
//! # async fn run() -> Result<(), tether_tokio::Error> {
//! use tether_tokio::{Server, ServerConfig};
//! let server = Server::bind("127.0.0.1:9001", ServerConfig::default()).await?;
//! loop {
//!     let connecting = server.accept().await?;
//!     tokio::spawn(async move {
//!         let mut ws = connecting.handshake().await?;
//!         while let Some(message) = ws.recv().await {
//!             ws.send(message?).await?;
//!         }
//!         Ok::<_, tether_tokio::Error>(())
//!     });
//! }
//! # }
//! ```
//!
//! ## Features
//! - `rustls` (off by default): `wss://` in [`connect`], with rustls (`ring` provider) and
//!   the `webpki-roots` store, or a caller-supplied `rustls::ClientConfig`.
#![forbid(unsafe_code)]

mod client;
mod clock;
mod driver;
mod error;
mod handshake;
mod io;
mod reconnect;
mod server;
mod shared;
mod socket;
mod stream;
#[cfg(feature = "rustls")]
pub mod tls;

pub use client::{ClientConfig, connect, connect_on, connect_request};
pub use error::Error;
pub use reconnect::{ReconnectingClient, reconnecting, reconnecting_request};
pub use server::{Connecting, Server, ServerConfig, SlotGuard, accept, accept_with};
pub use shared::Incoming;
pub use socket::{WebSocket, WsReader, WsWriter};
pub use stream::MaybeTlsStream;
pub use tether;
pub use tether::reconnect::ReconnectEvent;
#[cfg(feature = "rustls")]
pub use {rustls, tokio_rustls};
