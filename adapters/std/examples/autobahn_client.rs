//! Runs the Autobahn|Testsuite client cases against a fuzzingserver.
//!
//! ```sh
//! cargo run --release -p tether-std --example autobahn_client -- ws://127.0.0.1:9001 \
//!     [--ping-interval SECS] [--pong-timeout SECS] ...
//! ```
//!
//! `--help` lists every flag (shared by all adapters' examples, see `tether-example-args`).

use std::process::exit;

use example_args::ClientArgs;
use tether_std::{ClientConfig, CloseCode, Config, Message, connect};

const AGENT: &str = "tether-std";

fn main() {
    let args: ClientArgs = example_args::parse_with_default_url(
        "Runs the Autobahn|Testsuite client cases against a fuzzingserver",
        "ws://127.0.0.1:9001",
    );
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    let mut client_config = ClientConfig::new(args.connection.config_from(config));
    client_config.connect_timeout = args.connect_timeout;
    let config = || client_config.clone();
    let base = args.url.trim_end_matches('/');
    let count = match connect(&format!("{base}/getCaseCount"), config()) {
        Ok((mut ws, _)) => match ws.recv() {
            Some(Ok(Message::Text(t))) => t.as_str().trim().parse::<u32>().unwrap_or(0),
            other => {
                eprintln!("autobahn_client: unexpected answer to getCaseCount: {other:?}");
                exit(1)
            }
        },
        Err(e) => {
            eprintln!("autobahn_client: cannot connect to {base}: {e}");
            exit(1)
        }
    };
    eprintln!("running {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        match connect(&url, config()) {
            Ok((mut ws, _)) => {
                while let Some(Ok(message)) = ws.recv() {
                    if ws.send(message).is_err() {
                        break;
                    }
                }
            }
            Err(e) => eprintln!("case {case}: {e}"),
        }
    }
    match connect(&format!("{base}/updateReports?agent={AGENT}"), config()) {
        Ok((mut ws, _)) => {
            let _ = ws.close(CloseCode::NORMAL, "");
        }
        Err(e) => {
            eprintln!("autobahn_client: updateReports failed: {e}");
            exit(1)
        }
    }
    eprintln!("done");
}
