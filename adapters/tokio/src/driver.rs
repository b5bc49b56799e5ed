//! The driver: the loop that owns the transport. It reads into the core, writes what the core
//! queued, obeys transport actions, sleeps until the next deadline and tells the reader when
//! events wait for it. Nothing else.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tether::{CloseCode, State, TransportAction};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::clock::{CoreTimer, now};
use crate::io::{poll_read_into, poll_write_out};
use crate::shared::{Inner, Shared, Wake};

/// Reads and writes per wake-up before yielding to other tasks.
const BUDGET: usize = 32;
/// How long closing the transport (a TLS close_notify) may take once the core asked for it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Owns the stream and drives one connection until the transport is closed.
pub(crate) struct Driver<S> {
    stream: S,
    shared: Arc<Shared>,
    timer: CoreTimer,
    flush_needed: bool,
    read_eof: bool,
    shutting_down: bool,
    /// Dropped with the driver: e.g. a server's connection slot.
    _guard: Option<Box<dyn Send + Sync>>,
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(crate) fn new(stream: S, shared: Arc<Shared>) -> Self {
        Driver {
            stream,
            shared,
            timer: CoreTimer::new(),
            flush_needed: false,
            read_eof: false,
            shutting_down: false,
            _guard: None,
        }
    }

    /// Keeps `guard` alive until the transport is closed.
    pub(crate) fn hold(&mut self, guard: Box<dyn Send + Sync>) {
        self._guard = Some(guard);
    }

    /// Runs the driver in its own task until the transport is closed.
    pub(crate) fn spawn(mut self) {
        tokio::spawn(async move { poll_fn(|cx| self.poll_drive(cx)).await });
    }

    /// One round of the loop; `Ready` once the transport is closed.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = Arc::clone(&self.shared);
        let mut inner = shared.lock();
        let mut wake = Wake::default();
        let result = self.run(cx, &mut inner, &mut wake);
        match &inner.driver_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.driver_waker = Some(cx.waker().clone()),
        }
        drop(inner);
        wake.run();
        result
    }

    fn run(&mut self, cx: &mut Context<'_>, inner: &mut Inner, wake: &mut Wake) -> Poll<()> {
        for _ in 0..BUDGET {
            let now = now();
            let mut progress = false;
            if inner.detached() && !inner.detached_handled {
                // Every handle is gone: close politely (bounded by the close timeout).
                inner.detached_handled = true;
                if inner.state() == State::Open {
                    let _ = inner.conn.close(now, CloseCode::GOING_AWAY, "");
                }
            }
            if !self.shutting_down {
                progress |= self.write(cx, inner, wake, now);
                if let Some(TransportAction::Close) = inner.conn.poll_transport() {
                    self.shutting_down = true;
                    self.timer
                        .reset_at(tokio::time::Instant::now() + SHUTDOWN_TIMEOUT);
                }
            }
            inner.take_events(wake);
            if self.shutting_down {
                // Best effort: a peer that stopped reading cannot hold the task.
                let done = Pin::new(&mut self.stream).poll_shutdown(cx).is_ready()
                    || self.timer.poll_elapsed(cx);
                if done {
                    inner.finish(wake);
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }
            if !self.read_eof && inner.conn.wants_read() && inner.has_room() {
                progress |= self.read(cx, inner, now);
            }
            if let Some(at) = self.timer.due(cx, inner.conn.poll_timeout(), now) {
                inner.conn.handle_timeout(at);
                progress = true;
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Out of budget: let other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes what the core queued, vectored; returns whether anything happened.
    fn write(
        &mut self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
        wake: &mut Wake,
        now: tether::Instant,
    ) -> bool {
        let mut progress = false;
        while inner.conn.buffered_output() > 0 {
            let result = poll_write_out(&mut self.stream, cx, inner.conn.output_slices());
            match result {
                Poll::Ready(Ok(0)) => {
                    inner.conn.handle_eof(now);
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    inner.conn.consume_output(n);
                    inner.output_consumed(wake);
                    self.flush_needed = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(_)) => {
                    inner.conn.handle_eof(now);
                    return true;
                }
                Poll::Pending => break,
            }
        }
        if self.flush_needed && inner.conn.buffered_output() == 0 {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush_needed = false,
                Poll::Ready(Err(_)) => {
                    inner.conn.handle_eof(now);
                    return true;
                }
                Poll::Pending => {}
            }
        }
        progress
    }

    /// Reads once into the core's buffer; returns whether anything happened.
    fn read(&mut self, cx: &mut Context<'_>, inner: &mut Inner, now: tether::Instant) -> bool {
        let result = poll_read_into(&mut self.stream, cx, &mut inner.conn);
        match result {
            Poll::Pending => false,
            Poll::Ready(Ok(0)) => {
                self.read_eof = true;
                inner.conn.handle_eof(now);
                true
            }
            Poll::Ready(Ok(n)) => {
                inner.conn.handle_read(now, n);
                true
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => true,
            Poll::Ready(Err(_)) => {
                self.read_eof = true;
                inner.conn.handle_eof(now);
                true
            }
        }
    }
}
