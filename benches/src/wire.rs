//! The bench crate's own frame writer and reader (RFC 6455 §5.2), used to prepare decoder input
//! and by the echo load generator, so that every library is fed the same bytes.

/// Appends one frame. `mask` is the client's masking key (RFC 6455 §5.3), `None` for a server.
pub fn put_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
        }
        None => out.extend_from_slice(payload),
    }
}

pub const OP_CONT: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;

/// Appends one message, split into frames of at most `frag` payload bytes.
pub fn put_message(
    out: &mut Vec<u8>,
    opcode: u8,
    payload: &[u8],
    frag: Option<usize>,
    key: &mut impl FnMut() -> [u8; 4],
) {
    let frag = frag.unwrap_or(payload.len().max(1));
    let mut chunks = payload.chunks(frag).peekable();
    if payload.is_empty() {
        put_frame(out, true, opcode, Some(key()), &[]);
        return;
    }
    let mut first = true;
    while let Some(c) = chunks.next() {
        let fin = chunks.peek().is_none();
        put_frame(
            out,
            fin,
            if first { opcode } else { OP_CONT },
            Some(key()),
            c,
        );
        first = false;
    }
}

/// A parsed unmasked (server) frame header: (fin, opcode, payload length, header length).
pub fn parse_server_header(buf: &[u8]) -> Option<(bool, u8, usize, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let op = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut hl) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        l => (l as usize, 2),
    };
    if masked {
        hl += 4;
    }
    if buf.len() < hl {
        return None;
    }
    Some((fin, op, len, hl))
}

/// Deterministic payload bytes; `text` gives valid UTF-8 with one- to four-byte characters
/// (mostly ASCII, as chat-like traffic is).
pub fn payload(len: usize, text: bool) -> Vec<u8> {
    if !text {
        return (0..len)
            .map(|i| (i as u32).wrapping_mul(2654435761).rotate_right(13) as u8)
            .collect();
    }
    let pattern = "The quick brown fox jumps over the lazy dog; é à ü ñ — “quotes” ✓ 日本語 🦀. ";
    let mut s = String::with_capacity(len + 8);
    while s.len() < len {
        for c in pattern.chars() {
            if s.len() + c.len_utf8() > len {
                break;
            }
            s.push(c);
        }
        if s.len() + 1 > len {
            while s.len() < len {
                s.push(' ');
            }
        }
    }
    s.into_bytes()
}

/// A small deterministic generator for masking keys (xorshift64*).
pub struct KeyGen(pub u64);

impl KeyGen {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn key(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }
}

/// The generator tether's connections take their masking keys from in these benchmarks (the
/// peers use their own fast generators; an OS CSPRNG would measure the OS instead).
pub struct BenchRng(pub KeyGen);

impl tether::rand_core::TryRng for BenchRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u64() as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for c in dst.chunks_mut(8) {
            let v = self.0.next_u64().to_ne_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
        Ok(())
    }
}

pub fn rng() -> BenchRng {
    BenchRng(KeyGen(0x9e37_79b9_7f4a_7c15))
}
