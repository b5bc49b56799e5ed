//! The blocking runtime: each task (a connection's driver, a reconnecting client) runs on a
//! thread of its own with `async_io::block_on`; sockets, timers and TLS are the smol glue's.
//! Blocking calls wait with `async_io::block_on` in the caller's thread.

use std::io;
use std::time::{Duration, Instant};

use tether_io::Runtime;
use tether_smol::{Smol, SmolListener, SmolTimer};

/// Stack size of a connection thread: it only moves bytes between the socket and the core.
const STACK: usize = 256 << 10;

/// Blocking std: a thread per connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Std;

impl Runtime for Std {
    type Timer = SmolTimer;
    type Tcp = <Smol as Runtime>::Tcp;
    type Listener = SmolListener;

    /// A task that cannot get a thread (out of threads or memory maps) is dropped, which ends
    /// its connection (every waiter sees an abnormal end); the others go on.
    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        let _ = std::thread::Builder::new()
            .name("tether-std".into())
            .stack_size(STACK)
            .spawn(move || async_io::block_on(future));
    }

    fn timer() -> SmolTimer {
        Smol::timer()
    }

    fn now() -> Instant {
        Instant::now()
    }

    fn connect(host: &str, port: u16) -> impl Future<Output = io::Result<Self::Tcp>> + Send {
        Smol::connect(host, port)
    }

    fn listener(listener: std::net::TcpListener) -> io::Result<SmolListener> {
        Smol::listener(listener)
    }
}

/// Waits for `fut` in the calling thread.
pub(crate) fn wait<F: Future>(fut: F) -> F::Output {
    async_io::block_on(fut)
}

/// Waits for `fut` at most `timeout` (`None` when it ran out; `fut` must be cancel safe).
pub(crate) fn wait_for<F: Future>(timeout: Duration, fut: F) -> Option<F::Output> {
    wait(tether_io::timeout::<Std, _>(timeout, fut))
}
