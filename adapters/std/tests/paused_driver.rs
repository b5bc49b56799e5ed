//! A paused driver sleeps: while the core does not want to read (a failure waits behind unread
//! messages, or unread messages hold more than `high_watermark`), the connection's driver
//! thread (and whatever drives its sockets and timers) uses no CPU until the user receives.
//! Linux only: it reads CPU times from `/proc`. A test binary of its own, so no other
//! connection runs in the process.
#![cfg(target_os = "linux")]
#![allow(clippy::result_large_err)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::*;
use tether_std::{ClientConfig, Message, connect};

/// The name of the threads on which the std runtime runs each connection's driver.
const DRIVER_THREAD: &str = "tether-std";

/// CPU time (user + system, in clock ticks) from a `/proc` `stat` file.
fn stat_ticks(path: &Path) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // After the command in parentheses: state is field 3, utime 14 and stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
}

/// The threads named [`DRIVER_THREAD`]: their ids and the CPU time each used so far.
fn drivers() -> Vec<(String, u64)> {
    let mut drivers = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let task = task.expect("task");
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() == DRIVER_THREAD {
            let id = task.file_name().to_string_lossy().into_owned();
            drivers.push((id, stat_ticks(&path.join("stat"))));
        }
    }
    drivers
}

/// Runs `connect` and waits (bounded) until the connection's driver thread shows up under its
/// name: a new thread names itself once it runs, a moment after it was spawned.
fn with_new_driver<T>(connect: impl FnOnce() -> T) -> T {
    let before: Vec<String> = drivers().into_iter().map(|(id, _)| id).collect();
    let connected = connect();
    let deadline = std::time::Instant::now() + LIMIT;
    while !drivers().iter().any(|(id, _)| !before.contains(id)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no new `{DRIVER_THREAD}` thread runs the connection"
        );
        thread::sleep(Duration::from_millis(1));
    }
    connected
}

/// CPU time used so far by the whole process: the drivers, and the threads that poll the
/// sockets and timers for them.
fn process_ticks() -> u64 {
    stat_ticks(Path::new("/proc/self/stat"))
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
    with_new_driver(|| {
        connect(&format!("ws://{addr}/"), ClientConfig::new(config))
            .unwrap()
            .0
    })
}

/// The CPU time, in milliseconds, of the drivers and of the whole process over a second in
/// which the user does nothing.
fn idle_cpu_ms() -> (u64, u64) {
    let ms = |ticks: u64| ticks * 10; // USER_HZ is 100 on Linux
    let before = drivers();
    let process_before = process_ticks();
    thread::sleep(Duration::from_secs(1));
    let process = process_ticks() - process_before;
    // Per thread: one that ended meanwhile drops out here, but not from the process's time.
    let drivers = drivers()
        .into_iter()
        .map(|(id, ticks)| {
            let earlier = before.iter().find(|(b, _)| *b == id).map_or(0, |(_, t)| *t);
            ticks.saturating_sub(earlier)
        })
        .sum();
    (ms(drivers), ms(process))
}

#[test]
fn a_paused_driver_does_not_spin() {
    // A failure deferred behind unread messages.
    let mut ws = paused_client(vec![0x81, 1, b'a', 0xa1, 1, b'x'], 1 << 20);
    let (cpu, process) = idle_cpu_ms();
    assert!(
        cpu < 100,
        "the driver used {cpu} ms of CPU in 1 s while paused"
    );
    assert!(
        process < 100,
        "the process used {process} ms of CPU in 1 s while the driver was paused"
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
    let mut ws = paused_client(frames, 2048);
    let (cpu, process) = idle_cpu_ms();
    assert!(
        cpu < 100,
        "the driver used {cpu} ms of CPU in 1 s while paused"
    );
    assert!(
        process < 100,
        "the process used {process} ms of CPU in 1 s while the driver was paused"
    );
    let ws = bounded(move || {
        for _ in 0..8 {
            assert_eq!(ws.recv().unwrap().unwrap().len(), 1024);
        }
        ws
    });
    drop(ws);
}
