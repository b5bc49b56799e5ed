//! The send path: frame encoding, masking and the output queue.
//!
//! Headers and small payloads are written into one growing buffer (`tail`); a large payload in
//! the server role (no masking) is queued as its own `Bytes` without a copy, so a driver can write
//! header and payload with one vectored write. The driver sees the queue as slices and reports
//! how much it wrote; partial writes are fine.

use alloc::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use rand_core::Rng;

use crate::connection::Role;
use crate::frame::{FrameHeader, OpCode};
use crate::mask::apply_mask;

/// Payloads at least this large are queued without copying when no masking is needed.
const ZERO_COPY_MIN: usize = 2048;

/// An empty tail buffer larger than this is released rather than kept, so an idle connection
/// holds little output buffer.
const KEEP_CAPACITY: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Sender {
    /// Chunks older than `tail`, ready to write.
    queue: VecDeque<Bytes>,
    /// Newest bytes; small frames are coalesced here.
    tail: BytesMut,
    /// Total bytes waiting.
    len: usize,
}

impl Sender {
    /// Bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues one frame with the RSV bits `rsv` (RSV1 = 0b100). The client role masks with a
    /// fresh key from `rng` (RFC 6455 §5.3), leaving `payload` itself untouched. When the
    /// payload is also available as `shared` `Bytes`, a large unmasked payload is queued
    /// without a copy.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_frame(
        &mut self,
        role: Role,
        opcode: OpCode,
        fin: bool,
        rsv: u8,
        payload: &[u8],
        shared: Option<&Bytes>,
        rng: &mut dyn Rng,
    ) {
        let mask = match role {
            Role::Client => Some(rng.next_u32().to_ne_bytes()),
            Role::Server => None,
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        self.len += header.encoded_len() + payload.len();
        header.encode(&mut self.tail);
        match mask {
            Some(key) => {
                let start = self.tail.len();
                self.tail.extend_from_slice(payload);
                apply_mask(&mut self.tail[start..], key);
            }
            None if payload.len() >= ZERO_COPY_MIN && shared.is_some() => {
                self.queue.push_back(self.tail.split().freeze());
                self.queue.extend(shared.cloned());
            }
            None => self.tail.extend_from_slice(payload),
        }
    }

    /// Queues an encoded frame (a prepared message): a large one by reference, a small one
    /// copied into the tail with its neighbours.
    pub(crate) fn write_frame_bytes(&mut self, frame: &Bytes) {
        self.len += frame.len();
        if frame.len() >= ZERO_COPY_MIN {
            if !self.tail.is_empty() {
                self.queue.push_back(self.tail.split().freeze());
            }
            self.queue.push_back(frame.clone());
        } else {
            self.tail.extend_from_slice(frame);
        }
    }

    /// Queues bytes as they are (an HTTP handshake head).
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        self.tail.extend_from_slice(bytes);
    }

    /// The first run of bytes to write.
    pub(crate) fn first(&self) -> Option<&[u8]> {
        match self.queue.front() {
            Some(front) => Some(front),
            None if !self.tail.is_empty() => Some(&self.tail),
            None => None,
        }
    }

    /// Every run of bytes waiting, in order, for vectored writes.
    pub(crate) fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.queue
            .iter()
            .map(|b| &b[..])
            .chain(core::iter::once(&self.tail[..]))
            .filter(|s| !s.is_empty())
    }

    /// The driver wrote `n` bytes from the front.
    ///
    /// Once everything is written, a `quiet` connection (one not sending and receiving
    /// steadily) gives its queue memory back; a busy one keeps a small tail for the next
    /// frames.
    pub(crate) fn consume(&mut self, mut n: usize, quiet: bool) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            match self.queue.front_mut() {
                Some(front) if n >= front.len() => {
                    n -= front.len();
                    self.queue.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    n = 0;
                }
                None => {
                    self.tail.advance(n);
                    n = 0;
                }
            }
        }
        if self.len == 0 && quiet {
            self.queue = VecDeque::new();
            self.tail = BytesMut::new();
        } else if self.len == 0 {
            self.queue.clear();
            if self.tail.capacity() > KEEP_CAPACITY {
                self.tail = BytesMut::new();
            } else {
                self.tail.clear();
            }
        }
    }

    /// Drops everything not yet written (the transport is being closed).
    pub(crate) fn discard(&mut self) {
        self.queue.clear();
        self.tail = BytesMut::new();
        self.len = 0;
    }

    /// Bytes of memory the queue holds, for accounting.
    pub(crate) fn capacity(&self) -> usize {
        self.tail.capacity() + self.queue.iter().map(Bytes::len).sum::<usize>()
    }
}

/// Bytes the connection wants written, from
/// [`Connection::poll_transmit`](crate::Connection::poll_transmit): one or more runs, in order.
/// Write as much as the transport takes (a vectored write of every run, or the first run
/// alone) and report it with [`Connection::advance`](crate::Connection::advance).
#[derive(Clone, Copy)]
pub struct Transmit<'a> {
    sender: &'a Sender,
}

impl<'a> Transmit<'a> {
    pub(crate) fn new(sender: &'a Sender) -> Option<Self> {
        (!sender.is_empty()).then_some(Transmit { sender })
    }

    /// Bytes waiting in all runs together (never 0).
    #[must_use]
    pub fn len(&self) -> usize {
        self.sender.len()
    }

    /// Always false: a transmit is only handed out when there is something to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sender.is_empty()
    }

    /// The first run, for a transport without vectored writes.
    #[must_use]
    pub fn first(&self) -> &'a [u8] {
        self.sender.first().unwrap_or_default()
    }

    /// Every run, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.sender.slices()
    }

    /// Fills `out` with the first runs as `IoSlice`s for `write_vectored`; returns how many.
    #[cfg(feature = "std")]
    pub fn io_slices(&self, out: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, run) in out.iter_mut().zip(self.iter()) {
            *slot = std::io::IoSlice::new(run);
            n += 1;
        }
        n
    }
}

impl core::fmt::Debug for Transmit<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transmit")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
