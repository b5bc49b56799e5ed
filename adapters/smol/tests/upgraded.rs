//! `open_upgraded` on smol: a stream whose upgrade happened elsewhere, leftover frames first,
//! both roles, the close handshake seen by both sides. Real sockets on 127.0.0.1 port 0.

mod common;

use common::run;
use tether::frame::{FrameHeader, OpCode};
use tether_smol::{CloseCode, Config, Message, Role, Upgraded, open_upgraded};

fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mask = [4, 3, 2, 1];
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

#[test]
fn leftover_frames_come_first_and_the_close_handshake_runs() {
    run(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client_tcp, accepted) =
            futures_lite::future::zip(async_net::TcpStream::connect(addr), listener.accept()).await;
        let (client_tcp, server_tcp) = (client_tcp.unwrap(), accepted.unwrap().0);
        let leftover = client_frame(OpCode::Text, b"early");
        let mut server = open_upgraded(
            server_tcp,
            &leftover,
            Upgraded::new(Role::Server, Config::default()),
        )
        .unwrap();
        let mut client = open_upgraded(
            client_tcp,
            &[],
            Upgraded::new(Role::Client, Config::default()),
        )
        .unwrap();
        client.send_text("later").await.unwrap();
        assert_eq!(
            server.recv().await.unwrap().unwrap(),
            Message::text("early")
        );
        assert_eq!(
            server.recv().await.unwrap().unwrap(),
            Message::text("later")
        );
        let closing = smol::spawn(async move {
            assert!(client.recv().await.is_none());
            client.closed().unwrap()
        });
        let closed = server.close(CloseCode(4000), "done").await.unwrap();
        assert!(closed.clean);
        let seen = closing.await;
        assert_eq!((seen.code, seen.reason.as_str()), (CloseCode(4000), "done"));
    });
}
