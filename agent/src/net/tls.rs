//! Cluster-CA mutual TLS: loading PEM files, building quinn's client and server crypto,
//! and binding a certificate to the node id it must name.
//!
//! A peer is admitted only with a certificate chained to this cluster's CA (checked by
//! rustls in the handshake) that also names, as a DNS subject alternative name, the node
//! id its hello claims ([`cert_names`], checked after the hello).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};

use crate::config::TlsPaths;

/// A TLS file that could not be used. The message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

fn file_err(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_err(path, e))
}

/// Reads every certificate in a PEM file; at least one must be there.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(path, "holds no certificate"));
    }
    for c in &certs {
        webpki::EndEntityCert::try_from(c)
            .map_err(|e| file_err(path, format!("certificate cannot be parsed: {e}")))?;
    }
    Ok(certs)
}

/// Reads the cluster CA certificates.
pub fn load_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = load_certs(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in &certs {
        roots
            .add(c.clone())
            .map_err(|e| file_err(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(certs)
}

/// Reads the agent's own private key: refuses one that others can read (see
/// [`key_exposure`]), then [`load_key`]. Only the agent judges the mode: an operator's
/// tool reading the same key as root (not in the agent's group) is not the service.
pub fn load_agent_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let meta = std::fs::metadata(path).map_err(|e| file_err(path, e))?;
    if let Some(reason) = key_exposure(&meta, &own_groups()) {
        return Err(file_err(path, reason));
    }
    load_key(path)
}

/// Reads a private key (PKCS#8, SEC1 or PKCS#1 PEM).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| file_err(path, format!("not a PEM private key: {e}")))
}

/// Why a key file is readable beyond its owner and the agent's own groups, with the fix;
/// `None` when it is not. "Readable by the service's group" is allowed so a key can be
/// `root:quorate 0640` (owned by root, readable by the agent, not writable by it).
pub fn key_exposure(meta: &std::fs::Metadata, groups: &[u32]) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let mode = meta.mode() & 0o777;
    let others = mode & 0o004 != 0;
    let foreign_group = mode & 0o040 != 0 && !groups.contains(&meta.gid());
    (others || foreign_group).then(|| {
        format!(
            "private key is readable by {} (mode {mode:04o}): run `chmod 0640` on it and give \
             it the agent's group (`chown root:quorate`), or `chmod 0600` if the agent owns it",
            if others {
                "every user"
            } else {
                "a group the agent is not in"
            }
        )
    })
}

/// The agent's effective and supplementary group ids.
fn own_groups() -> Vec<u32> {
    let mut groups: Vec<u32> = rustix::process::getgroups()
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    groups.push(rustix::process::getegid().as_raw());
    groups
}

/// Whether `cert` names `name` as a DNS subject alternative name.
pub fn cert_names(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let Ok(server_name) = ServerName::try_from(name) else {
        return false;
    };
    ee.verify_is_valid_for_subject_name(&server_name).is_ok()
}

#[cfg(test)]
mod key_tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_key_others_can_read_is_refused_naming_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n1.key");
        std::fs::write(&path, "not read: the mode is judged first").unwrap();
        let gid = {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(&path).unwrap().gid()
        };
        let cases: &[(u32, &[u32], bool)] = &[
            (0o600, &[], true),
            (0o640, &[gid], true),
            (0o640, &[], false),
            (0o644, &[gid], false),
            (0o604, &[gid], false),
            (0o400, &[], true),
        ];
        for (mode, groups, ok) in cases {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            let got = key_exposure(&meta, groups);
            assert_eq!(
                got.is_none(),
                *ok,
                "mode {mode:o}, groups {groups:?}: {got:?}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_agent_key(&path).unwrap_err().to_string();
        assert!(e.contains("n1.key") && e.contains("chmod 0640"), "{e}");
    }
}

/// The loaded CA, certificate chain and key of this node.
#[derive(Debug)]
pub struct TlsMaterial {
    roots: Arc<rustls::RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl TlsMaterial {
    /// The agent's own material: as [`load`](Self::load), and the key must be readable
    /// by nobody but its owner and the agent's group.
    pub fn load_agent(paths: &TlsPaths) -> Result<Self, TlsError> {
        load_agent_key(&paths.key)?;
        Self::load(paths)
    }

    /// A client's material (the `quorate` tool, tests).
    pub fn load(paths: &TlsPaths) -> Result<Self, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in load_ca(&paths.ca)? {
            roots
                .add(c)
                .map_err(|e| file_err(&paths.ca, format!("not a usable CA certificate: {e}")))?;
        }
        Ok(Self {
            roots: Arc::new(roots),
            chain: load_certs(&paths.cert)?,
            key: load_key(&paths.key)?,
        })
    }

    /// This node's own certificate (the first of its chain).
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.chain.first()
    }

    /// Whether this is the same CA, chain and key as `other` (a reload that found the
    /// same files).
    pub fn same_as(&self, other: &TlsMaterial) -> bool {
        self.chain == other.chain
            && self.key.secret_der() == other.key.secret_der()
            && self.roots.roots == other.roots.roots
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// Server side: client certificates are mandatory and must chain to the cluster CA.
    pub fn server_config(&self, alpns: &[&[u8]]) -> Result<quinn::ServerConfig, TlsError> {
        let setup = |e: &dyn std::fmt::Display| TlsError::Setup(e.to_string());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            self.roots.clone(),
            Self::provider(),
        )
        .build()
        .map_err(|e| setup(&e))?;
        let mut tls = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| setup(&e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| setup(&e))?;
        tls.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
        let crypto =
            quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| setup(&e))?;
        Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
    }

    /// Client side: the server must present a certificate of the cluster CA naming
    /// [`proto::PEER_SERVER_NAME`]; this node presents its own.
    pub fn client_config(&self, alpn: &[u8]) -> Result<quinn::ClientConfig, TlsError> {
        let setup = |e: &dyn std::fmt::Display| TlsError::Setup(e.to_string());
        let mut tls = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| setup(&e))?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| setup(&e))?;
        tls.alpn_protocols = vec![alpn.to_vec()];
        let crypto =
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| setup(&e))?;
        Ok(quinn::ClientConfig::new(Arc::new(crypto)))
    }
}

/// The end-entity certificate a connection's peer presented, if any.
pub fn peer_cert(conn: &quinn::Connection) -> Option<CertificateDer<'static>> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().cloned()
}

/// The end of a certificate's validity (`notAfter`), as `YYYY-MM-DDTHH:MM:SSZ`, for log
/// lines. A few lines of DER walking rather than an X.509 crate: only this one field is
/// read, and `None` (not a panic) answers anything unexpected.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<String> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
    //   serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter }, … } … }
    let (_, cert, _) = der_tlv(cert.as_ref()).filter(|(t, _, _)| *t == 0x30)?;
    let (_, tbs, _) = der_tlv(cert).filter(|(t, _, _)| *t == 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xA0) {
        rest = der_tlv(rest)?.2;
    }
    for _ in 0..3 {
        rest = der_tlv(rest)?.2; // serial, signature algorithm, issuer
    }
    let (_, validity, _) = der_tlv(rest).filter(|(t, _, _)| *t == 0x30)?;
    let (_, _, rest) = der_tlv(validity)?;
    let (tag, time, _) = der_tlv(rest)?;
    let time = std::str::from_utf8(time).ok()?;
    let full = match tag {
        // UTCTime YYMMDDHHMMSSZ: years 50–99 are 19xx (RFC 5280 4.1.2.5.1).
        0x17 if time.len() == 13 => {
            let yy: u32 = time.get(..2)?.parse().ok()?;
            format!("{}{time}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 if time.len() == 15 => time.to_owned(),
        _ => return None,
    };
    if !full[..14].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

/// One DER tag-length-value: (tag, contents, what follows).
fn der_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, b) = b.split_first()?;
    let (len, b) = if first < 0x80 {
        (usize::from(first), b)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n]
            .iter()
            .fold(0usize, |acc, x| (acc << 8) | usize::from(*x));
        (len, &b[n..])
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_after_of_an_issued_certificate() {
        let dir = tempfile::tempdir().unwrap();
        crate::ca::init(dir.path()).unwrap();
        crate::ca::issue_node(dir.path(), &proto::NodeId::new("n1").unwrap()).unwrap();
        let cert = &load_certs(&dir.path().join("n1.pem")).unwrap()[0];
        let end = not_after(cert).unwrap();
        // Five years from now, at midnight UTC (ca.rs).
        assert!(end.ends_with("T00:00:00Z") && end.len() == 20, "{end}");
        assert!(end.as_str() > "2030-01-01", "{end}");
        assert_eq!(
            not_after(&CertificateDer::from(vec![0x30, 0x03, 1, 2])),
            None
        );
        assert_eq!(not_after(&CertificateDer::from(Vec::new())), None);
    }
}
