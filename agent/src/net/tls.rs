//! Cluster-CA mutual TLS on the wire: quinn's client and server crypto built from the
//! loaded [`TlsMaterial`], and the certificate a connection's peer presented.
//!
//! A peer is admitted only with a certificate chained to this cluster's CA (checked by
//! rustls in the handshake) that also names, as a DNS subject alternative name, the node
//! id its hello claims ([`cert_names`](crate::config::tls::cert_names), checked after the
//! hello). Both sides also refuse a certificate that the agent's revocation lists
//! (`[tls] crl`) revoke, at the handshake: only the end entity's serial is looked up, and
//! a certificate of a CA without a list passes (a CA rotation needs no list for the new
//! CA); a list past its `nextUpdate` still counts (`quorate ca revoke` writes lists
//! that never need refreshing). Reading the files and what a certificate says live in
//! [`crate::config::tls`]; this module must never read a file.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use crate::config::tls::{TlsError, TlsMaterial};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn setup(e: &dyn std::fmt::Display) -> TlsError {
    TlsError::Setup(e.to_string())
}

/// Server side: client certificates are mandatory, must chain to the cluster CA, and must
/// not be revoked.
pub fn server_config(
    material: &TlsMaterial,
    alpns: &[&[u8]],
) -> Result<quinn::ServerConfig, TlsError> {
    let mut builder =
        rustls::server::WebPkiClientVerifier::builder_with_provider(material.roots(), provider());
    let crls = material.revocations();
    if !crls.ders().is_empty() {
        builder = builder
            .with_crls(crls.ders().iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    let verifier = builder.build().map_err(|e| setup(&e))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(material.chain().to_vec(), material.key().clone_key())
        .map_err(|e| setup(&e))?;
    tls.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| setup(&e))?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

/// Client side: the server must present a certificate of the cluster CA naming
/// [`proto::PEER_SERVER_NAME`], not revoked; this node presents its own.
pub fn client_config(material: &TlsMaterial, alpn: &[u8]) -> Result<quinn::ClientConfig, TlsError> {
    let mut builder =
        rustls::client::WebPkiServerVerifier::builder_with_provider(material.roots(), provider());
    let crls = material.revocations();
    if !crls.ders().is_empty() {
        builder = builder
            .with_crls(crls.ders().iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    let verifier = builder.build().map_err(|e| setup(&e))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(material.chain().to_vec(), material.key().clone_key())
        .map_err(|e| setup(&e))?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| setup(&e))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// The end-entity certificate a connection's peer presented, if any.
pub fn peer_cert(conn: &quinn::Connection) -> Option<CertificateDer<'static>> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().cloned()
}
