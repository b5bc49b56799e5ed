//! A reconnecting client: sends a counter, one text message per second, forever, and logs
//! every state change to stderr. While disconnected the counter keeps going into the send
//! queue, which is delivered in order once the connection is back.
//!
//! ```sh
//! cargo run --release -p tether-smol --example reconnecting_client -- ws://127.0.0.1:9001/ \
//!     [--resume] [--ping-interval SECS] [--pong-timeout SECS] [--backoff-max SECS] ...
//! ```
//!
//! A dead peer (a black-holed connection) is noticed by the heartbeat: with the defaults (a
//! Ping after 20 s of silence, 20 s for its Pong) after up to about 40 s; `--ping-interval 5
//! --pong-timeout 5` notices it within about 10 s. `--help` lists every flag (shared by all
//! adapters' examples, see `tether-example-args`).

use std::time::{Duration, Instant};

use example_args::ReconnectingClientArgs;
use futures_lite::FutureExt;
use tether::reconnect::SupervisorEvent;
use tether_smol::{ClientConfig, ReconnectEvent};

fn main() {
    let args: ReconnectingClientArgs = example_args::parse_with_default_url(
        "A reconnecting client that sends a counter, one text message per second, forever",
        "ws://127.0.0.1:9001/",
    );
    let mut client_config = ClientConfig::new(args.client.connection.config());
    client_config.connect_timeout = args.client.connect_timeout;
    smol::block_on(async {
        let mut client = match tether_smol::reconnecting(
            &args.client.url,
            client_config,
            args.reconnect_config(),
            args.session_config(),
        ) {
            Ok(client) => client,
            Err(e) => {
                eprintln!("reconnecting_client: {e}");
                std::process::exit(2);
            }
        };
        let mut counter: u64 = 0;
        let mut next_tick = Instant::now();
        loop {
            // The next event, or None when it is time to send the next number.
            let event = async { Some(client.recv().await) }
                .or(async {
                    async_io::Timer::at(next_tick).await;
                    None
                })
                .await;
            let event = match event {
                None => {
                    counter += 1;
                    next_tick += Duration::from_secs(1);
                    if let Err(e) = client.send_text(&counter.to_string()) {
                        eprintln!("message {counter} not queued: {e}");
                    }
                    continue;
                }
                Some(None) => break,
                Some(Some(event)) => event,
            };
            match event {
                ReconnectEvent::Connected {
                    attempt,
                    took,
                    subprotocol,
                } => eprintln!(
                    "connected (attempt {attempt}, {took:?}, subprotocol {subprotocol:?})"
                ),
                ReconnectEvent::Message(message) => eprintln!("received {message:?}"),
                ReconnectEvent::Session(e) => eprintln!("{}", example_args::session_line(&e)),
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
    });
}
