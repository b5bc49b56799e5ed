//! Driving a connection through its opening handshake inside the caller's future, then
//! handing the transport to the connection's driver (which the caller spawns, or runs beside
//! its own work in one task: `Connecting::serve`).

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use tether::handshake::{Accept, Reject, Request, Response};
use tether::{Closed, Connection, Event};

use crate::clock::now;
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

/// Drives `conn` over `stream` until it is open (then returns the handle and the driver that
/// must run from now on) or ended. A server's request goes to `decide`. `guard` lives as long
/// as the transport.
pub(crate) async fn drive<R, T, F>(
    stream: T,
    conn: Connection,
    decide: Option<F>,
    guard: Option<crate::server::Slot>,
    sessions: Option<Arc<SessionRegistry>>,
) -> Result<(WebSocket, Option<Response>, Driver<R>), Error>
where
    R: Runtime,
    T: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let shared = Shared::new(conn, now::<R>);
    let mut driver = Driver::<R>::new(stream, Arc::clone(&shared));
    let mut decide = decide;
    let mut connected = false;
    let outcome = poll_fn(|cx| {
        loop {
            let done = driver.poll_drive(cx).is_ready();
            let mut inner = shared.lock();
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
            if let Some(request) = request {
                let verdict = match decide.take() {
                    Some(decide) => decide(&request),
                    None => Err(Reject::new(500)),
                };
                let mut accepted = |accept| match &sessions {
                    Some(registry) => registry.accept(&shared, &mut inner, &request, accept),
                    None => inner.conn.accept(now::<R>(), accept),
                };
                let refused = match verdict {
                    Ok(accept) => accepted(accept)
                        .err()
                        .map(|e| Reject::new(500).reason(format!("invalid acceptance: {e}"))),
                    Err(reject) => Some(reject),
                };
                if let Some(reject) = refused {
                    let _ = inner.conn.reject(reject);
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
            let socket = WebSocket::new(Arc::clone(&shared), subprotocol);
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
