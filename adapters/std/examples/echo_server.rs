//! An echo server: every text and binary message comes back unchanged.
//!
//! ```sh
//! cargo run --release -p tether-std --example echo_server -- 127.0.0.1:9001 \
//!     [--ping-interval SECS] [--pong-timeout SECS] [--idle-timeout SECS] \
//!     [--handshake-timeout SECS] [--max-connections N] [--allow-origin ORIGIN]... \
//!     [--subprotocol NAME]...
//! ```
//!
//! Prints `listening on ADDR` (the bound address) once it is bound.

use std::io::Write;
use std::process::exit;
use std::time::Duration;

use tether_std::tether::Heartbeat;
use tether_std::tether::handshake::ServerPolicy;
use tether_std::{Config, Server, ServerConfig};

fn usage(problem: &str) -> ! {
    eprintln!("echo_server: {problem}");
    eprintln!(
        "usage: echo_server ADDR [--ping-interval SECS] [--pong-timeout SECS] \
         [--idle-timeout SECS] [--handshake-timeout SECS] [--max-connections N] \
         [--allow-origin ORIGIN]... [--subprotocol NAME]..."
    );
    exit(2)
}

fn secs(flag: &str, value: Option<String>) -> Duration {
    value
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or_else(|| usage(&format!("{flag} needs a number of seconds")))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut addr = None;
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    let mut heartbeat = Heartbeat::default();
    let mut max_connections = usize::MAX;
    let mut policy = ServerPolicy::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ping-interval" => heartbeat.interval = secs(&arg, args.next()),
            "--pong-timeout" => heartbeat.timeout = secs(&arg, args.next()),
            "--idle-timeout" => config.idle_timeout = Some(secs(&arg, args.next())),
            "--handshake-timeout" => config.handshake_timeout = secs(&arg, args.next()),
            "--max-connections" => {
                max_connections = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("--max-connections needs a number"));
            }
            "--allow-origin" => {
                let origin = args
                    .next()
                    .unwrap_or_else(|| usage("--allow-origin needs a value"));
                policy = policy
                    .allow_origin(&origin)
                    .unwrap_or_else(|e| usage(&format!("--allow-origin {origin}: {e}")));
            }
            "--subprotocol" => {
                let name = args
                    .next()
                    .unwrap_or_else(|| usage("--subprotocol needs a value"));
                policy = policy.subprotocol(name);
            }
            flag if flag.starts_with("--") => usage(&format!("unknown flag {flag}")),
            _ if addr.is_none() => addr = Some(arg),
            _ => usage("more than one address"),
        }
    }
    config.heartbeat = Some(heartbeat);
    let addr = addr.unwrap_or_else(|| usage("missing ADDR"));
    let server = Server::bind(&addr, ServerConfig::new().config(config).policy(policy))
        .unwrap_or_else(|e| {
            eprintln!("echo_server: cannot bind {addr}: {e}");
            exit(1)
        })
        .max_connections(max_connections);
    let local = server
        .local_addr()
        .expect("a bound listener has an address");
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {local}");
    let _ = stdout.flush();
    let result = server.serve(|ws| {
        while let Some(Ok(message)) = ws.recv() {
            if ws.send(message).is_err() {
                break;
            }
        }
    });
    if let Err(e) = result {
        eprintln!("echo_server: {e}");
        exit(1);
    }
}
