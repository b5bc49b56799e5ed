//! `Connection::open_negotiated`: a connection opened after an upgrade done elsewhere starts
//! with what the upgrade agreed on (the subprotocol, permessage-deflate).

mod common;

use common::*;
use tether::handshake::Negotiated;
use tether::{Connection, Event, Instant, Message, Role};

const T0: Instant = Instant::ZERO;

fn negotiated(subprotocol: Option<&str>, extensions: &[&str]) -> Negotiated {
    let mut n = Negotiated::default();
    n.subprotocol = subprotocol.map(String::from);
    n.extensions = extensions.iter().map(|e| e.to_string()).collect();
    n
}

#[test]
fn the_subprotocol_is_reported_and_frames_flow() {
    let n = negotiated(Some("chat"), &[]);
    let mut client = Connection::open_negotiated(Role::Client, &n, quiet(), rng(1), T0).unwrap();
    let mut server = Connection::open_negotiated(Role::Server, &n, quiet(), rng(2), T0).unwrap();
    assert_eq!(client.subprotocol(), Some("chat"));
    assert!(matches!(
        client.poll_event(),
        Some(Event::Connected { subprotocol: Some(p) }) if p == "chat"
    ));
    client.send(Message::text("hello")).unwrap();
    let wire = drain_output(&mut client);
    feed(&mut server, T0, &wire, &Chunking::Whole);
    let (messages, _) = read_all(&mut server);
    assert_eq!(messages, [Message::text("hello")]);
}

#[cfg(feature = "deflate")]
#[test]
fn permessage_deflate_is_set_up_from_the_agreed_extensions() {
    let mut config = quiet();
    let mut deflate = tether::deflate::DeflateConfig::default();
    deflate.threshold = 0;
    config.deflate = Some(deflate);
    let n = negotiated(None, &["permessage-deflate"]);
    let mut client =
        Connection::open_negotiated(Role::Client, &n, config.clone(), rng(1), T0).unwrap();
    let mut server = Connection::open_negotiated(Role::Server, &n, config, rng(2), T0).unwrap();
    let text = "compress me ".repeat(100);
    client.send(Message::text(text.as_str())).unwrap();
    let wire = drain_output(&mut client);
    assert!(wire[0] & 0x40 != 0, "the frame is compressed (RSV1)");
    assert!(
        wire.len() < text.len() / 4,
        "{} bytes on the wire",
        wire.len()
    );
    feed(&mut server, T0, &wire, &Chunking::Whole);
    let (messages, _) = read_all(&mut server);
    assert_eq!(messages, [Message::text(text.as_str())]);

    // permessage-deflate accepted twice is refused (RFC 7692 §5.1).
    let bad = negotiated(None, &["permessage-deflate", "permessage-deflate"]);
    let mut c = quiet();
    c.deflate = Some(Default::default());
    assert!(Connection::open_negotiated(Role::Client, &bad, c, rng(3), T0).is_err());
}
