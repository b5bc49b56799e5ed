//! The reconnecting client across a server restart on the same port.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use async_net::TcpStream;
use common::run;
use futures_lite::FutureExt;
use smol::channel::{Receiver, Sender, bounded, unbounded};
use tether::reconnect::{Backoff, Jitter, SupervisorEvent};
use tether::{CloseCode, Message};
use tether_smol::{
    ReconnectEvent, ReconnectingClient, ReconnectingConfig, Server, ServerConfig, WebSocket,
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
            let Some((ws, _)) = next else { break };
            connections.push(smol::spawn(forward(ws, received.clone())));
        }
        // Dropping the tasks drops their handles: each connection closes with 1001.
        drop(connections);
        drop(server);
    });
    (addr, stop, task)
}

async fn forward(mut ws: WebSocket<TcpStream>, received: Sender<Message>) {
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

async fn wait_for(client: &ReconnectingClient, what: &str, pred: impl Fn(&ReconnectEvent) -> bool) {
    loop {
        match client.next_event().await {
            Some(event) if pred(&event) => return,
            Some(_) => {}
            None => panic!("session ended while waiting for {what}"),
        }
    }
}

/// Retries within a few tens of milliseconds.
fn fast() -> ReconnectingConfig {
    let mut config = ReconnectingConfig::default();
    let mut backoff = Backoff::default();
    backoff.initial = Duration::from_millis(20);
    backoff.max = Duration::from_millis(200);
    backoff.jitter = Jitter::None;
    backoff.first_delay_max = Some(Duration::from_millis(50));
    config.reconnect.backoff = backoff;
    config
}

#[test]
fn server_restart_delivers_queued_messages_in_order() {
    run(async {
        let (received_tx, received) = unbounded();
        let (addr, stop, task) = start("127.0.0.1:0".parse().unwrap(), received_tx.clone()).await;

        let client = ReconnectingClient::connect(&format!("ws://{addr}/"), fast()).unwrap();
        wait_for(&client, "the first connection", |e| {
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
        wait_for(&client, "the disconnection", |e| {
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
        wait_for(&client, "the reconnection", |e| {
            matches!(e, ReconnectEvent::Connected { .. })
        })
        .await;
        for i in 3..=7 {
            assert_eq!(next_text(&received).await, i.to_string());
        }
        client.close(tether::CloseCode::NORMAL, "done").unwrap();
        wait_for(&client, "the end", |e| {
            matches!(
                e,
                ReconnectEvent::Supervisor(SupervisorEvent::Stopped { .. })
            )
        })
        .await;
        assert!(client.next_event().await.is_none());
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
            while let Ok((mut ws, _)) = server.accept().await {
                smol::spawn(async move {
                    for text in ["a", "b", "c"] {
                        ws.send_text(text).await.unwrap();
                    }
                    let _ = ws.close(CloseCode::GOING_AWAY, "restart").await;
                })
                .detach();
            }
        });
        let client = ReconnectingClient::connect(&format!("ws://{addr}/"), fast()).unwrap();
        let mut seen = Vec::new();
        for _ in 0..2 {
            loop {
                match client
                    .next_event()
                    .await
                    .expect("events until the disconnection")
                {
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
        client.close(CloseCode::NORMAL, "").unwrap();
        wait_for(&client, "the end", |e| {
            matches!(
                e,
                ReconnectEvent::Supervisor(SupervisorEvent::Stopped { .. })
            )
        })
        .await;
        assert!(client.next_event().await.is_none());
    });
}
