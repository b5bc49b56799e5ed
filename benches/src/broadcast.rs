//! Scenario 7, broadcast: one message to many subscribers on one node. Each library's server
//! (`--serve broadcast-LIB`) relays every data message a connection sends to every connection:
//! tether-tokio through `Broadcast` (framed once, the bytes shared, `serve`: one task per
//! connection); sockudo-ws through its `PubSub` (topics routing a shared `Message` into each
//! subscriber's unbounded channel; encoded per connection); tokio-websockets and
//! tokio-tungstenite have no broadcast primitive, so their
//! servers use the usual per-connection send loop (a `tokio::sync::broadcast` channel, each
//! connection's task receiving from it, encoding per connection, and batching like tether's
//! output does: every message already in the channel is `feed`, then one `flush`). fastwebsockets is left out: its connection cannot wait for a read and a channel
//! at once without splitting through its own unsplit API.
//!
//! Metrics: messages delivered per server CPU-second with 1,000 and 10,000 subscribers (20-byte
//! messages published back to back by one connection, every delivery counted by the generator);
//! and the server memory (RSS growth) held for one subscriber that never reads while 16 MiB
//! of 16 KiB messages are published (lower is better; the peers' channel keeps up to its
//! capacity, 1,024 messages, for a lagging receiver).

use std::time::Duration;

use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Opts;
use crate::net::{ServerProc, connect_many, pin, runtime};
use crate::report::{CellSpec, Report, Sample};
use crate::wire;

pub const LIBS: [&str; 4] = [
    "tether-tokio",
    "sockudo-ws",
    "tokio-websockets",
    "tokio-tungstenite",
];
const TOPIC: &str = "all";
/// How long one phase may take before it counts as failed.
const PHASE_LIMIT: Duration = Duration::from_secs(60);

/// The broadcast server of `lib` (on the current-thread runtime the caller made).
pub async fn serve(lib: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    crate::server::announce(listener.local_addr().expect("addr"));
    if lib == "tether-tokio" {
        let hub = tether_tokio::Broadcast::default();
        let server = tether_tokio::Server::from_listener(
            tether_tokio::TokioListener(listener),
            tether_tokio::ServerConfig::new(
                crate::server::tether_config(crate::server::Deflate::Off),
                tether::handshake::ServerPolicy::new(),
            ),
        );
        loop {
            let Ok(connecting) = server.accept().await else {
                continue;
            };
            let hub = hub.clone();
            tokio::spawn(connecting.serve(move |mut ws| async move {
                let mut sub = hub.subscriber(&ws);
                sub.subscribe(TOPIC);
                while let Some(Ok(m)) = ws.recv().await {
                    hub.publish(TOPIC, m);
                }
            }));
        }
    }
    macro_rules! relay {
        ($ws:expr, $tx:expr, $data:expr) => {{
            let mut ws = $ws;
            let tx = $tx;
            let mut rx = tx.subscribe();
            loop {
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(m)) => if $data(&m) { let _ = tx.send(m); },
                        _ => break,
                    },
                    r = rx.recv() => match r {
                        Ok(m) => {
                            // Batched like tether's output: every message already in the
                            // channel is fed, then one flush.
                            let mut failed = ws.feed(m).await.is_err();
                            while let (false, Ok(m)) = (failed, rx.try_recv()) {
                                failed = ws.feed(m).await.is_err();
                            }
                            if failed || ws.flush().await.is_err() {
                                break;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => break,
                    },
                }
            }
        }};
    }
    match lib {
        "tokio-websockets" => {
            let (tx, _) = tokio::sync::broadcast::channel::<tokio_websockets::Message>(1024);
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok((_req, ws)) = tokio_websockets::ServerBuilder::new().accept(tcp).await
                    else {
                        return;
                    };
                    relay!(ws, tx, |m: &tokio_websockets::Message| m.is_text()
                        || m.is_binary());
                });
            }
        }
        "tokio-tungstenite" => {
            let (tx, _) = tokio::sync::broadcast::channel::<tungstenite::Message>(1024);
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    relay!(ws, tx, |m: &tungstenite::Message| m.is_text()
                        || m.is_binary());
                });
            }
        }
        "sockudo-ws" => {
            // Its own topic primitive: `PubSub` routes each published `Message` (shared bytes,
            // encoded per connection) into every subscriber's unbounded channel; each
            // connection's task writes what its channel holds, batched like the others.
            let pubsub = std::sync::Arc::new(sockudo_ws::PubSub::new());
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let pubsub = pubsub.clone();
                tokio::spawn(async move {
                    let Some((tcp, leftover, _)) =
                        crate::server::sockudo_handshake(tcp, crate::server::Deflate::Off).await
                    else {
                        return;
                    };
                    let mut ws = sockudo_ws::WebSocketStream::from_raw_with_leftover(
                        tcp,
                        sockudo_ws::Role::Server,
                        sockudo_ws::Config::default(),
                        leftover,
                    );
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                    let id = pubsub.create_subscriber(tx);
                    pubsub.subscribe(id, TOPIC);
                    loop {
                        tokio::select! {
                            m = ws.next() => match m {
                                Some(Ok(m)) => {
                                    if matches!(
                                        m,
                                        sockudo_ws::Message::Text(_) | sockudo_ws::Message::Binary(_)
                                    ) {
                                        pubsub.publish(TOPIC, m);
                                    }
                                }
                                _ => break,
                            },
                            m = rx.recv() => match m {
                                Some(m) => {
                                    let mut failed = ws.feed(m).await.is_err();
                                    while let (false, Ok(m)) = (failed, rx.try_recv()) {
                                        failed = ws.feed(m).await.is_err();
                                    }
                                    if failed || ws.flush().await.is_err() {
                                        break;
                                    }
                                }
                                None => break,
                            },
                        }
                    }
                    pubsub.remove_subscriber(id);
                });
            }
        }
        other => panic!("no broadcast server for {other}"),
    }
}

/// Reads until `count` data frames arrived; returns their payload bytes.
async fn read_frames(s: &mut TcpStream, count: usize) -> Result<usize, String> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 64 << 10];
    let mut got = 0;
    let mut bytes = 0;
    while got < count {
        while let Some((_, op, len, hl)) = wire::parse_server_header(&buf) {
            if buf.len() < hl + len {
                break;
            }
            if op == 1 || op == 2 {
                got += 1;
                bytes += len;
            }
            buf.drain(..hl + len);
            if got == count {
                return Ok(bytes);
            }
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("closed after {got} of {count} messages"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(bytes)
}

fn frames(count: usize, len: usize, seed: u64) -> Vec<u8> {
    let mut keys = wire::KeyGen(seed);
    let payload = wire::payload(len, false);
    let mut out = Vec::new();
    for _ in 0..count {
        wire::put_message(&mut out, 2, &payload, None, &mut || keys.key());
    }
    out
}

/// One phase: `msgs` messages published by the first connection; every connection (the
/// publisher too) reads all of them. Returns the server's CPU time in ns.
async fn publish_phase(
    srv: &ServerProc,
    conns: &mut [TcpStream],
    msgs: usize,
    len: usize,
) -> Result<u64, String> {
    let cpu0 = srv.cpu_ns();
    let out = frames(msgs, len, msgs as u64);
    conns[0].write_all(&out).await.map_err(|e| e.to_string())?;
    let reads = join_all(conns.iter_mut().map(|c| read_frames(c, msgs)));
    for r in tokio::time::timeout(PHASE_LIMIT, reads)
        .await
        .map_err(|_| "timed out".to_string())?
    {
        r?;
    }
    Ok(srv.cpu_ns() - cpu0)
}

pub fn run(opts: &Opts, report: &mut Report, libs: &[&str]) {
    pin(0);
    let rt = runtime();
    let libs: Vec<&str> = LIBS.iter().copied().filter(|l| libs.contains(l)).collect();
    let reps = opts.reps.clamp(3, 3);
    let cases: [(usize, usize); 2] = if opts.quick {
        [(1000, 50), (10_000, 10)]
    } else {
        [(1000, 200), (10_000, 40)]
    };
    for (ci, &(n, msgs)) in cases.iter().enumerate() {
        let case = format!("{n}-subscribers-20B");
        report.add_cell(CellSpec {
            scenario: "broadcast".into(),
            case: case.clone(),
            metric: "deliveries_per_server_cpu_s",
            higher_is_better: true,
            reference_only: vec![],
        });
        for rep in 0..reps {
            for i in 0..libs.len() {
                let lib = libs[(i + rep) % libs.len()];
                let Some(srv) = ServerProc::start(&format!("broadcast-{lib}")) else {
                    eprintln!("# broadcast: could not start the {lib} server");
                    continue;
                };
                let res: Result<u64, String> = rt.block_on(async {
                    let mut conns = connect_many(srv.addr, n, ci * 3000 + rep * 300 + i).await;
                    if conns.len() != n {
                        return Err("connections failed".into());
                    }
                    publish_phase(&srv, &mut conns, 2, 20).await?;
                    publish_phase(&srv, &mut conns, msgs, 20).await
                });
                match res {
                    Ok(cpu_ns) => {
                        let delivered = (n * msgs) as f64;
                        report.push(Sample {
                            scenario: "broadcast".into(),
                            case: case.clone(),
                            lib: lib.into(),
                            rep,
                            value: delivered / (cpu_ns.max(1) as f64 / 1e9),
                            extra: vec![("deliveries", delivered)],
                        });
                    }
                    Err(e) => eprintln!("# broadcast {case} {lib}: {e}"),
                }
            }
        }
    }
    stalled(report, &libs, reps, &rt);
}

/// Server memory held for one subscriber that never reads, while 16 MiB is published.
fn stalled(report: &mut Report, libs: &[&str], reps: usize, rt: &tokio::runtime::Runtime) {
    let case = "stalled-subscriber-16MiB-published".to_string();
    report.add_cell(CellSpec {
        scenario: "broadcast".into(),
        case: case.clone(),
        metric: "bytes_held",
        higher_is_better: false,
        reference_only: vec![],
    });
    let (count, len) = (1024, 16 << 10);
    for rep in 0..reps {
        for i in 0..libs.len() {
            let lib = libs[(i + rep) % libs.len()];
            let Some(srv) = ServerProc::start(&format!("broadcast-{lib}")) else {
                continue;
            };
            let res: Result<f64, String> = rt.block_on(async {
                let mut conns = connect_many(srv.addr, 2, 9000 + rep * 10 + i).await;
                if conns.len() != 2 {
                    return Err("connections failed".into());
                }
                let mut stalled = conns.pop().unwrap();
                let mut publisher = conns.pop().unwrap();
                // Warm up: one message both read.
                publisher
                    .write_all(&frames(1, len, 1))
                    .await
                    .map_err(|e| e.to_string())?;
                read_frames(&mut publisher, 1).await?;
                read_frames(&mut stalled, 1).await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let rss0 = srv.rss();
                let out = frames(count, len, 2);
                let (r, w) = publisher.split();
                let mut w = w;
                let mut r = r;
                let write = async { w.write_all(&out).await.map_err(|e| e.to_string()) };
                let read = async {
                    // The publisher reads its own copies, so only the stalled one lags.
                    let mut buf = vec![0u8; 64 << 10];
                    let mut total = 0usize;
                    let want = count * (len + 4);
                    while total < want {
                        let n = r.read(&mut buf).await.map_err(|e| e.to_string())?;
                        if n == 0 {
                            return Err("publisher closed".to_string());
                        }
                        total += n;
                    }
                    Ok(())
                };
                let (a, b) = tokio::time::timeout(PHASE_LIMIT, async { tokio::join!(write, read) })
                    .await
                    .map_err(|_| "timed out".to_string())?;
                a?;
                b?;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let held = srv.rss() as f64 - rss0 as f64;
                drop(stalled);
                Ok(held.max(0.0))
            });
            match res {
                Ok(held) => report.push(Sample {
                    scenario: "broadcast".into(),
                    case: case.clone(),
                    lib: lib.into(),
                    rep,
                    value: held,
                    extra: vec![],
                }),
                Err(e) => eprintln!("# broadcast {case} {lib}: {e}"),
            }
        }
    }
}
