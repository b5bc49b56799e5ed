//! The steps of an open connection: `ping` and `close`, and what an early end means.

use tether::{CloseCause, CloseCode, Closed, Data, Event, Initiator, Message};
use tokio::time::Instant;

use super::{Fail, PING, Probe};
use crate::drive::{Driver, Next, now};
use crate::explain::close_code_meaning;
use crate::report::{Outcome, Step, Verdict, excerpt, human};

impl Probe<'_> {
    /// The `ping` step: a Ping and its Pong.
    pub(super) async fn ping(&mut self, driver: &mut Driver) -> Result<(), Fail> {
        let timeout = self.options.timeout;
        let sent = Instant::now();
        // Refused only when the connection already ended: its events say how.
        let _ = driver.conn().ping(PING);
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
    pub(super) async fn close(&mut self, driver: &mut Driver) -> Result<(), Fail> {
        let timeout = self.options.timeout;
        let started = Instant::now();
        // Refused only when the connection already ended: its events say how.
        let _ = driver
            .conn()
            .close(now(), CloseCode::NORMAL, "tether doctor");
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
    pub(super) fn after_open(
        &mut self,
        mut step: Step,
        driver: &mut Driver,
        closed: &Closed,
    ) -> Fail {
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
