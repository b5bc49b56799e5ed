//! What a client asks for when it opens a connection (RFC 6455 §4.1).

use alloc::string::String;
use alloc::vec::Vec;

use super::error::HeaderError;
use super::tokens::{check_field, extension_name, is_field_value, is_token};
use super::url::{UrlError, WsUrl};

/// Header fields the client handshake writes itself.
const RESERVED: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

/// A client's opening request: the URL, the subprotocols and extensions it offers and extra
/// header fields (`Authorization`, `Cookie`, `Origin`, `User-Agent`, ...).
///
/// ```
/// use tether::handshake::ClientRequest;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let request = ClientRequest::new("wss://example.com/chat")?
///     .subprotocol("v2.chat")?
///     .subprotocol("v1.chat")?
///     .header("Authorization", "Bearer abc")?;
/// assert_eq!(request.subprotocols(), ["v2.chat", "v1.chat"]);
/// # Ok(()) }
/// ```
///
/// The builder methods check their input, so a request that exists can be written as is: a
/// subprotocol must be a token, a header must not inject fields, and the fields the handshake
/// writes itself (`Host`, `Upgrade`, `Connection`, `Sec-WebSocket-*`, `Content-Length`,
/// `Transfer-Encoding`) cannot be set or overridden ([`HeaderError::Reserved`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    url: WsUrl,
    subprotocols: Vec<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// A request for `url`, a `ws://` or `wss://` URI (RFC 6455 §3).
    pub fn new(url: &str) -> Result<Self, UrlError> {
        WsUrl::parse(url).map(ClientRequest::from_url)
    }

    /// A request for a parsed URL.
    #[must_use]
    pub fn from_url(url: WsUrl) -> Self {
        ClientRequest {
            url,
            subprotocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Offers a subprotocol; offers are sent in the order added, most preferred first
    /// (RFC 6455 §4.1, item 10). It must be a token and not already offered.
    pub fn subprotocol(mut self, subprotocol: impl Into<String>) -> Result<Self, HeaderError> {
        let subprotocol = subprotocol.into();
        if !is_token(&subprotocol) {
            return Err(HeaderError::InvalidSubprotocol(subprotocol));
        }
        if self.subprotocols.contains(&subprotocol) {
            return Err(HeaderError::DuplicateSubprotocol(subprotocol));
        }
        self.subprotocols.push(subprotocol);
        Ok(self)
    }

    /// Offers an extension, as its `Sec-WebSocket-Extensions` element with parameters, e.g.
    /// `permessage-deflate; client_max_window_bits` (RFC 6455 §9.1). The server may accept
    /// only extensions offered here.
    pub fn extension(mut self, offer: impl Into<String>) -> Result<Self, HeaderError> {
        let offer = offer.into();
        if !is_token(extension_name(&offer)) || !is_field_value(&offer) {
            return Err(HeaderError::InvalidExtension(offer));
        }
        self.extensions.push(offer);
        Ok(self)
    }

    /// Adds an offer the core built itself (permessage-deflate from the configuration).
    pub(crate) fn with_offer(mut self, offer: String) -> Self {
        self.extensions.push(offer);
        self
    }

    /// Adds a header field (repeatable; order is kept).
    pub fn header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, HeaderError> {
        let (name, value) = (name.into(), value.into());
        check_field(&name, &value, RESERVED)?;
        self.headers.push((name, value));
        Ok(self)
    }

    /// The URL.
    #[must_use]
    pub fn url(&self) -> &WsUrl {
        &self.url
    }

    /// The subprotocols offered, most preferred first.
    #[must_use]
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The extension offers.
    #[must_use]
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The extra header fields.
    #[must_use]
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

impl From<WsUrl> for ClientRequest {
    fn from(url: WsUrl) -> Self {
        ClientRequest::from_url(url)
    }
}
