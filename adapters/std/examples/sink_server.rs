//! A sink: prints every text message it receives, one per line, and sends nothing back.
//!
//! ```sh
//! cargo run --release -p tether-std --example sink_server -- 127.0.0.1:9001 \
//!     [--resume] [--ping-interval SECS] [--pong-timeout SECS]
//! ```
//!
//! Prints `listening on ADDR` (the bound address) once bound, then each text message on its
//! own line, flushed at once. With `--resume` (and a `reconnecting_client --resume`), a
//! connection that dies costs no message and doubles none: see `docs/resume.md`. `--help` lists
//! every flag (shared by all adapters' examples, see `tether-example-args`).

use std::io::Write;
use std::process::exit;

use example_args::ServerArgs;
use tether_std::{Message, Server, ServerConfig};

fn main() {
    let args: ServerArgs = example_args::parse("A sink: prints every text message it receives");
    let addr = &args.addr;
    let mut server_config = ServerConfig::new(args.connection.config(), args.policy());
    server_config.max_connections = args.max_connections;
    let server = Server::bind(addr, server_config).unwrap_or_else(|e| {
        eprintln!("sink_server: cannot bind {addr}: {e}");
        exit(1)
    });
    let local = server
        .local_addr()
        .expect("a bound listener has an address");
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {local}");
    let _ = stdout.flush();
    let result = server.serve(|mut ws| {
        if ws.resumed() {
            eprintln!("session resumed");
        }
        while let Some(Ok(message)) = ws.recv() {
            if let Message::Text(text) = &message {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{}", text.as_str());
                let _ = stdout.flush();
            }
        }
    });
    if let Err(e) = result {
        eprintln!("sink_server: {e}");
        exit(1);
    }
}
