//! A reconnecting client: sends a counter, one text message per second, forever, and logs
//! every state change to stderr. While disconnected the counter keeps going into the send
//! queue, which is delivered in order once the connection is back.
//!
//! ```sh
//! cargo run --release -p tether-smol --example reconnecting_client -- ws://127.0.0.1:9001/
//! ```

use std::sync::Arc;
use std::time::Duration;

use tether::reconnect::SupervisorEvent;
use tether_smol::{ReconnectEvent, ReconnectingClient, ReconnectingConfig};

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001/".to_owned());
    let client = match ReconnectingClient::connect(&url, ReconnectingConfig::default()) {
        Ok(client) => Arc::new(client),
        Err(e) => {
            eprintln!("reconnecting_client: {e}");
            std::process::exit(2);
        }
    };
    smol::block_on(async {
        let sender = client.clone();
        let counting = smol::spawn(async move {
            let mut counter: u64 = 0;
            loop {
                counter += 1;
                match sender.send_text(&counter.to_string()) {
                    Ok(()) => {}
                    Err(e) => eprintln!("message {counter} not queued: {e}"),
                }
                async_io::Timer::after(Duration::from_secs(1)).await;
            }
        });
        while let Some(event) = client.next_event().await {
            match event {
                ReconnectEvent::Connected {
                    attempt,
                    took,
                    subprotocol,
                } => eprintln!(
                    "connected (attempt {attempt}, {took:?}, subprotocol {subprotocol:?})"
                ),
                ReconnectEvent::Message(message) => eprintln!("received {message:?}"),
                ReconnectEvent::Supervisor(event) => match event {
                    SupervisorEvent::Disconnected {
                        reason,
                        detail,
                        retry_in,
                        ..
                    } => match retry_in {
                        Some(delay) => {
                            eprintln!("disconnected: {reason:?} ({detail}); retrying in {delay:?}")
                        }
                        None => eprintln!("disconnected: {reason:?} ({detail})"),
                    },
                    SupervisorEvent::Dropped { messages, .. } => {
                        eprintln!("queue full: dropped {} messages", messages.len())
                    }
                    SupervisorEvent::GaveUp { reason, unsent } => {
                        eprintln!("gave up: {reason:?} ({unsent} unsent)")
                    }
                    SupervisorEvent::Stopped { unsent } => eprintln!("stopped ({unsent} unsent)"),
                    _ => {}
                },
                _ => {}
            }
        }
        drop(counting);
    });
}
