//! The driver: the loop that owns the transport. It reads into the core while the core wants
//! reads, writes what the core queued (everything queued since the last wake-up in one
//! vectored write), obeys transport actions, sleeps until the next deadline and wakes the
//! reader when input arrived. Nothing else: it never takes received data.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use atomic_waker::AtomicWaker;

use tether::{CloseCode, State, TransportAction};

use crate::clock::{CoreTimer, now};
use crate::runtime::{Runtime, Transport};
use crate::shared::{Inner, Shared, Wake};

/// Reads and writes per wake-up before yielding to other tasks.
const BUDGET: usize = 32;
/// How long closing the transport (a TLS close_notify) may take once the core asked for it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Owns the transport and drives one connection until the transport is closed.
pub(crate) struct Driver<R: Runtime> {
    shared: Arc<Shared>,
    timer: CoreTimer<R>,
    /// The write side was shut down (the core's `TransportAction::Shutdown`).
    shut_down: bool,
    /// The core said `TransportAction::Close`; whether the write side was already shut down.
    closing: Option<bool>,
    /// The timer runs for [`SHUTDOWN_TIMEOUT`]: armed only when the shutdown did not finish
    /// at once (a timer armed and dropped per connection costs tokio a wake-up of its I/O
    /// driver, a syscall, when no other timer runs).
    shutdown_timer: bool,
    /// The transport is closed and everyone was told.
    finished: bool,
    /// Dropped with the driver: e.g. a server's connection slot.
    _guard: Option<crate::server::Slot>,
    /// Runs once the transport is closed, without the shared state locked (a server parks
    /// the connection's resumable session).
    end_hook: Option<EndHook>,
}

/// See [`Driver::on_end`].
pub(crate) type EndHook = Box<dyn FnOnce() + Send>;

impl<R: Runtime> Driver<R> {
    /// Drives the connection in `shared` over `stream`, which moves into the shared state
    /// (where a send can write at once, see `Shared::poll_command`).
    pub(crate) fn new(stream: impl Transport, shared: Arc<Shared>) -> Self {
        shared.lock().stream = Some(Box::new(stream));
        Driver {
            shared,
            timer: CoreTimer::new(),
            shut_down: false,
            closing: None,
            shutdown_timer: false,
            finished: false,
            _guard: None,
            end_hook: None,
        }
    }

    /// Runs `hook` once the transport is closed (or the driver dropped), after the shared
    /// state was unlocked.
    pub(crate) fn on_end(&mut self, hook: EndHook) {
        self.end_hook = Some(hook);
    }

    /// Keeps `guard` alive until the transport is closed.
    pub(crate) fn hold(&mut self, guard: crate::server::Slot) {
        self._guard = Some(guard);
    }

    /// Runs the driver in a task of its own until the transport is closed.
    pub(crate) fn spawn(mut self) {
        R::spawn(async move { poll_fn(|cx| self.poll_drive(cx)).await });
    }

    /// One round of the loop; `Ready` once the transport is closed.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.finished {
            return Poll::Ready(());
        }
        let shared = Arc::clone(&self.shared);
        shared.router.register_driver(cx.waker());
        let mut inner = shared.lock();
        match &inner.driver_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.driver_waker = Some(cx.waker().clone()),
        }
        let mut wake = Wake::default();
        let result = self.run(cx, &mut inner, &mut wake);
        drop(inner);
        wake.run();
        if result.is_ready()
            && let Some(hook) = self.end_hook.take()
        {
            hook();
        }
        result
    }

    fn run(&mut self, cx: &mut Context<'_>, inner: &mut Inner, wake: &mut Wake) -> Poll<()> {
        // One clock reading per wake-up: the rounds of one poll take microseconds.
        let now = now::<R>();
        for _ in 0..BUDGET {
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
                progress |= inner.write(cx, wake).unwrap_or(true);
                let action = inner.conn.poll_transport();
                if action == Some(TransportAction::Close) {
                    if inner.read_eof {
                        // The peer ended its side: closing plain TCP sends our FIN, so its
                        // shutdown would only add a syscall.
                        let ends = Self::stream(inner).ends_when_dropped();
                        self.closing = Some(self.shut_down || ends);
                    } else {
                        // Given up before the peer ended its side (the close timeout or the
                        // linger passed, or the connection failed): whatever the peer did
                        // not read must not keep the socket alive in the kernel, so reset.
                        Self::stream(inner).abort();
                        self.closing = Some(true);
                    }
                } else if action == Some(TransportAction::Shutdown)
                    && !self.shut_down
                    && Self::stream(inner).poll_shutdown(cx).is_ready()
                {
                    // Half-closed once (a TLS close_notify, then FIN); reading goes on, the
                    // core discarding what arrives, until the peer's end of stream.
                    self.shut_down = true;
                    progress = true;
                }
            }
            if let Some(shut_down) = self.closing {
                // Best effort: a peer that stopped reading cannot hold the task.
                let done = shut_down || Self::stream(inner).poll_shutdown(cx).is_ready();
                if !done && !self.shutdown_timer {
                    self.shutdown_timer = true;
                    self.timer.reset_after(SHUTDOWN_TIMEOUT);
                }
                let expired = !done && self.timer.poll_elapsed(cx);
                if done || expired {
                    if expired {
                        Self::stream(inner).abort();
                    }
                    self.finish(inner, wake);
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }
            if !inner.read_eof && inner.conn.wants_read() && inner.read_transport(Some(now)) {
                inner.input_arrived(wake);
                progress = true;
            }
            // The timer once the I/O is idle (polling it registers the waker).
            if !progress {
                match self.timer.due(cx, inner.conn.poll_timeout(), now) {
                    Some(at) => {
                        inner.conn.handle_timeout(at);
                        inner.input_arrived(wake);
                    }
                    None => return Poll::Pending,
                }
            }
        }
        // Out of budget: a deadline that passed meanwhile is not starved by busy I/O; then
        // let other tasks run, and carry on.
        if let Some(at) = self.timer.due(cx, inner.conn.poll_timeout(), now) {
            inner.conn.handle_timeout(at);
            inner.input_arrived(wake);
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn finish(&mut self, inner: &mut Inner, wake: &mut Wake) {
        self.finished = true;
        // Closing the transport: dropped here, with the guard (a server's slot) after it.
        inner.stream = None;
        self._guard = None;
        inner.finish(wake);
    }

    /// The transport (in the shared state until the end).
    fn stream(inner: &mut Inner) -> &mut dyn Transport {
        inner
            .stream
            .as_deref_mut()
            .expect("the transport is in the shared state while the driver runs")
    }
}

/// A connection's handler and its driver, polled by one task (`Connecting::serve`); ready once
/// both are done. The driver is polled only when something woke it (its own waker says so),
/// so a message the handler receives and answers costs no round of the driver.
pub(crate) struct Together<'a, R: Runtime, F> {
    handler: Pin<&'a mut F>,
    driver: Driver<R>,
    wake: Arc<DriverWake>,
    handled: bool,
    driven: bool,
}

/// The driver's waker inside a [`Together`]: notes that the driver has work, then wakes the
/// task, unless the task is polling the handler: the driver's turn comes right after that
/// (a handler's first reply to a batch of messages wakes the driver, and a second poll of the
/// task for it cost a round of every future in it).
struct DriverWake {
    woken: AtomicBool,
    /// The handler is being polled; the driver's `woken` is looked at once it returns.
    in_handler: AtomicBool,
    task: AtomicWaker,
}

impl std::task::Wake for DriverWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Sequentially consistent, with the handler's poll below: a wake-up that finds the
        // handler being polled is seen by the `woken.swap` that follows the poll.
        self.woken.store(true, Ordering::SeqCst);
        if !self.in_handler.load(Ordering::SeqCst) {
            self.task.wake();
        }
    }
}

/// Marks the handler's poll in a [`DriverWake`] (cleared on unwinding too).
struct InHandler<'a>(&'a AtomicBool);

impl<'a> InHandler<'a> {
    fn enter(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::SeqCst);
        InHandler(flag)
    }
}

impl Drop for InHandler<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl<'a, R: Runtime, F> Together<'a, R, F> {
    pub(crate) fn new(handler: Pin<&'a mut F>, driver: Driver<R>) -> Self {
        Together {
            handler,
            driver,
            // The first poll runs the driver, which registers its wakers.
            wake: Arc::new(DriverWake {
                woken: AtomicBool::new(true),
                in_handler: AtomicBool::new(false),
                task: AtomicWaker::new(),
            }),
            handled: false,
            driven: false,
        }
    }
}

// The handler is pinned behind its reference; the driver is polled through `&mut` anyway.
impl<R: Runtime, F> Unpin for Together<'_, R, F> {}

impl<R: Runtime, F: Future<Output = ()>> Future for Together<'_, R, F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.wake.task.register(cx.waker());
        // The handler first: what it sent is then written in the driver's round.
        if !this.handled {
            let _polling = InHandler::enter(&this.wake.in_handler);
            this.handled = this.handler.as_mut().poll(cx).is_ready();
        }
        if !this.driven && this.wake.woken.swap(false, Ordering::SeqCst) {
            let waker = Waker::from(Arc::clone(&this.wake));
            this.driven = this
                .driver
                .poll_drive(&mut Context::from_waker(&waker))
                .is_ready();
        }
        if this.handled && this.driven {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A driver dropped before the transport was closed (its runtime shut down, its task was
/// cancelled or panicked) ends the connection: every waiter wakes to an abnormal end instead
/// of waiting forever.
impl<R: Runtime> Drop for Driver<R> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let mut inner = shared.lock();
        let mut wake = Wake::default();
        let now = now::<R>();
        if inner.conn.closed().is_none() {
            inner.conn.handle_eof(now);
        }
        self.finish(&mut inner, &mut wake);
        drop(inner);
        wake.run();
        if let Some(hook) = self.end_hook.take() {
            hook();
        }
    }
}
