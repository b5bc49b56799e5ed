//! tether-smol under the conformance suite: its tasks run on smol's global executor, the
//! tests' threads block on them.

// `Error` carries the terminal information by value, as in the adapter itself.
#![allow(clippy::result_large_err)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use smol::Timer;
use smol::future::FutureExt;
use tether_conformance::{Accepted, Adapter, Conn, Reconnecting, Stop};
use tether_smol::handshake::{ClientRequest, Request};
use tether_smol::reconnect::{ReconnectConfig, SessionConfig, SessionSendError};
use tether_smol::{
    ClientConfig, CloseCode, Closed, Error, Message, ReconnectEvent, ReconnectingClient, Server,
    ServerConfig, Shutdown, WebSocket,
};

/// `SERVE`: the server runs each connection under `Connecting::serve` (the handler and the
/// connection's driver in one task) instead of `handshake` and a driver task of its own.
pub struct Smol<const SERVE: bool = false>;

impl<const SERVE: bool> Adapter for Smol<SERVE> {
    const NAME: &'static str = if SERVE {
        "tether-smol (serve)"
    } else {
        "tether-smol"
    };

    fn serve(listener: TcpListener, config: ServerConfig, accepted: Accepted) -> Box<dyn Stop> {
        let server = Arc::new(Server::from_std(listener, config).expect("serve on the listener"));
        let serving = Arc::clone(&server);
        smol::spawn(async move {
            loop {
                let connecting = match serving.accept().await {
                    Ok(connecting) => connecting,
                    Err(e) if tether_smol::is_shut_down(&e) => break,
                    Err(_) => continue,
                };
                let accepted = accepted.clone();
                if SERVE {
                    // The handler returns at once; the task goes on driving the connection
                    // that the test uses from its own thread.
                    smol::spawn(connecting.serve(move |ws| async move {
                        accepted.deliver(Ws(ws));
                    }))
                    .detach();
                    continue;
                }
                smol::spawn(async move {
                    if let Ok(ws) = connecting.handshake().await {
                        accepted.deliver(Ws(ws));
                    }
                })
                .detach();
            }
        })
        .detach();
        Box::new(Listening(server))
    }

    fn connect(request: ClientRequest, config: ClientConfig) -> Result<Box<dyn Conn>, Error> {
        let (ws, _) = smol::block_on(tether_smol::connect_request(request, config))?;
        Ok(Box::new(Ws(ws)))
    }

    fn reconnecting(
        request: ClientRequest,
        config: ClientConfig,
        reconnect: ReconnectConfig,
        session: SessionConfig,
    ) -> Result<Box<dyn Reconnecting>, Error> {
        let client = tether_smol::reconnecting_request(request, config, reconnect, session)?;
        Ok(Box::new(Client(client)))
    }
}

struct Listening(Arc<Server>);

impl Stop for Listening {
    fn shutdown(&self, grace: Duration) -> Shutdown {
        smol::block_on(self.0.shutdown(grace))
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
        smol::block_on(self.0.send(message))
    }

    fn recv(&mut self, limit: Duration) -> Option<Result<Message, Error>> {
        let timeout = async {
            Timer::after(limit).await;
            Some(Err(Error::Timeout))
        };
        smol::block_on(self.0.recv().or(timeout))
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        smol::block_on(self.0.close(code, reason))
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
        let timeout = async {
            Timer::after(limit).await;
            None
        };
        smol::block_on(self.0.recv().or(timeout))
    }
}
