//! Who is asking on the operator channel ([`Caller`], read from the certificate), and
//! the [`Order`] the server hands the driver for a command. Plain data; it decides
//! nothing.

use std::net::SocketAddr;

use proto::ctl::CtlCommand;
use rustls::pki_types::CertificateDer;
use tokio::sync::oneshot;

/// A command for the driver, with who gave it and where the answer goes: `Ok(what was
/// done)` or `Err(why not)`.
#[derive(Debug)]
pub struct Order {
    pub command: CtlCommand,
    pub caller: Caller,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// Who opened an operator connection, as its certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub who: Who,
    pub addr: SocketAddr,
}

/// The identity an operator-channel certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// An operator certificate (`NAME.operator.quorate`).
    Operator(String),
    /// A node certificate: someone on that node, using its agent's credentials.
    Node(String),
    /// A certificate of the cluster CA that names neither (not one `quorate ca` makes).
    Unknown,
}

impl Caller {
    /// Reads the identity from the certificate the caller presented.
    pub fn new(cert: Option<&CertificateDer<'_>>, addr: SocketAddr) -> Self {
        Self {
            who: cert.map(identify).unwrap_or(Who::Unknown),
            addr,
        }
    }

    /// The name recorded with what the caller did (a drain's `by`, an event's text):
    /// `alice` for an operator certificate, `node n1` for a node's.
    pub fn name(&self) -> String {
        match &self.who {
            Who::Operator(o) => o.clone(),
            Who::Node(n) => format!("node {n}"),
            Who::Unknown => format!("unknown@{}", self.addr.ip()),
        }
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.who {
            Who::Operator(o) => write!(f, "operator {o} at {}", self.addr),
            Who::Node(n) => write!(f, "{n}'s certificate at {}", self.addr),
            Who::Unknown => write!(f, "an unnamed certificate at {}", self.addr),
        }
    }
}

/// The identity in a certificate of the cluster CA: an operator's DNS name
/// `NAME.operator.quorate`, else a node id (a DNS name other than the shared peer name).
/// For naming only: the handshake already verified the chain.
pub fn identify(cert: &CertificateDer<'_>) -> Who {
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return Who::Unknown;
    };
    let suffix = format!(".{}", crate::ca::OPERATOR_DNS_SUFFIX);
    let names: Vec<&str> = ee.valid_dns_names().collect();
    if let Some(op) = names.iter().find_map(|n| n.strip_suffix(suffix.as_str())) {
        return Who::Operator(op.to_owned());
    }
    names
        .iter()
        .find(|n| **n != proto::PEER_SERVER_NAME && !n.contains('.'))
        .map(|n| Who::Node((*n).to_owned()))
        .unwrap_or(Who::Unknown)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cert(dir: &std::path::Path, name: &str) -> CertificateDer<'static> {
        crate::config::tls::load_certs(&dir.join(format!("{name}.pem")))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn callers_are_named_from_their_certificates() {
        let dir = tempfile::tempdir().unwrap();
        crate::ca::init(dir.path()).unwrap();
        crate::ca::issue_node(dir.path(), &proto::NodeId::new("n1").unwrap()).unwrap();
        crate::ca::issue_operator(dir.path(), &proto::NodeId::new("alice").unwrap()).unwrap();
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let node = Caller::new(Some(&cert(dir.path(), "n1")), addr);
        assert_eq!(node.who, Who::Node("n1".into()));
        assert_eq!(node.name(), "node n1");
        let op = Caller::new(Some(&cert(dir.path(), "alice")), addr);
        assert_eq!(op.who, Who::Operator("alice".into()));
        assert_eq!(op.name(), "alice");
        assert_eq!(op.to_string(), "operator alice at 127.0.0.1:5000");
        let ca = Caller::new(Some(&cert(dir.path(), "ca")), addr);
        assert_eq!(ca.who, Who::Unknown);
        assert_eq!(Caller::new(None, addr).name(), "unknown@127.0.0.1");
    }
}
