//! Interoperability checks against an echo server.
//!
//! ```sh
//! cargo run --release -p tether-smol --example interop_client -- ws://127.0.0.1:PORT/path \
//!     [--expect-server-close] [--ping-interval SECS] [--pong-timeout SECS] ...
//! ```
//!
//! Connects offering the subprotocols `chat.v2` then `chat.v1` and prints `ok NAME` or
//! `FAIL NAME: WHY` for each check: `text`, `binary`, `large`, `fragmented`, `ping`,
//! `subprotocol`, then `close` (or, with `--expect-server-close`, `server-close`: the server
//! is asked to close with the text `close-me` and must answer 4002 "asked"). Exits 0 only if
//! every check passed. `--help` lists every flag (shared by all adapters' examples, see
//! `tether-example-args`).

use std::time::Duration;

use example_args::InteropArgs;
use futures_lite::FutureExt;
use tether::handshake::ClientRequest;
use tether::{CloseCode, Config, DataKind, Message};
use tether_smol::{ClientConfig, Incoming, WebSocket, connect_request};

type Ws = WebSocket;

const STEP: Duration = Duration::from_secs(30);

fn main() {
    let args: InteropArgs = example_args::parse("Interoperability checks against an echo server");
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    let mut client_config = ClientConfig::new(args.client.connection.config_from(config));
    client_config.connect_timeout = args.client.connect_timeout;
    let all_ok = smol::block_on(run(
        &args.client.url,
        client_config,
        args.expect_server_close,
    ));
    std::process::exit(if all_ok { 0 } else { 1 });
}

async fn within<T>(fut: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    fut.or(async {
        async_io::Timer::after(STEP).await;
        Err(format!("no answer within {STEP:?}"))
    })
    .await
}

async fn run(url: &str, config: ClientConfig, expect_server_close: bool) -> bool {
    let request = match ClientRequest::new(url)
        .map_err(|e| e.to_string())
        .and_then(|r| r.subprotocol("chat.v2").map_err(|e| e.to_string()))
        .and_then(|r| r.subprotocol("chat.v1").map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            println!("FAIL connect: {e}");
            return false;
        }
    };
    let mut ws = match within(async {
        connect_request(request, config)
            .await
            .map_err(|e| e.to_string())
    })
    .await
    {
        Ok((ws, _)) => ws,
        Err(e) => {
            println!("FAIL connect: {e}");
            return false;
        }
    };
    let mut all_ok = true;
    let mut report = |name: &str, result: Result<(), String>| match result {
        Ok(()) => println!("ok {name}"),
        Err(why) => {
            all_ok = false;
            println!("FAIL {name}: {why}");
        }
    };

    let text = "héllo, wörld: ✓ 日本語 🚀";
    report("text", within(echo(&mut ws, Message::text(text))).await);
    let binary: Vec<u8> = (0..=255u8).collect();
    report(
        "binary",
        within(echo(&mut ws, Message::binary(binary))).await,
    );
    let large: Vec<u8> = (0..16usize << 20).map(|i| (i % 251) as u8).collect();
    report("large", within(echo(&mut ws, Message::binary(large))).await);
    report("fragmented", within(fragmented(&mut ws)).await);
    report("ping", within(ping(&mut ws)).await);
    let negotiated = ws.subprotocol().map(str::to_owned);
    match negotiated.as_deref() {
        Some("chat.v2") => println!("ok subprotocol: chat.v2"),
        other => report(
            "subprotocol",
            Err(format!("negotiated {other:?}, expected chat.v2")),
        ),
    }
    if expect_server_close {
        report("server-close", within(server_close(&mut ws)).await);
    } else {
        report("close", within(close(&mut ws)).await);
    }
    all_ok
}

async fn next_message(ws: &mut Ws) -> Result<Message, String> {
    loop {
        match ws.next_event().await {
            Some(Ok(Incoming::Message(m))) => return Ok(m),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection closed".into()),
        }
    }
}

async fn echo(ws: &mut Ws, message: Message) -> Result<(), String> {
    ws.send(message.clone()).await.map_err(|e| e.to_string())?;
    let got = next_message(ws).await?;
    if got == message {
        Ok(())
    } else if got.kind() != message.kind() {
        Err(format!("sent {:?}, got {:?}", message.kind(), got.kind()))
    } else {
        Err(format!(
            "sent {} bytes, got {} different bytes",
            message.len(),
            got.len()
        ))
    }
}

async fn fragmented(ws: &mut Ws) -> Result<(), String> {
    // The middle fragment ends inside "✓" (3 bytes): a split character is allowed.
    let whole = "frag-men-ted ✓";
    let bytes = whole.as_bytes();
    let cut = bytes.len() - 2;
    for (part, fin) in [
        (&bytes[..5], false),
        (&bytes[5..cut], false),
        (&bytes[cut..], true),
    ] {
        ws.send_fragment(DataKind::Text, part.to_vec(), fin)
            .await
            .map_err(|e| e.to_string())?;
    }
    match next_message(ws).await? {
        Message::Text(t) if t.as_str() == whole => Ok(()),
        other => Err(format!("got {other:?}")),
    }
}

async fn ping(ws: &mut Ws) -> Result<(), String> {
    ws.ping(&b"interop"[..]).await.map_err(|e| e.to_string())?;
    loop {
        match ws.next_event().await {
            Some(Ok(Incoming::Pong(p))) if &p[..] == b"interop" => return Ok(()),
            Some(Ok(Incoming::Pong(p))) => return Err(format!("pong with payload {p:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection closed".into()),
        }
    }
}

async fn close(ws: &mut Ws) -> Result<(), String> {
    let closed = ws
        .close(CloseCode(4001), "bye")
        .await
        .map_err(|e| e.to_string())?;
    if closed.clean && closed.code == CloseCode(4001) {
        Ok(())
    } else {
        Err(format!("terminal info {closed:?}"))
    }
}

async fn server_close(ws: &mut Ws) -> Result<(), String> {
    ws.send_text("close-me").await.map_err(|e| e.to_string())?;
    loop {
        match ws.next_event().await {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => break,
        }
    }
    match ws.closed() {
        Some(c) if c.clean && c.code == CloseCode(4002) && c.reason == "asked" => Ok(()),
        other => Err(format!("terminal info {other:?}")),
    }
}
