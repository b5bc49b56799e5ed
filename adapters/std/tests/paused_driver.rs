//! A paused driver sleeps: while the core does not want to read (a failure waits behind unread
//! messages, or unread messages hold more than `high_watermark`), the driver thread uses no
//! CPU until the user receives. Linux only: it reads the thread's CPU time from `/proc`. A test
//! binary of its own, so no other connection's driver runs in the process.
#![cfg(target_os = "linux")]
#![allow(clippy::result_large_err)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use common::*;
use tether_std::{ClientConfig, Message, connect};

/// CPU time (user + system, in clock ticks) used so far by the threads named `tether-driver`.
fn driver_ticks() -> u64 {
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task").path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != "tether-driver" {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // After the command in parentheses: state is field 3, utime 14 and stime 15.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    }
    ticks
}

/// Sends `frames` from a raw server once the client is connected, then idles (without closing)
/// until the test ends.
fn paused_client(frames: Vec<u8>, high_watermark: usize) -> tether_std::WebSocket {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let mut sock = raw_upgrade(&listener);
        sock.write_all(&frames).unwrap();
        thread::sleep(LIMIT);
        drop(sock);
    });
    let mut config = big_config();
    config.high_watermark = high_watermark;
    config.low_watermark = high_watermark / 2;
    config.close_timeout = LIMIT;
    connect(&format!("ws://{addr}/"), ClientConfig::new().config(config))
        .unwrap()
        .0
}

/// The driver's CPU time over a second in which the user does nothing, in milliseconds.
fn idle_cpu_ms() -> u64 {
    let ticks_per_ms = 100.0 / 1000.0; // USER_HZ is 100 on Linux
    let before = driver_ticks();
    thread::sleep(Duration::from_secs(1));
    ((driver_ticks() - before) as f64 / ticks_per_ms) as u64
}

#[test]
fn a_paused_driver_does_not_spin() {
    // A failure deferred behind unread messages.
    let ws = paused_client(vec![0x81, 1, b'a', 0xa1, 1, b'x'], 1 << 20);
    let cpu = idle_cpu_ms();
    assert!(
        cpu < 100,
        "the driver used {cpu} ms of CPU in 1 s while paused"
    );
    assert_eq!(
        bounded(move || ws.recv().unwrap().unwrap()),
        Message::text("a")
    );

    // Unread messages over `high_watermark`.
    let mut frames = Vec::new();
    for _ in 0..8 {
        frames.extend_from_slice(&[0x82, 126, 0x04, 0x00]);
        frames.extend_from_slice(&[7u8; 1024]);
    }
    let ws = paused_client(frames, 2048);
    let cpu = idle_cpu_ms();
    assert!(
        cpu < 100,
        "the driver used {cpu} ms of CPU in 1 s while paused"
    );
    let ws = bounded(move || {
        for _ in 0..8 {
            assert_eq!(ws.recv().unwrap().unwrap().len(), 1024);
        }
        ws
    });
    drop(ws);
}
