//! Client and server settings: the core's [`Config`] plus what driving it needs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tether::Config;
use tether::handshake::{Reject, Request, ServerPolicy};

/// A client's settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Limits and timers of the connection, including `handshake_timeout`.
    pub config: Config,
    /// How long resolving the host and establishing TCP (and, for `wss://`, TLS) may take
    /// together. Default 10 s; `Duration::MAX` waits for as long as the OS does.
    pub connect_timeout: Duration,
    /// The TLS configuration for `wss://`; `None` (the default) uses rustls with the
    /// `webpki-roots` store and the `ring` provider.
    #[cfg(feature = "rustls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The HTTP proxy to connect through (CONNECT); `None` (the default): connect directly.
    /// The environment's proxies are used only when asked for, with
    /// `proxy(Proxy::from_env())` (see [`Proxy`](crate::Proxy) for why).
    pub proxy: Option<crate::Proxy>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            config: Config::default(),
            connect_timeout: Duration::from_secs(10),
            #[cfg(feature = "rustls")]
            tls: None,
            proxy: None,
        }
    }
}

impl ClientConfig {
    /// Settings with the core `config` and the default connect timeout.
    #[must_use]
    pub fn new(config: Config) -> Self {
        ClientConfig {
            config,
            ..ClientConfig::default()
        }
    }

    /// Replaces the core's settings.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects through HTTP proxies: [`Proxy::all`](crate::Proxy::all) for one proxy, or
    /// [`Proxy::from_env`](crate::Proxy::from_env) for `HTTPS_PROXY`, `HTTP_PROXY` and
    /// `NO_PROXY`. The TCP connection goes to the proxy, `CONNECT` asks it for a tunnel to
    /// the server, and TLS (for `wss://`) and the WebSocket handshake run inside the tunnel;
    /// all of it within `connect_timeout`, but for the WebSocket handshake.
    #[must_use]
    pub fn proxy(mut self, proxy: crate::Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Sets the rustls configuration for `wss://`.
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls(mut self, tls: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// A server's settings: the core's [`Config`], the handshake [`ServerPolicy`] (Origin
/// allowlist, authentication hook, subprotocols) and, for a listener, its limits.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Limits and timers of each connection, including `handshake_timeout`.
    pub config: Config,
    /// Which handshakes to accept.
    pub policy: ServerPolicy,
    /// Listener only: the most connections (handshaking or open) at once; the others get
    /// `503 Service Unavailable` with `Retry-After`. `None` (the default): no limit.
    pub max_connections: Option<usize>,
    /// The `Retry-After` sent with a 503, rounded up to whole seconds. Default 1 s.
    pub retry_after: Duration,
    /// Listener only: how many refusals (503 answers) may be in progress at once; beyond
    /// that, connections over the limit are closed without an answer, so a flood costs
    /// bounded work. Default 64.
    pub max_refusals: usize,
    /// `tether-resume` ([`Config::resume`](tether::Config::resume)): where sessions are kept.
    /// `None` (the default): a [`Server`](crate::Server) makes an in-memory one of its own
    /// when resumption is on; share one to resume across [`accept`](crate::accept) calls.
    pub sessions: Option<std::sync::Arc<crate::SessionRegistry>>,
    /// The asynchronous request hook ([`on_request`](ServerConfig::on_request)). `None` (the
    /// default): the policy alone decides, and plain HTTP requests get the core's refusal.
    pub request_hook: Option<RequestHook>,
    /// Whether an accepted connection keeps its opening request (method, path, query, header
    /// fields) for [`WebSocket::request`](crate::WebSocket::request). Default `false`: the
    /// request is for the hook and the decision function, and an idle connection stays
    /// small; when on, each connection keeps the request head as received (about 150 bytes
    /// from a bare client, 400-800 from a browser) until the handle drops it
    /// ([`take_request`](crate::WebSocket::take_request)).
    pub keep_request: bool,
}

/// What [`ServerConfig::on_request`] runs, type-erased so the config stays one type.
#[derive(Clone)]
pub struct RequestHook(Arc<HookFn>);

pub(crate) type HookFuture = Pin<Box<dyn Future<Output = Result<(), Reject>> + Send>>;
type HookFn = dyn Fn(&Request) -> HookFuture + Send + Sync;

impl RequestHook {
    /// Wraps `hook`: see [`ServerConfig::on_request`].
    pub fn new<F, Fut>(hook: F) -> Self
    where
        F: Fn(&Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Reject>> + Send + 'static,
    {
        RequestHook(Arc::new(move |request: &Request| -> HookFuture {
            Box::pin(hook(request))
        }))
    }

    /// Starts the hook on `request`.
    pub(crate) fn call(&self, request: &Request) -> HookFuture {
        (self.0)(request)
    }
}

impl std::fmt::Debug for RequestHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestHook(..)")
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::new(Config::default(), ServerPolicy::default())
    }
}

impl ServerConfig {
    /// Settings with `config` and `policy`, no connection limit and a 1 s `Retry-After`.
    #[must_use]
    pub fn new(config: Config, policy: ServerPolicy) -> Self {
        ServerConfig {
            config,
            policy,
            max_connections: None,
            retry_after: Duration::from_secs(1),
            max_refusals: 64,
            sessions: None,
            request_hook: None,
            keep_request: false,
        }
    }

    /// Replaces the core's settings.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Replaces the handshake policy.
    #[must_use]
    pub fn policy(mut self, policy: ServerPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the connection limit of a listener.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// Sets an asynchronous hook that sees every request before it is answered: WebSocket
    /// opening requests (after the policy's origin check and authentication hook passed) and
    /// also plain HTTP requests on the same port (a health check, a page; see
    /// [`Request::is_websocket`]). It may take its time (ask a database, an identity
    /// provider) within `Config::handshake_timeout`, while the connection's timers run.
    ///
    /// `Ok(())` lets the request through: a WebSocket request is accepted by the policy (or
    /// the decision function of `handshake_with`), a plain HTTP request gets the core's
    /// refusal (426 for a `GET` without upgrade). `Err(reject)` answers with that response,
    /// any status: a 401 with `WWW-Authenticate`, a redirect, or a health check's `200`.
    ///
    /// The hook gets the request by reference; copy what the future needs before it starts
    /// (the usual pattern: `|req| { let token = req.header("authorization").map(String::from);
    /// async move { check(token).await } }`).
    ///
    /// ```
    /// use tether::handshake::Reject;
    /// use tether_io::ServerConfig;
    /// let config = ServerConfig::default().on_request(|req| {
    ///     let health = req.path() == "/health";
    ///     let token = req.header("authorization").map(str::to_owned);
    ///     async move {
    ///         if health {
    ///             return Err(Reject::new(200).body("ok\n"));
    ///         }
    ///         match token.as_deref() {
    ///             Some("Bearer let-me-in") => Ok(()),
    ///             _ => Err(Reject::new(401).header("WWW-Authenticate", "Bearer")),
    ///         }
    ///     }
    /// });
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn on_request<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(&Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Reject>> + Send + 'static,
    {
        self.request_hook = Some(RequestHook::new(hook));
        self
    }

    /// Sets [`keep_request`](ServerConfig::keep_request).
    #[must_use]
    pub fn keep_request(mut self, keep: bool) -> Self {
        self.keep_request = keep;
        self
    }

    /// Sets the `Retry-After` of a 503.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = delay;
        self
    }
}
