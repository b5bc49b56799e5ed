//! The handshake at the edges of the [`http`] crate's types (feature `http`), for servers and
//! clients whose HTTP happens elsewhere: hyper, axum, an HTTP/2 server with extended CONNECT
//! (RFC 8441).
//!
//! - Server: [`Request::from_parts`] validates a request head (an HTTP/1.1 upgrade or an
//!   HTTP/2 or HTTP/3 extended CONNECT), [`accept_parts`] is the whole decision in one pure
//!   call (validation, a [`ServerPolicy`], the subprotocol, permessage-deflate from a
//!   [`Config`]) returning the [`http::Response`] to send and the [`Negotiated`] terms that
//!   [`Connection::open_negotiated`](crate::Connection::open_negotiated) starts from.
//!   [`accept_response`] and [`reject_response`] answer a decision made by hand.
//! - Client: a [`ClientRequest`] from an [`http::Request<()>`](http::Request), and a
//!   [`Response`] as an [`http::Response<()>`](http::Response).
//!
//! ```
//! use tether::handshake::{http::accept_parts, ServerPolicy};
//! let (parts, ()) = http::Request::get("/chat")
//!     .header("Host", "example.com")
//!     .header("Upgrade", "websocket")
//!     .header("Connection", "Upgrade")
//!     .header("Sec-WebSocket-Version", "13")
//!     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .body(())
//!     .unwrap()
//!     .into_parts();
//! let accepted = accept_parts(&parts, None, &ServerPolicy::new(), &Default::default()).unwrap();
//! assert_eq!(accepted.response.status(), 101);
//! assert_eq!(accepted.response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! ```

use alloc::string::{String, ToString};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};

use super::accept::Accept;
use super::client_request::ClientRequest;
use super::error::{AcceptError, HeaderError};
use super::headers::Headers;
use super::policy::ServerPolicy;
use super::reject::Reject;
use super::request::Request;
use super::response::Response;
use super::tokens::list_elements;
use super::url::{UrlError, WsUrl};
use super::validate::{
    HttpVersion, Negotiated, accept_key, validate_extended_connect, validate_request,
};
use crate::Config;

/// Header fields an acceptance writes itself; an [`Accept`] header with one of these names is
/// not copied (as in [`write_accept`](super::write_accept)).
const ACCEPT_RESERVED: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

/// Header fields a refusal does not copy from [`Reject::headers`] (as in
/// [`write_reject`](super::write_reject)).
const REJECT_RESERVED: &[&str] = &["connection", "content-length", "transfer-encoding"];

/// The core's name for an `http` version; `None` for HTTP/0.9 and versions it does not know.
#[must_use]
pub fn http_version(version: Version) -> Option<HttpVersion> {
    match version {
        Version::HTTP_10 => Some(HttpVersion::Http10),
        Version::HTTP_11 => Some(HttpVersion::Http11),
        Version::HTTP_2 => Some(HttpVersion::Http2),
        Version::HTTP_3 => Some(HttpVersion::Http3),
        _ => None,
    }
}

fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &[u8])> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))
}

impl Request {
    /// Validates a request head that asks for a WebSocket: an HTTP/1.1 upgrade
    /// ([`validate_request`]) or, over HTTP/2 or HTTP/3, an extended CONNECT
    /// ([`validate_extended_connect`], RFC 8441 §4, RFC 9220). `protocol` is the extended
    /// CONNECT's `:protocol` pseudo-header, which the `http` types do not carry (hyper keeps
    /// it as `hyper::ext::Protocol` in the extensions); it is ignored for HTTP/1.1.
    ///
    /// The refusal is the response to send, with the status the rule broken calls for.
    pub fn from_parts(
        parts: &http::request::Parts,
        protocol: Option<&str>,
    ) -> Result<Request, Reject> {
        let version = http_version(parts.version)
            .ok_or_else(|| Reject::protocol(505, "WebSocket requires HTTP/1.1 or later"))?;
        let method = parts.method.as_str();
        let info = match version {
            HttpVersion::Http2 | HttpVersion::Http3 => {
                validate_extended_connect(method, protocol, pairs(&parts.headers))?
            }
            _ => validate_request(method, version, pairs(&parts.headers))?,
        };
        let target = parts
            .uri
            .path_and_query()
            .map_or_else(|| String::from("/"), |pq| pq.as_str().into());
        let headers = Headers::from_pairs(pairs(&parts.headers));
        Ok(Request::new(
            method.into(),
            target,
            version,
            headers,
            Ok(info),
        ))
    }

    /// The request as an [`http::Request<()>`](http::Request): the method, the target as the
    /// URI, the version and every header field that is valid for the `http` types.
    #[must_use]
    pub fn to_http(&self) -> http::Request<()> {
        let mut request = http::Request::new(());
        *request.method_mut() = Method::from_bytes(self.method().as_bytes()).unwrap_or_default();
        *request.uri_mut() = self.target().parse().unwrap_or_default();
        *request.version_mut() = match self.version() {
            HttpVersion::Http10 => Version::HTTP_10,
            HttpVersion::Http2 => Version::HTTP_2,
            HttpVersion::Http3 => Version::HTTP_3,
            _ => Version::HTTP_11,
        };
        copy_headers(self.headers().iter(), &[], request.headers_mut());
        request
    }
}

/// Appends the fields of `from` that are valid `http` names and values and not in `reserved`.
fn copy_headers<'a, V: AsRef<[u8]> + 'a>(
    from: impl Iterator<Item = (&'a str, V)>,
    reserved: &[&str],
    to: &mut HeaderMap,
) {
    for (name, value) in from {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_ref()),
        ) else {
            continue;
        };
        if !reserved.contains(&name.as_str()) {
            to.append(name, value);
        }
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), AcceptError> {
    let value = HeaderValue::from_str(value)
        .map_err(|_| AcceptError::InvalidExtension(value.to_string()))?;
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// The response that accepts `request` with `accept`: for HTTP/1.1, `101 Switching Protocols`
/// with `Upgrade`, `Connection` and `Sec-WebSocket-Accept` (RFC 6455 §4.2.2); for an extended
/// CONNECT, `200 OK` with no key (RFC 8441 §5). Either carries the selected subprotocol and
/// extensions and the valid extra header fields. Fails, like
/// [`write_accept`](super::write_accept), when `accept` selects what the client did not offer.
pub fn accept_response(
    request: &Request,
    accept: &Accept,
) -> Result<http::Response<()>, AcceptError> {
    accept.check(request.info())?;
    let mut response = http::Response::new(());
    match request.version() {
        HttpVersion::Http2 | HttpVersion::Http3 => *response.status_mut() = StatusCode::OK,
        _ => {
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = response.headers_mut();
            insert(headers, "upgrade", "websocket")?;
            insert(headers, "connection", "Upgrade")?;
            insert(headers, "sec-websocket-accept", &accept_key(request.key()))?;
        }
    }
    let headers = response.headers_mut();
    if let Some(p) = &accept.subprotocol {
        insert(headers, "sec-websocket-protocol", p)?;
    }
    if !accept.extensions.is_empty() {
        insert(
            headers,
            "sec-websocket-extensions",
            &accept.extensions.join(", "),
        )?;
    }
    copy_headers(
        accept
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
        ACCEPT_RESERVED,
        headers,
    );
    Ok(response)
}

/// The response that refuses a handshake: [`Reject::effective_status`], the valid extra
/// header fields (plus `Connection: upgrade` beside an `Upgrade` field, RFC 9110 §7.8; HTTP/2
/// servers drop both) and the body.
#[must_use]
pub fn reject_response(reject: &Reject) -> http::Response<Bytes> {
    let mut response = http::Response::new(reject.body.clone());
    *response.status_mut() = StatusCode::from_u16(reject.effective_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    copy_headers(
        reject
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
        REJECT_RESERVED,
        headers,
    );
    if headers.contains_key(http::header::UPGRADE) {
        headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
    }
    response
}

impl From<Reject> for http::Response<Bytes> {
    fn from(reject: Reject) -> Self {
        reject_response(&reject)
    }
}

/// A request [`accept_parts`] accepted: the response to send, the request as validated and
/// the terms the connection opens with.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted {
    /// `101 Switching Protocols` for HTTP/1.1, `200 OK` for an extended CONNECT.
    pub response: http::Response<()>,
    /// The validated request (path, query, headers, offers).
    pub request: Request,
    /// The subprotocol and extensions agreed, for
    /// [`Connection::open_negotiated`](crate::Connection::open_negotiated).
    pub negotiated: Negotiated,
}

/// Decides on a request head in one pure call: validates it ([`Request::from_parts`]), runs
/// `policy`'s Origin and authentication checks, selects the policy's first subprotocol the
/// client offered and, with [`Config::deflate`], answers a permessage-deflate offer (RFC 7692).
/// The refusal is the response to send (its body says why, for a person testing by hand).
pub fn accept_parts(
    parts: &http::request::Parts,
    protocol: Option<&str>,
    policy: &ServerPolicy,
    config: &Config,
) -> Result<Accepted, Reject> {
    let request = Request::from_parts(parts, protocol)?;
    policy.check(&request)?;
    let accept = policy.accept_for(&request);
    accept_request(request, accept, config)
}

/// Finishes an acceptance decided by hand: `accept` plus, with [`Config::deflate`], the answer
/// to a permessage-deflate offer (unless `accept` lists one), as an [`Accepted`]. An
/// acceptance that selects what the client did not offer is refused with 500.
pub fn accept_request(
    request: Request,
    mut accept: Accept,
    config: &Config,
) -> Result<Accepted, Reject> {
    // The codec is built again, from the answer, when the connection opens.
    let _ = crate::deflate::server_codec(config, &request, &mut accept);
    let response = accept_response(&request, &accept)
        .map_err(|e| Reject::new(500).reason(alloc::format!("invalid acceptance: {e}")))?;
    let negotiated = Negotiated {
        subprotocol: accept.subprotocol,
        extensions: accept.extensions,
    };
    Ok(Accepted {
        response,
        request,
        negotiated,
    })
}

/// Why an [`http::Request`] cannot be a [`ClientRequest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FromHttpError {
    /// The URI is not a `ws://` or `wss://` URL (`http://` and `https://` are taken as such).
    #[error("invalid WebSocket URL: {0}")]
    Url(#[from] UrlError),
    /// A header field cannot be sent (an invalid subprotocol or extension offer, a value that
    /// is not UTF-8).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The method is not `GET`: an HTTP/1.1 opening request is a GET (RFC 6455 §4.1).
    #[error("a WebSocket opening request uses GET, not {0}")]
    Method(String),
}

/// Header fields the client handshake writes itself (from the URL and its nonce): copied from
/// an [`http::Request`] they would be sent twice.
const CLIENT_OWN: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "content-length",
    "transfer-encoding",
];

impl TryFrom<http::Request<()>> for ClientRequest {
    type Error = FromHttpError;

    /// The URI's `http`/`https` scheme reads as `ws`/`wss`. `Sec-WebSocket-Protocol` and
    /// `Sec-WebSocket-Extensions` become offers; `Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Key` and `Sec-WebSocket-Version` are left to the handshake, which
    /// writes its own; every other field is kept.
    fn try_from(request: http::Request<()>) -> Result<Self, FromHttpError> {
        if request.method() != Method::GET {
            return Err(FromHttpError::Method(request.method().to_string()));
        }
        let uri = request.uri().to_string();
        let uri = match request.uri().scheme_str() {
            Some("http") => alloc::format!("ws{}", &uri[4..]),
            Some("https") => alloc::format!("wss{}", &uri[5..]),
            _ => uri,
        };
        let mut out = ClientRequest::from_url(WsUrl::parse(&uri)?);
        for (name, value) in request.headers() {
            let text = value
                .to_str()
                .map_err(|_| HeaderError::InvalidValue(name.as_str().into()))?;
            match name.as_str() {
                "sec-websocket-protocol" => {
                    for p in list_elements(text) {
                        out = out.subprotocol(p)?;
                    }
                }
                "sec-websocket-extensions" => {
                    for e in list_elements(text) {
                        out = out.extension(e)?;
                    }
                }
                n if CLIENT_OWN.contains(&n) => {}
                n => out = out.header(n, text)?,
            }
        }
        Ok(out)
    }
}

impl From<Response> for http::Response<()> {
    /// The status and every header field that is valid for the `http` types.
    fn from(response: Response) -> Self {
        let mut out = http::Response::new(());
        *out.status_mut() =
            StatusCode::from_u16(response.status()).unwrap_or(StatusCode::SWITCHING_PROTOCOLS);
        copy_headers(response.headers().iter(), &[], out.headers_mut());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn h1() -> http::request::Builder {
        http::Request::get("/chat?room=1")
            .header("Host", "example.com")
            .header("Upgrade", "websocket")
            .header("Connection", "keep-alive, Upgrade")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    fn h2() -> http::request::Builder {
        http::Request::connect("https://example.com/chat")
            .version(Version::HTTP_2)
            .header("Sec-WebSocket-Version", "13")
    }

    fn parts(b: http::request::Builder) -> http::request::Parts {
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn http11_upgrade_is_accepted_with_101() {
        let parts = parts(h1().header("Sec-WebSocket-Protocol", "v1, v2"));
        let policy = ServerPolicy::new().subprotocol("v2");
        let accepted = accept_parts(&parts, None, &policy, &Config::default()).unwrap();
        let r = &accepted.response;
        assert_eq!(r.status(), 101);
        assert_eq!(r.headers()["upgrade"], "websocket");
        assert_eq!(r.headers()["connection"], "Upgrade");
        assert_eq!(
            r.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(r.headers()["sec-websocket-protocol"], "v2");
        assert_eq!(accepted.negotiated.subprotocol.as_deref(), Some("v2"));
        assert_eq!(accepted.request.path(), "/chat");
        assert_eq!(accepted.request.query(), Some("room=1"));
        assert_eq!(accepted.request.subprotocols(), ["v1", "v2"]);
    }

    #[test]
    fn extended_connect_is_accepted_with_200_and_no_key() {
        let parts = parts(h2().header("Sec-WebSocket-Protocol", "chat"));
        let policy = ServerPolicy::new().subprotocol("chat");
        let accepted =
            accept_parts(&parts, Some("websocket"), &policy, &Config::default()).unwrap();
        let r = &accepted.response;
        assert_eq!(r.status(), 200);
        assert!(!r.headers().contains_key("sec-websocket-accept"));
        assert!(!r.headers().contains_key("upgrade"));
        assert_eq!(r.headers()["sec-websocket-protocol"], "chat");
        assert_eq!(accepted.request.version(), HttpVersion::Http2);
        assert_eq!(accepted.request.method(), "CONNECT");
        assert_eq!(accepted.request.path(), "/chat");
    }

    #[test]
    fn refusals_carry_the_status_of_the_broken_rule() {
        let cfg = Config::default();
        let policy = ServerPolicy::new();
        let status = |p: &http::request::Parts, proto| {
            accept_parts(p, proto, &policy, &cfg)
                .map(|_| ())
                .map_err(|r| reject_response(&r))
                .unwrap_err()
        };
        // No key: 400, with the reason as the body.
        let mut p = parts(h1());
        p.headers.remove("sec-websocket-key");
        let r = status(&p, None);
        assert_eq!(r.status(), 400);
        assert_eq!(r.body().as_ref(), b"missing Sec-WebSocket-Key header\n");
        // No Upgrade: 426 with Upgrade and Connection: upgrade.
        let mut p = parts(h1());
        p.headers.remove("upgrade");
        let r = status(&p, None);
        assert_eq!(r.status(), 426);
        assert_eq!(r.headers()["upgrade"], "websocket");
        assert_eq!(r.headers()["connection"], "upgrade");
        // POST: 405 with Allow.
        let mut p = parts(h1());
        p.method = Method::POST;
        assert_eq!(status(&p, None).headers()["allow"], "GET");
        // HTTP/2 without :protocol, or a plain GET over HTTP/2: 400 / 405.
        assert_eq!(status(&parts(h2()), None).status(), 400);
        let mut p = parts(h2());
        p.method = Method::GET;
        assert_eq!(status(&p, Some("websocket")).status(), 405);
        // HTTP/2 with a wrong version: 400 (not 426).
        let mut p = parts(h2());
        p.headers
            .insert("sec-websocket-version", HeaderValue::from_static("8"));
        let r = status(&p, Some("websocket"));
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["sec-websocket-version"], "13");
        // The policy: a refused origin is 403.
        let policy = ServerPolicy::new()
            .allow_origin("https://good.example")
            .unwrap();
        let p = parts(h1().header("Origin", "https://evil.example"));
        let r = accept_parts(&p, None, &policy, &cfg).unwrap_err();
        assert_eq!(reject_response(&r).status(), 403);
    }

    #[test]
    fn hand_made_acceptance_is_checked_and_headers_filtered() {
        let request = Request::from_parts(&parts(h1()), None).unwrap();
        let bad = Accept::new().subprotocol("never-offered");
        assert_eq!(
            accept_response(&request, &bad).unwrap_err(),
            AcceptError::UnofferedSubprotocol("never-offered".into())
        );
        let accept = Accept::new()
            .header("Set-Cookie", "a=1")
            .header("Sec-WebSocket-Accept", "forged")
            .header("X-Bad", "a\r\nb");
        let r = accept_response(&request, &accept).unwrap();
        assert_eq!(r.headers()["set-cookie"], "a=1");
        assert_eq!(
            r.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(!r.headers().contains_key("x-bad"));
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn deflate_is_answered_from_the_config() {
        let cfg = Config {
            deflate: Some(Default::default()),
            ..Config::default()
        };
        let p = parts(h1().header("Sec-WebSocket-Extensions", "permessage-deflate"));
        let accepted = accept_parts(&p, None, &ServerPolicy::new(), &cfg).unwrap();
        let answer = accepted.response.headers()["sec-websocket-extensions"]
            .to_str()
            .unwrap();
        assert!(answer.starts_with("permessage-deflate"), "{answer}");
        assert_eq!(accepted.negotiated.extensions, [answer]);
    }

    #[test]
    fn client_request_from_http() {
        let request = http::Request::get("https://example.com/feed?x=1")
            .header("Sec-WebSocket-Protocol", "v2, v1")
            .header("Sec-WebSocket-Extensions", "permessage-deflate")
            .header("Authorization", "Bearer t")
            .header("Host", "ignored.example")
            .header("Sec-WebSocket-Key", "ignored")
            .body(())
            .unwrap();
        let c = ClientRequest::try_from(request).unwrap();
        assert!(c.url().is_secure());
        assert_eq!(c.url().host(), "example.com");
        assert_eq!(c.url().path_and_query(), "/feed?x=1");
        assert_eq!(c.subprotocols(), ["v2", "v1"]);
        assert_eq!(c.extensions(), ["permessage-deflate"]);
        assert_eq!(
            c.headers(),
            [("authorization".to_string(), "Bearer t".to_string())]
        );
        let post = http::Request::post("ws://example.com/").body(()).unwrap();
        assert!(matches!(
            ClientRequest::try_from(post),
            Err(FromHttpError::Method(_))
        ));
        let ftp = http::Request::get("ftp://example.com/").body(()).unwrap();
        assert!(matches!(
            ClientRequest::try_from(ftp),
            Err(FromHttpError::Url(_))
        ));
    }

    #[test]
    fn response_and_request_into_http() {
        let response = Response::new(
            101,
            Headers::from_pairs([("Upgrade", &b"websocket"[..]), ("Set-Cookie", b"a=1")]),
            Negotiated::default(),
        );
        let r: http::Response<()> = response.into();
        assert_eq!(r.status(), 101);
        assert_eq!(r.headers()["set-cookie"], "a=1");
        let request = Request::from_parts(&parts(h1()), None).unwrap();
        let back = request.to_http();
        assert_eq!(back.method(), Method::GET);
        assert_eq!(back.uri(), "/chat?room=1");
        let names: Vec<&str> = back.headers().keys().map(|k| k.as_str()).collect();
        assert!(names.contains(&"sec-websocket-key"), "{names:?}");
    }
}
