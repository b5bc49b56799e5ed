//! The client side: `connect` (TCP, optional TLS, handshake) and `connect_on` over any stream.

use std::io;
use std::time::Duration;

use tether::handshake::{ClientRequest, Response, WsUrl};
use tether::{Config, Connection};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::clock::{now, os_rng};
use crate::{Error, MaybeTlsStream, WebSocket};

/// A client's settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Limits and timers of the connection, including `handshake_timeout`.
    pub config: Config,
    /// How long resolving the host and establishing TCP (and, for `wss://`, TLS) may take.
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// The TLS configuration for `wss://`; `None` (the default) uses rustls with the
    /// `webpki-roots` store and the `ring` provider.
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
    /// Settings with the core `config` and the default connect timeout.
    #[must_use]
    pub fn new(config: Config) -> Self {
        ClientConfig {
            config,
            ..ClientConfig::default()
        }
    }
}

/// Connects to a `ws://` or `wss://` URL: resolves the host, connects TCP (`TCP_NODELAY` set)
/// within `connect_timeout`, does TLS for `wss://` (feature `rustls`), then the opening
/// handshake within `Config::handshake_timeout`. Redirects are not followed (they end in
/// [`Error::Handshake`] with `HandshakeError::Redirect`).
///
/// Cancel safety: dropping the future drops the connection attempt.
///
/// ```no_run
/// # async fn run() -> Result<(), tether_tokio::Error> {
/// let (mut ws, _response) = tether_tokio::connect("ws://127.0.0.1:9001/", Default::default()).await?;
/// ws.send_text("hello").await?;
/// if let Some(reply) = ws.recv().await {
///     println!("{:?}", reply?);
/// }
/// ws.close(tether::CloseCode::NORMAL, "bye").await?;
/// # Ok(()) }
/// ```
pub async fn connect(
    url: &str,
    config: ClientConfig,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_request(ClientRequest::new(url)?, config).await
}

/// [`connect`] with a prepared request (subprotocols, extra headers such as `Authorization`).
pub async fn connect_request(
    request: ClientRequest,
    config: ClientConfig,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let stream = tokio::time::timeout(
        config.connect_timeout,
        open_transport(request.url(), &config),
    )
    .await
    .map_err(|_| Error::ConnectTimeout)??;
    connect_on(stream, request, config.config).await
}

/// Resolves, connects TCP (`TCP_NODELAY` set) and, for `wss://`, does TLS.
pub(crate) async fn open_transport(
    url: &WsUrl,
    config: &ClientConfig,
) -> Result<MaybeTlsStream, Error> {
    let tcp = TcpStream::connect((url.host().trim_matches(['[', ']']), url.port())).await?;
    let _ = tcp.set_nodelay(true);
    if url.is_secure() {
        secure(tcp, url.host(), config).await
    } else {
        Ok(MaybeTlsStream::Plain(tcp))
    }
}

/// Runs the client handshake over a stream the caller connected (a proxy tunnel, a Unix
/// socket, an in-memory pipe...). Cancel safety: dropping the future drops the stream.
pub async fn connect_on<S>(
    stream: S,
    request: ClientRequest,
    mut config: Config,
) -> Result<(WebSocket<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    config.streaming = false;
    let conn = Connection::client(request, config, os_rng()?, now());
    let no_decision: Option<fn(&_) -> _> = None;
    let (socket, response) = crate::handshake::drive(stream, conn, no_decision, None).await?;
    let response = response.ok_or_else(|| io::Error::other("no handshake response"))?;
    Ok((socket, response))
}

#[cfg(feature = "rustls")]
async fn secure(
    tcp: TcpStream,
    host: &str,
    config: &ClientConfig,
) -> Result<MaybeTlsStream, Error> {
    let tls = match &config.tls {
        Some(tls) => std::sync::Arc::clone(tls),
        None => crate::tls::default_client_config().map_err(io::Error::other)?,
    };
    let name = rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?;
    Ok(MaybeTlsStream::Rustls(Box::new(stream)))
}

#[cfg(not(feature = "rustls"))]
async fn secure(_: TcpStream, _: &str, _: &ClientConfig) -> Result<MaybeTlsStream, Error> {
    Err(Error::Io(io::Error::new(
        io::ErrorKind::Unsupported,
        "wss:// needs the `rustls` feature of tether-tokio",
    )))
}
