//! The two transport operations every driver loop needs: read into the core's buffer and write
//! the core's output, vectored.

use std::any::Any;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tether::{Connection, Transmit};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How many slices one vectored write passes at most.
const MAX_SLICES: usize = 64;

/// Reads once straight into `conn`'s input buffer and commits what arrived; `Ok(0)` is the end
/// of the stream. A plain TCP stream is read only once it is readable, so an idle connection
/// does not allocate its read buffer.
pub(crate) fn poll_read_into<S>(
    stream: &mut S,
    cx: &mut Context<'_>,
    conn: &mut Connection,
    now: tether::Instant,
) -> Poll<io::Result<usize>>
where
    S: AsyncRead + Unpin + Any,
{
    if let Some(tcp) = tcp_of(stream) {
        // Readiness first; then `poll_read`, which (unlike `try_read`) clears readiness after a
        // short read and so spares the next round a `recvfrom` that would only say EAGAIN.
        ready!(tcp.poll_read_ready(cx))?;
        return read(Pin::new(tcp), cx, conn, now);
    }
    read(Pin::new(stream), cx, conn, now)
}

fn read<S: AsyncRead + ?Sized>(
    stream: Pin<&mut S>,
    cx: &mut Context<'_>,
    conn: &mut Connection,
    now: tether::Instant,
) -> Poll<io::Result<usize>> {
    // Dropping the token without a commit (pending, error) means nothing was read.
    let mut buf = conn.recv_buf();
    let mut read_buf = ReadBuf::new(&mut buf);
    ready!(stream.poll_read(cx, &mut read_buf))?;
    let n = read_buf.filled().len();
    buf.commit(now, n);
    Poll::Ready(Ok(n))
}

/// Writes the first runs of `transmit` with one (vectored, where the stream supports it) write.
pub(crate) fn poll_write_out<S>(
    stream: &mut S,
    cx: &mut Context<'_>,
    transmit: &Transmit<'_>,
) -> Poll<io::Result<usize>>
where
    S: AsyncWrite + Unpin,
{
    if !stream.is_write_vectored() {
        return Pin::new(stream).poll_write(cx, transmit.first());
    }
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let count = transmit.io_slices(&mut slices);
    Pin::new(stream).poll_write_vectored(cx, &slices[..count])
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
