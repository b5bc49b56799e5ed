//! Payload masking (RFC 6455 §5.3): `payload[i] ^= key[i % 4]`.
//!
//! This is the hottest loop of the core, so it is written in a shape the compiler vectorises:
//! the key is widened to a 64-bit word (two whole keys) and the buffer is walked in fixed
//! 64-byte blocks of eight words (`as_chunks_mut`), which LLVM turns into SSE2/AVX2/AVX-512
//! XORs with the word broadcast in a register, in safe code with no alignment preconditions.
//! (A 64-byte pattern array built on the stack instead made LLVM load it back as vectors
//! right after writing it as words, a store-forwarding stall per call.)

use alloc::vec::Vec;

/// Width of the block the loop works on.
const BLOCK: usize = 64;

/// XORs `buf` with `key`, where `buf` starts at byte `offset` of the masked payload (so a payload
/// can be unmasked piece by piece as it arrives). Returns the offset just past `buf`, modulo 4.
#[inline]
pub fn apply_mask_at(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let r = offset & 3;
    let key = [key[r], key[(r + 1) & 3], key[(r + 2) & 3], key[(r + 3) & 3]];
    apply_mask(buf, key);
    (offset + buf.len()) & 3
}

/// XORs `buf` with `key`, starting at key byte 0.
// Always inlined: out of line, unmasking a 20-byte payload cost some 70 instructions
// instead of 20 (callgrind, echo server).
#[inline(always)]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    let word = widen(key);
    let (blocks, rest) = buf.as_chunks_mut::<BLOCK>();
    for block in blocks {
        for w in block.as_chunks_mut::<8>().0 {
            *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
        }
    }
    // BLOCK is a multiple of 8: the rest starts at key byte 0 again.
    let (words, rest) = rest.as_chunks_mut::<8>();
    for w in words {
        *w = (u64::from_ne_bytes(*w) ^ word).to_ne_bytes();
    }
    for (i, b) in rest.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Writes `src` XORed with `key` (starting at key byte 0) into `dst`, which must be as long:
/// the send path's copy and mask in one pass, so the payload is read once and the output
/// written once.
// Always inlined, as `apply_mask`: out of line, masking a 16-byte payload cost 65 instructions
// (callgrind, encode).
#[inline(always)]
pub(crate) fn copy_masked(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    assert_eq!(dst.len(), src.len(), "copy_masked: lengths differ");
    let word = widen(key);
    let (dst_blocks, dst_rest) = dst.as_chunks_mut::<BLOCK>();
    let (src_blocks, src_rest) = src.as_chunks::<BLOCK>();
    for (d, s) in dst_blocks.iter_mut().zip(src_blocks) {
        let (d, s) = (d.as_chunks_mut::<8>().0, s.as_chunks::<8>().0);
        for (d, s) in d.iter_mut().zip(s) {
            *d = (u64::from_ne_bytes(*s) ^ word).to_ne_bytes();
        }
    }
    // BLOCK is a multiple of 8: the rest starts at key byte 0 again.
    let (dst_words, dst_rest) = dst_rest.as_chunks_mut::<8>();
    let (src_words, src_rest) = src_rest.as_chunks::<8>();
    for (d, s) in dst_words.iter_mut().zip(src_words) {
        *d = (u64::from_ne_bytes(*s) ^ word).to_ne_bytes();
    }
    for (i, (d, s)) in dst_rest.iter_mut().zip(src_rest).enumerate() {
        *d = *s ^ key[i & 3];
    }
}

/// A new vector holding `src` unmasked with `key` (see [`extend_masked`]), exactly sized.
#[inline]
pub(crate) fn masked_vec(src: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    extend_masked(&mut out, src, key);
    out
}

/// Appends `src` unmasked with `key` (starting at key byte 0) to `out`: the copy and the XOR
/// in one pass, into memory that is written once (no zero-filling first). Used where a masked
/// payload is copied out of the input buffer anyway.
#[inline]
pub(crate) fn extend_masked(out: &mut Vec<u8>, src: &[u8], key: [u8; 4]) {
    let word = widen(key);
    out.reserve(src.len());
    let (words, rest) = src.as_chunks::<8>();
    // An iterator of known length (arrays flattened): `extend` writes it without a capacity
    // check per element, which lets the compiler keep the words in vector registers.
    out.extend(
        words
            .iter()
            .flat_map(|w| (u64::from_ne_bytes(*w) ^ word).to_ne_bytes()),
    );
    out.extend(rest.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
}

/// The key repeated over a word: 8 bytes are 2 whole keys, so every word starts at key byte 0.
#[inline(always)]
fn widen(key: [u8; 4]) -> u64 {
    // The key twice, in memory order: two copies of one 32-bit word (built byte by byte, the
    // compiler shifted and or-ed each of the eight bytes into place).
    let k = u64::from(u32::from_ne_bytes(key));
    k | (k << 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    /// Every length 0..=256 at every alignment of the buffer and of the key offset.
    #[test]
    fn matches_reference_for_every_length_and_alignment() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let backing: Vec<u8> = (0..300u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in 0..=256 {
            for align in 0..8 {
                for offset in 0..4 {
                    let mut ours = backing.clone();
                    let mut theirs = backing.clone();
                    let next = apply_mask_at(&mut ours[align..align + len], key, offset);
                    reference(&mut theirs[align..align + len], key, offset);
                    assert_eq!(ours, theirs, "len {len} align {align} offset {offset}");
                    assert_eq!(next, (offset + len) % 4);
                }
            }
        }
    }

    /// The fused copy equals copying, then masking byte by byte, for every length up to a few
    /// blocks and some large ones, at every alignment of source and destination; the source is
    /// left intact and nothing outside `dst` is written.
    #[test]
    fn copy_masked_matches_reference() {
        let key = [0x9c, 0x01, 0xe7, 0x5b];
        let src_backing: Vec<u8> = (0..17_000u32).map(|i| (i * 131 + 17) as u8).collect();
        let lens = (0..=300).chain([511, 512, 513, 1000, 4096 + 7, 16384 + 3]);
        for len in lens {
            for src_align in [0, 1, 7] {
                for dst_align in [0, 3, 8] {
                    let src = &src_backing[src_align..src_align + len];
                    let mut ours = vec![0xeeu8; len + 16];
                    copy_masked(&mut ours[dst_align..dst_align + len], src, key);
                    let mut theirs = vec![0xeeu8; len + 16];
                    theirs[dst_align..dst_align + len].copy_from_slice(src);
                    reference(&mut theirs[dst_align..dst_align + len], key, 0);
                    assert_eq!(ours, theirs, "len {len} src {src_align} dst {dst_align}");
                }
            }
        }
        let pristine: Vec<u8> = (0..17_000u32).map(|i| (i * 131 + 17) as u8).collect();
        assert_eq!(src_backing, pristine);
    }

    #[test]
    fn extend_masked_appends() {
        let key = [0x9c, 0x01, 0xe7, 0x5b];
        let src: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut out = b"kept".to_vec();
        extend_masked(&mut out, &src[..333], key);
        extend_masked(&mut out, &src[333..], [1, 2, 3, 4]);
        let mut want = src.clone();
        reference(&mut want[..333], key, 0);
        reference(&mut want[333..], [1, 2, 3, 4], 0);
        assert_eq!(&out[..4], b"kept");
        assert_eq!(&out[4..], &want[..]);
    }

    #[test]
    fn masked_vec_matches_reference() {
        let key = [0x9c, 0x01, 0xe7, 0x5b];
        let backing: Vec<u8> = (0..17_000u32).map(|i| (i * 131 + 17) as u8).collect();
        for len in (0..=300).chain([511, 512, 513, 4096 + 7, 16384 + 3]) {
            for align in [0, 1, 7] {
                let src = &backing[align..align + len];
                let mut theirs = src.to_vec();
                reference(&mut theirs, key, 0);
                let ours = masked_vec(src, key);
                assert_eq!(ours, theirs, "len {len} align {align}");
                assert_eq!(
                    ours.capacity(),
                    len,
                    "exactly sized, so `Bytes` takes it as is"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn copy_masked_refuses_different_lengths() {
        copy_masked(&mut [0; 3], &[1, 2], [1, 2, 3, 4]);
    }

    /// Unmasking in pieces equals unmasking at once (the receiver does this as bytes arrive).
    #[test]
    fn piecewise_equals_whole() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key);
        for split in [0, 1, 3, 5, 63, 64, 65, 999] {
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(split);
            let off = apply_mask_at(a, key, 0);
            apply_mask_at(b, key, off);
            assert_eq!(parts, whole, "split {split}");
        }
    }

    /// RFC 6455 §5.7: the masked "Hello" example.
    #[test]
    fn rfc_example() {
        let mut hello = *b"Hello";
        apply_mask(&mut hello, [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(hello, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }
}
