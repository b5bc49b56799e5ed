//! An echo server: every text and binary message comes back unchanged.
//!
//! ```sh
//! cargo run --release -p tether-std --example echo_server -- 127.0.0.1:9001 \
//!     [--ping-interval SECS] [--pong-timeout SECS] [--idle-timeout SECS] \
//!     [--handshake-timeout SECS] [--max-connections N] [--allow-origin ORIGIN]... \
//!     [--subprotocol NAME]...
//! ```
//!
//! Prints `listening on ADDR` (the bound address) once it is bound. `--help` lists every flag
//! (shared by all adapters' examples, see `tether-example-args`).

use std::io::Write;
use std::process::exit;

use example_args::ServerArgs;
use tether_std::{Config, Server, ServerConfig};

fn main() {
    let args: ServerArgs =
        example_args::parse("An echo server: every message comes back unchanged");
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    let config = args.connection.config_from(config);
    let addr = &args.addr;
    let mut server_config = ServerConfig::new(config, args.policy());
    server_config.max_connections = args.max_connections;
    let server = Server::bind(addr, server_config).unwrap_or_else(|e| {
        eprintln!("echo_server: cannot bind {addr}: {e}");
        exit(1)
    });
    let local = server
        .local_addr()
        .expect("a bound listener has an address");
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {local}");
    let _ = stdout.flush();
    let result = server.serve(|mut ws| {
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
