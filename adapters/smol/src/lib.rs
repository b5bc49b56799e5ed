//! # tether-smol: tether WebSockets on smol
//!
//! ```toml
//! [dependencies]
//! tether-smol = "0.1"   # features = ["rustls"] for wss://
//! ```
//!
//! The [`tether`] core is a sans-IO WebSocket (RFC 6455) state machine; [`tether_io`] drives
//! it for any runtime; this crate is the smol glue ([`Smol`]: tasks on smol's global
//! executor, async-io timers and sockets) and re-exports everything an
//! application needs, so `tether-smol` is the one dependency.
//!
//! It re-exports what an application needs: the core's types (`Message`, `CloseCode`,
//! `Config`, [`handshake`], [`reconnect`]) and the engine's ([`WebSocket`], [`Error`],
//! [`ClientConfig`], [`ServerConfig`], ...).
//!
//! ```no_run
//! # fn main() -> Result<(), tether_smol::Error> { smol::block_on(async {
//! // A client.
//! let (mut ws, _response) = tether_smol::connect("ws://127.0.0.1:9001/", Default::default()).await?;
//! ws.send_text("hello").await?;
//! if let Some(reply) = ws.recv().await {
//!     println!("{:?}", reply?);
//! }
//! ws.close(tether_smol::CloseCode::NORMAL, "bye").await?;
//! # Ok(()) }) }
//! ```
//!
//! ```no_run
//! # fn main() -> Result<(), tether_smol::Error> { smol::block_on(async {
//! // A server: an echo, with a connection limit (503 with Retry-After beyond it).
//! use tether_smol::{Server, ServerConfig};
//! let server = Server::bind("127.0.0.1:9001", ServerConfig::default().max_connections(1000)).await?;
//! loop {
//!     let connecting = server.accept().await?;
//!     // One task per connection: the handler, and the connection's driver beside it.
//!     smol::spawn(connecting.serve(|mut ws| async move {
//!         while let Some(Ok(message)) = ws.recv().await {
//!             if ws.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     }))
//!     .detach();
//! }
//! # }) }
//! ```
//!
//! The API is the same as `tether-tokio`'s: [`Server`], [`accept`], [`connect`],
//! [`connect_on`], [`reconnecting`], the [`WebSocket`] handle (`Stream` and `Sink` too). How
//! a connection runs is described in [`tether_io`]. Sockets opened or accepted here get
//! `TCP_NODELAY`.
//!
//! ## Features
//! - `rustls` (off by default): `wss://` in [`connect`], with rustls (`ring` provider) and
//!   the `webpki-roots` store, or a caller-supplied `rustls::ClientConfig`; `accept_tls` for a
//!   server that terminates TLS itself. The TLS is the engine's (`tls`: rustls's sans-IO
//!   connection over any transport), the same in every adapter.
#![forbid(unsafe_code)]
#![allow(clippy::result_large_err)]

mod runtime;

pub use runtime::{Smol, SmolIo, SmolListener, SmolTimer};

tether_io::adapter_api!(
    runtime = Smol,
    wrap = SmolIo,
    stream = [futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static]
);
