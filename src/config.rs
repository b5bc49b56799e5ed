//! Connection configuration: limits, delivery mode and timers, with documented defaults.

use core::time::Duration;

use crate::deflate::DeflateConfig;
use crate::handshake::HandshakeLimits;

/// How a connection behaves. Every field has a documented default; change fields on
/// `Config::default()`.
///
/// ```
/// let mut config = tether::Config::default();
/// config.max_message_size = 1 << 20;
/// config.heartbeat = None; // no pings
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest accepted frame payload. A larger one fails the connection with 1009 as soon as its
    /// header is parsed. Default 16 MiB. Not applied to data frames in streaming mode, where
    /// payloads are never buffered whole.
    pub max_frame_payload: usize,
    /// Largest accepted message (the sum of its fragments). A message that would grow past it
    /// fails the connection with 1009 as soon as the header that announces it is parsed.
    /// Default 64 MiB. Not applied in streaming mode.
    pub max_message_size: usize,
    /// Flow control, in bytes, for both directions (the high/low watermarks of
    /// python-websockets). Reading stops
    /// ([`Connection::wants_read`](crate::Connection::wants_read) is false) while unread inbound
    /// data (not yet [`read`](crate::Connection::read)) is over this, and while unwritten
    /// output is over it with Pongs the peer asked for making up most of it; it resumes under
    /// [`low_watermark`](Config::low_watermark). Sends are refused with
    /// [`SendErrorKind::BufferFull`](crate::SendErrorKind::BufferFull) (the message handed
    /// back) while unwritten output is over the mark. Ping and Pong events waiting to be polled
    /// are bounded by the mark too (the newest are dropped beyond it). A peer that never reads
    /// therefore costs at most about twice this plus one message of each direction, whatever
    /// it sends (Pings included). Default 2 MiB.
    pub high_watermark: usize,
    /// Where reading (and sending, after a refusal) resumes; see
    /// [`high_watermark`](Config::high_watermark). Default 512 KiB.
    pub low_watermark: usize,
    /// The largest slice [`Connection::recv_buf`](crate::Connection::recv_buf) offers when no
    /// frame needs more. The offer adapts to recent reads between 1 KiB and this size (it
    /// doubles when a read fills it). An emptied input buffer is kept for the next read while
    /// input keeps coming and released once the connection has been quiet for a second (checked
    /// once a second), so an idle connection holds at most 1 KiB of input buffer. Default 64 KiB.
    pub read_buffer_size: usize,
    /// Deliver data messages as [`Data::MessageStart`](crate::Data::MessageStart),
    /// [`Data::MessageChunk`](crate::Data::MessageChunk) and
    /// [`Data::MessageEnd`](crate::Data::MessageEnd) as the bytes arrive, instead of assembled
    /// [`Data::Message`](crate::Data::Message)s. Memory stays bounded by one read whatever the
    /// message size. Text is still validated incrementally. Default `false`.
    pub streaming: bool,
    /// Report received Pings as [`Event::Ping`](crate::Event::Ping) (the core answers them
    /// either way). Default `true`.
    pub report_pings: bool,
    /// Periodic pings and dead-peer detection. Default: on, every 20 s, with a 20 s pong
    /// timeout. `None` turns it off.
    pub heartbeat: Option<Heartbeat>,
    /// Close the connection with 1001 when no frame at all has been received for this long.
    /// Default `None` (off).
    pub idle_timeout: Option<Duration>,
    /// How long to wait for the peer's Close after sending ours, and (as a client) for the
    /// server to close the transport after the close handshake. Default 10 s.
    pub close_timeout: Duration,
    /// How long the opening handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// Bounds on the opening-handshake head (size and header count). Default
    /// [`HandshakeLimits::DEFAULT`]: 16 KiB and 64 fields.
    pub handshake_limits: HandshakeLimits,
    /// Keep a reference to every message given to `send`, `send_text` or `send_binary` until
    /// its frame is entirely written, so [`Connection::take_unsent`](crate::Connection::take_unsent)
    /// can return what a dead transport never took (a reconnecting supervisor sends it again).
    /// Costs a copy of text given as `&str`, and a reference otherwise. Default `false`.
    pub retain_unsent: bool,
    /// permessage-deflate (RFC 7692): `None` (the default) neither offers nor accepts it; `Some`
    /// offers it as a client and accepts a client's offer as a server, with these settings. It
    /// takes effect only in a build with the `deflate` feature. A compressed message's inflated
    /// size counts against [`max_message_size`](Config::max_message_size) in streaming mode
    /// too. See [`deflate`](crate::deflate) for the memory each mode costs.
    pub deflate: Option<DeflateConfig>,
    /// Resumable sessions (the `tether-resume` extension, see [`crate::resume`]): a client
    /// offers it, a server accepting with
    /// [`Connection::accept_session`](crate::Connection::accept_session) takes it. `None` (the
    /// default): nothing is offered or accepted.
    pub resume: Option<crate::resume::ResumeConfig>,
    /// The compressors and decompressors lent, one call at a time, to the connections opened
    /// with this configuration (and its clones) that keep no deflate state between messages.
    #[cfg(feature = "deflate")]
    pub(crate) deflate_pool: crate::deflate::Pool,
}

/// Heartbeat settings (see [`Config::heartbeat`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Heartbeat {
    /// How long the connection may go without receiving anything before a Ping is sent. Any
    /// received frame postpones the next Ping: a peer that is talking is alive.
    pub interval: Duration,
    /// How long to wait for the Pong that matches a Ping before the peer is declared dead.
    pub timeout: Duration,
}

impl Heartbeat {
    /// A heartbeat with the given interval and pong timeout.
    #[must_use]
    pub const fn new(interval: Duration, timeout: Duration) -> Self {
        Heartbeat { interval, timeout }
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat::new(Duration::from_secs(20), Duration::from_secs(20))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_payload: 16 << 20,
            max_message_size: 64 << 20,
            high_watermark: 2 << 20,
            low_watermark: 512 << 10,
            read_buffer_size: 64 << 10,
            streaming: false,
            report_pings: true,
            heartbeat: Some(Heartbeat::default()),
            idle_timeout: None,
            close_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            handshake_limits: HandshakeLimits::DEFAULT,
            retain_unsent: false,
            deflate: None,
            resume: None,
            #[cfg(feature = "deflate")]
            deflate_pool: crate::deflate::Pool::default(),
        }
    }
}
