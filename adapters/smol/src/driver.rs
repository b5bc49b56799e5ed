//! The background driver: the adapter's loop. It reads into the core, writes what the core
//! queued, sleeps until the next deadline or the next read, and tells the handles when the
//! core has news for them.

use std::any::Any;
use std::future::Future;
use std::io::{self, ErrorKind, IoSlice, Read};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use async_io::{Async, Timer};
use futures_io::{AsyncRead, AsyncWrite};
use tether::{Connection, Instant, TransportAction};

use crate::client::MaybeTlsStream;
use crate::shared::{SharedRef, lock, now};

/// Most slices handed to one vectored write.
const MAX_SLICES: usize = 64;
/// Reads per poll before the driver yields to other tasks.
const READ_BUDGET: usize = 16;

/// A connection slot of a [`Server`](crate::Server) or anything else that must be released
/// when the connection's transport is gone.
pub(crate) type Guard = Box<dyn Send + Sync>;

/// The future that owns the transport; it ends once the transport is closed.
pub(crate) struct Driver<S> {
    shared: SharedRef,
    stream: S,
    timer: Timer,
    armed: Option<Instant>,
    needs_flush: bool,
    shutting_down: bool,
    guard: Option<Guard>,
    /// The socket under a plain TCP stream: the driver waits for it to be readable before it
    /// asks the core for a read buffer, so an idle connection holds none.
    tcp: Option<Arc<Async<TcpStream>>>,
    /// The socket reported readable and may still hold data.
    readable: bool,
}

impl<S: Any> Driver<S> {
    pub(crate) fn new(shared: SharedRef, stream: S, guard: Option<Guard>) -> Self {
        let tcp = plain_tcp(&stream);
        Driver {
            shared,
            stream,
            timer: Timer::never(),
            armed: None,
            needs_flush: false,
            shutting_down: false,
            guard,
            tcp,
            readable: false,
        }
    }
}

/// The socket of a plain TCP stream (no TLS layer that could hold decrypted bytes).
fn plain_tcp(stream: &dyn Any) -> Option<Arc<Async<TcpStream>>> {
    if let Some(tcp) = stream.downcast_ref::<async_net::TcpStream>() {
        return Some(tcp.clone().into());
    }
    match stream.downcast_ref::<MaybeTlsStream>() {
        Some(MaybeTlsStream::Plain(tcp)) => Some(tcp.clone().into()),
        _ => None,
    }
}

/// One vectored write of the core's output.
pub(crate) fn poll_write_slices<'a, S: AsyncWrite + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    output: impl Iterator<Item = &'a [u8]>,
) -> Poll<std::io::Result<usize>> {
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let mut count = 0;
    for (slot, bytes) in slices.iter_mut().zip(output) {
        *slot = IoSlice::new(bytes);
        count += 1;
    }
    Pin::new(stream).poll_write_vectored(cx, &slices[..count])
}

/// Converts a deadline on the core's clock to one on `std`'s.
pub(crate) fn to_std(deadline: Instant) -> std::time::Instant {
    let std_now = std::time::Instant::now();
    std_now + deadline.saturating_duration_since(Instant::from(std_now))
}

impl<S: AsyncRead + Unpin> Driver<S> {
    /// One read into the core's buffer. A plain TCP socket is read only once it reported
    /// readable, so the buffer is not asked for (allocated) while the connection is idle.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        conn: &mut Connection,
    ) -> Poll<io::Result<usize>> {
        let Some(tcp) = &self.tcp else {
            return Pin::new(&mut self.stream).poll_read(cx, conn.read_buf());
        };
        loop {
            if !self.readable {
                ready!(tcp.poll_readable(cx))?;
                self.readable = true;
            }
            let buf = conn.read_buf();
            let offered = buf.len();
            match tcp.get_ref().read(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readable = false,
                Ok(n) => {
                    // A short read most likely drained the socket: wait for readiness again
                    // rather than offering a buffer to an empty socket.
                    if n < offered {
                        self.readable = false;
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Driver<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let shared = this.shared.clone();
        let mut st = lock(&shared);
        let state = st.conn.state();
        let mut reads = 0;
        let mut news = false;
        let mut wake_writer = false;
        let result = loop {
            // 1. Write what the core queued, as far as the transport takes it.
            if !this.shutting_down {
                while st.conn.buffered_output() > 0 {
                    let written = poll_write_slices(&mut this.stream, cx, st.conn.output_slices());
                    match written {
                        Poll::Ready(Ok(0)) => {
                            st.conn.handle_eof(now());
                            news = true;
                            break;
                        }
                        Poll::Ready(Ok(n)) => {
                            st.conn.consume_output(n);
                            this.needs_flush = true;
                            wake_writer = true;
                        }
                        Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                        Poll::Ready(Err(_)) => {
                            st.conn.handle_eof(now());
                            news = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
                if this.needs_flush && st.conn.buffered_output() == 0 {
                    match Pin::new(&mut this.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => this.needs_flush = false,
                        Poll::Ready(Err(_)) => {
                            this.needs_flush = false;
                            st.conn.handle_eof(now());
                            news = true;
                        }
                        Poll::Pending => {}
                    }
                }
            }
            // 2. Obey the transport action; take the events that need no user (Pings and
            //    Pongs while no message waits, everything once closing). Messages stay in the
            //    core until the user asks for them.
            if let Some(TransportAction::Close) = st.conn.poll_transport() {
                this.shutting_down = true;
                // The connection is over: release its slot before anyone can see the end.
                this.guard = None;
                // Bound a TLS close_notify that the peer never reads.
                let limit = st.conn.config().close_timeout;
                this.timer.set_after(limit);
            }
            news |= st.pull_ahead();
            if this.shutting_down {
                let closed = Pin::new(&mut this.stream).poll_close(cx).is_ready()
                    || Pin::new(&mut this.timer).poll(cx).is_ready();
                break if closed {
                    st.done = true;
                    news = true;
                    wake_writer = true;
                    Poll::Ready(())
                } else {
                    Poll::Pending
                };
            }
            // 3. Read straight into the core's buffer, unless it wants no more: its output is
            //    full, or the user has not taken what came (backpressure reaches the peer
            //    through the transport). Taking a message wakes this driver.
            if st.conn.wants_read() {
                if reads == READ_BUDGET {
                    cx.waker().wake_by_ref();
                    break Poll::Pending;
                }
                match this.poll_read(cx, &mut st.conn) {
                    Poll::Ready(Ok(0)) => {
                        st.conn.handle_eof(now());
                        news = true;
                        continue;
                    }
                    Poll::Ready(Ok(n)) => {
                        reads += 1;
                        st.conn.handle_read(now(), n);
                        news = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => continue,
                    Poll::Ready(Err(_)) => {
                        st.conn.handle_eof(now());
                        news = true;
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            // 4. Sleep until the next deadline.
            let deadline = st.conn.poll_timeout();
            if deadline != this.armed {
                this.armed = deadline;
                match deadline {
                    Some(at) => this.timer.set_at(to_std(at)),
                    None => this.timer = Timer::never(),
                }
            }
            if deadline.is_some() && Pin::new(&mut this.timer).poll(cx).is_ready() {
                this.armed = None;
                st.conn.handle_timeout(now());
                news = true;
                continue;
            }
            st.set_driver(cx.waker());
            break Poll::Pending;
        };
        let wake_writer = wake_writer || st.conn.state() != state;
        let wake = st.wake_users(news, wake_writer);
        drop(st);
        wake.run();
        result
    }
}

impl<S> Drop for Driver<S> {
    /// A driver that is dropped before the transport closed (its executor went away) ends the
    /// connection, so that no handle waits forever.
    fn drop(&mut self) {
        let mut st = lock(&self.shared);
        if st.done {
            return;
        }
        st.conn.abort();
        let _ = st.conn.poll_transport();
        st.pull_ahead();
        st.done = true;
        let wake = st.wake_users(true, true);
        drop(st);
        wake.run();
    }
}

#[cfg(test)]
mod tests {
    use crate::shared::lock;
    use crate::{ClientConfig, ServerConfig, accept, connect};

    /// Over plain TCP the driver waits for readability before it asks the core for a read
    /// buffer, so once the traffic stops the core holds no input buffer.
    #[test]
    fn an_idle_tcp_connection_holds_no_read_buffer() {
        let limit = async {
            async_io::Timer::after(std::time::Duration::from_secs(30)).await;
            panic!("timed out");
        };
        smol::block_on(futures_lite::FutureExt::or(
            async {
                let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let _server = smol::spawn(async move {
                    let (stream, _) = listener.accept().await.unwrap();
                    let mut ws = accept(stream, ServerConfig::default()).await.unwrap();
                    while let Some(Ok(message)) = ws.recv().await {
                        if ws.send(message).await.is_err() {
                            break;
                        }
                    }
                });
                let (mut ws, _) = connect(&format!("ws://{addr}/"), ClientConfig::default())
                    .await
                    .unwrap();
                ws.send_binary(vec![7u8; 256 << 10]).await.unwrap();
                assert_eq!(ws.recv().await.unwrap().unwrap().len(), 256 << 10);
                ws.send_text("idle now").await.unwrap();
                assert_eq!(ws.recv().await.unwrap().unwrap().len(), 8);
                let memory = lock(ws.shared()).conn.buffer_memory();
                assert!(memory <= 1024, "an idle connection holds {memory} bytes");
            },
            limit,
        ));
    }
}
