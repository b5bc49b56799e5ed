//! The two transport operations every driver loop needs: read into the core's buffer and write
//! the core's output, vectored.

use std::any::Any;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tether::Connection;
use tether::reconnect::Session;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How many slices one vectored write passes at most.
const MAX_SLICES: usize = 64;

/// A core that offers its input buffer.
pub(crate) trait ReadTarget {
    fn read_buf(&mut self) -> &mut [u8];
}

impl ReadTarget for Connection {
    fn read_buf(&mut self) -> &mut [u8] {
        Connection::read_buf(self)
    }
}

impl ReadTarget for Session {
    fn read_buf(&mut self) -> &mut [u8] {
        Session::read_buf(self)
    }
}

/// Reads once into `core`'s buffer. A plain TCP stream is read only once it is readable, so an
/// idle connection does not allocate its read buffer; other streams read through `poll_read`
/// straight into the core's buffer.
pub(crate) fn poll_read_into<S, T>(
    stream: &mut S,
    cx: &mut Context<'_>,
    core: &mut T,
) -> Poll<io::Result<usize>>
where
    S: AsyncRead + Unpin + Any,
    T: ReadTarget,
{
    if let Some(tcp) = tcp_of(stream) {
        // Readiness first, so an idle connection allocates no read buffer; then `poll_read`,
        // which (unlike `try_read`) clears readiness after a short read and so spares the next
        // round a `recvfrom` that would only answer EAGAIN.
        std::task::ready!(tcp.poll_read_ready(cx))?;
        let mut buf = ReadBuf::new(core.read_buf());
        std::task::ready!(Pin::new(tcp).poll_read(cx, &mut buf))?;
        return Poll::Ready(Ok(buf.filled().len()));
    }
    let mut buf = ReadBuf::new(core.read_buf());
    std::task::ready!(Pin::new(stream).poll_read(cx, &mut buf))?;
    Poll::Ready(Ok(buf.filled().len()))
}

/// Writes the first runs of `slices` with one (vectored, where the stream supports it) write.
pub(crate) fn poll_write_out<'a, S>(
    stream: &mut S,
    cx: &mut Context<'_>,
    slices: impl Iterator<Item = &'a [u8]>,
) -> Poll<io::Result<usize>>
where
    S: AsyncWrite + Unpin,
{
    let mut buf = [IoSlice::new(&[]); MAX_SLICES];
    let mut count = 0;
    for (slot, s) in buf.iter_mut().zip(slices) {
        *slot = IoSlice::new(s);
        count += 1;
    }
    if count <= 1 || !stream.is_write_vectored() {
        Pin::new(stream).poll_write(cx, &buf[0])
    } else {
        Pin::new(stream).poll_write_vectored(cx, &buf[..count])
    }
}

/// The TCP stream under `stream`, when it is a plain one.
fn tcp_of<S: Any>(stream: &mut S) -> Option<&mut TcpStream> {
    let any = stream as &mut dyn Any;
    if any.is::<TcpStream>() {
        return any.downcast_mut::<TcpStream>();
    }
    match any.downcast_mut::<crate::MaybeTlsStream>() {
        Some(crate::MaybeTlsStream::Plain(tcp)) => Some(tcp),
        _ => None,
    }
}
