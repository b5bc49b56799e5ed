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

/// Where the write side of the transport is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteSide {
    Open,
    /// [`TransportAction::Shutdown`]: the write half is being closed (TLS `close_notify`, then
    /// the TCP FIN) while reading goes on.
    ShuttingDown,
    Shut,
}

/// The future that owns the transport; it ends once the transport is closed.
pub(crate) struct Driver<S> {
    shared: SharedRef,
    stream: S,
    timer: Timer,
    armed: Option<Instant>,
    needs_flush: bool,
    write_side: WriteSide,
    /// [`TransportAction::Close`] came: the transport is being closed.
    closing: bool,
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
            write_side: WriteSide::Open,
            closing: false,
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

/// Converts a deadline on the core's clock to one on `std`'s.
pub(crate) fn to_std(deadline: Instant) -> std::time::Instant {
    let std_now = std::time::Instant::now();
    std_now + deadline.saturating_duration_since(Instant::from(std_now))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// One vectored write of what the core queued; `None` when nothing is queued.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        conn: &Connection,
    ) -> Option<Poll<io::Result<usize>>> {
        let transmit = conn.poll_transmit()?;
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let count = transmit.io_slices(&mut slices);
        Some(Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count]))
    }

    /// One read into the core's buffer, committed. A plain TCP socket is read only once it
    /// reported readable, so the buffer is not asked for (allocated) while the connection is
    /// idle.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        conn: &mut Connection,
    ) -> Poll<io::Result<usize>> {
        let Some(tcp) = &self.tcp else {
            let mut buf = conn.recv_buf();
            let read = ready!(Pin::new(&mut self.stream).poll_read(cx, &mut buf));
            buf.commit(now(), *read.as_ref().unwrap_or(&0));
            return Poll::Ready(read);
        };
        loop {
            if !self.readable {
                ready!(tcp.poll_readable(cx))?;
                self.readable = true;
            }
            let mut buf = conn.recv_buf();
            let offered = buf.len();
            match tcp.get_ref().read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readable = false,
                Ok(n) => {
                    buf.commit(now(), n);
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
            while let Some(written) = this.poll_write(cx, &st.conn) {
                match written {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        st.conn.advance(n);
                        this.needs_flush = true;
                        wake_writer = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                    Poll::Ready(_) => {
                        st.conn.handle_eof(now());
                        news = true;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            if this.needs_flush && st.conn.poll_transmit().is_none() {
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
            // 2. Obey the transport action (a level). Events are the reader's, unless nobody
            //    will read: then they are dropped here.
            match st.conn.poll_transport() {
                Some(TransportAction::Shutdown) if this.write_side == WriteSide::Open => {
                    this.write_side = WriteSide::ShuttingDown;
                }
                Some(TransportAction::Close) if !this.closing => {
                    this.closing = true;
                    // The connection is over: release its slot before anyone can see the end.
                    this.guard = None;
                    // Bound a TLS close_notify that the peer never reads.
                    let limit = st.conn.config().close_timeout;
                    this.timer.set_after(limit);
                }
                _ => {}
            }
            if st.unread {
                while st.conn.poll_event().is_some() {}
            }
            if this.closing {
                let closed = this.write_side == WriteSide::Shut
                    || Pin::new(&mut this.stream).poll_close(cx).is_ready()
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
            // A half-close: the write side only (TLS close_notify, then FIN), reading goes on
            // (the core discards what arrives) until the peer's end of stream or the core's
            // linger timer turns the action into Close.
            if this.write_side == WriteSide::ShuttingDown
                && Pin::new(&mut this.stream).poll_close(cx).is_ready()
            {
                this.write_side = WriteSide::Shut;
            }
            // 3. Read straight into the core's buffer, unless it wants no more: its output is
            //    full, or the user has not taken what came (backpressure reaches the peer
            //    through the transport). Taking data wakes this driver.
            if st.conn.wants_read() {
                if reads == READ_BUDGET {
                    cx.waker().wake_by_ref();
                    break Poll::Pending;
                }
                match this.poll_read(cx, &mut st.conn) {
                    Poll::Ready(Ok(n)) => {
                        if n == 0 {
                            st.conn.handle_eof(now());
                        }
                        reads += 1;
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
        st.done = true;
        let wake = st.wake_users(true, true);
        drop(st);
        wake.run();
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::task::Poll;
    use std::time::Duration;

    use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
    use tether::CloseCode;

    use crate::shared::lock;
    use crate::{ClientConfig, Error, ServerConfig, accept, connect};

    /// `fut`, or a panic after 30 s.
    fn run<T>(fut: impl Future<Output = T>) -> T {
        smol::block_on(fut.or(async {
            async_io::Timer::after(Duration::from_secs(30)).await;
            panic!("timed out");
        }))
    }

    /// A raw client that completes an opening handshake with `addr`.
    async fn raw_client(addr: std::net::SocketAddr) -> async_net::TcpStream {
        let mut stream = async_net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(
                stream.read(&mut byte).await.unwrap(),
                1,
                "end inside the head"
            );
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "not upgraded");
        stream
    }

    /// A message, then 100 ms later a frame with a reserved bit set, while the user has taken
    /// the message and is about to reply: the reply reaches the peer before our Close 1002.
    #[test]
    fn a_reply_goes_out_before_the_close_for_a_late_violation() {
        run(async {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let peer = smol::spawn(async move {
                let mut raw = raw_client(addr).await;
                // A masked text "A" (mask 0); later, a frame with RSV2 set.
                raw.write_all(&[0x81, 0x81, 0, 0, 0, 0, b'A'])
                    .await
                    .unwrap();
                async_io::Timer::after(Duration::from_millis(100)).await;
                raw.write_all(&[0xA1, 0x80, 0, 0, 0, 0]).await.unwrap();
                let mut seen = Vec::new();
                raw.read_to_end(&mut seen).await.unwrap();
                seen
            });
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = accept(stream, ServerConfig::default()).await.unwrap();
            let message = ws.recv().await.unwrap().unwrap();
            // The violation arrives while the user holds the message: the core reads no
            // further and waits for the user to come back.
            poll_fn(|cx| {
                let mut st = lock(ws.shared());
                if st.conn.wants_read() {
                    st.set_reader(cx.waker());
                    return Poll::Pending;
                }
                Poll::Ready(())
            })
            .await;
            ws.send(message).await.expect("the reply is accepted");
            match ws.recv().await {
                Some(Err(Error::Closed(closed))) => {
                    assert_eq!(closed.code, CloseCode::PROTOCOL_ERROR);
                }
                other => panic!("expected the protocol error, got {other:?}"),
            }
            let seen = peer.await;
            assert_eq!(seen[..3], [0x81, 0x01, b'A'], "the reply first");
            assert_eq!(seen[3], 0x88, "then Close");
            assert_eq!(seen[5..7], 1002u16.to_be_bytes());
        });
    }

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
