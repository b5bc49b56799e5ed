//! The steps below the WebSocket: `dns`, `tcp`, `proxy` (CONNECT) and `tls`.

use tether::handshake::WsUrl;
use tokio::time::Instant;

use super::{BODY_EXCERPT, Fail, Probe, add_headers};
use crate::drive::Stream;
use crate::net::{ConnectFailure, ProxyFailure, connect, proxy_connect, resolve};
use crate::report::{Outcome, Step, Verdict, body_excerpt, excerpt, human, millis};
use crate::tls;

impl Probe<'_> {
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
    pub(super) async fn tcp(
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
    pub(super) async fn tunnel(
        &mut self,
        tcp: &mut tokio::net::TcpStream,
        url: &WsUrl,
    ) -> Result<(), Fail> {
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
    pub(super) async fn tls(
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
}
