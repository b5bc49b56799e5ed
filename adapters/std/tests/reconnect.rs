//! The reconnecting client comes back after a server restart and delivers what it queued.
#![allow(clippy::result_large_err)]

mod common;

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{LIMIT, bounded};
use tether_std::tether::reconnect::{ReconnectConfig, SessionConfig, SupervisorEvent};
use tether_std::{
    ClientConfig, CloseCode, Message, ReconnectEvent, ReconnectingClient, ServerConfig, accept,
    reconnecting,
};

/// Accepts one connection on `listener` and forwards its text messages to `tx` until
/// `stop` says so (or the client goes away), then drops the connection.
fn serve_one(listener: TcpListener, tx: mpsc::Sender<String>, stop: mpsc::Receiver<()>) {
    let (tcp, _) = listener.accept().unwrap();
    drop(listener);
    let mut ws = accept(tcp, ServerConfig::default()).unwrap();
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

fn wait_for(client: &mut ReconnectingClient, what: &str, want: impl Fn(&ReconnectEvent) -> bool) {
    loop {
        match client.recv_timeout(LIMIT) {
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

    let mut reconnect = ReconnectConfig::default();
    reconnect.backoff.initial = Duration::from_millis(20);
    reconnect.backoff.max = Duration::from_millis(200);
    reconnect.backoff.first_delay_max = Some(Duration::from_millis(20));
    let client = reconnecting(
        &format!("ws://{addr}/"),
        ClientConfig::default(),
        reconnect,
        SessionConfig::default(),
    )
    .unwrap();
    // Receiving takes the client; each bounded step hands it back.
    let client = bounded(move || {
        let mut client = client;
        wait_for(&mut client, "the first connection", |e| {
            matches!(e, ReconnectEvent::Connected { .. })
        });
        client
    });
    client.send_text("1").unwrap();
    client.send_text("2").unwrap();
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "1");
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "2");

    // The server goes away: listener and connection.
    stop1.send(()).unwrap();
    first.join().unwrap();
    let client = bounded(move || {
        let mut client = client;
        wait_for(&mut client, "the disconnection", |e| {
            matches!(
                e,
                ReconnectEvent::Supervisor(SupervisorEvent::Disconnected { .. })
            )
        });
        client
    });
    for n in 3..=5 {
        client.send_text(&n.to_string()).unwrap();
    }

    // Back on the same port.
    let listener = TcpListener::bind(addr).unwrap();
    let (_stop2, stop2_rx) = mpsc::channel();
    let second = thread::spawn(move || serve_one(listener, tx, stop2_rx));
    let mut client = bounded(move || {
        let mut client = client;
        wait_for(&mut client, "the reconnection", |e| {
            matches!(e, ReconnectEvent::Connected { .. })
        });
        client
    });
    for n in 3..=5 {
        assert_eq!(rx.recv_timeout(LIMIT).unwrap(), n.to_string());
    }
    client.send_text("6").unwrap();
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "6");
    bounded(move || client.close(CloseCode(1000), "done").unwrap());
    second.join().unwrap();
}

#[test]
fn an_application_that_does_not_read_holds_a_flooding_server_back() {
    // The server writes 60 KB messages as fast as it can while the application does not
    // receive: the client stops reading at the core's high watermark, so the server stalls
    // after that plus what the sockets buffer. Then every complete message arrives, in order.
    const PAYLOAD: usize = 60_000;
    const FLOOD: usize = 512 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut sock = common::raw_upgrade(&listener);
        sock.set_write_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut written = 0;
        let mut frames = 0u32;
        'flood: while written < FLOOD {
            let mut frame = vec![0x82, 126];
            frame.extend_from_slice(&(PAYLOAD as u16).to_be_bytes());
            frame.extend_from_slice(&frames.to_be_bytes());
            frame.resize(4 + PAYLOAD, 7);
            let mut at = 0;
            while at < frame.len() {
                match std::io::Write::write(&mut sock, &frame[at..]) {
                    Ok(n) => at += n,
                    // Nothing taken for a second: the client pushes back.
                    Err(_) => break 'flood,
                }
            }
            written += frame.len();
            frames += 1;
        }
        (written, frames, sock)
    });
    let mut client = reconnecting(
        &format!("ws://{addr}/"),
        ClientConfig::default(),
        ReconnectConfig::default(),
        SessionConfig::default(),
    )
    .unwrap();
    let (written, frames, sock) = server.join().unwrap();
    eprintln!("the server wrote {} KiB before it stalled", written >> 10);
    assert!(
        written < 32 << 20,
        "the client took {} MiB without being asked",
        written >> 20
    );
    bounded(move || {
        let mut next = 0u32;
        while next < frames {
            match client.recv_timeout(LIMIT) {
                Ok(Some(ReconnectEvent::Message(m))) => {
                    assert_eq!(m.len(), PAYLOAD);
                    assert_eq!(m.as_bytes()[..4], next.to_be_bytes());
                    next += 1;
                }
                Ok(Some(ReconnectEvent::Connected { .. })) => {}
                other => panic!("message {next}: {other:?}"),
            }
        }
        drop(sock);
    });
}

#[test]
fn what_a_connection_received_comes_before_its_disconnection_and_the_next_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        for text in ["two", "four"] {
            let (tcp, _) = listener.accept().unwrap();
            let mut ws = accept(tcp, ServerConfig::default()).unwrap();
            ws.send_text(&format!("{text} messages:")).unwrap();
            ws.send_text(text).unwrap();
            // The client's Close echo waits until its application took both messages.
            assert!(ws.close(CloseCode(1012), "restart").unwrap().clean);
        }
    });
    let mut reconnect = ReconnectConfig::default();
    reconnect.backoff.initial = Duration::from_millis(20);
    reconnect.backoff.first_delay_max = Some(Duration::from_millis(20));
    let mut client = reconnecting(
        &format!("ws://{addr}/"),
        ClientConfig::default(),
        reconnect,
        SessionConfig::default(),
    )
    .unwrap();
    let seen = bounded(move || {
        let mut seen = Vec::new();
        while seen.len() < 8 {
            match client.recv_timeout(LIMIT).unwrap().unwrap() {
                ReconnectEvent::Connected { .. } => seen.push("connected".to_owned()),
                ReconnectEvent::Message(Message::Text(t)) => seen.push(t.as_str().to_owned()),
                ReconnectEvent::Supervisor(SupervisorEvent::Disconnected { closed, .. }) => {
                    assert_eq!(closed.unwrap().code.0, 1012);
                    seen.push("disconnected".to_owned());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        seen
    });
    assert_eq!(
        seen,
        [
            "connected",
            "two messages:",
            "two",
            "disconnected",
            "connected",
            "four messages:",
            "four",
            "disconnected"
        ]
    );
    server.join().unwrap();
}
