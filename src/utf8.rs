//! Incremental UTF-8 validation across fragments and frame boundaries (RFC 6455 §8.1).
//!
//! A text message may be split anywhere, even inside a character. The validator keeps the at most
//! three bytes of an unfinished character and fails as soon as the bytes seen so far can no longer
//! begin a valid string (`simdutf8::compat::from_utf8`, like `core::str::from_utf8`, reports an
//! invalid prefix as an error with a known length, and a merely unfinished character as an error
//! without one). The bulk of each piece goes through simdutf8's SIMD kernels.

/// Incremental UTF-8 state: the bytes of a character that has not been completed yet.
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// The bytes can no longer be the prefix of a valid UTF-8 string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

/// How many bytes the character starting with `lead` has (0 for a byte that cannot start one).
fn char_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    #[must_use]
    pub const fn new() -> Self {
        Utf8Validator {
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// Validates the next piece of the message.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = self.partial_len as usize;
            let width = char_width(self.partial[0]);
            let take = (width - have).min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            let now = have + take;
            match core::str::from_utf8(&self.partial[..now]) {
                Ok(_) => {
                    self.partial_len = 0;
                    data = &data[take..];
                }
                Err(e) if e.error_len().is_none() => {
                    // Still unfinished, which means `data` is exhausted.
                    self.partial_len = now as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the message: an unfinished character is an error. Resets for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let unfinished = self.partial_len != 0;
        self.partial_len = 0;
        if unfinished { Err(InvalidUtf8) } else { Ok(()) }
    }

    /// Forgets any state, for a new message.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn check_all_splits(bytes: &[u8]) {
        let expected = core::str::from_utf8(bytes).is_ok();
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&bytes[..a]).is_ok()
                    && v.feed(&bytes[a..b]).is_ok()
                    && v.feed(&bytes[b..]).is_ok()
                    && v.finish().is_ok();
                assert_eq!(ok, expected, "{bytes:x?} split at {a},{b}");
            }
        }
    }

    #[test]
    fn agrees_with_std_on_every_split() {
        let samples: [&[u8]; 12] = [
            b"hello",
            "κόσμε".as_bytes(),
            "€𝄞a".as_bytes(),
            &[0xf4, 0x8f, 0xbf, 0xbf],
            &[0xf4, 0x90, 0x80, 0x80],
            &[0xed, 0xa0, 0x80],
            &[0xc0, 0xaf],
            &[0xe0, 0x80, 0xaf],
            &[0xce, 0xba, 0xe1, 0xbd],
            &[0xff],
            &[0x80],
            &[0xf0, 0x9d, 0x84],
        ];
        for s in samples {
            check_all_splits(s);
        }
    }

    /// RFC 6455 §8.1 with fail-fast: an invalid prefix fails on the byte that makes it invalid,
    /// without waiting for the end of the message (Autobahn 6.4.x).
    #[test]
    fn fails_fast() {
        let mut v = Utf8Validator::new();
        assert!(v.feed("κόσμε".as_bytes()).is_ok());
        assert!(v.feed(&[0xf4]).is_ok());
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));

        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[b'a', 0xff, b'b']), Err(InvalidUtf8));
    }

    #[test]
    fn every_single_code_point_one_byte_at_a_time() {
        let mut buf = [0u8; 4];
        for c in (0..=0x10ffffu32).step_by(7).filter_map(char::from_u32) {
            let enc = c.encode_utf8(&mut buf).as_bytes().to_vec();
            let mut v = Utf8Validator::new();
            for b in &enc {
                v.feed(core::slice::from_ref(b)).unwrap();
            }
            v.finish().unwrap();
        }
        let surrogate: Vec<u8> = alloc::vec![0xed, 0xbf, 0xbf];
        let mut v = Utf8Validator::new();
        assert!(
            surrogate
                .iter()
                .any(|b| v.feed(core::slice::from_ref(b)).is_err())
        );
    }
}
