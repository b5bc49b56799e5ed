//! A reconnecting client: sends a counter (`1`, `2`, `3`, ...) as text, one per second,
//! forever; while disconnected the counter keeps going into the send queue. Every state change
//! is logged to stderr.
//!
//! ```sh
//! cargo run --release -p tether-std --example reconnecting_client -- ws://127.0.0.1:9001/ \
//!     [--resume] [--ping-interval SECS] [--pong-timeout SECS] [--backoff-max SECS] ...
//! ```
//!
//! A dead peer (a black-holed connection) is noticed by the heartbeat: with the defaults (a
//! Ping after 20 s of silence, 20 s for its Pong) after up to about 40 s; `--ping-interval 5
//! --pong-timeout 5` notices it within about 10 s. `--help` lists every flag (shared by all
//! adapters' examples, see `tether-example-args`).

use std::process::exit;
use std::time::{Duration, Instant};

use example_args::ReconnectingClientArgs;
use tether_std::tether::reconnect::SupervisorEvent;
use tether_std::{ClientConfig, ReconnectEvent};

fn main() {
    let args: ReconnectingClientArgs = example_args::parse_with_default_url(
        "A reconnecting client that sends a counter, one text message per second, forever",
        "ws://127.0.0.1:9001/",
    );
    let mut client_config = ClientConfig::new(args.client.connection.config());
    client_config.connect_timeout = args.client.connect_timeout;
    let mut client = match tether_std::reconnecting(
        &args.client.url,
        client_config,
        args.reconnect_config(),
        args.session_config(),
    ) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("reconnecting_client: {e}");
            exit(1)
        }
    };
    let start = Instant::now();
    let mut sent: u64 = 0;
    loop {
        // Number n goes out n - 1 seconds after the start; events are logged in between.
        let next = start + Duration::from_secs(sent);
        let now = Instant::now();
        if now >= next {
            sent += 1;
            if let Err(e) = client.send_text(&sent.to_string()) {
                eprintln!("message {sent} not queued: {e}");
            }
            continue;
        }
        let event = match client.recv_timeout(next - now) {
            Err(_) => continue, // time for the next number
            Ok(None) => exit(1),
            Ok(Some(event)) => event,
        };
        match event {
            ReconnectEvent::Connected {
                attempt,
                took,
                subprotocol,
            } => eprintln!("connected (attempt {attempt}, {took:?}, subprotocol {subprotocol:?})"),
            ReconnectEvent::Supervisor(SupervisorEvent::Disconnected {
                reason,
                detail,
                retry_in,
                ..
            }) => eprintln!("disconnected: {reason:?} {detail:?}; retry in {retry_in:?}"),
            ReconnectEvent::Message(m) => eprintln!("received {m:?}"),
            ReconnectEvent::Session(e) => eprintln!("{}", example_args::session_line(&e)),
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
}
