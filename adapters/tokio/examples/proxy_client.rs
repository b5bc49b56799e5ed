//! A client that connects through an HTTP proxy (CONNECT), sends each MESSAGE given after the
//! flags, prints what the server answers, and closes.
//!
//! ```sh
//! cargo run -p tether-tokio --example proxy_client -- ws://echo.example:9001/ \
//!     --proxy http://user:password@proxy.example:3128 hello world
//! HTTPS_PROXY=http://proxy.example:3128 NO_PROXY=localhost,.internal \
//!     cargo run -p tether-tokio --features rustls --example proxy_client -- \
//!     wss://echo.example/ --proxy-from-env hello
//! ```
//!
//! Without `--proxy` or `--proxy-from-env` it connects directly. A proxy that refuses prints
//! its address, the target and its status (e.g. `proxy 127.0.0.1:3128 did not open a tunnel
//! to echo.example:9001: refused with 403 Forbidden`) and exits with 1.

use clap::Parser;
use example_args::ClientArgs;
use tether::CloseCode;
use tether_tokio::{ClientConfig, Proxy};

/// The flags of `proxy_client`.
#[derive(Parser, Debug)]
struct Args {
    /// The URL, connect timeout, proxy and connection settings.
    #[command(flatten)]
    client: ClientArgs,
    /// The messages to send, one text message each
    #[arg(value_name = "MESSAGE", default_value = "hello through the proxy")]
    messages: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Args = example_args::parse("A client that connects through an HTTP proxy");
    let url = &args.client.url;
    let mut config = ClientConfig::new(args.client.connection.config());
    config.connect_timeout = args.client.connect_timeout;
    if let Some(proxy) = &args.client.proxy {
        match Proxy::all(proxy) {
            Ok(proxy) => config = config.proxy(proxy),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    } else if args.client.proxy_from_env {
        config = config.proxy(Proxy::from_env());
    }
    let (mut ws, _) = match tether_tokio::connect(url, config).await {
        Ok(connected) => connected,
        Err(e) => {
            eprintln!("{url}: {e}");
            std::process::exit(1);
        }
    };
    for message in &args.messages {
        if let Err(e) = ws.send_text(message).await {
            eprintln!("send: {e}");
            std::process::exit(1);
        }
        match ws.recv().await {
            Some(Ok(answer)) => println!("{}", String::from_utf8_lossy(answer.as_bytes())),
            Some(Err(e)) => {
                eprintln!("recv: {e}");
                std::process::exit(1);
            }
            None => break,
        }
    }
    let stats = ws.stats();
    eprintln!(
        "sent {} messages ({} bytes), received {} ({} bytes)",
        stats.messages_sent, stats.bytes_sent, stats.messages_received, stats.bytes_received
    );
    let _ = ws.close(CloseCode::NORMAL, "").await;
}
