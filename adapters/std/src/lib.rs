//! # tether-std: blocking WebSockets, no async runtime in your code
//!
//! ```toml
//! [dependencies]
//! tether-std = "0.1"   # features = ["rustls"] for wss://
//! ```
//!
//! The [`tether`] core is a sans-IO WebSocket (RFC 6455) state machine; [`tether_io`] drives
//! it; this crate runs that engine with a thread per connection and gives it a blocking API.
//! The same code as `tether-tokio` and `tether-smol` decides every behaviour (flow control,
//! close and heartbeat timeouts, the listener's limits, reconnecting), so the adapters agree.
//!
//! It re-exports what an application needs: the core's types (`Message`, `CloseCode`,
//! `Config`, [`handshake`], [`reconnect`]) and the engine's ([`WebSocket`], [`Error`],
//! [`ClientConfig`], [`ServerConfig`], ...).
//!
//! ```no_run
//! # fn main() -> Result<(), tether_std::Error> {
//! // A client.
//! let (mut ws, _response) = tether_std::connect("ws://127.0.0.1:9001/", Default::default())?;
//! ws.send_text("hello")?;
//! if let Some(reply) = ws.recv() {
//!     println!("{:?}", reply?);
//! }
//! ws.close(tether_std::CloseCode::NORMAL, "bye")?;
//! # Ok(()) }
//! ```
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! // A server: an echo, a thread per connection, with a connection limit.
//! use tether_std::{Server, ServerConfig};
//! let server = Server::bind("127.0.0.1:9001", ServerConfig::default().max_connections(1000))?;
//! server.serve(|mut ws| {
//!     while let Some(Ok(message)) = ws.recv() {
//!         if ws.send(message).is_err() {
//!             break;
//!         }
//!     }
//! })
//! # }
//! ```
//!
//! ## How it runs
//! Each connection's driver (the engine's loop: read into the core, write its output, obey
//! its timers and transport actions) runs on a thread of its own with `async_io::block_on`,
//! over the non-blocking sockets and timers of the smol glue; blocking calls wait in the
//! caller's thread. So Pongs, Close echoes, heartbeats and the close timeout work while the
//! user is blocked elsewhere. A reconnecting client is one thread.
//!
//! ## Features
//! - `rustls` (off by default): `wss://` in [`connect`], with rustls (`ring` provider) and
//!   the `webpki-roots` store, or a caller-supplied `rustls::ClientConfig`; `accept_tls` for a
//!   server that terminates TLS itself. The TLS is the engine's (`tls`: rustls's sans-IO
//!   connection over any transport), the same in every adapter.
#![forbid(unsafe_code)]
#![allow(clippy::result_large_err)]

mod client;
mod runtime;
mod server;
mod socket;

pub use client::{
    ReconnectingClient, connect, connect_on, connect_request, reconnecting, reconnecting_request,
};
pub use runtime::Std;
#[cfg(feature = "rustls")]
pub use server::accept_tls;
pub use server::{Connecting, Server, accept, accept_with};
pub use socket::{WebSocket, WsReader, WsWriter};

tether_io::adapter_reexports!();
