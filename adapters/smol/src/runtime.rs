//! smol as a [`Runtime`]: tasks on smol's global executor, async-io timers and sockets.

use std::io::{self, IoSlice};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};
use tether_io::{Listener, Runtime, Timer, Transport};

/// The smol runtime: connection tasks run on smol's global executor, whose threads run on
/// their own, so a connection works from `smol::block_on` and from any other executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl Runtime for Smol {
    type Timer = SmolTimer;
    type Tcp = SmolIo<Async<TcpStream>>;
    type Listener = SmolListener;

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(future).detach();
    }

    fn timer() -> SmolTimer {
        SmolTimer(async_io::Timer::never())
    }

    fn now() -> Instant {
        Instant::now()
    }

    async fn connect(host: &str, port: u16) -> io::Result<SmolIo<Async<TcpStream>>> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for addr in async_net::resolve((host, port)).await? {
            match Async::<TcpStream>::connect(addr).await {
                Ok(tcp) => {
                    let _ = tcp.get_ref().set_nodelay(true);
                    return Ok(SmolIo(tcp));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn listener(listener: std::net::TcpListener) -> io::Result<SmolListener> {
        Async::new(listener).map(SmolListener)
    }
}

/// An async-io timer, re-armed in place.
#[derive(Debug)]
pub struct SmolTimer(async_io::Timer);

impl Timer for SmolTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A TCP listener registered with async-io.
#[derive(Debug)]
pub struct SmolListener(pub Async<std::net::TcpListener>);

impl Listener for SmolListener {
    type Stream = SmolIo<Async<TcpStream>>;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Stream, SocketAddr)>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return Poll::Ready(Async::new(stream).map(|s| (SmolIo(s), peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}

/// Any `futures-io` byte stream as a [`Transport`].
#[derive(Debug)]
pub struct SmolIo<S>(pub S);

impl<S> Transport for SmolIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Only a plain socket can tell; other streams are simply read.
        let plain = (&mut self.0 as &mut dyn std::any::Any).downcast_mut::<Async<TcpStream>>();
        plain.map_or(Poll::Ready(Ok(())), |tcp| tcp.poll_readable(cx))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // async-io's socket only flushes on `poll_close`: the FIN is sent here.
        ready!(Pin::new(&mut self.0).poll_close(cx))?;
        if let Some(tcp) = tcp_under(&self.0) {
            match tcp.get_ref().shutdown(std::net::Shutdown::Write) {
                Err(e) if e.kind() != io::ErrorKind::NotConnected => return Poll::Ready(Err(e)),
                _ => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    fn abort(&mut self) {
        if let Some(tcp) = tcp_under(&self.0) {
            let _ = socket2::SockRef::from(tcp.get_ref()).set_linger(Some(Duration::ZERO));
        }
    }

    fn ends_when_dropped(&self) -> bool {
        tcp_under(&self.0).is_some()
    }
}

/// The TCP socket `stream` is, if it is one.
fn tcp_under<S: 'static>(stream: &S) -> Option<&Async<TcpStream>> {
    (stream as &dyn std::any::Any).downcast_ref::<Async<TcpStream>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only plain TCP ends its write side by being dropped; any other stream (an in-memory
    /// cursor here, TLS in the engine) is shut down first.
    #[test]
    fn only_tcp_ends_when_dropped() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(SmolIo(Async::new(tcp).unwrap()).ends_when_dropped());
        let cursor = futures_lite::io::Cursor::new(Vec::<u8>::new());
        assert!(!SmolIo(cursor).ends_when_dropped());
    }
}
