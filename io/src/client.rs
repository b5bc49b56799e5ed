//! The client side: [`connect`] (transport from the runtime, then the handshake) and
//! [`connect_on`] over any transport.

use std::io;
use std::pin::Pin;

use tether::handshake::{ClientRequest, Response, WsUrl};
use tether::{Config, Connection};

use crate::clock::{now, os_rng, timeout};
use crate::runtime::{ClientStream, MaybeTls, Runtime, Transport};
use crate::{ClientConfig, Error, Tunnel, WebSocket};

/// Connects to a `ws://` or `wss://` URL: the runtime opens the transport (resolve, TCP with
/// `TCP_NODELAY`, TLS for `wss://`) within `connect_timeout`, then the opening handshake runs
/// within `Config::handshake_timeout`. Redirects are not followed (they end in
/// [`Error::Handshake`] with `HandshakeError::Redirect`).
///
/// Cancel safety: dropping the future drops the connection attempt.
pub fn connect<R: Runtime>(
    url: &str,
    config: ClientConfig,
) -> impl Future<Output = Result<(WebSocket, Response), Error>> + use<R> {
    let request = ClientRequest::new(url);
    async move { connect_request::<R>(request?, config).await }
}

/// [`connect`] with a prepared request (subprotocols, extra headers such as `Authorization`).
pub fn connect_request<R: Runtime>(
    request: ClientRequest,
    config: ClientConfig,
) -> Pin<Box<impl Future<Output = Result<(WebSocket, Response), Error>>>> {
    // Boxed: the caller's future holds a pointer while connecting, not the state of the
    // whole attempt for the rest of its life.
    Box::pin(async move {
        let stream = open::<R>(request.url(), &config).await?;
        handshake::<R, _>(stream, request, config.config).await
    })
}

/// Opens the transport for `url` within the connect timeout: TCP to the server or to its
/// proxy, the proxy's tunnel, then TLS for `wss://`. Errors name the address they concern.
pub(crate) async fn open<R: Runtime>(
    url: &WsUrl,
    config: &ClientConfig,
) -> Result<ClientStream<R>, Error> {
    let target = format!("{}:{}", url.host(), url.port());
    let proxy = config.proxy.as_ref().and_then(|p| p.for_url(url));
    let open = async {
        let tcp = match proxy {
            None => {
                let tcp = R::connect(url.host().trim_matches(['[', ']']), url.port())
                    .await
                    .map_err(|source| Error::Connect {
                        addr: target.clone(),
                        source,
                    })?;
                Tunnel::direct(tcp)
            }
            Some(server) => {
                let tcp = R::connect(server.host().trim_matches(['[', ']']), server.port())
                    .await
                    .map_err(|source| Error::Connect {
                        addr: server.to_string(),
                        source,
                    })?;
                crate::proxy::tunnel(tcp, server, url.host(), url.port()).await?
            }
        };
        if !url.is_secure() {
            return Ok(MaybeTls::Plain(tcp));
        }
        #[cfg(feature = "rustls")]
        {
            crate::tls::connect(tcp, url, config)
                .await
                .map(MaybeTls::Tls)
                .map_err(|source| Error::Connect {
                    addr: target.clone(),
                    source,
                })
        }
        #[cfg(not(feature = "rustls"))]
        {
            drop(tcp);
            Err(Error::Connect {
                addr: target.clone(),
                source: io::Error::new(
                    io::ErrorKind::Unsupported,
                    "wss:// needs the `rustls` feature of the adapter",
                ),
            })
        }
    };
    match timeout::<R, _>(config.connect_timeout, open).await {
        Some(result) => result,
        None => Err(Error::ConnectTimeout {
            addr: target,
            waited: config.connect_timeout,
        }),
    }
}

/// Runs the client handshake over a transport the caller connected (a proxy tunnel, a Unix
/// socket, an in-memory pipe...). Cancel safety: dropping the future drops the transport.
pub fn connect_on<R: Runtime, T: Transport>(
    stream: T,
    request: ClientRequest,
    config: Config,
) -> Pin<Box<impl Future<Output = Result<(WebSocket, Response), Error>>>> {
    Box::pin(handshake::<R, T>(stream, request, config))
}

async fn handshake<R: Runtime, T: Transport>(
    stream: T,
    request: ClientRequest,
    mut config: Config,
) -> Result<(WebSocket, Response), Error> {
    config.streaming = false;
    #[cfg(feature = "tracing")]
    let span = {
        let url = request.url();
        let peer = format!("{}:{}", url.host(), url.port());
        crate::trace::connection_span(tether::Role::Client, Some(&peer))
    };
    #[cfg(feature = "tracing")]
    let entered = span.enter();
    let conn = Connection::client(request, config, os_rng()?, now::<R>());
    let no_decision: Option<fn(&_) -> _> = None;
    let drive = crate::handshake::drive::<R, T, _>(
        stream,
        conn,
        no_decision,
        Default::default(),
        None,
        None,
    );
    #[cfg(feature = "tracing")]
    let drive = {
        drop(entered);
        tracing::Instrument::instrument(drive, span.clone())
    };
    let (socket, response, driver) = drive.await?;
    driver.spawn();
    let response = response.ok_or_else(|| io::Error::other("no handshake response"))?;
    Ok((socket, response))
}
