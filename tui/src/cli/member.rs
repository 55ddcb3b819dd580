//! `quorate member list|add|remove|replace|promote|force-new-cluster`: the agreed member
//! set over the operator channel. A change goes to the agent asked, which forwards it to
//! the primary; the answer is the primary's (started, or refused and why). A started
//! change commits once a majority of the voters holds it, so the command then waits a
//! little to see the set the agent asked holds. An address given as a host name was
//! resolved when the arguments were read (`member_addr`): the change carries the address,
//! which is what the agreed set keeps and every node dials.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use proto::MemberChange;
use proto::ctl::CtlCommand;
use proto::status::{ClusterStatus, MembersStatus};
use quorate_agent::ctl::client::Update;

use super::control::{Reply, ask, finish};
use super::json::CommandName;
use super::status::out;
use super::{Global, MemberCommand, MemberListArgs};
use crate::table::render_members;
use crate::target;

/// How long a change waits to show in the asked agent's member set.
const MEMBER_WAIT: Duration = Duration::from_secs(5);

/// What `force-new-cluster` says instead of acting, without its flag.
pub const FORCE_REFUSAL: &str = "member force-new-cluster not sent: it makes the node you ask the ONLY voter of a new member set, in a new term, so that it becomes primary on its own. It is for a majority of the voters lost for good (destroyed, never coming back), not for nodes that are down for a while: a lost voter that comes back holds the old set and must be wiped (emptied state_dir) and added again with `quorate member add`. The agent refuses while another voter still answers. If that is what you mean, run it again with --yes-i-lost-the-majority";

pub fn run(global: &Global, command: &MemberCommand) -> anyhow::Result<ExitCode> {
    let (name, out) = match command {
        MemberCommand::List(args) => return list(global, args).map(|()| ExitCode::SUCCESS),
        MemberCommand::ForceNewCluster {
            yes_i_lost_the_majority,
            out,
        } => {
            return finish(
                CommandName::MemberForceNewCluster,
                *out,
                force_new_cluster(global, *yes_i_lost_the_majority),
            );
        }
        MemberCommand::Add { out, .. } => (CommandName::MemberAdd, *out),
        MemberCommand::Remove { out, .. } => (CommandName::MemberRemove, *out),
        MemberCommand::Replace { out, .. } => (CommandName::MemberReplace, *out),
        MemberCommand::Promote { out, .. } => (CommandName::MemberPromote, *out),
    };
    match change_of(command) {
        Some(change) => finish(name, out, change_members(global, change)),
        None => bail!("not a member change"),
    }
}

/// The change a subcommand asks for (`None` for `list` and `force-new-cluster`).
pub fn change_of(command: &MemberCommand) -> Option<MemberChange> {
    Some(match command {
        MemberCommand::Add {
            node,
            addr,
            non_voter,
            ..
        } => MemberChange::Add {
            node: node.clone(),
            addr: addr.to_string(),
            voter: !non_voter,
        },
        MemberCommand::Remove { node, .. } => MemberChange::Remove { node: node.clone() },
        MemberCommand::Replace { old, new, addr, .. } => MemberChange::Replace {
            old: old.clone(),
            node: new.clone(),
            addr: addr.to_string(),
        },
        MemberCommand::Promote { node, .. } => MemberChange::Promote { node: node.clone() },
        MemberCommand::List(_) | MemberCommand::ForceNewCluster { .. } => return None,
    })
}

fn list(global: &Global, args: &MemberListArgs) -> anyhow::Result<()> {
    let client = target::connect(global)?;
    let snapshot = client.snapshot()?;
    if args.json {
        // The agent's own `members` object, as `/cluster` carries it (fields this tool
        // does not know included).
        let doc: serde_json::Value = serde_json::from_str(&snapshot.json)
            .with_context(|| format!("{}: the snapshot is not JSON", client.addr()))?;
        let Some(members) = doc.get("members") else {
            bail!(
                "{}: the agent reports no member set (an agent older than member sets?)",
                client.addr()
            );
        };
        return out(&format!("{members}\n"));
    }
    out(&render_members(&snapshot.status))
}

/// Sends `change` and waits a little to see it held. A started change not yet seen is
/// still `ok` (it commits once a majority holds it): the message says so.
fn change_members(global: &Global, change: MemberChange) -> anyhow::Result<Reply> {
    let node = Some(change_node(&change).to_string());
    let client = target::connect(global)?;
    let message = match ask(&client, CtlCommand::Member(change.clone()))? {
        Ok(message) => message,
        Err(refusal) => return Ok(Reply::not_done(node, refusal)),
    };
    let mut updates = client.subscribe()?;
    let started = now();
    while now().duration_since(started) < MEMBER_WAIT {
        let Ok(Some(Update::Snapshot(s))) = updates.next(Duration::from_millis(500)) else {
            continue;
        };
        if shows(&change, &s.status.members) {
            return Ok(Reply::done(node, summary(&s.status)));
        }
    }
    Ok(Reply::done(
        node,
        format!("{message}\nthe change is being committed (see `quorate member list`)"),
    ))
}

/// The node a change is about (the new one, for a replacement).
fn change_node(change: &MemberChange) -> &proto::NodeId {
    match change {
        MemberChange::Add { node, .. }
        | MemberChange::Remove { node }
        | MemberChange::Replace { node, .. }
        | MemberChange::Promote { node } => node,
    }
}

fn force_new_cluster(global: &Global, confirmed: bool) -> anyhow::Result<Reply> {
    if !confirmed {
        bail!("{FORCE_REFUSAL}");
    }
    let client = target::connect(global)?;
    Ok(match ask(&client, CtlCommand::ForceNewCluster)? {
        Ok(message) => Reply::done(None, message),
        Err(refusal) => Reply::not_done(None, refusal),
    })
}

/// Whether `members` (as one agent holds them) show `change` done: the set holds it and
/// no change is still being committed there (the primary shows its own change at once,
/// and commits it when a majority holds it).
pub fn shows(change: &MemberChange, members: &MembersStatus) -> bool {
    let slot = |node: &proto::NodeId| {
        members
            .members
            .iter()
            .find(|m| m.node.as_deref() == Some(node.as_str()))
    };
    let held = match change {
        MemberChange::Add { node, voter, .. } => slot(node).is_some_and(|m| m.voter == *voter),
        MemberChange::Remove { node } => slot(node).is_none(),
        MemberChange::Replace { old, node, .. } => {
            slot(old).is_none() && slot(node).is_some_and(|m| m.voter)
        }
        MemberChange::Promote { node } => slot(node).is_some_and(|m| m.voter),
    };
    held && members.change.is_none()
}

/// "member set 3.7: n1, n2, n3, n4 (non-voter) (held by n2)": the members (ids, or
/// addresses of slots not named yet) of the set the answering node holds.
pub fn summary(status: &ClusterStatus) -> String {
    let m = &status.members;
    let names: Vec<String> = m
        .members
        .iter()
        .map(|s| {
            let name = s.node.clone().unwrap_or_else(|| s.addr.clone());
            if s.voter {
                name
            } else {
                format!("{name} (non-voter)")
            }
        })
        .collect();
    format!(
        "member set {}: {} (held by {})",
        m.stamp,
        names.join(", "),
        status.node
    )
}

#[allow(clippy::disallowed_methods)] // a CLI waiting for a result, not decision logic
fn now() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    use proto::NodeId;
    use proto::status::MemberStatus;

    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn set(members: &[(&str, bool)]) -> MembersStatus {
        MembersStatus {
            stamp: "3.7".into(),
            members: members
                .iter()
                .enumerate()
                .map(|(i, (n, voter))| MemberStatus {
                    node: Some(n.to_string()),
                    addr: format!("10.0.0.{}:7700", 11 + i),
                    voter: *voter,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_change_shows_once_held_and_not_in_flight() {
        let add = MemberChange::Add {
            node: id("n4"),
            addr: "10.0.0.14:7700".into(),
            voter: true,
        };
        let before = set(&[("n1", true), ("n2", true), ("n3", true)]);
        let mut after = set(&[("n1", true), ("n2", true), ("n3", true), ("n4", true)]);
        assert!(!shows(&add, &before));
        assert!(shows(&add, &after));
        after.change = Some("add n4 at 10.0.0.14:7700".into());
        assert!(!shows(&add, &after), "still being committed");

        let non_voter = MemberChange::Add {
            node: id("n4"),
            addr: "10.0.0.14:7700".into(),
            voter: false,
        };
        let added = set(&[("n1", true), ("n4", false)]);
        assert!(shows(&non_voter, &added));
        assert!(!shows(&add, &added), "present, but not as a voter");
        assert!(!shows(&MemberChange::Promote { node: id("n4") }, &added));
        assert!(shows(
            &MemberChange::Promote { node: id("n4") },
            &set(&[("n1", true), ("n4", true)])
        ));

        let remove = MemberChange::Remove { node: id("n3") };
        assert!(!shows(&remove, &before));
        assert!(shows(&remove, &set(&[("n1", true), ("n2", true)])));

        let replace = MemberChange::Replace {
            old: id("n3"),
            node: id("n5"),
            addr: "10.0.0.15:7700".into(),
        };
        assert!(!shows(&replace, &before));
        assert!(
            !shows(&replace, &set(&[("n1", true), ("n2", true)])),
            "only the first step"
        );
        assert!(shows(
            &replace,
            &set(&[("n1", true), ("n2", true), ("n5", true)])
        ));
    }

    #[test]
    fn summary_names_the_set_and_who_holds_it() {
        let mut members = set(&[("n1", true), ("n2", true), ("n3", true), ("n4", false)]);
        members.members.push(MemberStatus {
            node: None,
            addr: "10.0.0.20:7700".into(),
            voter: true,
        });
        let status = ClusterStatus {
            cluster: "c".into(),
            node: "n2".into(),
            term: 3,
            primary: Some("n1".into()),
            quorum: true,
            frozen: false,
            voters: 4,
            nodes: vec![],
            unreachable_peers: vec![],
            tasks: vec![],
            pending_restart: vec![],
            timing_mismatch: vec![],
            members,
        };
        assert_eq!(
            summary(&status),
            "member set 3.7: n1, n2, n3, n4 (non-voter), 10.0.0.20:7700 (held by n2)"
        );
    }

    #[test]
    fn subcommands_ask_for_their_change() {
        let add = MemberCommand::Add {
            node: id("n4"),
            addr: "10.0.0.14:7700".parse().unwrap_or_else(|e| panic!("{e}")),
            non_voter: true,
            out: Default::default(),
        };
        assert_eq!(
            change_of(&add),
            Some(MemberChange::Add {
                node: id("n4"),
                addr: "10.0.0.14:7700".into(),
                voter: false
            })
        );
        let replace = MemberCommand::Replace {
            old: id("n3"),
            new: id("n5"),
            addr: "[fd00::15]:7700".parse().unwrap_or_else(|e| panic!("{e}")),
            out: Default::default(),
        };
        assert_eq!(
            change_of(&replace),
            Some(MemberChange::Replace {
                old: id("n3"),
                node: id("n5"),
                addr: "[fd00::15]:7700".into()
            })
        );
        assert_eq!(
            change_of(&MemberCommand::ForceNewCluster {
                yes_i_lost_the_majority: true,
                out: Default::default(),
            }),
            None
        );
    }

    #[test]
    fn force_new_cluster_without_its_flag_explains_and_sends_nothing() {
        // Refused before any connection is tried (the global flags point nowhere).
        let global = Global {
            config: Some("/nonexistent/quorate-agent.toml".into()),
            connect: None,
            cert: None,
            key: None,
            ca: None,
        };
        let e = force_new_cluster(&global, false).unwrap_err().to_string();
        assert!(e.contains("ONLY voter"), "{e}");
        assert!(e.contains("lost for good"), "{e}");
        assert!(e.contains("--yes-i-lost-the-majority"), "{e}");
        assert!(!e.contains("nonexistent"), "{e}");
    }
}
