//! The default rustls client configuration: the ring provider, explicitly (so no process-wide
//! provider has to be installed), and the Mozilla roots from `webpki-roots`.

use std::io;
use std::sync::Arc;

use futures_rustls::rustls::{self, RootCertStore};

/// rustls with the ring provider, safe default protocol versions and the `webpki-roots` trust
/// anchors.
pub fn default_client_config() -> io::Result<Arc<rustls::ClientConfig>> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}
