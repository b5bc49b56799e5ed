//! `tether doctor URL`: the walk from the URL to a closed WebSocket, one timed step at a time,
//! ending in a [`Verdict`].
//!
//! The WebSocket part is the core's: the request comes from [`ClientRequest`], the answer is
//! judged by the core's client handshake (its [`HandshakeError`] variants name each way a
//! response can fail), and the open connection is the core's [`Connection`]. This module only
//! times the steps and puts what the core found into words.

use std::path::PathBuf;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use tether::handshake::{ClientRequest, HandshakeError, WsUrl};
use tether::{CloseCause, CloseCode, Closed, Config, Connection, Data, Event, Initiator, Message};
use tokio::time::Instant;

use crate::args::DoctorArgs;
use crate::drive::{Driver, Next, Stream, now};
use crate::explain::{
    HEADERS_THAT_MATTER, close_code_meaning, proxy_signs, status_advice, status_verdict,
};
use crate::net::{
    ConnectFailure, Head, ProxyFailure, connect, looks_like_tls, parse_head, parse_proxy,
    proxy_connect, resolve,
};
use crate::report::{Outcome, Report, Step, Verdict, body_excerpt, excerpt, human, millis};
use crate::tls;

/// The Ping payload the doctor sends and expects back.
const PING: &[u8] = b"tether doctor";

/// How many body characters a report shows.
const BODY_EXCERPT: usize = 160;

/// What to check and how, from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// The URL as given (checked by the `url` step, so a bad one is a verdict).
    pub url: String,
    /// Extra header fields, `Origin` included.
    pub headers: Vec<(String, String)>,
    /// Subprotocols to offer.
    pub subprotocols: Vec<String>,
    /// An HTTP proxy to tunnel through: host and port.
    pub proxy: Option<(String, u16)>,
    /// The limit for each step.
    pub timeout: Duration,
    /// Accept any certificate.
    pub insecure: bool,
    /// Extra trusted CA certificates (PEM).
    pub cacert: Option<PathBuf>,
    /// The origin of the page that would open the connection.
    pub page_origin: Option<String>,
}

impl Options {
    /// Checks the options that are not the URL; a bad one is a usage error.
    pub fn from_args(args: &DoctorArgs) -> Result<Self, String> {
        let mut headers = Vec::new();
        if let Some(origin) = args.origin.as_ref().or(args.page_origin.as_ref()) {
            headers.push(("Origin".to_string(), origin.clone()));
        }
        for header in &args.headers {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| format!("--header {header:?}: expected NAME:VALUE"))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        // The core's request builder checks names, values and subprotocols.
        let check = ClientRequest::new("ws://localhost/").map_err(|e| e.to_string())?;
        with_options(check, &headers, &args.subprotocols).map_err(|e| e.to_string())?;
        let proxy = args.proxy.as_deref().map(parse_proxy).transpose()?;
        Ok(Options {
            url: args.url.clone(),
            headers,
            subprotocols: args.subprotocols.clone(),
            proxy,
            timeout: args.timeout,
            insecure: args.insecure,
            cacert: args.cacert.clone(),
            page_origin: args.page_origin.clone(),
        })
    }

    /// The opening request: the URL with the subprotocols and headers.
    pub fn request(&self) -> Result<ClientRequest, tether::handshake::UrlError> {
        let request = ClientRequest::new(&self.url)?;
        Ok(with_options(request, &self.headers, &self.subprotocols)
            .expect("headers and subprotocols are checked by Options::from_args"))
    }
}

/// `request` with the subprotocols and header fields added, checked by the core.
fn with_options(
    mut request: ClientRequest,
    headers: &[(String, String)],
    subprotocols: &[String],
) -> Result<ClientRequest, tether::handshake::HeaderError> {
    for p in subprotocols {
        request = request.subprotocol(p.clone())?;
    }
    for (name, value) in headers {
        request = request.header(name.clone(), value.clone())?;
    }
    Ok(request)
}

/// Why the walk stopped: the verdict and what to do.
#[derive(Clone, Debug)]
pub struct Fail {
    /// The verdict.
    pub verdict: Verdict,
    /// One or two lines of advice.
    pub advice: Vec<String>,
}

impl Fail {
    fn new(verdict: Verdict, advice: impl Into<String>) -> Self {
        Fail {
            verdict,
            advice: vec![advice.into()],
        }
    }
}

/// Runs every step and returns the report.
pub async fn run(options: &Options) -> Report {
    let start = Instant::now();
    let mut probe = Probe::new(options);
    let result = probe.walk().await;
    let fail = match result {
        Ok(()) => probe.deferred.take().unwrap_or_else(|| Fail {
            verdict: Verdict::Ok,
            advice: vec![
                "The WebSocket endpoint works from here: it opened, answered a Ping and closed."
                    .into(),
                "If an application still fails, compare its URL, Origin and headers with this \
                 run (--origin, --header)."
                    .into(),
            ],
        }),
        Err(fail) => fail,
    };
    Report {
        url: options.url.clone(),
        insecure: options.insecure,
        steps: probe.steps,
        verdict: fail.verdict,
        exit_code: fail.verdict.exit_code(),
        advice: fail.advice,
        total_ms: millis(start.elapsed()),
    }
}

/// A walk in progress: the steps so far.
pub struct Probe<'a> {
    options: &'a Options,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// A verdict found early that does not stop the walk (mixed content).
    deferred: Option<Fail>,
}

impl<'a> Probe<'a> {
    /// A walk with no steps yet.
    pub fn new(options: &'a Options) -> Self {
        Probe {
            options,
            steps: Vec::new(),
            deferred: None,
        }
    }

    /// The Origin header the request sends, if any.
    fn origin(&self) -> Option<&str> {
        self.options
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("origin"))
            .map(|(_, value)| value.as_str())
    }

    fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// The summary of the last failed step, for one-line reports.
    pub fn last_failure(&self) -> String {
        self.steps
            .iter()
            .rev()
            .find(|s| s.outcome == Outcome::Fail)
            .map(|s| format!("{}: {}", s.name, s.summary))
            .unwrap_or_default()
    }

    async fn walk(&mut self) -> Result<(), Fail> {
        let request = self.check_url()?;
        let stream = self.open(request.url()).await?;
        let mut driver = self.handshake(stream, request).await?;
        self.ping(&mut driver).await?;
        self.close(&mut driver).await
    }

    /// The `url` step: a ws:// or wss:// URL, and mixed content from an https page.
    pub fn check_url(&mut self) -> Result<ClientRequest, Fail> {
        let request = match self.options.request() {
            Ok(request) => request,
            Err(e) => {
                self.push(Step::new("url", Outcome::Fail, None).summary(e.to_string()));
                let advice = match e {
                    tether::handshake::UrlError::HttpScheme { .. } => {
                        "WebSocket URLs start with ws:// (plain) or wss:// (TLS); the server's \
                         WebSocket path is often different from the page's."
                    }
                    _ => "Write the URL as ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH.",
                };
                return Err(Fail::new(Verdict::BadUrl, advice));
            }
        };
        let url = request.url();
        let port = if url.port() == url.default_port() {
            format!("{} (the default for {})", url.port(), url.scheme())
        } else {
            url.port().to_string()
        };
        let mut step = Step::new("url", Outcome::Ok, None).summary(format!(
            "{url}: host {}, port {port}, path {}",
            url.host(),
            url.path_and_query()
        ));
        if let Some(page) = &self.options.page_origin {
            let https_page = page.to_ascii_lowercase().starts_with("https://");
            if https_page && !url.is_secure() {
                step.outcome = Outcome::Warn;
                step = step.detail(format!(
                    "a page from {page} may not open ws:// (mixed content): browsers block it"
                ));
                self.deferred = Some(Fail {
                    verdict: Verdict::BadUrl,
                    advice: vec![
                        format!(
                            "The endpoint answers, but a browser on {page} blocks ws:// from an \
                             https:// page (mixed content)."
                        ),
                        "Serve the WebSocket over TLS and use wss://.".into(),
                    ],
                });
            }
        }
        self.push(step);
        Ok(request)
    }

    /// The `dns`, `tcp`, `proxy` and `tls` steps: an open byte stream to the server.
    pub async fn open(&mut self, url: &WsUrl) -> Result<Box<dyn Stream>, Fail> {
        let timeout = self.options.timeout;
        let (host, port) = match &self.options.proxy {
            Some((host, port)) => (host.clone(), *port),
            None => (url.host().to_string(), url.port()),
        };
        let via = if self.options.proxy.is_some() {
            "proxy "
        } else {
            ""
        };
        let started = Instant::now();
        let addrs = match resolve(&host, port, timeout).await {
            Ok(addrs) => {
                let literal = host.parse::<std::net::IpAddr>().is_ok();
                let mut step = Step::new("dns", Outcome::Ok, Some(started.elapsed()));
                step = if literal {
                    step.summary(format!("{via}{host} is an IP address: nothing to resolve"))
                } else {
                    step.summary(format!("{via}{host}: {} address(es)", addrs.len()))
                };
                for addr in &addrs {
                    step = step.detail(addr.ip().to_string());
                }
                if self.options.proxy.is_some() {
                    step = step.detail(format!("{} is resolved by the proxy", url.host()));
                }
                self.push(step);
                addrs
            }
            Err(e) => {
                self.push(
                    Step::new("dns", Outcome::Fail, Some(started.elapsed()))
                        .summary(format!("{via}{host} did not resolve: {e}")),
                );
                return Err(Fail::new(
                    Verdict::Dns,
                    format!(
                        "The name {host} has no address from this machine: check it for typos; \
                         an internal name needs the right DNS server or VPN."
                    ),
                ));
            }
        };
        let mut tcp = self.tcp(&addrs, &host, port).await?;
        if self.options.proxy.is_some() {
            self.tunnel(&mut tcp, url).await?;
        }
        if !url.is_secure() {
            return Ok(Box::new(tcp));
        }
        self.tls(tcp, url).await
    }

    /// The `tcp` step: every address in turn until one connects.
    async fn tcp(
        &mut self,
        addrs: &[std::net::SocketAddr],
        host: &str,
        port: u16,
    ) -> Result<tokio::net::TcpStream, Fail> {
        let timeout = self.options.timeout;
        let started = Instant::now();
        let mut step = Step::new("tcp", Outcome::Ok, None);
        let mut failures = Vec::new();
        for addr in addrs {
            let attempt = Instant::now();
            match connect(*addr, timeout).await {
                Ok(tcp) => {
                    step.ms = Some(millis(started.elapsed()));
                    step.summary = format!("connected to {addr}");
                    if !failures.is_empty() {
                        step.outcome = Outcome::Warn;
                    }
                    step =
                        step.detail(format!("{addr}: connected in {}", human(attempt.elapsed())));
                    self.push(step);
                    return Ok(tcp);
                }
                Err(failure) => {
                    let what = match &failure {
                        ConnectFailure::Refused => "refused".to_string(),
                        ConnectFailure::TimedOut => format!("no answer within {}", human(timeout)),
                        ConnectFailure::Unreachable(e) => e.clone(),
                    };
                    step = step.detail(format!("{addr}: {what} ({})", human(attempt.elapsed())));
                    failures.push(failure);
                }
            }
        }
        step.outcome = Outcome::Fail;
        step.ms = Some(millis(started.elapsed()));
        let fail = if failures.contains(&ConnectFailure::TimedOut) {
            step.summary = format!("{host}:{port} did not answer within {}", human(timeout));
            Fail::new(
                Verdict::ConnectTimeout,
                format!(
                    "No answer from {host}:{port}: a firewall drops the packets, or the host is \
                     down. Check that the port is open from this network."
                ),
            )
        } else if failures.iter().all(|f| *f == ConnectFailure::Refused) {
            step.summary = format!("{host}:{port} refused the connection");
            Fail::new(
                Verdict::Refused,
                format!(
                    "Nothing listens on {host}:{port}: check that the server runs, and the port \
                     in the URL."
                ),
            )
        } else {
            step.summary = format!("{host}:{port} cannot be reached");
            Fail::new(
                Verdict::Unreachable,
                format!(
                    "This machine has no route to {host}: check the network, the VPN, or IPv6 \
                     connectivity."
                ),
            )
        };
        self.push(step);
        Err(fail)
    }

    /// The `proxy` step: CONNECT through the HTTP proxy.
    async fn tunnel(&mut self, tcp: &mut tokio::net::TcpStream, url: &WsUrl) -> Result<(), Fail> {
        let authority = if url.host().contains(':') {
            format!("[{}]:{}", url.host(), url.port())
        } else {
            format!("{}:{}", url.host(), url.port())
        };
        let started = Instant::now();
        let result = proxy_connect(tcp, &authority, self.options.timeout).await;
        let took = Some(started.elapsed());
        let (mut step, fail) = match result {
            Ok(head) => {
                self.push(Step::new("proxy", Outcome::Ok, took).summary(format!(
                    "tunnel to {authority} opened: {}",
                    head.status_line()
                )));
                return Ok(());
            }
            Err(ProxyFailure::Refused(head, body)) => {
                let mut step = Step::new("proxy", Outcome::Fail, took).summary(format!(
                    "the proxy refused a tunnel to {authority}: {}",
                    head.status_line()
                ));
                step = add_headers(step, &head);
                if !body.is_empty() {
                    step = step.detail(format!("body: {}", body_excerpt(&body, BODY_EXCERPT)));
                }
                let advice = match head.status {
                    407 => "The proxy wants credentials before it opens a tunnel \
                            (Proxy-Authenticate)."
                        .to_string(),
                    _ => format!(
                        "The proxy's own page answered CONNECT {authority}: its policy blocks \
                         this tunnel (many allow only port 443). Ask its administrator, or \
                         try wss:// on port 443."
                    ),
                };
                (step, Fail::new(Verdict::Proxy, advice))
            }
            Err(ProxyFailure::NotHttp(bytes)) => (
                Step::new("proxy", Outcome::Fail, took).summary(format!(
                    "the proxy's answer is not HTTP: {}",
                    excerpt(&bytes, 60)
                )),
                Fail::new(Verdict::Proxy, "Check --proxy: it is not an HTTP proxy."),
            ),
            Err(ProxyFailure::Closed(e)) => (
                Step::new("proxy", Outcome::Fail, took).summary(e),
                Fail::new(
                    Verdict::Proxy,
                    "The proxy hung up on CONNECT: check --proxy.",
                ),
            ),
            Err(ProxyFailure::TimedOut) => (
                Step::new("proxy", Outcome::Fail, took).summary(format!(
                    "no answer to CONNECT within {}",
                    human(self.options.timeout)
                )),
                Fail::new(
                    Verdict::Proxy,
                    "The proxy did not answer CONNECT: check --proxy.",
                ),
            ),
        };
        step.outcome = Outcome::Fail;
        self.push(step);
        Err(fail)
    }

    /// The `tls` step.
    async fn tls(
        &mut self,
        tcp: tokio::net::TcpStream,
        url: &WsUrl,
    ) -> Result<Box<dyn Stream>, Fail> {
        let started = Instant::now();
        let (config, verifier) =
            match tls::client_config(self.options.insecure, self.options.cacert.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    self.push(Step::new("tls", Outcome::Fail, None).summary(e.to_string()));
                    return Err(Fail::new(Verdict::Tls, "Check the --cacert file."));
                }
            };
        let name = match rustls::pki_types::ServerName::try_from(url.host().to_string()) {
            Ok(name) => name,
            Err(e) => {
                self.push(Step::new("tls", Outcome::Fail, None).summary(e.to_string()));
                return Err(Fail::new(Verdict::Tls, "The host is not a valid TLS name."));
            }
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let result = tokio::time::timeout(self.options.timeout, connector.connect(name, tcp)).await;
        let took = Some(started.elapsed());
        match result {
            Ok(Ok(stream)) => {
                let (_, session) = stream.get_ref();
                let version = session
                    .protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                let suite = session
                    .negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()))
                    .unwrap_or_default();
                let alpn = session
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_else(|| "none".into());
                let mut step = Step::new("tls", Outcome::Ok, took)
                    .summary(format!("{version}, {suite}, ALPN {alpn}"));
                match verifier.failure() {
                    Some(error) if self.options.insecure => {
                        let (why, _) = tls::explain(&error, url.host());
                        step.outcome = Outcome::Warn;
                        step = step
                            .detail(format!("certificate NOT VERIFIED (--insecure): {why}"))
                            .detail("anyone on the path could read and change this connection");
                    }
                    _ if self.options.insecure => {
                        step = step
                            .detail("certificate valid for the name (--insecure was not needed)");
                    }
                    _ => {
                        step = step.detail(format!("certificate valid for {}", url.host()));
                    }
                }
                if alpn != "none" && alpn.as_bytes() != tls::ALPN {
                    step.outcome = Outcome::Warn;
                    step = step.detail(format!(
                        "the server chose ALPN {alpn}: a WebSocket upgrade needs HTTP/1.1"
                    ));
                }
                self.push(step);
                Ok(Box::new(stream))
            }
            Ok(Err(e)) => {
                let error = verifier
                    .failure()
                    .or_else(|| tls::rustls_error(&e).cloned());
                let (why, advice) = match error {
                    Some(error) => tls::explain(&error, url.host()),
                    None if e.kind() == std::io::ErrorKind::UnexpectedEof => (
                        "the server closed the connection during the TLS handshake".into(),
                        vec![
                            "The server does not speak TLS on this port, or refused this host \
                             name: try ws://, or check the server's TLS settings."
                                .into(),
                        ],
                    ),
                    None => (
                        format!("TLS failed: {e}"),
                        vec!["Check the server's TLS setup.".into()],
                    ),
                };
                self.push(Step::new("tls", Outcome::Fail, took).summary(why));
                Err(Fail {
                    verdict: Verdict::Tls,
                    advice,
                })
            }
            Err(_) => {
                self.push(Step::new("tls", Outcome::Fail, took).summary(format!(
                    "no TLS answer within {}",
                    human(self.options.timeout)
                )));
                Err(Fail::new(
                    Verdict::Tls,
                    "The server accepted TCP but did not answer TLS: is this a plain ws:// \
                     port?",
                ))
            }
        }
    }

    /// A client connection for `request` with the doctor's settings: no heartbeat (the `ping`
    /// step pings itself), `timeout` for the handshake and the close.
    pub fn connection(&self, request: ClientRequest) -> Connection {
        let mut config = Config::default();
        config.heartbeat = None;
        config.handshake_timeout = self.options.timeout;
        config.close_timeout = self.options.timeout;
        Connection::client(request, config, rng(), now())
    }

    /// The `http` and `upgrade` steps: the opening handshake, judged by the core.
    async fn handshake(
        &mut self,
        stream: Box<dyn Stream>,
        request: ClientRequest,
    ) -> Result<Driver, Fail> {
        let timeout = self.options.timeout;
        let conn = self.connection(request.clone());
        let mut driver = Driver::new(stream, conn);
        let sent = Instant::now();
        // The core's handshake timeout ends this; the extra second is a backstop.
        let backstop = sent + timeout + Duration::from_secs(1);
        let ended = loop {
            match driver.next_event(Some(backstop)).await {
                Next::Event(Event::Connected { subprotocol }) => break Ok(subprotocol),
                Next::Event(Event::Closed(closed)) => break Err(Some(closed)),
                Next::Event(_) => {}
                Next::Deadline | Next::Finished => break Err(None),
            }
        };
        let took = Some(sent.elapsed());
        let captured = driver.captured().to_vec();
        let head = parse_head(&captured);
        let first_byte = driver
            .first_byte()
            .map(|t| format!(" (first byte after {})", human(t - sent)))
            .unwrap_or_default();
        match ended {
            Ok(subprotocol) => {
                let head = head.unwrap_or_default();
                let step = Step::new("http", Outcome::Ok, took)
                    .summary(format!("{}{first_byte}", head.status_line()));
                self.push(add_headers(step, &head));
                let mut step = Step::new("upgrade", Outcome::Ok, None).summary(
                    "valid 101: Upgrade, Connection and Sec-WebSocket-Accept are right (RFC 6455 \
                     §4.1)",
                );
                let offered = if request.subprotocols().is_empty() {
                    "none offered".to_string()
                } else {
                    format!("offered {}", request.subprotocols().join(", "))
                };
                match &subprotocol {
                    Some(p) => step = step.detail(format!("subprotocol: {p} ({offered})")),
                    None if !request.subprotocols().is_empty() => {
                        step.outcome = Outcome::Warn;
                        step = step.detail(format!(
                            "subprotocol: the server chose none ({offered}): an application \
                             that needs one will fail"
                        ));
                    }
                    None => step = step.detail("subprotocol: none (none offered)"),
                }
                let extensions = driver
                    .conn()
                    .response()
                    .map(|r| r.extensions().join(", "))
                    .unwrap_or_default();
                step = step.detail(if extensions.is_empty() {
                    "extensions: none (none offered)".to_string()
                } else {
                    format!("extensions: {extensions}")
                });
                self.push(step);
                Ok(driver)
            }
            Err(closed) => {
                let fail = self.handshake_failure(closed, head, &captured, took, &first_byte);
                Err(fail)
            }
        }
    }

    /// Puts a failed handshake into words.
    fn handshake_failure(
        &mut self,
        closed: Option<Closed>,
        head: Option<Head>,
        captured: &[u8],
        took: Option<Duration>,
        first_byte: &str,
    ) -> Fail {
        let timeout = self.options.timeout;
        let error = match closed.map(|c| c.cause) {
            Some(CloseCause::HandshakeFailed(error)) => error,
            Some(CloseCause::HandshakeTimeout) | None => HandshakeError::Timeout,
            Some(_) => HandshakeError::UnexpectedEof,
        };
        let http =
            |outcome: Outcome, summary: String| Step::new("http", outcome, took).summary(summary);
        match error {
            HandshakeError::Timeout => {
                let summary = if captured.is_empty() {
                    format!("no answer within {}", human(timeout))
                } else {
                    format!(
                        "an incomplete answer within {} ({} bytes): {}",
                        human(timeout),
                        captured.len(),
                        excerpt(captured, 60)
                    )
                };
                self.push(http(Outcome::Fail, summary));
                Fail {
                    verdict: Verdict::HandshakeTimeout,
                    advice: vec![
                        "Something accepts TCP connections here but does not answer the upgrade: \
                         a stuck or overloaded server, or a firewall or proxy holding the \
                         connection."
                            .into(),
                        "If the server speaks TLS on this port, use wss://.".into(),
                    ],
                }
            }
            HandshakeError::Rejected {
                status,
                reason,
                headers,
                body,
            } => {
                let head = head.unwrap_or_else(|| Head {
                    version: 1,
                    status,
                    reason,
                    headers: headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
                        .collect(),
                });
                let verdict = status_verdict(status);
                let mut step = http(
                    Outcome::Fail,
                    format!(
                        "{}: not 101 Switching Protocols{first_byte}",
                        head.status_line()
                    ),
                );
                step = add_headers(step, &head);
                if head.version == 0 {
                    step = step.detail("an HTTP/1.0 server: it cannot upgrade to WebSocket");
                }
                if !body.is_empty() {
                    step = step.detail(format!("body: {}", body_excerpt(&body, BODY_EXCERPT)));
                }
                let mut advice = status_advice(&head, self.origin());
                if let Some(sign) = proxy_signs(&head) {
                    step = step.detail(format!("this answer looks like a proxy's page ({sign})"));
                    advice.insert(
                        0,
                        format!(
                            "A proxy answered, not the WebSocket server ({sign}): it may block \
                             WebSocket upgrades; ask its administrator, or use wss://, which \
                             proxies pass through."
                        ),
                    );
                    advice.truncate(2);
                }
                self.push(step);
                Fail { verdict, advice }
            }
            HandshakeError::Redirect { status, location } => {
                let head = head.unwrap_or(Head {
                    version: 1,
                    status,
                    reason: String::new(),
                    headers: location
                        .iter()
                        .map(|l| ("Location".to_string(), l.clone()))
                        .collect(),
                });
                let step = http(
                    Outcome::Fail,
                    format!(
                        "{}: a redirect to {}",
                        head.status_line(),
                        location.as_deref().unwrap_or("(no Location)")
                    ),
                );
                self.push(add_headers(step, &head));
                Fail {
                    verdict: Verdict::NotWebsocket,
                    advice: status_advice(&head, self.origin()),
                }
            }
            HandshakeError::UnexpectedEof
            | HandshakeError::MalformedHttp(_)
            | HandshakeError::HeadTooLarge { .. }
            | HandshakeError::TooManyHeaders { .. }
            | HandshakeError::UnsupportedVersion
                if head.as_ref().is_none_or(|h| h.status != 101) =>
            {
                let (summary, advice) = if looks_like_tls(captured) {
                    (
                        "the server answered in TLS, not HTTP".to_string(),
                        "This port speaks TLS: use wss:// instead of ws://.".to_string(),
                    )
                } else if captured.is_empty() {
                    (
                        "the server closed the connection without answering".to_string(),
                        "Something accepted the connection and hung up: not an HTTP server, a \
                         TLS port (try wss://), or a server that drops this client; check its \
                         logs."
                            .to_string(),
                    )
                } else {
                    (
                        format!(
                            "the answer is not HTTP ({error}): {}",
                            excerpt(captured, 60)
                        ),
                        "Something other than a WebSocket server listens here (check the \
                         port): it did not answer in HTTP."
                            .to_string(),
                    )
                };
                self.push(http(Outcome::Fail, summary));
                Fail::new(Verdict::NotWebsocket, advice)
            }
            error => {
                let head = head.unwrap_or_default();
                let step = http(Outcome::Ok, format!("{}{first_byte}", head.status_line()));
                self.push(add_headers(step, &head));
                self.push(
                    Step::new("upgrade", Outcome::Fail, None)
                        .summary(format!("invalid 101: {error}")),
                );
                Fail {
                    verdict: Verdict::BadHandshake,
                    advice: vec![bad_handshake_advice(&error)],
                }
            }
        }
    }

    /// The `ping` step: a Ping and its Pong.
    async fn ping(&mut self, driver: &mut Driver) -> Result<(), Fail> {
        let timeout = self.options.timeout;
        let sent = Instant::now();
        if driver.conn().ping(PING).is_err() {
            // Already closed: the events say how.
        }
        let deadline = sent + timeout;
        let mut notes = Vec::new();
        loop {
            match driver.next_event(Some(deadline)).await {
                Next::Event(Event::Pong(payload)) if payload.as_ref() == PING => break,
                Next::Event(Event::Pong(_)) => notes.push("an unsolicited Pong".to_string()),
                Next::Event(Event::Ping(_)) => notes.push("a Ping from the server".to_string()),
                Next::Event(Event::Closed(closed)) => {
                    let step = Step::new("ping", Outcome::Fail, Some(sent.elapsed()));
                    return Err(self.after_open(step, driver, &closed));
                }
                Next::Event(_) => {}
                Next::Deadline | Next::Finished => {
                    let mut step = Step::new("ping", Outcome::Fail, Some(sent.elapsed()))
                        .summary(format!("no Pong within {}", human(timeout)));
                    step.details = received_lines(driver);
                    self.push(step);
                    return Err(Fail {
                        verdict: Verdict::NoPong,
                        advice: vec![
                            "The server does not answer Pings (RFC 6455 §5.5.2 requires it): \
                             clients with a heartbeat will drop it as dead."
                                .into(),
                            "Fix the server, or something between that swallows control frames."
                                .into(),
                        ],
                    });
                }
            }
        }
        let mut step = Step::new("ping", Outcome::Ok, Some(sent.elapsed())).summary(format!(
            "Pong received: round trip {}",
            human(sent.elapsed())
        ));
        step.details = received_lines(driver);
        for note in notes {
            step = step.detail(format!("also received {note}"));
        }
        self.push(step);
        Ok(())
    }

    /// The `close` step: our Close, the server's answer, and the end of the transport.
    async fn close(&mut self, driver: &mut Driver) -> Result<(), Fail> {
        let timeout = self.options.timeout;
        let started = Instant::now();
        if driver
            .conn()
            .close(now(), CloseCode::NORMAL, "tether doctor")
            .is_err()
        {
            // Already closed: the events say how.
        }
        let closed = loop {
            match driver.next_event(Some(started + timeout * 2)).await {
                Next::Event(Event::Closed(closed)) => break Some(closed),
                Next::Event(_) => {}
                Next::Deadline | Next::Finished => break None,
            }
        };
        let Some(closed) = closed else {
            self.push(
                Step::new("close", Outcome::Warn, Some(started.elapsed()))
                    .summary("the close handshake did not finish"),
            );
            return Ok(());
        };
        if closed.initiator == Initiator::Remote || matches!(closed.cause, CloseCause::Protocol(_))
        {
            let step = Step::new("close", Outcome::Fail, Some(started.elapsed()));
            return Err(self.after_open(step, driver, &closed));
        }
        let took = started.elapsed();
        let mut step = Step::new("close", Outcome::Ok, Some(took));
        if closed.clean {
            step = step.summary(format!(
                "clean: the server answered our Close with {} ({})",
                closed.code,
                close_code_meaning(closed.code)
            ));
        } else {
            step.outcome = Outcome::Warn;
            step = step.summary(format!(
                "not clean: {} ({})",
                closed.reason,
                close_code_meaning(closed.code)
            ));
        }
        // RFC 6455 §7.1.1: after the close handshake the server closes TCP first.
        let finished = loop {
            match driver.next_event(Some(started + timeout * 2)).await {
                Next::Finished => break true,
                Next::Deadline => break false,
                Next::Event(_) => {}
            }
        };
        if finished {
            step = step.detail(format!(
                "the transport closed {} after our Close",
                human(started.elapsed())
            ));
        } else {
            step.outcome = Outcome::Warn;
            step = step.detail("the server did not close the TCP connection (RFC 6455 §7.1.1)");
        }
        self.push(step);
        Ok(())
    }

    /// The verdict for a connection that ended after it opened.
    fn after_open(&mut self, mut step: Step, driver: &mut Driver, closed: &Closed) -> Fail {
        step.details = received_lines(driver);
        let fail = match &closed.cause {
            CloseCause::Protocol(error) => {
                step.summary = format!(
                    "the server broke the protocol: {error}; tether closed with {} ({})",
                    closed.code,
                    close_code_meaning(closed.code)
                );
                Fail {
                    verdict: Verdict::ProtocolError,
                    advice: vec![format!(
                        "The server's frames break RFC 6455 ({error}): fix the server's \
                             WebSocket implementation, or look for a proxy rewriting the stream."
                    )],
                }
            }
            CloseCause::TransportLost => {
                step.summary =
                    "the server dropped the connection without a Close frame (1006)".into();
                Fail::new(
                    Verdict::ClosedAfterOpen,
                    "The server (or a proxy or load balancer) cut the connection right after \
                     opening it: check its logs and idle timeouts.",
                )
            }
            _ => {
                let reason = if closed.reason.is_empty() {
                    String::new()
                } else {
                    format!(", reason {:?}", closed.reason)
                };
                step.summary = format!(
                    "the server closed the connection: code {} ({}){reason}, {}",
                    closed.code,
                    close_code_meaning(closed.code),
                    if closed.clean { "clean" } else { "not clean" }
                );
                let advice = match closed.code.0 {
                    1008 => "The server closed by policy right after accepting: usually missing \
                             or wrong credentials, or a refused Origin (--header, --origin)."
                        .to_string(),
                    1013 => "The server is overloaded: try again later.".to_string(),
                    1011 => "The server failed after accepting: look at its logs.".to_string(),
                    _ => format!(
                        "The server accepted, then closed with {}: the close code and reason \
                         say why; check what it expects first (auth message, subprotocol).",
                        closed.code
                    ),
                };
                Fail::new(Verdict::ClosedAfterOpen, advice)
            }
        };
        self.push(step);
        fail
    }
}

/// What a 101 that breaks RFC 6455 means.
fn bad_handshake_advice(error: &HandshakeError) -> String {
    match error {
        HandshakeError::InvalidAccept(_) | HandshakeError::MissingAccept => {
            "Sec-WebSocket-Accept is not derived from our key (RFC 6455 §4.2.2): a broken server \
             implementation, or a cache or proxy answering for the server."
                .into()
        }
        HandshakeError::MissingUpgrade
        | HandshakeError::InvalidUpgrade(_)
        | HandshakeError::MissingConnection
        | HandshakeError::InvalidConnection(_) => {
            "The 101 lacks Upgrade: websocket or Connection: Upgrade: a reverse proxy may strip \
             these hop-by-hop headers, or the server is not RFC 6455 compliant."
                .into()
        }
        HandshakeError::UnofferedSubprotocol(_)
        | HandshakeError::UnexpectedSubprotocol(_)
        | HandshakeError::MultipleSubprotocols(_) => {
            "The server's subprotocol choice breaks RFC 6455 §4.1: offer the one it wants with \
             --subprotocol, or fix the server."
                .into()
        }
        HandshakeError::UnofferedExtension(_) => {
            "The server turned on an extension that was not offered: fix the server's extension \
             negotiation."
                .into()
        }
        _ => "The server's 101 answer breaks RFC 6455 §4.1: fix the server.".into(),
    }
}

/// The header fields that matter, as detail lines.
fn add_headers(mut step: Step, head: &Head) -> Step {
    for name in HEADERS_THAT_MATTER {
        for (n, v) in &head.headers {
            if n.eq_ignore_ascii_case(name) {
                step = step.detail(format!("{n}: {v}"));
            }
        }
    }
    step
}

/// What the server sent since the connection opened, as detail lines.
fn received_lines(driver: &mut Driver) -> Vec<String> {
    let received = driver.take_received();
    let mut lines = Vec::new();
    if let Some(Data::Message(first)) = received.first() {
        let what = match first {
            Message::Text(t) => format!("text {:?}", excerpt(t.as_bytes(), 60)),
            other => format!("binary, {} bytes", other.len()),
        };
        lines.push(format!(
            "the server sent {} message(s); the first: {what}",
            received.len()
        ));
    }
    lines
}

/// A CSPRNG seeded by the operating system, or from the clock if that fails: the doctor's
/// nonces and masks need to differ, not to be secret.
pub fn rng() -> StdRng {
    StdRng::try_from_rng(&mut SysRng).unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        StdRng::seed_from_u64(nanos)
    })
}
