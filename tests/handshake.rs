//! The opening handshake (RFC 6455 §4): both sides, every refusal and failure, incremental
//! parsing, limits, and a property test that whatever the client builds the server accepts.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use tether::handshake::{
    Accept, AcceptError, ClientHandshake, ClientRequest, HandshakeError, HandshakeLimits,
    HeaderError, HttpVersion, Reject, Request, Response, ServerHandshake, ServerPolicy, UrlError,
    WsUrl, accept_key, validate_request, validate_response, write_accept, write_reject,
};

/// The nonce of RFC 6455 §1.3, whose key and accept values the RFC prints.
const NONCE: [u8; 16] = *b"the sample nonce";
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn limits() -> HandshakeLimits {
    HandshakeLimits::default()
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Feeds `bytes` to a server handshake in chunks of `chunk` bytes; returns the outcome and the
/// input buffer as it was left.
fn server_feed(
    bytes: &[u8],
    chunk: usize,
    limits: &HandshakeLimits,
) -> (Result<Option<Request>, Reject>, BytesMut) {
    let mut server = ServerHandshake::new(limits);
    let mut input = BytesMut::new();
    for piece in bytes.chunks(chunk.max(1)) {
        input.extend_from_slice(piece);
        match server.handle(&mut input) {
            Ok(None) => continue,
            other => return (other, input),
        }
    }
    if bytes.is_empty() {
        return (server.handle(&mut input), input);
    }
    (Ok(None), input)
}

fn server_all(bytes: &[u8]) -> Result<Option<Request>, Reject> {
    server_feed(bytes, usize::MAX, &limits()).0
}

fn reject_of(bytes: &[u8]) -> Reject {
    match server_all(bytes) {
        Err(reject) => reject,
        Ok(other) => panic!("expected a refusal, got {other:?}"),
    }
}

fn has_header(reject: &Reject, name: &str, value: &str) -> bool {
    reject
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
}

fn written_reject(reject: &Reject) -> String {
    let mut out = BytesMut::new();
    write_reject(reject, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

/// A valid request head with `extra` lines inserted before the final empty line.
fn request_with(extra: &str) -> String {
    format!(
        "GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         {extra}\r\n"
    )
}

/// A request head built from `lines` exactly.
fn head(lines: &[&str]) -> String {
    let mut s = String::new();
    for line in lines {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s
}

fn client_for(request: ClientRequest) -> ClientHandshake {
    ClientHandshake::new(request, NONCE, &limits())
}

fn plain_client() -> ClientHandshake {
    client_for(ClientRequest::new("ws://example.com/chat").unwrap())
}

/// Feeds `bytes` to a client handshake in chunks of `chunk` bytes.
fn client_feed(
    client: &mut ClientHandshake,
    bytes: &[u8],
    chunk: usize,
) -> (Result<Option<Response>, HandshakeError>, BytesMut) {
    let mut input = BytesMut::new();
    for piece in bytes.chunks(chunk.max(1)) {
        input.extend_from_slice(piece);
        match client.handle(&mut input) {
            Ok(None) => continue,
            other => return (other, input),
        }
    }
    (Ok(None), input)
}

fn client_error(client: &mut ClientHandshake, bytes: &[u8]) -> HandshakeError {
    match client_feed(client, bytes, usize::MAX).0 {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

/// A 101 head with `extra` lines added.
fn response_with(extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
    )
}

// ---------------------------------------------------------------------------------------------
// RFC samples and the wire format

#[test]
fn rfc_6455_key_and_accept_sample() {
    assert_eq!(accept_key(KEY), ACCEPT);
    assert_eq!(accept_key(KEY.as_bytes()), ACCEPT);
    assert_eq!(plain_client().key(), KEY);
}

#[test]
fn client_writes_the_request() {
    let request = ClientRequest::new("ws://[::1]:9001/chat?x=1")
        .unwrap()
        .subprotocol("v2.chat")
        .unwrap()
        .subprotocol("v1.chat")
        .unwrap()
        .extension("permessage-deflate; client_max_window_bits")
        .unwrap()
        .header("Origin", "http://localhost")
        .unwrap()
        .header("Authorization", "Bearer t")
        .unwrap();
    let mut out = BytesMut::new();
    client_for(request).write_request(&mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "GET /chat?x=1 HTTP/1.1\r\n\
         Host: [::1]:9001\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: v2.chat, v1.chat\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         Origin: http://localhost\r\n\
         Authorization: Bearer t\r\n\
         \r\n"
    );
}

#[test]
fn client_request_without_offers_omits_their_headers() {
    let mut out = BytesMut::new();
    plain_client().write_request(&mut out);
    let text = std::str::from_utf8(&out).unwrap();
    assert!(text.starts_with("GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
    assert!(!text.contains("Sec-WebSocket-Protocol"));
    assert!(!text.contains("Sec-WebSocket-Extensions"));
}

#[test]
fn server_writes_the_accept() {
    let request = server_all(
        request_with(
            "Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: x-a; p=1\r\n",
        )
        .as_bytes(),
    )
    .unwrap()
    .unwrap();
    let accept = Accept::new()
        .subprotocol("chat")
        .extension("x-a; p=1")
        .header("Set-Cookie", "id=1")
        .header("Sec-WebSocket-Accept", "forged")
        .header("X-Bad", "a\r\nb");
    let mut out = BytesMut::new();
    write_accept(&request, &accept, &mut out).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Sec-WebSocket-Protocol: chat\r\n\
         Sec-WebSocket-Extensions: x-a; p=1\r\n\
         Set-Cookie: id=1\r\n\
         \r\n"
    );
}

#[test]
fn write_accept_refuses_what_was_not_offered() {
    let request = server_all(request_with("Sec-WebSocket-Protocol: chat\r\n").as_bytes())
        .unwrap()
        .unwrap();
    let mut out = BytesMut::new();
    assert_eq!(
        write_accept(&request, &Accept::new().subprotocol("Chat"), &mut out),
        Err(AcceptError::UnofferedSubprotocol("Chat".into()))
    );
    assert_eq!(
        write_accept(
            &request,
            &Accept::new().extension("permessage-deflate"),
            &mut out
        ),
        Err(AcceptError::UnofferedExtension("permessage-deflate".into()))
    );
    assert!(out.is_empty(), "nothing is written on error");
    let request = server_all(request_with("").as_bytes()).unwrap().unwrap();
    assert_eq!(
        write_accept(&request, &Accept::new().subprotocol("chat"), &mut out),
        Err(AcceptError::UnofferedSubprotocol("chat".into()))
    );
}

// ---------------------------------------------------------------------------------------------
// Server: the parsed request

#[test]
fn server_parses_the_request() {
    let text = request_with(
        "origin: https://app.example.com\r\nsec-websocket-protocol: a, b\r\n\
         SEC-WEBSOCKET-PROTOCOL: c\r\nSec-WebSocket-Extensions: permessage-deflate; \
         client_max_window_bits, x-q; v=\"a,b\"\r\nCookie: s=1\r\n",
    );
    let request = server_all(text.as_bytes()).unwrap().unwrap();
    assert_eq!(request.method(), "GET");
    assert_eq!(request.target(), "/chat?room=1");
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.query(), Some("room=1"));
    assert_eq!(request.version(), HttpVersion::Http11);
    assert_eq!(request.key(), KEY);
    assert_eq!(request.origin(), Some("https://app.example.com"));
    assert_eq!(request.subprotocols(), ["a", "b", "c"]);
    assert_eq!(
        request.extensions(),
        [
            "permessage-deflate; client_max_window_bits",
            "x-q; v=\"a,b\""
        ]
    );
    assert_eq!(request.header("cookie"), Some("s=1"));
    assert_eq!(request.header("HOST"), Some("example.com"));
    assert_eq!(request.headers().len(), 10);
    assert_eq!(request.choose_subprotocol(&["c", "a"]), Some("c"));
    assert_eq!(request.choose_subprotocol(&["z"]), None);
    let owned: Vec<String> = vec!["b".into()];
    assert_eq!(request.choose_subprotocol(&owned), Some("b"));
}

#[test]
fn server_accepts_case_insensitive_names_and_connection_lists() {
    let text = head(&[
        "GET / HTTP/1.1",
        "host: h",
        "UPGRADE: WebSocket",
        "connection: keep-alive, Upgrade",
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
        "SEC-WEBSOCKET-VERSION: 13",
    ]);
    let request = server_all(text.as_bytes()).unwrap().unwrap();
    assert_eq!(request.path(), "/");
    assert_eq!(request.query(), None);
    // Repeated Connection headers combine too.
    let text = head(&[
        "GET / HTTP/1.1",
        "Host: h",
        "Upgrade: websocket",
        "Connection: keep-alive",
        "Connection: upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]);
    assert!(server_all(text.as_bytes()).unwrap().is_some());
}

#[test]
fn server_byte_at_a_time_equals_all_at_once_and_keeps_frames() {
    let mut bytes =
        request_with("Sec-WebSocket-Protocol: chat\r\nOrigin: http://o\r\n").into_bytes();
    let frames = [
        0x81u8,
        0x85,
        1,
        2,
        3,
        4,
        b'h' ^ 1,
        b'e' ^ 2,
        b'l' ^ 3,
        b'l' ^ 4,
        b'o' ^ 1,
    ];
    bytes.extend_from_slice(&frames);
    let (whole, rest_whole) = server_feed(&bytes, usize::MAX, &limits());
    let whole = whole.unwrap().unwrap();
    assert_eq!(&rest_whole[..], &frames);
    for chunk in [1, 2, 3, 7, 64] {
        let (result, rest) = server_feed(&bytes, chunk, &limits());
        let request = result.unwrap().unwrap();
        assert_eq!(request, whole, "chunk {chunk}");
        // The head completes before the frames have all arrived when chunks are small; what
        // remains is exactly the start of the frames.
        assert!(frames.starts_with(&rest[..]), "chunk {chunk}");
    }
}

#[test]
fn server_is_done_after_a_result() {
    let mut server = ServerHandshake::new(&limits());
    let mut input = BytesMut::from(request_with("").as_bytes());
    assert!(server.handle(&mut input).unwrap().is_some());
    input.extend_from_slice(request_with("").as_bytes());
    let before = input.clone();
    assert!(server.handle(&mut input).unwrap().is_none());
    assert_eq!(input, before);
}

// ---------------------------------------------------------------------------------------------
// Server: every refusal

#[test]
fn refuses_a_method_other_than_get_with_405_and_allow() {
    let text = request_with("").replacen("GET", "POST", 1);
    let reject = reject_of(text.as_bytes());
    assert_eq!(reject.status, 405);
    assert!(has_header(&reject, "Allow", "GET"));
    assert!(written_reject(&reject).starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
}

#[test]
fn refuses_other_http_versions() {
    let reject = reject_of(
        request_with("")
            .replacen("HTTP/1.1", "HTTP/1.0", 1)
            .as_bytes(),
    );
    assert_eq!(reject.status, 505);
    let reject = reject_of(
        request_with("")
            .replacen("HTTP/1.1", "HTTP/2.0", 1)
            .as_bytes(),
    );
    assert_eq!(reject.status, 505);
    let reject = reject_of(
        request_with("")
            .replacen("HTTP/1.1", "HTTX/1.1", 1)
            .as_bytes(),
    );
    assert_eq!(reject.status, 400);
}

#[test]
fn refuses_garbage_with_400() {
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
        b"hello\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"\r\n\r\n",
    ] {
        let reject = reject_of(garbage);
        assert_eq!(reject.status, 400, "{garbage:?}");
    }
    // An absolute-form target is not a resource name.
    let text = request_with("").replacen("/chat?room=1", "http://example.com/chat", 1);
    assert_eq!(reject_of(text.as_bytes()).status, 400);
}

#[test]
fn refuses_a_missing_or_repeated_host_with_400() {
    let text = head(&[
        "GET / HTTP/1.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]);
    let reject = reject_of(text.as_bytes());
    assert_eq!(reject.status, 400);
    assert!(reject.reason.contains("Host"), "{}", reject.reason);
    let reject = reject_of(request_with("Host: other\r\n").as_bytes());
    assert_eq!(reject.status, 400);
}

#[test]
fn refuses_a_missing_upgrade_with_426() {
    let text = head(&[
        "GET / HTTP/1.1",
        "Host: h",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]);
    let reject = reject_of(text.as_bytes());
    assert_eq!(reject.status, 426);
    assert!(has_header(&reject, "Upgrade", "websocket"));
    let written = written_reject(&reject);
    assert!(
        written.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{written}"
    );
    assert!(
        written.contains("\r\nConnection: Upgrade, close\r\n"),
        "{written}"
    );
    assert!(written.contains("\r\nUpgrade: websocket\r\n"), "{written}");
}

#[test]
fn refuses_an_upgrade_to_something_else_with_400() {
    let text = request_with("").replacen("Upgrade: websocket", "Upgrade: h2c", 1);
    assert_eq!(reject_of(text.as_bytes()).status, 400);
}

#[test]
fn refuses_a_connection_header_without_upgrade_with_400() {
    let text = request_with("").replacen("Connection: Upgrade", "Connection: keep-alive", 1);
    assert_eq!(reject_of(text.as_bytes()).status, 400);
    let text = request_with("").replacen("Connection: Upgrade\r\n", "", 1);
    assert_eq!(reject_of(text.as_bytes()).status, 400);
}

#[test]
fn refuses_a_bad_key_with_400() {
    for key in [
        "dGhlIHNhbXBsZSBub25jZQ",   // no padding
        "dGhlIHNhbXBsZSBub25jZXg=", // 17 bytes
        "dGhlIHNhbXBs",             // 9 bytes
        "!!!!!!!!!!!!!!!!!!!!!!==", // not base64
        "",
    ] {
        let text = request_with("").replacen(KEY, key, 1);
        let reject = reject_of(text.as_bytes());
        assert_eq!(reject.status, 400, "{key:?}");
    }
    let text = request_with("").replacen(&format!("Sec-WebSocket-Key: {KEY}\r\n"), "", 1);
    assert_eq!(reject_of(text.as_bytes()).status, 400);
    let text = request_with(&format!("Sec-WebSocket-Key: {KEY}\r\n"));
    assert_eq!(reject_of(text.as_bytes()).status, 400);
}

#[test]
fn refuses_another_version_with_426_and_the_supported_one() {
    for replacement in [
        "Sec-WebSocket-Version: 8\r\n",
        "Sec-WebSocket-Version: 13, 8\r\n",
        "",
    ] {
        let text = request_with("").replacen("Sec-WebSocket-Version: 13\r\n", replacement, 1);
        let reject = reject_of(text.as_bytes());
        assert_eq!(reject.status, 426, "{replacement:?}");
        assert!(has_header(&reject, "Sec-WebSocket-Version", "13"));
        assert!(written_reject(&reject).contains("\r\nSec-WebSocket-Version: 13\r\n"));
    }
}

#[test]
fn refuses_invalid_offers_with_400() {
    let reject = reject_of(request_with("Sec-WebSocket-Protocol: chat, a b\r\n").as_bytes());
    assert_eq!(reject.status, 400);
    let reject = reject_of(request_with("Sec-WebSocket-Extensions: ;x\r\n").as_bytes());
    assert_eq!(reject.status, 400);
    let reject = reject_of(request_with("Origin: http://a\r\nOrigin: http://b\r\n").as_bytes());
    assert_eq!(reject.status, 400);
}

#[test]
fn refuses_an_oversized_head_with_431() {
    let small = HandshakeLimits::new(256, 64);
    let text = request_with(&format!("X-Pad: {}\r\n", "a".repeat(300)));
    let (result, input) = server_feed(text.as_bytes(), usize::MAX, &small);
    let reject = result.unwrap_err();
    assert_eq!(reject.status, 431);
    assert_eq!(input.len(), text.len(), "input is left as it was");
    assert!(
        written_reject(&reject).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n")
    );
    // A head of exactly the limit passes.
    let text = request_with("");
    let exact = HandshakeLimits::new(text.len(), 64);
    assert!(server_feed(text.as_bytes(), 1, &exact).0.unwrap().is_some());
    let short = HandshakeLimits::new(text.len() - 1, 64);
    assert_eq!(
        server_feed(text.as_bytes(), 1, &short)
            .0
            .unwrap_err()
            .status,
        431
    );
}

#[test]
fn refuses_too_many_headers_with_431() {
    let extra: String = (0..10).map(|i| format!("X-{i}: v\r\n")).collect();
    let text = request_with(&extra);
    // 5 handshake fields + 10 extra.
    let few = HandshakeLimits::new(16 * 1024, 14);
    let (result, _) = server_feed(text.as_bytes(), 1, &few);
    assert_eq!(result.unwrap_err().status, 431);
    let enough = HandshakeLimits::new(16 * 1024, 15);
    assert!(
        server_feed(text.as_bytes(), 1, &enough)
            .0
            .unwrap()
            .is_some()
    );
}

#[test]
fn refuses_an_unlisted_origin_with_403() {
    let policy = ServerPolicy::new()
        .allow_origin("https://app.example.com")
        .unwrap()
        .allow_origin("http://localhost:3000")
        .unwrap();
    let check = |origin: Option<&str>| {
        let extra = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        let request = server_all(request_with(&extra).as_bytes())
            .unwrap()
            .unwrap();
        policy.check(&request).map_err(|r| r.status)
    };
    assert_eq!(check(Some("https://app.example.com")), Ok(()));
    assert_eq!(check(Some("HTTPS://APP.EXAMPLE.COM:443")), Ok(()));
    assert_eq!(check(Some("http://localhost:3000")), Ok(()));
    assert_eq!(check(Some("http://app.example.com")), Err(403));
    assert_eq!(check(Some("https://app.example.com:8443")), Err(403));
    assert_eq!(check(Some("https://evil.example.com")), Err(403));
    assert_eq!(check(Some("http://localhost")), Err(403));
    assert_eq!(check(Some("null")), Err(403));
    assert_eq!(check(Some("garbage")), Err(403));
    assert_eq!(check(None), Err(403));
    let lenient = policy.clone().allow_missing_origin(true);
    let request = server_all(request_with("").as_bytes()).unwrap().unwrap();
    assert_eq!(lenient.check(&request), Ok(()));
    // An empty allowlist allows anything.
    let open = ServerPolicy::new();
    assert_eq!(open.check_origin(Some("https://anything")), Ok(()));
    assert_eq!(open.check_origin(None), Ok(()));
    assert!(ServerPolicy::new().allow_origin("not an origin").is_err());
}

#[test]
fn refuses_through_the_auth_hook_with_401() {
    let policy =
        ServerPolicy::new().authenticate(|request| match request.header("Authorization") {
            Some("Bearer good") => Ok(()),
            _ => Err(Reject::new(401)
                .reason("bad token")
                .header("WWW-Authenticate", "Bearer")),
        });
    let good = server_all(request_with("Authorization: Bearer good\r\n").as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(policy.check(&good), Ok(()));
    let bad = server_all(request_with("Authorization: Bearer bad\r\n").as_bytes())
        .unwrap()
        .unwrap();
    let reject = policy.check(&bad).unwrap_err();
    assert_eq!(reject.status, 401);
    assert_eq!(reject.reason, "bad token");
    assert_eq!(
        written_reject(&reject),
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\
         WWW-Authenticate: Bearer\r\n\r\n"
    );
    assert_eq!(
        reject.to_string(),
        "handshake rejected with 401 Unauthorized: bad token"
    );
}

#[test]
fn origin_runs_before_auth() {
    let policy = ServerPolicy::new()
        .allow_origin("https://a.example")
        .unwrap()
        .authenticate(|_| Err(Reject::new(401)));
    let request = server_all(request_with("Origin: https://b.example\r\n").as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(policy.check(&request).unwrap_err().status, 403);
}

#[test]
fn policy_picks_the_servers_preferred_subprotocol() {
    let policy = ServerPolicy::new()
        .subprotocol("v3")
        .subprotocol("v2")
        .subprotocol("v1");
    let request = server_all(request_with("Sec-WebSocket-Protocol: v1, v2\r\n").as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(
        policy.accept_for(&request).subprotocol.as_deref(),
        Some("v2")
    );
    let request = server_all(request_with("Sec-WebSocket-Protocol: v9\r\n").as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(policy.accept_for(&request).subprotocol, None);
}

#[test]
fn protocol_refusals_carry_a_text_body() {
    let reject = reject_of(request_with("").replacen("GET", "PUT", 1).as_bytes());
    let written = written_reject(&reject);
    assert!(
        written.contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{written}"
    );
    assert!(
        written.ends_with(&format!("\r\n\r\n{}\n", reject.reason)),
        "{written}"
    );
}

// ---------------------------------------------------------------------------------------------
// Client: success

#[test]
fn client_completes_and_keeps_frames() {
    let request = ClientRequest::new("ws://example.com/chat")
        .unwrap()
        .subprotocol("chat")
        .unwrap()
        .subprotocol("superchat")
        .unwrap()
        .extension("permessage-deflate; client_max_window_bits")
        .unwrap();
    let mut bytes = response_with(
        "sec-websocket-protocol: superchat\r\nSEC-WEBSOCKET-EXTENSIONS: permessage-deflate; \
         server_no_context_takeover\r\nSet-Cookie: a=1\r\n",
    )
    .into_bytes();
    let frames = [0x81u8, 0x02, b'h', b'i', 0x88, 0x00];
    bytes.extend_from_slice(&frames);
    let (whole, rest) = client_feed(&mut client_for(request.clone()), &bytes, usize::MAX);
    let whole = whole.unwrap().unwrap();
    assert_eq!(&rest[..], &frames);
    assert_eq!(whole.status(), 101);
    assert_eq!(whole.subprotocol(), Some("superchat"));
    assert_eq!(
        whole.extensions(),
        ["permessage-deflate; server_no_context_takeover"]
    );
    assert_eq!(whole.header("set-cookie"), Some("a=1"));
    for chunk in [1, 2, 5, 13] {
        let (result, rest) = client_feed(&mut client_for(request.clone()), &bytes, chunk);
        assert_eq!(result.unwrap().unwrap(), whole, "chunk {chunk}");
        assert!(frames.starts_with(&rest[..]), "chunk {chunk}");
    }
}

#[test]
fn client_accepts_connection_lists_and_case() {
    let text = "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n\
                CONNECTION: keep-alive, Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let (result, rest) = client_feed(&mut plain_client(), text.as_bytes(), 1);
    let response = result.unwrap().unwrap();
    assert_eq!(response.subprotocol(), None);
    assert!(response.extensions().is_empty());
    assert!(rest.is_empty());
}

#[test]
fn client_combines_repeated_protocol_headers() {
    let request = ClientRequest::new("ws://h/")
        .unwrap()
        .subprotocol("a")
        .unwrap()
        .subprotocol("b")
        .unwrap();
    // An empty field plus one naming the protocol: one selection.
    let text = response_with("Sec-WebSocket-Protocol:\r\nSec-WebSocket-Protocol: b\r\n");
    let response = client_feed(&mut client_for(request.clone()), text.as_bytes(), 3)
        .0
        .unwrap()
        .unwrap();
    assert_eq!(response.subprotocol(), Some("b"));
    // Two selections is an error.
    let text = response_with("Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n");
    assert!(matches!(
        client_error(&mut client_for(request), text.as_bytes()),
        HandshakeError::MultipleSubprotocols(_)
    ));
}

#[test]
fn client_skips_interim_responses() {
    let mut bytes =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n".to_vec();
    bytes.extend_from_slice(response_with("X-Final: yes\r\n").as_bytes());
    bytes.extend_from_slice(b"\x81\x00");
    for chunk in [1, 7, usize::MAX] {
        let (result, rest) = client_feed(&mut plain_client(), &bytes, chunk);
        let response = result.unwrap().unwrap();
        assert_eq!(response.header("x-final"), Some("yes"));
        assert!(response.header("link").is_none());
        assert!(b"\x81\x00".starts_with(&rest[..]), "chunk {chunk}");
    }
    // Interim responses count against the head limit.
    let interim = "HTTP/1.1 100 Continue\r\n\r\n".repeat(10);
    let text = format!("{interim}{}", response_with(""));
    let limits = HandshakeLimits::new(text.len() - 1, 64);
    let mut client = ClientHandshake::new(ClientRequest::new("ws://h/").unwrap(), NONCE, &limits);
    let (result, _) = client_feed(&mut client, text.as_bytes(), 1);
    assert_eq!(
        result.unwrap_err(),
        HandshakeError::HeadTooLarge {
            limit: text.len() - 1
        }
    );
    let limits = HandshakeLimits::new(text.len(), 64);
    let mut client = ClientHandshake::new(ClientRequest::new("ws://h/").unwrap(), NONCE, &limits);
    let (result, rest) = client_feed(&mut client, text.as_bytes(), 1);
    assert!(result.unwrap().is_some());
    assert!(rest.is_empty());
}

#[test]
fn client_is_done_after_a_result() {
    let mut client = plain_client();
    let mut input = BytesMut::from(response_with("").as_bytes());
    assert!(client.handle(&mut input).unwrap().is_some());
    input.extend_from_slice(b"HTTP/1.1 500 x\r\n\r\n");
    let before = input.clone();
    assert!(client.handle(&mut input).unwrap().is_none());
    assert_eq!(input, before);
    assert_eq!(client.handle_eof(&mut input), HandshakeError::UnexpectedEof);
}

// ---------------------------------------------------------------------------------------------
// Client: every failure

#[test]
fn client_reports_a_refusal_with_its_body() {
    let text = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 12\r\n\r\n\
                bad token!\r\nNEXT";
    for chunk in [1, 4, usize::MAX] {
        let mut client = plain_client();
        let (result, input) = client_feed(&mut client, text.as_bytes(), chunk);
        let error = result.unwrap_err();
        assert_eq!(error.http_status(), Some(401));
        assert_eq!(
            error.to_string(),
            "server rejected the handshake: 401 Unauthorized"
        );
        match error {
            HandshakeError::Rejected {
                status,
                reason,
                headers,
                body,
            } => {
                assert_eq!(status, 401);
                assert_eq!(reason, "Unauthorized");
                assert_eq!(headers.get("www-authenticate"), Some("Bearer"));
                assert_eq!(&body[..], b"bad token!\r\n");
            }
            other => panic!("{other:?}"),
        }
        // The error arrives as soon as the announced body has; the input is untouched.
        assert!(text.as_bytes().starts_with(&input));
        assert!(input.len() >= text.len() - 4);
    }
}

#[test]
fn client_refusal_bodies_are_bounded() {
    let body = "x".repeat(5000);
    let text = format!("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5000\r\n\r\n{body}");
    let (result, input) = client_feed(&mut plain_client(), text.as_bytes(), 1);
    match result.unwrap_err() {
        HandshakeError::Rejected {
            status: 503, body, ..
        } => assert_eq!(body.len(), 1024),
        other => panic!("{other:?}"),
    }
    // It stopped waiting once 1 KiB of body had arrived.
    assert_eq!(input.len(), text.len() - 5000 + 1024);
}

#[test]
fn client_refusal_without_length_waits_for_eof() {
    let text = "HTTP/1.1 403 Nope\r\nContent-Type: text/plain\r\n\r\nforbidden";
    let mut client = plain_client();
    let (result, mut input) = client_feed(&mut client, text.as_bytes(), 1);
    assert!(matches!(result, Ok(None)));
    match client.handle_eof(&mut input) {
        HandshakeError::Rejected {
            status: 403,
            reason,
            body,
            ..
        } => {
            assert_eq!(reason, "Nope");
            assert_eq!(&body[..], b"forbidden");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn client_refusal_with_chunked_body_is_dechunked() {
    let text = "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n\
                4\r\nbad \r\n7\r\nrequest\r\n0\r\n\r\n";
    for chunk in [1, usize::MAX] {
        let (result, _) = client_feed(&mut plain_client(), text.as_bytes(), chunk);
        match result.unwrap_err() {
            HandshakeError::Rejected {
                status: 400, body, ..
            } => {
                assert_eq!(&body[..], b"bad request")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn client_refusal_without_body_is_immediate() {
    let text = "HTTP/1.1 204 No Content\r\n\r\n";
    let error = client_error(&mut plain_client(), text.as_bytes());
    assert_eq!(error.http_status(), Some(204));
    // A status line without a reason phrase gets the standard one.
    let text = "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n";
    let error = client_error(&mut plain_client(), text.as_bytes());
    assert_eq!(
        error.to_string(),
        "server rejected the handshake: 404 Not Found"
    );
}

#[test]
fn client_reports_a_redirect_with_its_location() {
    let text = "HTTP/1.1 301 Moved Permanently\r\nLocation: wss://new.example.com/chat\r\n\
                Content-Length: 100\r\n\r\n";
    let error = client_error(&mut plain_client(), text.as_bytes());
    assert_eq!(
        error,
        HandshakeError::Redirect {
            status: 301,
            location: Some("wss://new.example.com/chat".into())
        }
    );
    assert_eq!(error.http_status(), Some(301));
    assert_eq!(
        error.to_string(),
        "server redirected the handshake with 301 to wss://new.example.com/chat"
    );
    let error = client_error(&mut plain_client(), b"HTTP/1.1 307 x\r\n\r\n");
    assert_eq!(
        error,
        HandshakeError::Redirect {
            status: 307,
            location: None
        }
    );
}

#[test]
fn client_checks_upgrade() {
    let text = response_with("").replacen("Upgrade: websocket\r\n", "", 1);
    assert_eq!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::MissingUpgrade
    );
    let text = response_with("").replacen("Upgrade: websocket", "Upgrade: h2c", 1);
    assert_eq!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::InvalidUpgrade("h2c".into())
    );
}

#[test]
fn client_checks_connection() {
    let text = response_with("").replacen("Connection: Upgrade\r\n", "", 1);
    assert_eq!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::MissingConnection
    );
    let text = response_with("").replacen("Connection: Upgrade", "Connection: keep-alive", 1);
    assert_eq!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::InvalidConnection("keep-alive".into())
    );
}

#[test]
fn client_checks_accept() {
    let text = response_with("").replacen(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"), "", 1);
    assert_eq!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::MissingAccept
    );
    let wrong = accept_key("AAAAAAAAAAAAAAAAAAAAAA==");
    let text = response_with("").replacen(ACCEPT, &wrong, 1);
    assert_eq!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::InvalidAccept(wrong)
    );
    let text = response_with(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"));
    assert!(matches!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::InvalidAccept(_)
    ));
}

#[test]
fn client_checks_subprotocols() {
    let offering = || {
        client_for(
            ClientRequest::new("ws://h/")
                .unwrap()
                .subprotocol("chat")
                .unwrap(),
        )
    };
    let text = response_with("Sec-WebSocket-Protocol: superchat\r\n");
    assert_eq!(
        client_error(&mut offering(), text.as_bytes()),
        HandshakeError::UnofferedSubprotocol("superchat".into())
    );
    // Subprotocol names compare exactly.
    let text = response_with("Sec-WebSocket-Protocol: Chat\r\n");
    assert_eq!(
        client_error(&mut offering(), text.as_bytes()),
        HandshakeError::UnofferedSubprotocol("Chat".into())
    );
    let text = response_with("Sec-WebSocket-Protocol: chat\r\n");
    assert_eq!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::UnexpectedSubprotocol("chat".into())
    );
    let text = response_with("Sec-WebSocket-Protocol: chat, chat\r\n");
    assert!(matches!(
        client_error(&mut offering(), text.as_bytes()),
        HandshakeError::MultipleSubprotocols(_)
    ));
    // No selection is fine.
    let response = client_feed(&mut offering(), response_with("").as_bytes(), 1)
        .0
        .unwrap()
        .unwrap();
    assert_eq!(response.subprotocol(), None);
}

#[test]
fn client_checks_extensions() {
    let text = response_with("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    assert_eq!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::UnofferedExtension("permessage-deflate".into())
    );
    let offering = client_for(
        ClientRequest::new("ws://h/")
            .unwrap()
            .extension("x-one; a=1")
            .unwrap(),
    );
    let text = response_with("Sec-WebSocket-Extensions: X-One; b=2, x-two\r\n");
    assert_eq!(
        client_error(&mut offering.clone(), text.as_bytes()),
        HandshakeError::UnofferedExtension("x-two".into())
    );
    let text = response_with("Sec-WebSocket-Extensions: X-One; b=2\r\n");
    let response = client_feed(&mut offering.clone(), text.as_bytes(), 1)
        .0
        .unwrap()
        .unwrap();
    assert_eq!(response.extensions(), ["X-One; b=2"]);
}

#[test]
fn client_requires_http_1_1_for_101() {
    let text = response_with("").replacen("HTTP/1.1", "HTTP/1.0", 1);
    assert_eq!(
        client_error(&mut plain_client(), text.as_bytes()),
        HandshakeError::UnsupportedVersion
    );
}

#[test]
fn client_limits_and_malformed_heads() {
    let small = HandshakeLimits::new(128, 4);
    let text = response_with(&format!("X-Pad: {}\r\n", "a".repeat(200)));
    let mut client = ClientHandshake::new(ClientRequest::new("ws://h/").unwrap(), NONCE, &small);
    let (result, input) = client_feed(&mut client, text.as_bytes(), 1);
    assert_eq!(
        result.unwrap_err(),
        HandshakeError::HeadTooLarge { limit: 128 }
    );
    assert_eq!(input.len(), 128);
    let text = response_with("A: 1\r\nB: 2\r\n");
    let few = HandshakeLimits::new(1024, 4);
    let mut client = ClientHandshake::new(ClientRequest::new("ws://h/").unwrap(), NONCE, &few);
    assert_eq!(
        client_error(&mut client, text.as_bytes()),
        HandshakeError::TooManyHeaders { limit: 4 }
    );
    for garbage in [
        &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
        b"HTTP/1.1 abc\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nX\r\n\r\n",
    ] {
        assert!(
            matches!(
                client_error(&mut plain_client(), garbage),
                HandshakeError::MalformedHttp(_)
            ),
            "{garbage:?}"
        );
    }
}

#[test]
fn client_eof_before_the_head() {
    let mut client = plain_client();
    let (result, mut input) = client_feed(&mut client, b"HTTP/1.1 101 Switching", 1);
    assert!(matches!(result, Ok(None)));
    assert_eq!(client.handle_eof(&mut input), HandshakeError::UnexpectedEof);
    assert_eq!(HandshakeError::Timeout.http_status(), None);
}

#[test]
fn server_refusals_read_back_by_the_client() {
    let reject = reject_of(
        request_with("")
            .replacen("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 7", 1)
            .as_bytes(),
    );
    let mut out = BytesMut::new();
    write_reject(&reject, &mut out);
    match client_error(&mut plain_client(), &out) {
        HandshakeError::Rejected {
            status,
            reason,
            headers,
            body,
        } => {
            assert_eq!(status, 426);
            assert_eq!(reason, "Upgrade Required");
            assert_eq!(headers.get("sec-websocket-version"), Some("13"));
            assert_eq!(body, reject.body);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Client request building and URLs

#[test]
fn client_request_builder_checks_its_input() {
    let base = || ClientRequest::new("ws://h/").unwrap();
    assert_eq!(
        base().header("Sec-WebSocket-Key", "x").unwrap_err(),
        HeaderError::Reserved("Sec-WebSocket-Key".into())
    );
    for reserved in [
        "host",
        "Upgrade",
        "CONNECTION",
        "sec-websocket-protocol",
        "Content-Length",
    ] {
        assert!(
            matches!(base().header(reserved, "x"), Err(HeaderError::Reserved(_))),
            "{reserved}"
        );
    }
    assert_eq!(
        base().header("X-A", "1\r\nHost: evil").unwrap_err(),
        HeaderError::InvalidValue("X-A".into())
    );
    assert_eq!(
        base().header("Bad Name", "1").unwrap_err(),
        HeaderError::InvalidName("Bad Name".into())
    );
    assert_eq!(
        base().subprotocol("a b").unwrap_err(),
        HeaderError::InvalidSubprotocol("a b".into())
    );
    assert_eq!(
        base().subprotocol("").unwrap_err(),
        HeaderError::InvalidSubprotocol("".into())
    );
    assert_eq!(
        base()
            .subprotocol("a")
            .unwrap()
            .subprotocol("a")
            .unwrap_err(),
        HeaderError::DuplicateSubprotocol("a".into())
    );
    assert_eq!(
        base().extension("; x").unwrap_err(),
        HeaderError::InvalidExtension("; x".into())
    );
    assert_eq!(
        base().extension("x\r\n").unwrap_err(),
        HeaderError::InvalidExtension("x\r\n".into())
    );
    let request = base()
        .header("Cookie", "a=1")
        .unwrap()
        .header("Cookie", "b=2")
        .unwrap();
    assert_eq!(request.headers().len(), 2);
    assert_eq!(request.url().host(), "h");
}

#[test]
fn urls() {
    let url = WsUrl::parse("ws://[::1]:9001/x").unwrap();
    assert_eq!(
        (url.host(), url.port(), url.host_header().as_str()),
        ("::1", 9001, "[::1]:9001")
    );
    let url = WsUrl::parse("wss://example.com").unwrap();
    assert_eq!(
        (url.port(), url.path_and_query(), url.host_header().as_str()),
        (443, "/", "example.com")
    );
    let url = WsUrl::parse("ws://example.com:80/a/b?c=d&e").unwrap();
    assert_eq!(
        (url.port(), url.path_and_query(), url.host_header().as_str()),
        (80, "/a/b?c=d&e", "example.com")
    );
    let url: WsUrl = "ws://example.com:8080".parse().unwrap();
    assert_eq!(url.host_header(), "example.com:8080");
    assert_eq!(WsUrl::parse("ws://h/#frag"), Err(UrlError::Fragment));
    let error = WsUrl::parse("http://h/").unwrap_err();
    assert_eq!(
        error,
        UrlError::HttpScheme {
            scheme: "http".into()
        }
    );
    assert!(error.to_string().contains("ws://"), "{error}");
    assert!(
        WsUrl::parse("https://h/")
            .unwrap_err()
            .to_string()
            .contains("wss://")
    );
    assert_eq!(
        WsUrl::parse("gopher://h/"),
        Err(UrlError::UnsupportedScheme("gopher".into()))
    );
    assert_eq!(WsUrl::parse("ws://"), Err(UrlError::MissingHost));
    assert_eq!(
        WsUrl::parse("ws://h:0/"),
        Err(UrlError::InvalidPort("0".into()))
    );
    assert_eq!(
        WsUrl::parse("ws://h:99999/"),
        Err(UrlError::InvalidPort("99999".into()))
    );
    assert_eq!(
        WsUrl::parse("ws://h:http/"),
        Err(UrlError::InvalidPort("http".into()))
    );
    assert_eq!(WsUrl::parse("ws://user@h/"), Err(UrlError::Userinfo));
    assert_eq!(WsUrl::parse(""), Err(UrlError::Empty));
    assert_eq!(
        ClientRequest::new("http://h/").unwrap_err(),
        UrlError::HttpScheme {
            scheme: "http".into()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Integrations: the rules as functions

#[test]
fn validate_functions_for_integrators() {
    let headers: Vec<(&str, &[u8])> = vec![
        ("host", b"h"),
        ("upgrade", b"websocket"),
        ("connection", b"upgrade"),
        ("sec-websocket-key", KEY.as_bytes()),
        ("sec-websocket-version", b"13"),
        ("sec-websocket-protocol", b"chat"),
    ];
    let info = validate_request("GET", HttpVersion::Http11, headers.iter().copied()).unwrap();
    assert_eq!(info.key.as_deref(), Some(KEY));
    assert_eq!(info.subprotocols, ["chat"]);
    let response: Vec<(&str, &[u8])> = vec![
        ("Upgrade", b"websocket"),
        ("Connection", b"Upgrade"),
        ("Sec-WebSocket-Accept", ACCEPT.as_bytes()),
        ("Sec-WebSocket-Protocol", b"chat"),
    ];
    let negotiated = validate_response(101, response, KEY, &["chat"], &[] as &[&str]).unwrap();
    assert_eq!(negotiated.subprotocol.as_deref(), Some("chat"));
}

// ---------------------------------------------------------------------------------------------
// Linear time: an endless header line is refused once the limit is passed

#[test]
fn endless_header_line_is_refused_at_the_limit() {
    let limits = HandshakeLimits::default();
    let mut line = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    line.resize(1 << 20, b'a');
    for chunk in [1usize, 100, 4096] {
        let mut server = ServerHandshake::new(&limits);
        let mut input = BytesMut::new();
        let mut fed = 0;
        let mut refused = None;
        for piece in line.chunks(chunk) {
            input.extend_from_slice(piece);
            fed += piece.len();
            if let Err(reject) = server.handle(&mut input) {
                refused = Some(reject);
                break;
            }
        }
        assert_eq!(refused.expect("refused").status, 431);
        // Refused by the chunk that reached the limit, not later.
        assert!(
            fed >= limits.max_head_size && fed < limits.max_head_size + chunk,
            "chunk {chunk}: fed {fed}"
        );
        // The same for a client reading an endless response header.
        let mut client = plain_client();
        let mut input = BytesMut::new();
        let mut fed = 0;
        let mut failed = None;
        for piece in line.chunks(chunk) {
            input.extend_from_slice(piece);
            fed += piece.len();
            if let Err(error) = client.handle(&mut input) {
                failed = Some(error);
                break;
            }
        }
        assert_eq!(
            failed,
            Some(HandshakeError::HeadTooLarge {
                limit: limits.max_head_size
            })
        );
        assert!(fed >= limits.max_head_size && fed < limits.max_head_size + chunk);
    }
}

#[test]
fn endless_stream_of_short_headers_is_refused_by_count() {
    let limits = HandshakeLimits::new(1 << 20, 64);
    let mut server = ServerHandshake::new(&limits);
    let mut input = BytesMut::new();
    input.put_slice(b"GET / HTTP/1.1\r\n");
    let mut sent = 0;
    let reject = loop {
        input.put_slice(b"a:b\r\n");
        sent += 1;
        if let Err(reject) = server.handle(&mut input) {
            break reject;
        }
        assert!(sent <= 65, "not refused after {sent} headers");
    };
    assert_eq!(reject.status, 431);
    assert_eq!(sent, 65);
}

// ---------------------------------------------------------------------------------------------
// Property: whatever the client builds, the server accepts, and the client agrees

const POOL: &[&str] = &[
    "chat",
    "superchat",
    "v1.proto",
    "v2.proto",
    "mqtt",
    "graphql-ws",
    "wamp.2.json",
];

fn subset() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(POOL, 0..=POOL.len())
        .prop_shuffle()
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

fn url() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,6}){0,2}",
        Just("127.0.0.1".to_string()),
        Just("[::1]".to_string()),
        Just("[2001:db8::7]".to_string()),
    ];
    (
        any::<bool>(),
        host,
        proptest::option::of(1u16..),
        "(/[A-Za-z0-9._~%-]{0,8}){0,3}",
        proptest::option::of("[A-Za-z0-9=&%/?]{0,12}"),
    )
        .prop_map(|(secure, host, port, path, query)| {
            let mut url = format!("{}://{host}", if secure { "wss" } else { "ws" });
            if let Some(port) = port {
                url.push_str(&format!(":{port}"));
            }
            url.push_str(&path);
            if let Some(query) = query {
                url.push('?');
                url.push_str(&query);
            }
            url
        })
}

fn extra_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[!-~]([ -~]{0,20}[!-~])?"), 0..6)
}

fn chunking() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..40, 1..20)
}

/// Feeds `bytes` in chunks cycling through `sizes`, calling `step` after each; stops at the
/// first result.
fn feed_chunked<T, E>(
    bytes: &[u8],
    sizes: &[usize],
    input: &mut BytesMut,
    mut step: impl FnMut(&mut BytesMut) -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = sizes[i % sizes.len()].min(bytes.len() - at);
        input.extend_from_slice(&bytes[at..at + n]);
        at += n;
        i += 1;
        match step(input) {
            Ok(None) => continue,
            other => {
                input.extend_from_slice(&bytes[at..]);
                return other;
            }
        }
    }
    Ok(None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_and_server_agree(
        url in url(),
        offered in subset(),
        supported in subset(),
        headers in extra_headers(),
        origin in any::<bool>(),
        nonce in any::<[u8; 16]>(),
        request_chunks in chunking(),
        response_chunks in chunking(),
    ) {
        let mut request = ClientRequest::new(&url).unwrap();
        for p in &offered {
            request = request.subprotocol(p.as_str()).unwrap();
        }
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str()).unwrap();
        }
        if origin {
            request = request.header("Origin", "https://app.example.com").unwrap();
        }
        let client = ClientHandshake::new(request.clone(), nonce, &limits());
        let mut wire = BytesMut::new();
        client.write_request(&mut wire);
        let frames = b"\x82\x83abcdxyz";
        wire.extend_from_slice(frames);

        // The server reads it, in pieces.
        let mut server = ServerHandshake::new(&limits());
        let mut server_input = BytesMut::new();
        let parsed = feed_chunked(&wire, &request_chunks, &mut server_input, |i| server.handle(i));
        let parsed = parsed.map_err(|r| r.to_string());
        prop_assert!(matches!(parsed, Ok(Some(_))), "{:?}", parsed);
        let parsed = parsed.unwrap().unwrap();
        prop_assert_eq!(&server_input[..], &frames[..]);
        prop_assert_eq!(parsed.target(), request.url().path_and_query());
        let host = request.url().host_header();
        prop_assert_eq!(parsed.header("host"), Some(host.as_str()));
        prop_assert_eq!(parsed.subprotocols(), &offered[..]);
        prop_assert_eq!(parsed.key(), client.key());
        for (name, value) in &headers {
            prop_assert!(parsed.headers().get_all(name).any(|v| v == value.as_bytes()));
        }

        // The policy accepts it and picks the server's preferred subprotocol.
        let mut policy = ServerPolicy::new()
            .allow_origin("https://app.example.com")
            .unwrap()
            .allow_missing_origin(true);
        for p in &supported {
            policy = policy.subprotocol(p.as_str());
        }
        prop_assert_eq!(policy.check(&parsed), Ok(()));
        let accept = policy.accept_for(&parsed);
        let expected = supported.iter().find(|s| offered.contains(s)).cloned();
        prop_assert_eq!(&accept.subprotocol, &expected);
        let mut response = BytesMut::new();
        write_accept(&parsed, &accept, &mut response).unwrap();
        let server_frames = b"\x81\x02hi";
        response.extend_from_slice(server_frames);

        // The client reads the answer, in pieces, and agrees.
        let mut client = client;
        let mut client_input = BytesMut::new();
        let done = feed_chunked(&response, &response_chunks, &mut client_input, |i| client.handle(i));
        prop_assert!(matches!(done, Ok(Some(_))), "{:?}", done);
        let done = done.unwrap().unwrap();
        prop_assert_eq!(done.subprotocol(), expected.as_deref());
        prop_assert_eq!(&client_input[..], &server_frames[..]);
    }

    #[test]
    fn server_chunking_never_changes_the_outcome(
        extra in proptest::collection::vec(("[A-Za-z-]{1,8}", "[ -~]{0,12}"), 0..5),
        corrupt in proptest::option::of((0usize..400, any::<u8>())),
        chunks in chunking(),
    ) {
        let lines: String = extra.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let mut bytes = request_with(&lines).into_bytes();
        if let Some((at, byte)) = corrupt {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        let whole = server_feed(&bytes, usize::MAX, &limits()).0;
        let mut server = ServerHandshake::new(&limits());
        let mut input = BytesMut::new();
        let pieces = feed_chunked(&bytes, &chunks, &mut input, |i| server.handle(i));
        prop_assert_eq!(pieces, whole);
    }

    #[test]
    fn client_chunking_never_changes_the_outcome(
        extra in proptest::collection::vec(("[A-Za-z-]{1,8}", "[ -~]{0,12}"), 0..5),
        status in prop_oneof![Just(101u16), 200u16..600],
        corrupt in proptest::option::of((0usize..300, any::<u8>())),
        body in "[ -~]{0,40}",
        chunks in chunking(),
    ) {
        let lines: String = extra.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let text = response_with(&format!("{lines}Content-Length: {}\r\n", body.len()))
            .replacen("101 Switching Protocols", &format!("{status} Whatever"), 1);
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        if let Some((at, byte)) = corrupt {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        let whole = client_feed(&mut plain_client(), &bytes, usize::MAX).0;
        let mut client = plain_client();
        let mut input = BytesMut::new();
        let pieces = feed_chunked(&bytes, &chunks, &mut input, |i| client.handle(i));
        prop_assert_eq!(pieces, whole);
    }
}
