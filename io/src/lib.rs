//! # tether-io: the runtime-neutral engine of the tether adapters
//!
//! ```toml
//! [dependencies]
//! tether-io = "0.1"   # for a runtime of your own; applications use tether-tokio or tether-smol
//! ```
//!
//! The [`tether`] core is a sans-IO state machine. This crate drives it, once, for every
//! async runtime: the loop over the core, the shared state and wake-ups, the [`WebSocket`]
//! handle with its split halves, `Stream` and `Sink`, connect and accept, the [`Server`]
//! listener with its limits, the [`ReconnectingClient`] over the core's reconnect
//! [`Supervisor`](tether::reconnect::Supervisor), TLS (rustls's sans-IO connection over any
//! transport, feature `rustls`), one [`Error`] and the configs. It is generic over a tiny [`Runtime`] interface (spawn, timer, clock, open a
//! client transport, wrap a listener) and a [`Transport`] (read, vectored write, flush,
//! shutdown). `tether-tokio` and `tether-smol` implement those and re-export the rest;
//! applications use them, not this crate.
//!
//! A client and a server, written once for any [`Runtime`] (an adapter fixes `R`):
//!
//! ```no_run
//! use tether_io::{ClientConfig, Error, Runtime, Server, ServerConfig};
//!
//! async fn client<R: Runtime>() -> Result<(), Error> {
//!     let (mut ws, _response) =
//!         tether_io::connect::<R>("ws://127.0.0.1:9001/", ClientConfig::default()).await?;
//!     ws.send_text("hello").await?;
//!     while let Some(message) = ws.recv().await {
//!         println!("{:?}", message?);
//!     }
//!     Ok(())
//! }
//!
//! async fn server<R: Runtime>() -> Result<(), Error> {
//!     let server = Server::<R>::bind("127.0.0.1:9001", ServerConfig::default()).await?;
//!     loop {
//!         let connecting = server.accept().await?;
//!         R::spawn(async move {
//!             let _ = connecting
//!                 .serve(|mut ws| async move {
//!                     while let Some(Ok(message)) = ws.recv().await {
//!                         if ws.send(message).await.is_err() {
//!                             break;
//!                         }
//!                     }
//!                 })
//!                 .await;
//!         });
//!     }
//! }
//! ```
//!
//! A connection whose HTTP upgrade happened elsewhere (hyper, axum, an HTTP/2 extended
//! CONNECT) starts open with [`open_upgraded`] or [`serve_upgraded`], the bytes read past the
//! HTTP head first.
//!
//! ## How a connection runs
//! A driver per connection drives the transport and the core's `Connection`, in a task of
//! its own, or in the connection's own task beside the application's handler with
//! [`Connecting::serve`] (one task per connection instead of two: less memory, no wake-up of
//! another task; it is polled only when something woke it). It
//! reads straight into the core's buffer (only once the transport is readable, so an idle
//! connection holds no read buffer), writes the core's output with one vectored write per
//! wake-up (sends made meanwhile are coalesced), obeys the core's transport actions and
//! sleeps until the core's next deadline. The core sits in a small shared state (a mutex plus
//! wakers) with the handle. The application's own task does the I/O when it can, without a
//! hop through the driver's: a receiver waiting in `recv` is woken by read readiness and reads
//! itself (the transport's read side is always polled through one router waker, which wakes
//! the driver instead while nobody waits), and a send with nothing left to read behind it (the
//! reply in a request-response exchange) is written at once in the sender's task. So Pongs,
//! the Close echo and heartbeats flow even while the user neither reads nor writes. Messages stay in the core until the user asks for the next one,
//! so a peer's Close or protocol violation right behind messages is answered after the user's
//! replies to them, as a peer that reads frame by frame would see it; flow control is the
//! core's, in bytes.
//!
//! Dropping every handle closes the connection with 1001 (Going Away). Dropping the driver
//! (its runtime shut down) ends the connection and wakes every waiter with an abnormal end.
//! A transport closed before the peer ended its side (the close timeout passed with output
//! the peer never took, the peer never closed after the close handshake, the connection
//! failed) is reset (`SO_LINGER` 0, where the transport can), not left queued in the kernel;
//! a close after the peer's end of stream is graceful.
//!
//! ## Proxies, counters, tracing
//! - Clients connect through HTTP CONNECT proxies with [`ClientConfig::proxy`]: one proxy
//!   ([`Proxy::all`]) or the environment's `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`
//!   ([`Proxy::from_env`], opt-in). A refusal is [`Error::Proxy`], naming the proxy, the
//!   target and the status.
//! - [`WebSocket::stats`] (and the halves') reads the core's counters: messages and bytes
//!   each way, Pings, Pongs, the latest and smoothed RTT ([`tether::Stats`]).
//! - Feature `tracing`: a `websocket` span per connection (fields `peer`, `role`,
//!   `subprotocol`) holding the core's events: `connecting`, `open`, `closing`, `closed`
//!   (code, reason, initiator, clean, cause), heartbeat Pings, Pongs and misses, and the
//!   reconnecting client's decisions (in a `reconnecting` span).
#![forbid(unsafe_code)]
// `Error` carries the core's terminal information and handshake errors by value.
#![allow(clippy::result_large_err)]

pub mod broadcast;
mod client;
mod clock;
mod config;
mod driver;
mod error;
mod glue;
mod handshake;
pub mod proxy;
mod reconnect;
mod resume;
pub mod runtime;
mod server;
mod shared;
mod socket;
#[cfg(feature = "rustls")]
pub mod tls;
#[cfg(feature = "tracing")]
mod trace;
mod upgraded;

pub use broadcast::{
    Broadcast, BroadcastConfig, Published, SlowConsumer, Subscribable, Subscriber,
};
pub use client::{connect, connect_on, connect_request};
pub use clock::timeout;
pub use config::{ClientConfig, RequestHook, ServerConfig};
pub use error::{Error, ProxyFailure};
pub use proxy::{InvalidProxy, NoProxy, Proxy, ProxyServer, Tunnel, tunnel};
pub use reconnect::{ReconnectingClient, reconnecting, reconnecting_request};
pub use resume::SessionRegistry;
pub use runtime::{ClientStream, ClientTls, Listener, MaybeTls, Runtime, Timer, Transport};
#[cfg(feature = "rustls")]
pub use rustls;
#[cfg(feature = "rustls")]
pub use server::accept_tls;
pub use server::{Connecting, Server, Shutdown, SlotGuard, accept, accept_with, is_shut_down};
pub use shared::Incoming;
pub use socket::{WebSocket, WsReader, WsWriter};
pub use tether;
pub use tether::reconnect::ReconnectEvent;
pub use upgraded::{Upgraded, open_upgraded, serve_upgraded};
