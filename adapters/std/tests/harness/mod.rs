//! tether-std under the conformance suite: its blocking API as it is.

// `Error` carries the terminal information by value, as in the adapter itself.
#![allow(clippy::result_large_err)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use tether_conformance::{Accepted, Adapter, Conn, Reconnecting, Stop};
use tether_std::handshake::{ClientRequest, Request};
use tether_std::reconnect::{ReconnectConfig, SessionConfig, SessionSendError};
use tether_std::{
    ClientConfig, CloseCode, Closed, Error, Message, ReconnectEvent, ReconnectingClient, Server,
    ServerConfig, Shutdown, WebSocket,
};

pub struct Std;

impl Adapter for Std {
    const NAME: &'static str = "tether-std";

    fn serve(listener: TcpListener, config: ServerConfig, accepted: Accepted) -> Box<dyn Stop> {
        let server =
            Arc::new(Server::from_listener(listener, config).expect("serve on the listener"));
        let serving = Arc::clone(&server);
        std::thread::spawn(move || {
            serving.serve(move |ws| {
                accepted.deliver(Ws(ws));
            })
        });
        Box::new(Listening(server))
    }

    fn connect(request: ClientRequest, config: ClientConfig) -> Result<Box<dyn Conn>, Error> {
        let (ws, _) = tether_std::connect_request(request, config)?;
        Ok(Box::new(Ws(ws)))
    }

    fn reconnecting(
        request: ClientRequest,
        config: ClientConfig,
        reconnect: ReconnectConfig,
        session: SessionConfig,
    ) -> Result<Box<dyn Reconnecting>, Error> {
        let client = tether_std::reconnecting_request(request, config, reconnect, session)?;
        Ok(Box::new(Client(client)))
    }
}

struct Listening(Arc<Server>);

impl Stop for Listening {
    fn shutdown(&self, grace: Duration) -> Shutdown {
        self.0.shutdown(grace)
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
        self.0.send(message)
    }

    fn recv(&mut self, limit: Duration) -> Option<Result<Message, Error>> {
        self.0.recv_timeout(limit)
    }

    fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed, Error> {
        self.0.close(code, reason)
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
        self.0.recv_timeout(limit).ok().flatten()
    }
}
