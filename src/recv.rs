//! The receive path: frame decoding, in-place unmasking, incremental UTF-8 and message assembly.
//!
//! One input buffer holds `[consumed | data | initialised spare]`. The driver reads into the
//! spare part, the decoder parses headers there, unmasks and validates payload bytes as soon as
//! they arrive (so a bad text frame fails before it is complete; binary payloads that are
//! copied out, whole messages up to 16 KiB and fragments, stay masked and are unmasked while
//! copied). A complete payload up to 16 KiB is copied out, so the buffer stays initialised and
//! is reused for the next read without being zeroed again (safe Rust reads into initialised
//! memory only), and a small message never pins a large buffer; a larger payload leaves the
//! buffer without a copy (a big message is not held twice). Such a payload is read up to its
//! end and no further, so it usually ends its buffer: the whole buffer is then frozen and lent
//! out with it, and taken back, still initialised, once the message is dropped (otherwise the
//! payload is split off the front, and the allocation is reclaimed, partly zeroed, once the
//! message is dropped). Fragmented messages are copied, once, into their assembly buffer. An
//! emptied buffer is kept while input keeps coming and given back once the connection is quiet
//! (the connection's `InputBuffer` timer).

use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::{Buf, Bytes, BytesMut};

use crate::Config;
use crate::connection::Role;
use crate::deflate::TAIL;
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use crate::mask::{apply_mask, apply_mask_at, extend_masked, masked_vec};
use crate::message::{DataKind, Message, Utf8Bytes};
use crate::utf8::Utf8Validator;

/// Largest read slice offered while a big frame is being received (assembled mode).
const MAX_READ_HINT: usize = 4 << 20;

/// Payloads up to this size are copied out of the input buffer; larger ones leave it without a
/// copy. Measured on loopback echo (100 connections, 16 KiB messages): copying keeps the buffer
/// whole, initialised and in cache for the next read, where splitting it off means zeroing
/// fresh memory for the next read (safe Rust reads into initialised memory only) whenever the
/// message is still held.
const COPY_MAX: usize = 16 << 10;

/// Whether a payload of `len` bytes is copied out of the input buffer (see [`COPY_MAX`]).
#[inline(always)]
const fn copied(len: u64) -> bool {
    len <= COPY_MAX as u64
}

/// Smallest read slice offered, and the most an empty input buffer keeps: an idle connection
/// holds at most this much input buffer.
const MIN_READ: usize = 1024;

/// The largest slice offered when no frame needs more.
fn read_size(config: &Config) -> usize {
    config.read_buffer_size.max(MIN_READ)
}

/// What the decoder produced.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A complete message (assembled mode).
    Message(Message),
    /// A piece of a message (streaming mode).
    Chunk {
        kind: DataKind,
        data: Bytes,
        first: bool,
        last: bool,
        /// A piece of a compressed message's payload (RFC 7692), to inflate: delivered this
        /// way in both modes.
        compressed: bool,
        /// The last piece of a compressed message, copied out with the sync-flush tail
        /// appended (RFC 7692 §7.2.2): the inflater needs no copy of its own to join them.
        tailed: bool,
    },
    Ping(Bytes),
    Pong(Bytes),
    /// A `tether-resume` acknowledgement (only once the extension was negotiated).
    Ack(Bytes),
    Close(Bytes),
}

/// The frame whose payload is being received.
#[derive(Debug)]
struct InFrame {
    header: FrameHeader,
    /// Payload bytes not yet split off the buffer.
    remaining: u64,
    /// Payload bytes at the front of the buffer already unmasked (and validated if text).
    ready: usize,
    /// Payload offset of the buffer front, for the mask rotation.
    offset: usize,
    /// Whether the payload belongs to a text message.
    text: bool,
    /// The key of a masked binary payload that is copied out at the frame's end (a whole
    /// message up to [`COPY_MAX`], or a fragment): left masked as it arrives (`ready` counts it
    /// anyway) and unmasked while copied, one pass instead of two.
    copy_key: Option<[u8; 4]>,
}

/// The data message being received.
#[derive(Debug)]
struct InMessage {
    kind: DataKind,
    /// Sum of the announced payload lengths so far.
    size: u64,
    /// Fragments assembled so far (assembled mode).
    parts: Vec<u8>,
    /// Whether a chunk was already reported (streaming mode).
    started: bool,
    /// RSV1 was set on its first frame: the payload is compressed (RFC 7692 §6.1).
    compressed: bool,
}

#[derive(Debug)]
pub(crate) struct Receiver {
    /// Initialised up to its length: `buf[start..filled]` is unprocessed input, what follows is
    /// spare to read into.
    buf: BytesMut,
    /// Where the unprocessed input begins (bytes before it are consumed).
    start: usize,
    /// Where the unprocessed input ends.
    filled: usize,
    /// A payload was split off the buffer: its allocation (about this many bytes) is shared
    /// with a message, and kept alive by the buffer even when the buffer's own view of it is
    /// small. 0 when nothing was split off.
    split_off: usize,
    /// The whole buffer a large payload was handed out from (see [`Receiver::take`]): once
    /// the message is dropped it is the only handle left, and it becomes the input buffer
    /// again, initialised, without zeroing. Boxed: only large messages set it, and every
    /// connection holds the field.
    lent: Option<Box<Bytes>>,
    frame: Option<InFrame>,
    msg: Option<InMessage>,
    utf8: Utf8Validator,
    role: Role,
    /// The limits and the read size are the configuration's, passed to the calls that need
    /// them: every connection holds a receiver, and copies would cost it 24 bytes.
    streaming: bool,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message (RFC 7692 §6).
    compression: bool,
    /// `tether-resume` was negotiated: opcode 0xB is its Ack.
    acks: bool,
    /// The size offered next: it doubles when a read fills the slice and halves when reads use
    /// less than a quarter of it, between [`MIN_READ`] and `read_size`.
    read_hint: usize,
    /// The length of the slice last prepared for a read.
    offered: usize,
}

impl Receiver {
    pub(crate) fn new(role: Role, config: &crate::Config) -> Self {
        Receiver {
            buf: BytesMut::new(),
            start: 0,
            filled: 0,
            split_off: 0,
            lent: None,
            frame: None,
            msg: None,
            utf8: Utf8Validator::new(),
            role,
            streaming: config.streaming,
            compression: false,
            acks: false,
            read_hint: (4 << 10).min(read_size(config)),
            offered: 0,
        }
    }

    /// permessage-deflate was negotiated: RSV1 on a message's first frame is allowed from now on.
    pub(crate) fn allow_compression(&mut self) {
        self.compression = true;
    }

    /// `tether-resume` was negotiated: Ack frames (opcode 0xB) are allowed from now on.
    pub(crate) fn allow_acks(&mut self) {
        self.acks = true;
    }

    /// Whether the data frame being received is passed on in pieces as it arrives: in
    /// streaming mode, and for compressed messages, which are inflated as they come.
    fn in_pieces(&self) -> bool {
        self.streaming || self.msg.as_ref().is_some_and(|m| m.compressed)
    }

    /// Makes the spare part of the input buffer ready for a read: at least the adaptive hint,
    /// or what the frame being received still needs. Initialised spare is reused as it is
    /// (the unprocessed bytes move to the front first when that makes room); only new growth
    /// is zeroed (safe Rust reads into initialised memory only).
    ///
    /// A `quiet` connection with nothing buffered offers [`MIN_READ`]: its first read after
    /// a quiet time (or a read that finds nothing) leaves at most that much allocated.
    ///
    /// The payload of a large frame that will be handed out whole is read up to its end and
    /// no further, so it ends its buffer and the whole buffer can be lent out with it (see
    /// [`Receiver::take`]).
    pub(crate) fn prepare(&mut self, quiet: bool, config: &Config) {
        if self.buf.capacity() == 0 {
            self.recycle();
        }
        let need = match &self.frame {
            Some(f) if !self.in_pieces() => f.remaining.saturating_sub(self.len() as u64),
            _ => 0,
        };
        let lends = need > 0 && self.lends_frame();
        let hint = if quiet && self.filled == 0 {
            MIN_READ
        } else {
            self.read_hint
        };
        let need = need.min(MAX_READ_HINT as u64) as usize;
        let want = if lends { need } else { need.max(hint) };
        // Room is enough when it is what we want, or, in a buffer that has grown to the wanted
        // size already, at least half of it and what the frame needs (a smaller read beats
        // zeroing memory for a bigger one).
        let enough =
            |room: usize| room >= want || (self.buf.len() >= want && room >= (want / 2).max(need));
        if enough(self.buf.len() - self.filled) {
            // The initialised spare is enough.
        } else if enough(self.buf.len() - self.len()) {
            // Moving the unprocessed bytes to the front of the initialised buffer makes the
            // room: nothing needs zeroing.
            self.compact();
        } else if self.reclaim(want) {
            // The buffer's allocation was free again (the messages split off it are gone).
            self.buf.resize(self.filled + want, 0);
        } else if self.buf.len() - self.filled < want.min(MIN_READ).max(need)
            || self.buf.len() < want / 2
        {
            // Too little spare to be worth a read, or a buffer far smaller than the reads have
            // become (the 1 KiB one a quiet connection starts with: its spare is never under
            // 1 KiB when pieces are taken as they arrive, so it would never grow): a new
            // allocation of exactly what is needed (`reserve` would round up, and a large
            // allocation is a fresh mapping each time).
            // One to lend out gets room for the next header too: taken back, it holds the
            // next message of the same size whole.
            let slack = if lends { MAX_HEADER_LEN } else { 0 };
            let mut fresh = BytesMut::with_capacity(self.len() + want + slack);
            fresh.extend_from_slice(&self.buf[self.start..self.filled]);
            fresh.resize(self.len() + want, 0);
            self.buf = fresh;
            self.filled -= self.start;
            self.start = 0;
            self.split_off = 0;
        }
        // Initialised spare is offered up to the read size (the hint only limits growth), so
        // a message slightly over the hint is one read, not two; beyond that what the frame
        // needs: reads stay bounded. A payload to lend out is read up to its end.
        let limit = if lends {
            need
        } else {
            want.max(read_size(config))
        };
        self.offered = (self.buf.len() - self.filled).min(limit);
    }

    /// Whether the frame being received is a payload [`Receiver::take`] hands out without a
    /// copy: a large, unfragmented data message in assembled mode.
    fn lends_frame(&self) -> bool {
        !self.in_pieces()
            && self.msg.as_ref().is_some_and(|m| m.parts.is_empty())
            && self.frame.as_ref().is_some_and(|f| {
                f.header.fin && !f.header.opcode.is_control() && !copied(f.remaining)
            })
    }

    /// Takes back the buffer lent out with a large message if that message is gone (its
    /// handle is the only one left): initialised memory, reused without zeroing (only room
    /// past it in its allocation is zeroed, once). A message still held keeps its memory to
    /// itself.
    fn recycle(&mut self) {
        if let Some(lent) = self.lent.take()
            && let Ok(mut buf) = (*lent).try_into_mut()
        {
            buf.resize(buf.capacity(), 0);
            self.buf = buf;
            self.start = 0;
            self.filled = 0;
            self.split_off = 0;
        }
    }

    /// Makes room for `want` bytes of spare in the buffer's own allocation, without
    /// allocating: the buffered bytes move to the front (the consumed ones and, once the
    /// messages split off the buffer are dropped, their memory are reused). The new room is
    /// not initialised yet.
    fn reclaim(&mut self, want: usize) -> bool {
        self.drop_consumed();
        let spare = self.buf.len() - self.filled;
        self.buf.try_reclaim(want - spare)
    }

    /// Moves the unprocessed bytes to the front of the buffer, within its initialised length:
    /// the room the consumed bytes took is spare again without zeroing.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            self.start = 0;
        }
    }

    /// Lets go of the consumed bytes at the front (the buffer's view starts at the
    /// unprocessed input).
    fn drop_consumed(&mut self) {
        if self.start > 0 {
            self.buf.advance(self.start);
            self.filled -= self.start;
            self.start = 0;
        }
    }

    /// A fresh, empty input buffer (the old one's memory is given back).
    fn reset_buffer(&mut self) {
        self.buf = BytesMut::new();
        self.lent = None;
        self.start = 0;
        self.filled = 0;
        self.split_off = 0;
    }

    /// How many unprocessed bytes are buffered.
    fn len(&self) -> usize {
        self.filled - self.start
    }

    /// `n` unprocessed bytes were consumed; an emptied buffer starts over at its front.
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.filled {
            self.start = 0;
            self.filled = 0;
        }
    }

    /// Takes the first `n` unprocessed bytes: copied out up to [`COPY_MAX`], so the buffer
    /// stays whole and initialised for the next read and a message never pins it; split off
    /// without a copy when larger. When nothing follows the payload, the whole buffer is
    /// frozen and lent out with it (the message is a slice of it), to be taken back whole and
    /// initialised once the message is dropped ([`Receiver::recycle`]); otherwise the payload
    /// is split off the front and the allocation reclaimed once the message is dropped
    /// ([`Receiver::reclaim`]), its new room zeroed.
    fn take(&mut self, n: usize) -> Bytes {
        if copied(n as u64) {
            let data = Bytes::copy_from_slice(&self.buf[self.start..self.start + n]);
            self.consume(n);
            return data;
        }
        if self.start + n == self.filled {
            let whole = core::mem::take(&mut self.buf).freeze();
            let data = whole.slice(self.start..self.filled);
            self.lent = Some(Box::new(whole));
            self.start = 0;
            self.filled = 0;
            self.split_off = 0;
            return data;
        }
        self.drop_consumed();
        self.filled -= n;
        self.split_off = self.split_off.max(self.buf.capacity());
        self.buf.split_to(n).freeze()
    }

    /// Copies the first `n` unprocessed bytes out with the sync-flush tail appended (the last
    /// piece of a compressed message, RFC 7692 §7.2.2), in one buffer of exactly that length.
    fn take_with_tail(&mut self, n: usize) -> Bytes {
        let mut data = Vec::with_capacity(n + TAIL.len());
        data.extend_from_slice(&self.buf[self.start..self.start + n]);
        data.extend_from_slice(&TAIL);
        self.consume(n);
        Bytes::from(data)
    }

    /// Takes the first `n` unprocessed bytes, still masked with `key` and no more than
    /// [`COPY_MAX`]: unmasked while copied out, one pass over the payload instead of two.
    fn take_unmasked(&mut self, n: usize, key: [u8; 4]) -> Bytes {
        debug_assert!(copied(n as u64));
        let data = masked_vec(&self.buf[self.start..self.start + n], key);
        self.consume(n);
        Bytes::from(data)
    }

    /// Takes a complete text message: its `avail` last bytes in the buffer, or the assembled
    /// `parts`. One that is copied anyway (up to [`COPY_MAX`]) is checked with simdutf8 and
    /// copied from the `&str` that check gives, so it needs no second, slower check; a larger
    /// one keeps its bytes and gets `ByteString`'s own check.
    fn take_text(&mut self, avail: usize, parts: Vec<u8>) -> Result<Utf8Bytes, ProtocolError> {
        let text = if parts.is_empty() && copied(avail as u64) {
            let text = Utf8Bytes::copy_validated(&self.buf[self.start..self.start + avail]);
            self.consume(avail);
            text.ok()
        } else if parts.is_empty() {
            Utf8Bytes::validate(self.take(avail)).ok()
        } else if copied(parts.len() as u64) {
            Utf8Bytes::copy_validated(&parts).ok()
        } else {
            Utf8Bytes::validate(Bytes::from(parts)).ok()
        };
        text.ok_or(ProtocolError::InvalidUtf8)
    }

    /// The common case in one step: a whole, unfragmented, uncompressed data message of up
    /// to [`COPY_MAX`] bytes in one frame that is all buffered, between messages, in assembled
    /// mode. Decoded as [`poll`](Receiver::poll) would, without setting up the frame and
    /// message state; `None` for anything else (including every malformed header: the
    /// general path reports it).
    #[inline]
    fn poll_whole(&mut self, config: &Config) -> Option<Result<Message, ProtocolError>> {
        // Anything else (a header in error, a control frame, a fragment, RSV bits, a payload
        // that is large or not all here, the wrong masking for the role) is the general
        // path's, which parses the header again.
        let (h, head) = FrameHeader::parse(&self.buf[self.start..self.filled]).ok()??;
        let text = match h.opcode {
            OpCode::Text => true,
            OpCode::Binary => false,
            _ => return None,
        };
        // RFC 6455 §5.1: clients mask every frame, servers mask none.
        let len = h.payload_len;
        if !h.fin
            || h.rsv != 0
            || h.mask.is_some() != (self.role == Role::Server)
            || !copied(len)
            || (self.len() - head) < len as usize
            || len > config.max_frame_payload as u64
            || len > config.max_message_size as u64
        {
            return None;
        }
        let len = len as usize;
        self.consume(head);
        Some(match (text, h.mask) {
            (false, Some(key)) => Ok(Message::Binary(self.take_unmasked(len, key))),
            (false, None) => Ok(Message::Binary(self.take(len))),
            (true, key) => {
                if let Some(key) = key {
                    apply_mask(&mut self.buf[self.start..self.start + len], key);
                }
                self.take_text(len, Vec::new()).map(Message::Text)
            }
        })
    }

    /// The spare part prepared by [`Receiver::prepare`].
    pub(crate) fn spare(&self) -> &[u8] {
        &self.buf[self.filled..self.filled + self.offered]
    }

    /// The spare part prepared by [`Receiver::prepare`], to read into.
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.filled..self.filled + self.offered]
    }

    /// The driver read `n` bytes into the spare part; returns how many count (at most the
    /// spare's length).
    pub(crate) fn commit(&mut self, n: usize, config: &Config) -> usize {
        let n = n.min(self.offered);
        self.filled += n;
        // A read that fills its slice says more is waiting: grow the offer. A short read
        // drained the transport for now.
        if n >= self.offered && n > 0 {
            self.read_hint = (self.read_hint * 2).min(read_size(config));
        } else if n < self.read_hint / 4 {
            self.read_hint = (self.read_hint / 2).max(MIN_READ);
        }
        n
    }

    /// Copies `data` into the input buffer (appended to the unprocessed bytes without zeroing
    /// anything first).
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.buf.capacity() == 0 {
            self.recycle();
        }
        if self.buf.len() - self.filled >= data.len() {
            self.buf[self.filled..self.filled + data.len()].copy_from_slice(data);
            self.filled += data.len();
        } else {
            self.buf.truncate(self.filled);
            self.buf.extend_from_slice(data);
            self.filled = self.buf.len();
        }
    }

    /// Runs `f` on the unprocessed bytes as one `BytesMut`: the opening handshake consumes its
    /// head from the front and leaves whatever follows (pipelined frames) in place.
    pub(crate) fn with_input<T>(&mut self, f: impl FnOnce(&mut BytesMut) -> T) -> T {
        self.buf.truncate(self.filled);
        self.drop_consumed();
        let out = f(&mut self.buf);
        self.filled = self.buf.len();
        out
    }

    /// Drops everything buffered: used once the connection has ended.
    pub(crate) fn discard(&mut self) {
        self.reset_buffer();
        self.frame = None;
        self.msg = None;
    }

    /// Whether no unprocessed input is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Whether the input buffer is empty and holds more than [`MIN_READ`] (or shares an
    /// allocation with a message split off or lent out with it): [`release`](Receiver::release)
    /// can give it back.
    pub(crate) fn releasable(&self) -> bool {
        self.filled == 0
            && (self.buf.capacity() > MIN_READ || self.split_off > 0 || self.lent.is_some())
    }

    /// Gives back a [`releasable`](Receiver::releasable) input buffer, so an idle connection
    /// holds none.
    pub(crate) fn release(&mut self) {
        if self.releasable() {
            self.reset_buffer();
        }
    }

    /// Gives back an empty input buffer whatever its size.
    pub(crate) fn drop_if_empty(&mut self) {
        if self.filled == 0 {
            self.reset_buffer();
        }
    }

    /// Bytes held in the input buffer (data and spare, and an allocation shared with a message
    /// split off or lent out with it), for memory accounting.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity().max(self.split_off)
            + self.lent.as_ref().map_or(0, |b| b.len())
            + self.msg.as_ref().map_or(0, |m| m.parts.capacity())
    }

    /// Whether a data message is partly received: its pieces or fragments so far have left
    /// the input buffer, the rest is to come.
    pub(crate) fn in_message(&self) -> bool {
        self.msg.is_some()
    }

    /// Whether a data frame is partly received (the peer is mid-message).
    pub(crate) fn in_data_frame(&self) -> bool {
        self.frame
            .as_ref()
            .is_some_and(|f| !f.header.opcode.is_control())
    }

    fn check_header(&self, h: &FrameHeader, config: &Config) -> Result<(), ProtocolError> {
        let (max_frame, max_message) = (config.max_frame_payload, config.max_message_size);
        // RFC 6455 §5.2: 0xB stays reserved unless the extension that defines it was agreed.
        if h.opcode == OpCode::Ack && !self.acks {
            return Err(ProtocolError::ReservedOpcode(OpCode::Ack.as_u8()));
        }
        // RFC 6455 §5.2: RSV bits must be 0 unless an extension defines them. RFC 7692 §6.1:
        // permessage-deflate defines RSV1 on the first frame of a data message only.
        let first_data = matches!(h.opcode, OpCode::Text | OpCode::Binary);
        let allowed = if self.compression && first_data {
            0b100
        } else {
            0
        };
        if h.rsv & !allowed != 0 {
            return Err(ProtocolError::ReservedBits(h.rsv));
        }
        // RFC 6455 §5.1: clients mask every frame, servers mask none.
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        // RFC 6455 §5.4: fragments of one message are not interleaved with another.
        match (h.opcode, &self.msg) {
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            _ => {}
        }
        let compressed = if first_data {
            h.rsv & allowed != 0
        } else {
            self.msg.as_ref().is_some_and(|m| m.compressed)
        };
        if compressed && !h.opcode.is_control() {
            // Inflated as it arrives, never buffered whole: the inflated size is checked while
            // inflating (in both modes). The compressed bytes are bounded as well, a little
            // above the limit: incompressible data grows by a few bytes per block, and deflate
            // can spend bytes on no output at all.
            let max = max_message.saturating_add(max_message / 64 + 1024);
            let total = self
                .msg
                .as_ref()
                .map_or(0, |m| m.size)
                .saturating_add(h.payload_len);
            if total > max as u64 {
                return Err(ProtocolError::MessageTooLarge {
                    len: total,
                    max: max_message,
                });
            }
        } else if !self.streaming && !h.opcode.is_control() {
            if h.payload_len > max_frame as u64 {
                return Err(ProtocolError::FrameTooLarge {
                    len: h.payload_len,
                    max: max_frame,
                });
            }
            let total = self
                .msg
                .as_ref()
                .map_or(0, |m| m.size)
                .saturating_add(h.payload_len);
            if total > max_message as u64 {
                return Err(ProtocolError::MessageTooLarge {
                    len: total,
                    max: max_message,
                });
            }
        }
        Ok(())
    }

    /// Decodes the next item from the buffered bytes; `Ok(None)` when more bytes are needed.
    pub(crate) fn poll(&mut self, config: &Config) -> Result<Option<Incoming>, ProtocolError> {
        if self.frame.is_none()
            && self.msg.is_none()
            && !self.streaming
            && let Some(message) = self.poll_whole(config)
        {
            return message.map(|m| Some(Incoming::Message(m)));
        }
        loop {
            if self.frame.is_none() {
                let Some((header, len)) = FrameHeader::parse(&self.buf[self.start..self.filled])?
                else {
                    return Ok(None);
                };
                self.check_header(&header, config)?;
                self.consume(len);
                let kind = match header.opcode {
                    OpCode::Text => Some(DataKind::Text),
                    OpCode::Binary => Some(DataKind::Binary),
                    _ => None,
                };
                if let Some(kind) = kind {
                    self.utf8.reset();
                    self.msg = Some(InMessage {
                        kind,
                        size: 0,
                        parts: Vec::new(),
                        started: false,
                        compressed: header.rsv & 0b100 != 0,
                    });
                }
                let mut text = false;
                let mut copy_key = None;
                if !header.opcode.is_control()
                    && let Some(m) = self.msg.as_mut()
                {
                    m.size = m.size.saturating_add(header.payload_len);
                    // Compressed text is checked once inflated.
                    text = m.kind == DataKind::Text && !m.compressed;
                    // Copied out at the frame's end: a fragment (into the message being
                    // assembled) or a whole message up to COPY_MAX.
                    let copied_out = m.kind == DataKind::Binary
                        && !m.compressed
                        && !self.streaming
                        && (!header.fin || !m.parts.is_empty() || copied(header.payload_len));
                    if copied_out {
                        copy_key = header.mask;
                    }
                }
                self.frame = Some(InFrame {
                    header,
                    remaining: header.payload_len,
                    ready: 0,
                    offset: 0,
                    text,
                    copy_key,
                });
            }
            let buffered = self.len();
            let in_pieces = self.in_pieces();
            let Some(f) = self.frame.as_mut() else {
                continue;
            };
            let avail = (buffered as u64).min(f.remaining) as usize;
            if f.ready < avail {
                let fresh = &mut self.buf[self.start + f.ready..self.start + avail];
                if let Some(key) = f.header.mask
                    && f.copy_key.is_none()
                {
                    apply_mask_at(fresh, key, f.offset + f.ready);
                }
                // A whole unfragmented text message that is here at once gets one check, when
                // it is wrapped; anything that arrives in pieces is checked as it comes, so a
                // bad byte fails the connection before the message is complete.
                let whole = f.ready == 0
                    && avail as u64 == f.remaining
                    && f.header.fin
                    && !in_pieces
                    && self.msg.as_ref().is_some_and(|m| m.parts.is_empty());
                if f.text && !whole {
                    self.utf8
                        .feed(fresh)
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                f.ready = avail;
            }
            let control = f.header.opcode.is_control();
            if in_pieces && !control {
                if avail == 0 && f.remaining > 0 {
                    return Ok(None);
                }
                let frame_done = avail as u64 == f.remaining;
                let last = frame_done && f.header.fin;
                let tailed =
                    last && copied(avail as u64) && self.msg.as_ref().is_some_and(|m| m.compressed);
                let data = if tailed {
                    self.take_with_tail(avail)
                } else {
                    self.take(avail)
                };
                let Some(f) = self.frame.as_mut() else {
                    unreachable!("the frame being received")
                };
                f.remaining -= avail as u64;
                f.offset += avail;
                f.ready = 0;
                if frame_done {
                    self.frame = None;
                }
                let Some(m) = self.msg.as_mut() else {
                    continue;
                };
                let kind = m.kind;
                let first = !m.started;
                let compressed = m.compressed;
                m.started = true;
                if last {
                    self.msg = None;
                    if kind == DataKind::Text && !compressed {
                        self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                    }
                }
                if data.is_empty() && !first && !last {
                    continue;
                }
                return Ok(Some(Incoming::Chunk {
                    kind,
                    data,
                    first,
                    last,
                    compressed,
                    tailed,
                }));
            }
            if (avail as u64) < f.remaining {
                return Ok(None);
            }
            let header = f.header;
            let copy_key = f.copy_key;
            self.frame = None;
            if header.opcode.is_control() {
                let payload = self.take(avail);
                return Ok(Some(match header.opcode {
                    OpCode::Ping => Incoming::Ping(payload),
                    OpCode::Pong => Incoming::Pong(payload),
                    OpCode::Ack => Incoming::Ack(payload),
                    _ => Incoming::Close(payload),
                }));
            }
            let Some(m) = self.msg.as_mut() else {
                continue;
            };
            if !header.fin || !m.parts.is_empty() {
                // A fragment: copied straight into the message being assembled.
                let payload = &self.buf[self.start..self.start + avail];
                match copy_key {
                    Some(key) => extend_masked(&mut m.parts, payload, key),
                    None => m.parts.extend_from_slice(payload),
                }
                self.consume(avail);
                if !header.fin {
                    continue;
                }
            }
            let Some(m) = self.msg.take() else {
                continue;
            };
            let message = match m.kind {
                DataKind::Text => {
                    self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                    Message::Text(self.take_text(avail, m.parts)?)
                }
                DataKind::Binary if m.parts.is_empty() => Message::Binary(match copy_key {
                    Some(key) => self.take_unmasked(avail, key),
                    None => self.take(avail),
                }),
                DataKind::Binary => Message::Binary(Bytes::from(m.parts)),
            };
            return Ok(Some(Incoming::Message(message)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::CloseCode;
    use alloc::string::String;
    use alloc::vec::Vec;

    /// A masked client frame.
    fn frame(out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8], key: [u8; 4]) {
        let header = FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        let mut head = BytesMut::new();
        header.encode(&mut head);
        out.extend_from_slice(&head);
        let at = out.len();
        out.extend_from_slice(payload);
        apply_mask_at(&mut out[at..], key, 0);
    }

    /// A small deterministic generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn binary(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed | 1);
        (0..len).map(|_| rng.next() as u8).collect()
    }

    /// Text of `len` bytes or a little less, mixing one- to four-byte characters.
    fn text(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed | 1);
        let chars = ['a', 'Z', ' ', 'é', 'ü', '—', '✓', '日', '🦀'];
        let mut s = alloc::string::String::new();
        loop {
            let c = chars[rng.below(chars.len())];
            if s.len() + c.len_utf8() > len {
                return s.into_bytes();
            }
            s.push(c);
        }
    }

    /// Messages of every size class (copied out, split off, across reads), text and binary,
    /// some fragmented, as masked frames; returns the wire bytes and the expected messages.
    fn stream() -> (Vec<u8>, Vec<Message>) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        let sizes = [
            0,
            1,
            125,
            126,
            1000,
            4096,
            16 << 10,
            (16 << 10) + 1,
            40_000,
            70_000,
            3,
        ];
        for (i, &len) in sizes.iter().enumerate() {
            let seed = i as u64 + 7;
            for kind in [DataKind::Binary, DataKind::Text] {
                let payload = match kind {
                    DataKind::Binary => binary(len, seed),
                    DataKind::Text => text(len, seed),
                };
                let key = [i as u8, 0x5a, 0xa5, seed as u8];
                let opcode = match kind {
                    DataKind::Binary => OpCode::Binary,
                    DataKind::Text => OpCode::Text,
                };
                if i % 3 == 2 && payload.len() > 2 {
                    // Three fragments, cut inside characters too.
                    let (a, b) = (payload.len() / 3, 2 * payload.len() / 3 + 1);
                    frame(&mut wire, opcode, false, &payload[..a], key);
                    frame(&mut wire, OpCode::Continuation, false, &payload[a..b], key);
                    frame(&mut wire, OpCode::Continuation, true, &payload[b..], key);
                } else {
                    frame(&mut wire, opcode, true, &payload, key);
                }
                expected.push(match kind {
                    DataKind::Binary => Message::Binary(Bytes::from(payload)),
                    DataKind::Text => Message::Text(Utf8Bytes::from(
                        alloc::string::String::from_utf8(payload).unwrap(),
                    )),
                });
            }
        }
        (wire, expected)
    }

    /// Reads `input` into the receiver through `prepare` / `spare_mut` / `commit`, each read at
    /// most `next_read()` bytes, and polls after every read; `inspect` runs before each read.
    fn run(
        rx: &mut Receiver,
        input: &[u8],
        mut next_read: impl FnMut() -> usize,
        mut inspect: impl FnMut(&Receiver),
    ) -> Result<Vec<Message>, ProtocolError> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            rx.prepare(false, &Config::default());
            inspect(rx);
            let spare = rx.spare_mut();
            assert!(!spare.is_empty(), "no room offered at {pos}");
            let n = spare.len().min(next_read()).min(input.len() - pos);
            spare[..n].copy_from_slice(&input[pos..pos + n]);
            pos += rx.commit(n, &Config::default());
            while let Some(item) = rx.poll(&Config::default())? {
                match item {
                    Incoming::Message(m) => out.push(m),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert!(rx.is_empty(), "input left over");
        Ok(out)
    }

    fn server() -> Receiver {
        Receiver::new(Role::Server, &crate::Config::default())
    }

    /// The buffer logic (compaction, growth, copies and splits) keeps every byte where it
    /// belongs, whatever the read sizes: fixed ones from one byte up, and seeded random ones.
    #[test]
    fn messages_survive_every_read_pattern() {
        let (wire, expected) = stream();
        let fixed = [1, 2, 3, 7, 100, 1448, 4096, 16_391, 65_536, usize::MAX];
        for chunk in fixed {
            let got = run(&mut server(), &wire, || chunk, |_| {}).unwrap();
            assert_eq!(got, expected, "reads of {chunk}");
        }
        for seed in 1..20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let got = run(
                &mut server(),
                &wire,
                || 1 + rng.below(if seed % 2 == 0 { 300 } else { 100_000 }),
                |_| {},
            )
            .unwrap();
            assert_eq!(got, expected, "seed {seed}");
        }
    }

    /// In a steady stream the buffer is reused in place: the unprocessed bytes move to the
    /// front of the initialised buffer, and the spare keeps stale bytes (it is not zeroed
    /// again) and its allocation.
    #[test]
    fn steady_reads_reuse_the_buffer_without_zeroing() {
        let mut wire = Vec::new();
        for i in 0..80u8 {
            frame(
                &mut wire,
                OpCode::Binary,
                true,
                &binary(16 << 10, i.into()),
                [i, 1, 2, 3],
            );
        }
        let mut rx = server();
        let mut reads = 0;
        let mut at = None;
        let mut stale = 0;
        run(
            &mut rx,
            &wire,
            || usize::MAX,
            |rx| {
                reads += 1;
                // The first reads grow the buffer up to the read size.
                if reads <= 8 {
                    return;
                }
                let ptr = rx.buf.as_ptr();
                assert_eq!(*at.get_or_insert(ptr), ptr, "read {reads} reallocated");
                // Masked random bytes from earlier reads, where zeroing would leave zeros.
                stale += usize::from(rx.spare().iter().rev().take(256).any(|&b| b != 0));
            },
        )
        .unwrap();
        assert!(reads > 16, "{reads} reads");
        assert_eq!(stale, reads - 8);
    }

    /// A whole text message that arrives at once is checked once it is complete; one that
    /// arrives in pieces fails as soon as the bad byte is there. Either way the connection
    /// fails with 1007, after the messages before it.
    #[test]
    fn invalid_text_fails_with_1007_at_the_right_time() {
        let good = text(900, 3);
        for len in [10, 1000, 16 << 10, 20_000] {
            let mut bad = text(len, 5);
            let at = bad.len() / 2;
            bad[at] = 0xff;
            let mut wire = Vec::new();
            frame(&mut wire, OpCode::Text, true, &good, [1, 2, 3, 4]);
            let first = wire.len();
            frame(&mut wire, OpCode::Text, true, &bad, [5, 6, 7, 8]);

            // All at once: the first message, then the error.
            let mut rx = server();
            rx.push(&wire);
            assert!(
                matches!(rx.poll(&Config::default()), Ok(Some(Incoming::Message(Message::Text(t)))) if t.as_bytes() == good)
            );
            let err = rx.poll(&Config::default()).unwrap_err();
            assert_eq!(err, ProtocolError::InvalidUtf8);
            assert_eq!(err.close_code(), CloseCode::INVALID_PAYLOAD);

            // Up to just past the bad byte: fails before the message is complete.
            let mut rx = server();
            let header = if bad.len() > 125 { 8 } else { 6 };
            rx.push(&wire[..first + header + at + 1]);
            assert!(matches!(
                rx.poll(&Config::default()),
                Ok(Some(Incoming::Message(_)))
            ));
            assert_eq!(
                rx.poll(&Config::default()).unwrap_err(),
                ProtocolError::InvalidUtf8,
                "len {len}"
            );

            // Up to just before it: nothing yet.
            let mut rx = server();
            rx.push(&wire[..first + header + at]);
            assert!(matches!(
                rx.poll(&Config::default()),
                Ok(Some(Incoming::Message(_)))
            ));
            assert!(matches!(rx.poll(&Config::default()), Ok(None)), "len {len}");
        }
        // A character cut short by the end of the message, whole or fragmented.
        for fragmented in [false, true] {
            let mut wire = Vec::new();
            let cut = "ab€".as_bytes();
            let cut = &cut[..cut.len() - 1];
            if fragmented {
                frame(&mut wire, OpCode::Text, false, b"x", [1, 1, 1, 1]);
                frame(&mut wire, OpCode::Continuation, true, cut, [2, 2, 2, 2]);
            } else {
                frame(&mut wire, OpCode::Text, true, cut, [2, 2, 2, 2]);
            }
            let mut rx = server();
            rx.push(&wire);
            assert_eq!(
                rx.poll(&Config::default()).unwrap_err(),
                ProtocolError::InvalidUtf8
            );
        }
    }

    /// Pushes `wire` in pieces of `chunk` bytes and polls after each: what came out (as
    /// text, control frames included), up to and including the first error.
    fn decode(rx: &mut Receiver, wire: &[u8], chunk: usize, config: &Config) -> Vec<String> {
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            rx.push(piece);
            loop {
                match rx.poll(config) {
                    Ok(None) => break,
                    Ok(Some(item)) => out.push(alloc::format!("{item:?}")),
                    Err(e) => {
                        out.push(alloc::format!("{e:?}"));
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Whole small frames take a shortcut when they are all buffered; fed a byte at a time
    /// they never can. Both ways must decode alike: sizes around the length forms, empty
    /// payloads, invalid text, the size limits, masking against the role, the minimal length
    /// form, reserved bits, and data frames inside a fragmented message.
    #[test]
    fn whole_frames_decode_as_frames_taken_in_pieces() {
        let key = [9, 8, 7, 6];
        let mut cases: Vec<(Role, Vec<u8>)> = Vec::new();
        for len in [0, 1, 5, 125, 126, 127, 300, COPY_MAX, COPY_MAX + 1] {
            let mut wire = Vec::new();
            frame(&mut wire, OpCode::Binary, true, &binary(len, 1), key);
            frame(&mut wire, OpCode::Text, true, &text(len, 2), key);
            frame(&mut wire, OpCode::Ping, true, b"p", key);
            cases.push((Role::Server, wire));
        }
        let mut bad = text(40, 3);
        bad[7] = 0xff;
        let mut wire = Vec::new();
        frame(&mut wire, OpCode::Text, true, &bad, key);
        cases.push((Role::Server, wire));
        // Unmasked frames: fine for a client, a violation for a server.
        let unmasked = [0x82, 3, 1, 2, 3, 0x81, 2, b'h', b'i'].to_vec();
        cases.push((Role::Client, unmasked.clone()));
        cases.push((Role::Server, unmasked));
        // Masked frames sent to a client.
        let mut wire = Vec::new();
        frame(&mut wire, OpCode::Binary, true, b"abc", key);
        cases.push((Role::Client, wire));
        // A 16-bit length under 126 (not the minimal form), and RSV1 without deflate.
        cases.push((Role::Client, [0x82, 126, 0, 5, 1, 2, 3, 4, 5].to_vec()));
        cases.push((Role::Client, [0xc2, 1, 1].to_vec()));
        // A data frame where a continuation must come.
        let mut wire = Vec::new();
        frame(&mut wire, OpCode::Binary, false, b"first", key);
        frame(&mut wire, OpCode::Binary, true, b"second", key);
        cases.push((Role::Server, wire));
        let tight = Config {
            max_frame_payload: 100,
            ..Config::default()
        };
        let small_messages = Config {
            max_message_size: 126,
            ..Config::default()
        };
        for config in [Config::default(), tight, small_messages] {
            for (role, wire) in &cases {
                let whole = decode(
                    &mut Receiver::new(*role, &config),
                    wire,
                    wire.len(),
                    &config,
                );
                let bytewise = decode(&mut Receiver::new(*role, &config), wire, 1, &config);
                assert_eq!(whole, bytewise, "{role:?} {wire:?}");
                assert!(!whole.is_empty());
            }
        }
    }

    /// Large payloads are lent out with their buffer: each one ends its buffer (its reads
    /// stop at its end), and once the message is dropped the same, initialised buffer is
    /// taken back for the next one (not zeroed: its spare keeps stale bytes). A message still
    /// held keeps its bytes: the next one gets other memory. Every message is checked, held
    /// ones again at the end.
    #[test]
    fn large_payloads_lend_their_buffer_and_get_it_back() {
        for chunk in [usize::MAX, 1448] {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for i in 0..24u8 {
                let len = if i % 5 == 4 { 1 << 20 } else { 64 << 10 };
                let payload = binary(len, u64::from(i) + 100);
                frame(&mut wire, OpCode::Binary, true, &payload, [i, 9, 8, 7]);
                expected.push(payload);
            }
            let mut rx = server();
            let mut held = Vec::new();
            let (mut got, mut pos) = (0, 0);
            let (mut reused, mut stale, mut fresh) = (0, 0, 0);
            let mut last: Option<(*const u8, bool)> = None;
            while pos < wire.len() {
                rx.prepare(false, &Config::default());
                let ptr = rx.buf.as_ptr();
                if let Some((before, kept)) = last.take() {
                    if kept {
                        fresh += usize::from(ptr != before);
                    } else {
                        reused += usize::from(ptr == before);
                        stale += usize::from(rx.spare().iter().rev().take(64).any(|&b| b != 0));
                    }
                }
                let spare = rx.spare_mut();
                let n = spare.len().min(chunk).min(wire.len() - pos);
                spare[..n].copy_from_slice(&wire[pos..pos + n]);
                pos += rx.commit(n, &Config::default());
                while let Some(item) = rx.poll(&Config::default()).unwrap() {
                    let Incoming::Message(Message::Binary(m)) = item else {
                        panic!("unexpected {item:?}");
                    };
                    assert_eq!(m[..], expected[got][..], "message {got}, reads of {chunk}");
                    assert!(rx.is_empty(), "the read went past the payload");
                    // The buffer the message was lent out with (before its view).
                    let lent = rx.lent.as_ref().expect("lent out").as_ptr();
                    let kept = got % 3 == 1;
                    if kept {
                        held.push((got, m));
                    }
                    last = Some((lent, kept));
                    got += 1;
                }
            }
            assert_eq!(got, expected.len());
            for (i, m) in held {
                assert_eq!(m[..], expected[i][..], "held message {i}, reads of {chunk}");
            }
            let dropped = expected.len() - expected.len() / 3 - 1;
            assert_eq!(reused, dropped, "reads of {chunk}");
            assert_eq!(stale, dropped, "reads of {chunk}");
            assert_eq!(fresh, expected.len() / 3, "reads of {chunk}");
        }
    }

    /// The last piece of a compressed message comes with the sync-flush tail when it is copied
    /// out of the input buffer (up to `COPY_MAX`), without it when it is lent out; earlier
    /// pieces never have it. Fragmented and whole, at every read size.
    #[test]
    fn a_compressed_message_s_copied_last_piece_ends_with_the_tail() {
        // Last pieces seen without and with the tail.
        let mut seen = [0, 0];
        for len in [0, 1, 100, COPY_MAX, COPY_MAX + 1, 64 << 10] {
            for fragments in [1, 3] {
                for chunk in [usize::MAX, 1448, 7] {
                    let payload = binary(len, len as u64 + 7);
                    let mut wire = Vec::new();
                    let piece = len.div_ceil(fragments).max(1);
                    let parts: Vec<&[u8]> = if len == 0 {
                        alloc::vec![&payload[..]]
                    } else {
                        payload.chunks(piece).collect()
                    };
                    for (i, part) in parts.iter().enumerate() {
                        let op = if i == 0 {
                            OpCode::Binary
                        } else {
                            OpCode::Continuation
                        };
                        let at = wire.len();
                        frame(&mut wire, op, i + 1 == parts.len(), part, [1, 2, 3, 4]);
                        if i == 0 {
                            wire[at] |= 0x40; // RSV1: compressed
                        }
                    }
                    let mut rx = server();
                    rx.allow_compression();
                    let config = Config::default();
                    let (mut pos, mut got, mut ended) = (0, Vec::new(), false);
                    while pos < wire.len() {
                        rx.prepare(false, &config);
                        let spare = rx.spare_mut();
                        let n = spare.len().min(chunk).min(wire.len() - pos);
                        spare[..n].copy_from_slice(&wire[pos..pos + n]);
                        pos += rx.commit(n, &config);
                        while let Some(item) = rx.poll(&config).unwrap() {
                            let Incoming::Chunk {
                                data,
                                last,
                                compressed: true,
                                tailed,
                                ..
                            } = item
                            else {
                                panic!("unexpected {item:?}");
                            };
                            assert!(!ended);
                            let what = alloc::format!("{len} B in {fragments}, reads of {chunk}");
                            assert!(last || !tailed, "{what}");
                            if last {
                                seen[usize::from(tailed)] += 1;
                            }
                            if tailed {
                                assert!(data.len() - TAIL.len() <= COPY_MAX, "{what}");
                                assert_eq!(data[data.len() - TAIL.len()..], TAIL, "{what}");
                                got.extend_from_slice(&data[..data.len() - TAIL.len()]);
                            } else {
                                assert!(!last || data.len() > COPY_MAX, "{what}");
                                got.extend_from_slice(&data);
                            }
                            ended = last;
                        }
                    }
                    assert!(ended);
                    assert_eq!(got, payload);
                }
            }
        }
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }
}
