//! Scenario 1: decoding in the server role, in memory.
//!
//! Every library reads masked client frames from the same [`MemStream`] through its own read
//! path, so each measurement includes the one copy from the "socket" into the library's buffer,
//! header parsing, unmasking, UTF-8 validation for text, message assembly for fragments, and
//! handing the message to the caller (who checks its length and drops it):
//!
//! - tether: `recv_buf` + `commit` (the zero-extra-copy driver path), then `read`.
//!   Default `Config` (heartbeat armed, limits 16 MiB frame / 64 MiB message).
//! - tungstenite: `WebSocket::from_raw_socket(.., Role::Server, None)` and `read()`.
//! - fastwebsockets: `FragmentCollector` over `WebSocket::after_handshake(.., Role::Server)`,
//!   `read_frame()` (assembles fragments and validates text like the others).
//! - tokio-websockets: `ServerBuilder::new().serve(..)` and `StreamExt::next()`.
//! - yawc: `WebSocket::from_stream(.., Role::Server, ..)` and `next_frame()`, with UTF-8
//!   validation on, tether's limits and its README's tuned 128 KiB read buffer.
//! - sockudo-ws: `WebSocketStream::server(.., Config::default())` and `StreamExt::next()`
//!   yielding `Message` (text validated; not `RawMessage`).
//!
//! The async libraries are polled with `now_or_never`: the stream never blocks, so no runtime
//! is in the measurement. yawc and sockudo-ws are built and polled inside an entered, idle
//! tokio runtime because sockudo-ws arms tokio timers.

use std::hint::black_box;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use tether::{Config, Connection, Data, Message, Role};

use crate::memstream::MemStream;
use crate::report::{CellSpec, Report, Sample};
use crate::wire::{self, KeyGen};
use crate::{NOW, Opts};

pub const LIBS: [&str; 6] = [
    "tether",
    "tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "yawc",
    "sockudo-ws",
];

/// yawc's options here: UTF-8 validation of text on (it is off by default), limits raised to
/// tether's (16 MiB frame, 64 MiB message; its defaults reject a 1 MiB frame) and the 128 KiB
/// read buffer of its README's tuned setup (the default 8 KiB one is reallocated after every
/// larger frame).
fn yawc_options() -> yawc::Options {
    yawc::Options::default()
        .with_utf8()
        .with_limits(16 << 20, 64 << 20)
        .with_read_buffer_capacity(128 << 10)
}

pub struct Case {
    pub name: String,
    pub len: usize,
    pub text: bool,
    pub frag: Option<usize>,
    pub chunk: usize,
}

pub fn size_name(len: usize) -> String {
    if len >= 1 << 20 && len.is_multiple_of(1 << 20) {
        format!("{}MiB", len >> 20)
    } else if len >= 1024 && len.is_multiple_of(1024) {
        format!("{}KiB", len >> 10)
    } else {
        format!("{len}B")
    }
}

/// The message shapes shared by decode and encode.
pub fn shapes() -> Vec<(String, usize, bool, Option<usize>)> {
    let mut v: Vec<(String, usize, bool, Option<usize>)> =
        [16, 1 << 10, 16 << 10, 64 << 10, 1 << 20]
            .into_iter()
            .map(|l| (format!("bin-{}", size_name(l)), l, false, None))
            .collect();
    v.push(("text-1KiB".into(), 1 << 10, true, None));
    v.push(("bin-64KiB-frag4KiB".into(), 64 << 10, false, Some(4 << 10)));
    v
}

pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for chunk in [usize::MAX, 1448] {
        for (name, len, text, frag) in shapes() {
            let name = if chunk == usize::MAX {
                name
            } else {
                format!("{name}-reads1448")
            };
            v.push(Case {
                name,
                len,
                text,
                frag,
                chunk,
            });
        }
    }
    v
}

/// The input: whole messages, at least 256 KiB and two messages, so it wraps at a frame boundary.
pub fn input(case: &Case) -> Arc<[u8]> {
    let payload = wire::payload(case.len, case.text);
    let op = if case.text {
        wire::OP_TEXT
    } else {
        wire::OP_BINARY
    };
    let mut keys = KeyGen(0x1234_5678_9abc_def1);
    let mut out = Vec::new();
    let mut n = 0;
    while out.len() < 256 << 10 || n < 2 {
        wire::put_message(&mut out, op, &payload, case.frag, &mut || keys.key());
        n += 1;
    }
    Arc::from(out)
}

type Runner = Box<dyn FnMut(u64) -> (u64, u64)>;

pub fn make(lib: &str, input: Arc<[u8]>, chunk: usize, len: usize, text: bool) -> Runner {
    let mut s = MemStream::new(input, chunk);
    match lib {
        "tether" => {
            let mut conn = Connection::open(Role::Server, Config::default(), wire::rng(), NOW);
            Box::new(move |n| {
                let (mut msgs, mut bytes) = (0, 0);
                while msgs < n {
                    let mut buf = conn.recv_buf();
                    let k = s.read_into(&mut buf);
                    buf.commit(NOW, k);
                    while let Some(d) = conn.read() {
                        match d {
                            Data::Message(m) => {
                                assert!(m.len() == len && matches!(m, Message::Text(_)) == text);
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
        "tungstenite" => {
            let mut ws = tungstenite::WebSocket::from_raw_socket(
                s,
                tungstenite::protocol::Role::Server,
                None,
            );
            Box::new(move |n| {
                let mut bytes = 0;
                for _ in 0..n {
                    let m = ws.read().expect("tungstenite read");
                    let l = match &m {
                        tungstenite::Message::Binary(b) if !text => b.len(),
                        tungstenite::Message::Text(t) if text => t.len(),
                        other => panic!("tungstenite: unexpected {other:?}"),
                    };
                    assert_eq!(l, len);
                    bytes += l as u64;
                    black_box(m);
                }
                (n, bytes)
            })
        }
        "fastwebsockets" => {
            let ws = fastwebsockets::WebSocket::after_handshake(s, fastwebsockets::Role::Server);
            let mut ws = fastwebsockets::FragmentCollector::new(ws);
            Box::new(move |n| {
                let mut bytes = 0;
                for _ in 0..n {
                    let f = ws
                        .read_frame()
                        .now_or_never()
                        .expect("never pending")
                        .expect("fastwebsockets read");
                    let want = if text {
                        fastwebsockets::OpCode::Text
                    } else {
                        fastwebsockets::OpCode::Binary
                    };
                    assert!(f.opcode == want && f.payload.len() == len);
                    bytes += f.payload.len() as u64;
                    black_box(f);
                }
                (n, bytes)
            })
        }
        "tokio-websockets" => {
            let mut ws = tokio_websockets::ServerBuilder::new().serve(s);
            Box::new(move |n| {
                let mut bytes = 0;
                for _ in 0..n {
                    let m = ws
                        .next()
                        .now_or_never()
                        .expect("never pending")
                        .expect("stream open")
                        .expect("tokio-websockets read");
                    assert!(m.is_text() == text && m.as_payload().len() == len);
                    bytes += len as u64;
                    black_box(m);
                }
                (n, bytes)
            })
        }
        "yawc" => {
            let rt = crate::net::runtime();
            let mut ws = {
                let _g = rt.enter();
                yawc::WebSocket::from_stream(s, yawc::Role::Server, yawc_options()).expect("yawc")
            };
            let want = if text {
                yawc::OpCode::Text
            } else {
                yawc::OpCode::Binary
            };
            Box::new(move |n| {
                let _g = rt.enter();
                let mut bytes = 0;
                for _ in 0..n {
                    let f = ws
                        .next_frame()
                        .now_or_never()
                        .expect("never pending")
                        .expect("yawc read");
                    assert!(f.opcode() == want && f.payload().len() == len);
                    bytes += len as u64;
                    black_box(f);
                }
                (n, bytes)
            })
        }
        "sockudo-ws" => {
            let rt = crate::net::runtime();
            // Default `Config`: text validated, limits 16 MiB frame / 64 MiB message.
            let mut ws = {
                let _g = rt.enter();
                sockudo_ws::WebSocketStream::server(s, sockudo_ws::Config::default())
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
                    let l = match &m {
                        sockudo_ws::Message::Binary(b) if !text => b.len(),
                        sockudo_ws::Message::Text(t) if text => t.len(),
                        other => panic!("sockudo-ws: unexpected {other:?}"),
                    };
                    assert_eq!(l, len);
                    bytes += l as u64;
                    black_box(m);
                }
                (n, bytes)
            })
        }
        _ => unreachable!("{lib}"),
    }
}

pub fn run(opts: &Opts, report: &mut Report) {
    for case in cases() {
        let cell = CellSpec {
            scenario: "decode".into(),
            case: case.name.clone(),
            metric: "msg_per_cpu_s",
            higher_is_better: true,
            reference_only: vec![],
        };
        report.add_cell(cell);
        let input = input(&case);
        for rep in 0..opts.reps {
            for i in 0..LIBS.len() {
                let lib = LIBS[(i + rep) % LIBS.len()];
                let mut r = make(lib, input.clone(), case.chunk, case.len, case.text);
                let m = crate::measure::measure(opts.budget, &mut r);
                report.push(Sample {
                    scenario: "decode".into(),
                    case: case.name.clone(),
                    lib: lib.into(),
                    rep,
                    value: m.ops_per_s(),
                    extra: vec![("ns_per_msg", m.ns_per_op()), ("MB_per_s", m.mb_per_s())],
                });
            }
        }
    }
}
