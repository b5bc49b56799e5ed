//! What a byte stream must offer so that one thread can read while another writes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// A byte stream that can be split into a read half (owned by the connection's driver thread)
/// and a write half (used by whichever thread flushes the connection's output).
///
/// Implemented for [`TcpStream`] (through `try_clone`), `UnixStream` on Unix, and, with the
/// `rustls` feature, for rustls streams over TCP and for [`MaybeTlsStream`](crate::MaybeTlsStream).
/// For a stream of your own, implement it with:
/// - a read half whose read timeout can be set, so the driver wakes for the next deadline;
/// - a write half whose write timeout can be set, so a blocked writer notices timers;
/// - a `shutdown_write` on the write half that ends the output only (TCP FIN, TLS close_notify)
///   while reads go on, and a `shutdown` that also wakes a read blocked on the read half (as
///   `shutdown(Shutdown::Both)` does for sockets).
pub trait SplitStream: Send + 'static {
    /// The half the driver thread reads from.
    type Reader: ReadHalf;
    /// The half output is written to.
    type Writer: WriteHalf;
    /// Splits the stream, first completing any transport-level handshake (TLS) within
    /// `handshake_timeout`.
    fn split(self, handshake_timeout: Duration) -> io::Result<(Self::Reader, Self::Writer)>;
}

/// The read half of a [`SplitStream`].
pub trait ReadHalf: Read + Send + 'static {
    /// Bounds the next reads (`None`: block until data or end of stream). A read that times
    /// out fails with `WouldBlock` or `TimedOut`.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

/// The write half of a [`SplitStream`].
pub trait WriteHalf: Write + Send + 'static {
    /// Bounds the next writes (`None`: block until written). A write that times out without
    /// writing anything fails with `WouldBlock` or `TimedOut`.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
    /// Half-closes the transport: ends the output (the peer reads its end of stream) and lets
    /// the read half go on reading. The core asks for it after a close handshake
    /// ([`TransportAction::Shutdown`](tether::TransportAction::Shutdown), RFC 6455 §7.1.1).
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// Closes the transport in both directions; a read blocked on the read half must return.
    fn shutdown(&mut self) -> io::Result<()>;
}

impl SplitStream for TcpStream {
    type Reader = TcpStream;
    type Writer = TcpStream;
    fn split(self, _: Duration) -> io::Result<(TcpStream, TcpStream)> {
        self.set_nodelay(true)?;
        Ok((self.try_clone()?, self))
    }
}

impl ReadHalf for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

impl WriteHalf for TcpStream {
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Write)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Both)
    }
}

#[cfg(unix)]
mod unix {
    use super::*;
    use std::os::unix::net::UnixStream;

    impl SplitStream for UnixStream {
        type Reader = UnixStream;
        type Writer = UnixStream;
        fn split(self, _: Duration) -> io::Result<(UnixStream, UnixStream)> {
            Ok((self.try_clone()?, self))
        }
    }

    impl ReadHalf for UnixStream {
        fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
            UnixStream::set_read_timeout(self, timeout)
        }
    }

    impl WriteHalf for UnixStream {
        fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
            UnixStream::set_write_timeout(self, timeout)
        }
        fn shutdown_write(&mut self) -> io::Result<()> {
            UnixStream::shutdown(self, Shutdown::Write)
        }
        fn shutdown(&mut self) -> io::Result<()> {
            UnixStream::shutdown(self, Shutdown::Both)
        }
    }
}

/// A client stream: plain TCP, or TLS over TCP for `wss://` (feature `rustls`).
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// Plain TCP (`ws://`).
    Plain(TcpStream),
    /// TLS over TCP (`wss://`).
    #[cfg(feature = "rustls")]
    Rustls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

/// The read half of a [`MaybeTlsStream`].
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsReader {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "rustls")]
    Rustls(crate::tls::TlsReader),
}

/// The write half of a [`MaybeTlsStream`].
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsWriter {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "rustls")]
    Rustls(crate::tls::TlsWriter),
}

impl SplitStream for MaybeTlsStream {
    type Reader = MaybeTlsReader;
    type Writer = MaybeTlsWriter;
    fn split(self, timeout: Duration) -> io::Result<(MaybeTlsReader, MaybeTlsWriter)> {
        match self {
            MaybeTlsStream::Plain(s) => {
                let (r, w) = s.split(timeout)?;
                Ok((MaybeTlsReader::Plain(r), MaybeTlsWriter::Plain(w)))
            }
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(s) => {
                let (r, w) = (*s).split(timeout)?;
                Ok((MaybeTlsReader::Rustls(r), MaybeTlsWriter::Rustls(w)))
            }
        }
    }
}

impl Read for MaybeTlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeTlsReader::Plain(s) => s.read(buf),
            #[cfg(feature = "rustls")]
            MaybeTlsReader::Rustls(s) => s.read(buf),
        }
    }
}

impl ReadHalf for MaybeTlsReader {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            MaybeTlsReader::Plain(s) => ReadHalf::set_read_timeout(s, timeout),
            #[cfg(feature = "rustls")]
            MaybeTlsReader::Rustls(s) => s.set_read_timeout(timeout),
        }
    }
}

impl Write for MaybeTlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeTlsWriter::Plain(s) => s.write(buf),
            #[cfg(feature = "rustls")]
            MaybeTlsWriter::Rustls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeTlsWriter::Plain(s) => s.flush(),
            #[cfg(feature = "rustls")]
            MaybeTlsWriter::Rustls(s) => s.flush(),
        }
    }
}

impl WriteHalf for MaybeTlsWriter {
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            MaybeTlsWriter::Plain(s) => WriteHalf::set_write_timeout(s, timeout),
            #[cfg(feature = "rustls")]
            MaybeTlsWriter::Rustls(s) => s.set_write_timeout(timeout),
        }
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            MaybeTlsWriter::Plain(s) => WriteHalf::shutdown_write(s),
            #[cfg(feature = "rustls")]
            MaybeTlsWriter::Rustls(s) => s.shutdown_write(),
        }
    }
    fn shutdown(&mut self) -> io::Result<()> {
        match self {
            MaybeTlsWriter::Plain(s) => WriteHalf::shutdown(s),
            #[cfg(feature = "rustls")]
            MaybeTlsWriter::Rustls(s) => s.shutdown(),
        }
    }
}
