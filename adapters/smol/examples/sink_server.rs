//! A sink: prints every text message it receives, one per line, and sends nothing back.
//!
//! ```sh
//! cargo run --release -p tether-smol --example sink_server -- 127.0.0.1:9001 \
//!     [--resume] [--ping-interval SECS] [--pong-timeout SECS]
//! ```
//!
//! Prints `listening on ADDR` (the bound address) once bound, then each text message on its
//! own line, flushed at once. With `--resume` (and a `reconnecting_client --resume`), a
//! connection that dies costs no message and doubles none: see `docs/resume.md`. `--help` lists
//! every flag (shared by all adapters' examples, see `tether-example-args`).

use std::io::Write;
use std::time::Duration;

use example_args::ServerArgs;
use tether::Message;
use tether_smol::{Server, ServerConfig};

fn main() {
    if let Err(e) = run() {
        eprintln!("sink_server: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: ServerArgs = example_args::parse("A sink: prints every text message it receives");
    let addr = args.addr.clone();
    let mut server_config = ServerConfig::new(args.connection.config(), args.policy());
    server_config.max_connections = args.max_connections;

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
                    async_io::Timer::after(Duration::from_millis(50)).await;
                    continue;
                }
            };
            smol::spawn(async move {
                let peer = connecting.peer_addr();
                let served = connecting.serve(|mut ws| async move {
                    if ws.resumed() {
                        eprintln!("{peer}: session resumed");
                    }
                    while let Some(Ok(message)) = ws.recv().await {
                        print_text(&message);
                    }
                });
                if let Err(e) = served.await {
                    eprintln!("{peer}: {e}");
                }
            })
            .detach();
        }
    })
}

fn print_text(message: &Message) {
    if let Message::Text(text) = message {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", text.as_str());
        let _ = stdout.flush();
    }
}
