//! WebSocket frames written and parsed by hand (RFC 6455 §5.2), for a peer that must be able to
//! misbehave.

/// Opcodes (RFC 6455 §5.2).
pub mod op {
    /// A text message.
    pub const TEXT: u8 = 0x1;
    /// A binary message.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// The largest payload [`parse`] accepts: more means the stream is not what the test expects.
const MAX_PAYLOAD: u64 = 64 << 20;

/// One frame as it was on the wire, payload unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// Whether the payload was masked (clients must mask, servers must not: RFC 6455 §5.1).
    pub masked: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code and reason of a Close frame (`None` for an empty Close).
    pub fn close_status(&self) -> Option<(u16, String)> {
        assert_eq!(self.opcode, op::CLOSE, "not a Close frame: {self:?}");
        let code = self.payload.get(..2)?;
        let reason = String::from_utf8(self.payload[2..].to_vec()).expect("UTF-8 close reason");
        Some((u16::from_be_bytes([code[0], code[1]]), reason))
    }
}

/// A whole frame with FIN set, masked with `mask` when given.
pub fn encode(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// The payload of a Close frame with `code` and `reason`.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// Parses one frame from the start of `input`: the frame and the bytes it took, or `None` when
/// more bytes are needed.
pub fn parse(input: &[u8]) -> Option<(Frame, usize)> {
    let [b0, b1, ..] = *input else {
        return None;
    };
    assert_eq!(b0 & 0x70, 0, "reserved bits set: {b0:#04x}");
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes(input.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(input.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    assert!(
        len <= MAX_PAYLOAD,
        "a {len}-byte frame: not what the test expects"
    );
    let key = if masked {
        let key: [u8; 4] = input.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    let end = at + len as usize;
    let mut payload = input.get(at..end)?.to_vec();
    if let Some(key) = key {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= key[i % 4]);
    }
    let frame = Frame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        masked,
        payload,
    };
    Some((frame, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_at_every_length_encoding() {
        for len in [0, 1, 125, 126, 0xFFFF, 0x10000] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let bytes = encode(op::BINARY, &payload, mask);
                assert_eq!(parse(&bytes[..bytes.len() - 1]), None);
                let (frame, used) = parse(&bytes).expect("a whole frame");
                assert_eq!(used, bytes.len());
                assert_eq!(frame.payload, payload);
                assert_eq!(frame.masked, mask.is_some());
                assert!(frame.fin);
            }
        }
    }

    #[test]
    fn close_payload_parses_back() {
        let (frame, _) = parse(&encode(op::CLOSE, &close_payload(4000, "bye"), None)).unwrap();
        assert_eq!(frame.close_status(), Some((4000, "bye".into())));
    }
}
