//! TLS for PostgreSQL clients (`--tls-cert` and `--tls-key`): the certificate chain and key are
//! read from PEM files when the router starts, and clients that ask for TLS (`sslmode=require`
//! and above) get it through rustls; those that do not still connect in the clear, as with a
//! PostgreSQL server whose `pg_hba.conf` allows both.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// The acceptor for the certificate chain in `cert` and the private key in `key` (PEM).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls_cert: cannot read a PEM certificate from {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("tls_cert: {} holds no PEM certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls_key: cannot read a PEM private key from {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_key: the key does not go with the certificate, or is unusable: {e}"))?;
    // PostgreSQL 17 clients may negotiate TLS directly, naming the protocol by ALPN.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Whether a connection whose first bytes are `first` asks for TLS: an SSLRequest (length 8,
/// code 80877103), or a TLS handshake record straight away (PostgreSQL 17's direct TLS).
pub fn asks_for_tls(first: &[u8]) -> bool {
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    first == SSL_REQUEST || first.first() == Some(&0x16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_requests_are_recognised() {
        assert!(asks_for_tls(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
        assert!(asks_for_tls(&[0x16, 3, 1, 0, 0xc8, 1, 0, 0]));
        // A StartupMessage (protocol 3.0) and a CancelRequest are not.
        assert!(!asks_for_tls(&[0, 0, 0, 0x29, 0, 3, 0, 0]));
        assert!(!asks_for_tls(&[0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e]));
    }
}
