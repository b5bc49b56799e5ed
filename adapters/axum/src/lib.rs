//! # tether-axum: tether WebSockets in axum
//!
//! ```toml
//! [dependencies]
//! tether-axum = "0.1"   # features = ["deflate"] for permessage-deflate
//! ```
//!
//! A server: the [`WebSocketUpgrade`] extractor has the method names of axum's own
//! (`on_upgrade`, `protocols`, `max_message_size`, `on_failed_upgrade`, ...) and yields a
//! tether [`WebSocket`] with heartbeats, the close timeout and flow control running.
//!
//! ```no_run
//! use axum::{Router, routing::any};
//! use tether_axum::{WebSocket, WebSocketUpgrade};
//!
//! async fn ws(upgrade: WebSocketUpgrade) -> axum::response::Response {
//!     upgrade.protocols(["chat"]).on_upgrade(echo)
//! }
//!
//! async fn echo(mut ws: WebSocket) {
//!     while let Some(Ok(message)) = ws.recv().await {
//!         if ws.send(message).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! // `any`, not `get`: an HTTP/2 WebSocket is a CONNECT (RFC 8441).
//! let app = Router::new().route("/ws", any(ws));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! A client is `tether-tokio`'s (re-exported here as [`tether_tokio`]):
//! `tether_tokio::connect("ws://127.0.0.1:3000/ws", Default::default())`.
//!
//! ## HTTP/1.1 and HTTP/2
//! Both work. An HTTP/1.1 upgrade is a `GET` answered with `101` (RFC 6455 §4); an HTTP/2
//! WebSocket is an extended `CONNECT` with `:protocol: websocket`, answered with `200`
//! (RFC 8441). `axum::serve` (with axum's `http2` feature, which this crate turns on) enables
//! the extended CONNECT setting (`SETTINGS_ENABLE_CONNECT_PROTOCOL`) itself. With another
//! server built on `hyper_util`, call `builder.http2().enable_connect_protocol()`; without it
//! clients fall back to HTTP/1.1. Route the handler with [`any`](axum::routing::any) (or
//! `get(h).connect(h)`): a `get` route never sees the CONNECT.
//!
//! ## Differences from axum's extractor
//! - A request that is not a valid WebSocket handshake is not an extraction failure: it is
//!   answered by [`on_upgrade`](WebSocketUpgrade::on_upgrade) with the status the broken rule
//!   calls for (400, 405, 426 with `Sec-WebSocket-Version`, ... as the core's
//!   `validate_request` says), and `on_failed_upgrade` is called with
//!   [`UpgradeError::Rejected`]. `Option<WebSocketUpgrade>` is `None` for a request that does
//!   not ask for a WebSocket at all (no `Upgrade` header, not a CONNECT), so one route can
//!   serve a page and a WebSocket.
//! - The handle is tether's [`WebSocket`]: `send`, `recv`, `close` (code and reason),
//!   `split`, `Stream` and `Sink`; Pongs and the close echo are answered by the engine.
//! - With the `tracing` feature each connection has a `websocket` span; serve the app with
//!   `into_make_service_with_connect_info::<SocketAddr>()` and the span names the peer.
//! - [`config`](WebSocketUpgrade::config) sets everything else of tether's
//!   [`Config`]; [`policy`](WebSocketUpgrade::policy) adds an Origin allowlist and an
//!   authentication hook.
#![forbid(unsafe_code)]

mod app;

use std::fmt;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use tether::handshake::http::{accept_request, reject_response};
use tether::handshake::{Reject, Request, ServerPolicy};
use tether_tokio::{Role, Upgraded};

pub use app::echo_app;
pub use tether::Heartbeat;
pub use tether_tokio::{self, CloseCode, Config, Error, Message, WebSocket};

/// Why a WebSocket upgrade did not give a connection, as handed to
/// [`on_failed_upgrade`](WebSocketUpgrade::on_failed_upgrade).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The request was refused with this response (not a valid handshake, or refused by the
    /// policy's Origin or authentication checks).
    #[error(transparent)]
    Rejected(Reject),
    /// The server gave the request no way to upgrade (not served by hyper, or an HTTP/2
    /// CONNECT on a server without extended CONNECT); it was answered with 500.
    #[error("the server does not support upgrading this request")]
    Unsupported,
    /// The upgrade failed after the response was sent (the client went away).
    #[error("the HTTP upgrade failed: {0}")]
    Upgrade(#[from] hyper::Error),
    /// The connection could not start on the upgraded stream.
    #[error("the WebSocket could not open: {0}")]
    Open(#[from] Error),
}

type OnFailed = Box<dyn FnOnce(UpgradeError) + Send + 'static>;

/// The extractor of a WebSocket handshake (HTTP/1.1 upgrade or HTTP/2 extended CONNECT):
/// configure it, then answer with [`on_upgrade`](WebSocketUpgrade::on_upgrade).
pub struct WebSocketUpgrade {
    request: Result<Request, Reject>,
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
    policy: ServerPolicy,
    config: Config,
    on_failed: Option<OnFailed>,
    /// The client's address, when the app is served with `ConnectInfo<SocketAddr>`.
    peer: Option<std::net::SocketAddr>,
}

impl fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("request", &self.request)
            .field("policy", &self.policy)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Whether a request asks for a WebSocket at all: an `Upgrade` header or a CONNECT.
fn asks_for_websocket(parts: &Parts) -> bool {
    parts.method == http::Method::CONNECT || parts.headers.contains_key(http::header::UPGRADE)
}

impl WebSocketUpgrade {
    fn from_parts(parts: &mut Parts) -> Self {
        let protocol = parts
            .extensions
            .get::<hyper::ext::Protocol>()
            .map(|p| p.as_str().to_owned());
        WebSocketUpgrade {
            request: Request::from_parts(parts, protocol.as_deref()),
            on_upgrade: parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
            policy: ServerPolicy::new(),
            config: Config::default(),
            on_failed: None,
            peer: parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0),
        }
    }

    /// The validated request (path, query, headers, the subprotocols and extensions offered),
    /// or `None` when it is not a valid handshake.
    #[must_use]
    pub fn request(&self) -> Option<&Request> {
        self.request.as_ref().ok()
    }

    /// The subprotocols the server supports, most preferred first: the first one the client
    /// offered is selected (RFC 6455 §4.2.2). Added to those of the [`policy`](Self::policy).
    #[must_use]
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        for p in protocols {
            self.policy = self.policy.subprotocol(p);
        }
        self
    }

    /// The subprotocol that will be selected, if any.
    #[must_use]
    pub fn selected_protocol(&self) -> Option<&str> {
        self.request()?
            .choose_subprotocol(self.policy.subprotocols())
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn requested_protocols(&self) -> impl Iterator<Item = &str> {
        self.request()
            .into_iter()
            .flat_map(|r| r.subprotocols().iter().map(String::as_str))
    }

    /// The largest message accepted (`Config::max_message_size`): a larger one closes the
    /// connection with 1009. Default 64 MiB.
    #[must_use]
    pub fn max_message_size(mut self, max: usize) -> Self {
        self.config.max_message_size = max;
        self
    }

    /// The largest frame payload accepted (`Config::max_frame_payload`): a larger one closes
    /// the connection with 1009. Default 16 MiB.
    #[must_use]
    pub fn max_frame_size(mut self, max: usize) -> Self {
        self.config.max_frame_payload = max;
        self
    }

    /// The largest read buffer offered to the transport (`Config::read_buffer_size`).
    /// Default 64 KiB.
    #[must_use]
    pub fn read_buffer_size(mut self, size: usize) -> Self {
        self.config.read_buffer_size = size;
        self
    }

    /// The unwritten output over which sends wait (`Config::high_watermark`; the low
    /// watermark is kept under it). Default 2 MiB. axum's `write_buffer_size` (a flush
    /// threshold) has no counterpart: tether writes what is queued at every wake-up.
    #[must_use]
    pub fn max_write_buffer_size(mut self, size: usize) -> Self {
        self.config.high_watermark = size;
        self.config.low_watermark = self.config.low_watermark.min(size / 2);
        self
    }

    /// Heartbeat Pings and dead-peer detection (`Config::heartbeat`); `None` turns them off.
    #[must_use]
    pub fn heartbeat(mut self, heartbeat: Option<Heartbeat>) -> Self {
        self.config.heartbeat = heartbeat;
        self
    }

    /// How long to wait for the peer's Close after sending ours (`Config::close_timeout`).
    #[must_use]
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// Replaces the whole connection configuration (set it before the shortcuts above, which
    /// change fields of it). With the `deflate` feature, `Config::deflate` answers a client's
    /// permessage-deflate offer.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the server policy: an Origin allowlist (403 otherwise), an authentication hook,
    /// supported subprotocols. Replaces the subprotocols given to
    /// [`protocols`](Self::protocols) before.
    #[must_use]
    pub fn policy(mut self, policy: ServerPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Called when the upgrade gives no connection: the request was refused (with the
    /// response [`on_upgrade`](Self::on_upgrade) returns), the server cannot upgrade it, the
    /// upgrade failed after the response, or the connection could not start. Default: nothing.
    #[must_use]
    pub fn on_failed_upgrade<C>(mut self, callback: C) -> Self
    where
        C: FnOnce(UpgradeError) + Send + 'static,
    {
        self.on_failed = Some(Box::new(callback));
        self
    }

    /// Answers the handshake and, once the upgrade is done, runs `callback` with the open
    /// connection in a task of its own (the connection's driver in the same task). Returns the
    /// response to send: `101 Switching Protocols` (HTTP/1.1) or `200 OK` (HTTP/2 extended
    /// CONNECT) with the selected subprotocol and extensions, or the refusal.
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let WebSocketUpgrade {
            request,
            on_upgrade,
            policy,
            config,
            on_failed,
            peer,
        } = self;
        let fail = |error: UpgradeError| {
            if let Some(on_failed) = on_failed {
                on_failed(error);
            }
        };
        let decided = request.and_then(|request| {
            policy.check(&request)?;
            let accept = policy.accept_for(&request);
            accept_request(request, accept, &config)
        });
        let accepted = match decided {
            Ok(accepted) => accepted,
            Err(reject) => {
                let response = reject_response(&reject).map(Body::from).into_response();
                fail(UpgradeError::Rejected(reject));
                return response;
            }
        };
        let Some(on_upgrade) = on_upgrade else {
            fail(UpgradeError::Unsupported);
            return (
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "this server cannot upgrade the request\n",
            )
                .into_response();
        };
        let mut settings =
            Upgraded::new(Role::Server, config).with_negotiated(accepted.negotiated.clone());
        if let Some(peer) = peer {
            // The `peer` of the connection's tracing span.
            settings = settings.peer(peer);
        }
        tokio::spawn(async move {
            let result = match on_upgrade.await {
                Ok(upgraded) => tether_tokio::hyper::serve(upgraded, settings, callback)
                    .await
                    .map_err(UpgradeError::from),
                Err(e) => Err(UpgradeError::from(e)),
            };
            if let Err(e) = result {
                fail(e);
            }
        });
        accepted.response.map(|()| Body::empty())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = std::convert::Infallible;

    /// Never fails: a request that is not a valid handshake is answered by
    /// [`on_upgrade`](WebSocketUpgrade::on_upgrade).
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(WebSocketUpgrade::from_parts(parts))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for WebSocketUpgrade {
    type Rejection = std::convert::Infallible;

    /// `None` for a request that does not ask for a WebSocket (no `Upgrade` header, not a
    /// CONNECT); a request that asks, validly or not, is extracted.
    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(asks_for_websocket(parts).then(|| WebSocketUpgrade::from_parts(parts)))
    }
}
