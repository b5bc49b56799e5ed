//! Interoperability checks against an echo server.
//!
//! ```sh
//! cargo run --release -p tether-std --example interop_client -- ws://127.0.0.1:PORT/path \
//!     [--expect-server-close] [--ping-interval SECS] [--pong-timeout SECS] ...
//! ```
//!
//! Prints `ok NAME` or `FAIL NAME: WHY` per check; exits 0 only if every check passed.
//! `--help` lists every flag (shared by all adapters' examples, see `tether-example-args`).

use std::process::exit;
use std::time::Duration;

use example_args::InteropArgs;
use tether_std::tether::DataKind;
use tether_std::tether::handshake::ClientRequest;
use tether_std::{
    ClientConfig, CloseCode, Config, Error, Incoming, Message, WebSocket, connect_request,
};

/// How long one echo may take before the check fails.
const WAIT: Duration = Duration::from_secs(30);

fn echo(ws: &mut WebSocket, sent: Message) -> Result<(), String> {
    ws.send(sent.clone()).map_err(|e| format!("send: {e}"))?;
    match ws.recv_timeout(WAIT) {
        Some(Ok(got)) if got == sent => Ok(()),
        Some(Ok(got)) => Err(format!(
            "echo differs: sent {} bytes ({:?}), got {} bytes ({:?})",
            sent.len(),
            sent.kind(),
            got.len(),
            got.kind()
        )),
        Some(Err(e)) => Err(format!("recv: {e}")),
        None => Err("the connection closed".into()),
    }
}

fn fragmented(ws: &mut WebSocket) -> Result<(), String> {
    let parts = ["frag", "mented ", "héllo"];
    for (i, part) in parts.iter().enumerate() {
        ws.send_fragment(
            DataKind::Text,
            part.as_bytes().to_vec(),
            i == parts.len() - 1,
        )
        .map_err(|e| format!("send_fragment: {e}"))?;
    }
    match ws.recv_timeout(WAIT) {
        Some(Ok(Message::Text(t))) if t.as_str() == parts.concat() => Ok(()),
        Some(Ok(other)) => Err(format!("got {other:?}")),
        Some(Err(e)) => Err(format!("recv: {e}")),
        None => Err("the connection closed".into()),
    }
}

fn ping(ws: &mut WebSocket) -> Result<(), String> {
    ws.ping(&b"interop"[..]).map_err(|e| format!("ping: {e}"))?;
    loop {
        match ws.next_event_timeout(WAIT) {
            Some(Ok(Incoming::Pong(p))) if &p[..] == b"interop" => return Ok(()),
            Some(Ok(Incoming::Pong(p))) => return Err(format!("pong payload {p:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("waiting for the pong: {e}")),
            None => return Err("the connection closed".into()),
        }
    }
}

fn close(ws: &mut WebSocket) -> Result<(), String> {
    let closed = ws
        .close(CloseCode(4001), "bye")
        .map_err(|e| format!("close: {e}"))?;
    if closed.clean && closed.code.0 == 4001 {
        Ok(())
    } else {
        Err(format!("terminal info {closed:?}"))
    }
}

fn server_close(ws: &mut WebSocket) -> Result<(), String> {
    ws.send_text("close-me").map_err(|e| format!("send: {e}"))?;
    loop {
        match ws.recv_timeout(WAIT) {
            Some(Ok(_)) => {}
            Some(Err(Error::Closed(c))) => return Err(format!("abnormal end {c:?}")),
            Some(Err(e)) => return Err(format!("recv: {e}")),
            None => break,
        }
    }
    match ws.closed() {
        Some(c) if c.clean && c.code.0 == 4002 && c.reason == "asked" => Ok(()),
        other => Err(format!("terminal info {other:?}")),
    }
}

fn main() {
    let args: InteropArgs = example_args::parse("Interoperability checks against an echo server");
    let url = &args.client.url;
    let expect_server_close = args.expect_server_close;
    let request = ClientRequest::new(url)
        .map_err(|e| e.to_string())
        .and_then(|r| {
            r.subprotocol("chat.v2")
                .and_then(|r| r.subprotocol("chat.v1"))
                .map_err(|e| e.to_string())
        });
    let request = request.unwrap_or_else(|e| {
        eprintln!("interop_client: {e}");
        exit(2)
    });
    let mut config = Config::default();
    config.max_frame_payload = 64 << 20;
    config.max_message_size = 64 << 20;
    let mut client_config = ClientConfig::new(args.client.connection.config_from(config));
    client_config.connect_timeout = args.client.connect_timeout;
    let mut ws = match connect_request(request, client_config) {
        Ok((ws, _)) => ws,
        Err(e) => {
            println!("FAIL connect: {e}");
            exit(1)
        }
    };
    let mut failed = false;
    let mut report = |name: &str, result: Result<(), String>| match result {
        Ok(()) => println!("ok {name}"),
        Err(why) => {
            failed = true;
            println!("FAIL {name}: {why}");
        }
    };
    report("text", echo(&mut ws, Message::text("héllo, wörld ✓ 🌍")));
    report(
        "binary",
        echo(&mut ws, Message::binary((0..=255u8).collect::<Vec<_>>())),
    );
    let large: Vec<u8> = (0..16usize << 20).map(|i| (i * 31 % 251) as u8).collect();
    report("large", echo(&mut ws, Message::binary(large)));
    report("fragmented", fragmented(&mut ws));
    report("ping", ping(&mut ws));
    let subprotocol = ws.subprotocol().map(str::to_owned);
    println!("subprotocol: {subprotocol:?}");
    report(
        "subprotocol",
        match subprotocol.as_deref() {
            Some("chat.v2") => Ok(()),
            other => Err(format!("negotiated {other:?}, expected chat.v2")),
        },
    );
    if expect_server_close {
        report("server-close", server_close(&mut ws));
    } else {
        report("close", close(&mut ws));
    }
    exit(i32::from(failed))
}
