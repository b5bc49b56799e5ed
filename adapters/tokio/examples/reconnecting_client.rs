//! A reconnecting client that sends a counter, one text message per second, forever.
//!
//! ```sh
//! cargo run --release -p tether-tokio --example reconnecting_client -- ws://127.0.0.1:9001/
//! ```
//!
//! Every state change (connected, disconnected with the reason and the retry delay, gave up)
//! is logged to stderr. While disconnected the counter keeps going into the send queue, and
//! the queue is delivered in order after the next connection opens.

use std::time::Duration;

use tether::Message;
use tether::reconnect::{ReconnectConfig, SessionConfig, SupervisorEvent};
use tether_tokio::{ClientConfig, ReconnectEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    let mut client = match tether_tokio::reconnecting(
        &url,
        ClientConfig::default(),
        ReconnectConfig::default(),
        SessionConfig::default(),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{url}: {e}");
            std::process::exit(2);
        }
    };
    eprintln!("connecting to {url}");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut counter: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                counter += 1;
                if let Err(e) = client.send_text(&counter.to_string()) {
                    eprintln!("message {counter} not queued: {e}");
                }
            }
            event = client.recv() => match event {
                None => break,
                Some(ReconnectEvent::Connected { attempt, took, subprotocol }) => eprintln!(
                    "connected (attempt {attempt}, {took:?}, subprotocol {subprotocol:?}); {} queued",
                    client.queued_messages()
                ),
                Some(ReconnectEvent::Message(Message::Text(t))) => eprintln!("received {}", t.as_str()),
                Some(ReconnectEvent::Message(m)) => eprintln!("received {} bytes", m.len()),
                Some(ReconnectEvent::Supervisor(event)) => match event {
                    SupervisorEvent::Disconnected { reason, detail, retry_in, .. } => match retry_in {
                        Some(d) => eprintln!("disconnected: {reason:?} ({detail}); retrying in {d:.1?}"),
                        None => eprintln!("disconnected: {reason:?} ({detail})"),
                    },
                    SupervisorEvent::GaveUp { reason, unsent } => {
                        eprintln!("gave up: {reason:?}; {unsent} messages unsent");
                    }
                    SupervisorEvent::Stopped { unsent } => {
                        eprintln!("stopped; {unsent} messages unsent");
                    }
                    SupervisorEvent::Dropped { messages, .. } => {
                        eprintln!("queue full: {} oldest messages dropped", messages.len());
                    }
                    _ => {}
                },
                Some(_) => {}
            }
        }
    }
    std::process::exit(1);
}
