//! An echo server: every text and binary message comes back unchanged.
//!
//! ```sh
//! cargo run --release -p tether-tokio --example echo_server -- 127.0.0.1:9001 \
//!     [--ping-interval SECS] [--pong-timeout SECS] [--idle-timeout SECS] \
//!     [--handshake-timeout SECS] [--max-connections N] [--allow-origin ORIGIN]... \
//!     [--subprotocol NAME]...
//! ```
//!
//! `--help` lists every flag (shared by all adapters' examples, see `tether-example-args`).
//!
//! Prints `listening on ADDR` (the bound address) once bound, then echoes every text and binary
//! message unchanged.

use std::io::Write;
use std::time::Duration;

use example_args::ServerArgs;
use tether_tokio::{Server, ServerConfig};

fn main() {
    if let Err(e) = run() {
        eprintln!("echo_server: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: ServerArgs =
        example_args::parse("An echo server: every message comes back unchanged");
    let addr = args.addr.clone();
    let mut server_config = ServerConfig::new(args.connection.config(), args.policy());
    server_config.max_connections = args.max_connections;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let server = Server::bind(&addr, server_config)
            .await
            .map_err(|e| format!("bind {addr}: {e}"))?;
        let local = server.local_addr().map_err(|e| e.to_string())?;
        println!("listening on {local}");
        let _ = std::io::stdout().flush();
        loop {
            let connecting = match server.accept().await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("accept: {e}");
                    // Out of file descriptors and the like: give the system a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                let peer = connecting.peer_addr();
                if let Err(e) = echo(connecting).await {
                    eprintln!("{peer}: {e}");
                }
            });
        }
    })
}

async fn echo(connecting: tether_tokio::Connecting) -> Result<(), tether_tokio::Error> {
    let mut ws = connecting.handshake().await?;
    while let Some(message) = ws.recv().await {
        ws.send(message?).await?;
    }
    Ok(())
}
