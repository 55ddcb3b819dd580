//! The cluster's own certificate authority: `quorate ca init`, `quorate ca issue` and
//! `quorate ca renew`.
//!
//! A CA directory holds `ca.pem` (the CA certificate, given to every node) and `ca.key`
//! (its private key, which admits anyone: keep it off the nodes), plus the certificates
//! issued from it, `NAME.pem` / `NAME.key`. Every key is ECDSA P-256 and written with
//! mode 0600; no function here ever overwrites a key.
//!
//! Renewal keeps the key: `renew` signs a new certificate (new serial, new validity,
//! same names) for the public key of the existing `NAME.key`, and replaces `NAME.pem`
//! atomically (a new file renamed over the old one), so an agent reloading at that
//! moment reads the old certificate or the new one, never half of one. Keeping the key
//! is what certbot-style renewals do, it keeps the promise above, and the key never has
//! to travel again; rotate a key by issuing anew (remove `NAME.key`, `ca issue`).
//!
//! What the certificates say, and what `config::tls` and `net::tls` may rely on:
//! - CA: CN [`CA_COMMON_NAME`], basic constraints CA with path length 0 (no
//!   intermediates), key usages certificate and CRL signing, 10 years.
//! - Node `N`: CN `N`, DNS SANs `N` and [`proto::PEER_SERVER_NAME`], extended key usages
//!   serverAuth and clientAuth, 5 years. Peers dial by address and verify
//!   `PEER_SERVER_NAME`; the node id a peer claims is then checked against its DNS SANs.
//! - Operator `O`: CN `operator O`, the single DNS SAN `O.operator.quorate`
//!   ([`operator_dns_name`]), extended key usage clientAuth only. Node ids cannot contain
//!   dots, so an operator certificate never names a node and can never serve.
//!
//! Validity starts a day before issue, so that a node whose clock is somewhat behind the
//! machine that issued its certificate still accepts it.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use proto::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

/// File name of the CA certificate inside a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// Common name of every quorate cluster CA.
pub const CA_COMMON_NAME: &str = "quorate cluster CA";
/// DNS suffix of operator certificates' only name: `NAME.operator.quorate`.
pub const OPERATOR_DNS_SUFFIX: &str = "operator.quorate";

const CA_VALID_DAYS: i64 = 3653; // 10 years
const LEAF_VALID_DAYS: i64 = 1827; // 5 years
const BACKDATE_DAYS: i64 = 1;

/// Why a CA operation failed. Every message names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: already exists; refusing to overwrite it", path.display())]
    Exists { path: PathBuf },
    #[error("{}: not a usable PEM private key: {error}", path.display())]
    BadKey { path: PathBuf, error: rcgen::Error },
    #[error("{}: not a PEM certificate: {error}", path.display())]
    BadCert {
        path: PathBuf,
        error: rustls_pki_types::pem::Error,
    },
    #[error(
        "{}: does not belong to {} or was not made by `quorate ca init`: \
         a certificate signed with that key does not verify ({reason:?})",
        cert.display(), key.display()
    )]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: webpki::Error,
    },
    #[error("{}: cannot generate the certificate: {error}", path.display())]
    Generate { path: PathBuf, error: rcgen::Error },
    #[error("{}: the name {name:?} is reserved for the CA's own files", path.display())]
    Reserved { path: PathBuf, name: String },
    #[error("{}: no key to renew a certificate for; issue one first with `quorate ca issue`", path.display())]
    NoKey { path: PathBuf },
}

/// The DNS name an operator certificate for `name` carries: `NAME.operator.quorate`.
pub fn operator_dns_name(name: &NodeId) -> String {
    format!("{name}.{OPERATOR_DNS_SUFFIX}")
}

/// Creates a new cluster CA in `dir`: `ca.pem` and `ca.key` (mode 0600), in a directory
/// of mode 0700 — created so if missing, narrowed to it if it exists (the CA key must not
/// sit in a directory others can list or write into). Refuses if `ca.key` already exists.
pub fn init(dir: &Path) -> Result<(), CaError> {
    let io = |error| CaError::Io {
        path: dir.to_path_buf(),
        error,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    let key_path = dir.join(CA_KEY_FILE);
    let cert_path = dir.join(CA_CERT_FILE);
    if key_path.exists() {
        return Err(CaError::Exists { path: key_path });
    }

    let key = new_key(&key_path)?;
    let mut params = ca_params();
    set_validity(&mut params, wall_now(), CA_VALID_DAYS);
    let cert = params
        .self_signed(&key)
        .map_err(|error| CaError::Generate {
            path: cert_path.clone(),
            error,
        })?;

    write_pair(&key_path, &key.serialize_pem(), &cert_path, &cert.pem())
}

/// Issues a node certificate from the CA in `dir`: `NODE.pem` and `NODE.key` (mode 0600),
/// naming `node` and [`proto::PEER_SERVER_NAME`], for server and client authentication.
/// Refuses to overwrite an existing `NODE.key`.
pub fn issue_node(dir: &Path, node: &NodeId) -> Result<(), CaError> {
    let params = node_params(dir, node)?;
    issue(dir, node, params)
}

fn node_params(dir: &Path, node: &NodeId) -> Result<CertificateParams, CaError> {
    let mut params = leaf_params(
        dir,
        node,
        vec![node.to_string(), proto::PEER_SERVER_NAME.to_string()],
    )?;
    params
        .distinguished_name
        .push(DnType::CommonName, node.as_str());
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params)
}

/// Issues an operator certificate from the CA in `dir`: `NAME.pem` and `NAME.key` (mode
/// 0600), naming only `NAME.operator.quorate`, for client authentication only. Refuses to
/// overwrite an existing `NAME.key`.
pub fn issue_operator(dir: &Path, name: &NodeId) -> Result<(), CaError> {
    let params = operator_params(dir, name)?;
    issue(dir, name, params)
}

fn operator_params(dir: &Path, name: &NodeId) -> Result<CertificateParams, CaError> {
    let mut params = leaf_params(dir, name, vec![operator_dns_name(name)])?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("operator {name}"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

/// Renews `node`'s certificate from the CA in `dir`, keeping `NODE.key`: a new
/// `NODE.pem` with a fresh serial and validity and the same names. Returns the new
/// certificate's end of validity (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn renew_node(dir: &Path, node: &NodeId) -> Result<String, CaError> {
    let params = node_params(dir, node)?;
    renew(dir, node, params)
}

/// Renews operator `name`'s certificate, keeping `NAME.key` (see [`renew_node`]).
pub fn renew_operator(dir: &Path, name: &NodeId) -> Result<String, CaError> {
    let params = operator_params(dir, name)?;
    renew(dir, name, params)
}

/// The CA's parameters without validity. `issue` rebuilds the issuer from these rather
/// than parsing `ca.pem` (which would need an X.509 parser): the issuer name written into
/// a leaf must equal the CA's subject byte for byte, and the chain check in `issue`
/// proves that it does before anything is written.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params
}

fn leaf_params(dir: &Path, name: &NodeId, sans: Vec<String>) -> Result<CertificateParams, CaError> {
    let cert_path = leaf_path(dir, name, "pem");
    // `ca.pem`/`ca.key` are the CA's own.
    if name.as_str() == "ca" {
        return Err(CaError::Reserved {
            path: cert_path,
            name: name.to_string(),
        });
    }
    let mut params = CertificateParams::new(sans).map_err(|error| CaError::Generate {
        path: cert_path,
        error,
    })?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, wall_now(), LEAF_VALID_DAYS);
    Ok(params)
}

fn issue(dir: &Path, name: &NodeId, params: CertificateParams) -> Result<(), CaError> {
    let key_path = leaf_path(dir, name, "key");
    let cert_path = leaf_path(dir, name, "pem");
    if key_path.exists() {
        return Err(CaError::Exists { path: key_path });
    }
    let key = new_key(&key_path)?;
    let cert = sign(dir, &cert_path, params, &key)?;
    write_pair(&key_path, &key.serialize_pem(), &cert_path, &cert.pem())
}

fn renew(dir: &Path, name: &NodeId, params: CertificateParams) -> Result<String, CaError> {
    let key_path = leaf_path(dir, name, "key");
    let cert_path = leaf_path(dir, name, "pem");
    if !key_path.exists() {
        return Err(CaError::NoKey { path: key_path });
    }
    let key = KeyPair::from_pem(&read(&key_path)?).map_err(|error| CaError::BadKey {
        path: key_path.clone(),
        error,
    })?;
    let cert = sign(dir, &cert_path, params, &key)?;
    replace_file(&cert_path, &cert.pem(), 0o644)?;
    Ok(crate::config::tls::not_after(cert.der()).unwrap_or_else(|| "?".to_owned()))
}

/// Signs `params` for `key` with the CA in `dir`, and proves the result chains to
/// `ca.pem` before anyone writes it.
fn sign(
    dir: &Path,
    cert_path: &Path,
    params: CertificateParams,
    key: &KeyPair,
) -> Result<rcgen::Certificate, CaError> {
    let ca_key_path = dir.join(CA_KEY_FILE);
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let ca_key_pem = read(&ca_key_path)?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|error| CaError::BadKey {
        path: ca_key_path.clone(),
        error,
    })?;
    let ca_cert =
        CertificateDer::from_pem_slice(read(&ca_cert_path)?.as_bytes()).map_err(|error| {
            CaError::BadCert {
                path: ca_cert_path.clone(),
                error,
            }
        })?;
    let issuer = Issuer::new(ca_params(), ca_key);
    let cert = params
        .signed_by(key, &issuer)
        .map_err(|error| CaError::Generate {
            path: cert_path.to_path_buf(),
            error,
        })?;
    verify_chain(&ca_cert, cert.der(), wall_now()).map_err(|reason| CaError::Mismatch {
        cert: ca_cert_path,
        key: ca_key_path,
        reason,
    })?;
    Ok(cert)
}

/// Replaces `path` atomically: writes a new file beside it, syncs it, renames it over
/// `path`, and syncs the directory.
fn replace_file(path: &Path, contents: &str, mode: u32) -> Result<(), CaError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp); // a leftover of an interrupted renewal
    write_file(&tmp, contents, mode, true)?;
    fs::rename(&tmp, path).map_err(|error| {
        let _ = fs::remove_file(&tmp);
        CaError::Io {
            path: path.to_path_buf(),
            error,
        }
    })?;
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Whether `leaf` chains to `ca` for client authentication (which every quorate
/// certificate allows) at `now`.
fn verify_chain(
    ca: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    now: Duration,
) -> Result<(), webpki::Error> {
    let anchor = webpki::anchor_from_trusted_cert(ca)?;
    let leaf = webpki::EndEntityCert::try_from(leaf)?;
    leaf.verify_for_usage(
        &[webpki::ring::ECDSA_P256_SHA256],
        &[anchor],
        &[],
        UnixTime::since_unix_epoch(now),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )?;
    Ok(())
}

fn leaf_path(dir: &Path, name: &NodeId, ext: &str) -> PathBuf {
    dir.join(format!("{name}.{ext}"))
}

fn new_key(path: &Path) -> Result<KeyPair, CaError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|error| CaError::Generate {
        path: path.to_path_buf(),
        error,
    })
}

fn read(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|error| CaError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Writes the key (new file, 0600: refuses to replace one) and then the certificate
/// (0644, replacing a stale one). If the certificate cannot be written the new key is
/// removed again, so that a retry is not refused.
fn write_pair(
    key_path: &Path,
    key_pem: &str,
    cert_path: &Path,
    cert_pem: &str,
) -> Result<(), CaError> {
    write_file(key_path, key_pem, 0o600, true)?;
    if let Err(e) = write_file(cert_path, cert_pem, 0o644, false) {
        let _ = fs::remove_file(key_path);
        return Err(e);
    }
    Ok(())
}

fn write_file(path: &Path, contents: &str, mode: u32, create_new: bool) -> Result<(), CaError> {
    let io_err = |error: io::Error| CaError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let mut file = options.open(path).map_err(|error| {
        if error.kind() == io::ErrorKind::AlreadyExists {
            CaError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            io_err(error)
        }
    })?;
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

/// Wall-clock time since the Unix epoch, for certificate validity only.
#[allow(clippy::disallowed_methods)] // reason: certificate validity is wall-clock time by definition; the CA is an operator tool, not the daemon's core
fn wall_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Valid from midnight UTC [`BACKDATE_DAYS`] before `now` for `days` days after `now`.
fn set_validity(params: &mut CertificateParams, now: Duration, days: i64) {
    let today = i64::try_from(now.as_secs() / 86_400).unwrap_or(0);
    let (y, m, d) = civil_from_days(today - BACKDATE_DAYS);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_from_days(today + days);
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

/// Proleptic Gregorian (year, month, day) of day `z` since 1970-01-01 (H. Hinnant's
/// `civil_from_days`). Clamped to years 1970–9999, which X.509 can encode.
fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z.clamp(0, 2_932_896) + 719_468; // 2_932_896 = 9999-12-31
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // The clamp keeps every value in range of its type.
    (
        i32::try_from(y).unwrap_or(9999),
        u8::try_from(m).unwrap_or(12),
        u8::try_from(d).unwrap_or(31),
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use rustls_pki_types::ServerName;

    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn cert(path: &Path) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(path).unwrap()
    }

    fn names(der: &CertificateDer<'_>, name: &str) -> bool {
        let ee = webpki::EndEntityCert::try_from(der).unwrap();
        let name = ServerName::try_from(name).unwrap();
        ee.verify_is_valid_for_subject_name(&name).is_ok()
    }

    fn chains(
        ca: &CertificateDer<'_>,
        leaf: &CertificateDer<'_>,
        usage: webpki::KeyUsage,
    ) -> Result<(), webpki::Error> {
        let anchor = webpki::anchor_from_trusted_cert(ca)?;
        let ee = webpki::EndEntityCert::try_from(leaf)?;
        ee.verify_for_usage(
            &[webpki::ring::ECDSA_P256_SHA256],
            &[anchor],
            &[],
            UnixTime::since_unix_epoch(wall_now()),
            usage,
            None,
            None,
        )
        .map(|_| ())
    }

    #[test]
    fn init_writes_ca_with_private_key_and_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        init(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        // A directory that already exists, open to all, is narrowed too.
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        init(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
        assert_eq!(mode(&open.join("ca.key")), 0o600);
        let ca = cert(&dir.join("ca.pem"));
        // A CA certificate is a usable trust anchor, and not an end-entity for anyone.
        webpki::anchor_from_trusted_cert(&ca).unwrap();
    }

    #[test]
    fn init_refuses_to_replace_a_ca() {
        let tmp = tempfile::tempdir().unwrap();
        init(tmp.path()).unwrap();
        let before = fs::read(tmp.path().join("ca.key")).unwrap();
        let err = init(tmp.path()).unwrap_err();
        assert!(matches!(err, CaError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("ca.key"), "{err}");
        assert_eq!(fs::read(tmp.path().join("ca.key")).unwrap(), before);
    }

    #[test]
    fn node_certificate_chains_and_names_node_and_peer_name() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir).unwrap();
        issue_node(dir, &id("n1")).unwrap();
        assert_eq!(mode(&dir.join("n1.key")), 0o600);
        KeyPair::from_pem(&fs::read_to_string(dir.join("n1.key")).unwrap()).unwrap();

        let ca = cert(&dir.join("ca.pem"));
        let leaf = cert(&dir.join("n1.pem"));
        chains(&ca, &leaf, webpki::KeyUsage::server_auth()).unwrap();
        chains(&ca, &leaf, webpki::KeyUsage::client_auth()).unwrap();
        assert!(names(&leaf, "n1"));
        assert!(names(&leaf, proto::PEER_SERVER_NAME));
        assert!(!names(&leaf, "n2"));
        assert!(!names(&leaf, "n1.operator.quorate"));
    }

    #[test]
    fn node_certificate_does_not_chain_to_another_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        init(&a).unwrap();
        init(&b).unwrap();
        issue_node(&a, &id("n1")).unwrap();
        let leaf = cert(&a.join("n1.pem"));
        let other = cert(&b.join("ca.pem"));
        assert!(chains(&other, &leaf, webpki::KeyUsage::client_auth()).is_err());
    }

    #[test]
    fn operator_certificate_is_client_only_and_names_no_node() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir).unwrap();
        issue_operator(dir, &id("alice")).unwrap();
        assert_eq!(mode(&dir.join("alice.key")), 0o600);

        let ca = cert(&dir.join("ca.pem"));
        let leaf = cert(&dir.join("alice.pem"));
        chains(&ca, &leaf, webpki::KeyUsage::client_auth()).unwrap();
        assert!(chains(&ca, &leaf, webpki::KeyUsage::server_auth()).is_err());
        assert!(names(&leaf, "alice.operator.quorate"));
        assert!(!names(&leaf, "alice"));
        assert!(!names(&leaf, proto::PEER_SERVER_NAME));
    }

    #[test]
    fn issue_refuses_to_replace_a_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir).unwrap();
        issue_node(dir, &id("n1")).unwrap();
        let err = issue_node(dir, &id("n1")).unwrap_err();
        assert!(matches!(err, CaError::Exists { .. }), "{err}");
        assert!(err.to_string().contains("n1.key"), "{err}");
        let err = issue_operator(dir, &id("n1")).unwrap_err();
        assert!(matches!(err, CaError::Exists { .. }), "{err}");
    }

    #[test]
    fn renew_keeps_the_key_and_replaces_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path()).unwrap();
        let n1 = id("n1");
        issue_node(dir.path(), &n1).unwrap();
        let key_before = fs::read(dir.path().join("n1.key")).unwrap();
        let cert_before = cert(&dir.path().join("n1.pem"));
        let end = renew_node(dir.path(), &n1).unwrap();
        assert!(end.ends_with('Z'), "{end}");
        assert_eq!(fs::read(dir.path().join("n1.key")).unwrap(), key_before);
        assert_eq!(mode(&dir.path().join("n1.key")), 0o600);
        let cert_after = cert(&dir.path().join("n1.pem"));
        assert_ne!(cert_after, cert_before, "a new serial at least");
        assert!(names(&cert_after, "n1"));
        chains(
            &cert(&dir.path().join("ca.pem")),
            &cert_after,
            webpki::KeyUsage::server_auth(),
        )
        .unwrap();
        assert!(!dir.path().join("n1.pem.new").exists());
        // The renewed certificate still goes with the kept key.
        let paths = crate::config::TlsPaths {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("n1.pem"),
            key: dir.path().join("n1.key"),
        };
        let tls = crate::config::tls::TlsMaterial::load(&paths).unwrap();
        crate::net::tls::server_config(&tls, &[b"x"]).unwrap();

        assert!(matches!(
            renew_node(dir.path(), &id("n2")),
            Err(CaError::NoKey { .. })
        ));
        issue_operator(dir.path(), &id("alice")).unwrap();
        renew_operator(dir.path(), &id("alice")).unwrap();
    }

    #[test]
    fn issue_without_a_ca_names_the_missing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let err = issue_node(tmp.path(), &id("n1")).unwrap_err();
        assert!(err.to_string().contains("ca.key"), "{err}");
        assert!(!tmp.path().join("n1.key").exists());
    }

    #[test]
    fn issue_with_a_mismatched_ca_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        init(&a).unwrap();
        init(&b).unwrap();
        fs::copy(b.join("ca.pem"), a.join("ca.pem")).unwrap();
        let err = issue_node(&a, &id("n1")).unwrap_err();
        assert!(matches!(err, CaError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("ca.pem"), "{err}");
        assert!(!a.join("n1.key").exists());
        assert!(!a.join("n1.pem").exists());
    }

    #[test]
    fn ca_is_a_reserved_name() {
        let tmp = tempfile::tempdir().unwrap();
        init(tmp.path()).unwrap();
        let err = issue_node(tmp.path(), &id("ca")).unwrap_err();
        assert!(matches!(err, CaError::Reserved { .. }), "{err}");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(-5), (1970, 1, 1));
        assert_eq!(civil_from_days(i64::MAX), (9999, 12, 31));
    }

    #[test]
    fn not_after_of_an_issued_certificate() {
        use crate::config::tls::{load_certs, not_after};
        let dir = tempfile::tempdir().unwrap();
        init(dir.path()).unwrap();
        issue_node(dir.path(), &NodeId::new("n1").unwrap()).unwrap();
        let cert = &load_certs(&dir.path().join("n1.pem")).unwrap()[0];
        let end = not_after(cert).unwrap();
        // Five years from now, at midnight UTC.
        assert!(end.ends_with("T00:00:00Z") && end.len() == 20, "{end}");
        assert!(end.as_str() > "2030-01-01", "{end}");
        assert_eq!(
            not_after(&CertificateDer::from(vec![0x30, 0x03, 1, 2])),
            None
        );
        assert_eq!(not_after(&CertificateDer::from(Vec::new())), None);
    }
}
