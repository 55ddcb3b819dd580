//! The cluster's own certificate authority: `quorate ca init`, `quorate ca issue`,
//! `quorate ca renew` and `quorate ca revoke`.
//!
//! A CA directory holds `ca.pem` (the CA certificate, given to every node) and `ca.key`
//! (its private key, which admits anyone: keep it off the nodes), the certificates
//! issued from it, `NAME.pem` / `NAME.key`, the register of every certificate it issued
//! and revoked, `serials.json`, and the revocation list made from that register,
//! `crl.pem` (given to every node, `[tls] crl`). Every key is ECDSA P-256 and written
//! with mode 0600; no function here ever overwrites a key. Two `quorate ca` commands
//! must not run on one directory at once (the register is rewritten whole).
//!
//! Renewal keeps the key: `renew` signs a new certificate (new serial, new validity,
//! same names) for the public key of the existing `NAME.key`, and replaces `NAME.pem`
//! atomically (a new file renamed over the old one), so an agent reloading at that
//! moment reads the old certificate or the new one, never half of one. Keeping the key
//! is what certbot-style renewals do, it keeps the promise above, and the key never has
//! to travel again; rotate a key by issuing anew (remove `NAME.key`, `ca issue`).
//!
//! Revocation is by serial number, in a CRL signed by the CA (RFC 5280; rustls checks
//! it in the handshake). `revoke` revokes every certificate the register lists for the
//! name (a renewal's predecessors too, made with the same key) and the one in `NAME.pem`,
//! and rewrites `crl.pem` with the next CRL number. A revoked name's certificate is
//! never renewed (its key is suspect): it gets a new key with `ca issue`. Serial numbers
//! are random (16 bytes, 126 bits of chance), so a certificate issued after a revocation
//! is never covered by it.
//!
//! What the certificates say, and what `config::tls` and `net::tls` may rely on:
//! - CA: CN [`CA_COMMON_NAME`] and an organizational unit `id HEX` of 64 random bits,
//!   basic constraints CA with path length 0 (no intermediates), key usages certificate
//!   and CRL signing, 10 years. The id gives each CA its own name: a revocation list is
//!   matched to certificates by its issuer's name, so during a CA rotation the old and
//!   the new CA's lists must not be mistaken for each other. Certificates and lists are
//!   always signed under the name `ca.pem` carries (CAs made before the id have none).
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
use rand::TryRngCore as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};

use crate::config::tls::{Revocations, cert_names, serial as serial_of};

/// File name of the CA certificate inside a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// Common name of every quorate cluster CA.
pub const CA_COMMON_NAME: &str = "quorate cluster CA";
/// DNS suffix of operator certificates' only name: `NAME.operator.quorate`.
pub const OPERATOR_DNS_SUFFIX: &str = "operator.quorate";
/// File name of the revocation list inside a CA directory (`quorate ca revoke` writes it).
pub const CRL_FILE: &str = "crl.pem";
/// File name of the register of issued and revoked certificates inside a CA directory.
pub const REGISTER_FILE: &str = "serials.json";
/// Names a certificate cannot have: their `NAME.pem` is one of the CA's own files.
const RESERVED: [&str; 2] = ["ca", "crl"];

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
    #[error("{}: not a register `quorate ca` wrote: {error}", path.display())]
    BadRegister {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error(
        "{}: no such certificate, and {} lists none issued to {name:?}: nothing to revoke \
         (is the name or --dir right?)",
        path.display(), register.display()
    )]
    Unknown {
        path: PathBuf,
        register: PathBuf,
        name: String,
    },
    #[error("{}: {found}, not {wanted} (drop or add --operator)", path.display())]
    WrongKind {
        path: PathBuf,
        found: &'static str,
        wanted: &'static str,
    },
    #[error("{}: not issued by the CA in {} (its signature does not verify)", path.display(), ca.display())]
    NotOurs { path: PathBuf, ca: PathBuf },
    #[error(
        "{}: its certificate (serial {serial}) is revoked, and renewing keeps its key: remove \
         the key and the certificate, then `quorate ca issue` a new pair",
        path.display()
    )]
    Revoked { path: PathBuf, serial: String },
}

/// What a certificate is for; the two kinds `quorate ca` issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A node's: serves and dials peer links, names the node id.
    Node,
    /// An operator's: opens control connections only.
    Operator,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Node => "a node certificate",
            Kind::Operator => "an operator certificate",
        }
    }
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
    let id = u64::from_be_bytes(random_bytes(&cert_path)?);
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, format!("id {id:016x}"));
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
    issue(dir, node, Kind::Node, params)
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
    issue(dir, name, Kind::Operator, params)
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
    renew(dir, node, Kind::Node, params)
}

/// Renews operator `name`'s certificate, keeping `NAME.key` (see [`renew_node`]).
pub fn renew_operator(dir: &Path, name: &NodeId) -> Result<String, CaError> {
    let params = operator_params(dir, name)?;
    renew(dir, name, Kind::Operator, params)
}

/// The CA's parameters for `init`, without validity or id. Issuing reads the issuer from
/// `ca.pem` instead (its name byte for byte, id included).
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
    let cert_path = reserved(dir, name)?;
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

/// `NAME.pem` in `dir`, unless the name is one of the CA's own files.
fn reserved(dir: &Path, name: &NodeId) -> Result<PathBuf, CaError> {
    let cert_path = leaf_path(dir, name, "pem");
    if RESERVED.contains(&name.as_str()) {
        return Err(CaError::Reserved {
            path: cert_path,
            name: name.to_string(),
        });
    }
    Ok(cert_path)
}

fn issue(dir: &Path, name: &NodeId, kind: Kind, params: CertificateParams) -> Result<(), CaError> {
    let key_path = leaf_path(dir, name, "key");
    let cert_path = leaf_path(dir, name, "pem");
    if key_path.exists() {
        return Err(CaError::Exists { path: key_path });
    }
    let key = new_key(&key_path)?;
    let cert = sign(dir, &cert_path, params, &key)?;
    // In the register before the certificate exists: a serial listed but never written
    // costs nothing, a certificate missing from the register would escape `revoke`.
    record(dir, name, kind, &cert)?;
    write_pair(&key_path, &key.serialize_pem(), &cert_path, &cert.pem())
}

fn renew(
    dir: &Path,
    name: &NodeId,
    kind: Kind,
    params: CertificateParams,
) -> Result<String, CaError> {
    let key_path = leaf_path(dir, name, "key");
    let cert_path = leaf_path(dir, name, "pem");
    if !key_path.exists() {
        return Err(CaError::NoKey { path: key_path });
    }
    if let Ok(current) = first_cert(&cert_path)
        && let Some(serial) = serial_of(&current)
        && Register::load(dir)?.is_revoked(&serial)
    {
        return Err(CaError::Revoked {
            path: cert_path,
            serial,
        });
    }
    let key = KeyPair::from_pem(&read(&key_path)?).map_err(|error| CaError::BadKey {
        path: key_path.clone(),
        error,
    })?;
    let cert = sign(dir, &cert_path, params, &key)?;
    record(dir, name, kind, &cert)?;
    replace_file(&cert_path, &cert.pem(), 0o644)?;
    Ok(crate::config::tls::not_after(cert.der()).unwrap_or_else(|| "?".to_owned()))
}

/// The CA of `dir`: its certificate, and an issuer (its key, under the exact name its
/// certificate carries).
fn ca(dir: &Path) -> Result<(CertificateDer<'static>, Issuer<'static, KeyPair>), CaError> {
    let ca_key_path = dir.join(CA_KEY_FILE);
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let ca_key_pem = read(&ca_key_path)?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|error| CaError::BadKey {
        path: ca_key_path.clone(),
        error,
    })?;
    let ca_cert = first_cert(&ca_cert_path)?;
    let issuer = Issuer::from_ca_cert_der(&ca_cert, ca_key).map_err(|error| CaError::Generate {
        path: ca_cert_path,
        error,
    })?;
    Ok((ca_cert, issuer))
}

/// Signs `params` for `key` with the CA in `dir`, under a fresh random serial, and proves
/// the result chains to `ca.pem` before anyone writes it.
fn sign(
    dir: &Path,
    cert_path: &Path,
    mut params: CertificateParams,
    key: &KeyPair,
) -> Result<rcgen::Certificate, CaError> {
    let (ca_cert, issuer) = ca(dir)?;
    params.serial_number = Some(random_serial(cert_path)?);
    let cert = params
        .signed_by(key, &issuer)
        .map_err(|error| CaError::Generate {
            path: cert_path.to_path_buf(),
            error,
        })?;
    verify_chain(&ca_cert, cert.der(), wall_now()).map_err(|reason| CaError::Mismatch {
        cert: dir.join(CA_CERT_FILE),
        key: dir.join(CA_KEY_FILE),
        reason,
    })?;
    Ok(cert)
}

/// 16 random bytes, positive, the first never zero (126 random bits). rcgen's default
/// serial is a hash of the public key, which a renewal (same key) would repeat: RFC 5280
/// wants one serial per certificate, and a revocation by serial must name one certificate.
fn random_serial(path: &Path) -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_bytes(path)?);
    bytes[8..].copy_from_slice(&random_bytes(path)?);
    // Positive, and 16 bytes long in DER (no leading zero byte to strip).
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn random_bytes(path: &Path) -> Result<[u8; 8], CaError> {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| CaError::Io {
            path: path.to_path_buf(),
            error: io::Error::other(format!("no randomness from the OS: {e}")),
        })?;
    Ok(bytes)
}

/// Adds an issued certificate to the register.
fn record(dir: &Path, name: &NodeId, kind: Kind, cert: &rcgen::Certificate) -> Result<(), CaError> {
    let mut register = Register::load(dir)?;
    register.certificates.push(Entry {
        serial: serial_of(cert.der()).unwrap_or_default(),
        name: name.to_string(),
        kind,
        issued: Some(UtcTime::now()),
        revoked: None,
    });
    register.save(dir)
}

/// What [`revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Serials revoked by this call.
    pub newly: Vec<String>,
    /// Serials of the name that were revoked before.
    pub already: Vec<String>,
    /// `crl.pem`, and its CRL number, if this call wrote it (not when nothing changed and
    /// it exists).
    pub wrote: Option<(PathBuf, u64)>,
    /// Serials the CRL revokes, all names together.
    pub total: usize,
}

/// Revokes `name`'s certificates of `kind`: the one in `NAME.pem` and every one the
/// register lists for the name, then rewrites `crl.pem` (the next CRL number, signed by
/// the CA, proven to verify against `ca.pem` before it is written). Revoking again
/// changes nothing (and rewrites `crl.pem` only if it is missing). Keeps `NAME.pem` and
/// `NAME.key`: they are the operator's to remove.
pub fn revoke(dir: &Path, name: &NodeId, kind: Kind) -> Result<Revocation, CaError> {
    let cert_path = reserved(dir, name)?;
    let mut register = Register::load(dir)?;
    if cert_path.exists() {
        let cert = first_cert(&cert_path)?;
        check_kind(&cert_path, &cert, name, kind)?;
        check_ours(dir, &cert_path, &cert)?;
        let serial = serial_of(&cert).unwrap_or_default();
        // Issued before the register existed (or by hand): it joins it now.
        if !register.certificates.iter().any(|e| e.serial == serial) {
            register.certificates.push(Entry {
                serial,
                name: name.to_string(),
                kind,
                issued: None,
                revoked: None,
            });
        }
    }
    let now = UtcTime::now();
    let mut done = Revocation {
        newly: Vec::new(),
        already: Vec::new(),
        wrote: None,
        total: 0,
    };
    for entry in register
        .certificates
        .iter_mut()
        .filter(|e| e.name == name.as_str() && e.kind == kind)
    {
        match entry.revoked {
            Some(_) => done.already.push(entry.serial.clone()),
            None => {
                entry.revoked = Some(now);
                done.newly.push(entry.serial.clone());
            }
        }
    }
    if done.newly.is_empty() && done.already.is_empty() {
        return Err(CaError::Unknown {
            path: cert_path,
            register: dir.join(REGISTER_FILE),
            name: name.to_string(),
        });
    }
    done.total = register.revoked().count();
    let crl_path = dir.join(CRL_FILE);
    if !done.newly.is_empty() || !crl_path.exists() {
        register.crl_number += 1;
        // The list first: a register saved without it would say "already revoked" to a
        // retry, and never write it.
        write_crl(dir, &crl_path, &register)?;
        register.save(dir)?;
        done.wrote = Some((crl_path, register.crl_number));
    }
    Ok(done)
}

fn check_kind(
    path: &Path,
    cert: &CertificateDer<'_>,
    name: &NodeId,
    kind: Kind,
) -> Result<(), CaError> {
    let found = if cert_names(cert, &operator_dns_name(name)) {
        Some(Kind::Operator)
    } else if cert_names(cert, name.as_str()) {
        Some(Kind::Node)
    } else {
        None
    };
    match found {
        Some(k) if k == kind => Ok(()),
        other => Err(CaError::WrongKind {
            path: path.to_path_buf(),
            found: other.map_or("a certificate that does not name it", Kind::describe),
            wanted: kind.describe(),
        }),
    }
}

/// Whether the CA of `dir` signed `cert` (its validity aside: an expired certificate can
/// still be revoked).
fn check_ours(dir: &Path, path: &Path, cert: &CertificateDer<'_>) -> Result<(), CaError> {
    let ca_path = dir.join(CA_CERT_FILE);
    let ca = first_cert(&ca_path)?;
    let not_ours = || CaError::NotOurs {
        path: path.to_path_buf(),
        ca: ca_path.clone(),
    };
    let (_, ca) = x509_parser::parse_x509_certificate(&ca).map_err(|_| not_ours())?;
    let (_, leaf) = x509_parser::parse_x509_certificate(cert).map_err(|_| not_ours())?;
    leaf.verify_signature(Some(ca.public_key()))
        .map_err(|_| not_ours())
}

/// Signs the register's revocations as `crl_path`, after checking that the list verifies
/// against `ca.pem` and revokes what the register says.
fn write_crl(dir: &Path, crl_path: &Path, register: &Register) -> Result<(), CaError> {
    let (ca_cert, issuer) = ca(dir)?;
    let generate = |error| CaError::Generate {
        path: crl_path.to_path_buf(),
        error,
    };
    // `secs` since the Unix epoch in rcgen's time type (a closure: the type has no name
    // outside the `time` crate).
    let offset_time = |secs: u64| {
        let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(i64::MAX));
        rcgen::date_time_ymd(y, m, d) + Duration::from_secs(secs % 86_400)
    };
    let now = wall_now().as_secs();
    let revoked_certs = register
        .revoked()
        .map(|(entry, at)| {
            Ok(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&unhex(&entry.serial).ok_or_else(
                    || CaError::BadRegister {
                        path: dir.join(REGISTER_FILE),
                        error: serde::de::Error::custom(format!(
                            "serial {:?} is not hex",
                            entry.serial
                        )),
                    },
                )?),
                revocation_time: offset_time(at.0),
                reason_code: None,
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, CaError>>()?;
    let params = CertificateRevocationListParams {
        this_update: offset_time(now),
        // Agents do not enforce it (see `net::tls`); a date far off for other tools.
        next_update: offset_time(now + 86_400 * CA_VALID_DAYS.unsigned_abs()),
        crl_number: SerialNumber::from(register.crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&issuer).map_err(generate)?;
    let pem = crl.pem().map_err(generate)?;
    let unusable = |reason: String| CaError::Io {
        path: crl_path.to_path_buf(),
        error: io::Error::other(format!("the list made is not usable: {reason}")),
    };
    let checked = Revocations::parse(pem.as_bytes(), &[ca_cert]).map_err(unusable)?;
    if checked.count() != register.revoked().count() {
        return Err(unusable(format!(
            "it revokes {} certificates, serials.json {}",
            checked.count(),
            register.revoked().count()
        )));
    }
    replace_file(crl_path, &pem, 0o644)
}

/// `serials.json`: every certificate issued from the CA directory, and which are revoked.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    /// The CRL number of the last `crl.pem` written (increasing, RFC 5280 5.2.3).
    crl_number: u64,
    certificates: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// Lowercase hex, as the certificate's DER has it.
    serial: String,
    name: String,
    kind: Kind,
    /// `None`: found in `NAME.pem` at a revocation, issued before the register existed.
    issued: Option<UtcTime>,
    revoked: Option<UtcTime>,
}

impl Register {
    fn load(dir: &Path) -> Result<Self, CaError> {
        let path = dir.join(REGISTER_FILE);
        match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(CaError::Io { path, error }),
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|error| CaError::BadRegister { path, error })
            }
        }
    }

    fn save(&self, dir: &Path) -> Result<(), CaError> {
        let path = dir.join(REGISTER_FILE);
        let mut text =
            serde_json::to_string_pretty(self).map_err(|error| CaError::BadRegister {
                path: path.clone(),
                error,
            })?;
        text.push('\n');
        replace_file(&path, &text, 0o644)
    }

    fn is_revoked(&self, serial: &str) -> bool {
        self.revoked().any(|(e, _)| e.serial == serial)
    }

    /// Every revoked certificate, once per serial, with its revocation time.
    fn revoked(&self) -> impl Iterator<Item = (&Entry, UtcTime)> {
        let mut seen = std::collections::HashSet::new();
        self.certificates
            .iter()
            .filter_map(|e| e.revoked.map(|at| (e, at)))
            .filter(move |(e, _)| seen.insert(e.serial.as_str()))
    }
}

/// A moment in UTC, to the second, written `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UtcTime(u64);

impl UtcTime {
    fn now() -> Self {
        Self(wall_now().as_secs())
    }
}

impl std::fmt::Display for UtcTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days = i64::try_from(self.0 / 86_400).unwrap_or(i64::MAX);
        let (y, m, d) = civil_from_days(days);
        let s = self.0 % 86_400;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }
}

impl std::str::FromStr for UtcTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a time like 2026-01-31T12:00:00Z");
        let b = s.as_bytes();
        if b.len() != 20 || &s[4..5] != "-" || &s[7..8] != "-" || &s[10..11] != "T" {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<u64>().ok());
        let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
            num(0..4),
            num(5..7),
            num(8..10),
            num(11..13),
            num(14..16),
            num(17..19),
        ) else {
            return Err(bad());
        };
        if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
            return Err(bad());
        }
        if h > 23 || mi > 59 || sec > 59 || &s[19..] != "Z" {
            return Err(bad());
        }
        let days = days_from_civil(y, mo, d);
        Ok(Self(days * 86_400 + h * 3600 + mi * 60 + sec))
    }
}

impl Serialize for UtcTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`), for dates from 1970 on.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The first certificate of a PEM file.
fn first_cert(path: &Path) -> Result<CertificateDer<'static>, CaError> {
    CertificateDer::from_pem_slice(read(path)?.as_bytes()).map_err(|error| CaError::BadCert {
        path: path.to_path_buf(),
        error,
    })
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

    fn serial(path: &Path) -> String {
        serial_of(&cert(path)).unwrap()
    }

    fn crl(dir: &Path) -> Revocations {
        let ca = crate::config::tls::load_ca(&dir.join(CA_CERT_FILE)).unwrap();
        Revocations::load(&dir.join(CRL_FILE), &ca).unwrap()
    }

    #[test]
    fn revoke_writes_a_signed_list_naming_that_serial() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir).unwrap();
        issue_operator(dir, &id("alice")).unwrap();
        issue_operator(dir, &id("bob")).unwrap();
        issue_node(dir, &id("n1")).unwrap();
        let alice = serial(&dir.join("alice.pem"));

        let done = revoke(dir, &id("alice"), Kind::Operator).unwrap();
        assert_eq!(done.newly, vec![alice.clone()]);
        assert!(done.already.is_empty());
        assert_eq!(done.wrote, Some((dir.join(CRL_FILE), 1)));
        assert_eq!(done.total, 1);
        assert_eq!(mode(&dir.join(CRL_FILE)), 0o644);
        let list = crl(dir);
        assert_eq!(list.count(), 1);
        assert_eq!(list.revoked(&cert(&dir.join("alice.pem"))), Some(alice));
        assert_eq!(list.revoked(&cert(&dir.join("bob.pem"))), None);
        assert_eq!(list.revoked(&cert(&dir.join("n1.pem"))), None);
        // The register says who and when.
        let text = fs::read_to_string(dir.join(REGISTER_FILE)).unwrap();
        assert!(text.contains("\"name\": \"alice\""), "{text}");
        assert!(text.contains("\"revoked\": \"20"), "{text}");

        // A node next: the list grows, its number too.
        let done = revoke(dir, &id("n1"), Kind::Node).unwrap();
        assert_eq!(done.wrote, Some((dir.join(CRL_FILE), 2)));
        assert_eq!(done.total, 2);
        let list = crl(dir);
        assert!(list.revoked(&cert(&dir.join("n1.pem"))).is_some());
        assert!(list.revoked(&cert(&dir.join("alice.pem"))).is_some());
        let number = |dir: &Path| {
            let der = {
                use rustls_pki_types::CertificateRevocationListDer;
                CertificateRevocationListDer::from_pem_file(dir.join(CRL_FILE)).unwrap()
            };
            let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
            crl.crl_number().unwrap().to_string()
        };
        assert_eq!(number(dir), "2");
    }

    #[test]
    fn revoking_twice_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir).unwrap();
        issue_operator(dir, &id("alice")).unwrap();
        revoke(dir, &id("alice"), Kind::Operator).unwrap();
        let before = fs::read(dir.join(CRL_FILE)).unwrap();
        let register = fs::read(dir.join(REGISTER_FILE)).unwrap();
        let again = revoke(dir, &id("alice"), Kind::Operator).unwrap();
        assert!(again.newly.is_empty());
        assert_eq!(again.already, vec![serial(&dir.join("alice.pem"))]);
        assert_eq!(again.wrote, None);
        assert_eq!(fs::read(dir.join(CRL_FILE)).unwrap(), before);
        assert_eq!(fs::read(dir.join(REGISTER_FILE)).unwrap(), register);
        // A lost crl.pem is written again, with the next number.
        fs::remove_file(dir.join(CRL_FILE)).unwrap();
        let again = revoke(dir, &id("alice"), Kind::Operator).unwrap();
        assert_eq!(again.wrote, Some((dir.join(CRL_FILE), 2)));
        assert_eq!(crl(dir).count(), 1);
    }

    #[test]
    fn revoking_an_unknown_or_mistaken_name_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir).unwrap();
        issue_node(dir, &id("n1")).unwrap();
        let err = revoke(dir, &id("mallory"), Kind::Operator).unwrap_err();
        assert!(matches!(err, CaError::Unknown { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("mallory.pem: no such certificate"), "{msg}");
        assert!(
            msg.contains("serials.json lists none issued to \"mallory\""),
            "{msg}"
        );
        // n1 is a node: not revoked as an operator by mistake.
        let err = revoke(dir, &id("n1"), Kind::Operator).unwrap_err();
        assert!(matches!(err, CaError::WrongKind { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("n1.pem: a node certificate, not an operator certificate"),
            "{err}"
        );
        // Another CA's certificate under this CA's directory.
        let other = tmp.path().join("other");
        init(&other).unwrap();
        issue_node(&other, &id("n2")).unwrap();
        fs::copy(other.join("n2.pem"), dir.join("n2.pem")).unwrap();
        let err = revoke(dir, &id("n2"), Kind::Node).unwrap_err();
        assert!(matches!(err, CaError::NotOurs { .. }), "{err}");
        assert!(!dir.join(CRL_FILE).exists());
        assert!(matches!(
            revoke(dir, &id("crl"), Kind::Node),
            Err(CaError::Reserved { .. })
        ));
        assert!(matches!(
            issue_node(dir, &id("crl")),
            Err(CaError::Reserved { .. })
        ));
    }

    #[test]
    fn serials_are_new_for_every_certificate_and_revoke_covers_renewals() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir).unwrap();
        issue_operator(dir, &id("alice")).unwrap();
        let first = cert(&dir.join("alice.pem"));
        renew_operator(dir, &id("alice")).unwrap();
        let second = cert(&dir.join("alice.pem"));
        assert_ne!(
            serial_of(&first),
            serial_of(&second),
            "a renewal has its own serial"
        );
        assert_eq!(serial_of(&first).unwrap().len(), 32, "16 bytes");

        // Both alice's certificates are revoked, the one renewed away too.
        let done = revoke(dir, &id("alice"), Kind::Operator).unwrap();
        assert_eq!(done.newly.len(), 2);
        let list = crl(dir);
        assert!(list.revoked(&first).is_some());
        assert!(list.revoked(&second).is_some());
        // A revoked certificate is not renewed (same key); a new key gets a new serial
        // that the list does not cover.
        let err = renew_operator(dir, &id("alice")).unwrap_err();
        assert!(matches!(err, CaError::Revoked { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("alice.pem: its certificate (serial"),
            "{err}"
        );
        assert_eq!(cert(&dir.join("alice.pem")), second, "left as it was");
        fs::remove_file(dir.join("alice.key")).unwrap();
        fs::remove_file(dir.join("alice.pem")).unwrap();
        issue_operator(dir, &id("alice")).unwrap();
        let third = cert(&dir.join("alice.pem"));
        assert!(crl(dir).revoked(&third).is_none());
        assert_ne!(serial_of(&third), serial_of(&first));
        assert_ne!(serial_of(&third), serial_of(&second));
    }

    #[test]
    fn cas_have_their_own_names_and_old_cas_still_issue() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, old) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("old"),
        );
        init(&a).unwrap();
        init(&b).unwrap();
        let subject = |dir: &Path| {
            let der = cert(&dir.join(CA_CERT_FILE));
            let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
            c.subject().to_string()
        };
        assert_ne!(subject(&a), subject(&b));
        assert!(subject(&a).contains(CA_COMMON_NAME), "{}", subject(&a));

        // A CA made before the id (common name only) issues, renews and revokes under
        // its own name; certificates it issued before the register are revoked from
        // their file.
        fs::create_dir(&old).unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = ca_params();
        set_validity(&mut params, wall_now(), CA_VALID_DAYS);
        let ca = params.self_signed(&key).unwrap();
        write_pair(
            &old.join(CA_KEY_FILE),
            &key.serialize_pem(),
            &old.join(CA_CERT_FILE),
            &ca.pem(),
        )
        .unwrap();
        issue_node(&old, &id("n1")).unwrap();
        renew_node(&old, &id("n1")).unwrap();
        fs::remove_file(old.join(REGISTER_FILE)).unwrap();
        let done = revoke(&old, &id("n1"), Kind::Node).unwrap();
        assert_eq!(done.newly, vec![serial(&old.join("n1.pem"))]);
        assert!(crl(&old).revoked(&cert(&old.join("n1.pem"))).is_some());
    }

    #[test]
    fn utc_times_read_back() {
        for secs in [0, 951_782_400, 1_767_225_599, 1_772_323_200 + 3_723] {
            let t = UtcTime(secs);
            assert_eq!(t.to_string().parse::<UtcTime>(), Ok(t), "{t}");
        }
        assert_eq!(
            UtcTime(1_772_323_200 + 3_723).to_string(),
            "2026-03-01T01:02:03Z"
        );
        for bad in [
            "",
            "2026-03-01 01:02:03Z",
            "2026-13-01T01:02:03Z",
            "2026-03-01T01:02:03+01",
        ] {
            assert!(bad.parse::<UtcTime>().is_err(), "{bad}");
        }
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
