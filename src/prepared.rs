//! A message framed once for many receivers (a broadcast).
//!
//! Frames a server sends are not masked (RFC 6455 §5.1), so one encoded frame, header and
//! payload, serves every connection it goes to. A [`PreparedMessage`] holds that frame as
//! shared [`Bytes`]: [`Connection::send_prepared`](crate::Connection::send_prepared) queues it
//! by reference (a large one) or copies it into the output buffer (a small one, where a copy
//! costs less than a queue entry), never encoding or compressing it again.
//!
//! permessage-deflate: a prepared message always goes out uncompressed, RSV1 clear, even on a
//! connection that negotiated the extension. RFC 7692 §6.1 lets an endpoint choose per
//! message ("To send a non-compressed message, an endpoint MUST NOT set the RSV1 bit"), and an
//! uncompressed message does not touch either side's LZ77 window, so context takeover is
//! unaffected. Compressing per receiver would undo the point of framing once; a broadcast of
//! large compressible messages that must be compressed is a per-connection `send`.
//!
//! In the client role every frame must be masked with a fresh key (RFC 6455 §5.3): there a
//! prepared message is sent as its [`Message`], encoded and masked like any other.

use bytes::{Bytes, BytesMut};

use crate::frame::{FrameHeader, OpCode};
use crate::message::{DataKind, Message};

/// A complete text or binary message encoded once as an unmasked, uncompressed frame, ready
/// to be queued on any number of server-role connections without being encoded again. Cloning
/// it shares the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedMessage {
    /// The whole frame: header, then payload.
    frame: Bytes,
    /// The message, whose payload shares no memory with `frame` (kept for the client role,
    /// for [`message`](PreparedMessage::message) and for refusals).
    message: Message,
}

impl PreparedMessage {
    /// Encodes `message` as one final frame (FIN set, RSV bits clear, no mask).
    #[must_use]
    pub fn new(message: Message) -> Self {
        let opcode = match message.kind() {
            DataKind::Text => OpCode::Text,
            DataKind::Binary => OpCode::Binary,
        };
        let payload = message.as_bytes();
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut frame = BytesMut::with_capacity(header.encoded_len() + payload.len());
        header.encode(&mut frame);
        frame.extend_from_slice(payload);
        PreparedMessage {
            frame: frame.freeze(),
            message,
        }
    }

    /// A prepared text message (copies `text` once).
    #[must_use]
    pub fn text(text: &str) -> Self {
        PreparedMessage::new(Message::text(text))
    }

    /// A prepared binary message.
    #[must_use]
    pub fn binary(data: impl Into<Bytes>) -> Self {
        PreparedMessage::new(Message::Binary(data.into()))
    }

    /// The encoded frame, as written to every server-role connection.
    #[must_use]
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Text or binary.
    #[must_use]
    pub fn kind(&self) -> DataKind {
        self.message.kind()
    }

    /// The payload length in bytes (what the message size limits and flow control count).
    #[must_use]
    pub fn len(&self) -> usize {
        self.message.len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.message.is_empty()
    }

    /// Bytes of memory the prepared message holds (frame and message), shared by all its
    /// clones.
    #[must_use]
    pub fn memory(&self) -> usize {
        self.frame.len() + self.message.len()
    }
}

impl From<Message> for PreparedMessage {
    fn from(message: Message) -> Self {
        PreparedMessage::new(message)
    }
}

impl core::fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("kind", &self.kind())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
