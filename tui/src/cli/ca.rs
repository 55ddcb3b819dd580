//! `quorate ca init|issue|renew`: thin wrappers over `quorate_agent::ca`.

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
    }
    Ok(())
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
