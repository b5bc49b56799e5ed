//! Runs the Autobahn|Testsuite client cases against a fuzzingserver.
//!
//! ```sh
//! cargo run --release -p tether-std --example autobahn_client -- ws://127.0.0.1:9001
//! ```

use std::process::exit;

use tether_std::{ClientConfig, Config, Message, connect};

const AGENT: &str = "tether-std";

fn config() -> ClientConfig {
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    ClientConfig::new().config(config)
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let base = base.trim_end_matches('/');
    let count = match connect(&format!("{base}/getCaseCount"), config()) {
        Ok((ws, _)) => match ws.recv() {
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
            Ok((ws, _)) => {
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
        Ok((ws, _)) => {
            let _ = ws.close(1000u16, "");
        }
        Err(e) => {
            eprintln!("autobahn_client: updateReports failed: {e}");
            exit(1)
        }
    }
    eprintln!("done");
}
