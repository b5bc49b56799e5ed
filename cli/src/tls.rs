//! TLS for `wss://`: a rustls client configuration whose certificate verifier records why a
//! certificate failed (so `--insecure` can still say what it let through), and plain-words
//! explanations of rustls's typed errors.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

/// The ALPN protocol offered: a WebSocket upgrade is HTTP/1.1 (RFC 6455 §4.1).
pub const ALPN: &[u8] = b"http/1.1";

/// A verifier that runs the Web PKI checks and remembers their error; with `insecure` it then
/// accepts the certificate anyway.
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    insecure: bool,
    failure: Mutex<Option<Error>>,
}

impl RecordingVerifier {
    /// The certificate error the checks found, if any.
    pub fn failure(&self) -> Option<Error> {
        self.failure.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let checked = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match checked {
            Ok(verified) => Ok(verified),
            Err(error) => {
                if let Ok(mut failure) = self.failure.lock() {
                    *failure = Some(error.clone());
                }
                if self.insecure {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(error)
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client configuration trusting the Mozilla roots (`webpki-roots`, as the adapters do) and
/// the certificates in `cacert`, offering ALPN `http/1.1`, with a [`RecordingVerifier`].
pub fn client_config(
    insecure: bool,
    cacert: Option<&Path>,
) -> io::Result<(Arc<rustls::ClientConfig>, Arc<RecordingVerifier>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = cacert {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        }
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(io::Error::other)?;
    let verifier = Arc::new(RecordingVerifier {
        inner,
        insecure,
        failure: Mutex::new(None),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok((Arc::new(config), verifier))
}

/// The rustls error inside an I/O error from the TLS stream, if there is one.
pub fn rustls_error(error: &io::Error) -> Option<&Error> {
    error.get_ref()?.downcast_ref::<Error>()
}

/// What a TLS failure means, and what to do about it.
pub fn explain(error: &Error, host: &str) -> (String, Vec<String>) {
    match error {
        Error::InvalidCertificate(cert) => explain_certificate(cert, host),
        Error::AlertReceived(alert) => (
            format!("the server ended the TLS handshake with the alert {alert:?}"),
            vec![
                "The server refused our TLS hello: it may not serve this host name (SNI), or \
                 need a TLS version or client certificate this client does not offer."
                    .into(),
            ],
        ),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => (
            format!("the server did not answer in TLS ({error})"),
            vec![
                "Nothing speaks TLS on this port: if the server is plain WebSocket, use ws:// \
                 instead of wss://."
                    .into(),
            ],
        ),
        other => (
            format!("TLS failed: {other}"),
            vec!["Check the server's TLS setup (certificate chain, protocol versions).".into()],
        ),
    }
}

fn explain_certificate(error: &CertificateError, host: &str) -> (String, Vec<String>) {
    let renew = "Renew the server's certificate (and check the clock of this machine); \
                 --insecure shows what lies behind it meanwhile.";
    match error {
        CertificateError::Expired => (
            "the certificate has expired".into(),
            vec![renew.into()],
        ),
        CertificateError::ExpiredContext { time, not_after } => (
            format!(
                "the certificate has expired: valid until {}, now is {}",
                utc(*not_after),
                utc(*time)
            ),
            vec![renew.into()],
        ),
        CertificateError::NotValidYet => (
            "the certificate is not valid yet".into(),
            vec!["Check the clock of this machine and of the server.".into()],
        ),
        CertificateError::NotValidYetContext { time, not_before } => (
            format!(
                "the certificate is not valid yet: valid from {}, now is {}",
                utc(*not_before),
                utc(*time)
            ),
            vec!["Check the clock of this machine and of the server.".into()],
        ),
        CertificateError::UnknownIssuer => (
            "the certificate's issuer is not trusted (unknown issuer: self-signed, or a private CA)"
                .into(),
            vec![
                "Use a certificate from a public CA, or trust the issuer with --cacert CA.pem; \
                 for a test server, --insecure skips the check."
                    .into(),
            ],
        ),
        CertificateError::NotValidForName => (
            format!("the certificate is not valid for the name {host:?}"),
            vec!["Connect with a name the certificate lists, or reissue it for this one.".into()],
        ),
        CertificateError::NotValidForNameContext { expected, presented } => (
            format!(
                "the certificate is for {} but we asked for {}",
                presented
                    .iter()
                    .map(|name| bare_name(name))
                    .collect::<Vec<_>>()
                    .join(", "),
                expected.to_str()
            ),
            vec!["Connect with a name the certificate lists, or reissue it for this one.".into()],
        ),
        other => (
            format!("the certificate was refused: {other:?}"),
            vec!["Check the certificate chain the server sends.".into()],
        ),
    }
}

/// A presented name without rustls's debug wrapping: `DnsName("a.example")` is `a.example`.
fn bare_name(name: &str) -> &str {
    name.split_once("(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .unwrap_or(name)
}

/// A Unix time as `YYYY-MM-DD hh:mm:ss UTC` (the civil calendar from days since 1970).
fn utc(time: UnixTime) -> String {
    let secs = time.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn presented_names() {
        assert_eq!(bare_name("DnsName(\"example.org\")"), "example.org");
        assert_eq!(bare_name("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(
            utc(UnixTime::since_unix_epoch(Duration::ZERO)),
            "1970-01-01 00:00:00 UTC"
        );
        assert_eq!(
            utc(UnixTime::since_unix_epoch(Duration::from_secs(
                951_782_400 + 3661
            ))),
            "2000-02-29 01:01:01 UTC"
        );
    }
}
