//! Starting a connection: spawn its driver, then wait for the opening handshake's outcome.

use std::future::poll_fn;
use std::task::Poll;

use futures_io::{AsyncRead, AsyncWrite};
use tether::handshake::{Accept, ClientRequest, Reject, Request, Response};
use tether::{CloseCause, Closed, Config, Connection, Event};

use crate::config::{ServerConfig, Spawner};
use crate::driver::{Driver, Guard};
use crate::shared::{Shared, lock, now};
use crate::{Error, WebSocket};

/// A fresh OS-seeded CSPRNG for one connection's masking keys and nonces.
fn rng() -> rand::rngs::StdRng {
    rand::make_rng()
}

/// Spawns the driver of `conn` over `stream` and returns the handle; dropping the handle
/// before the handshake completed aborts the connection.
fn start<S>(stream: S, conn: Connection, spawner: &Spawner, guard: Option<Guard>) -> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Shared::new(conn);
    let ws = WebSocket::from_shared(shared.clone());
    spawner.spawn(Driver::new(shared, stream, guard));
    ws
}

/// Waits for the handshake event (`Request` or `Connected`), or the end.
async fn handshake_event<S>(ws: &WebSocket<S>) -> Result<Event, Closed> {
    let shared = ws.shared();
    poll_fn(|cx| {
        let mut st = lock(shared);
        while let Some(event) = st.conn.poll_event() {
            if let Event::Request(_) | Event::Connected { .. } = event {
                return Poll::Ready(Ok(event));
            }
        }
        // The end is reported once the transport is closed too.
        if st.done
            && let Some(closed) = st.conn.closed().cloned()
        {
            st.terminal_taken = true;
            return Poll::Ready(Err(closed));
        }
        st.set_reader(cx.waker());
        Poll::Pending
    })
    .await
}

/// The error for a connection that ended during its opening handshake.
fn handshake_error(closed: Closed) -> Error {
    match closed.cause {
        CloseCause::HandshakeFailed(e) => Error::Handshake(e),
        CloseCause::HandshakeTimeout => Error::HandshakeTimeout,
        CloseCause::HandshakeRejected { status } => Error::Rejected { status },
        _ => Error::Closed(closed),
    }
}

/// Client: runs the opening handshake for `request` over an already connected `stream` (TCP,
/// TLS, anything else), bounded by [`Config::handshake_timeout`]. Returns the connection and
/// the server's 101 response (its subprotocol, extensions and headers). Redirects are not
/// followed: they fail with [`Error::Handshake`].
///
/// The driver is spawned on smol's global executor. Cancel safety: dropping the future
/// aborts the half-open connection.
pub async fn connect_on<S>(
    stream: S,
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    connect_with(stream, request, config, &Spawner::default()).await
}

pub(crate) async fn connect_with<S>(
    stream: S,
    request: ClientRequest,
    mut config: Config,
    spawner: &Spawner,
) -> Result<(WebSocket<S>, Response), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    config.streaming = false;
    let conn = Connection::client(request, config, rng(), now());
    let mut ws = start(stream, conn, spawner, None);
    match handshake_event(&ws).await {
        Ok(Event::Connected { subprotocol }) => {
            let response = lock(ws.shared())
                .conn
                .response()
                .cloned()
                .expect("a connected client has the 101 response");
            ws.set_subprotocol(subprotocol);
            Ok((ws, response))
        }
        Ok(_) => unreachable!("a client sees no request"),
        Err(closed) => Err(handshake_error(closed)),
    }
}

/// Server: runs the opening handshake over an accepted `stream`, with `config.policy`
/// deciding (Origin allowlist, authentication hook, the first of its subprotocols the client
/// offered). Bounded by [`Config::handshake_timeout`]; a refused request gets its HTTP error
/// response and [`Error::Rejected`].
///
/// Cancel safety: dropping the future aborts the half-open connection.
pub async fn accept<S>(stream: S, config: ServerConfig) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_guarded(stream, config, None).await
}

pub(crate) async fn accept_guarded<S>(
    stream: S,
    config: ServerConfig,
    guard: Option<Guard>,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let policy = config.policy.clone();
    accept_inner(stream, config, guard, move |request| {
        Ok(policy.accept_for(request))
    })
    .await
}

/// Server: like [`accept`], but `decide` answers each request that passed `config.policy`
/// (typically with `policy.accept_for(request)` plus headers, or a [`Reject`]).
pub async fn accept_with<S, F>(
    stream: S,
    config: ServerConfig,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    accept_inner(stream, config, None, decide).await
}

async fn accept_inner<S, F>(
    stream: S,
    config: ServerConfig,
    guard: Option<Guard>,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let ServerConfig {
        config: mut core_config,
        policy,
        spawner,
    } = config;
    core_config.streaming = false;
    let conn = Connection::server(core_config, policy, rng(), now());
    let mut ws = start(stream, conn, &spawner, guard);
    let request = match handshake_event(&ws).await {
        Ok(Event::Request(request)) => request,
        Ok(_) => unreachable!("a server sees a request first"),
        Err(closed) => return Err(handshake_error(closed)),
    };
    let decision = decide(&request);
    let mut st = lock(ws.shared());
    let outcome = match decision {
        Ok(accept) => {
            let subprotocol = accept.subprotocol.clone();
            match st.conn.accept(now(), accept) {
                Ok(()) => Ok(subprotocol),
                Err(_) => {
                    // The decision selected something the client did not offer.
                    let reject = Reject::new(500);
                    let status = reject.effective_status();
                    let _ = st.conn.reject(reject);
                    Err(Error::Rejected { status })
                }
            }
        }
        Err(reject) => {
            let status = reject.effective_status();
            let _ = st.conn.reject(reject);
            Err(Error::Rejected { status })
        }
    };
    let wake = st.wake_driver();
    drop(st);
    wake.run();
    let subprotocol = outcome?;
    ws.set_subprotocol(subprotocol);
    Ok(ws)
}
