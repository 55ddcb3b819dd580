//! `quorate ca init|issue|renew|revoke`: thin wrappers over `quorate_agent::ca`, and
//! what the operator does next.

use std::path::Path;

use quorate_agent::ca;

use super::CaCommand;

pub fn run(command: &CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::Init { dir } => {
            ca::init(dir)?;
            println!(
                "wrote {} and {}",
                dir.join(ca::CA_CERT_FILE).display(),
                dir.join(ca::CA_KEY_FILE).display()
            );
            println!(
                "keep {} off the nodes: whoever holds it can join the cluster",
                ca::CA_KEY_FILE
            );
        }
        CaCommand::Issue {
            dir,
            operator: Some(name),
            ..
        } => {
            ca::issue_operator(dir, name)?;
            print_issued(dir, name.as_str());
            println!("an operator certificate: it opens control connections, never peer links");
        }
        CaCommand::Issue {
            dir,
            node: Some(node),
            ..
        } => {
            ca::issue_node(dir, node)?;
            print_issued(dir, node.as_str());
            println!(
                "install them with {} on node {node} (the [tls] section of its config)",
                ca::CA_CERT_FILE
            );
        }
        CaCommand::Issue { .. } => anyhow::bail!("ca issue: name a NODE or give --operator NAME"),
        CaCommand::Renew {
            dir,
            operator: Some(name),
            ..
        } => {
            let until = ca::renew_operator(dir, name)?;
            print_renewed(dir, name.as_str(), &until);
        }
        CaCommand::Renew {
            dir,
            node: Some(node),
            ..
        } => {
            let until = ca::renew_node(dir, node)?;
            print_renewed(dir, node.as_str(), &until);
            println!(
                "copy it to node {node} over the old one, then `systemctl reload quorate` there: no restart needed"
            );
        }
        CaCommand::Renew { .. } => anyhow::bail!("ca renew: name a NODE or give --operator NAME"),
        CaCommand::Revoke {
            dir,
            operator: Some(name),
            ..
        } => {
            let done = ca::revoke(dir, name, ca::Kind::Operator)?;
            if !print_revoked(dir, name.as_str(), "operator", &done) {
                return Ok(());
            }
            println!(
                "open operator connections with it are closed at that reload; to give {name} \
                 a new certificate: rm {key} {pem} && quorate ca issue --dir {d} --operator {name}",
                key = dir.join(format!("{name}.key")).display(),
                pem = dir.join(format!("{name}.pem")).display(),
                d = dir.display(),
            );
        }
        CaCommand::Revoke {
            dir,
            node: Some(node),
            ..
        } => {
            let done = ca::revoke(dir, node, ca::Kind::Node)?;
            if !print_revoked(dir, node.as_str(), "node", &done) {
                return Ok(());
            }
            println!(
                "each agent that reloads the list closes its links with {node}; stop quorate \
                 on {node} too if you can; to give {node} a new certificate: rm {key} {pem} \
                 && quorate ca issue --dir {d} {node}",
                key = dir.join(format!("{node}.key")).display(),
                pem = dir.join(format!("{node}.pem")).display(),
                d = dir.display(),
            );
        }
        CaCommand::Revoke { .. } => anyhow::bail!("ca revoke: name a NODE or give --operator NAME"),
    }
    Ok(())
}

/// What `ca revoke` did and, if it wrote a new list, how to install it; whether it did.
fn print_revoked(dir: &Path, name: &str, kind: &str, done: &ca::Revocation) -> bool {
    for serial in &done.newly {
        println!("revoked {kind} {name}'s certificate, serial {serial}");
    }
    for serial in &done.already {
        println!("{kind} {name}'s certificate, serial {serial}, was already revoked");
    }
    match &done.wrote {
        Some((crl, number)) => println!(
            "wrote {} (CRL number {number}, revoking {} in all) and {}",
            crl.display(),
            done.total,
            dir.join(ca::REGISTER_FILE).display()
        ),
        None => {
            println!(
                "{} unchanged: if every node already has it, nothing more to do",
                dir.join(ca::CRL_FILE).display()
            );
            return false;
        }
    }
    println!(
        "next: copy {} to every node, to the path its [tls] crl names (the first time, add \
         `crl = \"/etc/quorate/tls/crl.pem\"` under [tls]), then `systemctl reload quorate` \
         on each: from then on the agents refuse that certificate",
        dir.join(ca::CRL_FILE).display()
    );
    true
}

fn print_renewed(dir: &Path, name: &str, until: &str) {
    println!(
        "wrote {} (valid until {until}); kept {}",
        dir.join(format!("{name}.pem")).display(),
        dir.join(format!("{name}.key")).display()
    );
}

fn print_issued(dir: &Path, name: &str) {
    println!(
        "wrote {} and {}",
        dir.join(format!("{name}.pem")).display(),
        dir.join(format!("{name}.key")).display()
    );
}
