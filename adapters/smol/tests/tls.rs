//! `wss://` with rustls, against a server whose self-signed certificate is generated here.
#![cfg(feature = "rustls")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use async_net::TcpListener;
use common::run;
use futures_rustls::TlsAcceptor;
use tether::{CloseCode, Message};
use tether_smol::rustls;
use tether_smol::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_smol::{ClientConfig, Error, ServerConfig, accept, connect};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    tether_smol::tls::ring_provider()
}

/// A self-signed certificate for `localhost` and its key.
fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    (certified.cert.der().clone(), key.into())
}

/// A TLS echo server on 127.0.0.1 port 0 for one connection.
async fn tls_echo_server(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    smol::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(tls) = acceptor.accept(tcp).await else {
            return;
        };
        let mut ws = accept(tls, ServerConfig::default()).await.unwrap();
        while let Some(Ok(message)) = ws.recv().await {
            if ws.send(message).await.is_err() {
                break;
            }
        }
    })
    .detach();
    addr
}

fn trusting(cert: &CertificateDer<'static>) -> ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ClientConfig::default().tls(Arc::new(tls))
}

#[test]
fn wss_echo_with_a_trusted_self_signed_certificate() {
    run(async {
        let (cert, key) = certificate();
        let addr = tls_echo_server(cert.clone(), key).await;
        let url = format!("wss://localhost:{}/secure", addr.port());
        let (mut ws, _) = connect(&url, trusting(&cert)).await.expect("wss connect");
        ws.send_text("over tls").await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("over tls"));
        let large: Vec<u8> = (0..1usize << 20).map(|i| i as u8).collect();
        ws.send_binary(large.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::binary(large));
        let closed = ws.close(CloseCode(4001), "bye").await.unwrap();
        assert!(closed.clean, "{closed:?}");
        assert_eq!(closed.code, CloseCode(4001));
    });
}

#[test]
fn wss_refuses_an_untrusted_certificate() {
    run(async {
        let (cert, key) = certificate();
        let addr = tls_echo_server(cert, key).await;
        let url = format!("wss://localhost:{}/", addr.port());
        // The default configuration trusts the public roots only.
        match connect(&url, ClientConfig::default()).await {
            Err(Error::Connect { addr: target, .. }) => {
                assert_eq!(target, format!("localhost:{}", addr.port()));
            }
            Err(other) => panic!("expected a TLS error, got {other}"),
            Ok(_) => panic!("an untrusted certificate was accepted"),
        }
    });
}
