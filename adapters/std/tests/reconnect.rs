//! The reconnecting client comes back after a server restart and delivers what it queued.
#![allow(clippy::result_large_err)]

mod common;

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{LIMIT, bounded};
use tether_std::tether::reconnect::SessionEvent;
use tether_std::{Message, ReconnectingClient, ReconnectingConfig, ServerConfig, accept};

/// Accepts one connection on `listener` and forwards its text messages to `tx` until
/// `stop` says so (or the client goes away), then drops the connection.
fn serve_one(listener: TcpListener, tx: mpsc::Sender<String>, stop: mpsc::Receiver<()>) {
    let (tcp, _) = listener.accept().unwrap();
    drop(listener);
    let ws = accept(tcp, &ServerConfig::new()).unwrap();
    let deadline = Instant::now() + LIMIT * 2;
    while Instant::now() < deadline {
        if stop.try_recv().is_ok() {
            break;
        }
        match ws.recv_timeout(Duration::from_millis(20)) {
            Some(Ok(Message::Text(t))) => {
                let _ = tx.send(t.as_str().to_owned());
            }
            Some(Err(tether_std::Error::Timeout)) => {}
            _ => break,
        }
    }
    // Dropping the handle ends the connection (1001, going away).
}

fn wait_for(client: &ReconnectingClient, what: &str, want: impl Fn(&SessionEvent) -> bool) {
    loop {
        match client.next_event_timeout(LIMIT) {
            Ok(Some(event)) if want(&event) => return,
            Ok(Some(_)) => {}
            other => panic!("waiting for {what}: {other:?}"),
        }
    }
}

#[test]
fn a_server_restart_is_survived_and_queued_messages_arrive_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let (stop1, stop1_rx) = mpsc::channel();
    let tx1 = tx.clone();
    let first = thread::spawn(move || serve_one(listener, tx1, stop1_rx));

    let mut config = ReconnectingConfig::new();
    config.reconnect.backoff.initial = Duration::from_millis(20);
    config.reconnect.backoff.max = Duration::from_millis(200);
    config.reconnect.backoff.first_delay_max = Some(Duration::from_millis(20));
    let client = ReconnectingClient::connect(&format!("ws://{addr}/"), config).unwrap();
    let client = std::sync::Arc::new(client);
    let c = client.clone();
    bounded(move || {
        wait_for(&c, "the first connection", |e| {
            matches!(e, SessionEvent::Connected { .. })
        })
    });
    client.send_text("1").unwrap();
    client.send_text("2").unwrap();
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "1");
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "2");

    // The server goes away: listener and connection.
    stop1.send(()).unwrap();
    first.join().unwrap();
    let c = client.clone();
    bounded(move || {
        wait_for(&c, "the disconnection", |e| {
            matches!(e, SessionEvent::Disconnected { .. })
        })
    });
    for n in 3..=5 {
        client.send_text(&n.to_string()).unwrap();
    }

    // Back on the same port.
    let listener = TcpListener::bind(addr).unwrap();
    let (_stop2, stop2_rx) = mpsc::channel();
    let second = thread::spawn(move || serve_one(listener, tx, stop2_rx));
    let c = client.clone();
    bounded(move || {
        wait_for(&c, "the reconnection", |e| {
            matches!(e, SessionEvent::Connected { .. })
        })
    });
    for n in 3..=5 {
        assert_eq!(rx.recv_timeout(LIMIT).unwrap(), n.to_string());
    }
    client.send_text("6").unwrap();
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "6");
    let c = client.clone();
    bounded(move || c.close(1000u16, "done").unwrap());
    second.join().unwrap();
}
