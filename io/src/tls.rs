//! TLS with rustls, once for every runtime: [`TlsStream`] runs rustls's sans-IO connection
//! over any [`Transport`]; the default client configuration and a URL's server name.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tether::handshake::WsUrl;

use crate::{ClientConfig, Transport};

/// The rustls `ring` crypto provider.
#[must_use]
pub fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that trusts the Mozilla root store (`webpki-roots`), built with the
/// `ring` provider.
pub fn default_client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TLS configuration and server name for connecting to `url` with `config`.
pub fn client_params(
    url: &WsUrl,
    config: &ClientConfig,
) -> io::Result<(
    Arc<rustls::ClientConfig>,
    rustls::pki_types::ServerName<'static>,
)> {
    let tls = match &config.tls {
        Some(tls) => Arc::clone(tls),
        None => default_client_config().map_err(io::Error::other)?,
    };
    let name =
        rustls::pki_types::ServerName::try_from(url.host().trim_matches(['[', ']']).to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    Ok((tls, name))
}

/// TLS (rustls) over any [`Transport`], for every runtime: the client side of `wss://` and,
/// for servers that terminate TLS themselves, the server side.
pub struct TlsStream<T> {
    io: T,
    conn: rustls::Connection,
    /// The transport reported its end.
    eof: bool,
    /// The close_notify alert was queued.
    notified: bool,
}

impl<T> std::fmt::Debug for TlsStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

/// Runs the client side of TLS over `io` for `url` with `config`'s TLS settings.
pub async fn connect<T: Transport>(
    io: T,
    url: &WsUrl,
    config: &ClientConfig,
) -> io::Result<TlsStream<T>> {
    let (tls, name) = client_params(url, config)?;
    let conn = rustls::ClientConnection::new(tls, name).map_err(io::Error::other)?;
    TlsStream::handshake(io, conn.into()).await
}

/// Runs the server side of TLS over an accepted `io`; then pass the stream to the adapter's
/// `accept`.
pub async fn accept<T: Transport>(
    io: T,
    config: Arc<rustls::ServerConfig>,
) -> io::Result<TlsStream<T>> {
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    TlsStream::handshake(io, conn.into()).await
}

impl<T: Transport> TlsStream<T> {
    async fn handshake(io: T, conn: rustls::Connection) -> io::Result<TlsStream<T>> {
        let mut stream = TlsStream {
            io,
            conn,
            eof: false,
            notified: false,
        };
        std::future::poll_fn(|cx| stream.poll_handshake(cx)).await?;
        Ok(stream)
    }

    /// The transport underneath.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.is_handshaking() {
            ready!(self.poll_write_tls(cx))?;
            if self.conn.is_handshaking()
                && self.conn.wants_read()
                && !ready!(self.poll_read_tls(cx))?
            {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        self.poll_write_tls(cx)
    }

    /// Writes the TLS records rustls has queued; `Ready` once there are none left.
    fn poll_write_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut sync = SyncIo {
                io: &mut self.io,
                cx,
            };
            match self.conn.write_tls(&mut sync) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads and processes TLS records once: `true` when some arrived, `false` at the end of
    /// the transport.
    fn poll_read_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut sync = SyncIo {
            io: &mut self.io,
            cx,
        };
        match self.conn.read_tls(&mut sync) {
            Ok(0) => {
                self.eof = true;
                Poll::Ready(Ok(false))
            }
            Ok(_) => match self.conn.process_new_packets() {
                Ok(_) => Poll::Ready(Ok(true)),
                Err(e) => {
                    // Let the peer know why (the alert rustls queued), best effort.
                    let _ = self.poll_write_tls(cx);
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)))
                }
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<T: Transport> Transport for TlsStream<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if self.eof {
                return Poll::Ready(Ok(0));
            }
            // Records rustls wants to send (a key update, an alert) go out on the way; a
            // blocked write does not hold up reading.
            if let Poll::Ready(Err(e)) = self.poll_write_tls(cx) {
                return Poll::Ready(Err(e));
            }
            ready!(self.poll_read_tls(cx))?;
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Earlier records first, so rustls's plaintext buffer stays bounded.
        ready!(self.poll_write_tls(cx))?;
        let n = self.conn.writer().write_vectored(bufs)?;
        // The new records go now if they can; otherwise with the next write or the flush.
        if let Poll::Ready(Err(e)) = self.poll_write_tls(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_tls(cx))?;
        self.io.poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.notified {
            self.notified = true;
            self.conn.send_close_notify();
        }
        ready!(self.poll_write_tls(cx))?;
        self.io.poll_shutdown(cx)
    }

    fn abort(&mut self) {
        self.io.abort();
    }
}

/// A transport seen as blocking `Read`/`Write` for rustls, within one poll: `Pending` is
/// `WouldBlock`, and the waker in `cx` is registered.
struct SyncIo<'a, 'b, T> {
    io: &'a mut T,
    cx: &'a mut Context<'b>,
}

impl<T: Transport> Read for SyncIo<'_, '_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.io.poll_read(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<T: Transport> Write for SyncIo<'_, '_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.io.poll_write_vectored(self.cx, bufs) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.io.poll_flush(self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}
