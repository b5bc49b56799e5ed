//! Echo throughput over loopback (ignored by default; run with
//! `cargo test --release -p tether-std --test throughput -- --ignored --nocapture`).

mod common;
use common::*;
use std::time::Instant;
use tether_std::ServerConfig;
#[test]
#[ignore]
fn echo_throughput() {
    let addr = echo_server(ServerConfig::default().config(big_config()));
    let mut ws = client(addr);
    let n = 50_000;
    let t = Instant::now();
    for _ in 0..n {
        ws.send_text("0123456789abcdef").unwrap();
        ws.recv().unwrap().unwrap();
    }
    let e = t.elapsed();
    eprintln!(
        "round trips: {:.0}/s ({:?} each)",
        n as f64 / e.as_secs_f64(),
        e / n
    );
    let (mut w, mut r) = ws.split();
    let n = 200_000;
    let t = Instant::now();
    let h = std::thread::spawn(move || {
        for _ in 0..n {
            w.send_text("0123456789abcdef").unwrap();
        }
        w
    });
    for _ in 0..n {
        r.recv().unwrap().unwrap();
    }
    let e = t.elapsed();
    eprintln!("pipelined small: {:.0} msg/s", n as f64 / e.as_secs_f64());
    let mut w = h.join().unwrap();
    let big = vec![7u8; 1 << 20];
    let n = 300;
    let t = Instant::now();
    let h = std::thread::spawn(move || {
        for _ in 0..n {
            w.send_binary(big.clone()).unwrap();
        }
        w
    });
    for _ in 0..n {
        r.recv().unwrap().unwrap();
    }
    let e = t.elapsed();
    eprintln!("1 MiB echo: {:.0} MiB/s", n as f64 / e.as_secs_f64());
    drop(h.join().unwrap());
}
