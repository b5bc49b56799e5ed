//! An echo server: every text and binary message comes back unchanged.
//!
//! ```sh
//! cargo run --release -p tether-smol --example echo_server -- 127.0.0.1:9001 \
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
use tether::Config;
use tether_smol::{Server, ServerConfig};

fn main() {
    if let Err(e) = run() {
        eprintln!("echo_server: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: ServerArgs =
        example_args::parse("An echo server: every message comes back unchanged");
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    let mut server_config = ServerConfig::new(args.connection.config_from(config), args.policy());
    server_config.max_connections = args.max_connections;
    let addr = args.addr;

    smol::block_on(async move {
        let server = Server::bind(addr.as_str(), server_config)
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
                    async_io::Timer::after(Duration::from_millis(50)).await;
                    continue;
                }
            };
            smol::spawn(async move {
                let peer = connecting.peer_addr();
                if let Err(e) = echo(connecting).await {
                    eprintln!("{peer}: {e}");
                }
            })
            .detach();
        }
    })
}

async fn echo(connecting: tether_smol::Connecting) -> Result<(), tether_smol::Error> {
    let mut ws = connecting.handshake().await?;
    while let Some(message) = ws.recv().await {
        ws.send(message?).await?;
    }
    Ok(())
}
