//! Ready-made server decisions: which origins may connect, who is authenticated, and which
//! subprotocol to select.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use super::accept::Accept;
use super::origin::{InvalidOrigin, Origin};
use super::reject::Reject;
use super::request::Request;

/// A hook that authenticates a request before it is accepted.
type Authenticate = Arc<dyn Fn(&Request) -> Result<(), Reject> + Send + Sync>;

/// A server's rules for which handshakes to accept.
///
/// - **Origins**: browsers send `Origin` with every WebSocket request, so an allowlist stops
///   other sites' pages from opening connections with the user's cookies (RFC 6455 §10.2).
///   Origins match by scheme, host and port, ignoring the case of the scheme and host, with
///   default ports filled in. An empty allowlist allows any origin. With an allowlist, a
///   request without `Origin` (a non-browser client) is refused unless
///   [`allow_missing_origin`](ServerPolicy::allow_missing_origin) is set. A refused origin gets
///   403.
/// - **Authentication**: a hook that sees the request and may refuse it (typically 401 with
///   `WWW-Authenticate`, or 403).
/// - **Subprotocols**: the server's list, in its order of preference.
///
/// ```
/// use tether::handshake::{Reject, ServerPolicy};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let policy = ServerPolicy::new()
///     .allow_origin("https://app.example.com")?
///     .authenticate(|request| match request.header("Authorization") {
///         Some("Bearer secret") => Ok(()),
///         _ => Err(Reject::new(401).header("WWW-Authenticate", "Bearer")),
///     })
///     .subprotocol("v2.chat")
///     .subprotocol("v1.chat");
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct ServerPolicy {
    origins: Vec<Origin>,
    allow_missing_origin: bool,
    authenticate: Option<Authenticate>,
    subprotocols: Vec<String>,
    pass_http: bool,
}

impl ServerPolicy {
    /// A policy that accepts any origin, authenticates nobody and selects no subprotocol.
    #[must_use]
    pub fn new() -> Self {
        ServerPolicy::default()
    }

    /// Adds an origin to the allowlist: `scheme://host[:port]`, or `null` for opaque origins
    /// (sandboxed frames, `file:` pages).
    pub fn allow_origin(mut self, origin: &str) -> Result<Self, InvalidOrigin> {
        self.origins.push(Origin::parse(origin)?);
        Ok(self)
    }

    /// Whether a request without `Origin` passes a non-empty allowlist. Default: `false`.
    #[must_use]
    pub fn allow_missing_origin(mut self, allow: bool) -> Self {
        self.allow_missing_origin = allow;
        self
    }

    /// Sets the hook that authenticates requests (it runs after the origin check).
    #[must_use]
    pub fn authenticate(
        mut self,
        hook: impl Fn(&Request) -> Result<(), Reject> + Send + Sync + 'static,
    ) -> Self {
        self.authenticate = Some(Arc::new(hook));
        self
    }

    /// Whether requests that are HTTP/1.x but not a WebSocket opening request (a health
    /// check, a page, a broken upgrade) are handed to the application as
    /// [`Event::Request`](crate::Event::Request) too, instead of being refused by the core
    /// (426, 400, 505, ...). Such a request has [`Request::is_websocket`] false, skips the
    /// origin check and the authentication hook, and is answered with
    /// [`Connection::reject`](crate::Connection::reject) and any status, 2xx included;
    /// [`Request::refusal`] is the answer the core would have sent. Default: `false`.
    #[must_use]
    pub fn pass_http_requests(mut self, pass: bool) -> Self {
        self.pass_http = pass;
        self
    }

    /// Whether [`pass_http_requests`](ServerPolicy::pass_http_requests) is set.
    #[must_use]
    pub fn passes_http_requests(&self) -> bool {
        self.pass_http
    }

    /// Adds a supported subprotocol; earlier ones are preferred.
    #[must_use]
    pub fn subprotocol(mut self, subprotocol: impl Into<String>) -> Self {
        self.subprotocols.push(subprotocol.into());
        self
    }

    /// The supported subprotocols, most preferred first.
    #[must_use]
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// Checks `origin` (a request's `Origin` header) against the allowlist: 403 if refused.
    pub fn check_origin(&self, origin: Option<&str>) -> Result<(), Reject> {
        if self.origins.is_empty() {
            return Ok(());
        }
        let Some(origin) = origin else {
            return if self.allow_missing_origin {
                Ok(())
            } else {
                Err(Reject::protocol(403, "missing Origin header"))
            };
        };
        match Origin::parse(origin) {
            Ok(parsed) if self.origins.contains(&parsed) => Ok(()),
            _ => Err(Reject::protocol(
                403,
                &alloc::format!("origin {origin:?} is not allowed"),
            )),
        }
    }

    /// Runs the origin check, then the authentication hook.
    pub fn check(&self, request: &Request) -> Result<(), Reject> {
        self.check_origin(request.origin())?;
        match &self.authenticate {
            Some(hook) => hook(request),
            None => Ok(()),
        }
    }

    /// An [`Accept`] that selects the first supported subprotocol the client offered, if any.
    #[must_use]
    pub fn accept_for(&self, request: &Request) -> Accept {
        let mut accept = Accept::new();
        accept.subprotocol = request
            .choose_subprotocol(&self.subprotocols)
            .map(String::from);
        accept
    }
}

impl fmt::Debug for ServerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerPolicy")
            .field("origins", &self.origins)
            .field("allow_missing_origin", &self.allow_missing_origin)
            .field(
                "authenticate",
                &self.authenticate.as_ref().map(|_| "<hook>"),
            )
            .field("subprotocols", &self.subprotocols)
            .field("pass_http", &self.pass_http)
            .finish()
    }
}
