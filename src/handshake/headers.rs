//! Received header fields, kept in order and looked up by case-insensitive name.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

/// The header fields of a received request or response, in the order they arrived.
///
/// Names are compared ignoring ASCII case (RFC 9110 §5.1). Values are kept as bytes, exactly as
/// received less surrounding whitespace: field values may carry non-UTF-8 `obs-text`
/// (RFC 9110 §5.5), which [`Headers::get`] hides and [`Headers::get_bytes`] shows.
///
/// The fields point into one shared buffer (the received head), so they are not copied one by one.
#[derive(Clone, Default)]
pub struct Headers {
    buf: Bytes,
    fields: Vec<(Range<usize>, Range<usize>)>,
}

impl Headers {
    /// Fields that point into `buf`, a received head: each pair is a name's and a value's byte
    /// range. A range outside `buf` is read as empty.
    pub(crate) fn from_ranges(buf: Bytes, fields: Vec<(Range<usize>, Range<usize>)>) -> Self {
        Headers { buf, fields }
    }

    /// Fields copied from `(name, value)` pairs.
    pub(crate) fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut buf = BytesMut::new();
        let mut fields = Vec::new();
        for (name, value) in pairs {
            let name_start = buf.len();
            buf.put_slice(name.as_bytes());
            let value_start = buf.len();
            buf.put_slice(value);
            fields.push((name_start..value_start, value_start..buf.len()));
        }
        Headers {
            buf: buf.freeze(),
            fields,
        }
    }

    /// The buffer the fields point into: the received head.
    pub(crate) fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// The number of fields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Every field as `(name, value)`, in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields
            .iter()
            .map(|(name, value)| (self.str_at(name), self.bytes_at(value)))
    }

    /// The value of the first field named `name` (any case), if it is UTF-8.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The raw value of the first field named `name` (any case).
    #[must_use]
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The raw values of every field named `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether a field named `name` (any case) is present.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    fn bytes_at(&self, range: &Range<usize>) -> &[u8] {
        self.buf.get(range.clone()).unwrap_or_default()
    }

    fn str_at(&self, range: &Range<usize>) -> &str {
        core::str::from_utf8(self.bytes_at(range)).unwrap_or_default()
    }
}

/// Equal when they hold the same fields in the same order (names compared exactly).
impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(n, v)| (n, bytes::Bytes::copy_from_slice(v))),
            )
            .finish()
    }
}

/// The position of `part` inside `whole`, when `part` is a subslice of it (httparse hands out
/// subslices of the buffer it parsed). A slice from elsewhere, or an empty one, maps to `0..0`.
pub(crate) fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if !part.is_empty() && end <= whole.len() => start..end,
        _ => 0..0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_keep_order() {
        let h = Headers::from_pairs([
            ("Host", &b"a"[..]),
            ("X-Thing", b"1"),
            ("x-thing", b"2"),
            ("Bin", b"\xff"),
        ]);
        assert_eq!(h.len(), 4);
        assert_eq!(h.get("HOST"), Some("a"));
        assert_eq!(h.get("x-THING"), Some("1"));
        let all: Vec<&[u8]> = h.get_all("X-Thing").collect();
        assert_eq!(all, [&b"1"[..], b"2"]);
        assert_eq!(h.get("bin"), None);
        assert_eq!(h.get_bytes("bin"), Some(&b"\xff"[..]));
        assert!(!h.contains("missing"));
        let names: Vec<&str> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Host", "X-Thing", "x-thing", "Bin"]);
    }

    #[test]
    fn ranges() {
        let whole = b"hello world";
        assert_eq!(range_in(whole, &whole[6..]), 6..11);
        assert_eq!(range_in(whole, b"x"), 0..0);
        assert_eq!(range_in(whole, &whole[3..3]), 0..0);
    }
}
