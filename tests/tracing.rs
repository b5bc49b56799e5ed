//! The `tracing` feature: the events a scripted connection and a reconnect supervisor emit on
//! a virtual clock, captured by a small subscriber of the test's own.
#![cfg(feature = "tracing")]

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tether::handshake::ClientRequest;
use tether::reconnect::{ReconnectConfig, SessionConfig, Supervisor, SupervisorAction};
use tether::{CloseCode, Config, Heartbeat, Instant, Role};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event: its level and fields (`message` included), values as debug text.
#[derive(Debug, Clone)]
struct Captured {
    level: Level,
    fields: BTreeMap<String, String>,
}

impl Captured {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Records every event; spans are not the core's business.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn capture(f: impl FnOnce()) -> Vec<Captured> {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), f);
    capture.0.lock().unwrap().clone()
}

fn messages(events: &[Captured]) -> Vec<&str> {
    events.iter().map(Captured::message).collect()
}

/// A silent peer: the heartbeat Ping, the miss at the pong timeout, the close it causes.
#[test]
fn heartbeat_miss_leads_to_a_traced_close() {
    let events = capture(|| {
        let mut config = Config::default();
        config.heartbeat = Some(Heartbeat::new(
            Duration::from_secs(10),
            Duration::from_secs(5),
        ));
        let mut conn = open(Role::Client, config);
        for _ in 0..2 {
            let at = conn.poll_timeout().expect("a heartbeat timer");
            conn.handle_timeout(at);
            let _ = drain_output(&mut conn);
        }
        assert!(conn.closed().is_some());
    });
    assert_eq!(
        messages(&events),
        [
            "connecting",
            "open",
            "heartbeat ping sent",
            "heartbeat missed: no pong within the timeout",
            "closed"
        ]
    );
    assert_eq!(events[1].fields["role"], "Client");
    assert_eq!(events[2].level, Level::TRACE);
    assert_eq!(events[3].level, Level::WARN);
    assert_eq!(events[3].fields["timeout"], "Some(5s)");
    let closed = &events[4];
    assert_eq!(closed.level, Level::INFO);
    assert_eq!(closed.fields["code"], "1011");
    assert_eq!(closed.fields["reason"], "heartbeat timeout");
    assert_eq!(closed.fields["initiator"], "Local");
    assert_eq!(closed.fields["clean"], "false");
    assert_eq!(closed.fields["cause"], "HeartbeatTimeout");
}

/// A clean close: the closing side, the peer that answers, and both ends.
#[test]
fn a_clean_close_is_traced_on_both_sides() {
    let events = capture(|| {
        let mut pair = Pair::open(quiet(), Chunking::Whole);
        pair.client
            .conn
            .close(Instant::ZERO, CloseCode::NORMAL, "bye")
            .unwrap();
        pair.drive();
    });
    let closing: Vec<_> = events.iter().filter(|e| e.message() == "closing").collect();
    assert_eq!(closing.len(), 2);
    assert_eq!(closing[0].fields["initiator"], "local");
    assert_eq!(closing[1].fields["initiator"], "remote");
    assert_eq!(closing[1].fields["code"], "1000");
    assert_eq!(closing[1].fields["reason"], "bye");
    let closed: Vec<_> = events.iter().filter(|e| e.message() == "closed").collect();
    assert_eq!(closed.len(), 2);
    for e in &closed {
        assert_eq!(e.fields["clean"], "true");
        assert_eq!(e.fields["code"], "1000");
    }
    assert_eq!(
        closed[0].fields["initiator"], "Remote",
        "the server ends first"
    );
    assert_eq!(closed[1].fields["initiator"], "Local");
}

/// Every decision of the supervisor: connecting, retrying after a delay, giving up.
#[test]
fn reconnect_decisions_are_traced() {
    let events = capture(|| {
        let mut reconnect = ReconnectConfig::default();
        reconnect.max_attempts = Some(2);
        let mut sup = Supervisor::new(
            ClientRequest::new("ws://example.com/").unwrap(),
            quiet(),
            reconnect,
            SessionConfig::default(),
            rng(3),
            Instant::ZERO,
        );
        let mut now = Instant::ZERO;
        for _ in 0..10 {
            if sup.is_finished() {
                break;
            }
            while !matches!(sup.poll_action(), Some(SupervisorAction::Connect { .. })) {
                now = sup.poll_timeout().expect("a retry is planned");
                sup.handle_timeout(now);
            }
            sup.connect_failed(now, "connection refused");
        }
        assert!(sup.is_finished());
    });
    let decisions: Vec<_> = events
        .iter()
        .filter(|e| e.message().starts_with("reconnect: "))
        .collect();
    // Attempt, retry, attempt, retry, ... attempt, give up.
    let n = decisions.len();
    assert!(n >= 4, "{decisions:?}");
    for (i, e) in decisions.iter().enumerate() {
        let expected = if i % 2 == 0 {
            "reconnect: connecting"
        } else if i == n - 1 {
            "reconnect: giving up"
        } else {
            "reconnect: retrying"
        };
        assert_eq!(e.message(), expected, "{decisions:?}");
        if i % 2 == 0 {
            assert_eq!(e.fields["attempt"], (i / 2 + 1).to_string());
        } else {
            assert_eq!(e.fields["detail"], "connection refused");
            assert_eq!(e.fields["reason"], "could not connect");
        }
    }
    assert!(decisions[1].fields.contains_key("retry_in"));
    assert_eq!(decisions[n - 1].level, Level::WARN);
    assert!(decisions[n - 1].fields.contains_key("why"));
}
