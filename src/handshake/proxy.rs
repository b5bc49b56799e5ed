//! HTTP CONNECT tunnels (RFC 9110 §9.3.6), sans-IO: the request a client writes to an HTTP
//! proxy, and the proxy's answer parsed with bounds. The driver opens the TCP connection to the
//! proxy, writes [`connect_request`], reads until [`parse_connect_response`] has the head, and
//! runs the WebSocket handshake (and TLS for `wss://`) through the tunnel; bytes that followed
//! the head belong to the tunnel.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use base64::Engine as _;

/// The default bound on a proxy's response head.
pub const MAX_PROXY_RESPONSE_HEAD: usize = 8 * 1024;

/// Headers read from a proxy's answer at most; more is a malformed answer.
const MAX_HEADERS: usize = 32;

/// Why a CONNECT through a proxy did not give a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy answered with a status other than 2xx: 403 when its rules forbid the target,
    /// 407 when it wants credentials (`Proxy-Authorization`), 502 when it could not reach the
    /// target...
    #[error("refused with {status} {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The reason phrase, as sent.
        reason: String,
    },
    /// The answer is not an HTTP/1.x response head.
    #[error("not an HTTP response")]
    InvalidResponse,
    /// The response head did not end within `limit` bytes.
    #[error("response head over {limit} bytes")]
    TooLarge {
        /// The bound.
        limit: usize,
    },
    /// The proxy closed the connection before the end of its response head.
    #[error("closed the connection before answering")]
    Closed,
}

impl ProxyError {
    /// The proxy's HTTP status, when it answered with one.
    #[must_use]
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ProxyError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The `CONNECT host:port HTTP/1.1` request for a tunnel to `host` and `port` (`host` as in a
/// URL: an IPv6 address in brackets), with `Proxy-Authorization` when `authorization` is given
/// (a whole header value, e.g. from [`basic_authorization`]).
#[must_use]
pub fn connect_request(host: &str, port: u16, authorization: Option<&str>) -> Vec<u8> {
    let mut out = String::with_capacity(96);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    );
    if let Some(value) = authorization {
        let _ = write!(out, "Proxy-Authorization: {value}\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The `Basic` credentials of RFC 7617 for `Proxy-Authorization`.
#[must_use]
pub fn basic_authorization(user: &str, password: &str) -> String {
    let mut plain = String::with_capacity(user.len() + password.len() + 1);
    plain.push_str(user);
    plain.push(':');
    plain.push_str(password);
    let mut value = String::from("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(plain.as_bytes(), &mut value);
    value
}

/// Parses the proxy's answer to CONNECT from the start of `input`.
///
/// `Ok(None)`: the head is incomplete (read more, unless `input` already holds `limit` bytes,
/// which is [`ProxyError::TooLarge`]). `Ok(Some(n))`: a 2xx answer whose head is the first
/// `n` bytes; what follows is the tunnel's. A 1xx interim answer is skipped. Any other status
/// is [`ProxyError::Refused`].
pub fn parse_connect_response(input: &[u8], limit: usize) -> Result<Option<usize>, ProxyError> {
    let mut start = 0;
    loop {
        let rest = &input[start..];
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(rest) {
            Ok(httparse::Status::Complete(n)) => {
                if start + n > limit {
                    return Err(ProxyError::TooLarge { limit });
                }
                let status = response.code.unwrap_or(0);
                match status {
                    200..=299 => return Ok(Some(start + n)),
                    100..=199 => start += n,
                    _ => {
                        return Err(ProxyError::Refused {
                            status,
                            reason: String::from(response.reason.unwrap_or("")),
                        });
                    }
                }
            }
            Ok(httparse::Status::Partial) if input.len() >= limit => {
                return Err(ProxyError::TooLarge { limit });
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            // Headers are not needed, only where the head ends: more of them than we look at
            // is a head still arriving, or over the bound, or (if it ended) not one we take.
            Err(httparse::Error::TooManyHeaders) if !has_head_end(rest) => {
                return if input.len() >= limit {
                    Err(ProxyError::TooLarge { limit })
                } else {
                    Ok(None)
                };
            }
            Err(_) => return Err(ProxyError::InvalidResponse),
        }
    }
}

/// Whether `input` holds the blank line that ends an HTTP head.
fn has_head_end(input: &[u8]) -> bool {
    input.windows(2).any(|w| w == b"\n\n") || input.windows(4).any(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_carries_target_and_credentials() {
        let auth = basic_authorization("Aladdin", "open sesame");
        assert_eq!(auth, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let req = connect_request("[::1]", 443, Some(&auth));
        assert_eq!(
            req,
            b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\
              Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
        assert_eq!(
            connect_request("example.com", 80, None),
            b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n"
        );
    }

    #[test]
    fn success_head_leaves_the_tunnel_bytes() {
        let input = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\nHTTP/1.1 101";
        assert_eq!(
            parse_connect_response(input, 1024),
            Ok(Some(input.len() - 12))
        );
        // Any split of the head is incomplete, never an error.
        for cut in 0..input.len() - 12 {
            assert_eq!(
                parse_connect_response(&input[..cut], 1024),
                Ok(None),
                "{cut}"
            );
        }
    }

    #[test]
    fn interim_answers_are_skipped() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(parse_connect_response(input, 1024), Ok(Some(input.len())));
    }

    #[test]
    fn refusals_bad_answers_and_bounds() {
        assert_eq!(
            parse_connect_response(b"HTTP/1.1 403 Forbidden\r\n\r\n", 1024),
            Err(ProxyError::Refused {
                status: 403,
                reason: "Forbidden".into()
            })
        );
        let e = parse_connect_response(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", 1024)
            .unwrap_err();
        assert_eq!(e.http_status(), Some(407));
        assert_eq!(
            parse_connect_response(b"SSH-2.0-OpenSSH\r\n\r\n", 1024),
            Err(ProxyError::InvalidResponse)
        );
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(2000, b'a');
        assert_eq!(
            parse_connect_response(&long, 1024),
            Err(ProxyError::TooLarge { limit: 1024 })
        );
        long.extend_from_slice(b"\r\n\r\n");
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        many.extend(b"A: b\r\n".repeat(100));
        assert_eq!(parse_connect_response(&many, 1024), Ok(None));
        many.extend(b"A: b\r\n".repeat(200));
        assert_eq!(
            parse_connect_response(&many, 1024),
            Err(ProxyError::TooLarge { limit: 1024 })
        );
        assert_eq!(
            parse_connect_response(&long, 1024),
            Err(ProxyError::TooLarge { limit: 1024 })
        );
    }
}
