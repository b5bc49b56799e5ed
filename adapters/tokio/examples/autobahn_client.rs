//! The Autobahn|Testsuite client protocol against a fuzzingserver.
//!
//! ```sh
//! cargo run --release -p tether-tokio --example autobahn_client -- ws://127.0.0.1:9001 \
//!     [--ping-interval SECS] [--pong-timeout SECS] ...
//! ```
//!
//! Asks `/getCaseCount`, echoes every message of each case `/runCase?case=N&agent=tether-tokio`
//! until the server closes, then asks for `/updateReports?agent=tether-tokio`. Pings are off
//! unless a heartbeat flag is given; `--help` lists every flag (shared by all adapters'
//! examples, see `tether-example-args`).

use example_args::ClientArgs;
use tether::{Config, Message};
use tether_tokio::{ClientConfig, connect};

const AGENT: &str = "tether-tokio";

#[tokio::main(flavor = "current_thread")]
async fn main() {
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
    let config = || client_config.clone();
    let base = args.url.trim_end_matches('/');
    let count = match case_count(base, config()).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("getCaseCount: {e}");
            std::process::exit(1);
        }
    };
    println!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        if let Err(e) = run_case(&url, config()).await {
            eprintln!("case {case}: {e}");
        }
    }
    let url = format!("{base}/updateReports?agent={AGENT}");
    match connect(&url, config()).await {
        Ok((mut ws, _)) => while ws.recv().await.is_some() {},
        Err(e) => {
            eprintln!("updateReports: {e}");
            std::process::exit(1);
        }
    }
    println!("reports updated");
}

async fn case_count(base: &str, config: ClientConfig) -> Result<u32, tether_tokio::Error> {
    let (mut ws, _) = connect(&format!("{base}/getCaseCount"), config).await?;
    let mut count = 0;
    while let Some(message) = ws.recv().await {
        if let Message::Text(t) = message? {
            count = t.as_str().trim().parse().unwrap_or(0);
        }
    }
    Ok(count)
}

async fn run_case(url: &str, config: ClientConfig) -> Result<(), tether_tokio::Error> {
    let (mut ws, _) = connect(url, config).await?;
    while let Some(message) = ws.recv().await {
        match message {
            Ok(m) => {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            // The case ended abnormally (often on purpose): the server's report says why.
            Err(_) => break,
        }
    }
    Ok(())
}
