//! An echo server: every text and binary message comes back unchanged.
//!
//! ```sh
//! cargo run --release -p tether-tokio --example echo_server -- 127.0.0.1:9001 \
//!     [--ping-interval SECS] [--pong-timeout SECS] [--idle-timeout SECS] \
//!     [--handshake-timeout SECS] [--max-connections N] [--allow-origin ORIGIN]... \
//!     [--subprotocol NAME]...
//! ```
//!
//! Prints `listening on ADDR` (the bound address) once bound, then echoes every text and binary
//! message unchanged.

use std::io::Write;
use std::time::Duration;

use tether::handshake::ServerPolicy;
use tether::{Config, Heartbeat};
use tether_tokio::{Server, ServerConfig};

fn main() {
    if let Err(e) = run() {
        eprintln!("echo_server: {e}");
        std::process::exit(2);
    }
}

fn secs(value: Option<String>, flag: &str) -> Result<Duration, String> {
    let v = value.ok_or(format!("{flag} needs a value"))?;
    let s: f64 = v
        .parse()
        .map_err(|_| format!("{flag}: not a number: {v}"))?;
    Duration::try_from_secs_f64(s).map_err(|_| format!("{flag}: out of range: {v}"))
}

fn run() -> Result<(), String> {
    let mut addr = String::from("127.0.0.1:9001");
    let mut config = Config::default();
    config.max_frame_payload = 16 << 20;
    config.max_message_size = 64 << 20;
    let mut heartbeat = Heartbeat::default();
    let mut policy = ServerPolicy::new();
    let mut max_connections = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ping-interval" => heartbeat.interval = secs(args.next(), &arg)?,
            "--pong-timeout" => heartbeat.timeout = secs(args.next(), &arg)?,
            "--idle-timeout" => config.idle_timeout = Some(secs(args.next(), &arg)?),
            "--handshake-timeout" => config.handshake_timeout = secs(args.next(), &arg)?,
            "--max-connections" => {
                let v = args.next().ok_or("--max-connections needs a value")?;
                max_connections = Some(v.parse::<usize>().map_err(|e| format!("{arg}: {e}"))?);
            }
            "--allow-origin" => {
                let v = args.next().ok_or("--allow-origin needs a value")?;
                policy = policy.allow_origin(&v).map_err(|e| format!("{arg}: {e}"))?;
            }
            "--subprotocol" => {
                policy = policy.subprotocol(args.next().ok_or("--subprotocol needs a value")?);
            }
            other if !other.starts_with("--") => addr = other.to_owned(),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    config.heartbeat = Some(heartbeat);
    let mut server_config = ServerConfig::new(config, policy);
    server_config.max_connections = max_connections;

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
