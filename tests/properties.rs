//! Property tests of the core: transcripts are independent of how bytes are cut, arbitrary input
//! never panics and ends in at most one terminal event, and headers round-trip.

mod common;

use bytes::BytesMut;
use common::*;
use proptest::prelude::*;
use tether::frame::{FrameHeader, OpCode};
use tether::{DataKind, Event, Instant, Message, Role};

#[derive(Clone, Debug)]
enum Kind {
    Text,
    Binary,
    Ping,
    Pong,
}

#[derive(Clone, Debug)]
struct Op {
    from_client: bool,
    kind: Kind,
    len: usize,
    seed: u8,
    /// Fragment boundaries as fractions of the payload (data messages only).
    cuts: Vec<u16>,
}

/// Deterministic content of `len` bytes; text mixes 1- to 4-byte characters so fragment cuts
/// land inside characters.
fn content(kind: &Kind, len: usize, seed: u8) -> Vec<u8> {
    match kind {
        Kind::Text => {
            let alphabet = ["a", "é", "€", "𝄞", "z", " "];
            let mut s = String::with_capacity(len + 4);
            let mut i = seed as usize;
            while s.len() < len {
                let c = alphabet[i % alphabet.len()];
                if s.len() + c.len() > len {
                    s.push('.');
                } else {
                    s.push_str(c);
                }
                i = i.wrapping_mul(31).wrapping_add(7);
            }
            s.into_bytes()
        }
        _ => (0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect(),
    }
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![
        4 => 0usize..200,
        2 => 0usize..5000,
        1 => 0usize..70_000,
    ];
    (
        any::<bool>(),
        prop_oneof![
            4 => Just(Kind::Text),
            4 => Just(Kind::Binary),
            1 => Just(Kind::Ping),
            1 => Just(Kind::Pong),
        ],
        len,
        any::<u8>(),
        prop::collection::vec(any::<u16>(), 0..4),
    )
        .prop_map(|(from_client, kind, len, seed, cuts)| {
            let len = match kind {
                Kind::Ping | Kind::Pong => len % 126,
                _ => len,
            };
            Op {
                from_client,
                kind,
                len,
                seed,
                cuts,
            }
        })
}

fn send(conn: &mut tether::Connection, op: &Op) {
    let data = content(&op.kind, op.len, op.seed);
    match op.kind {
        Kind::Ping => conn.ping(data).unwrap(),
        Kind::Pong => conn.pong(data).unwrap(),
        Kind::Text | Kind::Binary => {
            let kind = if matches!(op.kind, Kind::Text) {
                DataKind::Text
            } else {
                DataKind::Binary
            };
            let mut cuts: Vec<usize> = op
                .cuts
                .iter()
                .map(|c| (*c as usize * op.len) / (u16::MAX as usize + 1))
                .collect();
            cuts.sort_unstable();
            if cuts.is_empty() {
                match kind {
                    DataKind::Text => conn
                        .send(Message::text(String::from_utf8(data).unwrap()))
                        .unwrap(),
                    _ => conn.send(Message::binary(data)).unwrap(),
                }
                return;
            }
            let mut start = 0;
            for cut in cuts {
                conn.send_fragment(kind, data[start..cut].to_vec(), false)
                    .unwrap();
                start = cut;
            }
            conn.send_fragment(kind, data[start..].to_vec(), true)
                .unwrap();
        }
    }
}

/// What the other side must see for `op`.
fn expected(op: &Op) -> String {
    let data = content(&op.kind, op.len, op.seed);
    match op.kind {
        Kind::Text => format!("text:{}", String::from_utf8(data).unwrap()),
        Kind::Binary => format!("binary:{data:?}"),
        Kind::Ping => format!("ping:{data:?}"),
        Kind::Pong => format!("pong:{data:?}"),
    }
}

fn describe(ev: &Event) -> String {
    match ev {
        Event::Ping(p) => format!("ping:{:?}", p.to_vec()),
        Event::Pong(p) => format!("pong:{:?}", p.to_vec()),
        other => format!("{other:?}"),
    }
}

fn describe_message(m: &Message) -> String {
    match m {
        Message::Text(t) => format!("text:{}", t.as_str()),
        Message::Binary(b) => format!("binary:{:?}", b.to_vec()),
        other => format!("{other:?}"),
    }
}

/// One side's transcript: what it read, then its events (the two are separate streams).
fn transcript(side: &Side) -> Vec<String> {
    Pair::messages(side)
        .iter()
        .map(describe_message)
        .chain(side.events.iter().map(describe))
        .collect()
}

/// The entries of one kind (`text`/`binary` together as messages), in order.
fn of_kind(entries: &[String], kinds: &[&str]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| kinds.iter().any(|k| e.starts_with(k)))
        .cloned()
        .collect()
}

fn run_pair(ops: &[Op], chunking: Chunking) -> (Vec<String>, Vec<String>) {
    let mut pair = Pair::open(quiet(), chunking);
    for op in ops {
        let side = if op.from_client {
            &mut pair.client
        } else {
            &mut pair.server
        };
        send(&mut side.conn, op);
    }
    pair.drive();
    (transcript(&pair.client), transcript(&pair.server))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any sequence of text/binary/ping/pong messages, fragmented at random points and sent by
    /// either role, arrives identically at the other side, and the transcript is the same when
    /// bytes are fed one at a time, in random splits, or all at once.
    #[test]
    fn messages_arrive_identically_however_bytes_are_cut(
        ops in prop::collection::vec(op(), 0..8),
        splits in prop::collection::vec(1usize..3000, 1..8),
    ) {
        let whole = run_pair(&ops, Chunking::Whole);
        // Each side sees exactly the other side's messages, pings and pongs, each kind in order
        // (pings it receives are answered by the core; the answering pongs come after the
        // explicit ones, as unsolicited pongs).
        for (side_events, from_client) in [(&whole.1, true), (&whole.0, false)] {
            let want: Vec<String> = ops
                .iter()
                .filter(|o| o.from_client == from_client)
                .map(expected)
                .collect();
            for kinds in [&["text:", "binary:"][..], &["ping:"], &["pong:"]] {
                let got = of_kind(side_events, kinds);
                let want = of_kind(&want, kinds);
                prop_assert_eq!(&got[..want.len()], &want[..]);
            }
            let pings_sent_here = ops
                .iter()
                .filter(|o| o.from_client != from_client && matches!(o.kind, Kind::Ping))
                .count();
            prop_assert_eq!(side_events.len(), want.len() + pings_sent_here);
        }
        prop_assert_eq!(&run_pair(&ops, Chunking::Sizes(splits)), &whole);
        let total: usize = ops.iter().map(|o| o.len).sum();
        if total < 40_000 {
            prop_assert_eq!(&run_pair(&ops, Chunking::Bytewise), &whole);
        }
    }

    /// Arbitrary bytes fed to either role never panic and end in ordinary events or exactly one
    /// terminal event, which is the last one; end of stream always produces it.
    #[test]
    fn arbitrary_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..4096),
        server in any::<bool>(),
        splits in prop::collection::vec(1usize..64, 1..8),
        prefix_valid_frame in any::<bool>(),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let mut conn = open(role, quiet());
        let mut bytes = Vec::new();
        if prefix_valid_frame {
            let mask = server.then_some([1, 2, 3, 4]);
            bytes.extend(frame(false, OpCode::Text, b"ok", mask));
        }
        bytes.extend(&input);
        feed(&mut conn, Instant::ZERO, &bytes, &Chunking::Sizes(splits));
        drain_data(&mut conn);
        drain_output(&mut conn);
        let mut events = drain_events(&mut conn);
        let closed = events.iter().filter(|e| matches!(e, Event::Closed(_))).count();
        prop_assert!(closed <= 1);
        if closed == 1 {
            prop_assert!(matches!(events.last(), Some(Event::Closed(_))));
        }
        conn.handle_eof(Instant::ZERO);
        events.extend(drain_events(&mut conn));
        terminal(&events);
        prop_assert!(conn.buffer_memory() <= 64 << 10);
    }

    /// Headers round-trip at every length boundary, in every form, masked or not.
    #[test]
    fn header_round_trip(
        base in prop::sample::select(vec![0u64, 125, 126, 65535, 65536, 1 << 32, (1 << 63) - 1]),
        delta in -2i64..=2,
        fin in any::<bool>(),
        op in prop::sample::select(vec![OpCode::Continuation, OpCode::Text, OpCode::Binary]),
        mask in prop::option::of(any::<[u8; 4]>()),
        rsv in 0u8..8,
    ) {
        let len = base.saturating_add_signed(delta).min((1 << 63) - 1);
        let h = FrameHeader { fin, rsv, opcode: op, mask, payload_len: len };
        let mut buf = BytesMut::new();
        h.encode(&mut buf);
        prop_assert_eq!(buf.len(), h.encoded_len());
        prop_assert_eq!(FrameHeader::parse(&buf), Ok(Some((h, buf.len()))));
        for cut in 0..buf.len() {
            prop_assert_eq!(FrameHeader::parse(&buf[..cut]), Ok(None));
        }
    }
}
