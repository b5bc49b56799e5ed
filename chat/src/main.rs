//! The tether chat: a page and a WebSocket endpoint from one process and one port, broadcast
//! through tether's topics, and several such nodes sharing their messages through Redis.
//!
//! ```sh
//! cargo run --release -p tether-chat -- 127.0.0.1:8080                       # one node
//! cargo run --release -p tether-chat -- 127.0.0.1:8081 --redis redis://127.0.0.1:6379
//! cargo run --release -p tether-chat -- 127.0.0.1:8082 --redis redis://127.0.0.1:6379
//! ```
//!
//! Prints `listening on ADDR` once bound. `GET /` is the page (`index.html`, embedded at build
//! time); `/ws` is the WebSocket endpoint. A client's text message is a chat line, except
//! `/nick NAME` (a new name) and `/ping TOKEN` (answered to that client alone with
//! `{"type":"pong","t":TOKEN}`, for the page's round-trip time). The server sends JSON:
//! `hello` (your name, this node, who is online, the last 50 messages), `msg` (`from`, `text`
//! verbatim, `ts` in ms since the epoch, `node`), `online` and `pong`.
//!
//! Every connection of a node subscribes to one broadcast topic
//! ([`tether_tokio::Broadcast`]): a message is framed once and its bytes shared by every
//! connection; a reader that stalls is closed with 1013 once its queue passes 256 KiB (the page
//! reconnects and gets the history). With `--redis`, a bridge (`bridge.rs`) publishes what the
//! node's clients say on a Redis channel and delivers what other nodes publish there; it
//! reconnects by tether's reconnect policy, and local delivery goes on while Redis is away.

mod bridge;
mod http;
mod room;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use tether_tokio::handshake::ServerPolicy;
use tether_tokio::{Config, Message, ServerConfig, WebSocket, tether::Heartbeat};
use tokio::net::{TcpListener, TcpStream};

use room::Room;

const PAGE: &str = include_str!("index.html");
/// The longest chat line relayed, in characters.
const MAX_LINE: usize = 4000;
/// The longest nickname, in characters.
const MAX_NICK: usize = 32;

/// A broadcast chat server.
#[derive(Parser, Debug)]
#[command(name = "chat_server", version)]
struct Args {
    /// The address to listen on.
    #[arg(default_value = "127.0.0.1:8080")]
    addr: String,
    /// Share messages with other nodes through this Redis server (e.g. redis://127.0.0.1:6379).
    #[arg(long)]
    redis: Option<String>,
    /// This node's name (default: its address).
    #[arg(long)]
    node: Option<String>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let listener = match TcpListener::bind(&args.addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind {}: {e}", args.addr);
            std::process::exit(2);
        }
    };
    let local = listener.local_addr().expect("local address");
    let room = Arc::new(Room::new(args.node.unwrap_or_else(|| local.to_string())));
    if let Some(url) = args.redis
        && let Err(e) = bridge::start(url.clone(), Arc::clone(&room))
    {
        eprintln!("--redis {url}: {e}");
        std::process::exit(2);
    }
    println!("listening on {local}");
    eprintln!("open http://{local}/ in a browser");

    let mut config = Config::default();
    config.max_message_size = 64 << 10;
    config.max_frame_payload = 64 << 10;
    config.heartbeat = Some(Heartbeat::new(
        Duration::from_secs(15),
        Duration::from_secs(10),
    ));
    let server_config = ServerConfig::new(config, ServerPolicy::new());
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
        let room = Arc::clone(&room);
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
    room: Arc<Room>,
    config: ServerConfig,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let head =
        tokio::time::timeout(Duration::from_secs(10), http::read_head(&mut stream)).await??;
    let path = head.path.split('?').next().unwrap_or_default();
    if !head.upgrade {
        let (status, content_type, body) = match path {
            "/" | "/index.html" => ("200 OK", "text/html; charset=utf-8", PAGE.as_bytes()),
            _ => ("404 Not Found", "text/plain", &b"not found\n"[..]),
        };
        http::respond(&mut stream, status, content_type, body).await?;
        return Ok(());
    }
    if path != "/ws" {
        http::respond(&mut stream, "404 Not Found", "text/plain", b"not found\n").await?;
        return Ok(());
    }
    let ws = tether_tokio::accept(http::Replay::new(head.bytes, stream), config).await?;
    chat(ws, peer, id, &room).await;
    Ok(())
}

/// One client, from its greeting to its departure.
async fn chat(mut ws: WebSocket, peer: SocketAddr, id: u64, room: &Room) {
    let mut name = format!("guest-{id}");
    let subscriber = room.join(&mut ws, id, &name);
    eprintln!("{peer}: {name} joined");
    while let Some(message) = ws.recv().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("{peer}: {name}: {e}");
                break;
            }
        };
        let text = text.as_str();
        if let Some(nick) = text.strip_prefix("/nick ") {
            let nick: String = nick.trim().chars().take(MAX_NICK).collect();
            if !nick.is_empty() {
                name = nick;
                room.rename(id, &name);
            }
        } else if let Some(token) = text.strip_prefix("/ping ") {
            let pong = json!({"type": "pong", "t": token}).to_string();
            if ws.send(Message::text(pong)).await.is_err() {
                break;
            }
        } else {
            let line: String = text.chars().take(MAX_LINE).collect();
            room.say(&name, &line);
        }
    }
    drop(subscriber);
    room.leave(id);
    eprintln!("{peer}: {name} left");
}
