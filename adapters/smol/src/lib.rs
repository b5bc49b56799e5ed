//! # tether-smol: the smol adapter for the tether WebSocket core
//!
//! [`tether`] is a sans-IO WebSocket (RFC 6455) state machine; this crate drives it over
//! smol's sockets and timers. Each connection has a background driver task that owns the
//! stream and the core: it reads into the core's buffer, writes the core's output with
//! vectored writes, obeys its transport actions (half-close, close), sleeps until the core's
//! next deadline (`async_io::Timer`), and wakes the [`WebSocket`] handle, which takes the
//! received messages from the core. So Pongs, the Close echo and heartbeats flow even while
//! the application neither reads nor writes, and a dead peer is detected.
//!
//! The driver is spawned with `smol::spawn` (smol's global executor, which runs on threads
//! of its own), so the API works from `smol::block_on` and from any executor. A caller with
//! its own [`async_executor::Executor`] can name it in [`ClientConfig::executor`] or
//! [`ServerConfig::executor`].
//!
//! ```no_run
//! use tether_smol::{ClientConfig, connect};
//!
//! smol::block_on(async {
//!     let (mut ws, _response) = connect("ws://127.0.0.1:9001/chat", ClientConfig::default()).await?;
//!     ws.send_text("hello").await?;
//!     while let Some(message) = ws.recv().await {
//!         println!("{:?}", message?);
//!     }
//!     Ok::<(), tether_smol::Error>(())
//! })
//! .unwrap();
//! ```
//!
//! ## What is here
//! - Client: [`connect`] / [`connect_request`] (resolve, TCP with `TCP_NODELAY`, TLS for
//!   `wss://`, within [`ClientConfig::connect_timeout`]; then the handshake), and
//!   [`connect_on`] over any stream.
//! - Server: [`accept`] and [`accept_with`] over an accepted stream, with the core's
//!   [`ServerPolicy`](tether::handshake::ServerPolicy); [`Server`], a listener with a
//!   connection limit (503 with `Retry-After` beyond it).
//! - [`WebSocket`]: `send` (with backpressure), `recv`, `next_event` (messages, Pings and
//!   Pongs), `ping`, `close`, `split`; a `Stream` and a `Sink`.
//! - [`ReconnectingClient`]: the core's reconnect
//!   [`Supervisor`](tether::reconnect::Supervisor) on smol, running each connection with the
//!   same driver: sends survive reconnections, events report every state change.
//!
//! ## Features
//! - `rustls`: `wss://` in [`connect`], with rustls (ring provider) and the `webpki-roots`
//!   trust anchors, or a caller-supplied `rustls::ClientConfig`.
//!
//! ## Delivery
//! Messages are delivered whole (the core's streaming mode is turned off). They stay in the
//! core until the user asks for the next one (`recv`, `next_event`, the `Stream`), so the core
//! sees the user's pace: while unread data (and unread Pings and Pongs) are over
//! `Config::high_watermark` bytes the driver stops reading and the transport pushes back on
//! the peer. When the peer breaks the protocol, or sends its Close, right behind unread
//! messages, our Close goes out only after the user has taken them (and its replies to
//! them), as a reader that goes frame by frame would behave. Pings are answered by the core
//! at once; `recv` drops the Ping and Pong events it passes, `next_event` returns them. Once
//! the reading half is dropped, whatever arrives is dropped too. Over plain TCP the driver
//! asks the core for a read buffer only once the socket is readable, so an idle connection
//! holds none.
#![forbid(unsafe_code)]
// `Error::Closed` carries the terminal information by value, as in the other adapters.
#![allow(clippy::result_large_err)]

mod client;
mod config;
mod driver;
mod error;
mod handshake;
mod reconnect;
mod server;
mod shared;
mod socket;
#[cfg(feature = "rustls")]
pub mod tls;

pub use client::{MaybeTlsStream, connect, connect_request};
pub use config::{ClientConfig, ServerConfig};
pub use error::Error;
pub use handshake::{accept, accept_with, connect_on};
pub use reconnect::{ReconnectingClient, ReconnectingConfig};
pub use server::Server;
pub use socket::{Incoming, WebSocket, WsReader, WsWriter};
pub use tether::reconnect::ReconnectEvent;

pub use tether;
