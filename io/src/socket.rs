//! The handle: what the user holds. Every method locks the shared state briefly; the I/O is
//! the driver task's, or done in the caller's task when it can (see `Shared::poll_next`).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tether::handshake::Request;
use tether::{CloseCode, Closed, DataKind, Message, PreparedMessage, SendError, State, Stats};

use crate::Error;
use crate::shared::{Incoming, Receiving, Shared};

/// A WebSocket connection.
///
/// The inherent [`send`](WebSocket::send) queues a message and returns (like `SinkExt::feed`);
/// [`flush`](WebSocket::flush) waits until it is written. `SinkExt::send` does both. The
/// inherent [`close`](WebSocket::close) takes a code and a reason and returns the terminal
/// information; `SinkExt::close` closes with 1000.
///
/// A background task drives the transport (TCP, TLS, any byte stream; the handle's type does
/// not depend on it) and the protocol state, so Pongs, the Close echo and heartbeats flow
/// even while nobody reads or writes; [`recv`](WebSocket::recv) and the sends do their I/O in
/// the caller's task when they can. Dropping every handle closes the
/// connection with 1001 (Going Away).
///
/// Received messages wait in the core until [`recv`](WebSocket::recv) asks for them. Flow
/// control is the core's, in bytes (`Config::high_watermark` and `Config::low_watermark`):
/// while unread messages, Pings and Pongs, or unwritten output are over the high watermark the
/// driver stops reading, so TCP backpressure reaches the peer, and sends wait until the output
/// has drained. A Close or a protocol violation the peer sends right behind messages is acted
/// on once they have been taken and the next item is asked for, so replies to them go out
/// first; it waits at most `Config::close_timeout`.
///
/// It is a [`Stream`] of received messages (the same items as [`recv`](WebSocket::recv)) and
/// a [`Sink`] of messages to send; [`split`](WebSocket::split) gives halves for two tasks.
///
/// **Cancel safety**: [`recv`](WebSocket::recv) and [`next_event`](WebSocket::next_event) are
/// cancel safe (an item is taken only when returned). The sending methods are cancel safe in
/// the sense that a message is queued whole or not at all: if the future is dropped while it
/// waits for room, the message was not sent. [`close`](WebSocket::close) starts the close
/// handshake on its first poll; dropping it afterwards does not stop the handshake.
pub struct WebSocket {
    reader: WsReader,
    writer: WsWriter,
}

/// The receiving half of a [`WebSocket`], from [`WebSocket::split`].
pub struct WsReader {
    shared: Arc<Shared>,
    /// A server's opening request head, when kept (`ServerConfig::keep_request`): the bytes
    /// as received, smaller than the parsed request. Boxed twice so that a handle without
    /// one holds a thin pointer: the handle lives in the connection's task, whose size is
    /// part of every connection's memory.
    request: Option<Box<Box<[u8]>>>,
}

/// The sending half of a [`WebSocket`], from [`WebSocket::split`].
pub struct WsWriter {
    shared: Arc<Shared>,
    /// A message accepted by `Sink::start_send` that the core refused for now (its output
    /// was full): boxed, as it is rare and the handle's size counts in every connection.
    pending: Option<Box<Message>>,
    /// `Sink::poll_close` started the close handshake.
    close_started: bool,
    /// The negotiated subprotocol (a thin pointer, for the same reason).
    subprotocol: Option<Box<Box<str>>>,
}

impl WebSocket {
    pub(crate) fn new(shared: Arc<Shared>, subprotocol: Option<String>) -> Self {
        #[cfg(feature = "tracing")]
        if let Some(p) = &subprotocol {
            shared.span.record("subprotocol", p.as_str());
        }
        WebSocket {
            reader: WsReader::new(Arc::clone(&shared)),
            writer: WsWriter::new(shared, subprotocol),
        }
    }

    /// Queues a message, waiting while the output is over `Config::high_watermark` (until it
    /// drains under `Config::low_watermark`). It returns once the message is queued, not once
    /// it is written.
    pub fn send(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        self.writer.send(message)
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> impl Future<Output = Result<(), Error>> + '_ {
        self.writer.send_text(text)
    }

    /// Sends a binary message (not copied in the server role).
    pub fn send_binary(
        &mut self,
        data: impl Into<Bytes>,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        self.writer.send_binary(data)
    }

    /// Queues a message without waiting: a full buffer or any other refusal hands it back.
    pub fn try_send(&mut self, message: Message) -> Result<(), SendError<Message>> {
        self.writer.try_send(message)
    }

    /// Sends a message framed once for many connections (see [`PreparedMessage`]), waiting
    /// for room like [`send`](WebSocket::send).
    pub async fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
        self.writer.send_prepared(message).await
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.writer.shared
    }

    /// Sends one fragment of a message (RFC 6455 §5.4): the first starts a message of `kind`,
    /// `fin` ends it.
    pub async fn send_fragment(
        &mut self,
        kind: DataKind,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> Result<(), Error> {
        self.writer.send_fragment(kind, data, fin).await
    }

    /// Sends a Ping (up to 125 bytes). The answer arrives as [`Incoming::Pong`] from
    /// [`next_event`](WebSocket::next_event).
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.ping(payload).await
    }

    /// Waits until everything queued has been handed to the transport.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.writer.flush().await
    }

    /// The next message. `None` after a normal close (once the messages received before it
    /// are taken); `Some(Err(Error::Closed(info)))` once when the connection ended abnormally.
    /// Pings and Pongs are skipped. Cancel safe.
    pub fn recv(&mut self) -> impl Future<Output = Option<Result<Message, Error>>> + '_ {
        self.reader.recv()
    }

    /// The next message, Ping or Pong, with the same end rules as [`recv`](WebSocket::recv).
    /// Cancel safe.
    pub fn next_event(&mut self) -> impl Future<Output = Option<Result<Incoming, Error>>> + '_ {
        self.reader.next_event()
    }

    /// Closes with `code` and `reason` and waits for the end of the close handshake (at most
    /// `Config::close_timeout`): the terminal information, `clean` when both Close frames were
    /// exchanged. Messages received meanwhile stay readable. A code that may not be sent or a
    /// reason over 123 bytes is [`Error::Close`] and changes nothing.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        self.writer.close(code, reason).await
    }

    /// How the connection ended, once it has.
    #[must_use]
    pub fn closed(&self) -> Option<Closed> {
        self.reader.closed()
    }

    /// Where the connection is in its life.
    #[must_use]
    pub fn state(&self) -> State {
        self.reader.shared.lock().state()
    }

    /// The negotiated subprotocol.
    #[must_use]
    pub fn subprotocol(&self) -> Option<&str> {
        self.writer.subprotocol()
    }

    /// The round-trip time measured by the latest heartbeat.
    #[must_use]
    pub fn rtt(&self) -> Option<Duration> {
        self.reader.shared.lock().conn.rtt()
    }

    /// Server side: the opening request this connection was accepted with (method, path,
    /// query, header fields), when `ServerConfig::keep_request` is on (it is off by default)
    /// and it was not taken. `None` for a client. The connection keeps the request's head as received (its size,
    /// a few hundred bytes) and parses it on each call. [`split`](WebSocket::split) hands it
    /// to the reader.
    #[must_use]
    pub fn request(&self) -> Option<Request> {
        self.reader.request()
    }

    /// Takes the opening request out of the handle (see [`request`](WebSocket::request)),
    /// freeing what it holds.
    pub fn take_request(&mut self) -> Option<Request> {
        self.reader.take_request()
    }

    pub(crate) fn set_request(&mut self, head: Option<Box<[u8]>>) {
        self.reader.request = head.map(Box::new);
    }

    /// The connection's counters: messages and bytes each way, Pings sent, Pongs received,
    /// the latest and smoothed round-trip times (see [`Stats`] for what counts where).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.reader.stats()
    }

    /// `tether-resume`: whether this connection resumed an earlier connection's session (a
    /// server's resumed connection continues the session of an older handle: read what that
    /// one still holds first).
    #[must_use]
    pub fn resumed(&self) -> bool {
        self.reader.shared.lock().conn.resumed()
    }

    /// Splits the handle into a writer and a reader for two tasks, in the order of
    /// `futures`' `StreamExt::split` (sink first). The connection closes when both are
    /// dropped.
    #[must_use]
    pub fn split(self) -> (WsWriter, WsReader) {
        (self.writer, self.reader)
    }
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("state", &self.state())
            .field("subprotocol", &self.subprotocol())
            .finish_non_exhaustive()
    }
}

impl WsReader {
    fn new(shared: Arc<Shared>) -> Self {
        shared.attach();
        WsReader {
            shared,
            request: None,
        }
    }

    /// Server side: the opening request; see [`WebSocket::request`].
    #[must_use]
    pub fn request(&self) -> Option<Request> {
        // The head passed the handshake's parser once: it parses again.
        self.request
            .as_deref()
            .and_then(|head| Request::parse(head).ok())
    }

    /// Takes the opening request; see [`WebSocket::take_request`].
    pub fn take_request(&mut self) -> Option<Request> {
        let request = self.request();
        self.request = None;
        request
    }

    /// The next message; see [`WebSocket::recv`]. Cancel safe.
    ///
    /// One plain future of two words (no nested `async` states): it lives in the caller's
    /// task while the connection is idle, so its size is part of every connection's memory.
    pub fn recv(&mut self) -> impl Future<Output = Option<Result<Message, Error>>> + '_ {
        Recv(NextEvent {
            shared: &self.shared,
            waiting: false,
        })
    }

    /// The next message, Ping or Pong; see [`WebSocket::next_event`]. Cancel safe.
    ///
    /// When nothing is buffered, input is read in the caller's task, and while it waits
    /// the transport's readiness wakes it directly (the driver task reads only while nobody
    /// waits here, e.g. to answer Pings).
    pub fn next_event(&mut self) -> impl Future<Output = Option<Result<Incoming, Error>>> + '_ {
        NextEvent {
            shared: &self.shared,
            waiting: false,
        }
    }

    /// How the connection ended, once it has.
    #[must_use]
    pub fn closed(&self) -> Option<Closed> {
        self.shared.lock().conn.closed().cloned()
    }

    /// The connection's counters (the same as [`WebSocket::stats`]).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.lock().conn.stats()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// [`WsReader::next_event`]'s future: reads in the caller's task; dropped while waiting, it
/// hands a read wake-up it may have taken back to the driver.
struct NextEvent<'a> {
    shared: &'a Shared,
    waiting: bool,
}

impl NextEvent<'_> {
    fn poll_with<T>(
        &mut self,
        poll: impl FnOnce(&Shared, Receiving) -> Poll<Option<Result<T, Error>>>,
    ) -> Poll<Option<Result<T, Error>>> {
        let result = poll(
            self.shared,
            Receiving::Inline {
                waited: self.waiting,
            },
        );
        self.waiting = result.is_pending();
        result
    }
}

impl std::future::Future for NextEvent<'_> {
    type Output = Option<Result<Incoming, Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_with(|shared, receiving| shared.poll_next(cx, receiving))
    }
}

/// [`NextEvent`] for messages only (see [`Shared::poll_message`]).
struct Recv<'a>(NextEvent<'a>);

impl std::future::Future for Recv<'_> {
    type Output = Option<Result<Message, Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0
            .poll_with(|shared, receiving| shared.poll_message(cx, receiving))
    }
}

impl Drop for NextEvent<'_> {
    fn drop(&mut self) {
        if self.waiting {
            self.shared.router.withdraw_reader();
        }
    }
}

impl std::fmt::Debug for WsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsReader").finish_non_exhaustive()
    }
}

impl Drop for WsReader {
    fn drop(&mut self) {
        self.shared.detach(true);
    }
}

impl WsWriter {
    fn new(shared: Arc<Shared>, subprotocol: Option<String>) -> Self {
        shared.attach();
        WsWriter {
            shared,
            pending: None,
            close_started: false,
            subprotocol: subprotocol.map(|p| Box::new(p.into_boxed_str())),
        }
    }

    /// Queues a message; see [`WebSocket::send`].
    ///
    /// One plain future (no nested `async` states): it lives in the caller's task for as long
    /// as the caller waits, so its size is part of every connection's memory.
    pub fn send(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        let mut slot = Some(message);
        poll_fn(move |cx| {
            std::task::ready!(self.poll_pending(cx))?;
            self.shared.poll_send(cx, &mut slot).map_err(|(e, _)| e)
        })
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> impl Future<Output = Result<(), Error>> + '_ {
        self.send(Message::text(text.to_owned()))
    }

    /// Sends a binary message.
    pub fn send_binary(
        &mut self,
        data: impl Into<Bytes>,
    ) -> impl Future<Output = Result<(), Error>> + '_ {
        self.send(Message::Binary(data.into()))
    }

    /// Queues a message without waiting; a refusal hands it back. A message the `Sink`
    /// accepted earlier goes first.
    pub fn try_send(&mut self, message: Message) -> Result<(), SendError<Message>> {
        if let Some(earlier) = self.pending.take()
            && let Err(refused) = self.shared.try_send(*earlier)
        {
            self.pending = Some(Box::new(refused.data));
            return Err(SendError {
                kind: refused.kind,
                data: message,
            });
        }
        self.shared.try_send(message)
    }

    /// Waits until a message the `Sink` accepted (`start_send`) is queued in the core, so
    /// that whatever the handle does next comes after it.
    async fn settle(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_pending(cx)).await
    }

    /// Sends one fragment of a message; see [`WebSocket::send_fragment`].
    pub async fn send_fragment(
        &mut self,
        kind: DataKind,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> Result<(), Error> {
        self.settle().await?;
        let mut slot = Some(data.into());
        poll_fn(|cx| {
            self.shared
                .poll_command(cx, &mut slot, |conn, d| conn.send_fragment(kind, d, fin))
        })
        .await
        .map_err(|(e, _)| e)
    }

    /// Sends a prepared message; see [`WebSocket::send_prepared`].
    pub async fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Error> {
        self.settle().await?;
        let mut slot = Some(message.clone());
        poll_fn(|cx| {
            self.shared
                .poll_command(cx, &mut slot, |conn, m| conn.send_prepared(&m))
        })
        .await
        .map_err(|(e, _)| e)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Sends a Ping; see [`WebSocket::ping`].
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.settle().await?;
        let mut slot = Some(payload.into());
        poll_fn(|cx| {
            self.shared
                .poll_command(cx, &mut slot, |conn, p| conn.ping(p))
        })
        .await
        .map_err(|(e, _)| e)
    }

    /// Waits until everything queued has been handed to the transport.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.settle().await?;
        poll_fn(|cx| self.shared.poll_flushed(cx)).await
    }

    /// Closes and waits for the end of the close handshake; see [`WebSocket::close`].
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        self.settle().await?;
        let mut start = Some((code, reason.to_owned()));
        poll_fn(|cx| self.shared.poll_close(cx, &mut start)).await
    }

    /// The negotiated subprotocol.
    #[must_use]
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref().map(|p| &**p)
    }

    /// How the connection ended, once it has.
    #[must_use]
    pub fn closed(&self) -> Option<Closed> {
        self.shared.lock().conn.closed().cloned()
    }

    /// The connection's counters (the same as [`WebSocket::stats`]).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.lock().conn.stats()
    }

    /// Queues the message the `Sink` accepted but the core refused for now, if any (usually
    /// there is none: that check is inlined into every send).
    #[inline]
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.pending.is_none() {
            return Poll::Ready(Ok(()));
        }
        self.poll_refused(cx)
    }

    fn poll_refused(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some(pending) = self.pending.take() else {
            return Poll::Ready(Ok(()));
        };
        let mut slot = Some(*pending);
        let result = self.shared.poll_send(cx, &mut slot).map_err(|(e, _)| e);
        if let Some(still) = slot {
            self.pending = Some(Box::new(still));
        }
        result
    }
}

impl std::fmt::Debug for WsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsWriter")
            .field("subprotocol", &self.subprotocol)
            .finish_non_exhaustive()
    }
}

impl Drop for WsWriter {
    fn drop(&mut self) {
        self.shared.detach(false);
    }
}

impl Stream for WsReader {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Not inline: a `Stream` cannot tell when its caller stops waiting, so the driver
        // reads, and wakes it.
        self.shared.poll_message(cx, Receiving::ViaDriver)
    }
}

/// A message [`Sink`]: `poll_ready` waits for room in the output buffer, `poll_flush` until
/// everything is handed to the transport, `poll_close` for the end of a 1000 close handshake.
impl Sink<Message> for WsWriter {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        let this = self.get_mut();
        debug_assert!(this.pending.is_none(), "start_send without poll_ready");
        // Queued in the core at once when it has room (the usual case); otherwise held until
        // `poll_ready`/`poll_flush` can queue it (or report why it cannot).
        if let Err(refused) = this.shared.try_send(item) {
            this.pending = Some(Box::new(refused.data));
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        this.shared.poll_flushed(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        // The first call starts the close; `Shared::poll_close` takes what it is given at once.
        let mut start = (!this.close_started).then(|| (CloseCode::NORMAL, String::new()));
        this.close_started = true;
        match this.shared.poll_close(cx, &mut start) {
            Poll::Ready(Ok(closed)) if closed.clean => Poll::Ready(Ok(())),
            Poll::Ready(Ok(closed)) => Poll::Ready(Err(Error::Closed(Box::new(closed)))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().reader).poll_next(cx)
    }
}

impl Sink<Message> for WebSocket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().writer).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Pin::new(&mut self.get_mut().writer).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handle and the futures a connection's task waits in while idle are part of every
    /// connection's memory (tokio rounds a task up to a multiple of 128 bytes: the echo
    /// server's `serve` future went from 336 to 264 bytes, and its task from 512 to 384,
    /// when these shrank). Growing them is a decision, not an accident.
    #[test]
    fn handle_and_idle_futures_stay_small() {
        let conn = tether::Connection::open(
            tether::Role::Server,
            tether::Config::default(),
            crate::clock::os_rng().expect("rng"),
            tether::Instant::ZERO,
        );
        let mut ws = WebSocket::new(Shared::new(conn, || tether::Instant::ZERO), None);
        assert!(
            std::mem::size_of_val(&ws) <= 48,
            "{}",
            std::mem::size_of_val(&ws)
        );
        let recv = std::mem::size_of_val(&ws.recv());
        assert!(recv <= 16, "recv future: {recv} bytes");
        let next = std::mem::size_of_val(&ws.next_event());
        assert!(next <= 16, "next_event future: {next} bytes");
        let send = std::mem::size_of_val(&ws.send(Message::binary(Vec::new())));
        assert!(send <= 48, "send future: {send} bytes");
    }
}
