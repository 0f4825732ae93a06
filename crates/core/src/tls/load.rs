//! Reading the PEM files of `--certfile`, `--keyfile` and `--ca-certs` into a rustls server
//! configuration: TLS 1.3 and 1.2 only, ring's cipher suites (AEAD ciphers with forward secrecy
//! only), ALPN `h2` and `http/1.1`, session tickets, and the client certificate policy.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::{ClientCertMode, TlsConfig};

/// Builds the server configuration, or says which file is wrong and why.
pub fn server_config(config: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let chain = certificates(&config.cert_file, "--certfile")?;
    let key = PrivateKeyDer::from_pem_file(&config.key_file)
        .map_err(|e| format!("--keyfile {}: {e}", config.key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match (config.client_cert, &config.ca_certs) {
        (ClientCertMode::None, _) => builder.with_no_client_auth(),
        (mode, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(ca_file, "--ca-certs")? {
                roots
                    .add(certificate)
                    .map_err(|e| format!("--ca-certs {}: {e}", ca_file.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientCertMode::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("--ca-certs {}: {e}", ca_file.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        (_, None) => return Err("--client-cert needs --ca-certs".into()),
    };
    let mut server = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "--certfile {} with --keyfile {}: {e}",
            config.cert_file.display(),
            config.key_file.display()
        )
    })?;
    server.alpn_protocols = if config.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    // Stateless resumption (TLS 1.3 tickets, TLS 1.2 session tickets): the keys are made here,
    // before the workers fork, so a ticket from one worker resumes on the others until the
    // keys rotate.
    server.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| format!("TLS: {e}"))?;
    Ok(Arc::new(server))
}

/// Every certificate in a PEM file; an error if there is none.
fn certificates(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "{flag} {}: no certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(certificates)
}
