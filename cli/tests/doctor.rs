//! A gallery of broken servers on 127.0.0.1 (port 0), one per cause, each checked against the
//! real `tether` binary: the `verdict:` line, the exit status, and for some the JSON report.
//!
//! Every server runs in this process; the binary is run with a short `--timeout` where a
//! cause is a silence, so the whole file takes a few seconds. No fixed ports, no sleeps used
//! to synchronise: each server is listening before its address is handed to the binary.

mod servers;

use std::process::Output;
use std::time::Duration;

use servers::*;
use tokio::process::Command;

/// The binary under test.
const TETHER: &str = env!("CARGO_BIN_EXE_tether");

/// What a run printed and how it exited.
struct Run {
    stdout: String,
    code: i32,
}

impl Run {
    /// The kind on the `verdict:` line.
    fn verdict(&self) -> &str {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix("verdict: "))
            .unwrap_or_else(|| panic!("no verdict line in:\n{}", self.stdout))
    }

    /// Asserts the verdict and exit status, and that the verdict line comes after every step
    /// with at most two advice lines under it.
    #[track_caller]
    fn expect(&self, verdict: &str, code: i32) {
        assert_eq!(self.verdict(), verdict, "output:\n{}", self.stdout);
        assert_eq!(self.code, code, "output:\n{}", self.stdout);
        let lines: Vec<&str> = self.stdout.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("verdict: "))
            .unwrap();
        let advice = &lines[at + 1..];
        assert!(
            (1..=2).contains(&advice.len()) && advice.iter().all(|l| l.starts_with("  ")),
            "advice lines under the verdict:\n{}",
            self.stdout
        );
    }

    #[track_caller]
    fn says(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "expected {text:?} in:\n{}",
            self.stdout
        );
        self
    }
}

/// Runs `tether doctor ARGS` to completion (bounded: every step has a timeout).
async fn doctor(args: &[&str]) -> Run {
    let output: Output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(TETHER).arg("doctor").args(args).output(),
    )
    .await
    .expect("the doctor finishes within its timeouts")
    .expect("the binary runs");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        code: output.status.code().unwrap_or(-1),
    }
}

/// Runs with `--json` and parses the report.
async fn doctor_json(args: &[&str]) -> (serde_json::Value, i32) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = doctor(&all).await;
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout));
    (report, run.code)
}

fn ws(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/chat")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_server_is_ok() {
    let addr = echo_server().await;
    let run = doctor(&[&ws(addr)]).await;
    run.expect("ok", 0);
    run.says("101 Switching Protocols")
        .says("Pong received")
        .says("clean: the server answered our Close with 1000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_report_has_every_step_and_the_verdict() {
    let addr = echo_server().await;
    let (report, code) = doctor_json(&[&ws(addr), "--subprotocol", "chat"]).await;
    assert_eq!(code, 0);
    assert_eq!(report["verdict"], "ok");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["insecure"], false);
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["url", "dns", "tcp", "http", "upgrade", "ping", "close"]
    );
    for step in report["steps"].as_array().unwrap() {
        assert_ne!(step["outcome"], "fail", "{step}");
    }
    assert!(report["steps"][5]["ms"].as_f64().unwrap() >= 0.0);
    assert!(!report["advice"].as_array().unwrap().is_empty());
    // The echo server does not speak "chat": the upgrade step warns.
    assert_eq!(report["steps"][4]["outcome"], "warn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_that_are_not_websocket_urls() {
    doctor(&["http://example.com/socket"])
        .await
        .says("use ws://")
        .expect("bad-url", 10);
    doctor(&["ws:///nohost"]).await.expect("bad-url", 10);
    let (report, code) = doctor_json(&["wss://example.com/a#frag"]).await;
    assert_eq!((report["verdict"].as_str(), code), (Some("bad-url"), 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_from_an_https_page_is_mixed_content() {
    let addr = echo_server().await;
    let run = doctor(&[&ws(addr), "--page-origin", "https://app.example"]).await;
    run.says("mixed content").expect("bad-url", 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_cannot_resolve() {
    // RFC 6761 §6.4: .invalid never resolves. Without a resolver the lookup fails too.
    doctor(&["ws://nonexistent.invalid/", "--timeout", "3"])
        .await
        .expect("dns", 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_refused() {
    let addr = closed_port().await;
    let run = doctor(&[&ws(addr)]).await;
    run.says(&format!("{addr}: refused")).expect("refused", 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_listen_queue_times_out_the_connect() {
    let (addr, _held) = full_backlog().await;
    let run = doctor(&[&ws(addr), "--timeout", "0.5"]).await;
    run.says("did not answer within")
        .expect("connect-timeout", 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_the_handshake() {
    let addr = silent_server().await;
    let run = doctor(&[&ws(addr), "--timeout", "0.5"]).await;
    run.says("no answer within").expect("handshake-timeout", 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_server_is_not_websocket() {
    let addr = http_server(
        "HTTP/1.1 200 OK\r\nServer: plain\r\nContent-Type: text/html\r\n",
        "<html><body>Welcome to my homepage</body></html>",
    )
    .await;
    let run = doctor(&[&ws(addr)]).await;
    run.says("HTTP/1.1 200 OK: not 101")
        .says("body: <html><body>Welcome")
        .says("plain HTTP server")
        .expect("not-websocket", 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_websocket_and_names_the_target() {
    let addr = http_server(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.com/ws\r\n",
        "",
    )
    .await;
    let run = doctor(&[&ws(addr)]).await;
    run.says("a redirect to https://example.com/ws")
        .says("Try wss://example.com/ws")
        .expect("not-websocket", 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_rejected_with_what_the_status_means() {
    let unauthorized = http_server(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"chat\"\r\n",
        "login first",
    )
    .await;
    doctor(&[&ws(unauthorized)])
        .await
        .says("WWW-Authenticate: Bearer")
        .says("Authorization")
        .expect("rejected", 18);

    let forbidden = http_server("HTTP/1.1 403 Forbidden\r\n", "origin not allowed").await;
    doctor(&[&ws(forbidden), "--origin", "https://evil.example"])
        .await
        .says("the Origin (https://evil.example) is not on its list")
        .says("body: origin not allowed")
        .expect("rejected", 18);

    let limited = http_server("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n", "").await;
    doctor(&[&ws(limited)])
        .await
        .says("Retry-After: 7")
        .says("retry in 7 seconds")
        .expect("rejected", 18);

    let unavailable = http_server(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\n",
        "",
    )
    .await;
    let (report, code) = doctor_json(&[&ws(unavailable)]).await;
    assert_eq!((report["verdict"].as_str(), code), (Some("rejected"), 18));
    let advice = report["advice"].to_string();
    assert!(
        advice.contains("503") && advice.contains("in 30 seconds"),
        "{advice}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_page_on_the_way_is_recognised() {
    let addr = http_server(
        "HTTP/1.1 403 Forbidden\r\nVia: 1.1 corp-proxy (squid)\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n",
        "<html>Access denied by policy</html>",
    )
    .await;
    doctor(&[&ws(addr)])
        .await
        .says("looks like a proxy's page (Via: 1.1 corp-proxy (squid))")
        .says("A proxy answered, not the WebSocket server")
        .expect("rejected", 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_101_with_a_wrong_accept_is_a_bad_handshake() {
    let addr = upgrade_server(Upgrade::WrongAccept, After::Nothing).await;
    doctor(&[&ws(addr)])
        .await
        .says("invalid 101: response Sec-WebSocket-Accept")
        .says("Sec-WebSocket-Accept is not derived from our key")
        .expect("bad-handshake", 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_101_choosing_an_unoffered_subprotocol_is_a_bad_handshake() {
    let addr = upgrade_server(Upgrade::Subprotocol("mqtt"), After::Nothing).await;
    doctor(&[&ws(addr), "--subprotocol", "chat"])
        .await
        .says("\"mqtt\", which we did not offer")
        .expect("bad-handshake", 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_101_turning_on_an_unoffered_extension_is_a_bad_handshake() {
    let addr = upgrade_server(Upgrade::Extension("permessage-deflate"), After::Nothing).await;
    doctor(&[&ws(addr)])
        .await
        .says("Sec-WebSocket-Extensions: permessage-deflate")
        .says("accepted extension \"permessage-deflate\", which we did not offer")
        .expect("bad-handshake", 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_with_1008_after_opening() {
    let addr = upgrade_server(Upgrade::Valid, After::Close(1008, "who are you")).await;
    doctor(&[&ws(addr)])
        .await
        .says("code 1008 (policy violation")
        .says("\"who are you\"")
        .expect("closed-after-open", 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_drops_tcp_after_opening() {
    let addr = upgrade_server(Upgrade::Valid, After::Drop).await;
    doctor(&[&ws(addr)])
        .await
        .says("without a Close frame (1006)")
        .expect("closed-after-open", 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_pings_gets_no_pong() {
    let addr = upgrade_server(Upgrade::Valid, After::Silence).await;
    doctor(&[&ws(addr), "--timeout", "0.5"])
        .await
        .says("no Pong within")
        .expect("no-pong", 22);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_masked_frame_from_the_server_is_a_protocol_error() {
    const MASKED: &[u8] = &[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    let addr = upgrade_server(Upgrade::Valid, After::Send(MASKED)).await;
    doctor(&[&ws(addr)])
        .await
        .says("masked frame from a server")
        .says("1002")
        .expect("protocol-error", 23);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_opcode_is_a_protocol_error() {
    let addr = upgrade_server(Upgrade::Valid, After::Send(&[0x83, 0x00])).await;
    doctor(&[&ws(addr)])
        .await
        .says("reserved opcode 0x3")
        .expect("protocol-error", 23);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_to_a_tls_port_says_use_wss() {
    let (addr, _) = tls_echo_server(Cert::SelfSigned).await;
    doctor(&[&ws(addr)])
        .await
        .says("use wss://")
        .expect("not-websocket", 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_fails_tls_and_passes_with_insecure() {
    let (addr, _) = tls_echo_server(Cert::SelfSigned).await;
    let url = format!("wss://{addr}/secure");
    doctor(&[&url])
        .await
        .says("unknown issuer")
        .says("--cacert")
        .expect("tls", 16);
    let run = doctor(&[&url, "--insecure"]).await;
    run.says("!! --insecure")
        .says("certificate NOT VERIFIED (--insecure)")
        .says("unknown issuer")
        .expect("ok", 0);
    let (report, code) = doctor_json(&[&url, "--insecure"]).await;
    assert_eq!((report["verdict"].as_str(), code), (Some("ok"), 0));
    assert_eq!(report["insecure"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_certificate_is_ok_with_cacert() {
    let (addr, pem) = tls_echo_server(Cert::SelfSigned).await;
    let file = temp_pem(&pem);
    let url = format!("wss://{addr}/secure");
    doctor(&[&url, "--cacert", file.to_str().unwrap()])
        .await
        .says("certificate valid for 127.0.0.1")
        .says("ALPN")
        .expect("ok", 0);
    let _ = std::fs::remove_file(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_named() {
    let (addr, pem) = tls_echo_server(Cert::Expired).await;
    let file = temp_pem(&pem);
    let url = format!("wss://{addr}/secure");
    doctor(&[&url, "--cacert", file.to_str().unwrap()])
        .await
        .says("the certificate has expired: valid until 2001-01-01")
        .says("Renew")
        .expect("tls", 16);
    let _ = std::fs::remove_file(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_named() {
    let (addr, pem) = tls_echo_server(Cert::OtherName).await;
    let file = temp_pem(&pem);
    let url = format!("wss://{addr}/secure");
    doctor(&[&url, "--cacert", file.to_str().unwrap()])
        .await
        .says("the certificate is for example.org but we asked for 127.0.0.1")
        .expect("tls", 16);
    let _ = std::fs::remove_file(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_to_a_plain_port_says_use_ws() {
    let addr = http_server("HTTP/1.1 400 Bad Request\r\n", "").await;
    doctor(&[&format!("wss://{addr}/"), "--timeout", "5"])
        .await
        .says("did not answer in TLS")
        .says("use ws://")
        .expect("tls", 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_refuses_connect_with_its_own_page() {
    let echo = echo_server().await;
    let proxy = http_server(
        "HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nContent-Type: text/html\r\n",
        "<html><h1>ERROR</h1>Access Denied: CONNECT to this port is not allowed</html>",
    )
    .await;
    doctor(&[&ws(echo), "--proxy", &format!("http://{proxy}")])
        .await
        .says("the proxy refused a tunnel to")
        .says("Server: squid/5.7")
        .says("body: <html><h1>ERROR</h1>Access Denied")
        .expect("proxy", 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_opens_the_tunnel_is_ok() {
    let echo = echo_server().await;
    let proxy = connect_proxy().await;
    doctor(&[&ws(echo), "--proxy", &format!("http://{proxy}")])
        .await
        .says("tunnel to")
        .says("200 Connection established")
        .expect("ok", 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_through_a_proxy_tunnel() {
    let (addr, pem) = tls_echo_server(Cert::SelfSigned).await;
    let file = temp_pem(&pem);
    let proxy = connect_proxy().await;
    let (report, code) = doctor_json(&[
        &format!("wss://{addr}/secure"),
        "--proxy",
        &format!("http://{proxy}"),
        "--cacert",
        file.to_str().unwrap(),
    ])
    .await;
    let _ = std::fs::remove_file(file);
    assert_eq!(
        (report["verdict"].as_str(), code),
        (Some("ok"), 0),
        "{report}"
    );
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "url", "dns", "tcp", "proxy", "tls", "http", "upgrade", "ping", "close"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_are_usage_errors() {
    let run = doctor(&["ws://127.0.0.1:9/", "--header", "no colon"]).await;
    assert_eq!(run.code, 2);
    let run = doctor(&["ws://127.0.0.1:9/", "--header", "Upgrade: h2c"]).await;
    assert_eq!(run.code, 2);
    let run = doctor(&["ws://127.0.0.1:9/", "--timeout", "0"]).await;
    assert_eq!(run.code, 2);
}
