//! `wss://` with rustls against a server whose self-signed certificate is generated here and
//! trusted explicitly by the client. Run with `--features rustls`.
#![cfg(feature = "rustls")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether::{CloseCode, Message};
use tether_tokio::tls::ring_provider;
use tether_tokio::{ClientConfig, Error, ServerConfig};
use tokio::net::TcpListener;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

/// A TLS echo server for `localhost` on 127.0.0.1; returns its address and certificate.
async fn tls_echo_server() -> (SocketAddr, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let config = Arc::clone(&config);
            tokio::spawn(async move {
                // The engine's rustls on both ends (smol's test uses a TLS stream of its own).
                let accepted = tether_tokio::accept_tls(tcp, config, ServerConfig::default());
                let Ok(mut ws) = accepted.await else {
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
    (addr, cert)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_echo_with_a_trusted_self_signed_certificate() {
    let (addr, cert) = tls_echo_server().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut config = ClientConfig::default();
    config.tls = Some(Arc::new(tls));
    let url = format!("wss://localhost:{}/secure", addr.port());
    let (mut ws, _) = timeout(LIMIT, tether_tokio::connect(&url, config))
        .await
        .unwrap()
        .unwrap();
    ws.send_text("over tls ✓").await.unwrap();
    let m = timeout(LIMIT, ws.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(m, Message::text("over tls ✓"));
    let big = vec![7u8; 1 << 20];
    ws.send_binary(big.clone()).await.unwrap();
    let m = timeout(LIMIT, ws.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(m.as_bytes(), &big[..]);
    let closed = timeout(LIMIT, ws.close(CloseCode(4001), "bye"))
        .await
        .unwrap()
        .unwrap();
    assert!(closed.clean);
    assert_eq!(closed.code, CloseCode(4001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_refuses_an_untrusted_certificate() {
    let (addr, _) = tls_echo_server().await;
    let port = addr.port();
    let url = format!("wss://localhost:{port}/");
    let err = timeout(LIMIT, tether_tokio::connect(&url, ClientConfig::default()))
        .await
        .unwrap()
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Connect { addr, .. } if *addr == format!("localhost:{}", port)),
        "{err:?}"
    );
}
