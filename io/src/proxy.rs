//! HTTP CONNECT proxies for clients: which proxy a URL goes through ([`Proxy`], from settings
//! or from the environment as curl reads it), and the tunnel through it ([`tunnel`]).
//!
//! The environment is opt-in ([`Proxy::from_env`]), not read by default: a library that
//! quietly sent a program's connections through whatever `HTTP_PROXY` a shell or container
//! happened to export would surprise its users, and worst of all on loopback and inside
//! private networks, where a proxy usually cannot reach the target at all. An application
//! that wants curl's behaviour says so in one line.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::IpAddr;
use std::task::{Context, Poll};

use tether::handshake::WsUrl;
use tether::handshake::proxy::{
    MAX_PROXY_RESPONSE_HEAD, ProxyError, basic_authorization, connect_request,
    parse_connect_response,
};

use crate::{Error, Transport};

/// One HTTP proxy: where it listens and the credentials it wants.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyServer {
    host: String,
    port: u16,
    /// The whole `Proxy-Authorization` value.
    authorization: Option<String>,
}

impl ProxyServer {
    /// Parses `http://[user:password@]host[:port][/]` (the port defaults to 80; the scheme
    /// may be left out, as in `HTTP_PROXY=proxy:3128`). User and password may be
    /// percent-encoded; they are sent as `Basic` credentials (RFC 7617) in
    /// `Proxy-Authorization`.
    pub fn parse(url: &str) -> Result<ProxyServer, InvalidProxy> {
        let bad = |why: &'static str| InvalidProxy {
            url: url.to_owned(),
            why,
        };
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => return Err(bad("only http:// proxies are supported")),
            None => url,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => {
                (h, p.parse::<u16>().map_err(|_| bad("invalid port"))?)
            }
            _ => (hostport, 80),
        };
        if host.is_empty() || host.contains([' ', '@']) {
            return Err(bad("invalid host"));
        }
        let authorization = match userinfo {
            None => None,
            Some(info) => {
                let (user, pass) = info.split_once(':').unwrap_or((info, ""));
                let user = percent_decode(user).ok_or_else(|| bad("invalid user"))?;
                let pass = percent_decode(pass).ok_or_else(|| bad("invalid password"))?;
                Some(basic_authorization(&user, &pass))
            }
        };
        Ok(ProxyServer {
            host: host.to_owned(),
            port,
            authorization,
        })
    }

    /// The proxy's host (an IPv6 address in brackets).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether credentials are sent.
    #[must_use]
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }
}

/// `host:port`; credentials are never shown.
impl fmt::Display for ProxyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.authorization.is_some())
            .finish()
    }
}

/// A proxy URL that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid proxy URL {url:?}: {why}")]
pub struct InvalidProxy {
    url: String,
    why: &'static str,
}

/// Which proxy a client connects through: one for `ws://`, one for `wss://`, and the hosts
/// reached directly (`NO_PROXY`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Proxy {
    /// The proxy for `ws://` URLs.
    pub ws: Option<ProxyServer>,
    /// The proxy for `wss://` URLs.
    pub wss: Option<ProxyServer>,
    /// Targets reached without a proxy.
    pub no_proxy: NoProxy,
}

impl Proxy {
    /// Every URL through the proxy at `url` (see [`ProxyServer::parse`]).
    pub fn all(url: &str) -> Result<Proxy, InvalidProxy> {
        let server = ProxyServer::parse(url)?;
        Ok(Proxy {
            ws: Some(server.clone()),
            wss: Some(server),
            no_proxy: NoProxy::default(),
        })
    }

    /// The proxies of the environment, as curl-like clients read them: `HTTPS_PROXY` (or
    /// `https_proxy`) for `wss://`, `HTTP_PROXY` (or `http_proxy`) for `ws://`, `ALL_PROXY`
    /// (or `all_proxy`) for either when its own is unset, and `NO_PROXY` (or `no_proxy`).
    /// Empty and unusable values are ignored. Loopback targets are always reached
    /// directly. Read once, when called.
    #[must_use]
    pub fn from_env() -> Proxy {
        Proxy::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Proxy::from_env) over any source of variables (for tests and for
    /// configuration files that use the same names).
    #[must_use]
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Proxy {
        let get = |upper: &str, lower: &str| {
            var(lower)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| var(upper).filter(|v| !v.trim().is_empty()))
        };
        let parse = |v: Option<String>| v.and_then(|v| ProxyServer::parse(v.trim()).ok());
        let all = parse(get("ALL_PROXY", "all_proxy"));
        let mut no_proxy = NoProxy::parse(&get("NO_PROXY", "no_proxy").unwrap_or_default());
        no_proxy.loopback = true;
        Proxy {
            ws: parse(get("HTTP_PROXY", "http_proxy")).or_else(|| all.clone()),
            wss: parse(get("HTTPS_PROXY", "https_proxy")).or(all),
            no_proxy,
        }
    }

    /// Adds `NO_PROXY`-style exceptions (see [`NoProxy::parse`]).
    #[must_use]
    pub fn no_proxy(mut self, list: &str) -> Proxy {
        let more = NoProxy::parse(list);
        self.no_proxy.all |= more.all;
        self.no_proxy.rules.extend(more.rules);
        self
    }

    /// The proxy `url` goes through, if any.
    #[must_use]
    pub fn for_url(&self, url: &WsUrl) -> Option<&ProxyServer> {
        let server = if url.is_secure() {
            self.wss.as_ref()
        } else {
            self.ws.as_ref()
        }?;
        (!self.no_proxy.matches(url.host(), url.port())).then_some(server)
    }
}

/// Targets reached without a proxy: curl's `NO_PROXY` rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    /// `*`: no target uses the proxy.
    all: bool,
    /// Loopback targets (`localhost`, 127.0.0.0/8, `::1`) are direct.
    loopback: bool,
    rules: Vec<NoProxyRule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct NoProxyRule {
    /// A lowercase host name or domain suffix (without a leading dot), or an IP address.
    host: String,
    port: Option<u16>,
}

impl NoProxy {
    /// Parses a comma-separated list: `*` (every host), host names (matching the host and
    /// its subdomains: `example.com` and `.example.com` both match `a.example.com`), IP
    /// addresses (IPv6 with or without brackets), each optionally with `:port`. Case does
    /// not matter; spaces around entries are ignored.
    #[must_use]
    pub fn parse(list: &str) -> NoProxy {
        let mut no = NoProxy::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                no.all = true;
                continue;
            }
            let (host, port) = split_host_port(entry);
            let host = host.trim_start_matches("*.").trim_start_matches('.');
            if !host.is_empty() {
                no.rules.push(NoProxyRule {
                    host: host.to_ascii_lowercase(),
                    port,
                });
            }
        }
        no
    }

    /// Whether a target at `host` (as in a URL) and `port` is reached directly.
    #[must_use]
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_matches(['[', ']']).trim_end_matches('.');
        let host = host.to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        if self.loopback && (host == "localhost" || ip.is_some_and(|ip| ip.is_loopback())) {
            return true;
        }
        self.rules.iter().any(|rule| {
            if rule.port.is_some_and(|p| p != port) {
                return false;
            }
            match (ip, rule.host.parse::<IpAddr>()) {
                (Some(ip), Ok(rule_ip)) => ip == rule_ip,
                (Some(_), Err(_)) | (None, Ok(_)) => false,
                (None, Err(_)) => {
                    host == rule.host
                        || host
                            .strip_suffix(rule.host.as_str())
                            .is_some_and(|prefix| prefix.ends_with('.'))
                }
            }
        })
    }
}

/// `host:port`, `[v6]:port`, a bare IPv6 address or a host alone.
fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    if entry.parse::<IpAddr>().is_ok() {
        return (entry, None);
    }
    match entry.rsplit_once(':') {
        Some((h, p)) => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        None => (entry, None),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Asks the proxy at the other end of `stream` for a tunnel to `host` and `port` (HTTP
/// CONNECT, with `server`'s credentials) and returns the tunnel: a transport that yields the
/// bytes the proxy sent right behind its answer first. Unbounded in time: the caller bounds
/// it (the client does, with `connect_timeout`). A refusal is [`Error::Proxy`] naming the
/// proxy, the target and the status.
pub async fn tunnel<T: Transport>(
    mut stream: T,
    server: &ProxyServer,
    host: &str,
    port: u16,
) -> Result<Tunnel<T>, Error> {
    let fail = |error| {
        Error::Proxy(Box::new(crate::error::ProxyFailure::new(
            server.to_string(),
            format!("{host}:{port}"),
            error,
        )))
    };
    let io_fail = |source| Error::Connect {
        addr: server.to_string(),
        source,
    };
    let request = connect_request(host, port, server.authorization.as_deref());
    let mut written = 0;
    while written < request.len() {
        let n = std::future::poll_fn(|cx| stream.poll_write(cx, &request[written..]))
            .await
            .map_err(io_fail)?;
        if n == 0 {
            return Err(io_fail(io::ErrorKind::WriteZero.into()));
        }
        written += n;
    }
    std::future::poll_fn(|cx| stream.poll_flush(cx))
        .await
        .map_err(io_fail)?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        // Never read past the bound: the answer is refused there anyway.
        let room = (MAX_PROXY_RESPONSE_HEAD + 1 - head.len()).min(buf.len());
        let n = std::future::poll_fn(|cx| stream.poll_read(cx, &mut buf[..room]))
            .await
            .map_err(io_fail)?;
        if n == 0 {
            return Err(fail(ProxyError::Closed));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = parse_connect_response(&head, MAX_PROXY_RESPONSE_HEAD).map_err(fail)? {
            head.drain(..end);
            let leftover = (!head.is_empty()).then(|| Box::new(Leftover { bytes: head, at: 0 }));
            return Ok(Tunnel {
                io: stream,
                leftover,
            });
        }
    }
}

/// A transport through a proxy's tunnel: the bytes that came with the proxy's answer, then
/// the stream.
#[derive(Debug)]
pub struct Tunnel<T> {
    io: T,
    leftover: Option<Box<Leftover>>,
}

#[derive(Debug)]
struct Leftover {
    bytes: Vec<u8>,
    at: usize,
}

impl<T> Tunnel<T> {
    /// A transport with nothing read ahead (no proxy).
    pub fn direct(io: T) -> Tunnel<T> {
        Tunnel { io, leftover: None }
    }

    /// The transport underneath.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: Transport> Transport for Tunnel<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if let Some(left) = self.leftover.as_deref_mut() {
            let rest = &left.bytes[left.at..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            left.at += n;
            if left.at == left.bytes.len() {
                self.leftover = None;
            }
            return Poll::Ready(Ok(n));
        }
        self.io.poll_read(cx, buf)
    }

    fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.leftover.is_some() {
            return Poll::Ready(Ok(()));
        }
        self.io.poll_read_ready(cx)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_flush(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_shutdown(cx)
    }

    fn abort(&mut self) {
        self.io.abort();
    }

    fn ends_when_dropped(&self) -> bool {
        self.io.ends_when_dropped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> WsUrl {
        WsUrl::parse(s).unwrap()
    }

    #[test]
    fn proxy_urls() {
        let p = ProxyServer::parse("http://user:p%40ss@proxy.local:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.local", 3128));
        // base64("user:p@ss")
        assert_eq!(p.authorization.as_deref(), Some("Basic dXNlcjpwQHNz"));
        assert_eq!(p.to_string(), "proxy.local:3128");
        assert!(!format!("{p:?}").contains("dXNl"));
        let p = ProxyServer::parse("[::1]:8080").unwrap();
        assert_eq!((p.host(), p.port()), ("[::1]", 8080));
        assert_eq!(ProxyServer::parse("http://proxy").unwrap().port(), 80);
        assert!(ProxyServer::parse("socks5://proxy:1080").is_err());
        assert!(ProxyServer::parse("http://proxy:99999").is_err());
        assert!(ProxyServer::parse("http://proxy:80/path").is_err());
        assert!(ProxyServer::parse("http://:80").is_err());
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> Proxy {
        Proxy::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn environment_selects_by_scheme() {
        let p = env(&[
            ("HTTP_PROXY", "http://plain:1"),
            ("https_proxy", "http://secure:2"),
            ("HTTPS_PROXY", "http://ignored-upper:3"),
        ]);
        assert_eq!(
            p.for_url(&url("ws://example.com/")).unwrap().host(),
            "plain"
        );
        assert_eq!(
            p.for_url(&url("wss://example.com/")).unwrap().host(),
            "secure"
        );
        let p = env(&[("ALL_PROXY", "fallback:9"), ("HTTP_PROXY", "plain:1")]);
        assert_eq!(p.for_url(&url("ws://a.b/")).unwrap().host(), "plain");
        assert_eq!(p.for_url(&url("wss://a.b/")).unwrap().host(), "fallback");
        let p = env(&[("HTTP_PROXY", "  "), ("HTTPS_PROXY", "ftp://x")]);
        assert_eq!(p.for_url(&url("ws://a.b/")), None);
        assert_eq!(p.for_url(&url("wss://a.b/")), None);
        assert_eq!(
            env(&[]),
            Proxy {
                no_proxy: p.no_proxy.clone(),
                ..Proxy::default()
            }
        );
    }

    #[test]
    fn no_proxy_rules() {
        let p = env(&[
            ("HTTPS_PROXY", "proxy:8080"),
            ("HTTP_PROXY", "proxy:8080"),
            (
                "NO_PROXY",
                "example.com, .internal.net,10.1.2.3, [fd00::1]:9000,api.test:8443,*.wild.org",
            ),
        ]);
        let direct = |u: &str| p.for_url(&url(u)).is_none();
        assert!(direct("wss://example.com/"));
        assert!(direct("wss://deep.sub.EXAMPLE.com/"));
        assert!(!direct("wss://notexample.com/"));
        assert!(direct("ws://svc.internal.net/"));
        assert!(direct("ws://internal.net/"));
        assert!(direct("ws://10.1.2.3:9/"));
        assert!(!direct("ws://10.1.2.4/"));
        assert!(direct("ws://[fd00::1]:9000/"));
        assert!(!direct("ws://[fd00::1]:9001/"));
        assert!(direct("wss://api.test:8443/"));
        assert!(!direct("wss://api.test/"));
        assert!(direct("wss://x.wild.org/"));
        // Loopback is always direct from the environment.
        assert!(direct("ws://localhost:1/"));
        assert!(direct("ws://127.0.0.2:1/"));
        assert!(direct("ws://[::1]:1/"));
        assert!(!direct("wss://elsewhere.org/"));
        let star = env(&[("HTTP_PROXY", "proxy:1"), ("no_proxy", "*")]);
        assert!(star.for_url(&url("ws://anything/")).is_none());
    }

    #[test]
    fn configured_proxy_reaches_loopback_too() {
        let p = Proxy::all("http://127.0.0.1:3128").unwrap();
        assert!(p.for_url(&url("ws://127.0.0.1:9/")).is_some());
        let p = p.no_proxy("127.0.0.1");
        assert!(p.for_url(&url("ws://127.0.0.1:9/")).is_none());
    }
}
