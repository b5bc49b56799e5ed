//! Scenario 7: permessage-deflate (RFC 7692) in memory, server role.
//!
//! Every library that speaks permessage-deflate runs with the same agreement: context takeover
//! both ways, 15-bit windows, zlib level 1, every message compressed (no size threshold). The
//! messages are chat-like JSON texts (a few fields, a sentence of words from a fixed list, a
//! different message each time), 100 B, 1 KiB and 16 KiB, and a 1 MiB text (a JSON array of such
//! messages, as a history download):
//!
//! - `compress-*`: the server sends text messages through its own send path into a sink that
//!   counts bytes; `ratio` is the bytes on the wire over the payload bytes.
//! - `decompress-*`: the server reads masked, compressed client frames (made once here with
//!   zlib, as a client with context takeover would) from the same [`MemStream`], and hands
//!   whole, UTF-8-checked text messages to the caller, who checks their length.
//!
//! - tether: the core `Connection` after an in-memory handshake that agreed permessage-deflate
//!   (`send_text` + `poll_transmit`/`advance`; `recv_buf`/`commit` + `read`, driven as a
//!   driver does: reading only when `wants_read`, running inflation steps that are due).
//! - yawc: `WebSocket::from_stream_with_extensions(.., "permessage-deflate", ..)` with level 1
//!   and UTF-8 validation on (`with_utf8`); `SinkExt::send` / `StreamExt::next`.
//! - sockudo-ws: `CompressedWebSocketStream::server` with level 1 and threshold 0;
//!   `SinkExt::send` / `StreamExt::next`.
//!
//! tungstenite, fastwebsockets and tokio-websockets have no permessage-deflate. The async
//! libraries are polled with `now_or_never` inside an entered (idle) tokio runtime, because
//! sockudo-ws arms tokio timers.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tether::handshake::{Accept, ServerPolicy};
use tether::{Config, Connection, Data, Event, Message};

use crate::decode::size_name;
use crate::memstream::MemStream;
use crate::report::{CellSpec, Report, Sample};
use crate::wire::{self, KeyGen};
use crate::{NOW, Opts};

pub const LIBS: [&str; 3] = ["tether", "yawc", "sockudo-ws"];

/// The message sizes: chat messages and a history download.
pub const SIZES: [usize; 4] = [100, 1 << 10, 16 << 10, 1 << 20];

/// How many different messages each run cycles through (fewer for the large ones, which no
/// 32 KiB window can reach back across anyway).
fn variety(len: usize) -> usize {
    if len >= 1 << 20 { 2 } else { 64 }
}

const WORDS: [&str; 48] = [
    "the",
    "meeting",
    "is",
    "moved",
    "to",
    "three",
    "o'clock",
    "can",
    "you",
    "check",
    "build",
    "again",
    "please",
    "deploy",
    "went",
    "fine",
    "but",
    "latency",
    "looks",
    "higher",
    "than",
    "yesterday",
    "on",
    "eu-west",
    "I",
    "think",
    "we",
    "should",
    "roll",
    "back",
    "ok",
    "thanks",
    "lunch",
    "anyone",
    "new",
    "release",
    "notes",
    "are",
    "up",
    "ticket",
    "closed",
    "reopened",
    "review",
    "merged",
    "coffee",
    "later",
    "see",
    "doc",
];
const USERS: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];

/// One chat message as JSON, its `text` padded or cut so the whole is exactly `len` bytes.
fn chat_message(len: usize, seq: u64, rng: &mut KeyGen) -> String {
    let user = USERS[(rng.next_u64() % USERS.len() as u64) as usize];
    let head = format!(
        r#"{{"type":"message","id":{seq},"room":"general","user":"{user}","ts":{},"text":""#,
        1_764_460_800_000u64 + seq * 1_731
    );
    let tail = r#""}"#;
    let room = len.saturating_sub(head.len() + tail.len());
    let mut text = String::with_capacity(room + 16);
    while text.len() < room {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[(rng.next_u64() % WORDS.len() as u64) as usize]);
    }
    text.truncate(room);
    let mut s = head + &text + tail;
    s.truncate(len);
    s
}

/// A text of exactly `len` bytes: one chat message, or for large sizes a JSON array of them.
pub fn json_text(len: usize, seed: u64) -> String {
    let mut rng = KeyGen(0x5eed_0000_0000_0001 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    if len < 4 << 10 {
        return chat_message(len, seed, &mut rng);
    }
    let mut s = String::with_capacity(len);
    s.push('[');
    let mut seq = seed * 100_000;
    while s.len() < len {
        if s.len() > 1 {
            s.push(',');
        }
        let want = 90 + (rng.next_u64() % 200) as usize;
        s.push_str(&chat_message(want, seq, &mut rng));
        seq += 1;
    }
    s.truncate(len - 1);
    s.push(']');
    s
}

/// The deflate agreement every library runs with.
const OFFER: &str = "permessage-deflate";

fn tether_config() -> Config {
    let mut deflate = tether::deflate::DeflateConfig::default();
    deflate.level = 1;
    deflate.threshold = 0;
    let mut config = Config::default();
    config.deflate = Some(deflate);
    config
}

/// A tether server connection whose handshake agreed permessage-deflate, fed `input`.
fn tether_server() -> Connection {
    let mut conn = Connection::server(tether_config(), ServerPolicy::new(), wire::rng(), NOW);
    let head = format!(
        "GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {OFFER}\r\n\r\n"
    );
    let mut buf = conn.recv_buf();
    buf[..head.len()].copy_from_slice(head.as_bytes());
    buf.commit(NOW, head.len());
    assert!(matches!(conn.poll_event(), Some(Event::Request(_))));
    conn.accept(NOW, Accept::new()).expect("accept");
    let mut out = Vec::new();
    while let Some(t) = conn.poll_transmit() {
        let n: usize = t.iter().map(|s| s.len()).sum();
        for s in t.iter() {
            out.extend_from_slice(s);
        }
        conn.advance(n);
    }
    let out = String::from_utf8(out).expect("ascii response");
    assert!(
        out.contains("Sec-WebSocket-Extensions: permessage-deflate"),
        "{out}"
    );
    assert!(matches!(conn.poll_event(), Some(Event::Connected { .. })));
    conn
}

fn yawc_options() -> yawc::Options {
    yawc::Options::default()
        .with_compression_level(yawc::CompressionLevel::fast())
        .with_utf8()
        .with_limits(16 << 20, 64 << 20)
}

fn sockudo_deflate() -> sockudo_ws::DeflateConfig {
    sockudo_ws::DeflateConfig {
        compression_level: 1,
        compression_threshold: 0,
        ..sockudo_ws::DeflateConfig::default()
    }
}

/// Compressed, masked client frames of `texts`, cycled until the input is at least 256 KiB and
/// two messages, as a client with context takeover (15-bit window, level 1) sends them.
pub fn client_input(texts: &[String]) -> Arc<[u8]> {
    let mut c = Compress::new_with_window_bits(Compression::new(1), false, 15);
    let mut keys = KeyGen(0x1234_5678_9abc_def1);
    let mut out = Vec::new();
    let mut n = 0usize;
    while out.len() < 256 << 10 || n < 2 || !n.is_multiple_of(texts.len()) {
        let text = texts[n % texts.len()].as_bytes();
        let mut z = Vec::with_capacity(text.len() + 64);
        let mut input = text;
        loop {
            if z.capacity() - z.len() < 64 {
                z.reserve(z.capacity().max(256));
            }
            let before = c.total_in();
            c.compress_vec(input, &mut z, FlushCompress::Sync)
                .expect("compress");
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && z.len() < z.capacity() {
                break;
            }
        }
        assert!(z.ends_with(&[0, 0, 0xff, 0xff]));
        z.truncate(z.len() - 4);
        // FIN + RSV1 + text: put_frame writes FIN and the opcode; RSV1 is bit 6 of byte 0.
        let at = out.len();
        wire::put_frame(&mut out, true, wire::OP_TEXT, Some(keys.key()), &z);
        out[at] |= 0x40;
        n += 1;
    }
    Arc::from(out)
}

/// `text` compressed on its own (a fresh raw deflate stream, sync flush, tail removed): a
/// message payload valid with or without context takeover.
pub fn compress_fresh(text: &[u8]) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(1), false, 15);
    let mut z = Vec::with_capacity(text.len() + 64);
    c.compress_vec(text, &mut z, FlushCompress::Sync)
        .expect("compress");
    assert!(
        z.ends_with(&[0, 0, 0xff, 0xff]),
        "room for the whole output"
    );
    z.truncate(z.len() - 4);
    z
}

type Runner = Box<dyn FnMut(u64) -> (u64, u64)>;

/// A compress runner; `written` follows the bytes it puts on the wire.
pub fn make_compress(lib: &str, texts: Arc<Vec<String>>, written: Arc<AtomicU64>) -> Runner {
    let len = texts[0].len() as u64;
    let bytes: Vec<Bytes> = texts.iter().map(|t| Bytes::from(t.clone())).collect();
    let mut i = 0;
    match lib {
        "tether" => {
            let mut conn = tether_server();
            Box::new(move |n| {
                for _ in 0..n {
                    conn.send_text(&texts[i % texts.len()]).expect("send");
                    i += 1;
                    let mut w = 0;
                    if let Some(t) = conn.poll_transmit() {
                        for s in t.iter() {
                            black_box(s);
                            w += s.len();
                        }
                    }
                    conn.advance(w);
                    written.fetch_add(w as u64, Ordering::Relaxed);
                }
                (n, n * len)
            })
        }
        "yawc" => {
            let rt = crate::net::runtime();
            let mut ws = {
                let _g = rt.enter();
                yawc::WebSocket::from_stream_with_extensions(
                    MemStream::counting_sink(written),
                    yawc::Role::Server,
                    Some(OFFER),
                    yawc_options(),
                )
                .expect("yawc")
            };
            Box::new(move |n| {
                let _g = rt.enter();
                for _ in 0..n {
                    let f = yawc::Frame::text(bytes[i % bytes.len()].clone());
                    i += 1;
                    ws.send(f)
                        .now_or_never()
                        .expect("never pending")
                        .expect("yawc send");
                }
                (n, n * len)
            })
        }
        "sockudo-ws" => {
            let rt = crate::net::runtime();
            let mut ws = {
                let _g = rt.enter();
                sockudo_ws::CompressedWebSocketStream::server(
                    MemStream::counting_sink(written),
                    sockudo_ws::Config::default(),
                    sockudo_deflate(),
                )
            };
            Box::new(move |n| {
                let _g = rt.enter();
                for _ in 0..n {
                    let m = sockudo_ws::Message::Text(bytes[i % bytes.len()].clone());
                    i += 1;
                    ws.send(m)
                        .now_or_never()
                        .expect("never pending")
                        .expect("sockudo-ws send");
                }
                (n, n * len)
            })
        }
        _ => unreachable!("{lib}"),
    }
}

pub fn make_decompress(lib: &str, input: Arc<[u8]>, len: usize) -> Runner {
    let s = MemStream::new(input, usize::MAX);
    match lib {
        "tether" => {
            let mut conn = tether_server();
            let mut s = s;
            Box::new(move |n| {
                let (mut msgs, mut bytes) = (0, 0);
                while msgs < n {
                    // As a driver: inflation steps due now run before more is read.
                    if conn.poll_timeout().is_some_and(|t| t <= NOW) {
                        conn.handle_timeout(NOW);
                    } else if conn.wants_read() {
                        let mut buf = conn.recv_buf();
                        let k = s.read_into(&mut buf);
                        buf.commit(NOW, k);
                    }
                    while let Some(d) = conn.read() {
                        match d {
                            Data::Message(m @ Message::Text(_)) => {
                                assert_eq!(m.len(), len);
                                bytes += m.len() as u64;
                                msgs += 1;
                                black_box(m);
                            }
                            other => panic!("tether: unexpected {other:?}"),
                        }
                    }
                }
                (msgs, bytes)
            })
        }
        "yawc" => {
            let rt = crate::net::runtime();
            let mut ws = {
                let _g = rt.enter();
                yawc::WebSocket::from_stream_with_extensions(
                    s,
                    yawc::Role::Server,
                    Some(OFFER),
                    yawc_options(),
                )
                .expect("yawc")
            };
            Box::new(move |n| {
                let _g = rt.enter();
                let mut bytes = 0;
                for _ in 0..n {
                    let f = ws
                        .next()
                        .now_or_never()
                        .expect("never pending")
                        .expect("stream open");
                    assert!(f.opcode() == yawc::OpCode::Text && f.payload().len() == len);
                    bytes += len as u64;
                    black_box(f);
                }
                (n, bytes)
            })
        }
        "sockudo-ws" => {
            let rt = crate::net::runtime();
            let mut ws = {
                let _g = rt.enter();
                sockudo_ws::CompressedWebSocketStream::server(
                    s,
                    sockudo_ws::Config::default(),
                    sockudo_deflate(),
                )
            };
            Box::new(move |n| {
                let _g = rt.enter();
                let mut bytes = 0;
                for _ in 0..n {
                    let m = ws
                        .next()
                        .now_or_never()
                        .expect("never pending")
                        .expect("stream open")
                        .expect("sockudo-ws read");
                    match &m {
                        sockudo_ws::Message::Text(t) => assert_eq!(t.len(), len),
                        other => panic!("sockudo-ws: unexpected {other:?}"),
                    }
                    bytes += len as u64;
                    black_box(m);
                }
                (n, bytes)
            })
        }
        _ => unreachable!("{lib}"),
    }
}

fn texts(len: usize) -> Arc<Vec<String>> {
    Arc::new(
        (0..variety(len) as u64)
            .map(|seed| json_text(len, seed))
            .collect(),
    )
}

fn case_name(dir: &str, len: usize) -> String {
    format!("{dir}-json-{}", size_name(len))
}

/// One runner for `n` messages, for callgrind (`--profile deflate CASE LIB N`).
pub fn profile(case: &str, lib: &str, n: u64) -> (u64, u64) {
    let (dir, len) = ["compress", "decompress"]
        .into_iter()
        .flat_map(|d| SIZES.map(|l| (d, l)))
        .find(|&(d, l)| case_name(d, l) == case)
        .expect("deflate case");
    let texts = texts(len);
    if dir == "compress" {
        make_compress(lib, texts, Arc::new(AtomicU64::new(0)))(n)
    } else {
        make_decompress(lib, client_input(&texts), len)(n)
    }
}

/// The Python interpreter with `websockets` installed by `scripts/install-peers.sh`, if any.
fn python() -> Option<std::path::PathBuf> {
    let py = crate::workspace_root().join("target/interop/py/bin/python3");
    let ok = std::process::Command::new(&py)
        .args(["-c", "import websockets.extensions.permessage_deflate"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

/// Python websockets on the same texts and frames (`benches/python/deflate_bench.py`), as a
/// child process: its samples, or why it could not join.
/// One size's texts and the client frames made of them.
type CaseInput = (usize, Arc<Vec<String>>, Arc<[u8]>);

fn run_python(opts: &Opts, report: &mut Report, cases: &[CaseInput]) {
    let Some(py) = python() else {
        eprintln!(
            "# deflate: Python websockets not installed (bash scripts/install-peers.sh python)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("tether-bench-deflate-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    for (len, texts, frames) in cases {
        let json = format!(
            "[{}]",
            texts
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let _ = std::fs::write(dir.join(format!("{len}.texts.json")), json);
        let _ = std::fs::write(dir.join(format!("{len}.frames")), &frames[..]);
    }
    let script = crate::workspace_root().join("benches/python/deflate_bench.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(&dir)
        .arg(opts.budget.as_millis().to_string())
        .arg(opts.reps.to_string())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "# deflate: Python websockets failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            eprintln!("# deflate: Python websockets did not start: {e}");
            return;
        }
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(&"SAMPLE"), Some(dir), Some(len), Some(rep), Some(value), Some(ns)) = (
            f.first(),
            f.get(1),
            f.get(2).and_then(|v| v.parse::<usize>().ok()),
            f.get(3).and_then(|v| v.parse::<usize>().ok()),
            f.get(4).and_then(|v| v.parse::<f64>().ok()),
            f.get(5).and_then(|v| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        let case = case_name(dir, len);
        if opts
            .case
            .as_ref()
            .is_some_and(|c| !case.contains(c.as_str()))
        {
            continue;
        }
        let mut extra = vec![];
        if let Some(r) = f.get(6).and_then(|v| v.parse::<f64>().ok()) {
            extra.push(("wire_ratio", r));
        }
        extra.push(("ns_per_msg", ns));
        extra.push(("MB_per_s", value * len as f64 / 1e6));
        report.push(Sample {
            scenario: "deflate".into(),
            case,
            lib: "python-websockets".into(),
            rep,
            value,
            extra,
        });
    }
}

pub fn run(opts: &Opts, report: &mut Report) {
    let mut inputs = Vec::new();
    for len in SIZES {
        let texts = texts(len);
        let input = client_input(&texts);
        inputs.push((len, texts.clone(), input.clone()));
        for dir in ["compress", "decompress"] {
            let case = case_name(dir, len);
            if opts
                .case
                .as_ref()
                .is_some_and(|c| !case.contains(c.as_str()))
            {
                continue;
            }
            report.add_cell(CellSpec {
                scenario: "deflate".into(),
                case: case.clone(),
                metric: "msg_per_cpu_s",
                higher_is_better: true,
                reference_only: vec![],
            });
            for rep in 0..opts.reps {
                for i in 0..LIBS.len() {
                    let lib = LIBS[(i + rep) % LIBS.len()];
                    let (m, extra) = if dir == "compress" {
                        let written = Arc::new(AtomicU64::new(0));
                        let mut r = make_compress(lib, texts.clone(), written.clone());
                        // The warm-up pass writes too: the ratio counts every call.
                        let mut payload = 0u64;
                        let m = crate::measure::measure(opts.budget, |n| {
                            let (o, b) = r(n);
                            payload += b;
                            (o, b)
                        });
                        let ratio = written.load(Ordering::Relaxed) as f64 / payload as f64;
                        (m, vec![("wire_ratio", ratio)])
                    } else {
                        let mut r = make_decompress(lib, input.clone(), len);
                        (crate::measure::measure(opts.budget, &mut r), vec![])
                    };
                    let mut extra = extra;
                    extra.push(("ns_per_msg", m.ns_per_op()));
                    extra.push(("MB_per_s", m.mb_per_s()));
                    report.push(Sample {
                        scenario: "deflate".into(),
                        case: case.clone(),
                        lib: lib.into(),
                        rep,
                        value: m.ops_per_s(),
                        extra,
                    });
                }
            }
        }
    }
    run_python(opts, report, &inputs);
}
