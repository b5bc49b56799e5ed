//! TLS settings shared by every runtime's rustls flavour: the default client configuration
//! and the server name of a URL.

use std::io;
use std::sync::Arc;

use tether::handshake::WsUrl;

use crate::ClientConfig;

/// The rustls `ring` crypto provider.
#[must_use]
pub fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that trusts the Mozilla root store (`webpki-roots`), built with the
/// `ring` provider.
pub fn default_client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TLS configuration and server name for connecting to `url` with `config`.
pub fn client_params(
    url: &WsUrl,
    config: &ClientConfig,
) -> io::Result<(
    Arc<rustls::ClientConfig>,
    rustls::pki_types::ServerName<'static>,
)> {
    let tls = match &config.tls {
        Some(tls) => Arc::clone(tls),
        None => default_client_config().map_err(io::Error::other)?,
    };
    let name =
        rustls::pki_types::ServerName::try_from(url.host().trim_matches(['[', ']']).to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    Ok((tls, name))
}
