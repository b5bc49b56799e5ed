//! A broadcast chat with its page, from one process and one port.
//!
//! ```sh
//! cargo run --release -p tether-tokio --example chat_server [-- 127.0.0.1:PORT]
//! ```
//!
//! Prints `open http://ADDR/ in a browser`. The example reads each request head itself
//! (`http.rs`, not part of the adapter): `GET /` gets the page (`index.html`, embedded at build
//! time), and a WebSocket upgrade (the page connects to `/ws`) is handed to
//! `tether_tokio::accept` with the bytes already read replayed in front of the stream. Every
//! text message is broadcast to everyone connected. The page reconnects with exponential
//! backoff and jitter and shows the connection state.
//!
//! The default address is 127.0.0.1:8080; if that port is taken, a free port is chosen.
//! Accepted sockets get `TCP_NODELAY`.

mod http;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tether::handshake::ServerPolicy;
use tether::{Config, Heartbeat, Message};
use tether_tokio::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

const PAGE: &str = include_str!("index.html");
/// The longest chat line relayed, in bytes.
const MAX_LINE: usize = 4096;

#[tokio::main]
async fn main() {
    let requested = std::env::args().nth(1);
    let addr = requested.clone().unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) if requested.is_none() => {
            eprintln!("{addr}: {e}; choosing a free port");
            TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0")
        }
        Err(e) => {
            eprintln!("bind {addr}: {e}");
            std::process::exit(2);
        }
    };
    let local = listener.local_addr().expect("local address");
    println!("open http://{local}/ in a browser");

    let mut config = Config::default();
    config.max_message_size = 64 << 10;
    config.max_frame_payload = 64 << 10;
    config.heartbeat = Some(Heartbeat::new(
        Duration::from_secs(15),
        Duration::from_secs(10),
    ));
    let server_config = ServerConfig::new(config, ServerPolicy::new());
    let (room, _) = broadcast::channel::<String>(256);
    let next_id = AtomicU64::new(1);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let room = room.clone();
        let config = server_config.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, peer, id, room, config).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    room: broadcast::Sender<String>,
    config: ServerConfig,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let head =
        tokio::time::timeout(Duration::from_secs(10), http::read_head(&mut stream)).await??;
    if !head.upgrade {
        let (status, content_type, body) = match head.path.as_str() {
            "/" | "/index.html" => ("200 OK", "text/html; charset=utf-8", PAGE.as_bytes()),
            _ => ("404 Not Found", "text/plain", &b"not found\n"[..]),
        };
        http::respond(&mut stream, status, content_type, body).await?;
        return Ok(());
    }
    let ws = tether_tokio::accept(http::Replay::new(head.bytes, stream), config).await?;
    let name = format!("guest-{id}");
    eprintln!("{peer}: {name} joined");
    let (mut writer, mut reader) = ws.split();
    let mut inbox = room.subscribe();
    let _ = room.send(format!("* {name} joined"));
    writer.send_text(&format!("* you are {name}")).await?;
    let relay = tokio::spawn(async move {
        loop {
            match inbox.recv().await {
                Ok(line) => {
                    if writer.send_text(&line).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let _ = writer.send_text(&format!("* {n} messages skipped")).await;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    while let Some(message) = reader.recv().await {
        match message {
            Ok(Message::Text(text)) => {
                let line: String = text.as_str().chars().take(MAX_LINE).collect();
                let _ = room.send(format!("{name}: {line}"));
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("{peer}: {name}: {e}");
                break;
            }
        }
    }
    relay.abort();
    let _ = room.send(format!("* {name} left"));
    eprintln!("{peer}: {name} left");
    Ok(())
}
