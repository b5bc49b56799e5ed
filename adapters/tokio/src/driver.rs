//! The driver: the loop that owns the transport. It reads into the core while the core wants
//! reads, writes what the core queued, obeys transport actions, sleeps until the next deadline
//! and wakes the reader when input arrived. Nothing else: it never takes received data.

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
    /// The write side was shut down (the core's `TransportAction::Shutdown`).
    shut_down: bool,
    /// The core said `TransportAction::Close`; whether the write side was already shut down.
    closing: Option<bool>,
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
            shut_down: false,
            closing: None,
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
            if inner.reader_gone {
                // Nobody will take them: Pings and Pongs must not hold up reading.
                while inner.conn.poll_event().is_some() {}
            }
            if self.closing.is_none() {
                progress |= self.write(cx, inner, wake, now);
                let action = inner.conn.poll_transport();
                if action == Some(TransportAction::Close) {
                    self.closing = Some(self.shut_down);
                    self.timer
                        .reset_at(tokio::time::Instant::now() + SHUTDOWN_TIMEOUT);
                } else if action == Some(TransportAction::Shutdown)
                    && !self.shut_down
                    && Pin::new(&mut self.stream).poll_shutdown(cx).is_ready()
                {
                    // Half-closed once (a TLS close_notify, then FIN); reading goes on, the
                    // core discarding what arrives, until the peer's end of stream.
                    self.shut_down = true;
                    progress = true;
                }
            }
            if let Some(shut_down) = self.closing {
                // Best effort: a peer that stopped reading cannot hold the task.
                let done = shut_down
                    || Pin::new(&mut self.stream).poll_shutdown(cx).is_ready()
                    || self.timer.poll_elapsed(cx);
                if done {
                    inner.finish(wake);
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }
            if !self.read_eof && inner.conn.wants_read() && self.read(cx, inner, now) {
                inner.input_arrived(wake);
                progress = true;
            }
            if let Some(at) = self.timer.due(cx, inner.conn.poll_timeout(), now) {
                inner.conn.handle_timeout(at);
                inner.input_arrived(wake);
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
        while let Some(transmit) = inner.conn.poll_transmit() {
            match poll_write_out(&mut self.stream, cx, &transmit) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Ok(0) | Err(_)) => {
                    self.write_failed(inner, wake, now);
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    inner.conn.advance(n);
                    inner.output_consumed(wake);
                    self.flush_needed = true;
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        if self.flush_needed && inner.conn.poll_transmit().is_none() {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush_needed = false,
                Poll::Ready(Err(_)) => {
                    self.write_failed(inner, wake, now);
                    return true;
                }
                Poll::Pending => {}
            }
        }
        progress
    }

    /// The transport cannot take more: it is as good as ended.
    fn write_failed(&mut self, inner: &mut Inner, wake: &mut Wake, now: tether::Instant) {
        inner.conn.handle_eof(now);
        inner.input_arrived(wake);
    }

    /// Reads once into the core's buffer; returns whether anything happened.
    fn read(&mut self, cx: &mut Context<'_>, inner: &mut Inner, now: tether::Instant) -> bool {
        match poll_read_into(&mut self.stream, cx, &mut inner.conn, now) {
            Poll::Pending => false,
            Poll::Ready(Ok(n)) if n > 0 => true,
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => true,
            Poll::Ready(_) => {
                self.read_eof = true;
                inner.conn.handle_eof(now);
                true
            }
        }
    }
}
