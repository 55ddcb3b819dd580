//! Singleton task placement: where `[[task]]` `run_on` puts a task, given who is fit.
//!
//! Pure and deterministic: every node computes the same placement from the same view,
//! so nodes agree without a message of their own. Whether a node may *run* the task
//! now (a majority places it there, and it has been so for a grace period) is the
//! driver's business; this module only places.

use proto::NodeId;

/// Where a task runs (`run_on` in `[[task]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOn {
    /// On the node holding the primary lease.
    Primary,
    /// On this node only; nowhere while it is unfit.
    Node(NodeId),
    /// On the first fit node of the list.
    Prefer(Vec<NodeId>),
    /// Rendezvous hashing over fit nodes: tasks spread, and a task moves only when its
    /// node becomes unfit (or a node it prefers comes back).
    Spread,
}

impl std::str::FromStr for RunOn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let node = |n: &str| {
            NodeId::new(n.trim()).map_err(|e| format!("run_on {s:?}: node {:?} {e}", n.trim()))
        };
        match s {
            "primary" => Ok(RunOn::Primary),
            "spread" => Ok(RunOn::Spread),
            _ => {
                if let Some(n) = s.strip_prefix("node:") {
                    Ok(RunOn::Node(node(n)?))
                } else if let Some(list) = s.strip_prefix("prefer:") {
                    let nodes = list.split(',').map(node).collect::<Result<Vec<_>, _>>()?;
                    Ok(RunOn::Prefer(nodes))
                } else {
                    Err(format!(
                        "run_on {s:?}: write \"primary\", \"node:N\", \"prefer:A,B,…\" or \"spread\""
                    ))
                }
            }
        }
    }
}

impl std::fmt::Display for RunOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunOn::Primary => f.write_str("primary"),
            RunOn::Spread => f.write_str("spread"),
            RunOn::Node(n) => write!(f, "node:{n}"),
            RunOn::Prefer(list) => {
                f.write_str("prefer:")?;
                for (i, n) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(n.as_str())?;
                }
                Ok(())
            }
        }
    }
}

/// Places task `name` among `fit` nodes (alive, healthy, member mode, not draining).
/// `primary` is the node believed to hold the primary lease.
pub fn place(
    name: &str,
    run_on: &RunOn,
    fit: &[&NodeId],
    primary: Option<&NodeId>,
) -> Option<NodeId> {
    match run_on {
        RunOn::Primary => primary.cloned(),
        RunOn::Node(n) => fit.contains(&n).then(|| n.clone()),
        RunOn::Prefer(list) => list.iter().find(|n| fit.contains(n)).cloned(),
        RunOn::Spread => fit
            .iter()
            .max_by_key(|n| (rendezvous(name, n.as_str()), n.as_str()))
            .map(|n| (*n).clone()),
    }
}

/// The rendezvous (highest random weight) score of `node` for `task`: stable across
/// nodes, processes and versions (BLAKE3, not a seeded std hasher).
fn rendezvous(task: &str, node: &str) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(task.as_bytes());
    h.update(&[0]);
    h.update(node.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    /// (rule, fit nodes, primary, expected placement)
    type Row<'a> = (
        &'a str,
        &'a [&'a NodeId],
        Option<&'a NodeId>,
        Option<&'a NodeId>,
    );

    #[test]
    fn placement_table() {
        let (n1, n2, n3) = (id("n1"), id("n2"), id("n3"));
        let all = [&n1, &n2, &n3];
        let no_n1 = [&n2, &n3];
        let table: &[Row<'_>] = &[
            ("primary", &all, Some(&n2), Some(&n2)),
            ("primary", &all, None, None),
            ("node:n1", &all, None, Some(&n1)),
            ("node:n1", &no_n1, None, None),
            ("prefer:n1,n3", &all, None, Some(&n1)),
            ("prefer:n1,n3", &no_n1, None, Some(&n3)),
            ("prefer:n1", &no_n1, None, None),
        ];
        for (rule, fit, primary, want) in table {
            let run_on: RunOn = rule.parse().unwrap();
            assert_eq!(run_on.to_string(), *rule);
            assert_eq!(
                place("t", &run_on, fit, *primary).as_ref(),
                *want,
                "{rule} over {fit:?}"
            );
        }
    }

    #[test]
    fn spread_is_stable_and_moves_only_the_lost_node_tasks() {
        let nodes: Vec<NodeId> = (1..=4).map(|i| id(&format!("n{i}"))).collect();
        let all: Vec<&NodeId> = nodes.iter().collect();
        let tasks: Vec<String> = (0..40).map(|i| format!("task-{i}")).collect();
        let before: Vec<NodeId> = tasks
            .iter()
            .map(|t| place(t, &RunOn::Spread, &all, None).unwrap())
            .collect();
        // Every node gets some of 40 tasks.
        for n in &nodes {
            assert!(before.contains(n), "{n} got no task");
        }
        // Order of the fit list does not matter.
        let reversed: Vec<&NodeId> = all.iter().rev().copied().collect();
        for (t, b) in tasks.iter().zip(&before) {
            assert_eq!(place(t, &RunOn::Spread, &reversed, None).as_ref(), Some(b));
        }
        // Losing n2 moves only n2's tasks.
        let without: Vec<&NodeId> = all.iter().filter(|n| n.as_str() != "n2").copied().collect();
        for (t, b) in tasks.iter().zip(&before) {
            let after = place(t, &RunOn::Spread, &without, None).unwrap();
            if b.as_str() != "n2" {
                assert_eq!(&after, b, "{t} moved needlessly");
            } else {
                assert_ne!(after.as_str(), "n2");
            }
        }
        assert_eq!(place("t", &RunOn::Spread, &[], None), None);
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in ["", "node:", "prefer:a,,b", "prefer:", "Primary", "node:a.b"] {
            assert!(bad.parse::<RunOn>().is_err(), "{bad:?}");
        }
    }
}
