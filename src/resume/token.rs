//! Session tokens: 128 random bits, written as 32 lowercase hex digits.

use core::fmt;

use rand_core::Rng;

/// A resumption token: 128 bits from the connection's injected generator (a CSPRNG in
/// production), written on the wire as 32 lowercase hex digits. Single-use: every handshake
/// that starts or resumes a session hands out a new one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionToken([u8; 16]);

impl SessionToken {
    /// A fresh token from `rng`.
    pub fn generate(rng: &mut (impl Rng + ?Sized)) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        SessionToken(bytes)
    }

    /// The token's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses 32 hex digits (either case); anything else is `None`.
    #[must_use]
    pub fn parse(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            bytes[i] = u8::try_from(hi * 16 + lo).ok()?;
        }
        Some(SessionToken(bytes))
    }
}

impl fmt::Display for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Redacted: a token is a credential and does not belong in logs.
impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hex_round_trip() {
        let t = SessionToken([0xab; 16]);
        let s = t.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(SessionToken::parse(&s), Some(t));
        assert_eq!(SessionToken::parse(&s.to_uppercase()), Some(t));
        assert_eq!(SessionToken::parse(&s[1..]), None);
        assert_eq!(
            SessionToken::parse("zz000000000000000000000000000000"),
            None
        );
        assert_eq!(
            SessionToken::parse("+f000000000000000000000000000000"),
            None
        );
    }
}
