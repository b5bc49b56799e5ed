//! permessage-deflate (RFC 7692): the policy, the negotiation and (with the `deflate` feature)
//! the codec.
//!
//! The negotiation is pure and always compiled, so it can be tested and fuzzed without a
//! backend: [`client_offer`] writes what a client offers, [`accept_offers`] is the server's
//! choice among a request's offers, and [`check_response`] is the client's verdict on the
//! server's answer. A [`Connection`](crate::Connection) runs them itself when
//! [`Config::deflate`](crate::Config::deflate) is set and the crate is built with the `deflate`
//! feature; without the feature nothing is offered or accepted.
//!
//! ## Memory
//!
//! Compression state is what permessage-deflate costs per connection: a compressor holds its
//! window (`2^window_bits` bytes, twice), zlib-rs's hash table (128 KiB whatever the window)
//! and block buffers sized by zlib's memory level ([`DeflateConfig::memory_level`]: 112 KiB at
//! the default 8, under 1 KiB at 1); a decompressor holds about 7 KiB and its window. Measured
//! by `tests/deflate_memory.rs` (resident memory per connection over 1,000 idle connections,
//! after one 16 KiB JSON text each way, zlib-rs backend, x86-64 Linux), what deflate adds to an
//! idle connection:
//!
//! | mode | per idle connection |
//! | --- | --- |
//! | off (`Config::deflate = None`, the default) | 0 (about 2 KB for the whole connection) |
//! | [`DeflateConfig::low_memory`] (no context takeover either way) | about 0.6 KB |
//! | 10-bit windows both ways, context takeover, memory level 1 | about 177 KB |
//! | 10-bit windows both ways, context takeover | about 231 KB |
//! | 15-bit windows, context takeover, memory level 1 | about 305 KB |
//! | [`DeflateConfig::default`] (15-bit windows, context takeover) | about 358 KB |
//!
//! Resident memory counts the pages a connection touched: the block buffers are allocated in
//! full but filled only as far as messages need them. Unlike C zlib, whose hash table shrinks
//! with the memory level (python-websockets measures 70 KiB at window 12 and memory level 5),
//! zlib-rs keeps 64 Ki entries at every level, so with context takeover a compressor costs at
//! least 128 KiB; where that matters, the shared mode below costs nothing per connection.
//!
//! Without context takeover nothing is kept between messages: a whole message is compressed
//! with a compressor lent for that call by a pool, and a message whose compressed bytes are
//! all there is inflated with a lent decompressor; only a message that takes more than one
//! step (or is sent in fragments) holds state of its own, until it ends. The pool belongs to
//! the [`Config`](crate::Config): every connection opened with it (or a clone of it, as a
//! server's connections are) shares it, and it keeps at most as many compressors and
//! decompressors as were in use at the same time, that is at most one per thread driving
//! connections. The core holds no global or per-thread state. Over loopback at 10,000
//! idle connections after one 16 KiB JSON text each way (`tether-bench --only
//! deflate-memory`, 150 ms after the last message), a tokio server holds about 2.3 KB per
//! connection in this mode, and 365 KB with context takeover and 15-bit windows.

//! ## Bounds
//!
//! The inflated size counts against [`Config::max_message_size`](crate::Config) while
//! inflating: a bomb stops one byte past the limit with 1009 and never allocates more. A read
//! never turns into unbounded work either: one step inflates at most 1 MiB (a quarter of the
//! message limit when that is smaller, at least 64 KiB); the rest of the compressed bytes wait,
//! with the frames behind them and further reading, for the next step, which
//! [`Connection::poll_timeout`](crate::Connection::poll_timeout) schedules at once (the
//! driver's next turn) and [`Connection::read`](crate::Connection::read) also takes when
//! everything inflated so far was read. A streamed message waits, besides, while its unread
//! chunks are over the high watermark.

mod params;

#[cfg(feature = "deflate")]
pub(crate) mod codec;

/// The empty stored block a sync flush ends with, removed by the sender and appended again by
/// the receiver (RFC 7692 §7.2.1, §7.2.2). The receiver appends it to a compressed message's
/// last piece as it copies the piece out of its input buffer, when it does.
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

pub use params::{
    DeflateParams, NegotiationError, PERMESSAGE_DEFLATE, accept_offers, check_response,
    client_offer, parse_params,
};

/// Whether and how to compress messages with permessage-deflate (RFC 7692). Set it in
/// [`Config::deflate`](crate::Config::deflate); it takes effect only in a build with the
/// `deflate` feature.
///
/// ```
/// let mut config = tether::Config::default();
/// config.deflate = Some(tether::deflate::DeflateConfig::default());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The zlib compression level, 0 (stored) to 9 (smallest). Default 1: fast, and within a
    /// few percent of the default level on chat-like JSON.
    pub level: u8,
    /// The largest window our compressor uses, 9 to 15 bits (the peer may ask for less).
    /// Default 15.
    pub max_window_bits: u8,
    /// The window we ask the peer's compressor to keep to, 9 to 15 bits: our decompressor's
    /// memory. Default 15 (no request).
    pub peer_max_window_bits: u8,
    /// Our compressor starts every message afresh (`*_no_context_takeover` for our side):
    /// nothing is kept between messages. Default `false`.
    pub no_context_takeover: bool,
    /// Ask the peer to start every message afresh, so our decompressor need not be kept between
    /// messages. A server's answer makes it binding; a client's offer is a request the server
    /// may refuse by declining the offer (the client then offers without it). Default `false`.
    pub peer_no_context_takeover: bool,
    /// Messages shorter than this are sent uncompressed (RSV1 clear): compressing a few bytes
    /// costs more than it saves. Default 1024, as Node's `ws`.
    pub threshold: usize,
    /// zlib's memory level for our compressor, 1 to 9: the size of its block buffers
    /// (`2^(level + 6)` symbols, 7 bytes each: 112 KiB at 8, under 1 KiB at 1; the window
    /// and zlib-rs's 128 KiB hash table come on top). Lower levels emit smaller blocks and
    /// compress a little worse; they matter where a compressor is kept per connection
    /// (context takeover), not for the few the pool lends. Default 8, zlib's.
    pub memory_level: u8,
}

impl DeflateConfig {
    /// Context takeover both ways with 15-bit windows: the best ratio, about 300 KiB per
    /// connection.
    #[must_use]
    pub const fn new() -> Self {
        DeflateConfig {
            level: 1,
            max_window_bits: 15,
            peer_max_window_bits: 15,
            no_context_takeover: false,
            peer_no_context_takeover: false,
            threshold: 1024,
            memory_level: 8,
        }
    }

    /// No context takeover either way: every message is compressed on its own with state
    /// lent by the configuration's pool, so an idle connection holds no compression state.
    #[must_use]
    pub const fn low_memory() -> Self {
        DeflateConfig {
            no_context_takeover: true,
            peer_no_context_takeover: true,
            ..DeflateConfig::new()
        }
    }

    /// The window bits clamped to what the backend supports (9..=15).
    pub(crate) fn own_window(&self) -> u8 {
        self.max_window_bits.clamp(9, 15)
    }

    /// The window bits asked of the peer, clamped to 9..=15.
    pub(crate) fn peer_window(&self) -> u8 {
        self.peer_max_window_bits.clamp(9, 15)
    }

    /// The memory level clamped to zlib's 1..=9.
    #[cfg(feature = "deflate")]
    pub(crate) fn memory(&self) -> u8 {
        self.memory_level.clamp(1, 9)
    }
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig::new()
    }
}

#[cfg(feature = "deflate")]
pub(crate) use codec::{Deflate as Codec, Pool};

/// Without the `deflate` feature there is no codec: a connection never holds one.
#[cfg(not(feature = "deflate"))]
#[derive(Debug)]
pub(crate) enum Codec {}

#[cfg(not(feature = "deflate"))]
impl Codec {
    pub(crate) fn should_compress(&self, _len: usize) -> bool {
        match *self {}
    }

    pub(crate) fn compress_message(&mut self, _payload: &[u8]) -> alloc::vec::Vec<u8> {
        match *self {}
    }

    pub(crate) fn compress_fragment(&mut self, _payload: &[u8], _fin: bool) -> alloc::vec::Vec<u8> {
        match *self {}
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn receive(
        &mut self,
        _kind: crate::DataKind,
        _data: bytes::Bytes,
        _first: bool,
        _last: bool,
        _tailed: bool,
        _streaming: bool,
        _max: usize,
        _out: &mut dyn FnMut(crate::Data),
    ) -> Result<(), crate::ProtocolError> {
        match *self {}
    }

    pub(crate) fn is_inflating(&self) -> bool {
        match *self {}
    }

    pub(crate) fn step(
        &mut self,
        _max: usize,
        _out: &mut dyn FnMut(crate::Data),
    ) -> Result<(), crate::ProtocolError> {
        match *self {}
    }
}

/// The offers a client adds to its request: none unless [`Config::deflate`] is set and the
/// codec is built in.
///
/// [`Config::deflate`]: crate::Config::deflate
pub(crate) fn offers(config: &crate::Config) -> alloc::vec::Vec<alloc::string::String> {
    match config.deflate {
        Some(deflate) if cfg!(feature = "deflate") => client_offer(&deflate),
        _ => alloc::vec::Vec::new(),
    }
}

/// The client's codec after the server's response, or the reason to fail the connection.
pub(crate) fn client_codec(
    config: &crate::Config,
    response: &crate::handshake::Response,
) -> Result<Option<alloc::boxed::Box<Codec>>, NegotiationError> {
    let Some(agreed) = check_response(response.extensions())? else {
        return Ok(None);
    };
    Ok(codec_for(crate::Role::Client, config, &agreed))
}

/// The codec for the extensions an upgrade done elsewhere agreed on (the response's
/// elements), in either role: `Ok(None)` when permessage-deflate is not among them.
pub(crate) fn agreed_codec<S: AsRef<str>>(
    role: crate::Role,
    config: &crate::Config,
    extensions: &[S],
) -> Result<Option<alloc::boxed::Box<Codec>>, NegotiationError> {
    let Some(agreed) = check_response(extensions)? else {
        return Ok(None);
    };
    Ok(codec_for(role, config, &agreed))
}

/// The server's answer to the request's offers, added to `accept` (unless the application
/// accepted permessage-deflate itself, whose answer is then used), and the codec for it.
pub(crate) fn server_codec(
    config: &crate::Config,
    request: &crate::handshake::Request,
    accept: &mut crate::handshake::Accept,
) -> Option<alloc::boxed::Box<Codec>> {
    let deflate = config.deflate.filter(|_| cfg!(feature = "deflate"))?;
    let agreed = match check_response(&accept.extensions) {
        Ok(Some(agreed)) => agreed,
        Ok(None) => {
            let (answer, agreed) = accept_offers(request.extensions(), &deflate)?;
            accept.extensions.push(answer);
            agreed
        }
        Err(_) => return None,
    };
    codec_for(crate::Role::Server, config, &agreed)
}

#[cfg(feature = "deflate")]
fn codec_for(
    role: crate::Role,
    config: &crate::Config,
    agreed: &DeflateParams,
) -> Option<alloc::boxed::Box<Codec>> {
    let deflate = config.deflate.unwrap_or_default();
    Some(alloc::boxed::Box::new(Codec::new(
        role,
        &deflate,
        agreed,
        config.deflate_pool.clone(),
    )))
}

#[cfg(not(feature = "deflate"))]
fn codec_for(
    _role: crate::Role,
    _config: &crate::Config,
    _agreed: &DeflateParams,
) -> Option<alloc::boxed::Box<Codec>> {
    None
}
