//! A server's acceptance of a handshake: the `101 Switching Protocols` response
//! (RFC 6455 §4.2.2).

use alloc::string::String;
use alloc::vec::Vec;

use bytes::{BufMut, BytesMut};

use super::error::AcceptError;
use super::reject::put_line;
use super::request::Request;
use super::tokens::{check_field, extension_name, is_field_value, is_token};
use super::validate::{RequestInfo, accept_key};

/// Header fields [`write_accept`] writes itself; an [`Accept`] header with one of these names is
/// not written.
const RESERVED: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

/// How a server accepts a request: the subprotocol and extensions it selects and any extra
/// header fields (`Set-Cookie`, ...).
///
/// ```
/// use tether::handshake::Accept;
/// let accept = Accept::new().subprotocol("chat").header("Set-Cookie", "session=1");
/// assert_eq!(accept.subprotocol.as_deref(), Some("chat"));
/// ```
///
/// Header fields that would corrupt the response (a name that is not a token, a value with CR,
/// LF or NUL) or that [`write_accept`] writes itself (`Upgrade`, `Connection`,
/// `Sec-WebSocket-*`, `Content-Length`, `Transfer-Encoding`) are skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accept {
    /// The selected subprotocol: one the client offered, or none (RFC 6455 §4.2.2 item 5.4).
    pub subprotocol: Option<String>,
    /// The accepted extensions with their response parameters, each one the client offered
    /// (RFC 6455 §9.1).
    pub extensions: Vec<String>,
    /// Extra header fields, in order.
    pub headers: Vec<(String, String)>,
}

impl Accept {
    /// Accepts with no subprotocol, no extension and no extra header.
    #[must_use]
    pub fn new() -> Self {
        Accept::default()
    }

    /// Selects a subprotocol.
    #[must_use]
    pub fn subprotocol(mut self, subprotocol: impl Into<String>) -> Self {
        self.subprotocol = Some(subprotocol.into());
        self
    }

    /// Accepts an extension, e.g. `permessage-deflate; server_no_context_takeover`.
    #[must_use]
    pub fn extension(mut self, extension: impl Into<String>) -> Self {
        self.extensions.push(extension.into());
        self
    }

    /// Adds a header field (repeatable; order is kept).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Checks that this acceptance answers `request`: the subprotocol and every extension must
    /// be among those offered (RFC 6455 §4.2.2 items 5.4 and 5.5).
    pub fn check(&self, request: &RequestInfo) -> Result<(), AcceptError> {
        match &self.subprotocol {
            Some(p) if !request.subprotocols.contains(p) => {
                return Err(AcceptError::UnofferedSubprotocol(p.clone()));
            }
            _ => {}
        }
        for extension in &self.extensions {
            let name = extension_name(extension);
            if !is_token(name) || !is_field_value(extension) {
                return Err(AcceptError::InvalidExtension(extension.clone()));
            }
            let offered = request
                .extensions
                .iter()
                .any(|offer| extension_name(offer).eq_ignore_ascii_case(name));
            if !offered {
                return Err(AcceptError::UnofferedExtension(extension.clone()));
            }
        }
        Ok(())
    }
}

/// Writes the `101 Switching Protocols` response that accepts `request` (RFC 6455 §4.2.2 item
/// 5): `Upgrade: websocket`, `Connection: Upgrade`, the `Sec-WebSocket-Accept` for its key, the
/// selected subprotocol and extensions, and the valid extra header fields. Bytes that follow
/// are WebSocket frames.
///
/// Fails, writing nothing, when `accept` selects a subprotocol or extension the client did not
/// offer.
pub fn write_accept(
    request: &Request,
    accept: &Accept,
    out: &mut BytesMut,
) -> Result<(), AcceptError> {
    accept.check(request.info())?;
    put_line(out, &["HTTP/1.1 101 Switching Protocols"]);
    put_line(out, &["Upgrade: websocket"]);
    put_line(out, &["Connection: Upgrade"]);
    put_line(out, &["Sec-WebSocket-Accept: ", &accept_key(request.key())]);
    if let Some(p) = &accept.subprotocol {
        put_line(out, &["Sec-WebSocket-Protocol: ", p]);
    }
    if !accept.extensions.is_empty() {
        put_line(
            out,
            &["Sec-WebSocket-Extensions: ", &accept.extensions.join(", ")],
        );
    }
    for (name, value) in &accept.headers {
        if check_field(name, value, RESERVED).is_ok() {
            put_line(out, &[name, ": ", value]);
        }
    }
    out.put_slice(b"\r\n");
    Ok(())
}
