//! The doctor's report: steps with their outcome and timing, a verdict and advice, printed as
//! text (the verdict line last but for the advice under it) or as one JSON object.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// What went wrong, in one word: the last line of every report.
///
/// The exit status is 0 only for [`Verdict::Ok`]; every other kind has its own status (see
/// [`Verdict::exit_code`]), so scripts can tell them apart without parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The connection opened, a Ping was answered and the close handshake completed.
    Ok,
    /// The URL is not a WebSocket URL, or a browser would refuse it (mixed content).
    BadUrl,
    /// The host name did not resolve.
    Dns,
    /// Every address refused the TCP connection.
    Refused,
    /// A TCP connection (or the TLS handshake) did not complete within the timeout.
    ConnectTimeout,
    /// The network or host is unreachable, or connecting failed for another reason.
    Unreachable,
    /// The TLS handshake failed: certificate, protocol or not TLS at all.
    Tls,
    /// The HTTP proxy would not open a tunnel.
    Proxy,
    /// The server answered with HTTP other than 101 (a page, a redirect, a 404), or not HTTP.
    NotWebsocket,
    /// The server refused the upgrade on purpose: 401, 403, 426, 429, 5xx...
    Rejected,
    /// The server answered 101 but broke RFC 6455 §4.1.
    BadHandshake,
    /// The server accepted TCP but did not answer the opening handshake in time.
    HandshakeTimeout,
    /// The connection opened, then the server closed it.
    ClosedAfterOpen,
    /// The connection opened but the server did not answer a Ping.
    NoPong,
    /// The server broke the framing rules after the connection opened.
    ProtocolError,
}

impl Verdict {
    /// The kind as printed: `ok`, `bad-url`, `not-websocket`...
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::BadUrl => "bad-url",
            Verdict::Dns => "dns",
            Verdict::Refused => "refused",
            Verdict::ConnectTimeout => "connect-timeout",
            Verdict::Unreachable => "unreachable",
            Verdict::Tls => "tls",
            Verdict::Proxy => "proxy",
            Verdict::NotWebsocket => "not-websocket",
            Verdict::Rejected => "rejected",
            Verdict::BadHandshake => "bad-handshake",
            Verdict::HandshakeTimeout => "handshake-timeout",
            Verdict::ClosedAfterOpen => "closed-after-open",
            Verdict::NoPong => "no-pong",
            Verdict::ProtocolError => "protocol-error",
        }
    }

    /// The process exit status: 0 for `ok`, 10 and up for the failures, one per kind, in the
    /// order the steps run. (2 is left to usage errors, 1 to the tool's own failures.)
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::BadUrl => 10,
            Verdict::Dns => 11,
            Verdict::Refused => 12,
            Verdict::ConnectTimeout => 13,
            Verdict::Unreachable => 14,
            Verdict::Proxy => 15,
            Verdict::Tls => 16,
            Verdict::NotWebsocket => 17,
            Verdict::Rejected => 18,
            Verdict::BadHandshake => 19,
            Verdict::HandshakeTimeout => 20,
            Verdict::ClosedAfterOpen => 21,
            Verdict::NoPong => 22,
            Verdict::ProtocolError => 23,
        }
    }
}

/// The verdicts and their exit statuses, for `--help`.
pub const VERDICT_HELP: &str = "Verdicts (exit status): ok (0), bad-url (10), dns (11), \
refused (12), connect-timeout (13), unreachable (14), proxy (15), tls (16), not-websocket (17), \
rejected (18), bad-handshake (19), handshake-timeout (20), closed-after-open (21), no-pong (22), \
protocol-error (23). Usage errors exit with 2.";

/// How a step went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It worked.
    Ok,
    /// It worked, with something worth knowing.
    Warn,
    /// It failed: the verdict comes from here.
    Fail,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
        }
    }
}

/// One step of the walk: `url`, `dns`, `tcp`, `proxy`, `tls`, `http`, `upgrade`, `ping`,
/// `close`.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// The step's name.
    pub name: &'static str,
    /// How it went.
    pub outcome: Outcome,
    /// How long it took, in milliseconds, when it was timed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
    /// One line about it.
    pub summary: String,
    /// More lines: addresses tried, headers, a body excerpt.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Step {
    /// A step with no details yet.
    pub fn new(name: &'static str, outcome: Outcome, took: Option<Duration>) -> Self {
        Step {
            name,
            outcome,
            ms: took.map(millis),
            summary: String::new(),
            details: Vec::new(),
        }
    }

    /// Sets the summary line.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// Adds a detail line.
    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }
}

/// A duration in milliseconds, rounded to microseconds.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A duration for people: `0.4 ms`, `12 ms`, `1.50 s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The URL as given.
    pub url: String,
    /// Whether certificate checks were turned off with `--insecure`.
    pub insecure: bool,
    /// The steps, in the order they ran.
    pub steps: Vec<Step>,
    /// The verdict.
    pub verdict: Verdict,
    /// The process exit status this verdict gives.
    pub exit_code: i32,
    /// What to do about it, in plain words.
    pub advice: Vec<String>,
    /// From the start of the walk to the verdict, in milliseconds.
    pub total_ms: f64,
}

impl Report {
    /// The report as text: one line per step (details indented under it), the verdict line,
    /// then the advice.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "tether doctor {}", self.url);
        if self.insecure {
            let _ = writeln!(
                out,
                "!! --insecure: the server's certificate is NOT verified; never rely on this connection"
            );
        }
        for step in &self.steps {
            let took = step
                .ms
                .map(|ms| human(Duration::from_secs_f64(ms / 1e3)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<8} {:<4} {:>9}  {}",
                step.name,
                step.outcome.as_str(),
                took,
                step.summary
            );
            for line in &step.details {
                let _ = writeln!(out, "{:24}| {line}", "");
            }
        }
        let _ = writeln!(out, "verdict: {}", self.verdict.as_str());
        for line in &self.advice {
            let _ = writeln!(out, "  {line}");
        }
        out
    }
}

/// A short, printable excerpt of bytes: UTF-8 (lossy) with control characters escaped, cut at
/// `max` characters.
pub fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A short excerpt of a text body: UTF-8 (lossy), runs of whitespace shown as one space,
/// control characters escaped, cut at `max` characters.
pub fn body_excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let words: Vec<&str> = text.split_whitespace().collect();
    excerpt(words.join(" ").as_bytes(), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_only_ok_is_zero() {
        let all = [
            Verdict::Ok,
            Verdict::BadUrl,
            Verdict::Dns,
            Verdict::Refused,
            Verdict::ConnectTimeout,
            Verdict::Unreachable,
            Verdict::Tls,
            Verdict::Proxy,
            Verdict::NotWebsocket,
            Verdict::Rejected,
            Verdict::BadHandshake,
            Verdict::HandshakeTimeout,
            Verdict::ClosedAfterOpen,
            Verdict::NoPong,
            Verdict::ProtocolError,
        ];
        let mut codes: Vec<i32> = all.iter().map(|v| v.exit_code()).collect();
        assert_eq!(codes[0], 0);
        assert!(codes[1..].iter().all(|&c| c >= 10));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for v in all {
            let listed = format!("{} ({})", v.as_str(), v.exit_code());
            assert!(
                VERDICT_HELP.contains(&listed),
                "{listed} missing from --help"
            );
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
        }
    }

    #[test]
    fn excerpts_escape_and_cut() {
        assert_eq!(excerpt(b"a\r\nb\x01", 10), "a\\r\\nb\\x01");
        assert_eq!(excerpt(b"abcdef", 3), "abc…");
        assert_eq!(body_excerpt(b"<p>\n    hi\r\n</p>", 20), "<p> hi </p>");
    }
}
