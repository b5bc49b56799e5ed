//! Driving a connection through its opening handshake inside the caller's future, then
//! handing the transport to the connection's driver (which the caller spawns, or runs beside
//! its own work in one task: `Connecting::serve`).

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use tether::handshake::{Accept, AcceptError, Reject, Request, Response};
use tether::{Closed, Connection, Event};

use crate::clock::now;
use crate::config::{HookFuture, RequestHook};
use crate::driver::Driver;
use crate::resume::SessionRegistry;
use crate::runtime::{Runtime, Transport};
use crate::shared::Shared;
use crate::{Error, WebSocket};

/// How the handshake ended.
enum Outcome {
    Open,
    Ended(Closed),
}

/// What a server's handshake does besides the decision function.
#[derive(Default)]
pub(crate) struct ServerSide {
    /// Sees every request first (`ServerConfig::on_request`).
    pub(crate) hook: Option<RequestHook>,
    /// The handle keeps the accepted request (`ServerConfig::keep_request`).
    pub(crate) keep_request: bool,
}

/// Drives `conn` over `stream` until it is open (then returns the handle and the driver that
/// must run from now on) or ended. A server's request goes to `server`'s hook, then to
/// `decide`. `guard` lives as long as the transport.
pub(crate) async fn drive<R, T, F>(
    stream: T,
    conn: Connection,
    decide: Option<F>,
    server: ServerSide,
    guard: Option<crate::server::Slot>,
    sessions: Option<Arc<SessionRegistry>>,
) -> Result<(WebSocket, Option<Response>, Driver<R>), Error>
where
    R: Runtime,
    T: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let shared = Shared::new(conn, now::<R>);
    let mut guard = guard;
    if let Some(slot) = &mut guard
        && !slot.track(&shared)
    {
        // The server is shutting down: this connection does not start.
        shared.lock().conn.abort();
    }
    let mut driver = Driver::<R>::new(stream, Arc::clone(&shared));
    let mut decide = decide;
    let mut connected = false;
    // The request hook at work, and the request it looks at.
    let mut hooked: Option<(Request, HookFuture)> = None;
    let mut kept: Option<Box<[u8]>> = None;
    let outcome = poll_fn(|cx| {
        loop {
            let done = driver.poll_drive(cx).is_ready();
            // The hook runs outside the lock, in this task, while the driver keeps the
            // connection's timers (the handshake timeout) running.
            let mut verdict = None;
            if let Some((_, hook)) = &mut hooked
                && let Poll::Ready(gate) = hook.as_mut().poll(cx)
            {
                let (request, _) = hooked.take().expect("a running hook");
                verdict = Some((request, gate));
            }
            let mut inner = shared.lock();
            if verdict.is_none() && hooked.is_none() {
                // The handshake's own events; what follows `Connected` is for the handle.
                let mut request = None;
                while request.is_none() && !connected {
                    match inner.conn.poll_event() {
                        Some(Event::Request(r)) => request = Some(r),
                        Some(Event::Connected { .. }) => connected = true,
                        Some(_) => {}
                        None => break,
                    }
                }
                match (request, &server.hook) {
                    (Some(request), Some(hook)) => {
                        drop(inner);
                        let running = hook.call(&request);
                        hooked = Some((request, running));
                        continue;
                    }
                    (Some(request), None) => verdict = Some((request, Ok(()))),
                    (None, _) => {}
                }
            }
            if let Some((request, gate)) = verdict {
                // The hook let it through: the decision function (or the policy) chooses.
                let verdict = gate.and_then(|()| match decide.take() {
                    Some(decide) => decide(&request),
                    None => Err(Reject::new(500)),
                });
                let mut accepted = |accept| match &sessions {
                    Some(registry) => registry.accept(&shared, &mut inner, &request, accept),
                    None => inner.conn.accept(now::<R>(), accept),
                };
                let refused = match verdict {
                    Ok(accept) => match accepted(accept) {
                        Ok(()) => None,
                        // A plain HTTP request nobody answered: the rules' answer.
                        Err(AcceptError::NotWebSocket(_)) => request.refusal().cloned(),
                        Err(e) => Some(Reject::new(500).reason(format!("invalid acceptance: {e}"))),
                    },
                    Err(reject) => Some(reject),
                };
                match refused {
                    Some(reject) => {
                        let _ = inner.conn.reject(reject);
                    }
                    None if server.keep_request => kept = Some(request.head().into()),
                    None => {}
                }
                continue;
            }
            if connected {
                return Poll::Ready(Outcome::Open);
            }
            if done {
                let closed = inner.conn.closed().cloned().unwrap_or_else(|| Closed {
                    code: tether::CloseCode::ABNORMAL,
                    reason: "transport closed".into(),
                    initiator: tether::Initiator::Remote,
                    clean: false,
                    cause: tether::CloseCause::TransportLost,
                });
                return Poll::Ready(Outcome::Ended(closed));
            }
            // Not open yet, or ended and still writing a rejection: wait for the driver.
            return Poll::Pending;
        }
    })
    .await;
    match outcome {
        Outcome::Open => {
            let (subprotocol, response) = {
                let inner = shared.lock();
                (
                    inner.conn.subprotocol().map(String::from),
                    inner.conn.response().cloned(),
                )
            };
            let mut socket = WebSocket::new(Arc::clone(&shared), subprotocol);
            socket.set_request(kept);
            if let Some(guard) = guard {
                driver.hold(guard);
            }
            if let Some(registry) = sessions {
                let shared = Arc::clone(&shared);
                driver.on_end(Box::new(move || registry.connection_ended(&shared)));
            }
            Ok((socket, response, driver))
        }
        Outcome::Ended(closed) => {
            let waited = shared.lock().conn.config().handshake_timeout;
            Err(Error::from_handshake_end(closed, waited))
        }
    }
}
