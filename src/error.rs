//! Error types. A peer's violation is a [`ProtocolError`] that knows its close code; local misuse
//! is a per-command error that leaves the connection unchanged.

use core::fmt;

use crate::close::CloseCode;

/// A rule of RFC 6455 the peer broke. The connection fails with [`ProtocolError::close_code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An opcode reserved for future use (RFC 6455 §5.2: 0x3-0x7, 0xB-0xF).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// RSV1-3 set without an extension that defines them (RFC 6455 §5.2).
    #[error("reserved bits {0:#05b} set without a negotiated extension")]
    ReservedBits(u8),
    /// A control frame with more than 125 bytes of payload (RFC 6455 §5.5).
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlFrameTooLong(u64),
    /// A control frame with FIN = 0 (RFC 6455 §5.5).
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A client sent an unmasked frame (RFC 6455 §5.1).
    #[error("unmasked frame from a client")]
    UnmaskedFrame,
    /// A server sent a masked frame (RFC 6455 §5.1).
    #[error("masked frame from a server")]
    MaskedFrame,
    /// A payload length with the most significant bit set, or not in its minimal form
    /// (RFC 6455 §5.2).
    #[error("invalid payload length encoding")]
    InvalidLength,
    /// A continuation frame with no message to continue (RFC 6455 §5.4).
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is still open (RFC 6455 §5.4).
    #[error("new data frame while a fragmented message is in progress")]
    ExpectedContinuation,
    /// A text message that is not UTF-8 (RFC 6455 §8.1), detected as soon as the bytes can no
    /// longer be valid.
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A frame payload over the configured maximum.
    #[error("frame payload of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The announced payload length.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A message over the configured maximum.
    #[error("message of at least {len} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// The size the message would reach.
        len: u64,
        /// The configured limit.
        max: usize,
    },
    /// A compressed message (permessage-deflate, RFC 7692) whose payload is not valid deflate
    /// data.
    #[error("invalid compressed data")]
    InvalidCompressedData,
    /// A Close payload of exactly one byte (RFC 6455 §5.5.1).
    #[error("close frame with a 1-byte payload")]
    InvalidCloseLength,
    /// A close code that may not appear on the wire (RFC 6455 §7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A Close reason that is not UTF-8 (RFC 6455 §5.5.1).
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
    /// A `tether-resume` Ack frame that is not 8 bytes, or acknowledges messages never sent.
    #[error("invalid resume acknowledgement")]
    InvalidAck,
}

impl ProtocolError {
    /// The close code the connection fails with.
    #[must_use]
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooLarge { .. } | ProtocolError::MessageTooLarge { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// Why a command could not be carried out. The connection is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendErrorKind {
    /// The opening handshake has not completed yet.
    #[error("the connection is not open yet")]
    NotOpen,
    /// We already sent a Close frame: no more data may follow it (RFC 6455 §5.5.1).
    #[error("a close frame was already sent")]
    Closing,
    /// The connection has ended.
    #[error("the connection is closed")]
    Closed,
    /// The output buffer is over [`Config::high_watermark`](crate::Config::high_watermark)
    /// (and has not drained under the low one yet), or this message would take it past the mark.
    /// Try again once output was written; a send into an empty buffer always fits.
    #[error("output buffer full: {buffered} bytes buffered, limit {limit}")]
    BufferFull {
        /// Bytes already waiting to be written.
        buffered: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A fragmented message is being sent: finish it before starting another.
    #[error("a fragmented message is in progress")]
    MessageInProgress,
    /// A fragment's kind (text or binary) differs from the message it continues.
    #[error("fragment kind differs from the message in progress")]
    KindMismatch,
    /// Text that is not UTF-8 (a fragment can end inside a character; the next must complete it).
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// A control frame payload over 125 bytes (RFC 6455 §5.5).
    #[error("control frame payload over 125 bytes")]
    ControlPayloadTooLong,
}

/// A send that was refused, with the data handed back to the caller.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct SendError<T> {
    /// Why it was refused.
    pub kind: SendErrorKind,
    /// What the caller tried to send, returned untouched.
    pub data: T,
}

impl<T> SendError<T> {
    /// The data that was not sent.
    pub fn into_inner(self) -> T {
        self.data
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Why [`close`](crate::Connection::close) was refused. The connection is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// A code that may not be sent (RFC 6455 §7.4: 1004-1006, 1015, 1016-2999, <1000, >4999).
    #[error("close code {0} may not be sent")]
    InvalidCode(u16),
    /// A reason longer than 123 bytes (RFC 6455 §5.5: control payloads are at most 125 bytes).
    #[error("close reason of {0} bytes exceeds 123")]
    ReasonTooLong(usize),
    /// The opening handshake has not completed: there is no close handshake to start. Use
    /// [`abort`](crate::Connection::abort) to give up on the connection.
    #[error("the connection is not open yet")]
    NotOpen,
    /// A Close frame was already sent.
    #[error("a close frame was already sent")]
    AlreadyClosing,
    /// The connection has already ended.
    #[error("the connection is closed")]
    Closed,
}
