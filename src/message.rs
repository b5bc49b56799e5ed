//! Messages as the application sees them.

use alloc::string::String;
use core::fmt;

use bytes::Bytes;
use bytestring::ByteString;

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
    /// A text message from a `String`, a `&str` (copied), a [`Utf8Bytes`] or a `ByteString`.
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

/// Text as shared bytes, known to be valid UTF-8: reads as `&str` without a check (it is a
/// [`bytestring::ByteString`], whose constructors validate), clones without copying.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Utf8Bytes(ByteString);

impl Utf8Bytes {
    /// Wraps bytes after checking they are UTF-8; hands them back if they are not.
    pub fn try_from_bytes(b: Bytes) -> Result<Self, Bytes> {
        ByteString::try_from(b.clone())
            .map(Utf8Bytes)
            .map_err(|_| b)
    }

    /// Validates a received payload: the one UTF-8 check a message whose bytes arrived
    /// together gets.
    pub(crate) fn validate(b: Bytes) -> Result<Self, core::str::Utf8Error> {
        ByteString::try_from(b).map(Utf8Bytes)
    }

    /// Copies received bytes after a check with simdutf8 (several times faster than the
    /// standard library's, which `ByteString`'s own constructors use): for payloads that are
    /// copied out of a buffer anyway, the copy is the safe way to a `ByteString` that needs no
    /// second check.
    pub(crate) fn copy_validated(b: &[u8]) -> Result<Self, simdutf8::basic::Utf8Error> {
        simdutf8::basic::from_utf8(b).map(Utf8Bytes::from)
    }

    /// A static string, without allocation.
    #[must_use]
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(ByteString::from_static(s))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UTF-8 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The shared buffer itself, for queuing without a copy.
    pub(crate) fn shared(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// The underlying `Bytes` (no copy).
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }
}

impl core::ops::Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<ByteString> for Utf8Bytes {
    fn from(s: ByteString) -> Self {
        Utf8Bytes(s)
    }
}

impl From<Utf8Bytes> for ByteString {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(ByteString::from(s))
    }
}

/// Copies the text (use [`Utf8Bytes::from_static`] to share a `&'static str` without a copy).
impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Utf8Bytes(ByteString::from(s))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Bytes {
        s.0.into_bytes()
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
