//! The `http` and `upgrade` steps: the opening handshake as the core's client handshake
//! judged it, put into words.

use std::time::Duration;

use tether::handshake::{ClientRequest, HandshakeError};
use tether::{CloseCause, Closed, Config, Connection, Event};
use tokio::time::Instant;

use super::{BODY_EXCERPT, Fail, Probe, add_headers, rng};
use crate::drive::{Driver, Next, Stream, now};
use crate::explain::{proxy_signs, status_advice, status_verdict};
use crate::net::{Head, looks_like_tls, parse_head};
use crate::report::{Outcome, Step, Verdict, body_excerpt, excerpt, human};

impl Probe<'_> {
    /// A client connection for `request` with the doctor's settings: no heartbeat (the `ping`
    /// step pings itself), `timeout` for the handshake and the close.
    fn connection(&self, request: ClientRequest) -> Connection {
        let mut config = Config::default();
        config.heartbeat = None;
        config.handshake_timeout = self.options.timeout;
        config.close_timeout = self.options.timeout;
        Connection::client(request, config, rng(), now())
    }

    /// The `http` and `upgrade` steps: the opening handshake, judged by the core.
    pub(super) async fn handshake(
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
    pub(super) fn handshake_failure(
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
