//! The send path: frame encoding, masking and the output queue.
//!
//! Frames are written into one buffer of owned bytes: headers, small payloads, and in the
//! client role every payload, copied and masked in one pass (RFC 6455 §5.3 wants the caller's
//! payload left intact). A large payload in the server role (no masking) is queued as its own
//! `Bytes` without a copy, between the owned bytes before and after it, so a driver can write
//! header and payload with one vectored write. The driver sees the queue as slices and reports
//! how much it wrote; partial writes are fine.
//!
//! The buffer is initialised memory: once written, its spare part is reused by the next
//! frames without being zeroed again, and it is kept while the connection keeps sending (the
//! connection decides, see `Connection::settle_output_buffer`). Safe Rust cannot write into
//! uninitialised memory except by appending, and appending cannot fuse the copy with the
//! masking, so new memory is zeroed once when the buffer grows.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::{Buf, Bytes};
use rand_core::Rng;

use crate::connection::Role;
use crate::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use crate::mask::copy_masked;

/// Payloads at least this large are queued without copying when no masking is needed.
const ZERO_COPY_MIN: usize = 2048;

/// The smallest buffer allocated: room for a few small frames.
const MIN_BUFFER: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct Sender {
    /// Owned bytes: `buf[start..end]` wait to be written (with the shared payloads among
    /// them); `buf[end..]` is initialised spare for the next frames.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Payloads queued by reference, in order, each with the offset in `buf` of the owned
    /// bytes it goes in front of (offsets never decrease and are never below `start`).
    shared: VecDeque<(usize, Bytes)>,
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
    #[inline]
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
        if payload.len() < 126 {
            // The common frame, a small one: the 7-bit length form, copied (and masked by a
            // client) in one step (inlined; the general path's prologue alone cost a server's
            // a third).
            let mask = match role {
                Role::Client => Some(rng.next_u32().to_ne_bytes()),
                Role::Server => None,
            };
            self.write_small(opcode, fin, rsv, payload, mask);
        } else {
            self.write_any(role, opcode, fin, rsv, payload, shared, rng);
        }
    }

    /// [`write_frame`](Sender::write_frame) for every frame.
    #[allow(clippy::too_many_arguments)]
    fn write_any(
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
        let (head, head_len) = header.to_array();
        let by_reference = mask.is_none() && payload.len() >= ZERO_COPY_MIN;
        let shared = shared.filter(|_| by_reference);
        let copied = if shared.is_some() { 0 } else { payload.len() };
        // Room for the whole 14-byte array: copying a fixed size is cheaper than `head_len`.
        let spare = self.spare(MAX_HEADER_LEN.max(head_len + copied));
        spare[..MAX_HEADER_LEN].copy_from_slice(&head);
        let body = &mut spare[head_len..head_len + copied];
        match (mask, shared) {
            (Some(key), _) => copy_masked(body, payload, key),
            (None, None) => body.copy_from_slice(payload),
            (None, Some(_)) => {}
        }
        self.end += head_len + copied;
        self.len += head_len + copied;
        if let Some(payload) = shared {
            self.push_shared(payload.clone());
        }
    }

    /// [`write_frame`](Sender::write_frame) for a payload under 126 bytes (the 7-bit length
    /// form, RFC 6455 §5.2): the header's two bytes, the masking key if there is one, and the
    /// payload, copied (and masked).
    #[inline]
    fn write_small(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv: u8,
        payload: &[u8],
        mask: Option<[u8; 4]>,
    ) {
        let n = payload.len();
        let head = if mask.is_some() { 6 } else { 2 };
        let spare = self.spare(head + n);
        spare[0] = crate::frame::first_byte(opcode, fin, rsv);
        spare[1] = n as u8;
        match mask {
            Some(key) => {
                spare[1] |= 0x80;
                spare[2..6].copy_from_slice(&key);
                copy_masked(&mut spare[6..6 + n], payload, key);
            }
            None => spare[2..2 + n].copy_from_slice(payload),
        }
        self.end += head + n;
        self.len += head + n;
    }

    /// Queues an encoded frame (a prepared message): a large one by reference, a small one
    /// copied into the buffer with its neighbours.
    pub(crate) fn write_frame_bytes(&mut self, frame: &Bytes) {
        if frame.len() >= ZERO_COPY_MIN {
            self.push_shared(frame.clone());
        } else {
            self.write_raw(frame);
        }
    }

    /// Queues bytes as they are (an HTTP handshake head).
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) {
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
        self.len += bytes.len();
    }

    /// Queues `bytes` by reference behind everything queued so far.
    fn push_shared(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.len += bytes.len();
            self.shared.push_back((self.end, bytes));
        }
    }

    /// At least `n` bytes of initialised spare after `end`: reuses the buffer, moves the
    /// waiting bytes to its front when the written part before them is at least as large (so
    /// each byte moves at most once on average), or grows it (at least doubling).
    fn spare(&mut self, n: usize) -> &mut [u8] {
        if self.buf.len() - self.end < n {
            self.make_room(n);
        }
        &mut self.buf[self.end..]
    }

    #[cold]
    fn make_room(&mut self, n: usize) {
        let waiting = self.end - self.start;
        if self.start > 0 && self.start >= waiting {
            self.buf.copy_within(self.start..self.end, 0);
            for (at, _) in &mut self.shared {
                *at -= self.start;
            }
            self.start = 0;
            self.end = waiting;
            if self.buf.len() - self.end >= n {
                return;
            }
        }
        let want = (self.end + n).max(2 * self.buf.len()).max(MIN_BUFFER);
        self.buf.resize(want, 0);
    }

    /// The first run of bytes to write.
    pub(crate) fn first(&self) -> Option<&[u8]> {
        match self.shared.front() {
            Some((at, bytes)) if *at == self.start => Some(bytes),
            Some((at, _)) => Some(&self.buf[self.start..*at]),
            None if self.end > self.start => Some(&self.buf[self.start..self.end]),
            None => None,
        }
    }

    /// Every run of bytes waiting, in order, for vectored writes.
    pub(crate) fn slices(&self) -> Runs<'_> {
        Runs {
            sender: self,
            from: self.start,
            next_shared: 0,
        }
    }

    /// The driver wrote `n` bytes from the front. Once everything is written, the buffer is
    /// kept for the next frames; [`release`](Sender::release) gives it back.
    pub(crate) fn consume(&mut self, mut n: usize) {
        if n >= self.len {
            // Everything written (the common case): nothing to walk.
            self.shared.clear();
            self.start = 0;
            self.end = 0;
            self.len = 0;
            return;
        }
        self.len -= n;
        while n > 0 {
            let owned_end = self.shared.front().map_or(self.end, |(at, _)| *at);
            if self.start < owned_end {
                let step = n.min(owned_end - self.start);
                self.start += step;
                n -= step;
            } else if let Some((_, front)) = self.shared.front_mut() {
                if n >= front.len() {
                    n -= front.len();
                    self.shared.pop_front();
                } else {
                    front.advance(n);
                    n = 0;
                }
            } else {
                break;
            }
        }
    }

    /// Bytes of owned buffer held (written or not).
    pub(crate) fn buffer_size(&self) -> usize {
        self.buf.len()
    }

    /// Gives the memory back (only when nothing waits: it is the connection's to decide).
    pub(crate) fn release(&mut self) {
        if self.len == 0 {
            self.buf = Vec::new();
            self.shared = VecDeque::new();
        }
    }

    /// Drops everything not yet written (the transport is being closed).
    pub(crate) fn discard(&mut self) {
        self.buf = Vec::new();
        self.shared = VecDeque::new();
        self.start = 0;
        self.end = 0;
        self.len = 0;
    }

    /// Bytes of memory the queue holds, for accounting.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity() + self.shared.iter().map(|(_, b)| b.len()).sum::<usize>()
    }
}

/// The runs of a [`Sender`], in order: owned bytes before each shared payload, the payload,
/// and the owned bytes after the last one; empty runs are skipped.
#[derive(Clone, Debug)]
pub(crate) struct Runs<'a> {
    sender: &'a Sender,
    /// Where the next owned run starts in the buffer.
    from: usize,
    /// The next shared payload, by index; past the end once the last owned run is out.
    next_shared: usize,
}

impl<'a> Iterator for Runs<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let sender = self.sender;
        loop {
            let (owned_end, shared) = match sender.shared.get(self.next_shared) {
                Some((at, bytes)) => (*at, Some(bytes)),
                None if self.next_shared == sender.shared.len() => (sender.end, None),
                None => return None,
            };
            if self.from < owned_end {
                let run = &sender.buf[self.from..owned_end];
                self.from = owned_end;
                return Some(run);
            }
            self.next_shared += 1;
            if let Some(bytes) = shared {
                return Some(bytes);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec;
    use proptest::prelude::*;

    /// One step against the queue.
    #[derive(Clone, Debug)]
    enum Op {
        /// Owned bytes (a handshake head, a small frame).
        Raw(usize),
        /// A frame queued by reference when large (a prepared message).
        Shared(usize),
        /// The driver writes this many bytes; `first` writes at most the first run.
        Write { n: usize, first: bool },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..300usize).prop_map(Op::Raw),
            (0..5000usize).prop_map(Op::Shared),
            ((0..6000usize), any::<bool>()).prop_map(|(n, first)| Op::Write { n, first }),
        ]
    }

    proptest! {
        /// Whatever is queued and however it is written (partial writes, the first run alone,
        /// the owned buffer reused, compacted and grown with shared payloads waiting among its
        /// bytes), the written stream is exactly what was queued, in order.
        #[test]
        fn the_written_stream_is_what_was_queued(ops in proptest::collection::vec(op(), 1..120)) {
            let mut sender = Sender::default();
            let mut model: VecDeque<u8> = VecDeque::new();
            let mut written = Vec::new();
            let mut expected = Vec::new();
            let mut next = 0u8;
            let mut bytes = |len: usize| {
                let v: Vec<u8> = (0..len).map(|_| { next = next.wrapping_add(1); next }).collect();
                v
            };
            for op in ops {
                match op {
                    Op::Raw(len) => {
                        let v = bytes(len);
                        sender.write_raw(&v);
                        model.extend(&v);
                        expected.extend(&v);
                    }
                    Op::Shared(len) => {
                        let v = bytes(len);
                        sender.write_frame_bytes(&Bytes::from(v.clone()));
                        model.extend(&v);
                        expected.extend(&v);
                    }
                    Op::Write { n, first } => {
                        let runs: Vec<&[u8]> = sender.slices().collect();
                        let all: Vec<u8> = runs.concat();
                        prop_assert_eq!(&all, &model.iter().copied().collect::<Vec<u8>>());
                        prop_assert_eq!(sender.len(), model.len());
                        prop_assert_eq!(sender.first(), runs.first().copied());
                        let n = if first { n.min(runs.first().map_or(0, |r| r.len())) } else { n };
                        let n = n.min(all.len());
                        written.extend_from_slice(&all[..n]);
                        sender.consume(n);
                        model.drain(..n);
                    }
                }
            }
            while let Some(run) = sender.first() {
                let run = run.to_vec();
                written.extend_from_slice(&run);
                sender.consume(run.len());
            }
            prop_assert!(sender.is_empty());
            prop_assert_eq!(written, expected);
        }
    }

    /// The buffer is compacted when the written part before the waiting bytes is at least as
    /// large, with a shared payload waiting among them, and grown otherwise.
    #[test]
    fn compaction_moves_waiting_bytes_and_shared_positions() {
        let mut sender = Sender::default();
        sender.write_raw(&[1; 200]);
        let size = sender.buffer_size();
        assert_eq!(size, MIN_BUFFER);
        sender.consume(150);
        sender.write_frame_bytes(&Bytes::from(vec![2; ZERO_COPY_MIN]));
        sender.write_raw(&[3; 40]);
        // 150 written, 90 owned waiting: 120 more bytes need room, so the buffer compacts.
        sender.write_raw(&[4; 120]);
        assert_eq!(sender.buffer_size(), size, "compacted, not grown");
        let all: Vec<u8> = sender.slices().flatten().copied().collect();
        let mut want = vec![1; 50];
        want.extend([2; ZERO_COPY_MIN]);
        want.extend([3; 40]);
        want.extend([4; 120]);
        assert_eq!(all, want);
        // Now 210 owned waiting in front: no compaction (it would move more than it frees).
        sender.write_raw(&[5; 100]);
        assert_eq!(sender.buffer_size(), 2 * size, "grown");
        sender.consume(sender.len());
        assert_eq!(sender.first(), None);
        sender.release();
        assert_eq!(sender.capacity(), 0);
    }

    /// Frames in both roles, small ones included (they take a shortcut), encode as
    /// `FrameHeader::encode` says, whatever the opcode, FIN and RSV bits; a client's are masked.
    #[test]
    fn frames_encode_as_their_header_says() {
        struct Fixed;
        impl rand_core::TryRng for Fixed {
            type Error = core::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                Ok(0x0102_0304)
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                Ok(0x0102_0304_0506_0708)
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                dst.fill(7);
                Ok(())
            }
        }
        let opcodes = [
            OpCode::Text,
            OpCode::Binary,
            OpCode::Continuation,
            OpCode::Ping,
        ];
        for role in [Role::Server, Role::Client] {
            for len in [0, 1, 7, 125, 126, 127, 300, ZERO_COPY_MIN] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                for (i, opcode) in opcodes.into_iter().enumerate() {
                    let (fin, rsv) = (i % 2 == 0, if i == 1 { 0b100 } else { 0 });
                    let mut sender = Sender::default();
                    let shared = Bytes::from(payload.clone());
                    sender.write_frame(role, opcode, fin, rsv, &payload, Some(&shared), &mut Fixed);
                    let all: Vec<u8> = sender.slices().flatten().copied().collect();
                    let key = 0x0102_0304u32.to_ne_bytes();
                    let header = FrameHeader {
                        fin,
                        rsv,
                        opcode,
                        mask: (role == Role::Client).then_some(key),
                        payload_len: len as u64,
                    };
                    let mut want = bytes::BytesMut::new();
                    header.encode(&mut want);
                    let at = want.len();
                    want.extend_from_slice(&payload);
                    if role == Role::Client {
                        crate::mask::apply_mask(&mut want[at..], key);
                    }
                    assert_eq!(all, &want[..], "{role:?} {opcode:?} {len}");
                }
            }
        }
    }
}
