//! The reconnecting client across a server restart on the same port.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::run;
use futures_lite::FutureExt;
use smol::channel::{Receiver, Sender, bounded, unbounded};
use tether::reconnect::{Backoff, Jitter, ReconnectConfig, SessionConfig, SupervisorEvent};
use tether::{CloseCode, Message};
use tether_smol::{
    ClientConfig, ReconnectEvent, ReconnectingClient, Server, ServerConfig, WebSocket,
};

/// A server on `addr` that forwards every message it receives; it stops, dropping its
/// listener and every connection, when `stop` fires.
async fn start(
    addr: SocketAddr,
    received: Sender<Message>,
) -> (SocketAddr, Sender<()>, smol::Task<()>) {
    let server = Server::bind(addr, ServerConfig::default())
        .await
        .expect("bind");
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = bounded::<()>(1);
    let task = smol::spawn(async move {
        let mut connections: Vec<smol::Task<()>> = Vec::new();
        loop {
            let next = async { server.accept().await.ok() }
                .or(async {
                    let _ = stopped.recv().await;
                    None
                })
                .await;
            let Some(connecting) = next else { break };
            let received = received.clone();
            connections.push(smol::spawn(async move {
                if let Ok(ws) = connecting.handshake().await {
                    forward(ws, received).await;
                }
            }));
        }
        // Dropping the tasks drops their handles: each connection closes with 1001.
        drop(connections);
        drop(server);
    });
    (addr, stop, task)
}

async fn forward(mut ws: WebSocket, received: Sender<Message>) {
    while let Some(Ok(message)) = ws.recv().await {
        let _ = received.send(message).await;
    }
}

async fn next_text(received: &Receiver<Message>) -> String {
    match received.recv().await.expect("server channel open") {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}

async fn wait_for(
    client: &mut ReconnectingClient,
    what: &str,
    pred: impl Fn(&ReconnectEvent) -> bool,
) {
    loop {
        match client.recv().await {
            Some(event) if pred(&event) => return,
            Some(_) => {}
            None => panic!("session ended while waiting for {what}"),
        }
    }
}

/// Retries within a few tens of milliseconds.
fn fast() -> ReconnectConfig {
    let mut config = ReconnectConfig::default();
    let mut backoff = Backoff::default();
    backoff.initial = Duration::from_millis(20);
    backoff.max = Duration::from_millis(200);
    backoff.jitter = Jitter::None;
    backoff.first_delay_max = Some(Duration::from_millis(50));
    config.backoff = backoff;
    config
}

/// A reconnecting client for `ws://{addr}/` with [`fast`] retries.
fn connect(addr: SocketAddr) -> ReconnectingClient {
    tether_smol::reconnecting(
        &format!("ws://{addr}/"),
        ClientConfig::default(),
        fast(),
        SessionConfig::default(),
    )
    .unwrap()
}

#[test]
fn server_restart_delivers_queued_messages_in_order() {
    run(async {
        let (received_tx, received) = unbounded();
        let (addr, stop, task) = start("127.0.0.1:0".parse().unwrap(), received_tx.clone()).await;

        let mut client = connect(addr);
        wait_for(&mut client, "the first connection", |e| {
            matches!(e, ReconnectEvent::Connected { .. })
        })
        .await;
        client.send_text("1").unwrap();
        client.send_text("2").unwrap();
        assert_eq!(next_text(&received).await, "1");
        assert_eq!(next_text(&received).await, "2");

        // Restart: drop the listener and every connection, then bind the same port again.
        stop.send(()).await.unwrap();
        task.await;
        wait_for(&mut client, "the disconnection", |e| {
            matches!(
                e,
                ReconnectEvent::Supervisor(SupervisorEvent::Disconnected {
                    retry_at: Some(_),
                    ..
                })
            )
        })
        .await;
        for i in 3..=7 {
            client.send_text(&i.to_string()).unwrap();
        }
        let (_, _stop, _task) = start(addr, received_tx).await;
        wait_for(&mut client, "the reconnection", |e| {
            matches!(e, ReconnectEvent::Connected { .. })
        })
        .await;
        for i in 3..=7 {
            assert_eq!(next_text(&received).await, i.to_string());
        }
        client
            .close(tether::CloseCode::NORMAL, "done")
            .await
            .unwrap();
        wait_for(&mut client, "the end", |e| {
            matches!(
                e,
                ReconnectEvent::Supervisor(SupervisorEvent::Stopped { .. })
            )
        })
        .await;
        assert!(client.recv().await.is_none());
    });
}

#[test]
fn what_a_lost_connection_received_comes_before_its_disconnection() {
    run(async {
        // Every connection gets three messages and then the server's Close 1001.
        let server = Server::bind("127.0.0.1:0", ServerConfig::default())
            .await
            .expect("bind");
        let addr = server.local_addr().unwrap();
        let _serving = smol::spawn(async move {
            while let Ok(connecting) = server.accept().await {
                smol::spawn(async move {
                    let Ok(mut ws) = connecting.handshake().await else {
                        return;
                    };
                    for text in ["a", "b", "c"] {
                        ws.send_text(text).await.unwrap();
                    }
                    let _ = ws.close(CloseCode::GOING_AWAY, "restart").await;
                })
                .detach();
            }
        });
        let mut client = connect(addr);
        let mut seen = Vec::new();
        for _ in 0..2 {
            loop {
                match client.recv().await.expect("events until the disconnection") {
                    ReconnectEvent::Connected { .. } => seen.push("connected".to_owned()),
                    ReconnectEvent::Message(Message::Text(t)) => seen.push(t.as_str().to_owned()),
                    ReconnectEvent::Supervisor(SupervisorEvent::Disconnected {
                        closed,
                        retry_at,
                        ..
                    }) => {
                        let closed = closed.expect("the connection's end");
                        assert_eq!(closed.code, CloseCode::GOING_AWAY);
                        assert!(retry_at.is_some(), "1001 is retried");
                        seen.push("disconnected".to_owned());
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        let once = ["connected", "a", "b", "c", "disconnected"];
        assert_eq!(seen, [once, once].concat());
        client.close(CloseCode::NORMAL, "").await.unwrap();
        wait_for(&mut client, "the end", |e| {
            matches!(
                e,
                ReconnectEvent::Supervisor(SupervisorEvent::Stopped { .. })
            )
        })
        .await;
        assert!(client.recv().await.is_none());
    });
}
