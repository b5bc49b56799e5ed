//! A reconnecting client: sends a counter (`1`, `2`, `3`, ...) as text, one per second,
//! forever; while disconnected the counter keeps going into the send queue. Every state change
//! is logged to stderr.
//!
//! ```sh
//! cargo run --release -p tether-std --example reconnecting_client -- ws://127.0.0.1:9001/
//! ```

use std::process::exit;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_std::tether::reconnect::SupervisorEvent;
use tether_std::{ReconnectEvent, ReconnectingClient, ReconnectingConfig};

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: reconnecting_client ws://HOST:PORT/PATH");
        exit(2)
    };
    let client = match ReconnectingClient::connect(&url, ReconnectingConfig::new()) {
        Ok(client) => Arc::new(client),
        Err(e) => {
            eprintln!("reconnecting_client: {e}");
            exit(1)
        }
    };
    let events = Arc::clone(&client);
    std::thread::spawn(move || {
        while let Some(event) = events.next_event() {
            match event {
                ReconnectEvent::Connected {
                    attempt,
                    took,
                    subprotocol,
                } => eprintln!(
                    "connected (attempt {attempt}, {took:?}, subprotocol {subprotocol:?})"
                ),
                ReconnectEvent::Supervisor(SupervisorEvent::Disconnected {
                    reason,
                    detail,
                    retry_in,
                    ..
                }) => eprintln!("disconnected: {reason:?} {detail:?}; retry in {retry_in:?}"),
                ReconnectEvent::Message(m) => eprintln!("received {m:?}"),
                ReconnectEvent::Supervisor(SupervisorEvent::GaveUp { reason, unsent }) => {
                    eprintln!("gave up: {reason:?} ({unsent} unsent)");
                    exit(1)
                }
                ReconnectEvent::Supervisor(SupervisorEvent::Stopped { unsent }) => {
                    eprintln!("stopped ({unsent} unsent)");
                    exit(0)
                }
                other => eprintln!("{other:?}"),
            }
        }
    });
    let start = Instant::now();
    for n in 1u64.. {
        if let Err(e) = client.send_text(&n.to_string()) {
            eprintln!("message {n} not queued: {e}");
        }
        let next = start + Duration::from_secs(n);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}
