//! A generator for one connection, keyed from the session's generator.
//!
//! A [`Connection`](crate::Connection) owns its generator for its whole life, while the session
//! keeps drawing jitter from its own. Each connection therefore gets a child: a 256-bit key drawn
//! from the session's generator, expanded in counter mode with SHA-1 as the keyed function
//! (`block_i = SHA-1(key ‖ i)`). When the session's generator is a CSPRNG the key is unknown to
//! the peer and to anyone on the path, so the masking keys stay unpredictable (RFC 6455 §5.3);
//! with a seeded generator (tests) the whole run is reproducible.

use rand_core::{Rng, TryRng};
use sha1::{Digest, Sha1};

/// Bytes in one output block (a SHA-1 digest).
const BLOCK: usize = 20;

/// A deterministic generator keyed from a parent generator.
pub(crate) struct ForkedRng {
    key: [u8; 32],
    counter: u64,
    block: [u8; BLOCK],
    /// Bytes of `block` already handed out.
    used: usize,
}

impl ForkedRng {
    /// A child keyed with 32 bytes drawn from `parent`.
    pub(crate) fn from_parent<R: Rng + ?Sized>(parent: &mut R) -> Self {
        let mut key = [0u8; 32];
        parent.fill_bytes(&mut key);
        ForkedRng {
            key,
            counter: 0,
            block: [0; BLOCK],
            used: BLOCK,
        }
    }

    fn refill(&mut self) {
        let mut hash = Sha1::new();
        hash.update(self.key);
        hash.update(self.counter.to_be_bytes());
        self.block.copy_from_slice(&hash.finalize());
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }

    fn fill(&mut self, dst: &mut [u8]) {
        let mut dst = dst;
        while !dst.is_empty() {
            if self.used == BLOCK {
                self.refill();
            }
            let n = dst.len().min(BLOCK - self.used);
            dst[..n].copy_from_slice(&self.block[self.used..self.used + n]);
            self.used += n;
            dst = &mut dst[n..];
        }
    }
}

impl TryRng for ForkedRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.fill(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn children_differ_and_repeat_with_the_seed() {
        let mut parent = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut a = ForkedRng::from_parent(&mut parent);
        let mut b = ForkedRng::from_parent(&mut parent);
        let (x, y) = (a.next_u64(), b.next_u64());
        assert_ne!(x, y);
        let mut again = ForkedRng::from_parent(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        assert_eq!(again.next_u64(), x);
    }

    #[test]
    fn reads_across_block_boundaries_agree() {
        let mut parent = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut whole = ForkedRng::from_parent(&mut parent.clone());
        let mut pieces = ForkedRng::from_parent(&mut parent);
        let mut all = [0u8; 67];
        whole.fill_bytes(&mut all);
        let mut got = [0u8; 67];
        for chunk in got.chunks_mut(7) {
            pieces.fill_bytes(chunk);
        }
        assert_eq!(all, got);
        assert_ne!(all[..20], all[20..40]);
    }
}
