//! A reconnecting client that sends a counter, one text message per second, forever.
//!
//! ```sh
//! cargo run --release -p tether-tokio --example reconnecting_client -- ws://127.0.0.1:9001/ \
//!     [--resume] [--ping-interval SECS] [--pong-timeout SECS] [--backoff-max SECS] ...
//! ```
//!
//! Every state change (connected, disconnected with the reason and the retry delay, gave up)
//! is logged to stderr. While disconnected the counter keeps going into the send queue, and
//! the queue is delivered in order after the next connection opens.
//!
//! A dead peer (a black-holed connection) is noticed by the heartbeat: with the defaults (a
//! Ping after 20 s of silence, 20 s for its Pong) after up to about 40 s; `--ping-interval 5
//! --pong-timeout 5` notices it within about 10 s. `--help` lists every flag (shared by all
//! adapters' examples, see `tether-example-args`).

use std::time::Duration;

use example_args::ReconnectingClientArgs;
use tether::Message;
use tether::reconnect::SupervisorEvent;
use tether_tokio::{ClientConfig, ReconnectEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: ReconnectingClientArgs = example_args::parse_with_default_url(
        "A reconnecting client that sends a counter, one text message per second, forever",
        "ws://127.0.0.1:9001/",
    );
    let url = &args.client.url;
    let mut client_config = ClientConfig::new(args.client.connection.config());
    client_config.connect_timeout = args.client.connect_timeout;
    if let Some(proxy) = &args.client.proxy {
        match tether_tokio::Proxy::all(proxy) {
            Ok(proxy) => client_config = client_config.proxy(proxy),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    } else if args.client.proxy_from_env {
        client_config = client_config.proxy(tether_tokio::Proxy::from_env());
    }
    let mut client = match tether_tokio::reconnecting(
        url,
        client_config,
        args.reconnect_config(),
        args.session_config(),
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
                Some(ReconnectEvent::Session(e)) => eprintln!("{}", example_args::session_line(&e)),
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
