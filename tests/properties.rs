//! Property tests of the core: transcripts are independent of how bytes are cut, arbitrary input
//! never panics and ends in at most one terminal event, requests sent right before a Close are
//! all answered before the Close echo, and headers round-trip.

mod common;

use bytes::BytesMut;
use common::*;
use proptest::prelude::*;
use tether::frame::{FrameHeader, OpCode};
use tether::{
    CloseCode, Connection, Data, DataKind, Event, Instant, Message, Role, TransportAction,
};

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

/// A client sends `requests` and then its Close without waiting; the server's application reads
/// lazily (one message when `schedule` says so, never more than it must to make progress) and
/// answers each request. Returns what the server read, what the client read, and how each
/// side's connection ended (clean?).
fn requests_then_close(
    requests: &[String],
    chunking: &Chunking,
    schedule: &[bool],
) -> (Vec<String>, Vec<String>, bool, bool) {
    let mut client = Connection::open(Role::Client, quiet(), rng(11), Instant::ZERO);
    let mut server = Connection::open(Role::Server, quiet(), rng(12), Instant::ZERO);
    for r in requests {
        client.send_text(r).unwrap();
    }
    client
        .close(Instant::ZERO, CloseCode::NORMAL, "bye")
        .unwrap();
    let (mut now, mut turn) = (Instant::ZERO, 0usize);
    let (mut served, mut answers) = (Vec::new(), Vec::new());
    let (mut client_ended, mut server_ended) = (None, None);
    let (mut c_shut, mut s_shut, mut c_eof, mut s_eof) = (false, false, false, false);
    for _ in 0..100_000 {
        let mut progress = false;
        // The wire, both ways, cut as the chunking says; a half-close is an end of stream.
        if !c_shut {
            let out = drain_output(&mut client);
            progress |= !out.is_empty();
            feed(&mut server, now, &out, chunking);
        }
        if !s_shut {
            let out = drain_output(&mut server);
            progress |= !out.is_empty();
            feed(&mut client, now, &out, chunking);
        }
        c_shut |= client.poll_transport().is_some();
        s_shut |= server.poll_transport().is_some();
        if c_shut && !s_eof {
            s_eof = true;
            server.handle_eof(now);
            progress = true;
        }
        if s_shut && !c_eof {
            c_eof = true;
            client.handle_eof(now);
            progress = true;
        }
        // The server application: lazy, but it reads when nothing else would move.
        let lazy = schedule.is_empty() || !schedule[turn % schedule.len()];
        turn += 1;
        if !lazy || !progress {
            match server.read() {
                Some(Data::Message(Message::Text(t))) => {
                    served.push(t.as_str().to_string());
                    let _ = server.send_text(&format!("re: {t}"));
                    progress = true;
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => {}
            }
        }
        while let Some(d) = client.read() {
            if let Data::Message(Message::Text(t)) = d {
                answers.push(t.as_str().to_string());
            }
        }
        for (conn, ended) in [
            (&mut client, &mut client_ended),
            (&mut server, &mut server_ended),
        ] {
            while let Some(ev) = conn.poll_event() {
                if let Event::Closed(c) = ev {
                    *ended = Some(c.clean);
                }
            }
        }
        let closed = client.poll_transport() == Some(TransportAction::Close)
            && server.poll_transport() == Some(TransportAction::Close);
        if closed {
            break;
        }
        // Time moves only when nothing else can happen (the application's last `read` may have
        // queued output: that is progress too).
        let quiet_wire = client.poll_transmit().is_none() && server.poll_transmit().is_none();
        if !progress && quiet_wire {
            let next = [client.poll_timeout(), server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            now = now.max(next);
            client.handle_timeout(now);
            server.handle_timeout(now);
        }
    }
    (
        served,
        answers,
        client_ended.expect("the client ended"),
        server_ended.expect("the server ended"),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// RFC 6455 §5.5.1 / §7: a client that sends requests and its Close at once gets every
    /// request answered before the server's Close echo, and a clean close, however the bytes
    /// are cut and however lazily the server application reads (it reads whenever nothing else
    /// can happen: the core waits for it, it does not answer the Close behind unread data).
    #[test]
    fn requests_right_before_a_close_are_all_answered(
        requests in prop::collection::vec("[a-z€]{0,40}", 0..12),
        splits in prop::collection::vec(1usize..300, 1..6),
        schedule in prop::collection::vec(any::<bool>(), 0..8),
    ) {
        for chunking in [Chunking::Whole, Chunking::Sizes(splits.clone())] {
            let (served, answers, client_clean, server_clean) =
                requests_then_close(&requests, &chunking, &schedule);
            prop_assert_eq!(&served, &requests);
            let want: Vec<String> = requests.iter().map(|r| format!("re: {r}")).collect();
            prop_assert_eq!(&answers, &want);
            prop_assert!(client_clean && server_clean);
        }
    }

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
