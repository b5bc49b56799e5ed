//! tether-tokio under the conformance suite: a runtime on two background threads, blocked on
//! from the tests' threads.

// `Error` carries the terminal information by value, as in the adapter itself.
#![allow(clippy::result_large_err)]

use std::net::TcpListener;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tether_conformance::{Accepted, Adapter, Conn, Reconnecting, Stop};
use tether_tokio::handshake::{ClientRequest, Request};
use tether_tokio::reconnect::{ReconnectConfig, SessionConfig, SessionSendError};
use tether_tokio::{
    ClientConfig, CloseCode, Closed, Error, Message, ReconnectEvent, ReconnectingClient, Server,
    ServerConfig, Shutdown, WebSocket,
};
use tokio::runtime::Runtime;
use tokio::time::timeout;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

/// `SERVE`: the server runs each connection under `Connecting::serve` (the handler and the
/// connection's driver in one task) instead of `handshake` and a driver task of its own.
pub struct Tokio<const SERVE: bool = false>;

impl<const SERVE: bool> Adapter for Tokio<SERVE> {
    const NAME: &'static str = if SERVE {
        "tether-tokio (serve)"
    } else {
        "tether-tokio"
    };

    fn serve(listener: TcpListener, config: ServerConfig, accepted: Accepted) -> Box<dyn Stop> {
        let _runtime = RUNTIME.enter();
        let server = Arc::new(Server::from_std(listener, config).expect("serve on the listener"));
        let serving = Arc::clone(&server);
        RUNTIME.spawn(async move {
            loop {
                let connecting = match serving.accept().await {
                    Ok(connecting) => connecting,
                    Err(e) if tether_tokio::is_shut_down(&e) => break,
                    Err(_) => continue,
                };
                let accepted = accepted.clone();
                if SERVE {
                    // The handler returns at once; the task goes on driving the connection
                    // that the test uses from its own thread.
                    tokio::spawn(connecting.serve(move |ws| async move {
                        accepted.deliver(Ws(ws));
                    }));
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(ws) = connecting.handshake().await {
                        accepted.deliver(Ws(ws));
                    }
                });
            }
        });
        Box::new(Listening(server))
    }

    fn connect(request: ClientRequest, config: ClientConfig) -> Result<Box<dyn Conn>, Error> {
        let (ws, _) = RUNTIME.block_on(tether_tokio::connect_request(request, config))?;
        Ok(Box::new(Ws(ws)))
    }

    fn reconnecting(
        request: ClientRequest,
        config: ClientConfig,
        reconnect: ReconnectConfig,
        session: SessionConfig,
    ) -> Result<Box<dyn Reconnecting>, Error> {
        let _runtime = RUNTIME.enter();
        let client = tether_tokio::reconnecting_request(request, config, reconnect, session)?;
        Ok(Box::new(Client(client)))
    }
}

struct Listening(Arc<Server>);

impl Stop for Listening {
    fn shutdown(&self, grace: Duration) -> Shutdown {
        RUNTIME.block_on(self.0.shutdown(grace))
    }
}

struct Ws(WebSocket);

impl Conn for Ws {
    fn subprotocol(&self) -> Option<String> {
        self.0.subprotocol().map(str::to_owned)
    }

    fn request(&self) -> Option<Request> {
        self.0.request()
    }

    fn send(&mut self, message: Message) -> Result<(), Error> {
        RUNTIME.block_on(self.0.send(message))
    }

    fn recv(&mut self, limit: Duration) -> Option<Result<Message, Error>> {
        RUNTIME.block_on(async {
            timeout(limit, self.0.recv())
                .await
                .unwrap_or(Some(Err(Error::Timeout)))
        })
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        RUNTIME.block_on(self.0.close(code, reason))
    }

    fn closed(&self) -> Option<Closed> {
        self.0.closed()
    }
}

struct Client(ReconnectingClient);

impl Reconnecting for Client {
    fn send(&mut self, message: Message) -> Result<(), SessionSendError> {
        self.0.send(message)
    }

    fn recv(&mut self, limit: Duration) -> Option<ReconnectEvent> {
        RUNTIME.block_on(async { timeout(limit, self.0.recv()).await.ok().flatten() })
    }
}
