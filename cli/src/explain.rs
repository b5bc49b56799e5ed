//! Plain-words meanings of what servers answer: HTTP statuses that refuse an upgrade, close
//! codes, and the signs of a proxy's own page.

use std::time::Duration;

use tether::CloseCode;
use tether::reconnect::parse_retry_after;

use crate::net::Head;
use crate::report::Verdict;

/// The header fields worth showing from a handshake answer, in this order.
pub const HEADERS_THAT_MATTER: &[&str] = &[
    "Server",
    "Via",
    "Location",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Retry-After",
    "Content-Type",
    "Content-Length",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Version",
    "Allow",
    "X-Squid-Error",
];

/// The verdict for a final status other than 101: a deliberate refusal (`rejected`) or an
/// answer from something that is not a WebSocket endpoint (`not-websocket`).
pub fn status_verdict(status: u16) -> Verdict {
    match status {
        400 | 401 | 403 | 407 | 408 | 426 | 429 | 500..=599 => Verdict::Rejected,
        _ => Verdict::NotWebsocket,
    }
}

/// What a refusing or non-upgrading status means, and what to do (one or two lines).
/// `origin` is the Origin the request sent, if any.
pub fn status_advice(head: &Head, origin: Option<&str>) -> Vec<String> {
    let status = head.status;
    let retry = head.get("retry-after").map(retry_after_words);
    let mut advice = match status {
        200..=299 => vec![
            "A plain HTTP server answered: nothing upgraded to WebSocket at this URL. Check the \
             path, the port, and that the WebSocket endpoint is routed (a reverse proxy must \
             pass Upgrade and Connection)."
                .to_string(),
        ],
        300..=399 => {
            let target = head
                .get("location")
                .map(|l| format!(" Try {}.", ws_location(l)))
                .unwrap_or_default();
            vec![format!(
                "The server redirects ({status}); WebSocket clients do not follow redirects.{target}"
            )]
        }
        400 => vec![
            "400 Bad Request: the server refused the upgrade request itself; compare the \
             headers it expects (Origin, subprotocol, auth) with this request."
                .into(),
        ],
        401 => vec![format!(
            "401 Unauthorized: the endpoint needs credentials{}; pass them with \
             --header 'Authorization: ...' or a cookie.",
            head.get("www-authenticate")
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        )],
        403 => vec![match origin {
            Some(origin) => format!(
                "403 Forbidden: the server refuses this client: most often the Origin \
                 ({origin}) is not on its list, or credentials are missing or wrong."
            ),
            None => "403 Forbidden: the server refuses this client, most often for its Origin \
                     (a browser sends one: try --origin https://your.site) or missing or wrong \
                     credentials."
                .into(),
        }],
        404 | 410 => vec![
            "Nothing at this path: check the URL's path against the server's WebSocket route."
                .into(),
        ],
        405 => vec!["405: the endpoint does not take GET here: is this the WebSocket path?".into()],
        407 => vec![
            "407: a proxy between here and the server wants credentials (Proxy-Authenticate)."
                .into(),
        ],
        408 => vec!["408: the server gave up waiting for the request; retry.".into()],
        426 => vec![format!(
            "426 Upgrade Required: the server wants another protocol or version{}.",
            head.get("sec-websocket-version")
                .or(head.get("upgrade"))
                .map(|v| format!(" ({v})"))
                .unwrap_or_default()
        )],
        429 => {
            vec!["429 Too Many Requests: the server is rate limiting this client; back off.".into()]
        }
        502 | 504 => vec![format!(
            "{status}: a gateway or reverse proxy could not reach the WebSocket backend; check \
             the backend and the proxy's upstream settings."
        )],
        503 => vec![
            "503 Service Unavailable: the server is overloaded, at its connection limit or in \
             maintenance; retry later."
                .into(),
        ],
        500..=599 => vec![format!(
            "{status}: the server failed while handling the upgrade; look at its logs."
        )],
        _ => vec![format!(
            "The server answered {status} instead of 101 Switching Protocols: check that this \
             URL is a WebSocket endpoint."
        )],
    };
    if let Some(retry) = retry {
        advice.push(format!("The server asks to retry {retry} (Retry-After)."));
    }
    advice
}

/// A `Retry-After` value in words.
fn retry_after_words(value: &str) -> String {
    match parse_retry_after(value) {
        Some(d) => format!("in {}", seconds(d)),
        None => format!("after {}", value.trim()),
    }
}

fn seconds(d: Duration) -> String {
    match d.as_secs() {
        1 => "1 second".into(),
        s => format!("{s} seconds"),
    }
}

/// A redirect target as a WebSocket URL: `https://` becomes `wss://`, `http://` `ws://`.
fn ws_location(location: &str) -> String {
    if let Some(rest) = location.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = location.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        location.to_string()
    }
}

/// Why the answer looks like it came from a proxy rather than the server, if it does.
pub fn proxy_signs(head: &Head) -> Option<String> {
    if head.status == 407 {
        return Some("407 Proxy Authentication Required".into());
    }
    for name in ["Via", "Proxy-Authenticate", "X-Squid-Error", "X-Cache"] {
        if let Some(value) = head.get(name) {
            return Some(format!("{name}: {value}"));
        }
    }
    let server = head.get("server").unwrap_or_default().to_ascii_lowercase();
    ["squid", "proxy", "zscaler", "bluecoat", "fortigate"]
        .iter()
        .any(|p| server.contains(p))
        .then(|| format!("Server: {}", head.get("server").unwrap_or_default()))
}

/// What a close code means (RFC 6455 §7.4.1, and the IANA registry).
pub fn close_code_meaning(code: CloseCode) -> &'static str {
    match code.0 {
        1000 => "normal closure",
        1001 => "going away (server shutting down or page left)",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status code given",
        1006 => "connection lost without a Close frame",
        1007 => "invalid payload data",
        1008 => "policy violation (often authentication or origin)",
        1009 => "message too big",
        1010 => "a required extension was not negotiated",
        1011 => "internal server error",
        1012 => "service restart",
        1013 => "try again later (overloaded)",
        1014 => "bad gateway",
        1015 => "TLS handshake failure",
        3000..=3999 => "registered by a library or framework",
        4000..=4999 => "application-defined",
        _ => "not a registered code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, headers: &[(&str, &str)]) -> Head {
        Head {
            version: 1,
            status,
            reason: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(status_verdict(200), Verdict::NotWebsocket);
        assert_eq!(status_verdict(404), Verdict::NotWebsocket);
        assert_eq!(status_verdict(301), Verdict::NotWebsocket);
        assert_eq!(status_verdict(403), Verdict::Rejected);
        assert_eq!(status_verdict(503), Verdict::Rejected);
        let advice = status_advice(&head(429, &[("Retry-After", "30")]), None);
        assert!(advice[1].contains("in 30 seconds"), "{advice:?}");
        let advice = status_advice(&head(301, &[("Location", "https://x/ws")]), None);
        assert!(advice[0].contains("wss://x/ws"), "{advice:?}");
    }

    #[test]
    fn proxies() {
        assert!(proxy_signs(&head(403, &[("Via", "1.1 squid")])).is_some());
        assert!(proxy_signs(&head(403, &[("Server", "nginx")])).is_none());
    }
}
