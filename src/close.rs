//! Close codes and Close frame payloads (RFC 6455 §5.5.1, §7.4).

use alloc::string::String;
use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ProtocolError;

/// The longest reason a Close frame can carry: 125 bytes of payload minus the 2-byte code.
pub const MAX_REASON_LEN: usize = 123;

/// A WebSocket close status code (RFC 6455 §7.4).
///
/// Any `u16` can be held; [`CloseCode::is_sendable`] and [`CloseCode::is_valid_on_wire`] say
/// which ones may appear in a Close frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation, idle timeout).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: reserved; reports that a Close frame carried no code. Never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: reserved; reports that the transport closed without a Close frame. Never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: message data inconsistent with its type (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message or frame is too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition (also sent on a heartbeat timeout).
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway received an invalid response from upstream.
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: reserved; reports a TLS handshake failure. Never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a Close frame on the wire (RFC 6455 §7.4.1, §7.4.2):
    /// 1000-1003, 1007-1014 and 3000-4999. 1004, 1005, 1006, 1015, 1016-2999 and anything below
    /// 1000 or above 4999 are not.
    #[must_use]
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// Whether an application may send this code: the same set as [`CloseCode::is_valid_on_wire`].
    #[must_use]
    pub const fn is_sendable(self) -> bool {
        self.is_valid_on_wire()
    }
}

impl From<u16> for CloseCode {
    fn from(c: u16) -> Self {
        CloseCode(c)
    }
}

impl From<CloseCode> for u16 {
    fn from(c: CloseCode) -> u16 {
        c.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The payload of a Close frame: a code and a UTF-8 reason of at most 123 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most [`MAX_REASON_LEN`] bytes of UTF-8.
    pub reason: String,
}

impl CloseFrame {
    /// Parses a received Close payload (RFC 6455 §5.5.1). `Ok(None)` is an empty payload
    /// (reported as 1005). A 1-byte payload or a code not allowed on the wire fails with 1002,
    /// a reason that is not UTF-8 with 1007.
    pub fn parse(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
        match payload {
            [] => Ok(None),
            [_] => Err(ProtocolError::InvalidCloseLength),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_valid_on_wire() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason =
                    core::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
                Ok(Some(CloseFrame {
                    code,
                    reason: String::from(reason),
                }))
            }
        }
    }

    /// The wire payload: the code in network order followed by the reason.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(2 + self.reason.len());
        b.put_u16(self.code.0);
        b.put_slice(self.reason.as_bytes());
        b.freeze()
    }
}

/// Truncates `reason` to at most [`MAX_REASON_LEN`] bytes on a character boundary; used for the
/// reasons the core writes itself when it fails a connection.
pub(crate) fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_LEN {
        return reason;
    }
    let mut end = MAX_REASON_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §7.4.1, §7.4.2: which codes may be on the wire.
    #[test]
    fn wire_validity_of_every_code() {
        for c in 0..=u16::MAX {
            let expected = matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(c).is_valid_on_wire(), expected, "code {c}");
        }
    }

    /// RFC 6455 §5.5.1: a Close body is empty or starts with a 2-byte code.
    #[test]
    fn parse_close_payloads() {
        assert_eq!(CloseFrame::parse(&[]), Ok(None));
        assert_eq!(
            CloseFrame::parse(&[3]),
            Err(ProtocolError::InvalidCloseLength)
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, b'o', b'k']),
            Ok(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: "ok".into()
            }))
        );
        for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let b = bad.to_be_bytes();
            assert_eq!(
                CloseFrame::parse(&b),
                Err(ProtocolError::InvalidCloseCode(bad))
            );
        }
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, 0xff]),
            Err(ProtocolError::InvalidCloseReason)
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(100); // 200 bytes
        let t = truncate_reason(&s);
        assert!(t.len() <= MAX_REASON_LEN);
        assert_eq!(t.len(), 122);
    }
}
