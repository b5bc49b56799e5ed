//! The blocking handle: the engine's handle, each wait made in the calling thread.

use std::time::Duration;

use tether::handshake::Request;
use tether::{Bytes, CloseCode, Closed, DataKind, Message, SendError, State, Stats};
use tether_io::{Error, Incoming};

use crate::runtime::{wait, wait_for};

/// A WebSocket connection, used from blocking code.
///
/// A thread per connection owns the socket and the protocol state, so Pongs, the Close echo
/// and heartbeats flow while nobody reads or writes, and the close and heartbeat timeouts are
/// enforced whatever the user does. Sends wait while the output is over
/// `Config::high_watermark` (backpressure); received messages wait in the core until
/// [`recv`](WebSocket::recv) takes them. Dropping every handle closes with 1001.
/// [`split`](WebSocket::split) gives a writer and a reader for two threads.
#[derive(Debug)]
pub struct WebSocket(tether_io::WebSocket);

/// The sending half of a [`WebSocket`], from [`WebSocket::split`].
#[derive(Debug)]
pub struct WsWriter(tether_io::WsWriter);

/// The receiving half of a [`WebSocket`], from [`WebSocket::split`]; an iterator of messages.
#[derive(Debug)]
pub struct WsReader(tether_io::WsReader);

/// The sending methods, the same on a [`WebSocket`] and its [`WsWriter`]: the engine's, each
/// waited for in the calling thread.
macro_rules! sending {
    () => {
        /// Queues a message, waiting while the output is over the high watermark. Returns
        /// once it is queued, not once it is written (`flush` waits for that).
        pub fn send(&mut self, message: Message) -> Result<(), Error> {
            wait(self.0.send(message))
        }

        /// Sends a text message.
        pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
            wait(self.0.send_text(text))
        }

        /// Sends a binary message.
        pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
            wait(self.0.send_binary(data))
        }

        /// Queues a message without waiting: a full buffer or any other refusal hands it
        /// back.
        pub fn try_send(&mut self, message: Message) -> Result<(), SendError<Message>> {
            self.0.try_send(message)
        }

        /// Sends one fragment of a message (RFC 6455 §5.4): the first starts a message of
        /// `kind`, `fin` ends it.
        pub fn send_fragment(
            &mut self,
            kind: DataKind,
            data: impl Into<Bytes>,
            fin: bool,
        ) -> Result<(), Error> {
            wait(self.0.send_fragment(kind, data, fin))
        }

        /// Sends a Ping (up to 125 bytes); the answer arrives as [`Incoming::Pong`].
        pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
            wait(self.0.ping(payload))
        }

        /// Waits until everything queued has been handed to the socket.
        pub fn flush(&mut self) -> Result<(), Error> {
            wait(self.0.flush())
        }

        /// Closes with `code` and `reason` and waits for the end of the close handshake (at
        /// most `Config::close_timeout`). A code that may not be sent is [`Error::Close`].
        pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
            wait(self.0.close(code, reason))
        }

        /// How the connection ended, once it has.
        #[must_use]
        pub fn closed(&self) -> Option<Closed> {
            self.0.closed()
        }

        /// The connection's counters: messages and bytes each way, Pings sent, Pongs
        /// received, the latest and smoothed round-trip times (see [`Stats`]).
        #[must_use]
        pub fn stats(&self) -> Stats {
            self.0.stats()
        }
    };
}

/// The receiving methods, the same on a [`WebSocket`] and its [`WsReader`].
macro_rules! receiving {
    () => {
        /// The next message: `None` after a normal close, `Some(Err(Error::Closed(..)))` once
        /// after an abnormal end. Pings and Pongs are skipped.
        pub fn recv(&mut self) -> Option<Result<Message, Error>> {
            wait(self.0.recv())
        }

        /// `recv`, giving up after `timeout` with `Some(Err(Error::Timeout))` (the connection
        /// is unaffected).
        pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Result<Message, Error>> {
            wait_for(timeout, self.0.recv()).unwrap_or(Some(Err(Error::Timeout)))
        }

        /// The next message, Ping or Pong, with the end rules of `recv`.
        pub fn next_event(&mut self) -> Option<Result<Incoming, Error>> {
            wait(self.0.next_event())
        }

        /// `next_event` with a timeout, as `recv_timeout`.
        pub fn next_event_timeout(&mut self, timeout: Duration) -> Option<Result<Incoming, Error>> {
            wait_for(timeout, self.0.next_event()).unwrap_or(Some(Err(Error::Timeout)))
        }
    };
}

impl WebSocket {
    pub(crate) fn new(ws: tether_io::WebSocket) -> Self {
        WebSocket(ws)
    }

    sending!();
    receiving!();

    /// Where the connection is in its life.
    #[must_use]
    pub fn state(&self) -> State {
        self.0.state()
    }

    /// The negotiated subprotocol.
    #[must_use]
    pub fn subprotocol(&self) -> Option<&str> {
        self.0.subprotocol()
    }

    /// The round-trip time measured by the latest heartbeat.
    #[must_use]
    pub fn rtt(&self) -> Option<Duration> {
        self.0.rtt()
    }

    /// `tether-resume`: whether this connection resumed an earlier connection's session.
    #[must_use]
    pub fn resumed(&self) -> bool {
        self.0.resumed()
    }

    /// Server side: the opening request (method, path, query, header fields), when
    /// `ServerConfig::keep_request` is on (off by default) and it was not taken; [`split`](WebSocket::split)
    /// hands it to the reader. Parsed again from the kept head on each call.
    #[must_use]
    pub fn request(&self) -> Option<Request> {
        self.0.request()
    }

    /// Takes the opening request out of the handle.
    pub fn take_request(&mut self) -> Option<Request> {
        self.0.take_request()
    }

    /// Splits into a writer and a reader for two threads (futures' order: writer first). The
    /// connection closes when both are dropped.
    #[must_use]
    pub fn split(self) -> (WsWriter, WsReader) {
        let (w, r) = self.0.split();
        (WsWriter(w), WsReader(r))
    }

    /// The async handle underneath, for code that mixes blocking and async use.
    #[must_use]
    pub fn into_async(self) -> tether_io::WebSocket {
        self.0
    }
}

impl WsWriter {
    sending!();
}

impl WsReader {
    receiving!();

    /// Server side: the opening request; see [`WebSocket::request`].
    #[must_use]
    pub fn request(&self) -> Option<Request> {
        self.0.request()
    }

    /// Takes the opening request; see [`WebSocket::take_request`].
    pub fn take_request(&mut self) -> Option<Request> {
        self.0.take_request()
    }

    /// How the connection ended, once it has.
    #[must_use]
    pub fn closed(&self) -> Option<Closed> {
        self.0.closed()
    }

    /// The connection's counters (see [`Stats`]).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }
}

/// Messages until the end: `recv` in a loop.
impl Iterator for WsReader {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}

/// Messages until the end: `recv` in a loop.
impl Iterator for &mut WebSocket {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.recv()
    }
}
