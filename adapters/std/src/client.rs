//! The client side: connect to a URL, or run the handshake over a stream of your own.

use std::io::{self, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant as StdInstant};

use tether::handshake::{ClientRequest, HandshakeError, Response};
use tether::{CloseCause, Config, Connection};

use crate::driver::{Shared, now};
use crate::socket::{Handle, WebSocket};
use crate::stream::{MaybeTlsStream, SplitStream};
use crate::{Error, rng};

/// How a client connects.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The connection's configuration (limits, heartbeat, timeouts).
    pub config: Config,
    /// How long resolving and the TCP connect may take, over all addresses. Default 10 s.
    pub connect_timeout: Duration,
    /// The TLS configuration for `wss://`. Default: the `webpki-roots` root store with the
    /// ring provider.
    #[cfg(feature = "rustls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            config: Config::default(),
            connect_timeout: Duration::from_secs(10),
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }
}

impl ClientConfig {
    /// The defaults.
    #[must_use]
    pub fn new() -> Self {
        ClientConfig::default()
    }

    /// Sets the connection configuration.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Uses this TLS configuration for `wss://` (e.g. to trust a private CA).
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls(mut self, tls: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// Connects to a `ws://` or `wss://` URL: resolves it, connects TCP within
/// [`ClientConfig::connect_timeout`], does TLS for `wss://` (feature `rustls`), then the opening
/// handshake within `Config::handshake_timeout`. Redirects are not followed (they fail with
/// [`Error::Handshake`]). Returns the connection and the server's 101 response.
pub fn connect(
    url: &str,
    config: ClientConfig,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_request(ClientRequest::new(url)?, config)
}

/// Like [`connect`], for a request with subprotocols or extra headers.
pub fn connect_request(
    request: ClientRequest,
    config: ClientConfig,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let stream = open_transport(&request, &config)?;
    connect_on(stream, request, config.config)
}

/// Resolves and connects TCP for `request`'s URL, and starts TLS for `wss://`.
pub(crate) fn open_transport(
    request: &ClientRequest,
    config: &ClientConfig,
) -> Result<MaybeTlsStream, Error> {
    let url = request.url();
    let tcp = connect_tcp(url.host(), url.port(), config.connect_timeout)?;
    if url.is_secure() {
        #[cfg(feature = "rustls")]
        {
            Ok(crate::tls::client(tcp, url.host(), config.tls.clone())?)
        }
        #[cfg(not(feature = "rustls"))]
        {
            drop(tcp);
            Err(Error::Io(io::Error::new(
                ErrorKind::Unsupported,
                "wss:// needs the `rustls` feature",
            )))
        }
    } else {
        Ok(MaybeTlsStream::Plain(tcp))
    }
}

fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Error> {
    let deadline = StdInstant::now() + timeout;
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let left = deadline.saturating_duration_since(StdInstant::now());
        if left.is_zero() {
            return Err(Error::ConnectTimeout);
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(tcp) => {
                tcp.set_nodelay(true)?;
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            Err(Error::ConnectTimeout)
        }
        Some(e) => Err(Error::Io(e)),
        None => Err(Error::Io(io::Error::new(
            ErrorKind::NotFound,
            "the host resolved to no address",
        ))),
    }
}

/// Runs the client handshake for `request` over a connected stream of your own (TLS, if any,
/// is the stream's business) and starts the connection's driver.
pub fn connect_on<S: SplitStream>(
    stream: S,
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket<S>, Response), Error> {
    let (reader, writer) = stream.split(config.handshake_timeout).map_err(|e| {
        if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
            Error::HandshakeTimeout
        } else {
            Error::Io(e)
        }
    })?;
    let conn = Connection::client(request, config, rng(), now());
    let shared = Shared::start(conn, reader, writer, None)?;
    let handle = Handle::<S>::new_pending(shared);
    let mut st = handle.shared.lock();
    st = handle.shared.flush_all(st);
    loop {
        if st.conn.opened_at().is_some() {
            let response = st.conn.response().cloned();
            drop(st);
            let handle = handle.opened();
            return match response {
                Some(r) => Ok((WebSocket::from_handle(handle), r)),
                None => Err(Error::Io(io::Error::other("no handshake response"))),
            };
        }
        if st.transport_done {
            return Err(handshake_error(&mut st));
        }
        st = handle.shared.wait(st, None).0;
    }
}

fn handshake_error<W>(st: &mut crate::driver::State<W>) -> Error {
    match st.conn.closed().map(|c| c.cause.clone()) {
        Some(CloseCause::HandshakeFailed(HandshakeError::Timeout))
        | Some(CloseCause::HandshakeTimeout) => Error::HandshakeTimeout,
        Some(CloseCause::HandshakeFailed(e)) => match st.io_error.take() {
            Some(io) if e == HandshakeError::UnexpectedEof => Error::Io(io),
            _ => Error::Handshake(e),
        },
        _ => match st.io_error.take() {
            Some(io) => Error::Io(io),
            None => Error::Handshake(HandshakeError::UnexpectedEof),
        },
    }
}
