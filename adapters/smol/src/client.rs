//! The client: resolve, connect TCP (and TLS for `wss://`) within a timeout, then the
//! opening handshake.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Timer;
use async_net::TcpStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::FutureExt;
use tether::handshake::{ClientRequest, Response, WsUrl};

use crate::config::ClientConfig;
use crate::handshake::connect_with;
use crate::{Error, WebSocket};

/// The stream under a client connection: plain TCP for `ws://`, TLS for `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection (feature `rustls`).
    #[cfg(feature = "rustls")]
    Rustls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

/// Connects to `url` (`ws://` or `wss://`) and runs the opening handshake. Returns the
/// connection and the server's 101 response. See [`connect_request`] to offer subprotocols
/// or add header fields.
///
/// Cancel safety: dropping the future abandons the attempt and closes what was opened.
pub async fn connect(
    url: &str,
    config: ClientConfig,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_request(ClientRequest::new(url)?, config).await
}

/// Connects for `request` (its URL, subprotocols, extensions and header fields) and runs the
/// opening handshake. Resolving, TCP (with `TCP_NODELAY`) and TLS are bounded together by
/// [`ClientConfig::connect_timeout`]; the handshake by `Config::handshake_timeout`. Redirects
/// are not followed.
pub async fn connect_request(
    request: ClientRequest,
    config: ClientConfig,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let stream = open(request.url(), &config)
        .or(async {
            Timer::after(config.connect_timeout).await;
            Err(Error::ConnectTimeout)
        })
        .await?;
    connect_with(stream, request, config.config, &config.spawner).await
}

/// Opens the transport for `url` (without a timeout: the caller bounds it).
pub(crate) async fn open_transport(
    url: WsUrl,
    config: ClientConfig,
) -> Result<MaybeTlsStream, Error> {
    open(&url, &config).await
}

async fn open(url: &WsUrl, config: &ClientConfig) -> Result<MaybeTlsStream, Error> {
    let tcp = connect_tcp(url.host(), url.port()).await?;
    if !url.is_secure() {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    tls(url, config, tcp).await
}

/// Tries each resolved address in turn.
async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, Error> {
    let addrs: Vec<SocketAddr> = async_net::resolve((host, port)).await?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host resolved to no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(Error::Io(last))
}

#[cfg(not(feature = "rustls"))]
async fn tls(_: &WsUrl, _: &ClientConfig, _: TcpStream) -> Result<MaybeTlsStream, Error> {
    Err(Error::Io(io::Error::new(
        io::ErrorKind::Unsupported,
        "wss:// needs the `rustls` feature of tether-smol",
    )))
}

#[cfg(feature = "rustls")]
async fn tls(url: &WsUrl, config: &ClientConfig, tcp: TcpStream) -> Result<MaybeTlsStream, Error> {
    use futures_rustls::pki_types::ServerName;
    let tls_config = match &config.tls {
        Some(c) => c.clone(),
        None => crate::tls::default_client_config()?,
    };
    let name = ServerName::try_from(url.host().to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stream = futures_rustls::TlsConnector::from(tls_config)
        .connect(name, tcp)
        .await?;
    Ok(MaybeTlsStream::Rustls(Box::new(stream)))
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            MaybeTlsStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_close(cx))
    }
}
