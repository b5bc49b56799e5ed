//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// tether: WebSocket tools.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain why a WebSocket connection fails: walks URL, DNS, TCP, TLS, the HTTP upgrade, a
    /// ping and the close, timing each, and ends with `verdict: KIND` (exit status 0 only for
    /// `ok`). With --watch, keep a connection open and report every drop.
    #[command(after_help = crate::report::VERDICT_HELP)]
    Doctor(DoctorArgs),
}

/// `tether doctor`'s options.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The ws:// or wss:// URL to check.
    pub url: String,
    /// Send this Origin header (a browser sends its page's origin).
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,
    /// An extra request header, `Name: value` (repeatable): Authorization, Cookie...
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Offer this subprotocol (repeatable, most preferred first).
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,
    /// Connect through this HTTP proxy with CONNECT: http://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// How long each step may take, in seconds (decimals allowed).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub timeout: Duration,
    /// Accept any TLS certificate (for self-signed test servers). The report says so loudly,
    /// and still names what was wrong with the certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// The origin of the page that will open this WebSocket in a browser, such as
    /// `https://app.example.com`: checks for mixed content, and is sent as Origin unless
    /// --origin is given.
    #[arg(long, value_name = "ORIGIN")]
    pub page_origin: Option<String>,
    /// Print one JSON object (steps, timings, verdict, advice) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep a connection open with a heartbeat, reconnect by tether's policy, print one line
    /// per event and a summary (uptime, drops, RTT percentiles) on Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// --watch: measure the round trip (and find dead peers) this often, in seconds.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    pub ping_interval: Duration,
    /// --watch: declare the peer dead when a Ping has no answer for this long, in seconds.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    pub pong_timeout: Duration,
    /// --watch: cap the delay between reconnection attempts, in seconds (tether's policy caps
    /// it at 30 s, and waits up to 5 s before the first retry after a drop).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub max_backoff: Option<Duration>,
    /// --watch: stop by itself after this long, in seconds, as if Ctrl-C was pressed.
    #[arg(long, value_name = "SECS", value_parser = seconds, hide = true)]
    pub duration: Option<Duration>,
}

/// A positive number of seconds, decimals allowed.
fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "{text} must be more than 0 and at most 86400 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}
