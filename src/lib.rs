//! # tether: a sans-IO WebSocket (RFC 6455) protocol core
//!
//! tether is a pure state machine: bytes go in, events and bytes come out, and time is a value
//! the caller passes in. It never touches a socket, never reads a clock and never reaches for a
//! global random source, so it can be driven by any runtime, fuzzed, and tested
//! deterministically. It handles the opening handshake, framing, the close handshake, heartbeats
//! and dead-peer detection, and (in [`reconnect`]) a pure reconnection policy and a
//! reconnecting client [`Session`](reconnect::Session) with a send queue that outlives transports.
//!
//! ## The driving contract
//!
//! - **Inputs** (`handle_*`) take `now`: bytes read ([`Connection::handle_read`] after reading
//!   into [`Connection::read_buf`], or [`Connection::handle_data`]), end of stream
//!   ([`Connection::handle_eof`]) and the passing of time ([`Connection::handle_timeout`]). A
//!   peer's protocol violation is not an error here: the core queues the right Close and ends
//!   with one terminal [`Event::Closed`].
//! - **Commands** ([`Connection::send`], [`Connection::ping`], [`Connection::close`],
//!   [`Connection::accept`], ...) return a typed error on local misuse and then change nothing.
//! - **Outputs**: after every input or command, drain the output
//!   ([`Connection::pending_output`] / [`Connection::consume_output`], partial writes are fine),
//!   obey [`Connection::poll_transport`], hand out [`Connection::poll_event`]s, then sleep until
//!   [`Connection::poll_timeout`] or the next read, whichever comes first.
//!
//! A blocking driver over `std::net::TcpStream`, in full:
//!
//! ```no_run
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::TcpStream;
//! use std::time::Instant as StdInstant;
//! use tether::handshake::ClientRequest;
//! use tether::{Config, Connection, Event, Instant, Message, TransportAction};
//!
//! # fn rng() -> impl rand_core::Rng + Send + 'static { rand_core_stub::Zero }
//! # mod rand_core_stub {
//! #     pub struct Zero;
//! #     impl rand_core::TryRng for Zero {
//! #         type Error = core::convert::Infallible;
//! #         fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(4) }
//! #         fn try_next_u64(&mut self) -> Result<u64, Self::Error> { Ok(4) }
//! #         fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> { d.fill(4); Ok(()) }
//! #     }
//! # }
//! fn main() -> std::io::Result<()> {
//!     let now = || Instant::from(StdInstant::now());
//!     let request = ClientRequest::new("ws://127.0.0.1:9001/chat").expect("a ws:// URL");
//!     let mut sock = TcpStream::connect("127.0.0.1:9001")?;
//!     // `rng()` is any `rand_core::Rng`: an OS-seeded CSPRNG in production, seeded in tests.
//!     let mut conn = Connection::client(request, Config::default(), rng(), now());
//!     loop {
//!         // 1. Write what the core queued.
//!         while let Some(bytes) = conn.pending_output() {
//!             let n = sock.write(bytes)?;
//!             conn.consume_output(n);
//!         }
//!         // 2. Obey transport actions, hand events to the application.
//!         if let Some(TransportAction::Close) = conn.poll_transport() {
//!             return Ok(());
//!         }
//!         while let Some(event) = conn.poll_event() {
//!             match event {
//!                 Event::Connected { .. } => conn.send_text("hello").expect("open"),
//!                 Event::Message(Message::Text(t)) => println!("got {t}"),
//!                 Event::Closed(closed) => println!("closed: {closed:?}"),
//!                 _ => {}
//!             }
//!         }
//!         // 3. Wait for bytes or for the next deadline, whichever comes first.
//!         let timeout = conn.poll_timeout().map(|t| t - now());
//!         sock.set_read_timeout(timeout.filter(|d| !d.is_zero()))?;
//!         match sock.read(conn.read_buf()) {
//!             Ok(0) => conn.handle_eof(now()),
//!             Ok(n) => conn.handle_read(now(), n),
//!             Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
//!             Err(_) => conn.handle_eof(now()),
//!         }
//!         conn.handle_timeout(now());
//!     }
//! }
//! ```
//!
//! A connection can also start already open ([`Connection::open`]), after an upgrade done
//! elsewhere (hyper, axum, an HTTP/2 extended CONNECT); the framing does not depend on how the
//! handshake happened. The [`handshake`] module exposes the validation rules as pure functions
//! for such integrations.
//!
//! ## Features
//! - `std` (default): conversion from `std::time::Instant` and `std::error::Error` impls.
//!   Without it the crate is `no_std` + `alloc`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod close;
mod config;
mod connection;
pub mod error;
mod event;
pub mod frame;
pub mod handshake;
pub mod mask;
mod message;
pub mod reconnect;
mod recv;
mod send;
mod time;
mod timer;
mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use config::{Config, Heartbeat};
pub use connection::{Connection, MAX_QUEUED_EVENTS, Role, State};
pub use error::{CloseError, ProtocolError, SendError, SendErrorKind};
pub use event::{CloseCause, Closed, Event, Initiator, TransportAction};
pub use message::{DataKind, Message, Utf8Bytes};
pub use time::Instant;

/// The randomness trait the core takes its masking keys, nonces and jitter from.
pub use rand_core;
