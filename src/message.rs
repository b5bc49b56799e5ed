//! Messages as the application sees them.

use alloc::string::String;
use core::fmt;

use bytes::Bytes;

/// A text or binary message, the unit the application sends and receives (RFC 6455 §5.6).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A UTF-8 text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message from anything that can become a `String` or `&'static str`.
    pub fn text(s: impl Into<Utf8Bytes>) -> Message {
        Message::Text(s.into())
    }

    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Message {
        Message::Binary(b.into())
    }

    /// The payload bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The payload length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Text or binary.
    #[must_use]
    pub fn kind(&self) -> DataKind {
        match self {
            Message::Text(_) => DataKind::Text,
            Message::Binary(_) => DataKind::Binary,
        }
    }

    /// The payload as `Bytes` (no copy).
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        match self {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Text(t) => f.debug_tuple("Text").field(&t.as_str()).finish(),
            Message::Binary(b) => f.debug_tuple("Binary").field(b).finish(),
        }
    }
}

/// Whether a data message is text or binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataKind {
    /// Opcode 0x1: UTF-8 text.
    Text,
    /// Opcode 0x2: binary.
    Binary,
}

/// Bytes known to be valid UTF-8, shared without copying.
///
/// Received text is validated once, as it arrives; [`Utf8Bytes::as_str`] checks it again because
/// the core makes no unchecked conversions (the check runs at several GB/s).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps bytes after checking they are UTF-8.
    pub fn try_from_bytes(b: Bytes) -> Result<Self, Bytes> {
        if core::str::from_utf8(&b).is_ok() {
            Ok(Utf8Bytes(b))
        } else {
            Err(b)
        }
    }

    /// Wraps bytes the caller has already validated (crate-internal: the receiver validates).
    pub(crate) fn from_validated(b: Bytes) -> Self {
        debug_assert!(core::str::from_utf8(&b).is_ok());
        Utf8Bytes(b)
    }

    /// A static string, without allocation.
    #[must_use]
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Valid by construction; the fallback is unreachable.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The shared buffer itself, for queuing without a copy.
    pub(crate) fn shared(&self) -> &Bytes {
        &self.0
    }

    /// The underlying `Bytes` (no copy).
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&'static str> for Utf8Bytes {
    fn from(s: &'static str) -> Self {
        Utf8Bytes::from_static(s)
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Bytes {
        s.0
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
