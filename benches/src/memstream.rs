//! An in-memory "socket": reads replay a prepared byte string (wrapping around at its end, which
//! is a frame boundary) in reads of at most `chunk` bytes; writes are counted, not copied. It
//! implements `std::io` and tokio's I/O traits and never returns `Pending`, so an async library
//! can be driven with `now_or_never` and no runtime is measured.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct MemStream {
    input: Arc<[u8]>,
    pos: usize,
    chunk: usize,
    pub written: u64,
    /// A copy of `written` readable from outside (for libraries that hide their stream).
    tally: Option<Arc<AtomicU64>>,
}

impl MemStream {
    pub fn new(input: Arc<[u8]>, chunk: usize) -> Self {
        MemStream {
            input,
            pos: 0,
            chunk,
            written: 0,
            tally: None,
        }
    }

    /// A sink whose written byte count `tally` follows.
    pub fn counting_sink(tally: Arc<AtomicU64>) -> Self {
        MemStream {
            tally: Some(tally),
            ..MemStream::sink()
        }
    }

    fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        if let Some(t) = &self.tally {
            t.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// A stream with nothing to read (for encoders).
    pub fn sink() -> Self {
        MemStream::new(Arc::from(Vec::new()), usize::MAX)
    }

    /// Copies the next read into `buf` (the one copy from the "socket" into the library).
    pub fn read_into(&mut self, buf: &mut [u8]) -> usize {
        if self.input.is_empty() {
            return 0;
        }
        let n = buf.len().min(self.chunk).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.input.len() {
            self.pos = 0;
        }
        n
    }
}

impl io::Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_into(buf))
    }
}

impl io::Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wrote(buf.len());
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n: usize = bufs.iter().map(|b| b.len()).sum();
        self.wrote(n);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for MemStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.input.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let n = buf
            .remaining()
            .min(this.chunk)
            .min(this.input.len() - this.pos);
        buf.put_slice(&this.input[this.pos..this.pos + n]);
        this.pos += n;
        if this.pos == this.input.len() {
            this.pos = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.wrote(buf.len());
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n: usize = bufs.iter().map(|b| b.len()).sum();
        self.wrote(n);
        Poll::Ready(Ok(n))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
