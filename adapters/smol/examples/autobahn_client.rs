//! The Autobahn|Testsuite client protocol, against a fuzzingserver.
//!
//! ```sh
//! cargo run --release -p tether-smol --example autobahn_client -- ws://127.0.0.1:9001
//! ```
//!
//! Asks `/getCaseCount`, runs every case at `/runCase?case=N&agent=tether-smol` by echoing
//! each message until the server closes, then asks the server to write its reports with
//! `/updateReports?agent=tether-smol`.

use tether::{Config, Message};
use tether_smol::{ClientConfig, Error, connect};

const AGENT: &str = "tether-smol";

fn main() {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let base = base.trim_end_matches('/').to_owned();
    if let Err(e) = smol::block_on(run(&base)) {
        eprintln!("autobahn_client: {e}");
        std::process::exit(1);
    }
}

fn config() -> ClientConfig {
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    config.heartbeat = None;
    ClientConfig::new(config)
}

async fn run(base: &str) -> Result<(), Error> {
    let (mut ws, _) = connect(&format!("{base}/getCaseCount"), config()).await?;
    let count: u32 = match ws.recv().await {
        Some(Ok(Message::Text(t))) => t.as_str().trim().parse().unwrap_or(0),
        other => {
            eprintln!("unexpected answer to getCaseCount: {other:?}");
            0
        }
    };
    drop(ws);
    eprintln!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        match connect(&url, config()).await {
            Ok((mut ws, _)) => {
                while let Some(Ok(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
                // Wait for the end, so cases do not overlap.
                while ws.recv().await.is_some() {}
            }
            Err(e) => eprintln!("case {case}: {e}"),
        }
    }
    let (mut ws, _) = connect(&format!("{base}/updateReports?agent={AGENT}"), config()).await?;
    while ws.recv().await.is_some() {}
    Ok(())
}
