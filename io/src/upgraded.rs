//! WebSockets over a transport whose HTTP upgrade happened elsewhere (hyper, axum, an HTTP/2
//! extended CONNECT stream, a proxy that answered the handshake): the connection starts open,
//! in either role, with the whole engine behind it (heartbeats, the close handshake and its
//! timeout, flow control).

use std::sync::Arc;

use tether::handshake::Negotiated;
use tether::{Config, Connection, Event, Role};

use crate::clock::{now, os_rng};
use crate::driver::{Driver, Together};
use crate::runtime::{Runtime, Transport};
use crate::shared::Shared;
use crate::{Error, WebSocket};

/// What an upgrade done elsewhere agreed on, and how the connection then runs.
///
/// ```
/// use tether_io::Upgraded;
/// use tether::{Config, Role};
/// let upgraded = Upgraded::new(Role::Server, Config::default()).subprotocol("chat");
/// assert_eq!(upgraded.negotiated().subprotocol.as_deref(), Some("chat"));
/// ```
#[derive(Clone, Debug)]
pub struct Upgraded {
    role: Role,
    negotiated: Negotiated,
    config: Config,
    peer: Option<std::net::SocketAddr>,
}

impl Upgraded {
    /// A connection in `role` (a server answered the upgrade, a client asked for it) that runs
    /// with `config`, with no subprotocol and no extension agreed.
    #[must_use]
    pub fn new(role: Role, config: Config) -> Self {
        Upgraded {
            role,
            negotiated: Negotiated::default(),
            config,
            peer: None,
        }
    }

    /// The peer's address, when the code that did the upgrade knows it: the `peer` of the
    /// connection's `tracing` span (feature `tracing`).
    #[must_use]
    pub fn peer(mut self, peer: std::net::SocketAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// The subprotocol and extensions the upgrade agreed on (the response's
    /// `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions`); permessage-deflate among them
    /// is set up when `Config::deflate` is set.
    #[must_use]
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Sets what the upgrade agreed on; see [`negotiated`](Upgraded::negotiated).
    #[must_use]
    pub fn with_negotiated(mut self, negotiated: Negotiated) -> Self {
        self.negotiated = negotiated;
        self
    }

    /// Sets the subprotocol the upgrade agreed on.
    #[must_use]
    pub fn subprotocol(mut self, subprotocol: impl Into<String>) -> Self {
        self.negotiated.subprotocol = Some(subprotocol.into());
        self
    }

    /// The role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Opens a WebSocket over `stream`, whose upgrade is done, and spawns its driver in a task of
/// the runtime. `leftover` is what whoever did the upgrade read past the HTTP head (frames the
/// peer sent right behind it): the core takes it before anything is read from `stream`, so no
/// frame is lost. Fails only when the agreed permessage-deflate terms cannot be acted on
/// ([`Error::Handshake`]) or the OS has no randomness.
pub fn open_upgraded<R: Runtime, T: Transport>(
    stream: T,
    leftover: &[u8],
    upgraded: Upgraded,
) -> Result<WebSocket, Error> {
    let (socket, driver) = start::<R, T>(stream, leftover, upgraded)?;
    driver.spawn();
    Ok(socket)
}

/// [`open_upgraded`], then `handler` with the connection, with the connection's driver in this same
/// future (one task per connection, as `Connecting::serve` does). The future ends once
/// `handler` has returned and the transport is closed; it fails only when [`open_upgraded`] would.
pub fn serve_upgraded<R, T, H, Fut>(
    stream: T,
    leftover: &[u8],
    upgraded: Upgraded,
    handler: H,
) -> impl Future<Output = Result<(), Error>>
where
    R: Runtime,
    T: Transport,
    H: FnOnce(WebSocket) -> Fut,
    Fut: Future<Output = ()>,
{
    let started = start::<R, T>(stream, leftover, upgraded);
    async move {
        let (socket, driver) = started?;
        let handler = std::pin::pin!(handler(socket));
        Together::new(handler, driver).await;
        Ok(())
    }
}

fn start<R: Runtime, T: Transport>(
    stream: T,
    leftover: &[u8],
    upgraded: Upgraded,
) -> Result<(WebSocket, Driver<R>), Error> {
    let Upgraded {
        role,
        negotiated,
        mut config,
        peer,
    } = upgraded;
    // The connection's span, which its shared state adopts: the core's events happen in it.
    #[cfg(feature = "tracing")]
    let span =
        crate::trace::connection_span(role, peer.as_ref().map(|p| p as &dyn std::fmt::Display));
    #[cfg(feature = "tracing")]
    let _entered = span.enter();
    #[cfg(not(feature = "tracing"))]
    let _ = peer;
    // The handle hands out whole messages, as after the built-in handshakes.
    config.streaming = false;
    let at = now::<R>();
    let mut conn = match role {
        Role::Client => Connection::open_negotiated(role, &negotiated, config, os_rng()?, at),
        // A server draws randomness only for heartbeat payloads: the OS generator, which takes
        // no memory per connection (as `accept` does).
        _ => Connection::open_negotiated(
            role,
            &negotiated,
            config,
            tether::rand_core::UnwrapErr(rand::rngs::SysRng),
            at,
        ),
    }
    .map_err(|e| Error::Handshake(Box::new(e)))?;
    // The handshake's event; what follows is the handle's.
    while let Some(event) = conn.poll_event() {
        if matches!(event, Event::Connected { .. }) {
            break;
        }
    }
    conn.handle_data(at, leftover);
    let subprotocol = negotiated.subprotocol;
    let shared = Shared::new(conn, now::<R>);
    let driver = Driver::<R>::new(stream, Arc::clone(&shared));
    Ok((WebSocket::new(shared, subprotocol), driver))
}
