//! `Duration::MAX` as "never": every timeout of the client and the server set to it.

use std::time::Duration;

use tether::{CloseCode, Config, Heartbeat, Message};

use tether_io::{ClientConfig, ServerConfig};

use crate::harness::Adapter;
use crate::setup::{LIMIT, Serving, echo, spawn};

fn never() -> Config {
    let mut config = Config::default();
    config.handshake_timeout = Duration::MAX;
    config.close_timeout = Duration::MAX;
    config.heartbeat = Some(Heartbeat::new(Duration::MAX, Duration::MAX));
    config.idle_timeout = Some(Duration::MAX);
    config
}

/// Connect, handshake, close, ping and idle timeouts all `Duration::MAX` on both ends:
/// connecting, echo and a clean close work, and nothing panics (deadlines saturate).
pub fn duration_max_everywhere<A: Adapter>() {
    let serving = Serving::start::<A>(ServerConfig::default().config(never()));
    let request = serving.request();
    let config = ClientConfig::new(never()).connect_timeout(Duration::MAX);
    let connecting = spawn("connect", move || A::connect(request, config));
    let mut client = connecting
        .wait(LIMIT)
        .unwrap_or_else(|e| panic!("{}: connect: {e}", A::NAME));
    let echoing = echo(serving.next());
    let client = spawn("client", move || {
        for message in [Message::text("hello"), Message::binary(vec![7; 64 << 10])] {
            client.send(message.clone()).expect("send");
            let echoed = client.recv(LIMIT).expect("a message").expect("recv");
            assert!(echoed == message, "sent {message:?}, got back {echoed:?}");
        }
        client.close(CloseCode::NORMAL, "done").expect("close")
    });
    let closed = client.wait(LIMIT);
    assert!(
        closed.clean && closed.code == CloseCode::NORMAL,
        "{}: {closed:?}",
        A::NAME
    );
    let closed = echoing.wait(LIMIT).expect("the server side ended");
    assert!(
        closed.clean && closed.code == CloseCode::NORMAL,
        "{}: {closed:?}",
        A::NAME
    );
}
