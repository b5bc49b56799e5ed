//! Each library's own echo server, run as a child process of the harness (`--serve LIB`), so
//! its CPU time (`/proc/PID/task/*/schedstat`) and RSS are its own. Every server binds
//! 127.0.0.1:0, prints `listening on ADDR`, pins itself to the CPU it is given, runs a
//! single-threaded runtime (tether-smol: the accept loop in `smol::block_on`, each connection
//! a task on smol's global executor, as the adapter's documentation shows; a single-threaded
//! executor on the main thread measured the same; tether-std: the adapter's thread per
//! connection), sets TCP_NODELAY,
//! echoes text and binary messages and exits when its standard input closes.

use std::io::{BufRead, Write};
use std::net::SocketAddr;

use futures_util::{FutureExt, SinkExt, StreamExt};

pub const LIBS: [&str; 8] = [
    "tether-tokio",
    "tether-smol",
    "tether-std",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "yawc",
    "sockudo-ws",
];

/// Ends the process when the parent closes our standard input (or dies).
fn exit_when_parent_goes() {
    std::thread::spawn(|| {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        std::process::exit(0);
    });
}

pub fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// permessage-deflate on a server: `LIB+deflate` (context takeover both ways, 15-bit
/// windows) or `LIB+deflate-shared` (no context takeover either way: nothing kept between
/// messages); plain `LIB` is off.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Deflate {
    Off,
    Takeover,
    Shared,
}

/// Splits `LIB+MODE` into the library and its permessage-deflate mode.
pub fn split_mode(lib: &str) -> (&str, Deflate) {
    match lib.split_once('+') {
        Some((name, "deflate")) => (name, Deflate::Takeover),
        Some((name, "deflate-shared")) => (name, Deflate::Shared),
        _ => (lib, Deflate::Off),
    }
}

pub fn tether_config(mode: Deflate) -> tether::Config {
    let mut c = tether::Config::default();
    c.max_frame_payload = 16 << 20;
    c.max_message_size = 64 << 20;
    c.deflate = match mode {
        Deflate::Off => None,
        Deflate::Takeover => Some(tether::deflate::DeflateConfig::default()),
        Deflate::Shared => Some(tether::deflate::DeflateConfig::low_memory()),
    };
    c
}

fn yawc_options(mode: Deflate) -> yawc::Options {
    let o = yawc::Options::default()
        .with_utf8()
        .with_limits(16 << 20, 64 << 20);
    match mode {
        Deflate::Off => o,
        Deflate::Takeover => o.with_compression_level(yawc::CompressionLevel::fast()),
        Deflate::Shared => o
            .with_compression_level(yawc::CompressionLevel::fast())
            .server_no_context_takeover()
            .client_no_context_takeover(),
    }
}

fn sockudo_deflate(mode: Deflate) -> Option<sockudo_ws::DeflateConfig> {
    let base = sockudo_ws::DeflateConfig {
        compression_level: 1,
        compression_threshold: 1024,
        ..sockudo_ws::DeflateConfig::default()
    };
    match mode {
        Deflate::Off => None,
        Deflate::Takeover => Some(base),
        Deflate::Shared => Some(sockudo_ws::DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..base
        }),
    }
}

pub fn serve(lib: &str, cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        crate::net::pin(cpu);
    }
    exit_when_parent_goes();
    let (lib, mode) = split_mode(lib);
    match lib {
        "tether-smol" => serve_tether_smol(mode),
        "tether-std" => serve_tether_std(mode),
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            match lib.strip_prefix("broadcast-") {
                Some(lib) => rt.block_on(crate::broadcast::serve(lib)),
                None => rt.block_on(serve_tokio(lib, mode)),
            }
        }
    }
}

async fn serve_tokio(lib: &str, mode: Deflate) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    announce(listener.local_addr().expect("addr"));
    if lib == "tether-tokio" {
        let server = tether_tokio::Server::from_listener(
            tether_tokio::TokioListener(listener),
            tether_tokio::ServerConfig::new(
                tether_config(mode),
                tether::handshake::ServerPolicy::new(),
            ),
        );
        loop {
            let Ok(connecting) = server.accept().await else {
                continue;
            };
            // `serve`: the handler and the connection's driver in one task.
            tokio::spawn(connecting.serve(|mut ws| async move {
                while let Some(Ok(m)) = ws.recv().await {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
            }));
        }
    }
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        match lib {
            "tokio-tungstenite" => {
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    while let Some(Ok(m)) = ws.next().await {
                        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                            break;
                        }
                    }
                });
            }
            "tokio-websockets" => {
                tokio::spawn(async move {
                    let Ok((_req, mut ws)) =
                        tokio_websockets::ServerBuilder::new().accept(tcp).await
                    else {
                        return;
                    };
                    while let Some(Ok(m)) = ws.next().await {
                        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                            break;
                        }
                    }
                });
            }
            "fastwebsockets" => {
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let service = hyper::service::service_fn(|mut req| async move {
                        let (response, fut) = fastwebsockets::upgrade::upgrade(&mut req)?;
                        tokio::spawn(async move {
                            let Ok(ws) = fut.await else { return };
                            let mut ws = fastwebsockets::FragmentCollector::new(ws);
                            while let Ok(frame) = ws.read_frame().await {
                                let op = frame.opcode;
                                if matches!(op, fastwebsockets::OpCode::Close) {
                                    break;
                                }
                                let data = matches!(
                                    op,
                                    fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary
                                );
                                if data && ws.write_frame(frame).await.is_err() {
                                    break;
                                }
                            }
                        });
                        Ok::<_, fastwebsockets::WebSocketError>(response)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .with_upgrades()
                        .await;
                });
            }
            "yawc" => {
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let service = hyper::service::service_fn(move |mut req| async move {
                        let (response, fut) =
                            yawc::WebSocket::upgrade_with_options(&mut req, yawc_options(mode))?;
                        tokio::spawn(async move {
                            let Ok(mut ws) = fut.await else { return };
                            // Its own benchmark server's path: feed the frames that are
                            // ready (up to 32), then one flush.
                            while let Some(frame) = ws.next().await {
                                let mut next = Some(frame);
                                let mut fed = 0;
                                while let Some(frame) = next.take() {
                                    let op = frame.opcode();
                                    if op == yawc::OpCode::Close {
                                        return;
                                    }
                                    if matches!(op, yawc::OpCode::Text | yawc::OpCode::Binary) {
                                        if ws.feed(frame).await.is_err() {
                                            return;
                                        }
                                        fed += 1;
                                    }
                                    if fed < 32 {
                                        next = ws.next().now_or_never().flatten();
                                    }
                                }
                                if ws.flush().await.is_err() {
                                    return;
                                }
                            }
                        });
                        Ok::<_, yawc::WebSocketError>(response)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .with_upgrades()
                        .await;
                });
            }
            "sockudo-ws" => {
                tokio::spawn(serve_sockudo(tcp, mode));
            }
            other => panic!("no tokio server for {other}"),
        }
    }
}

/// sockudo-ws: its HTTP/1 handshake helpers, with permessage-deflate negotiated by its own
/// `negotiate_server_deflate` (its `WebSocketServer::accept` answers without extensions),
/// then the README's loop: `feed` each reply; `next()` flushes before it waits for input.
async fn serve_sockudo(tcp: tokio::net::TcpStream, mode: Deflate) {
    let Some((tcp, leftover, agreed)) = sockudo_handshake(tcp, mode).await else {
        return;
    };
    let config = sockudo_ws::Config::default();
    macro_rules! echo {
        ($ws:expr) => {{
            let mut ws = $ws;
            while let Some(Ok(m)) = ws.next().await {
                let data = matches!(
                    m,
                    sockudo_ws::Message::Text(_) | sockudo_ws::Message::Binary(_)
                );
                if data && ws.feed(m).await.is_err() {
                    break;
                }
            }
        }};
    }
    match agreed {
        Some(deflate) => echo!(sockudo_ws::CompressedWebSocketStream::server_with_leftover(
            tcp, config, deflate, leftover
        )),
        None => echo!(sockudo_ws::WebSocketStream::from_raw_with_leftover(
            tcp,
            sockudo_ws::Role::Server,
            config,
            leftover
        )),
    }
}

/// sockudo-ws's HTTP/1 upgrade, with permessage-deflate agreed by its own
/// `negotiate_server_deflate` when `mode` offers it: the transport, the bytes read past the
/// request and the agreed codec configuration.
pub async fn sockudo_handshake(
    mut tcp: tokio::net::TcpStream,
    mode: Deflate,
) -> Option<(
    tokio::net::TcpStream,
    Option<bytes::Bytes>,
    Option<sockudo_ws::DeflateConfig>,
)> {
    use sockudo_ws::handshake::{build_response, generate_accept_key, parse_request};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = bytes::BytesMut::with_capacity(4096);
    let (response, leftover, agreed) = loop {
        if buf.len() > 16 << 10 || !matches!(tcp.read_buf(&mut buf).await, Ok(n) if n > 0) {
            return None;
        }
        let Some((req, used)) = parse_request(&buf).ok()? else {
            continue;
        };
        let agreed = match (sockudo_deflate(mode), req.extensions) {
            (Some(policy), Some(offers)) => {
                sockudo_ws::deflate::negotiate_server_deflate(offers, &policy)
            }
            _ => None,
        };
        let header = agreed.as_ref().map(|a| a.to_response_header());
        let response = build_response(&generate_accept_key(req.key), None, header.as_deref());
        let leftover = (used < buf.len()).then(|| buf.split_off(used).freeze());
        break (response, leftover, agreed.map(|a| a.config));
    };
    tcp.write_all(&response).await.ok()?;
    Some((tcp, leftover, agreed))
}

fn serve_tether_smol(mode: Deflate) {
    // Each connection is one task on smol's global executor (`serve`: the echo handler and
    // the connection's driver together).
    let config =
        tether_smol::ServerConfig::new(tether_config(mode), tether::handshake::ServerPolicy::new());
    smol::block_on(async {
        let server = tether_smol::Server::bind("127.0.0.1:0", config)
            .await
            .expect("bind");
        announce(server.local_addr().expect("addr"));
        loop {
            let Ok(connecting) = server.accept().await else {
                continue;
            };
            smol::spawn(connecting.serve(|mut ws| async move {
                while let Some(Ok(m)) = ws.recv().await {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
            }))
            .detach();
        }
    });
}

fn serve_tether_std(mode: Deflate) {
    let server = tether_std::Server::bind(
        "127.0.0.1:0",
        tether_std::ServerConfig::default().config(tether_config(mode)),
    )
    .expect("bind");
    announce(server.local_addr().expect("addr"));
    let _ = server.serve(|mut ws| {
        while let Some(Ok(m)) = ws.recv() {
            if ws.send(m).is_err() {
                break;
            }
        }
    });
}
