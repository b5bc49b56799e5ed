//! TLS (rustls) split into a read half and a write half that two threads can use at once.
//!
//! The rustls state sits behind a mutex shared by both halves; neither half holds it across a
//! socket call. The read half reads ciphertext from its own clone of the TCP socket and feeds
//! it in; the write half encrypts under the lock and writes the records outside it. Records
//! rustls produces on its own (a TLS 1.3 KeyUpdate answer) leave with the next write.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant as StdInstant};

use rustls::pki_types::ServerName;

use crate::stream::{MaybeTlsStream, ReadHalf, SplitStream, WriteHalf};

type Tls = Arc<Mutex<rustls::Connection>>;

fn lock(tls: &Tls) -> MutexGuard<'_, rustls::Connection> {
    tls.lock().unwrap_or_else(|e| e.into_inner())
}

/// The read half of a TLS stream.
pub struct TlsReader {
    tls: Tls,
    sock: TcpStream,
    raw: Box<[u8]>,
    start: usize,
    end: usize,
}

/// The write half of a TLS stream.
pub struct TlsWriter {
    tls: Tls,
    sock: TcpStream,
    /// Records not yet written to the socket.
    pending: Vec<u8>,
    /// Our close_notify was queued.
    notified: bool,
}

impl std::fmt::Debug for TlsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReader").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TlsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsWriter").finish_non_exhaustive()
    }
}

/// A rustls stream over TCP: the TLS handshake is completed within the handshake timeout,
/// then the stream is split.
impl<C> SplitStream for rustls::StreamOwned<C, TcpStream>
where
    C: Into<rustls::Connection> + Send + 'static,
{
    type Reader = TlsReader;
    type Writer = TlsWriter;
    fn split(self, timeout: Duration) -> io::Result<(TlsReader, TlsWriter)> {
        let mut conn: rustls::Connection = self.conn.into();
        let mut sock = self.sock;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
        let deadline = StdInstant::now() + timeout;
        while conn.is_handshaking() {
            if StdInstant::now() >= deadline {
                return Err(ErrorKind::TimedOut.into());
            }
            conn.complete_io(&mut sock)?;
        }
        while conn.wants_write() {
            conn.write_tls(&mut sock)?;
        }
        sock.set_read_timeout(None)?;
        sock.set_write_timeout(None)?;
        let tls = Arc::new(Mutex::new(conn));
        let reader = TlsReader {
            tls: Arc::clone(&tls),
            sock: sock.try_clone()?,
            raw: vec![0; 16 << 10].into_boxed_slice(),
            start: 0,
            end: 0,
        };
        let writer = TlsWriter {
            tls,
            sock,
            pending: Vec::new(),
            notified: false,
        };
        Ok((reader, writer))
    }
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut conn = lock(&self.tls);
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.start < self.end {
                    let mut input = &self.raw[self.start..self.end];
                    let n = conn.read_tls(&mut input)?;
                    self.start += n;
                    conn.process_new_packets()
                        .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
                    continue;
                }
            }
            let n = self.sock.read(&mut self.raw)?;
            if n == 0 {
                let mut conn = lock(&self.tls);
                conn.read_tls(&mut io::empty())?;
                conn.process_new_packets()
                    .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
                return match conn.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
                    Err(e) => Err(e),
                };
            }
            self.start = 0;
            self.end = n;
        }
    }
}

impl ReadHalf for TlsReader {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }
}

impl TlsWriter {
    fn encrypt_pending(&mut self) -> io::Result<()> {
        let mut conn = lock(&self.tls);
        while conn.wants_write() {
            conn.write_tls(&mut self.pending)?;
        }
        Ok(())
    }

    /// Sends our close_notify (once), with everything before it.
    fn close_notify(&mut self) -> io::Result<()> {
        if !self.notified {
            self.notified = true;
            lock(&self.tls).send_close_notify();
        }
        self.flush()
    }

    fn write_pending(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            match self.sock.write(&self.pending) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_pending()?;
        let n = lock(&self.tls).writer().write(buf)?;
        self.encrypt_pending()?;
        match self.write_pending() {
            // The plaintext is taken; the rest of its records leave with the next write or
            // flush.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(n),
            Err(e) => Err(e),
            Ok(()) => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encrypt_pending()?;
        self.write_pending()
    }
}

impl WriteHalf for TlsWriter {
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.close_notify()?;
        self.sock.shutdown(Shutdown::Write)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        let _ = self.close_notify();
        self.sock.shutdown(Shutdown::Both)
    }
}

/// The default client configuration: the `webpki-roots` store and the ring provider.
fn default_client_config() -> io::Result<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(Arc::clone(config));
    }
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::clone(CONFIG.get_or_init(|| Arc::new(config))))
}

/// Starts a TLS client over `tcp` for `host` (the handshake completes in `split`).
pub(crate) fn client(
    tcp: TcpStream,
    host: &str,
    config: Option<Arc<rustls::ClientConfig>>,
) -> io::Result<MaybeTlsStream> {
    let config = match config {
        Some(c) => c,
        None => default_client_config()?,
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    Ok(MaybeTlsStream::Rustls(Box::new(rustls::StreamOwned::new(
        conn, tcp,
    ))))
}
