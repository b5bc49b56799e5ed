//! # tether-tokio: tether WebSockets on tokio
//!
//! ```toml
//! [dependencies]
//! tether-tokio = "0.1"   # features = ["rustls"] for wss://
//! ```
//!
//! The [`tether`] core is a sans-IO WebSocket (RFC 6455) state machine; [`tether_io`] drives
//! it for any runtime; this crate is the tokio glue ([`Tokio`]: tasks, timers, TCP)
//! and re-exports everything an application needs, so `tether-tokio` is the one dependency.
//!
//! It re-exports what an application needs: the core's types (`Message`, `CloseCode`,
//! `Config`, [`handshake`], [`reconnect`]) and the engine's ([`WebSocket`], [`Error`],
//! [`ClientConfig`], [`ServerConfig`], ...).
//!
//! ```no_run
//! # async fn run() -> Result<(), tether_tokio::Error> {
//! // A client.
//! let (mut ws, _response) = tether_tokio::connect("ws://127.0.0.1:9001/", Default::default()).await?;
//! ws.send_text("hello").await?;
//! if let Some(reply) = ws.recv().await {
//!     println!("{:?}", reply?);
//! }
//! ws.close(tether_tokio::CloseCode::NORMAL, "bye").await?;
//! # Ok(()) }
//! ```
//!
//! ```no_run
//! # async fn run() -> Result<(), tether_tokio::Error> {
//! // A server: an echo, with a connection limit (503 with Retry-After beyond it).
//! use tether_tokio::{Server, ServerConfig};
//! let server = Server::bind("127.0.0.1:9001", ServerConfig::default().max_connections(1000)).await?;
//! loop {
//!     let connecting = server.accept().await?;
//!     // One task per connection: the handler, and the connection's driver beside it.
//!     tokio::spawn(connecting.serve(|mut ws| async move {
//!         while let Some(Ok(message)) = ws.recv().await {
//!             if ws.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     }));
//! }
//! # }
//! ```
//!
//! - Server: [`Server`] (a listener with limits) or [`accept`] / [`accept_with`] over any
//!   stream you accepted.
//! - Client: [`connect`] (TCP with a connect timeout, TLS for `wss://` with the `rustls`
//!   feature) or [`connect_on`] over a stream of your own.
//! - Reconnecting client: [`reconnecting`] (the core's reconnect supervisor: backoff with
//!   jitter, a bounded queue kept across connections).
//! - The handle: [`WebSocket`] (`send`, `recv`, `next_event`, `ping`, `close`, `split`), a
//!   `futures` `Stream` of messages and `Sink` of messages.
//!
//! How a connection runs (a driver per connection, flow control in bytes, what dropping
//! does) is described in [`tether_io`]. TCP sockets opened or accepted by this crate get
//! `TCP_NODELAY`; set it yourself on streams you pass to [`accept`] or [`connect_on`].
//!
//! ## Features
//! - `rustls` (off by default): `wss://` in [`connect`], with rustls (`ring` provider) and
//!   the `webpki-roots` store, or a caller-supplied `rustls::ClientConfig`; `accept_tls` for a
//!   server that terminates TLS itself. The TLS is the engine's (`tls`: rustls's sans-IO
//!   connection over any transport), the same in every adapter.
//! - `hyper` (off by default): the `hyper` module turns a `hyper::upgrade::Upgraded` into an
//!   open [`WebSocket`], the bytes hyper read past the HTTP head first. For axum, the
//!   `tether-axum` crate builds on it.
#![forbid(unsafe_code)]
#![allow(clippy::result_large_err)]

#[cfg(feature = "hyper")]
pub mod hyper;
mod runtime;

pub use runtime::{Sleep, Tokio, TokioIo, TokioListener};

tether_io::adapter_api!(
    runtime = Tokio,
    wrap = TokioIo,
    stream = [tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static]
);
