//! Frame headers (RFC 6455 §5.2): parse and encode the 7-bit, 16-bit and 64-bit length forms.

use bytes::BytesMut;

use crate::error::ProtocolError;

/// The largest control frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest header: 2 bytes, an 8-byte extended length and a 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame opcode (RFC 6455 §5.2, §11.8).
// The wire values as discriminants: converting either way, and telling control frames apart
// (bit 3), need no lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation = 0x0,
    /// 0x1: text (UTF-8) data.
    Text = 0x1,
    /// 0x2: binary data.
    Binary = 0x2,
    /// 0x8: connection close.
    Close = 0x8,
    /// 0x9: ping.
    Ping = 0x9,
    /// 0xA: pong.
    Pong = 0xA,
    /// 0xB: a cumulative acknowledgement, defined by the `tether-resume` extension (RFC 6455
    /// §5.2 leaves 0xB-0xF to extensions); reserved unless that extension was negotiated.
    Ack = 0xB,
}

impl OpCode {
    /// The opcode for a 4-bit value, or the reserved value back.
    pub const fn from_u8(v: u8) -> Result<OpCode, u8> {
        Ok(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            0xB => OpCode::Ack,
            other => return Err(other),
        })
    }

    /// The 4-bit wire value.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Close, Ping, Pong (and the extension's Ack) are control frames (RFC 6455 §5.5): the
    /// opcodes with bit 3 set.
    #[must_use]
    pub const fn is_control(self) -> bool {
        self as u8 & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on frames sent by a client.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

/// A frame's first byte (RFC 6455 §5.2): FIN, the three RSV bits (the low bits of `rsv`) and
/// the opcode.
#[inline]
pub(crate) const fn first_byte(opcode: OpCode, fin: bool, rsv: u8) -> u8 {
    ((fin as u8) << 7) | ((rsv & 0x07) << 4) | opcode.as_u8()
}

impl FrameHeader {
    /// Parses a header from the start of `buf`. `Ok(None)` means more bytes are needed;
    /// `Ok(Some((header, len)))` gives the header and its length on the wire.
    ///
    /// Checks the role-independent rules: reserved opcodes, control frames with FIN = 0 or more
    /// than 125 bytes (RFC 6455 §5.5), and the length encoding: the most significant bit of a
    /// 64-bit length must be 0 and the minimal form must be used (RFC 6455 §5.2). Masking and
    /// RSV bits depend on the role and extensions; the receiver checks them.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, rest @ ..] = buf else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0f).map_err(ProtocolError::ReservedOpcode)?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        let (payload_len, ext) = match b1 & 0x7f {
            126 => {
                let Some(&[a, b]) = rest.first_chunk::<2>() else {
                    return Ok(None);
                };
                let len = u16::from_be_bytes([a, b]) as u64;
                if len < 126 {
                    return Err(ProtocolError::InvalidLength);
                }
                (len, 2)
            }
            127 => {
                let Some(bytes) = rest.first_chunk::<8>() else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(*bytes);
                if len >> 63 != 0 || len <= u16::MAX as u64 {
                    return Err(ProtocolError::InvalidLength);
                }
                (len, 8)
            }
            n => (n as u64, 0),
        };
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong(payload_len));
            }
        }
        let mask = if masked {
            let Some(key) = rest[ext..].first_chunk::<4>() else {
                return Ok(None);
            };
            Some(*key)
        } else {
            None
        };
        let header = FrameHeader {
            fin,
            rsv: (b0 >> 4) & 0x07,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, 2 + ext + if masked { 4 } else { 0 })))
    }

    /// The number of bytes [`FrameHeader::encode`] writes.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        let ext = if self.payload_len < 126 {
            0
        } else if self.payload_len <= u16::MAX as u64 {
            2
        } else {
            8
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header to `dst` in the minimal length form.
    #[inline]
    pub fn encode(&self, dst: &mut BytesMut) {
        let (bytes, len) = self.to_array();
        dst.extend_from_slice(&bytes[..len]);
    }

    /// The header in the minimal length form: the first `len` bytes of the array (the rest are
    /// zero), so a caller can copy a fixed 14 bytes and keep `len` of them.
    #[inline]
    #[must_use]
    pub const fn to_array(&self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut out = [0u8; MAX_HEADER_LEN];
        out[0] = first_byte(self.opcode, self.fin, self.rsv);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = 2;
        if self.payload_len < 126 {
            out[1] = mask_bit | self.payload_len as u8;
        } else if self.payload_len <= u16::MAX as u64 {
            out[1] = mask_bit | 126;
            let [a, b] = (self.payload_len as u16).to_be_bytes();
            out[2] = a;
            out[3] = b;
            at = 4;
        } else {
            out[1] = mask_bit | 127;
            let len = self.payload_len.to_be_bytes();
            let mut i = 0;
            while i < 8 {
                out[2 + i] = len[i];
                i += 1;
            }
            at = 10;
        }
        if let Some(key) = self.mask {
            out[at] = key[0];
            out[at + 1] = key[1];
            out[at + 2] = key[2];
            out[at + 3] = key[3];
            at += 4;
        }
        (out, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 4-bit value: the six RFC 6455 opcodes and 0xB convert both ways, 0x8-0xB are
    /// control frames, the rest is reserved and given back.
    #[test]
    fn opcodes_convert_both_ways() {
        for v in 0..16u8 {
            match OpCode::from_u8(v) {
                Ok(op) => {
                    assert!(matches!(v, 0..=2 | 8..=0xB), "{v:#x}");
                    assert_eq!(op.as_u8(), v);
                    assert_eq!(op.is_control(), v >= 8, "{v:#x}");
                }
                Err(back) => {
                    assert!(matches!(v, 3..=7 | 0xC..=0xF), "{v:#x}");
                    assert_eq!(back, v);
                }
            }
        }
        assert!(OpCode::Ping.is_control() && !OpCode::Text.is_control());
        assert_eq!(OpCode::Ack.as_u8(), 0xB);
    }

    fn header(opcode: OpCode, fin: bool, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    /// RFC 6455 §5.2: the three length forms at their boundaries round-trip, and every prefix of
    /// a header asks for more bytes instead of failing.
    #[test]
    fn round_trip_at_length_boundaries() {
        for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 32, (1 << 63) - 1] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = header(OpCode::Binary, true, len, mask);
                let mut buf = BytesMut::new();
                h.encode(&mut buf);
                assert_eq!(buf.len(), h.encoded_len());
                let (array, len) = h.to_array();
                assert_eq!((&array[..len], len), (&buf[..], buf.len()));
                assert!(array[len..].iter().all(|&b| b == 0));
                for cut in 0..buf.len() {
                    assert_eq!(
                        FrameHeader::parse(&buf[..cut]),
                        Ok(None),
                        "len {len} cut {cut}"
                    );
                }
                assert_eq!(FrameHeader::parse(&buf), Ok(Some((h, buf.len()))));
            }
        }
    }

    /// RFC 6455 §5.2: opcodes 0x3-0x7 and 0xC-0xF are reserved (0xB parses as the
    /// extension's Ack; the receiver refuses it unless the extension was negotiated).
    #[test]
    fn reserved_opcodes_fail() {
        for op in (0x3..=0x7).chain(0xc..=0xf) {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }

    /// RFC 6455 §5.5: control frames are at most 125 bytes and never fragmented.
    #[test]
    fn control_frame_rules() {
        assert_eq!(
            FrameHeader::parse(&[0x09, 0]),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::parse(&[0x89, 126, 0, 126]),
            Err(ProtocolError::ControlFrameTooLong(126))
        );
        assert!(FrameHeader::parse(&[0x89, 125]).unwrap().is_some());
    }

    /// RFC 6455 §5.2: the top bit of a 64-bit length must be 0, and lengths use the minimal form.
    #[test]
    fn length_encoding_rules() {
        let mut top = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&top), Err(ProtocolError::InvalidLength));
        top[2] = 0;
        assert_eq!(FrameHeader::parse(&top), Err(ProtocolError::InvalidLength));
        assert_eq!(
            FrameHeader::parse(&[0x82, 126, 0, 125]),
            Err(ProtocolError::InvalidLength)
        );
    }

    #[test]
    fn rsv_bits_are_reported() {
        let (h, _) = FrameHeader::parse(&[0xf2, 0]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b111);
    }
}
