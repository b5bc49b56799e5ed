//! Building blocks of the tests: servers on 127.0.0.1 port 0, an adapter end facing a raw
//! peer in either role, echo threads, and bounded waits on other threads.

use std::net::{SocketAddr, TcpListener};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use tether::handshake::ClientRequest;
use tether::{Closed, Config, Role};
use tether_io::{ClientConfig, ServerConfig};

use crate::harness::{Accepted, Adapter, Conn, Stop};
use crate::raw::{Head, RawPeer, pin_buffers};

/// The longest any single wait may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A listener on 127.0.0.1 port 0, its socket buffers pinned to `buffers` bytes when given.
pub fn listener(buffers: Option<usize>) -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    if let Some(size) = buffers {
        pin_buffers(&listener, size);
    }
    listener
}

/// The adapter's server on a listener of the suite, and the connections it accepted.
pub struct Serving {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Receiver<Box<dyn Conn>>,
    server: std::sync::Arc<dyn Stop>,
}

impl Serving {
    /// The adapter serves on `listener` with `config`.
    pub fn on<A: Adapter>(listener: TcpListener, config: ServerConfig) -> Serving {
        let addr = listener.local_addr().expect("local address");
        let (sender, accepted) = Accepted::new();
        let server = A::serve(listener, config, sender).into();
        Serving {
            addr,
            accepted,
            server,
        }
    }

    /// The server, to shut down (from another thread too).
    pub fn stopper(&self) -> std::sync::Arc<dyn Stop> {
        std::sync::Arc::clone(&self.server)
    }

    /// The adapter serves on 127.0.0.1 port 0 with `config`.
    pub fn start<A: Adapter>(config: ServerConfig) -> Serving {
        Serving::on::<A>(listener(None), config)
    }

    /// A request for the server's `ws://` URL.
    pub fn request(&self) -> ClientRequest {
        ClientRequest::new(&format!("ws://{}/", self.addr)).expect("a valid URL")
    }

    /// The next accepted connection, within [`LIMIT`].
    pub fn next(&self) -> Box<dyn Conn> {
        self.accepted
            .recv_timeout(LIMIT)
            .expect("the adapter's server handed over no connection in time")
    }

    /// The next accepted connection if one comes within `timeout`.
    pub fn try_next(&self, timeout: Duration) -> Option<Box<dyn Conn>> {
        self.accepted.recv_timeout(timeout).ok()
    }

    /// Echoes on every connection from now on, each in a thread of its own.
    pub fn echo_all(self) -> SocketAddr {
        let addr = self.addr;
        thread::spawn(move || {
            while let Ok(conn) = self.accepted.recv() {
                drop(echo(conn));
            }
        });
        addr
    }
}

/// Work running on another thread, waited for with a bound.
pub struct Pending<T> {
    what: &'static str,
    result: Receiver<thread::Result<T>>,
}

/// Runs `f` on a new thread (a small stack: a thousand of these may run at once).
pub fn spawn<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Pending<T> {
    let (sender, result) = mpsc::channel();
    thread::Builder::new()
        .name(what.into())
        .stack_size(256 << 10)
        .spawn(move || {
            let _ = sender.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("spawn a thread");
    Pending { what, result }
}

impl<T> Pending<T> {
    /// Its result, or its panic, within `timeout`; panics if it has not finished by then.
    pub fn wait(self, timeout: Duration) -> T {
        let what = self.what;
        self.try_wait(timeout)
            .unwrap_or_else(|| panic!("{what} did not finish within {timeout:?}"))
    }

    /// Its result, or its panic, within `timeout`; `None` if it has not finished by then.
    pub fn try_wait(self, timeout: Duration) -> Option<T> {
        match self.result.recv_timeout(timeout) {
            Ok(Ok(value)) => Some(value),
            Ok(Err(panic)) => resume_unwind(panic),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("{} vanished", self.what),
        }
    }
}

/// Echoes every message back until the connection ends (or stays silent for a minute), then
/// reports how it ended.
pub fn echo(mut conn: Box<dyn Conn>) -> Pending<Option<Closed>> {
    spawn("echo", move || {
        while let Some(Ok(message)) = conn.recv(Duration::from_secs(60)) {
            if conn.send(message).is_err() {
                break;
            }
        }
        conn.closed()
    })
}

/// The adapter in `role`, opened with `config`, facing a raw peer in the other role. With
/// `buffers`, the raw peer's socket buffers are pinned to that size, and so are the adapter's
/// when it is the server (they come from a listener of the suite). Also returns the head the
/// raw peer received (the response when the adapter serves, the request when it connects).
pub fn facing_raw<A: Adapter>(
    role: Role,
    config: Config,
    buffers: Option<usize>,
) -> (Box<dyn Conn>, RawPeer, Head) {
    if role == Role::Server {
        let config = ServerConfig::default().config(config);
        let serving = Serving::on::<A>(listener(buffers), config);
        let (peer, response) = RawPeer::connect(serving.addr, &[], buffers);
        assert_eq!(response.status(), 101, "{}: {response:?}", A::NAME);
        (serving.next(), peer, response)
    } else {
        let listener = listener(buffers);
        let url = format!("ws://{}/", listener.local_addr().expect("address"));
        let request = ClientRequest::new(&url).expect("a valid URL");
        let conn = spawn("connect", move || {
            A::connect(request, ClientConfig::new(config))
        });
        let (peer, request) = RawPeer::accept(&listener, LIMIT, |_| None);
        let conn = conn
            .wait(LIMIT)
            .unwrap_or_else(|e| panic!("{}: connecting to a raw server failed: {e}", A::NAME));
        (conn, peer, request)
    }
}

/// A payload of `len` bytes: ASCII for text (valid UTF-8 whatever the length), varied bytes
/// for binary.
pub fn payload(len: usize, text: bool) -> Vec<u8> {
    let mut state = 0x2545_F491_u32 ^ len as u32;
    (0..len)
        .map(|i| {
            if text {
                b'a' + (i % 26) as u8
            } else {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            }
        })
        .collect()
}
