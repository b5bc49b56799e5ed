//! The client side of the opening handshake over HTTP/1.1: writing the request and reading
//! the server's response (RFC 6455 §4.1).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::body::Framing;
use super::client_request::ClientRequest;
use super::error::HandshakeError;
use super::head::{HeadScanner, ScanError, describe};
use super::headers::{Headers, range_in};
use super::limits::HandshakeLimits;
use super::reject::put_line;
use super::response::Response;
use super::status::reason_or_class;
use super::validate::{WEBSOCKET_VERSION, client_key, redirect, validate_response};

/// A client's opening handshake: the request to write and the reading of the response.
///
/// Feed [`ClientHandshake::handle`] the whole input buffer after every read; it looks only at
/// bytes it has not seen, parses once when the head is complete, and validates with
/// [`validate_response`](super::validate_response).
///
/// This is the machinery behind a client `Connection`; it is public for fuzzing.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct ClientHandshake {
    request: ClientRequest,
    key: String,
    limits: HandshakeLimits,
    /// The length of the interim (1xx) responses read before the current head.
    interim: usize,
    state: State,
}

#[derive(Clone, Debug)]
enum State {
    /// Waiting for the end of the response head.
    Head(HeadScanner),
    /// The server refused; waiting for enough of the body to report.
    Body(Refusal),
    /// A response or an error was returned.
    Finished,
}

/// A refusal whose body is still arriving.
#[derive(Clone, Debug)]
struct Refusal {
    status: u16,
    reason: String,
    headers: Headers,
    head_len: usize,
    framing: Framing,
}

impl Refusal {
    fn into_error(self, input: &[u8]) -> HandshakeError {
        let body = input.get(self.head_len..).unwrap_or_default();
        HandshakeError::Rejected {
            status: self.status,
            reason: self.reason,
            headers: self.headers,
            body: Bytes::from(self.framing.prefix(body)),
        }
    }
}

/// What a complete response head leads to.
enum Head {
    /// A valid 101.
    Accepted(Response),
    /// A final status that refuses the upgrade; its body follows.
    Refused(Refusal),
    /// An interim 1xx response of this length, to skip (RFC 9110 §15.2).
    Interim(usize),
}

/// What a complete response head says.
struct ParsedHead {
    len: usize,
    version: u8,
    status: u16,
    reason: String,
    fields: Vec<(Range<usize>, Range<usize>)>,
}

impl ClientHandshake {
    /// A handshake for `request`; its `Sec-WebSocket-Key` is the base64 of `nonce`, which must
    /// be fresh random bytes for every connection (RFC 6455 §4.1, item 7).
    #[must_use]
    pub fn new(request: ClientRequest, nonce: [u8; 16], limits: &HandshakeLimits) -> Self {
        ClientHandshake {
            request,
            key: client_key(nonce),
            limits: *limits,
            interim: 0,
            state: State::Head(HeadScanner::new(limits)),
        }
    }

    /// The request this handshake sends.
    #[must_use]
    pub fn request(&self) -> &ClientRequest {
        &self.request
    }

    /// The `Sec-WebSocket-Key` sent.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends the opening request (RFC 6455 §4.1) to `out`: the `GET` line, `Host`,
    /// `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Key`,
    /// `Sec-WebSocket-Version: 13`, the offered subprotocols and extensions if any, then the
    /// extra header fields.
    pub fn write_request(&self, out: &mut BytesMut) {
        let url = self.request.url();
        put_line(out, &["GET ", url.path_and_query(), " HTTP/1.1"]);
        put_line(out, &["Host: ", &url.host_header()]);
        put_line(out, &["Upgrade: websocket"]);
        put_line(out, &["Connection: Upgrade"]);
        put_line(out, &["Sec-WebSocket-Key: ", &self.key]);
        put_line(out, &["Sec-WebSocket-Version: ", WEBSOCKET_VERSION]);
        if !self.request.subprotocols().is_empty() {
            put_line(
                out,
                &[
                    "Sec-WebSocket-Protocol: ",
                    &self.request.subprotocols().join(", "),
                ],
            );
        }
        if !self.request.extensions().is_empty() {
            put_line(
                out,
                &[
                    "Sec-WebSocket-Extensions: ",
                    &self.request.extensions().join(", "),
                ],
            );
        }
        for (name, value) in self.request.headers() {
            put_line(out, &[name, ": ", value]);
        }
        out.put_slice(b"\r\n");
    }

    /// Looks at what has arrived. `input` holds everything received and not yet consumed; it
    /// may only grow between calls.
    ///
    /// - `Ok(None)`: read more (the head is incomplete, or the server refused and its body is
    ///   still arriving).
    /// - `Ok(Some(response))`: the server accepted. The head (and any interim 1xx responses
    ///   before it, which are skipped as RFC 9110 §15.2 requires) has been removed from
    ///   `input`; the bytes after it are WebSocket frames and are still there.
    /// - `Err(error)`: the handshake failed; close the connection. `input` is left as it was.
    ///
    /// Once it has returned a response or an error, the handshake is over: further calls
    /// return `Ok(None)` and touch nothing.
    pub fn handle(&mut self, input: &mut BytesMut) -> Result<Option<Response>, HandshakeError> {
        let result = self.step(input);
        if !matches!(result, Ok(None)) {
            self.state = State::Finished;
        }
        result
    }

    /// The connection ended. Returns the refusal with whatever body arrived if the server had
    /// refused, [`HandshakeError::UnexpectedEof`] otherwise. The handshake is then over.
    pub fn handle_eof(&mut self, input: &mut BytesMut) -> HandshakeError {
        match core::mem::replace(&mut self.state, State::Finished) {
            State::Body(refusal) => refusal.into_error(input),
            State::Head(_) | State::Finished => HandshakeError::UnexpectedEof,
        }
    }

    fn step(&mut self, input: &mut BytesMut) -> Result<Option<Response>, HandshakeError> {
        while let State::Head(scanner) = &mut self.state {
            let start = self.interim;
            let head_len = match scanner.scan(input.get(start..).unwrap_or_default()) {
                Ok(Some(len)) => len,
                Ok(None) => return Ok(None),
                Err(ScanError::TooLarge) => {
                    return Err(HandshakeError::HeadTooLarge {
                        limit: self.limits.max_head_size,
                    });
                }
                Err(ScanError::TooManyHeaders) => {
                    return Err(HandshakeError::TooManyHeaders {
                        limit: self.limits.max_headers,
                    });
                }
            };
            let field_lines = scanner.field_lines();
            match self.read_head(input, start, head_len, field_lines)? {
                Head::Accepted(response) => return Ok(Some(response)),
                Head::Refused(refusal) => self.state = State::Body(refusal),
                Head::Interim(len) => {
                    // The next head may use what the interim ones left of the limit.
                    self.interim += len;
                    let left = HandshakeLimits::new(
                        self.limits.max_head_size.saturating_sub(self.interim),
                        self.limits.max_headers,
                    );
                    self.state = State::Head(HeadScanner::new(&left));
                }
            }
        }
        let body_complete = match &self.state {
            State::Body(refusal) => refusal
                .framing
                .is_complete(input.get(refusal.head_len..).unwrap_or_default()),
            _ => false,
        };
        if !body_complete {
            return Ok(None);
        }
        match core::mem::replace(&mut self.state, State::Finished) {
            State::Body(refusal) => Err(refusal.into_error(input)),
            _ => Ok(None),
        }
    }

    /// Reads the complete head at `input[start..start + head_len]`.
    fn read_head(
        &self,
        input: &mut BytesMut,
        start: usize,
        head_len: usize,
        field_lines: usize,
    ) -> Result<Head, HandshakeError> {
        let parsed = self.parse(&input[start..start + head_len], field_lines)?;
        if (100..200).contains(&parsed.status) && parsed.status != 101 {
            return Ok(Head::Interim(parsed.len));
        }
        let head = &input[start..start + parsed.len];
        let field = |(name, value): &(Range<usize>, Range<usize>)| {
            (
                core::str::from_utf8(head.get(name.clone()).unwrap_or_default())
                    .unwrap_or_default(),
                head.get(value.clone()).unwrap_or_default(),
            )
        };
        if parsed.status == 101 {
            if parsed.version != 1 {
                return Err(HandshakeError::UnsupportedVersion);
            }
            let negotiated = validate_response(
                101,
                parsed.fields.iter().map(field),
                &self.key,
                self.request.subprotocols(),
                self.request.extensions(),
            )?;
            input.advance(start);
            let head = input.split_to(parsed.len).freeze();
            let headers = Headers::from_ranges(head, parsed.fields);
            return Ok(Head::Accepted(Response::new(101, headers, negotiated)));
        }
        let fields: Vec<(&str, &[u8])> = parsed.fields.iter().map(field).collect();
        if let Some(redirect) = redirect(parsed.status, &fields) {
            return Err(redirect);
        }
        let headers = Headers::from_ranges(Bytes::copy_from_slice(head), parsed.fields);
        Ok(Head::Refused(Refusal {
            status: parsed.status,
            reason: parsed.reason,
            framing: Framing::of(parsed.status, &headers),
            headers,
            head_len: start + parsed.len,
        }))
    }

    /// Parses a complete response head.
    fn parse(&self, head: &[u8], field_lines: usize) -> Result<ParsedHead, HandshakeError> {
        let mut slots = vec![httparse::EMPTY_HEADER; field_lines];
        let mut response = httparse::Response::new(&mut slots);
        let len = match response.parse(head) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::MalformedHttp("incomplete head"));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HandshakeError::TooManyHeaders {
                    limit: self.limits.max_headers,
                });
            }
            Err(e) => return Err(HandshakeError::MalformedHttp(describe(e))),
        };
        let status = response.code.unwrap_or_default();
        let reason = match response.reason {
            Some(reason) if !reason.is_empty() => String::from(reason),
            _ => String::from(reason_or_class(status)),
        };
        let fields = response
            .headers
            .iter()
            .map(|h| (range_in(head, h.name.as_bytes()), range_in(head, h.value)))
            .collect();
        Ok(ParsedHead {
            len,
            version: response.version.unwrap_or_default(),
            status,
            reason,
            fields,
        })
    }
}
