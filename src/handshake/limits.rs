//! Bounds on what the handshake buffers before giving up.

/// Bounds on an HTTP head (the request or status line plus header fields). A peer that
/// exceeds them is refused as soon as the excess arrives, so a hostile or broken peer costs at
/// most `max_head_size` bytes of buffer and time linear in what it sent.
///
/// A server answers an oversized head with `431 Request Header Fields Too Large` (RFC 6585 §5);
/// a client fails with [`HandshakeError::HeadTooLarge`](super::HandshakeError::HeadTooLarge)
/// or [`HandshakeError::TooManyHeaders`](super::HandshakeError::TooManyHeaders).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct HandshakeLimits {
    /// The largest head accepted, in bytes, including the empty line that ends it.
    /// Default: 16 KiB, more than browsers send with a full cookie jar.
    pub max_head_size: usize,
    /// The most header fields accepted. Default: 64.
    pub max_headers: usize,
}

impl HandshakeLimits {
    /// The default limits: a 16 KiB head with at most 64 header fields.
    pub const DEFAULT: HandshakeLimits = HandshakeLimits {
        max_head_size: 16 * 1024,
        max_headers: 64,
    };

    /// Limits with the given head size and header count.
    #[must_use]
    pub const fn new(max_head_size: usize, max_headers: usize) -> Self {
        HandshakeLimits {
            max_head_size,
            max_headers,
        }
    }
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits::DEFAULT
    }
}
