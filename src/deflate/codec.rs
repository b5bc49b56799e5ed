//! The permessage-deflate codec over zlib-rs (compression straight through its safe interface,
//! which takes a memory level; inflation through flate2, which fills spare capacity without
//! zeroing it first): whole-message and fragment compression, bounded incremental inflation
//! (RFC 7692 §7.2).

use alloc::sync::Arc;
use alloc::vec::Vec;
use std::sync::{Mutex, MutexGuard};

use bytes::{Buf, Bytes};
use flate2::{Decompress, FlushDecompress, Status};
use zlib_rs::{Deflate as Compress, DeflateFlush};

use super::{DeflateConfig, DeflateParams, TAIL};
use crate::connection::Role;
use crate::error::ProtocolError;
use crate::event::Data;
use crate::message::{DataKind, Message, Utf8Bytes};
use crate::utf8::Utf8Validator;

/// The most inflated output produced in one step: what a streaming receiver gets per chunk.
const STEP: usize = 64 << 10;

/// Assembled messages up to this long are copied out of a kept buffer.
const KEEP: usize = 4 << 10;

/// The most inflated output one step produces (less with a message limit under 4 MiB: a
/// quarter of it, at least [`STEP`]): the rest of the piece waits for the next step (the
/// driver's next turn, or the application's next read).
pub(crate) const BUDGET: usize = 1 << 20;

/// The most compressed bytes of a message without the peer's context takeover held until its
/// end (instead of a decompressor of the connection's own, about 40 KiB).
const HOLD: usize = 16 << 10;

/// Compression state lent for one call at a time, shared by the connections opened with
/// the same [`Config`](crate::Config) (and its clones): the compressor of a connection
/// without context takeover on its side (a whole message is compressed within one call, so
/// the state is free again when the call ends), and the decompressor of a message without the
/// peer's context takeover whose compressed bytes are all there. Nothing global: whoever owns
/// the configuration owns the pool. It holds at most as many of each as were in use at once,
/// which is at most the number of threads driving connections.
#[derive(Clone, Default)]
pub(crate) struct Pool(Arc<Mutex<Idle>>);

/// What the pool holds between calls.
#[derive(Default)]
struct Idle {
    /// Compressors by their settings.
    compressors: Vec<(Settings, Compress)>,
    /// Decompressors with a 15-bit window (which reads any smaller window).
    inflaters: Vec<Decompress>,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Idle> {
        // The state behind the lock is a set of reset codecs: a panic elsewhere cannot
        // leave it half-changed.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_compressor(&self, settings: Settings) -> Compress {
        let found = {
            let mut idle = self.lock();
            let at = idle.compressors.iter().position(|(s, _)| *s == settings);
            at.map(|i| idle.compressors.swap_remove(i).1)
        };
        found.unwrap_or_else(|| settings.compressor())
    }

    fn give_compressor(&self, settings: Settings, mut c: Compress) {
        c.reset();
        self.lock().compressors.push((settings, c));
    }

    fn take_inflater(&self) -> Decompress {
        let found = self.lock().inflaters.pop();
        found.unwrap_or_else(|| Decompress::new_with_window_bits(false, 15))
    }

    fn give_inflater(&self, mut d: Decompress) {
        d.reset(false);
        self.lock().inflaters.push(d);
    }

    /// How many compressors and decompressors wait in the pool.
    #[cfg(test)]
    fn idle(&self) -> (usize, usize) {
        let idle = self.lock();
        (idle.compressors.len(), idle.inflaters.len())
    }
}

impl core::fmt::Debug for Pool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let idle = self.lock();
        f.debug_struct("Pool")
            .field("compressors", &idle.compressors.len())
            .field("decompressors", &idle.inflaters.len())
            .finish()
    }
}

/// A configuration's pool is a cache, not a setting: two configurations that say the same
/// are equal whatever their pools.
impl PartialEq for Pool {
    fn eq(&self, _: &Pool) -> bool {
        true
    }
}

impl Eq for Pool {}

/// The negotiated permessage-deflate state of one connection.
pub(crate) struct Deflate {
    /// The configuration's pool, for what is not kept between messages.
    pool: Pool,
    /// Our compressor's settings (window 8: the peer asked for a window zlib cannot make, so
    /// nothing is compressed).
    own: Settings,
    /// Our compressor starts every message afresh.
    own_reset: bool,
    /// The peer's window, our decompressor's.
    peer_window: u8,
    /// The peer starts every message afresh.
    peer_reset: bool,
    threshold: usize,
    /// Our compressor: kept with context takeover, and while a fragmented message is sent.
    compressor: Option<Compress>,
    /// Our decompressor: kept with the peer's context takeover, and while a message arrives
    /// over several reads.
    inflater: Option<Decompress>,
    /// Inflated bytes of the message being received.
    inflated: usize,
    /// The message being assembled (assembled mode).
    assembly: Vec<u8>,
    /// Incremental UTF-8 check of a streamed text message.
    utf8: Utf8Validator,
    /// A received piece the last step left partly inflated.
    pending: Option<Pending>,
    /// The compressed pieces so far of a message without the peer's context takeover that
    /// arrives in pieces: inflated at its end by a decompressor lent by the pool.
    held: Vec<u8>,
}

impl core::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Deflate")
            .field("own", &self.own)
            .field("own_reset", &self.own_reset)
            .field("peer_window", &self.peer_window)
            .field("peer_reset", &self.peer_reset)
            .finish_non_exhaustive()
    }
}

impl Deflate {
    /// The state for what was agreed, from `role`'s side.
    pub(crate) fn new(
        role: Role,
        config: &DeflateConfig,
        agreed: &DeflateParams,
        pool: Pool,
    ) -> Self {
        let server_window = agreed.server_max_window_bits.unwrap_or(15);
        let client_window = agreed.client_max_window_bits.flatten().unwrap_or(15);
        let (own_window, own_reset, peer_window, peer_reset) = match role {
            Role::Server => (
                server_window,
                agreed.server_no_context_takeover,
                client_window,
                agreed.client_no_context_takeover,
            ),
            Role::Client => (
                client_window,
                agreed.client_no_context_takeover,
                server_window,
                agreed.server_no_context_takeover,
            ),
        };
        Deflate {
            pool,
            own: Settings {
                level: config.level.min(9),
                window: own_window.min(config.own_window()),
                memory: config.memory(),
            },
            own_reset: own_reset || config.no_context_takeover,
            // zlib has no 8-bit decoder window; a 9-bit one reads what an 8-bit encoder wrote.
            peer_window: peer_window.clamp(9, 15),
            peer_reset,
            threshold: config.threshold,
            compressor: None,
            inflater: None,
            inflated: 0,
            assembly: Vec::new(),
            utf8: Utf8Validator::new(),
            pending: None,
            held: Vec::new(),
        }
    }

    /// Whether a message (or a fragmented message whose first fragment is) `len` bytes long
    /// is sent compressed.
    pub(crate) fn should_compress(&self, len: usize) -> bool {
        self.own.window >= 9 && len >= self.threshold
    }

    /// Compresses a whole message: the payload of a frame with RSV1 set.
    pub(crate) fn compress_message(&mut self, payload: &[u8]) -> Vec<u8> {
        if self.own_reset {
            let mut c = self.pool.take_compressor(self.own);
            let out = compress(&mut c, payload, true);
            self.pool.give_compressor(self.own, c);
            return out;
        }
        let own = self.own;
        let c = self.compressor.get_or_insert_with(|| own.compressor());
        compress(c, payload, true)
    }

    /// Compresses one fragment of a message sent in pieces: the first fragment's frame has
    /// RSV1 set, the others not (RFC 7692 §6.1). Only the last fragment loses the sync-flush
    /// tail; the earlier ones keep it, an empty stored block the receiver reads through.
    pub(crate) fn compress_fragment(&mut self, payload: &[u8], fin: bool) -> Vec<u8> {
        let own = self.own;
        let c = self.compressor.get_or_insert_with(|| own.compressor());
        let out = compress(c, payload, fin);
        if fin && self.own_reset {
            self.compressor = None;
        }
        out
    }

    /// Receives a piece of a compressed message's payload (`first` and `last` say where it
    /// sits in the message) and hands `out` what the application gets: the assembled
    /// message at its end, or (`streaming`) its start, the inflated chunks (at most [`STEP`]
    /// bytes each) and its end.
    ///
    /// Inflating stops once a step has produced [`BUDGET`] bytes: the rest of the piece is
    /// kept ([`is_inflating`](Deflate::is_inflating)) and inflated by the next calls of
    /// [`step`](Deflate::step), so a small read never turns into an unbounded amount of work
    /// or memory at once. The inflated size counts against `max` while inflating, in both
    /// modes: a message that would grow past it fails with 1009 (`MessageTooLarge`) once one
    /// byte over, never allocating more. Data that is not valid deflate fails with 1007.
    ///
    /// A `tailed` last piece already ends with the sync-flush [`TAIL`] (the receiver appends
    /// it when it copies a piece out of its input buffer); otherwise it is inflated after the
    /// piece.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn receive(
        &mut self,
        kind: DataKind,
        data: Bytes,
        first: bool,
        last: bool,
        tailed: bool,
        streaming: bool,
        max: usize,
        out: &mut dyn FnMut(Data),
    ) -> Result<(), ProtocolError> {
        if first {
            self.inflated = 0;
            if streaming {
                // Only a streamed text is checked as it comes (a whole one is checked once).
                self.utf8.reset();
                out(Data::MessageStart(kind));
            }
        }
        // A message without the peer's context takeover needs no decompressor of this
        // connection's own: a lent one inflates it whole, unless it takes more than one
        // step. Its compressed bytes are held until its end when it arrives in pieces (over
        // several reads or frames), up to HOLD bytes; past that it gets a decompressor.
        let mut data = data;
        let holding =
            self.peer_reset && self.inflater.is_none() && (first || !self.held.is_empty());
        let mut shared = holding;
        if holding && (!last || !self.held.is_empty()) {
            if !last && self.held.len() + data.len() <= HOLD {
                self.held.extend_from_slice(&data);
                return Ok(());
            }
            let mut joined = core::mem::take(&mut self.held);
            joined.extend_from_slice(&data);
            data = Bytes::from(joined);
            shared = last;
        }
        self.pending = Some(Pending {
            kind,
            input: data,
            last,
            tail: last && !tailed,
            streaming,
            shared,
        });
        self.step(max, out)
    }

    /// Whether a received piece is only partly inflated: [`step`](Deflate::step) goes on.
    pub(crate) fn is_inflating(&self) -> bool {
        self.pending.is_some()
    }

    /// Inflates the kept rest of a piece, one step of at most [`BUDGET`] output bytes.
    pub(crate) fn step(
        &mut self,
        max: usize,
        out: &mut dyn FnMut(Data),
    ) -> Result<(), ProtocolError> {
        let Some(mut p) = self.pending.take() else {
            return Ok(());
        };
        // A quarter of the message limit (at least a chunk): a message near the limit takes
        // a few steps whatever the limit.
        let mut budget = BUDGET.min((max / 4).max(STEP));
        let result = if p.shared {
            let mut d = self.pool.take_inflater();
            let result = self.run(&mut d, &mut p, max, &mut budget, out);
            if matches!(result, Ok(false)) {
                // Not done within the step: its state stays with this connection.
                self.inflater = Some(d);
                p.shared = false;
            } else {
                self.pool.give_inflater(d);
            }
            result
        } else {
            let window = self.peer_window;
            let mut d = self
                .inflater
                .take()
                .unwrap_or_else(|| Decompress::new_with_window_bits(false, window));
            let result = self.run(&mut d, &mut p, max, &mut budget, out);
            // Kept for the rest of the message, and for the next with context takeover.
            let keep = match result {
                Ok(done) => !(done && p.last && self.peer_reset),
                Err(_) => false,
            };
            if keep {
                self.inflater = Some(d);
            }
            result
        };
        match result {
            Err(err) => {
                self.assembly = Vec::new();
                self.held = Vec::new();
                self.inflater = None;
                Err(err)
            }
            Ok(false) => {
                self.pending = Some(p);
                Ok(())
            }
            Ok(true) if !p.last => Ok(()),
            Ok(true) => {
                if p.streaming {
                    if p.kind == DataKind::Text {
                        self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
                    }
                    out(Data::MessageEnd);
                } else {
                    out(Data::Message(self.take_message(p.kind)?));
                }
                Ok(())
            }
        }
    }

    /// The assembled message; a text is checked (1007 if it is not UTF-8). A short one is
    /// copied out and its buffer kept for the next (with the peer's context takeover, while
    /// the connection holds its decompressor anyway), which spares an allocation and a free per
    /// message; a short text is checked with simdutf8 and copied from the `&str` that gives, so
    /// it needs no second, slower check to become a `ByteString`. A long one is handed over as
    /// is.
    fn take_message(&mut self, kind: DataKind) -> Result<Message, ProtocolError> {
        let keep =
            self.assembly.len() <= KEEP && self.assembly.capacity() <= 4 * KEEP && !self.peer_reset;
        let message = match (kind, keep) {
            (DataKind::Text, true) => Utf8Bytes::copy_validated(&self.assembly)
                .ok()
                .map(Message::Text),
            (DataKind::Text, false) => Utf8Bytes::validate(self.hand_on()).ok().map(Message::Text),
            (DataKind::Binary, true) => {
                Some(Message::Binary(Bytes::copy_from_slice(&self.assembly)))
            }
            (DataKind::Binary, false) => Some(Message::Binary(self.hand_on())),
        };
        self.assembly.clear();
        message.ok_or(ProtocolError::InvalidUtf8)
    }

    /// The assembled message's buffer, handed on whole. In a buffer of up to [`STEP`], room
    /// left over from the estimate (more than an eighth) is given back first, so that a message
    /// held by the application does not pin it (shrinking a heap block in place copies
    /// nothing); a larger one is a mapping of its own, which shrinking would unmap, and the
    /// next message fault in again.
    fn hand_on(&mut self) -> Bytes {
        let mut assembly = core::mem::take(&mut self.assembly);
        if assembly.capacity() <= STEP && assembly.capacity() - assembly.len() > assembly.len() / 8
        {
            assembly.shrink_to_fit();
        }
        Bytes::from(assembly)
    }

    /// Inflates what is left of the piece `p` (its bytes, then at the message's end the
    /// sync-flush tail) within `budget`; returns whether the piece is done.
    fn run(
        &mut self,
        d: &mut Decompress,
        p: &mut Pending,
        max: usize,
        budget: &mut usize,
        out: &mut dyn FnMut(Data),
    ) -> Result<bool, ProtocolError> {
        loop {
            let (consumed, stop) =
                self.inflate(d, p.kind, &p.input, p.streaming, max, budget, out)?;
            p.input.advance(consumed.min(p.input.len()));
            match stop {
                Stop::Ended => {
                    // The peer ended the deflate stream (a block with BFINAL): the next
                    // message starts a new one; what follows it in the piece is ignored.
                    d.reset(false);
                    return Ok(true);
                }
                Stop::Budget => return Ok(false),
                Stop::UsedUp if p.tail => {
                    p.tail = false;
                    p.input = Bytes::from_static(&TAIL);
                }
                Stop::UsedUp => return Ok(true),
            }
        }
    }

    /// Inflates `input` until it is used up, the deflate stream ends or `budget` output bytes
    /// were produced; returns how much input was consumed and why it stopped.
    // Out of line: inlined into `run`, its only caller, it moved the hot code of a small
    // message into conflicting instruction-cache sets (callgrind's cache simulation: 17
    // instruction-cache misses per 100-byte message instead of none).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn inflate(
        &mut self,
        d: &mut Decompress,
        kind: DataKind,
        mut input: &[u8],
        streaming: bool,
        max: usize,
        budget: &mut usize,
        out: &mut dyn FnMut(Data),
    ) -> Result<(usize, Stop), ProtocolError> {
        let given = input.len();
        // zlib writes into a buffer's spare capacity (`decompress_vec`: never zero-filled
        // first), all of it: so the spare capacity offered is what bounds one call's output.
        // It is at least `room` (progress), at most what the step's budget and the limit
        // leave, since the buffer only grows here, to that. The first offer is sized from the
        // input (chat-sized messages inflate to a few times their compressed size), later
        // ones are a whole step.
        let mut offer = input.len().saturating_mul(4).clamp(256, STEP);
        // A few bytes (a message's tail on its own, after a piece that filled its output)
        // inflate to little: a first try takes any room there is, and a full buffer grows by
        // what they need, not by doubling (a doubled buffer would stay with the message).
        let mut tiny = given <= TAIL.len();
        loop {
            if *budget == 0 {
                return Ok((given - input.len(), Stop::Budget));
            }
            // Never room for more than one byte past the limit: reaching it is the failure.
            let left = max.saturating_sub(self.inflated).saturating_add(1);
            let room = offer.min(left).min(*budget);
            offer = STEP;
            let mut chunk = Vec::new();
            let buf = if streaming {
                chunk.reserve_exact(room);
                &mut chunk
            } else {
                let buf = &mut self.assembly;
                let spare = buf.capacity() - buf.len();
                if buf.is_empty() {
                    // A message's first output: room for about what JSON-like text inflates
                    // to (up to eight times), so that most messages take one call and a large
                    // one is not grown (and copied) by doubling from one step. The room left
                    // over is given back when the message is handed on (`hand_on`).
                    let estimate = given.saturating_mul(8).min(left).min(*budget);
                    if estimate > spare {
                        buf.reserve_exact(estimate);
                    }
                }
                let spare = buf.capacity() - buf.len();
                if tiny && spare == 0 {
                    buf.reserve_exact(room);
                } else if spare < room && !tiny {
                    // Grows by doubling, but never past the limit or the step's budget.
                    let target = buf.len().min(left).min(*budget).max(room);
                    buf.reserve_exact(target - spare);
                }
                buf
            };
            tiny = false;
            let before_out = buf.len();
            let offered = buf.capacity() - before_out;
            let (before_in, before_total) = (d.total_in(), d.total_out());
            let status = d.decompress_vec(input, buf, FlushDecompress::Sync);
            let produced = (d.total_out() - before_total) as usize;
            debug_assert_eq!(buf.len(), before_out + produced);
            let status = status.map_err(|_| ProtocolError::InvalidCompressedData)?;
            let consumed = (d.total_in() - before_in) as usize;
            input = &input[consumed.min(input.len())..];
            *budget = budget.saturating_sub(produced);
            self.inflated = self.inflated.saturating_add(produced);
            if self.inflated > max {
                return Err(ProtocolError::MessageTooLarge {
                    len: self.inflated as u64,
                    max,
                });
            }
            if streaming && produced > 0 {
                if kind == DataKind::Text {
                    self.utf8
                        .feed(&chunk)
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                out(Data::MessageChunk(Bytes::from(chunk)));
            }
            if status == Status::StreamEnd {
                return Ok((given - input.len(), Stop::Ended));
            }
            // Output room left over means the input is used up; no progress at all means
            // zlib wants input that is not there.
            if (produced < offered && input.is_empty()) || (consumed == 0 && produced == 0) {
                return Ok((given - input.len(), Stop::UsedUp));
            }
        }
    }
}

/// Why [`Deflate::inflate`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// The input is used up (and zlib holds no output back).
    UsedUp,
    /// The deflate stream ended (BFINAL).
    Ended,
    /// The step's output budget is spent.
    Budget,
}

/// The rest of a received compressed piece that a step's budget left uninflated.
#[derive(Debug)]
struct Pending {
    kind: DataKind,
    /// Its compressed bytes not inflated yet.
    input: Bytes,
    /// The piece ends its message.
    last: bool,
    /// The sync-flush tail (the message's end) is still to be inflated after `input`.
    tail: bool,
    streaming: bool,
    /// It is inflated by a decompressor lent by the pool (one step so far).
    shared: bool,
}

/// What a compressor is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Settings {
    /// zlib's level, 0..=9.
    level: u8,
    /// Window bits, 9..=15 (8: compress nothing).
    window: u8,
    /// zlib's memory level, 1..=9.
    memory: u8,
}

impl Settings {
    /// A raw-deflate compressor (no zlib header) with these settings.
    fn compressor(self) -> Compress {
        Compress::new_with_config(zlib_rs::DeflateConfig {
            level: i32::from(self.level),
            method: zlib_rs::Method::Deflated,
            window_bits: -i32::from(self.window),
            mem_level: i32::from(self.memory),
            strategy: zlib_rs::Strategy::Default,
        })
    }
}

/// Compresses `payload` with a sync flush; at the end of a message, the flush's empty-block
/// tail is removed (RFC 7692 §7.2.1) and the payload is never empty.
fn compress(c: &mut Compress, payload: &[u8], end: bool) -> Vec<u8> {
    // Room for about what chat-like text compresses to, grown by doubling when it is not
    // enough. zlib is offered at most a step of it at a time, zeroed first (safe code cannot
    // hand it uninitialised memory): what is zeroed stays within a step of what is written.
    let mut out = Vec::with_capacity((payload.len() / 2).max(64));
    let mut input = payload;
    loop {
        let filled = out.len();
        if filled == out.capacity() {
            out.reserve(filled.max(256));
        }
        let offer = (out.capacity() - filled).min(STEP);
        out.resize(filled + offer, 0);
        let (before_in, before_out) = (c.total_in(), c.total_out());
        // Compression of memory into memory with a sync flush cannot fail; an error would mean
        // a corrupted state, and the output so far is still what zlib produced.
        let result = c.compress(input, &mut out[filled..], DeflateFlush::SyncFlush);
        let produced = (c.total_out() - before_out) as usize;
        let consumed = (c.total_in() - before_in) as usize;
        out.truncate(filled + produced.min(offer));
        input = &input[consumed.min(input.len())..];
        if result.is_err() || (input.is_empty() && produced < offer) {
            break;
        }
    }
    if end {
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        // Nothing new since the last flush (zlib writes nothing then): an empty stored block's
        // first byte, which the receiver completes with the tail it appends (RFC 7692
        // §7.2.3.6). An empty payload would make the appended tail itself look like a block
        // header.
        if out.is_empty() {
            out.push(0x00);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(no_context_takeover: bool) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: no_context_takeover,
            client_no_context_takeover: no_context_takeover,
            ..DeflateParams::default()
        }
    }

    fn codec(role: Role, no_context_takeover: bool, pool: &Pool) -> Deflate {
        let config = DeflateConfig::new();
        Deflate::new(role, &config, &agreed(no_context_takeover), pool.clone())
    }

    fn json(n: usize) -> Vec<u8> {
        // Records that differ (a counter and a word picked by it), so that a message is not
        // just one phrase repeated.
        let words = [
            "hello", "there", "deflate", "window", "tether", "socket", "json",
        ];
        let mut s = Vec::new();
        let mut i = 0u32;
        while s.len() < n {
            let w = words[(i.wrapping_mul(2_654_435_761) >> 29) as usize % words.len()];
            s.extend_from_slice(
                alloc::format!(r#"{{"seq":{},"text":"{w} {}"}},"#, i * 7919, i ^ 0x5a5a).as_bytes(),
            );
            i += 1;
        }
        s
    }

    /// Inflates `wire` as one whole binary message and returns its bytes.
    fn inflate_whole(receiver: &mut Deflate, wire: Vec<u8>) -> Vec<u8> {
        inflate_whole_tailed(receiver, wire, false)
    }

    /// As `inflate_whole`; a `tailed` wire ends with the sync-flush tail.
    fn inflate_whole_tailed(receiver: &mut Deflate, wire: Vec<u8>, tailed: bool) -> Vec<u8> {
        let mut out = Vec::new();
        receiver
            .receive(
                DataKind::Binary,
                Bytes::from(wire),
                true,
                true,
                tailed,
                false,
                1 << 20,
                &mut |d| out.push(d),
            )
            .expect("inflates");
        match &out[..] {
            [Data::Message(Message::Binary(b))] => b.to_vec(),
            other => panic!("expected one binary message, got {other:?}"),
        }
    }

    /// A last piece that comes with its tail (copied out by the receiver) inflates to the
    /// same messages as one without (the tail inflated after it), with context takeover.
    #[test]
    fn tailed_and_bare_last_pieces_inflate_alike() {
        let pool = Pool::default();
        let mut server = codec(Role::Server, false, &pool);
        let (mut bare, mut tailed) = (
            codec(Role::Client, false, &pool),
            codec(Role::Client, false, &pool),
        );
        for n in [0, 10, 100, 3000, 70_000] {
            let text = json(n);
            let wire = server.compress_message(&text);
            assert_eq!(inflate_whole(&mut bare, wire.clone()), text);
            let with_tail = [&wire[..], &TAIL[..]].concat();
            assert_eq!(
                inflate_whole_tailed(&mut tailed, with_tail, true),
                text,
                "{n} B"
            );
        }
    }

    /// A message whose output fills its buffer exactly (here: the step's budget) still has its
    /// tail to inflate, which produces nothing: the buffer the message keeps grows by a little
    /// for it, not to twice its size.
    #[test]
    fn a_full_buffer_is_not_doubled_for_the_tail() {
        let pool = Pool::default();
        let mut server = codec(Role::Server, false, &pool);
        let mut client = codec(Role::Client, false, &pool);
        // A limit of 256 KiB makes the step's budget one STEP, the message's size.
        let max = 4 * STEP;
        let payload = alloc::vec![7u8; STEP];
        let wire = server.compress_message(&payload);
        let mut out = Vec::new();
        client
            .receive(
                DataKind::Binary,
                Bytes::from(wire),
                true,
                true,
                false,
                false,
                max,
                &mut |d| out.push(d),
            )
            .expect("inflates");
        assert!(
            out.is_empty() && client.is_inflating(),
            "the budget stops the first step"
        );
        client.step(max, &mut |d| out.push(d)).expect("inflates");
        let Some(Data::Message(Message::Binary(b))) = out.pop() else {
            panic!("expected the message");
        };
        assert_eq!(b[..], payload[..]);
        let kept = b.try_into_mut().expect("the only handle").capacity();
        assert!(
            kept < STEP + 1024,
            "the message keeps {kept} bytes for {STEP}"
        );
    }

    #[test]
    fn connections_without_context_takeover_share_the_pool() {
        let pool = Pool::default();
        let mut a = codec(Role::Server, true, &pool);
        let mut b = codec(Role::Server, true, &pool);
        let mut client = codec(Role::Client, true, &pool);
        assert_eq!(pool.idle(), (0, 0));
        for round in 0..3 {
            for server in [&mut a, &mut b] {
                let text = json(2000 + round * 100);
                let wire = server.compress_message(&text);
                assert!(wire.len() < text.len() / 2);
                assert_eq!(inflate_whole(&mut client, wire), text);
            }
        }
        // One compressor and one decompressor served six messages: lent and given back.
        assert_eq!(pool.idle(), (1, 1));
        // None of the connections keeps state of its own between messages.
        for c in [&a, &b, &client] {
            assert!(c.compressor.is_none() && c.inflater.is_none());
        }
        // Held at the same time, two are made; both come back.
        let settings = |window, memory| Settings {
            level: 1,
            window,
            memory,
        };
        let (x, y) = (pool.take_compressor(a.own), pool.take_compressor(a.own));
        assert_eq!(a.own, settings(15, 8));
        assert_eq!(pool.idle(), (0, 1));
        pool.give_compressor(a.own, x);
        pool.give_compressor(a.own, y);
        assert_eq!(pool.idle(), (2, 1));
        // A different window or memory level is a different compressor.
        let z = pool.take_compressor(settings(10, 8));
        let w = pool.take_compressor(settings(15, 1));
        assert_eq!(pool.idle(), (2, 1));
        pool.give_compressor(settings(10, 8), z);
        pool.give_compressor(settings(15, 1), w);
        assert_eq!(pool.idle(), (4, 1));
    }

    #[test]
    fn context_takeover_keeps_state_on_the_connection_not_in_the_pool() {
        let pool = Pool::default();
        let mut server = codec(Role::Server, false, &pool);
        let mut client = codec(Role::Client, false, &pool);
        let text = json(3000);
        let first = server.compress_message(&text);
        let second = server.compress_message(&text);
        // The second refers back to the first: much smaller.
        assert!(
            second.len() < first.len() / 2,
            "{} vs {}",
            second.len(),
            first.len()
        );
        for wire in [first, second] {
            assert_eq!(inflate_whole(&mut client, wire), text);
        }
        assert_eq!(pool.idle(), (0, 0));
        assert!(server.compressor.is_some() && client.inflater.is_some());
    }

    #[test]
    fn configurations_share_their_pool_with_their_clones_only() {
        let config = crate::Config::default();
        let clone = config.clone();
        assert!(Arc::ptr_eq(&config.deflate_pool.0, &clone.deflate_pool.0));
        let other = crate::Config::default();
        assert!(!Arc::ptr_eq(&config.deflate_pool.0, &other.deflate_pool.0));
        // The pool is not a setting.
        assert_eq!(config, other);
    }

    /// The memory level reaches the compressor: at memory level 1 its blocks hold 128 symbols,
    /// so a message comes out in more, smaller blocks (longer) than at 8, and still inflates.
    /// (zlib level 6: level 1's quick strategy writes the same bytes either way, in a smaller
    /// buffer.)
    #[test]
    fn the_memory_level_sizes_the_compressor_s_blocks() {
        let pool = Pool::default();
        let text = json(16 << 10);
        let mut wires = Vec::new();
        for memory_level in [8, 1] {
            let mut config = DeflateConfig::new();
            config.level = 6;
            config.memory_level = memory_level;
            let mut server = Deflate::new(Role::Server, &config, &agreed(true), pool.clone());
            let wire = server.compress_message(&text);
            let mut client = codec(Role::Client, true, &pool);
            assert_eq!(inflate_whole(&mut client, wire.clone()), text);
            wires.push(wire);
        }
        assert!(
            wires[1].len() > wires[0].len(),
            "memory level 1: {} bytes, 8: {}",
            wires[1].len(),
            wires[0].len()
        );
        // Out of range is clamped, not a panic.
        let mut config = DeflateConfig::new();
        config.level = 6;
        config.memory_level = 0;
        let mut server = Deflate::new(Role::Server, &config, &agreed(false), pool.clone());
        assert_eq!(server.compress_message(&text), wires[1]);
        config.memory_level = 200;
        let mut server = Deflate::new(Role::Server, &config, &agreed(false), pool);
        let mut client = codec(Role::Client, false, &Pool::default());
        assert_eq!(
            inflate_whole(&mut client, server.compress_message(&text)),
            text
        );
    }

    /// Output room is offered a step at a time and grown by doubling: incompressible data
    /// (which comes out a little longer than it went in) over several steps, and the smallest
    /// payloads, come back whole.
    #[test]
    fn compressed_output_grows_past_its_estimate_in_steps() {
        let pool = Pool::default();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..(3 * STEP + 1000))
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for payload in [&noise[..], &noise[..1], &[][..], &json(3 * STEP)[..]] {
            for takeover in [false, true] {
                let mut server = codec(Role::Server, !takeover, &pool);
                let mut client = codec(Role::Client, !takeover, &pool);
                for _ in 0..2 {
                    let wire = server.compress_message(payload);
                    assert!(!wire.is_empty());
                    assert_eq!(inflate_whole(&mut client, wire), payload);
                }
            }
        }
    }
}
