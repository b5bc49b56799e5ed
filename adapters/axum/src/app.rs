//! The router of the `axum_server` example, here so that its tests run the exact same one.

use axum::Router;
use axum::response::{Html, Response};
use axum::routing::{any, get};

use crate::{WebSocket, WebSocketUpgrade};

/// A page that opens a WebSocket to `/ws` on the same host and shows what comes back.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>tether echo</title>
<input id="text" value="hello" autofocus> <button id="send">send</button>
<pre id="log"></pre>
<script>
const log = (line) => document.getElementById("log").textContent += line + "\n";
const url = new URL("/ws", location.href);
url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
const ws = new WebSocket(url);
ws.onopen = () => log("open");
ws.onmessage = (event) => log("< " + event.data);
ws.onclose = (event) => log("closed " + event.code + " " + event.reason);
document.getElementById("send").onclick = () => {
  const text = document.getElementById("text").value;
  log("> " + text);
  ws.send(text);
};
</script>
"#;

/// The example server's routes: an HTML page at `/` that opens a WebSocket to `/ws` and
/// echoes, a health check at `/health` (200 `ok`), and at `/ws` WebSockets (HTTP/1.1 upgrade
/// or HTTP/2 extended CONNECT) that echo every message unchanged.
pub fn echo_app() -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ws", any(upgrade))
}

async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

/// Sends every message back unchanged until the peer closes.
async fn echo(mut ws: WebSocket) {
    while let Some(Ok(message)) = ws.recv().await {
        if ws.send(message).await.is_err() {
            break;
        }
    }
}
