//! What an adapter provides so the suite can drive it: a blocking view of its listener, its
//! client, its connection handle and its reconnecting client, with the adapters' own settings
//! and error types. Everything the tests do is written once, against these traits.

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use tether::handshake::{ClientRequest, Request};
use tether::reconnect::{ReconnectConfig, ReconnectEvent, SessionConfig, SessionSendError};
use tether::{CloseCode, Closed, Message};
use tether_io::{ClientConfig, Error, ServerConfig, Shutdown};

/// One adapter under test. Implementations stay thin: an async adapter blocks on a runtime
/// that runs on background threads; the suite owns every scripted behaviour.
pub trait Adapter: 'static {
    /// The adapter's name, for failure messages.
    const NAME: &'static str;

    /// Serves on `listener` (bound by the suite on 127.0.0.1, already listening) with the
    /// adapter's own listener type, handing every connection whose opening handshake succeeded
    /// to `accepted`, in the background. Returns at once.
    ///
    /// The accept loop goes on whatever `accept` returns, retrying an error at once, as a
    /// plain `loop { match server.accept() .. }` does: backing off when accepting fails (for
    /// EMFILE) is the adapter's listener's job. The loop may stop once
    /// [`Accepted::deliver`] returns false, and must stop once the server is shut down.
    fn serve(listener: TcpListener, config: ServerConfig, accepted: Accepted) -> Box<dyn Stop>;

    /// Connects with the adapter's client and returns once the opening handshake is done.
    fn connect(request: ClientRequest, config: ClientConfig) -> Result<Box<dyn Conn>, Error>;

    /// Starts the adapter's reconnecting client; its first attempt begins at once.
    fn reconnecting(
        request: ClientRequest,
        config: ClientConfig,
        reconnect: ReconnectConfig,
        session: SessionConfig,
    ) -> Result<Box<dyn Reconnecting>, Error>;
}

/// The adapter's running server, to shut down.
pub trait Stop: Send + Sync {
    /// The listener's graceful shutdown with `grace`, waited for.
    fn shutdown(&self, grace: Duration) -> Shutdown;
}

/// A connection handle of the adapter, either role, used from one thread at a time. Dropping
/// it drops every handle of the connection.
pub trait Conn: Send {
    /// The negotiated subprotocol.
    fn subprotocol(&self) -> Option<String>;

    /// Server side: the opening request the connection kept (a copy).
    fn request(&self) -> Option<Request>;

    /// Sends a message, waiting as long as the adapter makes senders wait (backpressure).
    fn send(&mut self, message: Message) -> Result<(), Error>;

    /// The next message, with the adapters' end rules: `None` after a clean close,
    /// `Some(Err(Error::Closed(..)))` after an abnormal end; `Some(Err(Error::Timeout))` when
    /// nothing came within `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<Result<Message, Error>>;

    /// Runs the close handshake with `code` and `reason` and returns how the connection ended.
    fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error>;

    /// How the connection ended, once it has.
    fn closed(&self) -> Option<Closed>;
}

/// The adapter's reconnecting client.
pub trait Reconnecting: Send {
    /// Sends now or queues for the next connection; a refusal hands the message back.
    fn send(&mut self, message: Message) -> Result<(), SessionSendError>;

    /// The next message or state change within `timeout`; `None` on timeout or after the end.
    fn recv(&mut self, timeout: Duration) -> Option<ReconnectEvent>;
}

/// Where an adapter's accept loop hands its connections to the test.
#[derive(Clone, Debug)]
pub struct Accepted(mpsc::Sender<Box<dyn Conn>>);

impl Accepted {
    pub(crate) fn new() -> (Accepted, mpsc::Receiver<Box<dyn Conn>>) {
        let (sender, receiver) = mpsc::channel();
        (Accepted(sender), receiver)
    }

    /// Hands a connection to the test; false once the test no longer listens.
    pub fn deliver(&self, conn: impl Conn + 'static) -> bool {
        self.0.send(Box::new(conn)).is_ok()
    }
}
