//! tokio as a [`Runtime`]: tasks, timers that follow tokio's (possibly paused) clock, TCP.

use std::any::Any;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use tether_io::{Listener, Runtime, Timer, Transport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The tokio runtime (the one running where a connection is opened or accepted).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    type Timer = Sleep;
    type Tcp = TokioIo<TcpStream>;
    type Listener = TokioListener;

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(future);
    }

    fn timer() -> Sleep {
        Sleep(Box::pin(tokio::time::sleep(std::time::Duration::ZERO)))
    }

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    async fn connect(host: &str, port: u16) -> io::Result<TokioIo<TcpStream>> {
        let tcp = TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        Ok(TokioIo(tcp))
    }

    fn listener(listener: std::net::TcpListener) -> io::Result<TokioListener> {
        TcpListener::from_std(listener).map(TokioListener)
    }
}

/// A tokio sleep, re-armed in place.
#[derive(Debug)]
pub struct Sleep(Pin<Box<tokio::time::Sleep>>);

impl Timer for Sleep {
    fn reset(&mut self, deadline: Instant) {
        self.0
            .as_mut()
            .reset(tokio::time::Instant::from_std(deadline));
    }

    fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// A tokio TCP listener.
#[derive(Debug)]
pub struct TokioListener(pub TcpListener);

impl Listener for TokioListener {
    type Stream = TokioIo<TcpStream>;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Stream, SocketAddr)>> {
        let (stream, peer) = ready!(self.0.poll_accept(cx))?;
        let _ = stream.set_nodelay(true);
        Poll::Ready(Ok((TokioIo(stream), peer)))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Any tokio byte stream as a [`Transport`].
#[derive(Debug)]
pub struct TokioIo<S>(pub S);

impl<S> Transport for TokioIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut read_buf = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.0).poll_read(cx, &mut read_buf))?;
        Poll::Ready(Ok(read_buf.filled().len()))
    }

    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Readiness first; then `poll_read`, which (unlike `try_read`) clears readiness after
        // a short read and so spares the next round a `recvfrom` that would say EAGAIN.
        // Only a plain TcpStream can tell; other streams are simply read.
        let plain = (&mut self.0 as &mut dyn Any).downcast_mut::<TcpStream>();
        plain.map_or(Poll::Ready(Ok(())), |tcp| tcp.poll_read_ready(cx))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = Pin::new(&mut self.0);
        if stream.is_write_vectored() {
            stream.poll_write_vectored(cx, bufs)
        } else {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            stream.poll_write(cx, first)
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn abort(&mut self) {
        if let Some(tcp) = (&self.0 as &dyn Any).downcast_ref::<TcpStream>() {
            let _ = tcp.set_zero_linger();
        }
    }

    fn ends_when_dropped(&self) -> bool {
        (&self.0 as &dyn Any).is::<TcpStream>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only plain TCP ends its write side by being dropped; any other stream (a pipe here, TLS
    /// in the engine) is shut down first.
    #[test]
    fn only_tcp_ends_when_dropped() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tcp = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            assert!(TokioIo(tcp).ends_when_dropped());
            let (pipe, _other) = tokio::io::duplex(64);
            assert!(!TokioIo(pipe).ends_when_dropped());
        });
    }
}
