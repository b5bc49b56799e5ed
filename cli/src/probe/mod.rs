//! `tether doctor URL`: the walk from the URL to a closed WebSocket, one timed step at a time,
//! ending in a [`Verdict`].
//!
//! The WebSocket part is the core's: the request comes from [`ClientRequest`], the answer is
//! judged by the core's client handshake (its
//! [`HandshakeError`](tether::handshake::HandshakeError) variants name each way a response can
//! fail), and the open connection is the core's [`Connection`](tether::Connection). This
//! module only times the steps and puts what the core found into words: `transport` (DNS,
//! TCP, proxy, TLS), `upgrade` (the HTTP exchange and the 101), `session` (ping, close).

use std::path::PathBuf;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use tether::handshake::ClientRequest;
use tokio::time::Instant;

use crate::args::DoctorArgs;
use crate::explain::HEADERS_THAT_MATTER;
use crate::net::{Head, parse_proxy};
use crate::report::{Outcome, Report, Step, Verdict, millis};

mod session;
mod transport;
mod upgrade;

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
