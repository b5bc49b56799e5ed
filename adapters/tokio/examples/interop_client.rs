//! Interoperability checks against an echo server.
//!
//! ```sh
//! cargo run --release -p tether-tokio --example interop_client -- ws://127.0.0.1:PORT/path \
//!     [--expect-server-close] [--ping-interval SECS] [--pong-timeout SECS] ...
//! ```
//!
//! `--help` lists every flag (shared by all adapters' examples, see `tether-example-args`).
//!
//! Offers the subprotocols `chat.v2` and `chat.v1`, runs each check and prints `ok NAME` or
//! `FAIL NAME: WHY`; exits 0 only if every check passed.

use std::time::Duration;

use example_args::InteropArgs;
use tether::Bytes;
use tether::handshake::ClientRequest;
use tether::{CloseCode, Config, DataKind, Message};
use tether_tokio::{ClientConfig, Incoming, WebSocket};

type Ws = WebSocket;
type Check = Result<(), String>;

const STEP: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: InteropArgs = example_args::parse("Interoperability checks against an echo server");
    let url = args.client.url.clone();
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    let mut client_config = ClientConfig::new(args.client.connection.config_from(config));
    client_config.connect_timeout = args.client.connect_timeout;
    let mut failed = 0;
    let mut report = |name: &str, result: Check| match result {
        Ok(()) => println!("ok {name}"),
        Err(why) => {
            failed += 1;
            println!("FAIL {name}: {why}");
        }
    };
    let mut ws = match connect(&url, &client_config).await {
        Ok(ws) => ws,
        Err(why) => {
            report("connect", Err(why));
            std::process::exit(1);
        }
    };
    report("text", text(&mut ws).await);
    report("binary", binary(&mut ws).await);
    report("large", large(&mut ws).await);
    report("fragmented", fragmented(&mut ws).await);
    report("ping", ping(&mut ws).await);
    let subprotocol = ws.subprotocol().map(String::from);
    eprintln!(
        "negotiated subprotocol: {}",
        subprotocol.as_deref().unwrap_or("(none)")
    );
    report(
        "subprotocol",
        match subprotocol.as_deref() {
            Some("chat.v2") => Ok(()),
            other => Err(format!("negotiated {other:?}, expected chat.v2")),
        },
    );
    if args.expect_server_close {
        report("close", close(&mut ws).await);
        match connect(&url, &client_config).await {
            Ok(mut ws) => report("server-close", server_close(&mut ws).await),
            Err(why) => report("server-close", Err(why)),
        }
    } else {
        report("close", close(&mut ws).await);
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

async fn connect(url: &str, config: &ClientConfig) -> Result<Ws, String> {
    let request = ClientRequest::new(url)
        .map_err(|e| e.to_string())?
        .subprotocol("chat.v2")
        .and_then(|r| r.subprotocol("chat.v1"))
        .map_err(|e| e.to_string())?;
    let (ws, _) =
        tokio::time::timeout(STEP, tether_tokio::connect_request(request, config.clone()))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn next_message(ws: &mut Ws) -> Result<Message, String> {
    match tokio::time::timeout(STEP, ws.recv()).await {
        Err(_) => Err("no echo within 30 s".into()),
        Ok(None) => Err("connection closed".into()),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(Some(Ok(m))) => Ok(m),
    }
}

async fn text(ws: &mut Ws) -> Check {
    let sent = "héllo, wörld: ✓ 🦀 日本語";
    ws.send_text(sent).await.map_err(|e| e.to_string())?;
    match next_message(ws).await? {
        Message::Text(t) if t.as_str() == sent => Ok(()),
        other => Err(format!("echo differs: {other:?}")),
    }
}

async fn binary(ws: &mut Ws) -> Check {
    let sent: Vec<u8> = (0..=255).collect();
    ws.send_binary(sent.clone())
        .await
        .map_err(|e| e.to_string())?;
    match next_message(ws).await? {
        Message::Binary(b) if b[..] == sent[..] => Ok(()),
        other => Err(format!("echo differs ({} bytes)", other.len())),
    }
}

async fn large(ws: &mut Ws) -> Check {
    let sent: Bytes = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into();
    ws.send_binary(sent.clone())
        .await
        .map_err(|e| e.to_string())?;
    match next_message(ws).await? {
        Message::Binary(b) if b == sent => Ok(()),
        other => Err(format!("16 MiB echo differs ({} bytes back)", other.len())),
    }
}

async fn fragmented(ws: &mut Ws) -> Check {
    let parts = ["frag", "mented ✓", " text"];
    for (i, part) in parts.iter().enumerate() {
        ws.send_fragment(DataKind::Text, part.to_string(), i == parts.len() - 1)
            .await
            .map_err(|e| e.to_string())?;
    }
    match next_message(ws).await? {
        Message::Text(t) if t.as_str() == parts.concat() => Ok(()),
        other => Err(format!("echo differs: {other:?}")),
    }
}

async fn ping(ws: &mut Ws) -> Check {
    ws.ping("interop").await.map_err(|e| e.to_string())?;
    loop {
        match tokio::time::timeout(STEP, ws.next_event()).await {
            Err(_) => return Err("no pong within 30 s".into()),
            Ok(None) => return Err("connection closed".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(Incoming::Pong(p)))) if &p[..] == b"interop" => return Ok(()),
            Ok(Some(Ok(Incoming::Pong(p)))) => return Err(format!("pong payload {p:?}")),
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn close(ws: &mut Ws) -> Check {
    let closed = tokio::time::timeout(STEP, ws.close(CloseCode(4001), "bye"))
        .await
        .map_err(|_| "close timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if closed.clean && closed.code == CloseCode(4001) {
        Ok(())
    } else {
        Err(format!("closed with {closed:?}"))
    }
}

async fn server_close(ws: &mut Ws) -> Check {
    ws.send_text("close-me").await.map_err(|e| e.to_string())?;
    loop {
        match tokio::time::timeout(STEP, ws.recv()).await {
            Err(_) => return Err("the server did not close within 30 s".into()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => break,
        }
    }
    match ws.closed() {
        Some(c) if c.clean && c.code == CloseCode(4002) && c.reason == "asked" => Ok(()),
        other => Err(format!("closed with {other:?}")),
    }
}
