//! Client and server settings: the core's [`Config`] plus what the adapter itself needs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_executor::Executor;
use tether::Config;
use tether::handshake::ServerPolicy;

/// Where the background driver of each connection runs.
///
/// By default it is spawned with `smol::spawn` on smol's global executor, whose threads run
/// on their own, so a connection works from `smol::block_on` and from any other executor.
/// A caller that runs its own [`Executor`] can hand it here instead; it must then keep that
/// executor running for as long as its connections live.
#[derive(Clone, Default)]
pub(crate) struct Spawner(Option<Arc<Executor<'static>>>);

impl Spawner {
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        match &self.0 {
            Some(executor) => executor.spawn(future).detach(),
            None => smol::spawn(future).detach(),
        }
    }
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Spawner(caller's executor)"
        } else {
            "Spawner(smol::spawn)"
        })
    }
}

/// Settings for [`connect`](crate::connect) and [`connect_on`](crate::connect_on).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The core's settings: limits, heartbeat, timeouts.
    pub config: Config,
    /// How long resolving, connecting TCP and the TLS handshake may take together.
    /// Default 10 s. The WebSocket handshake that follows is bounded by
    /// [`Config::handshake_timeout`].
    pub connect_timeout: Duration,
    /// The rustls configuration for `wss://`. Default: rustls with the ring provider and the
    /// Mozilla roots from `webpki-roots`.
    #[cfg(feature = "rustls")]
    pub tls: Option<Arc<futures_rustls::rustls::ClientConfig>>,
    pub(crate) spawner: Spawner,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            config: Config::default(),
            connect_timeout: Duration::from_secs(10),
            #[cfg(feature = "rustls")]
            tls: None,
            spawner: Spawner::default(),
        }
    }
}

impl ClientConfig {
    /// The defaults around the core's `config`.
    #[must_use]
    pub fn new(config: Config) -> Self {
        ClientConfig {
            config,
            ..ClientConfig::default()
        }
    }

    /// The core's settings.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The connect timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A caller-supplied rustls configuration (for a private CA, client certificates, ...).
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls(mut self, tls: Arc<futures_rustls::rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Runs each connection's driver on `executor` instead of smol's global executor.
    #[must_use]
    pub fn executor(mut self, executor: Arc<Executor<'static>>) -> Self {
        self.spawner = Spawner(Some(executor));
        self
    }
}

/// Settings for [`accept`](crate::accept), [`accept_with`](crate::accept_with) and
/// [`Server`](crate::Server).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The core's settings: limits, heartbeat, timeouts (the opening handshake is bounded by
    /// [`Config::handshake_timeout`]).
    pub config: Config,
    /// Origin allowlist, authentication hook and subprotocols.
    pub policy: ServerPolicy,
    pub(crate) spawner: Spawner,
}

impl ServerConfig {
    /// The core's `config` with `policy`.
    #[must_use]
    pub fn new(config: Config, policy: ServerPolicy) -> Self {
        ServerConfig {
            config,
            policy,
            spawner: Spawner::default(),
        }
    }

    /// The core's settings.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The handshake policy.
    #[must_use]
    pub fn policy(mut self, policy: ServerPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs each connection's driver on `executor` instead of smol's global executor.
    #[must_use]
    pub fn executor(mut self, executor: Arc<Executor<'static>>) -> Self {
        self.spawner = Spawner(Some(executor));
        self
    }
}
