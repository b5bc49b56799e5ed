//! Clients through a real HTTP proxy: Debian's `tinyproxy`, started here with a generated
//! configuration on a free loopback port. A tunnel that carries messages, a proxy whose rules
//! refuse the target (a 403 that names the proxy, the target and the status), and `NO_PROXY`
//! rules applied on the way to it.
//!
//! Needs `/usr/bin/tinyproxy` (`bash scripts/install-peers.sh tinyproxy`). Without it the
//! tests say so loudly and pass, except under `CI=true`, where they fail.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tether::handshake::ServerPolicy;
use tether::handshake::proxy::ProxyError;
use tether::{CloseCode, Config, Message};
use tether_tokio::{ClientConfig, Error, Proxy, Server, ServerConfig};
use tokio::time::timeout;

const TINYPROXY: &str = "/usr/bin/tinyproxy";
const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match timeout(LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// Whether tinyproxy is there; a loud skip outside CI, a failure under `CI=true`.
fn have_tinyproxy() -> bool {
    if Path::new(TINYPROXY).exists() {
        return true;
    }
    let message = format!(
        "{TINYPROXY} not found: install it (bash scripts/install-peers.sh tinyproxy) to run \
         the proxy tests"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("\n!!! SKIPPED: {message} !!!\n");
    false
}

/// A tinyproxy process, killed when dropped.
struct Tinyproxy {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts tinyproxy in the foreground on a free loopback port with `extra` configuration
/// lines, and waits (bounded) until it accepts connections.
fn tinyproxy(extra: &str) -> Tinyproxy {
    for _ in 0..3 {
        // A free port: bound, read, released; tinyproxy binds it next (a rare race with
        // another process is retried).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("tether-tinyproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 32\nAllow 127.0.0.1\n\
                 LogLevel Info\n{extra}\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(TINYPROXY)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tinyproxy");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + LIMIT;
        loop {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Tinyproxy {
                    child,
                    addr,
                    _dir: TempDir(dir),
                };
            }
            if child.try_wait().unwrap().is_some() {
                // It exited (the port was taken meanwhile): try another.
                break;
            }
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    panic!("tinyproxy did not start on a free port in three tries");
}

async fn echo_server() -> SocketAddr {
    let server = Server::bind(
        "127.0.0.1:0",
        ServerConfig::new(Config::default(), ServerPolicy::new()),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok(connecting) = server.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = connecting.handshake().await {
                    while let Some(Ok(m)) = ws.recv().await {
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn exchange(url: &str, config: ClientConfig) -> Result<(), Error> {
    let (mut ws, _) = bounded("connect", tether_tokio::connect(url, config)).await?;
    for i in 0..10 {
        let text = format!("message {i} through tinyproxy");
        ws.send_text(&text).await.unwrap();
        let echoed = bounded("echo", ws.recv()).await.unwrap().unwrap();
        assert_eq!(echoed, Message::text(text));
    }
    let big = vec![0xa5u8; 256 * 1024];
    ws.send_binary(big.clone()).await.unwrap();
    let echoed = bounded("echo", ws.recv()).await.unwrap().unwrap();
    assert_eq!(echoed, Message::binary(big));
    let stats = ws.stats();
    assert_eq!(stats.messages_sent, 11);
    assert_eq!(stats.messages_received, 11);
    let closed = bounded("close", ws.close(CloseCode::NORMAL, "bye"))
        .await
        .unwrap();
    assert!(closed.clean);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reaches_an_echo_server_through_tinyproxy() {
    if !have_tinyproxy() {
        return;
    }
    let server = echo_server().await;
    let proxy = tinyproxy("");
    let config =
        ClientConfig::default().proxy(Proxy::all(&format!("http://{}", proxy.addr)).unwrap());
    exchange(&format!("ws://{server}/"), config)
        .await
        .expect("through tinyproxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_tinyproxy_gives_a_clear_403() {
    if !have_tinyproxy() {
        return;
    }
    let server = echo_server().await;
    // CONNECT is allowed to port 1 only.
    let proxy = tinyproxy("ConnectPort 1");
    let config = ClientConfig::default().proxy(Proxy::all(&proxy.addr.to_string()).unwrap());
    let err = bounded(
        "connect",
        tether_tokio::connect(&format!("ws://{server}/"), config),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    match &err {
        Error::Proxy(failure) => {
            let (p, target, error) = (&failure.proxy, &failure.target, &failure.error);
            assert_eq!(*p, proxy.addr.to_string());
            assert_eq!(*target, server.to_string());
            assert!(
                matches!(error, ProxyError::Refused { status: 403, .. }),
                "{error:?}"
            );
        }
        other => panic!("expected a proxy refusal, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "proxy {} did not open a tunnel to {server}: refused with 403",
            proxy.addr
        )),
        "{text}"
    );
}

/// `NO_PROXY` rules decide on the way to a real proxy: a target they exempt is reached
/// directly (this proxy would refuse it), any other goes to the proxy and is refused. The
/// environment's selection, read through `Proxy::from_vars`, leaves loopback targets direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_rules_are_applied_with_a_real_proxy() {
    if !have_tinyproxy() {
        return;
    }
    let server = echo_server().await;
    let proxy = tinyproxy("ConnectPort 1");
    let url = format!("ws://{server}/");
    let refusing = Proxy::all(&format!("http://{}", proxy.addr)).unwrap();

    let direct = refusing
        .clone()
        .no_proxy(&format!("example.com, 127.0.0.1:{}", server.port()));
    exchange(&url, ClientConfig::default().proxy(direct))
        .await
        .expect("exempt by NO_PROXY: direct");

    let other_port = refusing
        .clone()
        .no_proxy(&format!("127.0.0.1:{}", server.port() ^ 1));
    let err = exchange(&url, ClientConfig::default().proxy(other_port))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Proxy(f) if f.error.http_status() == Some(403)),
        "{err:?}"
    );

    let addr = proxy.addr.to_string();
    let from_env = Proxy::from_vars(|name| (name == "HTTP_PROXY").then(|| addr.clone()));
    exchange(&url, ClientConfig::default().proxy(from_env))
        .await
        .expect("loopback is direct from the environment");
}

/// `wss://` through tinyproxy: TLS runs inside the tunnel, end to end with the server (the
/// proxy sees only the CONNECT), against a certificate for `localhost` trusted here.
#[cfg(feature = "rustls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_runs_tls_inside_the_tunnel() {
    use std::sync::Arc;

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tether_tokio::tls::ring_provider;

    if !have_tinyproxy() {
        return;
    }
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server_tls = Arc::new(
        rustls::ServerConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = Arc::clone(&server_tls);
            tokio::spawn(async move {
                let Ok(mut ws) = tether_tokio::accept_tls(tcp, tls, ServerConfig::default()).await
                else {
                    return;
                };
                while let Some(Ok(m)) = ws.recv().await {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client_tls = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let proxy = tinyproxy("");
    let config = ClientConfig::default()
        .tls(Arc::new(client_tls))
        .proxy(Proxy::all(&format!("http://{}", proxy.addr)).unwrap());
    exchange(&format!("wss://localhost:{port}/"), config)
        .await
        .expect("wss through tinyproxy");
}
