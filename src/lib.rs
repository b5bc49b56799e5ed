//! # tether: a sans-IO WebSocket (RFC 6455) protocol core
//!
//! ```toml
//! [dependencies]
//! tether-ws = "0.1"   # the library is `tether`; features = ["deflate"] for permessage-deflate
//! ```
//!
//! tether is a pure state machine: bytes go in, events and bytes come out, and time is a value
//! the caller passes in. It never touches a socket, never reads a clock and never reaches for a
//! global random source, so it can be driven by any runtime, fuzzed, and tested
//! deterministically. It handles the opening handshake, framing, the close handshake, heartbeats
//! and dead-peer detection, and (in [`reconnect`]) a pure reconnection policy and a
//! [`Supervisor`](reconnect::Supervisor) that runs beside a client's connections: it says when to
//! connect, hands out each new [`Connection`] with the queued messages already sent into it,
//! and takes back what a dead transport never wrote. Between two tether peers, [`resume`]
//! goes further: a session survives the loss of its connection with nothing lost or doubled.
//!
//! Applications on tokio, smol or plain threads use an adapter (`tether-tokio`, `tether-smol`,
//! `tether-std`), which drives this core for them; the core alone is for embedding tether in a
//! runtime or a framework of your own, for fuzzing and for deterministic tests. A client and a
//! server, connected in memory on a virtual clock:
//!
//! ```
//! use rand_chacha::ChaCha8Rng;
//! use rand_chacha::rand_core::SeedableRng;
//! use tether::handshake::{ClientRequest, ServerPolicy};
//! use tether::{Config, Connection, Data, Event, Instant, Message};
//!
//! /// Moves what `from` wrote into `to`, as a socket would.
//! fn pump(from: &mut Connection, to: &mut Connection, now: Instant) {
//!     while let Some(transmit) = from.poll_transmit() {
//!         let bytes = transmit.first().to_vec();
//!         from.advance(bytes.len());
//!         to.handle_data(now, &bytes);
//!     }
//! }
//!
//! let now = Instant::ZERO;
//! let request = ClientRequest::new("ws://example.com/chat").expect("a ws:// URL");
//! let rng = |seed| ChaCha8Rng::seed_from_u64(seed);
//! let mut client = Connection::client(request, Config::default(), rng(1), now);
//! let mut server = Connection::server(Config::default(), ServerPolicy::new(), rng(2), now);
//!
//! client.send_text("hello").expect("held until the handshake completes");
//! pump(&mut client, &mut server, now);
//! // The server sees the opening request and accepts it.
//! let Some(Event::Request(request)) = server.poll_event() else { unreachable!() };
//! assert_eq!(request.path(), "/chat");
//! server.accept(now, Default::default()).expect("a valid answer");
//! pump(&mut server, &mut client, now);
//! pump(&mut client, &mut server, now); // the message sent before the 101
//! assert_eq!(server.read(), Some(Data::Message(Message::text("hello"))));
//! ```
//!
//! ## The driving contract
//!
//! Three kinds of calls, in the manner of quinn-proto and rustls:
//!
//! - **Inputs** (`handle_*`, and the read token) take `now`: bytes read
//!   ([`Connection::recv_buf`] then [`RecvBuf::commit`], or [`Connection::handle_data`]), bytes
//!   written ([`Connection::advance`]), end of stream ([`Connection::handle_eof`]) and the passing
//!   of time ([`Connection::handle_timeout`]). A peer's protocol violation is not an error here:
//!   the core queues the right Close and ends with one terminal [`Event::Closed`].
//! - **Commands** ([`Connection::send`], [`Connection::ping`], [`Connection::close`],
//!   [`Connection::accept`], ...) return a typed error on local misuse and then change nothing.
//!   Taking received data is a command too: [`Connection::read`], called when the application
//!   asks for its next message.
//! - **Outputs** (`poll_*`) are pure: asking never changes the protocol state. After every input
//!   or command, write [`Connection::poll_transmit`] (partial and vectored writes are fine),
//!   obey [`Connection::poll_transport`] (half-close, close), hand out
//!   [`Connection::poll_event`]s, then wait for bytes (while [`Connection::wants_read`]) or
//!   [`Connection::poll_timeout`], whichever comes first.
//!
//! Flow control is the core's, in bytes ([`Config::high_watermark`]): a driver never keeps
//! counts of its own, it reads while `wants_read` says so.
//!
//! A blocking driver over `std::net::TcpStream`, in full:
//!
//! ```no_run
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::{Shutdown, TcpStream};
//! use std::time::Instant as StdInstant;
//! use tether::handshake::ClientRequest;
//! use tether::{Config, Connection, Data, Event, Instant, Message, TransportAction};
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
//!     conn.send_text("hello").expect("held until the handshake completes");
//!     let mut shut_down = false;
//!     loop {
//!         // 1. Write what the core queued.
//!         while let Some(transmit) = conn.poll_transmit() {
//!             let n = sock.write(transmit.first())?;
//!             conn.advance(n);
//!         }
//!         // 2. Obey the transport action, hand events and data to the application.
//!         match conn.poll_transport() {
//!             Some(TransportAction::Close) => return Ok(()),
//!             Some(TransportAction::Shutdown) if !shut_down => {
//!                 sock.shutdown(Shutdown::Write)?;
//!                 shut_down = true;
//!             }
//!             _ => {}
//!         }
//!         while let Some(event) = conn.poll_event() {
//!             if let Event::Closed(closed) = event {
//!                 println!("closed: {closed:?}");
//!             }
//!         }
//!         while let Some(data) = conn.read() {
//!             if let Data::Message(Message::Text(t)) = data {
//!                 println!("got {t}");
//!             }
//!         }
//!         // 3. Wait for bytes or for the next deadline, whichever comes first.
//!         let timeout = conn.poll_timeout().map(|t| t - now());
//!         sock.set_read_timeout(timeout.filter(|d| !d.is_zero()))?;
//!         if conn.wants_read() {
//!             // The buffer borrows the connection until it is committed (0 bytes: nothing).
//!             let mut buf = conn.recv_buf();
//!             let read = sock.read(&mut buf);
//!             buf.commit(now(), *read.as_ref().unwrap_or(&0));
//!             match read {
//!                 Ok(0) => conn.handle_eof(now()),
//!                 Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
//!                     conn.handle_eof(now());
//!                 }
//!                 _ => {}
//!             }
//!         }
//!         conn.handle_timeout(now());
//!     }
//! }
//! ```
//!
//! ### Reading is explicit
//!
//! Events ([`Event`]) say what happened; received data ([`Data`]) waits in the core until the
//! application takes it with [`Connection::read`]. A driver may drain events eagerly, but it
//! calls `read` only when the application asks for a message. That is how the core knows what
//! the application has seen: when the peer breaks the protocol, or sends its Close, right
//! behind data the application has not taken yet, the core waits (at most
//! [`Config::close_timeout`], and one second once all of it was taken) until the application has
//! taken it and come back for more, so
//! its replies go out before our Close, as a peer reading frame by frame would see them. A
//! driver whose application stops reading for good says so with
//! [`Connection::discard_incoming`].
//!
//! ### One word, one meaning
//!
//! A connection is *closed* once its [`Closed`] record exists ([`Connection::closed`],
//! [`Event::Closed`], [`State::Closed`], [`SendErrorKind::Closed`], [`CloseError::Closed`]); it
//! is *closing* while our Close waits for the peer's. The transport is a separate matter,
//! driven by [`TransportAction`]: `Shutdown` (half-close) and `Close`.
//!
//! A connection can also start already open ([`Connection::open`]), after an upgrade done
//! elsewhere (hyper, axum, an HTTP/2 extended CONNECT); the framing does not depend on how the
//! handshake happened. The [`handshake`] module exposes the validation rules as pure functions
//! for such integrations.
//!
//! ## Features
//! - `std` (default): conversion from `std::time::Instant` and `std::error::Error` impls.
//!   Without it the crate is `no_std` + `alloc`.
//! - `deflate`: permessage-deflate (RFC 7692) compression, over zlib-rs; needs `std`. The
//!   negotiation in [`deflate`] is there without it, but nothing is offered or accepted.
//! - `tracing`: events through `tracing` (works without `std`): `connecting`, `open`,
//!   `closing`, `closed` (code, reason, initiator, clean, cause), heartbeat Pings (trace),
//!   Pongs with the RTT (debug) and misses (warn), and every decision of the reconnect
//!   [`Supervisor`](reconnect::Supervisor) (connecting, retrying after a delay, giving up and
//!   why). The drivers put them in a span per connection. Without the feature the calls are
//!   not compiled at all.
//!
//! Counters of what a connection did (messages, payload and wire bytes each way, Pings,
//! Pongs, RTT) are always kept: [`Connection::stats`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod close;
mod config;
mod connection;
pub mod deflate;
pub mod error;
mod event;
pub mod frame;
pub mod handshake;
mod linger;
pub mod mask;
mod message;
mod prepared;
pub mod reconnect;
mod recv;
pub mod resume;
mod send;
mod stats;
mod time;
mod timer;
mod trace;
mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use config::{Config, Heartbeat};
pub use connection::{Connection, RecvBuf, Role, State};
pub use error::{CloseError, ProtocolError, SendError, SendErrorKind};
pub use event::{CloseCause, Closed, Data, Event, Initiator, TransportAction};
pub use message::{DataKind, Message, Utf8Bytes};
pub use prepared::PreparedMessage;
pub use send::Transmit;
pub use stats::Stats;
pub use time::Instant;

/// The byte buffers payloads travel in.
pub use bytes::{self, Bytes};
/// The randomness trait the core takes its masking keys, nonces and jitter from.
pub use rand_core;
