//! The TLS files the config names (`[tls]`): their paths, and loading them — PEM
//! certificates and keys, the cluster CA, the key-mode rule, the revocation list — plus
//! what a certificate says (the names it carries, its serial, when it ends).
//!
//! Owns everything about the files and the certificates in them that needs no socket, so
//! the config's validator, `quorate ca` and the endpoint read them one way. It must never
//! build a TLS or QUIC configuration, verify a peer, or import anything above `config`
//! (the endpoint's TLS module builds on this one, never the other way).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, pem::PemObject,
};

/// Where the agent's TLS files are (`[tls]`, resolved against the config's directory).
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

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

/// Replaces `{node}` in a `[tls]` path (as written) by the node id, so one config file
/// serves every node; any other `{…}` is an error naming it (the reason alone). The
/// agent's check and the operator tool, which reads the same `[tls]`, expand alike.
pub fn expand_node(s: &str, node: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let Some(j) = after.find('}') else {
            out.push_str(after);
            return Ok(out);
        };
        let placeholder = &after[..=j];
        if placeholder != "{node}" {
            return Err(format!(
                "{s:?}: {placeholder} is not a placeholder: only {{node}} is replaced (by the \
                 node id)"
            ));
        }
        out.push_str(node);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
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

/// The certificate revocation lists an agent enforces (`[tls] crl`, written by `quorate
/// ca revoke`): each one signed by a certificate of the cluster CA file, at most one per
/// CA. Empty when the config names none.
///
/// Loading proves the signature, so a list from another cluster's CA (of the same name)
/// or a damaged file is refused at `--check-config`/reload, never taken into the
/// handshake verifier, where it would refuse every peer of that CA.
#[derive(Debug, Default)]
pub struct Revocations {
    ders: Vec<CertificateRevocationListDer<'static>>,
    lists: Vec<webpki::CertRevocationList<'static>>,
    /// Revoked serials, all lists together.
    count: usize,
}

impl Revocations {
    /// Reads the PEM revocation lists in `path` and checks each against the CA
    /// certificates `cas` (the `[tls] ca` file).
    pub fn load(path: &Path, cas: &[CertificateDer<'_>]) -> Result<Self, TlsError> {
        Self::parse(&read(path)?, cas).map_err(|reason| file_err(path, reason))
    }

    /// [`load`](Self::load) from the file's bytes; the error is the reason alone.
    pub fn parse(pem: &[u8], cas: &[CertificateDer<'_>]) -> Result<Self, String> {
        let ders = CertificateRevocationListDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM revocation list file: {e}"))?;
        if ders.is_empty() {
            let why = "holds no revocation list (an `X509 CRL` PEM block, as `quorate ca \
                       revoke` writes to crl.pem)";
            return Err(why.to_owned());
        }
        let mut out = Self::default();
        let mut issuers: Vec<Vec<u8>> = Vec::new();
        for der in ders {
            let (count, issuer) = check_crl(&der, cas)?;
            if issuers.contains(&issuer) {
                let why = "holds two revocation lists of the same CA: keep only the newest \
                           (the crl.pem `quorate ca revoke` wrote last)";
                return Err(why.to_owned());
            }
            issuers.push(issuer);
            let list = webpki::OwnedCertRevocationList::from_der(der.as_ref())
                .map_err(|e| format!("revocation list not usable: {e}"))?;
            out.lists.push(list.into());
            out.ders.push(der);
            out.count += count;
        }
        Ok(out)
    }

    /// The lists as the handshake verifiers take them; empty: no revocation checks.
    pub fn ders(&self) -> &[CertificateRevocationListDer<'static>] {
        &self.ders
    }

    /// How many serials the lists revoke, all together.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The serial (hex) of `cert` if a list of its issuer revokes it.
    pub fn revoked(&self, cert: &CertificateDer<'_>) -> Option<String> {
        let ee = webpki::EndEntityCert::try_from(cert).ok()?;
        self.lists
            .iter()
            .filter(|l| l.issuer() == ee.issuer())
            .any(|l| matches!(l.find_serial(ee.serial()), Ok(Some(_))))
            .then(|| hex(ee.serial()))
    }
}

/// One revocation list against the CA certificates: parses, names one of them as its
/// issuer, carries that CA's signature. Gives the count of serials it revokes and its
/// issuer's name (DER), or why not.
fn check_crl(der: &[u8], cas: &[CertificateDer<'_>]) -> Result<(usize, Vec<u8>), String> {
    let (_, crl) = x509_parser::parse_x509_crl(der)
        .map_err(|e| format!("a revocation list cannot be parsed: {e}"))?;
    let issuer = crl.issuer();
    let same_name: Vec<_> = cas
        .iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c).ok().map(|(_, c)| c))
        .filter(|ca| ca.subject().as_raw() == issuer.as_raw())
        .collect();
    if same_name.is_empty() {
        return Err(format!(
            "the revocation list of \"{issuer}\" is not from a CA in tls.ca: copy the \
             crl.pem of this cluster's CA directory"
        ));
    }
    if !same_name
        .iter()
        .any(|ca| crl.verify_signature(ca.public_key()).is_ok())
    {
        return Err(format!(
            "the revocation list of \"{issuer}\" is not signed by the CA in tls.ca (another \
             cluster's CA, or a damaged file): copy the crl.pem of this cluster's CA directory"
        ));
    }
    Ok((
        crl.iter_revoked_certificates().count(),
        issuer.as_raw().to_vec(),
    ))
}

/// A certificate's serial number, as lowercase hex (how `quorate ca` and log lines name
/// one), or `None` if it cannot be parsed.
pub fn serial(cert: &CertificateDer<'_>) -> Option<String> {
    webpki::EndEntityCert::try_from(cert)
        .ok()
        .map(|ee| hex(ee.serial()))
}

/// The end of a certificate's validity (`notAfter`) in seconds since the Unix epoch, or
/// `None` if it cannot be parsed (the config check's expiry rule; log lines use
/// [`not_after`]).
pub fn not_after_unix(cert: &CertificateDer<'_>) -> Option<i64> {
    x509_parser::parse_x509_certificate(cert)
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The loaded CA, certificate chain and key of this node, and the revocation lists it
/// enforces.
#[derive(Debug)]
pub struct TlsMaterial {
    roots: Arc<rustls::RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    revocations: Arc<Revocations>,
}

impl TlsMaterial {
    /// The agent's own material: as [`load`](Self::load), the key must be readable by
    /// nobody but its owner and the agent's group, and the revocation lists in `crl`
    /// (`[tls] crl`), if any, are checked against the CA and enforced.
    pub fn load_agent(paths: &TlsPaths, crl: Option<&Path>) -> Result<Self, TlsError> {
        load_agent_key(&paths.key)?;
        let mut material = Self::load(paths)?;
        if let Some(crl) = crl {
            material.revocations = Arc::new(Revocations::load(crl, &load_ca(&paths.ca)?)?);
        }
        Ok(material)
    }

    /// A client's material (the `quorate` tool, tests): no revocation lists.
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
            revocations: Arc::default(),
        })
    }

    /// This node's own certificate (the first of its chain).
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.chain.first()
    }

    /// Whether this is the same CA, chain, key and revocation lists as `other` (a reload
    /// that found the same files).
    pub fn same_as(&self, other: &TlsMaterial) -> bool {
        self.chain == other.chain
            && self.key.secret_der() == other.key.secret_der()
            && self.roots.roots == other.roots.roots
            && self.revocations.ders == other.revocations.ders
    }

    /// The revocation lists this agent enforces (none for a client's material).
    pub fn revocations(&self) -> Arc<Revocations> {
        self.revocations.clone()
    }

    /// The cluster CA's certificates, the roots a peer's chain must end in.
    pub fn roots(&self) -> Arc<rustls::RootCertStore> {
        self.roots.clone()
    }

    /// This node's certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// This node's private key.
    pub fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }
}

/// The end of a certificate's validity (`notAfter`), as `YYYY-MM-DDTHH:MM:SSZ`, for log
/// lines and the CA commands; `None` for a certificate x509-parser cannot read or one
/// that ended before 1970.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<String> {
    let secs = u64::try_from(not_after_unix(cert)?).ok()?;
    let end = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))?;
    Some(humantime::format_rfc3339_seconds(end).to_string())
}

/// The end of a certificate's validity (`notAfter`) as a wall time, for the `certs`
/// check and its metric; `None` for a certificate x509-parser cannot read. An end
/// before 1970 is the epoch (long expired either way).
pub fn expires(cert: &CertificateDer<'_>) -> Option<proto::WallMicros> {
    let secs = u64::try_from(not_after_unix(cert)?).unwrap_or(0);
    Some(proto::WallMicros(secs.saturating_mul(1_000_000)))
}
