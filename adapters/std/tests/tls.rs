//! wss:// against a server with a self-signed certificate made at test time (feature `rustls`).
//!
//! Both sides use the engine's rustls: `connect` with `wss://` on the client, `accept_tls` on
//! the server (TLS, then the opening handshake, within the handshake timeout).
#![cfg(feature = "rustls")]
#![allow(clippy::result_large_err)]

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use common::{LIMIT, big_config, bounded};
use tether_std::rustls;
use tether_std::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_std::{
    ClientConfig, CloseCode, Error, Incoming, Message, ServerConfig, WebSocket, connect,
};

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server TLS config with a fresh self-signed certificate for `localhost`, and a client
/// config that trusts exactly that certificate.
fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// Accepts one TCP connection on `listener`, then TLS and the WebSocket handshake.
fn accept_tls(
    listener: &TcpListener,
    tls: Arc<rustls::ServerConfig>,
    config: ServerConfig,
) -> Result<WebSocket, Error> {
    let (tcp, _) = listener.accept()?;
    tether_std::accept_tls(tcp, tls, config)
}

#[test]
fn wss_echo_with_a_self_signed_certificate() {
    let (server_tls, client_tls) = tls_pair();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let mut ws = accept_tls(
            &listener,
            server_tls,
            ServerConfig::default().config(big_config()),
        )
        .unwrap();
        while let Some(Ok(message)) = ws.recv() {
            ws.send(message).unwrap();
        }
        ws.closed()
    });
    bounded(move || {
        let (mut ws, _) = connect(
            &format!("wss://localhost:{port}/secure"),
            ClientConfig::new(big_config()).tls(client_tls),
        )
        .unwrap();
        ws.send_text("over tls ✓").unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("over tls ✓"));
        let large: Vec<u8> = (0..4usize << 20).map(|i| (i % 241) as u8).collect();
        ws.send_binary(large.clone()).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::binary(large));
        ws.ping("tls").unwrap();
        assert!(matches!(
            ws.next_event_timeout(LIMIT),
            Some(Ok(Incoming::Pong(p))) if &p[..] == b"tls"
        ));
        let closed = ws.close(CloseCode(4001), "bye").unwrap();
        assert!(closed.clean, "{closed:?}");
    });
    let server_closed = server.join().unwrap().unwrap();
    assert_eq!(server_closed.code.0, 4001);
}

#[test]
fn wss_with_an_untrusted_certificate_fails() {
    let (server_tls, _) = tls_pair();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        accept_tls(&listener, server_tls, ServerConfig::default()).map(|_| ())
    });
    // The default client config trusts the public roots only.
    let result = bounded(move || {
        connect(&format!("wss://localhost:{port}/"), ClientConfig::default()).map(|_| ())
    });
    assert!(result.is_err());
    assert!(server.join().unwrap().is_err());
}
