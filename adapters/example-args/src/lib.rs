//! The command-line flags of the adapters' examples, parsed the same way by every adapter.
//!
//! Each example parses one of [`ServerArgs`] (`echo_server`), [`ClientArgs`]
//! (`autobahn_client`), [`InteropArgs`] (`interop_client`) or [`ReconnectingClientArgs`]
//! (`reconnecting_client`) with [`parse`] or [`parse_with_default_url`]. All of them include
//! [`ConnectionArgs`], the core's limits and timers, which are applied on top of the example's
//! own [`Config`]: a flag that is not given leaves the example's setting alone.
//!
//! Durations are in seconds and may be fractional (`--ping-interval 0.5`).

use std::time::Duration;

use clap::{Args, FromArgMatches, Parser, ValueEnum};
use tether::deflate::DeflateConfig;
use tether::handshake::ServerPolicy;
use tether::reconnect::{Jitter, ReconnectConfig, SessionConfig};
use tether::resume::ResumeConfig;
use tether::{Config, Heartbeat};

/// Parses the process's arguments into `A`, with `about` as the first line of `--help`.
/// Bad arguments print the error and the usage and exit with status 2; `--help` prints the
/// help and exits with 0.
#[must_use]
pub fn parse<A: Parser>(about: &'static str) -> A {
    from_command(A::command().about(about))
}

/// [`parse`], with the URL optional: `url` when none is given. `A` must include
/// [`ClientArgs`].
#[must_use]
pub fn parse_with_default_url<A: Parser>(about: &'static str, url: &'static str) -> A {
    from_command(with_default_url(A::command().about(about), url))
}

fn with_default_url(command: clap::Command, url: &'static str) -> clap::Command {
    command.mut_arg("url", |arg| arg.required(false).default_value(url))
}

fn from_command<A: FromArgMatches>(mut command: clap::Command) -> A {
    let matches = command.get_matches_mut();
    A::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit())
}

/// The core's limits and timers ([`Config`]), for servers and clients.
#[derive(Args, Clone, Debug, Default, PartialEq)]
#[command(next_help_heading = "Connection")]
pub struct ConnectionArgs {
    /// Seconds without receiving anything before a Ping is sent; 0 turns pings (and dead-peer
    /// detection) off [default: 20, unless the text above says otherwise]
    #[arg(long, value_name = "SECS", value_parser = secs)]
    pub ping_interval: Option<Duration>,
    /// Seconds to wait for the Pong before the peer is declared dead [default: 20]
    #[arg(long, visible_alias = "ping-timeout", value_name = "SECS", value_parser = positive_secs)]
    pub pong_timeout: Option<Duration>,
    /// Seconds without receiving any frame before closing with 1001; 0 means never [default: 0]
    #[arg(long, value_name = "SECS", value_parser = secs)]
    pub idle_timeout: Option<Duration>,
    /// Seconds to wait for the peer's Close after sending ours [default: 10]
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub close_timeout: Option<Duration>,
    /// Seconds the opening handshake may take [default: 10]
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub handshake_timeout: Option<Duration>,
    /// Largest accepted message, in bytes (suffixes KiB, MiB, GiB) [default: 64MiB]
    #[arg(long, value_name = "BYTES", value_parser = bytes)]
    pub max_message_size: Option<usize>,
    /// Largest accepted frame payload, in bytes (suffixes KiB, MiB, GiB) [default: 16MiB in
    /// reconnecting_client and tokio's echo_server, 64MiB in the others]
    #[arg(long, value_name = "BYTES", value_parser = bytes)]
    pub max_frame_payload: Option<usize>,
    /// permessage-deflate (RFC 7692): offered by a client, accepted by a server. `--deflate`
    /// alone means `default` (context takeover, 15-bit windows); `low-memory` keeps no
    /// compression state between messages [default: off]
    #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "default")]
    pub deflate: Option<DeflateMode>,
    /// Resumable sessions (tether-resume, docs/resume.md): offered by a client, accepted by a
    /// server; between two tether peers nothing is lost or doubled when a connection dies. A
    /// peer without it gets plain WebSocket [default: off]
    #[arg(long)]
    pub resume: bool,
}

/// The permessage-deflate settings `--deflate` selects.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeflateMode {
    /// No compression.
    Off,
    /// [`DeflateConfig::default`]: context takeover, 15-bit windows.
    Default,
    /// [`DeflateConfig::low_memory`]: no context takeover either way.
    LowMemory,
}

impl DeflateMode {
    /// The core setting for this mode.
    #[must_use]
    pub fn config(self) -> Option<DeflateConfig> {
        match self {
            DeflateMode::Off => None,
            DeflateMode::Default => Some(DeflateConfig::default()),
            DeflateMode::LowMemory => Some(DeflateConfig::low_memory()),
        }
    }
}

impl ConnectionArgs {
    /// `base` with the flags that were given applied. A heartbeat flag turns the heartbeat on
    /// (with the other half from `base`, or the core's default) unless `--ping-interval` is 0.
    #[must_use]
    pub fn config_from(&self, mut base: Config) -> Config {
        self.apply(&mut base);
        base
    }

    /// [`Config::default()`] with the flags that were given applied.
    #[must_use]
    pub fn config(&self) -> Config {
        self.config_from(Config::default())
    }

    /// Applies the flags that were given to `config` (see [`ConnectionArgs::config_from`]).
    pub fn apply(&self, config: &mut Config) {
        match (self.ping_interval, self.pong_timeout) {
            (Some(interval), _) if interval.is_zero() => config.heartbeat = None,
            (None, None) => {}
            (interval, timeout) => {
                let base = config.heartbeat.unwrap_or_default();
                config.heartbeat = Some(Heartbeat::new(
                    interval.unwrap_or(base.interval),
                    timeout.unwrap_or(base.timeout),
                ));
            }
        }
        if let Some(idle) = self.idle_timeout {
            config.idle_timeout = (!idle.is_zero()).then_some(idle);
        }
        if let Some(t) = self.close_timeout {
            config.close_timeout = t;
        }
        if let Some(t) = self.handshake_timeout {
            config.handshake_timeout = t;
        }
        if let Some(n) = self.max_message_size {
            config.max_message_size = n;
        }
        if let Some(n) = self.max_frame_payload {
            config.max_frame_payload = n;
        }
        if let Some(mode) = self.deflate {
            config.deflate = mode.config();
        }
        if self.resume {
            config.resume = Some(ResumeConfig::default());
        }
    }
}

/// The flags of a client: the server's URL, the connect timeout and the connection's settings.
#[derive(Parser, Clone, Debug, PartialEq)]
pub struct ClientArgs {
    /// The server's URL (`ws://` or `wss://`)
    #[arg(value_name = "URL")]
    pub url: String,
    /// Seconds that resolving the host and opening TCP (and TLS) may take, per attempt
    #[arg(long, value_name = "SECS", value_parser = positive_secs, default_value = "10")]
    pub connect_timeout: Duration,
    /// Connect through this HTTP proxy (`http://[user:password@]host:port`, HTTP CONNECT)
    #[arg(long, value_name = "URL", conflicts_with = "proxy_from_env")]
    pub proxy: Option<String>,
    /// Connect through the proxies of `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`
    #[arg(long)]
    pub proxy_from_env: bool,
    /// The connection's limits and timers.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The flags of `interop_client`.
#[derive(Parser, Clone, Debug, PartialEq)]
pub struct InteropArgs {
    /// The URL, connect timeout and connection settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Then check that the server closes when asked to: send `close-me`, expect a clean
    /// close with 4002 "asked"
    #[arg(long)]
    pub expect_server_close: bool,
}

/// The flags of `reconnecting_client`.
#[derive(Parser, Clone, Debug, PartialEq)]
pub struct ReconnectingClientArgs {
    /// The URL, connect timeout and connection settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// When to retry and the send queue.
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
}

impl ReconnectingClientArgs {
    /// [`ReconnectConfig::default()`] with the flags that were given applied.
    #[must_use]
    pub fn reconnect_config(&self) -> ReconnectConfig {
        let r = &self.reconnect;
        let mut config = ReconnectConfig::default();
        if let Some(d) = r.backoff_initial {
            config.backoff.initial = d;
        }
        if let Some(m) = r.backoff_multiplier {
            config.backoff.multiplier = m;
        }
        if let Some(d) = r.backoff_max {
            config.backoff.max = d;
        }
        if let Some(j) = r.jitter {
            config.backoff.jitter = j.into();
        }
        if let Some(d) = r.first_delay_max {
            config.backoff.first_delay_max = (!d.is_zero()).then_some(d);
        }
        if r.max_attempts.is_some() {
            config.max_attempts = r.max_attempts;
        }
        if let Some(d) = r.stable_period {
            config.stable_period = d;
        }
        config
    }

    /// [`SessionConfig::default()`] with the queue flags and `--connect-timeout` applied.
    #[must_use]
    pub fn session_config(&self) -> SessionConfig {
        let mut config = SessionConfig::default();
        config.connect_timeout = self.client.connect_timeout;
        if let Some(n) = self.reconnect.max_queued_messages {
            config.max_queued_messages = n;
        }
        if let Some(n) = self.reconnect.max_queued_bytes {
            config.max_queued_bytes = n;
        }
        config
    }
}

/// When a reconnecting client retries, and how much it queues meanwhile
/// ([`ReconnectConfig`] and [`SessionConfig`]).
#[derive(Args, Clone, Debug, Default, PartialEq)]
#[command(next_help_heading = "Reconnect")]
pub struct ReconnectArgs {
    /// Seconds before the first retry of a client that cannot connect (the base of the
    /// exponential backoff) [default: 0.5]
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub backoff_initial: Option<Duration>,
    /// Growth of the delay per retry; below 1 the delay stays constant [default: 2]
    #[arg(long, value_name = "FACTOR", value_parser = factor)]
    pub backoff_multiplier: Option<f64>,
    /// Cap on the backoff, in seconds [default: 30]
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub backoff_max: Option<Duration>,
    /// How retries are randomised [default: full]
    #[arg(long, value_enum)]
    pub jitter: Option<JitterArg>,
    /// Seconds: the first retry after an open connection was lost waits a random time up to
    /// this; 0 retries it like any other [default: 5]
    #[arg(long, value_name = "SECS", value_parser = secs)]
    pub first_delay_max: Option<Duration>,
    /// Retries in a row before giving up [default: no limit]
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Seconds a connection must stay open for its loss to restart the backoff [default: 10]
    #[arg(long, value_name = "SECS", value_parser = secs)]
    pub stable_period: Option<Duration>,
    /// Most messages queued while disconnected [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_queued_messages: Option<usize>,
    /// Most payload bytes queued while disconnected (suffixes KiB, MiB, GiB) [default: 4MiB]
    #[arg(long, value_name = "BYTES", value_parser = bytes)]
    pub max_queued_bytes: Option<usize>,
}

/// `--jitter`: the core's [`Jitter`] modes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitterArg {
    /// Exactly the backoff: clients that failed together retry together
    None,
    /// Uniform between 0 and the backoff
    Full,
    /// Uniform between half the backoff and the backoff
    Equal,
    /// Uniform between the base and 3 times the previous delay
    Decorrelated,
}

impl From<JitterArg> for Jitter {
    fn from(j: JitterArg) -> Jitter {
        match j {
            JitterArg::None => Jitter::None,
            JitterArg::Full => Jitter::Full,
            JitterArg::Equal => Jitter::Equal,
            JitterArg::Decorrelated => Jitter::Decorrelated,
        }
    }
}

/// The flags of `echo_server`.
#[derive(Parser, Clone, Debug, PartialEq)]
pub struct ServerArgs {
    /// The address to listen on; port 0 picks a free one (printed as `listening on ADDR`)
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9001")]
    pub addr: String,
    /// Most connections at once, counting handshakes; the others get 503 [default: no limit]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Accept only this Origin (`scheme://host[:port]` or `null`); repeat for more [default:
    /// any origin]
    #[arg(long = "allow-origin", value_name = "ORIGIN", value_parser = origin)]
    pub allow_origins: Vec<String>,
    /// A supported subprotocol; repeat for more, most preferred first
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,
    /// Each connection's limits and timers.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl ServerArgs {
    /// The handshake policy: the allowed origins and the subprotocols.
    #[must_use]
    pub fn policy(&self) -> ServerPolicy {
        let mut policy = ServerPolicy::new();
        for origin in &self.allow_origins {
            policy = policy
                .allow_origin(origin)
                .expect("origins are checked when parsed");
        }
        for name in &self.subprotocols {
            policy = policy.subprotocol(name.clone());
        }
        policy
    }
}

/// Seconds, fractional or not, zero included.
fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("not a duration in seconds: {s}"))
}

/// Seconds, more than zero.
fn positive_secs(s: &str) -> Result<Duration, String> {
    match secs(s)? {
        d if d.is_zero() => Err("must be more than 0 seconds".into()),
        d => Ok(d),
    }
}

fn factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("not a non-negative number: {s}")),
    }
}

/// A byte count, with an optional `KiB`, `MiB` or `GiB` suffix.
fn bytes(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("not a byte count (N, NKiB, NMiB or NGiB): {s}")),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("not a byte count: {s}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("too large: {s}"))
}

fn origin(s: &str) -> Result<String, String> {
    ServerPolicy::new()
        .allow_origin(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

/// One line about a `tether-resume` session event, as the reconnecting clients log it.
#[must_use]
pub fn session_line(event: &tether::resume::SessionEvent) -> String {
    use tether::resume::SessionEvent;
    match event {
        SessionEvent::Started => "session started".to_string(),
        SessionEvent::Resumed { replayed } => {
            format!("session resumed; {replayed} messages the server missed sent again")
        }
        SessionEvent::Lost {
            reason,
            unconfirmed,
        } => format!(
            "session lost ({reason:?}): {} messages may not have arrived, and the server's \
             since our last count are gone",
            unconfirmed.len()
        ),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn client(args: &[&str]) -> Result<ReconnectingClientArgs, clap::Error> {
        ReconnectingClientArgs::try_parse_from(
            std::iter::once("reconnecting_client").chain(args.iter().copied()),
        )
    }

    #[test]
    fn the_clap_definitions_are_consistent() {
        ServerArgs::command().debug_assert();
        ClientArgs::command().debug_assert();
        InteropArgs::command().debug_assert();
        ReconnectingClientArgs::command().debug_assert();
    }

    #[test]
    fn no_flags_keep_the_base_config() {
        let args = client(&["ws://h/"]).unwrap();
        let mut base = Config::default();
        base.heartbeat = None;
        base.max_frame_payload = 64 << 20;
        assert_eq!(args.client.connection.config_from(base.clone()), base);
        assert_eq!(args.reconnect_config(), ReconnectConfig::default());
        assert_eq!(args.session_config(), SessionConfig::default());
    }

    #[test]
    fn deflate_flag_selects_a_mode() {
        let config = |args: &[&str]| client(args).unwrap().client.connection.config().deflate;
        assert_eq!(config(&["ws://h/"]), None);
        assert_eq!(
            config(&["ws://h/", "--deflate"]),
            Some(DeflateConfig::default())
        );
        assert_eq!(
            config(&["ws://h/", "--deflate", "low-memory"]),
            Some(DeflateConfig::low_memory())
        );
        assert_eq!(config(&["ws://h/", "--deflate=off"]), None);
        assert!(client(&["ws://h/", "--deflate", "maybe"]).is_err());
    }

    #[test]
    fn resume_flag_in_any_order_for_clients_and_servers() {
        let resume = Some(ResumeConfig::default());
        for args in [
            &[
                "ws://h/",
                "--resume",
                "--ping-interval",
                "1",
                "--pong-timeout",
                "2",
            ][..],
            &[
                "--pong-timeout",
                "2",
                "--resume",
                "ws://h/",
                "--ping-interval",
                "1",
            ],
        ] {
            let config = client(args).unwrap().client.connection.config();
            assert_eq!(config.resume, resume, "{args:?}");
            assert_eq!(
                config.heartbeat,
                Some(Heartbeat::new(
                    Duration::from_secs(1),
                    Duration::from_secs(2)
                ))
            );
        }
        assert_eq!(
            client(&["ws://h/"])
                .unwrap()
                .client
                .connection
                .config()
                .resume,
            None
        );
        let server = |args: &[&str]| {
            ServerArgs::try_parse_from(std::iter::once("sink_server").chain(args.iter().copied()))
                .unwrap()
        };
        let args = server(&["--resume", "--ping-interval", "3", "127.0.0.1:0"]);
        assert_eq!(args.addr, "127.0.0.1:0");
        assert_eq!(args.connection.config().resume, resume);
        assert_eq!(server(&["127.0.0.1:0"]).connection.config().resume, None);
    }

    #[test]
    fn heartbeat_flags_take_fractions_and_zero_turns_pings_off() {
        let args = client(&["ws://h/", "--ping-interval", "5", "--ping-timeout", "2.5"]).unwrap();
        let config = args.client.connection.config();
        assert_eq!(
            config.heartbeat,
            Some(Heartbeat::new(
                Duration::from_secs(5),
                Duration::from_millis(2500)
            ))
        );
        let args = client(&["ws://h/", "--pong-timeout", "3"]).unwrap();
        let mut base = Config::default();
        base.heartbeat = None;
        assert_eq!(
            args.client.connection.config_from(base).heartbeat,
            Some(Heartbeat::new(
                Duration::from_secs(20),
                Duration::from_secs(3)
            ))
        );
        let args = client(&["ws://h/", "--ping-interval", "0"]).unwrap();
        assert_eq!(args.client.connection.config().heartbeat, None);
        assert!(client(&["ws://h/", "--pong-timeout", "0"]).is_err());
        assert!(client(&["ws://h/", "--ping-interval", "-1"]).is_err());
    }

    #[test]
    fn server_flags_repeat_and_sizes_take_suffixes() {
        let args = ServerArgs::try_parse_from([
            "echo_server",
            "127.0.0.1:0",
            "--subprotocol",
            "chat.v2",
            "--subprotocol",
            "chat.v1",
            "--allow-origin",
            "https://example.com",
            "--max-connections",
            "3",
            "--max-message-size",
            "1MiB",
            "--idle-timeout",
            "0.25",
        ])
        .unwrap();
        assert_eq!(args.addr, "127.0.0.1:0");
        assert_eq!(args.policy().subprotocols(), ["chat.v2", "chat.v1"]);
        assert_eq!(args.max_connections, Some(3));
        let config = args.connection.config();
        assert_eq!(config.max_message_size, 1 << 20);
        assert_eq!(config.idle_timeout, Some(Duration::from_millis(250)));
        assert!(
            ServerArgs::try_parse_from(["echo_server", "--allow-origin", "no origin"]).is_err()
        );
        assert_eq!(
            ServerArgs::try_parse_from(["echo_server"]).unwrap().addr,
            "127.0.0.1:9001"
        );
    }

    #[test]
    fn reconnect_flags() {
        let args = client(&[
            "ws://h/",
            "--backoff-initial",
            "0.1",
            "--jitter",
            "none",
            "--first-delay-max",
            "0",
            "--max-attempts",
            "3",
            "--connect-timeout",
            "2",
        ])
        .unwrap();
        let config = args.reconnect_config();
        assert_eq!(config.backoff.initial, Duration::from_millis(100));
        assert_eq!(config.backoff.jitter, Jitter::None);
        assert_eq!(config.backoff.first_delay_max, None);
        assert_eq!(config.max_attempts, Some(3));
        assert_eq!(
            args.session_config().connect_timeout,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn interop_flags_and_a_default_url() {
        let args =
            InteropArgs::try_parse_from(["interop_client", "ws://h/", "--expect-server-close"])
                .unwrap();
        assert!(args.expect_server_close);
        assert!(InteropArgs::try_parse_from(["interop_client"]).is_err());
        let command = with_default_url(ClientArgs::command(), "ws://d/");
        let matches = command.try_get_matches_from(["autobahn_client"]).unwrap();
        assert_eq!(
            ClientArgs::from_arg_matches(&matches).unwrap().url,
            "ws://d/"
        );
    }
}
