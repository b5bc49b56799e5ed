//! `tether doctor --watch`, bounded by the hidden `--duration`: a path that flaps, a peer that
//! stops answering Pings, and a server the policy gives up on. Each run is checked for its
//! event lines and its summary.

mod servers;

use std::time::Duration;

use servers::*;
use tokio::process::Command;

const TETHER: &str = env!("CARGO_BIN_EXE_tether");

/// Runs `tether doctor --watch URL ARGS` (it ends by itself: `--duration`, or giving up).
async fn watch(url: &str, args: &[&str]) -> (String, i32) {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(TETHER)
            .args(["doctor", "--watch", url])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the watch ends by itself")
    .expect("the binary runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        output.status.code().unwrap_or(-1),
    )
}

/// The number before `word` on the summary line.
fn count(stdout: &str, word: &str) -> u32 {
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary: "))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let at = summary.find(word).unwrap();
    summary[..at]
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count before {word:?} in {summary}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_path_is_reconnected_and_summarised() {
    let echo = echo_server().await;
    // Every connection through the link is cut after 400 ms, without a Close frame.
    let link = flaky_link(echo, Duration::from_millis(400)).await;
    let url = format!("ws://{link}/feed");
    let (out, code) = watch(
        &url,
        &[
            "--duration",
            "2.5",
            "--ping-interval",
            "0.1",
            "--pong-timeout",
            "1",
            "--max-backoff",
            "0.2",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    for expected in [
        "connected in",
        "(attempt 1)",
        "rtt ",
        "closed with 1006 (connection lost without a Close frame)",
        "retry in",
        "stopping (--duration reached)",
        "p50",
        "p99",
    ] {
        assert!(out.contains(expected), "expected {expected:?} in:\n{out}");
    }
    let connected = out.lines().filter(|l| l.contains("] connected in")).count() as u32;
    assert!(connected >= 2, "it reconnected:\n{out}");
    assert_eq!(count(&out, "connection(s)"), connected, "{out}");
    assert!(count(&out, "drop(s)") >= 1, "{out}");
    // The summary comes last.
    assert!(out.trim_end().lines().last().unwrap().starts_with("rtt: "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_answering_pings_is_declared_dead() {
    let addr = upgrade_server(Upgrade::Valid, After::Silence).await;
    let url = format!("ws://{addr}/");
    let (out, code) = watch(
        &url,
        &[
            "--duration",
            "2",
            "--ping-interval",
            "0.2",
            "--pong-timeout",
            "0.3",
            "--max-backoff",
            "0.2",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("dead peer: no Pong within 300 ms (closed with 1011)"),
        "{out}"
    );
    assert!(out.contains("retry in"), "{out}");
    assert!(count(&out, "dead peer(s)") >= 1, "{out}");
    assert!(out.contains("rtt: no samples"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_gives_up_on_a_forbidden_endpoint() {
    let addr = http_server("HTTP/1.1 403 Forbidden\r\n", "").await;
    let (out, code) = watch(&format!("ws://{addr}/"), &["--duration", "10"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("HTTP 403"), "{out}");
    assert!(out.contains("gave up"), "{out}");
    assert!(out.contains("summary: "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_retried() {
    let addr = closed_port().await;
    let (out, code) = watch(
        &format!("ws://{addr}/"),
        &["--duration", "1", "--max-backoff", "0.1"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("attempt 1 failed: refused"), "{out}");
    assert!(out.contains("attempt 2 failed: refused"), "{out}");
    assert!(count(&out, "failed attempt(s)") >= 2, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_prints_the_summary() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    let echo = echo_server().await;
    let mut child = Command::new(TETHER)
        .args([
            "doctor",
            "--watch",
            &format!("ws://{echo}/"),
            "--ping-interval",
            "0.1",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    // Synchronise on the output: interrupt once a round trip has been measured.
    let measured = tokio::time::timeout(Duration::from_secs(20), async {
        let mut line = String::new();
        while stdout.read_line(&mut line).await.unwrap() > 0 {
            seen.push_str(&line);
            if line.contains("] rtt ") {
                return true;
            }
            line.clear();
        }
        false
    })
    .await
    .expect("a round trip within the limit");
    assert!(measured, "{seen}");
    let pid = child.id().unwrap().to_string();
    // The shell's own `kill`, so no procps binary is needed.
    let killed = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {pid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the watch ends on SIGINT")
        .unwrap();
    stdout.read_to_string(&mut seen).await.unwrap();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(seen.contains("stopping (Ctrl-C)"), "{seen}");
    assert!(seen.contains("1 connection(s), 0 drop(s)"), "{seen}");
    assert!(seen.contains("rtt: "), "{seen}");
}
