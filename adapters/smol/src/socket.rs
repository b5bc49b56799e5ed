//! The user's handle on a connection: [`WebSocket`] and its halves [`WsReader`] and
//! [`WsWriter`].

use std::future::poll_fn;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use tether::{
    CloseCode, CloseError, Closed, Data, Event, Message, SendError, SendErrorKind, State,
};

use crate::Error;
use crate::shared::{SharedRef, lock, now};

/// What [`WebSocket::next_event`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// A complete text or binary message.
    Message(Message),
    /// The peer sent a Ping (already answered with a Pong).
    Ping(Bytes),
    /// The peer sent a Pong, for example in answer to [`WebSocket::ping`]. Pongs that answer
    /// the core's own heartbeat Pings are not reported.
    Pong(Bytes),
}

/// One reference to the shared state; the last one to go closes the connection.
#[derive(Debug)]
struct Handle {
    shared: SharedRef,
    subprotocol: Option<Arc<str>>,
}

impl Handle {
    fn new(shared: SharedRef, subprotocol: Option<Arc<str>>) -> Self {
        lock(&shared).add_handle();
        Handle {
            shared,
            subprotocol,
        }
    }
}

impl Clone for Handle {
    fn clone(&self) -> Self {
        Handle::new(self.shared.clone(), self.subprotocol.clone())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let wake = lock(&self.shared).drop_handle();
        wake.run();
    }
}

impl std::fmt::Debug for crate::shared::Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("conn", &self.conn)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// The receiving side: shared by [`WebSocket`] and [`WsReader`]. It is the only one to take
/// received data out of the core; when it is dropped, the core drops what comes.
#[derive(Debug)]
struct Reader {
    handle: Handle,
}

impl Reader {
    /// The next item for the user. With `all`, Pings and Pongs too; without, only messages.
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        all: bool,
    ) -> Poll<Option<Result<Incoming, Error>>> {
        let mut st = lock(&self.handle.shared);
        if st.terminal_taken {
            return Poll::Ready(None);
        }
        let before = st.driver_view();
        let poll = loop {
            // Pings and Pongs nobody asks for are dropped; the handshake's events were taken
            // before this handle was returned, and the end is read from `closed()`.
            match st.conn.poll_event() {
                Some(Event::Ping(p)) if all => break Poll::Ready(Some(Ok(Incoming::Ping(p)))),
                Some(Event::Pong(p)) if all => break Poll::Ready(Some(Ok(Incoming::Pong(p)))),
                Some(_) => continue,
                None => {}
            }
            // Taking the next message tells the core the user is done with the previous one.
            if let Some(data) = st.conn.read() {
                match data {
                    Data::Message(m) => break Poll::Ready(Some(Ok(Incoming::Message(m)))),
                    _ => continue, // streaming mode is off
                }
            }
            // The end is reported once the transport is closed too.
            if st.done
                && let Some(closed) = st.conn.closed().cloned()
            {
                st.terminal_taken = true;
                break Poll::Ready((!closed.clean).then_some(Err(Error::Closed(closed))));
            }
            st.set_reader(cx.waker());
            break Poll::Pending;
        };
        // Taking data can let the driver read again, or release our answer to something
        // the peer sent behind it.
        let wake = st.wake_driver_if_changed(&before);
        drop(st);
        wake.run();
        poll
    }

    async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| message_only(self.poll_next(cx, false))).await
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let wake = lock(&self.handle.shared).discard_incoming();
        wake.run();
    }
}

/// The sending side: shared by [`WebSocket`] and [`WsWriter`].
#[derive(Debug)]
struct Writer {
    handle: Handle,
    /// A message the sink accepted but the core's full buffer refused; sent before anything
    /// else.
    pending: Option<Message>,
    close_started: bool,
}

impl Writer {
    /// Hands `slot`'s message to the core, waiting while its output buffer is full.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut Option<Message>,
    ) -> Poll<Result<(), Error>> {
        let Some(message) = slot.take() else {
            return Poll::Ready(Ok(()));
        };
        let mut st = lock(&self.handle.shared);
        let was_empty = st.conn.poll_transmit().is_none();
        match st.conn.send(message) {
            Ok(()) => {
                let wake = if was_empty {
                    st.wake_driver()
                } else {
                    Default::default()
                };
                drop(st);
                wake.run();
                Poll::Ready(Ok(()))
            }
            Err(SendError {
                kind: SendErrorKind::BufferFull { .. },
                data,
            }) if !st.done => {
                *slot = Some(data);
                st.set_writer(cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(Error::Send(e.kind))),
        }
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut pending = self.pending.take();
        let poll = self.poll_send(cx, &mut pending);
        self.pending = pending;
        poll
    }

    async fn send(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.poll_pending(cx)).await?;
        let mut slot = Some(message);
        poll_fn(|cx| self.poll_send(cx, &mut slot)).await
    }

    fn try_send(&mut self, message: Message) -> Result<(), SendError<Message>> {
        let mut st = lock(&self.handle.shared);
        if self.pending.is_some() {
            // The sink still holds an earlier message: this one must wait behind it.
            let kind = SendErrorKind::BufferFull {
                buffered: st.conn.poll_transmit().map_or(0, |t| t.len()),
                limit: st.conn.config().high_watermark,
            };
            return Err(SendError {
                kind,
                data: message,
            });
        }
        let was_empty = st.conn.poll_transmit().is_none();
        st.conn.send(message)?;
        let wake = if was_empty {
            st.wake_driver()
        } else {
            Default::default()
        };
        drop(st);
        wake.run();
        Ok(())
    }

    fn command<E>(
        &mut self,
        f: impl FnOnce(&mut tether::Connection) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut st = lock(&self.handle.shared);
        f(&mut st.conn)?;
        let wake = st.wake_driver();
        drop(st);
        wake.run();
        Ok(())
    }

    fn send_fragment(
        &mut self,
        kind: tether::DataKind,
        data: Bytes,
        fin: bool,
    ) -> Result<(), Error> {
        self.command(|c| c.send_fragment(kind, data, fin))
            .map_err(|e| Error::Send(e.kind))
    }

    fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
        self.command(|c| c.ping(payload))
            .map_err(|e| Error::Send(e.kind))
    }

    fn pong(&mut self, payload: Bytes) -> Result<(), Error> {
        self.command(|c| c.pong(payload))
            .map_err(|e| Error::Send(e.kind))
    }

    /// Starts the close handshake (once); a connection already closing or closed is fine.
    fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        match self.command(|c| c.close(now(), code, reason)) {
            Ok(()) | Err(CloseError::AlreadyClosing | CloseError::Closed) => {
                self.close_started = true;
                Ok(())
            }
            Err(e) => Err(Error::Close(e)),
        }
    }

    fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<Closed> {
        let mut st = lock(&self.handle.shared);
        if let Some(closed) = st.conn.closed().filter(|_| st.done) {
            return Poll::Ready(closed.clone());
        }
        st.set_writer(cx.waker());
        Poll::Pending
    }

    async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        // A message the sink still holds goes out first if there is room; waiting for room
        // could outlast the close timeout, so without room it is dropped.
        if let Some(message) = self.pending.take() {
            let _ = lock(&self.handle.shared).conn.send(message);
        }
        self.start_close(code, reason)?;
        Ok(poll_fn(|cx| self.poll_closed(cx)).await)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.poll_pending(cx)?.is_pending() {
            return Poll::Pending;
        }
        let mut st = lock(&self.handle.shared);
        if st.conn.poll_transmit().is_none() || st.done {
            return Poll::Ready(Ok(()));
        }
        st.set_writer(cx.waker());
        Poll::Pending
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.close_started {
            if self.poll_pending(cx)?.is_pending() {
                return Poll::Pending;
            }
            self.start_close(CloseCode::NORMAL, "")?;
        }
        self.poll_closed(cx).map(|_| Ok(()))
    }

    fn start_send(&mut self, message: Message) -> Result<(), Error> {
        match self.try_send(message) {
            Ok(()) => Ok(()),
            Err(SendError {
                kind: SendErrorKind::BufferFull { .. },
                data,
            }) => {
                self.pending = Some(data);
                Ok(())
            }
            Err(e) => Err(Error::Send(e.kind)),
        }
    }
}

/// A WebSocket connection over a byte stream `S` (TCP, TLS, a pipe, ...).
///
/// A background driver task owns the stream and the protocol state: it answers Pings, echoes
/// Close, sends heartbeats and detects dead peers even while nobody calls a method here. The
/// driver is spawned with `smol::spawn` (smol's global executor) unless the configuration
/// names an executor. Dropping the last handle (this, or both halves of [`split`](Self::split))
/// starts a close with 1001 (going away); the driver finishes it in the background.
///
/// `WebSocket` is also a [`Stream`] of received messages and a [`Sink`] of messages to send.
#[derive(Debug)]
pub struct WebSocket<S> {
    reader: Reader,
    writer: Writer,
    _stream: PhantomData<fn() -> S>,
}

/// The receiving half of a [`WebSocket`], from [`WebSocket::split`]. Also a [`Stream`].
#[derive(Debug)]
pub struct WsReader {
    reader: Reader,
}

/// The sending half of a [`WebSocket`], from [`WebSocket::split`]. Also a [`Sink`].
#[derive(Debug)]
pub struct WsWriter {
    writer: Writer,
}

impl<S> WebSocket<S> {
    pub(crate) fn from_shared(shared: SharedRef) -> Self {
        let handle = Handle::new(shared, None);
        let writer = Writer {
            handle: handle.clone(),
            pending: None,
            close_started: false,
        };
        WebSocket {
            reader: Reader { handle },
            writer,
            _stream: PhantomData,
        }
    }

    pub(crate) fn shared(&self) -> &SharedRef {
        &self.reader.handle.shared
    }

    pub(crate) fn set_subprotocol(&mut self, subprotocol: Option<String>) {
        let subprotocol: Option<Arc<str>> = subprotocol.map(Arc::from);
        self.reader.handle.subprotocol.clone_from(&subprotocol);
        self.writer.handle.subprotocol = subprotocol;
    }

    /// Sends a message, waiting while the core's output buffer is over
    /// `Config::high_watermark` (backpressure), until the driver has written it down to
    /// `Config::low_watermark`.
    ///
    /// Cancel safety: if the future is dropped before it completes, the message was not sent
    /// and is lost; nothing else changes.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.writer.send(message).await
    }

    /// Sends a text message (see [`send`](Self::send)).
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.writer.send(Message::text(text.to_owned())).await
    }

    /// Sends a binary message (see [`send`](Self::send)). In the server role the payload is
    /// not copied.
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.send(Message::Binary(data.into())).await
    }

    /// Sends a message without waiting: a full output buffer refuses it with
    /// [`SendErrorKind::BufferFull`], and every refusal hands the message back.
    pub fn try_send(&mut self, message: Message) -> Result<(), SendError<Message>> {
        self.writer.try_send(message)
    }

    /// Sends one fragment of a message (RFC 6455 §5.4); see
    /// [`tether::Connection::send_fragment`]. Does not wait for buffer room.
    pub fn send_fragment(
        &mut self,
        kind: tether::DataKind,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> Result<(), Error> {
        self.writer.send_fragment(kind, data.into(), fin)
    }

    /// Sends a Ping; the peer's Pong arrives through [`next_event`](Self::next_event).
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.ping(payload.into())
    }

    /// Sends an unsolicited Pong (a one-way heartbeat).
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.pong(payload.into())
    }

    /// Waits until everything sent so far has been handed to the transport.
    ///
    /// Cancel safe.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.writer.poll_flush(cx)).await
    }

    /// Where the connection is in its life.
    #[must_use]
    pub fn state(&self) -> State {
        lock(&self.reader.handle.shared).conn.state()
    }

    /// The next message. `None` after a normal close (and after the end was reported);
    /// `Some(Err(Error::Closed(info)))` once when the connection ended abnormally.
    ///
    /// Cancel safe: a message is taken from the queue only when the future completes.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.reader.recv().await
    }

    /// The next message, Ping or Pong, with the same end rules as [`recv`](Self::recv).
    ///
    /// Cancel safe.
    pub async fn next_event(&mut self) -> Option<Result<Incoming, Error>> {
        poll_fn(|cx| self.reader.poll_next(cx, true)).await
    }

    /// Closes the connection with `code` and `reason` and waits for the end: the close
    /// handshake completes, or the core's close timeout passes. Returns the terminal
    /// information (check [`Closed::clean`]). On a connection that is already closing or
    /// closed it just waits for, or returns, the terminal information.
    ///
    /// Cancel safety: once started, the close goes on in the background if the future is
    /// dropped; calling `close` again waits for the same end.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        self.writer.close(code, reason).await
    }

    /// The terminal information, once the connection has ended.
    #[must_use]
    pub fn closed(&self) -> Option<Closed> {
        lock(&self.reader.handle.shared).conn.closed().cloned()
    }

    /// The subprotocol both sides agreed on.
    #[must_use]
    pub fn subprotocol(&self) -> Option<&str> {
        self.reader.handle.subprotocol.as_deref()
    }

    /// The round-trip time measured by the latest heartbeat.
    #[must_use]
    pub fn rtt(&self) -> Option<Duration> {
        lock(&self.reader.handle.shared).conn.rtt()
    }

    /// Splits the connection into a reading and a writing half, usable from two tasks or
    /// threads. The connection closes (1001, going away) when both are dropped.
    #[must_use]
    pub fn split(self) -> (WsReader, WsWriter) {
        (
            WsReader {
                reader: self.reader,
            },
            WsWriter {
                writer: self.writer,
            },
        )
    }
}

impl WsReader {
    /// See [`WebSocket::recv`]. Cancel safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.reader.recv().await
    }

    /// See [`WebSocket::next_event`]. Cancel safe.
    pub async fn next_event(&mut self) -> Option<Result<Incoming, Error>> {
        poll_fn(|cx| self.reader.poll_next(cx, true)).await
    }

    /// The terminal information, once the connection has ended.
    #[must_use]
    pub fn closed(&self) -> Option<Closed> {
        lock(&self.reader.handle.shared).conn.closed().cloned()
    }
}

impl WsWriter {
    /// See [`WebSocket::send`].
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.writer.send(message).await
    }

    /// See [`WebSocket::send_text`].
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.writer.send(Message::text(text.to_owned())).await
    }

    /// See [`WebSocket::send_binary`].
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.send(Message::Binary(data.into())).await
    }

    /// See [`WebSocket::try_send`].
    pub fn try_send(&mut self, message: Message) -> Result<(), SendError<Message>> {
        self.writer.try_send(message)
    }

    /// See [`WebSocket::send_fragment`].
    pub fn send_fragment(
        &mut self,
        kind: tether::DataKind,
        data: impl Into<Bytes>,
        fin: bool,
    ) -> Result<(), Error> {
        self.writer.send_fragment(kind, data.into(), fin)
    }

    /// See [`WebSocket::ping`].
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.ping(payload.into())
    }

    /// See [`WebSocket::pong`].
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.writer.pong(payload.into())
    }

    /// See [`WebSocket::flush`]. Cancel safe.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.writer.poll_flush(cx)).await
    }

    /// See [`WebSocket::close`].
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        self.writer.close(code, reason).await
    }

    /// The subprotocol both sides agreed on.
    #[must_use]
    pub fn subprotocol(&self) -> Option<&str> {
        self.writer.handle.subprotocol.as_deref()
    }

    /// The round-trip time measured by the latest heartbeat.
    #[must_use]
    pub fn rtt(&self) -> Option<Duration> {
        lock(&self.writer.handle.shared).conn.rtt()
    }
}

fn message_only(
    poll: Poll<Option<Result<Incoming, Error>>>,
) -> Poll<Option<Result<Message, Error>>> {
    poll.map(|item| {
        item.map(|r| {
            r.map(|i| match i {
                Incoming::Message(m) => m,
                _ => unreachable!("only messages are asked for"),
            })
        })
    })
}

impl<S> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        message_only(self.get_mut().reader.poll_next(cx, false))
    }
}

impl Stream for WsReader {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        message_only(self.get_mut().reader.poll_next(cx, false))
    }
}

macro_rules! sink {
    ($ty:ty, $($generics:tt)*) => {
        impl<$($generics)*> Sink<Message> for $ty {
            type Error = Error;

            fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                self.get_mut().writer.poll_pending(cx)
            }

            fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
                self.get_mut().writer.start_send(item)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                self.get_mut().writer.poll_flush(cx)
            }

            fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                self.get_mut().writer.poll_close(cx)
            }
        }
    };
}

sink!(WebSocket<S>, S);
sink!(WsWriter,);
