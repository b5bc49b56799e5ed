//! The network below the WebSocket: name resolution, TCP connects classified by how they
//! fail, an HTTP proxy's CONNECT tunnel, and reading an HTTP head for the report.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// The most bytes read for a proxy's response head.
const MAX_HEAD: usize = 16 * 1024;

/// How one TCP connect attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The host answered with a reset: nothing listens on the port (or a firewall rejects).
    Refused,
    /// No answer within the timeout: a firewall drops the packets, or the host is down.
    TimedOut,
    /// The network or host cannot be reached, or another error, as the system said it.
    Unreachable(String),
}

/// Resolves `host` to every address, for `port`. An IP literal needs no lookup.
pub async fn resolve(host: &str, port: u16, limit: Duration) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs = timeout(limit, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the resolver did not answer"))??;
    let mut out: Vec<SocketAddr> = Vec::new();
    for addr in addrs {
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no addresses",
        ));
    }
    Ok(out)
}

/// One TCP connect to `addr` within `limit`, with `TCP_NODELAY`.
pub async fn connect(addr: SocketAddr, limit: Duration) -> Result<TcpStream, ConnectFailure> {
    match timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => Err(ConnectFailure::TimedOut),
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
        Ok(Err(e)) => Err(match e.kind() {
            io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
            io::ErrorKind::TimedOut => ConnectFailure::TimedOut,
            _ => ConnectFailure::Unreachable(e.to_string()),
        }),
    }
}

/// An HTTP response head, parsed for the report.
#[derive(Clone, Debug, Default)]
pub struct Head {
    /// `HTTP/1.x`.
    pub version: u8,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields, in order, values as (lossy) text.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status line as received: `HTTP/1.1 200 OK`.
    pub fn status_line(&self) -> String {
        format!("HTTP/1.{} {} {}", self.version, self.status, self.reason)
    }
}

/// Parses a complete HTTP response head at the start of `bytes`; `None` while it is
/// incomplete or if it is not HTTP.
pub fn parse_head(bytes: &[u8]) -> Option<Head> {
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut slots);
    if !matches!(response.parse(bytes), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    Some(Head {
        version: response.version.unwrap_or(1),
        status: response.code.unwrap_or_default(),
        reason: response.reason.unwrap_or_default().to_owned(),
        headers: response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    })
}

/// Whether `bytes` start like an HTTP response.
pub fn looks_like_http(bytes: &[u8]) -> bool {
    bytes.starts_with(b"HTTP/")
}

/// Whether `bytes` start like a TLS record (a handshake or an alert).
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, ..])
}

/// What a proxy answered to CONNECT when it did not open the tunnel.
#[derive(Debug)]
pub enum ProxyFailure {
    /// It answered with this head and the start of its body.
    Refused(Head, Vec<u8>),
    /// Its answer is not HTTP; here are its first bytes.
    NotHttp(Vec<u8>),
    /// It closed the connection, or reading failed.
    Closed(String),
    /// It did not answer in time.
    TimedOut,
}

/// Asks the HTTP proxy on `tcp` to open a tunnel to `host:port` (RFC 9110 §9.3.6). On success
/// the stream carries bytes to and from the target.
pub async fn proxy_connect(
    tcp: &mut TcpStream,
    authority: &str,
    limit: Duration,
) -> Result<Head, ProxyFailure> {
    let request = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: tether-doctor\r\n\r\n"
    );
    let deadline = Instant::now() + limit;
    let run = async {
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| ProxyFailure::Closed(e.to_string()))?;
        // Read byte by byte up to the end of the head: what follows belongs to the tunnel.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
            if head.len() >= MAX_HEAD {
                return Err(ProxyFailure::NotHttp(head));
            }
            match tcp.read(&mut byte).await {
                Ok(0) if head.is_empty() => {
                    return Err(ProxyFailure::Closed(
                        "the proxy closed the connection without answering".into(),
                    ));
                }
                Ok(0) => break,
                Ok(_) => head.push(byte[0]),
                Err(e) => return Err(ProxyFailure::Closed(e.to_string())),
            }
            if head.len() == 5 && !looks_like_http(&head) {
                return Err(ProxyFailure::NotHttp(head));
            }
        }
        let Some(parsed) = parse_head(&head) else {
            return Err(ProxyFailure::NotHttp(head));
        };
        if (200..300).contains(&parsed.status) {
            return Ok(parsed);
        }
        // Its own page: keep the start of the body for the report.
        let want = parsed
            .get("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(512)
            .min(512);
        let mut body = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match tcp.read(&mut body[got..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        body.truncate(got);
        Err(ProxyFailure::Refused(parsed, body))
    };
    match tokio::time::timeout_at(deadline, run).await {
        Ok(result) => result,
        Err(_) => Err(ProxyFailure::TimedOut),
    }
}

/// A `--proxy` URL: `http://host:port` (port 80 when absent).
pub fn parse_proxy(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--proxy {url:?}: expected http://HOST:PORT"))?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return Err(format!("--proxy {url:?}: expected http://HOST:PORT"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("--proxy {url:?}: unclosed IPv6 literal"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("--proxy {url:?}: invalid port {p:?}"))?,
        None => 80,
    };
    if host.is_empty() {
        return Err(format!("--proxy {url:?}: no host"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        assert_eq!(
            parse_proxy("http://proxy.local:3128/"),
            Ok(("proxy.local".into(), 3128))
        );
        assert_eq!(parse_proxy("http://p"), Ok(("p".into(), 80)));
        assert_eq!(parse_proxy("http://[::1]:8080"), Ok(("::1".into(), 8080)));
        assert!(parse_proxy("https://p:1").is_err());
        assert!(parse_proxy("http://p:0").is_err());
        assert!(parse_proxy("http://u@p:1").is_err());
    }

    #[test]
    fn heads() {
        let head = parse_head(b"HTTP/1.1 403 Forbidden\r\nVia: 1.1 squid\r\n\r\nbody").unwrap();
        assert_eq!(head.status, 403);
        assert_eq!(head.get("via"), Some("1.1 squid"));
        assert_eq!(head.status_line(), "HTTP/1.1 403 Forbidden");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").is_none());
        assert!(looks_like_tls(&[0x15, 0x03, 0x01]));
    }
}
