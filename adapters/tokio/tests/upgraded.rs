//! WebSockets over streams whose HTTP upgrade happened elsewhere (`open_upgraded`,
//! `serve_upgraded`): leftover bytes first, both roles, heartbeats and the close handshake.
//! Real sockets on 127.0.0.1 port 0; every wait is bounded.

use std::future::Future;
use std::time::Duration;

use tether::frame::{FrameHeader, OpCode};
use tether_tokio::{CloseCode, Config, Message, Role, Upgraded, open_upgraded, serve_upgraded};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}

/// A client's (masked) frame, as it would arrive right behind an HTTP request head.
fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mask = [1, 2, 3, 4];
    let mut out = tether::bytes::BytesMut::new();
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: Some(mask),
        payload_len: payload.len() as u64,
    }
    .encode(&mut out);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out.to_vec()
}

#[tokio::test]
async fn leftover_frames_come_first_and_the_close_handshake_runs() {
    let (client_tcp, server_tcp) = tcp_pair().await;
    let mut leftover = client_frame(OpCode::Text, b"early");
    leftover.extend(client_frame(OpCode::Binary, &[0, 1, 2]));
    let mut server = open_upgraded(
        server_tcp,
        &leftover,
        Upgraded::new(Role::Server, Config::default()).subprotocol("chat"),
    )
    .unwrap();
    assert_eq!(server.subprotocol(), Some("chat"));
    let mut client = open_upgraded(
        client_tcp,
        &[],
        Upgraded::new(Role::Client, Config::default()),
    )
    .unwrap();
    client.send_text("later").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            bounded("server recv", server.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(
        got,
        [
            Message::text("early"),
            Message::binary(vec![0u8, 1, 2]),
            Message::text("later")
        ]
    );
    let closing = tokio::spawn(async move {
        let end = bounded("client recv", client.recv()).await;
        assert!(end.is_none(), "{end:?}");
        client.closed().unwrap()
    });
    let closed = bounded("close", server.close(CloseCode(4000), "done"))
        .await
        .unwrap();
    assert!(closed.clean);
    let seen = closing.await.unwrap();
    assert_eq!((seen.code, seen.reason.as_str()), (CloseCode(4000), "done"));
    assert!(seen.clean);
}

/// The engine's heartbeat runs on an upgraded connection: a peer that never answers a Ping
/// is declared dead.
#[tokio::test]
async fn heartbeats_run_in_serve_upgraded() {
    let (_silent_peer, server_tcp) = tcp_pair().await;
    let mut config = Config::default();
    config.heartbeat = Some(tether::Heartbeat::new(
        Duration::from_millis(20),
        Duration::from_millis(20),
    ));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let served = serve_upgraded(
        server_tcp,
        &[],
        Upgraded::new(Role::Server, config),
        |mut ws| async move {
            let end = ws.recv().await;
            let _ = tx.send((end.map(|r| r.is_err()), ws.closed()));
        },
    );
    bounded("serve", served).await.unwrap();
    let (errored, closed) = rx.await.unwrap();
    assert_eq!(errored, Some(true));
    let closed = closed.unwrap();
    assert_eq!(closed.cause, tether::CloseCause::HeartbeatTimeout);
}
