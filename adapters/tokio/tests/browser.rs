//! Headless Chromium against the tokio adapter: the browser's own WebSocket client exchanges
//! text and binary with an echo endpoint, closes with 4005, and reports what it saw. With the
//! `deflate` feature the endpoint accepts the permessage-deflate the browser offers, and a
//! 10 KB text makes the round trip compressed both ways.
//!
//! Needs Chromium (`/usr/bin/chromium`, installed by `scripts/install-peers.sh`); run it with
//! `cargo test -p tether-tokio --test browser -- --ignored`. Without Chromium it fails.

#[path = "../../../chat/src/http.rs"]
#[allow(dead_code)]
mod http;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tether::{CloseCode, Closed, Message};
use tether_tokio::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Chromium refuses loopback WebSockets from `about:blank`, so the page is served over
/// http://127.0.0.1 by the same test server.
const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>tether browser test</title>
<script>
"use strict";
const out = {};
const ws = new WebSocket("ws://" + location.host + "/echo");
ws.binaryType = "arraybuffer";
let stage = 0;
const long = "chat message \u2713 ".repeat(700);
ws.onopen = () => {
  out.extensions = ws.extensions;
  ws.send("hello from chromium \u2713");
};
ws.onmessage = (event) => {
  if (stage === 0) {
    out.text = event.data;
    stage = 1;
    ws.send(new Uint8Array([0, 1, 2, 253, 254, 255]));
  } else if (stage === 1) {
    out.binary = Array.from(new Uint8Array(event.data));
    stage = 2;
    ws.send(long);
  } else if (stage === 2) {
    out.long = event.data === long;
    stage = 3;
    ws.close(4005, "page done");
  }
};
ws.onerror = () => { out.error = true; };
ws.onclose = (event) => {
  out.code = event.code;
  out.wasClean = event.wasClean;
  out.reason = event.reason;
  const report = new WebSocket("ws://" + location.host + "/report");
  report.onopen = () => report.send(JSON.stringify(out));
};
</script>"#;

/// Where Chromium is, or a failure that says how to get it.
fn chromium() -> PathBuf {
    let candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
    match candidates.iter().map(PathBuf::from).find(|p| p.exists()) {
        Some(path) => path,
        None => panic!(
            "Chromium not found at /usr/bin/chromium: install it (scripts/install-peers.sh, \
             or `apt-get install chromium`) to run this test"
        ),
    }
}

/// Kills the browser when the test ends, however it ends.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium: run scripts/test.sh"]
async fn chromium_round_trip_and_close_code() {
    let chromium = chromium();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, mut closed_rx) = mpsc::channel::<Option<Closed>>(1);
    let (report_tx, mut report_rx) = mpsc::channel::<String>(1);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let closed_tx = closed_tx.clone();
            let report_tx = report_tx.clone();
            tokio::spawn(async move {
                let Ok(head) = http::read_head(&mut stream).await else {
                    return;
                };
                if !head.upgrade {
                    let _ = match head.path.as_str() {
                        "/" => http::respond(&mut stream, "200 OK", "text/html", PAGE.as_bytes()),
                        _ => http::respond(&mut stream, "404 Not Found", "text/plain", b""),
                    }
                    .await;
                    return;
                }
                let path = head.path.clone();
                let stream = http::Replay::new(head.bytes, stream);
                #[allow(unused_mut)]
                let mut config = ServerConfig::default();
                #[cfg(feature = "deflate")]
                {
                    config.config.deflate = Some(tether::deflate::DeflateConfig::default());
                }
                let Ok(mut ws) = tether_tokio::accept(stream, config).await else {
                    return;
                };
                if path == "/report" {
                    if let Some(Ok(Message::Text(t))) = ws.recv().await {
                        let _ = report_tx.send(t.as_str().to_owned()).await;
                    }
                    return;
                }
                while let Some(Ok(m)) = ws.recv().await {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
                let _ = closed_tx.send(ws.closed()).await;
            });
        }
    });

    let profile = std::env::temp_dir().join(format!("tether-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let _browser = Browser(
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("http://{addr}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", chromium.display())),
    );

    let limit = Duration::from_secs(60);
    let report = tokio::time::timeout(limit, report_rx.recv())
        .await
        .expect("no report from the page within 60 s")
        .unwrap();
    let server_side = tokio::time::timeout(limit, closed_rx.recv())
        .await
        .expect("the echo connection did not end")
        .unwrap()
        .expect("terminal information");
    drop(_browser);
    let _ = std::fs::remove_dir_all(&profile);

    assert!(
        report.contains(r#""text":"hello from chromium ✓""#),
        "{report}"
    );
    assert!(
        report.contains(r#""binary":[0,1,2,253,254,255]"#),
        "{report}"
    );
    assert!(report.contains(r#""long":true"#), "{report}");
    // The browser offers permessage-deflate; with the codec built in, it was agreed.
    let deflate = report.contains(r#""extensions":"permessage-deflate"#);
    assert_eq!(deflate, cfg!(feature = "deflate"), "{report}");
    assert!(report.contains(r#""code":4005"#), "{report}");
    assert!(report.contains(r#""wasClean":true"#), "{report}");
    assert!(!report.contains("error"), "{report}");
    assert_eq!(server_side.code, CloseCode(4005));
    assert_eq!(server_side.reason, "page done");
    assert!(server_side.clean);
}
