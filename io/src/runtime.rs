//! The runtime interface: the little that differs between async runtimes.
//!
//! Everything else (the driving loop, the handle, the listener's limits, the reconnecting
//! client) is written once over these traits. An implementation is a zero-sized marker type
//! in a glue crate (`tether-tokio`, `tether-smol`), in the manner of quinn's `runtime`
//! module: spawn a task, make a timer, read the clock, open a client transport, wrap a
//! listener.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

/// An async runtime as the engine needs it.
pub trait Runtime: Sized + Send + Sync + 'static {
    /// A resettable one-shot timer.
    type Timer: Timer;
    /// A TCP stream from [`connect`](Runtime::connect).
    type Tcp: Transport;
    /// A bound TCP listener.
    type Listener: Listener;

    /// Runs `future` to completion in the background.
    fn spawn(future: impl Future<Output = ()> + Send + 'static);

    /// A timer that has not been armed yet.
    fn timer() -> Self::Timer;

    /// The runtime's clock (which may be virtual, as tokio's paused time is).
    fn now() -> Instant;

    /// Resolves `host` and connects TCP to one of its addresses, with `TCP_NODELAY`. The
    /// engine bounds it with `ClientConfig::connect_timeout`.
    fn connect(host: &str, port: u16) -> impl Future<Output = io::Result<Self::Tcp>> + Send;

    /// Registers a bound, non-blocking std listener with the runtime.
    fn listener(listener: std::net::TcpListener) -> io::Result<Self::Listener>;
}

/// What a client opens: plain TCP for `ws://`, TLS for `wss://`, either straight to the server
/// or through an HTTP proxy's tunnel.
pub type ClientStream<R> =
    MaybeTls<crate::Tunnel<<R as Runtime>::Tcp>, ClientTls<crate::Tunnel<<R as Runtime>::Tcp>>>;

/// The TLS of a client stream: rustls with the `rustls` feature.
#[cfg(feature = "rustls")]
pub type ClientTls<T> = crate::tls::TlsStream<T>;

/// The TLS of a client stream: none without the `rustls` feature.
#[cfg(not(feature = "rustls"))]
pub type ClientTls<T> = NoTls<T>;

/// A TLS stream that cannot exist: `wss://` without the `rustls` feature is refused before
/// a connection is made.
#[cfg(not(feature = "rustls"))]
#[derive(Debug)]
pub struct NoTls<T> {
    _0: std::convert::Infallible,
    _t: std::marker::PhantomData<fn() -> T>,
}

#[cfg(not(feature = "rustls"))]
impl<T: Send + Unpin + 'static> Transport for NoTls<T> {
    fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
        match self._0 {}
    }
    fn poll_write_vectored(
        &mut self,
        _: &mut Context<'_>,
        _: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self._0 {}
    }
    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self._0 {}
    }
    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self._0 {}
    }
}

/// A one-shot timer that can be re-armed.
pub trait Timer: Send + Unpin + 'static {
    /// Arms the timer for `deadline` (replacing any earlier deadline).
    fn reset(&mut self, deadline: Instant);

    /// Ready once the armed deadline has passed; registers `cx` otherwise.
    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A byte stream the engine drives: TCP, TLS over TCP, a Unix socket, an in-memory pipe.
pub trait Transport: Send + Unpin + 'static {
    /// Reads into `buf`; `Ok(0)` is the end of the stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Ready when a read would make progress. A transport that can tell (plain TCP) lets an
    /// idle connection wait without holding a read buffer; the default says "try a read".
    fn poll_read_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Writes the first bytes of `bufs` (in order); returns how many were written.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Writes the first bytes of `buf`; returns how many were written. The engine calls this
    /// when its output is one slice (a small message's frame): on a socket a plain write is
    /// cheaper than a vectored one (Linux spends ~250 ns more in `writev` of one slice than in
    /// `send`, a few percent of an echo). The default writes it vectored.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Pushes out anything the transport buffers (a TLS record).
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Shuts the write side down (TLS close_notify, then FIN).
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// The connection is being given up with data the peer never took: make closing the
    /// transport reset it (`SO_LINGER` 0) instead of leaving the data queued in the kernel.
    /// The default does nothing (not every transport can).
    fn abort(&mut self) {}

    /// Whether closing the transport (dropping it) ends the write side as well as
    /// [`poll_shutdown`](Transport::poll_shutdown) would: plain TCP, whose close sends the FIN.
    /// Once the peer has ended its side the engine then closes without the shutdown (a
    /// syscall per connection). The default says no (TLS has a close_notify to send).
    fn ends_when_dropped(&self) -> bool {
        false
    }
}

/// A listener accepting TCP connections.
pub trait Listener: Send + Sync + 'static {
    /// The accepted stream.
    type Stream: Transport;

    /// Accepts the next connection (with `TCP_NODELAY` set).
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Stream, SocketAddr)>>;

    /// The address the listener is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// The stream a client opens: plain for `ws://`, TLS for `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTls<P, T> {
    /// `ws://`.
    Plain(P),
    /// `wss://`.
    Tls(T),
}

impl<P: Transport, T: Transport> Transport for MaybeTls<P, T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            MaybeTls::Plain(s) => s.poll_read(cx, buf),
            MaybeTls::Tls(s) => s.poll_read(cx, buf),
        }
    }

    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            MaybeTls::Plain(s) => s.poll_read_ready(cx),
            MaybeTls::Tls(s) => s.poll_read_ready(cx),
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            MaybeTls::Plain(s) => s.poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => s.poll_write_vectored(cx, bufs),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            MaybeTls::Plain(s) => s.poll_write(cx, buf),
            MaybeTls::Tls(s) => s.poll_write(cx, buf),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            MaybeTls::Plain(s) => s.poll_flush(cx),
            MaybeTls::Tls(s) => s.poll_flush(cx),
        }
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            MaybeTls::Plain(s) => s.poll_shutdown(cx),
            MaybeTls::Tls(s) => s.poll_shutdown(cx),
        }
    }

    fn abort(&mut self) {
        match self {
            MaybeTls::Plain(s) => s.abort(),
            MaybeTls::Tls(s) => s.abort(),
        }
    }

    fn ends_when_dropped(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.ends_when_dropped(),
            MaybeTls::Tls(s) => s.ends_when_dropped(),
        }
    }
}
