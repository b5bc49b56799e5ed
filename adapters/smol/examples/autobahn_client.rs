//! The Autobahn|Testsuite client protocol, against a fuzzingserver.
//!
//! ```sh
//! cargo run --release -p tether-smol --example autobahn_client -- ws://127.0.0.1:9001 \
//!     [--ping-interval SECS] [--pong-timeout SECS] ...
//! ```
//!
//! Asks `/getCaseCount`, runs every case at `/runCase?case=N&agent=tether-smol` by echoing
//! each message until the server closes, then asks the server to write its reports with
//! `/updateReports?agent=tether-smol`. Pings are off unless a heartbeat flag is given;
//! `--help` lists every flag (shared by all adapters' examples, see `tether-example-args`).

use example_args::ClientArgs;
use tether::{Config, Message};
use tether_smol::{ClientConfig, Error, connect};

const AGENT: &str = "tether-smol";

fn main() {
    let args: ClientArgs = example_args::parse_with_default_url(
        "The Autobahn|Testsuite client protocol against a fuzzingserver (pings off by default)",
        "ws://127.0.0.1:9001",
    );
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    config.heartbeat = None;
    let mut client_config = ClientConfig::new(args.connection.config_from(config));
    client_config.connect_timeout = args.connect_timeout;
    let base = args.url.trim_end_matches('/');
    if let Err(e) = smol::block_on(run(base, &client_config)) {
        eprintln!("autobahn_client: {e}");
        std::process::exit(1);
    }
}

async fn run(base: &str, client_config: &ClientConfig) -> Result<(), Error> {
    let config = || client_config.clone();
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
