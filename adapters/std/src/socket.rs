//! The connection handle and its two halves.

use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use tether::{CloseCause, CloseCode, CloseError, Closed, Connection, Data, DataKind, Event};
use tether::{Initiator, Message, SendError, SendErrorKind};

use crate::driver::{Shared, State, Who, now};
use crate::stream::{MaybeTlsStream, SplitStream};
use crate::{Error, Incoming};

/// The shared core of every handle: a reference to the driver's state.
pub(crate) struct Handle<S: SplitStream> {
    pub(crate) shared: Arc<Shared<S::Writer>>,
    subprotocol: Option<Arc<str>>,
    /// This handle receives (a [`WebSocket`] or a [`WsReader`]).
    receives: bool,
}

impl<S: SplitStream> Handle<S> {
    /// A handle before the opening handshake completed.
    pub(crate) fn new_pending(shared: Arc<Shared<S::Writer>>) -> Self {
        Handle {
            shared,
            subprotocol: None,
            receives: true,
        }
    }

    /// The handle once the connection is open: it knows the subprotocol.
    pub(crate) fn opened(mut self) -> Self {
        self.subprotocol = self.shared.lock().conn.subprotocol().map(Arc::from);
        self
    }

    /// Another handle to the same connection, for sending only.
    fn another(&self) -> Self {
        self.shared.lock().handles += 1;
        Handle {
            shared: Arc::clone(&self.shared),
            subprotocol: self.subprotocol.clone(),
            receives: false,
        }
    }

    /// Runs a command, then writes it out. While the core's output is over its high watermark
    /// the command is refused ([`SendErrorKind::BufferFull`]): this waits until the output has
    /// been written (writing it, or woken by the thread that does) and tries again.
    fn command<T>(
        &self,
        mut item: T,
        mut op: impl FnMut(&mut Connection, T) -> Result<(), SendError<T>>,
    ) -> Result<(), Error> {
        let mut st = self.shared.lock();
        loop {
            match op(&mut st.conn, item) {
                Ok(()) => break,
                Err(SendError {
                    kind: SendErrorKind::BufferFull { .. },
                    data,
                }) => {
                    item = data;
                    st = self.shared.flush_all(st);
                }
                Err(e) => return Err(Error::Send(e.kind)),
            }
        }
        let st = self.shared.flush_all(st);
        match st.conn.closed() {
            Some(closed) if st.transport_done && !closed.clean => {
                Err(Error::Closed(closed.clone()))
            }
            _ => Ok(()),
        }
    }

    fn send(&self, message: Message) -> Result<(), Error> {
        self.command(message, |conn, m| conn.send(m))
    }

    fn send_fragment(&self, kind: DataKind, data: Bytes, fin: bool) -> Result<(), Error> {
        self.command(data, |conn, d| conn.send_fragment(kind, d, fin))
    }

    fn ping(&self, payload: Bytes) -> Result<(), Error> {
        self.command(payload, |conn, p| conn.ping(p))
    }

    /// The next Ping or Pong event, else the next received message, from the core.
    fn take(&self, st: &mut State<S::Writer>) -> Option<Incoming> {
        while let Some(event) = st.conn.poll_event() {
            match event {
                Event::Ping(p) => return Some(Incoming::Ping(p)),
                Event::Pong(p) => return Some(Incoming::Pong(p)),
                _ => {}
            }
        }
        loop {
            // Streaming mode's pieces are not delivered by this adapter.
            if let Data::Message(m) = self.shared.read(st)? {
                return Some(Incoming::Message(m));
            }
        }
    }

    fn next(&self, until: Option<StdInstant>) -> Option<Result<Incoming, Error>> {
        let mut st = self.shared.lock();
        loop {
            if let Some(item) = self.take(&mut st) {
                return Some(Ok(item));
            }
            // An empty read may have let the core act on a Close or a violation that waited
            // for us: write its answer, then look again.
            if Shared::needs_drive(&st) {
                st = self.shared.drive(st, Who::User);
                continue;
            }
            if st.transport_done {
                return match st.conn.closed() {
                    Some(closed) if closed.clean => None,
                    Some(closed) => Some(Err(Error::Closed(closed.clone()))),
                    None => Some(Err(Error::Closed(lost()))),
                };
            }
            let (g, timed_out) = self.shared.wait(st, until);
            st = g;
            if timed_out {
                return Some(Err(Error::Timeout));
            }
        }
    }

    fn recv(&self, until: Option<StdInstant>) -> Option<Result<Message, Error>> {
        loop {
            match self.next(until)? {
                Ok(Incoming::Message(m)) => return Some(Ok(m)),
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn close(&self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        let mut st = self.shared.lock();
        match st.conn.close(now(), code, reason) {
            Ok(()) | Err(CloseError::AlreadyClosing) | Err(CloseError::Closed) => {}
            Err(e) => return Err(Error::Close(e)),
        }
        st = self.shared.flush_all(st);
        let st = self.shared.wait_finished(st);
        Ok(st.conn.closed().cloned().unwrap_or_else(lost))
    }

    fn closed(&self) -> Option<Closed> {
        self.shared.lock().conn.closed().cloned()
    }

    fn rtt(&self) -> Option<Duration> {
        self.shared.lock().conn.rtt()
    }
}

impl<S: SplitStream> Drop for Handle<S> {
    fn drop(&mut self) {
        self.shared.release(self.receives);
    }
}

/// The terminal information when the transport went away without one.
fn lost() -> Closed {
    Closed {
        code: CloseCode::ABNORMAL,
        reason: "transport closed".into(),
        initiator: Initiator::Remote,
        clean: false,
        cause: CloseCause::TransportLost,
    }
}

fn deadline(timeout: Duration) -> Option<StdInstant> {
    StdInstant::now().checked_add(timeout)
}

/// A WebSocket connection over the byte stream `S`.
///
/// A driver thread owns the reads and the timers, so Pongs, Close echoes and heartbeats flow
/// even while nobody calls a method here. Every method takes `&self`: the handle can be shared
/// between threads (e.g. in an `Arc`), or [`split`](WebSocket::split) into a reader and a
/// writer. Dropping the last handle of an open connection closes it with 1001 (going away) in
/// the background.
///
/// Received messages wait in the core until they are received; while more than
/// `Config::high_watermark` bytes wait, the connection stops reading and the peer is pushed
/// back.
pub struct WebSocket<S: SplitStream = MaybeTlsStream> {
    handle: Handle<S>,
}

/// The receiving half of a [`WebSocket`], from [`WebSocket::split`]. It is also an iterator
/// over received messages. Dropping it says nothing will be received any more: what arrives
/// from then on is dropped (Pongs, heartbeats and the close handshake still flow).
pub struct WsReader<S: SplitStream = MaybeTlsStream> {
    handle: Handle<S>,
    done: bool,
}

/// The sending half of a [`WebSocket`], from [`WebSocket::split`].
pub struct WsWriter<S: SplitStream = MaybeTlsStream> {
    handle: Handle<S>,
}

impl<S: SplitStream> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("subprotocol", &self.handle.subprotocol)
            .finish_non_exhaustive()
    }
}

impl<S: SplitStream> std::fmt::Debug for WsReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsReader").finish_non_exhaustive()
    }
}

impl<S: SplitStream> std::fmt::Debug for WsWriter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsWriter").finish_non_exhaustive()
    }
}

macro_rules! sending {
    () => {
        /// Sends a message. Blocks until it (and everything queued before it) has been handed
        /// to the operating system, which is the backpressure: a peer that does not read makes
        /// this wait. Fails with [`Error::Send`] on local misuse (after a close, during a
        /// fragmented message) and [`Error::Closed`] if the connection ended abnormally while
        /// writing.
        pub fn send(&self, message: Message) -> Result<(), Error> {
            self.handle.send(message)
        }

        /// Sends a text message.
        pub fn send_text(&self, text: &str) -> Result<(), Error> {
            self.handle.send(Message::text(text.to_owned()))
        }

        /// Sends a binary message.
        pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), Error> {
            self.handle.send(Message::binary(data))
        }

        /// Sends one fragment of a message (RFC 6455 §5.4): the first call starts a message of
        /// `kind`, later ones continue it, and `fin` ends it.
        pub fn send_fragment(
            &self,
            kind: DataKind,
            data: impl Into<Bytes>,
            fin: bool,
        ) -> Result<(), Error> {
            self.handle.send_fragment(kind, data.into(), fin)
        }

        /// Sends a Ping (at most 125 bytes of payload); the answer arrives as
        /// [`Incoming::Pong`].
        pub fn ping(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
            self.handle.ping(payload.into())
        }

        /// Closes the connection with `code` and `reason` and waits for the close handshake to
        /// complete (within the core's close timeout) and the transport to close. Returns the
        /// terminal information, clean or not. Messages that arrived meanwhile can still be
        /// received.
        pub fn close(&self, code: impl Into<CloseCode>, reason: &str) -> Result<Closed, Error> {
            self.handle.close(code.into(), reason)
        }
    };
}

macro_rules! receiving {
    () => {
        /// The next message, blocking until one arrives. `None` once the connection ended with
        /// a clean close; `Some(Err(Error::Closed(info)))` if it ended abnormally (1006, a
        /// heartbeat timeout, a protocol error). Pings and Pongs are skipped (see
        /// `next_event`).
        pub fn recv(&self) -> Option<Result<Message, Error>> {
            self.handle.recv(None)
        }

        /// Like `recv`, but gives up after `timeout` with `Some(Err(Error::Timeout))` (the
        /// connection is unaffected).
        pub fn recv_timeout(&self, timeout: Duration) -> Option<Result<Message, Error>> {
            self.handle.recv(deadline(timeout))
        }

        /// The next message, Ping or Pong, blocking until one arrives; ends like `recv`.
        pub fn next_event(&self) -> Option<Result<Incoming, Error>> {
            self.handle.next(None)
        }

        /// Like `next_event`, but gives up after `timeout` with `Some(Err(Error::Timeout))`.
        pub fn next_event_timeout(&self, timeout: Duration) -> Option<Result<Incoming, Error>> {
            self.handle.next(deadline(timeout))
        }
    };
}

macro_rules! info {
    () => {
        /// The terminal information, once the connection has ended.
        pub fn closed(&self) -> Option<Closed> {
            self.handle.closed()
        }

        /// The negotiated subprotocol.
        pub fn subprotocol(&self) -> Option<&str> {
            self.handle.subprotocol.as_deref()
        }

        /// The round-trip time measured by the latest heartbeat.
        pub fn rtt(&self) -> Option<Duration> {
            self.handle.rtt()
        }
    };
}

impl<S: SplitStream> WebSocket<S> {
    pub(crate) fn from_handle(handle: Handle<S>) -> Self {
        WebSocket { handle }
    }

    sending!();
    receiving!();
    info!();

    /// Splits the connection into a reader and a writer that can be used from two threads.
    /// The connection closes (1001) when both are dropped.
    pub fn split(self) -> (WsReader<S>, WsWriter<S>) {
        let writer = WsWriter {
            handle: self.handle.another(),
        };
        (
            WsReader {
                handle: self.handle,
                done: false,
            },
            writer,
        )
    }

    /// An iterator over received messages; it ends after a clean close and yields the error
    /// after an abnormal one.
    pub fn messages(&self) -> Messages<'_, S> {
        Messages {
            handle: &self.handle,
            done: false,
        }
    }
}

impl<S: SplitStream> WsReader<S> {
    receiving!();
    info!();
}

impl<S: SplitStream> WsWriter<S> {
    sending!();
    info!();
}

impl<S: SplitStream> Iterator for WsReader<S> {
    type Item = Result<Message, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.handle.recv(None);
        self.done = !matches!(item, Some(Ok(_)));
        item
    }
}

/// An iterator over a [`WebSocket`]'s received messages, from [`WebSocket::messages`].
pub struct Messages<'a, S: SplitStream> {
    handle: &'a Handle<S>,
    done: bool,
}

impl<S: SplitStream> std::fmt::Debug for Messages<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}

impl<S: SplitStream> Iterator for Messages<'_, S> {
    type Item = Result<Message, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.handle.recv(None);
        self.done = !matches!(item, Some(Ok(_)));
        item
    }
}
