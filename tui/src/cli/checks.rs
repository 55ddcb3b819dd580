//! `quorate drain|undrain`, `drift ack`, `upgrade status|allow` and `task should-run`:
//! the commands that steer or read the node checks, over the operator channel. Drain and
//! undrain wait to see the change in the agent's view.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use proto::ctl::CtlCommand;
use proto::status::ClusterStatus;
use proto::{CheckCode, CheckName, NodeId, Role, compare_versions};
use quorate_agent::ctl::client::Update;

use super::Global;
use super::control::{Reply, ask, reply};
use super::json::{self, ShouldRunJson, UpgradeJson, UpgradeNext, UpgradeNode, UpgradeStep};
use super::status::out;
use crate::target;

/// How long `drain`/`undrain` wait to see the change gossiped back.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// A `--for` value in whole seconds (at least one).
fn seconds(flag: &str, text: &str) -> anyhow::Result<u64> {
    let d = humantime::parse_duration(text.trim()).with_context(|| format!("{flag} {text:?}"))?;
    Ok(d.as_secs().max(1))
}

pub fn drain(
    global: &Global,
    node: Option<&NodeId>,
    reason: &str,
    for_: Option<&str>,
    on: bool,
) -> anyhow::Result<Reply> {
    let node_name = node.map(|n| n.to_string());
    let cmd = if on {
        CtlCommand::Drain {
            node: node_name.clone(),
            reason: reason.to_owned(),
            for_secs: for_.map(|f| seconds("--for", f)).transpose()?,
        }
    } else {
        CtlCommand::Undrain {
            node: node_name.clone(),
        }
    };
    let client = target::connect(global)?;
    let message = match ask(&client, cmd)? {
        Ok(message) => message,
        Err(refusal) => return Ok(reply(node_name, Err(refusal))),
    };
    let mut updates = client.subscribe()?;
    let mut named = node_name.clone();
    let start = now();
    while now().duration_since(start) < SETTLE_WAIT {
        let Ok(Some(Update::Snapshot(s))) = updates.next(Duration::from_millis(500)) else {
            continue;
        };
        let s = s.status;
        let name = named.get_or_insert_with(|| s.node.clone()).clone();
        if s.nodes.iter().any(|n| n.node == name && n.draining == on) {
            return Ok(reply(named, Ok(message)));
        }
    }
    Ok(reply(
        named,
        Err(format!(
            "{message}; but the node does not show it after {}s (unreachable? it applies when it hears the order)",
            SETTLE_WAIT.as_secs()
        )),
    ))
}

pub fn drift_ack(global: &Global, name: &str, for_: &str, reason: &str) -> anyhow::Result<Reply> {
    let for_secs = seconds("--for", for_)?;
    let client = target::connect(global)?;
    let answer = ask(
        &client,
        CtlCommand::DriftAck {
            name: name.to_owned(),
            reason: reason.to_owned(),
            for_secs,
        },
    )?;
    Ok(reply(None, answer))
}

pub fn upgrade_allow(global: &Global) -> anyhow::Result<Reply> {
    let client = target::connect(global)?;
    // The gate opened is the asked node's; its id is not in the answer, hence no node.
    Ok(reply(
        None,
        ask(&client, CtlCommand::UpgradeAllow { node: None })?,
    ))
}

pub fn upgrade_status(global: &Global, json: bool) -> anyhow::Result<()> {
    let client = target::connect(global)?;
    let s = client.snapshot()?.status;
    let plan = upgrade_plan(&s);
    if json {
        out(&json::line(&plan)?)
    } else {
        out(&upgrade_report(&plan))
    }
}

/// Which node runs which app version, and which node to upgrade next: a node held by
/// the gate first (allow it), else the lowest-priority secondary still on an older
/// version, and the primary last.
pub fn upgrade_plan(s: &ClusterStatus) -> UpgradeJson {
    let held =
        |n: &proto::status::NodeStatus| n.checks.get(&CheckName::Version) == Some(&CheckCode::Fail);
    let nodes = s
        .nodes
        .iter()
        .map(|n| UpgradeNode {
            node: n.node.clone(),
            role: n.role,
            app: n.version.app.clone(),
            agent: n.version.agent.clone(),
            held: held(n),
        })
        .collect();
    let newest = s
        .nodes
        .iter()
        .filter_map(|n| n.version.app.as_deref())
        .max_by(|a, b| compare_versions(a, b))
        .map(str::to_owned);
    let next = newest.as_deref().and_then(|newest| {
        if let Some(n) = s.nodes.iter().find(|n| held(n)) {
            return Some(UpgradeNext {
                node: n.node.clone(),
                step: UpgradeStep::Allow,
            });
        }
        let mut older: Vec<_> = s
            .nodes
            .iter()
            .filter(|n| {
                n.role != Role::Witness
                    && n.version
                        .app
                        .as_deref()
                        .is_some_and(|v| compare_versions(v, newest).is_lt())
            })
            .collect();
        older.sort_by_key(|n| (n.role == Role::Primary, n.priority, n.node.clone()));
        older.first().map(|n| UpgradeNext {
            node: n.node.clone(),
            step: UpgradeStep::Upgrade,
        })
    });
    UpgradeJson {
        nodes,
        newest,
        next,
    }
}

/// The plan as `quorate upgrade status` prints it: a line per node, then the next step.
pub fn upgrade_report(plan: &UpgradeJson) -> String {
    let mut out = String::new();
    for n in &plan.nodes {
        out.push_str(&format!(
            "{:<12} {:<10} app {:<12} agent {:<8}{}\n",
            n.node,
            n.role.as_str(),
            n.app.as_deref().unwrap_or("-"),
            n.agent,
            if n.held {
                "  held by the upgrade gate"
            } else {
                ""
            }
        ));
    }
    let Some(newest) = &plan.newest else {
        out.push_str("no node reports an app version ([app] version_file or version_command)\n");
        return out;
    };
    let role = |node: &str| {
        plan.nodes
            .iter()
            .find(|n| n.node == node)
            .map_or(Role::Unknown, |n| n.role)
    };
    match &plan.next {
        Some(UpgradeNext {
            node,
            step: UpgradeStep::Allow,
        }) => out.push_str(&format!(
            "next: run `quorate upgrade allow` on {node} (it waits on the gate)\n"
        )),
        Some(UpgradeNext {
            node,
            step: UpgradeStep::Upgrade,
        }) => {
            let role = role(node);
            out.push_str(&format!(
                "next: upgrade {node} ({role}{})\n",
                if role == Role::Primary {
                    "; it hands over when it stops"
                } else {
                    ""
                }
            ));
        }
        None => out.push_str(&format!("every node runs {newest}\n")),
    }
    out
}

/// `quorate task should-run NAME`: exit 0 and `QUORATE_TERM=N` on the one node that
/// should run the task now; exit 1 elsewhere. Judged by the agent at the moment it reads
/// the question, as `GET /task/NAME` is. With `--json` a [`ShouldRunJson`] instead of
/// the `QUORATE_TERM` line, on every node.
pub fn should_run(global: &Global, name: &str, json: bool) -> anyhow::Result<bool> {
    let client = target::connect(global)?;
    let answer = client.should_run(name)?;
    if json {
        out(&json::line(&ShouldRunJson {
            task: name.to_owned(),
            run_here: answer.here,
            term: answer.term,
            holder: answer.holder,
        })?)?;
    } else if answer.here {
        out(&format!("QUORATE_TERM={}\n", answer.term))?;
    }
    Ok(answer.here)
}

#[allow(clippy::disallowed_methods)] // a CLI waiting for a result, not decision logic
fn now() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_whole_seconds() {
        assert_eq!(seconds("--for", "1h 30m").unwrap(), 5400);
        assert_eq!(seconds("--for", "10ms").unwrap(), 1);
        let e = seconds("--for", "soon").unwrap_err();
        assert!(format!("{e:#}").contains("--for \"soon\""), "{e:#}");
    }

    fn node(name: &str, role: Role, priority: u32, app: &str) -> proto::status::NodeStatus {
        proto::status::NodeStatus {
            node: name.into(),
            addr: String::new(),
            state: proto::MemberState::Alive,
            role,
            local: false,
            ready: true,
            healthy: true,
            draining: false,
            priority,
            roles: vec![],
            incarnation: 1,
            rtt_ms: None,
            clock_offset_ms: None,
            last_seen_ms: None,
            phi: None,
            load: Default::default(),
            checks: Default::default(),
            config: vec![],
            mounts: vec![],
            version: proto::status::VersionStatus {
                agent: "0.1.0".into(),
                app: Some(app.into()).filter(|a: &String| !a.is_empty()),
            },
            check_reasons: Default::default(),
            drain: None,
            balancer: None,
            suspected_by: vec![],
            cert_expires: None,
        }
    }

    fn cluster(nodes: Vec<proto::status::NodeStatus>) -> ClusterStatus {
        ClusterStatus {
            cluster: "c".into(),
            node: "n1".into(),
            term: 1,
            primary: Some("n1".into()),
            quorum: true,
            frozen: false,
            voters: 3,
            nodes,
            unreachable_peers: vec![],
            tasks: vec![],
            pending_restart: vec![],
            timing_mismatch: vec![],
            members: Default::default(),
        }
    }

    #[test]
    fn upgrade_plan_allows_the_held_node_then_the_lowest_secondary_then_the_primary() {
        let next = |plan: &UpgradeJson| plan.next.as_ref().map(|n| (n.node.clone(), n.step));
        let mut s = cluster(vec![
            node("n1", Role::Primary, 200, "5.2"),
            node("n2", Role::Secondary, 100, "5.2"),
            node("n3", Role::Secondary, 50, "5.3"),
            // A witness runs no app.
            node("w", Role::Witness, 0, ""),
        ]);
        let plan = upgrade_plan(&s);
        assert_eq!(plan.newest.as_deref(), Some("5.3"));
        assert_eq!(next(&plan), Some(("n2".into(), UpgradeStep::Upgrade)));
        assert!(upgrade_report(&plan).ends_with("next: upgrade n2 (secondary)\n"));

        s.nodes[1].version.app = Some("5.3".into());
        let plan = upgrade_plan(&s);
        assert_eq!(next(&plan), Some(("n1".into(), UpgradeStep::Upgrade)));
        assert!(
            upgrade_report(&plan)
                .ends_with("next: upgrade n1 (primary; it hands over when it stops)\n")
        );

        // A node held by the gate comes first.
        s.nodes[2]
            .checks
            .insert(CheckName::Version, CheckCode::Fail);
        let plan = upgrade_plan(&s);
        assert!(plan.nodes[2].held);
        assert_eq!(next(&plan), Some(("n3".into(), UpgradeStep::Allow)));
        let report = upgrade_report(&plan);
        assert!(report.contains("held by the upgrade gate"), "{report}");
        assert!(
            report.ends_with("next: run `quorate upgrade allow` on n3 (it waits on the gate)\n")
        );

        s.nodes[2].checks.clear();
        s.nodes[0].version.app = Some("5.3".into());
        let plan = upgrade_plan(&s);
        assert_eq!(
            next(&plan),
            None,
            "the witness is not upgraded through the gate"
        );
        assert!(upgrade_report(&plan).ends_with("every node runs 5.3\n"));

        for n in &mut s.nodes {
            n.version.app = None;
        }
        let plan = upgrade_plan(&s);
        assert_eq!((plan.newest.as_deref(), next(&plan)), (None, None));
        assert!(
            upgrade_report(&plan).ends_with(
                "no node reports an app version ([app] version_file or version_command)\n"
            )
        );
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(compare_versions("5.10", "5.9").is_gt());
        assert!(compare_versions("5.2.1", "5.2.1").is_eq());
    }
}
