//! The opening handshake in both roles, subprotocol selection, and echo of text and binary
//! messages of 0 B, 125 B, 64 KiB and 1 MiB.

use tether::handshake::{ClientRequest, ServerPolicy, accept_key};
use tether::{CloseCode, Config, Initiator, Message};
use tether_io::{ClientConfig, ServerConfig};

use crate::frame::op;
use crate::harness::Adapter;
use crate::raw::{End, Head, KEY, RawPeer};
use crate::setup::{LIMIT, Serving, echo, listener, payload, spawn};

/// The payload sizes every echo test sends, in both kinds: empty, the largest control-sized
/// payload, a 16-bit length and a 64-bit length.
const SIZES: [usize; 4] = [0, 125, 64 << 10, 1 << 20];

/// Server role: a raw client offering `chat.v1, chat.v2` gets a valid 101 (RFC 6455 §4.2.2)
/// with the server's preferred `chat.v2`; every size comes back whole, unmasked; a Close from
/// the client is echoed and the server closes the TCP connection first.
pub fn handshake_and_echo_server_role<A: Adapter>() {
    let policy = ServerPolicy::new()
        .subprotocol("chat.v2")
        .subprotocol("chat.v1");
    let serving = Serving::start::<A>(ServerConfig::new(Config::default(), policy));
    let (mut peer, response) = RawPeer::connect(serving.addr, &["chat.v1", "chat.v2"], None);
    assert_eq!(response.status(), 101, "{}: {response:?}", A::NAME);
    assert_upgrade_headers(&response);
    let expected_accept = accept_key(KEY);
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some(expected_accept.as_str())
    );
    assert_eq!(response.header("sec-websocket-protocol"), Some("chat.v2"));
    let conn = serving.next();
    assert_eq!(conn.subprotocol().as_deref(), Some("chat.v2"));
    let echoing = echo(conn);

    echo_every_size(&mut peer);
    peer.send_close(1000, "done");
    let frame = peer.read_frame(LIMIT);
    assert_eq!(frame.close_status().map(|(code, _)| code), Some(1000));
    assert_eq!(
        peer.wait_end(LIMIT),
        Some(End::Eof),
        "{}: after the close handshake the server closes the TCP connection (RFC 6455 §7.1.1)",
        A::NAME
    );
    drop(peer);
    let closed = echoing.wait(LIMIT).expect("the connection ended");
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert_eq!(closed.reason, "done");
    assert!(closed.clean, "{}: {closed:?}", A::NAME);
    assert_eq!(closed.initiator, Initiator::Remote);
}

/// Client role: the request is a valid upgrade (RFC 6455 §4.1) carrying the path, query and
/// offered subprotocols; the server's choice is reported; every size comes back whole,
/// masked; the server's Close is echoed.
pub fn handshake_and_echo_client_role<A: Adapter>() {
    let listener = listener(None);
    let addr = listener.local_addr().expect("address");
    let request = ClientRequest::new(&format!("ws://{addr}/chat?room=1"))
        .expect("a valid URL")
        .subprotocol("chat.v1")
        .and_then(|r| r.subprotocol("chat.v2"))
        .expect("valid subprotocols");
    let connecting = spawn("connect", move || {
        A::connect(request, ClientConfig::default())
    });
    let (mut peer, request) = RawPeer::accept(&listener, LIMIT, |_| Some("chat.v2".into()));
    assert_eq!(request.start, "GET /chat?room=1 HTTP/1.1");
    assert_upgrade_headers(&request);
    assert!(request.header("host").is_some(), "no Host: {request:?}");
    assert_eq!(request.header("sec-websocket-version"), Some("13"));
    let key = request.header("sec-websocket-key").unwrap_or_default();
    assert!(
        key.len() == 24 && key.ends_with("=="),
        "{}: the key must be 16 bytes in base64: {key:?}",
        A::NAME
    );
    let offered: Vec<&str> = request
        .header("sec-websocket-protocol")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(offered, ["chat.v1", "chat.v2"]);
    let conn = connecting
        .wait(LIMIT)
        .unwrap_or_else(|e| panic!("{}: connect failed: {e}", A::NAME));
    assert_eq!(conn.subprotocol().as_deref(), Some("chat.v2"));
    let echoing = echo(conn);

    echo_every_size(&mut peer);
    peer.send_close(1000, "done");
    let frame = peer.read_frame(LIMIT);
    assert_eq!(frame.close_status().map(|(code, _)| code), Some(1000));
    drop(peer);
    let closed = echoing.wait(LIMIT).expect("the connection ended");
    assert_eq!(closed.code, CloseCode::NORMAL);
    assert_eq!(closed.reason, "done");
    assert!(closed.clean, "{}: {closed:?}", A::NAME);
    assert_eq!(closed.initiator, Initiator::Remote);
}

/// Both ends are the adapter: the client's offer meets the server's policy, every size goes
/// through, and the client's close is clean on both sides.
pub fn echo_between_two_adapter_ends<A: Adapter>() {
    let policy = ServerPolicy::new().subprotocol("chat");
    let serving = Serving::start::<A>(ServerConfig::new(Config::default(), policy));
    let request = serving
        .request()
        .subprotocol("chat")
        .expect("a subprotocol");
    let connecting = spawn("connect", move || {
        A::connect(request, ClientConfig::default())
    });
    let mut client = connecting
        .wait(LIMIT)
        .unwrap_or_else(|e| panic!("{}: connect failed: {e}", A::NAME));
    assert_eq!(client.subprotocol().as_deref(), Some("chat"));
    let server = serving.next();
    assert_eq!(server.subprotocol().as_deref(), Some("chat"));
    let echoing = echo(server);
    let client = spawn("client", move || {
        for size in SIZES {
            for text in [true, false] {
                let message = message(size, text);
                client.send(message.clone()).expect("send");
                let echoed = client.recv(LIMIT).expect("a message").expect("recv");
                assert!(echoed == message, "sent {message:?}, got back {echoed:?}");
            }
        }
        client.close(CloseCode::NORMAL, "done").expect("close")
    });
    let closed = client.wait(LIMIT);
    assert!(
        closed.clean && closed.code == CloseCode::NORMAL,
        "{}: {closed:?}",
        A::NAME
    );
    assert_eq!(closed.initiator, Initiator::Local);
    let closed = echoing.wait(LIMIT).expect("the server side ended");
    assert!(
        closed.clean && closed.code == CloseCode::NORMAL,
        "{}: {closed:?}",
        A::NAME
    );
    assert_eq!(closed.reason, "done");
}

/// Both ends are the adapter with permessage-deflate on (in a build with the `deflate`
/// feature; plain messages otherwise): messages that inflate to many times one inflation step
/// (5 MiB of zeros arrive as a few KiB) are stepped through by the driver on both sides and
/// come back whole and in order with the small ones around them.
pub fn compressed_echo_between_two_adapter_ends<A: Adapter>() {
    let mut config = Config::default();
    config.deflate = Some(tether::deflate::DeflateConfig::default());
    let serving = Serving::start::<A>(ServerConfig::new(config.clone(), ServerPolicy::new()));
    let request = serving.request();
    let client_config = ClientConfig::default().config(config);
    let connecting = spawn("connect", move || A::connect(request, client_config));
    let mut client = connecting
        .wait(LIMIT)
        .unwrap_or_else(|e| panic!("{}: connect failed: {e}", A::NAME));
    let echoing = echo(serving.next());
    let client = spawn("client", move || {
        let messages = [
            Message::Binary(vec![0u8; 5 << 20].into()),
            message(100, true),
            Message::Text(
                String::from_utf8(vec![b'a'; 3 << 20])
                    .expect("ascii")
                    .into(),
            ),
            message(16 << 10, true),
        ];
        for m in &messages {
            client.send(m.clone()).expect("send");
        }
        for m in &messages {
            let echoed = client.recv(LIMIT).expect("a message").expect("recv");
            assert!(
                echoed == *m,
                "sent {} bytes, got back {} bytes",
                m.len(),
                echoed.len()
            );
        }
        client.close(CloseCode::NORMAL, "done").expect("close")
    });
    let closed = client.wait(LIMIT);
    assert!(closed.clean, "{}: {closed:?}", A::NAME);
    let closed = echoing.wait(LIMIT).expect("the server side ended");
    assert!(closed.clean, "{}: {closed:?}", A::NAME);
}

fn message(size: usize, text: bool) -> Message {
    let bytes = payload(size, text);
    if text {
        Message::text(String::from_utf8(bytes).expect("ASCII"))
    } else {
        Message::binary(bytes)
    }
}

/// The raw peer sends each size in both kinds and expects each back, whole, in one frame.
fn echo_every_size(peer: &mut RawPeer) {
    for size in SIZES {
        for (text, opcode) in [(true, op::TEXT), (false, op::BINARY)] {
            let sent = payload(size, text);
            peer.send(opcode, &sent);
            let frame = peer.read_frame(LIMIT);
            assert!(frame.fin, "an echo of {size} bytes came fragmented");
            assert_eq!(
                frame.opcode, opcode,
                "the echo of {size} bytes changed kind"
            );
            assert_eq!(frame.payload.len(), size, "the echo changed length");
            assert!(
                frame.payload == sent,
                "the echo of {size} bytes changed content"
            );
        }
    }
}

fn assert_upgrade_headers(head: &Head) {
    let upgrade = head.header("upgrade").unwrap_or_default();
    assert!(upgrade.eq_ignore_ascii_case("websocket"), "{head:?}");
    let connection = head.header("connection").unwrap_or_default();
    assert!(
        connection
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade")),
        "{head:?}"
    );
}
