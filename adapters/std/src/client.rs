//! The blocking clients: one connection, and the reconnecting client.

use std::net::TcpStream;
use std::time::Duration;

use async_io::Async;
use tether::handshake::{ClientRequest, Response};
use tether::reconnect::{ReconnectConfig, ReconnectEvent, SessionConfig, SessionSendError};
use tether::{CloseCode, Config, Message};
use tether_io::{ClientConfig, Error};
use tether_smol::SmolIo;

use crate::WebSocket;
use crate::runtime::{Std, wait, wait_for};

/// Connects to a `ws://` or `wss://` URL (TCP within `connect_timeout`, TLS with the
/// `rustls` feature, then the handshake within `Config::handshake_timeout`). Blocks until
/// the connection is open or failed.
pub fn connect(url: &str, config: ClientConfig) -> Result<(WebSocket, Response), Error> {
    connect_request(ClientRequest::new(url)?, config)
}

/// [`connect`] with a prepared request (subprotocols, extra headers).
pub fn connect_request(
    request: ClientRequest,
    config: ClientConfig,
) -> Result<(WebSocket, Response), Error> {
    let (ws, response) = wait(tether_io::connect_request::<Std>(request, config))?;
    Ok((WebSocket::new(ws), response))
}

/// Runs the client handshake over a TCP stream the caller connected.
pub fn connect_on(
    stream: TcpStream,
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket, Response), Error> {
    let stream = SmolIo(Async::new(stream)?);
    let (ws, response) = wait(tether_io::connect_on::<Std, _>(stream, request, config))?;
    Ok((WebSocket::new(ws), response))
}

/// A client that reconnects by the core's policy and keeps its bounded queue across
/// connections; see [`tether_io::ReconnectingClient`]. Its task runs on a thread of its own.
#[derive(Debug)]
pub struct ReconnectingClient(tether_io::ReconnectingClient);

/// Starts a reconnecting client for `url` (its first attempt begins at once).
pub fn reconnecting(
    url: &str,
    config: ClientConfig,
    reconnect: ReconnectConfig,
    settings: SessionConfig,
) -> Result<ReconnectingClient, Error> {
    reconnecting_request(ClientRequest::new(url)?, config, reconnect, settings)
}

/// [`reconnecting`] with a prepared request (subprotocols, extra headers).
pub fn reconnecting_request(
    request: ClientRequest,
    config: ClientConfig,
    reconnect: ReconnectConfig,
    settings: SessionConfig,
) -> Result<ReconnectingClient, Error> {
    tether_io::reconnecting_request::<Std>(request, config, reconnect, settings)
        .map(ReconnectingClient)
}

impl ReconnectingClient {
    /// Queues `message` (never waits): a full queue, or a client that is closing or ended,
    /// hands it back.
    pub fn send(&self, message: Message) -> Result<(), SessionSendError> {
        self.0.send(message)
    }

    /// Sends a text message; see [`send`](ReconnectingClient::send).
    pub fn send_text(&self, text: &str) -> Result<(), SessionSendError> {
        self.0.send_text(text)
    }

    /// The next message or state change; `None` after the terminal event.
    pub fn recv(&mut self) -> Option<ReconnectEvent> {
        wait(self.0.recv())
    }

    /// [`recv`](ReconnectingClient::recv) giving up after `timeout` with `Err(Error::Timeout)`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ReconnectEvent>, Error> {
        wait_for(timeout, self.0.recv()).ok_or(Error::Timeout)
    }

    /// Ends the client: closes the open connection with `code` and `reason` and waits until
    /// the client has ended (its last events stay readable).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        wait(self.0.close(code, reason))
    }

    /// Whether a connection is open now.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.0.is_open()
    }

    /// Messages waiting in the outbound queue.
    #[must_use]
    pub fn queued_messages(&self) -> usize {
        self.0.queued_messages()
    }

    /// Takes the messages still queued (after the end: everything accepted and not written).
    pub fn take_unsent(&mut self) -> Vec<Message> {
        self.0.take_unsent()
    }
}
