//! Scenario 2: encoding in the client role (masking), in memory.
//!
//! The caller owns a payload and sends it as one message; its bytes must stay intact. Each
//! library builds the frame (header, fresh masking key, a masked copy of the payload) through
//! its own send path and hands the bytes to a sink that counts them without copying:
//!
//! - tether: `send_binary(Bytes)` / `send_text(&str)` / `send_fragment`, then draining
//!   `poll_transmit` + `advance` after each message.
//! - tungstenite: `send(Message)` (write + flush) on `WebSocket::from_raw_socket(.., Client)`;
//!   fragments as `Message::Frame` then one flush.
//! - fastwebsockets: `write_frame(Frame::binary(Payload::Borrowed(..)))` (it copies to mask);
//!   `fastwebsockets-inplace` is its `Payload::BorrowedMut` mode, which masks the caller's buffer
//!   in place (the payload is destroyed, so it is shown as a reference, not as the best peer).
//! - tokio-websockets: `SinkExt::send(Message)` on `ClientBuilder::take_over(..)`; fragments by
//!   its `Config::frame_size(4096)`.
//! - yawc: `SinkExt::send(Frame)` on `WebSocket::from_stream(.., Role::Client, ..)`; fragments
//!   by its `Options::with_max_fragment_size(4096)`.
//! - sockudo-ws: `SinkExt::send(Message)` on `WebSocketStream::client(..)`; it cannot send a
//!   fragmented message, so it sits out that cell.
//!
//! yawc and sockudo-ws run inside an entered, idle tokio runtime (sockudo-ws arms timers).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::{FutureExt, SinkExt};
use tether::{Config, Connection, DataKind, Role};

use crate::decode::shapes;
use crate::memstream::MemStream;
use crate::report::{CellSpec, Report, Sample};
use crate::wire;
use crate::{NOW, Opts};

pub const LIBS: [&str; 7] = [
    "tether",
    "tungstenite",
    "fastwebsockets",
    "fastwebsockets-inplace",
    "tokio-websockets",
    "yawc",
    "sockudo-ws",
];

/// Whether `lib` can send the message as asked: sockudo-ws has no API to send a fragmented
/// message, so it has no sample in the fragmented cell.
pub fn supports(lib: &str, frag: Option<usize>) -> bool {
    !(lib == "sockudo-ws" && frag.is_some())
}

type Runner = Box<dyn FnMut(u64) -> (u64, u64)>;

fn pieces(len: usize, frag: Option<usize>) -> Vec<(usize, usize)> {
    let f = frag.unwrap_or(len.max(1));
    (0..len).step_by(f).map(|a| (a, (a + f).min(len))).collect()
}

pub fn make(lib: &str, len: usize, text: bool, frag: Option<usize>) -> Runner {
    let payload = Bytes::from(wire::payload(len, text));
    let text_str: String = String::from_utf8(payload.to_vec()).unwrap_or_default();
    let parts = pieces(len, frag);
    let per_msg = len as u64;
    match lib {
        "tether" => {
            let mut conn = Connection::open(Role::Client, Config::default(), wire::rng(), NOW);
            Box::new(move |n| {
                let mut written = 0usize;
                for _ in 0..n {
                    if frag.is_some() {
                        let last = parts.len() - 1;
                        for (i, &(a, b)) in parts.iter().enumerate() {
                            conn.send_fragment(DataKind::Binary, payload.slice(a..b), i == last)
                                .expect("send");
                        }
                    } else if text {
                        conn.send_text(&text_str).expect("send");
                    } else {
                        conn.send_binary(payload.clone()).expect("send");
                    }
                    let mut w = 0;
                    if let Some(t) = conn.poll_transmit() {
                        for s in t.iter() {
                            black_box(s);
                            w += s.len();
                        }
                    }
                    conn.advance(w);
                    written += w;
                }
                assert!(written as u64 >= n * per_msg);
                (n, n * per_msg)
            })
        }
        "tungstenite" => {
            use tungstenite::protocol::frame::Frame;
            use tungstenite::protocol::frame::coding::{Data, OpCode};
            let mut ws = tungstenite::WebSocket::from_raw_socket(
                MemStream::sink(),
                tungstenite::protocol::Role::Client,
                None,
            );
            let utf8 = tungstenite::Utf8Bytes::from(text_str.clone());
            Box::new(move |n| {
                for _ in 0..n {
                    if frag.is_some() {
                        let last = parts.len() - 1;
                        for (i, &(a, b)) in parts.iter().enumerate() {
                            let op =
                                OpCode::Data(if i == 0 { Data::Binary } else { Data::Continue });
                            ws.write(tungstenite::Message::Frame(Frame::message(
                                payload.slice(a..b),
                                op,
                                i == last,
                            )))
                            .expect("write");
                        }
                        ws.flush().expect("flush");
                    } else if text {
                        ws.send(tungstenite::Message::Text(utf8.clone()))
                            .expect("send");
                    } else {
                        ws.send(tungstenite::Message::Binary(payload.clone()))
                            .expect("send");
                    }
                }
                assert!(ws.get_ref().written >= n * per_msg);
                (n, n * per_msg)
            })
        }
        "fastwebsockets" | "fastwebsockets-inplace" => {
            use fastwebsockets::{Frame, OpCode, Payload};
            let inplace = lib == "fastwebsockets-inplace";
            let mut ws = fastwebsockets::WebSocket::after_handshake(
                MemStream::sink(),
                fastwebsockets::Role::Client,
            );
            let mut scratch = payload.to_vec();
            Box::new(move |n| {
                for _ in 0..n {
                    let op = if text { OpCode::Text } else { OpCode::Binary };
                    let last = parts.len() - 1;
                    for (i, &(a, b)) in parts.iter().enumerate() {
                        let p = if inplace {
                            Payload::BorrowedMut(&mut scratch[a..b])
                        } else {
                            Payload::Borrowed(&payload[a..b])
                        };
                        let op = if i == 0 { op } else { OpCode::Continuation };
                        ws.write_frame(Frame::new(i == last, op, None, p))
                            .now_or_never()
                            .expect("never pending")
                            .expect("write_frame");
                    }
                }
                (n, n * per_msg)
            })
        }
        "tokio-websockets" => {
            let mut config = tokio_websockets::Config::default();
            if let Some(f) = frag {
                config = config.frame_size(f);
            }
            let mut ws = tokio_websockets::ClientBuilder::new()
                .config(config)
                .take_over(MemStream::sink());
            Box::new(move |n| {
                for _ in 0..n {
                    let m = if text {
                        tokio_websockets::Message::text(payload.clone())
                    } else {
                        tokio_websockets::Message::binary(payload.clone())
                    };
                    ws.send(m)
                        .now_or_never()
                        .expect("never pending")
                        .expect("send");
                }
                assert!(ws.get_ref().written >= n * per_msg);
                (n, n * per_msg)
            })
        }
        "yawc" => {
            // Fragments by its `Options::with_max_fragment_size`, as tokio-websockets does.
            let mut options = yawc::Options::default();
            if let Some(f) = frag {
                options = options.with_max_fragment_size(f);
            }
            let rt = crate::net::runtime();
            let written = Arc::new(AtomicU64::new(0));
            let mut ws = {
                let _g = rt.enter();
                yawc::WebSocket::from_stream(
                    MemStream::counting_sink(written.clone()),
                    yawc::Role::Client,
                    options,
                )
                .expect("yawc")
            };
            Box::new(move |n| {
                let _g = rt.enter();
                let before = written.load(Ordering::Relaxed);
                for _ in 0..n {
                    let f = if text {
                        yawc::Frame::text(payload.clone())
                    } else {
                        yawc::Frame::binary(payload.clone())
                    };
                    ws.send(f)
                        .now_or_never()
                        .expect("never pending")
                        .expect("yawc send");
                }
                assert!(written.load(Ordering::Relaxed) - before >= n * per_msg);
                (n, n * per_msg)
            })
        }
        "sockudo-ws" => {
            assert!(
                frag.is_none(),
                "sockudo-ws cannot send a fragmented message"
            );
            let rt = crate::net::runtime();
            let mut ws = {
                let _g = rt.enter();
                sockudo_ws::WebSocketStream::client(
                    MemStream::sink(),
                    sockudo_ws::Config::default(),
                )
            };
            Box::new(move |n| {
                let _g = rt.enter();
                let before = ws.get_ref().written;
                for _ in 0..n {
                    let m = if text {
                        sockudo_ws::Message::Text(payload.clone())
                    } else {
                        sockudo_ws::Message::Binary(payload.clone())
                    };
                    ws.send(m)
                        .now_or_never()
                        .expect("never pending")
                        .expect("sockudo-ws send");
                }
                assert!(ws.get_ref().written - before >= n * per_msg);
                (n, n * per_msg)
            })
        }
        _ => unreachable!("{lib}"),
    }
}

pub fn run(opts: &Opts, report: &mut Report) {
    for (name, len, text, frag) in shapes() {
        report.add_cell(CellSpec {
            scenario: "encode".into(),
            case: name.clone(),
            metric: "msg_per_cpu_s",
            higher_is_better: true,
            reference_only: vec!["fastwebsockets-inplace".into()],
        });
        for rep in 0..opts.reps {
            for i in 0..LIBS.len() {
                let lib = LIBS[(i + rep) % LIBS.len()];
                if !supports(lib, frag) {
                    continue;
                }
                let mut r = make(lib, len, text, frag);
                let m = crate::measure::measure(opts.budget, &mut r);
                report.push(Sample {
                    scenario: "encode".into(),
                    case: name.clone(),
                    lib: lib.into(),
                    rep,
                    value: m.ops_per_s(),
                    extra: vec![("ns_per_msg", m.ns_per_op()), ("MB_per_s", m.mb_per_s())],
                });
            }
        }
    }
}
