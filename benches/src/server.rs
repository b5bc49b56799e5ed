//! Each library's own echo server, run as a child process of the harness (`--serve LIB`), so
//! its CPU time (`/proc/PID/task/*/schedstat`) and RSS are its own. Every server binds
//! 127.0.0.1:0, prints `listening on ADDR`, pins itself to the CPU it is given, runs a
//! single-threaded runtime (tether-smol: one `smol::Executor` handed to the adapter too;
//! tether-std: the adapter's thread per connection), sets TCP_NODELAY,
//! echoes text and binary messages and exits when its standard input closes.

use std::io::{BufRead, Write};
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};

pub const LIBS: [&str; 6] = [
    "tether-tokio",
    "tether-smol",
    "tether-std",
    "tokio-tungstenite",
    "fastwebsockets",
    "tokio-websockets",
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

pub fn tether_config() -> tether::Config {
    let mut c = tether::Config::default();
    c.max_frame_payload = 16 << 20;
    c.max_message_size = 64 << 20;
    c
}

pub fn serve(lib: &str, cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        crate::net::pin(cpu);
    }
    exit_when_parent_goes();
    match lib {
        "tether-smol" => serve_tether_smol(),
        "tether-std" => serve_tether_std(),
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            match lib.strip_prefix("broadcast-") {
                Some(lib) => rt.block_on(crate::broadcast::serve(lib)),
                None => rt.block_on(serve_tokio(lib)),
            }
        }
    }
}

async fn serve_tokio(lib: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    announce(listener.local_addr().expect("addr"));
    if lib == "tether-tokio" {
        let server = tether_tokio::Server::from_listener(
            tether_tokio::TokioListener(listener),
            tether_tokio::ServerConfig::new(
                tether_config(),
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
            other => panic!("no tokio server for {other}"),
        }
    }
}

fn serve_tether_smol() {
    // Each connection is one task on smol's global executor (`serve`: the echo handler and
    // the connection's driver together).
    let config =
        tether_smol::ServerConfig::new(tether_config(), tether::handshake::ServerPolicy::new());
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

fn serve_tether_std() {
    let server = tether_std::Server::bind(
        "127.0.0.1:0",
        tether_std::ServerConfig::default().config(tether_config()),
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
