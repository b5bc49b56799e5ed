//! Finding the end of an HTTP head incrementally, in time linear in the bytes received.
//!
//! A head ends with an empty line (RFC 9112 §2.1). The scanner remembers how far it has looked
//! and the state of the last line, so bytes arriving one at a time are each examined once, and
//! the full parser (httparse) runs once, on a complete head. A head that passes the size or
//! field-count limit is refused as soon as the excess arrives: re-scanning from the start on
//! every read is how a slow peer makes a server quadratic (CVE-2023-43669).

use super::limits::HandshakeLimits;

/// Where the scanner is relative to line boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// Inside a line (or at the very start of the head).
    Inside,
    /// Just after a line feed: an empty line would end the head here.
    Start,
    /// After a line feed and a carriage return: a line feed now ends the head.
    StartCr,
}

/// Why a head was refused before it was parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The head is longer than `max_head_size`.
    TooLarge,
    /// The head has more than `max_headers` field lines.
    TooManyHeaders,
}

/// An incremental search for the empty line that ends an HTTP head.
#[derive(Clone, Debug)]
pub(crate) struct HeadScanner {
    scanned: usize,
    line: Line,
    lines: usize,
    limits: HandshakeLimits,
}

impl HeadScanner {
    pub(crate) fn new(limits: &HandshakeLimits) -> Self {
        HeadScanner {
            scanned: 0,
            line: Line::Inside,
            lines: 0,
            limits: *limits,
        }
    }

    /// Looks at the bytes of `input` not seen before. `input` must start where the head starts
    /// and only grow between calls. Returns the head's length (up to and including its empty
    /// line) once it is complete, `None` while it is not.
    pub(crate) fn scan(&mut self, input: &[u8]) -> Result<Option<usize>, ScanError> {
        let end = input.len().min(self.limits.max_head_size);
        while self.scanned < end {
            if self.line == Line::Inside {
                // Inside a line only a line feed changes anything: skip to it.
                match memchr::memchr(b'\n', &input[self.scanned..end]) {
                    Some(at) => self.scanned += at,
                    None => {
                        self.scanned = end;
                        break;
                    }
                }
            }
            let byte = input[self.scanned];
            self.scanned += 1;
            self.line = match (self.line, byte) {
                (Line::Start | Line::StartCr, b'\n') => return Ok(Some(self.scanned)),
                (Line::Start, b'\r') => Line::StartCr,
                (Line::Inside, b'\n') => {
                    self.lines += 1;
                    // The start line plus one line per field.
                    if self.lines > self.limits.max_headers.saturating_add(1) {
                        return Err(ScanError::TooManyHeaders);
                    }
                    Line::Start
                }
                _ => Line::Inside,
            };
        }
        if self.scanned >= self.limits.max_head_size && !input.is_empty() {
            return Err(ScanError::TooLarge);
        }
        Ok(None)
    }

    /// How many field lines a parser needs room for: every line after the start line.
    pub(crate) fn field_lines(&self) -> usize {
        self.lines.saturating_sub(1)
    }
}

/// A short description of an httparse error, for reports.
pub(crate) fn describe(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token in the start line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn limits(size: usize, headers: usize) -> HandshakeLimits {
        HandshakeLimits::new(size, headers)
    }

    #[test]
    fn finds_crlf_and_lf_terminators() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest";
        let mut s = HeadScanner::new(&limits(1024, 8));
        assert_eq!(s.scan(head), Ok(Some(head.len() - 4)));
        assert_eq!(s.field_lines(), 1);
        let head = b"GET / HTTP/1.1\nHost: x\n\nrest";
        let mut s = HeadScanner::new(&limits(1024, 8));
        assert_eq!(s.scan(head), Ok(Some(head.len() - 4)));
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        let head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\nxyz";
        let mut s = HeadScanner::new(&limits(1024, 8));
        let mut found = None;
        for n in 0..=head.len() {
            if let Some(len) = s.scan(&head[..n]).unwrap() {
                found = Some((n, len));
                break;
            }
        }
        assert_eq!(found, Some((head.len() - 3, head.len() - 3)));
    }

    #[test]
    fn limits_are_exact() {
        let head = b"GET / HTTP/1.1\r\n\r\n";
        let mut s = HeadScanner::new(&limits(head.len(), 8));
        assert_eq!(s.scan(head), Ok(Some(head.len())));
        let mut s = HeadScanner::new(&limits(head.len() - 1, 8));
        assert_eq!(s.scan(head), Err(ScanError::TooLarge));
        let head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        let mut s = HeadScanner::new(&limits(1024, 2));
        assert_eq!(s.scan(head), Ok(Some(head.len())));
        let mut s = HeadScanner::new(&limits(1024, 1));
        assert_eq!(s.scan(head), Err(ScanError::TooManyHeaders));
    }

    #[test]
    fn stray_cr_is_not_a_terminator() {
        let mut s = HeadScanner::new(&limits(1024, 8));
        assert_eq!(s.scan(b"GET / HTTP/1.1\r\n\rX\r\n"), Ok(None));
    }

    /// The reference: the scanner's rule a byte at a time.
    fn reference(input: &[u8], limits: &HandshakeLimits) -> Result<Option<usize>, ScanError> {
        let (mut line, mut lines) = (Line::Inside, 0usize);
        let end = input.len().min(limits.max_head_size);
        for (i, &byte) in input[..end].iter().enumerate() {
            line = match (line, byte) {
                (Line::Start | Line::StartCr, b'\n') => return Ok(Some(i + 1)),
                (Line::Start, b'\r') => Line::StartCr,
                (Line::Inside, b'\n') => {
                    lines += 1;
                    if lines > limits.max_headers.saturating_add(1) {
                        return Err(ScanError::TooManyHeaders);
                    }
                    Line::Start
                }
                _ => Line::Inside,
            };
        }
        if end >= limits.max_head_size && !input.is_empty() {
            return Err(ScanError::TooLarge);
        }
        Ok(None)
    }

    /// Skipping to line feeds a word at a time finds what the byte-wise rule finds, for heads
    /// of many shapes fed in pieces of every size.
    #[test]
    fn skipping_to_line_feeds_matches_the_byte_wise_rule() {
        let alphabet = [b'a', b'\r', b'\n', b':', b' ', 0x80, 0x0a ^ 0x80, 0x0b];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..3000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 90) as usize;
            let input: Vec<u8> = (0..len)
                .map(|i| {
                    let r = state.rotate_left(i as u32 * 5) as usize;
                    // Mostly ordinary bytes, so lines are long enough to skip over.
                    if r.is_multiple_of(5) {
                        alphabet[(r >> 8) % 8]
                    } else {
                        b'x'
                    }
                })
                .collect();
            let limits = limits(1 + (state >> 40) as usize % 100, (state >> 50) as usize % 6);
            let want = reference(&input, &limits);
            let step = 1 + round % 11;
            let mut s = HeadScanner::new(&limits);
            let mut got = Ok(None);
            let mut n = 0;
            while matches!(got, Ok(None)) && n < input.len() {
                n = (n + step).min(input.len());
                got = s.scan(&input[..n]);
            }
            assert_eq!(got, want, "{input:?} in pieces of {step}");
        }
    }
}
