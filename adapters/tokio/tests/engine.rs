//! Engine behaviours that only an async runtime can show: cancel safety inside `select!`, and
//! dropping the runtime that runs a connection's driver. The engine is shared, so tokio
//! stands for every async glue here; the conformance suite covers the rest on every adapter.

use std::net::SocketAddr;
use std::time::Duration;

use tether::Config;
use tether_tokio::{ClientConfig, Error, Message, Server, ServerConfig, WebSocket};

/// Every wait is bounded: a hang fails the test.
const LIMIT: Duration = Duration::from_secs(10);

/// A server on its own runtime thread; each connection is handed to `app`.
fn server<F, Fut>(config: Config, app: F) -> SocketAddr
where
    F: Fn(WebSocket) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind("127.0.0.1:0", ServerConfig::default().config(config))
                .await
                .unwrap();
            tx.send(server.local_addr().unwrap()).unwrap();
            while let Ok(connecting) = server.accept().await {
                let app = app.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = connecting.handshake().await {
                        app(ws).await;
                    }
                });
            }
        });
    });
    rx.recv().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(addr: SocketAddr, config: Config) -> WebSocket {
    tether_tokio::connect(&format!("ws://{addr}/"), ClientConfig::new(config))
        .await
        .unwrap()
        .0
}

#[test]
fn dropping_the_runtime_of_the_driver_ends_the_connection_and_wakes_every_waiter() {
    let addr = server(Config::default(), |mut ws: WebSocket| async move {
        while let Some(Ok(m)) = ws.recv().await {
            let _ = ws.send(m).await;
        }
    });
    // The driver runs on `first`; the handle outlives it.
    let first = runtime();
    let mut ws = first.block_on(connect(addr, Config::default()));
    first.block_on(async {
        ws.send_text("before").await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("before"));
    });
    drop(first);

    let second = runtime();
    second.block_on(async {
        let ended = tokio::time::timeout(LIMIT, ws.recv())
            .await
            .expect("recv hangs");
        match ended {
            Some(Err(Error::Closed(closed))) => assert!(!closed.clean),
            other => panic!("expected an abnormal end, got {other:?}"),
        }
        let sent = tokio::time::timeout(LIMIT, ws.send_text("after")).await;
        assert!(
            sent.expect("send hangs").is_err(),
            "a send after the end must fail"
        );
        let closed = tokio::time::timeout(LIMIT, ws.close(tether::CloseCode::NORMAL, "")).await;
        assert!(closed.is_ok(), "close hangs");
    });
}

#[test]
fn recv_inside_select_loses_nothing() {
    const COUNT: u32 = 300;
    let addr = server(Config::default(), |mut ws: WebSocket| async move {
        for i in 0..COUNT {
            ws.send_text(&i.to_string()).await.unwrap();
            if i % 7 == 0 {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        let _ = ws.close(tether::CloseCode::NORMAL, "").await;
    });
    runtime().block_on(async {
        let mut ws = connect(addr, Config::default()).await;
        let mut got = Vec::new();
        let mut cancelled = 0u32;
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "bounded");
            tokio::select! {
                m = ws.recv() => match m {
                    Some(m) => got.push(String::from_utf8(m.unwrap().as_bytes().to_vec()).unwrap()),
                    None => break,
                },
                // A racing timer cancels many receives half-way.
                _ = tokio::time::sleep(Duration::from_micros(50)) => cancelled += 1,
            }
        }
        let want: Vec<String> = (0..COUNT).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
        assert!(cancelled > 0, "the race never cancelled a receive");
    });
}

#[test]
fn a_send_cancelled_while_waiting_for_room_is_not_sent_and_order_holds() {
    // The server reads nothing until told, then everything.
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = std::sync::Arc::new(std::sync::Mutex::new(Some(go_rx)));
    let (got_tx, got_rx) = std::sync::mpsc::channel::<Vec<u32>>();
    let mut config = Config::default();
    config.max_message_size = 1 << 20;
    let addr = server(config.clone(), move |mut ws: WebSocket| {
        let go_rx = go_rx.lock().unwrap().take();
        let got_tx = got_tx.clone();
        async move {
            let go_rx = go_rx.unwrap();
            tokio::task::spawn_blocking(move || go_rx.recv())
                .await
                .unwrap()
                .unwrap();
            let mut got = Vec::new();
            while let Some(Ok(m)) = ws.recv().await {
                let n = u32::from_be_bytes(m.as_bytes()[..4].try_into().unwrap());
                got.push(n);
            }
            got_tx.send(got).unwrap();
        }
    });
    runtime().block_on(async {
        let mut ws = connect(addr, config).await;
        let mut sent = Vec::new();
        let mut cancelled = 0;
        let payload = vec![0u8; 64 << 10];
        // Fill the kernel buffers and the core's output until sends have to wait; cancel
        // those waits with a timer.
        for n in 0..400u32 {
            let mut m = payload.clone();
            m[..4].copy_from_slice(&n.to_be_bytes());
            tokio::select! {
                r = ws.send(Message::binary(m)) => { r.unwrap(); sent.push(n); }
                _ = tokio::time::sleep(Duration::from_millis(2)) => cancelled += 1,
            }
            if cancelled >= 20 {
                break;
            }
        }
        assert!(cancelled >= 20, "sends never had to wait");
        go_tx.send(()).unwrap();
        ws.close(tether::CloseCode::NORMAL, "").await.unwrap();
        let got = tokio::task::spawn_blocking(move || got_rx.recv_timeout(LIMIT))
            .await
            .unwrap()
            .expect("the server reports what it received");
        assert_eq!(got, sent, "exactly the sends that returned Ok, in order");
    });
}

#[test]
fn a_message_fed_to_the_sink_goes_before_what_the_handle_sends_next() {
    use futures_util::SinkExt;
    let addr = server(Config::default(), |mut ws: WebSocket| async move {
        while let Some(Ok(m)) = ws.recv().await {
            let _ = ws.send(m).await;
        }
    });
    runtime().block_on(async {
        let mut ws = connect(addr, Config::default()).await;
        ws.feed(Message::text("first")).await.unwrap();
        ws.send_text("second").await.unwrap();
        ws.feed(Message::text("third")).await.unwrap();
        // The handle's own flush also pushes what the Sink holds.
        tokio::time::timeout(LIMIT, ws.flush())
            .await
            .unwrap()
            .unwrap();
        for want in ["first", "second", "third"] {
            let got = tokio::time::timeout(LIMIT, ws.recv()).await.expect("echo");
            assert_eq!(got.unwrap().unwrap(), Message::text(want));
        }
    });
}

/// A receiver waiting in `recv` is woken by read readiness itself and reads in its own task.
/// If it is then dropped without reading (a `select!` took another branch), the wake-up it
/// took goes back to the driver: a Ping arriving then is still answered though the
/// application never receives again.
#[test]
fn a_recv_dropped_after_its_wake_up_leaves_reading_to_the_driver() {
    let mut quiet = Config::default();
    quiet.heartbeat = None;
    let (waiting_tx, waiting_rx) = std::sync::mpsc::channel::<()>();
    let waiting_tx = std::sync::Arc::new(std::sync::Mutex::new(waiting_tx));
    let addr = server(quiet.clone(), move |mut ws: WebSocket| {
        let waiting_tx = waiting_tx.clone();
        async move {
            let mut recv = Box::pin(ws.next_event());
            let mut polled = false;
            // Poll the receive once, then return at the first wake-up without polling it
            // again, and drop it.
            std::future::poll_fn(|cx| {
                if polled {
                    return std::task::Poll::Ready(());
                }
                polled = true;
                assert!(recv.as_mut().poll(cx).is_pending());
                waiting_tx.lock().unwrap().send(()).unwrap();
                std::task::Poll::Pending
            })
            .await;
            drop(recv);
            // Alive, never receiving again.
            std::future::pending::<()>().await;
            drop(ws);
        }
    });
    runtime().block_on(async {
        let mut ws = connect(addr, quiet).await;
        waiting_rx
            .recv_timeout(LIMIT)
            .expect("the server waits in recv");
        ws.ping(&b"are you there"[..]).await.unwrap();
        let answer = tokio::time::timeout(LIMIT, ws.next_event())
            .await
            .expect("the Ping is answered");
        assert_eq!(
            answer.unwrap().unwrap(),
            tether_tokio::Incoming::Pong(tether::Bytes::from_static(b"are you there"))
        );
    });
}

/// When `recv` reports the end of a close the peer started, the Close echo has been handed to
/// the transport already: nothing waits for the driver task. (Autobahn's client protocol asks
/// for its report right after a case ends; a late echo left the case unrecorded.)
#[test]
fn the_close_echo_is_written_before_recv_reports_the_end() {
    let mut config = Config::default();
    config.heartbeat = None;
    config.close_timeout = Duration::from_secs(3);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let done_tx = std::sync::Arc::new(std::sync::Mutex::new(done_tx));
    let addr = server(config.clone(), move |mut ws: WebSocket| {
        let done_tx = done_tx.clone();
        async move {
            let clean = ws
                .close(tether::CloseCode::NORMAL, "bye")
                .await
                .is_ok_and(|closed| closed.clean);
            done_tx.lock().unwrap().send(clean).unwrap();
        }
    });
    let client = runtime();
    let mut ws = client.block_on(connect(addr, config));
    client.block_on(async {
        let end = tokio::time::timeout(LIMIT, ws.recv())
            .await
            .expect("the close arrives");
        assert!(end.is_none(), "a normal close: {end:?}");
    });
    // The client's runtime is not polled from here on: only what `recv` wrote counts.
    let clean = done_rx
        .recv_timeout(LIMIT)
        .expect("the server's close ends");
    assert!(clean, "the server got our Close echo");
    drop(ws);
}

/// `Connecting::serve` runs the handler and the connection's driver in one task: the future
/// ends once the handler has returned and the close its dropped handle started (1001) is
/// done; a failed handshake is its error.
#[test]
fn serve_ends_after_the_handler_and_its_close() {
    let rt = runtime();
    rt.block_on(async {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let connecting = server.accept().await.unwrap();
            connecting
                .serve(|mut ws| async move {
                    let m = ws.recv().await.unwrap().unwrap();
                    ws.send(m).await.unwrap();
                })
                .await
        });
        let mut ws = connect(addr, Config::default()).await;
        ws.send_text("once").await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("once"));
        match tokio::time::timeout(LIMIT, ws.recv())
            .await
            .expect("no close")
        {
            None => {}
            other => panic!("expected a clean close, got {other:?}"),
        }
        assert_eq!(ws.closed().unwrap().code, tether::CloseCode::GOING_AWAY);
        let result = tokio::time::timeout(LIMIT, served)
            .await
            .expect("serve never ends")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");

        // A client that is not a WebSocket client: the handshake fails, the handler never runs.
        let server = Server::bind("127.0.0.1:0", ServerConfig::default())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let connecting = server.accept().await.unwrap();
            connecting
                .serve(|_ws| async { panic!("no handler without a handshake") })
                .await
        });
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut tcp, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let result = tokio::time::timeout(LIMIT, served)
            .await
            .expect("serve never ends")
            .unwrap();
        assert!(
            matches!(result, Err(Error::Rejected { status: 426 })),
            "{result:?}"
        );
    });
}

/// The task `serve` makes of an echo handler stays small: tokio rounds a task up to 128
/// bytes, and with this future at 264 bytes each idle connection's task is 384 bytes (past
/// about 280, 512).
#[test]
fn the_serve_future_of_an_echo_handler_stays_small() {
    runtime().block_on(async {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default())
            .await
            .unwrap();
        let _client = tokio::net::TcpStream::connect(server.local_addr().unwrap())
            .await
            .unwrap();
        let connecting = server.accept().await.unwrap();
        let serve = connecting.serve(|mut ws| async move {
            while let Some(Ok(m)) = ws.recv().await {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
        });
        let size = std::mem::size_of_val(&serve);
        assert!(size <= 264, "serve future: {size} bytes");
    });
}

/// `recv` and the `Stream` hand out messages only: the Pings before a message are passed over
/// (the core has answered them), while `next_event` shows them. Each round waits for the
/// client's word, so that its Pings are not taken with the message before.
#[test]
fn recv_and_the_stream_pass_over_pings() {
    use futures_util::StreamExt;
    use tether_tokio::Incoming;
    let addr = server(Config::default(), |mut ws: WebSocket| async move {
        for round in 0..3 {
            ws.ping(&b"p1"[..]).await.unwrap();
            ws.ping(&b"p2"[..]).await.unwrap();
            ws.send_text(&format!("m{round}")).await.unwrap();
            if ws.recv().await.is_none() {
                return;
            }
        }
        while ws.recv().await.is_some() {}
    });
    runtime().block_on(async {
        let mut ws = connect(addr, Config::default()).await;
        let m = tokio::time::timeout(LIMIT, ws.recv()).await.unwrap();
        assert_eq!(m.unwrap().unwrap(), Message::text("m0"));
        ws.send(Message::text("next")).await.unwrap();
        let m = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
        assert_eq!(m.unwrap().unwrap(), Message::text("m1"));
        ws.send(Message::text("next")).await.unwrap();
        let mut events = Vec::new();
        while events.len() < 3 {
            let e = tokio::time::timeout(LIMIT, ws.next_event()).await.unwrap();
            events.push(e.unwrap().unwrap());
        }
        assert!(
            matches!(
                &events[..],
                [Incoming::Ping(a), Incoming::Ping(b), Incoming::Message(m)]
                    if a[..] == b"p1"[..] && b[..] == b"p2"[..] && *m == Message::text("m2")
            ),
            "{events:?}"
        );
        ws.close(tether::CloseCode::NORMAL, "").await.unwrap();
    });
}

/// A stream whose shutdown never finishes (a TLS close_notify that cannot be written because
/// the peer stopped reading).
struct StuckShutdown(tokio::io::DuplexStream);

impl tokio::io::AsyncRead for StuckShutdown {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StuckShutdown {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
}

/// The peer ended its side after the close handshake, and our shutdown never finishes: the
/// transport is given up (dropped) one second later, on the runtime's clock (paused here).
#[test]
fn a_shutdown_that_never_finishes_is_given_up_after_a_second() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (ours, mut peer) = tokio::io::duplex(1 << 16);
        let upgraded = tether_tokio::Upgraded::new(tether::Role::Server, Config::default());
        let mut ws = tether_tokio::open_upgraded(StuckShutdown(ours), &[], upgraded).unwrap();
        let start = tokio::time::Instant::now();
        // The peer's Close (1000, masked with the zero key), our answer, the peer's FIN.
        peer.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
            .await
            .unwrap();
        let mut answer = [0u8; 4];
        peer.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [0x88, 0x02, 0x03, 0xe8]);
        peer.shutdown().await.unwrap();
        assert!(
            tokio::time::timeout(LIMIT, ws.recv())
                .await
                .unwrap()
                .is_none()
        );
        // The transport is dropped: the peer reads the end of the stream.
        let mut rest = Vec::new();
        tokio::time::timeout(LIMIT, peer.read_to_end(&mut rest))
            .await
            .expect("the transport was never given up")
            .unwrap();
        assert!(rest.is_empty(), "{rest:?}");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(2),
            "{took:?}"
        );
    });
}
