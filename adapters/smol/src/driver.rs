//! The background driver: the adapter's loop. It reads into the core, writes what the core
//! queued, sleeps until the next deadline or the next read, and hands events to the handles.

use std::future::Future;
use std::io::{ErrorKind, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Timer;
use futures_io::{AsyncRead, AsyncWrite};
use tether::{Instant, TransportAction};

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
}

impl<S> Driver<S> {
    pub(crate) fn new(shared: SharedRef, stream: S, guard: Option<Guard>) -> Self {
        Driver {
            shared,
            stream,
            timer: Timer::never(),
            armed: None,
            needs_flush: false,
            shutting_down: false,
            guard,
        }
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

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Driver<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let shared = this.shared.clone();
        let mut st = lock(&shared);
        let mut reads = 0;
        let mut wake_reader = false;
        let mut wake_writer = false;
        let result = loop {
            // 1. Write what the core queued, as far as the transport takes it.
            if !this.shutting_down {
                while st.conn.buffered_output() > 0 {
                    let written = poll_write_slices(&mut this.stream, cx, st.conn.output_slices());
                    match written {
                        Poll::Ready(Ok(0)) => {
                            st.conn.handle_eof(now());
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
                        }
                        Poll::Pending => {}
                    }
                }
            }
            // 2. Obey the transport action, hand events to the handles.
            if let Some(TransportAction::Close) = st.conn.poll_transport() {
                this.shutting_down = true;
                // The connection is over: release its slot before anyone can see the end.
                this.guard = None;
                // Bound a TLS close_notify that the peer never reads.
                let limit = st.conn.config().close_timeout;
                this.timer.set_after(limit);
            }
            if st.drain_events() {
                wake_reader = true;
                wake_writer = true;
            }
            if this.shutting_down {
                let closed = Pin::new(&mut this.stream).poll_close(cx).is_ready()
                    || Pin::new(&mut this.timer).poll(cx).is_ready();
                break if closed {
                    st.done = true;
                    wake_reader = true;
                    wake_writer = true;
                    Poll::Ready(())
                } else {
                    Poll::Pending
                };
            }
            // 3. Read straight into the core's buffer, unless the core or the user's queue is
            //    full (backpressure reaches the peer through the transport).
            if st.conn.wants_read() {
                if st.has_room() {
                    st.read_paused = false;
                    if reads == READ_BUDGET {
                        cx.waker().wake_by_ref();
                        break Poll::Pending;
                    }
                    let poll = Pin::new(&mut this.stream).poll_read(cx, st.conn.read_buf());
                    match poll {
                        Poll::Ready(Ok(0)) => {
                            st.conn.handle_eof(now());
                            continue;
                        }
                        Poll::Ready(Ok(n)) => {
                            reads += 1;
                            st.conn.handle_read(now(), n);
                            continue;
                        }
                        Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => continue,
                        Poll::Ready(Err(_)) => {
                            st.conn.handle_eof(now());
                            continue;
                        }
                        Poll::Pending => {}
                    }
                } else {
                    st.read_paused = true;
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
                continue;
            }
            st.set_driver(cx.waker());
            break Poll::Pending;
        };
        let wake = st.wake_users(wake_reader, wake_writer);
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
        st.drain_events();
        st.done = true;
        let wake = st.wake_users(true, true);
        drop(st);
        wake.run();
    }
}
