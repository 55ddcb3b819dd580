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
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .with_client_cert_verifier(client_verifier(material)?)
        .with_single_cert(material.chain().to_vec(), material.key().clone_key())
        .map_err(|e| setup(&e))?;
    tls.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| setup(&e))?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

/// Client side: the server must present a certificate of the cluster CA naming
/// [`proto::PEER_SERVER_NAME`], not revoked; this node presents its own.
pub fn client_config(material: &TlsMaterial, alpn: &[u8]) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .with_webpki_verifier(server_verifier(material)?)
        .with_client_auth_cert(material.chain().to_vec(), material.key().clone_key())
        .map_err(|e| setup(&e))?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| setup(&e))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// How the server side judges a client's certificate: chained to a cluster CA, not
/// revoked by that CA's list.
fn client_verifier(
    material: &TlsMaterial,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut builder =
        rustls::server::WebPkiClientVerifier::builder_with_provider(material.roots(), provider());
    let crls = material.revocations();
    if !crls.ders().is_empty() {
        builder = builder
            .with_crls(crls.ders().iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    builder.build().map_err(|e| setup(&e))
}

/// How the client side judges a server's certificate, likewise.
fn server_verifier(
    material: &TlsMaterial,
) -> Result<Arc<rustls::client::WebPkiServerVerifier>, TlsError> {
    let mut builder =
        rustls::client::WebPkiServerVerifier::builder_with_provider(material.roots(), provider());
    let crls = material.revocations();
    if !crls.ders().is_empty() {
        builder = builder
            .with_crls(crls.ders().iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    builder.build().map_err(|e| setup(&e))
}

/// The end-entity certificate a connection's peer presented, if any.
pub fn peer_cert(conn: &quinn::Connection) -> Option<CertificateDer<'static>> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().cloned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use proto::NodeId;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::{ServerName, UnixTime};

    use super::*;
    use crate::ca::{self, Kind};
    use crate::config::TlsPaths;
    use crate::config::tls::load_certs;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn cert(dir: &Path, name: &str) -> CertificateDer<'static> {
        load_certs(&dir.join(format!("{name}.pem")))
            .unwrap()
            .remove(0)
    }

    /// Both verifiers a node builds, during a CA rotation: trusting CAs `a` and `b`, with
    /// `a`'s list (revoking alice and n3 of `a`), then both CAs' lists in one file. A
    /// revoked certificate is refused as revoked, on either side; another of the same CA
    /// and any of the other CA pass — each CA's list is matched to its own certificates.
    #[test]
    fn a_list_revokes_its_own_cas_certificates_and_no_others() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for dir in [&a, &b] {
            ca::init(dir).unwrap();
            for n in ["n1", "n2", "n3"] {
                ca::issue_node(dir, &id(n)).unwrap();
            }
            ca::issue_operator(dir, &id("alice")).unwrap();
        }
        ca::revoke(&a, &id("alice"), Kind::Operator).unwrap();
        ca::revoke(&a, &id("n3"), Kind::Node).unwrap();
        let both = tmp.path().join("both.pem");
        let pem = |dir: &Path, f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        std::fs::write(&both, pem(&a, "ca.pem") + &pem(&b, "ca.pem")).unwrap();
        let paths = TlsPaths {
            ca: both.clone(),
            cert: a.join("n1.pem"),
            key: a.join("n1.key"),
        };
        let now = UnixTime::now();
        let judge = |material: &TlsMaterial, who: &CertificateDer<'static>| {
            let client = client_verifier(material)
                .unwrap()
                .verify_client_cert(who, &[], now)
                .map(|_| ());
            let server = server_verifier(material).map(|v| {
                v.verify_server_cert(
                    who,
                    &[],
                    &ServerName::try_from(proto::PEER_SERVER_NAME).unwrap(),
                    &[],
                    now,
                )
                .map(|_| ())
            });
            (client, server)
        };
        let revoked = Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Revoked,
        ));

        // Without a list: everyone of either CA.
        let plain = TlsMaterial::load_agent(&paths, None).unwrap();
        assert!(judge(&plain, &cert(&a, "alice")).0.is_ok());
        assert!(judge(&plain, &cert(&a, "n3")).1.unwrap().is_ok());

        // B's own list revokes B's n2.
        ca::revoke(&b, &id("n2"), Kind::Node).unwrap();
        let lists = tmp.path().join("lists.pem");
        for file in [pem(&a, "crl.pem"), pem(&a, "crl.pem") + &pem(&b, "crl.pem")] {
            std::fs::write(&lists, file).unwrap();
            let m = TlsMaterial::load_agent(&paths, Some(&lists)).unwrap();
            assert_eq!(judge(&m, &cert(&a, "alice")).0, revoked);
            let (client, server) = judge(&m, &cert(&a, "n3"));
            assert_eq!(client, revoked);
            assert_eq!(server.unwrap(), revoked);
            let (client, server) = judge(&m, &cert(&a, "n2"));
            assert_eq!((client, server.unwrap()), (Ok(()), Ok(())));
            assert!(judge(&m, &cert(&b, "alice")).0.is_ok());
            let (client, server) = judge(&m, &cert(&b, "n3"));
            assert_eq!((client, server.unwrap()), (Ok(()), Ok(())));
        }
        // With B's list in the file too, B's n2 is refused (A's list alone knew nothing
        // of B's certificates).
        let m = TlsMaterial::load_agent(&paths, Some(&lists)).unwrap();
        assert_eq!(judge(&m, &cert(&b, "n2")).0, revoked);
        assert!(judge(&m, &cert(&a, "n2")).0.is_ok());
    }
}
