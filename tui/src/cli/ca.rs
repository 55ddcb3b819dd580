//! `quorate ca init|issue|renew|revoke`: thin wrappers over `quorate_agent::ca`, and
//! what the operator does next; with `--json`, a [`CaJson`] of what was written instead.

use std::path::Path;

use proto::NodeId;
use quorate_agent::ca;

use super::CaCommand;
use super::json::{self, CaAction, CaJson, CertKind};
use super::status::out;

pub fn run(command: &CaCommand) -> anyhow::Result<()> {
    let (report, json) = match command {
        CaCommand::Init { dir, out } => (init(dir)?, out.json),
        CaCommand::Issue {
            dir,
            operator,
            node,
            out,
        } => {
            let (name, kind) = named(operator, node, "issue")?;
            (issue(dir, name, kind)?, out.json)
        }
        CaCommand::Renew {
            dir,
            operator,
            node,
            out,
        } => {
            let (name, kind) = named(operator, node, "renew")?;
            (renew(dir, name, kind)?, out.json)
        }
        CaCommand::Revoke {
            dir,
            operator,
            node,
            out,
        } => {
            let (name, kind) = named(operator, node, "revoke")?;
            (revoke(dir, name, kind)?, out.json)
        }
    };
    if json {
        out(&json::line(&report.json)?)
    } else {
        out(&report.text)
    }
}

/// What a command did, for people and as JSON.
struct Report {
    text: String,
    json: CaJson,
}

impl Report {
    fn new(action: CaAction, name: Option<&NodeId>, kind: Option<CertKind>) -> Self {
        Self {
            text: String::new(),
            json: CaJson::new(action, name.map(NodeId::as_str), kind),
        }
    }

    fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }
}

/// The certificate a command is about: `--operator NAME` or `NODE` (clap requires one).
fn named<'a>(
    operator: &'a Option<NodeId>,
    node: &'a Option<NodeId>,
    command: &str,
) -> anyhow::Result<(&'a NodeId, CertKind)> {
    match (operator, node) {
        (Some(name), _) => Ok((name, CertKind::Operator)),
        (None, Some(node)) => Ok((node, CertKind::Node)),
        (None, None) => anyhow::bail!("ca {command}: name a NODE or give --operator NAME"),
    }
}

fn init(dir: &Path) -> anyhow::Result<Report> {
    ca::init(dir)?;
    let mut r = Report::new(CaAction::Init, None, None);
    let (cert, key) = (dir.join(ca::CA_CERT_FILE), dir.join(ca::CA_KEY_FILE));
    r.line(format!("wrote {} and {}", cert.display(), key.display()));
    r.line(format!(
        "keep {} off the nodes: whoever holds it can join the cluster",
        ca::CA_KEY_FILE
    ));
    // ca::init writes the key first.
    r.json.wrote = vec![json::path(&key), json::path(&cert)];
    Ok(r)
}

fn issue(dir: &Path, name: &NodeId, kind: CertKind) -> anyhow::Result<Report> {
    match kind {
        CertKind::Operator => ca::issue_operator(dir, name)?,
        CertKind::Node => ca::issue_node(dir, name)?,
    }
    let mut r = Report::new(CaAction::Issue, Some(name), Some(kind));
    let (pem, key) = pair(dir, name);
    r.line(format!("wrote {} and {}", pem.display(), key.display()));
    match kind {
        CertKind::Operator => {
            r.line("an operator certificate: it opens control connections, never peer links")
        }
        CertKind::Node => r.line(format!(
            "install them with {} on node {name} (the [tls] section of its config)",
            ca::CA_CERT_FILE
        )),
    }
    // The serial goes into the register before the certificate is written.
    r.json.wrote = vec![
        json::path(&dir.join(ca::REGISTER_FILE)),
        json::path(&key),
        json::path(&pem),
    ];
    r.json.kept = vec![
        json::path(&dir.join(ca::CA_CERT_FILE)),
        json::path(&dir.join(ca::CA_KEY_FILE)),
    ];
    Ok(r)
}

fn renew(dir: &Path, name: &NodeId, kind: CertKind) -> anyhow::Result<Report> {
    let until = match kind {
        CertKind::Operator => ca::renew_operator(dir, name)?,
        CertKind::Node => ca::renew_node(dir, name)?,
    };
    let mut r = Report::new(CaAction::Renew, Some(name), Some(kind));
    let (pem, key) = pair(dir, name);
    r.line(format!(
        "wrote {} (valid until {until}); kept {}",
        pem.display(),
        key.display()
    ));
    if kind == CertKind::Node {
        r.line(format!(
            "copy it to node {name} over the old one, then `systemctl reload quorate` there: no restart needed"
        ));
    }
    r.json.wrote = vec![json::path(&dir.join(ca::REGISTER_FILE)), json::path(&pem)];
    r.json.kept = vec![json::path(&key)];
    r.json.valid_until = Some(until);
    Ok(r)
}

fn revoke(dir: &Path, name: &NodeId, kind: CertKind) -> anyhow::Result<Report> {
    let (word, ca_kind) = match kind {
        CertKind::Operator => ("operator", ca::Kind::Operator),
        CertKind::Node => ("node", ca::Kind::Node),
    };
    let done = ca::revoke(dir, name, ca_kind)?;
    let mut r = Report::new(CaAction::Revoke, Some(name), Some(kind));
    for serial in &done.newly {
        r.line(format!(
            "revoked {word} {name}'s certificate, serial {serial}"
        ));
    }
    for serial in &done.already {
        r.line(format!(
            "{word} {name}'s certificate, serial {serial}, was already revoked"
        ));
    }
    r.json.revoked = done.newly.clone();
    r.json.already_revoked = done.already.clone();
    let (pem, key) = pair(dir, name);
    r.json.kept = vec![json::path(&pem), json::path(&key)];
    let Some((crl, number)) = &done.wrote else {
        r.line(format!(
            "{} unchanged: if every node already has it, nothing more to do",
            dir.join(ca::CRL_FILE).display()
        ));
        return Ok(r);
    };
    r.line(format!(
        "wrote {} (CRL number {number}, revoking {} in all) and {}",
        crl.display(),
        done.total,
        dir.join(ca::REGISTER_FILE).display()
    ));
    r.json.wrote = vec![json::path(&dir.join(ca::REGISTER_FILE)), json::path(crl)];
    r.json.crl_number = Some(*number);
    r.line(format!(
        "next: copy {} to every node, to the path its [tls] crl names (the first time, add \
         `crl = \"/etc/quorate/tls/crl.pem\"` under [tls]), then `systemctl reload quorate` \
         on each: from then on the agents refuse that certificate",
        crl.display()
    ));
    let (key, pem, d) = (key.display(), pem.display(), dir.display());
    r.line(match kind {
        CertKind::Operator => format!(
            "open operator connections with it are closed at that reload; to give {name} \
             a new certificate: rm {key} {pem} && quorate ca issue --dir {d} --operator {name}"
        ),
        CertKind::Node => format!(
            "each agent that reloads the list closes its links with {name}; stop quorate \
             on {name} too if you can; to give {name} a new certificate: rm {key} {pem} \
             && quorate ca issue --dir {d} {name}"
        ),
    });
    Ok(r)
}

/// `NAME.pem` and `NAME.key` in `dir`.
fn pair(dir: &Path, name: &NodeId) -> (std::path::PathBuf, std::path::PathBuf) {
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}
