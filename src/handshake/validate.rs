//! The rules of the opening handshake as pure functions over a method, a status and header
//! fields (RFC 6455 §4.1, §4.2.1, §4.2.2; RFC 8441 §4, §5).
//!
//! The built-in HTTP/1.1 handshakes call these, and so can an integration whose HTTP happens
//! elsewhere (hyper, axum, an HTTP/2 server): there is one implementation of each rule.

use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

use super::error::HandshakeError;
use super::headers::Headers;
use super::reject::Reject;
use super::status::reason_or_class;
use super::tokens::{
    collect_elements, extension_name, is_token, list_contains, list_elements, trim_ows,
};

/// The GUID a server appends to the client's key to prove it read the handshake
/// (RFC 6455 §1.3, §4.2.2).
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version RFC 6455 defines, as sent in `Sec-WebSocket-Version` (§4.1).
pub const WEBSOCKET_VERSION: &str = "13";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64 of the SHA-1 of the key
/// (as sent, base64 text) followed by [`WEBSOCKET_GUID`] (RFC 6455 §4.2.2, item 5.4).
///
/// ```
/// assert_eq!(
///     tether::handshake::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
/// );
/// ```
#[must_use]
pub fn accept_key(key: impl AsRef<[u8]>) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_ref());
    sha1.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// The `Sec-WebSocket-Key` for a 16-byte nonce: its base64 encoding (RFC 6455 §4.1, item 7).
/// The nonce must be random for every connection (from the caller's generator).
#[must_use]
pub fn client_key(nonce: [u8; 16]) -> String {
    BASE64.encode(nonce)
}

/// The HTTP version a request arrived in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/1.0: too old for a WebSocket upgrade (RFC 6455 §4.1 requires HTTP/1.1).
    Http10,
    /// HTTP/1.1: the upgrade of RFC 6455 §4.
    Http11,
    /// HTTP/2: only an extended CONNECT (RFC 8441) can open a WebSocket.
    Http2,
    /// HTTP/3: only an extended CONNECT (RFC 9220) can open a WebSocket.
    Http3,
}

/// What a valid opening request asks for (RFC 6455 §4.2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestInfo {
    /// `Sec-WebSocket-Key`, as sent. `None` for an extended CONNECT, which has no key
    /// (RFC 8441 §5).
    pub key: Option<String>,
    /// The subprotocols offered, in the client's order of preference (`Sec-WebSocket-Protocol`,
    /// repeated fields combined).
    pub subprotocols: Vec<String>,
    /// The extension offers (`Sec-WebSocket-Extensions` elements, parameters included).
    pub extensions: Vec<String>,
    /// The `Origin` header (RFC 6455 §10.2), sent by browsers.
    pub origin: Option<String>,
}

/// What a successful handshake response settled (RFC 6455 §4.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// The subprotocol the server selected, one of those offered.
    pub subprotocol: Option<String>,
    /// The extensions the server accepted, with their parameters, in the order it listed them.
    pub extensions: Vec<String>,
}

/// The header fields the handshake rules read, gathered in one pass.
#[derive(Default)]
struct Fields<'a> {
    host: Values<'a>,
    upgrade: Values<'a>,
    connection: Values<'a>,
    key: Values<'a>,
    version: Values<'a>,
    accept: Values<'a>,
    protocol: Values<'a>,
    extensions: Values<'a>,
    origin: Values<'a>,
    location: Values<'a>,
    /// The name of a field above whose value is not UTF-8.
    not_utf8: Option<&'a str>,
}

/// The values of one field name, in order: a field is usually sent once, so up to two are
/// kept inline and only more take an allocation (a handshake gathers five or more names).
#[derive(Default)]
struct Values<'a> {
    inline: [&'a str; 2],
    len: usize,
    more: Vec<&'a str>,
}

impl<'a> Values<'a> {
    fn push(&mut self, value: &'a str) {
        if !self.more.is_empty() {
            self.more.push(value);
        } else if self.len < self.inline.len() {
            self.inline[self.len] = value;
            self.len += 1;
        } else {
            self.more.reserve(self.len + 1);
            self.more.extend_from_slice(&self.inline);
            self.more.push(value);
        }
    }

    fn as_slice(&self) -> &[&'a str] {
        if self.more.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.more
        }
    }
}

impl<'a> core::ops::Deref for Values<'a> {
    type Target = [&'a str];

    fn deref(&self) -> &[&'a str] {
        self.as_slice()
    }
}

impl<'a> Fields<'a> {
    fn gather(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut f = Fields::default();
        for (name, value) in headers {
            let slot = match name.len() {
                4 if name.eq_ignore_ascii_case("host") => &mut f.host,
                6 if name.eq_ignore_ascii_case("origin") => &mut f.origin,
                7 if name.eq_ignore_ascii_case("upgrade") => &mut f.upgrade,
                8 if name.eq_ignore_ascii_case("location") => &mut f.location,
                10 if name.eq_ignore_ascii_case("connection") => &mut f.connection,
                _ if name.eq_ignore_ascii_case("sec-websocket-key") => &mut f.key,
                _ if name.eq_ignore_ascii_case("sec-websocket-version") => &mut f.version,
                _ if name.eq_ignore_ascii_case("sec-websocket-accept") => &mut f.accept,
                _ if name.eq_ignore_ascii_case("sec-websocket-protocol") => &mut f.protocol,
                _ if name.eq_ignore_ascii_case("sec-websocket-extensions") => &mut f.extensions,
                _ => continue,
            };
            match core::str::from_utf8(value) {
                Ok(v) => slot.push(trim_ows(v)),
                Err(_) => {
                    f.not_utf8.get_or_insert(name);
                }
            }
        }
        f
    }
}

/// Whether any of `values` lists `token` (ignoring case).
fn any_lists(values: &[&str], token: &str) -> bool {
    values.iter().any(|v| list_contains(v, token))
}

/// Checks an HTTP/1.1 opening request (RFC 6455 §4.2.1) and returns what it asks for, or the
/// response that refuses it:
///
/// | rule broken | status |
/// |---|---|
/// | not HTTP/1.1 | 505 (HTTP/1.0), 400 (HTTP/2 or 3: use an extended CONNECT) |
/// | method not `GET` | 405, with `Allow: GET` |
/// | no `Host`, or more than one | 400 |
/// | no `Upgrade` | 426, with `Upgrade: websocket` |
/// | `Upgrade` without `websocket` | 400 |
/// | `Connection` without `upgrade` | 400 |
/// | `Sec-WebSocket-Version` missing or not `13` | 426, with `Sec-WebSocket-Version: 13` (§4.4) |
/// | `Sec-WebSocket-Key` missing, repeated, or not base64 of 16 bytes | 400 |
/// | a subprotocol or extension name that is not a token, several `Origin`s, a WebSocket field that is not UTF-8 | 400 |
///
/// Header names are compared ignoring case; `Upgrade` and `Connection` are comma-separated lists
/// (`Connection: keep-alive, Upgrade` is fine). Repeated `Sec-WebSocket-Protocol` and
/// `Sec-WebSocket-Extensions` fields combine into one list.
pub fn validate_request<'a>(
    method: &str,
    version: HttpVersion,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<RequestInfo, Reject> {
    match version {
        HttpVersion::Http11 => {}
        HttpVersion::Http10 => {
            return Err(Reject::protocol(
                505,
                "WebSocket requires HTTP/1.1 or an extended CONNECT",
            ));
        }
        _ => {
            return Err(Reject::protocol(
                400,
                "WebSocket over HTTP/2 or HTTP/3 requires an extended CONNECT",
            ));
        }
    }
    if method != "GET" {
        return Err(
            Reject::protocol(405, "WebSocket handshake must use GET").header("Allow", "GET")
        );
    }
    let f = Fields::gather(headers);
    if let Some(name) = f.not_utf8 {
        return Err(Reject::protocol(
            400,
            &alloc::format!("{name} header is not UTF-8"),
        ));
    }
    match f.host.as_slice() {
        [host] if !host.is_empty() => {}
        [] | [_] => return Err(Reject::protocol(400, "missing Host header")),
        _ => return Err(Reject::protocol(400, "more than one Host header")),
    }
    if f.upgrade.is_empty() {
        return Err(Reject::protocol(426, "missing Upgrade: websocket header")
            .header("Upgrade", "websocket"));
    }
    if !any_lists(&f.upgrade, "websocket") {
        return Err(Reject::protocol(
            400,
            "Upgrade header does not name websocket",
        ));
    }
    if !any_lists(&f.connection, "upgrade") {
        return Err(Reject::protocol(
            400,
            "Connection header lacks the upgrade option",
        ));
    }
    check_version(&f.version, 426)?;
    let key = match f.key.as_slice() {
        [key] if is_valid_key(key) => String::from(*key),
        [_] => {
            return Err(Reject::protocol(
                400,
                "Sec-WebSocket-Key is not base64 of 16 bytes",
            ));
        }
        [] => return Err(Reject::protocol(400, "missing Sec-WebSocket-Key header")),
        _ => {
            return Err(Reject::protocol(
                400,
                "more than one Sec-WebSocket-Key header",
            ));
        }
    };
    let mut info = offers(&f)?;
    info.key = Some(key);
    Ok(info)
}

/// Checks an HTTP/2 (RFC 8441 §4, §5) or HTTP/3 (RFC 9220) extended CONNECT that opens a
/// WebSocket, and returns what it asks for, or the response that refuses it. `protocol` is the
/// `:protocol` pseudo-header. There is no key and no `Upgrade` or `Connection` field.
///
/// | rule broken | status |
/// |---|---|
/// | method not `CONNECT` | 405, with `Allow: CONNECT` |
/// | `:protocol` missing or not `websocket` | 400 |
/// | `Sec-WebSocket-Version` missing or not `13` | 400, with `Sec-WebSocket-Version: 13` (426 is an HTTP/1.1 upgrade status) |
/// | a subprotocol or extension name that is not a token, several `Origin`s, a WebSocket field that is not UTF-8 | 400 |
///
/// A successful response has status 200 and no `Sec-WebSocket-Accept` (RFC 8441 §5).
pub fn validate_extended_connect<'a>(
    method: &str,
    protocol: Option<&str>,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<RequestInfo, Reject> {
    if method != "CONNECT" {
        return Err(
            Reject::protocol(405, "extended CONNECT must use CONNECT").header("Allow", "CONNECT")
        );
    }
    if !protocol.is_some_and(|p| p.eq_ignore_ascii_case("websocket")) {
        return Err(Reject::protocol(400, ":protocol is not websocket"));
    }
    let f = Fields::gather(headers);
    if let Some(name) = f.not_utf8 {
        return Err(Reject::protocol(
            400,
            &alloc::format!("{name} header is not UTF-8"),
        ));
    }
    check_version(&f.version, 400)?;
    offers(&f)
}

/// `Sec-WebSocket-Version` must be exactly `13` (RFC 6455 §4.2.1 item 6, §4.4).
fn check_version(values: &[&str], status: u16) -> Result<(), Reject> {
    if let [WEBSOCKET_VERSION] = values {
        return Ok(());
    }
    Err(Reject::protocol(
        status,
        "unsupported Sec-WebSocket-Version: this server speaks 13",
    )
    .header("Sec-WebSocket-Version", WEBSOCKET_VERSION))
}

/// Whether `key` is base64 of exactly 16 bytes (RFC 6455 §4.2.1, item 5).
fn is_valid_key(key: &str) -> bool {
    let mut nonce = [0u8; 16];
    key.len() == 24 && matches!(BASE64.decode_slice(key, &mut nonce), Ok(16))
}

/// The subprotocols, extensions and origin a request offers.
fn offers(f: &Fields<'_>) -> Result<RequestInfo, Reject> {
    let mut info = RequestInfo::default();
    collect_elements(f.protocol.iter().copied(), &mut info.subprotocols);
    if let Some(bad) = info.subprotocols.iter().find(|p| !is_token(p)) {
        return Err(Reject::protocol(
            400,
            &alloc::format!("invalid subprotocol {bad:?} in Sec-WebSocket-Protocol"),
        ));
    }
    collect_elements(f.extensions.iter().copied(), &mut info.extensions);
    if let Some(bad) = info
        .extensions
        .iter()
        .find(|e| !is_token(extension_name(e)))
    {
        return Err(Reject::protocol(
            400,
            &alloc::format!("invalid extension {bad:?} in Sec-WebSocket-Extensions"),
        ));
    }
    info.origin = match f.origin.as_slice() {
        [] => None,
        [origin] => Some(String::from(*origin)),
        _ => return Err(Reject::protocol(400, "more than one Origin header")),
    };
    Ok(info)
}

/// Checks the server's answer to an HTTP/1.1 opening request (RFC 6455 §4.1, items 1-6) sent
/// with `key`, offering `subprotocols` and `extensions` (the offers as sent; extensions are
/// matched by name, ignoring case; subprotocols exactly).
///
/// A 3xx is [`HandshakeError::Redirect`]; any other status but 101 is
/// [`HandshakeError::Rejected`] (with an empty body: the caller has not read it). For a 101,
/// each broken rule has its own variant.
pub fn validate_response<'a, S: AsRef<str>, E: AsRef<str>>(
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    key: &str,
    subprotocols: &[S],
    extensions: &[E],
) -> Result<Negotiated, HandshakeError> {
    let headers: Vec<(&str, &[u8])> = headers.into_iter().collect();
    if status != 101 {
        return Err(refusal(status, &headers));
    }
    let f = Fields::gather(headers.iter().copied());
    if f.not_utf8.is_some() {
        return Err(HandshakeError::MalformedHttp(
            "a WebSocket header value is not UTF-8",
        ));
    }
    if f.upgrade.is_empty() {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !any_lists(&f.upgrade, "websocket") {
        return Err(HandshakeError::InvalidUpgrade(f.upgrade.join(", ")));
    }
    if f.connection.is_empty() {
        return Err(HandshakeError::MissingConnection);
    }
    if !any_lists(&f.connection, "upgrade") {
        return Err(HandshakeError::InvalidConnection(f.connection.join(", ")));
    }
    match f.accept.as_slice() {
        [] => return Err(HandshakeError::MissingAccept),
        [accept] if *accept == accept_key(key) => {}
        values => return Err(HandshakeError::InvalidAccept(values.join(", "))),
    }
    negotiate(&f, subprotocols, extensions)
}

/// Checks the server's answer to an extended CONNECT (RFC 8441 §5, RFC 9220): a 2xx opens the
/// WebSocket; the subprotocol and extension rules are those of [`validate_response`].
pub fn validate_extended_connect_response<'a, S: AsRef<str>, E: AsRef<str>>(
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    subprotocols: &[S],
    extensions: &[E],
) -> Result<Negotiated, HandshakeError> {
    let headers: Vec<(&str, &[u8])> = headers.into_iter().collect();
    if !(200..300).contains(&status) {
        return Err(refusal(status, &headers));
    }
    let f = Fields::gather(headers.iter().copied());
    if f.not_utf8.is_some() {
        return Err(HandshakeError::MalformedHttp(
            "a WebSocket header value is not UTF-8",
        ));
    }
    negotiate(&f, subprotocols, extensions)
}

/// The error for a status that does not open the connection: a redirect for 3xx, else a
/// rejection with the standard reason phrase and no body.
fn refusal(status: u16, headers: &[(&str, &[u8])]) -> HandshakeError {
    redirect(status, headers).unwrap_or_else(|| HandshakeError::Rejected {
        status,
        reason: reason_or_class(status).into(),
        headers: Headers::from_pairs(headers.iter().copied()),
        body: bytes::Bytes::new(),
    })
}

/// [`HandshakeError::Redirect`] if `status` is a 3xx.
pub(crate) fn redirect(status: u16, headers: &[(&str, &[u8])]) -> Option<HandshakeError> {
    if !(300..400).contains(&status) {
        return None;
    }
    let location = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("location"))
        .and_then(|(_, v)| core::str::from_utf8(v).ok())
        .map(|v| String::from(trim_ows(v)));
    Some(HandshakeError::Redirect { status, location })
}

/// The subprotocol and extensions a response settles (RFC 6455 §4.1, items 5 and 6).
fn negotiate<S: AsRef<str>, E: AsRef<str>>(
    f: &Fields<'_>,
    subprotocols: &[S],
    extensions: &[E],
) -> Result<Negotiated, HandshakeError> {
    let mut negotiated = Negotiated::default();
    if !f.protocol.is_empty() {
        let joined = f.protocol.join(", ");
        if subprotocols.is_empty() {
            return Err(HandshakeError::UnexpectedSubprotocol(joined));
        }
        let mut selected = f.protocol.iter().flat_map(|v| list_elements(v));
        match (selected.next(), selected.next()) {
            (None, _) => {}
            (Some(p), None) => {
                if !subprotocols.iter().any(|o| o.as_ref() == p) {
                    return Err(HandshakeError::UnofferedSubprotocol(p.into()));
                }
                negotiated.subprotocol = Some(p.into());
            }
            (Some(_), Some(_)) => return Err(HandshakeError::MultipleSubprotocols(joined)),
        }
    }
    collect_elements(f.extensions.iter().copied(), &mut negotiated.extensions);
    if let Some(unoffered) = negotiated.extensions.iter().find(|accepted| {
        let name = extension_name(accepted);
        !extensions
            .iter()
            .any(|offer| extension_name(offer.as_ref()).eq_ignore_ascii_case(name))
    }) {
        return Err(HandshakeError::UnofferedExtension(unoffered.clone()));
    }
    Ok(negotiated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn rfc_sample() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(client_key(*b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn keys() {
        assert!(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZXg="));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ==dGhl"));
        assert!(!is_valid_key("!GhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(""));
    }

    fn ok_request() -> Vec<(&'static str, &'static [u8])> {
        vec![
            ("Host", b"example.com"),
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", b"13"),
        ]
    }

    #[test]
    fn request_ok() {
        let info = validate_request("GET", HttpVersion::Http11, ok_request()).unwrap();
        assert_eq!(info.key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(info.subprotocols.is_empty() && info.origin.is_none());
    }

    #[test]
    fn request_non_utf8_websocket_field() {
        let mut h = ok_request();
        h.push(("Sec-WebSocket-Protocol", b"\xff"));
        let r = validate_request("GET", HttpVersion::Http11, h).unwrap_err();
        assert_eq!(r.status, 400);
        // Other fields may carry obs-text.
        let mut h = ok_request();
        h.push(("X-Other", b"\xff"));
        assert!(validate_request("GET", HttpVersion::Http11, h).is_ok());
    }

    #[test]
    fn http2_needs_extended_connect() {
        let r = validate_request("GET", HttpVersion::Http2, ok_request()).unwrap_err();
        assert_eq!(r.status, 400);
    }

    #[test]
    fn extended_connect() {
        let h: Vec<(&str, &[u8])> = vec![
            ("sec-websocket-version", b"13"),
            ("sec-websocket-protocol", b"chat, superchat"),
            ("origin", b"https://example.com"),
        ];
        let info = validate_extended_connect("CONNECT", Some("websocket"), h.clone()).unwrap();
        assert_eq!(info.key, None);
        assert_eq!(info.subprotocols, ["chat", "superchat"]);
        assert_eq!(info.origin.as_deref(), Some("https://example.com"));
        let r = validate_extended_connect("GET", Some("websocket"), h.clone()).unwrap_err();
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("Allow".into(), "CONNECT".into())));
        let r = validate_extended_connect("CONNECT", None, h.clone()).unwrap_err();
        assert_eq!(r.status, 400);
        let r = validate_extended_connect("CONNECT", Some("h2c"), h).unwrap_err();
        assert_eq!(r.status, 400);
        let r = validate_extended_connect("CONNECT", Some("websocket"), []).unwrap_err();
        assert_eq!(r.status, 400);
        assert!(
            r.headers
                .contains(&("Sec-WebSocket-Version".into(), "13".into()))
        );
    }

    #[test]
    fn extended_connect_response() {
        let h: Vec<(&str, &[u8])> = vec![("sec-websocket-protocol", b"chat")];
        let n =
            validate_extended_connect_response(200, h.clone(), &["chat"], &[] as &[&str]).unwrap();
        assert_eq!(n.subprotocol.as_deref(), Some("chat"));
        let e = validate_extended_connect_response(403, h, &["chat"], &[] as &[&str]).unwrap_err();
        assert_eq!(e.http_status(), Some(403));
    }

    #[test]
    fn response_refusals() {
        let h: Vec<(&str, &[u8])> = vec![("Location", b" https://x/ ")];
        let e = validate_response(302, h, "k", &[] as &[&str], &[] as &[&str]).unwrap_err();
        assert_eq!(
            e,
            HandshakeError::Redirect {
                status: 302,
                location: Some("https://x/".into())
            }
        );
        let e = validate_response(500, [], "k", &[] as &[&str], &[] as &[&str]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "server rejected the handshake: 500 Internal Server Error"
        );
    }

    /// A field's values keep their order however many there are (two inline, then a list).
    #[test]
    fn gathered_values_keep_their_order_past_the_inline_ones() {
        let names = ["Sec-WebSocket-Protocol", "host", "SEC-WEBSOCKET-PROTOCOL"];
        for n in 0..=5usize {
            let values: Vec<String> = (0..n).map(|i| alloc::format!("p{i}")).collect();
            let headers: Vec<(&str, &[u8])> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (names[i % 2 * 2], v.as_bytes()))
                .chain([(names[1], &b"example.com"[..])])
                .collect();
            let f = Fields::gather(headers.iter().copied());
            let want: Vec<&str> = values.iter().map(String::as_str).collect();
            assert_eq!(f.protocol.as_slice(), &want[..]);
            assert_eq!(f.host.as_slice(), &["example.com"][..]);
            assert!(f.key.is_empty());
        }
    }
}
